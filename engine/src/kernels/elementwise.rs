//! Elementwise kernels over tile buffers ([`Buf`]): one match on function and dtype per tile, then a
//! plain loop the compiler vectorizes (`sin`, `cos`, `exp`, `ln`, f64 `hypot` and complex128 `abs`
//! through the branch-free lane functions of [`super::math`], the same bits on every CPU path).

use super::math;
use crate::data::Element;
use crate::meta::{DType, Scalar};
use crate::ops::{BinaryFn, CmpFn, ElemFunc, UnaryFn};
use num_complex::Complex64;

/// A tile of values of one dtype.
#[derive(Clone, Debug)]
pub enum Buf {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    U8(Vec<u8>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    C128(Vec<Complex64>),
}

impl Buf {
    pub fn new(dtype: DType, len: usize) -> Buf {
        match dtype {
            DType::Bool => Buf::Bool(vec![false; len]),
            DType::I32 => Buf::I32(vec![0; len]),
            DType::U8 => Buf::U8(vec![0; len]),
            DType::U64 => Buf::U64(vec![0; len]),
            DType::I64 => Buf::I64(vec![0; len]),
            DType::F32 => Buf::F32(vec![0.0; len]),
            DType::F64 => Buf::F64(vec![0.0; len]),
            DType::C128 => Buf::C128(vec![Complex64::new(0.0, 0.0); len]),
        }
    }

