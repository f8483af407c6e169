//! Layers and graphs on the wire: [`graph_to_proto`] and [`graph_from_proto`], which validates what it
//! decodes.

use std::sync::Arc;

use super::pb;
use super::{required, within};
use crate::error::{Error, Result};
use crate::graph::validate::validate;
use crate::graph::{Graph, Layer, LayerId};

// ---------------------------------------------------------------------------------------------
// layers and graphs

impl TryFrom<&Layer> for pb::Layer {
    type Error = Error;
    fn try_from(l: &Layer) -> Result<Self> {
        let op = pb::Op::try_from(&l.op).map_err(|e| match e {
            // Name the layer, as the local executor's task keys do.
            Error::NotSerializable { .. } => Error::NotSerializable {
                key: l.id.to_string(),
            },
            other => within(other, format!("layer {}", l.id)),
        })?;
        Ok(pb::Layer {
            id: Some(l.id.into()),
            op: Some(op),
            inputs: l.inputs.iter().map(|&i| i.into()).collect(),
            meta: Some((&l.meta).into()),
        })
    }
}

impl TryFrom<pb::Layer> for Layer {
    type Error = Error;
    /// Keeps the id from the wire (see the module docs for why it is not recomputed).
    fn try_from(l: pb::Layer) -> Result<Self> {
        let id = LayerId::try_from(required(l.id, "layer id")?)?;
        let decode = || -> Result<Layer> {
            Ok(Layer {
                id,
                op: required(l.op, "op")?.try_into()?,
                inputs: l
                    .inputs
                    .into_iter()
                    .map(LayerId::try_from)
                    .collect::<Result<_>>()?,
                meta: required(l.meta, "metadata")?.try_into()?,
            })
        };
        decode().map_err(|e| within(e, format!("layer {id}")))
    }
}

/// A graph as its message: layers in the graph's order, then the outputs.
///
/// Fails with [`Error::NotSerializable`] naming the layer if the graph holds a `map_blocks`.
pub fn graph_to_proto(graph: &Graph) -> Result<pb::Graph> {
    Ok(pb::Graph {
        layers: graph
            .layers()
            .iter()
            .map(|l| pb::Layer::try_from(&**l))
            .collect::<Result<_>>()?,
        outputs: graph.outputs().iter().map(|&o| o.into()).collect(),
    })
}

