//! `tessera::linalg`: numpy's and the Array API's linear algebra on chunked arrays.
//!
//! Products (`tensordot`, `einsum`, `matmul` with 1-d and batched operands, `outer`, `vdot`,
//! `vecdot`, `trace`, `cross`, `matrix_transpose`) are compositions of existing ops: a 2-d product
//! goes to the blocked [`Array::matmul`]; everything else lines the operands' axes up, multiplies
//! them with numpy broadcasting (chunks aligned by the elementwise builder) and sums the contracted
//! axes as a tree reduction.
//!
//! Factorizations follow dask: `qr` of a tall-and-skinny array chunked along rows only is TSQR (QR
//! of every row block, QR of the stacked `R` factors in one chunk, `Q = Q_block · Q_small` per
//! block); `svd` of such an array is TSQR then the SVD of the small `R`; a short-and-wide array
//! chunked along columns only goes through its transpose. `cholesky`, `solve`, `inv`, `det`,
//! `slogdet`, `eigh` and the SVD-based matrix norms work on a matrix held in one chunk: a matrix in
//! several chunks is rechunked to one first (so it must fit in memory). `lstsq` is QR then a
//! triangular solve.

use ndarray::SliceInfoElem;

use super::Array;
use super::reduction::ReduceOptions;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::reduce::normalize_axis;
use crate::ops::{LinalgKind, LinalgOp, Op};

fn shape_err(op: &'static str, reason: String) -> Error {
    Error::ShapeMismatch { op, reason }
}

fn linalg_op(kind: LinalgKind, inputs: Vec<Array>) -> Result<Array> {
    Array::from_op(Op::Linalg(LinalgOp { kind }), inputs, None)
}

/// The array in a float dtype: float32 and float64 stay, int64 and bool become float64 (numpy's
/// linalg computes in float).
fn as_float(a: &Array) -> Result<Array> {
    match a.dtype() {
        DType::F32 | DType::F64 => Ok(a.clone()),
        _ => a.astype(DType::F64),
    }
}

/// Two arrays in their common float dtype.
fn as_floats(a: &Array, b: &Array) -> Result<(Array, Array)> {
    let dtype = DType::promote(a.dtype(), b.dtype()).float_result();
    Ok((a.astype(dtype)?, b.astype(dtype)?))
}

fn require_2d(a: &Array, op: &'static str) -> Result<()> {
    if a.ndim() != 2 {
        return Err(shape_err(
            op,
            format!("takes a 2-d array, not one of shape {:?}", a.shape()),
        ));
    }
    Ok(())
}

fn require_square(a: &Array, op: &'static str) -> Result<()> {
    require_2d(a, op)?;
    if a.shape()[0] != a.shape()[1] {
        return Err(shape_err(
            op,
            format!("needs a square matrix, not one of shape {:?}", a.shape()),
        ));
    }
    Ok(())
}

/// The array in one chunk (rechunked if it has several), in a float dtype.
fn one_chunk(a: &Array) -> Result<Array> {
    let a = as_float(a)?;
    if a.chunks().num_chunks() == 1 {
        return Ok(a);
    }
    let shape: Vec<Vec<usize>> = a.shape().iter().map(|&s| vec![s]).collect();
    a.rechunk(shape)
}

// ---------------------------------------------------------------------------------------------
// products

/// How [`tensordot`] pairs axes: the last `n` axes of `a` with the first `n` of `b`, or explicit
/// lists (numpy's `axes=n` and `axes=(a_axes, b_axes)`).
#[derive(Clone, Debug, PartialEq)]
pub enum TensordotAxes {
    /// Contract the last `n` axes of `a` with the first `n` of `b`.
    Last(usize),
    /// Contract the listed axes of `a` with the listed axes of `b`, pairwise.
    Pairs(Vec<isize>, Vec<isize>),
}

impl From<usize> for TensordotAxes {
    fn from(n: usize) -> Self {
        TensordotAxes::Last(n)
    }
}

impl<const N: usize> From<([isize; N], [isize; N])> for TensordotAxes {
    fn from((a, b): ([isize; N], [isize; N])) -> Self {
        TensordotAxes::Pairs(a.to_vec(), b.to_vec())
    }
}

/// An operand of a contraction with one label per axis (no label repeated).
struct Labeled {
    array: Array,
    labels: Vec<u32>,
}

