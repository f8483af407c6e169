//! numpy's array manipulation functions built from the structural ops tessera already has, the way
//! dask builds most of them: slicing (`flip`, `squeeze`, `split`, `diff`, the pieces of `roll` and
//! `pad`), concatenation (`roll`, `tile`, `pad`, `hstack`…), `stack` with one array (`expand_dims`,
//! `atleast_*d`), axis permutation (`moveaxis`, `swapaxes`), an identity blockwise program over a
//! larger domain (`broadcast_to`), and elementwise masks from `arange` (`triu`, `tril`, `eye`,
//! `diagonal`), and `block` (nested concatenation). None of them adds an op, so each runs on both
//! executors and fuses as its parts do.

use ndarray::SliceInfoElem;

use super::Array;
use super::elementwise::{ProgramBuilder, align, broadcast_shapes, where_};
use super::structure::{concatenate, stack};
use crate::error::{Error, Result};
use crate::meta::{ChunkSpec, Chunks, DType, Scalar};
use crate::ops::reduce::{normalize_axes, normalize_axis};

/// How `pad` fills the border (numpy's `mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// A constant value (numpy's default, 0).
    Constant(Scalar),
    /// The edge value repeated.
    Edge,
    /// Mirrored without repeating the edge: `[1, 2, 3]` padded by 2 gives `[3, 2, 1, 2, 3, 2, 1]`.
    Reflect,
    /// Mirrored including the edge: `[1, 2, 3]` padded by 2 gives `[2, 1, 1, 2, 3, 3, 2]`.
    Symmetric,
    /// Wrapped around: `[1, 2, 3]` padded by 2 gives `[2, 3, 1, 2, 3, 1, 2]`.
    Wrap,
}

/// One axis's chunk sizes as a 1-D chunk spec (for index vectors chunked like that axis).
fn along_chunks(sizes: &[usize]) -> ChunkSpec {
    ChunkSpec::Explicit(vec![sizes.to_vec()])
}

fn invalid(op: &'static str, reason: String) -> Error {
    Error::InvalidArgument { op, reason }
}

/// `start..stop` with `step` on `axis`, full ranges elsewhere.
fn along(
    ndim: usize,
    axis: usize,
    start: isize,
    stop: Option<isize>,
    step: isize,
) -> Vec<SliceInfoElem> {
    (0..ndim)
        .map(|a| {
            if a == axis {
                SliceInfoElem::Slice {
                    start,
                    end: stop,
                    step,
                }
            } else {
                SliceInfoElem::Slice {
                    start: 0,
                    end: None,
                    step: 1,
                }
            }
        })
        .collect()
}

impl Array {
    /// Elements `start..stop` along `axis` (non-negative bounds).
    fn take_range(&self, axis: usize, start: usize, stop: usize) -> Result<Array> {
        self.slice(along(
            self.ndim(),
            axis,
            start as isize,
            Some(stop as isize),
            1,
        ))
    }

