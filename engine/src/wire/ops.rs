//! Ops on the wire: every [`Op`] variant both ways (one exhaustive match each way), with the
//! parameters of reductions, slices and sources. The tests hold one round trip per variant.

use std::path::PathBuf;
use std::sync::Arc;

use super::pb;
use super::{
    dtype_of, reduction_of, required, u32_of, u32s_of, u64s, usize_of, usizes_of, usizes_of_u32,
    wire, within,
};
use crate::data::ChunkValue;
use crate::error::{Error, Result};
use crate::io::zarr::{ZarrArrayRef, ZarrStore};
use crate::meta::Scalar;
use crate::ops::structure::Piece;
use crate::ops::{
    AxisSlice, Finalize, FromArray, LinalgKind, LinalgOp, Materialized, MatmulOp, NpySource, Op,
    Persisted, QuantileOp, ReduceCombine, ScanFn, ScanOp, SliceOp, TakeOp, ZarrSource, ZarrWrite,
};
use crate::ops::{BinCountOp, HistogramOp, IsInOp, SearchSortedOp, SortOp, SortStage, TopKOp};
use crate::ops::{Boundary, MaskOp, MaskStage, OverlapOp, TrimOp};
use crate::ops::{TakeAlongOp, VIndexOp};

// ---------------------------------------------------------------------------------------------
// reductions and slices

impl From<&Finalize> for pb::Finalize {
    fn from(f: &Finalize) -> Self {
        pb::Finalize {
            keepdims: f.keepdims,
            ddof: f.ddof,
            dtype: pb::DType::from(f.dtype) as i32,
        }
    }
}

impl TryFrom<pb::Finalize> for Finalize {
    type Error = Error;
    fn try_from(f: pb::Finalize) -> Result<Self> {
        Ok(Finalize {
            keepdims: f.keepdims,
            ddof: f.ddof,
            dtype: dtype_of(f.dtype)?,
        })
    }
}

impl TryFrom<&ReduceCombine> for pb::ReduceCombine {
    type Error = Error;
    fn try_from(c: &ReduceCombine) -> Result<Self> {
        Ok(pb::ReduceCombine {
            reduction: c.reduction.code(),
            axes: u32s_of(&c.axes, "reduced axis")?,
            group: u64s(&c.group),
            finalize: c.finalize.as_ref().map(pb::Finalize::from),
        })
    }
}

impl TryFrom<pb::ReduceCombine> for ReduceCombine {
    type Error = Error;
    fn try_from(c: pb::ReduceCombine) -> Result<Self> {
        Ok(ReduceCombine {
            reduction: reduction_of(c.reduction)?,
            axes: usizes_of_u32(&c.axes),
            group: usizes_of(&c.group, "group size")?,
            finalize: c.finalize.map(Finalize::try_from).transpose()?,
        })
    }
}

impl TryFrom<&SliceOp> for pb::SliceOp {
    type Error = Error;
    fn try_from(s: &SliceOp) -> Result<Self> {
        use pb::axis_slice::Sel;
        let axes = s
            .axes
            .iter()
            .map(|a| {
                Ok(pb::AxisSlice {
                    sel: Some(match *a {
                        AxisSlice::Range { start, step, len } => Sel::Range(pb::AxisRange {
                            start: start as u64,
                            step: i64::try_from(step)
                                .map_err(|_| wire(format!("slice step {step} overflows")))?,
                            len: len as u64,
                        }),
                        AxisSlice::Index(i) => Sel::Index(i as u64),
                    }),
                })
            })
            .collect::<Result<_>>()?;
        let pieces = s
            .pieces
            .iter()
            .map(|axis| pb::AxisPieces {
                pieces: axis
                    .iter()
                    .map(|p| pb::Piece {
                        in_block: p.in_block,
                        local_start: p.local_start as u64,
                        len: p.len as u64,
                    })
                    .collect(),
            })
            .collect();
        Ok(pb::SliceOp { axes, pieces })
    }
}

