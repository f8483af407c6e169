//! Blocked 2-D matrix product. The `Matmul` layer computes partial products on a 3-D grid — block
//! `(i, j, k)` is `a[i, k] @ b[k, j]` with a trailing axis of length 1 — and a sum reduction tree over
//! that axis adds them, so the inner dimension is summed as a tree like any other reduction.

use std::sync::Arc;

use ndarray::{Axis, Ix2};

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
        (ArrayData::F64(a), ArrayData::F64(b)) => ArrayData::F64(product(a, b)?),
        (ArrayData::F32(a), ArrayData::F32(b)) => ArrayData::F32(product(a, b)?),
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

fn product<T: ndarray::LinalgScalar>(
    a: &ndarray::ArrayD<T>,
    b: &ndarray::ArrayD<T>,
) -> Result<ndarray::ArrayD<T>> {
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
    Ok(a2.dot(&b2).insert_axis(Axis(2)).into_dyn())
}
