//! Chunk data: [`ArrayData`], an ndarray of one of the supported element types, and the [`Element`]
//! trait that ties a Rust type to its [`DType`].

use ndarray::{ArrayD, IxDyn};
use num_complex::Complex64;

use crate::error::{Error, Result};
use crate::meta::{DType, Scalar};

/// An n-dimensional array of one of tessera's element types.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    /// numpy `bool` elements.
    Bool(ArrayD<bool>),
    /// numpy `int32` elements.
    I32(ArrayD<i32>),
    /// numpy `uint8` elements.
    U8(ArrayD<u8>),
    /// numpy `uint64` elements.
    U64(ArrayD<u64>),
    /// numpy `int64` elements.
    I64(ArrayD<i64>),
    /// numpy `float32` elements.
    F32(ArrayD<f32>),
    /// numpy `float64` elements.
    F64(ArrayD<f64>),
    /// numpy `complex128` elements.
    C128(ArrayD<Complex64>),
}

/// Applies an expression to the typed array inside an [`ArrayData`], binding it to `$a`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_array {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            $crate::ArrayData::Bool($a) => $body,
            $crate::ArrayData::I32($a) => $body,
            $crate::ArrayData::U8($a) => $body,
            $crate::ArrayData::U64($a) => $body,
            $crate::ArrayData::I64($a) => $body,
            $crate::ArrayData::F32($a) => $body,
            $crate::ArrayData::F64($a) => $body,
            $crate::ArrayData::C128($a) => $body,
        }
    };
}

/// Like [`with_array!`] for code that needs ordered (real) elements: complex data evaluates
/// `$complex` instead (typically an error naming the op, which the builders have already given).
#[macro_export]
#[doc(hidden)]
macro_rules! with_real_array {
    ($data:expr, $a:ident => $body:expr, complex => $complex:expr) => {
        match $data {
            $crate::ArrayData::Bool($a) => $body,
            $crate::ArrayData::I32($a) => $body,
            $crate::ArrayData::U8($a) => $body,
            $crate::ArrayData::U64($a) => $body,
            $crate::ArrayData::I64($a) => $body,
            $crate::ArrayData::F32($a) => $body,
            $crate::ArrayData::F64($a) => $body,
            $crate::ArrayData::C128(_) => $complex,
        }
    };
}

/// Like [`map_array!`] for code that needs ordered (real) elements; see [`with_real_array!`].
#[macro_export]
#[doc(hidden)]
macro_rules! map_real_array {
    ($data:expr, $a:ident => $body:expr, complex => $complex:expr) => {
        match $data {
            $crate::ArrayData::Bool($a) => $crate::ArrayData::Bool($body),
            $crate::ArrayData::I32($a) => $crate::ArrayData::I32($body),
            $crate::ArrayData::U8($a) => $crate::ArrayData::U8($body),
            $crate::ArrayData::U64($a) => $crate::ArrayData::U64($body),
            $crate::ArrayData::I64($a) => $crate::ArrayData::I64($body),
            $crate::ArrayData::F32($a) => $crate::ArrayData::F32($body),
            $crate::ArrayData::F64($a) => $crate::ArrayData::F64($body),
            $crate::ArrayData::C128(_) => $complex,
        }
    };
}

/// Like [`with_array!`] but rewraps the result in the same variant.
#[macro_export]
#[doc(hidden)]
macro_rules! map_array {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            $crate::ArrayData::Bool($a) => $crate::ArrayData::Bool($body),
            $crate::ArrayData::I32($a) => $crate::ArrayData::I32($body),
            $crate::ArrayData::U8($a) => $crate::ArrayData::U8($body),
            $crate::ArrayData::U64($a) => $crate::ArrayData::U64($body),
            $crate::ArrayData::I64($a) => $crate::ArrayData::I64($body),
            $crate::ArrayData::F32($a) => $crate::ArrayData::F32($body),
            $crate::ArrayData::F64($a) => $crate::ArrayData::F64($body),
            $crate::ArrayData::C128($a) => $crate::ArrayData::C128($body),
        }
    };
}

