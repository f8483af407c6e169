//! The wire format: the one module where the engine's types meet the protobuf messages of
//! `tessera-proto` ([`pb`]). Every graph type converts both ways — encoding with `From`/`TryFrom`
//! from a reference, decoding with `TryFrom` from the message — and chunks have a fast path
//! ([`encode_chunk`], [`decode_chunk`]) for the bytes workers stream to each other.
//!
//! Decoding never trusts the sender: a missing field, an unknown enum value or data that does not fit
//! its shape is an [`Error::Wire`] saying what and where, and [`graph_from_proto`] runs
//! [`validate`] so that a graph that decodes is one the kernels can run.
//!
//! # Layer ids
//!
//! A decoded layer keeps the id it was sent with; it is not recomputed, and a recomputed id is not
//! required to match. Fusion keeps a consumer's id on the fused layer (so output keys do not change),
//! which means the id of a layer in an optimized graph — the graph that is sent — is in general *not*
//! `Layer::new`'s token of its op: checking it would reject every fused graph. Ids name tasks; they are
//! not integrity checks, and a sender able to forge a graph could forge its ids too. What protects the
//! kernels is [`validate`], which checks the structure.
//!
//! # Files
//!
//! A `.npy` source travels as its path: the machine that runs the task opens the file itself. Decoding
//! re-reads the header there and checks that dtype, shape and file length are still what the graph was
//! built against (the modification time is not compared: it need not survive a copy to another
//! machine).

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use prost::Message;
use smallvec::SmallVec;

pub use tessera_proto::v1 as pb;

use crate::data::{ArgPartial, ArrayData, ChunkValue, Moments};
use crate::error::{Error, Result};
use crate::graph::validate::validate;
use crate::graph::{ArrayMeta, Graph, Layer, LayerId};
use crate::meta::{Chunks, DType, Scalar};
use crate::ops::structure::Piece;
use crate::ops::{
    AxisSlice, BinaryFn, CmpFn, Distribution, ElemFunc, Finalize, FromArray, Instr, Leaf, LeafKind,
    Materialized, MatmulOp, NpySource, Op, Program, ReduceCombine, ReduceSink, Reduction, SliceOp,
    UnaryFn,
};

// ---------------------------------------------------------------------------------------------
// helpers

fn wire(what: impl Into<String>) -> Error {
    Error::Wire { what: what.into() }
}

/// Prefixes the context to a wire error; other errors (a file that cannot be read …) name their
/// subject already.
fn within(e: Error, context: impl std::fmt::Display) -> Error {
    match e {
        Error::Wire { what } => Error::Wire {
            what: format!("{context}: {what}"),
        },
        other => other,
    }
}

fn required<T>(field: Option<T>, what: &str) -> Result<T> {
    field.ok_or_else(|| wire(format!("{what} is missing")))
}

fn usize_of(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| wire(format!("{what} {v} does not fit in a usize here")))
}

fn usizes_of(v: &[u64], what: &str) -> Result<Vec<usize>> {
    v.iter().map(|&x| usize_of(x, what)).collect()
}

fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| wire(format!("{what} {v} does not fit the wire's 32 bits")))
}

fn u32s_of(v: &[usize], what: &str) -> Result<Vec<u32>> {
    v.iter().map(|&x| u32_of(x, what)).collect()
}

