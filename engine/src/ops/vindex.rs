//! Point indexing (dask's `vindex`, numpy's fancy indexing with one integer array per leading
//! axis): the points are known when the graph is built, as the broadcast shape of the index arrays
//! and, per point, its coordinate on each indexed axis. This file owns the op's metadata rule,
//! which source blocks an output block reads (only the ones its points fall in, grouped by source
//! block as dask's vindex does, so the cost scales with the points and not with the array) and the
//! gather.
//!
//! The output is the index shape followed by the input's remaining axes, which keep their chunks.
//! The index axes are cut along their first axis only, so each output block holds a run of
//! consecutive points (in C order) — at most as many as one source block has positions on the
//! indexed axes, so a task's output is never much larger than its inputs.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::Result;
use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::meta::{Chunks, split_axis};
use crate::ops::{Derived, InputMeta, RuleResult, one_input};

/// Points of the input's first `axes` axes: point `p` (C order over `index_shape`) is at
/// `coords[p * axes..(p + 1) * axes]`, each coordinate below its axis length.
#[derive(Clone, Debug, PartialEq)]
pub struct VIndexOp {
    /// The broadcast shape of the index arrays: the leading axes of the output.
    pub index_shape: Vec<usize>,
    /// How many leading axes of the input are indexed (one index array each).
    pub axes: usize,
    /// The points' coordinates, point-major.
    pub coords: Arc<Vec<u64>>,
}

impl VIndexOp {
    /// The number of points, or `None` when the index shape's product overflows.
    fn points(&self) -> Option<usize> {
        self.index_shape
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
    }