    pub fn fill(&mut self, value: Scalar, n: usize) {
        match (self, value) {
            (Buf::Bool(b), Scalar::Bool(v)) => b[..n].fill(v),
            (Buf::I32(b), Scalar::I32(v)) => b[..n].fill(v),
            (Buf::U8(b), Scalar::U8(v)) => b[..n].fill(v),
            (Buf::U64(b), Scalar::U64(v)) => b[..n].fill(v),
            (Buf::I64(b), Scalar::I64(v)) => b[..n].fill(v),
            (Buf::F32(b), Scalar::F32(v)) => b[..n].fill(v),
            (Buf::F64(b), Scalar::F64(v)) => b[..n].fill(v),
            (Buf::C128(b), Scalar::C128(v)) => b[..n].fill(v),
            (buf, v) => {
                let d = buf.dtype();
                buf.fill(v.cast(d), n)
            }
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Buf::Bool(_) => DType::Bool,
            Buf::I32(_) => DType::I32,
            Buf::U8(_) => DType::U8,
            Buf::U64(_) => DType::U64,
            Buf::I64(_) => DType::I64,
            Buf::F32(_) => DType::F32,
            Buf::F64(_) => DType::F64,
            Buf::C128(_) => DType::C128,
        }
    }
}

/// numpy's floored remainder for floats: the result has the sign of the divisor.
#[inline]
fn rem_floor_f64(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

#[inline]
fn rem_floor_f32(a: f32, b: f32) -> f32 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

/// numpy's integer arithmetic for one integer type: wrapping, with numpy's answers where Rust's
/// operators would panic or differ (a zero divisor gives 0, as numpy does with its warning).
pub(crate) trait IntKernel:
    Copy
    + Ord
    + Eq
    + std::fmt::Debug
    + std::ops::Not<Output = Self>
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitOr<Output = Self>
    + std::ops::BitXor<Output = Self>
{
    const ZERO: Self;
    fn wadd(self, b: Self) -> Self;
    fn wsub(self, b: Self) -> Self;
    fn wmul(self, b: Self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    /// -1, 0 or 1 (0 or 1 for unsigned types).
    fn sign(self) -> Self;
    /// numpy's floored remainder (the sign of the divisor), 0 for a zero divisor.
    fn rem_floor(self, b: Self) -> Self;
    /// numpy's floor division: towards minus infinity, 0 for a zero divisor, `MIN // -1` wraps.
    fn floor_div(self, b: Self) -> Self;
    /// C's remainder (the sign of the dividend), 0 for a zero divisor.
    fn fmod(self, b: Self) -> Self;
    /// numpy's `left_shift`: a count outside `0..BITS` gives 0.
    fn shl(self, b: Self) -> Self;
    /// numpy's `right_shift` (arithmetic on signed types): a count outside `0..BITS` gives 0, or
    /// -1 for a negative signed value.
    fn shr(self, b: Self) -> Self;
    /// Integer power by squaring, wrapping. numpy raises for a negative exponent; here it gives
    /// `1 / a^-b` truncated towards zero (0 unless `a` is 1 or -1), since a kernel cannot fail on
    /// one element.
    fn pow(self, b: Self) -> Self;
}

macro_rules! int_kernel {
    ($t:ty) => {
        impl IntKernel for $t {
            const ZERO: Self = 0;
            #[inline]
            fn wadd(self, b: Self) -> Self {
                self.wrapping_add(b)
            }
            #[inline]
            fn wsub(self, b: Self) -> Self {
                self.wrapping_sub(b)
            }
            #[inline]
            fn wmul(self, b: Self) -> Self {
                self.wrapping_mul(b)
            }
            #[inline]
            fn wneg(self) -> Self {
                self.wrapping_neg()
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn wabs(self) -> Self {
                if self < 0 { self.wrapping_neg() } else { self }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn sign(self) -> Self {
                if self > 0 {
                    1
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn rem_floor(self, b: Self) -> Self {
                if b == 0 {
                    return 0;
                }
                let r = self.wrapping_rem(b);
                if r != 0 && ((r < 0) != (b < 0)) {
                    r.wrapping_add(b)
                } else {
                    r
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn floor_div(self, b: Self) -> Self {
                if b == 0 {
                    return 0;
                }
                let q = self.wrapping_div(b);
                if self.wrapping_rem(b) != 0 && ((self < 0) != (b < 0)) {
                    q.wrapping_sub(1)
                } else {
                    q
                }
            }
            #[inline]
            fn fmod(self, b: Self) -> Self {
                if b == 0 { 0 } else { self.wrapping_rem(b) }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn shl(self, b: Self) -> Self {
                if b >= 0 && (b as u64) < <$t>::BITS as u64 {
                    self << (b as u32)
                } else {
                    0
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn shr(self, b: Self) -> Self {
                if b >= 0 && (b as u64) < <$t>::BITS as u64 {
                    self >> (b as u32)
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn pow(self, b: Self) -> Self {
                if b < 0 {
                    let minus_one = (0 as $t).wrapping_sub(1);
                    return if self == 1 {
                        1
                    } else if self == minus_one {
                        if b.wrapping_rem(2) == 0 { 1 } else { minus_one }
                    } else {
                        0
                    };
                }
                let (mut base, mut e, mut acc) = (self, b as u64, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
        }
    };
}
int_kernel!(i64);
int_kernel!(i32);
int_kernel!(u8);
int_kernel!(u64);

/// NaN-propagating minimum and maximum, as numpy's `minimum`/`maximum`.
macro_rules! nan_min {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        if a.is_nan() || a < b {
            a
        } else if b.is_nan() {
            b
        } else {
            b
        }
    }};
}
macro_rules! nan_max {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        if a.is_nan() || a > b {
            a
        } else if b.is_nan() {
            b
        } else {
            b
        }
    }};
}
pub(crate) use {nan_max, nan_min};

/// numpy's float floor division (`npy_floor_divide`): through `fmod`, so that `a == (a // b) * b +
/// a % b` holds as closely as floats allow, with a zero divisor giving `a / b`.
macro_rules! floor_div_float {
    ($t:ty) => {
        |a: $t, b: $t| -> $t {
            if b == 0.0 {
                return a / b;
            }
            let m = a % b;
            let mut div = (a - m) / b;
            if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
                div -= 1.0;
            }
            if div == 0.0 {
                return (0.0 as $t).copysign(a / b);
            }
            let mut fl = div.floor();
            if div - fl > 0.5 {
                fl += 1.0;
            }
            fl
        }
    };
}

/// C's `nextafter` from the bit patterns: the neighbour of `a` in the direction of `b`.
macro_rules! next_after {
    ($t:ty, $bits:ty) => {
        |a: $t, b: $t| -> $t {
            if a.is_nan() || b.is_nan() {
                return a + b;
            }
            if a == b {
                return b;
            }
            if a == 0.0 {
                // The smallest subnormal, with the sign of the direction.
                return <$t>::from_bits(1).copysign(b - a);
            }
            let bits = a.to_bits();
            let away = (b > a) == (a > 0.0);
            let next: $bits = if away { bits + 1 } else { bits - 1 };
            <$t>::from_bits(next)
        }
    };
}

/// numpy's `sign`: NaN passes through, zeros of either sign give +0.
macro_rules! sign_float {
    ($v:expr) => {{
        let v = $v;
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else if v == 0.0 {
            0.0
        } else {
            v
        }
    }};
}

/// NaN-ignoring maximum and minimum (C's `fmax`/`fmin`, numpy's `fmax`/`fmin`).
macro_rules! fmax {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        if b.is_nan() || a >= b { a } else { b }
    }};
}
macro_rules! fmin {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        if b.is_nan() || a <= b { a } else { b }
    }};
}

/// The vectorized f64 tile functions of [`super::math`] on an f64 tile.
fn fast_f64(f: fn(&[f64], &mut [f64]), x: &[f64], o: &mut [f64]) {
    f(x, o)
}

/// The same on an f32 tile: computed in f64, rounded once.
fn fast_f32(f: fn(&[f64], &mut [f64]), x: &[f32], o: &mut [f32]) {
    math::via_f64(f, x, o)
}

macro_rules! unary_float {
    ($f:expr, $x:ident, $o:ident, $n:expr, $t:ty, $fast:ident) => {{
        let (x, o) = (&$x[..$n], &mut $o[..$n]);
        let map =
            |o: &mut [$t], g: &dyn Fn($t) -> $t| o.iter_mut().zip(x).for_each(|(o, &v)| *o = g(v));
        use std::f64::consts::PI;
        match $f {
            UnaryFn::Neg => o.iter_mut().zip(x).for_each(|(o, &v)| *o = -v),
            UnaryFn::Abs => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.abs()),
            UnaryFn::Sqrt => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.sqrt()),
            UnaryFn::Exp => $fast(math::exp_f64, x, o),
            UnaryFn::Ln => $fast(math::ln_f64, x, o),
            UnaryFn::Log1p => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.ln_1p()),
            UnaryFn::Log2 => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.log2()),
            UnaryFn::Log10 => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.log10()),
            UnaryFn::Sin => $fast(math::sin_f64, x, o),
            UnaryFn::Cos => $fast(math::cos_f64, x, o),
            UnaryFn::Tan => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.tan()),
            UnaryFn::Tanh => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.tanh()),
            UnaryFn::Floor => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.floor()),
            UnaryFn::Ceil => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.ceil()),
            UnaryFn::Round => o
                .iter_mut()
                .zip(x)
                .for_each(|(o, &v)| *o = v.round_ties_even()),
            UnaryFn::Square => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * v),
            UnaryFn::Arcsin => map(o, &|v| v.asin()),
            UnaryFn::Arccos => map(o, &|v| v.acos()),
            UnaryFn::Arctan => map(o, &|v| v.atan()),
            UnaryFn::Sinh => map(o, &|v| v.sinh()),
            UnaryFn::Cosh => map(o, &|v| v.cosh()),
            UnaryFn::Arcsinh => map(o, &|v| v.asinh()),
            UnaryFn::Arccosh => map(o, &|v| v.acosh()),
            UnaryFn::Arctanh => map(o, &|v| v.atanh()),
            UnaryFn::Expm1 => map(o, &|v| v.exp_m1()),
            UnaryFn::Exp2 => map(o, &|v| v.exp2()),
            UnaryFn::Cbrt => map(o, &|v| v.cbrt()),
            UnaryFn::Deg2rad => {
                let k = (PI / 180.0) as $t;
                o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * k)
            }
            UnaryFn::Rad2deg => {
                let k = (180.0 / PI) as $t;
                o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * k)
            }
            UnaryFn::Sign => o.iter_mut().zip(x).for_each(|(o, &v)| *o = sign_float!(v)),
            UnaryFn::Trunc => o.iter_mut().zip(x).for_each(|(o, &v)| *o = v.trunc()),
            UnaryFn::Reciprocal => o.iter_mut().zip(x).for_each(|(o, &v)| *o = 1.0 / v),
            UnaryFn::Real | UnaryFn::Conj | UnaryFn::Positive => o.copy_from_slice(x),
            UnaryFn::Imag => o.fill(0.0),
            // numpy's angle of a real: atan2(0, v), so pi for negatives (and -0.0), NaN for NaN.
            UnaryFn::Angle => map(o, &|v| (0.0 as $t).atan2(v)),
            UnaryFn::Not
            | UnaryFn::IsNan
            | UnaryFn::IsFinite
            | UnaryFn::IsInf
            | UnaryFn::Signbit
            | UnaryFn::LogicalNot => {
                unreachable!("typing gives {} a different signature", $f.name())
            }
        }
    }};
}

