//! The op vocabulary: what a layer — and so each of its chunk tasks — does. [`Op`] is one closed enum
//! with no closures on the path that crosses processes ([`Op::MapBlocks`] is the one local-only
//! variant, and says so). Each variant's file owns the variant's metadata rule (the output chunk grid
//! and dtype from the op's parameters and its inputs' metadata, [`Op::output_meta`]), derives which
//! input blocks an output block reads (`deps`) and computes one block (`run`).
//!
//! The metadata rule is the one place an op's output shape, chunks and dtype are worked out: the
//! array builders call it to make a layer's meta, and the graph validator calls it again on a graph
//! from outside the process and compares with the meta the layer declares, so the two cannot
//! disagree.

pub mod elementwise;
pub mod fft;
pub mod histogram;
pub mod linalg;
pub mod map_blocks;
pub mod mask;
pub mod matmul;
pub mod overlap;
pub mod persisted;
pub mod program;
pub mod quantile;
pub mod reduce;
pub mod scan;
pub mod search;
pub mod sort;
pub mod source;
pub mod structure;
pub mod take;
pub mod take_along;
pub mod topk;
pub mod vindex;
pub mod zarr;

use std::sync::Arc;

use crate::data::ChunkValue;
use crate::error::Error;
use crate::error::Result;
use crate::graph::{ArrayMeta, Block, Layer, LayerId, Region, Tokenizer};
use crate::meta::Chunks;

pub use elementwise::{BinaryFn, CmpFn, ElemFunc, UnaryFn};
pub use fft::{FftKind, FftNorm, FftOp};
pub use histogram::{BinCountOp, HistogramOp};
pub use linalg::{LinalgKind, LinalgOp};
pub use map_blocks::BlockFn;
pub use mask::{MaskOp, MaskStage};
pub use matmul::MatmulOp;
pub use overlap::{Boundary, OverlapOp, TrimOp};
pub use persisted::{Keeper, Persisted};
pub use program::{
    Distribution, Instr, Leaf, LeafKind, LeafWindow, POISSON_MAX_LAM, ParamF64, Program,
};
pub use quantile::QuantileOp;
pub use reduce::{Finalize, ReduceCombine, ReduceSink, Reduction};
pub use scan::{ScanFn, ScanOp};
pub use search::{IsInOp, SearchSortedOp};
pub use sort::{SortOp, SortStage};
pub use source::{FromArray, Materialized, NpySource};
pub use structure::{AxisSlice, SliceOp};
pub use take::TakeOp;
pub use take_along::TakeAlongOp;
pub use topk::TopKOp;
pub use vindex::VIndexOp;
pub use zarr::{ZarrSource, ZarrWrite};

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
    /// A cumulative sum or product along one axis: block `i` along it reads blocks `0..=i`.
    Scan(ScanOp),
    /// Quantiles or the median along one axis that is one chunk.
    Quantile(QuantileOp),
    /// Chunks read from a Zarr store, one store chunk (or group of them) per block.
    ZarrSource(ZarrSource),
    /// Each input chunk written into a Zarr store by the task that holds it; one element (the count
    /// written) per block.
    ZarrWrite(ZarrWrite),
    /// Positions chosen by a list of indices along one axis.
    Take(TakeOp),
    /// One stage of a sort or argsort along one axis of any chunking.
    Sort(SortOp),
    /// numpy's `searchsorted`: each value's insertion index in a sorted 1-D table.
    SearchSorted(SearchSortedOp),
    /// numpy's `isin`: whether each element is in a test table.
    IsIn(IsInOp),
    /// Per-block histogram counts (1-D or d-dimensional), summed by a reduction above.
    Histogram(HistogramOp),
    /// Per-block `bincount` counts, summed by a reduction above.
    BinCount(BinCountOp),
    /// One level of a `topk` / `argtopk` tree reduction along one axis.
    TopK(TopKOp),
    /// A step of TSQR on row blocks, or a factorization of a matrix held in one chunk
    /// (`tessera::linalg`).
    Linalg(LinalgOp),
    /// Chunks kept on a cluster's workers by an earlier job of the same client
    /// (`persist_on(&client)`); readable only on that cluster.
    Persisted(Persisted),
    /// Every block grown by its neighbours' edge slabs (dask's `overlap`): block `b` reads its
    /// neighbours along each axis (and, for a periodic boundary, the block at the other end).
    Overlap(OverlapOp),
    /// Every block cut by the margins an overlap added (dask's `trim_internal`).
    Trim(TrimOp),
    /// A stage of a boolean-mask selection on flat arrays: per-chunk counts of the mask, then the
    /// selected values or positions with those counts fixing the output chunks.
    Mask(MaskOp),
    /// A discrete Fourier transform along one axis that is one chunk (`tessera::fft`).
    Fft(FftOp),
    /// Point indexing (dask's `vindex`): points known when the graph is built, each output block
    /// reading only the source blocks its points fall in.
    VIndex(VIndexOp),
    /// `take_along_axis` with indices that are data: block `b` reads its block of indices and the
    /// values' blocks along the axis in the same lanes.
    TakeAlong(TakeAlongOp),
}

