//! The data type functions of the Array API standard: [`can_cast`] (numpy's "safe" casting,
//! derived from the promotion rules so the two never disagree), [`finfo`] and [`iinfo`] (the limits
//! of a float or integer type) and [`isdtype`] (whether a dtype is of a kind). `result_type` is
//! [`DType::promote`].

use crate::error::{Error, Result};
use crate::meta::DType;

/// Whether every value of `from` is a value of `to` (numpy's `can_cast(from, to)`, safe casting):
/// exactly when promoting the two gives `to`. int64 to float64 is allowed, as in numpy (large
/// values round); uint64 to int64 and int32 to float32 are not.
///
/// ```
/// use tessera::{DType, can_cast};
/// assert!(can_cast(DType::U8, DType::I32));
/// assert!(can_cast(DType::I64, DType::F64));
/// assert!(!can_cast(DType::U64, DType::I64));
/// assert!(!can_cast(DType::I32, DType::F32));
/// assert!(!can_cast(DType::C128, DType::F64));
/// ```
pub fn can_cast(from: DType, to: DType) -> bool {
    DType::promote(from, to) == to
}

/// The limits of a floating-point type, numpy's `finfo` (of complex128: those of its float64
/// parts, as numpy's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatInfo {
    /// Bits of one value (of one part, for complex128).
    pub bits: u32,
    /// The difference between 1.0 and the next larger value.
    pub eps: f64,
    /// The largest finite value.
    pub max: f64,
    /// The most negative finite value (`-max`).
    pub min: f64,
    /// The smallest positive normal value.
    pub smallest_normal: f64,
    /// The real type these limits describe: float32 or float64.
    pub dtype: DType,
}

/// The limits of an integer type, numpy's `iinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntInfo {
    /// Bits of one value.
    pub bits: u32,
    /// The smallest value.
    pub min: i128,
    /// The largest value.
    pub max: i128,
    /// The type these limits describe.
    pub dtype: DType,
}

/// The limits of float32, float64 or complex128; another dtype is
/// [`Error::UnsupportedDType`].
///
/// ```
/// let f = tessera::finfo(tessera::DType::F32).unwrap();
/// assert_eq!((f.bits, f.eps, f.max), (32, f32::EPSILON as f64, f32::MAX as f64));
/// assert!(tessera::finfo(tessera::DType::I64).is_err());
/// ```
pub fn finfo(dtype: DType) -> Result<FloatInfo> {
    match dtype {
        DType::F32 => Ok(FloatInfo {
            bits: 32,
            eps: f32::EPSILON as f64,
            max: f32::MAX as f64,
            min: f32::MIN as f64,
            smallest_normal: f32::MIN_POSITIVE as f64,
            dtype: DType::F32,
        }),
        DType::F64 | DType::C128 => Ok(FloatInfo {
            bits: 64,
            eps: f64::EPSILON,
            max: f64::MAX,
            min: f64::MIN,
            smallest_normal: f64::MIN_POSITIVE,
            dtype: DType::F64,
        }),
        d => Err(Error::UnsupportedDType {
            op: "finfo",
            dtype: d,
        }),
    }
}

/// The limits of int32, int64, uint8 or uint64; another dtype is [`Error::UnsupportedDType`].
///
/// ```
/// let i = tessera::iinfo(tessera::DType::U8).unwrap();
/// assert_eq!((i.bits, i.min, i.max), (8, 0, 255));
/// assert_eq!(tessera::iinfo(tessera::DType::I64).unwrap().min, i64::MIN as i128);
/// ```
pub fn iinfo(dtype: DType) -> Result<IntInfo> {
    let (bits, min, max) = match dtype {
        DType::I32 => (32, i32::MIN as i128, i32::MAX as i128),
        DType::I64 => (64, i64::MIN as i128, i64::MAX as i128),
        DType::U8 => (8, 0, u8::MAX as i128),
        DType::U64 => (64, 0, u64::MAX as i128),
        d => {
            return Err(Error::UnsupportedDType {
                op: "iinfo",
                dtype: d,
            });
        }
    };
    Ok(IntInfo {
        bits,
        min,
        max,
        dtype,
    })
}

/// A kind of data type, the Array API standard's names for `isdtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DTypeKind {
    /// `"bool"`.
    Bool,
    /// `"signed integer"`: int32, int64.
    SignedInteger,
    /// `"unsigned integer"`: uint8, uint64.
    UnsignedInteger,
    /// `"integral"`: every integer type.
    Integral,
    /// `"real floating"`: float32, float64.
    RealFloating,
    /// `"complex floating"`: complex128.
    ComplexFloating,
    /// `"numeric"`: every type but bool.
    Numeric,
    /// One data type exactly.
    Exactly(DType),
}

