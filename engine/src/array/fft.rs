//! `tessera::fft`: numpy's and dask's discrete Fourier transforms on chunked arrays.
//!
//! As in dask, a transformed axis must be one chunk (every block then holds whole lanes and
//! transforms them on its own, in parallel over the other axes); an axis in several chunks is an
//! error that says to rechunk it. The other axes may be chunked any way, regularly or not. The
//! n-d transforms apply the one-axis transform axis by axis, as numpy does.
//!
//! Results are complex128 (`irfft`/`irfftn`: float64). numpy 2 gives complex64 for float32 input;
//! tessera has no complex64, so float32 input gives complex128 here.
//!
//! ```
//! use tessera::Complex64;
//! // 8 signals of 16 samples, chunked along the signal axis only.
//! let x = tessera::arange(0.0, 128.0, 1.0, [128]).unwrap().reshape(&[8, 16]).unwrap();
//! let x = x.rechunk([3, 16]).unwrap(); // axis 1 (transformed) is one chunk
//! let spectrum = tessera::fft::fft(&x, None, -1, None).unwrap();
//! let back = tessera::fft::ifft(&spectrum, None, -1, None).unwrap();
//! let back = back.compute::<Complex64>().unwrap();
//! assert!((back[[2, 5]].re - 37.0).abs() < 1e-12 && back[[2, 5]].im.abs() < 1e-12);
//!
//! // A transformed axis in several chunks is refused: rechunk it first.
//! let y = x.rechunk([8, 4]).unwrap();
//! assert!(tessera::fft::fft(&y, None, 1, None).unwrap_err().to_string().contains("rechunk"));
//! let ok = tessera::fft::fft(&y.rechunk([8, 16]).unwrap(), None, 1, None).unwrap();
//! assert_eq!(ok.shape(), &[8, 16]);
//! ```

use super::Array;
use crate::error::{Error, Result};
use crate::meta::{ChunkSpec, DType};
use crate::ops::reduce::normalize_axis;
use crate::ops::{FftKind, FftNorm, FftOp, Op};

/// One-axis transform of `kind` with numpy's `n` (the input length by default; `irfft`:
/// `2·(m − 1)` for `m` input frequencies).
fn one_axis(
    x: &Array,
    kind: FftKind,
    n: Option<usize>,
    axis: isize,
    norm: Option<&str>,
) -> Result<Array> {
    let norm = FftNorm::parse(norm)?;
    let k = normalize_axis(axis, x.ndim())?;
    transform(x, kind, n, k, norm)
}

fn transform(x: &Array, kind: FftKind, n: Option<usize>, k: usize, norm: FftNorm) -> Result<Array> {
    let op = kind.name();
    let len = x.shape()[k];
    let n = match (n, kind) {
        (Some(n), _) => n,
        (None, FftKind::RealInverse) => 2 * len.saturating_sub(1),
        (None, _) => len,
    };
    if n == 0 {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("invalid number of data points ({n}) along axis {k}"),
        });
    }
    require_one_chunk(x, k, op)?;
    match (kind, x.dtype()) {
        (FftKind::RealForward, DType::C128) => {
            return Err(Error::UnsupportedDType {
                op,
                dtype: DType::C128,
            });
        }
        (FftKind::RealInverse, d) if d != DType::C128 => {
            // numpy's irfft takes real input as complex with zero imaginary parts.
            let c = x.astype(DType::C128)?;
            return transform(&c, kind, Some(n), k, norm);
        }
        _ => {}
    }
    Array::from_op(
        Op::Fft(FftOp {
            kind,
            axis: k,
            n,
            norm,
        }),
        vec![x.clone()],
        None,
    )
}

/// dask's rule: the transformed axis must be one chunk; the error says how to get there.
fn require_one_chunk(x: &Array, k: usize, op: &'static str) -> Result<()> {
    let sizes = x.chunks().axis(k);
    if sizes.len() != 1 {
        return Err(Error::InvalidArgument {
            op,
            reason: format!(
                "axis {k} is in {} chunks {sizes:?}, but a transform needs the whole axis in one \
                 chunk: rechunk it first (for example chunks of {} along axis {k})",
                sizes.len(),
                x.shape()[k]
            ),
        });
    }
    Ok(())
}

/// numpy's `fft`: the discrete Fourier transform along `axis` (−1 for the last), of `n` points
/// (the input cut or zero-padded; its length by default), scaled per `norm` (`None`,
/// `"backward"`, `"ortho"` or `"forward"`).
///
/// ```
/// let x = tessera::from_array(ndarray::arr1(&[1.0, 2.0, 3.0, 4.0]).into_dyn(), [4]).unwrap();
/// let f = tessera::fft::fft(&x, None, 0, None).unwrap().compute::<tessera::Complex64>().unwrap();
/// assert_eq!(f[0], tessera::Complex64::new(10.0, 0.0));
/// assert_eq!(f[2], tessera::Complex64::new(-2.0, 0.0));
/// ```
pub fn fft(x: &Array, n: Option<usize>, axis: isize, norm: Option<&str>) -> Result<Array> {
    one_axis(x, FftKind::Forward, n, axis, norm)
}

