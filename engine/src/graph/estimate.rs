//! Plan-time memory estimates: how many bytes one task of each layer needs at its peak — its input
//! chunks, its output chunk and its kernel's scratch — derived from metadata alone, before anything
//! runs. The scheduler refuses at submit a job with a task that fits no worker's `--memory-limit`, and
//! places tasks by these figures; the local executor checks the same figures against its own limit.
//!
//! The figures are read off the expanded [`TaskGraph`], so every op's own dependency rule
//! ([`Op::deps`], through expansion) decides which input chunks a task reads: a rechunk task counts
//! exactly the source chunks it overlaps, a combine its whole group of partials, a matmul block its
//! two operand blocks. Per task:
//!
//! - **inputs**: each distinct input chunk once (`x @ x.T` reads a diagonal block twice but holds it
//!   once), at its block's shape and its layer's element size;
//! - **output**: the task's own block. Partial reductions hold more than their dtype per element:
//!   count and mean for `mean` (16 bytes), and the sum of squared deviations for `var`/`std` (24), the
//!   value and its index for `argmin`/`argmax` (16);
//! - **scratch**: what the kernel allocates besides its output. A blockwise program that reduces
//!   evaluates its domain block before reducing it (counted as one float64 domain block); a block
//!   product packs panels of both operands (counted as a copy of both, the most gemm packs). Other
//!   kernels write straight into their output.
//!
//! The sums saturate, so any graph, however absurd its chunks, is estimated without overflow.

use super::expand::TaskGraph;
use super::limits::Limit;
use super::{ArrayMeta, Graph, Layer, LayerId};
use crate::error::{Error, Result};
use crate::ops::reduce::Reduction;
use crate::ops::{Holds, Op};

/// The largest task of one layer and what its bytes are made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPeak {
    /// The layer's id, for messages.
    pub layer: LayerId,
    /// Its position in the graph's layers (the `layer` of its tasks).
    pub position: u32,
    /// The block index of the layer's largest task.
    pub block: Vec<u32>,
    /// The shape of that task's output chunk.
    pub chunk: Vec<usize>,
    /// Bytes of its distinct input chunks.
    pub inputs: u64,
    /// Bytes of its output chunk.
    pub output: u64,
    /// Bytes its kernel allocates besides the output.
    pub scratch: u64,
    /// Elements of the largest chunk the task touches (input or output): the hint scales this.
    pub largest_chunk_elems: u64,
}

impl LayerPeak {
    /// Peak bytes of the task: inputs + output + scratch (saturating).
    pub fn bytes(&self) -> u64 {
        self.inputs
            .saturating_add(self.output)
            .saturating_add(self.scratch)
    }
}

/// Per-layer peaks of a task graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// One entry per layer that has tasks, in layer order.
    pub layers: Vec<LayerPeak>,
}

impl Estimate {
    /// The layer with the largest task (the first such layer on ties), if any task exists.
    pub fn peak(&self) -> Option<&LayerPeak> {
        self.layers
            .iter()
            .fold(None, |best: Option<&LayerPeak>, l| match best {
                Some(b) if b.bytes() >= l.bytes() => Some(b),
                _ => Some(l),
            })
    }

    /// Peak bytes of the layer at `position`, 0 if it has no task.
    pub fn layer_bytes(&self, position: u32) -> u64 {
        self.layers
            .iter()
            .find(|l| l.position == position)
            .map_or(0, LayerPeak::bytes)
    }

    /// Fails with [`Error::LimitExceeded`] for the largest task that does not fit `limit`: the error
    /// names its layer, chunk shape and bytes, the limit and its setting, and how far to rechunk.
    pub fn check(&self, limit: &Limit) -> Result<()> {
        let Some(peak) = self.peak() else {
            return Ok(());
        };
        let bytes = peak.bytes();
        if bytes <= limit.max {
            return Ok(());
        }
        // Scale the largest chunk the task touches by how far over the limit the task is: the task's
        // bytes are close to proportional to its chunks' sizes.
        let fit = (peak.largest_chunk_elems as u128 * limit.max as u128 / bytes.max(1) as u128)
            .clamp(1, u64::MAX as u128) as u64;
        Err(Error::LimitExceeded {
            what: format!(
                "layer {} has tasks with chunks of shape {:?} that need (inputs {} + output {} + scratch {} bytes)",
                peak.layer, peak.chunk, peak.inputs, peak.output, peak.scratch
            ),
            amount: bytes,
            unit: "bytes",
            limit: limit.max,
            setting: limit.setting.clone(),
            hint: format!("; rechunk to at most {fit} elements per chunk"),
        })
    }
}