    /// Removes axes of length 1: the given ones (an error names one that is longer), or all.
    ///
    /// ```
    /// let x = tessera::zeros::<f64>(&[1, 3, 1], [1, 2, 1]).unwrap();
    /// assert_eq!(x.squeeze(None).unwrap().shape(), &[3]);
    /// assert_eq!(x.squeeze(Some(&[-1])).unwrap().shape(), &[1, 3]);
    /// ```
    pub fn squeeze(&self, axes: Option<&[isize]>) -> Result<Array> {
        self.usable()?;
        let axes = match axes {
            Some(a) => normalize_axes(a, self.ndim())?,
            None => (0..self.ndim()).filter(|&a| self.shape()[a] == 1).collect(),
        };
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] != 1) {
            return Err(invalid(
                "squeeze",
                format!(
                    "axis {a} of an array of shape {:?} has length {}, not 1",
                    self.shape(),
                    self.shape()[a]
                ),
            ));
        }
        if axes.is_empty() {
            return Ok(self.clone());
        }
        let info: Vec<SliceInfoElem> = (0..self.ndim())
            .map(|a| {
                if axes.contains(&a) {
                    SliceInfoElem::Index(0)
                } else {
                    SliceInfoElem::Slice {
                        start: 0,
                        end: None,
                        step: 1,
                    }
                }
            })
            .collect();
        self.slice(info)
    }

    /// Inserts an axis of length 1 at `axis` (of the result, negative counting from its end).
    ///
    /// ```
    /// let x = tessera::zeros::<f64>(&[2, 3], [1, 2]).unwrap();
    /// assert_eq!(x.expand_dims(1).unwrap().shape(), &[2, 1, 3]);
    /// assert_eq!(x.expand_dims(-1).unwrap().shape(), &[2, 3, 1]);
    /// ```
    pub fn expand_dims(&self, axis: isize) -> Result<Array> {
        self.usable()?;
        stack(&[self], axis)
    }

    /// This array broadcast to `shape` (numpy's `broadcast_to`): new and stretched axes are one
    /// chunk each; no data is copied until a chunk is computed.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 3, 1, [2]).unwrap();
    /// let b = x.broadcast_to(&[2, 3]).unwrap();
    /// assert_eq!(b.compute::<i64>().unwrap()[[1, 2]], 2);
    /// ```
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Array> {
        self.usable()?;
        let got = broadcast_shapes(&[self.shape(), shape])?;
        if got != shape {
            return Err(Error::Broadcast {
                left: self.shape().to_vec(),
                right: shape.to_vec(),
            });
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let pad = shape.len() - self.ndim();
        let sizes: Vec<Vec<usize>> = (0..shape.len())
            .map(|a| {
                if a >= pad && self.shape()[a - pad] == shape[a] {
                    self.chunks().axis(a - pad).to_vec()
                } else {
                    vec![shape[a]]
                }
            })
            .collect();
        let mut b = ProgramBuilder::new(Chunks::from_sizes(sizes));
        let v = b.input(self);
        b.finish(v, None)
    }

    /// Reverses the order of elements along `axis`, or along every axis for `None`.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 5, 1, [2]).unwrap();
    /// assert_eq!(x.flip(None).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![4, 3, 2, 1, 0]);
    /// ```
    pub fn flip(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        let axes = match axis {
            Some(a) => vec![normalize_axis(a, self.ndim())?],
            None => (0..self.ndim()).collect(),
        };
        let info: Vec<SliceInfoElem> = (0..self.ndim())
            .map(|a| SliceInfoElem::Slice {
                start: 0,
                end: None,
                step: if axes.contains(&a) { -1 } else { 1 },
            })
            .collect();
        self.slice(info)
    }

    /// Reverses axis 1 (numpy's `fliplr`); needs at least 2 axes.
    pub fn fliplr(&self) -> Result<Array> {
        self.usable()?;
        self.need_ndim("fliplr", 2)?;
        self.flip(Some(1))
    }

    /// Reverses axis 0 (numpy's `flipud`); needs at least 1 axis.
    pub fn flipud(&self) -> Result<Array> {
        self.usable()?;
        self.need_ndim("flipud", 1)?;
        self.flip(Some(0))
    }

    fn need_ndim(&self, op: &'static str, n: usize) -> Result<()> {
        if self.ndim() < n {
            return Err(invalid(
                op,
                format!(
                    "needs at least {n} axes, the array has shape {:?}",
                    self.shape()
                ),
            ));
        }
        Ok(())
    }

    /// Rolls elements by `shift` along `axis` (numpy's `roll`): elements pushed off one end come
    /// back at the other. With `None` the array is flattened, rolled and reshaped back.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 5, 1, [2]).unwrap();
    /// assert_eq!(x.roll(2, Some(0)).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![3, 4, 0, 1, 2]);
    /// ```
    pub fn roll(&self, shift: isize, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        let Some(axis) = axis else {
            let shape: Vec<isize> = self.shape().iter().map(|&n| n as isize).collect();
            return self.ravel()?.roll(shift, Some(0))?.reshape(&shape);
        };
        let k = normalize_axis(axis, self.ndim())?;
        let n = self.shape()[k];
        if n == 0 {
            return Ok(self.clone());
        }
        let s = shift.rem_euclid(n as isize) as usize;
        if s == 0 {
            return Ok(self.clone());
        }
        let tail = self.take_range(k, n - s, n)?;
        let head = self.take_range(k, 0, n - s)?;
        concatenate(&[&tail, &head], k as isize)
    }

    /// Moves axis `source` to position `destination`, keeping the others in order.
    pub fn moveaxis(&self, source: isize, destination: isize) -> Result<Array> {
        self.usable()?;
        let s = normalize_axis(source, self.ndim())?;
        let d = normalize_axis(destination, self.ndim())?;
        let mut perm: Vec<usize> = (0..self.ndim()).filter(|&a| a != s).collect();
        perm.insert(d, s);
        self.permute_axes(&perm)
    }

    /// Exchanges two axes.
    pub fn swapaxes(&self, a: isize, b: isize) -> Result<Array> {
        self.usable()?;
        let a = normalize_axis(a, self.ndim())?;
        let b = normalize_axis(b, self.ndim())?;
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        perm.swap(a, b);
        self.permute_axes(&perm)
    }

    /// The elements in C order as a 1-D array (numpy's `ravel`), through `reshape` (which
    /// rechunks to whole rows first, as dask's does).
    ///
    /// ```
    /// let x = tessera::arange(0i64, 6, 1, [6]).unwrap().reshape(&[2, 3]).unwrap().rechunk([1, 2]).unwrap();
    /// assert_eq!(x.ravel().unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
    /// ```
    pub fn ravel(&self) -> Result<Array> {
        self.usable()?;
        if self.ndim() == 1 {
            return Ok(self.clone());
        }
        self.reshape(&[-1])
    }

    /// Alias of [`Array::ravel`] (numpy's `flatten`, which copies; tessera arrays are immutable).
    pub fn flatten(&self) -> Result<Array> {
        self.usable()?;
        self.ravel()
    }

    /// The array repeated `reps[i]` times along each axis (numpy's `tile`); a `reps` longer than
    /// the rank prepends axes of length 1 first.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 3, 1, [2]).unwrap();
    /// let t = x.tile(&[2, 2]).unwrap();
    /// assert_eq!(t.shape(), &[2, 6]);
    /// assert_eq!(t.compute::<i64>().unwrap().iter().copied().collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    /// ```
    pub fn tile(&self, reps: &[usize]) -> Result<Array> {
        self.usable()?;
        let mut x = self.clone();
        while x.ndim() < reps.len() {
            x = x.expand_dims(0)?;
        }
        let off = x.ndim() - reps.len();
        for (i, &r) in reps.iter().enumerate() {
            let axis = off + i;
            if r == 1 {
                continue;
            }
            if r == 0 {
                x = x.take_range(axis, 0, 0)?;
                continue;
            }
            let copies: Vec<&Array> = std::iter::repeat_n(&x, r).collect();
            x = concatenate(&copies, axis as isize)?;
        }
        Ok(x)
    }

    /// Pads every axis with `widths[axis] = (before, after)` elements as `mode` says (numpy's
    /// `pad`). Reflect needs widths below the axis length, symmetric and wrap at most the length
    /// (numpy repeats the reflection for wider pads; tessera asks for two pads instead).
    ///
    /// ```
    /// use tessera::PadMode;
    /// let x = tessera::arange(1i64, 4, 1, [2]).unwrap();
    /// let p = x.pad(&[(2, 2)], PadMode::Reflect).unwrap();
    /// assert_eq!(p.compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![3, 2, 1, 2, 3, 2, 1]);
    /// ```
    pub fn pad(&self, widths: &[(usize, usize)], mode: PadMode) -> Result<Array> {
        self.usable()?;
        if widths.len() != self.ndim() {
            return Err(invalid(
                "pad",
                format!(
                    "needs one (before, after) pair per axis of shape {:?}, got {}",
                    self.shape(),
                    widths.len()
                ),
            ));
        }
        let mut x = self.clone();
        for (axis, &(before, after)) in widths.iter().enumerate() {
            if before == 0 && after == 0 {
                continue;
            }
            x = x.pad_axis(axis, before, after, mode)?;
        }
        Ok(x)
    }

    fn pad_axis(&self, axis: usize, before: usize, after: usize, mode: PadMode) -> Result<Array> {
        let n = self.shape()[axis];
        let limit = match mode {
            PadMode::Constant(_) => usize::MAX,
            PadMode::Reflect => n.saturating_sub(1),
            PadMode::Edge | PadMode::Symmetric | PadMode::Wrap => n,
        };
        let limit = if n == 0 && !matches!(mode, PadMode::Constant(_)) {
            0
        } else {
            limit
        };
        if before.max(after) > limit {
            return Err(invalid(
                "pad",
                format!(
                    "{mode:?} padding of ({before}, {after}) on axis {axis} of length {n} is wider \
                     than {limit}, the most one pad of this mode reaches; pad in steps"
                ),
            ));
        }
        let piece = |width: usize, at_start: bool| -> Result<Option<Array>> {
            if width == 0 {
                return Ok(None);
            }
            let p = match mode {
                PadMode::Constant(v) => {
                    let mut shape = self.shape().to_vec();
                    shape[axis] = width;
                    let mut sizes = self.chunks().sizes().to_vec();
                    sizes[axis] = vec![width];
                    crate::full(&shape, v.cast(self.dtype()), ChunkSpec::Explicit(sizes))?
                }
                PadMode::Edge => {
                    let e = if at_start {
                        self.take_range(axis, 0, 1)?
                    } else {
                        self.take_range(axis, n - 1, n)?
                    };
                    let copies: Vec<&Array> = std::iter::repeat_n(&e, width).collect();
                    concatenate(&copies, axis as isize)?
                }
                PadMode::Reflect => {
                    if at_start {
                        self.take_range(axis, 1, width + 1)?
                            .flip(Some(axis as isize))?
                    } else {
                        self.take_range(axis, n - 1 - width, n - 1)?
                            .flip(Some(axis as isize))?
                    }
                }
                PadMode::Symmetric => {
                    if at_start {
                        self.take_range(axis, 0, width)?.flip(Some(axis as isize))?
                    } else {
                        self.take_range(axis, n - width, n)?
                            .flip(Some(axis as isize))?
                    }
                }
                PadMode::Wrap => {
                    if at_start {
                        self.take_range(axis, n - width, n)?
                    } else {
                        self.take_range(axis, 0, width)?
                    }
                }
            };
            Ok(Some(p))
        };
        let b = piece(before, true)?;
        let a = piece(after, false)?;
        let parts: Vec<&Array> = b
            .iter()
            .chain(std::iter::once(self))
            .chain(a.iter())
            .collect();
        concatenate(&parts, axis as isize)
    }

    /// The `n`-th discrete difference along `axis` (numpy's `diff`): `x[1:] - x[:-1]`, `n` times;
    /// bool gives `x[1:] != x[:-1]`, as numpy's.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[1i64, 4, 9, 16]).into_dyn(), [3]).unwrap();
    /// assert_eq!(x.diff(1, -1).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![3, 5, 7]);
    /// assert_eq!(x.diff(2, -1).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![2, 2]);
    /// ```
    pub fn diff(&self, n: usize, axis: isize) -> Result<Array> {
        self.usable()?;
        let k = normalize_axis(axis, self.ndim())?;
        let mut x = self.clone();
        for _ in 0..n {
            let len = x.shape()[k];
            if len == 0 {
                break;
            }
            let hi = x.take_range(k, 1, len)?;
            let lo = x.take_range(k, 0, len - 1)?;
            x = if x.dtype() == DType::Bool {
                hi.ne(&lo)?
            } else {
                &hi - &lo
            };
        }
        Ok(x)
    }

    /// `j - i` (column minus row) over the last two axes, chunked as they are.
    fn col_minus_row(&self, op: &'static str) -> Result<Array> {
        self.need_ndim(op, 2)?;
        let nd = self.ndim();
        let (m, n) = (self.shape()[nd - 2], self.shape()[nd - 1]);
        let rows = crate::arange(0i64, m as i64, 1, along_chunks(self.chunks().axis(nd - 2)))?
            .expand_dims(1)?;
        let cols = crate::arange(0i64, n as i64, 1, along_chunks(self.chunks().axis(nd - 1)))?;
        (&cols - &rows).checked()
    }

    /// The upper triangle of the last two axes, from diagonal `k` up; zero below (numpy's `triu`).
    ///
    /// ```
    /// let x = tessera::ones::<i64>(&[3, 3], [2, 2]).unwrap();
    /// assert_eq!(x.triu(0).unwrap().sum().unwrap().compute_scalar::<i64>().unwrap(), 6);
    /// ```
    pub fn triu(&self, k: isize) -> Result<Array> {
        self.usable()?;
        let mask = self.col_minus_row("triu")?.ge(k as i64)?;
        where_(mask, self, Scalar::I64(0).cast(self.dtype()))
    }

    /// The lower triangle of the last two axes, up to diagonal `k`; zero above (numpy's `tril`).
    pub fn tril(&self, k: isize) -> Result<Array> {
        self.usable()?;
        let mask = self.col_minus_row("tril")?.le(k as i64)?;
        where_(mask, self, Scalar::I64(0).cast(self.dtype()))
    }

    /// Diagonal `offset` of a 2-D array (numpy's `diagonal`): `x[i, i + offset]`. Each element is
    /// the masked row of a square block reduced so that it comes back exactly (`max` over the
    /// lowest value elsewhere, `any` for bool), so the work is quadratic in the diagonal's length.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 9, 1, [9]).unwrap().reshape(&[3, 3]).unwrap();
    /// assert_eq!(x.diagonal(0).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![0, 4, 8]);
    /// assert_eq!(x.diagonal(1).unwrap().compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![1, 5]);
    /// ```
    pub fn diagonal(&self, offset: isize) -> Result<Array> {
        self.usable()?;
        if self.ndim() != 2 {
            return Err(invalid(
                "diagonal",
                format!("takes a 2-D array, not one of shape {:?}", self.shape()),
            ));
        }
        let (m, n) = (self.shape()[0] as isize, self.shape()[1] as isize);
        let (r0, c0) = if offset >= 0 {
            (0, offset)
        } else {
            (-offset, 0)
        };
        let len = (m - r0).min(n - c0).max(0) as usize;
        let (r0, c0) = (r0.min(m) as usize, c0.min(n) as usize);
        let sq = self
            .take_range(0, r0, r0 + len)?
            .take_range(1, c0, c0 + len)?;
        if len == 0 {
            return crate::full(
                &[0],
                Scalar::I64(0).cast(self.dtype()),
                ChunkSpec::Explicit(vec![vec![0]]),
            );
        }
        let mask = sq.col_minus_row("diagonal")?.eq(0i64)?;
        match self.dtype() {
            DType::Bool => sq.logical_and(&mask)?.any_axis(1),
            d => {
                // The lowest value fills the rest of the row, so `max` returns the diagonal
                // element exactly (-0.0 and NaN included; a sum would turn -0.0 into 0.0).
                let lowest = if d.is_float() {
                    Scalar::F64(f64::NEG_INFINITY).cast(d)
                } else {
                    Scalar::I64(i64::MIN)
                };
                where_(mask, &sq, lowest)?.max_axis(1)
            }
        }
    }

    /// numpy's `diag`: the diagonal `k` of a 2-D array, or the 2-D array with a 1-D array on
    /// diagonal `k` and zeros elsewhere.
    ///
    /// ```
    /// let v = tessera::arange(1i64, 3, 1, [1]).unwrap();
    /// let d = v.diag(1).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(d, ndarray::arr2(&[[0, 1, 0], [0, 0, 2], [0, 0, 0]]).into_dyn());
    /// ```
    pub fn diag(&self, k: isize) -> Result<Array> {
        self.usable()?;
        match self.ndim() {
            2 => self.diagonal(k),
            1 => {
                let n = self.shape()[0];
                let size = n + k.unsigned_abs();
                let zero = Scalar::I64(0).cast(self.dtype());
                // The vector padded to the matrix's size, laid along the rows (k >= 0, element i
                // at row i) or the columns (k < 0, element j at column j).
                let v = self.pad(&[(0, k.unsigned_abs())], PadMode::Constant(zero))?;
                let rows = crate::arange(0i64, size as i64, 1, along_chunks(v.chunks().axis(0)))?
                    .expand_dims(1)?;
                let cols = crate::arange(0i64, size as i64, 1, along_chunks(v.chunks().axis(0)))?;
                let mask = (&cols - &rows).eq(k as i64)?;
                let along = if k >= 0 { v.expand_dims(1)? } else { v };
                where_(mask, &along, zero)
            }
            _ => Err(invalid(
                "diag",
                format!(
                    "takes a 1-D or 2-D array, not one of shape {:?}",
                    self.shape()
                ),
            )),
        }
    }
}

