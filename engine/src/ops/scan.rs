//! Cumulative sums and products along one axis ([`ScanOp`]: numpy's `cumsum`, `cumprod`,
//! `nancumsum`, `nancumprod`) over any chunking. Block `i` along the axis reads input blocks
//! `0..=i` along it: the preceding ones give the carry, folded element by element in index order,
//! and the block itself is then scanned from that carry. Every output element is therefore the
//! same left-to-right fold numpy's `accumulate` computes, bit for bit, whatever the chunking. The
//! price is that block `i` reads `i + 1` blocks (quadratic reads in the number of chunks along the
//! axis, where dask's carry-per-block scan is linear); rechunk the axis coarser when it has very
//! many chunks.

use std::sync::Arc;

use ndarray::{ArrayD, Axis};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::Block;
use crate::meta::DType;
use crate::ops::{Derived, Holds, InputMeta, RuleResult, one_input};

/// What a scan accumulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScanFn {
    /// Running sum (numpy's `cumsum`).
    Sum = 0,
    /// Running product (numpy's `cumprod`).
    Prod = 1,
    /// Running sum with NaN counted as 0 (numpy's `nancumsum`).
    NanSum = 2,
    /// Running product with NaN counted as 1 (numpy's `nancumprod`).
    NanProd = 3,
}

impl ScanFn {
    /// Every scan, in code order.
    pub const ALL: &[ScanFn] = &[ScanFn::Sum, ScanFn::Prod, ScanFn::NanSum, ScanFn::NanProd];

    /// numpy's name.
    pub fn name(self) -> &'static str {
        match self {
            ScanFn::Sum => "cumsum",
            ScanFn::Prod => "cumprod",
            ScanFn::NanSum => "nancumsum",
            ScanFn::NanProd => "nancumprod",
        }
    }

    /// The stable code on the wire and in tokens.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The scan with wire code `code`, if there is one.
    pub fn from_code(code: i32) -> Option<Self> {
        ScanFn::ALL.iter().copied().find(|f| f.code() == code)
    }

    /// numpy's result dtype: bool and the signed integers accumulate in int64, the unsigned ones in
    /// uint64, floats keep their dtype.
    pub fn result_dtype(self, input: DType) -> DType {
        match input {
            DType::Bool | DType::I32 | DType::I64 => DType::I64,
            DType::U8 | DType::U64 => DType::U64,
            d => d,
        }
    }

    fn is_sum(self) -> bool {
        matches!(self, ScanFn::Sum | ScanFn::NanSum)
    }

    fn skips_nan(self) -> bool {
        matches!(self, ScanFn::NanSum | ScanFn::NanProd)
    }
}

/// A cumulative scan along `axis`. Its input already has the result dtype (the builder casts).
#[derive(Clone, Debug, PartialEq)]
pub struct ScanOp {
    pub func: ScanFn,
    pub axis: usize,
}

