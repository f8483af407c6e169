//! The elementwise function vocabulary ([`ElemFunc`]) and its typing rules: what dtype each function
//! takes and gives, following numpy. Kernels live in `kernels::elementwise`.

use crate::error::{Error, Result};
use crate::meta::DType;

/// One-argument functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryFn {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Ln,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Tanh,
    Floor,
    Ceil,
    Round,
    Square,
    Not,
    IsNan,
    IsFinite,
}

/// Two-argument arithmetic and logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryFn {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Minimum,
    Maximum,
    And,
    Or,
    Xor,
}

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
    pub fn name(self) -> &'static str {
        use UnaryFn::*;
        match self {
            Neg => "negative",
            Abs => "absolute",
            Sqrt => "sqrt",
            Exp => "exp",
            Ln => "log",
            Log2 => "log2",
            Log10 => "log10",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Tanh => "tanh",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Square => "square",
            Not => "invert",
            IsNan => "isnan",
            IsFinite => "isfinite",
        }
    }

    /// The dtype the function computes in for an argument of `arg`, and its result dtype.
    pub fn signature(self, arg: DType) -> Result<(DType, DType)> {
        use UnaryFn::*;
        match self {
            Neg | Square if arg == DType::Bool => Err(Error::UnsupportedDType {
                op: self.name(),
                dtype: arg,
            }),
            Neg | Abs | Square => Ok((arg, arg)),
            Floor | Ceil | Round => match arg {
                DType::Bool => Err(Error::UnsupportedDType {
                    op: self.name(),
                    dtype: arg,
                }),
                d => Ok((d, d)),
            },
            Sqrt | Exp | Ln | Log2 | Log10 | Sin | Cos | Tan | Tanh => {
                let f = arg.float_result();
                Ok((f, f))
            }
            Not => match arg {
                DType::Bool | DType::I64 => Ok((arg, arg)),
                d => Err(Error::UnsupportedDType {
                    op: self.name(),
                    dtype: d,
                }),
            },
            IsNan | IsFinite => Ok((arg, DType::Bool)),
        }
    }
}

impl BinaryFn {
    pub fn name(self) -> &'static str {
        use BinaryFn::*;
        match self {
            Add => "add",
            Sub => "subtract",
            Mul => "multiply",
            Div => "divide",
            Rem => "remainder",
            Pow => "power",
            Minimum => "minimum",
            Maximum => "maximum",
            And => "logical_and",
            Or => "logical_or",
            Xor => "logical_xor",
        }
    }

    /// The dtype both arguments are cast to, and the result dtype, for operands of `promoted` type.
    pub fn signature(self, promoted: DType) -> Result<(DType, DType)> {
        use BinaryFn::*;
        match self {
            Div | Pow => {
                let f = promoted.float_result();
                Ok((f, f))
            }
            Sub | Rem if promoted == DType::Bool => Err(Error::UnsupportedDType {
                op: self.name(),
                dtype: promoted,
            }),
            And | Or | Xor => match promoted {
                DType::Bool | DType::I64 => Ok((promoted, promoted)),
                d => Err(Error::UnsupportedDType {
                    op: self.name(),
                    dtype: d,
                }),
            },
            _ => Ok((promoted, promoted)),
        }
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
