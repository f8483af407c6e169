//! Creating arrays: constant fills, ranges, wrapping an in-memory ndarray, and reading a `.npy`
//! file lazily (random arrays are in [`super::random`]).

use std::path::Path;

use ndarray::ArrayD;

use super::Array;
use crate::data::{ArrayData, Element};
use crate::error::{Error, Result};
use crate::graph::ArrayMeta;
use crate::meta::{ChunkSpec, Chunks, DType, Scalar};
use crate::ops::{FromArray, LeafKind, NpySource, Op, Program};

pub(super) fn source(
    kind: LeafKind,
    shape: &[usize],
    chunks: ChunkSpec,
    dtype: DType,
) -> Result<Array> {
    let chunks = Chunks::resolve(shape, &chunks, dtype)?;
    let program = Program::source(kind, chunks, dtype);
    Array::from_op(Op::Blockwise(Box::new(program)), vec![], None)
}

/// An array of `shape` filled with `value` (its dtype is the value's).
///
/// ```
/// let a = tessera::full(&[3, 4], 2.5, [2, 2]).unwrap();
/// assert_eq!(a.sum().unwrap().compute_scalar::<f64>().unwrap(), 30.0);
/// ```
pub fn full(
    shape: &[usize],
    value: impl Into<Scalar>,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array> {
    let value = value.into();
    source(LeafKind::Full(value), shape, chunks.into(), value.dtype())
}

/// Zeros of element type `T`.
pub fn zeros<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array> {
    source(
        LeafKind::Full(Scalar::I64(0).cast(T::DTYPE)),
        shape,
        chunks.into(),
        T::DTYPE,
    )
}

/// Ones of element type `T`.
pub fn ones<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array> {
    source(
        LeafKind::Full(Scalar::I64(1).cast(T::DTYPE)),
        shape,
        chunks.into(),
        T::DTYPE,
    )
}

/// An array of `shape` and element type `T` whose values are unspecified (numpy's `empty`). tessera
/// fills it with zeros: a lazily generated constant costs nothing to hold, so there is nothing to
/// save by leaving memory uninitialized, and results never depend on stale memory.
///
/// ```
/// let a = tessera::empty::<f32>(&[4, 6], [2, 3])?;
/// assert_eq!((a.shape(), a.dtype()), (&[4, 6][..], tessera::DType::F32));
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn empty<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array> {
    zeros::<T>(shape, chunks)
}

/// An array with `like`'s shape, chunks and dtype filled with `value` cast to that dtype (numpy's
/// `full_like`: `full_like(&ints, 2.7)` holds 2).
///
/// ```
/// let x = tessera::arange(0i64, 6, 1, [4])?;
/// let twos = tessera::full_like(&x, 2.7)?;
/// assert_eq!(twos.chunks(), x.chunks());
/// assert_eq!(twos.compute::<i64>()?.as_slice().unwrap(), &[2; 6]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn full_like(like: &Array, value: impl Into<Scalar>) -> Result<Array> {
    let dtype = like.dtype();
    source(
        LeafKind::Full(value.into().cast(dtype)),
        like.shape(),
        like.chunks().into(),
        dtype,
    )
}

/// Zeros with `like`'s shape, chunks and dtype (numpy's `zeros_like`).
///
/// ```
/// let x = tessera::ones::<f64>(&[3, 2], [2, 2])?;
/// assert_eq!(tessera::zeros_like(&x)?.sum()?.compute_scalar::<f64>()?, 0.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn zeros_like(like: &Array) -> Result<Array> {
    full_like(like, Scalar::I64(0))
}

/// Ones with `like`'s shape, chunks and dtype (numpy's `ones_like`).
///
/// ```
/// let x = tessera::zeros::<i64>(&[5], [2])?;
/// assert_eq!(tessera::ones_like(&x)?.sum()?.compute_scalar::<i64>()?, 5);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn ones_like(like: &Array) -> Result<Array> {
    full_like(like, Scalar::I64(1))
}

/// numpy's `empty_like`: `like`'s shape, chunks and dtype, filled with zeros as [`empty`] is.
pub fn empty_like(like: &Array) -> Result<Array> {
    zeros_like(like)
}

