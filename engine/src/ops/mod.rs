//! The op vocabulary: what a layer — and so each of its chunk tasks — does. [`Op`] is one closed enum
//! with no closures on the path that crosses processes ([`Op::MapBlocks`] is the one local-only
//! variant, and says so). Each variant's file derives which input blocks an output block reads
//! (`deps`) and computes one block (`run`).

pub mod elementwise;
pub mod map_blocks;
pub mod matmul;
pub mod program;
pub mod reduce;
pub mod source;
pub mod structure;

use std::sync::Arc;

use crate::data::ChunkValue;
use crate::error::Result;
use crate::graph::{ArrayMeta, Block, Layer, Tokenizer};

pub use elementwise::{BinaryFn, CmpFn, ElemFunc, UnaryFn};
pub use map_blocks::BlockFn;
pub use matmul::MatmulOp;
pub use program::{Distribution, Instr, Leaf, LeafKind, Program};
pub use reduce::{Finalize, ReduceCombine, ReduceSink, Reduction};
pub use source::{FromArray, Materialized, NpySource};
pub use structure::{AxisSlice, SliceOp};

/// What a layer does.
#[derive(Clone, Debug)]
pub enum Op {
    /// Sources, elementwise math and partial reductions; chains of them fuse into one.
    Blockwise(Box<Program>),
    /// Chunks of an in-memory array.
    FromArray(FromArray),
    /// Chunks read from a `.npy` file.
    Npy(NpySource),
    /// Chunks computed earlier and kept (`persist`).
    Materialized(Materialized),
    /// A level of a tree reduction.
    ReduceCombine(ReduceCombine),
    /// Axis permutation.
    Transpose { perm: Vec<usize> },
    /// Basic slicing: ranges with steps and integer indices.
    Slice(SliceOp),
    /// New chunk boundaries.
    Rechunk,
    /// Reshape of an array chunked only along its first axis into one chunked only along its first axis.
    Reshape,
    /// Joining along an existing axis.
    Concatenate { axis: usize },
    /// Joining along a new axis.
    Stack { axis: usize },
    /// Partial products of a blocked matrix product: block (i, j, k) is `a[i, k] @ b[k, j]`, with
    /// either operand possibly read from its untransposed storage.
    Matmul(MatmulOp),
    /// A symmetric matrix from its upper block triangle: block (i, j) below the diagonal is block
    /// (j, i) transposed, so the lower blocks' producers are never run.
    MirrorUpper,
    /// A user closure applied to every chunk (local executor only).
    MapBlocks(BlockFn),
}

