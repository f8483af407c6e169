//! The two Zarr ops: [`ZarrSource`] reads an array from a Zarr store, one task per store chunk (or per
//! group of them), and [`ZarrWrite`] writes each chunk of its input into a store from the task that
//! holds it, so that on a cluster every worker reads and writes the store directly and no chunk passes
//! through the client or the scheduler.
//!
//! A write task's output is one element (the count of elements it wrote), so computing the write
//! layer is what `Array::to_zarr` waits for. The write rule refuses an input whose chunk boundaries do
//! not fall on the store's chunk (shard) boundaries: then two tasks could both rewrite one store chunk
//! and lose each other's part. `Array::to_zarr` rechunks such an input to the store's chunks first.

use ndarray::{ArrayD, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::Result;
use crate::graph::{ArrayMeta, Tokenizer};
use crate::io::zarr::ZarrArrayRef;
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, Holds, InputMeta, RuleResult, no_inputs, one_input};

fn tokenize_array(a: &ZarrArrayRef, t: &mut Tokenizer) {
    t.str(a.store.as_str());
    t.str(&a.path);
    t.str(&a.metadata);
}

/// A Zarr array read lazily: block `b` reads `group` store chunks along each axis.
#[derive(Clone, Debug)]
pub struct ZarrSource {
    pub array: ZarrArrayRef,
    /// Store chunks per task along each axis (all 1: one task per store chunk).
    pub group: Vec<usize>,
}

impl ZarrSource {
    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        tokenize_array(&self.array, t);
        t.usizes(&self.group);
    }

    /// The store's grid with `group` consecutive store chunks merged along each axis.
    pub(crate) fn grid(&self) -> RuleResult<Chunks> {
        let a = &self.array;
        if self.group.len() != a.shape.len() {
            return Err(format!(
                "groups {:?} store chunks, which needs one entry per axis of the {}-d array {} in {}",
                self.group,
                a.shape.len(),
                a.path,
                a.store
            ));
        }
        if self.group.contains(&0) {
            return Err(format!(
                "groups {:?} store chunks: a group cannot be empty",
                self.group
            ));
        }
        let sizes = a
            .grid
            .iter()
            .zip(&self.group)
            .map(|(sizes, &g)| sizes.chunks(g).map(|c| c.iter().sum()).collect())
            .collect();
        let chunks = Chunks::from_sizes(sizes);
        chunks.well_formed()?;
        if chunks.shape() != a.shape {
            return Err(format!(
                "the store's chunk grid of {} in {} has shape {:?}, its metadata says {:?}",
                a.path,
                a.store,
                chunks.shape(),
                a.shape
            ));
        }
        Ok(chunks)
    }

    /// The store's shape and dtype, cut by its chunk grid (grouped).
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        no_inputs(inputs, "from_zarr")?;
        Ok(Derived::new(
            self.grid()?,
            self.array.dtype,
            "the store's chunk grid",
            "the store's data type",
        ))
    }

    pub(crate) fn run(&self, meta: &ArrayMeta, block: &[u32]) -> Result<ChunkValue> {
        let offset = meta.chunks.block_offset(block);
        let shape = meta.chunks.block_shape(block);
        Ok(ChunkValue::Array(self.array.read_region(&offset, &shape)?))
    }
}

/// Writes each chunk of its input into a Zarr array at `region` + the chunk's offset.
#[derive(Clone, Debug)]
pub struct ZarrWrite {
    pub array: ZarrArrayRef,
    /// Where the input's first element goes in the store's array.
    pub region: Vec<usize>,
}

