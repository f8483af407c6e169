//! Plan limits, checked on the layered graph before it is expanded: the number of layers, the chunk
//! tasks that expansion will certainly create, and the bytes of the largest chunk any layer produces.
//! A scheduler or worker calls [`check`] on every graph it receives, so that a request for 2^32 tasks or
//! a 100 GB chunk is refused with a message saying which layer, how large, the limit and the setting
//! that raises it — instead of exhausting memory while expanding or running it.
//!
//! The task count is a lower bound on what [`TaskGraph::expand_limited`] creates, so a graph it rejects
//! could never have been expanded: only layers whose every chunk is needed are counted (outputs, and
//! inputs of a counted layer through any op but a slice or a mirror, the ops that cull their input). A slice of
//! a huge array passes here and expands to its few tasks; expansion itself enforces the exact count.
//!
//! [`TaskGraph::expand_limited`]: super::expand::TaskGraph::expand_limited

use super::{Graph, Layer};
use crate::error::{Error, Result};
use crate::ops::Op;

/// One limit: its value and the name of the setting that raises it, as the user would write it
/// ("--max-tasks", "the largest worker's --memory-limit"), quoted in the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub setting: String,
}

impl Limit {
    pub fn new(max: u64, setting: impl Into<String>) -> Self {
        Limit {
            max,
            setting: setting.into(),
        }
    }
}

/// The limits a graph must fit; `None` is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanLimits {
    pub max_layers: Option<Limit>,
    pub max_tasks: Option<Limit>,
    pub max_chunk_bytes: Option<Limit>,
}

impl PlanLimits {
    /// No limits.
    pub fn none() -> Self {
        PlanLimits::default()
    }

    pub fn max_layers(mut self, max: u64, setting: impl Into<String>) -> Self {
        self.max_layers = Some(Limit::new(max, setting));
        self
    }

    pub fn max_tasks(mut self, max: u64, setting: impl Into<String>) -> Self {
        self.max_tasks = Some(Limit::new(max, setting));
        self
    }

    pub fn max_chunk_bytes(mut self, max: u64, setting: impl Into<String>) -> Self {
        self.max_chunk_bytes = Some(Limit::new(max, setting));
        self
    }
}

/// What [`check`] found, for logs and admission decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanStats {
    pub layers: u64,
    /// Chunk tasks expansion creates at least (saturating).
    pub min_tasks: u64,
    /// Chunks of all layers if none were culled (saturating).
    pub max_tasks: u64,
    /// Bytes of the largest chunk of any layer (saturating).
    pub largest_chunk_bytes: u64,
}

/// Number of chunks of a layer, saturating.
fn grid_chunks(layer: &Layer) -> u64 {
    layer
        .meta
        .chunks
        .sizes()
        .iter()
        .fold(1u64, |acc, axis| acc.saturating_mul(axis.len() as u64))
}

/// Largest chunk extent per axis, and the elements of a chunk of those extents (saturating).
fn largest_chunk(layer: &Layer) -> (Vec<usize>, u64) {
    let shape: Vec<usize> = layer
        .meta
        .chunks
        .sizes()
        .iter()
        .map(|axis| axis.iter().copied().max().unwrap_or(0))
        .collect();
    let elems = shape
        .iter()
        .fold(1u64, |acc, &n| acc.saturating_mul(n as u64));
    (shape, elems)
}

fn describe(layer: &Layer) -> String {
    let (chunk, _) = largest_chunk(layer);
    format!(
        "layer {} (shape {:?} in chunks of up to {:?})",
        layer.id,
        layer.meta.shape(),
        chunk
    )
}

/// Checks `graph` against `limits` without expanding it: its number of layers, each needed layer's
/// number of chunks and their sum, and each layer's largest chunk in bytes (its own output's, so a
/// fused random → mean is measured by its small partial). Nothing here allocates in proportion to a
/// chunk grid, and the arithmetic saturates, so any graph — a 32-axis grid included — is checked in
/// microseconds.
pub fn check(graph: &Graph, limits: &PlanLimits) -> Result<PlanStats> {
    let layers = graph.layers();
    let mut stats = PlanStats {
        layers: layers.len() as u64,
        ..PlanStats::default()
    };
    if let Some(l) = &limits.max_layers
        && stats.layers > l.max
    {
        return Err(Error::LimitExceeded {
            what: "this graph has".into(),
            amount: stats.layers,
            unit: "layers",
            limit: l.max,
            setting: l.setting.clone(),
            hint: String::new(),
        });
    }

    for layer in layers {
        let (chunk, elems) = largest_chunk(layer);
        let item = layer.meta.dtype.size() as u64;
        let bytes = elems.saturating_mul(item);
        stats.largest_chunk_bytes = stats.largest_chunk_bytes.max(bytes);
        stats.max_tasks = stats.max_tasks.saturating_add(grid_chunks(layer));
        if let Some(l) = &limits.max_chunk_bytes
            && bytes > l.max
        {
            return Err(Error::LimitExceeded {
                what: format!(
                    "layer {} (shape {:?}, {}) has chunks of shape {:?}, up to",
                    layer.id,
                    layer.meta.shape(),
                    layer.meta.dtype,
                    chunk
                ),
                amount: bytes,
                unit: "bytes",
                limit: l.max,
                setting: l.setting.clone(),
                hint: format!(
                    "; rechunk to at most {} elements per chunk",
                    (l.max / item.max(1)).max(1)
                ),
            });
        }
    }

    // Which layers run every chunk: walk from the outputs towards the sources; a layer is needed
    // whole if a consumer needed whole reads it through anything but a slice (or the mirror of a
    // symmetric product, which reads only the upper block triangle).
    let mut whole = vec![false; layers.len()];
    for out in graph.outputs() {
        if let Some(p) = graph.position(*out) {
            whole[p] = true;
        }
    }
    for (i, layer) in layers.iter().enumerate().rev() {
        if !whole[i] || matches!(layer.op, Op::Slice(_) | Op::MirrorUpper) {
            continue;
        }
        for input in &layer.inputs {
            if let Some(p) = graph.position(*input) {
                whole[p] = true;
            }
        }
    }
    let tasks = limits.max_tasks.as_ref();
    for (i, layer) in layers.iter().enumerate() {
        // A combine task reads its whole group, each a distinct task of its input: a group larger
        // than the limit means more tasks than the limit, and a dependency list as large.
        if let (Op::ReduceCombine(c), Some(l)) = (&layer.op, tasks) {
            let fan_in = c
                .group
                .iter()
                .fold(1u64, |acc, &g| acc.saturating_mul(g as u64));
            if fan_in > l.max {
                return Err(Error::LimitExceeded {
                    what: format!("{} merges groups of", describe(layer)),
                    amount: fan_in,
                    unit: "partials",
                    limit: l.max,
                    setting: l.setting.clone(),
                    hint: String::new(),
                });
            }
        }
        if !whole[i] {
            continue;
        }
        let n = grid_chunks(layer);
        stats.min_tasks = stats.min_tasks.saturating_add(n);
        if let Some(l) = tasks
            && n > l.max
        {
            return Err(Error::LimitExceeded {
                what: format!("{} has", describe(layer)),
                amount: n,
                unit: "chunks",
                limit: l.max,
                setting: l.setting.clone(),
                hint: String::new(),
            });
        }
    }
    if let Some(l) = tasks
        && stats.min_tasks > l.max
    {
        return Err(Error::LimitExceeded {
            what: "this graph expands to at least".into(),
            amount: stats.min_tasks,
            unit: "tasks",
            limit: l.max,
            setting: l.setting.clone(),
            hint: String::new(),
        });
    }
    Ok(stats)
}
