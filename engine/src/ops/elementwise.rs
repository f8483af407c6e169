//! The elementwise function vocabulary ([`ElemFunc`]) and its typing rules: what dtype each function
//! takes and gives, following numpy. One- and two-argument functions are rows of a table
//! (`unary_table!`, `binary_table!`: name, wire code, [`Typing`], `Array` method) from which the
//! enums, the `Array` methods and the wire mapping are generated. Kernels live in
//! `kernels::elementwise`.

use crate::error::{Error, Result};
use crate::meta::DType;

/// How a function types its arguments, following numpy: which dtypes it takes, which dtype it
/// computes in, and which it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Typing {
    /// Float math: bool and the integers compute in float64 (numpy gives float16 for uint8, a
    /// type tessera does not have), float32 stays float32.
    Float,
    /// Keeps the dtype; bool is refused.
    Numeric,
    /// Keeps the dtype, bool included.
    Any,
    /// Bool or the integers only (logical on bool, bitwise on integers).
    Logical,
    /// Any dtype in, bool out.
    Predicate,
    /// Reads truth values: any dtype is cast to bool, bool out (logical_and, logical_not).
    Logic,
    /// Integers only, each in its own type, with bool computing in int64 (shifts).
    Integer,
}

impl Typing {
    /// The dtype a function of this typing computes in for (promoted) arguments of `arg`, and its
    /// result dtype; `op` names the function in the error.
    pub fn signature(self, op: &'static str, arg: DType) -> Result<(DType, DType)> {
        let refuse = || Err(Error::UnsupportedDType { op, dtype: arg });
        match self {
            Typing::Float => {
                let f = arg.float_result();
                Ok((f, f))
            }
            Typing::Numeric if arg == DType::Bool => refuse(),
            Typing::Numeric | Typing::Any => Ok((arg, arg)),
            Typing::Logical => match arg {
                DType::Bool => Ok((arg, arg)),
                d if d.is_integer() => Ok((arg, arg)),
                _ => refuse(),
            },
            Typing::Predicate => Ok((arg, DType::Bool)),
            Typing::Logic => Ok((DType::Bool, DType::Bool)),
            Typing::Integer => match arg {
                DType::Bool => Ok((DType::I64, DType::I64)),
                d if d.is_integer() => Ok((arg, arg)),
                _ => refuse(),
            },
        }
    }
}

