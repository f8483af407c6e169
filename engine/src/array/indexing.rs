//! Integer-array indexing: numpy's `take` along an axis with indices known when the graph is built
//! (negative ones count from the end), as one [`Op::Take`] layer, and the functions that are a take
//! of indices worked out from their arguments: `repeat`, `compress`, `delete`; and boolean masks
//! (`x[mask]` as [`Array::mask_select`], `extract`, `nonzero`, `argwhere`, `flatnonzero`); point
//! indexing ([`Array::vindex`], one [`Op::VIndex`] layer of points known when the graph is built)
//! and [`take_along_axis`] (one [`Op::TakeAlong`] layer whose indices are data).
//!
//! A mask's selection has a length that depends on the data, while tessera fixes every chunk size
//! when the graph is built. So these functions first run a small job — the number of true entries
//! in each chunk of the flattened mask, one integer per chunk, on the executor given (the local one
//! by default) — and then build a lazy [`Op::Mask`] layer whose output chunks those counts fix
//! (each output chunk is the selections of a run of consecutive mask chunks; see
//! [`crate::ops::mask`]). The values themselves are selected only when the result is computed, and
//! a task checks the counts against the mask it reads. `where_(m, x, y)`, which keeps the shape,
//! needs none of this and stays fully lazy.

use std::sync::Arc;

use super::{Array, Executor};
use crate::data::ArrayData;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::mask::group_counts;
use crate::ops::reduce::normalize_axis;
use crate::ops::{MaskOp, MaskStage, Op, TakeAlongOp, TakeOp, VIndexOp};

/// An integer index array known when the graph is built, for [`Array::vindex`]: a slice, `Vec` or
/// fixed-size array of `i64`, or an `ndarray` array of `i64` of any rank.
pub trait IndexArray {
    /// The indices as an n-d array.
    fn index_array(&self) -> ndarray::ArrayD<i64>;
}

impl IndexArray for [i64] {
    fn index_array(&self) -> ndarray::ArrayD<i64> {
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[self.len()]), self.to_vec())
            .expect("a 1-d shape of the slice's length")
    }
}

impl IndexArray for Vec<i64> {
    fn index_array(&self) -> ndarray::ArrayD<i64> {
        self.as_slice().index_array()
    }
}

impl<const N: usize> IndexArray for [i64; N] {
    fn index_array(&self) -> ndarray::ArrayD<i64> {
        self.as_slice().index_array()
    }
}

impl<S, D> IndexArray for ndarray::ArrayBase<S, D>
where
    S: ndarray::Data<Elem = i64>,
    D: ndarray::Dimension,
{
    fn index_array(&self) -> ndarray::ArrayD<i64> {
        self.to_owned().into_dyn()
    }
}

