//! Boolean-mask selection (numpy's `x[mask]`, `extract`, `flatnonzero`): this file owns the op's two
//! stages, their metadata rules, which input blocks an output block reads and the copies.
//!
//! A selection's length depends on the data, and tessera fixes every chunk size when the graph is
//! built, so selection runs in two steps. [`MaskStage::Count`] turns each chunk of a flat boolean
//! mask into one element, its number of true entries — a small job the array builder computes
//! first. [`MaskStage::Select`] then carries those counts: output chunk `j` is the selected elements
//! of a run of consecutive input chunks (`groups`), so its size is known up front. Runs are grown
//! until they hold about one input chunk's worth of selected elements, so chunks with few or no
//! selections are merged into their neighbours and no output chunk is empty (unless the whole
//! selection is). A task checks the counts it was given against the mask it reads and fails with a
//! typed error if they disagree.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, InputMeta, RuleResult};
use crate::with_array;

/// What a mask layer computes.
#[derive(Clone, Debug, PartialEq)]
pub enum MaskStage {
    /// Input `[mask]` (1-D bool): one element per chunk, its count of true entries (i64).
    Count,
    /// Inputs `[values, mask]` (both 1-D, one grid), or `[mask]` alone when `indices` is set: the
    /// values (or the flat positions, i64) where the mask is true.
    Select {
        /// True entries of each mask chunk, as counted by [`MaskStage::Count`].
        counts: Arc<Vec<u64>>,
        /// End (exclusive) of each output chunk's run of input chunks, ascending, the last one the
        /// number of input chunks.
        groups: Vec<usize>,
        /// Positions instead of values (`flatnonzero`).
        indices: bool,
    },
}

/// A stage of a boolean-mask selection on flat (1-D) arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskOp {
    pub stage: MaskStage,
}

/// Runs of consecutive chunks, each closed once it holds at least `target` selected elements; a
/// tail with no selections joins the last run, so only an empty selection has an empty chunk.
pub(crate) fn group_counts(counts: &[u64], target: u64) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut acc = 0u64;
    for (c, &n) in counts.iter().enumerate() {
        acc += n;
        if acc >= target.max(1) {
            ends.push(c + 1);
            acc = 0;
        }
    }
    match ends.last_mut() {
        Some(last) if acc == 0 => *last = counts.len(),
        _ => ends.push(counts.len()),
    }
    ends
}