/// The one-argument function table: one row per function —
/// `Variant = wire code, "numpy name", typing, Array method (or - for an operator)` — expanded by
/// `$callback`. The enum, its names, typing and wire codes are generated here ([`UnaryFn`]); the
/// `Array` methods in `array::elementwise`; the kernel is an arm of the exhaustive match in
/// `kernels::elementwise`, which fails to compile until a new row has one. Wire codes are the enum's
/// discriminants, so the compiler refuses a duplicate; they never change once sent.
macro_rules! unary_table {
    ($callback:ident ( $($args:tt)* )) => {
        $callback! {
            ( $($args)* )
            /// Numerical negative (`-x`; wrapping on int64).
            Neg = 0, "negative", Numeric, -;
            /// Absolute value.
            Abs = 1, "absolute", Any, abs;
            /// Square root (integers give float64).
            Sqrt = 2, "sqrt", Float, sqrt;
            /// e to the power of each element.
            Exp = 3, "exp", Float, exp;
            /// Natural logarithm.
            Ln = 4, "log", Float, ln;
            /// Base-2 logarithm.
            Log2 = 5, "log2", Float, log2;
            /// Base-10 logarithm.
            Log10 = 6, "log10", Float, log10;
            /// Sine.
            Sin = 7, "sin", Float, sin;
            /// Cosine.
            Cos = 8, "cos", Float, cos;
            /// Tangent.
            Tan = 9, "tan", Float, tan;
            /// Hyperbolic tangent.
            Tanh = 10, "tanh", Float, tanh;
            /// Round down.
            Floor = 11, "floor", Numeric, floor;
            /// Round up.
            Ceil = 12, "ceil", Numeric, ceil;
            /// Round half to even, as numpy's `round`.
            Round = 13, "round", Numeric, round;
            /// Each element squared.
            Square = 14, "square", Numeric, square;
            /// Logical not on bool, bitwise not on int64 (`!x`).
            Not = 15, "invert", Logical, -;
            /// Whether each element is NaN.
            IsNan = 16, "isnan", Predicate, isnan;
            /// Whether each element is finite.
            IsFinite = 17, "isfinite", Predicate, isfinite;
            /// `ln(1 + x)`, exact for `x` near 0 (numpy's `log1p`).
            Log1p = 18, "log1p", Float, log1p;
            /// Inverse sine.
            Arcsin = 19, "arcsin", Float, arcsin;
            /// Inverse cosine.
            Arccos = 20, "arccos", Float, arccos;
            /// Inverse tangent.
            Arctan = 21, "arctan", Float, arctan;
            /// Hyperbolic sine.
            Sinh = 22, "sinh", Float, sinh;
            /// Hyperbolic cosine.
            Cosh = 23, "cosh", Float, cosh;
            /// Inverse hyperbolic sine.
            Arcsinh = 24, "arcsinh", Float, arcsinh;
            /// Inverse hyperbolic cosine.
            Arccosh = 25, "arccosh", Float, arccosh;
            /// Inverse hyperbolic tangent.
            Arctanh = 26, "arctanh", Float, arctanh;
            /// `exp(x) - 1`, exact for `x` near 0.
            Expm1 = 27, "expm1", Float, expm1;
            /// 2 to the power of each element.
            Exp2 = 28, "exp2", Float, exp2;
            /// Cube root.
            Cbrt = 29, "cbrt", Float, cbrt;
            /// Degrees to radians (`x * (pi / 180)`).
            Deg2rad = 30, "deg2rad", Float, deg2rad;
            /// Radians to degrees (`x * (180 / pi)`).
            Rad2deg = 31, "rad2deg", Float, rad2deg;
            /// -1, 0 or 1 by the sign of each element (NaN stays NaN; -0.0 gives 0.0).
            Sign = 32, "sign", Numeric, sign;
            /// Round towards zero.
            Trunc = 33, "trunc", Numeric, trunc;
            /// Whether each element is positive or negative infinity.
            IsInf = 34, "isinf", Predicate, isinf;
            /// Whether each element's sign bit is set (true for -0.0 and negative NaNs).
            Signbit = 35, "signbit", Predicate, signbit;
            /// Logical not of each element's truth value (non-zero is true).
            LogicalNot = 36, "logical_not", Logic, logical_not;
            /// Each element unchanged (numpy's `positive`, `+x`; bool is refused, as numpy does).
            Positive = 37, "positive", Numeric, positive;
            /// `1 / x` (integers give float64, as the Array API standard's floating-point
            /// `reciprocal`; numpy would divide in integers).
            Reciprocal = 38, "reciprocal", Float, reciprocal;
            /// The real part (a real array is its own real part). Codes 80.. are the complex
            /// functions'.
            Real = 80, "real", Any, real;
            /// The imaginary part (zeros of the array's dtype for a real array).
            Imag = 81, "imag", Any, imag;
            /// The complex conjugate (a real array is its own).
            Conj = 82, "conjugate", Any, conj;
            /// The counterclockwise angle from the positive real axis, in radians (float).
            Angle = 83, "angle", Float, angle;
        }
    };
}
pub(crate) use unary_table;

/// The two-argument function table, as [`unary_table`]: a method of `-` is an operator (or a
/// method written by hand). Arguments are promoted to one dtype before the typing applies.
macro_rules! binary_table {
    ($callback:ident ( $($args:tt)* )) => {
        $callback! {
            ( $($args)* )
            /// `a + b` (logical or on bool).
            Add = 0, "add", Any, -;
            /// `a - b`.
            Sub = 1, "subtract", Numeric, -;
            /// `a * b` (logical and on bool).
            Mul = 2, "multiply", Any, -;
            /// True division (float result).
            Div = 3, "divide", Float, -;
            /// numpy's floored remainder (sign of the divisor; 0 for an int64 zero divisor).
            Rem = 4, "remainder", Numeric, -;
            /// `self` raised to `other`, always in float (integers give float64); see `Power` for
            /// numpy's `power`, which keeps integers.
            Pow = 5, "powf", Float, powf;
            /// Elementwise minimum, NaN-propagating (numpy's `minimum`).
            Minimum = 6, "minimum", Any, minimum;
            /// Elementwise maximum, NaN-propagating (numpy's `maximum`).
            Maximum = 7, "maximum", Any, maximum;
            /// Bitwise and on int64, logical and on bool (`&`, numpy's `bitwise_and`).
            And = 8, "bitwise_and", Logical, bitwise_and;
            /// Bitwise or on int64, logical or on bool (`|`, numpy's `bitwise_or`).
            Or = 9, "bitwise_or", Logical, bitwise_or;
            /// Bitwise xor on int64, logical xor on bool (`^`, numpy's `bitwise_xor`).
            Xor = 10, "bitwise_xor", Logical, bitwise_xor;
            /// The angle of the point `(other, self)`: `atan2(self, other)` in the right quadrant.
            Arctan2 = 11, "arctan2", Float, arctan2;
            /// `sqrt(self² + other²)` without overflow or underflow on the way.
            Hypot = 12, "hypot", Float, hypot;
            /// Floored division (numpy's `//`): integers round towards minus infinity, 0 for a zero
            /// divisor; floats as numpy's `floor_divide`.
            FloorDivide = 13, "floor_divide", Numeric, floor_divide;
            /// C's remainder: the sign of the dividend (0 for an int64 zero divisor).
            Fmod = 14, "fmod", Numeric, fmod;
            /// `self` with the sign of `other`.
            Copysign = 15, "copysign", Float, copysign;
            /// The next representable float after `self` towards `other`.
            Nextafter = 16, "nextafter", Float, nextafter;
            /// Elementwise maximum ignoring NaN (NaN only where both are NaN).
            Fmax = 17, "fmax", Any, fmax;
            /// Elementwise minimum ignoring NaN (NaN only where both are NaN).
            Fmin = 18, "fmin", Any, fmin;
            /// Logical and of the operands' truth values (bool result).
            LogicalAnd = 19, "logical_and", Logic, logical_and;
            /// Logical or of the operands' truth values (bool result).
            LogicalOr = 20, "logical_or", Logic, logical_or;
            /// Logical xor of the operands' truth values (bool result).
            LogicalXor = 21, "logical_xor", Logic, logical_xor;
            /// Bits shifted left (int64; 0 for a shift outside 0..64; bool computes in int64).
            LeftShift = 22, "left_shift", Integer, left_shift;
            /// Arithmetic shift right (int64; 0 or -1 for a shift outside 0..64).
            RightShift = 23, "right_shift", Integer, right_shift;
            /// numpy's `power`: integers stay int64 (wrapping; a negative exponent gives `1 / x^n`
            /// truncated, where numpy raises), floats use `powf`.
            Power = 24, "power", Numeric, power;
            /// `log(exp(self) + exp(other))` without overflow for large arguments (numpy's
            /// `logaddexp`).
            Logaddexp = 25, "logaddexp", Float, logaddexp;
        }
    };
}
pub(crate) use binary_table;