fn u64s(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

fn usizes_of_u32(v: &[u32]) -> Vec<usize> {
    v.iter().map(|&x| x as usize).collect()
}

/// An enum field's value, which prost keeps as the raw `i32` so that unknown values survive decoding.
fn enum_of<E: TryFrom<i32>>(v: i32, what: &str) -> Result<E> {
    E::try_from(v).map_err(|_| wire(format!("unknown {what} value {v}")))
}

fn dtype_of(v: i32) -> Result<DType> {
    DType::try_from(enum_of::<pb::DType>(v, "dtype")?)
}

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
fn all_of<W: TryFrom<i32>, E: From<W>>() -> impl Iterator<Item = E> {
    (0..).map_while(|i| W::try_from(i).ok()).map(E::from)
}

// ---------------------------------------------------------------------------------------------
// scalars, chunks, metadata, ids

impl From<Scalar> for pb::Scalar {
    fn from(s: Scalar) -> Self {
        use pb::scalar::Value;
        pb::Scalar {
            value: Some(match s {
                Scalar::Bool(v) => Value::BoolValue(v),
                Scalar::I64(v) => Value::I64Value(v),
                Scalar::F32(v) => Value::F32Value(v),
                Scalar::F64(v) => Value::F64Value(v),
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
            Value::F32Value(v) => Scalar::F32(v),
            Value::F64Value(v) => Scalar::F64(v),
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
    /// grid is well formed is [`validate`]'s business.
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

/// Names of ops that are not a function's or a reduction's name (see [`Op::name`]).
const OP_NAMES: &[&str] = &[
    "random",
    "full",
    "arange",
    "linspace",
    "identity",
    "empty",
    "array",
    "from-npy",
    "persist",
    "combine",
    "transpose",
    "getitem",
    "rechunk",
    "reshape",
    "concatenate",
    "stack",
    "matmul",
    "mirror-upper",
    "map-blocks",
];

/// The engine's own `&'static str` for a layer name from the wire. [`LayerId::name`] is static, and
/// looking names up (rather than leaking a string per id) keeps a stream of forged ids from growing
/// memory.
fn static_name(name: &str) -> Option<&'static str> {
    OP_NAMES
        .iter()
        .copied()
        .chain(all_of::<pb::Reduction, Reduction>().map(Reduction::name))
        .chain(all_of::<pb::UnaryFn, UnaryFn>().map(UnaryFn::name))
        .chain(all_of::<pb::BinaryFn, BinaryFn>().map(BinaryFn::name))
        .chain(all_of::<pb::CmpFn, CmpFn>().map(CmpFn::name))
        .chain([ElemFunc::Where, ElemFunc::Clip, ElemFunc::Cast].map(ElemFunc::name))
        .find(|n| *n == name)
}

// ---------------------------------------------------------------------------------------------
// programs

impl From<ElemFunc> for pb::ElemFunc {
    fn from(f: ElemFunc) -> Self {
        use pb::elem_func::Func;
        pb::ElemFunc {
            func: Some(match f {
                ElemFunc::Unary(u) => Func::Unary(pb::UnaryFn::from(u) as i32),
                ElemFunc::Binary(b) => Func::Binary(pb::BinaryFn::from(b) as i32),
                ElemFunc::Compare(c) => Func::Compare(pb::CmpFn::from(c) as i32),
                ElemFunc::Where => Func::Where(pb::Empty {}),
                ElemFunc::Clip => Func::Clip(pb::Empty {}),
                ElemFunc::Cast => Func::Cast(pb::Empty {}),
            }),
        }
    }
}

impl TryFrom<pb::ElemFunc> for ElemFunc {
    type Error = Error;
    fn try_from(f: pb::ElemFunc) -> Result<Self> {
        use pb::elem_func::Func;
        Ok(match required(f.func, "function")? {
            Func::Unary(u) => ElemFunc::Unary(enum_of::<pb::UnaryFn>(u, "unary function")?.into()),
            Func::Binary(b) => {
                ElemFunc::Binary(enum_of::<pb::BinaryFn>(b, "binary function")?.into())
            }
            Func::Compare(c) => ElemFunc::Compare(enum_of::<pb::CmpFn>(c, "comparison")?.into()),
            Func::Where(_) => ElemFunc::Where,
            Func::Clip(_) => ElemFunc::Clip,
            Func::Cast(_) => ElemFunc::Cast,
        })
    }
}

impl From<&Instr> for pb::Instr {
    fn from(i: &Instr) -> Self {
        pb::Instr {
            func: Some(i.func.into()),
            args: i.args.to_vec(),
            dtype: pb::DType::from(i.dtype) as i32,
        }
    }
}

impl TryFrom<pb::Instr> for Instr {
    type Error = Error;
    fn try_from(i: pb::Instr) -> Result<Self> {
        Ok(Instr {
            func: required(i.func, "instruction function")?.try_into()?,
            args: SmallVec::from_vec(i.args),
            dtype: dtype_of(i.dtype)?,
        })
    }
}

impl TryFrom<&Leaf> for pb::Leaf {
    type Error = Error;
    fn try_from(l: &Leaf) -> Result<Self> {
        use pb::leaf::Kind;
        let kind = match l.kind {
            LeafKind::Input(i) => Kind::Input(u32_of(i, "input index")?),
            LeafKind::Random { seed, dist } => Kind::Random(pb::RandomLeaf {
                seed,
                dist: pb::Distribution::from(dist) as i32,
            }),
            LeafKind::Full(s) => Kind::Full(s.into()),
            LeafKind::Arange { start, step } => Kind::Arange(pb::ArangeLeaf { start, step }),
            LeafKind::Linspace {
                start,
                stop,
                step,
                num,
                endpoint,
            } => Kind::Linspace(pb::LinspaceLeaf {
                start,
                stop,
                step,
                num,
                endpoint,
            }),
        };
        Ok(pb::Leaf {
            kind: Some(kind),
            shape: u64s(&l.shape),
            rank: u32_of(l.rank, "leaf rank")?,
            dtype: pb::DType::from(l.dtype) as i32,
            axes: l
                .axes
                .iter()
                .map(|&a| u32_of(a, "leaf axis"))
                .collect::<Result<_>>()?,
        })
    }
}

impl TryFrom<pb::Leaf> for Leaf {
    type Error = Error;
    fn try_from(l: pb::Leaf) -> Result<Self> {
        use pb::leaf::Kind;
        let kind = match required(l.kind, "leaf kind")? {
            Kind::Input(i) => LeafKind::Input(i as usize),
            Kind::Random(r) => LeafKind::Random {
                seed: r.seed,
                dist: enum_of::<pb::Distribution>(r.dist, "distribution")?.into(),
            },
            Kind::Full(s) => LeafKind::Full(s.try_into()?),
            Kind::Arange(a) => LeafKind::Arange {
                start: a.start,
                step: a.step,
            },
            Kind::Linspace(s) => LeafKind::Linspace {
                start: s.start,
                stop: s.stop,
                step: s.step,
                num: s.num,
                endpoint: s.endpoint,
            },
        };
        Ok(Leaf {
            kind,
            shape: usizes_of(&l.shape, "leaf dimension")?,
            rank: l.rank as usize,
            dtype: dtype_of(l.dtype)?,
            axes: l.axes.iter().map(|&a| a as usize).collect(),
        })
    }
}

impl TryFrom<&ReduceSink> for pb::ReduceSink {
    type Error = Error;
    fn try_from(r: &ReduceSink) -> Result<Self> {
        Ok(pb::ReduceSink {
            reduction: pb::Reduction::from(r.reduction) as i32,
            axes: u32s_of(&r.axes, "reduced axis")?,
            domain_shape: u64s(&r.domain_shape),
        })
    }
}

impl TryFrom<pb::ReduceSink> for ReduceSink {
    type Error = Error;
    fn try_from(r: pb::ReduceSink) -> Result<Self> {
        Ok(ReduceSink {
            reduction: enum_of::<pb::Reduction>(r.reduction, "reduction")?.into(),
            axes: usizes_of_u32(&r.axes),
            domain_shape: usizes_of(&r.domain_shape, "domain dimension")?,
        })
    }
}

impl TryFrom<&Program> for pb::Program {
    type Error = Error;
    fn try_from(p: &Program) -> Result<Self> {
        Ok(pb::Program {
            domain: Some((&p.domain).into()),
            leaves: p
                .leaves
                .iter()
                .map(pb::Leaf::try_from)
                .collect::<Result<_>>()?,
            instrs: p.instrs.iter().map(pb::Instr::from).collect(),
            output: p.output,
            reduce: p
                .reduce
                .as_ref()
                .map(pb::ReduceSink::try_from)
                .transpose()?,
        })
    }
}

impl TryFrom<pb::Program> for Program {
    type Error = Error;
    fn try_from(p: pb::Program) -> Result<Self> {
        Ok(Program {
            domain: required(p.domain, "program domain")?.try_into()?,
            leaves: p
                .leaves
                .into_iter()
                .enumerate()
                .map(|(i, l)| Leaf::try_from(l).map_err(|e| within(e, format!("leaf {i}"))))
                .collect::<Result<_>>()?,
            instrs: p
                .instrs
                .into_iter()
                .enumerate()
                .map(|(i, x)| Instr::try_from(x).map_err(|e| within(e, format!("instruction {i}"))))
                .collect::<Result<_>>()?,
            output: p.output,
            reduce: p.reduce.map(ReduceSink::try_from).transpose()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// reductions and slices

impl From<&Finalize> for pb::Finalize {
    fn from(f: &Finalize) -> Self {
        pb::Finalize {
            keepdims: f.keepdims,
            ddof: f.ddof,
            dtype: pb::DType::from(f.dtype) as i32,
        }
    }
}

impl TryFrom<pb::Finalize> for Finalize {
    type Error = Error;
    fn try_from(f: pb::Finalize) -> Result<Self> {
        Ok(Finalize {
            keepdims: f.keepdims,
            ddof: f.ddof,
            dtype: dtype_of(f.dtype)?,
        })
    }
}

impl TryFrom<&ReduceCombine> for pb::ReduceCombine {
    type Error = Error;
    fn try_from(c: &ReduceCombine) -> Result<Self> {
        Ok(pb::ReduceCombine {
            reduction: pb::Reduction::from(c.reduction) as i32,
            axes: u32s_of(&c.axes, "reduced axis")?,
            group: u64s(&c.group),
            finalize: c.finalize.as_ref().map(pb::Finalize::from),
        })
    }
}

impl TryFrom<pb::ReduceCombine> for ReduceCombine {
    type Error = Error;
    fn try_from(c: pb::ReduceCombine) -> Result<Self> {
        Ok(ReduceCombine {
            reduction: enum_of::<pb::Reduction>(c.reduction, "reduction")?.into(),
            axes: usizes_of_u32(&c.axes),
            group: usizes_of(&c.group, "group size")?,
            finalize: c.finalize.map(Finalize::try_from).transpose()?,
        })
    }
}

impl TryFrom<&SliceOp> for pb::SliceOp {
    type Error = Error;
    fn try_from(s: &SliceOp) -> Result<Self> {
        use pb::axis_slice::Sel;
        let axes = s
            .axes
            .iter()
            .map(|a| {
                Ok(pb::AxisSlice {
                    sel: Some(match *a {
                        AxisSlice::Range { start, step, len } => Sel::Range(pb::AxisRange {
                            start: start as u64,
                            step: i64::try_from(step)
                                .map_err(|_| wire(format!("slice step {step} overflows")))?,
                            len: len as u64,
                        }),
                        AxisSlice::Index(i) => Sel::Index(i as u64),
                    }),
                })
            })
            .collect::<Result<_>>()?;
        let pieces = s
            .pieces
            .iter()
            .map(|axis| pb::AxisPieces {
                pieces: axis
                    .iter()
                    .map(|p| pb::Piece {
                        in_block: p.in_block,
                        local_start: p.local_start as u64,
                        len: p.len as u64,
                    })
                    .collect(),
            })
            .collect();
        Ok(pb::SliceOp { axes, pieces })
    }
}

impl TryFrom<pb::SliceOp> for SliceOp {
    type Error = Error;
    fn try_from(s: pb::SliceOp) -> Result<Self> {
        use pb::axis_slice::Sel;
        let axes = s
            .axes
            .into_iter()
            .enumerate()
            .map(|(axis, a)| {
                Ok(
                    match required(a.sel, &format!("selection on slice axis {axis}"))? {
                        Sel::Range(r) => AxisSlice::Range {
                            start: usize_of(r.start, "slice start")?,
                            step: isize::try_from(r.step)
                                .map_err(|_| wire(format!("slice step {} overflows", r.step)))?,
                            len: usize_of(r.len, "slice length")?,
                        },
                        Sel::Index(i) => AxisSlice::Index(usize_of(i, "slice index")?),
                    },
                )
            })
            .collect::<Result<_>>()?;
        let pieces = s
            .pieces
            .into_iter()
            .map(|axis| {
                axis.pieces
                    .into_iter()
                    .map(|p| {
                        Ok(Piece {
                            in_block: p.in_block,
                            local_start: usize_of(p.local_start, "piece start")?,
                            len: usize_of(p.len, "piece length")?,
                        })
                    })
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        Ok(SliceOp { axes, pieces })
    }
}

// ---------------------------------------------------------------------------------------------
// array data and chunks

/// Writes the elements of `a` in C order as `N`-byte little-endian values. The loop over fixed-size
/// chunks of a slice compiles to straight vector code: no per-element bounds checks or pushes.
fn put_le<T: Copy, const N: usize>(a: &ArrayD<T>, le: impl Fn(T) -> [u8; N], out: &mut [u8]) {
    let (dst, _) = out.as_chunks_mut::<N>();
    match a.as_slice() {
        Some(s) => dst.iter_mut().zip(s).for_each(|(d, &x)| *d = le(x)),
        None => dst.iter_mut().zip(a.iter()).for_each(|(d, &x)| *d = le(x)),
    }
}

/// Reads `N`-byte little-endian values; `data.len()` is a multiple of `N` (checked by the caller).
fn get_le<T, const N: usize>(data: &[u8], le: impl Fn([u8; N]) -> T) -> Vec<T> {
    let (src, _) = data.as_chunks::<N>();
    src.iter().map(|b| le(*b)).collect()
}

/// Writes `a`'s elements into `out`, which is exactly `a.len() * dtype.size()` bytes.
fn write_elements(a: &ArrayData, out: &mut [u8]) {
    match a {
        ArrayData::Bool(x) => put_le(x, |b: bool| [b as u8], out),
        ArrayData::I64(x) => put_le(x, i64::to_le_bytes, out),
        ArrayData::F32(x) => put_le(x, f32::to_le_bytes, out),
        ArrayData::F64(x) => put_le(x, f64::to_le_bytes, out),
    }
}

/// An array from its wire parts, checking that the bytes fit dtype and shape.
fn array_from_parts(dtype: i32, shape: &[u64], data: &[u8]) -> Result<ArrayData> {
    let dtype = dtype_of(dtype)?;
    let shape = usizes_of(shape, "array dimension")?;
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| wire(format!("array shape {shape:?} has too many elements")))?;
    let nbytes = len
        .checked_mul(dtype.size())
        .ok_or_else(|| wire(format!("array shape {shape:?} has too many elements")))?;
    if data.len() != nbytes {
        return Err(wire(format!(
            "{dtype} array of shape {shape:?} needs {nbytes} bytes, the message has {}",
            data.len()
        )));
    }
    let dim = IxDyn(&shape);
    let shaped = |e: ndarray::ShapeError| wire(format!("array of shape {shape:?}: {e}"));
    Ok(match dtype {
        DType::Bool => {
            if let Some(b) = data.iter().find(|&&b| b > 1) {
                return Err(wire(format!("bool array holds the byte {b}, not 0 or 1")));
            }
            let v = data.iter().map(|&b| b != 0).collect();
            ArrayData::Bool(ArrayD::from_shape_vec(dim, v).map_err(shaped)?)
        }
        DType::I64 => ArrayData::I64(
            ArrayD::from_shape_vec(dim, get_le(data, i64::from_le_bytes)).map_err(shaped)?,
        ),
        DType::F32 => ArrayData::F32(
            ArrayD::from_shape_vec(dim, get_le(data, f32::from_le_bytes)).map_err(shaped)?,
        ),
        DType::F64 => ArrayData::F64(
            ArrayD::from_shape_vec(dim, get_le(data, f64::from_le_bytes)).map_err(shaped)?,
        ),
    })
}

impl From<&ArrayData> for pb::ArrayData {
    fn from(a: &ArrayData) -> Self {
        let mut data = vec![0u8; a.len() * a.dtype().size()];
        write_elements(a, &mut data);
        pb::ArrayData {
            dtype: pb::DType::from(a.dtype()) as i32,
            shape: u64s(a.shape()),
            data,
        }
    }
}

impl TryFrom<pb::ArrayData> for ArrayData {
    type Error = Error;
    fn try_from(a: pb::ArrayData) -> Result<Self> {
        array_from_parts(a.dtype, &a.shape, &a.data)
    }
}

fn f64_array(a: &ArrayD<f64>) -> pb::ArrayData {
    (&ArrayData::F64(a.clone())).into()
}

fn typed<T: crate::data::Element>(a: pb::ArrayData, what: &str) -> Result<ArrayD<T>> {
    ArrayData::try_from(a)?
        .into_typed()
        .map_err(|e| wire(format!("{what}: {e}")))
}

impl From<&ChunkValue> for pb::ChunkValue {
    fn from(v: &ChunkValue) -> Self {
        use pb::chunk_value::Value;
        pb::ChunkValue {
            value: Some(match v {
                ChunkValue::Array(a) => Value::Array(a.into()),
                ChunkValue::Moments(m) => Value::Moments(pb::Moments {
                    count: Some(f64_array(&m.count)),
                    mean: Some(f64_array(&m.mean)),
                    m2: m.m2.as_ref().map(f64_array),
                }),
                ChunkValue::Arg(a) => Value::Arg(pb::ArgPartial {
                    value: Some((&a.value).into()),
                    index: Some((&ArrayData::I64(a.index.clone())).into()),
                }),
            }),
        }
    }
}

impl TryFrom<pb::ChunkValue> for ChunkValue {
    type Error = Error;
    fn try_from(v: pb::ChunkValue) -> Result<Self> {
        use pb::chunk_value::Value;
        Ok(match required(v.value, "chunk value")? {
            Value::Array(a) => ChunkValue::Array(a.try_into()?),
            Value::Moments(m) => {
                let count: ArrayD<f64> = typed(required(m.count, "moments count")?, "count")?;
                let mean: ArrayD<f64> = typed(required(m.mean, "moments mean")?, "mean")?;
                let m2 = m.m2.map(|a| typed::<f64>(a, "m2")).transpose()?;
                // The merge kernels index all three by position.
                if mean.shape() != count.shape()
                    || m2.as_ref().is_some_and(|x| x.shape() != count.shape())
                {
                    return Err(wire(format!(
                        "moments of different shapes: count {:?}, mean {:?}, m2 {:?}",
                        count.shape(),
                        mean.shape(),
                        m2.as_ref().map(|x| x.shape())
                    )));
                }
                ChunkValue::Moments(Moments { count, mean, m2 })
            }
            Value::Arg(a) => {
                let value = ArrayData::try_from(required(a.value, "arg value")?)?;
                let index: ArrayD<i64> = typed(required(a.index, "arg index")?, "index")?;
                if value.shape() != index.shape() {
                    return Err(wire(format!(
                        "argmin/argmax partial with values of shape {:?} and indices of shape {:?}",
                        value.shape(),
                        index.shape()
                    )));
                }
                ChunkValue::Arg(ArgPartial { value, index })
            }
        })
    }
}

/// Appends `v` as a protobuf varint.
fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Key byte of a length-delimited field with a tag below 16.
const fn len_key(tag: u8) -> u8 {
    (tag << 3) | 2
}

/// A chunk as the bytes of an encoded [`pb::ChunkValue`], what workers stream to each other.
///
/// Array chunks (the bulk of the traffic) are framed by hand so that the elements are converted once,
/// straight into the output buffer; the bytes are exactly what prost would write for the same message.
/// Partials, which are small, go through prost.
pub fn encode_chunk(v: &ChunkValue) -> Vec<u8> {
    let ChunkValue::Array(a) = v else {
        return pb::ChunkValue::from(v).encode_to_vec();
    };
    // ArrayData without its data: fields 1 and 2. Field 3 (the bytes) is last in tag order, which is
    // the order prost writes, so it can follow them.
    let head = pb::ArrayData {
        dtype: pb::DType::from(a.dtype()) as i32,
        shape: u64s(a.shape()),
        data: Vec::new(),
    }
    .encode_to_vec();
    let n = a.len() * a.dtype().size();
    // proto3 leaves out an empty bytes field.
    let data_field = if n == 0 {
        0
    } else {
        1 + varint_len(n as u64) + n
    };
    let inner = head.len() + data_field;
    let mut prefix = Vec::with_capacity(32 + head.len());
    prefix.push(len_key(1));
    put_varint(inner as u64, &mut prefix);
    prefix.extend_from_slice(&head);
    if n > 0 {
        prefix.push(len_key(3));
        put_varint(n as u64, &mut prefix);
    }
    // A zeroed allocation of this size comes fresh from the OS, already zero: unlike growing a Vec
    // and filling it, the elements below are the only pass over the memory.
    let mut out = vec![0u8; prefix.len() + n];
    out[..prefix.len()].copy_from_slice(&prefix);
    write_elements(a, &mut out[prefix.len()..]);
    out
}

/// Chunks of at least this many bytes are encoded and decoded on tokio's blocking pool, off the
/// async thread that also serves fetches and heartbeats. Smaller ones (a reduction's partials are a
/// few bytes) are handled in place: handing them to another thread would cost more than the work.
pub const BLOCKING_CODEC_BYTES: usize = 64 << 10;

/// The chunk in bytes made by [`encode_chunk`] (or any encoder of [`pb::ChunkValue`]).
pub fn decode_chunk(bytes: &[u8]) -> Result<ChunkValue> {
    if let Some(v) = decode_array_chunk(bytes) {
        return v;
    }
    let msg = pb::ChunkValue::decode(bytes)
        .map_err(|e| wire(format!("chunk of {} bytes: {e}", bytes.len())))?;
    msg.try_into()
}

/// The fast path of [`decode_chunk`]: an array chunk in the layout [`encode_chunk`] writes (one
/// `array` field; in it `dtype`, packed `shape` and `data` at most once each, in any order) is
/// converted straight from `bytes`, where prost would first copy the data into a message (twice, in
/// prost 0.14). `None` for anything else — other fields, repeated fields that protobuf would merge,
/// truncated input — which prost then decodes with the full semantics and error reporting.
fn decode_array_chunk(bytes: &[u8]) -> Option<Result<ChunkValue>> {
    let mut outer = Reader(bytes);
    if outer.byte()? != len_key(1) {
        return None;
    }
    let len = outer.len()?;
    let mut r = Reader(outer.take(len)?);
    if !outer.0.is_empty() {
        return None;
    }
    let (mut dtype, mut shape, mut data) = (None, None, None);
    while !r.0.is_empty() {
        match r.byte()? {
            // Field 1, varint. An int32 is sign-extended to 64 bits on the wire; prost truncates.
            0x08 if dtype.is_none() => dtype = Some(r.varint()? as i32),
            0x12 if shape.is_none() => {
                let n = r.len()?;
                let mut packed = Reader(r.take(n)?);
                let mut dims = Vec::new();
                while !packed.0.is_empty() {
                    dims.push(packed.varint()?);
                }
                shape = Some(dims);
            }
            0x1a if data.is_none() => {
                let n = r.len()?;
                data = Some(r.take(n)?);
            }
            _ => return None,
        }
    }
    Some(
        array_from_parts(
            dtype.unwrap_or(0),
            &shape.unwrap_or_default(),
            data.unwrap_or(&[]),
        )
        .map(ChunkValue::Array),
    )
}

/// Reads protobuf primitives off the front of a slice; `None` when the input ends early or a
/// varint is malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

// ---------------------------------------------------------------------------------------------
// sources

impl From<&FromArray> for pb::FromArray {
    fn from(a: &FromArray) -> Self {
        pb::FromArray {
            data: Some((&*a.data).into()),
            content_token: a.content_token,
        }
    }
}

impl TryFrom<pb::FromArray> for FromArray {
    type Error = Error;
    /// Keeps the sender's content token: it is part of the layer's identity, like the layer id.
    fn try_from(a: pb::FromArray) -> Result<Self> {
        Ok(FromArray {
            data: Arc::new(required(a.data, "array data")?.try_into()?),
            content_token: a.content_token,
        })
    }
}

impl TryFrom<&NpySource> for pb::NpySource {
    type Error = Error;
    fn try_from(n: &NpySource) -> Result<Self> {
        let path = n.path.to_str().ok_or_else(|| {
            wire(format!(
                "the path {} is not UTF-8, which the wire's string cannot carry",
                n.path.display()
            ))
        })?;
        Ok(pb::NpySource {
            path: path.to_string(),
            mtime_nanos: n.stamp.0,
            file_len: n.stamp.1,
            dtype: pb::DType::from(n.header.dtype) as i32,
            shape: u64s(&n.header.shape),
        })
    }
}

impl TryFrom<pb::NpySource> for NpySource {
    type Error = Error;
    /// Opens the file here: reads its header again and checks it is the array the graph was built on.
    fn try_from(n: pb::NpySource) -> Result<Self> {
        let dtype = dtype_of(n.dtype)?;
        let shape = usizes_of(&n.shape, "npy dimension")?;
        let path = PathBuf::from(n.path);
        let header = crate::io::npy::read_header(&path)?;
        let len = std::fs::metadata(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let changed = |what: String| Error::Npy {
            path: path.clone(),
            reason: format!("the file is not the one the graph was built on: {what}"),
        };
        if header.dtype != dtype {
            return Err(changed(format!(
                "its dtype is {}, the graph's is {dtype}",
                header.dtype
            )));
        }
        if header.shape != shape {
            return Err(changed(format!(
                "its shape is {:?}, the graph's is {shape:?}",
                header.shape
            )));
        }
        if len != n.file_len {
            return Err(changed(format!(
                "it is {len} bytes long, the graph's is {} bytes",
                n.file_len
            )));
        }
        Ok(NpySource {
            path,
            header,
            stamp: (n.mtime_nanos, n.file_len),
        })
    }
}

impl From<&Materialized> for pb::Materialized {
    fn from(m: &Materialized) -> Self {
        pb::Materialized {
            chunks: m.chunks.iter().map(|c| (&**c).into()).collect(),
            token: m.token,
        }
    }
}

impl TryFrom<pb::Materialized> for Materialized {
    type Error = Error;
    fn try_from(m: pb::Materialized) -> Result<Self> {
        let chunks = m
            .chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                ChunkValue::try_from(c)
                    .map(Arc::new)
                    .map_err(|e| within(e, format!("kept chunk {i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Materialized {
            chunks: Arc::new(chunks),
            token: m.token,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// ops, layers, graphs

impl TryFrom<&Op> for pb::Op {
    type Error = Error;
    /// Fails for [`Op::MapBlocks`], whose closure cannot leave the process.
    fn try_from(op: &Op) -> Result<Self> {
        use pb::op::Op as W;
        let op = match op {
            Op::Blockwise(p) => W::Blockwise((&**p).try_into()?),
            Op::FromArray(a) => W::FromArray(a.into()),
            Op::Npy(n) => W::Npy(n.try_into()?),
            Op::Materialized(m) => W::Materialized(m.into()),
            Op::ReduceCombine(c) => W::ReduceCombine(c.try_into()?),
            Op::Transpose { perm } => W::Transpose(pb::Transpose {
                perm: u32s_of(perm, "transpose axis")?,
            }),
            Op::Slice(s) => W::Slice(s.try_into()?),
            Op::Rechunk => W::Rechunk(pb::Empty {}),
            Op::Reshape => W::Reshape(pb::Empty {}),
            Op::Concatenate { axis } => W::Concatenate(pb::Axis {
                axis: u32_of(*axis, "axis")?,
            }),
            Op::Stack { axis } => W::Stack(pb::Axis {
                axis: u32_of(*axis, "axis")?,
            }),
            Op::Matmul(m) => W::Matmul(pb::Matmul {
                transpose_a: m.transpose_a,
                transpose_b: m.transpose_b,
            }),
            Op::MirrorUpper => W::MirrorUpper(pb::Empty {}),
            Op::MapBlocks(f) => {
                return Err(Error::NotSerializable {
                    key: format!("map-blocks closure {:#x}", f.token()),
                });
            }
        };
        Ok(pb::Op { op: Some(op) })
    }
}

impl TryFrom<pb::Op> for Op {
    type Error = Error;
    fn try_from(op: pb::Op) -> Result<Self> {
        use pb::op::Op as W;
        let op = required(
            op.op,
            "op (a kind this version does not know reads as missing)",
        )?;
        Ok(match op {
            W::Blockwise(p) => Op::Blockwise(Box::new(p.try_into()?)),
            W::FromArray(a) => Op::FromArray(a.try_into()?),
            W::Npy(n) => Op::Npy(n.try_into()?),
            W::Materialized(m) => Op::Materialized(m.try_into()?),
            W::ReduceCombine(c) => Op::ReduceCombine(c.try_into()?),
            W::Transpose(t) => Op::Transpose {
                perm: usizes_of_u32(&t.perm),
            },
            W::Slice(s) => Op::Slice(s.try_into()?),
            W::Rechunk(_) => Op::Rechunk,
            W::Reshape(_) => Op::Reshape,
            W::Concatenate(a) => Op::Concatenate {
                axis: a.axis as usize,
            },
            W::Stack(a) => Op::Stack {
                axis: a.axis as usize,
            },
            W::Matmul(m) => Op::Matmul(MatmulOp {
                transpose_a: m.transpose_a,
                transpose_b: m.transpose_b,
            }),
            W::MirrorUpper(_) => Op::MirrorUpper,
        })
    }
}

impl TryFrom<&Layer> for pb::Layer {
    type Error = Error;
    fn try_from(l: &Layer) -> Result<Self> {
        let op = pb::Op::try_from(&l.op).map_err(|e| match e {
            // Name the layer, as the local executor's task keys do.
            Error::NotSerializable { .. } => Error::NotSerializable {
                key: l.id.to_string(),
            },
            other => within(other, format!("layer {}", l.id)),
        })?;
        Ok(pb::Layer {
            id: Some(l.id.into()),
            op: Some(op),
            inputs: l.inputs.iter().map(|&i| i.into()).collect(),
            meta: Some((&l.meta).into()),
        })
    }
}

impl TryFrom<pb::Layer> for Layer {
    type Error = Error;
    /// Keeps the id from the wire (see the module docs for why it is not recomputed).
    fn try_from(l: pb::Layer) -> Result<Self> {
        let id = LayerId::try_from(required(l.id, "layer id")?)?;
        let decode = || -> Result<Layer> {
            Ok(Layer {
                id,
                op: required(l.op, "op")?.try_into()?,
                inputs: l
                    .inputs
                    .into_iter()
                    .map(LayerId::try_from)
                    .collect::<Result<_>>()?,
                meta: required(l.meta, "metadata")?.try_into()?,
            })
        };
        decode().map_err(|e| within(e, format!("layer {id}")))
    }
}

/// A graph as its message: layers in the graph's order, then the outputs.
///
/// Fails with [`Error::NotSerializable`] naming the layer if the graph holds a `map_blocks`.
pub fn graph_to_proto(graph: &Graph) -> Result<pb::Graph> {
    Ok(pb::Graph {
        layers: graph
            .layers()
            .iter()
            .map(|l| pb::Layer::try_from(&**l))
            .collect::<Result<_>>()?,
        outputs: graph.outputs().iter().map(|&o| o.into()).collect(),
    })
}

/// The graph in a message, decoded and then checked with [`validate`]: a graph this returns can be
/// expanded and run without a kernel meeting data it does not expect.
pub fn graph_from_proto(graph: pb::Graph) -> Result<Graph> {
    let layers = graph
        .layers
        .into_iter()
        .map(|l| Layer::try_from(l).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let outputs = graph
        .outputs
        .into_iter()
        .map(|o| LayerId::try_from(o).map_err(|e| within(e, "graph output")))
        .collect::<Result<Vec<_>>>()?;
    let graph = Graph::new(layers, outputs);
    validate(&graph)?;
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use ndarray::{ArrayD, IxDyn, s};
    use smallvec::smallvec;

    use super::*;
    use crate::array::Array;
    use crate::exec::LocalExecutor;
    use crate::graph::Tokenizer;
    use crate::graph::expand::TaskGraph;
    use crate::{concatenate, default_rng, from_array, from_npy, stack, where_};

    // -----------------------------------------------------------------------------------------
    // every variant, by exhaustive matches: a new variant is a compile error here until it is listed

    fn all_unary() -> Vec<UnaryFn> {
        use UnaryFn::*;
        let all = vec![
            Neg, Abs, Sqrt, Exp, Ln, Log2, Log10, Sin, Cos, Tan, Tanh, Floor, Ceil, Round, Square,
            Not, IsNan, IsFinite,
        ];
        for f in &all {
            match f {
                Neg | Abs | Sqrt | Exp | Ln | Log2 | Log10 | Sin | Cos | Tan | Tanh | Floor
                | Ceil | Round | Square | Not | IsNan | IsFinite => {}
            }
        }
        all
    }

    fn all_binary() -> Vec<BinaryFn> {
        use BinaryFn::*;
        let all = vec![Add, Sub, Mul, Div, Rem, Pow, Minimum, Maximum, And, Or, Xor];
        for f in &all {
            match f {
                Add | Sub | Mul | Div | Rem | Pow | Minimum | Maximum | And | Or | Xor => {}
            }
        }
        all
    }

    fn all_cmp() -> Vec<CmpFn> {
        use CmpFn::*;
        let all = vec![Eq, Ne, Lt, Le, Gt, Ge];
        for f in &all {
            match f {
                Eq | Ne | Lt | Le | Gt | Ge => {}
            }
        }
        all
    }

    fn all_elem_funcs() -> Vec<ElemFunc> {
        let mut all: Vec<ElemFunc> = all_unary().into_iter().map(ElemFunc::Unary).collect();
        all.extend(all_binary().into_iter().map(ElemFunc::Binary));
        all.extend(all_cmp().into_iter().map(ElemFunc::Compare));
        all.extend([ElemFunc::Where, ElemFunc::Clip, ElemFunc::Cast]);
        for f in &all {
            match f {
                ElemFunc::Unary(_)
                | ElemFunc::Binary(_)
                | ElemFunc::Compare(_)
                | ElemFunc::Where
                | ElemFunc::Clip
                | ElemFunc::Cast => {}
            }
        }
        all
    }

    fn all_reductions() -> Vec<Reduction> {
        use Reduction::*;
        let all = vec![
            Sum, Prod, Min, Max, Any, All, Mean, Var, Std, ArgMin, ArgMax,
        ];
        for r in &all {
            match r {
                Sum | Prod | Min | Max | Any | All | Mean | Var | Std | ArgMin | ArgMax => {}
            }
        }
        all
    }

    fn all_dtypes() -> Vec<DType> {
        let all = vec![DType::Bool, DType::I64, DType::F32, DType::F64];
        for d in &all {
            match d {
                DType::Bool | DType::I64 | DType::F32 | DType::F64 => {}
            }
        }
        all
    }

    fn all_leaf_kinds() -> Vec<LeafKind> {
        let all = vec![
            LeafKind::Input(3),
            LeafKind::Random {
                seed: u64::MAX,
                dist: Distribution::Uniform,
            },
            LeafKind::Random {
                seed: 7,
                dist: Distribution::StandardNormal,
            },
            LeafKind::Full(Scalar::Bool(true)),
            LeafKind::Full(Scalar::I64(i64::MIN)),
            LeafKind::Full(Scalar::F32(-0.0)),
            LeafKind::Full(Scalar::F64(f64::NAN)),
            LeafKind::Arange {
                start: -2.5,
                step: 0.1,
            },
            LeafKind::Linspace {
                start: 0.0,
                stop: 1.0,
                step: 0.25,
                num: 5,
                endpoint: true,
            },
        ];
        for k in &all {
            match k {
                LeafKind::Input(_)
                | LeafKind::Random { .. }
                | LeafKind::Full(_)
                | LeafKind::Arange { .. }
                | LeafKind::Linspace { .. } => {}
            }
        }
        all
    }

    /// The test that covers each op variant; naming them all makes a new variant a compile error
    /// until it has a test, and each test checks it built the variant it is about.
    fn op_test(op: &Op) -> &'static str {
        match op {
            Op::Blockwise(_) => "op_blockwise",
            Op::FromArray(_) => "op_from_array",
            Op::Npy(_) => "op_npy",
            Op::Materialized(_) => "op_materialized",
            Op::ReduceCombine(_) => "op_reduce_combine",
            Op::Transpose { .. } => "op_transpose",
            Op::Slice(_) => "op_slice",
            Op::Rechunk => "op_rechunk",
            Op::Reshape => "op_reshape",
            Op::Concatenate { .. } => "op_concatenate",
            Op::Stack { .. } => "op_stack",
            Op::Matmul(_) => "op_matmul",
            Op::MirrorUpper => "op_mirror_upper",
            Op::MapBlocks(_) => "op_map_blocks_is_not_serializable",
        }
    }

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

    // -----------------------------------------------------------------------------------------
    // helpers

    fn token(op: &Op) -> u64 {
        let mut t = Tokenizer::new(op.name());
        op.tokenize(&mut t);
        t.finish()
    }

    /// Op → message → bytes → message → Op.
    fn through_wire(op: &Op) -> Op {
        let msg = pb::Op::try_from(op).unwrap();
        let bytes = msg.encode_to_vec();
        let back = pb::Op::decode(bytes.as_slice()).unwrap();
        // Bytes, not messages: NaN constants make equal messages compare unequal.
        assert_eq!(back.encode_to_vec(), bytes);
        Op::try_from(back).unwrap()
    }

    /// Op has no `PartialEq`: equal Debug output (every field, floats printed exactly) and equal tokens.
    fn assert_round_trip(op: &Op) {
        let back = through_wire(op);
        assert_eq!(format!("{op:?}"), format!("{back:?}"));
        assert_eq!(token(op), token(&back));
        assert_eq!(static_name(op.name()), Some(op.name()));
    }

    fn top(a: &Array) -> Arc<Layer> {
        a.graph().get(a.id()).unwrap().clone()
    }

    fn top_op(a: &Array, test: &str) -> Op {
        let op = top(a).op.clone();
        assert_eq!(
            op_test(&op),
            test,
            "{a:?} is not built by the op under test"
        );
        op
    }

    fn program(leaves: Vec<Leaf>, instrs: Vec<Instr>, reduce: Option<ReduceSink>) -> Op {
        let nvalues = (leaves.len() + instrs.len()) as u32;
        Op::Blockwise(Box::new(Program {
            domain: Chunks::from_sizes(vec![vec![3, 3, 1], vec![4]]),
            leaves,
            instrs,
            output: nvalues.saturating_sub(1),
            reduce,
        }))
    }

    fn leaf(kind: LeafKind, dtype: DType) -> Leaf {
        Leaf {
            kind,
            shape: vec![7, 1],
            rank: 1,
            dtype,
            axes: Vec::new(),
        }
    }

    fn x() -> Array {
        default_rng(5).random(&[12, 10], [5, 4]).unwrap()
    }

    // -----------------------------------------------------------------------------------------
    // one test per op variant

    #[test]
    fn op_blockwise() {
        let a = x();
        let y = where_(a.t().gt(0.5).unwrap(), (&a.t() * 2.0f64).unwrap(), -1.0).unwrap();
        assert_round_trip(&top_op(&y, "op_blockwise"));
        let m = a.var_axis(1, 1.0).unwrap();
        let partial = m.graph().layers()[1].op.clone();
        assert!(matches!(&partial, Op::Blockwise(p) if p.reduce.is_some()));
        assert_round_trip(&partial);
    }

    #[test]
    fn every_elem_func_round_trips() {
        for f in all_elem_funcs() {
            for d in all_dtypes() {
                let op = program(
                    vec![
                        leaf(LeafKind::Input(0), d),
                        leaf(LeafKind::Full(Scalar::I64(2)), d),
                    ],
                    vec![Instr {
                        func: f,
                        args: smallvec![0, 1, 1],
                        dtype: d,
                    }],
                    None,
                );
                assert_round_trip(&op);
                if let Op::Blockwise(p) = through_wire(&op) {
                    assert_eq!(p.instrs[0].func, f);
                }
            }
        }
    }

    #[test]
    fn every_reduction_round_trips() {
        for r in all_reductions() {
            let sink = ReduceSink {
                reduction: r,
                axes: vec![0, 1],
                domain_shape: vec![7, 4],
            };
            assert_round_trip(&program(
                vec![leaf(LeafKind::Input(0), DType::F32)],
                vec![],
                Some(sink),
            ));
            for finalize in [
                None,
                Some(Finalize {
                    keepdims: true,
                    ddof: 1.5,
                    dtype: DType::F32,
                }),
            ] {
                let op = Op::ReduceCombine(ReduceCombine {
                    reduction: r,
                    axes: vec![1, 2],
                    group: vec![4, 1],
                    finalize,
                });
                assert_round_trip(&op);
            }
        }
    }

    #[test]
    fn every_leaf_kind_round_trips() {
        for kind in all_leaf_kinds() {
            for d in all_dtypes() {
                let op = program(vec![leaf(kind.clone(), d)], vec![], None);
                assert_round_trip(&op);
                if let Op::Blockwise(p) = through_wire(&op) {
                    // NaN != NaN, so compare the Debug text (exact for floats).
                    assert_eq!(
                        format!("{:?}", p.leaves[0]),
                        format!("{:?}", leaf(kind.clone(), d))
                    );
                }
            }
        }
    }

    #[test]
    fn op_from_array() {
        for d in all_dtypes() {
            let data = ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| (i[0] * 3 + i[1]) as i64 - 4);
            let a = crate::from_array_data(ArrayData::I64(data).cast(d), [2, 2]).unwrap();
            assert_round_trip(&top_op(&a, "op_from_array"));
        }
    }

    #[test]
    fn op_npy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        x().to_npy(&path).unwrap();
        let a = from_npy(&path, [4, 4]).unwrap();
        assert_round_trip(&top_op(&a, "op_npy"));
    }

    #[test]
    fn op_npy_refuses_a_file_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        x().to_npy(&path).unwrap();
        let msg = pb::Op::try_from(&top_op(&from_npy(&path, [4, 4]).unwrap(), "op_npy")).unwrap();
        // Same length, other shape: the header is re-read.
        x().reshape(&[10, 12]).unwrap().to_npy(&path).unwrap();
        let err = Op::try_from(msg.clone()).unwrap_err();
        assert!(
            matches!(&err, Error::Npy { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("shape"), "{err}");
        // Same header, other length.
        x().to_npy(&path).unwrap();
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.set_len(std::fs::metadata(&path).unwrap().len() + 8)
            .unwrap();
        let err = Op::try_from(msg.clone()).unwrap_err();
        assert!(err.to_string().contains("bytes long"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(Op::try_from(msg).unwrap_err(), Error::Io { .. }));
    }

    #[test]
    fn op_materialized() {
        let kept = x().var_axis(0, 0.0).unwrap().persist().unwrap();
        assert_round_trip(&top_op(&kept, "op_materialized"));
        // Kept partials (not what persist makes, but a ChunkValue all the same) travel too.
        let m = Op::Materialized(Materialized {
            chunks: Arc::new(vec![
                Arc::new(ChunkValue::Moments(Moments {
                    count: ArrayD::from_elem(IxDyn(&[2]), 3.0),
                    mean: ArrayD::from_elem(IxDyn(&[2]), 0.5),
                    m2: Some(ArrayD::from_elem(IxDyn(&[2]), 0.25)),
                })),
                Arc::new(ChunkValue::Arg(ArgPartial {
                    value: ArrayData::F32(ArrayD::from_elem(IxDyn(&[2]), 1.5)),
                    index: ArrayD::from_elem(IxDyn(&[2]), 9),
                })),
            ]),
            token: 42,
        });
        assert_round_trip(&m);
    }

    #[test]
    fn op_reduce_combine() {
        let m = x().mean_axis(0).unwrap();
        assert_round_trip(&top_op(&m, "op_reduce_combine"));
        let tree = default_rng(1)
            .random(&[64], [2])
            .unwrap()
            .sum_with(&crate::ReduceOptions::all().split_every(2))
            .unwrap();
        for l in tree.graph().layers() {
            assert_round_trip(&l.op);
        }
    }

    #[test]
    fn op_transpose() {
        let a = x().reshape(&[3, 4, 10]).unwrap();
        assert_round_trip(&top_op(
            &a.permute_axes(&[2, 0, 1]).unwrap(),
            "op_transpose",
        ));
    }

    #[test]
    fn op_slice() {
        let a = x().slice(s![1..11;3, -1]).unwrap();
        assert_round_trip(&top_op(&a, "op_slice"));
        #[allow(clippy::reversed_empty_ranges)] // an empty selection, on purpose
        let b = x().slice(s![..;-4, 7..2]).unwrap();
        assert_round_trip(&top_op(&b, "op_slice"));
    }

    #[test]
    fn op_rechunk() {
        assert_round_trip(&top_op(&x().rechunk([3, 10]).unwrap(), "op_rechunk"));
    }

    #[test]
    fn op_reshape() {
        assert_round_trip(&top_op(&x().reshape(&[-1]).unwrap(), "op_reshape"));
    }

    #[test]
    fn op_concatenate() {
        let a = x();
        let c = concatenate(&[&a, &a.slice(s![..3, ..]).unwrap()], 0).unwrap();
        assert_round_trip(&top_op(&c, "op_concatenate"));
    }

    #[test]
    fn op_stack() {
        let a = x();
        assert_round_trip(&top_op(&stack(&[&a, &a, &a], 2).unwrap(), "op_stack"));
    }

    #[test]
    fn op_matmul() {
        let a = x();
        // Operands built as transposes are read untransposed.
        let b = (&a + 1.0).unwrap();
        let wide = default_rng(6).random(&[5, 12], [2, 4]).unwrap();
        for (p, transpose_a, transpose_b) in [
            (a.matmul(&a.t()), false, true),
            (a.t().matmul(&b), true, false),
            (a.t().matmul(&wide.t()), true, true),
            (a.matmul(&b.slice(s![..10, ..]).unwrap()), false, false),
        ] {
            let g = p.unwrap().graph();
            let products = g
                .layers()
                .iter()
                .find(|l| matches!(l.op, Op::Matmul(_)))
                .unwrap();
            let want = MatmulOp {
                transpose_a,
                transpose_b,
            };
            assert!(matches!(products.op, Op::Matmul(m) if m == want));
            assert_eq!(op_test(&products.op), "op_matmul");
            assert_round_trip(&products.op);
        }
    }

    #[test]
    fn op_mirror_upper() {
        let a = x();
        assert_round_trip(&top_op(&a.matmul(&a.t()).unwrap(), "op_mirror_upper"));
    }

    #[test]
    fn op_map_blocks_is_not_serializable() {
        let y = x()
            .map_blocks(|b: ndarray::ArrayViewD<f64>| b.mapv(|v| v + 1.0))
            .unwrap();
        let op = top_op(&y, "op_map_blocks_is_not_serializable");
        assert!(matches!(
            pb::Op::try_from(&op),
            Err(Error::NotSerializable { .. })
        ));
        // Through a graph, the error names the layer.
        match graph_to_proto(&(&y + 1.0f64).unwrap().graph()) {
            Err(Error::NotSerializable { key }) => assert_eq!(key, y.id().to_string()),
            other => panic!("{other:?}"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // layers and graphs

    #[test]
    fn a_decoded_layer_keeps_its_id() {
        // Fusion keeps the consumer's id on a fused op, so the id is not the op's own token.
        let y = (x().sqrt().unwrap() * 3.0f64).unwrap();
        let g = crate::optimize::optimize(y.graph());
        let fused = g.get(y.id()).unwrap();
        let recomputed = Layer::new(fused.op.clone(), fused.inputs.clone(), fused.meta.clone());
        assert_ne!(recomputed.id, fused.id);
        let back = Layer::try_from(pb::Layer::try_from(&**fused).unwrap()).unwrap();
        assert_eq!(back.id, fused.id);
        assert_eq!(back.inputs, fused.inputs);
        assert_eq!(back.meta, fused.meta);
    }

    /// Runs a graph on the local executor and assembles its outputs.
    fn run(graph: Graph) -> Vec<ArrayData> {
        let metas: Vec<ArrayMeta> = graph
            .outputs()
            .iter()
            .map(|o| graph.get(*o).unwrap().meta.clone())
            .collect();
        let results: Vec<Mutex<ArrayData>> = metas
            .iter()
            .map(|m| Mutex::new(ArrayData::full(&m.shape(), Scalar::Bool(false), m.dtype)))
            .collect();
        let sink = |o: usize, block: &[u32], v: Arc<ChunkValue>| -> Result<()> {
            let offset = metas[o].chunks.block_offset(block);
            let origin = vec![0; offset.len()];
            let mut out = results[o].lock().unwrap();
            crate::ops::structure::copy_overlap(&mut out, &origin, v.as_array()?, &offset);
            Ok(())
        };
        let tg = TaskGraph::expand(graph).unwrap();
        LocalExecutor::with_threads(2)
            .unwrap()
            .execute(&tg, &sink)
            .unwrap();
        results
            .into_iter()
            .map(|m| m.into_inner().unwrap())
            .collect()
    }

    /// Bit-for-bit equality (NaN-safe): the arrays' wire bytes.
    fn bits(a: &ArrayData) -> pb::ArrayData {
        a.into()
    }

    #[test]
    fn expressions_round_trip_and_compute_the_same_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.npy");
        default_rng(3)
            .standard_normal(&[30, 30], [8, 7])
            .unwrap()
            .to_npy(&path)
            .unwrap();
        let f = from_npy(&path, [10, 10]).unwrap();
        let data = ArrayD::from_shape_fn(IxDyn(&[30, 30]), |i| (i[0] * 30 + i[1]) as f64 / 7.0);
        let arr = from_array(data, [15, 6]).unwrap();
        let r = default_rng(9).random(&[30, 30], [7, 11]).unwrap();

        let sum_t = (&f + &f.t()).unwrap();
        let mean0 = sum_t.mean_axis(0).unwrap();
        let sl = arr.slice(s![2..29;3, ..;-2]).unwrap();
        let mm = sl.matmul(&r.slice(s![..15, ..]).unwrap()).unwrap();
        let reshaped = mm.reshape(&[27, 10]).unwrap();
        let cat = concatenate(&[&sum_t.slice(s![..10, ..]).unwrap(), &mm], 0).unwrap();
        let stacked = stack(&[&mean0, &mean0.sqrt().unwrap().abs().unwrap()], 1).unwrap();
        let kept = cat.rechunk([5, 11]).unwrap().persist().unwrap();
        let mixed = ((&kept * 2.0f64).unwrap() - &cat)
            .unwrap()
            .clip(-3.0, 3.0)
            .unwrap();
        let ints = crate::arange(0i64, 900, 1, [100])
            .unwrap()
            .reshape(&[30, 30])
            .unwrap();
        let picks = where_(r.gt(0.5).unwrap(), &ints, (-&ints).unwrap()).unwrap();
        let stats = stack(
            &[
                &r.var_axis(1, 1.0).unwrap(),
                &r.std_axis(1, 0.0).unwrap(),
                &r.argmax_axis(1).unwrap().astype(DType::F64).unwrap(),
                &picks.sum_axis(1).unwrap().astype(DType::F64).unwrap(),
                &r.lt(0.1)
                    .unwrap()
                    .any_axis(1)
                    .unwrap()
                    .astype(DType::F64)
                    .unwrap(),
                &crate::linspace(0.0, 1.0, 30, true, [7]).unwrap(),
            ],
            0,
        )
        .unwrap();

        let outputs = [
            &sum_t, &mean0, &mm, &reshaped, &cat, &stacked, &kept, &mixed, &picks, &stats,
        ];
        for a in outputs {
            for graph in [a.graph(), crate::optimize::optimize(a.graph())] {
                let msg = graph_to_proto(&graph).unwrap();
                let bytes = msg.encode_to_vec();
                let back = graph_from_proto(pb::Graph::decode(bytes.as_slice()).unwrap()).unwrap();
                assert_eq!(back.layers().len(), graph.layers().len());
                for (l, b) in graph.layers().iter().zip(back.layers()) {
                    assert_eq!(l.id, b.id);
                    assert_eq!(format!("{:?}", l.op), format!("{:?}", b.op));
                }
                let want = run(graph);
                let got = run(back);
                assert_eq!(want.len(), 1);
                assert_eq!(bits(&want[0]), bits(&got[0]), "{a:?}");
                assert_eq!(bits(&want[0]), bits(&a.compute_dyn().unwrap()), "{a:?}");
            }
        }
    }

    /// Decodes and validates `msg`; if that passes, expands and runs it, failing the test on any
    /// panic. Returns whether it ran.
    fn run_if_valid(msg: pb::Graph) -> bool {
        let Ok(g) = graph_from_proto(msg) else {
            return false;
        };
        // Values may change (a seed, a constant) but sizes stay small or validation fails; skip the
        // rare graph that grew anyway.
        if g.layers()
            .iter()
            .any(|l| l.meta.chunks.max_chunk_elems() > 1 << 16)
        {
            return false;
        }
        let shown = format!("{:#?}", g.layers());
        let run = std::panic::AssertUnwindSafe(|| -> Result<()> {
            let tg = TaskGraph::expand(g)?;
            let sink = |_: usize, _: &[u32], _: Arc<ChunkValue>| -> Result<()> { Ok(()) };
            LocalExecutor::with_threads(1)?.execute(&tg, &sink)?;
            Ok(())
        });
        match std::panic::catch_unwind(run) {
            Err(_) => panic!("expansion panicked on a graph that validated:\n{shown}"),
            Ok(Err(e @ Error::TaskPanicked { .. })) => {
                panic!("a kernel panicked on a graph that validated: {e}\n{shown}")
            }
            Ok(_) => true,
        }
    }

    /// Sets one structural field of one layer of `g` to a small (or very large) value.
    fn mutate(g: &mut pb::Graph, next: &mut impl FnMut() -> u64) {
        const VALUES: [u64; 8] = [0, 1, 2, 3, 4, 7, 12, u32::MAX as u64];
        fn poke(v: &mut [u64], i: usize, x: u64) {
            if !v.is_empty() {
                let n = v.len();
                v[i % n] = x;
            }
        }
        fn poke32(v: &mut [u32], i: usize, x: u64) {
            if !v.is_empty() {
                let n = v.len();
                v[i % n] = x as u32;
            }
        }
        let li = (next() % g.layers.len() as u64) as usize;
        let i = (next() % 64) as usize;
        let x = VALUES[(next() % VALUES.len() as u64) as usize];
        let which = (next() % 12) as usize;
        let layer = &mut g.layers[li];
        let meta = layer.meta.as_mut().unwrap();
        let chunks = meta.chunks.as_mut().unwrap();
        match which {
            0 => {
                let n = chunks.axes.len();
                if n > 0 {
                    poke(&mut chunks.axes[i % n].sizes, i / 3, x);
                }
            }
            1 => meta.dtype = (x % 6) as i32,
            2 => layer.inputs.reverse(),
            3 => drop(layer.inputs.pop()),
            _ => {
                let Some(op) = layer.op.as_mut().and_then(|o| o.op.as_mut()) else {
                    return;
                };
                use pb::op::Op as W;
                match op {
                    W::Blockwise(p) => {
                        let nl = p.leaves.len();
                        let ni = p.instrs.len();
                        match which % 8 {
                            0 if nl > 0 => poke(&mut p.leaves[i % nl].shape, i / 2, x),
                            1 if nl > 0 => p.leaves[i % nl].rank = x as u32,
                            2 if nl > 0 => {
                                p.leaves[i % nl].kind = Some(pb::leaf::Kind::Input(x as u32))
                            }
                            3 if nl > 0 => p.leaves[i % nl].dtype = (x % 5) as i32,
                            4 if ni > 0 => poke32(&mut p.instrs[i % ni].args, i / 2, x),
                            5 if ni > 0 => p.instrs[i % ni].dtype = (x % 5) as i32,
                            6 => p.output = x as u32,
                            _ => match p.reduce.as_mut() {
                                Some(r) if i.is_multiple_of(2) => poke32(&mut r.axes, i, x),
                                Some(r) => poke(&mut r.domain_shape, i, x),
                                None => {
                                    let c = p.domain.as_mut().unwrap();
                                    let n = c.axes.len();
                                    if n > 0 {
                                        poke(&mut c.axes[i % n].sizes, i / 3, x);
                                    }
                                }
                            },
                        }
                    }
                    W::ReduceCombine(c) => match i % 4 {
                        0 => poke32(&mut c.axes, i / 4, x),
                        1 => poke(&mut c.group, i / 4, x),
                        2 => {
                            if let Some(f) = c.finalize.as_mut() {
                                f.keepdims = !f.keepdims;
                            }
                        }
                        _ => {
                            c.finalize = match c.finalize {
                                Some(_) => None,
                                None => Some(pb::Finalize {
                                    keepdims: false,
                                    ddof: 0.0,
                                    dtype: (x % 5) as i32,
                                }),
                            }
                        }
                    },
                    W::Transpose(t) => poke32(&mut t.perm, i, x),
                    W::Slice(sl) => {
                        let n = sl.pieces.len();
                        if n > 0 && i.is_multiple_of(2) {
                            let ps = &mut sl.pieces[i % n].pieces;
                            let m = ps.len();
                            if m > 0 {
                                let piece = &mut ps[(i / 2) % m];
                                match i % 3 {
                                    0 => piece.in_block = x as u32,
                                    1 => piece.local_start = x,
                                    _ => piece.len = x,
                                }
                            }
                        } else if let Some(a) = sl.axes.get_mut(i % n.max(1)) {
                            match a.sel.as_mut() {
                                Some(pb::axis_slice::Sel::Range(r)) => match i % 3 {
                                    0 => r.start = x,
                                    1 => r.len = x,
                                    _ => r.step = x as i64 - 3,
                                },
                                Some(pb::axis_slice::Sel::Index(ix)) => *ix = x,
                                None => {}
                            }
                        }
                    }
                    W::Concatenate(a) | W::Stack(a) => a.axis = x as u32,
                    W::FromArray(a) => poke(&mut a.data.as_mut().unwrap().shape, i, x),
                    W::Materialized(m) => drop(m.chunks.pop()),
                    _ => {}
                }
            }
        }
    }

    /// Flips bits in encoded graphs: whatever decodes and validates must run without a panic (a kernel
    /// panic would surface as `TaskPanicked`, an expansion panic as an unwind).
    #[test]
    fn corrupted_graphs_that_validate_run_without_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        x().to_npy(&path).unwrap();
        let f = from_npy(&path, [5, 5]).unwrap();
        let a = x();
        let ints = crate::arange(0i64, 120, 1, [25])
            .unwrap()
            .reshape(&[12, 10])
            .unwrap();
        let arrays = [
            (&a + &a.slice(s![..;-1, ..]).unwrap())
                .unwrap()
                .mean_axis(0)
                .unwrap(),
            concatenate(&[&f, &a.rechunk([4, 3]).unwrap()], 1).unwrap(),
            stack(&[&ints, &(&ints * 3i64).unwrap()], 2)
                .unwrap()
                .argmax()
                .unwrap(),
            a.matmul(&f.t()).unwrap().var_axis(1, 1.0).unwrap(),
            where_(a.lt(0.5).unwrap(), &ints, 7i64)
                .unwrap()
                .reshape(&[-1])
                .unwrap(),
            crate::from_array(ndarray::Array2::<f32>::ones((6, 4)).into_dyn(), [4, 3])
                .unwrap()
                .persist()
                .unwrap()
                .clip(0.0f32, 0.5f32)
                .unwrap(),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut ran, mut tried) = (0, 0);
        for arr in &arrays {
            for graph in [arr.graph(), crate::optimize::optimize(arr.graph())] {
                let msg = graph_to_proto(&graph).unwrap();
                let bytes = msg.encode_to_vec();
                for round in 0..600 {
                    let corrupted = if round % 2 == 0 {
                        // Bit flips anywhere in the bytes.
                        let mut b = bytes.clone();
                        for _ in 0..1 + next() % 2 {
                            let i = (next() % b.len() as u64) as usize;
                            b[i] ^= 1 << (next() % 8);
                        }
                        let Ok(m) = pb::Graph::decode(b.as_slice()) else {
                            continue;
                        };
                        m
                    } else {
                        // One structural field set to a small value.
                        let mut m = msg.clone();
                        mutate(&mut m, &mut next);
                        m
                    };
                    tried += 1;
                    if run_if_valid(corrupted) {
                        ran += 1;
                    }
                }
            }
        }
        eprintln!("{tried} corrupted graphs decoded as messages, {ran} validated and ran");
        assert!(ran > 0);
    }

    #[test]
    fn a_graph_that_fails_validation_does_not_decode() {
        let y = x().mean_axis(1).unwrap();
        let mut msg = graph_to_proto(&y.graph()).unwrap();
        msg.layers.remove(0);
        let err = graph_from_proto(msg).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidLayer { reason, .. } if reason.contains("not in the graph")),
            "{err}"
        );
    }

    #[test]
    fn a_transposed_source_crosses_the_wire_and_bad_axes_are_refused() {
        let r = default_rng(4).random(&[12, 10], [5, 4]).unwrap();
        let g = crate::optimize::optimize(r.t().graph());
        let permuted = |g: &Graph| {
            g.layers().iter().any(|l| match &l.op {
                Op::Blockwise(p) => p.leaves.iter().any(|leaf| leaf.axes == [1, 0]),
                _ => false,
            })
        };
        assert!(permuted(&g), "the optimizer generates r.T in place");
        let back = graph_from_proto(graph_to_proto(&g).unwrap()).unwrap();
        assert!(permuted(&back));
        let ids = |g: &Graph| g.layers().iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(&back), ids(&g));

        for bad in [vec![0, 0], vec![1], vec![0, 2]] {
            let mut msg = graph_to_proto(&g).unwrap();
            for layer in &mut msg.layers {
                if let Some(pb::op::Op::Blockwise(p)) =
                    layer.op.as_mut().and_then(|o| o.op.as_mut())
                {
                    p.leaves[0].axes = bad.clone();
                }
            }
            let err = graph_from_proto(msg).unwrap_err();
            assert!(err.to_string().contains("axes"), "{bad:?}: {err}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // malformed messages

    fn what(e: Error) -> String {
        match e {
            Error::Wire { what } => what,
            other => panic!("expected a wire error, got {other}"),
        }
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert!(what(Op::try_from(pb::Op { op: None }).unwrap_err()).contains("op"));
        let instr = pb::Instr {
            func: Some(ElemFunc::Cast.into()),
            args: vec![0],
            dtype: 99,
        };
        assert!(what(Instr::try_from(instr).unwrap_err()).contains("unknown dtype value 99"));
        let instr = pb::Instr {
            func: Some(pb::ElemFunc {
                func: Some(pb::elem_func::Func::Unary(1000)),
            }),
            args: vec![0],
            dtype: pb::DType::DtypeF64 as i32,
        };
        assert!(what(Instr::try_from(instr).unwrap_err()).contains("unary function"));
        let unspecified = pb::ArrayMeta {
            chunks: Some(pb::Chunks { axes: vec![] }),
            dtype: 0,
        };
        assert!(what(ArrayMeta::try_from(unspecified).unwrap_err()).contains("unspecified"));
        let short = pb::ArrayData {
            dtype: pb::DType::DtypeF64 as i32,
            shape: vec![2, 3],
            data: vec![0; 47],
        };
        assert!(what(ArrayData::try_from(short).unwrap_err()).contains("needs 48 bytes"));
        let huge = pb::ArrayData {
            dtype: pb::DType::DtypeF64 as i32,
            shape: vec![u64::MAX, 4],
            data: vec![],
        };
        assert!(what(ArrayData::try_from(huge).unwrap_err()).contains("too many"));
        let not_bool = pb::ArrayData {
            dtype: pb::DType::DtypeBool as i32,
            shape: vec![2],
            data: vec![1, 2],
        };
        assert!(what(ArrayData::try_from(not_bool).unwrap_err()).contains("byte 2"));
        let overflow = pb::Chunks {
            axes: vec![pb::AxisChunks {
                sizes: vec![u64::MAX, 2],
            }],
        };
        assert!(what(Chunks::try_from(overflow).unwrap_err()).contains("overflow"));
        let forged = pb::LayerId {
            name: "rm -rf".into(),
            token: 1,
        };
        assert!(what(LayerId::try_from(forged).unwrap_err()).contains("rm -rf"));
        let moments = pb::ChunkValue {
            value: Some(pb::chunk_value::Value::Moments(pb::Moments {
                count: Some(f64_array(&ArrayD::zeros(IxDyn(&[2])))),
                mean: Some(f64_array(&ArrayD::zeros(IxDyn(&[3])))),
                m2: None,
            })),
        };
        assert!(what(ChunkValue::try_from(moments).unwrap_err()).contains("shapes"));
        assert!(what(decode_chunk(&[0x0a, 0xff]).unwrap_err()).contains("chunk"));
        // Errors inside a layer say which layer.
        let mut layer = pb::Layer::try_from(&*top(&x())).unwrap();
        if let Some(pb::op::Op::Blockwise(p)) = layer.op.as_mut().and_then(|o| o.op.as_mut()) {
            p.leaves[0].dtype = 17;
        }
        let msg = what(Layer::try_from(layer).unwrap_err());
        assert!(
            msg.starts_with(&format!("layer {}: leaf 0", x().id())),
            "{msg}"
        );
    }

    // -----------------------------------------------------------------------------------------
    // chunks

    fn sample_chunks() -> Vec<ChunkValue> {
        let f = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| i[0] as f64 - 0.5 * i[1] as f64);
        let mut out: Vec<ChunkValue> = all_dtypes()
            .into_iter()
            .map(|d| ChunkValue::Array(ArrayData::F64(f.clone()).cast(d)))
            .collect();
        // Not in standard layout, 0-d, and empty.
        out.push(ChunkValue::Array(ArrayData::F32(
            f.mapv(|v| v as f32).reversed_axes(),
        )));
        out.push(ChunkValue::Array(ArrayData::I64(ArrayD::from_elem(
            IxDyn(&[]),
            -3,
        ))));
        out.push(ChunkValue::Array(ArrayData::Bool(ArrayD::from_elem(
            IxDyn(&[0, 5]),
            true,
        ))));
        out.push(ChunkValue::Array(ArrayData::F64(ArrayD::from_elem(
            IxDyn(&[2]),
            f64::NAN,
        ))));
        for m2 in [None, Some(f.clone())] {
            out.push(ChunkValue::Moments(Moments {
                count: f.mapv(|v| v.abs() + 1.0),
                mean: f.clone(),
                m2,
            }));
        }
        out.push(ChunkValue::Arg(ArgPartial {
            value: ArrayData::F64(f.clone()),
            index: f.mapv(|v| (v * 2.0) as i64),
        }));
        out
    }

    #[test]
    fn encode_chunk_writes_what_prost_writes() {
        for v in sample_chunks() {
            let fast = encode_chunk(&v);
            assert_eq!(fast, pb::ChunkValue::from(&v).encode_to_vec(), "{v:?}");
            let back = decode_chunk(&fast).unwrap();
            assert_eq!(
                decode_array_chunk(&fast).is_some(),
                matches!(v, ChunkValue::Array(_))
            );
            // Through the wire bytes again: NaN-safe equality.
            assert_eq!(encode_chunk(&back), fast);
            if let (ChunkValue::Array(a), ChunkValue::Array(b)) = (&v, &back) {
                assert_eq!(a.shape(), b.shape());
                assert!(crate::with_array!(b, x => x.is_standard_layout()));
            }
        }
    }

    #[test]
    fn decode_chunk_reads_any_encoding_of_the_message() {
        let a = ArrayData::F32(ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| {
            i[0] as f32 + i[1] as f32 / 8.0
        }));
        let want = ChunkValue::Array(a.clone());
        let msg = pb::ArrayData::from(&a);
        let frame = |inner: Vec<u8>| {
            let mut bytes = vec![len_key(1)];
            put_varint(inner.len() as u64, &mut bytes);
            bytes.extend(inner);
            bytes
        };
        let dtype = |out: &mut Vec<u8>| {
            out.push(0x08);
            put_varint(msg.dtype as u64, out);
        };
        let data = |out: &mut Vec<u8>| {
            out.push(len_key(3));
            put_varint(msg.data.len() as u64, out);
            out.extend(&msg.data);
        };
        let mut packed = Vec::new();
        msg.shape.iter().for_each(|&d| put_varint(d, &mut packed));

        // Fields in reverse order, shape packed: the fast path reads it.
        let mut inner = Vec::new();
        data(&mut inner);
        inner.push(len_key(2));
        put_varint(packed.len() as u64, &mut inner);
        inner.extend(&packed);
        dtype(&mut inner);
        let bytes = frame(inner);
        assert!(decode_array_chunk(&bytes).is_some());
        assert_eq!(decode_chunk(&bytes).unwrap(), want);

        // Shape unpacked (one key per element, which parsers must accept): prost reads it.
        let mut inner = Vec::new();
        dtype(&mut inner);
        for &d in &msg.shape {
            inner.push(0x10);
            put_varint(d, &mut inner);
        }
        data(&mut inner);
        let bytes = frame(inner);
        assert!(decode_array_chunk(&bytes).is_none());
        assert_eq!(decode_chunk(&bytes).unwrap(), want);

        // The array split over two fields, which protobuf merges: prost reads it.
        let mut first = Vec::new();
        dtype(&mut first);
        let mut second = pb::ArrayData {
            dtype: 0,
            ..msg.clone()
        }
        .encode_to_vec();
        let mut bytes = frame(first);
        bytes.append(&mut frame(std::mem::take(&mut second)));
        assert!(decode_array_chunk(&bytes).is_none());
        assert_eq!(decode_chunk(&bytes).unwrap(), want);

        // Both paths agree on what is wrong with a negative dtype (a ten-byte varint).
        let mut inner = Vec::new();
        inner.push(0x08);
        put_varint(-1i64 as u64, &mut inner);
        let bytes = frame(inner);
        assert!(decode_array_chunk(&bytes).is_some());
        assert!(what(decode_chunk(&bytes).unwrap_err()).contains("unknown dtype value -1"));
        let slow = ChunkValue::try_from(pb::ChunkValue::decode(bytes.as_slice()).unwrap());
        assert!(what(slow.unwrap_err()).contains("unknown dtype value -1"));
    }

    #[test]
    fn eight_megabyte_chunks_encode_and_decode_quickly() {
        let n = 1 << 20;
        let v = ChunkValue::Array(ArrayData::F64(ArrayD::from_shape_fn(
            IxDyn(&[1024, 1024]),
            |i| (i[0] * 1024 + i[1]) as f64 * 0.5,
        )));
        let start = Instant::now();
        let bytes = encode_chunk(&v);
        let encoded = start.elapsed();
        let back = decode_chunk(&bytes).unwrap();
        let decoded = start.elapsed() - encoded;
        assert!(bytes.len() > 8 * n && bytes.len() < 8 * n + 32);
        assert_eq!(back, v);
        eprintln!("8 MiB f64 chunk: encode {encoded:?}, decode {decoded:?}");
        if std::env::var_os("TESSERA_WIRE_BENCH").is_some() {
            let min = |f: &mut dyn FnMut()| {
                (0..20)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed()
                    })
                    .min()
                    .unwrap()
            };
            let copy = min(&mut || drop(std::hint::black_box(bytes.clone())));
            let enc = min(&mut || drop(std::hint::black_box(encode_chunk(&v))));
            let dec = min(&mut || drop(std::hint::black_box(decode_chunk(&bytes))));
            let prost = min(&mut || {
                drop(std::hint::black_box(pb::ChunkValue::decode(
                    bytes.as_slice(),
                )))
            });
            eprintln!(
                "best of 20: memcpy {copy:?}, encode {enc:?}, decode {dec:?}, prost decode {prost:?}"
            );
        }
        // Generous for a loaded test machine; a per-element allocation would blow through it.
        assert!(encoded.as_secs_f64() < 2.0 && decoded.as_secs_f64() < 2.0);
    }
}
