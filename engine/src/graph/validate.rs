//! Structural validation of a [`Graph`] that came from outside the process (a client's submission, a
//! scheduler's job graph), before anything expands or runs it. The graph builders in `array` only make
//! consistent graphs, so the kernels index, slice and match on dtypes without checking; a graph decoded
//! from the network has no such guarantee. [`validate`] checks every assumption the expansion and the
//! kernels make, so that a malformed graph is refused at submission with an error naming the layer and
//! what does not fit, and never reaches a kernel as a panic.
//!
//! What is checked: the layer order (every input earlier in the list, so no cycle and no missing
//! dependency), unique ids, outputs present, well-formed chunk grids, and per op, that its parameters
//! fit its inputs and its chunk grid and dtype are the ones the op's metadata rule
//! ([`Op::output_meta`], the rule the array builders use) derives from its inputs' metadata.

use std::collections::HashMap;

use super::{Graph, Layer, LayerId};
use crate::error::{Error, Result};
use crate::ops::{Derived, Holds, InputMeta, Op};

/// Checks `graph` as described in the module docs. Errors are [`Error::InvalidLayer`] naming the
/// layer, or [`Error::InvalidGraph`] for an output that is not in the graph.
pub fn validate(graph: &Graph) -> Result<()> {
    let layers = graph.layers();
    let mut seen: HashMap<LayerId, usize> = HashMap::with_capacity(layers.len());
    let mut holds: Vec<Holds> = Vec::with_capacity(layers.len());
    for (pos, layer) in layers.iter().enumerate() {
        let bad = |reason: String| Error::InvalidLayer {
            layer: layer.id.to_string(),
            reason,
        };
        if let Some(first) = seen.get(&layer.id) {
            return Err(bad(format!(
                "appears twice in the graph, at positions {first} and {pos}"
            )));
        }
        let mut inputs = Vec::with_capacity(layer.inputs.len());
        for id in &layer.inputs {
            let Some(&p) = seen.get(id) else {
                return Err(bad(if graph.position(*id).is_some() {
                    format!(
                        "reads {id}, which comes after it in the graph (a forward reference or a cycle)"
                    )
                } else {
                    format!("reads {id}, which is not in the graph")
                }));
            };
            if let (Holds::Partial { .. }, false) =
                (&holds[p], matches!(layer.op, Op::ReduceCombine(_)))
            {
                return Err(bad(format!(
                    "reads {id}, which holds partial reductions that only a combine step can read"
                )));
            }
            inputs.push(InputMeta {
                id: *id,
                meta: &layers[p].meta,
                holds: holds[p].clone(),
            });
        }
        layer
            .meta
            .chunks
            .well_formed()
            .map_err(|r| bad(format!("chunks {}: {r}", layer.meta.chunks)))?;
        // The op's own metadata rule, the one the builders used, given the declared meta for the
        // parts the op leaves free.
        let derived = layer
            .op
            .derive_meta(&inputs, Some(&layer.meta))
            .map_err(bad)?;
        expect_meta(layer, &derived).map_err(bad)?;
        seen.insert(layer.id, pos);
        holds.push(layer.op.holds());
    }
    for out in graph.outputs() {
        match seen.get(out) {
            None => {
                return Err(Error::InvalidGraph {
                    reason: format!("output {out} is not in the graph"),
                });
            }
            Some(&p) if matches!(holds[p], Holds::Partial { .. }) => {
                return Err(Error::InvalidLayer {
                    layer: out.to_string(),
                    reason: "is an output, but holds partial reductions, not array chunks".into(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The declared meta must be the derived one: expected against declared, chunks first.
fn expect_meta(layer: &Layer, derived: &Derived) -> std::result::Result<(), String> {
    let (want, have) = (&derived.meta, &layer.meta);
    if want.chunks != have.chunks {
        return Err(format!(
            "chunks are {}, but {} gives {}",
            have.chunks, derived.chunks_rule, want.chunks
        ));
    }
    if want.dtype != have.dtype {
        return Err(format!(
            "dtype is {}, but {} gives {}",
            have.dtype, derived.dtype_rule, want.dtype
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::{ArrayD, IxDyn, s};

    use super::*;
    use crate::array::Array;
    use crate::graph::ArrayMeta;
    use crate::meta::{Chunks, DType, Scalar};
    use crate::ops::{ElemFunc, LeafKind, MatmulOp, Program, Reduction};
    use crate::optimize::optimize;
    use crate::{
        ReduceOptions, arange, concatenate, default_rng, from_array, from_npy, full, linspace,
        stack, where_,
    };

    fn x() -> Array {
        default_rng(11).random(&[12, 12], [5, 4]).unwrap()
    }

    /// Arrays built through the public API, covering every op; their graphs must all validate.
    fn examples(dir: &std::path::Path) -> Vec<Array> {
        let x = x();
        let ints = arange(0i64, 144, 1, [50])
            .unwrap()
            .reshape(&[12, 12])
            .unwrap();
        let path = dir.join("x.npy");
        x.to_npy(&path).unwrap();
        let f = from_npy(&path, [6, 6]).unwrap();
        let data = ArrayD::from_shape_fn(IxDyn(&[4, 6]), |i| (i[0] * 6 + i[1]) as f32);
        let small = from_array(data, [3, 4]).unwrap();
        let empty = full(&[0, 4], 1.5, [3, 2]).unwrap();
        let y = &x + &x.t();
        vec![
            y.mean_axis(0).unwrap(),
            (&f * 2.0f64).sum().unwrap(),
            small.slice(s![1..4;2, ..;-3]).unwrap(),
            small.slice(s![-1, 2..2]).unwrap(),
            small
                .astype(DType::F64)
                .unwrap()
                .matmul(&x.slice(s![..6, ..]).unwrap())
                .unwrap(),
            ints.matmul(&ints).unwrap(),
            x.reshape(&[3, -1, 4])
                .unwrap()
                .permute_axes(&[2, 0, 1])
                .unwrap(),
            x.slice(s![..1, ..1]).unwrap().reshape(&[]).unwrap(),
            concatenate(&[&x, &f.slice(s![..5, ..]).unwrap(), &ints], 0).unwrap(),
            stack(&[&x, &f, &ints], 1).unwrap(),
            x.rechunk([12, 3]).unwrap().persist().unwrap().t(),
            where_(x.gt(0.5).unwrap(), &ints, -&ints).unwrap(),
            x.clip(0.2, 0.8)
                .unwrap()
                .sqrt()
                .unwrap()
                .isnan()
                .unwrap()
                .any()
                .unwrap(),
            ints.lt(70).unwrap().all_axis(1).unwrap(),
            ints.gt(3).unwrap().sum_axis(0).unwrap(),
            (&ints & 6i64)
                .prod_with(&ReduceOptions::axes([0]).keepdims(true))
                .unwrap(),
            (&ints / 3i64).powf(0.5).unwrap().max_axis(1).unwrap(),
            x.argmin().unwrap(),
            x.argmax_axis(1).unwrap(),
            x.var_axis(1, 1.0).unwrap(),
            x.std_with(&ReduceOptions::all().split_every(2)).unwrap(),
            default_rng(1)
                .standard_normal_dtype(&[40], [3], DType::F32)
                .unwrap()
                .min()
                .unwrap(),
            (&linspace(0.0, 1.0, 12, false, [5]).unwrap() + &x),
            empty.mean_axis(0).unwrap(),
            empty.sum().unwrap(),
            (!&ints.eq(4).unwrap()),
            x.map_blocks(|b: ndarray::ArrayViewD<f64>| b.mapv(|v| v as i64))
                .unwrap(),
        ]
    }

    #[test]
    fn graphs_built_through_the_api_validate() {
        let dir = tempfile::tempdir().unwrap();
        for a in examples(dir.path()) {
            validate(&a.graph()).unwrap_or_else(|e| panic!("{a:?}: {e}"));
            validate(&optimize(a.graph())).unwrap_or_else(|e| panic!("{a:?} optimized: {e}"));
        }
    }

    /// The builders and the validator share one rule per op: for every layer built through the API,
    /// the rule gives back the layer's meta, needing the caller's choice only for the ops that
    /// leave part of their meta free, and refusing to guess it for them.
    #[test]
    fn every_layer_is_what_its_ops_rule_derives() {
        let dir = tempfile::tempdir().unwrap();
        let mut free = 0;
        for a in examples(dir.path()) {
            let g = optimize(a.graph());
            for layer in g.layers() {
                let metas: Vec<&ArrayMeta> = layer
                    .inputs
                    .iter()
                    .map(|id| &g.layers()[g.position(*id).unwrap()].meta)
                    .collect();
                let inputs: Vec<InputMeta<'_>> = layer
                    .inputs
                    .iter()
                    .zip(&metas)
                    .map(|(id, m)| InputMeta {
                        id: *id,
                        meta: m,
                        holds: g.layers()[g.position(*id).unwrap()].op.holds(),
                    })
                    .collect();
                let with = layer.op.output_meta(&inputs, Some(&layer.meta)).unwrap();
                assert_eq!(with, layer.meta, "{}", layer.id);
                let leaves_free = matches!(
                    layer.op,
                    Op::FromArray(_)
                        | Op::Npy(_)
                        | Op::Materialized(_)
                        | Op::Rechunk
                        | Op::Reshape
                        | Op::MapBlocks(_)
                );
                match layer.op.output_meta(&inputs, None) {
                    Ok(m) => {
                        assert!(!leaves_free, "{} derived without a choice", layer.id);
                        assert_eq!(m, layer.meta, "{}", layer.id);
                    }
                    Err(Error::InvalidLayer { layer: l, reason }) => {
                        assert!(leaves_free, "{}: {reason}", layer.id);
                        assert!(l.contains(layer.op.name()), "{l}");
                        assert!(reason.contains("from its caller"), "{reason}");
                        free += 1;
                    }
                    Err(e) => panic!("{}: {e:?}", layer.id),
                }
            }
        }
        assert!(
            free >= 5,
            "the examples cover the ops with a free meta ({free})"
        );
    }

    #[test]
    fn matmul_inputs_of_two_dtypes_are_rejected() {
        let x = x();
        let m = x.matmul(&x).unwrap();
        let g = m.graph();
        let mm = find(&g, |l| matches!(l.op, Op::Matmul(_)));
        let a = g.layers()[mm].inputs[0];
        // Re-point the second operand at an int64 layer of the same grid.
        let ints = x.astype(DType::I64).unwrap();
        let ig = ints.graph();
        let bad = edit(&g, |ls| {
            let cast = copy(ig.layers().last().unwrap());
            ls[mm].inputs = vec![a, cast.id];
            ls.insert(mm, cast);
        });
        rejects(&bad, g.layers()[mm].id, "one dtype");
    }

    // -----------------------------------------------------------------------------------------
    // corruptions

    fn copy(l: &Layer) -> Layer {
        Layer {
            id: l.id,
            op: l.op.clone(),
            inputs: l.inputs.clone(),
            meta: l.meta.clone(),
        }
    }

    /// The graph with its layers (copied) changed by `f`.
    fn edit(g: &Graph, f: impl FnOnce(&mut Vec<Layer>)) -> Graph {
        let mut layers: Vec<Layer> = g.layers().iter().map(|l| copy(l)).collect();
        f(&mut layers);
        Graph::new(
            layers.into_iter().map(Arc::new).collect(),
            g.outputs().to_vec(),
        )
    }

    fn find(g: &Graph, pred: impl Fn(&Layer) -> bool) -> usize {
        g.layers().iter().position(|l| pred(l)).unwrap()
    }

    fn program(l: &mut Layer) -> &mut Program {
        match &mut l.op {
            Op::Blockwise(p) => p,
            other => panic!("{other:?} is not blockwise"),
        }
    }

    /// Asserts that validation fails naming `layer`, with `needle` in the reason.
    fn rejects(g: &Graph, layer: LayerId, needle: &str) {
        match validate(g) {
            Err(Error::InvalidLayer { layer: l, reason }) => {
                assert_eq!(l, layer.to_string(), "wrong layer blamed: {reason}");
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
                // The message a user sees names it too.
                let shown = Error::InvalidLayer { layer: l, reason }.to_string();
                assert!(shown.contains(&layer.to_string()), "{shown}");
            }
            other => panic!("expected the graph to be rejected for {layer}, got {other:?}"),
        }
    }

    /// `mean(2 * (x + x.T), axis 0)`, unfused: random, transpose, add, multiply, partial, combine.
    fn base() -> Graph {
        let x = x();
        let y = (&x + &x.t()) * 2.0f64;
        let g = y.mean_axis(0).unwrap().graph();
        validate(&g).unwrap();
        g
    }

    fn is_transpose(l: &Layer) -> bool {
        matches!(l.op, Op::Transpose { .. })
    }

    fn is_add(l: &Layer) -> bool {
        l.id.name == "add"
    }

    #[test]
    fn a_missing_dependency_names_its_reader() {
        let g = base();
        let t = find(&g, is_transpose);
        let tid = g.layers()[t].id;
        // The transpose's chunks do not line up with x's, so a rechunk reads it before the add.
        let reader = g.layers()[find(&g, |l| l.inputs.contains(&tid))].id;
        rejects(
            &edit(&g, |ls| drop(ls.remove(t))),
            reader,
            "not in the graph",
        );
        // Dropping the source leaves the transpose and the add without it; the first is named.
        let rand = g.layers()[0].id;
        let first_reader = g.layers()[find(&g, |l| l.inputs.contains(&rand))].id;
        rejects(
            &edit(&g, |ls| drop(ls.remove(0))),
            first_reader,
            &rand.to_string(),
        );
    }

    #[test]
    fn a_forward_reference_is_rejected() {
        let g = base();
        let t = find(&g, is_transpose);
        let rand = find(&g, |l| l.id.name == "random");
        rejects(
            &edit(&g, |ls| ls.swap(t, rand)),
            g.layers()[t].id,
            "comes after",
        );
    }

    #[test]
    fn a_cycle_is_rejected() {
        let g = base();
        let last = g.layers().last().unwrap().id;
        let first = g.layers()[0].id;
        let cyclic = edit(&g, |ls| ls[0].inputs.push(last));
        rejects(&cyclic, first, "comes after");
        let own = edit(&g, |ls| {
            let id = ls[1].id;
            ls[1].inputs.push(id)
        });
        rejects(&own, g.layers()[1].id, "comes after");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let g = base();
        let dup = g.layers()[1].id;
        rejects(&edit(&g, |ls| ls.push(copy(&ls[1]))), dup, "appears twice");
    }

    #[test]
    fn outputs_must_exist_and_be_arrays() {
        let g = base();
        let missing = Graph::new(
            g.layers().to_vec(),
            vec![LayerId {
                name: "sum",
                token: 5,
            }],
        );
        assert!(
            matches!(validate(&missing), Err(Error::InvalidGraph { reason }) if reason.contains("sum-"))
        );
        let partial = g.layers()[find(&g, |l| {
            l.id.name == "mean" && matches!(l.op, Op::Blockwise(_))
        })]
        .id;
        rejects(
            &Graph::new(g.layers().to_vec(), vec![partial]),
            partial,
            "partial",
        );
    }

    #[test]
    fn a_changed_chunk_size_is_rejected() {
        let g = base();
        let t = find(&g, is_transpose);
        let bad = edit(&g, |ls| {
            ls[t].meta.chunks = Chunks::from_sizes(vec![vec![6, 6], vec![6, 6]]);
        });
        rejects(&bad, g.layers()[t].id, "permuting");
        // A source's grid must be its program's domain.
        let bad = edit(&g, |ls| {
            ls[0].meta.chunks = Chunks::from_sizes(vec![vec![5, 5, 2], vec![4, 4, 3, 1]]);
        });
        rejects(&bad, g.layers()[0].id, "domain");
        // And a grid must be well formed (zero-length chunks are, on a non-empty axis).
        let bad = edit(&g, |ls| {
            ls[0].meta.chunks = Chunks::from_sizes(vec![vec![0, 0], vec![4, 4, 4]]);
        });
        rejects(&bad, g.layers()[0].id, "must have exactly one chunk");
    }

    #[test]
    fn a_changed_dtype_is_rejected() {
        let g = base();
        let add = find(&g, is_add);
        let bad = edit(&g, |ls| ls[add].meta.dtype = DType::F32);
        rejects(&bad, g.layers()[add].id, "dtype is float32");
        let bad = edit(&g, |ls| program(&mut ls[add]).leaves[0].dtype = DType::I64);
        rejects(&bad, g.layers()[add].id, "as int64");
        let bad = edit(&g, |ls| program(&mut ls[0]).leaves[0].dtype = DType::I64);
        rejects(
            &bad,
            g.layers()[0].id,
            "draws random values but has dtype int64",
        );
        let t = find(&g, is_transpose);
        let bad = edit(&g, |ls| ls[t].meta.dtype = DType::Bool);
        rejects(&bad, g.layers()[t].id, "keeping its input's dtype");
    }

    #[test]
    fn leaves_must_read_inputs_that_exist_once() {
        let g = base();
        let add = find(&g, is_add);
        let id = g.layers()[add].id;
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).leaves[1].kind = LeafKind::Input(5)
        });
        rejects(&bad, id, "reads input 5");
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).leaves[1].kind = LeafKind::Input(0)
        });
        rejects(&bad, id, "read by both");
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).leaves[1].kind = LeafKind::Full(Scalar::F64(1.0))
        });
        rejects(&bad, id, "read by no leaf");
        let bad = edit(&g, |ls| program(&mut ls[add]).leaves[1].shape = vec![12, 3]);
        rejects(&bad, id, "does not broadcast");
    }

    #[test]
    fn instructions_must_be_well_typed_and_ordered() {
        let g = base();
        let add = find(&g, is_add);
        let id = g.layers()[add].id;
        let bad = edit(&g, |ls| program(&mut ls[add]).instrs[0].args[1] = 9);
        rejects(&bad, id, "not defined before it");
        let bad = edit(&g, |ls| program(&mut ls[add]).output = 3);
        rejects(&bad, id, "output is value 3");
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).instrs[0]
                .args
                .pop()
                .map(drop)
                .unwrap()
        });
        rejects(&bad, id, "takes 2 arguments");
        let bad = edit(&g, |ls| {
            let p = program(&mut ls[add]);
            p.instrs[0].func = ElemFunc::Binary(crate::ops::BinaryFn::And);
        });
        rejects(&bad, id, "bitwise_and does not support dtype float64");
        let bad = edit(&g, |ls| {
            let p = program(&mut ls[add]);
            p.instrs[0].func = ElemFunc::Binary(crate::ops::BinaryFn::Div);
            p.instrs[0].dtype = DType::F32;
        });
        rejects(&bad, id, "computes float64 -> float64");
    }

    #[test]
    fn an_int64_arange_that_overflows_is_rejected() {
        let a = arange(0i64, 10, 1, [4]).unwrap();
        let g = a.graph();
        let bad = edit(&g, |ls| {
            program(&mut ls[0]).leaves[0].kind = LeafKind::Arange {
                start: 0.0,
                step: 2f64.powi(62),
            }
        });
        rejects(&bad, a.id(), "overflows");
        // As floats the same values are fine.
        let f = arange(0.0, 10.0, 1.0, [4]).unwrap();
        let ok = edit(&f.graph(), |ls| {
            program(&mut ls[0]).leaves[0].kind = LeafKind::Arange {
                start: 0.0,
                step: 2f64.powi(62),
            }
        });
        validate(&ok).unwrap();
    }

    #[test]
    fn a_bad_permutation_is_rejected() {
        let g = base();
        let t = find(&g, is_transpose);
        let bad = edit(&g, |ls| ls[t].op = Op::Transpose { perm: vec![0, 0] });
        rejects(&bad, g.layers()[t].id, "not a permutation");
        let bad = edit(&g, |ls| {
            ls[t].op = Op::Transpose {
                perm: vec![1, 0, 2],
            }
        });
        rejects(&bad, g.layers()[t].id, "not a permutation");
    }

    #[test]
    fn reductions_must_line_up() {
        let g = base();
        let partial = find(&g, |l| {
            l.id.name == "mean" && matches!(l.op, Op::Blockwise(_))
        });
        let combine = find(&g, |l| matches!(l.op, Op::ReduceCombine(_)));
        let (pid, cid) = (g.layers()[partial].id, g.layers()[combine].id);
        let bad = edit(&g, |ls| {
            program(&mut ls[partial]).reduce.as_mut().unwrap().axes = vec![1, 0]
        });
        rejects(&bad, pid, "not sorted");
        let combine_op = |ls: &mut Vec<Layer>| match &mut ls[combine].op {
            Op::ReduceCombine(c) => c.clone(),
            _ => unreachable!(),
        };
        let bad = edit(&g, |ls| {
            let mut c = combine_op(ls);
            c.group = vec![0];
            ls[combine].op = Op::ReduceCombine(c);
        });
        rejects(&bad, cid, "group sizes");
        let bad = edit(&g, |ls| {
            let mut c = combine_op(ls);
            c.reduction = Reduction::Sum;
            ls[combine].op = Op::ReduceCombine(c);
        });
        rejects(&bad, cid, "holds mean partials");
        let bad = edit(&g, |ls| {
            let mut c = combine_op(ls);
            c.finalize.as_mut().unwrap().keepdims = true;
            ls[combine].op = Op::ReduceCombine(c);
        });
        rejects(&bad, cid, "combining its input gives");
        // Partials are for combine steps only.
        let bad = edit(&g, |ls| ls[combine].op = Op::Rechunk);
        rejects(&bad, cid, "only a combine step");
    }

    #[test]
    fn structural_ops_must_line_up() {
        let x = x();
        let sl = x.slice(s![1..11;2, ..]).unwrap();
        let g = sl.graph();
        let bad = edit(&g, |ls| {
            let Op::Slice(s) = &mut ls[1].op else {
                unreachable!()
            };
            s.pieces[0][0].local_start = 40;
        });
        rejects(&bad, sl.id(), "axis 0");

        let m = x.matmul(&x).unwrap();
        let g = m.graph();
        let mm = find(&g, |l| matches!(l.op, Op::Matmul(_)));
        let bad = edit(&g, |ls| {
            ls[mm].meta.chunks = Chunks::from_sizes(vec![vec![12], vec![12], vec![1]])
        });
        rejects(&bad, g.layers()[mm].id, "block products");
        let bad = edit(&g, |ls| ls[mm].inputs.reverse());
        rejects(&bad, g.layers()[mm].id, "inner chunks differ");

        // `x @ x.T` reads `x` untransposed; read as it is, its chunks do not line up.
        let sym = x.matmul(&x.t()).unwrap();
        let g = sym.graph();
        let mm = find(&g, |l| matches!(l.op, Op::Matmul(m) if m.transpose_b));
        let bad = edit(&g, |ls| ls[mm].op = Op::Matmul(MatmulOp::default()));
        rejects(&bad, g.layers()[mm].id, "inner chunks differ");
        let mirror = find(&g, |l| matches!(l.op, Op::MirrorUpper));
        let bad = edit(&g, |ls| ls[mirror].inputs = vec![x.id()]);
        rejects(&bad, sym.id(), "square 2-d input chunked alike");

        let c = concatenate(&[&x, &x.slice(s![..2, ..]).unwrap()], 0).unwrap();
        let g = c.graph();
        let bad = edit(&g, |ls| {
            ls.last_mut().unwrap().meta.chunks = Chunks::from_sizes(vec![vec![7, 7], vec![4, 4, 4]])
        });
        rejects(&bad, c.id(), "adding up its inputs' chunks");

        let st = stack(&[&x, &x], 0).unwrap();
        let g = st.graph();
        let bad = edit(&g, |ls| ls.last_mut().unwrap().op = Op::Stack { axis: 3 });
        rejects(&bad, st.id(), "out of range");

        let r = x.reshape(&[-1]).unwrap();
        let g = r.graph();
        let bad = edit(&g, |ls| {
            let l = ls.last_mut().unwrap();
            l.meta.chunks = Chunks::from_sizes(vec![vec![100]]);
        });
        rejects(&bad, r.id(), "elements");

        let kept = x.persist().unwrap();
        let g = kept.graph();
        let bad = edit(&g, |ls| {
            let Op::Materialized(m) = &mut ls[0].op else {
                unreachable!()
            };
            let mut chunks = (*m.chunks).clone();
            chunks.pop();
            m.chunks = Arc::new(chunks);
        });
        rejects(&bad, kept.id(), "keeps 8 chunks, but its grid");
    }
}