/// Defines a function enum from a table: variants with their wire codes as discriminants, `ALL`,
/// `name`, `typing`, `code` and `from_code`.
macro_rules! define_functions {
    (($enum:ident, $what:literal)
     $($(#[$doc:meta])* $v:ident = $code:literal, $name:literal, $typing:ident, $method:tt;)*) => {
        #[doc = $what]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $enum {
            $($(#[$doc])* $v = $code,)*
        }

        impl $enum {
            /// Every function, in table order.
            pub const ALL: &[$enum] = &[$($enum::$v),*];

            /// numpy's name for the function.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$v => $name,)*
                }
            }

            /// How the function types its arguments.
            pub fn typing(self) -> Typing {
                match self {
                    $($enum::$v => Typing::$typing,)*
                }
            }

            /// The function's stable code on the wire (and in tokens).
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The function with wire code `code`, if there is one.
            pub fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some($enum::$v),)*
                    _ => None,
                }
            }
        }
    };
}

unary_table!(define_functions(
    UnaryFn,
    "One-argument functions (rows of `unary_table!`)."
));
binary_table!(define_functions(
    BinaryFn,
    "Two-argument arithmetic and logic (rows of `binary_table!`)."
));

/// Comparisons, giving bool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpFn {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What one instruction of a blockwise program computes. Arguments always arrive in the dtype the
/// function computes in: the builder inserts [`ElemFunc::Cast`] where promotion needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemFunc {
    Unary(UnaryFn),
    Binary(BinaryFn),
    Compare(CmpFn),
    /// `where(cond, a, b)`: cond is bool, a and b share the result dtype.
    Where,
    /// `clip(x, lo, hi)`, all three of the result dtype.
    Clip,
    /// Conversion to the instruction's dtype.
    Cast,
}

impl UnaryFn {
    /// The dtype the function computes in for an argument of `arg`, and its result dtype.
    pub fn signature(self, arg: DType) -> Result<(DType, DType)> {
        if arg == DType::C128 {
            return self.complex_signature();
        }
        self.typing().signature(self.name(), arg)
    }

    /// numpy's typing on complex128: analytic functions stay complex, the magnitude and the parts
    /// are float64, the NaN/infinity tests bool; ordering and rounding (floor, sign, signbit …)
    /// and the real-only functions are refused.
    fn complex_signature(self) -> Result<(DType, DType)> {
        use DType::{Bool, C128, F64};
        use UnaryFn::*;
        match self {
            Neg | Sqrt | Exp | Ln | Sin | Cos | Tan | Sinh | Cosh | Tanh | Square | Conj
            | Positive | Reciprocal => Ok((C128, C128)),
            Abs | Real | Imag | Angle => Ok((C128, F64)),
            IsNan | IsFinite | IsInf => Ok((C128, Bool)),
            LogicalNot => Ok((Bool, Bool)),
            _ => Err(Error::UnsupportedDType {
                op: self.name(),
                dtype: C128,
            }),
        }
    }
}