/// `sum over the labels not in out of the product of the operands`, each operand's axes named by
/// labels: the operands are permuted and expanded to one common axis order (output labels, then
/// summed ones), multiplied with broadcasting, and the summed axes reduced. Two 2-d operands with
/// one shared summed label and one free label each go to the blocked matmul instead.
fn contract(op: &'static str, operands: Vec<Labeled>, out: &[u32]) -> Result<Array> {
    // Each label's length, checked across operands (1 broadcasts, as numpy's einsum allows).
    let mut sizes: Vec<(u32, usize)> = Vec::new();
    for o in &operands {
        for (&l, &s) in o.labels.iter().zip(o.array.shape()) {
            match sizes.iter_mut().find(|(k, _)| *k == l) {
                Some((_, len)) if *len == s || s == 1 => {}
                Some((_, len)) if *len == 1 => *len = s,
                Some((_, len)) => {
                    return Err(shape_err(
                        op,
                        format!("an index has length {len} in one operand and {s} in another"),
                    ));
                }
                None => sizes.push((l, s)),
            }
        }
    }
    if let Some(l) = out.iter().find(|l| !sizes.iter().any(|(k, _)| k == *l)) {
        return Err(shape_err(
            op,
            format!("output index {} appears in no operand", label_name(*l)),
        ));
    }
    let summed: Vec<u32> = sizes
        .iter()
        .map(|(l, _)| *l)
        .filter(|l| !out.contains(l))
        .collect();
    if let Some(m) = matmul_shape(&operands, out, &summed)? {
        return Ok(m);
    }
    let order: Vec<u32> = out.iter().chain(&summed).copied().collect();
    let mut product: Option<Array> = None;
    for o in &operands {
        let mut axes: Vec<usize> = (0..o.labels.len()).collect();
        let pos = |l: u32| {
            order
                .iter()
                .position(|&k| k == l)
                .expect("every label is ordered")
        };
        axes.sort_by_key(|&a| pos(o.labels[a]));
        let mut a = o.array.permute_axes(&axes)?;
        for (p, l) in order.iter().enumerate() {
            if !o.labels.contains(l) {
                a = a.expand_dims(p as isize)?;
            }
        }
        product = Some(match product {
            None => a,
            Some(p) => &p * &a,
        });
    }
    let product = product.ok_or_else(|| Error::InvalidArgument {
        op,
        reason: "needs at least one operand".into(),
    })?;
    if summed.is_empty() {
        return Ok(product);
    }
    let axes = (out.len()..order.len()).map(|a| a as isize).collect();
    product.sum_with(&ReduceOptions {
        axes: Some(axes),
        ..ReduceOptions::default()
    })
}

/// The contraction as one blocked 2-d matmul, when it is one (`ik,kj->ij` up to naming and order).
fn matmul_shape(operands: &[Labeled], out: &[u32], summed: &[u32]) -> Result<Option<Array>> {
    let [a, b] = operands else { return Ok(None) };
    if a.labels.len() != 2 || b.labels.len() != 2 || summed.len() != 1 || out.len() != 2 {
        return Ok(None);
    }
    let k = summed[0];
    let (Some(ka), Some(kb)) = (
        a.labels.iter().position(|&l| l == k),
        b.labels.iter().position(|&l| l == k),
    ) else {
        return Ok(None);
    };
    let (fa, fb) = (a.labels[1 - ka], b.labels[1 - kb]);
    if fa == fb || a.array.shape()[ka] != b.array.shape()[kb] {
        return Ok(None);
    }
    let x = if ka == 1 {
        a.array.clone()
    } else {
        a.array.t()
    };
    let y = if kb == 0 {
        b.array.clone()
    } else {
        b.array.t()
    };
    let (x, y) = promote_pair(&x, &y)?;
    let m = x.matmul(&y)?;
    Ok(Some(if out == [fa, fb] { m } else { m.t() }))
}

/// Two operands of a product in their promoted dtype (matmul needs one).
fn promote_pair(a: &Array, b: &Array) -> Result<(Array, Array)> {
    let d = DType::promote(a.dtype(), b.dtype());
    // The block products exist for float64, float32 and int64: int32, uint8 and uint64 are refused
    // when the graph is built (cast to int64 or float64 first) rather than failing in a task.
    if matches!(d, DType::I32 | DType::U8 | DType::U64) {
        return Err(Error::UnsupportedDType {
            op: "matmul",
            dtype: d,
        });
    }
    Ok((a.astype(d)?, b.astype(d)?))
}

fn label_name(l: u32) -> String {
    char::from_u32(l).map_or_else(|| format!("#{l}"), |c| c.to_string())
}

/// numpy's `tensordot`: sums the products over the paired axes; the result has `a`'s free axes,
/// then `b`'s.
///
/// ```
/// use tessera::linalg::tensordot;
/// let a = tessera::arange(0.0, 24.0, 1.0, [24])?.reshape(&[2, 3, 4])?;
/// let b = tessera::arange(0.0, 12.0, 1.0, [12])?.reshape(&[4, 3])?;
/// let c = tensordot(&a, &b, ([1, 2], [1, 0]))?;      // axes as pairs
/// assert_eq!(c.shape(), &[2]);
/// let d = tensordot(&a, &b, 1)?;                      // the last axis of a with the first of b
/// assert_eq!(d.shape(), &[2, 3, 3]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn tensordot(a: &Array, b: &Array, axes: impl Into<TensordotAxes>) -> Result<Array> {
    let (a_axes, b_axes): (Vec<usize>, Vec<usize>) = match axes.into() {
        TensordotAxes::Last(n) => {
            if n > a.ndim() || n > b.ndim() {
                return Err(shape_err(
                    "tensordot",
                    format!(
                        "cannot sum over {n} axes of arrays of shapes {:?} and {:?}",
                        a.shape(),
                        b.shape()
                    ),
                ));
            }
            ((a.ndim() - n..a.ndim()).collect(), (0..n).collect())
        }
        TensordotAxes::Pairs(x, y) => {
            if x.len() != y.len() {
                return Err(shape_err(
                    "tensordot",
                    format!("pairs {} axes of a with {} axes of b", x.len(), y.len()),
                ));
            }
            let norm = |v: &[isize], nd: usize| {
                v.iter()
                    .map(|&ax| normalize_axis(ax, nd))
                    .collect::<Result<Vec<_>>>()
            };
            (norm(&x, a.ndim())?, norm(&y, b.ndim())?)
        }
    };
    for (&i, &j) in a_axes.iter().zip(&b_axes) {
        if a.shape()[i] != b.shape()[j] {
            return Err(shape_err(
                "tensordot",
                format!(
                    "axis {i} of a (shape {:?}) and axis {j} of b (shape {:?}) differ in length",
                    a.shape(),
                    b.shape()
                ),
            ));
        }
    }
    // Labels: a's axes 0.., b's free axes after them, b's summed axes sharing a's labels.
    let a_labels: Vec<u32> = (0..a.ndim() as u32).collect();
    let mut b_labels = vec![0u32; b.ndim()];
    let mut next = a.ndim() as u32;
    let mut out: Vec<u32> = (0..a.ndim())
        .filter(|i| !a_axes.contains(i))
        .map(|i| i as u32)
        .collect();
    for (j, l) in b_labels.iter_mut().enumerate() {
        match b_axes.iter().position(|&bj| bj == j) {
            Some(p) => *l = a_axes[p] as u32,
            None => {
                *l = next;
                out.push(next);
                next += 1;
            }
        }
    }
    let (a, b) = promote_pair(a, b)?;
    contract(
        "tensordot",
        vec![
            Labeled {
                array: a,
                labels: a_labels,
            },
            Labeled {
                array: b,
                labels: b_labels,
            },
        ],
        &out,
    )
}