impl ArrayData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            ArrayData::Bool(_) => DType::Bool,
            ArrayData::I32(_) => DType::I32,
            ArrayData::U8(_) => DType::U8,
            ArrayData::U64(_) => DType::U64,
            ArrayData::I64(_) => DType::I64,
            ArrayData::F32(_) => DType::F32,
            ArrayData::F64(_) => DType::F64,
            ArrayData::C128(_) => DType::C128,
        }
    }

    /// The shape, in elements per axis.
    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An array of `shape` filled with `value` cast to `dtype`.
    pub fn full(shape: &[usize], value: Scalar, dtype: DType) -> Self {
        let shape = IxDyn(shape);
        match value.cast(dtype) {
            Scalar::Bool(v) => ArrayData::Bool(ArrayD::from_elem(shape, v)),
            Scalar::I32(v) => ArrayData::I32(ArrayD::from_elem(shape, v)),
            Scalar::U8(v) => ArrayData::U8(ArrayD::from_elem(shape, v)),
            Scalar::U64(v) => ArrayData::U64(ArrayD::from_elem(shape, v)),
            Scalar::I64(v) => ArrayData::I64(ArrayD::from_elem(shape, v)),
            Scalar::F32(v) => ArrayData::F32(ArrayD::from_elem(shape, v)),
            Scalar::F64(v) => ArrayData::F64(ArrayD::from_elem(shape, v)),
            Scalar::C128(v) => ArrayData::C128(ArrayD::from_elem(shape, v)),
        }
    }

    /// The array converted to `dtype` with numpy's `astype` semantics:
    ///
    /// - between integer types the value wraps (keeps the low bits), as numpy's `astype`;
    /// - float to int64 truncates toward zero and saturates, NaN giving 0;
    /// - float to int32 truncates toward zero; NaN, infinities and values out of int32's range give
    ///   `i32::MIN` (numpy's answer on x86-64; numpy calls it undefined);
    /// - float to uint8 goes through int32 as numpy does on x86-64 (`300.0` gives 44, `-1.0` 255);
    /// - float to uint64 truncates values in `[0, 2^64)`, wraps negative values above `-2^63`
    ///   through int64 (`-1.0` gives `u64::MAX`, as numpy), and gives `2^63` for NaN, infinities
    ///   and anything else out of range (numpy's answer on x86-64 for NaN and infinities);
    /// - complex to a real type takes the real part, where numpy also warns.
    pub fn cast(&self, dtype: DType) -> ArrayData {
        if self.dtype() == dtype {
            return self.clone();
        }
        match dtype {
            DType::Bool => ArrayData::Bool(with_array!(self, a => a.mapv(Element::to_bool))),
            DType::I32 => ArrayData::I32(with_array!(self, a => a.mapv(Element::to_i32))),
            DType::U8 => ArrayData::U8(with_array!(self, a => a.mapv(Element::to_u8))),
            DType::U64 => ArrayData::U64(with_array!(self, a => a.mapv(Element::to_u64))),
            DType::I64 => ArrayData::I64(with_array!(self, a => a.mapv(Element::to_i64))),
            DType::F32 => ArrayData::F32(with_array!(self, a => a.mapv(Element::to_f32))),
            DType::F64 => ArrayData::F64(with_array!(self, a => a.mapv(Element::to_f64))),
            DType::C128 => ArrayData::C128(with_array!(self, a => a.mapv(Element::to_c128))),
        }
    }

    /// A copy of the part of the array in `region` (a range per axis), in C order; an error names
    /// the region and the shape when it does not lie inside the array.
    pub fn region(&self, region: &[std::ops::Range<usize>]) -> Result<ArrayData> {
        let shape = self.shape();
        if region.len() != shape.len()
            || region
                .iter()
                .zip(shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(Error::InvalidArgument {
                op: "region",
                reason: format!("region {region:?} is not inside an array of shape {shape:?}"),
            });
        }
        let slice =
            |ax: ndarray::AxisDescription| ndarray::Slice::from(region[ax.axis.index()].clone());
        Ok(map_array!(self, a => a.slice_each_axis(slice).as_standard_layout().into_owned()))
    }

    /// The array in standard (C) layout, copying only if it is not.
    pub fn into_standard_layout(self) -> ArrayData {
        map_array!(self, a => if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() })
    }

    /// The typed array, if the dtype is `T`'s.
    pub fn into_typed<T: Element>(self) -> Result<ArrayD<T>> {
        let actual = self.dtype();
        T::unwrap(self).ok_or(Error::DTypeMismatch {
            expected: T::DTYPE,
            actual,
        })
    }

    /// The element at a (full) index as a scalar.
    pub fn get(&self, index: &[usize]) -> Option<Scalar> {
        match self {
            ArrayData::Bool(a) => a.get(index).map(|&v| Scalar::Bool(v)),
            ArrayData::I32(a) => a.get(index).map(|&v| Scalar::I32(v)),
            ArrayData::U8(a) => a.get(index).map(|&v| Scalar::U8(v)),
            ArrayData::U64(a) => a.get(index).map(|&v| Scalar::U64(v)),
            ArrayData::I64(a) => a.get(index).map(|&v| Scalar::I64(v)),
            ArrayData::F32(a) => a.get(index).map(|&v| Scalar::F32(v)),
            ArrayData::F64(a) => a.get(index).map(|&v| Scalar::F64(v)),
            ArrayData::C128(a) => a.get(index).map(|&v| Scalar::C128(v)),
        }
    }
}