/// Evenly spaced values in `[start, stop)` (numpy's `arange`); integer arguments give int64.
///
/// ```
/// let a = tessera::arange(2i64, 11, 3, [2]).unwrap().compute::<i64>().unwrap();
/// assert_eq!(a.as_slice().unwrap(), &[2, 5, 8]);
/// ```
pub fn arange<T: Element>(
    start: T,
    stop: T,
    step: T,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array> {
    let (s, e, st) = (start.to_f64(), stop.to_f64(), step.to_f64());
    if T::DTYPE == DType::Bool {
        return Err(Error::UnsupportedDType {
            op: "arange",
            dtype: DType::Bool,
        });
    }
    if st == 0.0 || !st.is_finite() || !s.is_finite() || !e.is_finite() {
        return Err(Error::InvalidArgument {
            op: "arange",
            reason: format!(
                "start {s}, stop {e} and step {st} must be finite with a non-zero step"
            ),
        });
    }
    if T::DTYPE.is_integer() && T::DTYPE != DType::I64 {
        // int32, uint8, uint64: `start + i·step` in the type itself (wrapping, exact whenever the
        // values fit), from an exact int64 index range.
        let exact = |v: T| v.into_scalar().as_i128().expect("an integer element");
        let (s, e, st) = (exact(start), exact(stop), exact(step));
        let n = ((e - s + st - st.signum()) / st).max(0);
        let len = i64::try_from(n).map_err(|_| Error::InvalidArgument {
            op: "arange",
            reason: format!("{n} elements from {s} to {e} by {st} are too many"),
        })?;
        let index = arange(0i64, len, 1, chunks)?.astype(T::DTYPE)?;
        return (&index * step.into_scalar() + start.into_scalar()).checked();
    }
    let len = if T::DTYPE == DType::I64 {
        let (s, e, st) = (start.to_i64(), stop.to_i64(), step.to_i64());
        let span = e as i128 - s as i128;
        let n = (span + st as i128 - st.signum() as i128) / st as i128;
        let len = n.max(0) as usize;
        // The generated leaf holds start and step as f64; when one of them does not survive the
        // round trip through f64 (beyond 2^53), build `start + i·step` from an exact index range
        // with integer arithmetic instead (wrapping, so exact whenever the values fit in int64).
        if s as f64 as i64 != s || st as f64 as i64 != st {
            let index = arange(0i64, len as i64, 1, chunks)?;
            return ((&index * st) + s).checked();
        }
        len
    } else {
        ((e - s) / st).ceil().max(0.0) as usize
    };
    source(
        LeafKind::Arange { start: s, step: st },
        &[len],
        chunks.into(),
        T::DTYPE,
    )
}

/// `num` evenly spaced float64 values from `start` to `stop` (included when `endpoint`).
///
/// ```
/// let a = tessera::linspace(0.0, 1.0, 5, true, [2]).unwrap().compute::<f64>().unwrap();
/// assert_eq!(a.as_slice().unwrap(), &[0.0, 0.25, 0.5, 0.75, 1.0]);
/// ```
pub fn linspace(
    start: f64,
    stop: f64,
    num: usize,
    endpoint: bool,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let step = if div > 0 {
        (stop - start) / div as f64
    } else {
        0.0
    };
    source(
        LeafKind::Linspace {
            start,
            stop,
            step,
            num: num as u64,
            endpoint,
        },
        &[num],
        chunks.into(),
        DType::F64,
    )
}

/// Wraps an in-memory array, cut into chunks.
///
/// ```
/// use ndarray::ArrayD;
/// let data = ArrayD::from_shape_fn(ndarray::IxDyn(&[4, 6]), |i| (i[0] * 6 + i[1]) as f64);
/// let a = tessera::from_array(data.clone(), [2, 4]).unwrap();
/// assert_eq!(a.numblocks(), vec![2, 2]);
/// assert_eq!(a.compute::<f64>().unwrap(), data);
/// ```
pub fn from_array<T: Element>(data: ArrayD<T>, chunks: impl Into<ChunkSpec>) -> Result<Array> {
    from_array_data(T::wrap(data), chunks)
}

/// [`from_array`] for dynamically typed data.
pub fn from_array_data(data: ArrayData, chunks: impl Into<ChunkSpec>) -> Result<Array> {
    let dtype = data.dtype();
    let chunks = Chunks::resolve(data.shape(), &chunks.into(), dtype)?;
    Array::from_op(
        Op::FromArray(FromArray::new(data)),
        vec![],
        Some(ArrayMeta { chunks, dtype }),
    )
}

/// Opens a `.npy` file as a lazy array: each chunk task reads only its own part of the file.
pub fn from_npy(path: impl AsRef<Path>, chunks: impl Into<ChunkSpec>) -> Result<Array> {
    let path = path.as_ref();
    let header = crate::io::npy::read_header(path)?;
    let md = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    let chunks = Chunks::resolve(&header.shape, &chunks.into(), header.dtype)?;
    let dtype = header.dtype;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Array::from_op(
        Op::Npy(NpySource {
            path,
            header,
            stamp: (mtime, md.len()),
        }),
        vec![],
        Some(ArrayMeta { chunks, dtype }),
    )
}
