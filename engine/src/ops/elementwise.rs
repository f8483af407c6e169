//! The elementwise function vocabulary ([`ElemFunc`]) and its typing rules: what dtype each function
//! takes and gives, following numpy. One- and two-argument functions are rows of a table
//! ([`unary_table!`], [`binary_table!`]: name, wire code, [`Typing`], `Array` method) from which the
//! enums, the `Array` methods and the wire mapping are generated. Kernels live in
//! `kernels::elementwise`.

use crate::error::{Error, Result};
use crate::meta::DType;

/// How a function types its arguments, following numpy: which dtypes it takes, which dtype it
/// computes in, and which it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Typing {
    /// Float math: bool and int64 compute in float64, float32 stays float32.
    Float,
    /// Keeps the dtype; bool is refused.
    Numeric,
    /// Keeps the dtype, bool included.
    Any,
    /// Bool or int64 only (logical on bool, bitwise on int64).
    Logical,
    /// Any dtype in, bool out.
    Predicate,
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
                DType::Bool | DType::I64 => Ok((arg, arg)),
                _ => refuse(),
            },
            Typing::Predicate => Ok((arg, DType::Bool)),
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
            /// `self` raised to `other` (float result).
            Pow = 5, "power", Float, powf;
            /// Elementwise minimum, NaN-propagating (numpy's `minimum`).
            Minimum = 6, "minimum", Any, minimum;
            /// Elementwise maximum, NaN-propagating (numpy's `maximum`).
            Maximum = 7, "maximum", Any, maximum;
            /// Logical and on bool, bitwise and on int64 (`&`).
            And = 8, "logical_and", Logical, -;
            /// Logical or on bool, bitwise or on int64 (`|`).
            Or = 9, "logical_or", Logical, -;
            /// Logical xor on bool, bitwise xor on int64 (`^`).
            Xor = 10, "logical_xor", Logical, -;
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
        self.typing().signature(self.name(), arg)
    }
}

impl BinaryFn {
    /// The dtype both arguments are cast to, and the result dtype, for operands of `promoted` type.
    pub fn signature(self, promoted: DType) -> Result<(DType, DType)> {
        self.typing().signature(self.name(), promoted)
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
            ElemFunc::Compare(_) => {
                same("arguments")?;
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