/// A Rust type usable as an array element. Not every element type is ordered ([`Complex64`] is
/// not): code that compares elements asks for `PartialOrd` besides. The `to_*` conversions are
/// numpy's `astype` ([`ArrayData::cast`] lists the rules).
pub trait Element: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The dtype this Rust type stands for.
    const DTYPE: DType;
    /// Wraps a typed array as [`ArrayData`].
    fn wrap(a: ArrayD<Self>) -> ArrayData;
    /// The typed array inside, or `None` if its dtype is another.
    fn unwrap(a: ArrayData) -> Option<ArrayD<Self>>;
    /// A borrow of the typed array inside, or `None` if its dtype is another.
    fn view(a: &ArrayData) -> Option<&ArrayD<Self>>;
    /// The value as `f64` (numpy's `astype`).
    fn to_f64(self) -> f64;
    /// The value as `f32` (numpy's `astype`).
    fn to_f32(self) -> f32;
    /// The value as `i64` (numpy's `astype`).
    fn to_i64(self) -> i64;
    /// The value as `i32` (numpy's `astype`).
    fn to_i32(self) -> i32;
    /// The value as `u8` (numpy's `astype`).
    fn to_u8(self) -> u8;
    /// The value as `u64` (numpy's `astype`).
    fn to_u64(self) -> u64;
    /// The value as `bool` (numpy's `astype`).
    fn to_bool(self) -> bool;
    /// The value as a complex number (zero imaginary part for real types).
    fn to_c128(self) -> Complex64 {
        Complex64::new(self.to_f64(), 0.0)
    }
    /// The scalar as this type (numpy's `astype`).
    fn from_scalar(s: Scalar) -> Self;
    /// The value as a [`Scalar`] of this type's dtype.
    fn into_scalar(self) -> Scalar;
}

/// Float to int32 as numpy on x86-64 (`cvttsd2si`): truncation, with NaN, infinities and values
/// out of range giving `i32::MIN`.
#[inline]
pub(crate) fn f64_to_i32(v: f64) -> i32 {
    let t = v.trunc();
    if t.is_nan() || t < i32::MIN as f64 || t > i32::MAX as f64 {
        i32::MIN
    } else {
        t as i32
    }
}

/// Float to uint64: truncation in `[0, 2^64)`, negative values above `-2^63` wrap through int64
/// (numpy: `-1.0` gives `u64::MAX`), anything else (NaN, infinities, out of range) `2^63`.
#[inline]
pub(crate) fn f64_to_u64(v: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let t = v.trunc();
    if (0.0..2.0 * TWO63).contains(&t) {
        t as u64
    } else if t < 0.0 && t > -TWO63 {
        t as i64 as u64
    } else {
        1 << 63
    }
}

/// The items of an [`Element`] impl that tie the type to its `ArrayData` variant (and dtype).
macro_rules! element_variant {
    ($variant:ident) => {
        const DTYPE: DType = DType::$variant;
        fn wrap(a: ArrayD<Self>) -> ArrayData {
            ArrayData::$variant(a)
        }
        fn unwrap(a: ArrayData) -> Option<ArrayD<Self>> {
            match a {
                ArrayData::$variant(a) => Some(a),
                _ => None,
            }
        }
        fn view(a: &ArrayData) -> Option<&ArrayD<Self>> {
            match a {
                ArrayData::$variant(a) => Some(a),
                _ => None,
            }
        }
    };
}

/// Element impls for the integer types: conversions between integers wrap, as numpy's `astype`.
macro_rules! int_element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            element_variant!($variant);
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn to_i32(self) -> i32 {
                self as i32
            }
            fn to_u8(self) -> u8 {
                self as u8
            }
            fn to_u64(self) -> u64 {
                self as u64
            }
            fn to_bool(self) -> bool {
                self != 0
            }
            fn from_scalar(s: Scalar) -> Self {
                let v: $t = match s {
                    Scalar::Bool(v) => v.to_u8() as $t,
                    Scalar::I32(v) => v as $t,
                    Scalar::U8(v) => v as $t,
                    Scalar::U64(v) => v as $t,
                    Scalar::I64(v) => v as $t,
                    Scalar::F32(v) => <$t>::from_f64(v as f64),
                    Scalar::F64(v) => <$t>::from_f64(v),
                    Scalar::C128(v) => <$t>::from_f64(v.re),
                };
                v
            }
            fn into_scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
        }
    };
}

/// numpy's float-to-integer `astype` for each integer type ([`ArrayData::cast`]).
trait FromF64 {
    fn from_f64(v: f64) -> Self;
}
impl FromF64 for i64 {
    fn from_f64(v: f64) -> Self {
        v as i64
    }
}
impl FromF64 for i32 {
    fn from_f64(v: f64) -> Self {
        f64_to_i32(v)
    }
}
impl FromF64 for u8 {
    fn from_f64(v: f64) -> Self {
        f64_to_i32(v) as u8
    }
}
impl FromF64 for u64 {
    fn from_f64(v: f64) -> Self {
        f64_to_u64(v)
    }
}