impl ZarrWrite {
    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        tokenize_array(&self.array, t);
        t.usizes(&self.region);
    }

    /// One element per input chunk (the count it wrote), after checking that the input fits the
    /// store's array at `region` and that its chunk boundaries are store chunk boundaries.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, "to_zarr")?;
        let a = &self.array;
        let what = format!("array {} in {}", a.path, a.store);
        if input.holds != Holds::Array {
            return Err(format!(
                "writes {} to {what}, but it holds partial results, not array data",
                input.id
            ));
        }
        if input.meta.dtype != a.dtype {
            return Err(format!(
                "writes {} data to {what}, whose data type is {}",
                input.meta.dtype, a.dtype
            ));
        }
        let shape = input.meta.chunks.shape();
        if shape.len() != a.shape.len() || self.region.len() != a.shape.len() {
            return Err(format!(
                "writes a {}-d array at offset {:?} to the {}-d {what}",
                shape.len(),
                self.region,
                a.shape.len()
            ));
        }
        for (axis, ((&o, &n), &len)) in self.region.iter().zip(&shape).zip(&a.shape).enumerate() {
            if o.checked_add(n).is_none_or(|end| end > len) {
                return Err(format!(
                    "writes {n} elements from offset {o} along axis {axis} of {what}, whose length is {len}"
                ));
            }
        }
        if let Some(reason) = misaligned(&input.meta.chunks, &self.region, &a.grid) {
            return Err(format!("writes to {what}: {reason}"));
        }
        let sizes = input
            .meta
            .chunks
            .numblocks()
            .iter()
            .map(|&n| vec![1; n])
            .collect();
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            DType::I64,
            "one element per input chunk",
            "a count of elements written",
        ))
    }

    pub(crate) fn run(
        &self,
        input: &ArrayMeta,
        block: &[u32],
        data: &ChunkValue,
    ) -> Result<ChunkValue> {
        let mut offset = input.chunks.block_offset(block);
        for (o, r) in offset.iter_mut().zip(&self.region) {
            *o += r;
        }
        let written = self.array.write_region(&offset, data.as_array()?)?;
        let one = vec![1; block.len()];
        Ok(ChunkValue::Array(ArrayData::I64(ArrayD::from_elem(
            IxDyn(&one),
            written as i64,
        ))))
    }
}

/// Why `chunks` placed at `region` would split a store chunk between two tasks, if it would: each of
/// its inner chunk boundaries must be a boundary of the store's `grid`.
pub(crate) fn misaligned(chunks: &Chunks, region: &[usize], grid: &[Vec<usize>]) -> Option<String> {
    for (axis, (&o, store)) in region.iter().zip(grid).enumerate() {
        let sizes = chunks.axis(axis);
        let mut bounds = std::collections::HashSet::new();
        let mut at = 0;
        for s in store {
            at += s;
            bounds.insert(at);
        }
        let mut at = o;
        for s in &sizes[..sizes.len().saturating_sub(1)] {
            at += s;
            if !bounds.contains(&at) {
                return Some(format!(
                    "a chunk boundary at {at} along axis {axis} is inside a store chunk (store \
                     chunks {}), so two tasks would write one store chunk; rechunk to the store's \
                     chunks first",
                    describe_sizes(store)
                ));
            }
        }
    }
    None
}

/// The sizes that cut `[offset, offset + len)` at the store's chunk boundaries.
pub(crate) fn store_aligned(offset: usize, len: usize, store: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut start, end) = (0usize, offset + len);
    for &s in store {
        let (lo, hi) = (start.max(offset), (start + s).min(end));
        if lo < hi {
            out.push(hi - lo);
        }
        start += s;
    }
    if out.is_empty() {
        out.push(len);
    }
    out
}

fn describe_sizes(sizes: &[usize]) -> String {
    match sizes {
        [] => "none".into(),
        [first, rest @ ..] if rest.iter().all(|s| s <= first) => format!("of {first}"),
        _ => format!("{sizes:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_inside_store_chunks_are_misaligned() {
        let grid = vec![vec![5, 5, 5, 2], vec![4, 4]];
        let ok = Chunks::from_sizes(vec![vec![10, 7], vec![8]]);
        assert_eq!(misaligned(&ok, &[0, 0], &grid), None);
        let bad = Chunks::from_sizes(vec![vec![7, 10], vec![8]]);
        let why = misaligned(&bad, &[0, 0], &grid).unwrap();
        assert!(why.contains("boundary at 7 along axis 0"), "{why}");
        // At an offset the same chunks align differently.
        let shifted = Chunks::from_sizes(vec![vec![3, 5], vec![4]]);
        assert_eq!(misaligned(&shifted, &[2, 4], &grid), None);
        assert!(misaligned(&shifted, &[0, 4], &grid).is_some());
    }

    #[test]
    fn store_aligned_cuts_a_range_at_store_boundaries() {
        let store = [5, 5, 5, 2];
        assert_eq!(store_aligned(0, 17, &store), vec![5, 5, 5, 2]);
        assert_eq!(store_aligned(3, 9, &store), vec![2, 5, 2]);
        assert_eq!(store_aligned(6, 2, &store), vec![2]);
        assert_eq!(store_aligned(15, 2, &store), vec![2]);
        // An empty range stays one empty chunk.
        assert_eq!(store_aligned(4, 0, &store), vec![0]);
    }
}