/// numpy's `einsum` with explicit (`"ij,jk->ik"`) or implicit (`"ij,jk"`: the indices that appear
/// once, sorted) output. Covers matrix and batch products, outer products, transposes, sums over
/// axes, and the diagonal (`"ii->i"`) and trace (`"ii"`) of 2-d operands. Ellipses are not
/// supported.
///
/// ```
/// use tessera::linalg::einsum;
/// let a = tessera::arange(0.0, 6.0, 1.0, [6])?.reshape(&[2, 3])?;
/// let b = tessera::arange(0.0, 6.0, 1.0, [6])?.reshape(&[3, 2])?;
/// let c = einsum("ij,jk->ik", &[&a, &b])?.compute::<f64>()?;
/// assert_eq!(c, ndarray::arr2(&[[10.0, 13.0], [28.0, 40.0]]).into_dyn());
/// let t: f64 = einsum("ii", &[&tessera::from_array(c, [1, 1])?])?.compute_scalar()?;
/// assert_eq!(t, 50.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn einsum(subscripts: &str, operands: &[&Array]) -> Result<Array> {
    let bad = |reason: String| Error::InvalidArgument {
        op: "einsum",
        reason,
    };
    let s: String = subscripts.chars().filter(|c| !c.is_whitespace()).collect();
    if s.contains('.') {
        return Err(bad(format!("ellipses are not supported: {subscripts:?}")));
    }
    let (inputs, output) = match s.split_once("->") {
        Some((i, o)) => (i, Some(o)),
        None => (s.as_str(), None),
    };
    let terms: Vec<&str> = inputs.split(',').collect();
    if terms.len() != operands.len() {
        return Err(bad(format!(
            "{subscripts:?} names {} operands, {} were given",
            terms.len(),
            operands.len()
        )));
    }
    let mut labeled = Vec::new();
    for (term, &a) in terms.iter().zip(operands) {
        let labels: Vec<u32> = term.chars().map(|c| c as u32).collect();
        if let Some(c) = term.chars().find(|c| !c.is_ascii_alphabetic()) {
            return Err(bad(format!(
                "index {c:?} in {subscripts:?} is not a letter"
            )));
        }
        if labels.len() != a.ndim() {
            return Err(bad(format!(
                "term {term:?} has {} indices for an operand of shape {:?}",
                labels.len(),
                a.shape()
            )));
        }
        labeled.push(diagonal_of(a, labels, subscripts)?);
    }
    let out: Vec<u32> = match output {
        Some(o) => {
            let out: Vec<u32> = o.chars().map(|c| c as u32).collect();
            for (i, l) in out.iter().enumerate() {
                if out[..i].contains(l) {
                    return Err(bad(format!(
                        "output index {} is repeated in {subscripts:?}",
                        label_name(*l)
                    )));
                }
            }
            out
        }
        None => {
            let mut once: Vec<u32> = inputs
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .map(|c| c as u32)
                .filter(|&l| inputs.chars().filter(|&c| c as u32 == l).count() == 1)
                .collect();
            once.sort_unstable();
            once
        }
    };
    // A common dtype, as numpy's result type.
    let dtype = labeled
        .iter()
        .map(|l| l.array.dtype())
        .reduce(DType::promote)
        .ok_or_else(|| bad("needs at least one operand".into()))?;
    for l in &mut labeled {
        l.array = l.array.astype(dtype)?;
    }
    contract("einsum", labeled, &out)
}

