//! Structural operations: rechunk, transpose, reshape, basic slicing, concatenate, stack, matmul and
//! `map_blocks`. They decide the result's chunk grid here, at build time; the ops derive per-chunk
//! tasks from it.

use ndarray::{ArrayD, ArrayViewD, SliceInfoElem};

use super::Array;
use super::reduction::{DEFAULT_SPLIT_EVERY, tree};
use crate::data::{ArrayData, Element};
use crate::error::{Error, Result};
use crate::graph::ArrayMeta;
use crate::meta::{ChunkSpec, Chunks, DType};
use crate::ops::reduce::normalize_axis;
use crate::ops::{AxisSlice, BlockFn, Finalize, MatmulOp, Op, Reduction, SliceOp};

impl Array {
    /// The same values with new chunks.
    ///
    /// ```
    /// let x = tessera::ones::<f32>(&[10, 10], [5, 5]).unwrap().rechunk([10, 2]).unwrap();
    /// assert_eq!(x.numblocks(), vec![1, 5]);
    /// ```
    ///
    /// Each target chunk is one task that reads only the regions of the source chunks it overlaps,
    /// so a rechunk between any two chunkings is one task per target chunk, reading and writing
    /// twice its target chunk: see [`Array::rechunk_with`].
    pub fn rechunk(&self, chunks: impl Into<ChunkSpec>) -> Result<Array> {
        self.usable()?;
        self.rechunk_with(chunks, crate::ops::structure::default_rechunk_task_bytes()?)
    }

    /// [`Array::rechunk`] with a bound on the bytes a task reads and writes when an intermediate
    /// chunking is needed. Each target chunk is one task reading only the region of each source
    /// chunk it overlaps (row bands to column bands: a column band reads its square of every row
    /// band), fetched or read back from disk alone, so the rechunk is N + M tasks for N source and
    /// M target chunks. Only where a target chunk would read more than
    /// [`crate::ops::structure::RECHUNK_MAX_FAN_IN`] source chunks (rows of one element to
    /// columns, say) are the source chunks first cut into pieces no larger than either chunking,
    /// grouped while a task reading its sources whole stays within `max_task_bytes`, and each target
    /// chunk gathers its own pieces. An array read straight from a `.npy` file
    /// ([`crate::from_npy`]) is instead read again in the new chunks, one task per target chunk.
    ///
    /// ```
    /// use tessera::default_rng;
    /// let x = default_rng(3).random(&[64, 64], [8, 64])?;        // 8 row bands
    /// let y = x.rechunk_with([64, 8], 8 * 64 * 8 * 4)?;            // 8 column bands
    /// assert_eq!(y.numblocks(), vec![1, 8]);
    /// assert_eq!(y.compute::<f64>()?, x.compute::<f64>()?);
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn rechunk_with(
        &self,
        chunks: impl Into<ChunkSpec>,
        max_task_bytes: usize,
    ) -> Result<Array> {
        self.usable()?;
        let chunks = Chunks::resolve(self.shape(), &chunks.into(), self.dtype())?;
        if &chunks == self.chunks() {
            return Ok(self.clone());
        }
        // A `.npy` file reads any box of itself, so rechunking one is reading it in the new chunks:
        // M tasks of one target chunk each, with no source chunk or piece held between steps (the
        // all-to-all through pieces must hold or spill the whole array once).
        if let Op::Npy(source) = &self.0.layer.op {
            return Array::from_op(
                Op::Npy(source.clone()),
                vec![],
                Some(ArrayMeta {
                    chunks,
                    dtype: self.dtype(),
                }),
            );
        }
        let step = |from: &Array, chunks: Chunks| {
            Array::from_op(
                Op::Rechunk,
                vec![from.clone()],
                Some(ArrayMeta {
                    chunks,
                    dtype: self.dtype(),
                }),
            )
        };
        match crate::ops::structure::rechunk_intermediate(
            self.chunks(),
            &chunks,
            self.dtype().size(),
            max_task_bytes,
        ) {
            Some(inter) => step(&step(self, inter)?, chunks),
            None => step(self, chunks),
        }
    }