/// A 2-D array with ones on diagonal `k` and zeros elsewhere (numpy's `eye`), of `dtype`.
///
/// ```
/// let e = tessera::eye(2, Some(3), 1, tessera::DType::F64, [2, 2]).unwrap();
/// assert_eq!(e.compute::<f64>().unwrap(), ndarray::arr2(&[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).into_dyn());
/// ```
pub fn eye(
    n: usize,
    m: Option<usize>,
    k: isize,
    dtype: DType,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array> {
    let m = m.unwrap_or(n);
    let grid = Chunks::resolve(&[n, m], &chunks.into(), dtype)?;
    let rows = crate::arange(0i64, n as i64, 1, along_chunks(grid.axis(0)))?.expand_dims(1)?;
    let cols = crate::arange(0i64, m as i64, 1, along_chunks(grid.axis(1)))?;
    (&cols - &rows).eq(k as i64)?.astype(dtype)
}

/// The `n`×`n` identity matrix of `dtype` (numpy's `identity`).
pub fn identity(n: usize, dtype: DType, chunks: impl Into<ChunkSpec>) -> Result<Array> {
    eye(n, None, 0, dtype, chunks)
}

/// Broadcasts arrays against each other (numpy's `broadcast_arrays`), with chunks aligned as for
/// an elementwise operation.
pub fn broadcast_arrays(arrays: &[&Array]) -> Result<Vec<Array>> {
    if arrays.is_empty() {
        return Ok(Vec::new());
    }
    let (aligned, chunks) = align(arrays)?;
    aligned
        .iter()
        .map(|a| {
            if a.shape() == chunks.shape().as_slice() {
                return Ok(a.clone());
            }
            let mut b = ProgramBuilder::new(chunks.clone());
            let v = b.input(a);
            b.finish(v, None)
        })
        .collect()
}

/// Coordinate arrays from 1-D coordinate vectors (numpy's `meshgrid`): with `xy` indexing the
/// first two outputs' axes are swapped (Cartesian), with `ij` indexing output `i` varies along
/// axis `i` (matrix).
///
/// ```
/// let x = tessera::arange(0i64, 3, 1, [2]).unwrap();
/// let y = tessera::arange(10i64, 12, 1, [1]).unwrap();
/// let g = tessera::meshgrid(&[&x, &y], true).unwrap();
/// assert_eq!(g[0].shape(), &[2, 3]);
/// assert_eq!(g[1].compute::<i64>().unwrap()[[1, 0]], 11);
/// ```
pub fn meshgrid(arrays: &[&Array], xy: bool) -> Result<Vec<Array>> {
    if let Some(a) = arrays.iter().find(|a| a.ndim() != 1) {
        return Err(invalid(
            "meshgrid",
            format!(
                "takes 1-D coordinate arrays, not one of shape {:?}",
                a.shape()
            ),
        ));
    }
    let k = arrays.len();
    // Axis of the output each input runs along.
    let axis_of = |i: usize| -> usize { if xy && k >= 2 && i < 2 { 1 - i } else { i } };
    let mut shape = vec![0usize; k];
    let mut sizes = vec![Vec::new(); k];
    for (i, a) in arrays.iter().enumerate() {
        shape[axis_of(i)] = a.shape()[0];
        sizes[axis_of(i)] = a.chunks().axis(0).to_vec();
    }
    arrays
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ax = axis_of(i);
            // Broadcast with the coordinate axis last, where a 1-D array broadcasts, then move it.
            let mut moved: Vec<usize> = (0..k).filter(|&d| d != ax).map(|d| shape[d]).collect();
            moved.push(shape[ax]);
            let b = a.broadcast_to(&moved)?.moveaxis(-1, ax as isize)?;
            b.rechunk(ChunkSpec::Explicit(sizes.clone()))
        })
        .collect()
}