/// numpy's `ifft`: the inverse of [`fft`] (scaled by `1/n` with the default norm).
pub fn ifft(x: &Array, n: Option<usize>, axis: isize, norm: Option<&str>) -> Result<Array> {
    one_axis(x, FftKind::Inverse, n, axis, norm)
}

/// numpy's `rfft`: the transform of real input, its `n/2 + 1` non-negative frequencies.
///
/// ```
/// let x = tessera::from_array(ndarray::arr2(&[[0.0, 1.0, 0.0, -1.0]]).into_dyn(), [1, 4]).unwrap();
/// let f = tessera::fft::rfft(&x, None, -1, None).unwrap();
/// assert_eq!(f.shape(), &[1, 3]);
/// let back = tessera::fft::irfft(&f, Some(4), -1, None).unwrap().compute::<f64>().unwrap();
/// assert!((back[[0, 1]] - 1.0).abs() < 1e-15);
/// ```
pub fn rfft(x: &Array, n: Option<usize>, axis: isize, norm: Option<&str>) -> Result<Array> {
    one_axis(x, FftKind::RealForward, n, axis, norm)
}

/// numpy's `irfft`: the real signal of `n` samples (default `2·(m − 1)`) with the non-negative
/// frequencies given; float64.
pub fn irfft(x: &Array, n: Option<usize>, axis: isize, norm: Option<&str>) -> Result<Array> {
    one_axis(x, FftKind::RealInverse, n, axis, norm)
}

/// numpy's rule for `s` and `axes` of the n-d transforms: the axes given (all of them by
/// default, or the last `len(s)` when only `s` is given), normalized, and a length per axis.
fn nd_axes(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    op: &'static str,
) -> Result<(Vec<usize>, Vec<Option<usize>>)> {
    let axes: Vec<usize> = match (axes, s) {
        (Some(a), _) => a
            .iter()
            .map(|&a| normalize_axis(a, x.ndim()))
            .collect::<Result<_>>()?,
        (None, Some(s)) => {
            if s.len() > x.ndim() {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "s {s:?} has more entries than the array's {} axes",
                        x.ndim()
                    ),
                });
            }
            (x.ndim() - s.len()..x.ndim()).collect()
        }
        (None, None) => (0..x.ndim()).collect(),
    };
    let lens = match s {
        Some(s) if s.len() != axes.len() => {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("s {s:?} and axes {axes:?} differ in length"),
            });
        }
        Some(s) => s.iter().map(|&n| Some(n)).collect(),
        None => vec![None; axes.len()],
    };
    for &a in &axes {
        require_one_chunk(x, a, op)?;
    }
    Ok((axes, lens))
}

/// Complex n-d transform: `kind` along every axis, the last axis first as numpy applies them.
fn complex_nd(
    x: &Array,
    kind: FftKind,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
    op: &'static str,
) -> Result<Array> {
    let norm = FftNorm::parse(norm)?;
    let (axes, lens) = nd_axes(x, s, axes, op)?;
    let mut y = x.clone();
    for (&a, &n) in axes.iter().zip(&lens).rev() {
        y = transform(&y, kind, n, a, norm)?;
    }
    Ok(y)
}

/// numpy's `fftn`: the transform over `axes` (all by default), with lengths `s`.
pub fn fftn(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
) -> Result<Array> {
    complex_nd(x, FftKind::Forward, s, axes, norm, "fftn")
}

/// numpy's `ifftn`: the inverse of [`fftn`].
pub fn ifftn(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
) -> Result<Array> {
    complex_nd(x, FftKind::Inverse, s, axes, norm, "ifftn")
}

/// numpy's `fft2`: [`fftn`] over the last two axes by default.
pub fn fft2(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
) -> Result<Array> {
    complex_nd(
        x,
        FftKind::Forward,
        s,
        Some(axes.unwrap_or(&[-2, -1])),
        norm,
        "fft2",
    )
}

/// numpy's `ifft2`: [`ifftn`] over the last two axes by default.
pub fn ifft2(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
) -> Result<Array> {
    complex_nd(
        x,
        FftKind::Inverse,
        s,
        Some(axes.unwrap_or(&[-2, -1])),
        norm,
        "ifft2",
    )
}