/// Bytes per element of what a layer's chunks hold.
fn element_bytes(layer: &Layer) -> u64 {
    let item = layer.meta.dtype.size() as u64;
    match layer.op.holds() {
        Holds::Partial { reduction, .. } => match reduction {
            Reduction::Mean => 16,
            Reduction::Var | Reduction::Std => 24,
            Reduction::ArgMin | Reduction::ArgMax => 16,
            _ => item,
        },
        _ => item,
    }
}

/// Elements of block `block` of `layer` (saturating).
fn block_elems(layer: &Layer, block: &[u32]) -> u64 {
    layer
        .meta
        .chunks
        .sizes()
        .iter()
        .zip(block)
        .fold(1u64, |acc, (axis, &b)| {
            acc.saturating_mul(axis.get(b as usize).copied().unwrap_or(0) as u64)
        })
}

/// What one task needs, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskBytes {
    /// Its distinct input chunks.
    pub inputs: u64,
    /// Its output chunk.
    pub output: u64,
    /// What its kernel allocates besides the output.
    pub scratch: u64,
}

impl TaskBytes {
    /// Inputs + output + scratch (saturating).
    pub fn total(&self) -> u64 {
        self.inputs
            .saturating_add(self.output)
            .saturating_add(self.scratch)
    }
}

/// Kernel scratch of a task of `layer` at `block`, whose distinct inputs are `inputs` bytes.
fn scratch_bytes(layer: &Layer, block: &[u32], inputs: u64) -> (u64, u64) {
    match &layer.op {
        Op::Blockwise(p) if p.reduce.is_some() => {
            let domain = p
                .domain
                .sizes()
                .iter()
                .zip(block)
                .fold(1u64, |acc, (axis, &b)| {
                    acc.saturating_mul(axis.get(b as usize).copied().unwrap_or(1) as u64)
                });
            (domain.saturating_mul(8), domain)
        }
        Op::Matmul(_) => (inputs, 0),
        _ => (0, 0),
    }
}

/// The bytes the task computing block `block` of the layer at `position` of `graph` needs, from
/// metadata alone (no expansion): what a worker reserves before running an assigned task. Inputs are
/// the blocks the op's dependency rule names, each distinct one once.
pub fn block_bytes(graph: &Graph, position: usize, block: &[u32]) -> TaskBytes {
    let layers = graph.layers();
    let layer = &layers[position];
    let output = block_elems(layer, block).saturating_mul(element_bytes(layer));
    let inputs: Vec<&Layer> = layer
        .inputs
        .iter()
        .filter_map(|id| graph.get(*id).map(|l| &**l))
        .collect();
    if inputs.len() != layer.inputs.len() {
        return TaskBytes {
            inputs: 0,
            output,
            scratch: 0,
        };
    }
    let metas: Vec<&ArrayMeta> = inputs.iter().map(|l| &l.meta).collect();
    let mut deps = Vec::new();
    layer.op.deps(layer, &metas, block, &mut deps);
    let mut bytes = 0u64;
    for (i, (pos, b)) in deps.iter().enumerate() {
        if deps[..i].iter().any(|(p, c)| p == pos && c == b) {
            continue;
        }
        let input = inputs[*pos];
        bytes = bytes.saturating_add(block_elems(input, b).saturating_mul(element_bytes(input)));
    }
    let (scratch, _) = scratch_bytes(layer, block, bytes);
    TaskBytes {
        inputs: bytes,
        output,
        scratch,
    }
}

