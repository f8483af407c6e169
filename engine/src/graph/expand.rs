//! Expansion of a layered [`Graph`] into chunk tasks, culled: starting from the output layers' chunks,
//! only the tasks they transitively read are created, so a slice of a huge array computes only the
//! chunks it needs. Tasks are numbered in depth-first post-order from the outputs, which is both a
//! topological order and the priority the executor runs ready tasks in: it finishes a subtree (say, one
//! group of a tree reduction) before starting the next, so finished chunks are released early.
//!
//! [`TaskGraph::expand_limited`] stops as soon as more tasks than a limit would be created, and the
//! table from (layer, block) to task id is dense only for small grids: a slice of four chunks of a
//! 10^8-chunk array must cost four tasks, not a 400 MB table.

use std::collections::HashMap;
use std::fmt::Write as _;

use smallvec::SmallVec;

use super::{ArrayMeta, Block, ChunkKey, Graph};
use crate::error::{Error, Result};
use crate::meta::block_indices;
use crate::ops::Op;

/// One chunk task: compute `block` of layer `layer` from the tasks in `deps`, in the op's order.
/// 56 bytes with no allocation of its own for up to four inputs (most tasks: elementwise steps,
/// tree-reduction combines of up to four partials); a job of a million tasks holds a million.
#[derive(Clone, Debug)]
pub struct Task {
    pub layer: u32,
    pub block: Block,
    pub deps: Deps,
}

/// A task's input task ids, inline up to four (the same 24 bytes a `Vec` takes, without its heap
/// allocation of at least 32 bytes).
pub type Deps = SmallVec<[u32; 4]>;

/// The culled chunk tasks of a graph, in topological (and priority) order.
#[derive(Debug)]
pub struct TaskGraph {
    pub graph: Graph,
    pub tasks: Vec<Task>,
    /// Per graph output, its chunk tasks in C order of block index.
    pub outputs: Vec<Vec<u32>>,
}

/// Grids of at most this many chunks get a dense task table (also bounded by 4 × the task limit).
const DENSE_MAX_CHUNKS: usize = 1 << 24;

/// Task ids of one layer's expanded blocks.
enum Slots {
    /// Nothing expanded yet.
    Empty,
    /// By flat block index; `u32::MAX` where not expanded. For grids small enough to allocate whole.
    Dense(Vec<u32>),
    /// By block index, for grids whose dense table would be large compared to what may be expanded.
    Sparse(HashMap<Block, u32>),
}

struct Frame {
    layer: u32,
    block: Block,
    deps: Vec<(u32, Block)>,
    next: usize,
    dep_ids: Deps,
}

impl TaskGraph {
    /// Expands the chunk tasks the graph's outputs need.
    pub fn expand(graph: Graph) -> Result<TaskGraph> {
        TaskGraph::expand_limited(graph, usize::MAX, "no limit")
    }

