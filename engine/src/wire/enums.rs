//! Engine enums and their wire enums: dtypes, distributions, elementwise functions and reductions.
//! [`enum_pair!`] maps each pair variant by variant in both directions, so a variant added on either
//! side is a compile error here until it is mapped.

use super::pb;
use super::wire;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::{BinaryFn, CmpFn, Distribution, Reduction, UnaryFn};

// ---------------------------------------------------------------------------------------------
// enums

impl From<DType> for pb::DType {
    fn from(d: DType) -> Self {
        match d {
            DType::Bool => pb::DType::DtypeBool,
            DType::I64 => pb::DType::DtypeI64,
            DType::F32 => pb::DType::DtypeF32,
            DType::F64 => pb::DType::DtypeF64,
        }
    }
}

impl TryFrom<pb::DType> for DType {
    type Error = Error;
    fn try_from(d: pb::DType) -> Result<Self> {
        match d {
            pb::DType::DtypeUnspecified => Err(wire("dtype is unspecified")),
            pb::DType::DtypeBool => Ok(DType::Bool),
            pb::DType::DtypeI64 => Ok(DType::I64),
            pb::DType::DtypeF32 => Ok(DType::F32),
            pb::DType::DtypeF64 => Ok(DType::F64),
        }
    }
}

/// `From` both ways between an engine enum and its wire twin; both matches are exhaustive, so a
/// variant added on either side fails to compile here until it is mapped.
macro_rules! enum_pair {
    ($engine:ident <=> $wire:ident { $($e:ident <=> $w:ident),* $(,)? }) => {
        impl From<$engine> for pb::$wire {
            fn from(v: $engine) -> Self {
                match v {
                    $($engine::$e => pb::$wire::$w,)*
                }
            }
        }
        impl From<pb::$wire> for $engine {
            fn from(v: pb::$wire) -> Self {
                match v {
                    $(pb::$wire::$w => $engine::$e,)*
                }
            }
        }
    };
}

enum_pair!(Distribution <=> Distribution {
    Uniform <=> Uniform,
    StandardNormal <=> StandardNormal,
});

enum_pair!(UnaryFn <=> UnaryFn {
    Neg <=> UnaryNeg,
    Abs <=> UnaryAbs,
    Sqrt <=> UnarySqrt,
    Exp <=> UnaryExp,
    Ln <=> UnaryLn,
    Log2 <=> UnaryLog2,
    Log10 <=> UnaryLog10,
    Sin <=> UnarySin,
    Cos <=> UnaryCos,
    Tan <=> UnaryTan,
    Tanh <=> UnaryTanh,
    Floor <=> UnaryFloor,
    Ceil <=> UnaryCeil,
    Round <=> UnaryRound,
    Square <=> UnarySquare,
    Not <=> UnaryNot,
    IsNan <=> UnaryIsNan,
    IsFinite <=> UnaryIsFinite,
});

enum_pair!(BinaryFn <=> BinaryFn {
    Add <=> BinaryAdd,
    Sub <=> BinarySub,
    Mul <=> BinaryMul,
    Div <=> BinaryDiv,
    Rem <=> BinaryRem,
    Pow <=> BinaryPow,
    Minimum <=> BinaryMinimum,
    Maximum <=> BinaryMaximum,
    And <=> BinaryAnd,
    Or <=> BinaryOr,
    Xor <=> BinaryXor,
});

enum_pair!(CmpFn <=> CmpFn {
    Eq <=> CmpEq,
    Ne <=> CmpNe,
    Lt <=> CmpLt,
    Le <=> CmpLe,
    Gt <=> CmpGt,
    Ge <=> CmpGe,
});

enum_pair!(Reduction <=> Reduction {
    Sum <=> Sum,
    Prod <=> Prod,
    Min <=> Min,
    Max <=> Max,
    Any <=> Any,
    All <=> All,
    Mean <=> Mean,
    Var <=> Var,
    Std <=> Std,
    ArgMin <=> ArgMin,
    ArgMax <=> ArgMax,
});

/// Every value of a wire enum (prost enums are numbered densely from 0), mapped to the engine's.
pub(super) fn all_of<W: TryFrom<i32>, E: From<W>>() -> impl Iterator<Item = E> {
    (0..).map_while(|i| W::try_from(i).ok()).map(E::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::DType;
    use crate::ops::{BinaryFn, CmpFn, Distribution, Reduction, UnaryFn};
    use crate::wire::pb;
    use crate::wire::testing::*;

    #[test]
    fn engine_and_wire_enums_have_the_same_members() {
        let count = |n: usize, wire: usize| assert_eq!(n, wire);
        count(all_unary().len(), all_of::<pb::UnaryFn, UnaryFn>().count());
        count(
            all_binary().len(),
            all_of::<pb::BinaryFn, BinaryFn>().count(),
        );
        count(all_cmp().len(), all_of::<pb::CmpFn, CmpFn>().count());
        count(
            all_reductions().len(),
            all_of::<pb::Reduction, Reduction>().count(),
        );
        count(2, all_of::<pb::Distribution, Distribution>().count());
        // DTYPE_UNSPECIFIED is the wire's extra "missing" value.
        count(
            all_dtypes().len() + 1,
            (0..).map_while(|i| pb::DType::try_from(i).ok()).count(),
        );
        for d in all_dtypes() {
            assert_eq!(DType::try_from(pb::DType::from(d)).unwrap(), d);
        }
    }
}
