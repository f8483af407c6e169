//! Rematerialization of cheap sources read in several passes. When a chunk of an input-free blockwise
//! layer (random, full, arange, linspace, and elementwise math on them) is read both by a first pass
//! (say the partials of `x.mean(axis=0)`) and by a consumer that also waits for that pass's result
//! (`x - x.mean(axis=0)`), holding it costs memory for as long as the pass takes: a whole column of
//! chunks in the climatology anomaly, the whole array in the worst order. Generating the chunk again
//! inside the later consumer's program costs only the source's arithmetic, so the source is inlined
//! into every such later consumer and the first pass fuses with what remains.
//!
//! The choice is by cost: a source is duplicated only when regenerating an element costs less than
//! writing it to spill storage and reading it back ([`REMAT_MAX_NS_PER_ELEMENT`]), and only when the
//! whole array is larger than [`REMAT_MIN_BYTES`] (holding less than that is cheaper than any extra
//! work). Consumers in the same pass (two reductions of the same `x`) keep sharing the chunk: the
//! executor runs the second reader right after the first, so it is held briefly.

use std::collections::HashSet;
use std::sync::Arc;

use super::fuse::inline;
use crate::graph::{Graph, Layer, LayerId};
use crate::ops::elementwise::Typing;
use crate::ops::{Distribution, ElemFunc, LeafKind, Op, Program};

/// Most estimated nanoseconds per element for which a source is regenerated rather than held: about
/// what writing eight bytes to local storage and reading them back costs.
pub const REMAT_MAX_NS_PER_ELEMENT: f64 = 16.0;

/// Sources of at most this many bytes in all are held rather than regenerated.
pub const REMAT_MIN_BYTES: usize = 64 << 20;

/// Estimated nanoseconds to generate one element of an input-free program (one core, this
/// generation of x86): the generated leaves plus each instruction.
pub fn source_cost_ns(p: &Program) -> f64 {
    let leaves: f64 = p
        .leaves
        .iter()
        .map(|l| match l.kind {
            LeafKind::Random { dist, .. } => match dist {
                Distribution::Uniform => 1.0,
                Distribution::StandardNormal | Distribution::Integers { .. } => 4.0,
                Distribution::StandardExponential => 8.0,
                // Rejection samplers with several logarithms per value: held, not regenerated.
                Distribution::StandardGamma { .. }
                | Distribution::Beta { .. }
                | Distribution::Poisson { .. }
                | Distribution::Binomial { .. }
                | Distribution::Permutation { .. } => 40.0,
            },
            LeafKind::Full(_) => 0.05,
            LeafKind::Arange { .. } | LeafKind::Linspace { .. } => 0.3,
            LeafKind::Input(_) => 0.0,
        })
        .sum();
    let instrs: f64 = p
        .instrs
        .iter()
        .map(|i| match i.func {
            // Transcendental functions (exp, log, sin …) are the float-typed unary ones.
            ElemFunc::Unary(f) if f.typing() == Typing::Float => 5.0,
            _ => 0.5,
        })
        .sum();
    leaves + instrs
}

/// Inlines cheap input-free sources into their later-pass consumers; see the module docs.
pub fn rematerialize(graph: Graph) -> Graph {
    let outputs: HashSet<LayerId> = graph.outputs().iter().copied().collect();
    let mut layers: Vec<Arc<Layer>> = graph.layers().to_vec();
    let mut dropped: HashSet<LayerId> = HashSet::new();
    for p in 0..layers.len() {
        let source = layers[p].clone();
        let Op::Blockwise(prog) = &source.op else {
            continue;
        };
        if prog.reduce.is_some()
            || !source.inputs.is_empty()
            || outputs.contains(&source.id)
            || source_cost_ns(prog) > REMAT_MAX_NS_PER_ELEMENT
        {
            continue;
        }
        let elements: usize = source.meta.shape().iter().product();
        if elements.saturating_mul(source.meta.dtype.size()) <= REMAT_MIN_BYTES {
            continue;
        }
        // Layers that depend on the source, directly or not (layers are in dependency order).
        let mut below: HashSet<LayerId> = HashSet::from([source.id]);
        for l in &layers[p + 1..] {
            if l.inputs.iter().any(|i| below.contains(i)) {
                below.insert(l.id);
            }
        }
        let mut readers_left = 0;
        for slot_c in layers[p + 1..].iter_mut() {
            let consumer = slot_c.clone();
            let Some(slot) = consumer.inputs.iter().position(|i| *i == source.id) else {
                continue;
            };
            let later = consumer
                .inputs
                .iter()
                .any(|i| *i != source.id && below.contains(i));
            let fused = match (&consumer.op, later) {
                (Op::Blockwise(_), true) => inline(&consumer, slot, &source),
                _ => None,
            };
            match fused {
                Some(f) => *slot_c = Arc::new(f),
                None => readers_left += 1,
            }
        }
        if readers_left == 0 {
            dropped.insert(source.id);
        }
    }
    let layers = layers
        .into_iter()
        .filter(|l| !dropped.contains(&l.id))
        .collect();
    Graph::new(layers, graph.outputs().to_vec())
}
