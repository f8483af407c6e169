//! Transposed sources: a transpose of a blockwise layer that reads no input chunks (random, full,
//! arange, linspace, and elementwise math on them) becomes that program over the transposed domain,
//! with its leaves generated along permuted axes. Generating a value costs about what copying it
//! does, so this saves the transpose's copy and the source chunk held for it; and the source layer,
//! now read once less, can fuse with its remaining reader (`x + x.T` becomes one task per chunk).
//! The transposed layer keeps its id, so output keys do not change.

use std::collections::HashMap;
use std::sync::Arc;

use crate::graph::{Graph, Layer, LayerId};
use crate::meta::Chunks;
use crate::ops::{Leaf, LeafKind, LeafWindow, Op, Program};

/// Rewrites every transpose of an input-free, non-reducing blockwise layer; see the module docs.
pub fn transpose_sources(graph: Graph) -> Graph {
    let by_id: HashMap<LayerId, &Arc<Layer>> = graph.layers().iter().map(|l| (l.id, l)).collect();
    let layers = graph
        .layers()
        .iter()
        .map(|layer| {
            let (Op::Transpose { perm }, [input]) = (&layer.op, layer.inputs.as_slice()) else {
                return layer.clone();
            };
            match by_id.get(input).map(|l| &l.op) {
                Some(Op::Blockwise(p))
                    if p.reduce.is_none()
                        && p.domain.ndim() == perm.len()
                        && p.leaves
                            .iter()
                            .all(|l| !matches!(l.kind, LeafKind::Input(_))) =>
                {
                    Arc::new(Layer {
                        id: layer.id,
                        op: Op::Blockwise(Box::new(permute(p, perm))),
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

/// `p` evaluated over its domain with axes permuted (output axis `d` is `p`'s axis `perm[d]`).
fn permute(p: &Program, perm: &[usize]) -> Program {
    let leaves = p
        .leaves
        .iter()
        .map(|l| {
            let own = |d: usize| if l.axes.is_empty() { d } else { l.axes[d] };
            let constant = matches!(l.kind, LeafKind::Full(_));
            Leaf {
                kind: l.kind.clone(),
                shape: perm.iter().map(|&a| l.shape[a]).collect(),
                rank: if constant { l.rank } else { perm.len() },
                dtype: l.dtype,
                // A constant has no axes to follow.
                axes: if constant {
                    Vec::new()
                } else {
                    perm.iter().map(|&a| own(a)).collect()
                },
                // The window is in the leaf array's own axis order, which permuting keeps; a leaf
                // of lower rank becomes one of the domain's, its new leading axes of length 1.
                window: l.window.as_ref().map(|w| {
                    let pad = if constant { 0 } else { perm.len() - l.rank };
                    let ones = |v: &[usize], x: usize| {
                        std::iter::repeat_n(x, pad)
                            .chain(v.iter().copied())
                            .collect()
                    };
                    LeafWindow {
                        source: ones(&w.source, 1),
                        start: ones(&w.start, 0),
                        step: ones(&w.step, 1),
                    }
                }),
            }
        })
        .collect();
    Program {
        domain: Chunks::from_sizes(perm.iter().map(|&a| p.domain.axis(a).to_vec()).collect()),
        leaves,
        instrs: p.instrs.clone(),
        output: p.output,
        reduce: None,
    }
}
