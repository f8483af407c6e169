//! Per-block dense factorizations behind `tessera::linalg`, on one chunk at a time: QR (packed as
//! `[Q; R]` for TSQR), thin SVD, Cholesky, LU-based solve / inverse / determinant, symmetric
//! eigendecomposition and the upper-triangular solve of `lstsq`. The factorizations are `faer`'s,
//! run sequentially (`Par::Seq`: the executors already run one block per thread, and a fixed order
//! of operations keeps every result identical wherever the block runs).
//!
//! Failures that depend on the values (a singular or an indefinite matrix, no convergence) are
//! typed errors naming the operation, the matrix shape and what failed.

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, MatRef, Par, Side};
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, Ix2};

use crate::error::{Error, Result};

/// The float types the factorizations run in.
pub trait LinalgFloat: faer::traits::RealField + Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl LinalgFloat for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl LinalgFloat for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

fn failed(op: &'static str, reason: String) -> Error {
    Error::InvalidArgument { op, reason }
}

/// The block as a matrix, or a typed error naming its shape.
pub(crate) fn matrix<'a, T>(a: &'a ArrayD<T>, op: &'static str) -> Result<ArrayView2<'a, T>> {
    a.view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| Error::ShapeMismatch {
            op,
            reason: format!("expected a 2-d block, got shape {:?}", a.shape()),
        })
}

fn to_faer<T: LinalgFloat>(a: ArrayView2<T>) -> Mat<T> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

