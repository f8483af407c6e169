//! One level of dask's `topk` / `argtopk` tree reduction along an axis ([`TopKOp`]): every block
//! keeps the `|k|` best elements of each lane, in order (`k > 0`: the largest, largest first;
//! `k < 0`: the smallest, smallest first), so a block of length `n` along the axis becomes one of
//! `min(|k|, n)`. The builder rechunks groups of consecutive partial blocks together and applies
//! the op again until one block is left, which holds the answer.
//!
//! Order is numpy's (NaN largest); equal elements keep their index order at every level (a block
//! of partials concatenates earlier blocks first, each in index order among ties), so the result
//! is the same for every chunking. `argtopk` carries the global indices beside the values: the first
//! level makes them from the block's offset, later levels read them as a second input and select
//! with exactly the values' selection.

use std::sync::Arc;

use ndarray::{ArrayD, Axis};

use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block};
use crate::kernels::sort::{SortKey, sort_by_key_stable};
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, Holds, InputMeta, RuleResult};

/// One level of `topk` (`arg: false`) or `argtopk` (`arg: true`) along `axis`. With `indexed`
/// (`argtopk` above the first level) a second input holds the global indices of the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopKOp {
    pub k: i64,
    pub axis: usize,
    pub arg: bool,
    pub indexed: bool,
}

impl TopKOp {
    /// dask's name.
    pub fn name(&self) -> &'static str {
        if self.arg { "argtopk" } else { "topk" }
    }

    fn keep(&self) -> usize {
        self.k.unsigned_abs() as usize
    }

    /// Each chunk along the axis shrunk to at most `|k|`; the values' dtype, or int64 indices.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let want = 1 + self.indexed as usize;
        if inputs.len() != want || (self.indexed && !self.arg) {
            return Err(format!(
                "{} reads {want} input(s) (indices only for argtopk), this layer has {}",
                self.name(),
                inputs.len()
            ));
        }
        for i in inputs {
            if i.holds != Holds::Array {
                return Err(format!("its input {} holds no array chunks", i.id));
            }
        }
        let x = &inputs[0];
        let m = x.meta;
        if self.k == 0 {
            return Err("k must not be 0".into());
        }
        if self.axis >= m.ndim() {
            return Err(format!(
                "selects along axis {}, out of range for rank {}",
                self.axis,
                m.ndim()
            ));
        }
        if m.dtype.is_complex() {
            return Err(format!("cannot order {} input {}", m.dtype, x.id));
        }
        if let Some(i) = inputs.get(1)
            && (i.meta.dtype != DType::I64 || i.meta.chunks != m.chunks)
        {
            return Err(format!(
                "its indices {} must be int64 chunked as its values {}",
                i.id, x.id
            ));
        }
        let mut sizes = m.chunks.sizes().to_vec();
        sizes[self.axis] = sizes[self.axis]
            .iter()
            .map(|&n| n.min(self.keep()))
            .collect();
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            if self.arg { DType::I64 } else { m.dtype },
            "each chunk along the axis cut to at most |k|",
            if self.arg {
                "int64 indices"
            } else {
                "keeping its input's dtype"
            },
        ))
    }

    /// The block itself (and its indices).
    pub(crate) fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        out.push((0, Block::from_slice(block)));
        if self.indexed {
            out.push((1, Block::from_slice(block)));
        }
    }

    pub(crate) fn run(
        &self,
        inputs: &[&ArrayMeta],
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let bad = |reason: &str| Error::InvalidArgument {
            op: self.name(),
            reason: reason.into(),
        };
        let x = deps
            .first()
            .ok_or_else(|| bad("reads one block"))?
            .as_array()?;
        let index = if self.indexed {
            match deps.get(1).map(|d| d.as_array()).transpose()? {
                Some(ArrayData::I64(i)) if i.shape() == x.shape() => Some(i),
                _ => return Err(bad("reads int64 indices shaped as its values")),
            }
        } else {
            None
        };
        let offset = inputs
            .first()
            .map(|m| m.chunks.axis_offsets(self.axis)[block[self.axis] as usize])
            .unwrap_or(0) as i64;
        let idx_lanes: Option<Vec<_>> =
            index.map(|i| i.lanes(Axis(self.axis)).into_iter().collect());
        let value = if self.arg {
            ArrayData::I64(
                crate::with_real_array!(x, a => self.select(a, |lane, p| match &idx_lanes {
                    Some(i) => i[lane][p],
                    None => offset + p as i64,
                }), complex => return Err(Error::UnsupportedDType { op: self.name(), dtype: DType::C128 })),
            )
        } else {
            crate::map_real_array!(x, a => {
                let lanes: Vec<_> = a.lanes(Axis(self.axis)).into_iter().collect();
                self.select(a, |lane, p| lanes[lane][p])
            }, complex => return Err(Error::UnsupportedDType { op: self.name(), dtype: DType::C128 }))
        };
        Ok(ChunkValue::Array(value))
    }

    /// For each lane, the `min(|k|, n)` best positions in order, mapped by `pick(lane, position)`.
    fn select<T: SortKey, U: Element>(
        &self,
        a: &ArrayD<T>,
        pick: impl Fn(usize, usize) -> U,
    ) -> ArrayD<U> {
        let axis = Axis(self.axis);
        let n = a.len_of(axis);
        let keep = self.keep().min(n);
        let mut shape = a.shape().to_vec();
        shape[self.axis] = keep;
        let mut buf: Vec<(u64, usize)> = Vec::with_capacity(n);
        let largest = self.k > 0;
        let mut result = ArrayD::from_elem(shape, pick_default(&pick, a, n));
        for (l, (lane, mut o)) in a
            .lanes(axis)
            .into_iter()
            .zip(result.lanes_mut(axis))
            .enumerate()
        {
            buf.clear();
            buf.extend(lane.iter().enumerate().map(|(p, v)| {
                let k = v.key();
                (if largest { !k } else { k }, p)
            }));
            sort_by_key_stable(&mut buf, |x: (u64, usize)| x.0);
            o.iter_mut()
                .zip(&buf[..keep])
                .for_each(|(o, &(_, p))| *o = pick(l, p));
        }
        result
    }
}

/// A filler for the output before every slot is written (any value of the right type).
fn pick_default<T, U>(pick: &impl Fn(usize, usize) -> U, a: &ArrayD<T>, n: usize) -> U
where
    U: Element,
{
    if n > 0 && !a.is_empty() {
        pick(0, 0)
    } else {
        U::from_scalar(crate::meta::Scalar::I64(0))
    }
}
