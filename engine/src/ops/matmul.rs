//! Blocked 2-D matrix product. The `Matmul` layer computes partial products on a 3-D grid — block
//! `(i, j, k)` is `a[i, k] @ b[k, j]` with a trailing axis of length 1 — and a sum reduction tree over
//! that axis adds them, so the inner dimension is summed as a tree like any other reduction.
//!
//! An operand built as a transpose (`a.T @ b`, `a @ b.T`) is read as it is stored: block `(i, j, k)`
//! reads `a[k, i]` or `b[j, k]` and the kernel takes it by strides, so no transposed copy of any
//! block is made. When both operands are one array, once transposed (`x @ x.T`, `x.T @ x`), the
//! product is symmetric, as numpy's `syrk` path exploits: diagonal blocks are computed as their
//! upper triangle and mirrored, and [`Op::MirrorUpper`](crate::ops::Op::MirrorUpper) builds the
//! lower block triangle from the upper one, so the lower products are culled and never run.
//!
//! f64 and f32 block products use the `gemm` crate's packed kernels (AVX-512 or AVX2+FMA, chosen at
//! run time, single-threaded inside a task); i64 uses ndarray's generic product.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, Ix2, s};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::{Block, Layer};
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, InputMeta, RuleResult, one_input};

/// Which operands of a [`Op::Matmul`](crate::ops::Op::Matmul) layer are stored transposed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatmulOp {
    /// The first input is `aᵀ` as stored: block `(i, j, k)` reads its block `(k, i)`.
    pub transpose_a: bool,
    /// The second input is `bᵀ` as stored: block `(i, j, k)` reads its block `(j, k)`.
    pub transpose_b: bool,
}

impl MatmulOp {
    /// The 3-d grid of block products `(rows, columns, inner blocks)` of two 2-d inputs of one
    /// dtype whose inner chunks agree (each read as it is stored).
    pub(crate) fn output_meta(self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let [a, b] = inputs else {
            return Err(format!(
                "matmul reads two inputs, this layer has {}",
                inputs.len()
            ));
        };
        if a.meta.ndim() != 2 || b.meta.ndim() != 2 {
            return Err(format!(
                "matmul needs 2-d inputs, {} has shape {:?} and {} has {:?}",
                a.id,
                a.meta.shape(),
                b.id,
                b.meta.shape()
            ));
        }
        if a.meta.dtype != b.meta.dtype {
            return Err(format!(
                "matmul needs inputs of one dtype, {} is {} and {} is {}",
                a.id, a.meta.dtype, b.id, b.meta.dtype
            ));
        }
        if a.meta.dtype == DType::Bool {
            return Err("matmul does not support bool".into());
        }
        // Which stored axes are the rows, the inner dimension and the columns.
        let (rows, a_inner) = if self.transpose_a { (1, 0) } else { (0, 1) };
        let (b_inner, cols) = if self.transpose_b { (1, 0) } else { (0, 1) };
        if a.meta.chunks.axis(a_inner) != b.meta.chunks.axis(b_inner) {
            return Err(format!(
                "inner chunks differ: {} is chunked {:?} along axis {a_inner}, {} {:?} along axis {b_inner}",
                a.id,
                a.meta.chunks.axis(a_inner),
                b.id,
                b.meta.chunks.axis(b_inner)
            ));
        }
        let chunks = Chunks::from_sizes(vec![
            a.meta.chunks.axis(rows).to_vec(),
            b.meta.chunks.axis(cols).to_vec(),
            vec![1; a.meta.chunks.axis(a_inner).len()],
        ]);
        Ok(Derived::new(
            chunks,
            a.meta.dtype,
            "the grid of block products",
            "keeping its inputs' dtype",
        ))
    }

    pub(crate) fn deps(self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        let (i, j, k) = (block[0], block[1], block[2]);
        let a = if self.transpose_a { [k, i] } else { [i, k] };
        let b = if self.transpose_b { [j, k] } else { [k, j] };
        out.push((0, Block::from_slice(&a)));
        out.push((1, Block::from_slice(&b)));
    }

