//! Plan-time memory estimates: how many bytes one task of each layer needs at its peak — its input
//! chunks, its output chunk and its kernel's scratch — derived from metadata alone, before anything
//! runs. The scheduler refuses at submit a job with a task that fits no worker's `--memory-limit`, and
//! places tasks by these figures; the local executor checks the same figures against its own limit.
//!
//! The figures are read off the expanded [`TaskGraph`], so every op's own dependency rule
//! ([`Op::deps`], through expansion) decides which input chunks a task reads: a rechunk task counts
//! the regions of the source chunks it overlaps ([`Op::dep_regions`]), a combine its whole group of partials, a matmul block its
//! two operand blocks. Per task:
//!
//! - **inputs**: each distinct input chunk once (`x @ x.T` reads a diagonal block twice but holds it
//!   once), at its block's shape and its layer's element size;
//! - **output**: the task's own block. Partial reductions hold more than their dtype per element:
//!   count and mean for `mean` (16 bytes), and the sum of squared deviations for `var`/`std` (24), the
//!   value and its index for `argmin`/`argmax` (16);
//! - **scratch**: what the kernel allocates besides its output. A blockwise program works tile by
//!   tile, one tile buffer per value (so a fused `random → mean` needs a few KiB whatever its chunk);
//!   a block product packs panels of both operands (counted as a copy of both, the most gemm packs).
//!   Other kernels write straight into their output.
//!
//! The sums saturate, so any graph, however absurd its chunks, is estimated without overflow.

