//! Chunk data: [`ArrayData`], an ndarray of one of the supported element types, and the [`Element`]
//! trait that ties a Rust type to its [`DType`].

use ndarray::{ArrayD, IxDyn};
use num_complex::Complex64;

use crate::error::{Error, Result};
use crate::meta::{DType, Scalar};

/// An n-dimensional array of one of tessera's element types.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    Bool(ArrayD<bool>),
    I64(ArrayD<i64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    C128(ArrayD<Complex64>),
}

/// Applies an expression to the typed array inside an [`ArrayData`], binding it to `$a`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_array {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            $crate::ArrayData::Bool($a) => $body,
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
            $crate::ArrayData::I64($a) => $crate::ArrayData::I64($body),
            $crate::ArrayData::F32($a) => $crate::ArrayData::F32($body),
            $crate::ArrayData::F64($a) => $crate::ArrayData::F64($body),
            $crate::ArrayData::C128($a) => $crate::ArrayData::C128($body),
        }
    };
}

impl ArrayData {
    pub fn dtype(&self) -> DType {
        match self {
            ArrayData::Bool(_) => DType::Bool,
            ArrayData::I64(_) => DType::I64,
            ArrayData::F32(_) => DType::F32,
            ArrayData::F64(_) => DType::F64,
            ArrayData::C128(_) => DType::C128,
        }
    }

    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An array of `shape` filled with `value` cast to `dtype`.
    pub fn full(shape: &[usize], value: Scalar, dtype: DType) -> Self {
        let shape = IxDyn(shape);
        match value.cast(dtype) {
            Scalar::Bool(v) => ArrayData::Bool(ArrayD::from_elem(shape, v)),
            Scalar::I64(v) => ArrayData::I64(ArrayD::from_elem(shape, v)),
            Scalar::F32(v) => ArrayData::F32(ArrayD::from_elem(shape, v)),
            Scalar::F64(v) => ArrayData::F64(ArrayD::from_elem(shape, v)),
            Scalar::C128(v) => ArrayData::C128(ArrayD::from_elem(shape, v)),
        }
    }

    /// The array converted to `dtype` with numpy's `astype` semantics (float to int truncates toward
    /// zero and saturates; NaN becomes 0; complex to a real type takes the real part, where numpy
    /// also warns).
    pub fn cast(&self, dtype: DType) -> ArrayData {
        if self.dtype() == dtype {
            return self.clone();
        }
        match dtype {
            DType::Bool => ArrayData::Bool(with_array!(self, a => a.mapv(Element::to_bool))),
            DType::I64 => ArrayData::I64(with_array!(self, a => a.mapv(Element::to_i64))),
            DType::F32 => {
                ArrayData::F32(with_array!(self, a => a.mapv(|v| Element::to_f64(v) as f32)))
            }
            DType::F64 => ArrayData::F64(with_array!(self, a => a.mapv(Element::to_f64))),
            DType::C128 => ArrayData::C128(with_array!(self, a => a.mapv(Element::to_c128))),
        }
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
            ArrayData::I64(a) => a.get(index).map(|&v| Scalar::I64(v)),
            ArrayData::F32(a) => a.get(index).map(|&v| Scalar::F32(v)),
            ArrayData::F64(a) => a.get(index).map(|&v| Scalar::F64(v)),
            ArrayData::C128(a) => a.get(index).map(|&v| Scalar::C128(v)),
        }
    }
}

/// A Rust type usable as an array element. Not every element type is ordered ([`Complex64`] is
/// not): code that compares elements asks for `PartialOrd` besides.
pub trait Element: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    const DTYPE: DType;
    fn wrap(a: ArrayD<Self>) -> ArrayData;
    fn unwrap(a: ArrayData) -> Option<ArrayD<Self>>;
    fn view(a: &ArrayData) -> Option<&ArrayD<Self>>;
    fn to_f64(self) -> f64;
    fn to_i64(self) -> i64;
    fn to_bool(self) -> bool;
    /// The value as a complex number (zero imaginary part for real types).
    fn to_c128(self) -> Complex64 {
        Complex64::new(self.to_f64(), 0.0)
    }
    fn from_scalar(s: Scalar) -> Self;
    fn into_scalar(self) -> Scalar;
}

macro_rules! element {
    ($t:ty, $variant:ident, $to_f64:expr, $to_i64:expr, $to_bool:expr, $from:expr) => {
        impl Element for $t {
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
            fn to_f64(self) -> f64 {
                let f: fn($t) -> f64 = $to_f64;
                f(self)
            }
            fn to_i64(self) -> i64 {
                let f: fn($t) -> i64 = $to_i64;
                f(self)
            }
            fn to_bool(self) -> bool {
                let f: fn($t) -> bool = $to_bool;
                f(self)
            }
            fn from_scalar(s: Scalar) -> Self {
                let f: fn(Scalar) -> $t = $from;
                f(s)
            }
            fn into_scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
        }
    };
}

element!(f64, F64, |v| v, |v| v as i64, |v| v != 0.0, |s| s.as_f64());
element!(
    f32,
    F32,
    |v| v as f64,
    |v| v as i64,
    |v| v != 0.0,
    |s| s.as_f64() as f32
);
element!(i64, I64, |v| v as f64, |v| v, |v| v != 0, |s| s.as_i64());
element!(bool, Bool, |v| v as u8 as f64, |v| v as i64, |v| v, |s| s
    .as_bool());

// Complex to real keeps the real part, as numpy's astype (which warns).
impl Element for Complex64 {
    const DTYPE: DType = DType::C128;
    fn wrap(a: ArrayD<Self>) -> ArrayData {
        ArrayData::C128(a)
    }
    fn unwrap(a: ArrayData) -> Option<ArrayD<Self>> {
        match a {
            ArrayData::C128(a) => Some(a),
            _ => None,
        }
    }
    fn view(a: &ArrayData) -> Option<&ArrayD<Self>> {
        match a {
            ArrayData::C128(a) => Some(a),
            _ => None,
        }
    }
    fn to_f64(self) -> f64 {
        self.re
    }
    fn to_i64(self) -> i64 {
        self.re as i64
    }
    fn to_bool(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
    fn to_c128(self) -> Complex64 {
        self
    }
    fn from_scalar(s: Scalar) -> Self {
        s.as_c128()
    }
    fn into_scalar(self) -> Scalar {
        Scalar::C128(self)
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
    pub count: ArrayD<f64>,
    pub mean: ArrayD<f64>,
    pub m2: Option<ArrayD<f64>>,
}

/// Partial state of argmin and argmax: the best value and its index along the reduced axes.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgPartial {
    pub value: ArrayData,
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