impl ScanOp {
    /// The input's chunks and dtype, which must be the scan's result dtype for itself.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, self.func.name())?;
        if input.holds != Holds::Array {
            return Err(format!("its input {} holds no array chunks", input.id));
        }
        let m = input.meta;
        if self.axis >= m.ndim() {
            return Err(format!(
                "scans along axis {}, out of range for rank {}",
                self.axis,
                m.ndim()
            ));
        }
        if self.func.result_dtype(m.dtype) != m.dtype {
            return Err(format!(
                "{} reads {} as {}; its input {} must be cast first",
                self.func.name(),
                m.dtype,
                self.func.result_dtype(m.dtype),
                input.id
            ));
        }
        Ok(Derived::new(
            m.chunks.clone(),
            m.dtype,
            "keeping its input's chunks",
            "keeping its input's dtype",
        ))
    }

    /// Input blocks `0..=block[axis]` along the axis, in order.
    pub(crate) fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        for j in 0..=block[self.axis] {
            let mut b = Block::from_slice(block);
            b[self.axis] = j;
            out.push((0, b));
        }
    }

    /// The block's scan: the carry folded over the preceding blocks, then the running values.
    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let (own, before) = deps.split_last().ok_or_else(|| Error::InvalidArgument {
            op: self.func.name(),
            reason: "a scan block reads at least its own input block".into(),
        })?;
        let before: Vec<&ArrayData> = before.iter().map(|d| d.as_array()).collect::<Result<_>>()?;
        let own = own.as_array()?;
        let (axis, f) = (Axis(self.axis), self.func);
        macro_rules! scan {
            ($x:expr, $variant:ident, $zero:expr, $one:expr, $op_sum:expr, $op_prod:expr) => {{
                let identity = if f.is_sum() { $zero } else { $one };
                let step = |acc, v| {
                    if f.is_sum() {
                        $op_sum(acc, v)
                    } else {
                        $op_prod(acc, v)
                    }
                };
                let skip = f.skips_nan();
                // The carry, one value per lane of the block, in the order `lanes` visits them.
                let mut carry = vec![identity; lane_count($x.shape(), self.axis)];
                for b in &before {
                    let ArrayData::$variant(b) = b else {
                        return Err(mismatch(f, own.dtype(), b.dtype()));
                    };
                    crate::exec::cancel::checkpoint()?;
                    for (c, lane) in carry.iter_mut().zip(b.lanes(axis)) {
                        for &v in lane {
                            if !(skip && is_nan(v)) {
                                *c = step(*c, v);
                            }
                        }
                    }
                }
                let mut out: ArrayD<_> = $x.clone();
                for (c, mut lane) in carry.into_iter().zip(out.lanes_mut(axis)) {
                    let mut acc = c;
                    for v in lane.iter_mut() {
                        if !(skip && is_nan(*v)) {
                            acc = step(acc, *v);
                        }
                        *v = acc;
                    }
                }
                ArrayData::$variant(out)
            }};
        }
        let value = match own {
            ArrayData::I64(x) => scan!(
                x,
                I64,
                0i64,
                1i64,
                |a: i64, v: i64| a.wrapping_add(v),
                |a: i64, v: i64| a.wrapping_mul(v)
            ),
            ArrayData::U64(x) => scan!(
                x,
                U64,
                0u64,
                1u64,
                |a: u64, v: u64| a.wrapping_add(v),
                |a: u64, v: u64| a.wrapping_mul(v)
            ),
            ArrayData::F32(x) => scan!(
                x,
                F32,
                0f32,
                1f32,
                |a: f32, v: f32| a + v,
                |a: f32, v: f32| a * v
            ),
            ArrayData::F64(x) => scan!(
                x,
                F64,
                0f64,
                1f64,
                |a: f64, v: f64| a + v,
                |a: f64, v: f64| a * v
            ),
            ArrayData::Bool(_) | ArrayData::I32(_) | ArrayData::U8(_) | ArrayData::C128(_) => {
                return Err(Error::UnsupportedDType {
                    op: f.name(),
                    dtype: own.dtype(),
                });
            }
        };
        Ok(ChunkValue::Array(value))
    }
}

/// The number of lanes along `axis` of an array of `shape` (the product of the other lengths).
fn lane_count(shape: &[usize], axis: usize) -> usize {
    shape
        .iter()
        .enumerate()
        .filter(|&(a, _)| a != axis)
        .map(|(_, &n)| n)
        .product()
}

/// NaN test for the scanned types (integers are never NaN).
trait MaybeNan: Copy {
    fn nan(self) -> bool;
}
impl MaybeNan for i64 {
    fn nan(self) -> bool {
        false
    }
}
impl MaybeNan for u64 {
    fn nan(self) -> bool {
        false
    }
}
impl MaybeNan for f32 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
impl MaybeNan for f64 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
fn is_nan<T: MaybeNan>(v: T) -> bool {
    v.nan()
}

fn mismatch(f: ScanFn, own: DType, other: DType) -> Error {
    Error::InvalidArgument {
        op: f.name(),
        reason: format!("a preceding block holds {other} where this block holds {own}"),
    }
}