impl BinaryFn {
    /// The dtype both arguments are cast to, and the result dtype, for operands of `promoted` type.
    pub fn signature(self, promoted: DType) -> Result<(DType, DType)> {
        if promoted == DType::C128 {
            use BinaryFn::*;
            return match self {
                Add | Sub | Mul | Div | Pow | Power => Ok((DType::C128, DType::C128)),
                LogicalAnd | LogicalOr | LogicalXor => Ok((DType::Bool, DType::Bool)),
                _ => Err(Error::UnsupportedDType {
                    op: self.name(),
                    dtype: DType::C128,
                }),
            };
        }
        self.typing().signature(self.name(), promoted)
    }
}

impl CmpFn {
    /// Complex numbers have no order: only `==` and `!=` take complex128, as in numpy 2.
    pub fn check_dtype(self, dtype: DType) -> Result<()> {
        if dtype.is_complex() && !matches!(self, CmpFn::Eq | CmpFn::Ne) {
            return Err(Error::UnsupportedDType {
                op: self.name(),
                dtype,
            });
        }
        Ok(())
    }
}

impl CmpFn {
    pub fn name(self) -> &'static str {
        use CmpFn::*;
        match self {
            Eq => "equal",
            Ne => "not_equal",
            Lt => "less",
            Le => "less_equal",
            Gt => "greater",
            Ge => "greater_equal",
        }
    }
}

impl ElemFunc {
    pub fn name(self) -> &'static str {
        match self {
            ElemFunc::Unary(f) => f.name(),
            ElemFunc::Binary(f) => f.name(),
            ElemFunc::Compare(f) => f.name(),
            ElemFunc::Where => "where",
            ElemFunc::Clip => "clip",
            ElemFunc::Cast => "astype",
        }
    }

    /// A small stable code for tokens.
    pub(crate) fn code(self) -> u64 {
        match self {
            ElemFunc::Unary(f) => 0x100 | f as u64,
            ElemFunc::Binary(f) => 0x200 | f as u64,
            ElemFunc::Compare(f) => 0x300 | f as u64,
            ElemFunc::Where => 0x400,
            ElemFunc::Clip => 0x500,
            ElemFunc::Cast => 0x600,
        }
    }

    /// The engine's typing rules (`ops::elementwise`): arguments arrive in the dtype the function computes
    /// in, so each signature must map the arguments' dtype to itself and to the instruction's dtype.
    pub(crate) fn check_typing(
        self,
        args: &[DType],
        out: DType,
    ) -> std::result::Result<(), String> {
        let func = self;
        let arity = match func {
            ElemFunc::Unary(_) | ElemFunc::Cast => 1,
            ElemFunc::Binary(_) | ElemFunc::Compare(_) => 2,
            ElemFunc::Where | ElemFunc::Clip => 3,
        };
        if args.len() != arity {
            return Err(format!("takes {arity} arguments, but has {}", args.len()));
        }
        let same = |what: &str| -> Result<(), String> {
            if args.windows(2).any(|w| w[0] != w[1]) {
                return Err(format!("{what} of dtypes {args:?} differ"));
            }
            Ok(())
        };
        let signature = |sig: Result<(DType, DType)>| -> Result<(), String> {
            let (arg, res) = sig.map_err(|e| e.to_string())?;
            if arg != args[0] || res != out {
                return Err(format!(
                    "computes {arg} -> {res}, but reads {} and gives {out}",
                    args[0]
                ));
            }
            Ok(())
        };
        match func {
            ElemFunc::Unary(f) => signature(f.signature(args[0])),
            ElemFunc::Binary(f) => {
                same("arguments")?;
                signature(f.signature(args[0]))
            }
            ElemFunc::Compare(f) => {
                same("arguments")?;
                f.check_dtype(args[0]).map_err(|e| e.to_string())?;
                if out != DType::Bool {
                    return Err(format!("a comparison gives bool, not {out}"));
                }
                Ok(())
            }
            ElemFunc::Where => {
                if args[0] != DType::Bool || args[1] != out || args[2] != out {
                    return Err(format!(
                        "where needs (bool, {out}, {out}) for a {out} result, has {args:?}"
                    ));
                }
                Ok(())
            }
            ElemFunc::Clip => {
                if out.is_complex() {
                    return Err("clip is not supported for complex128".into());
                }
                if args.iter().any(|&a| a != out) {
                    return Err(format!(
                        "clip's arguments {args:?} must all be its result's {out}"
                    ));
                }
                Ok(())
            }
            ElemFunc::Cast => Ok(()),
        }
    }
}
