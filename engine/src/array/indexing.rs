//! Integer-array indexing: numpy's `take` along an axis with indices known when the graph is built
//! (negative ones count from the end), as one [`Op::Take`] layer, and the functions that are a take
//! of indices worked out from their arguments: `repeat`, `compress`, `delete`.

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

    /// Each position along `axis` repeated `repeats` times (numpy's `repeat` with an integer);
    /// without an axis the array is flattened first.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 3, 1, [2]).unwrap();
    /// let y = x.repeat(2, None).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(y.into_raw_vec_and_offset().0, vec![0, 0, 1, 1, 2, 2]);
    /// ```
    pub fn repeat(&self, repeats: usize, axis: Option<isize>) -> Result<Array> {
        let (x, axis) = self.along(axis)?;
        let counts = vec![repeats; x.shape()[axis]];
        x.repeat_each(&counts, Some(axis as isize))
    }

    /// Position `i` along `axis` repeated `repeats[i]` times (numpy's `repeat` with an array of
    /// counts, one per position); without an axis the array is flattened first.
    pub fn repeat_each(&self, repeats: &[usize], axis: Option<isize>) -> Result<Array> {
        let (x, axis) = self.along(axis)?;
        let len = x.shape()[axis];
        if repeats.len() != len {
            return Err(Error::ShapeMismatch {
                op: "repeat",
                reason: format!(
                    "{} repeat counts for axis {axis} of length {len}",
                    repeats.len()
                ),
            });
        }
        let indices: Vec<i64> = repeats
            .iter()
            .enumerate()
            .flat_map(|(i, &r)| std::iter::repeat_n(i as i64, r))
            .collect();
        x.take(&indices, axis as isize)
    }

    /// The positions along `axis` where `condition` is true (numpy's `compress`; positions past the
    /// end of `condition` are dropped); without an axis the array is flattened first.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 5, 1, [2]).unwrap();
    /// let y = x.compress(&[true, false, true], None).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(y.into_raw_vec_and_offset().0, vec![0, 2]);
    /// ```
    pub fn compress(&self, condition: &[bool], axis: Option<isize>) -> Result<Array> {
        let (x, axis) = self.along(axis)?;
        let len = x.shape()[axis];
        if condition.len() > len {
            return Err(Error::ShapeMismatch {
                op: "compress",
                reason: format!(
                    "a condition of length {} for axis {axis} of length {len}",
                    condition.len()
                ),
            });
        }
        let indices: Vec<i64> = (0..condition.len() as i64)
            .filter(|&i| condition[i as usize])
            .collect();
        x.take(&indices, axis as isize)
    }

    /// The array without the positions `indices` along `axis` (numpy's `delete`; negative indices
    /// count from the end, repeats are removed once); without an axis the array is flattened first.
    pub fn delete(&self, indices: &[i64], axis: Option<isize>) -> Result<Array> {
        let (x, axis) = self.along(axis)?;
        let len = x.shape()[axis];
        let mut keep = vec![true; len];
        for &i in indices {
            let j = if i < 0 { i + len as i64 } else { i };
            if !(0..len as i64).contains(&j) {
                return Err(Error::IndexOutOfBounds {
                    index: i as isize,
                    axis,
                    len,
                });
            }
            keep[j as usize] = false;
        }
        x.compress(&keep, Some(axis as isize))
    }

    /// The array and the axis an axis-or-flattened function works along.
    fn along(&self, axis: Option<isize>) -> Result<(Array, usize)> {
        match axis {
            Some(a) => Ok((self.clone(), normalize_axis(a, self.ndim())?)),
            None => Ok((self.ravel()?, 0)),
        }
    }
}
