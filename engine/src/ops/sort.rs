//! Sorting along one axis of any chunking ([`SortOp`]: numpy's `sort` and `argsort`), in two
//! stages whose output chunks are known when the graph is built: the output keeps its input's
//! chunking, so output block `i` along the axis holds the elements of global ranks
//! `offsets[i]..offsets[i+1]` of each lane.
//!
//! - [`SortStage::Local`] sorts each block's lanes on their own (for `argsort`, the lane positions
//!   plus the block's offset along the axis: global indices). With the axis in one chunk this is
//!   the whole sort.
//! - [`SortStage::Merge`] computes output block `i`: it reads every locally sorted block along the
//!   axis (the runs), finds by bisection where ranks `offsets[i]` and `offsets[i+1]` split each
//!   run ([`kernels::sort::split_at_rank`](crate::kernels::sort::split_at_rank)), and merges just
//!   those run segments. This is a sample sort whose splitters are exact: every partition is one
//!   output block, so no partition is ever larger than a chunk. For `argsort` it reads the local
//!   argsort blocks and the input blocks (the keys of the indices it merges).
//!
//! Order and stability: elements are ordered by numpy's key (NaN last, `-0.0 == 0.0`), ties by
//! position, so both `sort` and `argsort` equal numpy's `kind="stable"` result on any chunking,
//! bit for bit. The price of the merge stage is reads: each of the `k` output blocks along the
//! axis reads all `k` input blocks of its lanes (`k²` block reads, like the scan); keep the number
//! of chunks along a sorted axis moderate.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayView1, Axis};

use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block};
use crate::kernels::sort::{SortKey, merge_into, sort_by_key_stable, split_at_rank};
use crate::meta::DType;
use crate::ops::{Derived, Holds, InputMeta, RuleResult};

/// Which stage of a sort a layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortStage {
    /// Each block's lanes sorted on their own.
    Local = 0,
    /// Output block `i` merged from the locally sorted blocks along the axis.
    Merge = 1,
}

impl SortStage {
    /// The stable code on the wire and in tokens.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The stage with wire code `code`, if there is one.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(SortStage::Local),
            1 => Some(SortStage::Merge),
            _ => None,
        }
    }
}

/// One stage of a sort (`arg: false`) or argsort (`arg: true`) along `axis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SortOp {
    pub axis: usize,
    pub stage: SortStage,
    pub arg: bool,
}

/// The element types a sort orders.
fn sortable(dtype: DType) -> bool {
    !dtype.is_complex()
}

