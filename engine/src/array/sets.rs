//! Set operations: numpy's `isin` (lazy, chunked like its elements) and `unique`.
//!
//! `unique`'s output length depends on the data, and tessera fixes every chunk size when the graph
//! is built (there are no unknown chunks as in dask), so [`Array::unique`] is a method that
//! computes: the stable argsort of the flattened array runs as a graph (chunked, on any executor),
//! and one pass over the sorted values on the caller's side finds the runs of equal values. It
//! returns ndarrays ([`Unique`]), all of numpy's optional outputs at once.

use ndarray::{Array1, ArrayD};

use super::Array;
use super::sorting::common_dtype;
use crate::data::ArrayData;
use crate::error::Result;
use crate::kernels::sort::SortKey;
use crate::ops::{IsInOp, Op};

/// numpy's `unique(x, return_index=True, return_inverse=True, return_counts=True)` of the
/// flattened array, computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Unique {
    /// The distinct values in numpy's order (NaN last, all NaNs as one; `-0.0` and `0.0` as one,
    /// the first occurrence's sign kept).
    pub values: ArrayData,
    /// The flat index of each value's first occurrence (`return_index`).
    pub index: Array1<i64>,
    /// For each element of the flattened input, the index of its value in `values`
    /// (`return_inverse`; flat, as numpy's for `axis=None`).
    pub inverse: Array1<i64>,
    /// Occurrences of each value (`return_counts`).
    pub counts: Array1<i64>,
}

impl Array {
    /// Whether each element is in `test` (numpy's `isin`; `invert` negates). NaN is in nothing.
    /// The result has the elements' chunks; each chunk reads all of `test`.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 6, 1, [4]).unwrap();
    /// let t = tessera::from_array(ndarray::arr1(&[4i64, 1, 9]).into_dyn(), [2]).unwrap();
    /// let m = x.isin(&t, false).unwrap().compute::<bool>().unwrap();
    /// assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![false, true, false, false, true, false]);
    /// ```
    pub fn isin(&self, test: &Array, invert: bool) -> Result<Array> {
        self.usable()?;
        let dtype = common_dtype(self.dtype(), test.dtype());
        Array::from_op(
            Op::IsIn(IsInOp { invert }),
            vec![self.astype(dtype)?, test.astype(dtype)?],
            None,
        )
    }

    /// The distinct values of the flattened array with their first indices, inverse and counts,
    /// computed now (see the module notes for why this one computes).
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[3i64, 1, 3, 2, 1, 3]).into_dyn(), [4]).unwrap();
    /// let u = x.unique().unwrap();
    /// assert_eq!(u.values, tessera::ArrayData::I64(ndarray::arr1(&[1i64, 2, 3]).into_dyn()));
    /// assert_eq!(u.counts.to_vec(), vec![2, 1, 3]);
    /// assert_eq!(u.index.to_vec(), vec![1, 3, 0]);
    /// assert_eq!(u.inverse.to_vec(), vec![2, 0, 2, 1, 0, 2]);
    /// ```
    pub fn unique(&self) -> Result<Unique> {
        self.usable()?;
        let flat = self.ravel()?;
        let order = flat.argsort(0)?;
        let [values, order] = super::compute_many(&[&flat, &order])?
            .try_into()
            .expect("two outputs");
        let order = order.into_typed::<i64>()?;
        crate::with_real_array!(&values, v => Ok(unique_of(v, &order)), complex => Err(crate::Error::UnsupportedDType { op: "unique", dtype: crate::DType::C128 }))
    }
}

/// The runs of equal keys of `v` in the stable order `order`.
fn unique_of<T: SortKey>(v: &ArrayD<T>, order: &ArrayD<i64>) -> Unique {
    let n = order.len();
    let v: Vec<T> = v.iter().copied().collect();
    let mut values: Vec<T> = Vec::new();
    let (mut index, mut counts) = (Vec::new(), Vec::new());
    let mut inverse = vec![0i64; n];
    let mut last: Option<u64> = None;
    for &i in order.iter() {
        let x = v[i as usize];
        if last != Some(x.key()) {
            // The stable order puts the first occurrence first in its run.
            last = Some(x.key());
            values.push(x);
            index.push(i);
            counts.push(0);
        }
        *counts.last_mut().expect("a run") += 1;
        inverse[i as usize] = values.len() as i64 - 1;
    }
    Unique {
        values: T::wrap(Array1::from(values).into_dyn()),
        index: Array1::from(index),
        inverse: Array1::from(inverse),
        counts: Array1::from(counts),
    }
}