/// The array with at least 1 axis (a 0-d array becomes shape `[1]`).
pub fn atleast_1d(a: &Array) -> Result<Array> {
    if a.ndim() >= 1 {
        Ok(a.clone())
    } else {
        a.expand_dims(0)
    }
}

/// The array with at least 2 axes: `[n]` becomes `[1, n]`, 0-d becomes `[1, 1]`.
pub fn atleast_2d(a: &Array) -> Result<Array> {
    match a.ndim() {
        0 => a.expand_dims(0)?.expand_dims(0),
        1 => a.expand_dims(0),
        _ => Ok(a.clone()),
    }
}

/// The array with at least 3 axes: `[n]` becomes `[1, n, 1]`, `[m, n]` becomes `[m, n, 1]`.
pub fn atleast_3d(a: &Array) -> Result<Array> {
    match a.ndim() {
        0 => a.expand_dims(0)?.expand_dims(0)?.expand_dims(0),
        1 => a.expand_dims(0)?.expand_dims(2),
        2 => a.expand_dims(2),
        _ => Ok(a.clone()),
    }
}

/// Joins along axis 1, or axis 0 for 1-D arrays (numpy's `hstack`).
pub fn hstack(arrays: &[&Array]) -> Result<Array> {
    let xs: Vec<Array> = arrays
        .iter()
        .map(|a| atleast_1d(a))
        .collect::<Result<_>>()?;
    let refs: Vec<&Array> = xs.iter().collect();
    let axis = if xs.first().is_some_and(|a| a.ndim() == 1) {
        0
    } else {
        1
    };
    concatenate(&refs, axis)
}