use super::expand::TaskGraph;
use super::limits::Limit;
use super::{ArrayMeta, Graph, Layer, LayerId, region_elems};
use crate::error::{Error, Result};
use crate::kernels::TILE;
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
    /// The shape of the largest chunk that task touches, input or output: what to rechunk.
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
                "a task of layer {} (chunks of shape {:?}; inputs {} + output {} + scratch {} bytes) needs",
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
fn scratch_bytes(layer: &Layer, block: &[u32], inputs: u64) -> u64 {
    match &layer.op {
        // One tile buffer per value of the program, at most 8 bytes an element; a tile is at most
        // the block it evaluates.
        Op::Blockwise(p) => {
            let domain = p
                .domain
                .sizes()
                .iter()
                .zip(block)
                .fold(1u64, |acc, (axis, &b)| {
                    acc.saturating_mul(axis.get(b as usize).copied().unwrap_or(1) as u64)
                });
            let values = (p.leaves.len() + p.instrs.len()) as u64;
            values
                .saturating_mul(domain.min(TILE as u64))
                .saturating_mul(8)
        }
        Op::Matmul(_) => inputs,
        // faer's working copy of the matrix and the factor it builds beside it.
        Op::Linalg(_) => inputs.saturating_mul(2),
        // A real block cast to complex128 (twice a float64 block's bytes) beside the output.
        Op::Fft(_) => inputs.saturating_mul(2),
        // The values' blocks along the axis joined into one before the gather.
        Op::TakeAlong(_) => inputs,
        _ => 0,
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
    let regions = layer.op.dep_regions(layer, &metas, block);
    let mut bytes = 0u64;
    for (i, (pos, b)) in deps.iter().enumerate() {
        if deps[..i].iter().any(|(p, c)| p == pos && c == b) {
            continue;
        }
        let input = inputs[*pos];
        let elems = match regions.as_ref().and_then(|r| r.get(i)) {
            Some(r) => region_elems(r) as u64,
            None => block_elems(input, b),
        };
        bytes = bytes.saturating_add(elems.saturating_mul(element_bytes(input)));
    }
    let scratch = scratch_bytes(layer, block, bytes);
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

/// The peak bytes of task `t` as its parts.
struct Parts {
    inputs: u64,
    output: u64,
    scratch: u64,
    /// Elements and shape of the largest chunk the task touches.
    largest: u64,
    largest_shape: Vec<usize>,
}

fn task_parts(tg: &TaskGraph, t: u32, with_shape: bool) -> Parts {
    let task = &tg.tasks[t as usize];
    let layers = tg.graph.layers();
    let layer = &layers[task.layer as usize];
    let out_elems = block_elems(layer, &task.block);
    let output = out_elems.saturating_mul(element_bytes(layer));
    let mut inputs = 0u64;
    let mut largest = (out_elems, &layer.meta.chunks, &task.block);
    // A task that reads only regions of its inputs (a rechunk) needs only those.
    let regions = layer.op.reads_regions().then(|| {
        let metas: Vec<&ArrayMeta> = layer
            .inputs
            .iter()
            .filter_map(|i| tg.graph.get(*i).map(|l| &l.meta))
            .collect();
        layer.op.dep_regions(layer, &metas, &task.block)
    });
    for (i, &d) in task.deps.iter().enumerate() {
        // A chunk read twice is held once.
        if task.deps[..i].contains(&d) {
            continue;
        }
        let dep = &tg.tasks[d as usize];
        let dl = &layers[dep.layer as usize];
        let elems = block_elems(dl, &dep.block);
        // On a tie the input is named: that is the chunk to rechunk.
        if elems >= largest.0 {
            largest = (elems, &dl.meta.chunks, &dep.block);
        }
        let read = match regions.as_ref().and_then(|r| r.as_ref()?.get(i)) {
            Some(r) => region_elems(r) as u64,
            None => elems,
        };
        inputs = inputs.saturating_add(read.saturating_mul(element_bytes(dl)));
    }
    let scratch = scratch_bytes(layer, &task.block, inputs);
    Parts {
        inputs,
        output,
        scratch,
        largest: largest.0,
        largest_shape: if with_shape {
            largest.1.block_shape(largest.2)
        } else {
            Vec::new()
        },
    }
}

/// Peak bytes of task `t`: its distinct inputs, its output and its kernel's scratch.
pub fn task_bytes(tg: &TaskGraph, t: u32) -> u64 {
    let p = task_parts(tg, t, false);
    p.inputs.saturating_add(p.output).saturating_add(p.scratch)
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
            let p = task_parts(tg, t, true);
            Some(LayerPeak {
                layer: layer.id,
                position: position as u32,
                block: task.block.to_vec(),
                chunk: p.largest_shape,
                inputs: p.inputs,
                output: p.output,
                scratch: p.scratch,
                largest_chunk_elems: p.largest,
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
/// // A task writes an 8 MB band and reads the regions of the source chunks it overlaps.
/// let peak = e.peak().unwrap();
/// assert!(peak.output == 8_000_000 && peak.inputs == 8_000_000);
/// assert_eq!(peak.chunk.iter().product::<usize>(), 1_000_000);
///
/// let err = estimate::check(&tg, &Limit::new(10_000_000, "--memory-limit")).unwrap_err();
/// assert!(err.to_string().contains("rechunk to at most"));
/// ```
pub fn check(tg: &TaskGraph, limit: &Limit) -> Result<Estimate> {
    let e = estimate(tg);
    e.check(limit)?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn f64_array(shape: &[usize], chunks: &[usize]) -> crate::Array {
        let data = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(shape), |ix| ix[0] as f64);
        crate::from_array(data, chunks.to_vec()).unwrap()
    }

    fn expand(a: &crate::Array) -> TaskGraph {
        TaskGraph::expand(a.graph()).unwrap()
    }

    /// The tasks of layer `name` in `tg`.
    fn tasks_of<'a>(tg: &'a TaskGraph, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        (0..tg.tasks.len() as u32).filter(move |&t| {
            tg.graph.layers()[tg.tasks[t as usize].layer as usize]
                .id
                .name
                == name
        })
    }

    #[test]
    fn a_transpose_task_reads_one_chunk_and_writes_one() {
        // 6 × 9 float64 in 4 × 5 chunks: the largest chunk is 4 × 5 = 160 bytes.
        let x = f64_array(&[6, 9], &[4, 5]);
        let tg = expand(&x.t());
        let e = estimate(&tg);
        let peak = e.peak().unwrap();
        assert_eq!(peak.layer.name, "transpose");
        assert_eq!((peak.inputs, peak.output, peak.scratch), (160, 160, 0));
        assert_eq!(peak.bytes(), 320);
        // The edge blocks are smaller: (2 × 4) read, (4 × 2) written.
        let small: Vec<u64> = tasks_of(&tg, "transpose")
            .map(|t| task_bytes(&tg, t))
            .collect();
        assert_eq!(small.iter().min(), Some(&(2 * 4 * 8 * 2)));
    }

    #[test]
    fn a_block_product_counts_both_operands_and_their_packed_copies() {
        let a = f64_array(&[8, 6], &[4, 3]);
        let b = f64_array(&[6, 10], &[3, 5]);
        let tg = expand(&a.matmul(&b).unwrap());
        let e = estimate(&tg);
        let mm = e
            .layers
            .iter()
            .find(|l| l.layer.name == "matmul")
            .expect("a matmul layer");
        // a block 4 × 3, b block 3 × 5, product 4 × 5; scratch: a copy of both operands.
        let operands = (12 + 15) * 8;
        assert_eq!(mm.inputs, operands);
        assert_eq!(mm.output, 20 * 8);
        assert_eq!(mm.scratch, operands);
    }

    #[test]
    fn partials_of_var_hold_three_floats_per_element() {
        let x = f64_array(&[40, 6], &[10, 6]);
        let v = x.var_with(&crate::ReduceOptions::axis(0)).unwrap();
        let tg = TaskGraph::expand(crate::optimize::optimize(v.graph())).unwrap();
        // Whatever the fusion, a task producing var partials of 6 columns writes 6 × 24 bytes.
        let partial = (0..tg.tasks.len() as u32).find(|&t| {
            let layer = &tg.graph.layers()[tg.tasks[t as usize].layer as usize];
            matches!(layer.op.holds(), Holds::Partial { .. })
        });
        let t = partial.expect("a task producing partials");
        assert_eq!(output_bytes(&tg, t), 6 * 24);
    }

    #[test]
    fn metadata_alone_gives_the_same_bytes_as_the_expanded_graph() {
        let x = f64_array(&[30, 20], &[7, 6]);
        let y = f64_array(&[20, 30], &[6, 8]);
        let arrays = [
            x.t(),
            x.rechunk([10, 10]).unwrap(),
            x.matmul(&y).unwrap(),
            (&x + &x),
            x.sum_axis(0).unwrap(),
            crate::concatenate(&[&x, &x], 1).unwrap(),
        ];
        for a in &arrays {
            let tg = TaskGraph::expand(crate::optimize::optimize(a.graph())).unwrap();
            for t in 0..tg.tasks.len() as u32 {
                let task = &tg.tasks[t as usize];
                let from_meta = block_bytes(&tg.graph, task.layer as usize, &task.block);
                assert_eq!(
                    from_meta.total(),
                    task_bytes(&tg, t),
                    "task {t} of {}",
                    a.id()
                );
            }
        }
    }

    #[test]
    fn an_80_gb_chunk_is_refused_naming_the_layer_shape_bytes_limit_and_hint() {
        // A block product must hold its operand chunks: 80 GB each.
        let x = crate::zeros::<f64>(&[100_000, 100_000], [100_000, 100_000]).unwrap();
        let p = x.matmul(&x).unwrap().sum().unwrap();
        let tg = TaskGraph::expand(crate::optimize::optimize(p.graph())).unwrap();
        let limit = Limit::new(512 << 20, "the largest worker's --memory-limit");
        let e = check(&tg, &limit).unwrap_err();
        let Error::LimitExceeded {
            amount,
            limit,
            unit,
            ..
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!((*limit, *unit), (512 << 20, "bytes"));
        assert!(*amount >= 80_000_000_000, "{e}");
        let text = e.to_string();
        for part in [
            "[100000, 100000]",
            "80000000",
            "536870912",
            "--memory-limit",
            "rechunk to at most",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
        assert_eq!(DType::F64.size(), 8);
    }

    #[test]
    fn a_graph_within_the_limit_passes() {
        let x = f64_array(&[100, 100], &[10, 10]);
        let tg = expand(&x.t());
        let e = check(&tg, &Limit::new(1600, "--memory-limit")).unwrap();
        assert_eq!(e.peak().unwrap().bytes(), 1600);
        assert!(check(&tg, &Limit::new(1599, "--memory-limit")).is_err());
    }
}