/// An einsum operand with its repeated index (only `ii` of a 2-d operand) taken as the diagonal.
fn diagonal_of(a: &Array, labels: Vec<u32>, subscripts: &str) -> Result<Labeled> {
    let repeated = labels
        .iter()
        .enumerate()
        .any(|(i, l)| labels[..i].contains(l));
    if !repeated {
        return Ok(Labeled {
            array: a.clone(),
            labels,
        });
    }
    if labels.len() == 2 && a.shape()[0] == a.shape()[1] {
        return Ok(Labeled {
            array: a.diagonal(0)?,
            labels: vec![labels[0]],
        });
    }
    Err(Error::InvalidArgument {
        op: "einsum",
        reason: format!(
            "a repeated index within one operand is supported for the diagonal of a square 2-d operand only, {subscripts:?} repeats one on shape {:?}",
            a.shape()
        ),
    })
}

/// numpy's `matmul` (`@`): 2-d operands use the blocked product; a 1-d first operand is a row
/// vector and a 1-d second one a column vector (the added axis removed again); operands with more
/// axes are stacks of matrices whose leading axes broadcast.
///
/// ```
/// use tessera::linalg::matmul;
/// let a = tessera::ones::<f64>(&[5, 2, 3], [2, 2, 3])?;      // 5 matrices 2×3
/// let b = tessera::ones::<f64>(&[3, 4], [3, 2])?;            // broadcast over the 5
/// assert_eq!(matmul(&a, &b)?.shape(), &[5, 2, 4]);
/// let v = tessera::ones::<f64>(&[3], [3])?;
/// assert_eq!(matmul(&a, &v)?.shape(), &[5, 2]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn matmul(a: &Array, b: &Array) -> Result<Array> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(shape_err(
            "matmul",
            "operands must have at least one axis, use multiplication for scalars".into(),
        ));
    }
    let a2 = if a.ndim() == 1 {
        a.expand_dims(0)?
    } else {
        a.clone()
    };
    let b2 = if b.ndim() == 1 {
        b.expand_dims(1)?
    } else {
        b.clone()
    };
    let (ka, kb) = (a2.shape()[a2.ndim() - 1], b2.shape()[b2.ndim() - 2]);
    if ka != kb {
        return Err(shape_err(
            "matmul",
            format!(
                "inner dimensions differ: {:?} @ {:?} ({ka} != {kb})",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let product = if a2.ndim() == 2 && b2.ndim() == 2 {
        let (x, y) = promote_pair(&a2, &b2)?;
        x.matmul(&y)?
    } else {
        // Batch labels right-aligned; then i, k, j.
        let batch = a2.ndim().max(b2.ndim()) - 2;
        let (i, k, j) = (batch as u32, batch as u32 + 1, batch as u32 + 2);
        let labels = |nd: usize, last: [u32; 2]| -> Vec<u32> {
            let mut v: Vec<u32> = ((batch + 2 - nd) as u32..batch as u32).collect();
            v.extend(last);
            v
        };
        let mut out: Vec<u32> = (0..batch as u32).collect();
        out.extend([i, j]);
        let (x, y) = promote_pair(&a2, &b2)?;
        let la = labels(x.ndim(), [i, k]);
        let lb = labels(y.ndim(), [k, j]);
        contract(
            "matmul",
            vec![
                Labeled {
                    array: x,
                    labels: la,
                },
                Labeled {
                    array: y,
                    labels: lb,
                },
            ],
            &out,
        )?
    };
    let mut squeeze = Vec::new();
    if a.ndim() == 1 {
        squeeze.push(-2);
    }
    if b.ndim() == 1 {
        squeeze.push(-1);
    }
    if squeeze.is_empty() {
        Ok(product)
    } else {
        product.squeeze(Some(squeeze.as_slice()))
    }
}

/// numpy's `outer`: both operands flattened, `out[i, j] = a[i] * b[j]`.
///
/// ```
/// let a = tessera::arange(1i64, 4, 1, [2])?;
/// let o = tessera::linalg::outer(&a, &a)?.compute::<i64>()?;
/// assert_eq!(o, ndarray::arr2(&[[1, 2, 3], [2, 4, 6], [3, 6, 9]]).into_dyn());
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn outer(a: &Array, b: &Array) -> Result<Array> {
    (&a.ravel()?.expand_dims(1)? * &b.ravel()?).checked()
}

/// numpy's `vdot` for real arrays: the sum of the element products of both arrays flattened (they
/// must have the same size).
///
/// ```
/// let a = tessera::arange(0.0, 4.0, 1.0, [3])?;
/// let v: f64 = tessera::linalg::vdot(&a, &a)?.compute_scalar()?;
/// assert_eq!(v, 14.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn vdot(a: &Array, b: &Array) -> Result<Array> {
    if a.size() != b.size() {
        return Err(shape_err(
            "vdot",
            format!(
                "arrays of shapes {:?} and {:?} differ in size",
                a.shape(),
                b.shape()
            ),
        ));
    }
    if a.shape() == b.shape() {
        return (a * b).sum();
    }
    (&a.ravel()? * &b.ravel()?).sum()
}

/// The Array API's `vecdot`: the dot product along `axis` (usually -1) of two broadcast arrays.
///
/// ```
/// let a = tessera::ones::<f64>(&[4, 3], [2, 3])?;
/// let b = tessera::arange(0.0, 3.0, 1.0, [3])?;
/// let d = tessera::linalg::vecdot(&a, &b, -1)?.compute::<f64>()?;
/// assert_eq!(d.into_raw_vec_and_offset().0, vec![3.0; 4]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn vecdot(a: &Array, b: &Array, axis: isize) -> Result<Array> {
    let p = a * b;
    let ax = normalize_axis(axis, p.ndim())?;
    let (la, lb) = (
        a.shape().len() as isize + axis.min(0),
        b.shape().len() as isize + axis.min(0),
    );
    // Along the axis both operands must have the same length (numpy refuses broadcasting there).
    if axis < 0 && la >= 0 && lb >= 0 && a.shape()[la as usize] != b.shape()[lb as usize] {
        return Err(shape_err(
            "vecdot",
            format!(
                "axis {axis} has length {} in a and {} in b",
                a.shape()[la as usize],
                b.shape()[lb as usize]
            ),
        ));
    }
    p.sum_axis(ax as isize)
}

/// The Array API's `matrix_transpose`: swaps the last two axes.
pub fn matrix_transpose(a: &Array) -> Result<Array> {
    if a.ndim() < 2 {
        return Err(shape_err(
            "matrix_transpose",
            format!("needs at least 2 axes, got shape {:?}", a.shape()),
        ));
    }
    a.swapaxes(-1, -2)
}

/// numpy's `trace` of a 2-d array: the sum of diagonal `offset`.
///
/// ```
/// let x = tessera::arange(0i64, 9, 1, [9])?.reshape(&[3, 3])?;
/// assert_eq!(tessera::linalg::trace(&x, 0)?.compute_scalar::<i64>()?, 12);
/// assert_eq!(tessera::linalg::trace(&x, 1)?.compute_scalar::<i64>()?, 6);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn trace(a: &Array, offset: isize) -> Result<Array> {
    require_2d(a, "trace")?;
    a.diagonal(offset)?.sum()
}

