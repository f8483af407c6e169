//! Elementwise operations: numpy broadcasting with chunk alignment, dtype promotion, and the operator
//! overloads. Every operation becomes one blockwise layer whose program reads its array operands and
//! holds scalars as constants; the optimizer later fuses chains of them.
//!
//! Operators return an [`Array`], never a `Result`, so formulas read as formulas:
//! `(&x - &m) / &s * 2.0 + 1.0`. Operands can still be incompatible (shapes that do not broadcast,
//! dtypes an op rejects): the operator then returns an array that carries the error with the line
//! the operator is on, and the next call that returns a `Result` (a method, `compute`) reports it —
//! errors are deferred to the point of use, as lazy expression libraries such as Polars do. A method's
//! `Result<Array>` is an operand too, so `x.mean_axis(0) - &x` needs no `?` either.

use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Rem, Sub};

use super::Array;
use crate::error::{Error, Result};
use crate::meta::{Chunks, DType, Scalar};
use crate::ops::elementwise::{binary_table, unary_table};
use crate::ops::{BinaryFn, CmpFn, ElemFunc, Instr, Leaf, LeafKind, Op, Program, UnaryFn};

/// An operand of an elementwise operation.
#[derive(Clone, Debug)]
pub enum Operand {
    /// An array operand.
    Array(Array),
    /// A scalar operand, weakly typed (it takes the array's type, numpy 2's rule).
    Scalar(Scalar),
}

impl From<&Array> for Operand {
    fn from(a: &Array) -> Self {
        Operand::Array(a.clone())
    }
}
impl From<Array> for Operand {
    fn from(a: Array) -> Self {
        Operand::Array(a)
    }
}
impl<T: Into<Scalar>> From<T> for Operand {
    fn from(s: T) -> Self {
        Operand::Scalar(s.into())
    }
}