/// Bytes of the chunk task `t` produces.
pub fn output_bytes(tg: &TaskGraph, t: u32) -> u64 {
    let task = &tg.tasks[t as usize];
    let layer = &tg.graph.layers()[task.layer as usize];
    block_elems(layer, &task.block).saturating_mul(element_bytes(layer))
}

/// The peak bytes of task `t` as its parts: (inputs, output, scratch, largest chunk's elements).
fn task_parts(tg: &TaskGraph, t: u32) -> (u64, u64, u64, u64) {
    let task = &tg.tasks[t as usize];
    let layers = tg.graph.layers();
    let layer = &layers[task.layer as usize];
    let out_elems = block_elems(layer, &task.block);
    let output = out_elems.saturating_mul(element_bytes(layer));
    let mut inputs = 0u64;
    let mut largest = out_elems;
    for (i, &d) in task.deps.iter().enumerate() {
        // A chunk read twice is held once.
        if task.deps[..i].contains(&d) {
            continue;
        }
        let dep = &tg.tasks[d as usize];
        let dl = &layers[dep.layer as usize];
        let elems = block_elems(dl, &dep.block);
        largest = largest.max(elems);
        inputs = inputs.saturating_add(elems.saturating_mul(element_bytes(dl)));
    }
    let (scratch, domain) = scratch_bytes(layer, &task.block, inputs);
    (inputs, output, scratch, largest.max(domain))
}

/// Peak bytes of task `t`: its distinct inputs, its output and its kernel's scratch.
pub fn task_bytes(tg: &TaskGraph, t: u32) -> u64 {
    let (i, o, s, _) = task_parts(tg, t);
    i.saturating_add(o).saturating_add(s)
}

/// Each layer's largest task. One pass over the tasks, a few additions each.
pub fn estimate(tg: &TaskGraph) -> Estimate {
    let layers = tg.graph.layers();
    let mut best: Vec<Option<(u64, u32)>> = vec![None; layers.len()];
    for t in 0..tg.tasks.len() as u32 {
        let l = tg.tasks[t as usize].layer as usize;
        let bytes = task_bytes(tg, t);
        if best[l].is_none_or(|(b, _)| bytes > b) {
            best[l] = Some((bytes, t));
        }
    }
    let layers = best
        .iter()
        .enumerate()
        .filter_map(|(position, b)| {
            let (_, t) = (*b)?;
            let task = &tg.tasks[t as usize];
            let layer = &layers[position];
            let (inputs, output, scratch, largest_chunk_elems) = task_parts(tg, t);
            Some(LayerPeak {
                layer: layer.id,
                position: position as u32,
                block: task.block.to_vec(),
                chunk: layer.meta.chunks.block_shape(&task.block),
                inputs,
                output,
                scratch,
                largest_chunk_elems,
            })
        })
        .collect();
    Estimate { layers }
}

/// Estimates `tg` and checks its largest task against `limit` (see [`Estimate::check`]).
///
/// ```
/// use tessera::graph::estimate;
/// use tessera::graph::expand::TaskGraph;
/// use tessera::graph::limits::Limit;
///
/// // Four 1000 × 1000 float64 chunks (8 MB each), rechunked into column bands of 4000 × 250.
/// let x = tessera::ones::<f64>(&[4000, 1000], [1000, 1000]).unwrap();
/// let y = x.rechunk([4000, 250]).unwrap();
/// let tg = TaskGraph::expand(y.graph()).unwrap();
/// let e = estimate::check(&tg, &Limit::new(1 << 30, "--memory-limit")).unwrap();
/// // A task writes an 8 MB band and reads the source chunks it overlaps.
/// let peak = e.peak().unwrap();
/// assert!(peak.output == 8_000_000 && peak.inputs >= 8_000_000);
///
/// let err = estimate::check(&tg, &Limit::new(20_000_000, "--memory-limit")).unwrap_err();
/// assert!(err.to_string().contains("rechunk to at most"));
/// ```
pub fn check(tg: &TaskGraph, limit: &Limit) -> Result<Estimate> {
    let e = estimate(tg);
    e.check(limit)?;
    Ok(e)
}
