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

/// "an array", "a moments": for messages.
fn with_article(kind: &str) -> String {
    let an = kind.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {kind}", if an { "an" } else { "a" })
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
    // An op that reads regions accepts each input whole or as just its region.
    let regions = layer.op.dep_regions(layer, input_metas, block);
    let partial = match &layer.op {
        Op::ReduceCombine(c) => Some(c.reduction),
        _ => None,
    };
    for (pos, ((input, b), value)) in wanted.iter().zip(deps).enumerate() {
        let mismatch = |expected: String, got: String| Error::InputMismatch {
            key: key(),
            input: pos,
            chunk: match layer.inputs.get(*input) {
                Some(&id) => ChunkKey {
                    layer: id,
                    block: b.clone(),
                }
                .to_string(),
                None => format!("of input {input}, block {b:?}"),
            },
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
                format!("{} chunk", with_article(kind)),
                format!("{} chunk", with_article(value.kind())),
            ));
        }
        if !partial_consistent(value) {
            return Err(mismatch(
                format!("a {kind} partial whose arrays share one shape"),
                "arrays of different shapes".into(),
            ));
        }
        let region: Option<Vec<usize>> = regions
            .as_ref()
            .and_then(|r| r.get(pos))
            .map(|r| r.iter().map(|r| r.len()).collect());
        if value_shape(value) != shape.as_slice() && region.as_deref() != Some(value_shape(value)) {
            return Err(mismatch(
                match &region {
                    Some(r) => format!("shape {shape:?} or its region's {r:?}"),
                    None => format!("shape {shape:?}"),
                },
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::{ArrayD, IxDyn};

    use super::check_inputs;
    use crate::data::{ArrayData, ChunkValue};
    use crate::error::Error;
    use crate::graph::ArrayMeta;
    use crate::graph::expand::TaskGraph;
    use crate::ops::Op;
    use crate::optimize::optimize;
    use crate::{Array, concatenate, default_rng, from_array, s};

    /// Every task's inputs, computed serially: (task graph, per task its dep values).
    fn run_all(a: &Array) -> (TaskGraph, Vec<Vec<Arc<ChunkValue>>>) {
        let tg = TaskGraph::expand(optimize(a.graph())).unwrap();
        let layers = tg.graph.layers();
        let mut values: Vec<Arc<ChunkValue>> = Vec::new();
        let mut inputs = Vec::new();
        for t in &tg.tasks {
            let layer = &layers[t.layer as usize];
            let metas = metas(&tg, t.layer);
            let deps: Vec<_> = t.deps.iter().map(|&d| values[d as usize].clone()).collect();
            values.push(layer.op.run(layer, &metas, &t.block, &deps).unwrap());
            inputs.push(deps);
        }
        (tg, inputs)
    }

    fn metas(tg: &TaskGraph, layer: u32) -> Vec<&ArrayMeta> {
        tg.graph.layers()[layer as usize]
            .inputs
            .iter()
            .map(|i| &tg.graph.get(*i).unwrap().meta)
            .collect()
    }

    fn check(tg: &TaskGraph, task: usize, deps: &[Arc<ChunkValue>]) -> crate::Result<()> {
        let t = &tg.tasks[task];
        let layer = &tg.graph.layers()[t.layer as usize];
        check_inputs(layer, &metas(tg, t.layer), &t.block, deps)
    }

    /// The first task of a layer whose op satisfies `is`.
    fn task_of(tg: &TaskGraph, is: impl Fn(&Op) -> bool) -> usize {
        tg.tasks
            .iter()
            .position(|t| is(&tg.graph.layers()[t.layer as usize].op) && !t.deps.is_empty())
            .expect("a task of that op")
    }

    fn x() -> Array {
        default_rng(5).random(&[13, 11], [4, 5]).unwrap()
    }

    #[test]
    fn correct_inputs_pass_for_every_op() {
        let x = x();
        let y = from_array(ArrayD::<f64>::ones(IxDyn(&[13, 11])), [6, 6]).unwrap();
        let cases = [
            (&x + &y),
            x.sum_axis(0).unwrap(),
            x.var_axis(1, 0.0).unwrap(),
            x.argmax_axis(0).unwrap(),
            y.slice(s![1..12;2, ..;-1]).unwrap(),
            y.matmul(&y.t()).unwrap(),
            x.matmul(&y.t()).unwrap(),
            concatenate(&[&y, &y], 1).unwrap(),
            y.rechunk([5, 4]).unwrap(),
        ];
        for a in &cases {
            let (tg, inputs) = run_all(a);
            for (i, deps) in inputs.iter().enumerate() {
                check(&tg, i, deps).unwrap_or_else(|e| panic!("task {}: {e}", tg.key(i as u32)));
            }
        }
    }

    /// A rechunk task takes each source chunk whole or as just its region, gives the same chunk
    /// either way, and refuses any other shape naming both it accepts.
    #[test]
    fn a_rechunk_takes_its_sources_whole_or_as_their_regions() {
        let y = from_array(
            ArrayD::from_shape_fn(IxDyn(&[13, 11]), |i| (i[0] * 11 + i[1]) as f64),
            [6, 11],
        )
        .unwrap();
        let (tg, inputs) = run_all(&y.rechunk([13, 4]).unwrap());
        let layers = tg.graph.layers();
        let mut seen = 0;
        for (task, whole) in inputs.iter().enumerate() {
            let t = &tg.tasks[task];
            let layer = &layers[t.layer as usize];
            let Some(regions) = layer.op.dep_regions(layer, &metas(&tg, t.layer), &t.block) else {
                continue;
            };
            let cut: Vec<Arc<ChunkValue>> = whole
                .iter()
                .zip(&regions)
                .map(|(d, r)| Arc::new(ChunkValue::Array(d.as_array().unwrap().region(r).unwrap())))
                .collect();
            check(&tg, task, &cut).unwrap();
            let run = |deps: &[Arc<ChunkValue>]| {
                layer
                    .op
                    .run(layer, &metas(&tg, t.layer), &t.block, deps)
                    .unwrap()
            };
            assert_eq!(run(&cut), run(whole), "task {task}");
            let mut wrong = cut.clone();
            wrong[0] = Arc::new(ChunkValue::Array(ArrayData::F64(ArrayD::zeros(IxDyn(&[
                2, 2,
            ])))));
            let msg = check(&tg, task, &wrong).unwrap_err().to_string();
            assert!(msg.contains("or its region's"), "{msg}");
            seen += 1;
        }
        assert_eq!(seen, 3, "three target chunks");
    }

    #[test]
    fn a_wrong_dtype_is_rejected_with_the_key() {
        let y = from_array(ArrayD::<f64>::ones(IxDyn(&[8, 8])), [4, 4]).unwrap();
        let (tg, inputs) = run_all(&y.slice(s![1..7, ..]).unwrap());
        let task = task_of(&tg, |op| matches!(op, Op::Slice(_)));
        let mut deps = inputs[task].clone();
        let cast = deps[0].as_array().unwrap().cast(crate::DType::F32);
        deps[0] = Arc::new(ChunkValue::Array(cast));
        let err = check(&tg, task, &deps).unwrap_err();
        assert!(matches!(err, Error::InputMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&tg.key(task as u32).to_string()), "{msg}");
        assert!(
            msg.contains("expected dtype float64, got dtype float32"),
            "{msg}"
        );
    }

    #[test]
    fn a_wrong_shape_is_rejected_with_the_key() {
        let y = from_array(ArrayD::<f64>::ones(IxDyn(&[8, 8])), [4, 4]).unwrap();
        let (tg, inputs) = run_all(&y.matmul(&y).unwrap());
        let task = task_of(&tg, |op| matches!(op, Op::Matmul(_)));
        let mut deps = inputs[task].clone();
        deps[1] = Arc::new(ChunkValue::Array(ArrayData::F64(ArrayD::zeros(IxDyn(&[
            4, 3,
        ])))));
        let msg = check(&tg, task, &deps).unwrap_err().to_string();
        assert!(msg.contains(&tg.key(task as u32).to_string()), "{msg}");
        assert!(msg.contains("input 1"), "{msg}");
        assert!(
            msg.contains("expected shape [4, 4], got shape [4, 3]"),
            "{msg}"
        );
    }

    #[test]
    fn a_partial_where_an_array_belongs_and_the_reverse_are_rejected() {
        let x = x();
        let (tg, inputs) = run_all(&x.mean_axis(0).unwrap());
        let combine = task_of(&tg, |op| matches!(op, Op::ReduceCombine(_)));
        let mut deps = inputs[combine].clone();
        let shape = match &*deps[0] {
            ChunkValue::Moments(m) => m.count.shape().to_vec(),
            other => panic!("mean partials are moments, not {}", other.kind()),
        };
        deps[0] = Arc::new(ChunkValue::Array(ArrayData::F64(ArrayD::zeros(IxDyn(
            &shape,
        )))));
        let msg = check(&tg, combine, &deps).unwrap_err().to_string();
        assert!(msg.contains(&tg.key(combine as u32).to_string()), "{msg}");
        assert!(
            msg.contains("expected a moments chunk, got an array chunk"),
            "{msg}"
        );

        // A moments partial fed to a slice task (of stored data: a slice of a generated source is
        // generated in place, with no slice task).
        let stored = from_array(ArrayD::<f64>::ones(IxDyn(&[13, 11])), [4, 5]).unwrap();
        let y = (&stored + 1.0).slice(s![..5, ..]).unwrap();
        let (tg2, inputs2) = run_all(&y);
        let task = task_of(&tg2, |op| matches!(op, Op::Slice(_)));
        let mut deps2 = inputs2[task].clone();
        deps2[0] = inputs[combine][0].clone();
        let msg = check(&tg2, task, &deps2).unwrap_err().to_string();
        assert!(
            msg.contains("expected an array chunk, got a moments chunk"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_input_is_rejected() {
        let x = x();
        let (tg, inputs) = run_all(&x.sum_axis(0).unwrap());
        let combine = task_of(&tg, |op| matches!(op, Op::ReduceCombine(_)));
        let deps = &inputs[combine][1..];
        let msg = check(&tg, combine, deps).unwrap_err().to_string();
        assert!(msg.contains("were given"), "{msg}");
    }
}