/// What a layer's chunks hold, which decides who may read them.
#[derive(Clone, Debug, PartialEq)]
pub enum Holds {
    /// Array chunks of the layer's dtype.
    Array,
    /// Partial reductions (sums, moments, arg pairs) that only a [`ReduceCombine`] can read.
    Partial {
        reduction: Reduction,
        axes: Vec<usize>,
    },
    /// Matmul's partial products: arrays, summed by a combine over axis 2.
    Products,
}

/// One input of an op, as its metadata rule sees it: which layer it is (for messages), its meta,
/// and what its chunks hold.
#[derive(Clone, Debug)]
pub struct InputMeta<'a> {
    pub id: LayerId,
    pub meta: &'a ArrayMeta,
    pub holds: Holds,
}

/// What an op's metadata rule derives: the layer's meta, and how each part of it was derived (used
/// to explain a mismatch with the meta a layer declares).
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    pub meta: ArrayMeta,
    /// How the chunk grid follows, e.g. "permuting its input's chunks".
    pub chunks_rule: String,
    /// How the dtype follows, e.g. "keeping its input's dtype".
    pub dtype_rule: String,
}

impl Derived {
    fn new(chunks: Chunks, dtype: crate::meta::DType, chunks_rule: &str, dtype_rule: &str) -> Self {
        Derived {
            meta: ArrayMeta { chunks, dtype },
            chunks_rule: chunks_rule.to_string(),
            dtype_rule: dtype_rule.to_string(),
        }
    }
}

/// The rule's reason for refusing an op: a sentence the caller wraps with the layer it is about.
pub(crate) type Reason = String;

/// Why a metadata rule has no meta to derive: what the op or its inputs get wrong.
pub(crate) type RuleResult<T> = std::result::Result<T, Reason>;

/// The one input of an op that reads exactly one.
pub(crate) fn one_input<'b, 'a>(
    inputs: &'b [InputMeta<'a>],
    op: &str,
) -> RuleResult<&'b InputMeta<'a>> {
    match inputs {
        [i] => Ok(i),
        _ => Err(format!(
            "{op} reads exactly one input, this layer has {}",
            inputs.len()
        )),
    }
}

/// Ops that see a whole axis in each block (FFT, quantiles) need it in range and in one chunk;
/// `does` says what the op does along it ("transforms", "takes quantiles"). The builders rechunk
/// first; a graph that arrives without it is refused with the hint.
pub(crate) fn whole_axis(input: &InputMeta<'_>, axis: usize, does: &str) -> RuleResult<()> {
    let m = input.meta;
    if axis >= m.ndim() {
        return Err(format!(
            "{does} along axis {axis}, out of range for rank {}",
            m.ndim()
        ));
    }
    let chunks = m.chunks.axis(axis).len();
    if chunks != 1 {
        return Err(format!(
            "its input {} has {chunks} chunks along axis {axis}, where it needs one: \
             rechunk that axis to one chunk first",
            input.id
        ));
    }
    Ok(())
}

/// Sources read no input.
pub(crate) fn no_inputs(inputs: &[InputMeta<'_>], op: &str) -> RuleResult<()> {
    match inputs {
        [] => Ok(()),
        _ => Err(format!(
            "{op} is a source and reads no input, this layer has {}",
            inputs.len()
        )),
    }
}

/// The meta the caller chose, for ops that leave part of their meta free (a source's or a rechunk's
/// grid, a `map_blocks` closure's dtype).
pub(crate) fn chosen<'a>(chosen: Option<&'a ArrayMeta>, op: &str) -> RuleResult<&'a ArrayMeta> {
    chosen.ok_or_else(|| {
        format!("{op} takes part of its metadata from its caller, and none was given")
    })
}

