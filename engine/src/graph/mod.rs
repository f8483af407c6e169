//! The layered task graph. A [`Layer`] is one operation over whole arrays: its [`Op`], the layers it
//! reads, and the chunk grid it produces. A [`Graph`] is the layers needed for some outputs, in
//! dependency order. Chunk tasks are derived from layers late ([`expand`]), so a graph's size grows with
//! the number of operations, not with the number of chunks.
//!
//! A layer's [`LayerId`] is a deterministic token of its op and its inputs' ids: the same subexpression
//! built twice is the same layer, and so the same set of tasks.

pub mod check;
pub mod estimate;
pub mod expand;
pub mod limits;
pub mod validate;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::meta::{Chunks, DType};
use crate::ops::Op;

/// A block index: the position of a chunk in its array's chunk grid.
pub type Block = SmallVec<[u32; 4]>;

/// The part of an input chunk a task reads, as a range of the chunk's own indices per axis. Ops
/// whose tasks read only part of each input ([`Op::dep_regions`]: a rechunk reads the overlap of
/// each source chunk with its target chunk) let executors fetch, read back from spill files and
/// count only that part, so an all-to-all rechunk is one task per target chunk that moves the
/// array's bytes once, not every source chunk whole for each target.
pub type Region = SmallVec<[std::ops::Range<usize>; 4]>;

/// Elements in `region`.
pub fn region_elems(region: &[std::ops::Range<usize>]) -> usize {
    region.iter().map(|r| r.len()).product()
}

/// Whether `region` is the whole of a chunk of `shape` (then the chunk itself is read).
pub fn region_is_whole(region: &[std::ops::Range<usize>], shape: &[usize]) -> bool {
    region.len() == shape.len()
        && region
            .iter()
            .zip(shape)
            .all(|(r, &n)| r.start == 0 && r.end == n)
}

/// The identity of a layer: the op's name and a 64-bit token of everything that determines its values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerId {
    pub name: &'static str,
    pub token: u64,
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:016x}", self.name, self.token)
    }
}

impl fmt::Debug for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The key of one chunk task: its layer and block index, displayed as `add-3f9c…/(0, 1)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub layer: LayerId,
    pub block: Block,
}

impl fmt::Display for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/(", self.layer)?;
        for (i, b) in self.block.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{b}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Shape, chunk grid and element type of the array a layer produces.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayMeta {
    pub chunks: Chunks,
    pub dtype: DType,
}

impl ArrayMeta {
    pub fn shape(&self) -> Vec<usize> {
        self.chunks.shape()
    }
    pub fn ndim(&self) -> usize {
        self.chunks.ndim()
    }
}

/// One operation over whole arrays.
#[derive(Debug)]
pub struct Layer {
    pub id: LayerId,
    pub op: Op,
    pub inputs: Vec<LayerId>,
    pub meta: ArrayMeta,
}

impl Layer {
    /// Builds a layer, deriving its id from the op and the inputs.
    pub fn new(op: Op, inputs: Vec<LayerId>, meta: ArrayMeta) -> Self {
        let mut t = Tokenizer::new(op.name());
        op.tokenize(&mut t);
        for i in &inputs {
            t.u64(i.token);
            t.str(i.name);
        }
        t.dtype(meta.dtype);
        for axis in meta.chunks.sizes() {
            t.usizes(axis);
        }
        let id = LayerId {
            name: op.name(),
            token: t.finish(),
        };
        Layer {
            id,
            op,
            inputs,
            meta,
        }
    }
}

/// The layers needed for a set of outputs, inputs before consumers.
#[derive(Clone, Debug)]
pub struct Graph {
    layers: Vec<Arc<Layer>>,
    index: HashMap<LayerId, usize>,
    outputs: Vec<LayerId>,
}

impl Graph {
    /// Builds a graph from layers in dependency order (every input before its consumers).
    pub fn new(layers: Vec<Arc<Layer>>, outputs: Vec<LayerId>) -> Self {
        let index = layers.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
        Graph {
            layers,
            index,
            outputs,
        }
    }

    pub fn layers(&self) -> &[Arc<Layer>] {
        &self.layers
    }

    pub fn outputs(&self) -> &[LayerId] {
        &self.outputs
    }

    pub fn get(&self, id: LayerId) -> Option<&Arc<Layer>> {
        self.index.get(&id).map(|&i| &self.layers[i])
    }

    pub fn position(&self, id: LayerId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// Number of chunk tasks if every layer were expanded in full, without culling or fusion.
    pub fn num_chunk_tasks(&self) -> usize {
        self.layers.iter().map(|l| l.meta.chunks.num_chunks()).sum()
    }

    /// The graph as Graphviz DOT, one node per layer.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph layers {\n  rankdir=BT;\n  node [shape=box];\n");
        for l in &self.layers {
            s.push_str(&format!(
                "  \"{}\" [label=\"{}\\n{:?} {} in {} chunks\"];\n",
                l.id,
                l.op.describe(l),
                l.meta.shape(),
                l.meta.dtype,
                l.meta.chunks.num_chunks()
            ));
            for i in &l.inputs {
                s.push_str(&format!("  \"{i}\" -> \"{}\";\n", l.id));
            }
        }
        s.push_str("}\n");
        s
    }
}

/// Builds the deterministic 64-bit token of a layer (FNV-1a over tagged fields, then a SplitMix64
/// finalizer). Written out rather than taken from `std::hash` so that every process and build of the
/// same version derives the same keys.
#[derive(Debug)]
pub struct Tokenizer {
    state: u64,
}

impl Tokenizer {
    pub fn new(name: &str) -> Self {
        let mut t = Tokenizer {
            state: 0xcbf2_9ce4_8422_2325,
        };
        t.str(name);
        t
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= b as u64;
            self.state = self.state.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Hashes bulk data eight bytes at a time; used for the contents of `from_array` inputs.
    pub fn bulk(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        let mut acc = self.state ^ bytes.len() as u64;
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("chunk of 8"));
            acc = (acc ^ w)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29);
        }
        self.state = acc;
        self.bytes(chunks.remainder());
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    pub fn usizes(&mut self, v: &[usize]) {
        self.u64(v.len() as u64);
        let bytes: Vec<u8> = v.iter().flat_map(|&x| (x as u64).to_le_bytes()).collect();
        self.bulk(&bytes);
    }

    pub fn dtype(&mut self, d: DType) {
        self.bytes(&[d as u8]);
    }

    pub fn finish(&self) -> u64 {
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