impl<T: IndexArray + ?Sized> IndexArray for &T {
    fn index_array(&self) -> ndarray::ArrayD<i64> {
        (**self).index_array()
    }
}

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
        self.usable()?;
        let axis = normalize_axis(axis, self.ndim())?;
        let len = self.shape()[axis];
        let indices = indices
            .iter()
            .map(|&i| position(i, axis, len))
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

    /// Point indexing (dask's `vindex`, numpy's `x[idx0, idx1, …]` with integer arrays): one index
    /// array per leading axis, broadcast together; the result is the broadcast index shape followed
    /// by the axes not indexed. Indices may repeat and come in any order; negative ones count from
    /// the end. Each output block reads only the source blocks its points fall in.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 12, 1, [5]).unwrap().reshape(&[3, 4]).unwrap();
    /// // Points (2, 1), (0, 3), (-1, 0): x[[2, 0, -1], [1, 3, 0]] in numpy.
    /// let y = x.vindex(&[[2, 0, -1], [1, 3, 0]]).unwrap();
    /// assert_eq!(y.compute::<i64>().unwrap().into_raw_vec_and_offset().0, vec![9, 3, 8]);
    /// ```
    pub fn vindex<I: IndexArray>(&self, indices: &[I]) -> Result<Array> {
        self.usable()?;
        let nd = self.ndim();
        if indices.is_empty() || indices.len() > nd {
            return Err(Error::InvalidArgument {
                op: "vindex",
                reason: format!(
                    "{} index arrays for an array of rank {nd}: give 1 to {nd}",
                    indices.len()
                ),
            });
        }
        let arrays: Vec<ndarray::ArrayD<i64>> = indices.iter().map(|i| i.index_array()).collect();
        let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape()).collect();
        let index_shape = super::broadcast_shapes(&shapes)?;
        let axes = arrays.len();
        let points: usize = index_shape.iter().product();
        let mut coords = vec![0u64; points * axes];
        for (axis, a) in arrays.iter().enumerate() {
            let len = self.shape()[axis];
            let b = a
                .broadcast(ndarray::IxDyn(&index_shape))
                .expect("broadcast_shapes agreed");
            for (p, &i) in b.iter().enumerate() {
                coords[p * axes + axis] = position(i, axis, len)?;
            }
        }
        Array::from_op(
            Op::VIndex(VIndexOp {
                index_shape,
                axes,
                coords: Arc::new(coords),
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
        self.usable()?;
        let (x, axis) = self.along(axis)?;
        let counts = vec![repeats; x.shape()[axis]];
        x.repeat_each(&counts, Some(axis as isize))
    }

    /// Position `i` along `axis` repeated `repeats[i]` times (numpy's `repeat` with an array of
    /// counts, one per position); without an axis the array is flattened first.
    pub fn repeat_each(&self, repeats: &[usize], axis: Option<isize>) -> Result<Array> {
        self.usable()?;
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
        self.usable()?;
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
        self.usable()?;
        let (x, axis) = self.along(axis)?;
        let len = x.shape()[axis];
        let mut keep = vec![true; len];
        for &i in indices {
            keep[position(i, axis, len)? as usize] = false;
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

    /// The elements where `mask` is true, in C order, as a 1-D array (numpy's `x[mask]` with a
    /// boolean mask of `x`'s shape). Counts the mask's true entries per chunk first (a small job on
    /// the local executor; see the module notes), then selects lazily.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 12, 1, [5]).unwrap().reshape(&[3, 4]).unwrap();
    /// let m = x.remainder(3i64).unwrap().eq(0i64).unwrap();
    /// let y = x.mask_select(&m).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(y.into_raw_vec_and_offset().0, vec![0, 3, 6, 9]);
    /// ```
    pub fn mask_select(&self, mask: &Array) -> Result<Array> {
        self.usable()?;
        self.mask_select_on(mask, super::default_executor())
    }

    /// [`Array::mask_select`], counting the mask on `executor` (a cluster client, say).
    pub fn mask_select_on(&self, mask: &Array, executor: &dyn Executor) -> Result<Array> {
        self.usable()?;
        if mask.dtype() != DType::Bool {
            return Err(Error::DTypeMismatch {
                expected: DType::Bool,
                actual: mask.dtype(),
            });
        }
        if mask.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "mask_select",
                reason: format!(
                    "a boolean mask of shape {:?} for an array of shape {:?}",
                    mask.shape(),
                    self.shape()
                ),
            });
        }
        let values = self.ravel()?;
        let mut flat = mask.ravel()?;
        if flat.chunks() != values.chunks() {
            flat = flat.rechunk(values.chunks().sizes().to_vec())?;
        }
        select(Some(values), flat, executor)
    }

    /// The elements of `self` where `condition` is nonzero, flattened (numpy's
    /// `extract(condition, arr)`, written `arr.extract(&condition)`).
    pub fn extract(&self, condition: &Array) -> Result<Array> {
        self.usable()?;
        self.mask_select(&condition.astype(DType::Bool)?)
    }

    /// The flat (C-order) positions of the nonzero elements, as an i64 array (numpy's
    /// `flatnonzero`).
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[0.0, 2.0, 0.0, -1.0]).into_dyn(), [3]).unwrap();
    /// let i = x.flatnonzero().unwrap().compute::<i64>().unwrap();
    /// assert_eq!(i.into_raw_vec_and_offset().0, vec![1, 3]);
    /// ```
    pub fn flatnonzero(&self) -> Result<Array> {
        self.usable()?;
        self.flatnonzero_on(super::default_executor())
    }

    /// [`Array::flatnonzero`], counting on `executor`.
    pub fn flatnonzero_on(&self, executor: &dyn Executor) -> Result<Array> {
        self.usable()?;
        let flat = self.astype(DType::Bool)?.ravel()?;
        select(None, flat, executor)
    }

    /// The indices of the nonzero elements, one i64 array per axis (numpy's `nonzero`); a 0-d array
    /// is treated as 1-d, as numpy's `atleast_1d`.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr2(&[[0, 5], [7, 0]]).into_dyn(), [1, 2]).unwrap();
    /// let [r, c] = <[_; 2]>::try_from(x.nonzero().unwrap()).unwrap();
    /// assert_eq!(r.compute::<i64>().unwrap().into_raw_vec_and_offset().0, vec![0, 1]);
    /// assert_eq!(c.compute::<i64>().unwrap().into_raw_vec_and_offset().0, vec![1, 0]);
    /// ```
    pub fn nonzero(&self) -> Result<Vec<Array>> {
        self.usable()?;
        self.nonzero_on(super::default_executor())
    }

    /// [`Array::nonzero`], counting on `executor`.
    pub fn nonzero_on(&self, executor: &dyn Executor) -> Result<Vec<Array>> {
        self.usable()?;
        let x = if self.ndim() == 0 {
            self.reshape(&[1])?
        } else {
            self.clone()
        };
        let flat = x.flatnonzero_on(executor)?;
        let shape = x.shape().to_vec();
        let mut out = Vec::with_capacity(shape.len());
        let mut stride: usize = shape.iter().product();
        for &n in &shape {
            stride /= n.max(1);
            let i = flat.floor_divide(stride.max(1) as i64)?;
            out.push(i.remainder(n.max(1) as i64)?);
        }
        Ok(out)
    }

    /// The indices of the nonzero elements as rows of a `(count, ndim)` i64 array (numpy's
    /// `argwhere`).
    pub fn argwhere(&self) -> Result<Array> {
        self.usable()?;
        self.argwhere_on(super::default_executor())
    }

    /// [`Array::argwhere`], counting on `executor`.
    pub fn argwhere_on(&self, executor: &dyn Executor) -> Result<Array> {
        self.usable()?;
        if self.ndim() == 0 {
            // numpy: a 0-d argwhere has shape (count, 0), count 1 when the element is nonzero.
            let count = self.flatnonzero_on(executor)?.shape()[0];
            return super::zeros::<i64>(&[count, 0], [count.max(1), 1]);
        }
        let idx = self.nonzero_on(executor)?;
        let refs: Vec<&Array> = idx.iter().collect();
        super::stack(&refs, 1)
    }
}