/// numpy's `cross` of 3-vectors along `axis` of each operand (usually -1), the other axes
/// broadcast.
///
/// ```
/// let x = tessera::from_array(ndarray::arr1(&[1.0, 0.0, 0.0]).into_dyn(), [3])?;
/// let y = tessera::from_array(ndarray::arr1(&[0.0, 1.0, 0.0]).into_dyn(), [3])?;
/// let z = tessera::linalg::cross(&x, &y, -1)?.compute::<f64>()?;
/// assert_eq!(z.into_raw_vec_and_offset().0, vec![0.0, 0.0, 1.0]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn cross(a: &Array, b: &Array, axis: isize) -> Result<Array> {
    let component = |x: &Array, i: isize| -> Result<Array> {
        let ax = normalize_axis(axis, x.ndim())?;
        if x.shape()[ax] != 3 {
            return Err(shape_err(
                "cross",
                format!(
                    "needs vectors of length 3 along axis {axis}, got shape {:?}",
                    x.shape()
                ),
            ));
        }
        let info: Vec<SliceInfoElem> = (0..x.ndim())
            .map(|d| {
                if d == ax {
                    SliceInfoElem::Index(i)
                } else {
                    SliceInfoElem::Slice {
                        start: 0,
                        end: None,
                        step: 1,
                    }
                }
            })
            .collect();
        x.slice(info)
    };
    let (a0, a1, a2) = (component(a, 0)?, component(a, 1)?, component(a, 2)?);
    let (b0, b1, b2) = (component(b, 0)?, component(b, 1)?, component(b, 2)?);
    let c0 = &(&a1 * &b2) - &(&a2 * &b1);
    let c1 = &(&a2 * &b0) - &(&a0 * &b2);
    let c2 = &(&a0 * &b1) - &(&a1 * &b0);
    let out_axis = if axis < 0 {
        axis
    } else {
        normalize_axis(axis, a.ndim())? as isize
    };
    crate::stack(&[&c0, &c1, &c2], out_axis)
}

// ---------------------------------------------------------------------------------------------
// factorizations

/// The reduced QR factorization `a = Q · R` (numpy's `mode='reduced'`) of a tall-and-skinny 2-d
/// array chunked along rows only, by TSQR: every row block (at least as many rows as columns) is
/// factored, the stacked `R` factors are factored again in one chunk, and `Q` is each block's `Q`
/// times its slice of the second `Q`. `Q` keeps `a`'s row chunks; `R` is one `n × n` chunk.
///
/// ```
/// use tessera::linalg::qr;
/// let a = tessera::default_rng(1).random(&[1000, 20], [250, 20])?;
/// let (q, r) = qr(&a)?;
/// let (q, r, a) = (q.compute::<f64>()?, r.compute::<f64>()?, a.compute::<f64>()?);
/// let q = q.into_dimensionality::<ndarray::Ix2>().unwrap();
/// let r = r.into_dimensionality::<ndarray::Ix2>().unwrap();
/// let back = q.dot(&r);
/// assert!(back.iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-12));
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn qr(a: &Array) -> Result<(Array, Array)> {
    require_2d(a, "qr")?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    if a.numblocks()[1] != 1 {
        return Err(shape_err(
            "qr",
            format!(
                "needs an array chunked along rows only, this one of shape {:?} is chunked {} (rechunk its columns into one chunk, e.g. rechunk([rows, {n}]))",
                a.shape(),
                a.chunks()
            ),
        ));
    }
    if m < n || n == 0 {
        return Err(shape_err(
            "qr",
            format!(
                "needs a tall-and-skinny array (at least as many rows as columns, at least one column), not one of shape {:?}",
                a.shape()
            ),
        ));
    }
    let a = as_float(a)?;
    let packed = linalg_op(LinalgKind::QrFactors, vec![a.clone()])?;
    let q1 = linalg_op(LinalgKind::QrQ, vec![packed.clone()])?;
    let r1 = linalg_op(LinalgKind::QrR, vec![packed])?;
    let k = a.numblocks()[0];
    if k == 1 {
        return Ok((q1, r1));
    }
    let stacked = r1.rechunk(vec![vec![k * n], vec![n]])?;
    let packed2 = linalg_op(LinalgKind::QrFactors, vec![stacked])?;
    let q2 =
        linalg_op(LinalgKind::QrQ, vec![packed2.clone()])?.rechunk(vec![vec![n; k], vec![n]])?;
    let r = linalg_op(LinalgKind::QrR, vec![packed2])?;
    let q = linalg_op(LinalgKind::BlockProduct, vec![q1, q2])?;
    Ok((q, r))
}