int_element!(i64, I64);
int_element!(i32, I32);
int_element!(u8, U8);
int_element!(u64, U64);

/// Element impls for the float types (and complex128 through its real part).
macro_rules! float_element {
    ($t:ty, $variant:ident, |$v:ident| $re:expr, $truth:expr, $c128:expr) => {
        impl Element for $t {
            element_variant!($variant);
            fn to_f64(self) -> f64 {
                let $v = self;
                ($re) as f64
            }
            fn to_f32(self) -> f32 {
                let $v = self;
                ($re) as f32
            }
            fn to_i64(self) -> i64 {
                i64::from_f64(self.to_f64())
            }
            fn to_i32(self) -> i32 {
                i32::from_f64(self.to_f64())
            }
            fn to_u8(self) -> u8 {
                u8::from_f64(self.to_f64())
            }
            fn to_u64(self) -> u64 {
                u64::from_f64(self.to_f64())
            }
            fn to_bool(self) -> bool {
                let f: fn($t) -> bool = $truth;
                f(self)
            }
            fn to_c128(self) -> Complex64 {
                let f: fn($t) -> Complex64 = $c128;
                f(self)
            }
            fn from_scalar(s: Scalar) -> Self {
                match s.cast(DType::$variant) {
                    Scalar::$variant(v) => v,
                    _ => unreachable!("a cast gives its dtype"),
                }
            }
            fn into_scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
        }
    };
}

float_element!(f64, F64, |v| v, |v| v != 0.0, |v| Complex64::new(v, 0.0));
float_element!(f32, F32, |v| v, |v| v != 0.0, |v| Complex64::new(
    v as f64, 0.0
));
// Complex to real keeps the real part, as numpy's astype (which warns).
float_element!(
    Complex64,
    C128,
    |v| v.re,
    |v| v.re != 0.0 || v.im != 0.0,
    |v| v
);

impl Element for bool {
    element_variant!(Bool);
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_f32(self) -> f32 {
        self as u8 as f32
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_i32(self) -> i32 {
        self as i32
    }
    fn to_u8(self) -> u8 {
        self as u8
    }
    fn to_u64(self) -> u64 {
        self as u64
    }
    fn to_bool(self) -> bool {
        self
    }
    fn from_scalar(s: Scalar) -> Self {
        s.as_bool()
    }
    fn into_scalar(self) -> Scalar {
        Scalar::Bool(self)
    }
}

impl<T: Element> From<ArrayD<T>> for ArrayData {
    fn from(a: ArrayD<T>) -> Self {
        T::wrap(a)
    }
}

/// What a chunk task produces: array data, or the partial state of a reduction between tree levels.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkValue {
    /// A chunk of array data.
    Array(ArrayData),
    /// Count, mean and (for var/std) the sum of squared deviations, merged with Chan et al.'s
    /// pairwise update so that no sum of squares is ever formed.
    Moments(Moments),
    /// Best value so far and its index, for argmin/argmax.
    Arg(ArgPartial),
}

/// Partial state of mean, var and std.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    /// Number of elements merged so far, per output element.
    pub count: ArrayD<f64>,
    /// Mean of those elements.
    pub mean: ArrayD<f64>,
    /// Sum of squared deviations from the mean; `None` when only the mean is wanted.
    pub m2: Option<ArrayD<f64>>,
}

/// Partial state of argmin and argmax: the best value and its index along the reduced axes.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgPartial {
    /// The best (smallest or largest) value so far, per output element.
    pub value: ArrayData,
    /// Its flat index within the reduced axes.
    pub index: ArrayD<i64>,
}

impl ChunkValue {
    /// The array inside, or an error naming what it is instead.
    pub fn as_array(&self) -> Result<&ArrayData> {
        match self {
            ChunkValue::Array(a) => Ok(a),
            other => Err(Error::InvalidArgument {
                op: "chunk",
                reason: format!("expected array data, found a {} partial", other.kind()),
            }),
        }
    }

    /// What the value is ("array", "moments", "argmin/argmax"), for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ChunkValue::Array(_) => "array",
            ChunkValue::Moments(_) => "moments",
            ChunkValue::Arg(_) => "argmin/argmax",
        }
    }

    /// Bytes held, for memory accounting.
    pub fn nbytes(&self) -> usize {
        match self {
            ChunkValue::Array(a) => a.len() * a.dtype().size(),
            ChunkValue::Moments(m) => m.count.len() * if m.m2.is_some() { 24 } else { 16 },
            ChunkValue::Arg(a) => a.index.len() * (8 + a.value.dtype().size()),
        }
    }
}