    /// Reverses the axes (numpy's `.T`).
    pub fn t(&self) -> Array {
        let perm: Vec<usize> = (0..self.ndim()).rev().collect();
        self.permute_axes(&perm)
            .expect("a reversal is a valid permutation")
    }

    /// Reverses the axes.
    pub fn transpose(&self) -> Array {
        self.t()
    }

    /// Permutes the axes: axis `i` of the result is axis `perm[i]` of `self`.
    pub fn permute_axes(&self, perm: &[usize]) -> Result<Array> {
        self.usable()?;
        let mut seen = vec![false; self.ndim()];
        if perm.len() != self.ndim()
            || perm
                .iter()
                .any(|&p| p >= self.ndim() || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::InvalidArgument {
                op: "transpose",
                reason: format!(
                    "{perm:?} is not a permutation of the {} axes of shape {:?}",
                    self.ndim(),
                    self.shape()
                ),
            });
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        Array::from_op(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            vec![self.clone()],
            None,
        )
    }

    /// Gives a new shape with the same number of elements, in C order; one entry may be -1.
    ///
    /// ```
    /// let x = tessera::arange(0i64, 12, 1, [5]).unwrap().reshape(&[3, -1]).unwrap();
    /// assert_eq!(x.shape(), &[3, 4]);
    /// assert_eq!(x.compute::<i64>().unwrap()[[2, 1]], 9);
    /// ```
    pub fn reshape(&self, shape: &[isize]) -> Result<Array> {
        self.usable()?;
        let size = self.size();
        let bad = |reason: String| Error::InvalidArgument {
            op: "reshape",
            reason,
        };
        let unknown: Vec<usize> = shape
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == -1)
            .map(|(i, _)| i)
            .collect();
        if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
            return Err(bad(format!("{shape:?} is not a valid shape")));
        }
        let known: usize = shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(&i) = unknown.first() {
            if known == 0 || !size.is_multiple_of(known) {
                return Err(bad(format!(
                    "cannot reshape an array of size {size} into {shape:?}"
                )));
            }
            out[i] = size / known;
        }
        if out.iter().product::<usize>() != size {
            return Err(bad(format!(
                "cannot reshape an array of shape {:?} into {shape:?}",
                self.shape()
            )));
        }
        if out == self.shape() {
            return Ok(self.clone());
        }
        // Chunk the input along its first axis only, so every chunk is a contiguous flat range, then
        // cut the output the same way.
        let chunk_elems = self.chunks().max_chunk_elems().max(1);
        let input = if self.ndim() > 0 {
            let row: usize = self.shape()[1..].iter().product();
            let rows = (chunk_elems / row.max(1)).max(1);
            let mut spec = vec![rows];
            spec.extend_from_slice(&self.shape()[1..]);
            self.rechunk(spec)?
        } else {
            self.clone()
        };
        let out_chunks = if out.is_empty() {
            Chunks::from_sizes(vec![])
        } else {
            let row: usize = out[1..].iter().product();
            let rows = (chunk_elems / row.max(1)).max(1);
            let mut spec = vec![rows];
            spec.extend_from_slice(&out[1..]);
            Chunks::resolve(&out, &ChunkSpec::Block(spec), self.dtype())?
        };
        Array::from_op(
            Op::Reshape,
            vec![input],
            Some(ArrayMeta {
                chunks: out_chunks,
                dtype: self.dtype(),
            }),
        )
    }

    /// Basic slicing with ndarray's `s!` macro: ranges with steps, negative indices from the end, and
    /// integer indices that drop an axis. Out-of-range bounds are clipped as numpy does; an integer
    /// index out of range is an error.
    ///
    /// ```
    /// use tessera::s;
    /// let x = tessera::arange(0i64, 20, 1, [6]).unwrap().reshape(&[4, 5]).unwrap();
    /// let y = x.slice(s![1..3, ..;-2]).unwrap();
    /// assert_eq!(y.compute::<i64>().unwrap(), ndarray::array![[9, 7, 5], [14, 12, 10]].into_dyn());
    /// let z = x.slice(s![-1, 2]).unwrap();
    /// assert_eq!(z.compute_scalar::<i64>().unwrap(), 17);
    /// ```
    pub fn slice(&self, info: impl AsRef<[SliceInfoElem]>) -> Result<Array> {
        self.usable()?;
        let info = info.as_ref();
        let ndim = self.ndim();
        let indexing = info
            .iter()
            .filter(|e| !matches!(e, SliceInfoElem::NewAxis))
            .count();
        if info.iter().any(|e| matches!(e, SliceInfoElem::NewAxis)) {
            return Err(Error::InvalidArgument {
                op: "getitem",
                reason: "new axes are not supported in slicing; use reshape".into(),
            });
        }
        if indexing > ndim {
            return Err(Error::InvalidArgument {
                op: "getitem",
                reason: format!(
                    "{indexing} indices for an array of shape {:?}",
                    self.shape()
                ),
            });
        }
        let mut axes = Vec::with_capacity(ndim);
        for axis in 0..ndim {
            let n = self.shape()[axis];
            let sel = match info.get(axis) {
                None => AxisSlice::Range {
                    start: 0,
                    step: 1,
                    len: n,
                },
                Some(SliceInfoElem::Index(i)) => {
                    let j = if *i < 0 { *i + n as isize } else { *i };
                    if j < 0 || j >= n as isize {
                        return Err(Error::IndexOutOfBounds {
                            index: *i,
                            axis,
                            len: n,
                        });
                    }
                    AxisSlice::Index(j as usize)
                }
                Some(SliceInfoElem::Slice { start, end, step }) => {
                    if *step == 0 {
                        return Err(Error::InvalidArgument {
                            op: "getitem",
                            reason: format!("slice step of 0 on axis {axis}"),
                        });
                    }
                    let clamp = |v: isize| -> usize {
                        let v = if v < 0 { v + n as isize } else { v };
                        v.clamp(0, n as isize) as usize
                    };
                    let lo = clamp(*start);
                    let hi = end.map_or(n, clamp).max(lo);
                    let stride = step.unsigned_abs();
                    let len = (hi - lo).div_ceil(stride);
                    let first = if *step > 0 { lo } else { hi.saturating_sub(1) };
                    AxisSlice::Range {
                        start: if len == 0 { 0 } else { first },
                        step: *step,
                        len,
                    }
                }
                Some(SliceInfoElem::NewAxis) => unreachable!("rejected above"),
            };
            axes.push(sel);
        }
        if axes.iter().enumerate().all(|(a, s)| {
            *s == AxisSlice::Range {
                start: 0,
                step: 1,
                len: self.shape()[a],
            }
        }) {
            return Ok(self.clone());
        }
        let op = SliceOp::plan(self.chunks(), axes);
        Array::from_op(Op::Slice(op), vec![self.clone()], None)
    }

    /// 2-D matrix product, blocked, with a tree sum over the inner dimension.
    ///
    /// An operand built with [`Array::t`] is read as its input is stored (no transposed copy), and
    /// `x.t().matmul(&x)` or `x.matmul(&x.t())` computes only the upper block triangle of its
    /// symmetric result and mirrors it.
    ///
    /// ```
    /// let a = tessera::ones::<f64>(&[4, 6], [2, 3]).unwrap();
    /// let b = tessera::ones::<f64>(&[6, 5], [2, 5]).unwrap();
    /// let c = a.matmul(&b).unwrap().compute::<f64>().unwrap();
    /// assert!(c.iter().all(|&v| v == 6.0));
    ///
    /// let x = tessera::default_rng(0).random(&[1000, 40], [250, 20]).unwrap();
    /// let gram = x.t().matmul(&x).unwrap().compute::<f64>().unwrap();
    /// assert_eq!(gram, gram.t());
    /// ```
    pub fn matmul(&self, other: &Array) -> Result<Array> {
        self.usable()?;
        if self.ndim() != 2 || other.ndim() != 2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                reason: format!(
                    "needs 2-d arrays, got shapes {:?} and {:?}",
                    self.shape(),
                    other.shape()
                ),
            });
        }
        if self.shape()[1] != other.shape()[0] {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                reason: format!(
                    "inner dimensions differ: {:?} @ {:?}",
                    self.shape(),
                    other.shape()
                ),
            });
        }
        let dtype = DType::promote(self.dtype(), other.dtype());
        // Block products exist for float64, float32 and int64 (see `ops::matmul`).
        if matches!(dtype, DType::Bool | DType::I32 | DType::U8 | DType::U64) {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype,
            });
        }
        // An operand built as `y.T` is read as `y` is stored (the kernel takes its blocks by
        // strides) rather than as a transposed copy; `x @ x.T` and `x.T @ x` are symmetric, and only
        // their upper block triangle is computed.
        let (a, transpose_a) = match self.transposed_matrix() {
            Some(y) => (y.astype(dtype)?, true),
            None => (self.astype(dtype)?, false),
        };
        let (b, transpose_b) = match other.transposed_matrix() {
            Some(y) => (
                y.astype(dtype)?.rechunk(vec![
                    other.chunks().axis(1).to_vec(),
                    self.chunks().axis(1).to_vec(),
                ])?,
                true,
            ),
            None => (
                other.astype(dtype)?.rechunk(vec![
                    self.chunks().axis(1).to_vec(),
                    other.chunks().axis(1).to_vec(),
                ])?,
                false,
            ),
        };
        let symmetric = transpose_a != transpose_b && a.id() == b.id();
        let partial = Array::from_op(
            Op::Matmul(MatmulOp {
                transpose_a,
                transpose_b,
            }),
            vec![a, b],
            None,
        )?;
        let sum = tree(
            partial,
            Reduction::Sum,
            &[2],
            DEFAULT_SPLIT_EVERY,
            Finalize {
                keepdims: false,
                ddof: 0.0,
                dtype,
            },
        )?;
        if !symmetric {
            return Ok(sum);
        }
        Array::from_op(Op::MirrorUpper, vec![sum], None)
    }

    /// The matrix this 2-d array is the transpose of, if it was built as one.
    fn transposed_matrix(&self) -> Option<&Array> {
        match (&self.0.layer.op, self.0.inputs.as_slice()) {
            (Op::Transpose { perm }, [input]) if perm == &[1, 0] => Some(input),
            _ => None,
        }
    }

    /// Same as [`Array::matmul`].
    pub fn dot(&self, other: &Array) -> Result<Array> {
        self.usable()?;
        self.matmul(other)
    }

    /// Applies a Rust closure to every chunk; the closure must return a chunk of the same shape.
    /// Runs on the local executor only: a distributed run rejects it with a clear error.
    ///
    /// ```
    /// let x = tessera::arange(0.0, 6.0, 1.0, [4]).unwrap();
    /// let y = x.map_blocks(|b: ndarray::ArrayViewD<f64>| b.mapv(|v| v * 10.0)).unwrap();
    /// assert_eq!(y.compute::<f64>().unwrap()[5], 50.0);
    /// ```
    pub fn map_blocks<T: Element, U: Element>(
        &self,
        f: impl Fn(ArrayViewD<T>) -> ArrayD<U> + Send + Sync + 'static,
    ) -> Result<Array> {
        self.usable()?;
        if self.dtype() != T::DTYPE {
            return Err(Error::DTypeMismatch {
                expected: T::DTYPE,
                actual: self.dtype(),
            });
        }
        let func = BlockFn::new(move |chunk: ArrayData| {
            let typed = T::view(&chunk).ok_or(Error::DTypeMismatch {
                expected: T::DTYPE,
                actual: chunk.dtype(),
            })?;
            Ok(U::wrap(f(typed.view())))
        });
        Array::from_op(
            Op::MapBlocks(func),
            vec![self.clone()],
            Some(ArrayMeta {
                chunks: self.chunks().clone(),
                dtype: U::DTYPE,
            }),
        )
    }
}

