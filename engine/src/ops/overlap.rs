//! Overlapping blocks (dask's `overlap` and `trim_internal`): this file owns the two ops that let a
//! stencil run across chunk borders, their metadata rules, which input blocks an output block reads
//! and the copies.
//!
//! [`OverlapOp`] grows every block by `depth[axis]` elements on each side along each axis, taken from
//! its neighbours' edge slabs; at the array's outer edges the [`Boundary`] decides what the margin
//! holds (a mirror, the other end, the edge value, a constant, or nothing at all). An output block
//! reads only the input blocks that hold its margin — itself and its direct neighbours (and, for
//! `periodic`, the block at the other end) — and copies only the slabs it needs from each. The depth
//! along an axis may not exceed its smallest chunk, so a margin never reaches past a neighbour (as
//! dask; the error says to rechunk). [`TrimOp`] cuts the margins off again.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};

use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::meta::{Chunks, DType, Scalar};
use crate::ops::{Derived, InputMeta, RuleResult, one_input};
use crate::with_array;

/// What the margin of a block at the array's outer edge holds (dask's `boundary`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// The edge mirrored, the edge element included (`x[-1] = x[0]`; numpy's `symmetric` pad).
    Reflect,
    /// The other end of the axis (`x[-1] = x[n - 1]`).
    Periodic,
    /// The edge element repeated.
    Nearest,
    /// No margin: the outer blocks grow only towards their neighbours.
    None,
    /// A constant (cast to the array's dtype).
    Constant(Scalar),
}

impl Boundary {
    /// Stable wire code of the mode (the constant travels beside it).
    pub fn code(&self) -> i32 {
        match self {
            Boundary::Reflect => 0,
            Boundary::Periodic => 1,
            Boundary::Nearest => 2,
            Boundary::None => 3,
            Boundary::Constant(_) => 4,
        }
    }

    /// The mode for a wire code, with the constant for code 4.
    pub fn from_code(code: i32, constant: Option<Scalar>) -> Option<Boundary> {
        Some(match code {
            0 => Boundary::Reflect,
            1 => Boundary::Periodic,
            2 => Boundary::Nearest,
            3 => Boundary::None,
            4 => Boundary::Constant(constant?),
            _ => return None,
        })
    }

    fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.code() as u64);
        if let Boundary::Constant(c) = self {
            t.bytes(&c.token_bytes());
        }
    }
}

/// Every block grown by `depth[axis]` on each side along each axis (dask's `overlap`).
#[derive(Clone, Debug, PartialEq)]
pub struct OverlapOp {
    pub depth: Vec<usize>,
    pub boundary: Vec<Boundary>,
}

/// Every block cut by `depth[axis]` on each side along each axis (dask's `trim_internal`); where
/// `outer[axis]` is false the array's outer sides are kept (they got no margin: boundary `none`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrimOp {
    pub depth: Vec<usize>,
    pub outer: Vec<bool>,
}

/// The grown sizes of one axis's chunks: `(before, after)` margins per chunk.
fn margins(n: usize, d: usize, outer: bool, b: usize) -> (usize, usize) {
    if d == 0 {
        return (0, 0);
    }
    let before = if b == 0 && !outer { 0 } else { d };
    let after = if b + 1 == n && !outer { 0 } else { d };
    (before, after)
}

fn check_axes<T>(what: &str, v: &[T], nd: usize, id: impl std::fmt::Display) -> RuleResult<()> {
    if v.len() != nd {
        return Err(format!(
            "has {} {what} entries for its {nd}-d input {id}",
            v.len()
        ));
    }
    Ok(())
}