/// The shape that arrays of `shapes` broadcast to (numpy's `broadcast_shapes`), or the error naming
/// the two shapes that conflict.
///
/// ```
/// assert_eq!(tessera::broadcast_shapes(&[&[3, 1], &[4]])?, vec![3, 4]);
/// assert!(tessera::broadcast_shapes(&[&[3], &[4]]).is_err());
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    // Per axis, the shape that set its length (the one a conflict is with).
    let mut owner: Vec<Option<&[usize]>> = vec![None; rank];
    for s in shapes {
        let pad = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[pad + i];
            if *o == 1 {
                if d != 1 {
                    *o = d;
                    owner[pad + i] = Some(s);
                }
            } else if d != 1 && d != *o {
                let left = owner[pad + i].expect("an axis longer than 1 has an owner");
                return Err(Error::Broadcast {
                    left: left.to_vec(),
                    right: s.to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// The common refinement of several chunkings of one axis: every boundary of any of them.
fn refine(axes: &[&[usize]]) -> Vec<usize> {
    if axes.len() == 1 || axes.windows(2).all(|w| w[0] == w[1]) {
        return axes[0].to_vec();
    }
    let mut bounds: Vec<usize> = Vec::new();
    for a in axes {
        let mut acc = 0;
        for &c in a.iter() {
            acc += c;
            bounds.push(acc);
        }
    }
    bounds.sort_unstable();
    bounds.dedup();
    let mut prev = 0;
    bounds
        .into_iter()
        .map(|b| {
            let s = b - prev;
            prev = b;
            s
        })
        .filter(|&s| s > 0)
        .collect()
}

/// Broadcasts arrays against each other and gives every one chunks that line up with the result's
/// (rechunking where they differ). Returns the aligned arrays and the result's chunk grid.
pub(crate) fn align(arrays: &[&Array]) -> Result<(Vec<Array>, Chunks)> {
    let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape()).collect();
    let out = broadcast_shapes(&shapes)?;
    let rank = out.len();
    let mut sizes = Vec::with_capacity(rank);
    for (axis, &n) in out.iter().enumerate() {
        let candidates: Vec<&[usize]> = arrays
            .iter()
            .filter_map(|a| {
                let pad = rank - a.ndim();
                (axis >= pad && a.shape()[axis - pad] == n).then(|| a.chunks().axis(axis - pad))
            })
            .collect();
        sizes.push(if candidates.is_empty() {
            vec![n]
        } else {
            refine(&candidates)
        });
    }
    let chunks = Chunks::from_sizes(sizes);
    let aligned = arrays
        .iter()
        .map(|a| {
            let pad = rank - a.ndim();
            let want: Vec<Vec<usize>> = (0..a.ndim())
                .map(|i| {
                    if a.shape()[i] == out[pad + i] {
                        chunks.axis(pad + i).to_vec()
                    } else {
                        a.chunks().axis(i).to_vec()
                    }
                })
                .collect();
            if a.chunks().sizes() == want.as_slice() {
                Ok((*a).clone())
            } else {
                a.rechunk(want)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((aligned, chunks))
}

/// Builds a blockwise program over aligned inputs.
pub(crate) struct ProgramBuilder {
    domain: Chunks,
    inputs: Vec<Array>,
    leaves: Vec<Leaf>,
    instrs: Vec<Instr>,
}

impl ProgramBuilder {
    pub(crate) fn new(domain: Chunks) -> Self {
        ProgramBuilder {
            domain,
            inputs: Vec::new(),
            leaves: Vec::new(),
            instrs: Vec::new(),
        }
    }

    fn value_dtype(&self, v: u32) -> DType {
        let v = v as usize;
        if v < self.leaves.len() {
            self.leaves[v].dtype
        } else {
            self.instrs[v - self.leaves.len()].dtype
        }
    }

    /// The leaf reading `a` (aligned with the domain); one leaf per distinct input.
    pub(crate) fn input(&mut self, a: &Array) -> u32 {
        assert!(
            self.instrs.is_empty(),
            "leaves must be added before instructions (values are numbered leaves first)"
        );
        if let Some(k) = self.inputs.iter().position(|x| x.id() == a.id()) {
            return self
                .leaves
                .iter()
                .position(|l| l.kind == LeafKind::Input(k))
                .expect("every input has a leaf") as u32;
        }
        self.inputs.push(a.clone());
        let rank = self.domain.ndim();
        let mut shape = vec![1; rank - a.ndim()];
        shape.extend_from_slice(a.shape());
        self.leaves.push(Leaf {
            kind: LeafKind::Input(self.inputs.len() - 1),
            shape,
            rank: a.ndim(),
            dtype: a.dtype(),
            axes: Vec::new(),
            window: None,
        });
        (self.leaves.len() - 1) as u32
    }

    pub(crate) fn constant(&mut self, s: Scalar) -> u32 {
        assert!(
            self.instrs.is_empty(),
            "leaves must be added before instructions (values are numbered leaves first)"
        );
        self.leaves.push(Leaf {
            kind: LeafKind::Full(s),
            shape: vec![1; self.domain.ndim()],
            rank: 0,
            dtype: s.dtype(),
            axes: Vec::new(),
            window: None,
        });
        (self.leaves.len() - 1) as u32
    }

    /// The leaf of an operand, in `dtype` for a scalar; an array's leaf keeps the array's dtype (cast
    /// it afterwards, once every leaf is added).
    fn operand_leaf(&mut self, o: &Operand, dtype: DType) -> u32 {
        match o {
            Operand::Array(a) => self.input(a),
            Operand::Scalar(s) => self.constant(s.cast(dtype)),
        }
    }

    pub(crate) fn cast(&mut self, v: u32, dtype: DType) -> u32 {
        if self.value_dtype(v) == dtype {
            return v;
        }
        self.push(ElemFunc::Cast, &[v], dtype)
    }

    pub(crate) fn push(&mut self, func: ElemFunc, args: &[u32], dtype: DType) -> u32 {
        self.instrs.push(Instr {
            func,
            args: args.iter().copied().collect(),
            dtype,
        });
        (self.leaves.len() + self.instrs.len() - 1) as u32
    }

    pub(crate) fn finish(
        self,
        output: u32,
        reduce: Option<crate::ops::ReduceSink>,
    ) -> Result<Array> {
        let program = Program {
            domain: self.domain,
            leaves: self.leaves,
            instrs: self.instrs,
            output,
            reduce,
        };
        Array::from_op(Op::Blockwise(Box::new(program)), self.inputs, None)
    }
}

/// Applies `func` to operands, computing in `arg_dtype` and giving `out_dtype`.
fn apply(
    func: ElemFunc,
    operands: &[Operand],
    arg_dtypes: &[DType],
    out_dtype: DType,
) -> Result<Array> {
    let arrays: Vec<&Array> = operands
        .iter()
        .filter_map(|o| match o {
            Operand::Array(a) => Some(a),
            Operand::Scalar(_) => None,
        })
        .collect();
    for a in &arrays {
        a.usable()?;
    }
    if arrays.is_empty() {
        return Err(Error::InvalidArgument {
            op: func.name(),
            reason: "at least one operand must be an array".into(),
        });
    }
    let (aligned, chunks) = align(&arrays)?;
    let mut aligned = aligned.into_iter();
    let operands: Vec<Operand> = operands
        .iter()
        .map(|o| match o {
            Operand::Array(_) => Operand::Array(aligned.next().expect("one per array")),
            s => s.clone(),
        })
        .collect();
    let mut b = ProgramBuilder::new(chunks.clone());
    // Every leaf first, then the casts: instructions are numbered after all leaves, so a leaf added
    // after a cast would shift the cast's value number onto the new leaf.
    let leaves: Vec<u32> = operands
        .iter()
        .zip(arg_dtypes)
        .map(|(o, &d)| b.operand_leaf(o, d))
        .collect();
    let args: Vec<u32> = leaves
        .into_iter()
        .zip(arg_dtypes)
        .map(|(v, &d)| b.cast(v, d))
        .collect();
    let out = b.push(func, &args, out_dtype);
    b.finish(out, None)
}

fn operand_dtype(o: &Operand) -> DType {
    match o {
        Operand::Array(a) => a.dtype(),
        Operand::Scalar(s) => s.dtype(),
    }
}

/// numpy's result type for operands, with scalars weak (they take the arrays' type unless of a
/// higher kind).
fn promote(operands: &[Operand]) -> DType {
    let arrays: Vec<DType> = operands
        .iter()
        .filter_map(|o| match o {
            Operand::Array(a) => Some(a.dtype()),
            _ => None,
        })
        .collect();
    let mut d = arrays
        .iter()
        .copied()
        .reduce(DType::promote)
        .unwrap_or_else(|| operand_dtype(&operands[0]));
    for o in operands {
        if let Operand::Scalar(s) = o {
            d = DType::promote_scalar(d, s);
        }
    }
    d
}

/// numpy 2 refuses a Python int operand that the integer type an operation computes in cannot
/// hold (`uint8_array + 300` raises `OverflowError`) rather than wrapping it.
fn check_scalars(operands: &[Operand], dtype: DType) -> Result<()> {
    operands.iter().try_for_each(|o| match o {
        Operand::Scalar(s) => s.check_fits(dtype),
        Operand::Array(_) => Ok(()),
    })
}

pub(crate) fn binary(f: BinaryFn, a: Operand, b: Operand) -> Result<Array> {
    let (arg, out) = f.signature(promote(&[a.clone(), b.clone()]))?;
    check_scalars(&[a.clone(), b.clone()], arg)?;
    apply(ElemFunc::Binary(f), &[a, b], &[arg, arg], out)
}

pub(crate) fn compare(f: CmpFn, a: Operand, b: Operand) -> Result<Array> {
    let arg = promote(&[a.clone(), b.clone()]);
    f.check_dtype(arg)?;
    if let Some(r) = compare_out_of_range(f, &a, &b, arg)? {
        return Ok(r);
    }
    apply(ElemFunc::Compare(f), &[a, b], &[arg, arg], DType::Bool)
}

/// numpy 2 compares an integer array with a Python int outside the array type's range exactly,
/// without an error: `uint8_array < 300` is all true, `uint8_array == -1` all false. Every element
/// is then on the same side of the scalar, so the result is a constant of the array's chunks.
fn compare_out_of_range(f: CmpFn, a: &Operand, b: &Operand, arg: DType) -> Result<Option<Array>> {
    let (x, s, f) = match (a, b) {
        (Operand::Array(x), Operand::Scalar(s)) => (x, s, f),
        // `scalar op array` is `array op' scalar` with the comparison mirrored.
        (Operand::Scalar(s), Operand::Array(x)) => (
            x,
            s,
            match f {
                CmpFn::Lt => CmpFn::Gt,
                CmpFn::Le => CmpFn::Ge,
                CmpFn::Gt => CmpFn::Lt,
                CmpFn::Ge => CmpFn::Le,
                eq_or_ne => eq_or_ne,
            },
        ),
        _ => return Ok(None),
    };
    if s.check_fits(arg).is_ok() {
        return Ok(None);
    }
    let above = s.as_i128() > arg.int_range().map(|(_, hi)| hi);
    let truth = match f {
        CmpFn::Eq => false,
        CmpFn::Ne => true,
        CmpFn::Lt | CmpFn::Le => above,
        CmpFn::Gt | CmpFn::Ge => !above,
    };
    // Integers and bools are always finite: an all-true array of `x`'s chunks.
    let all = unary(UnaryFn::IsFinite, x)?;
    Ok(Some(if truth {
        all
    } else {
        unary(UnaryFn::LogicalNot, &all)?
    }))
}

pub(crate) fn unary(f: UnaryFn, a: &Array) -> Result<Array> {
    let (arg, out) = f.signature(a.dtype())?;
    apply(
        ElemFunc::Unary(f),
        &[Operand::Array(a.clone())],
        &[arg],
        out,
    )
}

pub(crate) fn cast(a: &Array, dtype: DType) -> Result<Array> {
    apply(
        ElemFunc::Cast,
        &[Operand::Array(a.clone())],
        &[a.dtype()],
        dtype,
    )
}

/// `where(cond, a, b)`: elements of `a` where `cond` is true, else of `b` (numpy's `where`).
///
/// ```
/// let x = tessera::arange(0i64, 6, 1, [4]).unwrap();
/// let y = tessera::where_(x.lt(3).unwrap(), &x, 0).unwrap();
/// assert_eq!(y.compute::<i64>().unwrap().as_slice().unwrap(), &[0, 1, 2, 0, 0, 0]);
/// ```
pub fn where_(
    cond: impl Into<Operand>,
    a: impl Into<Operand>,
    b: impl Into<Operand>,
) -> Result<Array> {
    let (c, a, b) = (cond.into(), a.into(), b.into());
    let d = promote(&[a.clone(), b.clone()]);
    // numpy 2 wraps an out-of-range Python int here (a quirk); tessera refuses it as arithmetic
    // does.
    check_scalars(&[a.clone(), b.clone()], d)?;
    apply(ElemFunc::Where, &[c, a, b], &[DType::Bool, d, d], d)
}

/// `Array` methods for the rows of the function tables that name one (`-` marks an operator).
macro_rules! function_methods {
    (($enum:ident)
     $($(#[$doc:meta])* $v:ident = $code:literal, $name:literal, $typing:ident, $method:tt;)*) => {
        $(function_methods!(@one $enum, $v, $method, $(#[$doc])*);)*
    };
    (@one $enum:ident, $v:ident, -, $(#[$doc:meta])*) => {};
    (@one UnaryFn, $v:ident, $method:ident, $(#[$doc:meta])*) => {
        impl Array {
            $(#[$doc])*
            pub fn $method(&self) -> Result<Array> {
                unary(UnaryFn::$v, self)
            }
        }
    };
    (@one BinaryFn, $v:ident, $method:ident, $(#[$doc:meta])*) => {
        impl Array {
            $(#[$doc])*
            pub fn $method(&self, other: impl Into<Operand>) -> Result<Array> {
                binary(BinaryFn::$v, Operand::Array(self.clone()), other.into())
            }
        }
    };
}

unary_table!(function_methods(UnaryFn));
binary_table!(function_methods(BinaryFn));

macro_rules! compare_methods {
    ($($(#[$doc:meta])* $name:ident => $f:ident),* $(,)?) => {
        impl Array {
            $(
                $(#[$doc])*
                pub fn $name(&self, other: impl Into<Operand>) -> Result<Array> {
                    compare(CmpFn::$f, Operand::Array(self.clone()), other.into())
                }
            )*
        }
    };
}

compare_methods! {
    /// `self == other`, elementwise.
    eq => Eq,
    /// `self != other`, elementwise.
    ne => Ne,
    /// `self < other`, elementwise.
    lt => Lt,
    /// `self <= other`, elementwise.
    le => Le,
    /// `self > other`, elementwise.
    gt => Gt,
    /// `self >= other`, elementwise.
    ge => Ge,
}

impl Array {
    /// Limits values to `[lo, hi]`.
    ///
    /// ```
    /// let x = tessera::arange(0.0, 5.0, 1.0, [2]).unwrap().clip(1.0, 3.0).unwrap();
    /// assert_eq!(x.compute::<f64>().unwrap().as_slice().unwrap(), &[1.0, 1.0, 2.0, 3.0, 3.0]);
    /// ```
    pub fn clip(&self, lo: impl Into<Scalar>, hi: impl Into<Scalar>) -> Result<Array> {
        self.usable()?;
        let (lo, hi) = (lo.into(), hi.into());
        let d = DType::promote_scalar(DType::promote_scalar(self.dtype(), &lo), &hi);
        d.require_real("clip")?;
        // A bound beyond an integer type's range clips nothing on that side: numpy 2 accepts
        // `clip(uint8_array, -5, 300)`, which is `clip(uint8_array, 0, 255)`.
        let clamp = |s: Scalar| match (s.as_i128(), d.int_range()) {
            (Some(v), Some((lo, hi))) if s.check_fits(d).is_err() => {
                // The bound itself, which fits int64 or (above int64) uint64, cast to `d`.
                let edge = if v > hi { hi } else { lo };
                match i64::try_from(edge) {
                    Ok(e) => Scalar::I64(e).cast(d),
                    Err(_) => Scalar::U64(edge as u64).cast(d),
                }
            }
            _ => s,
        };
        let (lo, hi) = (clamp(lo), clamp(hi));
        apply(
            ElemFunc::Clip,
            &[
                Operand::Array(self.clone()),
                Operand::Scalar(lo),
                Operand::Scalar(hi),
            ],
            &[d, d, d],
            d,
        )
    }
}

/// numpy's free functions for the rows of the two-argument table that name a method: either side
/// may be a scalar (`power(2.0, &x)`, `arctan2(&y, 1.0)`), as in numpy.
macro_rules! binary_free_functions {
    (($enum:ident)
     $($(#[$doc:meta])* $v:ident = $code:literal, $name:literal, $typing:ident, $method:tt;)*) => {
        $(binary_free_functions!(@one $v, $method, $(#[$doc])*);)*
    };
    (@one $v:ident, -, $(#[$doc:meta])*) => {};
    (@one $v:ident, $method:ident, $(#[$doc:meta])*) => {
        $(#[$doc])*
        ///
        /// Either argument may be a scalar; at least one must be an array.
        pub fn $method(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
            binary(BinaryFn::$v, a.into(), b.into())
        }
    };
}

/// The free functions of the elementwise vocabulary, numpy style (`tessera::ufunc::power(2.0,
/// &x)`): every two-argument table function and the comparisons, with a scalar allowed on either
/// side.
pub mod ufunc {
    use super::{Array, BinaryFn, CmpFn, Operand, Result, binary, binary_table, compare};

    binary_table!(binary_free_functions(BinaryFn));

    macro_rules! compare_functions {
        ($($(#[$doc:meta])* $name:ident => $f:ident),* $(,)?) => {$(
            $(#[$doc])*
            pub fn $name(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
                compare(CmpFn::$f, a.into(), b.into())
            }
        )*};
    }

    compare_functions! {
        /// `a == b`, elementwise; either side may be a scalar.
        equal => Eq,
        /// `a != b`, elementwise; either side may be a scalar.
        not_equal => Ne,
        /// `a < b`, elementwise; either side may be a scalar (`less(0.5, &x)`).
        less => Lt,
        /// `a <= b`, elementwise; either side may be a scalar.
        less_equal => Le,
        /// `a > b`, elementwise; either side may be a scalar.
        greater => Gt,
        /// `a >= b`, elementwise; either side may be a scalar.
        greater_equal => Ge,
    }

    /// `a + b` (numpy's `add`); either side may be a scalar.
    pub fn add(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
        binary(BinaryFn::Add, a.into(), b.into())
    }
    /// `a - b` (numpy's `subtract`); either side may be a scalar.
    pub fn subtract(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
        binary(BinaryFn::Sub, a.into(), b.into())
    }
    /// `a * b` (numpy's `multiply`); either side may be a scalar.
    pub fn multiply(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
        binary(BinaryFn::Mul, a.into(), b.into())
    }
    /// `a / b` (numpy's `divide`, true division); either side may be a scalar.
    pub fn divide(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
        binary(BinaryFn::Div, a.into(), b.into())
    }
    /// `a % b` (numpy's `remainder`, the sign of the divisor); either side may be a scalar.
    pub fn remainder(a: impl Into<Operand>, b: impl Into<Operand>) -> Result<Array> {
        binary(BinaryFn::Rem, a.into(), b.into())
    }
}

impl Array {
    /// numpy's `remainder` (the `%` operator): the sign of the divisor.
    pub fn remainder(&self, other: impl Into<Operand>) -> Result<Array> {
        self.usable()?;
        binary(BinaryFn::Rem, Operand::Array(self.clone()), other.into())
    }

    /// Bitwise not on int64, logical not on bool (numpy's `invert`, the `!` operator).
    pub fn invert(&self) -> Result<Array> {
        self.usable()?;
        unary(UnaryFn::Not, self)
    }

    /// Rounds to `decimals` decimal places, half to even, as numpy's `around`: floats compute
    /// `round(x * 10^d) / 10^d` (or `round(x / 10^-d) * 10^-d` for negative `d`), exactly numpy's
    /// steps; integers are unchanged for `d >= 0` and round to a multiple of `10^-d` otherwise
    /// (through float64, exact below 2^53); bool is refused.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[1.2345, -2.5, 125.0]).into_dyn(), [2]).unwrap();
    /// let r = x.around(2).unwrap().compute::<f64>().unwrap();
    /// assert_eq!(r.as_slice().unwrap(), &[1.23, -2.5, 125.0]);
    /// let r = x.around(-1).unwrap().compute::<f64>().unwrap();
    /// assert_eq!(r.as_slice().unwrap(), &[0.0, -0.0, 120.0]);
    /// ```
    pub fn around(&self, decimals: i32) -> Result<Array> {
        self.usable()?;
        match self.dtype() {
            DType::Bool => Err(Error::UnsupportedDType {
                op: "around",
                dtype: DType::Bool,
            }),
            d if d.is_integer() && decimals >= 0 => Ok(self.clone()),
            d if d.is_integer() => self.astype(DType::F64)?.around(decimals)?.astype(d),
            d => {
                let factor = Scalar::F64(10f64.powi(decimals.abs())).cast(d);
                if decimals >= 0 {
                    ((self * factor).round()? / factor).astype(d)
                } else {
                    ((self / factor).round()? * factor).astype(d)
                }
            }
        }
    }
}

/// Implements a binary operator for every pairing of `Array`, `&Array`, `Result<Array>` and scalars.
/// Operators never fail: an invalid combination gives an array carrying the error and the caller's
/// location ([`Array::or_failed`]), reported by the next call that returns a `Result`.
macro_rules! binary_operator {
    ($trait:ident, $method:ident, $f:expr) => {
        binary_operator!(@pair $trait, $method, $f, &Array, &Array);
        binary_operator!(@pair $trait, $method, $f, &Array, Array);
        binary_operator!(@pair $trait, $method, $f, Array, &Array);
        binary_operator!(@pair $trait, $method, $f, Array, Array);
        binary_operator!(@fallible $trait, $method, $f, &Array);
        binary_operator!(@fallible $trait, $method, $f, Array);
        // One impl per kind of literal, so `&x * 2.0` and `&x * 2` infer; other types go through Scalar.
        binary_operator!(@scalar $trait, $method, $f, f64, i64, bool, num_complex::Complex64, Scalar);
    };
    (@pair $trait:ident, $method:ident, $f:expr, $lhs:ty, $rhs:ty) => {
        impl $trait<$rhs> for $lhs {
            type Output = Array;
            #[track_caller]
            fn $method(self, rhs: $rhs) -> Array {
                Array::or_failed(binary($f, self.into(), rhs.into()))
            }
        }
    };
    // A `Result<Array>` (a method's result) on either side: its error becomes the operator's.
    (@fallible $trait:ident, $method:ident, $f:expr, $other:ty) => {
        impl $trait<Result<Array>> for $other {
            type Output = Array;
            #[track_caller]
            fn $method(self, rhs: Result<Array>) -> Array {
                let lhs: Operand = self.into();
                Array::or_failed(rhs.and_then(|rhs| binary($f, lhs, rhs.into())))
            }
        }
        impl $trait<$other> for Result<Array> {
            type Output = Array;
            #[track_caller]
            fn $method(self, rhs: $other) -> Array {
                let rhs: Operand = rhs.into();
                Array::or_failed(self.and_then(|lhs| binary($f, lhs.into(), rhs)))
            }
        }
    };
    (@scalar $trait:ident, $method:ident, $f:expr, $($t:ty),*) => {$(
        binary_operator!(@pair $trait, $method, $f, &Array, $t);
        binary_operator!(@pair $trait, $method, $f, Array, $t);
        binary_operator!(@pair $trait, $method, $f, $t, &Array);
        binary_operator!(@pair $trait, $method, $f, $t, Array);
    )*};
}

binary_operator!(Add, add, BinaryFn::Add);
binary_operator!(Sub, sub, BinaryFn::Sub);
binary_operator!(Mul, mul, BinaryFn::Mul);
binary_operator!(Div, div, BinaryFn::Div);
binary_operator!(Rem, rem, BinaryFn::Rem);
binary_operator!(BitAnd, bitand, BinaryFn::And);
binary_operator!(BitOr, bitor, BinaryFn::Or);
binary_operator!(BitXor, bitxor, BinaryFn::Xor);

impl Neg for &Array {
    type Output = Array;
    #[track_caller]
    fn neg(self) -> Array {
        Array::or_failed(unary(UnaryFn::Neg, self))
    }
}
impl Neg for Array {
    type Output = Array;
    #[track_caller]
    fn neg(self) -> Array {
        Array::or_failed(unary(UnaryFn::Neg, &self))
    }
}
impl Not for &Array {
    type Output = Array;
    #[track_caller]
    fn not(self) -> Array {
        Array::or_failed(unary(UnaryFn::Not, self))
    }
}
impl Not for Array {
    type Output = Array;
    #[track_caller]
    fn not(self) -> Array {
        Array::or_failed(unary(UnaryFn::Not, &self))
    }
}