fn from_faer<T: LinalgFloat>(m: MatRef<'_, T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// QR of an `m × n` block with `m >= n`, packed as the `(m + n) × n` matrix `[Q; R]`: the thin `Q`
/// on top, the upper-triangular `R` below (TSQR's per-block step).
pub fn qr_packed<T: LinalgFloat>(a: ArrayView2<T>) -> Result<Array2<T>> {
    let (m, n) = a.dim();
    if m < n {
        return Err(failed(
            "qr",
            format!("a block of shape {:?} has fewer rows than columns", [m, n]),
        ));
    }
    let qr = to_faer(a).qr();
    let q = qr.compute_thin_Q();
    let r = qr.thin_R();
    let mut out = Array2::<T>::zeros((m + n, n));
    for i in 0..m {
        for j in 0..n {
            out[[i, j]] = q[(i, j)];
        }
    }
    for i in 0..n {
        for j in i..n {
            out[[m + i, j]] = r[(i, j)];
        }
    }
    Ok(out)
}

/// Thin SVD `a = U · diag(s) · Vᵀ` of an `m × n` matrix, `k = min(m, n)`: `U` is `m × k`, `s` has
/// `k` values in non-increasing order, `Vᵀ` is `k × n`.
pub fn svd<T: LinalgFloat>(a: ArrayView2<T>) -> Result<(Array2<T>, Array1<T>, Array2<T>)> {
    let shape = [a.nrows(), a.ncols()];
    let svd = to_faer(a).thin_svd().map_err(|e| {
        failed(
            "svd",
            format!("the SVD of the matrix of shape {shape:?} failed: {e:?}"),
        )
    })?;
    let s = svd.S().column_vector();
    let s = Array1::from_shape_fn(s.nrows(), |i| s[i]);
    Ok((from_faer(svd.U()), s, from_faer(svd.V().transpose())))
}

fn square<T>(a: ArrayView2<T>, op: &'static str) -> Result<usize> {
    if a.nrows() != a.ncols() {
        return Err(Error::ShapeMismatch {
            op,
            reason: format!(
                "needs a square matrix, got shape {:?}",
                [a.nrows(), a.ncols()]
            ),
        });
    }
    Ok(a.nrows())
}

/// The lower-triangular `L` with `L · Lᵀ = a` (numpy's `cholesky`; only the lower triangle of `a`
/// is read).
pub fn cholesky<T: LinalgFloat>(a: ArrayView2<T>) -> Result<Array2<T>> {
    let n = square(a, "cholesky")?;
    let llt = to_faer(a).llt(Side::Lower).map_err(|e| {
        let faer::linalg::solvers::LltError::NonPositivePivot { index } = e;
        failed(
            "cholesky",
            format!(
                "the matrix of shape {:?} is not positive definite (leading minor {} is not positive)",
                [n, n],
                index + 1
            ),
        )
    })?;
    let l = llt.L();
    Ok(Array2::from_shape_fn((n, n), |(i, j)| {
        if j <= i { l[(i, j)] } else { T::zero() }
    }))
}

/// LU with partial pivoting, refusing a singular matrix (a zero pivot) with its shape named.
fn lu<T: LinalgFloat>(
    a: ArrayView2<T>,
    op: &'static str,
) -> Result<faer::linalg::solvers::PartialPivLu<T>> {
    let n = square(a, op)?;
    let lu = to_faer(a).partial_piv_lu();
    let u = lu.U();
    if let Some(i) = (0..n).find(|&i| u[(i, i)] == T::zero() || !u[(i, i)].to_f64().is_finite()) {
        return Err(failed(
            op,
            format!(
                "the matrix of shape {:?} is singular (pivot {i} of its LU factorization is {})",
                [n, n],
                u[(i, i)].to_f64()
            ),
        ));
    }
    Ok(lu)
}

/// `a⁻¹` of a square, non-singular matrix.
pub fn inv<T: LinalgFloat>(a: ArrayView2<T>) -> Result<Array2<T>> {
    let lu = lu(a, "inv")?;
    Ok(from_faer(lu.inverse().as_ref()))
}

/// `x` with `a · x = b`, for `b` a vector or a matrix of right-hand sides.
pub fn solve<T: LinalgFloat>(a: ArrayView2<T>, b: ArrayViewD<T>) -> Result<ArrayD<T>> {
    let lu = lu(a, "solve")?;
    let shape = b.shape().to_vec();
    let mut rhs = rhs_matrix(a.nrows(), b, "solve")?;
    lu.solve_in_place(&mut rhs);
    Ok(back_to_shape(&rhs, &shape))
}

/// `x` with `r · x = b` for an upper-triangular `r` (only its upper triangle is read): the last step
/// of `lstsq` after `Qᵀ b`.
pub fn solve_upper<T: LinalgFloat>(r: ArrayView2<T>, b: ArrayViewD<T>) -> Result<ArrayD<T>> {
    let n = square(r, "lstsq")?;
    if let Some(i) = (0..n).find(|&i| r[[i, i]] == T::zero()) {
        return Err(failed(
            "lstsq",
            format!(
                "the matrix is rank deficient: R of its QR factorization, of shape {:?}, has a zero at diagonal {i}",
                [n, n]
            ),
        ));
    }
    let shape = b.shape().to_vec();
    let mut rhs = rhs_matrix(n, b, "lstsq")?;
    let rf = to_faer(r);
    faer::linalg::triangular_solve::solve_upper_triangular_in_place(
        rf.as_ref(),
        rhs.as_mut(),
        Par::Seq,
    );
    Ok(back_to_shape(&rhs, &shape))
}

fn rhs_matrix<T: LinalgFloat>(n: usize, b: ArrayViewD<T>, op: &'static str) -> Result<Mat<T>> {
    match b.shape() {
        [m] if *m == n => Ok(Mat::from_fn(n, 1, |i, _| b[[i]])),
        [m, k] if *m == n => Ok(Mat::from_fn(n, *k, |i, j| b[[i, j]])),
        other => Err(Error::ShapeMismatch {
            op,
            reason: format!("the right-hand side of shape {other:?} does not have {n} rows"),
        }),
    }
}

fn back_to_shape<T: LinalgFloat>(x: &Mat<T>, shape: &[usize]) -> ArrayD<T> {
    if shape.len() == 1 {
        Array1::from_shape_fn(x.nrows(), |i| x[(i, 0)]).into_dyn()
    } else {
        from_faer(x.as_ref()).into_dyn()
    }
}

/// `(sign, ln|det a|)` of a square matrix, from its LU factorization; a singular matrix gives
/// `(0, -inf)` as numpy's `slogdet` does.
pub fn slogdet<T: LinalgFloat>(a: ArrayView2<T>) -> Result<(T, T)> {
    let n = square(a, "slogdet")?;
    let lu = to_faer(a).partial_piv_lu();
    let u = lu.U();
    let mut sign = permutation_sign(lu.P().arrays().0);
    let mut logabs = T::zero();
    for i in 0..n {
        let d = u[(i, i)];
        if d == T::zero() {
            return Ok((T::zero(), T::from_f64(f64::NEG_INFINITY)));
        }
        if d < T::zero() {
            sign = -sign;
        }
        logabs += T::from_f64(d.to_f64().abs().ln());
    }
    Ok((T::from_f64(sign), logabs))
}

/// `det a` of a square matrix: the product of its LU pivots with the permutation's sign.
pub fn det<T: LinalgFloat>(a: ArrayView2<T>) -> Result<T> {
    let n = square(a, "det")?;
    if n == 0 {
        return Ok(T::one());
    }
    let lu = to_faer(a).partial_piv_lu();
    let u = lu.U();
    let mut d = T::from_f64(permutation_sign(lu.P().arrays().0));
    for i in 0..n {
        d *= u[(i, i)];
    }
    Ok(d)
}

/// +1 for an even permutation, -1 for an odd one (from its cycle lengths).
fn permutation_sign(p: &[usize]) -> f64 {
    let mut seen = vec![false; p.len()];
    let mut sign = 1.0;
    for start in 0..p.len() {
        if seen[start] {
            continue;
        }
        let mut len = 0;
        let mut i = start;
        while !seen[i] {
            seen[i] = true;
            i = p[i];
            len += 1;
        }
        if len % 2 == 0 {
            sign = -sign;
        }
    }
    sign
}

/// Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, reading its lower
/// triangle (numpy's `eigh` default `UPLO='L'`).
pub fn eigh<T: LinalgFloat>(a: ArrayView2<T>) -> Result<(Array1<T>, Array2<T>)> {
    let n = square(a, "eigh")?;
    let evd = to_faer(a).self_adjoint_eigen(Side::Lower).map_err(|e| {
        failed(
            "eigh",
            format!(
                "the eigendecomposition of the matrix of shape {:?} failed: {e:?}",
                [n, n]
            ),
        )
    })?;
    let w = evd.S().column_vector();
    Ok((Array1::from_shape_fn(n, |i| w[i]), from_faer(evd.U())))
}