    /// Whether the layer is `x @ x.T` or `x.T @ x`, whose products are symmetric.
    pub(crate) fn is_symmetric(self, layer: &Layer) -> bool {
        self.transpose_a != self.transpose_b
            && layer.inputs.len() == 2
            && layer.inputs[0] == layer.inputs[1]
    }

    pub(crate) fn run(
        self,
        layer: &Layer,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let a = deps[0].as_array()?;
        let b = deps[1].as_array()?;
        // A diagonal block of a symmetric product reads one block twice: `x[i, k] @ x[i, k]ᵀ`.
        let product = BlockProduct {
            op: self,
            symmetric: self.is_symmetric(layer) && block[0] == block[1],
        };
        let out = match (a, b) {
            (ArrayData::F64(a), ArrayData::F64(b)) => ArrayData::F64(float_product(a, b, product)?),
            (ArrayData::F32(a), ArrayData::F32(b)) => ArrayData::F32(float_product(a, b, product)?),
            (ArrayData::I64(a), ArrayData::I64(b)) => {
                let (a2, b2) = matrices(a, b, self)?;
                // ndarray may pick a column-major result for transposed operands; chunks are C order.
                let c = a2.dot(&b2).as_standard_layout().into_owned();
                ArrayData::I64(c.insert_axis(Axis(2)).into_dyn())
            }
            (a, b) => {
                return Err(Error::InvalidArgument {
                    op: "matmul",
                    reason: format!("blocks of dtypes {} and {}", a.dtype(), b.dtype()),
                });
            }
        };
        Ok(ChunkValue::Array(out))
    }
}

/// How one block product is computed: which operands are read transposed, and whether it is a
/// diagonal block of a symmetric product.
#[derive(Clone, Copy)]
struct BlockProduct {
    op: MatmulOp,
    symmetric: bool,
}

/// The two blocks as matrices whose inner dimensions agree (each seen transposed if stored so).
fn matrices<'a, T>(
    a: &'a ndarray::ArrayD<T>,
    b: &'a ndarray::ArrayD<T>,
    op: MatmulOp,
) -> Result<(ArrayView2<'a, T>, ArrayView2<'a, T>)> {
    let shape_err = || Error::ShapeMismatch {
        op: "matmul",
        reason: format!(
            "blocks of shapes {:?}{} and {:?}{}",
            a.shape(),
            if op.transpose_a { " (transposed)" } else { "" },
            b.shape(),
            if op.transpose_b { " (transposed)" } else { "" }
        ),
    };
    let matrix = |x: &'a ndarray::ArrayD<T>, transposed: bool| {
        let m = x
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| shape_err())?;
        Ok::<_, Error>(if transposed { m.reversed_axes() } else { m })
    };
    let (a2, b2) = (matrix(a, op.transpose_a)?, matrix(b, op.transpose_b)?);
    if a2.ncols() != b2.nrows() {
        return Err(shape_err());
    }
    Ok((a2, b2))
}

/// Diagonal blocks of a symmetric product at most this many rows are computed whole: below it the
/// saved flops no longer pay for gemm's per-call packing.
const SYMMETRIC_LEAF_ROWS: usize = 192;

fn float_product<T: ndarray::LinalgScalar + 'static>(
    a: &ndarray::ArrayD<T>,
    b: &ndarray::ArrayD<T>,
    product: BlockProduct,
) -> Result<ndarray::ArrayD<T>> {
    let (a2, b2) = matrices(a, b, product.op)?;
    let mut out = Array2::<T>::zeros((a2.nrows(), b2.ncols()));
    if product.symmetric && a2.nrows() == b2.ncols() {
        symmetric_product(a2, out.view_mut())?;
    } else {
        // Panels of rows, with a cancellation checkpoint between them: each output row depends
        // only on its row of `a`, so the split changes no value.
        let rows = a2.nrows();
        let mut r0 = 0;
        while r0 < rows {
            crate::exec::cancel::checkpoint()?;
            let r1 = (r0 + PANEL_ROWS).min(rows);
            gemm_into(a2.slice(s![r0..r1, ..]), b2, out.slice_mut(s![r0..r1, ..]));
            r0 = r1;
        }
    }
    Ok(out.insert_axis(Axis(2)).into_dyn())
}