impl SortOp {
    /// numpy's name.
    pub fn name(&self) -> &'static str {
        if self.arg { "argsort" } else { "sort" }
    }

    /// The value input's chunks; its dtype for `sort`, int64 for `argsort`. A merging argsort reads
    /// the local argsort (int64) and the values, with equal chunks.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let want = if self.arg && self.stage == SortStage::Merge {
            2
        } else {
            1
        };
        if inputs.len() != want {
            return Err(format!(
                "{} ({:?} stage) reads {want} input(s), this layer has {}",
                self.name(),
                self.stage,
                inputs.len()
            ));
        }
        for i in inputs {
            if i.holds != Holds::Array {
                return Err(format!("its input {} holds no array chunks", i.id));
            }
        }
        let values = inputs.last().expect("one input at least");
        let m = values.meta;
        if self.axis >= m.ndim() {
            return Err(format!(
                "sorts along axis {}, out of range for rank {}",
                self.axis,
                m.ndim()
            ));
        }
        if !sortable(m.dtype) {
            return Err(format!("cannot sort {} input {}", m.dtype, values.id));
        }
        if want == 2 {
            let idx = &inputs[0];
            if idx.meta.dtype != DType::I64 || idx.meta.chunks != m.chunks {
                return Err(format!(
                    "its index input {} must be int64 chunked as its values {} ({:?}), not {} {:?}",
                    idx.id,
                    values.id,
                    m.chunks.sizes(),
                    idx.meta.dtype,
                    idx.meta.chunks.sizes()
                ));
            }
        }
        let (dtype, dtype_rule) = if self.arg {
            (DType::I64, "int64 indices")
        } else {
            (m.dtype, "keeping its input's dtype")
        };
        Ok(Derived::new(
            m.chunks.clone(),
            dtype,
            "keeping its input's chunks",
            dtype_rule,
        ))
    }

    /// Local: the block itself. Merge: every block along the axis (of each input, in input order).
    pub(crate) fn deps(&self, inputs: &[&ArrayMeta], block: &[u32], out: &mut Vec<(usize, Block)>) {
        match self.stage {
            SortStage::Local => out.push((0, Block::from_slice(block))),
            SortStage::Merge => {
                let n = inputs[0].chunks.axis(self.axis).len() as u32;
                for input in 0..inputs.len() {
                    for j in 0..n {
                        let mut b = Block::from_slice(block);
                        b[self.axis] = j;
                        out.push((input, b));
                    }
                }
            }
        }
    }

    /// Computes the block.
    pub(crate) fn run(
        &self,
        inputs: &[&ArrayMeta],
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let meta = inputs.last().ok_or_else(|| self.bad("reads an input"))?;
        let offsets = meta.chunks.axis_offsets(self.axis);
        let i = block[self.axis] as usize;
        let value = match self.stage {
            SortStage::Local => {
                let x = deps.first().ok_or_else(|| self.bad("reads one block"))?;
                let x = x.as_array()?;
                if self.arg {
                    ArrayData::I64(
                        crate::with_real_array!(x, a => local_argsort(a, self.axis, offsets[i] as i64), complex => return Err(self.complex())),
                    )
                } else {
                    crate::map_real_array!(x, a => local_sort(a, self.axis), complex => return Err(self.complex()))
                }
            }
            SortStage::Merge => {
                let (lo, hi) = (offsets[i], offsets[i + 1]);
                let k = offsets.len() - 1;
                if deps.len() != k * inputs.len() {
                    return Err(self.bad(&format!(
                        "reads {} blocks, got {}",
                        k * inputs.len(),
                        deps.len()
                    )));
                }
                let arrays: Vec<&ArrayData> =
                    deps.iter().map(|d| d.as_array()).collect::<Result<_>>()?;
                if self.arg {
                    let idx: Vec<&ArrayD<i64>> = arrays[..k]
                        .iter()
                        .map(|a| typed::<i64>(a))
                        .collect::<Result<_>>()?;
                    let vals = &arrays[k..];
                    ArrayData::I64(crate::with_real_array!(vals[0], first => {
                        self.merge_arg(&idx, &views(first, vals)?, offsets, lo, hi)?
                    }, complex => return Err(self.complex())))
                } else {
                    crate::with_real_array!(arrays[0], first => {
                        Element::wrap(self.merge_values(&views(first, &arrays)?, lo, hi)?)
                    }, complex => return Err(self.complex()))
                }
            }
        };
        Ok(ChunkValue::Array(value))
    }

    /// Complex data reaching a kernel the metadata rule refuses it for (an unchecked graph).
    fn complex(&self) -> Error {
        Error::UnsupportedDType {
            op: self.name(),
            dtype: DType::C128,
        }
    }

    fn bad(&self, reason: &str) -> Error {
        Error::InvalidArgument {
            op: self.name(),
            reason: reason.to_string(),
        }
    }

    /// The split counts of every run at ranks `lo` and `hi`, checked to describe segments.
    fn segments<K: Fn(usize, usize) -> u64 + Copy>(
        &self,
        lens: &[usize],
        lo: usize,
        hi: usize,
        key_at: K,
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        let unsorted = || {
            self.bad(&format!(
                "its input runs along axis {} are not sorted (a merge stage must read a local sort)",
                self.axis
            ))
        };
        let a = split_at_rank(lens, lo, key_at).ok_or_else(unsorted)?;
        let b = split_at_rank(lens, hi, key_at).ok_or_else(unsorted)?;
        if a.iter().zip(&b).any(|(a, b)| a > b) {
            return Err(unsorted());
        }
        // Ranks past the runs' end are clamped by the split: the segments must fill the output.
        let taken: usize = a.iter().zip(&b).map(|(a, b)| b - a).sum();
        if taken != hi - lo {
            return Err(self.bad(&format!(
                "its runs along axis {} hold {} elements, too few for output ranks {lo}..{hi}",
                self.axis,
                lens.iter().sum::<usize>()
            )));
        }
        Ok((a, b))
    }

    /// Output ranks `lo..hi` of every lane, merged from the sorted runs `runs`.
    fn merge_values<T: SortKey>(
        &self,
        runs: &[&ArrayD<T>],
        lo: usize,
        hi: usize,
    ) -> Result<ArrayD<T>> {
        let axis = Axis(self.axis);
        let mut shape = runs[0].shape().to_vec();
        shape[self.axis] = hi - lo;
        let mut out = ArrayD::from_elem(shape, runs[0].iter().next().copied().unwrap_or_else(zero));
        let lanes: Vec<Vec<ArrayView1<T>>> = runs
            .iter()
            .map(|r| r.lanes(axis).into_iter().collect())
            .collect();
        for (l, mut o) in out.lanes_mut(axis).into_iter().enumerate() {
            crate::exec::cancel::checkpoint()?;
            let run_lanes: Vec<std::borrow::Cow<[T]>> = lanes
                .iter()
                .map(|r| match r[l].as_slice() {
                    Some(s) => std::borrow::Cow::Borrowed(s),
                    None => std::borrow::Cow::Owned(r[l].to_vec()),
                })
                .collect();
            let lens: Vec<usize> = run_lanes.iter().map(|r| r.len()).collect();
            let key_at = |j: usize, p: usize| run_lanes[j][p].key();
            let (a, b) = self.segments(&lens, lo, hi, key_at)?;
            let segs: Vec<&[T]> = (0..lens.len()).map(|j| &run_lanes[j][a[j]..b[j]]).collect();
            match o.as_slice_mut() {
                Some(o) => merge_into(&segs, o, T::key),
                None => {
                    let mut merged = o.to_vec();
                    merge_into(&segs, &mut merged, T::key);
                    o.iter_mut().zip(merged).for_each(|(o, v)| *o = v);
                }
            }
        }
        Ok(out)
    }

    /// Output ranks `lo..hi` of every lane as global indices, merged from the local argsorts `idx`
    /// whose keys are read from the values `vals`.
    fn merge_arg<T: SortKey>(
        &self,
        idx: &[&ArrayD<i64>],
        vals: &[&ArrayD<T>],
        offsets: &[usize],
        lo: usize,
        hi: usize,
    ) -> Result<ArrayD<i64>> {
        let axis = Axis(self.axis);
        let mut shape = idx[0].shape().to_vec();
        shape[self.axis] = hi - lo;
        let mut out = ArrayD::zeros(shape);
        let idx_lanes: Vec<Vec<ArrayView1<i64>>> = idx
            .iter()
            .map(|r| r.lanes(axis).into_iter().collect())
            .collect();
        let val_lanes: Vec<Vec<ArrayView1<T>>> = vals
            .iter()
            .map(|r| r.lanes(axis).into_iter().collect())
            .collect();
        for (l, mut o) in out.lanes_mut(axis).into_iter().enumerate() {
            crate::exec::cancel::checkpoint()?;
            // Each run's keys in its sorted order: the value at each index, checked to be in range.
            let mut keys: Vec<Vec<u64>> = Vec::with_capacity(idx.len());
            for j in 0..idx.len() {
                let (il, vl) = (&idx_lanes[j][l], &val_lanes[j][l]);
                let mut k = Vec::with_capacity(il.len());
                for &g in il {
                    let p = (g as usize).wrapping_sub(offsets[j]);
                    let v = vl.get(p).ok_or_else(|| {
                        self.bad(&format!(
                            "index {g} of run {j} is outside its block {}..{}",
                            offsets[j],
                            offsets[j] + vl.len()
                        ))
                    })?;
                    k.push(v.key());
                }
                keys.push(k);
            }
            let lens: Vec<usize> = keys.iter().map(Vec::len).collect();
            let key_at = |j: usize, p: usize| keys[j][p];
            let (a, b) = self.segments(&lens, lo, hi, key_at)?;
            let segs: Vec<Vec<(u64, i64)>> = (0..lens.len())
                .map(|j| {
                    (a[j]..b[j])
                        .map(|p| (keys[j][p], idx_lanes[j][l][p]))
                        .collect()
                })
                .collect();
            let views: Vec<&[(u64, i64)]> = segs.iter().map(Vec::as_slice).collect();
            let mut merged = vec![(0, 0); hi - lo];
            merge_into(&views, &mut merged, |x: (u64, i64)| x.0);
            o.iter_mut().zip(merged).for_each(|(o, (_, g))| *o = g);
        }
        Ok(out)
    }
}

