//! Blockwise fusion: a blockwise layer read by exactly one other blockwise layer (and not itself an
//! output) is inlined into its consumer's program. The fused layer keeps the consumer's id, so output
//! keys do not change.

use std::collections::HashMap;
use std::sync::Arc;

use crate::graph::{Graph, Layer, LayerId};
use crate::ops::{Instr, Leaf, LeafKind, Op, Program};

/// Fuses chains of blockwise layers; see the module docs.
pub fn fuse_blockwise(graph: Graph) -> Graph {
    let mut consumers: HashMap<LayerId, usize> = HashMap::new();
    for l in graph.layers() {
        for i in &l.inputs {
            *consumers.entry(*i).or_default() += 1;
        }
    }
    for o in graph.outputs() {
        *consumers.entry(*o).or_default() += 1;
    }

    let mut current: HashMap<LayerId, Arc<Layer>> = HashMap::new();
    let mut order: Vec<LayerId> = Vec::new();
    for layer in graph.layers() {
        let mut layer = layer.clone();
        if let Op::Blockwise(_) = layer.op {
            loop {
                let candidate = layer.inputs.iter().enumerate().find_map(|(slot, id)| {
                    let producer = current.get(id)?;
                    match &producer.op {
                        Op::Blockwise(p)
                            if p.reduce.is_none() && consumers.get(id).copied() == Some(1) =>
                        {
                            Some((slot, producer.clone()))
                        }
                        _ => None,
                    }
                });
                let Some((slot, producer)) = candidate else {
                    break;
                };
                match inline(&layer, slot, &producer) {
                    Some(fused) => {
                        current.remove(&producer.id);
                        layer = Arc::new(fused);
                    }
                    None => break,
                }
            }
        }
        order.push(layer.id);
        current.insert(layer.id, layer);
    }
    let layers = order
        .into_iter()
        .filter_map(|id| current.remove(&id))
        .collect();
    Graph::new(layers, graph.outputs().to_vec())
}

/// Inlines `producer`, read through input `slot`, into `consumer`; None if their chunks do not line up.
pub(super) fn inline(consumer: &Layer, slot: usize, producer: &Layer) -> Option<Layer> {
    let (Op::Blockwise(c), Op::Blockwise(p)) = (&consumer.op, &producer.op) else {
        return None;
    };
    let rank = c.domain.ndim();
    let pad = rank.checked_sub(p.domain.ndim())?;
    let full = c.domain.shape();
    let c_leaf = c
        .leaves
        .iter()
        .position(|l| l.kind == LeafKind::Input(slot))?;
    // The producer's chunks must match the consumer's wherever the producer is not broadcast.
    for a in 0..p.domain.ndim() {
        let b = c.leaves[c_leaf].shape[a + pad] == 1 && full[a + pad] != 1;
        if !b && p.domain.axis(a) != c.domain.axis(a + pad) {
            return None;
        }
    }

    // New input list: the consumer's without `slot`, then the producer's inputs not already read.
    let mut inputs: Vec<LayerId> = consumer
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != slot)
        .map(|(_, id)| *id)
        .collect();
    let input_index = |inputs: &mut Vec<LayerId>, id: LayerId| -> usize {
        match inputs.iter().position(|x| *x == id) {
            Some(i) => i,
            None => {
                inputs.push(id);
                inputs.len() - 1
            }
        }
    };

    let mut leaves: Vec<Leaf> = Vec::new();
    let mut c_map: Vec<u32> = vec![u32::MAX; c.leaves.len() + c.instrs.len()];
    let mut p_map: Vec<u32> = vec![u32::MAX; p.leaves.len() + p.instrs.len()];
    for (i, leaf) in c.leaves.iter().enumerate() {
        if i == c_leaf {
            continue;
        }
        let mut leaf = leaf.clone();
        if let LeafKind::Input(k) = leaf.kind {
            leaf.kind = LeafKind::Input(input_index(&mut inputs, consumer.inputs[k]));
        }
        c_map[i] = leaves.len() as u32;
        leaves.push(leaf);
    }
    for (i, leaf) in p.leaves.iter().enumerate() {
        let mut leaf = leaf.clone();
        let mut shape = vec![1; pad];
        shape.extend_from_slice(&leaf.shape);
        leaf.shape = shape;
        if !leaf.axes.is_empty() {
            // The padding axes are new leading axes of the generated array too.
            leaf.axes = (0..pad).chain(leaf.axes.iter().map(|&a| a + pad)).collect();
            leaf.rank += pad;
            if let Some(w) = &mut leaf.window {
                // ... and of its window's source, of length 1.
                let ones = |v: &[usize], x: usize| {
                    std::iter::repeat_n(x, pad)
                        .chain(v.iter().copied())
                        .collect()
                };
                w.source = ones(&w.source, 1);
                w.start = ones(&w.start, 0);
                w.step = ones(&w.step, 1);
            }
        }
        if let LeafKind::Input(k) = leaf.kind {
            let idx = input_index(&mut inputs, producer.inputs[k]);
            leaf.kind = LeafKind::Input(idx);
            if let Some(existing) = leaves.iter().position(|l| l.kind == leaf.kind) {
                p_map[i] = existing as u32;
                continue;
            }
        }
        p_map[i] = leaves.len() as u32;
        leaves.push(leaf);
    }
    let mut next = leaves.len() as u32;
    let mut instrs: Vec<Instr> = Vec::with_capacity(p.instrs.len() + c.instrs.len());
    for (k, ins) in p.instrs.iter().enumerate() {
        let mut ins = ins.clone();
        for a in ins.args.iter_mut() {
            *a = p_map[*a as usize];
        }
        p_map[p.leaves.len() + k] = next;
        next += 1;
        instrs.push(ins);
    }
    c_map[c_leaf] = p_map[p.output as usize];
    for (k, ins) in c.instrs.iter().enumerate() {
        let mut ins = ins.clone();
        for a in ins.args.iter_mut() {
            *a = c_map[*a as usize];
        }
        c_map[c.leaves.len() + k] = next;
        next += 1;
        instrs.push(ins);
    }
    let program = Program {
        domain: c.domain.clone(),
        leaves,
        instrs,
        output: c_map[c.output as usize],
        reduce: c.reduce.clone(),
    };
    Some(Layer {
        id: consumer.id,
        op: Op::Blockwise(Box::new(program)),
        inputs,
        meta: consumer.meta.clone(),
    })
}
