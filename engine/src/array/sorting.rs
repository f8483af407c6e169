//! Sorting and searching: numpy's `sort`, `argsort`, `searchsorted`, `digitize`. `sort` and
//! `argsort` work along any axis of any chunking ([`Op::Sort`]: each block sorted, then each
//! output block merged from the sorted blocks at exact rank splits); the output keeps the input's
//! chunks. The order is numpy's (NaN last) and stable, so `argsort` is numpy's `kind="stable"`
//! whatever the chunking.

use super::Array;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::reduce::normalize_axis;
use crate::ops::{Op, SearchSortedOp, SortOp, SortStage, TopKOp};

/// Partial blocks merged per level of the topk tree.
const TOPK_SPLIT_EVERY: usize = 8;

/// Which index `searchsorted` returns for a value equal to elements of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first position where the value could be inserted (numpy's `side="left"`).
    Left,
    /// The last such position (numpy's `side="right"`).
    Right,
}

/// The dtype two lookup operands are compared in: numpy's promotion, bool with bool kept.
pub(crate) fn common_dtype(a: DType, b: DType) -> DType {
    DType::promote(a, b)
}

impl Array {
    /// The array sorted along `axis` (negative counts from the end; numpy's default is `-1`), in
    /// numpy's order: NaN last. The axis may have any number of chunks; the result keeps the
    /// input's chunks.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[3.0, f64::NAN, -1.0, 2.0, 0.5]).into_dyn(), [2]).unwrap();
    /// let s = x.sort(-1).unwrap().compute::<f64>().unwrap();
    /// assert_eq!(s.as_slice().unwrap()[..4], [-1.0, 0.5, 2.0, 3.0]);
    /// assert!(s[4].is_nan());
    /// ```
    pub fn sort(&self, axis: isize) -> Result<Array> {
        self.usable()?;
        self.sort_op(axis, false)
    }

    /// The int64 indices that sort the array along `axis`: numpy's `argsort(kind="stable")` (equal
    /// elements keep their order, NaN last) for every chunking; every `kind` of numpy is met by it.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[2i64, 1, 2, 0, 1]).into_dyn(), [2]).unwrap();
    /// let i = x.argsort(0).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(i.into_iter().collect::<Vec<_>>(), vec![3, 1, 4, 0, 2]);
    /// ```
    pub fn argsort(&self, axis: isize) -> Result<Array> {
        self.usable()?;
        self.sort_op(axis, true)
    }

    fn sort_op(&self, axis: isize, arg: bool) -> Result<Array> {
        let axis = normalize_axis(axis, self.ndim())?;
        let local = Array::from_op(
            Op::Sort(SortOp {
                axis,
                stage: SortStage::Local,
                arg,
            }),
            vec![self.clone()],
            None,
        )?;
        if self.chunks().axis(axis).len() <= 1 {
            return Ok(local);
        }
        let inputs = if arg {
            vec![local, self.clone()]
        } else {
            vec![local]
        };
        Array::from_op(
            Op::Sort(SortOp {
                axis,
                stage: SortStage::Merge,
                arg,
            }),
            inputs,
            None,
        )
    }

    /// The `|k|` largest elements along `axis` for `k > 0`, largest first, or the `|k|` smallest
    /// for `k < 0`, smallest first (dask's `topk`; NaN counts as the largest), as a tree reduction:
    /// each chunk keeps its best `|k|`, then groups of partial chunks are merged and cut again
    /// until one chunk is left. The axis becomes one chunk of `|k|`.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[5i64, 1, 9, 3, 7, 2]).into_dyn(), [2]).unwrap();
    /// assert_eq!(x.topk(2, 0).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![9, 7]);
    /// assert_eq!(x.topk(-2, 0).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![1, 2]);
    /// ```
    pub fn topk(&self, k: i64, axis: isize) -> Result<Array> {
        self.usable()?;
        self.topk_op(k, axis, false)
    }

    /// The int64 indices of [`Array::topk`]'s elements along `axis` (dask's `argtopk`); equal
    /// elements in index order.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[5i64, 1, 9, 3, 7, 2]).into_dyn(), [4]).unwrap();
    /// assert_eq!(x.argtopk(2, 0).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![2, 4]);
    /// assert_eq!(x.argtopk(-2, 0).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![1, 5]);
    /// ```
    pub fn argtopk(&self, k: i64, axis: isize) -> Result<Array> {
        self.usable()?;
        self.topk_op(k, axis, true)
    }