/// The thin SVD `a = U · diag(s) · Vᵀ` (numpy's `full_matrices=False`), returned as `(U, s, Vᵀ)`
/// with `s` non-increasing. A matrix in one chunk is factored directly; a tall-and-skinny one
/// chunked along rows only through TSQR (`U = Q · U_R`); a short-and-wide one chunked along
/// columns only through its transpose. Other chunkings are refused (rechunk first).
///
/// ```
/// let a = tessera::default_rng(2).random(&[400, 10], [100, 10])?;
/// let (u, s, vt) = tessera::linalg::svd(&a)?;
/// assert_eq!((u.shape(), s.shape(), vt.shape()), (&[400, 10][..], &[10][..], &[10, 10][..]));
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn svd(a: &Array) -> Result<(Array, Array, Array)> {
    require_2d(a, "svd")?;
    let a = as_float(a)?;
    let parts = |x: &Array| -> Result<(Array, Array, Array)> {
        Ok((
            linalg_op(LinalgKind::SvdU, vec![x.clone()])?,
            linalg_op(LinalgKind::SvdS, vec![x.clone()])?,
            linalg_op(LinalgKind::SvdVt, vec![x.clone()])?,
        ))
    };
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let nb = a.numblocks();
    if nb == [1, 1] {
        return parts(&a);
    }
    if nb[1] == 1 && m >= n {
        let (q, r) = qr(&a)?;
        let (ur, s, vt) = parts(&r)?;
        return Ok((q.matmul(&ur)?, s, vt));
    }
    if nb[0] == 1 && n >= m {
        let (u, s, vt) = svd(&a.t())?;
        return Ok((vt.t(), s, u.t()));
    }
    Err(shape_err(
        "svd",
        format!(
            "takes a matrix in one chunk, a tall-and-skinny one chunked along rows only or a short-and-wide one chunked along columns only; this one of shape {:?} is chunked {} (rechunk it)",
            a.shape(),
            a.chunks()
        ),
    ))
}

/// The lower-triangular Cholesky factor `L` with `L · Lᵀ = a` of a symmetric positive-definite
/// matrix (its lower triangle is read). The matrix is rechunked to one chunk.
///
/// ```
/// let a = tessera::from_array(ndarray::arr2(&[[4.0, 2.0], [2.0, 3.0]]).into_dyn(), [1, 2])?;
/// let l = tessera::linalg::cholesky(&a)?.compute::<f64>()?;
/// assert_eq!(l[[0, 0]], 2.0);
/// assert_eq!(l[[0, 1]], 0.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn cholesky(a: &Array) -> Result<Array> {
    require_square(a, "cholesky")?;
    linalg_op(LinalgKind::Cholesky, vec![one_chunk(a)?])
}

/// The inverse of a square non-singular matrix (rechunked to one chunk).
pub fn inv(a: &Array) -> Result<Array> {
    require_square(a, "inv")?;
    linalg_op(LinalgKind::Inv, vec![one_chunk(a)?])
}

/// `x` with `a · x = b` for a square non-singular `a` and `b` a vector or a matrix of right-hand
/// sides (both rechunked to one chunk).
///
/// ```
/// let a = tessera::from_array(ndarray::arr2(&[[3.0, 1.0], [1.0, 2.0]]).into_dyn(), [2, 2])?;
/// let b = tessera::from_array(ndarray::arr1(&[9.0, 8.0]).into_dyn(), [2])?;
/// let x = tessera::linalg::solve(&a, &b)?.compute::<f64>()?;
/// assert!((x[0] - 2.0).abs() < 1e-12 && (x[1] - 3.0).abs() < 1e-12);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn solve(a: &Array, b: &Array) -> Result<Array> {
    require_square(a, "solve")?;
    let (a, b) = as_floats(a, b)?;
    linalg_op(LinalgKind::Solve, vec![one_chunk(&a)?, one_chunk(&b)?])
}

/// The determinant of a square matrix (rechunked to one chunk), 0-d.
pub fn det(a: &Array) -> Result<Array> {
    require_square(a, "det")?;
    linalg_op(LinalgKind::Det, vec![one_chunk(a)?])
}