/// `a` as `ArrayD<T>`, or the dtype mismatch.
fn typed<T: Element>(a: &ArrayData) -> Result<&ArrayD<T>> {
    T::view(a).ok_or(Error::DTypeMismatch {
        expected: T::DTYPE,
        actual: a.dtype(),
    })
}

/// Every array of `arrays` as the element type of `_like` (which fixes `T`).
fn views<'a, T: Element>(
    _like: &ArrayD<T>,
    arrays: &[&'a ArrayData],
) -> Result<Vec<&'a ArrayD<T>>> {
    arrays.iter().map(|a| typed(a)).collect()
}

fn zero<T: Element>() -> T {
    T::from_scalar(crate::meta::Scalar::I64(0))
}

/// Every lane of `a` along `axis` sorted stably by numpy's order.
fn local_sort<T: SortKey>(a: &ArrayD<T>, axis: usize) -> ArrayD<T> {
    let mut out = a.clone();
    let mut buf: Vec<T> = Vec::new();
    for mut lane in out.lanes_mut(Axis(axis)) {
        match lane.as_slice_mut() {
            Some(s) => sort_by_key_stable(s, T::key),
            None => {
                buf.clear();
                buf.extend(lane.iter().copied());
                sort_by_key_stable(&mut buf, T::key);
                lane.iter_mut().zip(&buf).for_each(|(o, &v)| *o = v);
            }
        }
    }
    out
}