/// The graph in a message, decoded and then checked with [`validate`]: a graph this returns can be
/// expanded and run without a kernel meeting data it does not expect.
pub fn graph_from_proto(graph: pb::Graph) -> Result<Graph> {
    let layers = graph
        .layers
        .into_iter()
        .map(|l| Layer::try_from(l).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let outputs = graph
        .outputs
        .into_iter()
        .map(|o| LayerId::try_from(o).map_err(|e| within(e, "graph output")))
        .collect::<Result<Vec<_>>>()?;
    let graph = Graph::new(layers, outputs);
    validate(&graph)?;
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;

    use ndarray::{ArrayD, IxDyn, s};
    use prost::Message;

    use crate::data::{ArrayData, ChunkValue};
    use crate::error::{Error, Result};
    use crate::exec::LocalExecutor;
    use crate::graph::expand::TaskGraph;
    use crate::graph::{ArrayMeta, Graph, Layer, LayerId};
    use crate::meta::{Chunks, DType, Scalar};
    use crate::ops::{ElemFunc, Instr, Op};
    use crate::wire::chunk::f64_array;
    use crate::wire::pb;
    use crate::wire::testing::*;
    use crate::wire::{decode_chunk, graph_from_proto, graph_to_proto};
    use crate::{concatenate, default_rng, from_array, from_npy, stack, where_};

    // -----------------------------------------------------------------------------------------
    // layers and graphs

    #[test]
    fn a_decoded_layer_keeps_its_id() {
        // Fusion keeps the consumer's id on a fused op, so the id is not the op's own token.
        let y = x().sqrt().unwrap() * 3.0f64;
        let g = crate::optimize::optimize(y.graph());
        let fused = g.get(y.id()).unwrap();
        let recomputed = Layer::new(fused.op.clone(), fused.inputs.clone(), fused.meta.clone());
        assert_ne!(recomputed.id, fused.id);
        let back = Layer::try_from(pb::Layer::try_from(&**fused).unwrap()).unwrap();
        assert_eq!(back.id, fused.id);
        assert_eq!(back.inputs, fused.inputs);
        assert_eq!(back.meta, fused.meta);
    }

    /// Runs a graph on the local executor and assembles its outputs.
    fn run(graph: Graph) -> Vec<ArrayData> {
        let metas: Vec<ArrayMeta> = graph
            .outputs()
            .iter()
            .map(|o| graph.get(*o).unwrap().meta.clone())
            .collect();
        let results: Vec<Mutex<ArrayData>> = metas
            .iter()
            .map(|m| Mutex::new(ArrayData::full(&m.shape(), Scalar::Bool(false), m.dtype)))
            .collect();
        let sink = |o: usize, block: &[u32], v: Arc<ChunkValue>| -> Result<()> {
            let offset = metas[o].chunks.block_offset(block);
            let origin = vec![0; offset.len()];
            let mut out = results[o].lock().unwrap();
            crate::ops::structure::copy_overlap(&mut out, &origin, v.as_array()?, &offset);
            Ok(())
        };
        let tg = TaskGraph::expand(graph).unwrap();
        LocalExecutor::with_threads(2)
            .unwrap()
            .execute(&tg, &sink)
            .unwrap();
        results
            .into_iter()
            .map(|m| m.into_inner().unwrap())
            .collect()
    }

    /// Bit-for-bit equality (NaN-safe): the arrays' wire bytes.
    fn bits(a: &ArrayData) -> pb::ArrayData {
        a.into()
    }

    #[test]
    fn expressions_round_trip_and_compute_the_same_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.npy");
        default_rng(3)
            .standard_normal(&[30, 30], [8, 7])
            .unwrap()
            .to_npy(&path)
            .unwrap();
        let f = from_npy(&path, [10, 10]).unwrap();
        let data = ArrayD::from_shape_fn(IxDyn(&[30, 30]), |i| (i[0] * 30 + i[1]) as f64 / 7.0);
        let arr = from_array(data, [15, 6]).unwrap();
        let r = default_rng(9).random(&[30, 30], [7, 11]).unwrap();

        let sum_t = &f + &f.t();
        let mean0 = sum_t.mean_axis(0).unwrap();
        let sl = arr.slice(s![2..29;3, ..;-2]).unwrap();
        let mm = sl.matmul(&r.slice(s![..15, ..]).unwrap()).unwrap();
        let reshaped = mm.reshape(&[27, 10]).unwrap();
        let cat = concatenate(&[&sum_t.slice(s![..10, ..]).unwrap(), &mm], 0).unwrap();
        let stacked = stack(&[&mean0, &mean0.sqrt().unwrap().abs().unwrap()], 1).unwrap();
        let kept = cat.rechunk([5, 11]).unwrap().persist().unwrap();
        let mixed = ((&kept * 2.0f64) - &cat).clip(-3.0, 3.0).unwrap();
        let ints = crate::arange(0i64, 900, 1, [100])
            .unwrap()
            .reshape(&[30, 30])
            .unwrap();
        let picks = where_(r.gt(0.5).unwrap(), &ints, -&ints).unwrap();
        let stats = stack(
            &[
                &r.var_axis(1, 1.0).unwrap(),
                &r.std_axis(1, 0.0).unwrap(),
                &r.argmax_axis(1).unwrap().astype(DType::F64).unwrap(),
                &picks.sum_axis(1).unwrap().astype(DType::F64).unwrap(),
                &r.lt(0.1)
                    .unwrap()
                    .any_axis(1)
                    .unwrap()
                    .astype(DType::F64)
                    .unwrap(),
                &crate::linspace(0.0, 1.0, 30, true, [7]).unwrap(),
            ],
            0,
        )
        .unwrap();

        let outputs = [
            &sum_t, &mean0, &mm, &reshaped, &cat, &stacked, &kept, &mixed, &picks, &stats,
        ];
        for a in outputs {
            for graph in [a.graph(), crate::optimize::optimize(a.graph())] {
                let msg = graph_to_proto(&graph).unwrap();
                let bytes = msg.encode_to_vec();
                let back = graph_from_proto(pb::Graph::decode(bytes.as_slice()).unwrap()).unwrap();
                assert_eq!(back.layers().len(), graph.layers().len());
                for (l, b) in graph.layers().iter().zip(back.layers()) {
                    assert_eq!(l.id, b.id);
                    assert_eq!(format!("{:?}", l.op), format!("{:?}", b.op));
                }
                let want = run(graph);
                let got = run(back);
                assert_eq!(want.len(), 1);
                assert_eq!(bits(&want[0]), bits(&got[0]), "{a:?}");
                assert_eq!(bits(&want[0]), bits(&a.compute_dyn().unwrap()), "{a:?}");
            }
        }
    }

    /// Decodes and validates `msg`; if that passes, expands and runs it, failing the test on any
    /// panic. Returns whether it ran.
    fn run_if_valid(msg: pb::Graph) -> bool {
        let Ok(g) = graph_from_proto(msg) else {
            return false;
        };
        // Values may change (a seed, a constant) but sizes stay small or validation fails; skip the
        // rare graph that grew anyway.
        if g.layers()
            .iter()
            .any(|l| l.meta.chunks.max_chunk_elems() > 1 << 16)
        {
            return false;
        }
        let shown = format!("{:#?}", g.layers());
        let run = std::panic::AssertUnwindSafe(|| -> Result<()> {
            let tg = TaskGraph::expand(g)?;
            let sink = |_: usize, _: &[u32], _: Arc<ChunkValue>| -> Result<()> { Ok(()) };
            LocalExecutor::with_threads(1)?.execute(&tg, &sink)?;
            Ok(())
        });
        match std::panic::catch_unwind(run) {
            Err(_) => panic!("expansion panicked on a graph that validated:\n{shown}"),
            Ok(Err(e @ Error::TaskPanicked { .. })) => {
                panic!("a kernel panicked on a graph that validated: {e}\n{shown}")
            }
            Ok(_) => true,
        }
    }

    /// Sets one structural field of one layer of `g` to a small (or very large) value.
    fn mutate(g: &mut pb::Graph, next: &mut impl FnMut() -> u64) {
        const VALUES: [u64; 8] = [0, 1, 2, 3, 4, 7, 12, u32::MAX as u64];
        fn poke(v: &mut [u64], i: usize, x: u64) {
            if !v.is_empty() {
                let n = v.len();
                v[i % n] = x;
            }
        }
        fn poke32(v: &mut [u32], i: usize, x: u64) {
            if !v.is_empty() {
                let n = v.len();
                v[i % n] = x as u32;
            }
        }
        let li = (next() % g.layers.len() as u64) as usize;
        let i = (next() % 64) as usize;
        let x = VALUES[(next() % VALUES.len() as u64) as usize];
        let which = (next() % 12) as usize;
        let layer = &mut g.layers[li];
        let meta = layer.meta.as_mut().unwrap();
        let chunks = meta.chunks.as_mut().unwrap();
        match which {
            0 => {
                let n = chunks.axes.len();
                if n > 0 {
                    poke(&mut chunks.axes[i % n].sizes, i / 3, x);
                }
            }
            1 => meta.dtype = (x % 6) as i32,
            2 => layer.inputs.reverse(),
            3 => drop(layer.inputs.pop()),
            _ => {
                let Some(op) = layer.op.as_mut().and_then(|o| o.op.as_mut()) else {
                    return;
                };
                use pb::op::Op as W;
                match op {
                    W::Blockwise(p) => {
                        let nl = p.leaves.len();
                        let ni = p.instrs.len();
                        match which % 8 {
                            0 if nl > 0 => poke(&mut p.leaves[i % nl].shape, i / 2, x),
                            1 if nl > 0 => p.leaves[i % nl].rank = x as u32,
                            2 if nl > 0 => {
                                p.leaves[i % nl].kind = Some(pb::leaf::Kind::Input(x as u32))
                            }
                            3 if nl > 0 => p.leaves[i % nl].dtype = (x % 5) as i32,
                            4 if ni > 0 => poke32(&mut p.instrs[i % ni].args, i / 2, x),
                            5 if ni > 0 => p.instrs[i % ni].dtype = (x % 5) as i32,
                            6 => p.output = x as u32,
                            _ => match p.reduce.as_mut() {
                                Some(r) if i.is_multiple_of(2) => poke32(&mut r.axes, i, x),
                                Some(r) => poke(&mut r.domain_shape, i, x),
                                None => {
                                    let c = p.domain.as_mut().unwrap();
                                    let n = c.axes.len();
                                    if n > 0 {
                                        poke(&mut c.axes[i % n].sizes, i / 3, x);
                                    }
                                }
                            },
                        }
                    }
                    W::ReduceCombine(c) => match i % 4 {
                        0 => poke32(&mut c.axes, i / 4, x),
                        1 => poke(&mut c.group, i / 4, x),
                        2 => {
                            if let Some(f) = c.finalize.as_mut() {
                                f.keepdims = !f.keepdims;
                            }
                        }
                        _ => {
                            c.finalize = match c.finalize {
                                Some(_) => None,
                                None => Some(pb::Finalize {
                                    keepdims: false,
                                    ddof: 0.0,
                                    dtype: (x % 5) as i32,
                                }),
                            }
                        }
                    },
                    W::Transpose(t) => poke32(&mut t.perm, i, x),
                    W::Slice(sl) => {
                        let n = sl.pieces.len();
                        if n > 0 && i.is_multiple_of(2) {
                            let ps = &mut sl.pieces[i % n].pieces;
                            let m = ps.len();
                            if m > 0 {
                                let piece = &mut ps[(i / 2) % m];
                                match i % 3 {
                                    0 => piece.in_block = x as u32,
                                    1 => piece.local_start = x,
                                    _ => piece.len = x,
                                }
                            }
                        } else if let Some(a) = sl.axes.get_mut(i % n.max(1)) {
                            match a.sel.as_mut() {
                                Some(pb::axis_slice::Sel::Range(r)) => match i % 3 {
                                    0 => r.start = x,
                                    1 => r.len = x,
                                    _ => r.step = x as i64 - 3,
                                },
                                Some(pb::axis_slice::Sel::Index(ix)) => *ix = x,
                                None => {}
                            }
                        }
                    }
                    W::Concatenate(a) | W::Stack(a) => a.axis = x as u32,
                    W::FromArray(a) => poke(&mut a.data.as_mut().unwrap().shape, i, x),
                    W::Materialized(m) => drop(m.chunks.pop()),
                    _ => {}
                }
            }
        }
    }

    /// Flips bits in encoded graphs: whatever decodes and validates must run without a panic (a kernel
    /// panic would surface as `TaskPanicked`, an expansion panic as an unwind).
    #[test]
    fn corrupted_graphs_that_validate_run_without_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        x().to_npy(&path).unwrap();
        let f = from_npy(&path, [5, 5]).unwrap();
        let a = x();
        let ints = crate::arange(0i64, 120, 1, [25])
            .unwrap()
            .reshape(&[12, 10])
            .unwrap();
        let arrays = [
            (&a + &a.slice(s![..;-1, ..]).unwrap())
                .mean_axis(0)
                .unwrap(),
            concatenate(&[&f, &a.rechunk([4, 3]).unwrap()], 1).unwrap(),
            stack(&[&ints, &(&ints * 3i64)], 2)
                .unwrap()
                .argmax()
                .unwrap(),
            a.matmul(&f.t()).unwrap().var_axis(1, 1.0).unwrap(),
            where_(a.lt(0.5).unwrap(), &ints, 7i64)
                .unwrap()
                .reshape(&[-1])
                .unwrap(),
            crate::from_array(ndarray::Array2::<f32>::ones((6, 4)).into_dyn(), [4, 3])
                .unwrap()
                .persist()
                .unwrap()
                .clip(0.0f32, 0.5f32)
                .unwrap(),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut ran, mut tried) = (0, 0);
        for arr in &arrays {
            for graph in [arr.graph(), crate::optimize::optimize(arr.graph())] {
                let msg = graph_to_proto(&graph).unwrap();
                let bytes = msg.encode_to_vec();
                for round in 0..600 {
                    let corrupted = if round % 2 == 0 {
                        // Bit flips anywhere in the bytes.
                        let mut b = bytes.clone();
                        for _ in 0..1 + next() % 2 {
                            let i = (next() % b.len() as u64) as usize;
                            b[i] ^= 1 << (next() % 8);
                        }
                        let Ok(m) = pb::Graph::decode(b.as_slice()) else {
                            continue;
                        };
                        m
                    } else {
                        // One structural field set to a small value.
                        let mut m = msg.clone();
                        mutate(&mut m, &mut next);
                        m
                    };
                    tried += 1;
                    if run_if_valid(corrupted) {
                        ran += 1;
                    }
                }
            }
        }
        eprintln!("{tried} corrupted graphs decoded as messages, {ran} validated and ran");
        assert!(ran > 0);
    }

    #[test]
    fn a_graph_that_fails_validation_does_not_decode() {
        let y = x().mean_axis(1).unwrap();
        let mut msg = graph_to_proto(&y.graph()).unwrap();
        msg.layers.remove(0);
        let err = graph_from_proto(msg).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidLayer { reason, .. } if reason.contains("not in the graph")),
            "{err}"
        );
    }

    #[test]
    fn a_transposed_source_crosses_the_wire_and_bad_axes_are_refused() {
        let r = default_rng(4).random(&[12, 10], [5, 4]).unwrap();
        let g = crate::optimize::optimize(r.t().graph());
        let permuted = |g: &Graph| {
            g.layers().iter().any(|l| match &l.op {
                Op::Blockwise(p) => p.leaves.iter().any(|leaf| leaf.axes == [1, 0]),
                _ => false,
            })
        };
        assert!(permuted(&g), "the optimizer generates r.T in place");
        let back = graph_from_proto(graph_to_proto(&g).unwrap()).unwrap();
        assert!(permuted(&back));
        let ids = |g: &Graph| g.layers().iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(&back), ids(&g));

        for bad in [vec![0, 0], vec![1], vec![0, 2]] {
            let mut msg = graph_to_proto(&g).unwrap();
            for layer in &mut msg.layers {
                if let Some(pb::op::Op::Blockwise(p)) =
                    layer.op.as_mut().and_then(|o| o.op.as_mut())
                {
                    p.leaves[0].axes = bad.clone();
                }
            }
            let err = graph_from_proto(msg).unwrap_err();
            assert!(err.to_string().contains("axes"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_sliced_source_crosses_the_wire_and_bad_windows_are_refused() {
        let r = default_rng(4).random(&[12, 10], [5, 4]).unwrap();
        let sliced = r.slice(crate::s![1..;2, ..;3]).unwrap();
        let g = crate::optimize::optimize(sliced.graph());
        let windowed = |g: &Graph| {
            g.layers().iter().any(|l| match &l.op {
                Op::Blockwise(p) => p.leaves.iter().any(|leaf| {
                    leaf.window.as_ref().is_some_and(|w| {
                        w.source == [12, 10] && w.start == [1, 0] && w.step == [2, 3]
                    })
                }),
                _ => false,
            })
        };
        assert!(
            windowed(&g),
            "the optimizer generates r[1::2, ::3] in place"
        );
        let back = graph_from_proto(graph_to_proto(&g).unwrap()).unwrap();
        assert!(windowed(&back));
        let ids = |g: &Graph| g.layers().iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(&back), ids(&g));

        // A step of 0, an element past the source, lengths that disagree, a window on a constant.
        type Poke = fn(&mut pb::Leaf);
        let bad: [(&str, Poke); 4] = [
            ("step 0", |l| l.window_step[1] = 0),
            ("past the end", |l| l.window_start[0] = 3),
            ("lengths", |l| l.window_source.push(4)),
            ("constant", |l| {
                l.kind = Some(pb::leaf::Kind::Full(crate::meta::Scalar::F64(1.0).into()))
            }),
        ];
        for (what, poke) in bad {
            let mut msg = graph_to_proto(&g).unwrap();
            for layer in &mut msg.layers {
                if let Some(pb::op::Op::Blockwise(p)) =
                    layer.op.as_mut().and_then(|o| o.op.as_mut())
                    && !p.leaves[0].window_step.is_empty()
                {
                    poke(&mut p.leaves[0]);
                }
            }
            let err = graph_from_proto(msg).unwrap_err();
            assert!(err.to_string().contains("window"), "{what}: {err}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // malformed messages

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert!(what(Op::try_from(pb::Op { op: None }).unwrap_err()).contains("op"));
        let instr = pb::Instr {
            func: Some(ElemFunc::Cast.into()),
            args: vec![0],
            dtype: 99,
        };
        assert!(what(Instr::try_from(instr).unwrap_err()).contains("unknown dtype value 99"));
        let instr = pb::Instr {
            func: Some(pb::ElemFunc {
                func: Some(pb::elem_func::Func::Unary(1000)),
            }),
            args: vec![0],
            dtype: pb::DType::DtypeF64 as i32,
        };
        assert!(what(Instr::try_from(instr).unwrap_err()).contains("unary function"));
        let unspecified = pb::ArrayMeta {
            chunks: Some(pb::Chunks { axes: vec![] }),
            dtype: 0,
        };
        assert!(what(ArrayMeta::try_from(unspecified).unwrap_err()).contains("unspecified"));
        let short = pb::ArrayData {
            dtype: pb::DType::DtypeF64 as i32,
            shape: vec![2, 3],
            data: vec![0; 47],
        };
        assert!(what(ArrayData::try_from(short).unwrap_err()).contains("needs 48 bytes"));
        let huge = pb::ArrayData {
            dtype: pb::DType::DtypeF64 as i32,
            shape: vec![u64::MAX, 4],
            data: vec![],
        };
        assert!(what(ArrayData::try_from(huge).unwrap_err()).contains("too many"));
        let not_bool = pb::ArrayData {
            dtype: pb::DType::DtypeBool as i32,
            shape: vec![2],
            data: vec![1, 2],
        };
        assert!(what(ArrayData::try_from(not_bool).unwrap_err()).contains("byte 2"));
        let overflow = pb::Chunks {
            axes: vec![pb::AxisChunks {
                sizes: vec![u64::MAX, 2],
            }],
        };
        assert!(what(Chunks::try_from(overflow).unwrap_err()).contains("overflow"));
        let forged = pb::LayerId {
            name: "rm -rf".into(),
            token: 1,
        };
        assert!(what(LayerId::try_from(forged).unwrap_err()).contains("rm -rf"));
        let moments = pb::ChunkValue {
            value: Some(pb::chunk_value::Value::Moments(pb::Moments {
                count: Some(f64_array(&ArrayD::zeros(IxDyn(&[2])))),
                mean: Some(f64_array(&ArrayD::zeros(IxDyn(&[3])))),
                m2: None,
            })),
        };
        assert!(what(ChunkValue::try_from(moments).unwrap_err()).contains("shapes"));
        assert!(what(decode_chunk(&[0x0a, 0xff]).unwrap_err()).contains("chunk"));
        // Errors inside a layer say which layer.
        let mut layer = pb::Layer::try_from(&*top(&x())).unwrap();
        if let Some(pb::op::Op::Blockwise(p)) = layer.op.as_mut().and_then(|o| o.op.as_mut()) {
            p.leaves[0].dtype = 99;
        }
        let msg = what(Layer::try_from(layer).unwrap_err());
        assert!(
            msg.starts_with(&format!("layer {}: leaf 0", x().id())),
            "{msg}"
        );
    }
}