/// `(sign, ln|det a|)` of a square matrix (rechunked to one chunk), each 0-d; a singular matrix
/// gives `(0, -inf)`.
pub fn slogdet(a: &Array) -> Result<(Array, Array)> {
    require_square(a, "slogdet")?;
    let a = one_chunk(a)?;
    Ok((
        linalg_op(LinalgKind::SlogdetSign, vec![a.clone()])?,
        linalg_op(LinalgKind::SlogdetLogabs, vec![a])?,
    ))
}

/// Eigenvalues (ascending) and eigenvectors (as columns) of a symmetric matrix, reading its lower
/// triangle (numpy's default `UPLO='L'`); rechunked to one chunk.
pub fn eigh(a: &Array) -> Result<(Array, Array)> {
    require_square(a, "eigh")?;
    let a = one_chunk(a)?;
    Ok((
        linalg_op(LinalgKind::EighValues, vec![a.clone()])?,
        linalg_op(LinalgKind::EighVectors, vec![a])?,
    ))
}

/// The least-squares solution `x` minimizing `‖a · x − b‖₂` for an `m × n` `a` of full column rank
/// with `m >= n` (numpy's `lstsq(a, b)[0]`), through QR: `x = R⁻¹ · Qᵀ b`. `a` must be in one
/// chunk or chunked along rows only (TSQR).
///
/// ```
/// let a = tessera::from_array(ndarray::arr2(&[[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]).into_dyn(), [3, 2])?;
/// let b = tessera::from_array(ndarray::arr1(&[1.0, 2.0, 3.0]).into_dyn(), [3])?;
/// let x = tessera::linalg::lstsq(&a, &b)?.compute::<f64>()?;
/// assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn lstsq(a: &Array, b: &Array) -> Result<Array> {
    require_2d(a, "lstsq")?;
    if !(1..=2).contains(&b.ndim()) || b.shape()[0] != a.shape()[0] {
        return Err(shape_err(
            "lstsq",
            format!(
                "needs a right-hand side with {} rows (a vector or a matrix), not one of shape {:?}",
                a.shape()[0],
                b.shape()
            ),
        ));
    }
    let (a, b) = as_floats(a, b)?;
    let (q, r) = qr(&a)?;
    let qtb = matmul(&q.t(), &b)?;
    linalg_op(LinalgKind::SolveUpper, vec![r, one_chunk(&qtb)?])
}

// ---------------------------------------------------------------------------------------------
// norms

/// A matrix or vector norm's `ord` (numpy's): `Fro`, `Nuc`, or a number (`1`, `2`, `-1`, `-2`,
/// `f64::INFINITY`, `f64::NEG_INFINITY`, `0` and any `p` for vectors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormOrd {
    /// The Frobenius norm (`ord="fro"`).
    Fro,
    /// The nuclear norm, the sum of singular values (`ord="nuc"`).
    Nuc,
    /// A numeric order: `p` for vector norms, `1`, `2`, `-1`, `-2` or ±infinity for matrix norms.
    P(f64),
}

impl From<f64> for NormOrd {
    fn from(p: f64) -> Self {
        NormOrd::P(p)
    }
}

fn reduce_opts(axes: Vec<isize>, keepdims: bool) -> ReduceOptions {
    ReduceOptions {
        axes: Some(axes),
        keepdims,
        ..ReduceOptions::default()
    }
}

/// The Array API's `vector_norm`: `(Σ |x|^ord)^(1/ord)` over `axes` (all if `None`), with `ord`
/// `inf` the largest `|x|`, `-inf` the smallest, and `0` the count of non-zeros.
///
/// ```
/// let x = tessera::from_array(ndarray::arr1(&[3.0, -4.0]).into_dyn(), [1])?;
/// let n: f64 = tessera::linalg::vector_norm(&x, 2.0, None, false)?.compute_scalar()?;
/// assert_eq!(n, 5.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn vector_norm(x: &Array, ord: f64, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    let x = as_float(x)?;
    let axes: Vec<isize> = match axes {
        Some(a) => a.to_vec(),
        None => (0..x.ndim() as isize).collect(),
    };
    let opts = reduce_opts(axes, keepdims);
    let abs = x.abs()?;
    if ord == f64::INFINITY {
        abs.max_with(&opts)
    } else if ord == f64::NEG_INFINITY {
        abs.min_with(&opts)
    } else if ord == 0.0 {
        x.ne(0.0)?.astype(x.dtype())?.sum_with(&opts)
    } else if ord == 1.0 {
        abs.sum_with(&opts)
    } else if ord == 2.0 {
        (&x * &x).sum_with(&opts)?.sqrt()
    } else {
        abs.powf(ord)?.sum_with(&opts)?.powf(1.0 / ord)
    }
}

/// The Array API's `matrix_norm` over the last two axes: `Fro`, `Nuc` (sum of singular values),
/// `1`/`-1` (largest/smallest column sum of `|x|`), `inf`/`-inf` (row sums), `2`/`-2`
/// (largest/smallest singular value). The SVD-based orders take a 2-d matrix.
///
/// ```
/// use tessera::linalg::{matrix_norm, NormOrd};
/// let x = tessera::from_array(ndarray::arr2(&[[1.0, -2.0], [3.0, 4.0]]).into_dyn(), [1, 2])?;
/// let one: f64 = matrix_norm(&x, NormOrd::P(1.0), false)?.compute_scalar()?;
/// assert_eq!(one, 6.0);
/// let inf: f64 = matrix_norm(&x, f64::INFINITY.into(), false)?.compute_scalar()?;
/// assert_eq!(inf, 7.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn matrix_norm(x: &Array, ord: NormOrd, keepdims: bool) -> Result<Array> {
    if x.ndim() < 2 {
        return Err(shape_err(
            "matrix_norm",
            format!("needs at least 2 axes, got shape {:?}", x.shape()),
        ));
    }
    let nd = x.ndim() as isize;
    matrix_norm_axes(x, ord, (nd - 2, nd - 1), keepdims)
}