impl OverlapOp {
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, "overlap")?;
        let chunks = &input.meta.chunks;
        let nd = chunks.ndim();
        check_axes("depth", &self.depth, nd, input.id)?;
        check_axes("boundary", &self.boundary, nd, input.id)?;
        for (axis, b) in self.boundary.iter().enumerate() {
            if let Boundary::Constant(c) = b
                && c.dtype() != input.meta.dtype
            {
                return Err(format!(
                    "the constant boundary on axis {axis} is {}, its input {} is {}",
                    c.dtype(),
                    input.id,
                    input.meta.dtype
                ));
            }
        }
        let mut sizes = Vec::with_capacity(nd);
        for axis in 0..nd {
            let d = self.depth[axis];
            let sz = chunks.axis(axis);
            let smallest = sz.iter().copied().min().unwrap_or(0);
            if d > smallest {
                return Err(format!(
                    "the overlap depth {d} on axis {axis} is larger than the smallest chunk \
                     ({smallest}) of its input {}: rechunk to chunks of at least {d} along axis \
                     {axis} first",
                    input.id
                ));
            }
            let outer = self.boundary[axis] != Boundary::None;
            let n = sz.len();
            sizes.push(
                sz.iter()
                    .enumerate()
                    .map(|(b, &s)| {
                        let (l, r) = margins(n, d, outer, b);
                        s + l + r
                    })
                    .collect(),
            );
        }
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            input.meta.dtype,
            "its input's chunks each grown by the depth on both sides (not at the outer sides \
             with boundary none)",
            "keeping its input's dtype",
        ))
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.usizes(&self.depth);
        for b in &self.boundary {
            b.tokenize(t);
        }
    }

    /// Where each element of output block `block` comes from, axis by axis.
    fn plans(&self, input: &Chunks, block: &[u32]) -> Vec<AxisPlan> {
        (0..input.ndim())
            .map(|axis| {
                AxisPlan::new(
                    input.axis_offsets(axis),
                    block[axis] as usize,
                    self.depth[axis],
                    self.boundary[axis],
                )
            })
            .collect()
    }

    pub(crate) fn deps(&self, input: &ArrayMeta, block: &[u32], deps: &mut Vec<(usize, Block)>) {
        let plans = self.plans(&input.chunks, block);
        let counts: Vec<usize> = plans.iter().map(|p| p.blocks.len()).collect();
        for idx in crate::meta::block_indices(&counts) {
            let b: Block = idx
                .iter()
                .zip(&plans)
                .map(|(&k, p)| p.blocks[k as usize])
                .collect();
            deps.push((0, b));
        }
    }

    pub(crate) fn run(
        &self,
        input: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let plans = self.plans(&input.chunks, block);
        let values = deps
            .iter()
            .map(|d| d.as_array())
            .collect::<Result<Vec<_>>>()?;
        let first = *values.first().ok_or_else(|| Error::InvalidGraph {
            reason: "an overlap task has no input block".into(),
        })?;
        let constants: Vec<Option<Scalar>> = self
            .boundary
            .iter()
            .map(|b| match b {
                Boundary::Constant(c) => Some(c.cast(input.dtype)),
                _ => None,
            })
            .collect();
        Ok(ChunkValue::Array(with_array!(first, a => {
            assemble(a, &values, &plans, &constants)?
        })))
    }
}

/// Where the elements of one output block come from along one axis.
struct AxisPlan {
    /// The input blocks along the axis it reads, ascending and distinct.
    blocks: Vec<u32>,
    /// Per output position: (position in `blocks`, index inside that block), or `None` for the
    /// boundary constant.
    source: Vec<Option<(usize, usize)>>,
}

impl AxisPlan {
    fn new(offsets: &[usize], b: usize, d: usize, boundary: Boundary) -> AxisPlan {
        let n = offsets.len() - 1;
        let len = offsets[n] as isize;
        let (before, after) = margins(n, d, boundary != Boundary::None, b);
        let lo = offsets[b] as isize - before as isize;
        let hi = (offsets[b + 1] + after) as isize;
        let global: Vec<Option<usize>> = (lo..hi)
            .map(|g| {
                if (0..len).contains(&g) {
                    return Some(g as usize);
                }
                let s = match boundary {
                    Boundary::Periodic => g.rem_euclid(len),
                    Boundary::Reflect if g < 0 => -g - 1,
                    Boundary::Reflect => 2 * len - 1 - g,
                    Boundary::Nearest => g.clamp(0, len - 1),
                    Boundary::Constant(_) | Boundary::None => return None,
                };
                Some(s as usize)
            })
            .collect();
        let block_of = |i: usize| offsets.partition_point(|&o| o <= i) - 1;
        let mut blocks: Vec<u32> = global
            .iter()
            .flatten()
            .map(|&i| block_of(i) as u32)
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        if blocks.is_empty() {
            // A zero-length chunk with no margin on this axis: it reads itself, and copies nothing.
            blocks.push(b as u32);
        }
        let source = global
            .iter()
            .map(|g| {
                g.map(|i| {
                    let c = block_of(i);
                    let k = blocks
                        .binary_search(&(c as u32))
                        .expect("its block is read");
                    (k, i - offsets[c])
                })
            })
            .collect();
        AxisPlan { blocks, source }
    }

    /// Per read block, the range of its indices this axis uses (empty blocks keep `0..0`).
    fn ranges(&self) -> Vec<(usize, usize)> {
        let mut r = vec![(usize::MAX, 0usize); self.blocks.len()];
        for &(k, i) in self.source.iter().flatten() {
            r[k].0 = r[k].0.min(i);
            r[k].1 = r[k].1.max(i + 1);
        }
        r.into_iter()
            .map(|(s, e)| if s > e { (0, 0) } else { (s, e) })
            .collect()
    }
}

