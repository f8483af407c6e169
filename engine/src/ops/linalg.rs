//! The linear-algebra op ([`LinalgOp`]): the per-block steps of TSQR on arrays chunked along rows
//! only, and the factorizations of matrices held in one chunk. Each kind owns its metadata rule
//! here; the values come from [`crate::kernels::linalg`].
//!
//! TSQR (Demmel et al.; dask's `tsqr`) is built from four kinds: [`LinalgKind::QrFactors`] factors
//! each row block into `[Q_i; R_i]` packed in one chunk, [`LinalgKind::QrQ`] and
//! [`LinalgKind::QrR`] pick the two parts, and [`LinalgKind::BlockProduct`] multiplies row block
//! `i` of one array by row block `i` of another (`Q_i · Q_small_i`). The other kinds read one
//! chunk holding a whole matrix and write one chunk. Multi-output factorizations (SVD, `eigh`,
//! `slogdet`) have one kind per output; each recomputes the factorization of its one block, which
//! keeps every layer a plain array.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::kernels::linalg as k;
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, Holds, InputMeta, RuleResult};

/// What a [`LinalgOp`] layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinalgKind {
    /// Row block `i` (`m_i × n`, `m_i >= n`, one column chunk) → `[Q_i; R_i]`, `(m_i + n) × n`.
    QrFactors,
    /// `[Q_i; R_i]` → `Q_i` (`m_i × n`).
    QrQ,
    /// `[Q_i; R_i]` → `R_i` (`n × n`).
    QrR,
    /// Row block `i` of `x` (`m_i × n`) times row block `i` of `y` (`n × p`).
    BlockProduct,
    /// `U` of the thin SVD of a one-chunk matrix.
    SvdU,
    /// The singular values of a one-chunk matrix.
    SvdS,
    /// `Vᵀ` of the thin SVD of a one-chunk matrix.
    SvdVt,
    /// The lower Cholesky factor of a one-chunk matrix.
    Cholesky,
    /// The inverse of a one-chunk matrix.
    Inv,
    /// `a⁻¹ b` for a one-chunk `a` and a one-chunk vector or matrix `b`.
    Solve,
    /// `r⁻¹ b` for a one-chunk upper-triangular `r` (the last step of `lstsq`).
    SolveUpper,
    /// The determinant of a one-chunk matrix (0-d).
    Det,
    /// The sign of the determinant (0-d).
    SlogdetSign,
    /// The log of the determinant's absolute value (0-d).
    SlogdetLogabs,
    /// The eigenvalues of a one-chunk symmetric matrix, ascending.
    EighValues,
    /// The eigenvectors (columns) of a one-chunk symmetric matrix.
    EighVectors,
}

impl LinalgKind {
    /// Every kind, in wire-code order.
    pub const ALL: [LinalgKind; 16] = [
        LinalgKind::QrFactors,
        LinalgKind::QrQ,
        LinalgKind::QrR,
        LinalgKind::BlockProduct,
        LinalgKind::SvdU,
        LinalgKind::SvdS,
        LinalgKind::SvdVt,
        LinalgKind::Cholesky,
        LinalgKind::Inv,
        LinalgKind::Solve,
        LinalgKind::SolveUpper,
        LinalgKind::Det,
        LinalgKind::SlogdetSign,
        LinalgKind::SlogdetLogabs,
        LinalgKind::EighValues,
        LinalgKind::EighVectors,
    ];

    /// The kind's wire code.
    pub fn code(self) -> i32 {
        LinalgKind::ALL
            .iter()
            .position(|&k| k == self)
            .expect("every kind is listed") as i32
    }

    pub fn from_code(code: i32) -> Option<LinalgKind> {
        usize::try_from(code)
            .ok()
            .and_then(|i| LinalgKind::ALL.get(i).copied())
    }

    /// The layer name.
    pub fn name(self) -> &'static str {
        match self {
            LinalgKind::QrFactors => "qr-factors",
            LinalgKind::QrQ => "qr-q",
            LinalgKind::QrR => "qr-r",
            LinalgKind::BlockProduct => "block-product",
            LinalgKind::SvdU => "svd-u",
            LinalgKind::SvdS => "svd-s",
            LinalgKind::SvdVt => "svd-vt",
            LinalgKind::Cholesky => "cholesky",
            LinalgKind::Inv => "inv",
            LinalgKind::Solve => "solve",
            LinalgKind::SolveUpper => "solve-upper",
            LinalgKind::Det => "det",
            LinalgKind::SlogdetSign => "slogdet-sign",
            LinalgKind::SlogdetLogabs => "slogdet-logabs",
            LinalgKind::EighValues => "eigh-values",
            LinalgKind::EighVectors => "eigh-vectors",
        }
    }

    fn inputs(self) -> usize {
        match self {
            LinalgKind::BlockProduct | LinalgKind::Solve | LinalgKind::SolveUpper => 2,
            _ => 1,
        }
    }
}