/// numpy's `logaddexp`: `ln(e^x + e^y)` as the larger argument plus `ln(1 + e^-|x - y|)`, so
/// that neither exponential overflows; equal arguments (infinities included) give `x + ln 2`.
macro_rules! logaddexp {
    ($x:expr, $y:expr, $t:ty) => {{
        let (x, y): ($t, $t) = ($x, $y);
        if x == y {
            x + std::f64::consts::LN_2 as $t
        } else {
            let d = x - y;
            if d > 0.0 {
                x + (-d).exp().ln_1p()
            } else if d <= 0.0 {
                y + d.exp().ln_1p()
            } else {
                d
            }
        }
    }};
}

macro_rules! float_binary {
    ($f:expr, $a:ident, $b:ident, $o:ident, $n:expr, $rem:ident, $t:ty, $bits:ty) => {{
        let (a, b, o) = (&$a[..$n], &$b[..$n], &mut $o[..$n]);
        let it = o.iter_mut().zip(a.iter().zip(b));
        match $f {
            BinaryFn::Add => it.for_each(|(o, (&x, &y))| *o = x + y),
            BinaryFn::Sub => it.for_each(|(o, (&x, &y))| *o = x - y),
            BinaryFn::Mul => it.for_each(|(o, (&x, &y))| *o = x * y),
            BinaryFn::Div => it.for_each(|(o, (&x, &y))| *o = x / y),
            BinaryFn::Rem => it.for_each(|(o, (&x, &y))| *o = $rem(x, y)),
            BinaryFn::Pow | BinaryFn::Power => it.for_each(|(o, (&x, &y))| *o = x.powf(y)),
            BinaryFn::Minimum => it.for_each(|(o, (&x, &y))| *o = nan_min!(x, y)),
            BinaryFn::Maximum => it.for_each(|(o, (&x, &y))| *o = nan_max!(x, y)),
            BinaryFn::Arctan2 => it.for_each(|(o, (&x, &y))| *o = x.atan2(y)),
            BinaryFn::Hypot => it.for_each(|(o, (&x, &y))| *o = x.hypot(y)),
            BinaryFn::FloorDivide => {
                let fd = floor_div_float!($t);
                it.for_each(|(o, (&x, &y))| *o = fd(x, y))
            }
            BinaryFn::Fmod => it.for_each(|(o, (&x, &y))| *o = x % y),
            BinaryFn::Copysign => it.for_each(|(o, (&x, &y))| *o = x.copysign(y)),
            BinaryFn::Nextafter => {
                let na = next_after!($t, $bits);
                it.for_each(|(o, (&x, &y))| *o = na(x, y))
            }
            BinaryFn::Fmax => it.for_each(|(o, (&x, &y))| *o = fmax!(x, y)),
            BinaryFn::Fmin => it.for_each(|(o, (&x, &y))| *o = fmin!(x, y)),
            BinaryFn::Logaddexp => it.for_each(|(o, (&x, &y))| *o = logaddexp!(x, y, $t)),
            BinaryFn::And
            | BinaryFn::Or
            | BinaryFn::Xor
            | BinaryFn::LogicalAnd
            | BinaryFn::LogicalOr
            | BinaryFn::LogicalXor
            | BinaryFn::LeftShift
            | BinaryFn::RightShift => {
                unreachable!("typing rejects {} on floats", $f.name())
            }
        }
    }};
}