impl TryFrom<pb::SliceOp> for SliceOp {
    type Error = Error;
    fn try_from(s: pb::SliceOp) -> Result<Self> {
        use pb::axis_slice::Sel;
        let axes = s
            .axes
            .into_iter()
            .enumerate()
            .map(|(axis, a)| {
                Ok(
                    match required(a.sel, &format!("selection on slice axis {axis}"))? {
                        Sel::Range(r) => AxisSlice::Range {
                            start: usize_of(r.start, "slice start")?,
                            step: isize::try_from(r.step)
                                .map_err(|_| wire(format!("slice step {} overflows", r.step)))?,
                            len: usize_of(r.len, "slice length")?,
                        },
                        Sel::Index(i) => AxisSlice::Index(usize_of(i, "slice index")?),
                    },
                )
            })
            .collect::<Result<_>>()?;
        let pieces = s
            .pieces
            .into_iter()
            .map(|axis| {
                axis.pieces
                    .into_iter()
                    .map(|p| {
                        Ok(Piece {
                            in_block: p.in_block,
                            local_start: usize_of(p.local_start, "piece start")?,
                            len: usize_of(p.len, "piece length")?,
                        })
                    })
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        Ok(SliceOp { axes, pieces })
    }
}

// ---------------------------------------------------------------------------------------------
// sources

impl From<&FromArray> for pb::FromArray {
    fn from(a: &FromArray) -> Self {
        pb::FromArray {
            data: Some((&*a.data).into()),
            content_token: a.content_token,
        }
    }
}

impl TryFrom<pb::FromArray> for FromArray {
    type Error = Error;
    /// Keeps the sender's content token: it is part of the layer's identity, like the layer id.
    fn try_from(a: pb::FromArray) -> Result<Self> {
        Ok(FromArray {
            data: Arc::new(required(a.data, "array data")?.try_into()?),
            content_token: a.content_token,
        })
    }
}

impl TryFrom<&NpySource> for pb::NpySource {
    type Error = Error;
    fn try_from(n: &NpySource) -> Result<Self> {
        let path = n.path.to_str().ok_or_else(|| {
            wire(format!(
                "the path {} is not UTF-8, which the wire's string cannot carry",
                n.path.display()
            ))
        })?;
        Ok(pb::NpySource {
            path: path.to_string(),
            mtime_nanos: n.stamp.0,
            file_len: n.stamp.1,
            dtype: pb::DType::from(n.header.dtype) as i32,
            shape: u64s(&n.header.shape),
        })
    }
}

impl TryFrom<pb::NpySource> for NpySource {
    type Error = Error;
    /// Opens the file here: reads its header again and checks it is the array the graph was built on.
    fn try_from(n: pb::NpySource) -> Result<Self> {
        let dtype = dtype_of(n.dtype)?;
        let shape = usizes_of(&n.shape, "npy dimension")?;
        let path = PathBuf::from(n.path);
        let header = crate::io::npy::read_header(&path)?;
        let len = std::fs::metadata(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let changed = |what: String| Error::Npy {
            path: path.clone(),
            reason: format!("the file is not the one the graph was built on: {what}"),
        };
        if header.dtype != dtype {
            return Err(changed(format!(
                "its dtype is {}, the graph's is {dtype}",
                header.dtype
            )));
        }
        if header.shape != shape {
            return Err(changed(format!(
                "its shape is {:?}, the graph's is {shape:?}",
                header.shape
            )));
        }
        if len != n.file_len {
            return Err(changed(format!(
                "it is {len} bytes long, the graph's is {} bytes",
                n.file_len
            )));
        }
        Ok(NpySource {
            path,
            header,
            stamp: (n.mtime_nanos, n.file_len),
        })
    }
}

impl From<&Materialized> for pb::Materialized {
    fn from(m: &Materialized) -> Self {
        pb::Materialized {
            chunks: m.chunks.iter().map(|c| (&**c).into()).collect(),
            token: m.token,
        }
    }
}

impl TryFrom<pb::Materialized> for Materialized {
    type Error = Error;
    fn try_from(m: pb::Materialized) -> Result<Self> {
        let chunks = m
            .chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                ChunkValue::try_from(c)
                    .map(Arc::new)
                    .map_err(|e| within(e, format!("kept chunk {i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Materialized {
            chunks: Arc::new(chunks),
            token: m.token,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Zarr stores

impl From<&ZarrArrayRef> for pb::ZarrArray {
    fn from(a: &ZarrArrayRef) -> Self {
        pb::ZarrArray {
            store: a.store.as_str().to_string(),
            path: a.path.clone(),
            metadata: a.metadata.to_string(),
        }
    }
}

impl TryFrom<pb::ZarrArray> for ZarrArrayRef {
    type Error = Error;
    /// Decodes the metadata the sender read; the store itself is opened only when a task runs, so the
    /// scheduler never touches it.
    fn try_from(a: pb::ZarrArray) -> Result<Self> {
        ZarrArrayRef::from_metadata(&ZarrStore::from(a.store), &a.path, &a.metadata)
    }
}

impl From<&ZarrSource> for pb::ZarrSource {
    fn from(z: &ZarrSource) -> Self {
        pb::ZarrSource {
            array: Some((&z.array).into()),
            group: u64s(&z.group),
        }
    }
}

impl TryFrom<pb::ZarrSource> for ZarrSource {
    type Error = Error;
    fn try_from(z: pb::ZarrSource) -> Result<Self> {
        Ok(ZarrSource {
            array: required(z.array, "zarr source array")?.try_into()?,
            group: usizes_of(&z.group, "zarr chunk group")?,
        })
    }
}

impl From<&ZarrWrite> for pb::ZarrWrite {
    fn from(z: &ZarrWrite) -> Self {
        pb::ZarrWrite {
            array: Some((&z.array).into()),
            region: u64s(&z.region),
        }
    }
}

impl TryFrom<pb::ZarrWrite> for ZarrWrite {
    type Error = Error;
    fn try_from(z: pb::ZarrWrite) -> Result<Self> {
        Ok(ZarrWrite {
            array: required(z.array, "zarr write array")?.try_into()?,
            region: usizes_of(&z.region, "zarr region offset")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// ops, layers, graphs

impl TryFrom<&Op> for pb::Op {
    type Error = Error;
    /// Fails for [`Op::MapBlocks`], whose closure cannot leave the process.
    fn try_from(op: &Op) -> Result<Self> {
        use pb::op::Op as W;
        let op = match op {
            Op::Blockwise(p) => W::Blockwise((&**p).try_into()?),
            Op::FromArray(a) => W::FromArray(a.into()),
            Op::Npy(n) => W::Npy(n.try_into()?),
            Op::Materialized(m) => W::Materialized(m.into()),
            Op::ReduceCombine(c) => W::ReduceCombine(c.try_into()?),
            Op::Transpose { perm } => W::Transpose(pb::Transpose {
                perm: u32s_of(perm, "transpose axis")?,
            }),
            Op::Slice(s) => W::Slice(s.try_into()?),
            Op::Rechunk => W::Rechunk(pb::Empty {}),
            Op::Reshape => W::Reshape(pb::Empty {}),
            Op::Concatenate { axis } => W::Concatenate(pb::Axis {
                axis: u32_of(*axis, "axis")?,
            }),
            Op::Stack { axis } => W::Stack(pb::Axis {
                axis: u32_of(*axis, "axis")?,
            }),
            Op::Matmul(m) => W::Matmul(pb::Matmul {
                transpose_a: m.transpose_a,
                transpose_b: m.transpose_b,
            }),
            Op::MirrorUpper => W::MirrorUpper(pb::Empty {}),
            Op::Scan(sc) => W::Scan(pb::Scan {
                func: sc.func.code(),
                axis: u32_of(sc.axis, "scan axis")?,
            }),
            Op::Fft(f) => W::Fft(pb::Fft {
                kind: f.kind.code(),
                axis: u32_of(f.axis, "fft axis")?,
                n: f.n as u64,
                norm: f.norm.code(),
            }),
            Op::Quantile(q) => W::Quantile(pb::Quantile {
                axis: u32_of(q.axis, "quantile axis")?,
                q: q.q.clone(),
                skip_nan: q.skip_nan,
                median: q.median,
            }),
            Op::ZarrSource(z) => W::ZarrSource(z.into()),
            Op::ZarrWrite(z) => W::ZarrWrite(z.into()),
            Op::Take(t) => W::Take(pb::Take {
                axis: u32_of(t.axis, "take axis")?,
                indices: t.indices.to_vec(),
            }),
            Op::Sort(o) => W::Sort(pb::Sort {
                axis: u32_of(o.axis, "sort axis")?,
                stage: o.stage.code(),
                arg: o.arg,
            }),
            Op::SearchSorted(o) => W::SearchSorted(pb::SearchSorted { right: o.right }),
            Op::IsIn(o) => W::IsIn(pb::IsIn { invert: o.invert }),
            Op::Histogram(h) => W::Histogram(pb::Histogram {
                edges: h
                    .edges
                    .iter()
                    .map(|e| pb::BinEdges { edges: e.clone() })
                    .collect(),
                dd: h.dd,
                weighted: h.weighted,
            }),
            Op::BinCount(b) => W::BinCount(pb::BinCount {
                minlength: b.minlength as u64,
                weighted: b.weighted,
            }),
            Op::TopK(o) => W::TopK(pb::TopK {
                k: o.k,
                axis: u32_of(o.axis, "topk axis")?,
                arg: o.arg,
                indexed: o.indexed,
            }),
            Op::Linalg(l) => W::Linalg(pb::Linalg {
                kind: l.kind.code(),
            }),
            Op::Persisted(p) => W::Persisted(pb::Persisted {
                job: p.job,
                job_key: p.key.to_vec(),
                token: p.token,
            }),
            Op::Overlap(o) => W::Overlap(pb::Overlap {
                depth: u64s(&o.depth),
                boundary: o
                    .boundary
                    .iter()
                    .map(|b| pb::Boundary {
                        kind: b.code(),
                        constant: match b {
                            Boundary::Constant(c) => Some((*c).into()),
                            _ => None,
                        },
                    })
                    .collect(),
            }),
            Op::Trim(o) => W::Trim(pb::Trim {
                depth: u64s(&o.depth),
                outer: o.outer.clone(),
            }),
            Op::Mask(o) => W::Mask(match &o.stage {
                MaskStage::Count => pb::Mask {
                    stage: 0,
                    counts: vec![],
                    groups: vec![],
                    indices: false,
                },
                MaskStage::Select {
                    counts,
                    groups,
                    indices,
                } => pb::Mask {
                    stage: 1,
                    counts: counts.to_vec(),
                    groups: u64s(groups),
                    indices: *indices,
                },
            }),
            Op::VIndex(v) => W::Vindex(pb::VIndex {
                index_shape: u64s(&v.index_shape),
                axes: u32_of(v.axes, "vindex axis count")?,
                coords: v.coords.to_vec(),
            }),
            Op::TakeAlong(t) => W::TakeAlong(pb::TakeAlong {
                axis: u32_of(t.axis, "take_along_axis axis")?,
            }),
            Op::MapBlocks(f) => {
                return Err(Error::NotSerializable {
                    key: format!("map-blocks closure {:#x}", f.token()),
                });
            }
        };
        Ok(pb::Op { op: Some(op) })
    }
}

impl TryFrom<pb::Op> for Op {
    type Error = Error;
    fn try_from(op: pb::Op) -> Result<Self> {
        use pb::op::Op as W;
        let op = required(
            op.op,
            "op (a kind this version does not know reads as missing)",
        )?;
        Ok(match op {
            W::Blockwise(p) => Op::Blockwise(Box::new(p.try_into()?)),
            W::FromArray(a) => Op::FromArray(a.try_into()?),
            W::Npy(n) => Op::Npy(n.try_into()?),
            W::Materialized(m) => Op::Materialized(m.try_into()?),
            W::ReduceCombine(c) => Op::ReduceCombine(c.try_into()?),
            W::Transpose(t) => Op::Transpose {
                perm: usizes_of_u32(&t.perm),
            },
            W::Slice(s) => Op::Slice(s.try_into()?),
            W::Rechunk(_) => Op::Rechunk,
            W::Reshape(_) => Op::Reshape,
            W::Concatenate(a) => Op::Concatenate {
                axis: a.axis as usize,
            },
            W::Stack(a) => Op::Stack {
                axis: a.axis as usize,
            },
            W::Matmul(m) => Op::Matmul(MatmulOp {
                transpose_a: m.transpose_a,
                transpose_b: m.transpose_b,
            }),
            W::MirrorUpper(_) => Op::MirrorUpper,
            W::Scan(sc) => Op::Scan(ScanOp {
                func: ScanFn::from_code(sc.func)
                    .ok_or_else(|| wire(format!("unknown scan function value {}", sc.func)))?,
                axis: sc.axis as usize,
            }),
            W::Fft(f) => Op::Fft(crate::ops::FftOp {
                kind: crate::ops::FftKind::from_code(f.kind)
                    .ok_or_else(|| wire(format!("unknown fft kind value {}", f.kind)))?,
                axis: f.axis as usize,
                n: usize::try_from(f.n)
                    .map_err(|_| wire(format!("fft length {} does not fit", f.n)))?,
                norm: crate::ops::FftNorm::from_code(f.norm)
                    .ok_or_else(|| wire(format!("unknown fft norm value {}", f.norm)))?,
            }),
            W::Quantile(q) => Op::Quantile(QuantileOp {
                axis: q.axis as usize,
                q: q.q,
                skip_nan: q.skip_nan,
                median: q.median,
            }),
            W::ZarrSource(z) => Op::ZarrSource(z.try_into()?),
            W::ZarrWrite(z) => Op::ZarrWrite(z.try_into()?),
            W::Take(t) => Op::Take(TakeOp {
                axis: t.axis as usize,
                indices: Arc::new(t.indices),
            }),
            W::Sort(o) => Op::Sort(SortOp {
                axis: o.axis as usize,
                stage: SortStage::from_code(o.stage)
                    .ok_or_else(|| wire(format!("unknown sort stage value {}", o.stage)))?,
                arg: o.arg,
            }),
            W::SearchSorted(o) => Op::SearchSorted(SearchSortedOp { right: o.right }),
            W::IsIn(o) => Op::IsIn(IsInOp { invert: o.invert }),
            W::Histogram(h) => Op::Histogram(HistogramOp {
                edges: h.edges.into_iter().map(|e| e.edges).collect(),
                dd: h.dd,
                weighted: h.weighted,
            }),
            W::BinCount(b) => Op::BinCount(BinCountOp {
                minlength: usize::try_from(b.minlength)
                    .map_err(|_| wire(format!("bincount minlength {} too large", b.minlength)))?,
                weighted: b.weighted,
            }),
            W::TopK(o) => Op::TopK(TopKOp {
                k: o.k,
                axis: o.axis as usize,
                arg: o.arg,
                indexed: o.indexed,
            }),
            W::Linalg(l) => Op::Linalg(LinalgOp {
                kind: LinalgKind::from_code(l.kind)
                    .ok_or_else(|| wire(format!("unknown linalg kind value {}", l.kind)))?,
            }),
            W::Persisted(p) => Op::Persisted(Persisted {
                job: p.job,
                key: Arc::from(p.job_key),
                token: p.token,
                keeper: None,
            }),
            W::Overlap(o) => Op::Overlap(OverlapOp {
                depth: usizes_of(&o.depth, "overlap depth")?,
                boundary: o
                    .boundary
                    .into_iter()
                    .map(|b| {
                        let constant = b.constant.map(Scalar::try_from).transpose()?;
                        Boundary::from_code(b.kind, constant).ok_or_else(|| {
                            wire(format!(
                                "unknown overlap boundary value {} (or a constant one without \
                                 its constant)",
                                b.kind
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            }),
            W::Trim(o) => Op::Trim(TrimOp {
                depth: usizes_of(&o.depth, "trim depth")?,
                outer: o.outer,
            }),
            W::Mask(m) => Op::Mask(MaskOp {
                stage: match m.stage {
                    0 => MaskStage::Count,
                    1 => MaskStage::Select {
                        counts: Arc::new(m.counts),
                        groups: usizes_of(&m.groups, "mask chunk group end")?,
                        indices: m.indices,
                    },
                    s => return Err(wire(format!("unknown mask stage value {s}"))),
                },
            }),
            W::Vindex(v) => Op::VIndex(VIndexOp {
                index_shape: usizes_of(&v.index_shape, "vindex index shape")?,
                axes: v.axes as usize,
                coords: Arc::new(v.coords),
            }),
            W::TakeAlong(t) => Op::TakeAlong(TakeAlongOp {
                axis: t.axis as usize,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::{ArrayD, IxDyn, s};

    use crate::array::Array;
    use crate::data::{ArgPartial, ArrayData, ChunkValue, Moments};
    use crate::error::Error;
    use crate::ops::{Materialized, MatmulOp, Op};
    use crate::wire::graph_to_proto;
    use crate::wire::pb;
    use crate::wire::testing::*;
    use crate::{concatenate, default_rng, from_npy, stack, where_};

    // -----------------------------------------------------------------------------------------
    // one test per op variant

    /// The test that covers each op variant; naming them all makes a new variant a compile error
    /// until it has a test, and each test checks it built the variant it is about.
    fn op_test(op: &Op) -> &'static str {
        match op {
            Op::Blockwise(_) => "op_blockwise",
            Op::FromArray(_) => "op_from_array",
            Op::Npy(_) => "op_npy",
            Op::Materialized(_) => "op_materialized",
            Op::ReduceCombine(_) => "op_reduce_combine",
            Op::Transpose { .. } => "op_transpose",
            Op::Slice(_) => "op_slice",
            Op::Rechunk => "op_rechunk",
            Op::Reshape => "op_reshape",
            Op::Concatenate { .. } => "op_concatenate",
            Op::Stack { .. } => "op_stack",
            Op::Matmul(_) => "op_matmul",
            Op::MirrorUpper => "op_mirror_upper",
            Op::Scan(_) => "op_scan",
            Op::Quantile(_) => "op_quantile",
            Op::Fft(_) => "op_fft",
            Op::MapBlocks(_) => "op_map_blocks_is_not_serializable",
            Op::ZarrSource(_) => "op_zarr_source",
            Op::ZarrWrite(_) => "op_zarr_write",
            Op::Take(_) => "op_take",
            Op::Sort(_) => "op_sort",
            Op::SearchSorted(_) => "op_search_sorted",
            Op::IsIn(_) => "op_is_in",
            Op::Histogram(_) => "op_histogram",
            Op::BinCount(_) => "op_bin_count",
            Op::TopK(_) => "op_top_k",
            Op::Linalg(_) => "op_linalg",
            Op::Persisted(_) => "op_persisted",
            Op::Overlap(_) => "op_overlap",
            Op::Trim(_) => "op_trim",
            Op::Mask(_) => "op_mask",
            Op::VIndex(_) => "op_vindex",
            Op::TakeAlong(_) => "op_take_along",
        }
    }

    fn top_op(a: &Array, test: &str) -> Op {
        let op = top(a).op.clone();
        assert_eq!(
            op_test(&op),
            test,
            "{a:?} is not built by the op under test"
        );
        op
    }

    #[test]
    fn op_blockwise() {
        let a = x();
        let y = where_(a.t().gt(0.5).unwrap(), &a.t() * 2.0f64, -1.0).unwrap();
        assert_round_trip(&top_op(&y, "op_blockwise"));
        let m = a.var_axis(1, 1.0).unwrap();
        let partial = m.graph().layers()[1].op.clone();
        assert!(matches!(&partial, Op::Blockwise(p) if p.reduce.is_some()));
        assert_round_trip(&partial);
    }

    #[test]
    fn op_from_array() {
        for d in all_dtypes() {
            let data = ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| (i[0] * 3 + i[1]) as i64 - 4);
            let a = crate::from_array_data(ArrayData::I64(data).cast(d), [2, 2]).unwrap();
            assert_round_trip(&top_op(&a, "op_from_array"));
        }
    }

    #[test]
    fn op_npy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        x().to_npy(&path).unwrap();
        let a = from_npy(&path, [4, 4]).unwrap();
        assert_round_trip(&top_op(&a, "op_npy"));
    }

    #[test]
    fn op_zarr_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.zarr");
        x().to_zarr(&path, &crate::ZarrOptions::new()).unwrap();
        let a = crate::from_zarr_with(&path, &crate::ZarrReadOptions::new().group([2, 1])).unwrap();
        assert_round_trip(&top_op(&a, "op_zarr_source"));
    }

    #[test]
    fn op_zarr_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.zarr");
        x().to_zarr(&path, &crate::ZarrOptions::new()).unwrap();
        let array = crate::io::zarr::ZarrArrayRef::open(&path.as_path().into(), "/").unwrap();
        let part = crate::zeros::<f64>(&[5, 4], [5, 4]).unwrap();
        let w = Array::from_op(
            Op::ZarrWrite(crate::ops::ZarrWrite {
                array,
                region: vec![5, 4],
            }),
            vec![part],
            None,
        )
        .unwrap();
        assert_round_trip(&top_op(&w, "op_zarr_write"));
    }

    #[test]
    fn op_npy_refuses_a_file_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        x().to_npy(&path).unwrap();
        let msg = pb::Op::try_from(&top_op(&from_npy(&path, [4, 4]).unwrap(), "op_npy")).unwrap();
        // Same length, other shape: the header is re-read.
        x().reshape(&[10, 12]).unwrap().to_npy(&path).unwrap();
        let err = Op::try_from(msg.clone()).unwrap_err();
        assert!(
            matches!(&err, Error::Npy { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("shape"), "{err}");
        // Same header, other length.
        x().to_npy(&path).unwrap();
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.set_len(std::fs::metadata(&path).unwrap().len() + 8)
            .unwrap();
        let err = Op::try_from(msg.clone()).unwrap_err();
        assert!(err.to_string().contains("bytes long"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(Op::try_from(msg).unwrap_err(), Error::Io { .. }));
    }

    #[test]
    fn op_materialized() {
        let kept = x().var_axis(0, 0.0).unwrap().persist().unwrap();
        assert_round_trip(&top_op(&kept, "op_materialized"));
        // Kept partials (not what persist makes, but a ChunkValue all the same) travel too.
        let m = Op::Materialized(Materialized {
            chunks: Arc::new(vec![
                Arc::new(ChunkValue::Moments(Moments {
                    count: ArrayD::from_elem(IxDyn(&[2]), 3.0),
                    mean: ArrayD::from_elem(IxDyn(&[2]), 0.5),
                    m2: Some(ArrayD::from_elem(IxDyn(&[2]), 0.25)),
                })),
                Arc::new(ChunkValue::Arg(ArgPartial {
                    value: ArrayData::F32(ArrayD::from_elem(IxDyn(&[2]), 1.5)),
                    index: ArrayD::from_elem(IxDyn(&[2]), 9),
                })),
            ]),
            token: 42,
        });
        assert_round_trip(&m);
    }

    #[test]
    fn op_reduce_combine() {
        let m = x().mean_axis(0).unwrap();
        assert_round_trip(&top_op(&m, "op_reduce_combine"));
        let tree = default_rng(1)
            .random(&[64], [2])
            .unwrap()
            .sum_with(&crate::ReduceOptions::all().split_every(2))
            .unwrap();
        for l in tree.graph().layers() {
            assert_round_trip(&l.op);
        }
    }

    #[test]
    fn op_transpose() {
        let a = x().reshape(&[3, 4, 10]).unwrap();
        assert_round_trip(&top_op(
            &a.permute_axes(&[2, 0, 1]).unwrap(),
            "op_transpose",
        ));
    }

    #[test]
    fn op_slice() {
        let a = x().slice(s![1..11;3, -1]).unwrap();
        assert_round_trip(&top_op(&a, "op_slice"));
        #[allow(clippy::reversed_empty_ranges)] // an empty selection, on purpose
        let b = x().slice(s![..;-4, 7..2]).unwrap();
        assert_round_trip(&top_op(&b, "op_slice"));
    }

    #[test]
    fn op_rechunk() {
        assert_round_trip(&top_op(&x().rechunk([3, 10]).unwrap(), "op_rechunk"));
    }

    #[test]
    fn op_reshape() {
        assert_round_trip(&top_op(&x().reshape(&[-1]).unwrap(), "op_reshape"));
    }

    #[test]
    fn op_concatenate() {
        let a = x();
        let c = concatenate(&[&a, &a.slice(s![..3, ..]).unwrap()], 0).unwrap();
        assert_round_trip(&top_op(&c, "op_concatenate"));
    }

    #[test]
    fn op_stack() {
        let a = x();
        assert_round_trip(&top_op(&stack(&[&a, &a, &a], 2).unwrap(), "op_stack"));
    }

    #[test]
    fn op_matmul() {
        let a = x();
        // Operands built as transposes are read untransposed.
        let b = &a + 1.0;
        let wide = default_rng(6).random(&[5, 12], [2, 4]).unwrap();
        for (p, transpose_a, transpose_b) in [
            (a.matmul(&a.t()), false, true),
            (a.t().matmul(&b), true, false),
            (a.t().matmul(&wide.t()), true, true),
            (a.matmul(&b.slice(s![..10, ..]).unwrap()), false, false),
        ] {
            let g = p.unwrap().graph();
            let products = g
                .layers()
                .iter()
                .find(|l| matches!(l.op, Op::Matmul(_)))
                .unwrap();
            let want = MatmulOp {
                transpose_a,
                transpose_b,
            };
            assert!(matches!(products.op, Op::Matmul(m) if m == want));
            assert_eq!(op_test(&products.op), "op_matmul");
            assert_round_trip(&products.op);
        }
    }

    #[test]
    fn op_mirror_upper() {
        let a = x();
        assert_round_trip(&top_op(&a.matmul(&a.t()).unwrap(), "op_mirror_upper"));
    }

    #[test]
    fn op_scan() {
        for (i, f) in crate::ops::ScanFn::ALL.iter().enumerate() {
            let y = x().cumulative(*f, (i % 2) as isize).unwrap();
            let op = top_op(&y, "op_scan");
            assert_round_trip(&op);
            assert!(matches!(&op, Op::Scan(sc) if sc.func == *f && sc.axis == i % 2));
        }
        let bad = pb::Op {
            op: Some(pb::op::Op::Scan(pb::Scan { func: 99, axis: 0 })),
        };
        assert!(what(Op::try_from(bad).unwrap_err()).contains("unknown scan function value 99"));
    }

    #[test]
    fn op_take() {
        let y = x().take(&[3, -1, 0, 3], 1).unwrap();
        let op = top_op(&y, "op_take");
        assert_round_trip(&op);
        assert!(matches!(&op, Op::Take(t) if t.axis == 1 && t.indices.len() == 4));
    }

    #[test]
    fn op_vindex() {
        let y = x()
            .vindex(&[
                ndarray::arr2(&[[3, -1], [0, 3]]).into_dyn(),
                ndarray::arr2(&[[1, 2], [0, 9]]).into_dyn(),
            ])
            .unwrap();
        let op = top_op(&y, "op_vindex");
        assert_round_trip(&op);
        assert!(
            matches!(&op, Op::VIndex(v) if v.axes == 2 && v.index_shape == [2, 2] && v.coords.len() == 8)
        );
    }

    #[test]
    fn op_take_along() {
        let a = x();
        let i = a.argsort(1).unwrap();
        let y = crate::take_along_axis(&a, &i, 1).unwrap();
        let op = top_op(&y, "op_take_along");
        assert_round_trip(&op);
        assert!(matches!(&op, Op::TakeAlong(t) if t.axis == 1));
    }

    #[test]
    fn op_quantile() {
        let a = x();
        for y in [
            a.median(Some(1)).unwrap(),
            a.nanmedian(Some(0)).unwrap(),
            a.quantile(&[0.1, 0.9], Some(1)).unwrap(),
            a.nanquantile(&[0.5], Some(0)).unwrap(),
        ] {
            let top = top(&y);
            // The builder moves the quantile axis first; find the quantile layer below it.
            let g = y.graph();
            let layer = g
                .layers()
                .iter()
                .find(|l| matches!(l.op, Op::Quantile(_)))
                .unwrap_or_else(|| panic!("no quantile layer under {}", top.id));
            assert_eq!(op_test(&layer.op), "op_quantile");
            assert_round_trip(&layer.op);
        }
    }

    #[test]
    fn op_fft() {
        // A transformed axis must be one chunk.
        let a = x().rechunk([12, 10]).unwrap();
        let mut seen = 0;
        for y in [
            crate::fft::fft(&a, None, -1, None).unwrap(),
            crate::fft::irfft(
                &crate::fft::rfft(&a, Some(6), 0, Some("ortho")).unwrap(),
                Some(6),
                0,
                None,
            )
            .unwrap(),
        ] {
            let g = y.graph();
            for layer in g.layers().iter().filter(|l| matches!(l.op, Op::Fft(_))) {
                assert_eq!(op_test(&layer.op), "op_fft");
                assert_round_trip(&layer.op);
                seen += 1;
            }
        }
        assert_eq!(seen, 3, "fft, rfft and irfft layers");
    }

    /// The first layer of `a`'s graph whose op `pick` accepts, checked to be covered by `test`.
    fn layer_op(a: &Array, test: &str, pick: impl Fn(&Op) -> bool) -> Op {
        let g = a.graph();
        let layer = g
            .layers()
            .iter()
            .find(|l| pick(&l.op))
            .unwrap_or_else(|| panic!("no {test} layer under {}", a.id()));
        assert_eq!(op_test(&layer.op), test);
        layer.op.clone()
    }

    #[test]
    fn op_sort() {
        for arg in [false, true] {
            for axis in [0, 1] {
                let y = if arg {
                    x().argsort(axis)
                } else {
                    x().sort(axis)
                }
                .unwrap();
                let op = top_op(&y, "op_sort");
                assert_round_trip(&op);
                let local = layer_op(
                    &y,
                    "op_sort",
                    |o| matches!(o, Op::Sort(s) if s.stage == crate::ops::SortStage::Local),
                );
                assert_round_trip(&local);
            }
        }
        let bad = pb::Op {
            op: Some(pb::op::Op::Sort(pb::Sort {
                axis: 0,
                stage: 7,
                arg: false,
            })),
        };
        assert!(what(Op::try_from(bad).unwrap_err()).contains("unknown sort stage value 7"));
    }

    #[test]
    fn op_search_sorted() {
        let a = x().slice(s![.., 0]).unwrap().sort(0).unwrap();
        for side in [crate::Side::Left, crate::Side::Right] {
            assert_round_trip(&top_op(
                &a.searchsorted(&x(), side).unwrap(),
                "op_search_sorted",
            ));
        }
    }

    #[test]
    fn op_is_in() {
        let t = x().slice(s![..3, 0]).unwrap();
        for invert in [false, true] {
            assert_round_trip(&top_op(&x().isin(&t, invert).unwrap(), "op_is_in"));
        }
    }

    #[test]
    fn op_histogram() {
        let b = crate::Bins::Range {
            n: 7,
            range: (0.1, 0.9),
        };
        let (h, _) = x().histogram(&b, Some(&x())).unwrap();
        assert_round_trip(&layer_op(&h, "op_histogram", |o| {
            matches!(o, Op::Histogram(_))
        }));
        let (h, _) = crate::histogramdd(
            &x().slice(s![.., ..3]).unwrap(),
            &[b.clone(), b.clone(), b],
            None,
        )
        .unwrap();
        assert_round_trip(&layer_op(&h, "op_histogram", |o| {
            matches!(o, Op::Histogram(_))
        }));
    }

    #[test]
    fn op_bin_count() {
        let i = x()
            .slice(s![.., 0])
            .unwrap()
            .astype(crate::DType::I64)
            .unwrap();
        let c = i.bincount(Some(&x().slice(s![.., 1]).unwrap()), 4).unwrap();
        assert_round_trip(&layer_op(&c, "op_bin_count", |o| {
            matches!(o, Op::BinCount(_))
        }));
    }

    #[test]
    fn op_top_k() {
        let y = x().argtopk(-3, 0).unwrap();
        assert_round_trip(&top_op(&y, "op_top_k"));
        assert_round_trip(&layer_op(
            &y,
            "op_top_k",
            |o| matches!(o, Op::TopK(t) if !t.indexed),
        ));
        assert_round_trip(&top_op(&x().topk(5, 1).unwrap(), "op_top_k"));
    }

    #[test]
    fn op_linalg() {
        let a = crate::from_array(
            ndarray::Array2::from_shape_fn((12, 3), |(i, j)| (i * 3 + j) as f64 + 1.0).into_dyn(),
            [4, 3],
        )
        .unwrap();
        let (q, r) = crate::linalg::qr(&a).unwrap();
        let sq = r.rechunk([3, 3]).unwrap();
        let mut kinds = std::collections::HashSet::new();
        for y in [
            q,
            r,
            crate::linalg::det(&sq).unwrap(),
            crate::linalg::svd(&a).unwrap().1,
        ] {
            for layer in y.graph().layers() {
                if let Op::Linalg(l) = &layer.op {
                    assert_eq!(op_test(&layer.op), "op_linalg");
                    assert_round_trip(&layer.op);
                    kinds.insert(l.kind);
                }
            }
        }
        assert!(kinds.len() >= 5, "{kinds:?}");
        for kind in crate::ops::LinalgKind::ALL {
            assert_round_trip(&Op::Linalg(crate::ops::LinalgOp { kind }));
        }
        let bad = pb::Op {
            op: Some(pb::op::Op::Linalg(pb::Linalg { kind: 99 })),
        };
        assert!(what(Op::try_from(bad).unwrap_err()).contains("unknown linalg kind value 99"));
    }

    #[test]
    fn op_persisted() {
        let meta = x().graph().get(x().id()).unwrap().meta.clone();
        let op = Op::Persisted(crate::ops::Persisted {
            job: 0x1234_5678_9abc_def0,
            key: Arc::from(vec![7u8; 16]),
            token: 42,
            keeper: None,
        });
        let p = Array::from_op(op, vec![], Some(meta)).unwrap();
        let op = top_op(&p, "op_persisted");
        assert_round_trip(&op);
        let Op::Persisted(back) = through_wire(&op) else {
            unreachable!()
        };
        assert_eq!(
            (back.job, &*back.key, back.token),
            (0x1234_5678_9abc_def0, &[7u8; 16][..], 42)
        );
        // Running it anywhere but on its cluster is an error that says where the chunks are.
        let e = p.compute_dyn().unwrap_err();
        assert!(
            matches!(&e, Error::TaskFailed { key, .. } if key.starts_with(&p.id().to_string())),
            "{e:?}"
        );
        assert!(e.to_string().contains("123456789abcdef0"), "{e}");
        assert!(e.to_string().contains("client that persisted it"), "{e}");
    }

    #[test]
    fn op_map_blocks_is_not_serializable() {
        let y = x()
            .map_blocks(|b: ndarray::ArrayViewD<f64>| b.mapv(|v| v + 1.0))
            .unwrap();
        let op = top_op(&y, "op_map_blocks_is_not_serializable");
        assert!(matches!(
            pb::Op::try_from(&op),
            Err(Error::NotSerializable { .. })
        ));
        // Through a graph, the error names the layer.
        match graph_to_proto(&(&y + 1.0f64).graph()) {
            Err(Error::NotSerializable { key }) => assert_eq!(key, y.id().to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn op_overlap() {
        use crate::ops::Boundary;
        for b in [
            Boundary::Reflect,
            Boundary::Periodic,
            Boundary::Nearest,
            Boundary::None,
            Boundary::Constant(crate::Scalar::F64(-2.5)),
        ] {
            let y = x().overlap(&[2, 1], &[b, Boundary::Periodic]).unwrap();
            assert_round_trip(&top_op(&y, "op_overlap"));
        }
        let bad = pb::Op {
            op: Some(pb::op::Op::Overlap(pb::Overlap {
                depth: vec![1],
                boundary: vec![pb::Boundary {
                    kind: 4,
                    constant: None,
                }],
            })),
        };
        assert!(what(Op::try_from(bad).unwrap_err()).contains("unknown overlap boundary value 4"));
    }

    #[test]
    fn op_trim() {
        use crate::ops::Boundary;
        let y = x()
            .overlap(&[2, 1], &[Boundary::None, Boundary::Reflect])
            .unwrap()
            .trim_internal(&[2, 1], &[Boundary::None, Boundary::Reflect])
            .unwrap();
        assert_round_trip(&top_op(&y, "op_trim"));
    }

    #[test]
    fn op_mask() {
        let m = x().gt(0.5).unwrap();
        let y = x().mask_select(&m).unwrap();
        assert_round_trip(&top_op(&y, "op_mask"));
        let counts = y
            .graph()
            .layers()
            .iter()
            .find(|l| matches!(&l.op, Op::Mask(o) if o.stage == crate::ops::MaskStage::Count))
            .map(|l| l.op.clone());
        assert!(
            counts.is_none(),
            "the counts were computed before the selection was built"
        );
        assert_round_trip(&top_op(&m.flatnonzero().unwrap(), "op_mask"));
        assert_round_trip(&Op::Mask(crate::ops::MaskOp {
            stage: crate::ops::MaskStage::Count,
        }));
        let bad = pb::Op {
            op: Some(pb::op::Op::Mask(pb::Mask {
                stage: 7,
                counts: vec![],
                groups: vec![],
                indices: false,
            })),
        };
        assert!(what(Op::try_from(bad).unwrap_err()).contains("unknown mask stage value 7"));
    }
}