/// A linear-algebra layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinalgOp {
    pub kind: LinalgKind,
}

/// The float dtype every input shares.
fn float_dtype(inputs: &[InputMeta<'_>], op: &str) -> RuleResult<DType> {
    let dtype = inputs[0].meta.dtype;
    for i in inputs {
        if i.holds != Holds::Array {
            return Err(format!("its input {} holds no array chunks", i.id));
        }
        if !matches!(i.meta.dtype, DType::F32 | DType::F64) {
            return Err(format!(
                "{op} reads float32 or float64, but its input {} is {}",
                i.id, i.meta.dtype
            ));
        }
        if i.meta.dtype != dtype {
            return Err(format!(
                "{op} needs inputs of one dtype, {} is {} and {} is {}",
                inputs[0].id, dtype, i.id, i.meta.dtype
            ));
        }
    }
    Ok(dtype)
}

/// A 2-d input with one column chunk: its row chunks and its column count.
fn row_blocks<'a>(i: &'a InputMeta<'_>, op: &str) -> RuleResult<(&'a [usize], usize)> {
    if i.meta.ndim() != 2 {
        return Err(format!(
            "{op} reads a 2-d array, {} has shape {:?}",
            i.id,
            i.meta.shape()
        ));
    }
    if i.meta.chunks.axis(1).len() != 1 {
        return Err(format!(
            "{op} needs an array chunked along rows only, {} is chunked {} (rechunk its columns to one chunk)",
            i.id, i.meta.chunks
        ));
    }
    Ok((i.meta.chunks.axis(0), i.meta.shape()[1]))
}

/// A 2-d input held in one chunk: its shape.
fn one_chunk_matrix(i: &InputMeta<'_>, op: &str, square: bool) -> RuleResult<(usize, usize)> {
    let shape = i.meta.shape();
    if shape.len() != 2 {
        return Err(format!(
            "{op} reads a 2-d matrix, {} has shape {shape:?}",
            i.id
        ));
    }
    if i.meta.chunks.num_chunks() != 1 {
        return Err(format!(
            "{op} reads a matrix in one chunk, {} is chunked {} (rechunk it to one chunk)",
            i.id, i.meta.chunks
        ));
    }
    if square && shape[0] != shape[1] {
        return Err(format!(
            "{op} needs a square matrix, {} has shape {shape:?}",
            i.id
        ));
    }
    if shape[0] == 0 || shape[1] == 0 {
        return Err(format!(
            "{op} needs a non-empty matrix, {} has shape {shape:?}",
            i.id
        ));
    }
    Ok((shape[0], shape[1]))
}

fn one(sizes: &[usize]) -> Chunks {
    Chunks::from_sizes(sizes.iter().map(|&s| vec![s]).collect())
}