/// Joins arrays along an existing axis.
///
/// ```
/// let a = tessera::zeros::<i64>(&[2, 3], [1, 3]).unwrap();
/// let b = tessera::ones::<i64>(&[1, 3], [1, 3]).unwrap();
/// let c = tessera::concatenate(&[&a, &b], 0).unwrap();
/// assert_eq!(c.shape(), &[3, 3]);
/// assert_eq!(c.sum().unwrap().compute_scalar::<i64>().unwrap(), 3);
/// ```
pub fn concatenate(arrays: &[&Array], axis: isize) -> Result<Array> {
    let first = arrays.first().ok_or(Error::InvalidArgument {
        op: "concatenate",
        reason: "needs at least one array".into(),
    })?;
    let ndim = first.ndim();
    if ndim == 0 {
        return Err(Error::InvalidArgument {
            op: "concatenate",
            reason: "0-d arrays cannot be concatenated".into(),
        });
    }
    let axis = normalize_axis(axis, ndim)?;
    for a in arrays {
        if a.ndim() != ndim || (0..ndim).any(|i| i != axis && a.shape()[i] != first.shape()[i]) {
            return Err(Error::ShapeMismatch {
                op: "concatenate",
                reason: format!(
                    "shapes {:?} and {:?} differ off axis {axis}",
                    first.shape(),
                    a.shape()
                ),
            });
        }
    }
    let dtype = arrays
        .iter()
        .map(|a| a.dtype())
        .reduce(DType::promote)
        .expect("non-empty");
    let mut inputs = Vec::with_capacity(arrays.len());
    for a in arrays {
        let mut want: Vec<Vec<usize>> = first.chunks().sizes().to_vec();
        want[axis] = a.chunks().axis(axis).to_vec();
        inputs.push(a.astype(dtype)?.rechunk(want)?);
    }
    // Zero-length pieces contribute no chunks (a length-0 axis has one empty chunk, which would
    // split a non-empty one), unless everything is empty: then the first piece is the result.
    let nonempty: Vec<Array> = inputs
        .iter()
        .filter(|a| a.shape()[axis] > 0)
        .cloned()
        .collect();
    let inputs = if nonempty.is_empty() {
        inputs.truncate(1);
        inputs
    } else {
        nonempty
    };
    if inputs.len() == 1 {
        return Ok(inputs.into_iter().next().expect("one"));
    }
    Array::from_op(Op::Concatenate { axis }, inputs, None)
}