/// Joins along axis 0 after [`atleast_2d`] (numpy's `vstack`).
pub fn vstack(arrays: &[&Array]) -> Result<Array> {
    let xs: Vec<Array> = arrays
        .iter()
        .map(|a| atleast_2d(a))
        .collect::<Result<_>>()?;
    let refs: Vec<&Array> = xs.iter().collect();
    concatenate(&refs, 0)
}

/// Joins along axis 2 after [`atleast_3d`] (numpy's `dstack`).
pub fn dstack(arrays: &[&Array]) -> Result<Array> {
    let xs: Vec<Array> = arrays
        .iter()
        .map(|a| atleast_3d(a))
        .collect::<Result<_>>()?;
    let refs: Vec<&Array> = xs.iter().collect();
    concatenate(&refs, 2)
}

/// Where to split an axis: into equal sections, or at indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Sections {
    /// This many pieces.
    Count(usize),
    /// Split before each of these indices (clamped to the axis, as numpy's).
    Indices(Vec<usize>),
}

/// Splits along `axis` into pieces (numpy's `array_split`): `Count(k)` gives `len % k` pieces one
/// longer than the rest.
///
/// ```
/// use tessera::Sections;
/// let x = tessera::arange(0i64, 7, 1, [3]).unwrap();
/// let p = tessera::array_split(&x, Sections::Count(3), 0).unwrap();
/// let lens: Vec<usize> = p.iter().map(|a| a.shape()[0]).collect();
/// assert_eq!(lens, vec![3, 2, 2]);
/// ```
pub fn array_split(a: &Array, sections: Sections, axis: isize) -> Result<Vec<Array>> {
    let k = normalize_axis(axis, a.ndim())?;
    let n = a.shape()[k];
    let bounds: Vec<usize> = match sections {
        Sections::Count(0) => {
            return Err(invalid("array_split", "needs at least one section".into()));
        }
        Sections::Count(c) => {
            let (q, r) = (n / c, n % c);
            let mut b = vec![0];
            for i in 0..c {
                b.push(b[i] + q + usize::from(i < r));
            }
            b
        }
        Sections::Indices(idx) => {
            let mut b = vec![0];
            b.extend(idx.iter().map(|&i| i.min(n)));
            b.push(n);
            b
        }
    };
    bounds
        .windows(2)
        .map(|w| a.take_range(k, w[0], w[1].max(w[0])))
        .collect()
}