/// The elements of `x` at the positions `indices` holds along `axis` (numpy's and the Array API's
/// `take_along_axis`): `indices` is an integer array of `x`'s rank that broadcasts with `x` on the
/// other axes; negative indices count from the end. `x` may be chunked along `axis`: an output
/// block reads its block of indices and the blocks of `x` along the axis in the same lanes. The
/// indices are data, so an index out of range is the computation's error (naming the axis, the
/// index and the length), as numpy's.
///
/// ```
/// let x = tessera::from_array(ndarray::arr2(&[[3.0, 1.0, 2.0], [0.5, 9.0, -1.0]]).into_dyn(), [1, 2]).unwrap();
/// let i = x.argsort(1).unwrap();
/// let sorted = tessera::take_along_axis(&x, &i, 1).unwrap();
/// assert_eq!(sorted.compute::<f64>().unwrap(), ndarray::arr2(&[[1.0, 2.0, 3.0], [-1.0, 0.5, 9.0]]).into_dyn());
/// ```
pub fn take_along_axis(x: &Array, indices: &Array, axis: isize) -> Result<Array> {
    x.usable()?;
    indices.usable()?;
    if !indices.dtype().is_integer() {
        return Err(Error::DTypeMismatch {
            expected: DType::I64,
            actual: indices.dtype(),
        });
    }
    let nd = x.ndim();
    if indices.ndim() != nd {
        return Err(Error::ShapeMismatch {
            op: "take_along_axis",
            reason: format!(
                "indices of shape {:?} for an array of shape {:?}: they must have the same rank",
                indices.shape(),
                x.shape()
            ),
        });
    }
    let axis = normalize_axis(axis, nd)?;
    let (xs, is) = (x.shape(), indices.shape());
    let mut want: Vec<Vec<usize>> = indices.chunks().sizes().to_vec();
    for d in (0..nd).filter(|&d| d != axis) {
        if xs[d] == is[d] {
            want[d] = x.chunks().axis(d).to_vec();
        } else if xs[d] != 1 && is[d] != 1 {
            return Err(Error::ShapeMismatch {
                op: "take_along_axis",
                reason: format!(
                    "indices of shape {is:?} do not broadcast with an array of shape {xs:?} on \
                     axis {d}"
                ),
            });
        }
    }
    let mut idx = indices.astype(DType::I64)?;
    if idx.chunks().sizes() != want.as_slice() {
        idx = idx.rechunk(want)?;
    }
    Array::from_op(
        Op::TakeAlong(TakeAlongOp { axis }),
        vec![x.clone(), idx],
        None,
    )
}

/// The selection of `values` (or the positions, without values) where the flat `mask` is true: its
/// per-chunk counts computed on `executor`, then one lazy [`Op::Mask`] layer.
fn select(values: Option<Array>, mask: Array, executor: &dyn Executor) -> Result<Array> {
    let counted = Array::from_op(
        Op::Mask(MaskOp {
            stage: MaskStage::Count,
        }),
        vec![mask.clone()],
        None,
    )?;
    let counts: Vec<u64> = match counted.compute_on(executor)? {
        ArrayData::I64(c) => c.iter().map(|&n| n as u64).collect(),
        other => {
            return Err(Error::DTypeMismatch {
                expected: DType::I64,
                actual: other.dtype(),
            });
        }
    };
    let target = mask.chunks().axis(0).iter().copied().max().unwrap_or(1) as u64;
    let groups = group_counts(&counts, target);
    let indices = values.is_none();
    let inputs = match values {
        Some(v) => vec![v, mask],
        None => vec![mask],
    };
    Array::from_op(
        Op::Mask(MaskOp {
            stage: MaskStage::Select {
                counts: Arc::new(counts),
                groups,
                indices,
            },
        }),
        inputs,
        None,
    )
}

/// The position of index `i` on an axis of `len` elements (a negative one counts from the end), or
/// the error naming the index, the axis and the length.
fn position(i: i64, axis: usize, len: usize) -> Result<u64> {
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
}