/// Joins arrays of the same shape along a new axis.
///
/// ```
/// let a = tessera::zeros::<f64>(&[3], [2]).unwrap();
/// let b = tessera::ones::<f64>(&[3], [3]).unwrap();
/// let c = tessera::stack(&[&a, &b], 1).unwrap();
/// assert_eq!(c.shape(), &[3, 2]);
/// assert_eq!(c.compute::<f64>().unwrap()[[2, 1]], 1.0);
/// ```
pub fn stack(arrays: &[&Array], axis: isize) -> Result<Array> {
    let first = arrays.first().ok_or(Error::InvalidArgument {
        op: "stack",
        reason: "needs at least one array".into(),
    })?;
    let axis = normalize_axis(axis, first.ndim() + 1)?;
    for a in arrays {
        if a.shape() != first.shape() {
            return Err(Error::ShapeMismatch {
                op: "stack",
                reason: format!("shapes {:?} and {:?} differ", first.shape(), a.shape()),
            });
        }
    }
    let dtype = arrays
        .iter()
        .map(|a| a.dtype())
        .reduce(DType::promote)
        .expect("non-empty");
    let inputs = arrays
        .iter()
        .map(|a| a.astype(dtype)?.rechunk(first.chunks()))
        .collect::<Result<Vec<_>>>()?;
    Array::from_op(Op::Stack { axis }, inputs, None)
}