/// [`array_split`] that refuses a `Count` that does not divide the axis (numpy's `split`).
pub fn split(a: &Array, sections: Sections, axis: isize) -> Result<Vec<Array>> {
    if let Sections::Count(c) = sections {
        let k = normalize_axis(axis, a.ndim())?;
        let n = a.shape()[k];
        if c == 0 || !n.is_multiple_of(c) {
            return Err(invalid(
                "split",
                format!(
                    "{c} sections do not divide axis {k} of length {n} equally; use array_split"
                ),
            ));
        }
    }
    array_split(a, sections, axis)
}

/// The arrays along `axis`, that axis removed (the Array API's `unstack`): `unstack(x, 0)[i]` is
/// `x[i]`. Each piece reads only the chunks that hold it.
///
/// ```
/// let x = tessera::arange(0i64, 6, 1, [4])?.reshape(&[2, 3])?;
/// let columns = tessera::unstack(&x, 1)?;
/// assert_eq!(columns.len(), 3);
/// assert_eq!(columns[2].compute::<i64>()?.as_slice().unwrap(), &[2, 5]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn unstack(a: &Array, axis: isize) -> Result<Vec<Array>> {
    let k = normalize_axis(axis, a.ndim())?;
    (0..a.shape()[k])
        .map(|i| a.take_range(k, i, i + 1)?.squeeze(Some(&[k as isize])))
        .collect()
}

