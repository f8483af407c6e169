//! Sliced sources: a basic slice (ranges with positive steps) of a blockwise layer that reads no
//! input chunks (random, full, arange, linspace, and elementwise math on them) becomes that program
//! over the slice's output grid, its generated leaves reading strided windows of the arrays they
//! generated before ([`LeafWindow`]). Values are counter-based — element `i` of a generated array
//! depends only on `i` — so the window gives exactly the sliced values while generating only the
//! elements kept: `x[::2, ::3]` of a random `x` draws a sixth of `x`, not all of it. The sliced
//! layer keeps its id, so output keys do not change, and the slice's output chunks stay as they
//! were (one piece of one source chunk each).

use std::collections::HashMap;
use std::sync::Arc;

use crate::graph::{Graph, Layer, LayerId};
use crate::ops::{AxisSlice, Leaf, LeafKind, LeafWindow, Op, Program};

/// Rewrites every eligible slice of an input-free, non-reducing blockwise layer; see the module docs.
pub fn slice_sources(graph: Graph) -> Graph {
    let by_id: HashMap<LayerId, &Arc<Layer>> = graph.layers().iter().map(|l| (l.id, l)).collect();
    let layers = graph
        .layers()
        .iter()
        .map(|layer| {
            let (Op::Slice(s), [input]) = (&layer.op, layer.inputs.as_slice()) else {
                return layer.clone();
            };
            // Positive steps and a non-empty result along every axis (an index drops an axis, which a
            // window does not express; an empty slice has nothing to generate anyway).
            let ranges: Option<Vec<(usize, usize, usize)>> = s
                .axes
                .iter()
                .map(|a| match *a {
                    AxisSlice::Range { start, step, len } if step >= 1 && len >= 1 => {
                        Some((start, step as usize, len))
                    }
                    _ => None,
                })
                .collect();
            let Some(ranges) = ranges else {
                return layer.clone();
            };
            match by_id.get(input).map(|l| &l.op) {
                Some(Op::Blockwise(p))
                    if p.reduce.is_none()
                        && p.domain.ndim() == ranges.len()
                        && p.leaves
                            .iter()
                            .all(|l| !matches!(l.kind, LeafKind::Input(_))) =>
                {
                    let full = p.domain.shape();
                    Arc::new(Layer {
                        id: layer.id,
                        op: Op::Blockwise(Box::new(Program {
                            domain: layer.meta.chunks.clone(),
                            leaves: p.leaves.iter().map(|l| window(l, &full, &ranges)).collect(),
                            instrs: p.instrs.clone(),
                            output: p.output,
                            reduce: None,
                        })),
                        inputs: Vec::new(),
                        meta: layer.meta.clone(),
                    })
                }
                _ => layer.clone(),
            }
        })
        .collect();
    Graph::new(layers, graph.outputs().to_vec())
}

/// Leaf `l` of a program over a domain of shape `full`, sliced by `ranges` (start, step, length per
/// domain axis): axes along which it is broadcast stay so; the others take the slice's length, and a
/// generated leaf's window composes with the slice.
fn window(l: &Leaf, full: &[usize], ranges: &[(usize, usize, usize)]) -> Leaf {
    let pad = l.shape.len() - l.rank;
    let generated = !matches!(l.kind, LeafKind::Full(_));
    let mut w = l.window.clone().unwrap_or_else(|| {
        let own = l.own_shape();
        LeafWindow {
            start: vec![0; own.len()],
            step: vec![1; own.len()],
            source: own,
        }
    });
    let mut shape = l.shape.clone();
    for (d, &(start, step, len)) in ranges.iter().enumerate() {
        if l.shape[d] == 1 && full[d] != 1 {
            continue; // broadcast: one value for every index
        }
        shape[d] = len;
        // The leaf's own axis along domain axis `d` (none for a padding axis, whose length is 1).
        let own = if !l.axes.is_empty() {
            Some(l.axes[d])
        } else {
            d.checked_sub(pad)
        };
        if let (true, Some(o)) = (generated, own) {
            w.start[o] += w.step[o] * start;
            w.step[o] *= step;
        }
    }
    Leaf {
        kind: l.kind.clone(),
        shape,
        rank: l.rank,
        dtype: l.dtype,
        axes: l.axes.clone(),
        window: generated.then_some(w),
    }
}