/// Whether `dtype` is of `kind` (the Array API standard's `isdtype`; a tuple of kinds is
/// `kinds.iter().any(..)`).
///
/// ```
/// use tessera::{DType, DTypeKind, isdtype};
/// assert!(isdtype(DType::U8, DTypeKind::Integral));
/// assert!(!isdtype(DType::Bool, DTypeKind::Numeric));
/// assert!(isdtype(DType::C128, DTypeKind::Numeric));
/// assert!(isdtype(DType::F32, DTypeKind::Exactly(DType::F32)));
/// ```
pub fn isdtype(dtype: DType, kind: DTypeKind) -> bool {
    use DType::*;
    match kind {
        DTypeKind::Bool => dtype == Bool,
        DTypeKind::SignedInteger => matches!(dtype, I32 | I64),
        DTypeKind::UnsignedInteger => matches!(dtype, U8 | U64),
        DTypeKind::Integral => matches!(dtype, I32 | I64 | U8 | U64),
        DTypeKind::RealFloating => matches!(dtype, F32 | F64),
        DTypeKind::ComplexFloating => dtype == C128,
        DTypeKind::Numeric => dtype != Bool,
        DTypeKind::Exactly(d) => dtype == d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy 2's `np.can_cast(a, b)` for every pair, written out from numpy (rows: from; columns
    /// in the same order).
    #[test]
    fn can_cast_matches_numpy_for_every_pair() {
        let numpy: [[u8; 8]; 8] = [
            [1, 1, 1, 1, 1, 1, 1, 1], // bool
            [0, 1, 1, 0, 0, 0, 1, 1], // int32
            [0, 0, 1, 0, 0, 0, 1, 1], // int64
            [0, 1, 1, 1, 1, 1, 1, 1], // uint8
            [0, 0, 0, 0, 1, 0, 1, 1], // uint64
            [0, 0, 0, 0, 0, 1, 1, 1], // float32
            [0, 0, 0, 0, 0, 0, 1, 1], // float64
            [0, 0, 0, 0, 0, 0, 0, 1], // complex128
        ];
        let order = [
            DType::Bool,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::U64,
            DType::F32,
            DType::F64,
            DType::C128,
        ];
        for (i, &from) in order.iter().enumerate() {
            for (j, &to) in order.iter().enumerate() {
                assert_eq!(can_cast(from, to), numpy[i][j] == 1, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn limits_are_the_types_own() {
        let i = iinfo(DType::I32).unwrap();
        assert_eq!((i.bits, i.min, i.max), (32, -2147483648, 2147483647));
        assert_eq!(iinfo(DType::U64).unwrap().max, 18446744073709551615);
        let f = finfo(DType::F64).unwrap();
        assert_eq!(
            (f.eps, f.smallest_normal),
            (2f64.powi(-52), 2f64.powi(-1022))
        );
        assert_eq!(finfo(DType::C128).unwrap().dtype, DType::F64);
        assert_eq!(finfo(DType::F32).unwrap().min, -(f32::MAX as f64));
        for d in [DType::Bool, DType::F32, DType::C128] {
            assert!(matches!(
                iinfo(d),
                Err(Error::UnsupportedDType { op: "iinfo", .. })
            ));
        }
        for d in [DType::Bool, DType::I32, DType::U8] {
            assert!(matches!(
                finfo(d),
                Err(Error::UnsupportedDType { op: "finfo", .. })
            ));
        }
    }

    #[test]
    fn kinds_partition_the_types() {
        for d in DType::ALL {
            let integral = isdtype(d, DTypeKind::Integral);
            assert_eq!(
                integral,
                isdtype(d, DTypeKind::SignedInteger) || isdtype(d, DTypeKind::UnsignedInteger),
                "{d}"
            );
            let kinds = [
                DTypeKind::Bool,
                DTypeKind::Integral,
                DTypeKind::RealFloating,
                DTypeKind::ComplexFloating,
            ];
            assert_eq!(kinds.iter().filter(|&&k| isdtype(d, k)).count(), 1, "{d}");
            assert_eq!(isdtype(d, DTypeKind::Numeric), d != DType::Bool);
            assert!(isdtype(d, DTypeKind::Exactly(d)));
        }
    }
}