/// A nested list of arrays for [`block`]: an array, or a list of nested lists. Built with `From`
/// from `&Array` and from `Vec`s of anything that converts, so `vec![vec![&a, &b], vec![&c, &d]]`
/// is a 2-level nesting.
#[derive(Clone, Debug)]
pub enum Nested<'a> {
    /// One array, a leaf of the nesting.
    Array(&'a Array),
    /// A list, joined along the axis its depth gives.
    List(Vec<Nested<'a>>),
}

impl<'a> From<&'a Array> for Nested<'a> {
    fn from(a: &'a Array) -> Self {
        Nested::Array(a)
    }
}

impl<'a, T: Into<Nested<'a>>> From<Vec<T>> for Nested<'a> {
    fn from(v: Vec<T>) -> Self {
        Nested::List(v.into_iter().map(Into::into).collect())
    }
}

/// Assembles an array from a nested list of blocks (numpy's and dask's `block`): the innermost
/// lists are joined along the last axis, the next ones out along the second-to-last, and so on. All
/// arrays sit at the same depth `d`; the result has rank `max(d, rank of any array)`, arrays of
/// lower rank getting leading axes of length 1 first, as numpy's. A mismatch names the position in
/// the nesting (`arrays[1][0]`) and the shapes; joining is [`concatenate`], so each block keeps its
/// chunks.
///
/// ```
/// let a = tessera::ones::<i64>(&[2, 2], [1, 2]).unwrap();
/// let b = tessera::zeros::<i64>(&[2, 1], [2, 1]).unwrap();
/// let c = tessera::zeros::<i64>(&[3], [3]).unwrap();
/// // [[a, b], [c]]: c, 1-d, becomes a row of length 3 under the 2×3 top.
/// let m = tessera::block(vec![vec![&a, &b], vec![&c]]).unwrap();
/// assert_eq!(m.shape(), &[3, 3]);
/// assert_eq!(m.compute::<i64>().unwrap(), ndarray::arr2(&[[1, 1, 0], [1, 1, 0], [0, 0, 0]]).into_dyn());
/// ```
pub fn block<'a>(arrays: impl Into<Nested<'a>>) -> Result<Array> {
    let arrays = arrays.into();
    let mut depth = None;
    let mut rank = 0;
    leaf_depths(
        &arrays,
        &mut String::from("arrays"),
        0,
        &mut depth,
        &mut rank,
    )?;
    let (depth, _) = depth.expect("a nesting with a leaf");
    assemble(
        &arrays,
        &mut String::from("arrays"),
        0,
        depth,
        rank.max(depth),
    )
}

