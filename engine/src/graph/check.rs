//! Checks of a task's input chunks where they arrive, before the kernel reads them. A kernel trusts its
//! inputs (it indexes them by the shapes the graph declares), so a chunk of the wrong dtype or shape —
//! from a peer running another build, a corrupted transfer or a bug in a kernel upstream — must be
//! caught here, with the task's key and the input it is, rather than as a panic or as wrong numbers.
//!
//! Which input block each dep is comes from the op's own `deps`, the same list expansion used. Only
//! [`Op::ReduceCombine`] reads reduction partials; every other op reads array chunks of the dtype and
//! block shape its input layer declares. For partials the kind (moments, argmin/argmax state or
//! array) and the shape are checked; their dtype is not, because a partial's accumulator dtype may
//! differ from the reduction's result dtype (a float32 sum accumulates in float64).

use std::sync::Arc;

use super::{ArrayMeta, Block, ChunkKey, Layer};
use crate::data::ChunkValue;
use crate::error::{Error, Result};
use crate::ops::{Op, Reduction};

/// What a partial of `reduction` is: the [`ChunkValue::kind`] it must have.
fn partial_kind(reduction: Reduction) -> &'static str {
    match reduction {
        Reduction::Mean | Reduction::Var | Reduction::Std => "moments",
        Reduction::ArgMin | Reduction::ArgMax => "argmin/argmax",
        _ => "array",
    }
}

/// The shape of a value's arrays (all arrays of a partial share one shape).
fn value_shape(v: &ChunkValue) -> &[usize] {
    match v {
        ChunkValue::Array(a) => a.shape(),
        ChunkValue::Moments(m) => m.count.shape(),
        ChunkValue::Arg(a) => a.index.shape(),
    }
}

/// Whether every array inside a partial has the same shape, so that checking one checks all.
fn partial_consistent(v: &ChunkValue) -> bool {
    match v {
        ChunkValue::Array(_) => true,
        ChunkValue::Moments(m) => {
            m.mean.shape() == m.count.shape()
                && m.m2.as_ref().is_none_or(|x| x.shape() == m.count.shape())
        }
        ChunkValue::Arg(a) => a.value.shape() == a.index.shape(),
    }
}

/// The shape of chunk `block` in `meta`'s grid, or `None` if the block is outside it.
fn block_shape(meta: &ArrayMeta, block: &[u32]) -> Option<Vec<usize>> {
    let sizes = meta.chunks.sizes();
    if block.len() != sizes.len() {
        return None;
    }
    block
        .iter()
        .zip(sizes)
        .map(|(&b, axis)| axis.get(b as usize).copied())
        .collect()
}

/// Checks that `deps`, the input chunks of task `block` of `layer`, are what the layer's inputs
/// declare for the blocks the op reads: their number, kind (array or reduction partial), dtype and
/// shape. `input_metas` are the metadata of `layer.inputs`, in order. The error names the task key,
/// the input's position and chunk, and what was expected and found.
pub fn check_inputs(
    layer: &Layer,
    input_metas: &[&ArrayMeta],
    block: &[u32],
    deps: &[Arc<ChunkValue>],
) -> Result<()> {
    let key = || {
        ChunkKey {
            layer: layer.id,
            block: block.iter().copied().collect(),
        }
        .to_string()
    };
    // `deps` below indexes the grid by `block`; a block outside it is the caller's error, not a panic.
    if block_shape(&layer.meta, block).is_none() {
        return Err(Error::InvalidGraph {
            reason: format!(
                "task {} is outside its layer's grid of {:?} blocks",
                key(),
                layer.meta.chunks.numblocks()
            ),
        });
    }
    if input_metas.len() != layer.inputs.len() {
        return Err(Error::InvalidGraph {
            reason: format!(
                "task {}: {} input metadata given for {} inputs",
                key(),
                input_metas.len(),
                layer.inputs.len()
            ),
        });
    }
    let mut wanted: Vec<(usize, Block)> = Vec::new();
    layer.op.deps(layer, input_metas, block, &mut wanted);
    if wanted.len() != deps.len() {
        return Err(Error::InvalidGraph {
            reason: format!(
                "task {} reads {} input chunks, but {} were given",
                key(),
                wanted.len(),
                deps.len()
            ),
        });
    }
    let partial = match &layer.op {
        Op::ReduceCombine(c) => Some(c.reduction),
        _ => None,
    };
    for (pos, ((input, b), value)) in wanted.iter().zip(deps).enumerate() {
        let mismatch = |expected: String, got: String| Error::InputMismatch {
            key: key(),
            input: pos,
            layer: layer
                .inputs
                .get(*input)
                .map_or_else(|| format!("input {input}"), |id| id.to_string()),
            block: b.to_vec(),
            expected,
            got,
        };
        let Some(meta) = input_metas.get(*input) else {
            return Err(mismatch(
                format!("one of {} inputs", input_metas.len()),
                format!("a chunk of input {input}"),
            ));
        };
        let Some(shape) = block_shape(meta, b) else {
            return Err(mismatch(
                format!(
                    "a block inside the grid of {:?} blocks",
                    meta.chunks.numblocks()
                ),
                "a block outside it".into(),
            ));
        };
        let kind = partial.map_or("array", partial_kind);
        if value.kind() != kind {
            return Err(mismatch(
                format!("a {kind} chunk"),
                format!("a {} chunk", value.kind()),
            ));
        }
        if !partial_consistent(value) {
            return Err(mismatch(
                format!("a {kind} partial whose arrays share one shape"),
                "arrays of different shapes".into(),
            ));
        }
        if value_shape(value) != shape.as_slice() {
            return Err(mismatch(
                format!("shape {shape:?}"),
                format!("shape {:?}", value_shape(value)),
            ));
        }
        if partial.is_none()
            && let ChunkValue::Array(a) = &**value
            && a.dtype() != meta.dtype
        {
            return Err(mismatch(
                format!("dtype {}", meta.dtype),
                format!("dtype {}", a.dtype()),
            ));
        }
    }
    Ok(())
}