impl Op {
    /// What the layer's chunks hold, from the op alone.
    pub fn holds(&self) -> Holds {
        match self {
            Op::Blockwise(p) => match &p.reduce {
                Some(r) => Holds::Partial {
                    reduction: r.reduction,
                    axes: r.axes.clone(),
                },
                None => Holds::Array,
            },
            Op::ReduceCombine(c) if c.finalize.is_none() => Holds::Partial {
                reduction: c.reduction,
                axes: c.axes.clone(),
            },
            Op::Matmul(_) => Holds::Products,
            _ => Holds::Array,
        }
    }

    /// The op's metadata rule: the chunk grid and dtype of its output, from its parameters and its
    /// inputs' metadata, with every check the expansion and the kernels rely on.
    ///
    /// Some ops leave part of their meta to the caller: the grid of a source cut from whole data
    /// (`FromArray`, `Npy`, `Materialized`, `Persisted`), of `Rechunk` and of `Reshape`, and the dtype of
    /// `MapBlocks`. For those, `chosen` carries it and the rule checks that it fits; other ops ignore
    /// it.
    pub fn output_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen: Option<&ArrayMeta>,
    ) -> Result<ArrayMeta> {
        self.derive_meta(inputs, chosen)
            .map(|d| d.meta)
            .map_err(|reason| Error::InvalidLayer {
                layer: format!("a new {} layer", self.name()),
                reason,
            })
    }

    /// [`Op::output_meta`] with the rules that derived it, and a bare reason on failure.
    pub(crate) fn derive_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen: Option<&ArrayMeta>,
    ) -> RuleResult<Derived> {
        self.refuse_complex(inputs)?;
        match self {
            Op::Blockwise(p) => p.output_meta(inputs),
            Op::FromArray(a) => a.output_meta(inputs, chosen),
            Op::Npy(n) => n.output_meta(inputs, chosen),
            Op::Materialized(m) => m.output_meta(inputs, chosen),
            Op::ReduceCombine(c) => c.output_meta(inputs),
            Op::Transpose { perm } => structure::transpose_meta(perm, inputs),
            Op::Slice(s) => s.output_meta(inputs),
            Op::Rechunk => structure::rechunk_meta(inputs, chosen),
            Op::Reshape => structure::reshape_meta(inputs, chosen),
            Op::Concatenate { axis } => structure::concat_meta(*axis, inputs),
            Op::Stack { axis } => structure::stack_meta(*axis, inputs),
            Op::Matmul(m) => m.output_meta(inputs),
            Op::MirrorUpper => matmul::mirror_meta(inputs),
            Op::MapBlocks(f) => f.output_meta(inputs, chosen),
            Op::Scan(sc) => sc.output_meta(inputs),
            Op::Quantile(q) => q.output_meta(inputs),
            Op::ZarrSource(z) => z.output_meta(inputs),
            Op::ZarrWrite(z) => z.output_meta(inputs),
            Op::Take(t) => t.output_meta(inputs),
            Op::Sort(o) => o.output_meta(inputs),
            Op::SearchSorted(o) => o.output_meta(inputs),
            Op::IsIn(o) => o.output_meta(inputs),
            Op::Histogram(o) => o.output_meta(inputs),
            Op::BinCount(o) => o.output_meta(inputs),
            Op::TopK(o) => o.output_meta(inputs),
            Op::Linalg(l) => l.output_meta(inputs),
            Op::Persisted(p) => p.output_meta(inputs, chosen),
            Op::Overlap(o) => o.output_meta(inputs),
            Op::Trim(o) => o.output_meta(inputs),
            Op::Mask(o) => o.output_meta(inputs),
            Op::Fft(f) => f.output_meta(inputs),
            Op::VIndex(v) => v.output_meta(inputs),
            Op::TakeAlong(t) => t.output_meta(inputs),
        }
    }

    /// Ops whose kernels order, bin or factor values, or store them where complex has no format
    /// here, refuse complex128 input, as numpy refuses ordering on complex: the reason names the op
    /// and the input.
    fn refuse_complex(&self, inputs: &[InputMeta<'_>]) -> RuleResult<()> {
        let orders = matches!(
            self,
            Op::Sort(_)
                | Op::SearchSorted(_)
                | Op::IsIn(_)
                | Op::TopK(_)
                | Op::Histogram(_)
                | Op::BinCount(_)
                | Op::Quantile(_)
                | Op::Scan(_)
                | Op::Matmul(_)
                | Op::MirrorUpper
                | Op::Linalg(_)
                | Op::ZarrWrite(_)
        );
        match inputs.iter().find(|i| i.meta.dtype.is_complex()) {
            Some(i) if orders => Err(format!(
                "{} is not supported for complex128 input ({} is {})",
                self.name(),
                i.id,
                i.meta.dtype
            )),
            _ => Ok(()),
        }
    }

    /// The names [`Op::name`] gives that are not a function's, a reduction's, a scan's, a
    /// quantile's, a factorization's or a transform's (those come from their own tables). The wire
    /// maps a layer name it receives to one of these static names, so a new op's name goes here
    /// beside the match that returns it.
    pub const OTHER_NAMES: &'static [&'static str] = &[
        "random",
        "full",
        "arange",
        "linspace",
        "identity",
        "empty",
        "array",
        "from-npy",
        "persist",
        "persisted",
        "combine",
        "transpose",
        "getitem",
        "rechunk",
        "reshape",
        "concatenate",
        "stack",
        "matmul",
        "mirror-upper",
        "map-blocks",
        "median",
        "nanmedian",
        "quantile",
        "nanquantile",
        "from-zarr",
        "to-zarr",
        "take",
        "sort",
        "argsort",
        "sort-merge",
        "argsort-merge",
        "searchsorted",
        "isin",
        "histogram",
        "histogramdd",
        "bincount",
        "topk",
        "argtopk",
        "overlap",
        "trim",
        "mask-count",
        "mask-select",
        "flatnonzero",
        "vindex",
        "take-along-axis",
    ];

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
            Op::Scan(sc) => sc.func.name(),
            Op::Quantile(q) => q.name(),
            Op::ZarrSource(_) => "from-zarr",
            Op::ZarrWrite(_) => "to-zarr",
            Op::Take(_) => "take",
            Op::Sort(o) => match o.stage {
                SortStage::Local => o.name(),
                SortStage::Merge => {
                    if o.arg {
                        "argsort-merge"
                    } else {
                        "sort-merge"
                    }
                }
            },
            Op::SearchSorted(_) => "searchsorted",
            Op::IsIn(_) => "isin",
            Op::Histogram(h) => h.name(),
            Op::BinCount(_) => "bincount",
            Op::TopK(o) => o.name(),
            Op::Linalg(l) => l.name(),
            Op::Persisted(_) => "persisted",
            Op::Overlap(_) => "overlap",
            Op::Trim(_) => "trim",
            Op::Mask(o) => o.name(),
            Op::Fft(f) => f.name(),
            Op::VIndex(_) => "vindex",
            Op::TakeAlong(_) => "take-along-axis",
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
            Op::Scan(sc) => format!("{} axis {}", sc.func.name(), sc.axis),
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
                t.u64(c.reduction.code() as u64);
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
            Op::Scan(sc) => {
                t.u64(sc.func.code() as u64);
                t.u64(sc.axis as u64);
            }
            Op::Quantile(q) => {
                t.u64(q.axis as u64);
                t.u64(q.q.len() as u64);
                q.q.iter().for_each(|&v| t.f64(v));
                t.u64(q.skip_nan as u64);
                t.u64(q.median as u64);
            }
            Op::ZarrSource(z) => z.tokenize(t),
            Op::ZarrWrite(z) => z.tokenize(t),
            Op::Take(tk) => tk.tokenize(t),
            Op::Sort(o) => {
                t.u64(o.axis as u64);
                t.u64(o.stage.code() as u64);
                t.u64(o.arg as u64);
            }
            Op::SearchSorted(o) => t.u64(o.right as u64),
            Op::IsIn(o) => t.u64(o.invert as u64),
            Op::Histogram(h) => {
                t.u64(h.dd as u64);
                t.u64(h.weighted as u64);
                t.u64(h.edges.len() as u64);
                for e in &h.edges {
                    t.u64(e.len() as u64);
                    e.iter().for_each(|&v| t.f64(v));
                }
            }
            Op::BinCount(b) => {
                t.u64(b.minlength as u64);
                t.u64(b.weighted as u64);
            }
            Op::TopK(o) => {
                t.u64(o.k as u64);
                t.u64(o.axis as u64);
                t.u64(o.arg as u64);
                t.u64(o.indexed as u64);
            }
            Op::Linalg(l) => l.tokenize(t),
            Op::Persisted(p) => p.tokenize(t),
            Op::Overlap(o) => o.tokenize(t),
            Op::Trim(o) => o.tokenize(t),
            Op::Mask(o) => o.tokenize(t),
            Op::Fft(f) => f.tokenize(t),
            Op::VIndex(v) => v.tokenize(t),
            Op::TakeAlong(o) => t.u64(o.axis as u64),
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
            Op::FromArray(_)
            | Op::Npy(_)
            | Op::Materialized(_)
            | Op::ZarrSource(_)
            | Op::Persisted(_) => {}
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
            Op::Scan(sc) => sc.deps(block, out),
            Op::Quantile(_) => out.push((0, block.iter().copied().collect())),
            Op::ZarrWrite(_) => out.push((0, block.iter().copied().collect())),
            Op::Take(t) => t.deps(&layer.meta, inputs[0], block, out),
            Op::Sort(o) => o.deps(inputs, block, out),
            Op::SearchSorted(o) => o.deps(inputs, block, out),
            Op::IsIn(o) => o.deps(inputs, block, out),
            Op::Histogram(h) => h.deps(block, out),
            Op::BinCount(b) => b.deps(block, out),
            Op::TopK(o) => o.deps(block, out),
            Op::Linalg(l) => l.deps(inputs, block, out),
            Op::Overlap(o) => o.deps(inputs[0], block, out),
            Op::Trim(_) => out.push((0, block.iter().copied().collect())),
            Op::Mask(o) => o.deps(block, out),
            Op::Fft(_) => out.push((0, block.iter().copied().collect())),
            Op::VIndex(v) => v.deps(&layer.meta, inputs[0], block, out),
            Op::TakeAlong(t) => t.deps(inputs, block, out),
        }
    }

    /// The part of each dep (in [`Op::deps`] order) that output block `block` reads, for ops that
    /// read only part of their input chunks; None when every dep is read whole. `run` then accepts
    /// each dep either whole or as just that region ([`crate::ArrayData::region`]), so an executor
    /// passes a chunk it holds as it is and fetches or reads back from disk only the region of one
    /// it does not.
    pub fn dep_regions(
        &self,
        layer: &Layer,
        inputs: &[&ArrayMeta],
        block: &[u32],
    ) -> Option<Vec<Region>> {
        match self {
            Op::Rechunk => Some(structure::rechunk_regions(&layer.meta, inputs[0], block)),
            _ => None,
        }
    }

    /// Whether [`Op::dep_regions`] can be Some: a check free of allocation for the hot paths that
    /// would otherwise gather input metadata for nothing.
    pub fn reads_regions(&self) -> bool {
        matches!(self, Op::Rechunk)
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
            Op::Scan(sc) => sc.run(deps)?,
            Op::Quantile(q) => q.run(deps)?,
            Op::ZarrSource(z) => z.run(&layer.meta, block)?,
            Op::ZarrWrite(z) => z.run(inputs[0], block, &deps[0])?,
            Op::Take(t) => t.run(&layer.meta, inputs[0], block, deps)?,
            Op::Sort(o) => o.run(inputs, block, deps)?,
            Op::SearchSorted(o) => o.run(deps)?,
            Op::IsIn(o) => o.run(deps)?,
            Op::Histogram(h) => h.run(deps)?,
            Op::BinCount(b) => b.run(deps)?,
            Op::TopK(o) => o.run(inputs, block, deps)?,
            Op::Linalg(l) => l.run(deps)?,
            Op::Persisted(p) => p.run(&layer.id.to_string())?,
            Op::Overlap(o) => o.run(inputs[0], block, deps)?,
            Op::Trim(o) => o.run(inputs[0], block, deps)?,
            Op::Mask(o) => o.run(inputs[inputs.len() - 1], block, deps)?,
            Op::Fft(f) => f.run(deps)?,
            Op::VIndex(v) => v.run(&layer.meta, inputs[0], block, deps)?,
            Op::TakeAlong(t) => t.run(&layer.meta, block, deps)?,
        };
        Ok(Arc::new(value))
    }
}