impl LinalgOp {
    pub fn name(self) -> &'static str {
        self.kind.name()
    }

    pub(crate) fn tokenize(self, t: &mut Tokenizer) {
        t.u64(self.kind.code() as u64);
    }

    /// The kind's output grid and dtype (its inputs' float dtype).
    pub(crate) fn output_meta(self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let name = self.name();
        if inputs.len() != self.kind.inputs() {
            return Err(format!(
                "{name} reads {} input(s), this layer has {}",
                self.kind.inputs(),
                inputs.len()
            ));
        }
        let dtype = float_dtype(inputs, name)?;
        let (chunks, rule) = match self.kind {
            LinalgKind::QrFactors => {
                let (rows, n) = row_blocks(&inputs[0], name)?;
                if let Some((b, &m)) = rows.iter().enumerate().find(|&(_, &m)| m < n) {
                    return Err(format!(
                        "qr needs a tall-and-skinny array whose row blocks each have at least as many rows as it has columns; block ({b}, 0) of {} has {m} rows for {n} columns (rechunk to larger row blocks)",
                        inputs[0].id
                    ));
                }
                let sizes = vec![rows.iter().map(|&m| m + n).collect(), vec![n]];
                (Chunks::from_sizes(sizes), "each row block with its R below")
            }
            LinalgKind::QrQ | LinalgKind::QrR => {
                let (rows, n) = row_blocks(&inputs[0], name)?;
                if rows.iter().any(|&p| p < 2 * n) {
                    return Err(format!(
                        "{name} reads packed [Q; R] blocks of at least {} rows, {} is chunked {}",
                        2 * n,
                        inputs[0].id,
                        inputs[0].meta.chunks
                    ));
                }
                let picked = match self.kind {
                    LinalgKind::QrQ => rows.iter().map(|&p| p - n).collect(),
                    _ => vec![n; rows.len()],
                };
                (
                    Chunks::from_sizes(vec![picked, vec![n]]),
                    "one part of each packed block",
                )
            }
            LinalgKind::BlockProduct => {
                let (x_rows, n) = row_blocks(&inputs[0], name)?;
                let (y_rows, p) = row_blocks(&inputs[1], name)?;
                if y_rows.len() != x_rows.len() || y_rows.iter().any(|&r| r != n) {
                    return Err(format!(
                        "block_product needs {} row blocks of {n} rows in {}, it is chunked {}",
                        x_rows.len(),
                        inputs[1].id,
                        inputs[1].meta.chunks
                    ));
                }
                (
                    Chunks::from_sizes(vec![x_rows.to_vec(), vec![p]]),
                    "the first input's row blocks by the second's columns",
                )
            }
            LinalgKind::SvdU | LinalgKind::SvdS | LinalgKind::SvdVt => {
                let (m, n) = one_chunk_matrix(&inputs[0], name, false)?;
                let kk = m.min(n);
                let shape: Vec<usize> = match self.kind {
                    LinalgKind::SvdU => vec![m, kk],
                    LinalgKind::SvdS => vec![kk],
                    _ => vec![kk, n],
                };
                (one(&shape), "one chunk of the thin SVD's factor")
            }
            LinalgKind::Cholesky | LinalgKind::Inv | LinalgKind::EighVectors => {
                let (n, _) = one_chunk_matrix(&inputs[0], name, true)?;
                (one(&[n, n]), "one chunk of its square input's shape")
            }
            LinalgKind::EighValues => {
                let (n, _) = one_chunk_matrix(&inputs[0], name, true)?;
                (one(&[n]), "one value per row")
            }
            LinalgKind::Det | LinalgKind::SlogdetSign | LinalgKind::SlogdetLogabs => {
                one_chunk_matrix(&inputs[0], name, true)?;
                (one(&[]), "a scalar")
            }
            LinalgKind::Solve | LinalgKind::SolveUpper => {
                let (n, _) = one_chunk_matrix(&inputs[0], name, true)?;
                let b = &inputs[1];
                let shape = b.meta.shape();
                if !(1..=2).contains(&shape.len()) || shape[0] != n {
                    return Err(format!(
                        "{name} needs a right-hand side of {n} rows (a vector or a matrix), {} has shape {shape:?}",
                        b.id
                    ));
                }
                if b.meta.chunks.num_chunks() != 1 {
                    return Err(format!(
                        "{name} reads a right-hand side in one chunk, {} is chunked {}",
                        b.id, b.meta.chunks
                    ));
                }
                (one(&shape), "its right-hand side's shape")
            }
        };
        Ok(Derived {
            meta: ArrayMeta { chunks, dtype },
            chunks_rule: rule.to_string(),
            dtype_rule: "keeping its inputs' float dtype".to_string(),
        })
    }

    /// Output block `b` reads block `b` of each input of its rank (row block `i` for the TSQR
    /// kinds), and the one block of the others.
    pub(crate) fn deps(self, inputs: &[&ArrayMeta], block: &[u32], out: &mut Vec<(usize, Block)>) {
        for (pos, m) in inputs.iter().enumerate() {
            let b = if m.ndim() == block.len() {
                Block::from_slice(block)
            } else {
                Block::from_slice(&vec![0; m.ndim()])
            };
            out.push((pos, b));
        }
    }

    pub(crate) fn run(self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let first = deps
            .first()
            .ok_or_else(|| Error::InvalidArgument {
                op: self.name(),
                reason: "reads at least one input block".into(),
            })?
            .as_array()?;
        let second = match deps.get(1) {
            Some(d) => Some(d.as_array()?),
            None => None,
        };
        let out = match (first, second) {
            (ArrayData::F64(a), None) => ArrayData::F64(self.one(a)?),
            (ArrayData::F32(a), None) => ArrayData::F32(self.one(a)?),
            (ArrayData::F64(a), Some(ArrayData::F64(b))) => ArrayData::F64(self.two(a, b)?),
            (ArrayData::F32(a), Some(ArrayData::F32(b))) => ArrayData::F32(self.two(a, b)?),
            (a, b) => {
                return Err(Error::InvalidArgument {
                    op: self.name(),
                    reason: format!(
                        "blocks of dtypes {} and {:?}",
                        a.dtype(),
                        b.map(|b| b.dtype())
                    ),
                });
            }
        };
        Ok(ChunkValue::Array(out))
    }

    fn one<T: k::LinalgFloat>(self, a: &ArrayD<T>) -> Result<ArrayD<T>> {
        crate::exec::cancel::checkpoint()?;
        let op = self.name();
        Ok(match self.kind {
            LinalgKind::QrFactors => k::qr_packed(k::matrix(a, op)?)?.into_dyn(),
            LinalgKind::QrQ | LinalgKind::QrR => {
                let m = k::matrix(a, op)?;
                let n = m.ncols();
                let rows = m
                    .nrows()
                    .checked_sub(n)
                    .ok_or_else(|| Error::ShapeMismatch {
                        op,
                        reason: format!("a packed block of shape {:?}", a.shape()),
                    })?;
                let part = if self.kind == LinalgKind::QrQ {
                    m.slice_axis(Axis(0), (0..rows).into())
                } else {
                    m.slice_axis(Axis(0), (rows..rows + n).into())
                };
                part.to_owned().into_dyn()
            }
            LinalgKind::SvdU => k::svd(k::matrix(a, op)?)?.0.into_dyn(),
            LinalgKind::SvdS => k::svd(k::matrix(a, op)?)?.1.into_dyn(),
            LinalgKind::SvdVt => k::svd(k::matrix(a, op)?)?.2.into_dyn(),
            LinalgKind::Cholesky => k::cholesky(k::matrix(a, op)?)?.into_dyn(),
            LinalgKind::Inv => k::inv(k::matrix(a, op)?)?.into_dyn(),
            LinalgKind::Det => scalar(k::det(k::matrix(a, op)?)?),
            LinalgKind::SlogdetSign => scalar(k::slogdet(k::matrix(a, op)?)?.0),
            LinalgKind::SlogdetLogabs => scalar(k::slogdet(k::matrix(a, op)?)?.1),
            LinalgKind::EighValues => k::eigh(k::matrix(a, op)?)?.0.into_dyn(),
            LinalgKind::EighVectors => k::eigh(k::matrix(a, op)?)?.1.into_dyn(),
            LinalgKind::BlockProduct | LinalgKind::Solve | LinalgKind::SolveUpper => {
                return Err(Error::InvalidArgument {
                    op,
                    reason: "reads two input blocks, got one".into(),
                });
            }
        })
    }

    fn two<T: k::LinalgFloat>(self, a: &ArrayD<T>, b: &ArrayD<T>) -> Result<ArrayD<T>> {
        crate::exec::cancel::checkpoint()?;
        let op = self.name();
        match self.kind {
            LinalgKind::BlockProduct => {
                let (x, y) = (k::matrix(a, op)?, k::matrix(b, op)?);
                if x.ncols() != y.nrows() {
                    return Err(Error::ShapeMismatch {
                        op,
                        reason: format!("blocks of shapes {:?} and {:?}", a.shape(), b.shape()),
                    });
                }
                let mut out = ndarray::Array2::<T>::zeros((x.nrows(), y.ncols()));
                crate::ops::matmul::gemm_into(x, y, out.view_mut());
                Ok(out.into_dyn())
            }
            LinalgKind::Solve => k::solve(k::matrix(a, op)?, b.view()),
            LinalgKind::SolveUpper => k::solve_upper(k::matrix(a, op)?, b.view()),
            _ => Err(Error::InvalidArgument {
                op,
                reason: "reads one input block, got two".into(),
            }),
        }
    }
}

fn scalar<T: Clone>(v: T) -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[]), v)
}
