//! Cumulative sums and products (numpy's `cumsum`, `cumprod`, `nancumsum`, `nancumprod`) along
//! any axis of any chunking, as one [`Op::Scan`] layer over the input cast to the result dtype
//! (bool and int64 accumulate in int64). Without an axis the array is flattened first, as numpy's.

use super::Array;
use crate::error::Result;
use crate::ops::reduce::normalize_axis;
use crate::ops::{Op, ScanFn, ScanOp};

impl Array {
    /// The scan `func` along `axis` (negative counts from the end).
    pub fn cumulative(&self, func: ScanFn, axis: isize) -> Result<Array> {
        self.usable()?;
        let axis = normalize_axis(axis, self.ndim())?;
        let x = self.astype(func.result_dtype(self.dtype()))?;
        Array::from_op(Op::Scan(ScanOp { func, axis }), vec![x], None)
    }

    fn cumulative_flat(&self, func: ScanFn, axis: Option<isize>) -> Result<Array> {
        match axis {
            Some(a) => self.cumulative(func, a),
            None => self.ravel()?.cumulative(func, 0),
        }
    }

    /// Running sum along `axis`, or over the flattened array for `None` (numpy's `cumsum`).
    ///
    /// ```
    /// let x = tessera::arange(1i64, 6, 1, [2]).unwrap();
    /// assert_eq!(x.cumsum(Some(0)).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![1, 3, 6, 10, 15]);
    /// ```
    pub fn cumsum(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.cumulative_flat(ScanFn::Sum, axis)
    }

    /// Running product (numpy's `cumprod`).
    ///
    /// ```
    /// let x = tessera::arange(1i64, 6, 1, [2]).unwrap();
    /// assert_eq!(x.cumprod(None).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![1, 2, 6, 24, 120]);
    /// ```
    pub fn cumprod(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.cumulative_flat(ScanFn::Prod, axis)
    }

    /// Running sum with NaN counted as 0 (numpy's `nancumsum`).
    pub fn nancumsum(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.cumulative_flat(ScanFn::NanSum, axis)
    }

    /// Running product with NaN counted as 1 (numpy's `nancumprod`).
    pub fn nancumprod(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.cumulative_flat(ScanFn::NanProd, axis)
    }
}