/// Rows of a block product computed between two cancellation checkpoints: large enough that gemm's
/// packing of `b` is amortized, small enough that a 4096² block stops within a few milliseconds.
const PANEL_ROWS: usize = 1024;

/// `out = a @ aᵀ`, computing about half of its products: the two diagonal quarters recursively, the
/// upper-right quarter by one product, and the lower-left quarter as its transpose.
fn symmetric_product<T: ndarray::LinalgScalar + 'static>(
    a: ArrayView2<T>,
    mut out: ArrayViewMut2<T>,
) -> Result<()> {
    crate::exec::cancel::checkpoint()?;
    let m = a.nrows();
    if m <= SYMMETRIC_LEAF_ROWS {
        gemm_into(a, a.t(), out);
        return Ok(());
    }
    let h = m / 2;
    let (top, bottom) = a.split_at(Axis(0), h);
    gemm_into(top, bottom.t(), out.slice_mut(s![..h, h..]));
    let (mut upper, mut lower) = out.view_mut().split_at(Axis(0), h);
    lower
        .slice_mut(s![.., ..h])
        .assign(&upper.slice(s![.., h..]).t());
    symmetric_product(top, upper.slice_mut(s![.., ..h]))?;
    symmetric_product(bottom, lower.slice_mut(s![.., h..]))
}

/// `out = a @ b` for any strides, with `out` zeroed beforehand (also TSQR's block products).
pub(crate) fn gemm_into<T: ndarray::LinalgScalar + 'static>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut out: ArrayViewMut2<T>,
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    debug_assert_eq!((out.nrows(), out.ncols(), b.nrows()), (m, n, k));
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let (out_rs, out_cs) = (out.strides()[0], out.strides()[1]);
    // SAFETY: every pointer comes with the strides (in elements) and extents of its own live view;
    // `out` is a unique mutable view that aliases neither input; with `read_dst` false, gemm only
    // writes `out` (beta · a · b with beta = 1) and never reads it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            out_cs,
            out_rs,
            false,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            T::zero(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A square 2-d input chunked alike on both axes keeps its grid and dtype.
pub(crate) fn mirror_meta(inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
    let input = one_input(inputs, "mirror_upper")?;
    let chunks = &input.meta.chunks;
    if chunks.ndim() != 2 || chunks.axis(0) != chunks.axis(1) {
        return Err(format!(
            "mirror_upper needs a square 2-d input chunked alike on both axes, {} is chunked {chunks}",
            input.id
        ));
    }
    Ok(Derived::new(
        chunks.clone(),
        input.meta.dtype,
        "its input",
        "keeping its input's dtype",
    ))
}

/// Block `(i, j)` of a symmetric matrix whose upper block triangle (`i <= j`) is computed: the block
/// itself there, and block `(j, i)` transposed below the diagonal.
pub(crate) fn mirror_deps(block: &[u32], out: &mut Vec<(usize, Block)>) {
    let (i, j) = (block[0], block[1]);
    out.push((0, Block::from_slice(&[i.min(j), i.max(j)])));
}

pub(crate) fn mirror_run(block: &[u32], deps: &[Arc<ChunkValue>]) -> Result<Arc<ChunkValue>> {
    if block[0] <= block[1] {
        return Ok(deps[0].clone());
    }
    crate::ops::structure::transpose_run(&[1, 0], deps).map(Arc::new)
}