/// Checks that every leaf is at one depth and no list is empty; records the depth and the largest
/// rank.
fn leaf_depths(
    n: &Nested<'_>,
    path: &mut String,
    level: usize,
    depth: &mut Option<(usize, String)>,
    rank: &mut usize,
) -> Result<()> {
    match n {
        Nested::Array(a) => {
            a.usable()?;
            *rank = (*rank).max(a.ndim());
            match depth {
                None => *depth = Some((level, path.clone())),
                Some((d, first)) if *d != level => {
                    return Err(invalid(
                        "block",
                        format!(
                            "list depths are mismatched: {first} is at depth {d}, {path} at depth \
                             {level}"
                        ),
                    ));
                }
                Some(_) => {}
            }
            Ok(())
        }
        Nested::List(items) => {
            if items.is_empty() {
                return Err(invalid("block", format!("the list {path} is empty")));
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                leaf_depths(item, path, level + 1, depth, rank)?;
                path.truncate(len);
            }
            Ok(())
        }
    }
}

/// The array a (checked) nesting makes: leaves promoted to `rank`, lists at `level` joined along
/// axis `rank - depth + level`.
fn assemble(
    n: &Nested<'_>,
    path: &mut String,
    level: usize,
    depth: usize,
    rank: usize,
) -> Result<Array> {
    let items = match n {
        Nested::Array(a) => {
            let mut a = (*a).clone();
            while a.ndim() < rank {
                a = a.expand_dims(0)?;
            }
            return Ok(a);
        }
        Nested::List(items) => items,
    };
    let axis = rank - depth + level;
    let mut parts = Vec::with_capacity(items.len());
    let mut first: Option<(String, Vec<usize>)> = None;
    for (i, item) in items.iter().enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        let part = assemble(item, path, level + 1, depth, rank)?;
        match &first {
            None => first = Some((path.clone(), part.shape().to_vec())),
            Some((at, shape)) => {
                if let Some(d) = (0..rank).find(|&d| d != axis && part.shape()[d] != shape[d]) {
                    return Err(Error::ShapeMismatch {
                        op: "block",
                        reason: format!(
                            "{path} has shape {:?} and {at} shape {shape:?} (as {rank}-d blocks): \
                             they differ on axis {d}, and only axis {axis} is joined at this depth",
                            part.shape()
                        ),
                    });
                }
            }
        }
        path.truncate(len);
        parts.push(part);
    }
    let refs: Vec<&Array> = parts.iter().collect();
    concatenate(&refs, axis as isize)
}
