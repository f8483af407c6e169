//! Ops that move data between chunks without arithmetic: transpose, basic slicing, rechunk, reshape,
//! concatenate and stack. Each maps an output block to the input blocks it reads and copies the
//! pieces; the chunk grids they produce are decided when the expression is built.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, SliceInfo, SliceInfoElem};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block, Region, Tokenizer};
use crate::map_array;
use crate::meta::Chunks;
use crate::ops::{Derived, InputMeta, RuleResult, chosen, one_input};

// ---------------------------------------------------------------------------------------------
// transpose

pub(crate) fn transpose_deps(perm: &[usize], block: &[u32], out: &mut Vec<(usize, Block)>) {
    let mut b: Block = Block::from_elem(0, perm.len());
    for (i, &p) in perm.iter().enumerate() {
        b[p] = block[i];
    }
    out.push((0, b));
}

pub(crate) fn transpose_run(perm: &[usize], deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
    let a = deps[0].as_array()?;
    Ok(ChunkValue::Array(map_array!(a, x => {
        x.view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned()
    })))
}

// ---------------------------------------------------------------------------------------------
// slicing

/// What basic indexing selects along one input axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisSlice {
    /// `len` elements starting at `start`, `step` apart (a negative step walks backwards).
    Range {
        start: usize,
        step: isize,
        len: usize,
    },
    /// One element; the axis is dropped.
    Index(usize),
}

/// The part of one input chunk that one output chunk takes along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub in_block: u32,
    /// First element taken, relative to the input chunk.
    pub local_start: usize,
    pub len: usize,
}

/// Basic slicing, with the output chunking decided at build time: along every axis each output chunk
/// is the part of one input chunk that the slice selects, so each output block reads one input block.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceOp {
    /// One entry per input axis.
    pub axes: Vec<AxisSlice>,
    /// Per input axis, the pieces in output order (one piece for an index).
    pub pieces: Vec<Vec<Piece>>,
}

impl SliceOp {
    /// Plans a slice of an array chunked as `chunks`. The selections must already be in bounds.
    /// The output grid is the pieces' lengths ([`SliceOp`]'s metadata rule).
    pub fn plan(chunks: &Chunks, axes: Vec<AxisSlice>) -> SliceOp {
        let mut pieces = Vec::with_capacity(axes.len());
        for (axis, sel) in axes.iter().enumerate() {
            let off = chunks.axis_offsets(axis);
            let mut p = Vec::new();
            match *sel {
                AxisSlice::Index(i) => {
                    let b = chunks.block_of(axis, i);
                    p.push(Piece {
                        in_block: b as u32,
                        local_start: i - off[b],
                        len: 1,
                    });
                }
                AxisSlice::Range { start, step, len } => {
                    let mut k = 0usize;
                    while k < len {
                        let i = (start as isize + k as isize * step) as usize;
                        let b = chunks.block_of(axis, i);
                        let last_k = if step > 0 {
                            (off[b + 1] - 1 - i) / step as usize
                        } else {
                            (i - off[b]) / step.unsigned_abs()
                        };
                        let n = (last_k + 1).min(len - k);
                        p.push(Piece {
                            in_block: b as u32,
                            local_start: i - off[b],
                            len: n,
                        });
                        k += n;
                    }
                    if p.is_empty() {
                        p.push(Piece {
                            in_block: 0,
                            local_start: 0,
                            len: 0,
                        });
                    }
                }
            }
            pieces.push(p);
        }
        SliceOp { axes, pieces }
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        for a in &self.axes {
            match *a {
                AxisSlice::Index(i) => {
                    t.u64(0);
                    t.u64(i as u64);
                }
                AxisSlice::Range { start, step, len } => {
                    t.u64(1);
                    t.u64(start as u64);
                    t.u64(step as u64);
                    t.u64(len as u64);
                }
            }
        }
    }

