//! `take`: selecting positions along one axis by a list of indices known when the graph is built
//! (numpy's `take` and integer-array indexing `x[[3, 0, 3]]`, dask's `x[list]`). Indices may repeat
//! and come in any order. This file owns the op's metadata rule, which input blocks an output block
//! reads (only the chunks along the axis that hold its indices) and the copy.
//!
//! The output keeps the input's chunks on the other axes; along the axis it is cut into pieces of
//! the input's largest chunk there, so a task's output is never larger than its input chunks'.

use std::sync::Arc;

use ndarray::Axis;

use crate::data::{ArrayData, ChunkValue};
use crate::error::Result;
use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::meta::{Chunks, split_axis};
use crate::ops::{Derived, InputMeta, RuleResult, one_input};

/// Positions `indices` (each below the axis length) along `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeOp {
    pub axis: usize,
    pub indices: Arc<Vec<u64>>,
}

impl TakeOp {
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, "take")?;
        let nd = input.meta.ndim();
        if self.axis >= nd {
            return Err(format!(
                "takes along axis {}, out of range for its {nd}-d input {}",
                self.axis, input.id
            ));
        }
        let len = input.meta.chunks.shape()[self.axis] as u64;
        if let Some((at, &bad)) = self.indices.iter().enumerate().find(|(_, i)| **i >= len) {
            return Err(format!(
                "index {bad} (position {at}) is out of bounds for axis {} of length {len}",
                self.axis
            ));
        }
        let piece = input
            .meta
            .chunks
            .axis(self.axis)
            .iter()
            .copied()
            .max()
            .unwrap_or(1);
        let mut sizes = input.meta.chunks.sizes().to_vec();
        sizes[self.axis] = split_axis(self.indices.len(), piece);
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            input.meta.dtype,
            "its input's chunks, and pieces of its largest chunk along the taken axis",
            "keeping its input's dtype",
        ))
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.axis as u64);
        t.u64(self.indices.len() as u64);
        for &i in self.indices.iter() {
            t.u64(i);
        }
    }

    /// The indices output block `block` selects.
    fn block_indices<'a>(&'a self, out: &ArrayMeta, block: &[u32]) -> &'a [u64] {
        let offsets = out.chunks.axis_offsets(self.axis);
        let b = block[self.axis] as usize;
        &self.indices[offsets[b]..offsets[b + 1]]
    }

    /// The input chunk along the axis holding each position, ascending and distinct.
    fn input_chunks(&self, input: &ArrayMeta, indices: &[u64]) -> Vec<u32> {
        let offsets = input.chunks.axis_offsets(self.axis);
        let mut chunks: Vec<u32> = indices
            .iter()
            .map(|&i| chunk_of(offsets, i as usize) as u32)
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        chunks
    }

    pub(crate) fn deps(
        &self,
        out: &ArrayMeta,
        input: &ArrayMeta,
        block: &[u32],
        deps: &mut Vec<(usize, Block)>,
    ) {
        for c in self.input_chunks(input, self.block_indices(out, block)) {
            let mut b = Block::from_slice(block);
            b[self.axis] = c;
            deps.push((0, b));
        }
    }

    pub(crate) fn run(
        &self,
        out: &ArrayMeta,
        input: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let indices = self.block_indices(out, block);
        let chunks = self.input_chunks(input, indices);
        let offsets = input.chunks.axis_offsets(self.axis);
        let sources = deps
            .iter()
            .map(|d| d.as_array())
            .collect::<Result<Vec<_>>>()?;
        let mut shape = out.chunks.block_shape(block);
        shape[self.axis] = indices.len();
        let mut result = ArrayData::full(&shape, crate::Scalar::Bool(false), out.dtype);
        for (j, &i) in indices.iter().enumerate() {
            let c = chunk_of(offsets, i as usize);
            let k = chunks.binary_search(&(c as u32)).expect("a dep per chunk");
            let at = i as usize - offsets[c];
            copy_lane(&mut result, j, sources[k], at, self.axis);
        }
        Ok(ChunkValue::Array(result))
    }
}

/// The chunk whose range `offsets[c]..offsets[c + 1]` holds position `i`.
fn chunk_of(offsets: &[usize], i: usize) -> usize {
    offsets.partition_point(|&o| o <= i) - 1
}

/// `dst[.., j, ..] = src[.., at, ..]` along `axis`, both of one dtype.
fn copy_lane(dst: &mut ArrayData, j: usize, src: &ArrayData, at: usize, axis: usize) {
    match (dst, src) {
        (ArrayData::Bool(d), ArrayData::Bool(s)) => lane(d, j, s, at, axis),
        (ArrayData::I64(d), ArrayData::I64(s)) => lane(d, j, s, at, axis),
        (ArrayData::F32(d), ArrayData::F32(s)) => lane(d, j, s, at, axis),
        (ArrayData::F64(d), ArrayData::F64(s)) => lane(d, j, s, at, axis),
        (ArrayData::C128(d), ArrayData::C128(s)) => lane(d, j, s, at, axis),
        (ArrayData::I32(d), ArrayData::I32(s)) => lane(d, j, s, at, axis),
        (ArrayData::U8(d), ArrayData::U8(s)) => lane(d, j, s, at, axis),
        (ArrayData::U64(d), ArrayData::U64(s)) => lane(d, j, s, at, axis),
        (d, s) => unreachable!("take copies {} into {}", s.dtype(), d.dtype()),
    }
}

fn lane<T: Clone>(
    d: &mut ndarray::ArrayD<T>,
    j: usize,
    s: &ndarray::ArrayD<T>,
    at: usize,
    axis: usize,
) {
    d.index_axis_mut(Axis(axis), j)
        .assign(&s.index_axis(Axis(axis), at));
}