    /// Points per run of the first index axis: the product of the index shape's other axes.
    fn inner(&self) -> usize {
        self.index_shape
            .iter()
            .skip(1)
            .fold(1usize, |acc, &n| acc.saturating_mul(n))
    }

    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, "vindex")?;
        let nd = input.meta.ndim();
        if self.axes == 0 || self.axes > nd {
            return Err(format!(
                "indexes {} leading axes of its {nd}-d input {}: needs 1 to {nd}",
                self.axes, input.id
            ));
        }
        let points = self
            .points()
            .ok_or_else(|| format!("index shape {:?} is too large", self.index_shape))?;
        if points.checked_mul(self.axes) != Some(self.coords.len()) {
            return Err(format!(
                "{} coordinates for {points} points of {} axes (index shape {:?})",
                self.coords.len(),
                self.axes,
                self.index_shape
            ));
        }
        let shape = input.meta.chunks.shape();
        if let Some((at, &bad)) = self
            .coords
            .iter()
            .enumerate()
            .find(|(at, c)| **c >= shape[at % self.axes] as u64)
        {
            let axis = at % self.axes;
            return Err(format!(
                "index {bad} (point {}) is out of bounds for axis {axis} of length {}",
                at / self.axes,
                shape[axis]
            ));
        }
        // As many points per output block as one source block holds positions on the indexed
        // axes.
        let piece = (0..self.axes).fold(1usize, |acc, a| {
            let max = input.meta.chunks.axis(a).iter().copied().max().unwrap_or(1);
            acc.saturating_mul(max.max(1))
        });
        let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(nd - self.axes + 1);
        for (j, &n) in self.index_shape.iter().enumerate() {
            sizes.push(if j == 0 {
                split_axis(n, (piece / self.inner().max(1)).max(1))
            } else {
                vec![n]
            });
        }
        sizes.extend(input.meta.chunks.sizes()[self.axes..].iter().cloned());
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            input.meta.dtype,
            "the index shape cut along its first axis into runs of points, then its input's \
             chunks on the axes not indexed",
            "keeping its input's dtype",
        ))
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.axes as u64);
        t.usizes(&self.index_shape);
        t.u64(self.coords.len() as u64);
        for &c in self.coords.iter() {
            t.u64(c);
        }
    }

    /// The points output block `block` holds, as a range of point numbers.
    fn block_points(&self, out: &ArrayMeta, block: &[u32]) -> std::ops::Range<usize> {
        if self.index_shape.is_empty() {
            return 0..1;
        }
        let offsets = out.chunks.axis_offsets(0);
        let b = block[0] as usize;
        let inner = self.inner();
        offsets[b] * inner..offsets[b + 1] * inner
    }

    /// The source block holding point `p` for output block `block`.
    fn source_block(&self, input: &ArrayMeta, block: &[u32], p: usize) -> Block {
        let m = self.index_shape.len();
        let mut b = Block::new();
        for a in 0..self.axes {
            let c = self.coords[p * self.axes + a] as usize;
            b.push(input.chunks.block_of(a, c) as u32);
        }
        b.extend_from_slice(&block[m..]);
        b
    }

    /// The distinct source blocks output block `block` reads, ascending.
    fn sources(&self, out: &ArrayMeta, input: &ArrayMeta, block: &[u32]) -> Vec<Block> {
        let mut blocks: Vec<Block> = self
            .block_points(out, block)
            .map(|p| self.source_block(input, block, p))
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks
    }

    pub(crate) fn deps(
        &self,
        out: &ArrayMeta,
        input: &ArrayMeta,
        block: &[u32],
        deps: &mut Vec<(usize, Block)>,
    ) {
        deps.extend(self.sources(out, input, block).into_iter().map(|b| (0, b)));
    }

    pub(crate) fn run(
        &self,
        out: &ArrayMeta,
        input: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let sources = self.sources(out, input, block);
        let values = deps
            .iter()
            .map(|d| d.as_array())
            .collect::<Result<Vec<_>>>()?;
        let m = self.index_shape.len();
        let block_shape = out.chunks.block_shape(block);
        let range = self.block_points(out, block);
        // One row per point, then the remaining axes; reshaped to the block's index axes below.
        let mut flat_shape = vec![range.len()];
        flat_shape.extend_from_slice(&block_shape[m..]);
        let mut result = ArrayData::full(&flat_shape, crate::Scalar::Bool(false), out.dtype);
        let mut at = vec![0usize; self.axes];
        for (j, p) in range.enumerate() {
            let src = self.source_block(input, block, p);
            let k = sources.binary_search(&src).expect("a dep per source block");
            for (a, slot) in at.iter_mut().enumerate() {
                let c = self.coords[p * self.axes + a] as usize;
                *slot = c - input.chunks.axis_offsets(a)[src[a] as usize];
            }
            copy_point(&mut result, j, values[k], &at);
        }
        let shaped = crate::map_array!(result, a => a
            .into_shape_with_order(IxDyn(&block_shape))
            .expect("a standard-layout buffer of the block's element count"));
        Ok(ChunkValue::Array(shaped))
    }
}

/// `dst[j, ...] = src[at..., ...]`, both of one dtype.
fn copy_point(dst: &mut ArrayData, j: usize, src: &ArrayData, at: &[usize]) {
    match (dst, src) {
        (ArrayData::Bool(d), ArrayData::Bool(s)) => point(d, j, s, at),
        (ArrayData::I64(d), ArrayData::I64(s)) => point(d, j, s, at),
        (ArrayData::F32(d), ArrayData::F32(s)) => point(d, j, s, at),
        (ArrayData::F64(d), ArrayData::F64(s)) => point(d, j, s, at),
        (ArrayData::C128(d), ArrayData::C128(s)) => point(d, j, s, at),
        (ArrayData::I32(d), ArrayData::I32(s)) => point(d, j, s, at),
        (ArrayData::U8(d), ArrayData::U8(s)) => point(d, j, s, at),
        (ArrayData::U64(d), ArrayData::U64(s)) => point(d, j, s, at),
        (d, s) => unreachable!("vindex copies {} into {}", s.dtype(), d.dtype()),
    }
}

fn point<T: Clone>(d: &mut ArrayD<T>, j: usize, s: &ArrayD<T>, at: &[usize]) {
    let mut v = s.view();
    for &i in at {
        v = v.index_axis_move(Axis(0), i);
    }
    d.index_axis_mut(Axis(0), j).assign(&v);
}