    fn topk_op(&self, k: i64, axis: isize, arg: bool) -> Result<Array> {
        let op_name = if arg { "argtopk" } else { "topk" };
        let axis = normalize_axis(axis, self.ndim())?;
        let n = self.shape()[axis];
        if k == 0 || k.unsigned_abs() as usize > n {
            return Err(Error::InvalidArgument {
                op: op_name,
                reason: format!(
                    "k = {k} must be nonzero with |k| <= {n}, the length of axis {axis}"
                ),
            });
        }
        let level = |arg: bool, inputs: Vec<Array>| {
            let indexed = inputs.len() == 2;
            Array::from_op(
                Op::TopK(TopKOp {
                    k,
                    axis,
                    arg,
                    indexed,
                }),
                inputs,
                None,
            )
        };
        let mut values = level(false, vec![self.clone()])?;
        let mut index = if arg {
            Some(level(true, vec![self.clone()])?)
        } else {
            None
        };
        while values.chunks().axis(axis).len() > 1 {
            let mut sizes = values.chunks().sizes().to_vec();
            sizes[axis] = sizes[axis]
                .chunks(TOPK_SPLIT_EVERY)
                .map(|g| g.iter().sum())
                .collect();
            let v = values.rechunk(sizes.clone())?;
            if let Some(i) = &index {
                index = Some(level(true, vec![v.clone(), i.rechunk(sizes)?])?);
            }
            values = level(false, vec![v])?;
        }
        Ok(index.unwrap_or(values))
    }

    /// Where the values `v` would be inserted in this sorted 1-D array to keep it sorted (numpy's
    /// `searchsorted`; NaN sorts last). The result has `v`'s shape and chunks. Each chunk of `v`
    /// reads the whole table, which suits tables much smaller than `v`.
    ///
    /// ```
    /// use tessera::Side;
    /// let a = tessera::from_array(ndarray::arr1(&[1.0, 2.0, 2.0, 3.0]).into_dyn(), [2]).unwrap();
    /// let v = tessera::from_array(ndarray::arr1(&[2.0, 0.0, 9.0]).into_dyn(), [2]).unwrap();
    /// let l = a.searchsorted(&v, Side::Left).unwrap().compute::<i64>().unwrap();
    /// let r = a.searchsorted(&v, Side::Right).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(l.into_iter().collect::<Vec<_>>(), vec![1, 0, 4]);
    /// assert_eq!(r.into_iter().collect::<Vec<_>>(), vec![3, 0, 4]);
    /// ```
    pub fn searchsorted(&self, v: &Array, side: Side) -> Result<Array> {
        self.usable()?;
        if self.ndim() != 1 {
            return Err(Error::InvalidArgument {
                op: "searchsorted",
                reason: format!(
                    "searches a 1-D sorted array, not one of shape {:?}",
                    self.shape()
                ),
            });
        }
        let dtype = common_dtype(self.dtype(), v.dtype());
        Array::from_op(
            Op::SearchSorted(SearchSortedOp {
                right: side == Side::Right,
            }),
            vec![v.astype(dtype)?, self.astype(dtype)?],
            None,
        )
    }

    /// The index of the bin of `bins` each element falls in (numpy's `digitize`): for increasing
    /// bins, `i` with `bins[i-1] <= x < bins[i]` (`right`: `bins[i-1] < x <= bins[i]`); for
    /// decreasing bins the mirror image. int64, with the input's chunks.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[0.2, 6.4, 3.0, 1.6]).into_dyn(), [2]).unwrap();
    /// let d = x.digitize(&[0.0, 1.0, 2.5, 4.0, 10.0], false).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(d.into_iter().collect::<Vec<_>>(), vec![1, 4, 3, 2]);
    /// ```
    pub fn digitize(&self, bins: &[f64], right: bool) -> Result<Array> {
        self.usable()?;
        let increasing = bins.windows(2).all(|w| w[0] <= w[1]);
        let decreasing = bins.windows(2).all(|w| w[0] >= w[1]);
        if !(increasing || decreasing) || bins.iter().any(|b| b.is_nan()) {
            return Err(Error::InvalidArgument {
                op: "digitize",
                reason: format!("bins must be monotonically increasing or decreasing: {bins:?}"),
            });
        }
        let side = if right { Side::Left } else { Side::Right };
        let x = self.astype(DType::F64)?;
        if increasing {
            let table = table(bins.to_vec())?;
            table.searchsorted(&x, side)
        } else {
            // numpy: len(bins) - searchsorted(bins[::-1], x, side).
            let table = table(bins.iter().rev().copied().collect())?;
            let n = bins.len() as i64;
            (n - table.searchsorted(&x, side)?).checked()
        }
    }
}

/// A small in-memory 1-D float64 table in one chunk.
fn table(values: Vec<f64>) -> Result<Array> {
    let n = values.len();
    super::from_array(ndarray::Array1::from(values).into_dyn(), [n.max(1)])
}