/// Every lane's stable argsort, as indices plus `offset` (the block's start along the axis).
fn local_argsort<T: SortKey>(a: &ArrayD<T>, axis: usize, offset: i64) -> ArrayD<i64> {
    let mut out = ArrayD::<i64>::zeros(a.raw_dim());
    let mut buf: Vec<(u64, i64)> = Vec::new();
    for (lane, mut o) in a
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        buf.clear();
        buf.extend(
            lane.iter()
                .enumerate()
                .map(|(p, v)| (v.key(), offset + p as i64)),
        );
        sort_by_key_stable(&mut buf, |x: (u64, i64)| x.0);
        o.iter_mut().zip(&buf).for_each(|(o, &(_, g))| *o = g);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Chunks;

    #[test]
    fn runs_too_short_for_the_output_ranks_are_a_typed_error() {
        // Metadata of 3 + 3 elements along the axis, but the sorted runs read hold one each (only
        // a graph that skipped the validator can deliver that): the merge for ranks 3..6 says so.
        let meta = ArrayMeta {
            chunks: Chunks::from_sizes(vec![vec![3, 3]]),
            dtype: DType::F64,
        };
        let run = |v: &[f64]| {
            Arc::new(ChunkValue::Array(ArrayData::F64(
                ndarray::arr1(v).into_dyn(),
            )))
        };
        let op = SortOp {
            axis: 0,
            stage: SortStage::Merge,
            arg: false,
        };
        let err = op
            .run(&[&meta], &[1], &[run(&[1.0]), run(&[2.0])])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("its runs along axis 0 hold 2 elements, too few for output ranks 3..6"),
            "{err}"
        );
        // Runs that fill the ranks merge as before.
        let merged = op
            .run(
                &[&meta],
                &[1],
                &[run(&[0.0, 2.0, 4.0]), run(&[1.0, 3.0, 5.0])],
            )
            .unwrap();
        let ChunkValue::Array(ArrayData::F64(a)) = merged else {
            panic!("an f64 array");
        };
        assert_eq!(a.as_slice().unwrap(), &[3.0, 4.0, 5.0]);
    }
}
