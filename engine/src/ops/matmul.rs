//! Blocked 2-D matrix product. The `Matmul` layer computes partial products on a 3-D grid — block
//! `(i, j, k)` is `a[i, k] @ b[k, j]` with a trailing axis of length 1 — and a sum reduction tree over
//! that axis adds them, so the inner dimension is summed as a tree like any other reduction.
//!
//! f64 and f32 block products use the `gemm` crate's packed kernels (AVX-512 or AVX2+FMA, chosen at
//! run time, single-threaded inside a task); i64 uses ndarray's generic product.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, Axis, Ix2};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::Block;

pub(crate) fn deps(block: &[u32], out: &mut Vec<(usize, Block)>) {
    let (i, j, k) = (block[0], block[1], block[2]);
    out.push((0, Block::from_slice(&[i, k])));
    out.push((1, Block::from_slice(&[k, j])));
}

pub(crate) fn run(deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
    let a = deps[0].as_array()?;
    let b = deps[1].as_array()?;
    let out = match (a, b) {
        (ArrayData::F64(a), ArrayData::F64(b)) => ArrayData::F64(float_product(a, b)?),
        (ArrayData::F32(a), ArrayData::F32(b)) => ArrayData::F32(float_product(a, b)?),
        (ArrayData::I64(a), ArrayData::I64(b)) => ArrayData::I64(product(a, b)?),
        (a, b) => {
            return Err(Error::InvalidArgument {
                op: "matmul",
                reason: format!("blocks of dtypes {} and {}", a.dtype(), b.dtype()),
            });
        }
    };
    Ok(ChunkValue::Array(out))
}

/// The two blocks as matrices whose inner dimensions agree.
fn matrices<'a, T>(
    a: &'a ndarray::ArrayD<T>,
    b: &'a ndarray::ArrayD<T>,
) -> Result<(ArrayView2<'a, T>, ArrayView2<'a, T>)> {
    let shape_err = || Error::ShapeMismatch {
        op: "matmul",
        reason: format!("blocks of shapes {:?} and {:?}", a.shape(), b.shape()),
    };
    let a2 = a
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| shape_err())?;
    let b2 = b
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| shape_err())?;
    if a2.ncols() != b2.nrows() {
        return Err(shape_err());
    }
    Ok((a2, b2))
}

fn product<T: ndarray::LinalgScalar>(
    a: &ndarray::ArrayD<T>,
    b: &ndarray::ArrayD<T>,
) -> Result<ndarray::ArrayD<T>> {
    let (a2, b2) = matrices(a, b)?;
    Ok(a2.dot(&b2).insert_axis(Axis(2)).into_dyn())
}

fn float_product<T: ndarray::LinalgScalar + 'static>(
    a: &ndarray::ArrayD<T>,
    b: &ndarray::ArrayD<T>,
) -> Result<ndarray::ArrayD<T>> {
    let (a2, b2) = matrices(a, b)?;
    let (m, k, n) = (a2.nrows(), a2.ncols(), b2.ncols());
    let mut out = Array2::<T>::zeros((m, n));
    if m > 0 && n > 0 && k > 0 {
        let out_rs = out.strides()[0];
        // SAFETY: every pointer comes with the strides (in elements) and extents of its own live
        // view, and `out` is a distinct, freshly allocated m × n array; with `read_dst` false, gemm
        // only writes `out` (beta · a · b with beta = 1) and never reads it.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                out_rs,
                false,
                a2.as_ptr(),
                a2.strides()[1],
                a2.strides()[0],
                b2.as_ptr(),
                b2.strides()[1],
                b2.strides()[0],
                T::zero(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
    Ok(out.insert_axis(Axis(2)).into_dyn())
}