    /// Expands the chunk tasks the graph's outputs need, failing with [`Error::LimitExceeded`] as soon
    /// as more than `max_tasks` would be created; `setting` names the option that raises the limit
    /// (say "--max-tasks"), for the message. Memory stays proportional to the tasks created, whatever
    /// the size of the layers' chunk grids.
    pub fn expand_limited(graph: Graph, max_tasks: usize, setting: &str) -> Result<TaskGraph> {
        let layers = graph.layers();
        let too_many = || Error::LimitExceeded {
            what: "this graph expands to more than".into(),
            amount: max_tasks as u64,
            unit: "tasks",
            limit: max_tasks as u64,
            setting: setting.to_string(),
            hint: String::new(),
        };
        let dense_max = max_tasks.saturating_mul(4).min(DENSE_MAX_CHUNKS);
        let input_pos: Vec<Vec<u32>> = layers
            .iter()
            .map(|l| {
                l.inputs
                    .iter()
                    .map(|i| {
                        graph
                            .position(*i)
                            .map(|p| p as u32)
                            .ok_or_else(|| Error::InvalidGraph {
                                reason: format!(
                                    "layer {} reads {i}, which is not in the graph",
                                    l.id
                                ),
                            })
                    })
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        // Task ids by layer and block, allocated per layer on first use: a dense table by flat block
        // index where the grid is small (cheaper than hashing block indices), a map where it is not.
        let mut index: Vec<Slots> = (0..layers.len()).map(|_| Slots::Empty).collect();
        let flat = |layer: u32, block: &[u32]| -> usize {
            let sizes = layers[layer as usize].meta.chunks.sizes();
            block
                .iter()
                .zip(sizes)
                .fold(0usize, |acc, (&b, axis)| acc * axis.len() + b as usize)
        };
        let lookup = |index: &[Slots], layer: u32, block: &[u32]| -> Option<u32> {
            match &index[layer as usize] {
                Slots::Empty => None,
                Slots::Dense(v) => {
                    let id = v[flat(layer, block)];
                    (id != u32::MAX).then_some(id)
                }
                Slots::Sparse(m) => m.get(block).copied(),
            }
        };
        let mut tasks: Vec<Task> = Vec::new();
        let mut outputs = Vec::with_capacity(graph.outputs().len());
        let mut scratch = Vec::new();
        let input_metas: Vec<Vec<&ArrayMeta>> = input_pos
            .iter()
            .map(|ps| ps.iter().map(|&p| &layers[p as usize].meta).collect())
            .collect();

        // A combine task reads its whole group, each a distinct task: a group larger than the limit
        // is refused before its dependency list (2^32 entries for a 32-axis grid) is built.
        let fan_in: Vec<u64> = layers
            .iter()
            .zip(&input_metas)
            .map(|(l, metas)| match (&l.op, metas.first()) {
                (Op::ReduceCombine(c), Some(input)) => {
                    c.axes.iter().zip(&c.group).fold(1u64, |acc, (&axis, &g)| {
                        let n = input.chunks.sizes().get(axis).map_or(1, Vec::len);
                        acc.saturating_mul(g.min(n) as u64)
                    })
                }
                _ => 0,
            })
            .collect();
        let dep_list = |layer: u32,
                        block: &Block,
                        scratch: &mut Vec<(usize, Block)>|
         -> Result<Vec<(u32, Block)>> {
            let l = &layers[layer as usize];
            let metas = &input_metas[layer as usize];
            if fan_in[layer as usize] > max_tasks as u64 {
                return Err(too_many());
            }
            scratch.clear();
            l.op.deps(l, metas, block, scratch);
            // Each dep is a distinct task: a list longer than the limit cannot fit it.
            if scratch.len() > max_tasks {
                return Err(too_many());
            }
            scratch
                .drain(..)
                .map(|(i, b)| {
                    let Some(&p) = input_pos[layer as usize].get(i) else {
                        return Err(Error::InvalidGraph {
                            reason: format!(
                                "{} reads input {i}, but the layer has {}",
                                ChunkKey {
                                    layer: l.id,
                                    block: block.clone()
                                },
                                metas.len()
                            ),
                        });
                    };
                    let sizes = layers[p as usize].meta.chunks.sizes();
                    if b.len() != sizes.len()
                        || b.iter()
                            .zip(sizes)
                            .any(|(&x, axis)| x as usize >= axis.len())
                    {
                        return Err(Error::InvalidGraph {
                            reason: format!(
                                "{} reads chunk {}, outside its grid of {:?} blocks",
                                ChunkKey {
                                    layer: l.id,
                                    block: block.clone()
                                },
                                ChunkKey {
                                    layer: layers[p as usize].id,
                                    block: b
                                },
                                layers[p as usize].meta.chunks.numblocks()
                            ),
                        });
                    }
                    Ok((p, b))
                })
                .collect()
        };

        for out in graph.outputs() {
            let layer = graph.position(*out).ok_or_else(|| Error::InvalidGraph {
                reason: format!("output {out} is not in the graph"),
            })? as u32;
            let nb = layers[layer as usize].meta.chunks.numblocks();
            let mut ids = Vec::new();
            for block in block_indices(&nb) {
                let block: Block = block.into_iter().collect();
                if let Some(id) = lookup(&index, layer, &block) {
                    ids.push(id);
                    continue;
                }
                let deps = dep_list(layer, &block, &mut scratch)?;
                let mut stack = vec![Frame {
                    layer,
                    block,
                    deps,
                    next: 0,
                    dep_ids: Deps::new(),
                }];
                while let Some(top) = stack.last_mut() {
                    if top.next < top.deps.len() {
                        let (dl, db) = top.deps[top.next].clone();
                        if let Some(id) = lookup(&index, dl, &db) {
                            top.dep_ids.push(id);
                            top.next += 1;
                        } else {
                            let deps = dep_list(dl, &db, &mut scratch)?;
                            stack.push(Frame {
                                layer: dl,
                                block: db,
                                deps,
                                next: 0,
                                dep_ids: Deps::new(),
                            });
                        }
                        continue;
                    }
                    let f = stack.pop().expect("non-empty");
                    // Ids are u32 (u32::MAX marks an empty dense slot).
                    if tasks.len() >= max_tasks.min(u32::MAX as usize - 1) {
                        return Err(too_many());
                    }
                    let id = tasks.len() as u32;
                    let slots = &mut index[f.layer as usize];
                    if let Slots::Empty = slots {
                        let n = layers[f.layer as usize].meta.chunks.num_chunks();
                        *slots = if n <= dense_max {
                            Slots::Dense(vec![u32::MAX; n])
                        } else {
                            Slots::Sparse(HashMap::new())
                        };
                    }
                    match slots {
                        Slots::Dense(v) => v[flat(f.layer, &f.block)] = id,
                        Slots::Sparse(m) => {
                            m.insert(f.block.clone(), id);
                        }
                        Slots::Empty => unreachable!("allocated above"),
                    }
                    tasks.push(Task {
                        layer: f.layer,
                        block: f.block,
                        deps: f.dep_ids,
                    });
                    if let Some(parent) = stack.last_mut() {
                        parent.dep_ids.push(id);
                        parent.next += 1;
                    } else {
                        ids.push(id);
                    }
                }
            }
            outputs.push(ids);
        }
        Ok(TaskGraph {
            graph,
            tasks,
            outputs,
        })
    }

    /// The key of a task.
    pub fn key(&self, task: u32) -> ChunkKey {
        let t = &self.tasks[task as usize];
        ChunkKey {
            layer: self.graph.layers()[t.layer as usize].id,
            block: t.block.clone(),
        }
    }

    /// The tasks as Graphviz DOT, one node per chunk task.
    pub fn to_dot(&self) -> String {
        let mut s =
            String::from("digraph tasks {\n  rankdir=BT;\n  node [shape=box, fontsize=10];\n");
        for (i, t) in self.tasks.iter().enumerate() {
            let layer = &self.graph.layers()[t.layer as usize];
            let _ = writeln!(
                s,
                "  t{i} [label=\"{}\\n{}\"];",
                self.key(i as u32),
                layer.op.describe(layer).replace('"', "'")
            );
            for d in &t.deps {
                let _ = writeln!(s, "  t{d} -> t{i};");
            }
        }
        s.push_str("}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_56_bytes_and_its_inputs_need_no_allocation_up_to_four() {
        assert_eq!(std::mem::size_of::<Task>(), 56);
        // An elementwise step of two arrays (two inputs per task) and a sum over 16 chunks (tree
        // combines of a few partials each).
        let x = crate::ones::<f64>(&[64, 64], [16, 16]).unwrap();
        let y = crate::zeros::<f64>(&[64, 64], [16, 16]).unwrap();
        let s = (&x + &y).sum().unwrap();
        let tg = TaskGraph::expand(s.graph()).unwrap();
        let mut combines = 0;
        for (id, t) in tg.tasks.iter().enumerate() {
            // Post-order: every input comes before its consumer.
            assert!(
                t.deps.iter().all(|&d| (d as usize) < id),
                "task {id}: {t:?}"
            );
            assert_eq!(t.deps.spilled(), t.deps.len() > 4, "task {id}: {t:?}");
            combines += usize::from(t.deps.len() > 2);
        }
        assert!(
            combines > 0,
            "no combine task with several inputs: {:?}",
            tg.tasks
        );
    }
}