impl MaskOp {
    pub(crate) fn name(&self) -> &'static str {
        match &self.stage {
            MaskStage::Count => "mask-count",
            MaskStage::Select { indices: false, .. } => "mask-select",
            MaskStage::Select { indices: true, .. } => "flatnonzero",
        }
    }

    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let mask = inputs
            .last()
            .ok_or("a mask op reads its mask, this layer has no input")?;
        if mask.meta.dtype != DType::Bool || mask.meta.ndim() != 1 {
            return Err(format!(
                "its mask {} must be a 1-d bool array, it is {}-d {}",
                mask.id,
                mask.meta.ndim(),
                mask.meta.dtype
            ));
        }
        let sizes = mask.meta.chunks.axis(0);
        match &self.stage {
            MaskStage::Count => {
                if inputs.len() != 1 {
                    return Err(format!(
                        "mask-count reads exactly one input, this layer has {}",
                        inputs.len()
                    ));
                }
                Ok(Derived::new(
                    Chunks::from_sizes(vec![vec![1; sizes.len()]]),
                    DType::I64,
                    "one element per chunk of its mask",
                    "i64 counts",
                ))
            }
            MaskStage::Select {
                counts,
                groups,
                indices,
            } => {
                let want = if *indices { 1 } else { 2 };
                if inputs.len() != want {
                    return Err(format!(
                        "{} reads {want} inputs, this layer has {}",
                        self.name(),
                        inputs.len()
                    ));
                }
                if !*indices && inputs[0].meta.chunks != mask.meta.chunks {
                    return Err(format!(
                        "its values {} are chunked {}, its mask {} {}: they must match",
                        inputs[0].id, inputs[0].meta.chunks, mask.id, mask.meta.chunks
                    ));
                }
                if counts.len() != sizes.len() {
                    return Err(format!(
                        "has {} chunk counts for a mask of {} chunks",
                        counts.len(),
                        sizes.len()
                    ));
                }
                if let Some(c) = (0..sizes.len()).find(|&c| counts[c] > sizes[c] as u64) {
                    return Err(format!(
                        "counts {} true entries in mask chunk {c} of {} elements",
                        counts[c], sizes[c]
                    ));
                }
                let ascending = groups.windows(2).all(|w| w[0] < w[1]);
                if groups.is_empty()
                    || !ascending
                    || groups[0] == 0
                    || groups.last() != Some(&sizes.len())
                {
                    return Err(format!(
                        "its chunk groups {groups:?} do not split {} mask chunks into runs",
                        sizes.len()
                    ));
                }
                let mut out = Vec::with_capacity(groups.len());
                let mut start = 0;
                for &end in groups {
                    out.push(counts[start..end].iter().sum::<u64>() as usize);
                    start = end;
                }
                if out.len() > 1 && out.contains(&0) {
                    return Err(format!("its chunk groups {groups:?} leave an empty chunk"));
                }
                let dtype = if *indices {
                    DType::I64
                } else {
                    inputs[0].meta.dtype
                };
                Ok(Derived::new(
                    Chunks::from_sizes(vec![out]),
                    dtype,
                    "the counted selections of each run of input chunks",
                    if *indices {
                        "i64 positions"
                    } else {
                        "keeping its values' dtype"
                    },
                ))
            }
        }
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        match &self.stage {
            MaskStage::Count => t.u64(0),
            MaskStage::Select {
                counts,
                groups,
                indices,
            } => {
                t.u64(1 + *indices as u64);
                t.u64(counts.len() as u64);
                counts.iter().for_each(|&c| t.u64(c));
                t.usizes(groups);
            }
        }
    }

    /// The input chunks output block `j` reads.
    fn run_of(groups: &[usize], j: usize) -> std::ops::Range<usize> {
        let start = if j == 0 { 0 } else { groups[j - 1] };
        start..groups[j]
    }

    pub(crate) fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        match &self.stage {
            MaskStage::Count => out.push((0, Block::from_slice(block))),
            MaskStage::Select {
                groups, indices, ..
            } => {
                for c in Self::run_of(groups, block[0] as usize) {
                    if !*indices {
                        out.push((0, Block::from_elem(c as u32, 1)));
                    }
                    out.push((if *indices { 0 } else { 1 }, Block::from_elem(c as u32, 1)));
                }
            }
        }
    }

    pub(crate) fn run(
        &self,
        mask_meta: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let bools = |v: &ChunkValue| -> Result<ArrayD<bool>> {
            match v.as_array()? {
                ArrayData::Bool(m) => Ok(m.clone()),
                other => Err(Error::DTypeMismatch {
                    expected: DType::Bool,
                    actual: other.dtype(),
                }),
            }
        };
        match &self.stage {
            MaskStage::Count => {
                let m = bools(&deps[0])?;
                let n = m.iter().filter(|&&b| b).count() as i64;
                Ok(ChunkValue::Array(ArrayData::I64(ArrayD::from_elem(
                    IxDyn(&[1]),
                    n,
                ))))
            }
            MaskStage::Select {
                counts,
                groups,
                indices,
            } => {
                let run = Self::run_of(groups, block[0] as usize);
                let per = if *indices { 1 } else { 2 };
                let offsets = mask_meta.chunks.axis_offsets(0);
                let masks = run
                    .clone()
                    .zip(deps.chunks(per))
                    .map(|(c, d)| {
                        let m = bools(&d[per - 1])?;
                        let n = m.iter().filter(|&&b| b).count() as u64;
                        if n != counts[c] {
                            return Err(Error::InvalidGraph {
                                reason: format!(
                                    "mask chunk {c} holds {n} true entries, the selection was \
                                     planned for {}",
                                    counts[c]
                                ),
                            });
                        }
                        Ok(m)
                    })
                    .collect::<Result<Vec<_>>>()?;
                if *indices {
                    let pos: Vec<i64> = run
                        .zip(&masks)
                        .flat_map(|(c, m)| {
                            m.iter()
                                .enumerate()
                                .filter(|(_, b)| **b)
                                .map(move |(i, _)| (offsets[c] + i) as i64)
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let n = pos.len();
                    return Ok(ChunkValue::Array(ArrayData::I64(
                        ArrayD::from_shape_vec(IxDyn(&[n]), pos).expect("1-d"),
                    )));
                }
                let values = deps
                    .chunks(2)
                    .map(|d| d[0].as_array())
                    .collect::<Result<Vec<_>>>()?;
                let first = values.first().ok_or_else(|| Error::InvalidGraph {
                    reason: "a mask selection task has no input chunk".into(),
                })?;
                Ok(ChunkValue::Array(with_array!(*first, a => {
                    select(a, &values, &masks)?
                })))
            }
        }
    }
}

/// The values where each mask is true, chunk after chunk.
fn select<T: Element>(
    _dtype_of: &ArrayD<T>,
    values: &[&ArrayData],
    masks: &[ArrayD<bool>],
) -> Result<ArrayData> {
    let mut out = Vec::new();
    for (v, m) in values.iter().zip(masks) {
        let a = T::view(v).ok_or(Error::DTypeMismatch {
            expected: T::DTYPE,
            actual: v.dtype(),
        })?;
        if a.shape() != m.shape() {
            return Err(Error::InvalidGraph {
                reason: format!(
                    "a mask chunk of shape {:?} selects from values of shape {:?}",
                    m.shape(),
                    a.shape()
                ),
            });
        }
        out.extend(a.iter().zip(m).filter(|(_, b)| **b).map(|(x, _)| *x));
    }
    let n = out.len();
    Ok(T::wrap(
        ArrayD::from_shape_vec(IxDyn(&[n]), out).expect("1-d"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Chunks;

    #[test]
    fn runs_close_at_the_target_and_absorb_empty_tails() {
        assert_eq!(group_counts(&[0, 4, 0, 0, 2], 4), vec![2, 5]);
        assert_eq!(group_counts(&[0, 4, 0, 0], 4), vec![4]);
        assert_eq!(group_counts(&[0, 0, 0], 4), vec![3]);
        assert_eq!(group_counts(&[5, 5, 5], 4), vec![1, 2, 3]);
        assert_eq!(group_counts(&[1, 1, 1, 1, 1], 2), vec![2, 4, 5]);
    }

    #[test]
    fn counts_that_disagree_with_the_mask_are_a_typed_error() {
        let meta = ArrayMeta {
            chunks: Chunks::from_sizes(vec![vec![3]]),
            dtype: DType::Bool,
        };
        let mask = ArrayData::Bool(ndarray::arr1(&[true, false, true]).into_dyn());
        let op = MaskOp {
            stage: MaskStage::Select {
                counts: Arc::new(vec![1]),
                groups: vec![1],
                indices: true,
            },
        };
        let err = op
            .run(&meta, &[0], &[Arc::new(ChunkValue::Array(mask))])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("mask chunk 0 holds 2 true entries, the selection was planned for 1"),
            "{err}"
        );
    }
}
