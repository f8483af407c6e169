//! Scalars, chunk grids, array metadata and layer ids on the wire; a layer id's name is mapped back
//! to the engine's static op names ([`static_name`]).

use super::enums::all_of;
use super::pb;
use super::{dtype_of, required, u64s, usizes_of, wire};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, LayerId};
use crate::meta::{Chunks, Scalar};
use crate::ops::{BinaryFn, CmpFn, ElemFunc, Op, Reduction, UnaryFn};

// ---------------------------------------------------------------------------------------------
// scalars, chunks, metadata, ids

impl From<Scalar> for pb::Scalar {
    fn from(s: Scalar) -> Self {
        use pb::scalar::Value;
        pb::Scalar {
            value: Some(match s {
                Scalar::Bool(v) => Value::BoolValue(v),
                Scalar::I64(v) => Value::I64Value(v),
                Scalar::I32(v) => Value::I32Value(v),
                Scalar::U8(v) => Value::U8Value(v as u32),
                Scalar::U64(v) => Value::U64Value(v),
                Scalar::F32(v) => Value::F32Value(v),
                Scalar::F64(v) => Value::F64Value(v),
                Scalar::C128(v) => Value::C128Value(pb::Complex128 { re: v.re, im: v.im }),
            }),
        }
    }
}

impl TryFrom<pb::Scalar> for Scalar {
    type Error = Error;
    fn try_from(s: pb::Scalar) -> Result<Self> {
        use pb::scalar::Value;
        Ok(match required(s.value, "scalar value")? {
            Value::BoolValue(v) => Scalar::Bool(v),
            Value::I64Value(v) => Scalar::I64(v),
            Value::I32Value(v) => Scalar::I32(v),
            Value::U8Value(v) => Scalar::U8(
                u8::try_from(v).map_err(|_| wire(format!("uint8 scalar holds {v}, above 255")))?,
            ),
            Value::U64Value(v) => Scalar::U64(v),
            Value::F32Value(v) => Scalar::F32(v),
            Value::F64Value(v) => Scalar::F64(v),
            Value::C128Value(v) => Scalar::C128(num_complex::Complex64::new(v.re, v.im)),
        })
    }
}

impl From<&Chunks> for pb::Chunks {
    fn from(c: &Chunks) -> Self {
        pb::Chunks {
            axes: c
                .sizes()
                .iter()
                .map(|a| pb::AxisChunks { sizes: u64s(a) })
                .collect(),
        }
    }
}

impl TryFrom<pb::Chunks> for Chunks {
    type Error = Error;
    /// Checks only what building a [`Chunks`] needs (sizes that add up without overflow); whether the
    /// grid is well formed is `validate`'s business.
    fn try_from(c: pb::Chunks) -> Result<Self> {
        let mut sizes = Vec::with_capacity(c.axes.len());
        for (axis, a) in c.axes.iter().enumerate() {
            let s = usizes_of(&a.sizes, "chunk size")?;
            s.iter()
                .try_fold(0usize, |acc, &x| acc.checked_add(x))
                .ok_or_else(|| wire(format!("chunk sizes on axis {axis} overflow")))?;
            sizes.push(s);
        }
        Ok(Chunks::from_sizes(sizes))
    }
}

impl From<&ArrayMeta> for pb::ArrayMeta {
    fn from(m: &ArrayMeta) -> Self {
        pb::ArrayMeta {
            chunks: Some((&m.chunks).into()),
            dtype: pb::DType::from(m.dtype) as i32,
        }
    }
}

impl TryFrom<pb::ArrayMeta> for ArrayMeta {
    type Error = Error;
    fn try_from(m: pb::ArrayMeta) -> Result<Self> {
        Ok(ArrayMeta {
            chunks: required(m.chunks, "chunks")?.try_into()?,
            dtype: dtype_of(m.dtype)?,
        })
    }
}

impl From<LayerId> for pb::LayerId {
    fn from(id: LayerId) -> Self {
        pb::LayerId {
            name: id.name.to_string(),
            token: id.token,
        }
    }
}

impl TryFrom<pb::LayerId> for LayerId {
    type Error = Error;
    fn try_from(id: pb::LayerId) -> Result<Self> {
        let name = static_name(&id.name).ok_or_else(|| {
            wire(format!(
                "layer id {}-{:016x} has a name no op of this version gives",
                id.name, id.token
            ))
        })?;
        Ok(LayerId {
            name,
            token: id.token,
        })
    }
}

/// The engine's own `&'static str` for a layer name from the wire. [`LayerId::name`] is static, and
/// looking names up (rather than leaking a string per id) keeps a stream of forged ids from growing
/// memory.
pub(super) fn static_name(name: &str) -> Option<&'static str> {
    Op::OTHER_NAMES
        .iter()
        .copied()
        .chain(Reduction::ALL.iter().map(|r| r.name()))
        .chain(UnaryFn::ALL.iter().map(|f| f.name()))
        .chain(BinaryFn::ALL.iter().map(|f| f.name()))
        .chain(all_of::<pb::CmpFn, CmpFn>().map(CmpFn::name))
        .chain([ElemFunc::Where, ElemFunc::Clip, ElemFunc::Cast].map(ElemFunc::name))
        .chain(crate::ops::ScanFn::ALL.iter().map(|f| f.name()))
        .chain(crate::ops::LinalgKind::ALL.iter().map(|k| k.name()))
        .chain(crate::ops::FftKind::ALL.iter().map(|k| k.name()))
        .find(|n| *n == name)
}