    fn pieces_for<'a>(&'a self, block: &'a [u32]) -> impl Iterator<Item = (usize, Piece)> + 'a {
        let mut out_axis = 0;
        self.axes
            .iter()
            .enumerate()
            .map(move |(axis, sel)| match sel {
                AxisSlice::Index(_) => (axis, self.pieces[axis][0]),
                AxisSlice::Range { .. } => {
                    let p = self.pieces[axis][block[out_axis] as usize];
                    out_axis += 1;
                    (axis, p)
                }
            })
    }

    pub(crate) fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        out.push((0, self.pieces_for(block).map(|(_, p)| p.in_block).collect()));
    }

    pub(crate) fn run(&self, block: &[u32], deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let a = deps[0].as_array()?;
        let info: Vec<SliceInfoElem> = self
            .pieces_for(block)
            .map(|(axis, p)| match self.axes[axis] {
                AxisSlice::Index(_) => SliceInfoElem::Index(p.local_start as isize),
                AxisSlice::Range { step, .. } if p.len == 0 => SliceInfoElem::Slice {
                    start: 0,
                    end: Some(0),
                    step: step.signum().max(1),
                },
                AxisSlice::Range { step, .. } if step > 0 => SliceInfoElem::Slice {
                    start: p.local_start as isize,
                    end: Some((p.local_start + (p.len - 1) * step as usize + 1) as isize),
                    step,
                },
                AxisSlice::Range { step, .. } => SliceInfoElem::Slice {
                    start: (p.local_start - (p.len - 1) * step.unsigned_abs()) as isize,
                    end: Some(p.local_start as isize + 1),
                    step,
                },
            })
            .collect();
        let info: SliceInfo<Vec<SliceInfoElem>, IxDyn, IxDyn> =
            SliceInfo::try_from(info).map_err(|e| Error::InvalidArgument {
                op: "getitem",
                reason: e.to_string(),
            })?;
        Ok(ChunkValue::Array(
            map_array!(a, x => x.slice(info.clone()).to_owned()),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// rechunk

/// Per axis, the input blocks intersecting output block `block`.
fn rechunk_ranges(
    out: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
) -> Vec<std::ops::Range<usize>> {
    let offset = out.chunks.block_offset(block);
    let shape = out.chunks.block_shape(block);
    (0..block.len())
        .map(|axis| {
            if shape[axis] == 0 {
                0..1
            } else {
                input
                    .chunks
                    .blocks_in(axis, offset[axis], offset[axis] + shape[axis])
            }
        })
        .collect()
}

fn for_each_index(ranges: &[std::ops::Range<usize>], mut f: impl FnMut(&[u32])) {
    if ranges.iter().any(|r| r.is_empty()) {
        return;
    }
    let mut idx: Vec<u32> = ranges.iter().map(|r| r.start as u32).collect();
    loop {
        f(&idx);
        let mut axis = idx.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            idx[axis] += 1;
            if (idx[axis] as usize) < ranges[axis].end {
                break;
            }
            idx[axis] = ranges[axis].start as u32;
        }
    }
}

pub(crate) fn rechunk_deps(
    out_meta: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
    out: &mut Vec<(usize, Block)>,
) {
    for_each_index(&rechunk_ranges(out_meta, input, block), |b| {
        out.push((0, Block::from_slice(b)))
    });
}

/// The overlap of each source chunk that target `block` reads, in the source chunk's own indices
/// and [`rechunk_deps`] order.
pub(crate) fn rechunk_regions(
    out_meta: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
) -> Vec<Region> {
    let offset = out_meta.chunks.block_offset(block);
    let shape = out_meta.chunks.block_shape(block);
    let mut regions = Vec::new();
    for_each_index(&rechunk_ranges(out_meta, input, block), |b| {
        let in_off = input.chunks.block_offset(b);
        let in_shape = input.chunks.block_shape(b);
        regions.push(
            (0..b.len())
                .map(|axis| {
                    let lo = offset[axis].max(in_off[axis]);
                    let hi = (offset[axis] + shape[axis]).min(in_off[axis] + in_shape[axis]);
                    lo - in_off[axis]..hi.max(lo) - in_off[axis]
                })
                .collect(),
        )
    });
    regions
}

/// Target chunk `block` from its sources, each given whole or as just its region (see
/// [`crate::ops::Op::dep_regions`]).
pub(crate) fn rechunk_run(
    out_meta: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
    deps: &[Arc<ChunkValue>],
) -> Result<ChunkValue> {
    let offset = out_meta.chunks.block_offset(block);
    let shape = out_meta.chunks.block_shape(block);
    if deps.len() == 1 && deps[0].as_array()?.shape() == shape.as_slice() {
        return Ok((*deps[0]).clone());
    }
    let regions = rechunk_regions(out_meta, input, block);
    let mut result = ArrayData::full(&shape, crate::Scalar::Bool(false), out_meta.dtype);
    let mut i = 0;
    let mut err = None;
    for_each_index(&rechunk_ranges(out_meta, input, block), |b| {
        if err.is_some() {
            return;
        }
        let (src, region) = match (deps.get(i).map(|d| d.as_array()), regions.get(i)) {
            (Some(Ok(a)), Some(r)) => (a, r),
            (Some(Err(e)), _) => {
                err = Some(e);
                return;
            }
            _ => {
                err = Some(Error::InvalidGraph {
                    reason: format!("a rechunk task was given {} inputs", deps.len()),
                });
                return;
            }
        };
        i += 1;
        let mut in_off = input.chunks.block_offset(b);
        let region_shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        if src.shape() == region_shape.as_slice() {
            for (o, r) in in_off.iter_mut().zip(region) {
                *o += r.start;
            }
        } else if src.shape() != input.chunks.block_shape(b).as_slice() {
            err = Some(Error::InvalidGraph {
                reason: format!(
                    "a rechunk source chunk of shape {:?} is neither block {b:?} of shape {:?} nor its region {region:?}",
                    src.shape(),
                    input.chunks.block_shape(b)
                ),
            });
            return;
        }
        copy_overlap(&mut result, &offset, src, &in_off);
    });
    match err {
        Some(e) => Err(e),
        None => Ok(ChunkValue::Array(result)),
    }
}

/// Environment variable bounding the bytes one rechunk task reads and writes (default
/// [`RECHUNK_TASK_BYTES`]); [`crate::Array::rechunk_with`] sets it per call.
pub const RECHUNK_TASK_BYTES_ENV: &str = "TESSERA_RECHUNK_TASK_BYTES";

/// Default bound on the bytes one rechunk task reads and writes.
pub const RECHUNK_TASK_BYTES: usize = 256 << 20;

/// The default bound: [`RECHUNK_TASK_BYTES_ENV`] if set, else [`RECHUNK_TASK_BYTES`].
pub fn default_rechunk_task_bytes() -> crate::error::Result<usize> {
    match std::env::var(RECHUNK_TASK_BYTES_ENV) {
        Ok(v) => crate::exec::parse_bytes(&v),
        Err(_) => Ok(RECHUNK_TASK_BYTES),
    }
}

/// Most bytes one task of a rechunk from `src` to `dst` would read and write if it read its source
/// chunks whole: per axis, the largest extent of the source chunks one target chunk intersects,
/// times the largest target chunk. The measure by which pieces are grouped when an intermediate
/// chunking is needed (see [`rechunk_intermediate`]).
pub fn rechunk_task_bytes(src: &Chunks, dst: &Chunks, itemsize: usize) -> usize {
    let mut read = itemsize;
    for axis in 0..src.ndim() {
        let offs = dst.axis_offsets(axis);
        let src_offs = src.axis_offsets(axis);
        let extent = dst
            .axis(axis)
            .iter()
            .enumerate()
            .filter(|&(_, &len)| len > 0)
            .map(|(b, &len)| {
                let r = src.blocks_in(axis, offs[b], offs[b] + len);
                src_offs[r.end] - src_offs[r.start]
            })
            .max()
            .unwrap_or(0);
        read = read.saturating_mul(extent);
    }
    read.saturating_add(dst.max_chunk_elems().saturating_mul(itemsize))
}

/// Most source chunks one target chunk of a direct rechunk may read. Each is a region fetched,
/// read back or copied on its own, and a graph edge in the scheduler; past this many (say rows of
/// one element each to columns), pieces are first gathered into an intermediate chunking.
pub const RECHUNK_MAX_FAN_IN: usize = 1024;

/// The most source chunks any target chunk of a direct rechunk from `src` to `dst` intersects.
pub fn rechunk_fan_in(src: &Chunks, dst: &Chunks) -> usize {
    (0..src.ndim())
        .map(|axis| {
            let offs = dst.axis_offsets(axis);
            dst.axis(axis)
                .iter()
                .enumerate()
                .map(|(b, &len)| src.blocks_in(axis, offs[b], offs[b] + len).len())
                .max()
                .unwrap_or(0)
        })
        .fold(1usize, usize::saturating_mul)
}

/// The intermediate chunking of a rechunk from `src` to `dst`, or None when the direct rechunk is
/// the plan. A direct task reads only the region of each source chunk that its target chunk
/// overlaps ([`crate::ops::Op::dep_regions`]): it reads and writes twice its target chunk, and the
/// rechunk is one task per target chunk (N + M tasks with the sources), whatever the two chunkings.
/// That is the plan unless a target chunk would read more than [`RECHUNK_MAX_FAN_IN`] source chunks.
/// Then, and when whole source chunks read per task would also exceed `max_task_bytes`, per axis
/// the intermediate takes the finer of the two chunkings, so the split step cuts each source chunk
/// into pieces and the merge step gathers only the pieces of its own target chunk; then adjacent
/// pieces are grouped, a quarter more along each axis in turn while both steps stay within the
/// bound (not doubling, which can stop at half the size the bound allows: four times the pieces in
/// 2-d).
pub fn rechunk_intermediate(
    src: &Chunks,
    dst: &Chunks,
    itemsize: usize,
    max_task_bytes: usize,
) -> Option<Chunks> {
    if src.ndim() == 0
        || rechunk_fan_in(src, dst) <= RECHUNK_MAX_FAN_IN
        || rechunk_task_bytes(src, dst, itemsize) <= max_task_bytes
    {
        return None;
    }
    let finer = |axis: usize| -> Vec<usize> {
        let m = |c: &Chunks| c.axis(axis).iter().copied().max().unwrap_or(0);
        if m(dst) < m(src) {
            dst.axis(axis).to_vec()
        } else {
            src.axis(axis).to_vec()
        }
    };
    let base: Vec<Vec<usize>> = (0..src.ndim()).map(finer).collect();
    let grouped = |group: &[usize]| -> Chunks {
        Chunks::from_sizes(
            base.iter()
                .zip(group)
                .map(|(sizes, &g)| sizes.chunks(g).map(|c| c.iter().sum()).collect())
                .collect(),
        )
    };
    let fits = |c: &Chunks| {
        rechunk_task_bytes(src, c, itemsize) <= max_task_bytes
            && rechunk_task_bytes(c, dst, itemsize) <= max_task_bytes
    };
    let mut group = vec![1usize; src.ndim()];
    let mut grew = true;
    while grew {
        grew = false;
        for axis in 0..group.len() {
            if group[axis] >= base[axis].len() {
                continue;
            }
            let mut g = group.clone();
            // A quarter more (at least one): fine enough to come close to the bound, few enough
            // steps for an axis of a million chunks.
            g[axis] = (g[axis] + (g[axis] / 4).max(1)).min(base[axis].len());
            if fits(&grouped(&g)) {
                group = g;
                grew = true;
            }
        }
    }
    let inter = grouped(&group);
    (inter != *src && inter != *dst).then_some(inter)
}

/// Copies the overlap of `src` (at global offset `src_off`) into `dst` (at global offset `dst_off`).
pub(crate) fn copy_overlap(
    dst: &mut ArrayData,
    dst_off: &[usize],
    src: &ArrayData,
    src_off: &[usize],
) {
    let ndim = dst_off.len();
    let dst_shape = dst.shape().to_vec();
    let src_shape = src.shape().to_vec();
    let mut d_sl = Vec::with_capacity(ndim);
    let mut s_sl = Vec::with_capacity(ndim);
    for axis in 0..ndim {
        let lo = dst_off[axis].max(src_off[axis]);
        let hi = (dst_off[axis] + dst_shape[axis]).min(src_off[axis] + src_shape[axis]);
        if lo >= hi {
            return;
        }
        d_sl.push(ndarray::Slice::from(lo - dst_off[axis]..hi - dst_off[axis]));
        s_sl.push(ndarray::Slice::from(lo - src_off[axis]..hi - src_off[axis]));
    }
    macro_rules! copy {
        ($d:expr, $s:expr) => {{
            let src_view = $s.slice_each_axis(|ax| s_sl[ax.axis.index()]);
            $d.slice_each_axis_mut(|ax| d_sl[ax.axis.index()])
                .assign(&src_view);
        }};
    }
    match (dst, src) {
        (ArrayData::Bool(d), ArrayData::Bool(s)) => copy!(d, s),
        (ArrayData::I64(d), ArrayData::I64(s)) => copy!(d, s),
        (ArrayData::F32(d), ArrayData::F32(s)) => copy!(d, s),
        (ArrayData::F64(d), ArrayData::F64(s)) => copy!(d, s),
        (ArrayData::C128(d), ArrayData::C128(s)) => copy!(d, s),
        (ArrayData::I32(d), ArrayData::I32(s)) => copy!(d, s),
        (ArrayData::U8(d), ArrayData::U8(s)) => copy!(d, s),
        (ArrayData::U64(d), ArrayData::U64(s)) => copy!(d, s),
        (d, s) => {
            let s = s.cast(d.dtype());
            copy_overlap(d, dst_off, &s, src_off)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// reshape

/// Elements per row (product of all axes but the first; 1 for rank 0 and 1).
fn row_len(shape: &[usize]) -> usize {
    shape.iter().skip(1).product()
}

/// Flat element range of an output block (the output is chunked only along axis 0).
fn reshape_flat_range(out: &ArrayMeta, block: &[u32]) -> (usize, usize) {
    let shape = out.shape();
    if shape.is_empty() {
        return (0, 1);
    }
    let off = out.chunks.block_offset(block)[0];
    let n = out.chunks.block_shape(block)[0];
    let r = row_len(&shape);
    (off * r, (off + n) * r)
}

pub(crate) fn reshape_deps(
    out_meta: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
    out: &mut Vec<(usize, Block)>,
) {
    let in_shape = input.shape();
    if in_shape.is_empty() {
        out.push((0, Block::new()));
        return;
    }
    let (lo, hi) = reshape_flat_range(out_meta, block);
    let r = row_len(&in_shape);
    if lo >= hi || r == 0 {
        return;
    }
    let rows = input.chunks.blocks_in(0, lo / r, hi.div_ceil(r));
    for b in rows {
        let mut blk = Block::from_elem(0, in_shape.len());
        blk[0] = b as u32;
        out.push((0, blk));
    }
}

pub(crate) fn reshape_run(
    out_meta: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
    deps: &[Arc<ChunkValue>],
) -> Result<ChunkValue> {
    let shape = out_meta.chunks.block_shape(block);
    let (lo, hi) = reshape_flat_range(out_meta, block);
    let in_shape = input.shape();
    // Flat offset of the first input element available.
    let first = if in_shape.is_empty() || deps.is_empty() {
        0
    } else {
        let mut deps_blocks = Vec::new();
        reshape_deps(out_meta, input, block, &mut deps_blocks);
        input.chunks.axis_offsets(0)[deps_blocks[0].1[0] as usize] * row_len(&in_shape)
    };
    let arrays: Vec<&ArrayData> = deps.iter().map(|d| d.as_array()).collect::<Result<_>>()?;
    macro_rules! gather {
        ($variant:ident) => {{
            let mut flat = Vec::with_capacity(hi - lo);
            let mut pos = first;
            for a in &arrays {
                let ArrayData::$variant(x) = a else {
                    unreachable!("reshape inputs share the layer's dtype")
                };
                for &v in x.iter() {
                    if pos >= lo && pos < hi {
                        flat.push(v);
                    }
                    pos += 1;
                }
            }
            ArrayData::$variant(ArrayD::from_shape_vec(IxDyn(&shape), flat).map_err(|e| {
                Error::ShapeMismatch {
                    op: "reshape",
                    reason: e.to_string(),
                }
            })?)
        }};
    }
    Ok(ChunkValue::Array(match out_meta.dtype {
        crate::DType::Bool => gather!(Bool),
        crate::DType::I64 => gather!(I64),
        crate::DType::F32 => gather!(F32),
        crate::DType::F64 => gather!(F64),
        crate::DType::C128 => gather!(C128),
        crate::DType::I32 => gather!(I32),
        crate::DType::U8 => gather!(U8),
        crate::DType::U64 => gather!(U64),
    }))
}

// ---------------------------------------------------------------------------------------------
// concatenate and stack

pub(crate) fn concat_deps(
    axis: usize,
    inputs: &[&ArrayMeta],
    block: &[u32],
    out: &mut Vec<(usize, Block)>,
) {
    let mut k = block[axis] as usize;
    for (i, m) in inputs.iter().enumerate() {
        let n = m.chunks.axis(axis).len();
        if k < n {
            let mut b = Block::from_slice(block);
            b[axis] = k as u32;
            out.push((i, b));
            return;
        }
        k -= n;
    }
}

pub(crate) fn stack_deps(axis: usize, block: &[u32], out: &mut Vec<(usize, Block)>) {
    let mut b = Block::from_slice(block);
    let which = b.remove(axis);
    out.push((which as usize, b));
}

pub(crate) fn stack_run(axis: usize, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
    let a = deps[0].as_array()?;
    Ok(ChunkValue::Array(
        map_array!(a, x => x.clone().insert_axis(Axis(axis))),
    ))
}

// ---------------------------------------------------------------------------------------------
// metadata rules

/// The input's chunks permuted; `perm` must be a permutation of its axes.
pub(crate) fn transpose_meta(perm: &[usize], inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
    let input = one_input(inputs, "transpose")?;
    let nd = input.meta.ndim();
    let mut seen = vec![false; nd];
    if perm.len() != nd
        || perm
            .iter()
            .any(|&p| p >= nd || std::mem::replace(&mut seen[p], true))
    {
        return Err(format!(
            "{perm:?} is not a permutation of the {nd} axes of its input {}",
            input.id
        ));
    }
    let chunks = Chunks::from_sizes(
        perm.iter()
            .map(|&p| input.meta.chunks.axis(p).to_vec())
            .collect(),
    );
    Ok(Derived::new(
        chunks,
        input.meta.dtype,
        "permuting its input's chunks",
        "keeping its input's dtype",
    ))
}

impl SliceOp {
    /// The chunks its pieces make, after checking them against the input's chunks.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, "getitem")?;
        Ok(Derived::new(
            slice_chunks(self, &input.meta.chunks)?,
            input.meta.dtype,
            "the slice's pieces",
            "keeping its input's dtype",
        ))
    }
}

/// The chosen grid, which must cover the input's shape.
pub(crate) fn rechunk_meta(
    inputs: &[InputMeta<'_>],
    chosen_meta: Option<&ArrayMeta>,
) -> RuleResult<Derived> {
    let input = one_input(inputs, "rechunk")?;
    let grid = &chosen(chosen_meta, "rechunk")?.chunks;
    if grid.shape() != input.meta.shape() {
        return Err(format!(
            "has shape {:?}, but rechunking keeps its input's shape {:?}",
            grid.shape(),
            input.meta.shape()
        ));
    }
    Ok(Derived::new(
        grid.clone(),
        input.meta.dtype,
        "the chosen grid",
        "keeping its input's dtype",
    ))
}

/// The chosen grid, which must hold the input's elements; both chunked along axis 0 only, so that
/// every chunk is a contiguous flat range.
pub(crate) fn reshape_meta(
    inputs: &[InputMeta<'_>],
    chosen_meta: Option<&ArrayMeta>,
) -> RuleResult<Derived> {
    let input = one_input(inputs, "reshape")?;
    let grid = &chosen(chosen_meta, "reshape")?.chunks;
    let size = |c: &Chunks| c.shape().iter().product::<usize>();
    if size(grid) != size(&input.meta.chunks) {
        return Err(format!(
            "has shape {:?}, which does not hold the {} elements of its input's shape {:?}",
            grid.shape(),
            size(&input.meta.chunks),
            input.meta.shape()
        ));
    }
    for (what, c) in [("its input's", &input.meta.chunks), ("its", grid)] {
        if let Some(a) = (1..c.ndim()).find(|&a| c.axis(a).len() != 1) {
            return Err(format!(
                "reshape needs arrays chunked along axis 0 only, but {what} chunks {c} split axis {a}"
            ));
        }
    }
    Ok(Derived::new(
        grid.clone(),
        input.meta.dtype,
        "the chosen grid",
        "keeping its input's dtype",
    ))
}

/// The inputs' chunks, which line up off `axis`, joined along it; all inputs of one dtype.
pub(crate) fn concat_meta(axis: usize, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
    let Some(first) = inputs.first() else {
        return Err("concatenate reads no input".into());
    };
    let nd = first.meta.ndim();
    if axis >= nd {
        return Err(format!(
            "concatenates along axis {axis}, out of range for rank {nd}"
        ));
    }
    let mut along = Vec::new();
    for input in inputs {
        same_dtype(first, input)?;
        let m = input.meta;
        if m.ndim() != nd
            || (0..nd).any(|a| a != axis && m.chunks.axis(a) != first.meta.chunks.axis(a))
        {
            return Err(format!(
                "input {} is chunked {}, which does not line up with {} off axis {axis}",
                input.id, m.chunks, first.meta.chunks
            ));
        }
        along.extend_from_slice(m.chunks.axis(axis));
    }
    let mut sizes = first.meta.chunks.sizes().to_vec();
    sizes[axis] = along;
    Ok(Derived::new(
        Chunks::from_sizes(sizes),
        first.meta.dtype,
        "adding up its inputs' chunks along the axis",
        "keeping its inputs' dtype",
    ))
}

/// The inputs' common chunks with a new axis of 1-long chunks, one per input, at `axis`.
pub(crate) fn stack_meta(axis: usize, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
    let Some(first) = inputs.first() else {
        return Err("stack reads no input".into());
    };
    if axis > first.meta.ndim() {
        return Err(format!(
            "stacks along axis {axis}, out of range for inputs of rank {}",
            first.meta.ndim()
        ));
    }
    for input in inputs {
        same_dtype(first, input)?;
        if input.meta.chunks != first.meta.chunks {
            return Err(format!(
                "inputs {} and {} are chunked differently ({} and {})",
                first.id, input.id, first.meta.chunks, input.meta.chunks
            ));
        }
    }
    let mut sizes = first.meta.chunks.sizes().to_vec();
    sizes.insert(axis, vec![1; inputs.len()]);
    Ok(Derived::new(
        Chunks::from_sizes(sizes),
        first.meta.dtype,
        "stacking its inputs' chunks",
        "keeping its inputs' dtype",
    ))
}

/// Joining ops keep one dtype: every input must have the first's.
fn same_dtype(first: &InputMeta<'_>, input: &InputMeta<'_>) -> RuleResult<()> {
    if input.meta.dtype != first.meta.dtype {
        return Err(format!(
            "its inputs {} and {} have dtypes {} and {}, but the op keeps one dtype",
            first.id, input.id, first.meta.dtype, input.meta.dtype
        ));
    }
    Ok(())
}

/// Checks a slice against its input's chunks and returns the output chunks its pieces make.
fn slice_chunks(s: &SliceOp, input: &Chunks) -> RuleResult<Chunks> {
    let nd = input.ndim();
    if s.axes.len() != nd || s.pieces.len() != nd {
        return Err(format!(
            "the slice has {} selections and {} piece lists for an input of rank {nd}",
            s.axes.len(),
            s.pieces.len()
        ));
    }
    let mut out = Vec::new();
    for (axis, (sel, pieces)) in s.axes.iter().zip(&s.pieces).enumerate() {
        let sizes = input.axis(axis);
        let offs = input.axis_offsets(axis);
        let n = offs[sizes.len()];
        let bad = |what: String| Err(format!("axis {axis}: {what}"));
        for p in pieces {
            if p.in_block as usize >= sizes.len() {
                return bad(format!(
                    "a piece reads block {}, but the input has {} blocks",
                    p.in_block,
                    sizes.len()
                ));
            }
        }
        match *sel {
            AxisSlice::Index(i) => {
                let [p] = pieces.as_slice() else {
                    return bad(format!("an index needs one piece, not {}", pieces.len()));
                };
                let b = p.in_block as usize;
                // Checked in this order so that the sum cannot overflow.
                if i >= n || p.len != 1 || p.local_start >= sizes[b] || offs[b] + p.local_start != i
                {
                    return bad(format!(
                        "index {i} of length {n} does not match its piece {p:?}"
                    ));
                }
            }
            AxisSlice::Range { start, step, len } => {
                if step == 0 {
                    return bad("slice step 0".into());
                }
                if len == 0 {
                    if !matches!(pieces.as_slice(), [p] if p.len == 0) {
                        return bad("an empty selection needs one empty piece".into());
                    }
                } else {
                    let last = start as i128 + (len as i128 - 1) * step as i128;
                    if start >= n || last < 0 || last >= n as i128 {
                        return bad(format!(
                            "{len} elements from {start} step {step} leave the axis of length {n}"
                        ));
                    }
                    let mut k = 0usize;
                    for p in pieces {
                        let b = p.in_block as usize;
                        let want = start as i128 + k as i128 * step as i128;
                        let last_local = p.local_start as i128 + (p.len as i128 - 1) * step as i128;
                        if p.len == 0
                            || offs[b] as i128 + p.local_start as i128 != want
                            || p.local_start >= sizes[b]
                            || last_local < 0
                            || last_local >= sizes[b] as i128
                        {
                            return bad(format!(
                                "piece {p:?} is not the part of block {b} (of size {}) that selection element {k} starts",
                                sizes[b]
                            ));
                        }
                        k = k.saturating_add(p.len);
                    }
                    if k != len {
                        return bad(format!("the pieces select {k} elements, the slice {len}"));
                    }
                }
                out.push(pieces.iter().map(|p| p.len).collect());
            }
        }
    }
    Ok(Chunks::from_sizes(out))
}
