//! Ops that move data between chunks without arithmetic: transpose, basic slicing, rechunk, reshape,
//! concatenate and stack. Each maps an output block to the input blocks it reads and copies the
//! pieces; the chunk grids they produce are decided when the expression is built.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, SliceInfo, SliceInfoElem};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::map_array;
use crate::meta::Chunks;

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
    pub fn plan(chunks: &Chunks, axes: Vec<AxisSlice>) -> (SliceOp, Chunks) {
        let mut pieces = Vec::with_capacity(axes.len());
        let mut out_sizes = Vec::new();
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
                    out_sizes.push(p.iter().map(|q| q.len).collect());
                }
            }
            pieces.push(p);
        }
        (SliceOp { axes, pieces }, Chunks::from_sizes(out_sizes))
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

pub(crate) fn rechunk_run(
    out_meta: &ArrayMeta,
    input: &ArrayMeta,
    block: &[u32],
    deps: &[Arc<ChunkValue>],
) -> Result<ChunkValue> {
    let offset = out_meta.chunks.block_offset(block);
    let shape = out_meta.chunks.block_shape(block);
    if deps.len() == 1
        && input
            .chunks
            .block_shape(&rechunk_first(out_meta, input, block))
            == shape
    {
        return Ok((*deps[0]).clone());
    }
    let mut result = ArrayData::full(&shape, crate::Scalar::Bool(false), out_meta.dtype);
    let mut i = 0;
    let mut err = None;
    for_each_index(&rechunk_ranges(out_meta, input, block), |b| {
        let src = match deps[i].as_array() {
            Ok(a) => a,
            Err(e) => {
                err = Some(e);
                return;
            }
        };
        i += 1;
        let in_off = input.chunks.block_offset(b);
        copy_overlap(&mut result, &offset, src, &in_off);
    });
    match err {
        Some(e) => Err(e),
        None => Ok(ChunkValue::Array(result)),
    }
}

fn rechunk_first(out_meta: &ArrayMeta, input: &ArrayMeta, block: &[u32]) -> Vec<u32> {
    rechunk_ranges(out_meta, input, block)
        .iter()
        .map(|r| r.start as u32)
        .collect()
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
