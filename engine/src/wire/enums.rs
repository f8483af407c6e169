//! Engine enums and their wire enums: dtypes, distributions, elementwise functions and reductions.
//! [`enum_pair!`] maps each pair variant by variant in both directions, so a variant added on either
//! side is a compile error here until it is mapped.

use super::pb;
use super::wire;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::CmpFn;

// ---------------------------------------------------------------------------------------------
// enums

impl From<DType> for pb::DType {
    fn from(d: DType) -> Self {
        match d {
            DType::Bool => pb::DType::DtypeBool,
            DType::I64 => pb::DType::DtypeI64,
            DType::I32 => pb::DType::DtypeI32,
            DType::U8 => pb::DType::DtypeU8,
            DType::U64 => pb::DType::DtypeU64,
            DType::F32 => pb::DType::DtypeF32,
            DType::F64 => pb::DType::DtypeF64,
            DType::C128 => pb::DType::DtypeC128,
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
            pb::DType::DtypeI32 => Ok(DType::I32),
            pb::DType::DtypeU8 => Ok(DType::U8),
            pb::DType::DtypeU64 => Ok(DType::U64),
            pb::DType::DtypeF32 => Ok(DType::F32),
            pb::DType::DtypeF64 => Ok(DType::F64),
            pb::DType::DtypeC128 => Ok(DType::C128),
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

enum_pair!(CmpFn <=> CmpFn {
    Eq <=> CmpEq,
    Ne <=> CmpNe,
    Lt <=> CmpLt,
    Le <=> CmpLe,
    Gt <=> CmpGt,
    Ge <=> CmpGe,
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
        count(all_cmp().len(), all_of::<pb::CmpFn, CmpFn>().count());
        // Every distribution's code is its wire number, and back.
        for d in all_distributions() {
            let wire = pb::Distribution::try_from(d.code() as i32).unwrap();
            assert_eq!(Distribution::from_code(wire as u64, d.params()), Some(d));
        }
        assert_eq!(
            (0..)
                .map_while(|i| pb::Distribution::try_from(i).ok())
                .count(),
            all_distributions().len()
        );
        // DTYPE_UNSPECIFIED is the wire's extra "missing" value.
        count(
            all_dtypes().len() + 1,
            // The codes are not consecutive (complex128 is 16): count every valid one.
            (0..=255)
                .filter(|&i| pb::DType::try_from(i).is_ok())
                .count(),
        );
        for d in all_dtypes() {
            assert_eq!(DType::try_from(pb::DType::from(d)).unwrap(), d);
        }
    }

    /// `IsNan` → `IS_NAN`, `Log10` → `LOG10`: the proto's spelling of a variant.
    fn screaming(variant: &str) -> String {
        let mut out = String::new();
        for (i, c) in variant.char_indices() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    /// The function tables travel by their codes. Every value the proto enums name is the table row
    /// of that code, under the same name; the tables may run ahead of the proto (a new function needs
    /// no proto change), but never reuse a code the proto gives another function.
    #[test]
    fn function_codes_agree_with_the_proto_enums() {
        let unary: Vec<(i32, String)> = (0..)
            .map_while(|i| pb::UnaryFn::try_from(i).ok())
            .map(|w| (w as i32, w.as_str_name().to_string()))
            .collect();
        let binary: Vec<(i32, String)> = (0..)
            .map_while(|i| pb::BinaryFn::try_from(i).ok())
            .map(|w| (w as i32, w.as_str_name().to_string()))
            .collect();
        for (code, name) in &unary {
            let f = UnaryFn::from_code(*code).unwrap_or_else(|| panic!("{name} has no table row"));
            assert_eq!(format!("UNARY_{}", screaming(&format!("{f:?}"))), *name);
        }
        for (code, name) in &binary {
            let f = BinaryFn::from_code(*code).unwrap_or_else(|| panic!("{name} has no table row"));
            assert_eq!(format!("BINARY_{}", screaming(&format!("{f:?}"))), *name);
        }
        for (code, name) in (0..)
            .map_while(|i| pb::Reduction::try_from(i).ok())
            .map(|w| (w as i32, w.as_str_name()))
        {
            let r = Reduction::from_code(code).unwrap_or_else(|| panic!("{name} has no table row"));
            assert_eq!(format!("REDUCTION_{}", screaming(&format!("{r:?}"))), name);
        }
        for r in Reduction::ALL {
            assert_eq!(Reduction::from_code(r.code()), Some(*r));
        }
        for f in UnaryFn::ALL {
            assert_eq!(UnaryFn::from_code(f.code()), Some(*f));
        }
        for f in BinaryFn::ALL {
            assert_eq!(BinaryFn::from_code(f.code()), Some(*f));
        }
        assert!(UnaryFn::ALL.len() >= unary.len() && BinaryFn::ALL.len() >= binary.len());
    }
}