/// Builds one grown block: the used slab of every read block joined into one array (one copy of
/// about the output's size), then each axis's positions picked from it, then the constant margins.
fn assemble<T: Element>(
    _dtype_of: &ArrayD<T>,
    values: &[&ArrayData],
    plans: &[AxisPlan],
    constants: &[Option<Scalar>],
) -> Result<ArrayData> {
    let nd = plans.len();
    let ranges: Vec<Vec<(usize, usize)>> = plans.iter().map(AxisPlan::ranges).collect();
    let counts: Vec<usize> = plans.iter().map(|p| p.blocks.len()).collect();
    let mut slabs: Vec<ArrayViewD<'_, T>> = Vec::with_capacity(values.len());
    for (v, idx) in values.iter().zip(crate::meta::block_indices(&counts)) {
        let a = T::view(v).ok_or(Error::DTypeMismatch {
            expected: T::DTYPE,
            actual: v.dtype(),
        })?;
        if a.ndim() != nd {
            return Err(Error::InvalidGraph {
                reason: format!("an overlap input block is {}-d, expected {nd}-d", a.ndim()),
            });
        }
        let mut view = a.view();
        for axis in 0..nd {
            let (s, e) = ranges[axis][idx[axis] as usize];
            if e > view.len_of(Axis(axis)) {
                return Err(Error::InvalidGraph {
                    reason: format!(
                        "an overlap input block has {} elements on axis {axis}, {e} are needed",
                        view.len_of(Axis(axis))
                    ),
                });
            }
            view.slice_axis_inplace(Axis(axis), Slice::from(s..e));
        }
        slabs.push(view);
    }
    let mut joined = join_grid(&slabs, &counts, 0)?;
    for (axis, plan) in plans.iter().enumerate() {
        let mut start = vec![0usize; plan.blocks.len()];
        for k in 1..plan.blocks.len() {
            start[k] = start[k - 1] + (ranges[axis][k - 1].1 - ranges[axis][k - 1].0);
        }
        let pick: Vec<usize> = plan
            .source
            .iter()
            .map(|s| s.map_or(0, |(k, i)| start[k] + i - ranges[axis][k].0))
            .collect();
        let identity = pick.len() == joined.len_of(Axis(axis))
            && pick.iter().enumerate().all(|(j, &p)| j == p)
            && plan.source.iter().all(Option::is_some);
        if !identity {
            joined = joined.select(Axis(axis), &pick);
        }
        if let Some(c) = constants[axis] {
            let c = T::from_scalar(c);
            for (j, s) in plan.source.iter().enumerate() {
                if s.is_none() {
                    joined.index_axis_mut(Axis(axis), j).fill(c);
                }
            }
        }
    }
    Ok(T::wrap(joined.as_standard_layout().into_owned()))
}

/// The slabs of a block grid (C order, `counts` per axis) joined into one array.
fn join_grid<T: Element>(
    slabs: &[ArrayViewD<'_, T>],
    counts: &[usize],
    axis: usize,
) -> Result<ArrayD<T>> {
    if axis == counts.len() {
        return Ok(slabs[0].to_owned());
    }
    let stride = slabs.len() / counts[axis];
    let parts = (0..counts[axis])
        .map(|k| join_grid(&slabs[k * stride..(k + 1) * stride], counts, axis + 1))
        .collect::<Result<Vec<_>>>()?;
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().expect("one part"));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(axis), &views).map_err(|e| Error::InvalidGraph {
        reason: format!("overlap slabs do not line up on axis {axis}: {e}"),
    })
}

impl TrimOp {
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, "trim_internal")?;
        let chunks = &input.meta.chunks;
        let nd = chunks.ndim();
        check_axes("depth", &self.depth, nd, input.id)?;
        check_axes("outer", &self.outer, nd, input.id)?;
        let mut sizes = Vec::with_capacity(nd);
        for axis in 0..nd {
            let sz = chunks.axis(axis);
            let n = sz.len();
            let mut out = Vec::with_capacity(n);
            for (b, &s) in sz.iter().enumerate() {
                let (l, r) = margins(n, self.depth[axis], self.outer[axis], b);
                if l + r > s {
                    return Err(format!(
                        "trims {} elements from chunk {b} of axis {axis}, which has {s}, of its \
                         input {}",
                        l + r,
                        input.id
                    ));
                }
                out.push(s - l - r);
            }
            sizes.push(out);
        }
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            input.meta.dtype,
            "its input's chunks each cut by the depth on both sides (not at the outer sides \
             with boundary none)",
            "keeping its input's dtype",
        ))
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.usizes(&self.depth);
        for &o in &self.outer {
            t.u64(o as u64);
        }
    }

    pub(crate) fn run(
        &self,
        input: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let a = deps[0].as_array()?;
        let mut slices = Vec::with_capacity(block.len());
        for (axis, &b) in block.iter().enumerate() {
            let n = input.chunks.axis(axis).len();
            let s = input.chunks.axis(axis)[b as usize];
            let (l, r) = margins(n, self.depth[axis], self.outer[axis], b as usize);
            if a.shape().get(axis) != Some(&s) {
                return Err(Error::InvalidGraph {
                    reason: format!(
                        "a trim_internal input block has shape {:?}, chunk {b} of axis {axis} is {s}",
                        a.shape()
                    ),
                });
            }
            slices.push(Slice::from(l..s - r));
        }
        Ok(ChunkValue::Array(crate::map_array!(a, x => {
            let mut v = x.view();
            for (axis, s) in slices.iter().enumerate() {
                v.slice_axis_inplace(Axis(axis), *s);
            }
            v.as_standard_layout().into_owned()
        })))
    }
}

/// The dtype a constant boundary is stored in: the array's.
pub(crate) fn constant_for(boundary: Boundary, dtype: DType) -> Boundary {
    match boundary {
        Boundary::Constant(c) => Boundary::Constant(c.cast(dtype)),
        b => b,
    }
}
