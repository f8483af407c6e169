//! Stencils across chunk borders (dask's `dask.array.overlap`): [`Array::overlap`] grows every block
//! by a margin taken from its neighbours, [`Array::trim_internal`] cuts the margins off again, and
//! [`Array::map_overlap`] runs a block function between the two, so a moving window or a finite
//! difference sees the elements on the far side of a chunk border.

use ndarray::{ArrayD, ArrayViewD};

use super::Array;
use crate::data::Element;
use crate::error::{Error, Result};
use crate::ops::overlap::constant_for;
use crate::ops::{Boundary, Op, OverlapOp, TrimOp};

impl Array {
    /// Every block grown by `depth[axis]` elements on both sides along each axis, from its
    /// neighbours' edges (dask's `overlap`). `depth` and `boundary` hold one entry per axis, or one
    /// entry for every axis. At the array's outer sides the [`Boundary`] fills the margin; with
    /// [`Boundary::None`] the outer blocks get no margin there. The depth along an axis may not
    /// exceed its smallest chunk (rechunk first otherwise, as dask says).
    ///
    /// ```
    /// use tessera::Boundary;
    /// let x = tessera::arange(0i64, 6, 1, [3]).unwrap();
    /// let g = x.overlap(&[1], &[Boundary::Periodic]).unwrap();
    /// assert_eq!(g.chunks().axis(0), &[5, 5]);
    /// let v = g.compute::<i64>().unwrap().into_raw_vec_and_offset().0;
    /// assert_eq!(v, vec![5, 0, 1, 2, 3, 2, 3, 4, 5, 0]);
    /// ```
    pub fn overlap(&self, depth: &[usize], boundary: &[Boundary]) -> Result<Array> {
        self.usable()?;
        let nd = self.ndim();
        let depth = per_axis("overlap", "depth", depth, nd)?;
        let boundary = per_axis("overlap", "boundary", boundary, nd)?
            .into_iter()
            .map(|b| constant_for(b, self.dtype()))
            .collect::<Vec<_>>();
        for (axis, &d) in depth.iter().enumerate() {
            let smallest = self.chunks().axis(axis).iter().copied().min().unwrap_or(0);
            if d > smallest {
                return Err(Error::InvalidArgument {
                    op: "overlap",
                    reason: format!(
                        "the depth {d} on axis {axis} is larger than the smallest chunk there \
                         ({smallest}, chunks {:?}); rechunk to chunks of at least {d} along axis \
                         {axis} first (x.rechunk(..))",
                        self.chunks().axis(axis)
                    ),
                });
            }
        }
        if depth.iter().all(|&d| d == 0) {
            return Ok(self.clone());
        }
        Array::from_op(
            Op::Overlap(OverlapOp { depth, boundary }),
            vec![self.clone()],
            None,
        )
    }

    /// Every block cut by `depth[axis]` elements on both sides along each axis (dask's
    /// `trim_internal`): the inverse of [`Array::overlap`] with the same depth and boundary (the
    /// outer sides are kept where the boundary is [`Boundary::None`], which added nothing there).
    ///
    /// ```
    /// use tessera::Boundary;
    /// let x = tessera::arange(0i64, 6, 1, [3]).unwrap();
    /// let g = x.overlap(&[1], &[Boundary::Nearest]).unwrap();
    /// let t = g.trim_internal(&[1], &[Boundary::Nearest]).unwrap();
    /// assert_eq!(t.chunks().axis(0), &[3, 3]);
    /// assert_eq!(t.compute::<i64>().unwrap(), x.compute::<i64>().unwrap());
    /// ```
    pub fn trim_internal(&self, depth: &[usize], boundary: &[Boundary]) -> Result<Array> {
        self.usable()?;
        let nd = self.ndim();
        let depth = per_axis("trim_internal", "depth", depth, nd)?;
        let outer = per_axis("trim_internal", "boundary", boundary, nd)?
            .into_iter()
            .map(|b| b != Boundary::None)
            .collect();
        if depth.iter().all(|&d| d == 0) {
            return Ok(self.clone());
        }
        Array::from_op(Op::Trim(TrimOp { depth, outer }), vec![self.clone()], None)
    }

    /// `f` applied to every block grown by `depth` (dask's `map_overlap`): the array is overlapped
    /// with `boundary`, `f` maps each grown block to a block of the same shape, and with `trim` the
    /// margins are cut off again, so the result has the input's chunks. Local executor only (`f` is
    /// a closure); the overlap and the trim themselves also run on a cluster.
    ///
    /// ```
    /// use tessera::Boundary;
    /// use ndarray::{ArrayD, ArrayViewD, Axis};
    /// // A 3-point moving sum across chunk borders, zero outside the array.
    /// let x = tessera::arange(0.0, 8.0, 1.0, [3]).unwrap();
    /// let sum3 = |b: ArrayViewD<f64>| -> ArrayD<f64> {
    ///     let n = b.len();
    ///     ArrayD::from_shape_fn(b.raw_dim(), |i| {
    ///         let i = i[0];
    ///         if i == 0 || i + 1 == n { 0.0 } else { b[[i - 1]] + b[[i]] + b[[i + 1]] }
    ///     })
    /// };
    /// let y = x.map_overlap(sum3, &[1], &[Boundary::Constant(0.0.into())], true).unwrap();
    /// let v = y.compute::<f64>().unwrap().into_raw_vec_and_offset().0;
    /// assert_eq!(v, vec![1.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 13.0]);
    /// ```
    pub fn map_overlap<T: Element, U: Element>(
        &self,
        f: impl Fn(ArrayViewD<T>) -> ArrayD<U> + Send + Sync + 'static,
        depth: &[usize],
        boundary: &[Boundary],
        trim: bool,
    ) -> Result<Array> {
        self.usable()?;
        let mapped = self.overlap(depth, boundary)?.map_blocks(f)?;
        if trim {
            mapped.trim_internal(depth, boundary)
        } else {
            Ok(mapped)
        }
    }
}

/// One value per axis, from one per axis or one for all.
fn per_axis<T: Copy>(op: &'static str, what: &str, v: &[T], nd: usize) -> Result<Vec<T>> {
    match v.len() {
        n if n == nd => Ok(v.to_vec()),
        1 => Ok(vec![v[0]; nd]),
        n => Err(Error::InvalidArgument {
            op,
            reason: format!("{n} {what} values for a {nd}-d array (give one per axis, or one)"),
        }),
    }
}