impl Op {
    /// A short name, used in layer ids.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Blockwise(p) => match (&p.reduce, p.instrs.last(), p.leaves.first()) {
                (Some(r), _, _) => r.reduction.name(),
                (None, Some(i), _) => i.func.name(),
                (None, None, Some(l)) => match l.kind {
                    LeafKind::Random { .. } => "random",
                    LeafKind::Full(_) => "full",
                    LeafKind::Arange { .. } => "arange",
                    LeafKind::Linspace { .. } => "linspace",
                    LeafKind::Input(_) => "identity",
                },
                (None, None, None) => "empty",
            },
            Op::FromArray(_) => "array",
            Op::Npy(_) => "from-npy",
            Op::Materialized(_) => "persist",
            Op::ReduceCombine(c) => match c.finalize {
                Some(_) => c.reduction.name(),
                None => "combine",
            },
            Op::Transpose { .. } => "transpose",
            Op::Slice(_) => "getitem",
            Op::Rechunk => "rechunk",
            Op::Reshape => "reshape",
            Op::Concatenate { .. } => "concatenate",
            Op::Stack { .. } => "stack",
            Op::Matmul(_) => "matmul",
            Op::MirrorUpper => "mirror-upper",
            Op::MapBlocks(_) => "map-blocks",
        }
    }

    /// A one-line description for DOT output.
    pub fn describe(&self, layer: &Layer) -> String {
        match self {
            Op::Blockwise(p) => p.describe(),
            Op::ReduceCombine(c) => reduce::describe(layer, c),
            Op::Transpose { perm } => format!("transpose {perm:?}"),
            Op::Concatenate { axis } => format!("concatenate axis {axis}"),
            Op::Stack { axis } => format!("stack axis {axis}"),
            other => other.name().to_string(),
        }
    }

    /// Feeds everything that determines the op's values to a tokenizer.
    pub fn tokenize(&self, t: &mut Tokenizer) {
        match self {
            Op::Blockwise(p) => p.tokenize(t),
            Op::FromArray(a) => a.tokenize(t),
            Op::Npy(n) => n.tokenize(t),
            Op::Materialized(m) => m.tokenize(t),
            Op::ReduceCombine(c) => {
                t.u64(c.reduction.code());
                t.usizes(&c.axes);
                t.usizes(&c.group);
                if let Some(f) = c.finalize {
                    t.u64(f.keepdims as u64);
                    t.f64(f.ddof);
                    t.dtype(f.dtype);
                }
            }
            Op::Transpose { perm } => t.usizes(perm),
            Op::Slice(s) => s.tokenize(t),
            Op::Rechunk | Op::Reshape | Op::MirrorUpper => {}
            Op::Matmul(m) => {
                t.u64(m.transpose_a as u64);
                t.u64(m.transpose_b as u64);
            }
            Op::Concatenate { axis } | Op::Stack { axis } => t.u64(*axis as u64),
            Op::MapBlocks(f) => t.u64(f.token()),
        }
    }

    /// Whether output block `b` reads exactly block `b` of each input (up to broadcasting), so the
    /// op can be fused with its producers.
    pub fn is_blockwise(&self) -> bool {
        matches!(self, Op::Blockwise(_))
    }

    /// The input blocks output block `block` reads, as (input position, block), in the order `run`
    /// receives them.
    pub fn deps(
        &self,
        layer: &Layer,
        inputs: &[&ArrayMeta],
        block: &[u32],
        out: &mut Vec<(usize, Block)>,
    ) {
        match self {
            Op::Blockwise(p) => p.deps(block, out),
            Op::FromArray(_) | Op::Npy(_) | Op::Materialized(_) => {}
            Op::ReduceCombine(c) => c.deps(inputs[0], block, out),
            Op::Transpose { perm } => structure::transpose_deps(perm, block, out),
            Op::Slice(s) => s.deps(block, out),
            Op::Rechunk => structure::rechunk_deps(&layer.meta, inputs[0], block, out),
            Op::Reshape => structure::reshape_deps(&layer.meta, inputs[0], block, out),
            Op::Concatenate { axis } => structure::concat_deps(*axis, inputs, block, out),
            Op::Stack { axis } => structure::stack_deps(*axis, block, out),
            Op::Matmul(m) => m.deps(block, out),
            Op::MirrorUpper => matmul::mirror_deps(block, out),
            Op::MapBlocks(_) => out.push((0, block.iter().copied().collect())),
        }
    }

    /// Computes output block `block` from the values of its deps.
    pub fn run(
        &self,
        layer: &Layer,
        inputs: &[&ArrayMeta],
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<Arc<ChunkValue>> {
        let value = match self {
            Op::Blockwise(p) => crate::kernels::blockwise::run(p, block, deps)?,
            Op::FromArray(a) => a.run(&layer.meta, block),
            Op::Npy(n) => n.run(&layer.meta, block)?,
            Op::Materialized(m) => return Ok(m.get(&layer.meta, block)),
            Op::ReduceCombine(c) => crate::kernels::reduce::combine(c, &layer.meta, block, deps)?,
            Op::Transpose { perm } => structure::transpose_run(perm, deps)?,
            Op::Slice(s) => s.run(block, deps)?,
            Op::Rechunk => structure::rechunk_run(&layer.meta, inputs[0], block, deps)?,
            Op::Reshape => structure::reshape_run(&layer.meta, inputs[0], block, deps)?,
            Op::Concatenate { .. } => return Ok(deps[0].clone()),
            Op::Stack { axis } => structure::stack_run(*axis, deps)?,
            Op::Matmul(m) => m.run(layer, block, deps)?,
            Op::MirrorUpper => return matmul::mirror_run(block, deps),
            Op::MapBlocks(f) => f.run(&layer.meta, block, deps)?,
        };
        Ok(Arc::new(value))
    }
}