macro_rules! compare {
    ($f:expr, $a:ident, $b:ident, $o:ident, $n:expr) => {{
        let (a, b, o) = (&$a[..$n], &$b[..$n], &mut $o[..$n]);
        let it = o.iter_mut().zip(a.iter().zip(b));
        match $f {
            CmpFn::Eq => it.for_each(|(o, (x, y))| *o = x == y),
            CmpFn::Ne => it.for_each(|(o, (x, y))| *o = x != y),
            CmpFn::Lt => it.for_each(|(o, (x, y))| *o = x < y),
            CmpFn::Le => it.for_each(|(o, (x, y))| *o = x <= y),
            CmpFn::Gt => it.for_each(|(o, (x, y))| *o = x > y),
            CmpFn::Ge => it.for_each(|(o, (x, y))| *o = x >= y),
        }
    }};
}

/// Converts the first `$n` values of any tile into `$o` with the [`Element`] conversion `$to`
/// (numpy's `astype`, see [`crate::ArrayData::cast`]).
macro_rules! cast_into {
    ($src:expr, $o:ident, $n:expr, $to:path) => {{
        let o = &mut $o[..$n];
        match $src {
            Buf::Bool(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::I32(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::U8(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::U64(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::I64(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::F32(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::F64(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
            Buf::C128(x) => o.iter_mut().zip(&x[..$n]).for_each(|(o, &v)| *o = $to(v)),
        }
    }};
}

/// Applies a macro to matching integer tiles of one dtype; other combinations evaluate `$else`.
macro_rules! int_arms {
    (($($buf:expr),*), ($($x:ident),*) => $body:expr, _ => $else:expr) => {
        match ($($buf),*) {
            ($(Buf::I64($x)),*) => $body,
            ($(Buf::I32($x)),*) => $body,
            ($(Buf::U8($x)),*) => $body,
            ($(Buf::U64($x)),*) => $body,
            #[allow(unreachable_patterns)]
            _ => $else,
        }
    };
}

/// Applies `func` to the first `n` elements of `args`, writing `out` (already of the result dtype).
pub fn apply(func: ElemFunc, args: &[&Buf], out: &mut Buf, n: usize) {
    match func {
        ElemFunc::Unary(f) => unary(f, args[0], out, n),
        ElemFunc::Binary(f) => binary(f, args[0], args[1], out, n),
        ElemFunc::Compare(f) => {
            let Buf::Bool(o) = out else {
                unreachable!("comparisons give bool")
            };
            match (args[0], args[1]) {
                (Buf::Bool(a), Buf::Bool(b)) => compare!(f, a, b, o, n),
                (Buf::I64(a), Buf::I64(b)) => compare!(f, a, b, o, n),
                (Buf::I32(a), Buf::I32(b)) => compare!(f, a, b, o, n),
                (Buf::U8(a), Buf::U8(b)) => compare!(f, a, b, o, n),
                (Buf::U64(a), Buf::U64(b)) => compare!(f, a, b, o, n),
                (Buf::F32(a), Buf::F32(b)) => compare!(f, a, b, o, n),
                (Buf::F64(a), Buf::F64(b)) => compare!(f, a, b, o, n),
                (Buf::C128(a), Buf::C128(b)) => {
                    let it = o[..n].iter_mut().zip(a[..n].iter().zip(&b[..n]));
                    match f {
                        CmpFn::Eq => it.for_each(|(o, (x, y))| *o = x == y),
                        CmpFn::Ne => it.for_each(|(o, (x, y))| *o = x != y),
                        _ => unreachable!("typing refuses {} on complex128", f.name()),
                    }
                }
                _ => unreachable!("comparison arguments share a dtype"),
            }
        }
        ElemFunc::Where => {
            let Buf::Bool(c) = args[0] else {
                unreachable!("where's condition is bool")
            };
            macro_rules! select {
                ($a:ident, $b:ident, $o:ident) => {
                    for i in 0..n {
                        $o[i] = if c[i] { $a[i] } else { $b[i] };
                    }
                };
            }
            match (args[1], args[2], out) {
                (Buf::Bool(a), Buf::Bool(b), Buf::Bool(o)) => select!(a, b, o),
                (Buf::I64(a), Buf::I64(b), Buf::I64(o)) => select!(a, b, o),
                (Buf::I32(a), Buf::I32(b), Buf::I32(o)) => select!(a, b, o),
                (Buf::U8(a), Buf::U8(b), Buf::U8(o)) => select!(a, b, o),
                (Buf::U64(a), Buf::U64(b), Buf::U64(o)) => select!(a, b, o),
                (Buf::F32(a), Buf::F32(b), Buf::F32(o)) => select!(a, b, o),
                (Buf::F64(a), Buf::F64(b), Buf::F64(o)) => select!(a, b, o),
                (Buf::C128(a), Buf::C128(b), Buf::C128(o)) => select!(a, b, o),
                _ => unreachable!("where's branches share the result dtype"),
            }
        }
        ElemFunc::Clip => {
            macro_rules! clip {
                ($x:ident, $lo:ident, $hi:ident, $o:ident, float) => {
                    for i in 0..n {
                        $o[i] = nan_min!(nan_max!($x[i], $lo[i]), $hi[i]);
                    }
                };
                ($x:ident, $lo:ident, $hi:ident, $o:ident, ord) => {
                    for i in 0..n {
                        $o[i] = $x[i].max($lo[i]).min($hi[i]);
                    }
                };
            }
            match (args[0], args[1], args[2], out) {
                (Buf::F64(x), Buf::F64(lo), Buf::F64(hi), Buf::F64(o)) => {
                    clip!(x, lo, hi, o, float)
                }
                (Buf::F32(x), Buf::F32(lo), Buf::F32(hi), Buf::F32(o)) => {
                    clip!(x, lo, hi, o, float)
                }
                (Buf::I64(x), Buf::I64(lo), Buf::I64(hi), Buf::I64(o)) => clip!(x, lo, hi, o, ord),
                (Buf::I32(x), Buf::I32(lo), Buf::I32(hi), Buf::I32(o)) => clip!(x, lo, hi, o, ord),
                (Buf::U8(x), Buf::U8(lo), Buf::U8(hi), Buf::U8(o)) => clip!(x, lo, hi, o, ord),
                (Buf::U64(x), Buf::U64(lo), Buf::U64(hi), Buf::U64(o)) => clip!(x, lo, hi, o, ord),
                (Buf::Bool(x), Buf::Bool(lo), Buf::Bool(hi), Buf::Bool(o)) => {
                    clip!(x, lo, hi, o, ord)
                }
                _ => unreachable!("clip's arguments share the result dtype"),
            }
        }
        ElemFunc::Cast => match out {
            Buf::Bool(o) => cast_into!(args[0], o, n, Element::to_bool),
            Buf::I32(o) => cast_into!(args[0], o, n, Element::to_i32),
            Buf::U8(o) => cast_into!(args[0], o, n, Element::to_u8),
            Buf::U64(o) => cast_into!(args[0], o, n, Element::to_u64),
            Buf::I64(o) => cast_into!(args[0], o, n, Element::to_i64),
            Buf::F32(o) => cast_into!(args[0], o, n, Element::to_f32),
            Buf::F64(o) => cast_into!(args[0], o, n, Element::to_f64),
            Buf::C128(o) => cast_into!(args[0], o, n, Element::to_c128),
        },
    }
}

fn unary(f: UnaryFn, arg: &Buf, out: &mut Buf, n: usize) {
    match (arg, out) {
        (Buf::C128(x), Buf::C128(o)) => {
            let it = o[..n].iter_mut().zip(&x[..n]);
            match f {
                UnaryFn::Neg => it.for_each(|(o, &v)| *o = -v),
                UnaryFn::Conj => it.for_each(|(o, &v)| *o = v.conj()),
                UnaryFn::Sqrt => it.for_each(|(o, &v)| *o = v.sqrt()),
                UnaryFn::Exp => it.for_each(|(o, &v)| *o = v.exp()),
                UnaryFn::Ln => it.for_each(|(o, &v)| *o = v.ln()),
                UnaryFn::Sin => it.for_each(|(o, &v)| *o = v.sin()),
                UnaryFn::Cos => it.for_each(|(o, &v)| *o = v.cos()),
                UnaryFn::Tan => it.for_each(|(o, &v)| *o = v.tan()),
                UnaryFn::Sinh => it.for_each(|(o, &v)| *o = v.sinh()),
                UnaryFn::Cosh => it.for_each(|(o, &v)| *o = v.cosh()),
                UnaryFn::Tanh => it.for_each(|(o, &v)| *o = v.tanh()),
                UnaryFn::Square => it.for_each(|(o, &v)| *o = v * v),
                UnaryFn::Positive => it.for_each(|(o, &v)| *o = v),
                // Smith's division, as numpy's: no overflow in |v|² for large parts.
                UnaryFn::Reciprocal => it.for_each(|(o, &v)| {
                    *o = if v.re.abs() >= v.im.abs() {
                        let (r, den) = (v.im / v.re, v.re + v.im * (v.im / v.re));
                        Complex64::new(1.0 / den, -r / den)
                    } else {
                        let (r, den) = (v.re / v.im, v.im + v.re * (v.re / v.im));
                        Complex64::new(r / den, -1.0 / den)
                    }
                }),
                _ => unreachable!("typing refuses {} on complex128", f.name()),
            }
        }
        // hypot of the parts, as numpy's absolute (no overflow for large parts), vectorized.
        (Buf::C128(x), Buf::F64(o)) if f == UnaryFn::Abs => math::abs_c128(&x[..n], &mut o[..n]),
        (Buf::C128(x), Buf::F64(o)) => {
            let it = o[..n].iter_mut().zip(&x[..n]);
            match f {
                UnaryFn::Real => it.for_each(|(o, &v)| *o = v.re),
                UnaryFn::Imag => it.for_each(|(o, &v)| *o = v.im),
                UnaryFn::Angle => it.for_each(|(o, &v)| *o = v.im.atan2(v.re)),
                _ => unreachable!("typing gives {} on complex128 another dtype", f.name()),
            }
        }
        (Buf::F64(x), Buf::F64(o)) => unary_float!(f, x, o, n, f64, fast_f64),
        (Buf::F32(x), Buf::F32(o)) => unary_float!(f, x, o, n, f32, fast_f32),
        (x, Buf::Bool(o)) if f.typing() == crate::ops::elementwise::Typing::Predicate => {
            predicate(f, x, &mut o[..n], n)
        }
        (x, o) if x.dtype().is_integer() => {
            int_arms!((x, o), (x, o) => unary_int(f, &x[..n], &mut o[..n]), _ => unreachable!("typing gives {} on {} an integer result", f.name(), x.dtype()))
        }
        (Buf::Bool(x), Buf::Bool(o)) => {
            let (x, o) = (&x[..n], &mut o[..n]);
            match f {
                UnaryFn::Not | UnaryFn::LogicalNot => {
                    o.iter_mut().zip(x).for_each(|(o, &v)| *o = !v)
                }
                UnaryFn::Abs | UnaryFn::Real | UnaryFn::Conj => o.copy_from_slice(x),
                UnaryFn::Imag => o.fill(false),
                _ => unreachable!("typing rejects {} on bool", f.name()),
            }
        }
        _ => unreachable!("typing gives {} matching buffers", f.name()),
    }
}

/// numpy's one-argument functions on an integer type that keep it (the float ones compute in
/// float64, as the typing says).
fn unary_int<T: IntKernel>(f: UnaryFn, x: &[T], o: &mut [T]) {
    let it = o.iter_mut().zip(x);
    match f {
        UnaryFn::Neg => it.for_each(|(o, &v)| *o = v.wneg()),
        UnaryFn::Abs => it.for_each(|(o, &v)| *o = v.wabs()),
        UnaryFn::Square => it.for_each(|(o, &v)| *o = v.wmul(v)),
        UnaryFn::Sign => it.for_each(|(o, &v)| *o = v.sign()),
        UnaryFn::Floor
        | UnaryFn::Ceil
        | UnaryFn::Round
        | UnaryFn::Trunc
        | UnaryFn::Real
        | UnaryFn::Conj
        | UnaryFn::Positive => o.copy_from_slice(x),
        UnaryFn::Imag => o.fill(T::ZERO),
        UnaryFn::Not => it.for_each(|(o, &v)| *o = !v),
        _ => unreachable!("typing sends {} on integers through float64", f.name()),
    }
}

/// The bool-valued functions of one value (isnan, isfinite, isinf, signbit), on any dtype.
fn predicate(f: UnaryFn, x: &Buf, o: &mut [bool], n: usize) {
    macro_rules! float {
        ($x:expr) => {{
            let it = o.iter_mut().zip(&$x[..n]);
            match f {
                UnaryFn::IsNan => it.for_each(|(o, &v)| *o = v.is_nan()),
                UnaryFn::IsFinite => it.for_each(|(o, &v)| *o = v.is_finite()),
                UnaryFn::IsInf => it.for_each(|(o, &v)| *o = v.is_infinite()),
                UnaryFn::Signbit => it.for_each(|(o, &v)| *o = v.is_sign_negative()),
                _ => unreachable!("{} is not a predicate", f.name()),
            }
        }};
    }
    match x {
        Buf::F64(x) => float!(x),
        Buf::F32(x) => float!(x),
        // Integers and bools are never NaN or infinite, always finite; only negative ints have
        // their sign bit set.
        Buf::I64(x) if f == UnaryFn::Signbit => {
            o.iter_mut().zip(&x[..n]).for_each(|(o, &v)| *o = v < 0)
        }
        Buf::I32(x) if f == UnaryFn::Signbit => {
            o.iter_mut().zip(&x[..n]).for_each(|(o, &v)| *o = v < 0)
        }
        Buf::I64(_) | Buf::I32(_) | Buf::U8(_) | Buf::U64(_) | Buf::Bool(_) => {
            o.fill(f == UnaryFn::IsFinite)
        }
        // numpy: NaN or infinite if either part is; finite if both are.
        Buf::C128(x) => {
            let it = o.iter_mut().zip(&x[..n]);
            match f {
                UnaryFn::IsNan => it.for_each(|(o, v)| *o = v.re.is_nan() || v.im.is_nan()),
                UnaryFn::IsFinite => {
                    it.for_each(|(o, v)| *o = v.re.is_finite() && v.im.is_finite())
                }
                UnaryFn::IsInf => {
                    it.for_each(|(o, v)| *o = v.re.is_infinite() || v.im.is_infinite())
                }
                _ => unreachable!("typing refuses {} on complex128", f.name()),
            }
        }
    }
}

fn binary(f: BinaryFn, a: &Buf, b: &Buf, out: &mut Buf, n: usize) {
    match (a, b, out) {
        (Buf::C128(a), Buf::C128(b), Buf::C128(o)) => {
            let it = o[..n].iter_mut().zip(a[..n].iter().zip(&b[..n]));
            match f {
                BinaryFn::Add => it.for_each(|(o, (&x, &y))| *o = x + y),
                BinaryFn::Sub => it.for_each(|(o, (&x, &y))| *o = x - y),
                BinaryFn::Mul => it.for_each(|(o, (&x, &y))| *o = x * y),
                BinaryFn::Div => it.for_each(|(o, (&x, &y))| *o = x / y),
                BinaryFn::Pow | BinaryFn::Power => it.for_each(|(o, (&x, &y))| *o = x.powc(y)),
                _ => unreachable!("typing refuses {} on complex128", f.name()),
            }
        }
        // The vectorized hypot (the same bits on every CPU, within 1 ulp of libm's).
        (Buf::F64(a), Buf::F64(b), Buf::F64(o)) if f == BinaryFn::Hypot => {
            math::hypot_f64(&a[..n], &b[..n], &mut o[..n])
        }
        (Buf::F64(a), Buf::F64(b), Buf::F64(o)) => {
            float_binary!(f, a, b, o, n, rem_floor_f64, f64, u64)
        }
        (Buf::F32(a), Buf::F32(b), Buf::F32(o)) => {
            float_binary!(f, a, b, o, n, rem_floor_f32, f32, u32)
        }
        (a, b, o) if a.dtype().is_integer() => int_arms!(
            (a, b, o), (a, b, o) => binary_int(f, &a[..n], &b[..n], &mut o[..n]),
            _ => unreachable!("binary arguments share a dtype")
        ),
        (Buf::Bool(a), Buf::Bool(b), Buf::Bool(o)) => {
            let (a, b, o) = (&a[..n], &b[..n], &mut o[..n]);
            let it = o.iter_mut().zip(a.iter().zip(b));
            match f {
                // numpy's add and maximum on bools are logical or; multiply and minimum are and.
                BinaryFn::Add
                | BinaryFn::Or
                | BinaryFn::Maximum
                | BinaryFn::Fmax
                | BinaryFn::LogicalOr => it.for_each(|(o, (&x, &y))| *o = x | y),
                BinaryFn::Mul
                | BinaryFn::And
                | BinaryFn::Minimum
                | BinaryFn::Fmin
                | BinaryFn::LogicalAnd => it.for_each(|(o, (&x, &y))| *o = x & y),
                BinaryFn::Xor | BinaryFn::LogicalXor => it.for_each(|(o, (&x, &y))| *o = x ^ y),
                _ => unreachable!("typing rejects {} on bool", f.name()),
            }
        }
        _ => unreachable!("binary arguments share a dtype"),
    }
}

/// numpy's two-argument functions on one integer type (wrapping; see [`IntKernel`]).
fn binary_int<T: IntKernel>(f: BinaryFn, a: &[T], b: &[T], o: &mut [T]) {
    let it = o.iter_mut().zip(a.iter().zip(b));
    match f {
        BinaryFn::Add => it.for_each(|(o, (&x, &y))| *o = x.wadd(y)),
        BinaryFn::Sub => it.for_each(|(o, (&x, &y))| *o = x.wsub(y)),
        BinaryFn::Mul => it.for_each(|(o, (&x, &y))| *o = x.wmul(y)),
        BinaryFn::Rem => it.for_each(|(o, (&x, &y))| *o = x.rem_floor(y)),
        BinaryFn::Minimum | BinaryFn::Fmin => it.for_each(|(o, (&x, &y))| *o = x.min(y)),
        BinaryFn::Maximum | BinaryFn::Fmax => it.for_each(|(o, (&x, &y))| *o = x.max(y)),
        BinaryFn::And => it.for_each(|(o, (&x, &y))| *o = x & y),
        BinaryFn::Or => it.for_each(|(o, (&x, &y))| *o = x | y),
        BinaryFn::Xor => it.for_each(|(o, (&x, &y))| *o = x ^ y),
        BinaryFn::FloorDivide => it.for_each(|(o, (&x, &y))| *o = x.floor_div(y)),
        BinaryFn::Fmod => it.for_each(|(o, (&x, &y))| *o = x.fmod(y)),
        BinaryFn::LeftShift => it.for_each(|(o, (&x, &y))| *o = x.shl(y)),
        BinaryFn::RightShift => it.for_each(|(o, (&x, &y))| *o = x.shr(y)),
        BinaryFn::Power => it.for_each(|(o, (&x, &y))| *o = x.pow(y)),
        BinaryFn::Div
        | BinaryFn::Pow
        | BinaryFn::Arctan2
        | BinaryFn::Hypot
        | BinaryFn::Copysign
        | BinaryFn::Nextafter
        | BinaryFn::Logaddexp => {
            unreachable!("typing sends {} through float", f.name())
        }
        BinaryFn::LogicalAnd | BinaryFn::LogicalOr | BinaryFn::LogicalXor => {
            unreachable!("typing sends {} through bool", f.name())
        }
    }
}