fn matrix_norm_axes(
    x: &Array,
    ord: NormOrd,
    (row, col): (isize, isize),
    keepdims: bool,
) -> Result<Array> {
    let x = as_float(x)?;
    let (r, c) = (
        normalize_axis(row, x.ndim())? as isize,
        normalize_axis(col, x.ndim())? as isize,
    );
    if r == c {
        return Err(Error::InvalidArgument {
            op: "norm",
            reason: format!("a matrix norm needs two different axes, got ({row}, {col})"),
        });
    }
    let squeeze = |y: Array| -> Result<Array> {
        if keepdims {
            Ok(y)
        } else {
            y.squeeze(Some(&[r, c][..]))
        }
    };
    let abs = x.abs()?;
    let along = |sum_axis: isize, pick_axis: isize, largest: bool| -> Result<Array> {
        let s = abs.sum_with(&reduce_opts(vec![sum_axis], true))?;
        let o = reduce_opts(vec![pick_axis], true);
        squeeze(if largest {
            s.max_with(&o)?
        } else {
            s.min_with(&o)?
        })
    };
    match ord {
        NormOrd::Fro => (&x * &x)
            .sum_with(&reduce_opts(vec![r, c], keepdims))?
            .sqrt(),
        NormOrd::P(p) if p == 1.0 || p == -1.0 => along(r, c, p > 0.0),
        NormOrd::P(p) if p.is_infinite() => along(c, r, p > 0.0),
        NormOrd::Nuc | NormOrd::P(_) => {
            let p = match ord {
                NormOrd::P(p) => p,
                _ => 0.0,
            };
            if ord != NormOrd::Nuc && p != 2.0 && p != -2.0 {
                return Err(Error::InvalidArgument {
                    op: "norm",
                    reason: format!("invalid matrix norm order {p} (use fro, nuc, ±1, ±2, ±inf)"),
                });
            }
            if x.ndim() != 2 {
                return Err(shape_err(
                    "norm",
                    format!(
                        "the 2-norm and nuclear norm take a 2-d matrix, not shape {:?}",
                        x.shape()
                    ),
                ));
            }
            let m = if r == 1 { x.t() } else { x.clone() };
            let s = linalg_op(LinalgKind::SvdS, vec![one_chunk(&m)?])?;
            let v = match ord {
                NormOrd::Nuc => s.sum()?,
                _ if p > 0.0 => s.max()?,
                _ => s.min()?,
            };
            if keepdims { v.reshape(&[1, 1]) } else { Ok(v) }
        }
    }
}

/// numpy's `norm`: with `axes` `None`, the 2-norm of the flattened array when `ord` is `None`,
/// else the vector norm of a 1-d array or the matrix norm of a 2-d one; with one axis a vector
/// norm along it; with two axes a matrix norm over them.
///
/// ```
/// use tessera::linalg::{norm, NormOrd};
/// let x = tessera::from_array(ndarray::arr2(&[[3.0, 0.0], [0.0, 4.0]]).into_dyn(), [1, 1])?;
/// assert_eq!(norm(&x, None, None, false)?.compute_scalar::<f64>()?, 5.0);
/// assert_eq!(norm(&x, Some(NormOrd::P(2.0)), None, false)?.compute_scalar::<f64>()?, 4.0);
/// assert_eq!(norm(&x, Some(NormOrd::P(1.0)), Some(&[1]), false)?.compute::<f64>()?.sum(), 7.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn norm(
    x: &Array,
    ord: Option<NormOrd>,
    axes: Option<&[isize]>,
    keepdims: bool,
) -> Result<Array> {
    let vector = |ord: Option<NormOrd>, axes: Option<&[isize]>| match ord {
        None => vector_norm(x, 2.0, axes, keepdims),
        Some(NormOrd::P(p)) => vector_norm(x, p, axes, keepdims),
        Some(other) => Err(Error::InvalidArgument {
            op: "norm",
            reason: format!("{other:?} is not a vector norm order"),
        }),
    };
    match (axes, ord) {
        (None, None) => vector(None, None),
        (None, Some(o)) => match x.ndim() {
            1 => vector(Some(o), None),
            2 => matrix_norm_axes(x, o, (0, 1), keepdims),
            _ => Err(Error::InvalidArgument {
                op: "norm",
                reason: format!(
                    "an order without axes takes a 1-d or 2-d array, not shape {:?}",
                    x.shape()
                ),
            }),
        },
        (Some([a]), o) => vector(o, Some(&[*a])),
        (Some([a, b]), o) => matrix_norm_axes(x, o.unwrap_or(NormOrd::Fro), (*a, *b), keepdims),
        (Some(other), _) => Err(Error::InvalidArgument {
            op: "norm",
            reason: format!("takes one or two axes, not {other:?}"),
        }),
    }
}
