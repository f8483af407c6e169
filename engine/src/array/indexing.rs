//! Integer-array indexing: numpy's `take` along an axis with indices known when the graph is built
//! (negative ones count from the end), as one [`Op::Take`] layer.

use std::sync::Arc;

use super::Array;
use crate::error::{Error, Result};
use crate::ops::reduce::normalize_axis;
use crate::ops::{Op, TakeOp};

impl Array {
    /// The positions `indices` along `axis` (numpy's `take`, or `x[[i, j, …]]` along axis 0); indices
    /// may repeat and come in any order, negative ones count from the end. A task reads only the
    /// chunks along the axis that hold its indices.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 10, 1, [4]).unwrap();
    /// let y = x.take(&[7, -1, 0, 7], 0).unwrap();
    /// assert_eq!(y.compute::<i64>().unwrap().into_raw_vec_and_offset().0, vec![7, 9, 0, 7]);
    /// ```
    pub fn take(&self, indices: &[i64], axis: isize) -> Result<Array> {
        let axis = normalize_axis(axis, self.ndim())?;
        let len = self.shape()[axis];
        let indices = indices
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + len as i64 } else { i };
                if (0..len as i64).contains(&j) {
                    Ok(j as u64)
                } else {
                    Err(Error::IndexOutOfBounds {
                        index: i as isize,
                        axis,
                        len,
                    })
                }
            })
            .collect::<Result<Vec<u64>>>()?;
        Array::from_op(
            Op::Take(TakeOp {
                axis,
                indices: Arc::new(indices),
            }),
            vec![self.clone()],
            None,
        )
    }
}