/// numpy's `rfftn`: [`rfft`] along the last of `axes`, then [`fft`] along the others.
pub fn rfftn(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
) -> Result<Array> {
    let norm_k = FftNorm::parse(norm)?;
    let (axes, lens) = nd_axes(x, s, axes, "rfftn")?;
    let Some((&last, rest)) = axes.split_last() else {
        return Ok(x.clone());
    };
    let mut y = transform(x, FftKind::RealForward, lens[rest.len()], last, norm_k)?;
    for (&a, &n) in rest.iter().zip(&lens).rev() {
        y = transform(&y, FftKind::Forward, n, a, norm_k)?;
    }
    Ok(y)
}

/// numpy's `irfftn`: [`ifft`] along all but the last of `axes`, then [`irfft`] along the last
/// (of `s`'s last length, by default `2·(m − 1)`).
pub fn irfftn(
    x: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: Option<&str>,
) -> Result<Array> {
    let norm_k = FftNorm::parse(norm)?;
    let (axes, lens) = nd_axes(x, s, axes, "irfftn")?;
    let Some((&last, rest)) = axes.split_last() else {
        return Ok(x.clone());
    };
    let mut y = x.clone();
    for (&a, &n) in rest.iter().zip(&lens).rev() {
        y = transform(&y, FftKind::Inverse, n, a, norm_k)?;
    }
    transform(&y, FftKind::RealInverse, lens[rest.len()], last, norm_k)
}

/// numpy's `fftfreq`: the sample frequencies of an `n`-point transform with sample spacing `d`,
/// `[0, 1, …, ⌈n/2⌉−1, −⌊n/2⌋, …, −1] / (d·n)` — lazily, in `chunks` (dask's `fftfreq`).
///
/// ```
/// let f = tessera::fft::fftfreq(8, 0.1, [3]).unwrap().compute::<f64>().unwrap();
/// assert_eq!(f.as_slice().unwrap(), &[0.0, 1.25, 2.5, 3.75, -5.0, -3.75, -2.5, -1.25]);
/// ```
pub fn fftfreq(n: usize, d: f64, chunks: impl Into<ChunkSpec>) -> Result<Array> {
    freq(n, d, chunks.into(), false)
}

/// numpy's `rfftfreq`: the `n/2 + 1` non-negative frequencies of an `n`-point [`rfft`].
pub fn rfftfreq(n: usize, d: f64, chunks: impl Into<ChunkSpec>) -> Result<Array> {
    freq(n, d, chunks.into(), true)
}

/// The integer frequency indices times `1/(n·d)`, as numpy computes them (so the values agree
/// bit for bit).
fn freq(n: usize, d: f64, chunks: ChunkSpec, half: bool) -> Result<Array> {
    let op = if half { "rfftfreq" } else { "fftfreq" };
    if n == 0 {
        return Err(Error::InvalidArgument {
            op,
            reason: "n must be at least 1".into(),
        });
    }
    let val = 1.0 / (n as f64 * d);
    let positive = if half { n / 2 + 1 } else { n.div_ceil(2) };
    let pos = super::arange(0i64, positive as i64, 1, [positive.max(1)])?;
    let idx = if half || positive == n {
        pos
    } else {
        let neg_len = n - positive;
        let neg = super::arange(-(neg_len as i64), 0, 1, [neg_len])?;
        super::concatenate(&[&pos, &neg], 0)?
    };
    let f = idx.astype(DType::F64)? * val;
    f.rechunk(chunks)
}

/// The shift of each axis in `axes` (all by default) by `sign · ⌊len/2⌋`.
fn shift(x: &Array, axes: Option<&[isize]>, inverse: bool) -> Result<Array> {
    let axes: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| normalize_axis(a, x.ndim()))
            .collect::<Result<_>>()?,
        None => (0..x.ndim()).collect(),
    };
    let mut y = x.clone();
    for a in axes {
        let half = (x.shape()[a] / 2) as isize;
        y = y.roll(if inverse { -half } else { half }, Some(a as isize))?;
    }
    Ok(y)
}

/// numpy's `fftshift`: the zero frequency moved to the middle of each axis in `axes` (all by
/// default). Any chunking (built on [`Array::roll`]).
///
/// ```
/// let f = tessera::fft::fftfreq(5, 1.0, [2]).unwrap();
/// let s = tessera::fft::fftshift(&f, None).unwrap().compute::<f64>().unwrap();
/// assert_eq!(s.as_slice().unwrap(), &[-0.4, -0.2, 0.0, 0.2, 0.4]);
/// ```
pub fn fftshift(x: &Array, axes: Option<&[isize]>) -> Result<Array> {
    shift(x, axes, false)
}

/// numpy's `ifftshift`: the inverse of [`fftshift`] (they differ for odd lengths).
pub fn ifftshift(x: &Array, axes: Option<&[isize]>) -> Result<Array> {
    shift(x, axes, true)
}
