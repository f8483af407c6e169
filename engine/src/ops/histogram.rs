//! Per-chunk counts for histograms and `bincount`, the first level of a tree reduction
//! ([`HistogramOp`], [`BinCountOp`]). Each input block gives one block of counts; the counts layer
//! has one element per input block along each reduced axis, followed by the bin axes, so the
//! builder finishes with an ordinary `sum` over the leading axes (the same tree reduction as every
//! other sum, exact for integer counts and the same on any executor).
//!
//! Binning is numpy's: bin `i` is `[edges[i], edges[i+1])`, the last bin also holds its right edge,
//! values outside the edges and NaN are not counted. The builder casts samples and weights to
//! float64 (numpy compares in float64 too); counts are int64, weighted sums float64.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::Block;
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, Holds, InputMeta, RuleResult};

/// Counts of the samples of one block in the bins `edges` (one edge list per dimension).
///
/// `dd: false` — every element of the (any-rank) input is a sample of a 1-D histogram; `edges`
/// has one list. `dd: true` — the input is `(N, D)` with `D = edges.len()` in one chunk, a row per
/// sample (numpy's `histogramdd`). With `weighted`, a second input holds one float64 weight per
/// sample (the first input's chunks, or its row chunks for `dd`).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramOp {
    pub edges: Vec<Vec<f64>>,
    pub dd: bool,
    pub weighted: bool,
}

/// Occurrences of each value `0..minlength` of a 1-D int64 block (numpy's `bincount` whose output
/// length is fixed when the graph is built: a value outside `0..minlength` fails the task, naming
/// it). With `weighted`, a second float64 input of the same chunks holds the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BinCountOp {
    pub minlength: usize,
    pub weighted: bool,
}

/// The array inputs: samples, and the weights if `weighted`.
fn inputs_of<'b, 'a>(
    inputs: &'b [InputMeta<'a>],
    weighted: bool,
    op: &str,
) -> RuleResult<(&'b InputMeta<'a>, Option<&'b InputMeta<'a>>)> {
    let want = 1 + weighted as usize;
    if inputs.len() != want {
        return Err(format!(
            "{op} reads {want} input(s), this layer has {}",
            inputs.len()
        ));
    }
    for i in inputs {
        if i.holds != Holds::Array {
            return Err(format!("its input {} holds no array chunks", i.id));
        }
    }
    let w = inputs.get(1);
    if let Some(w) = w
        && w.meta.dtype != DType::F64
    {
        return Err(format!(
            "its weights {} must be float64, not {}",
            w.id, w.meta.dtype
        ));
    }
    Ok((&inputs[0], w))
}

fn weights_match(w: Option<&InputMeta<'_>>, rows: &[usize], x: &InputMeta<'_>) -> RuleResult<()> {
    if let Some(w) = w
        && w.meta.chunks.sizes() != [rows.to_vec()]
    {
        return Err(format!(
            "its weights {} must be 1-D chunked {:?} as the samples {}, not {:?}",
            w.id,
            rows,
            x.id,
            w.meta.chunks.sizes()
        ));
    }
    Ok(())
}

impl HistogramOp {
    /// numpy's name.
    pub fn name(&self) -> &'static str {
        if self.dd { "histogramdd" } else { "histogram" }
    }

    /// Bins per dimension.
    pub fn bins(&self) -> Vec<usize> {
        self.edges
            .iter()
            .map(|e| e.len().saturating_sub(1))
            .collect()
    }

    /// One element per input block along each sample axis, then one chunk per bin axis.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let (x, w) = inputs_of(inputs, self.weighted, self.name())?;
        if x.meta.dtype != DType::F64 {
            return Err(format!(
                "reads float64 samples, but {} is {}",
                x.id, x.meta.dtype
            ));
        }
        if self.edges.is_empty() || (!self.dd && self.edges.len() != 1) {
            return Err(format!(
                "{} takes {} edge list(s), not {}",
                self.name(),
                if self.dd { "one per dimension" } else { "one" },
                self.edges.len()
            ));
        }
        for (d, e) in self.edges.iter().enumerate() {
            if e.len() < 2 || e.iter().any(|v| !v.is_finite()) || e.windows(2).any(|p| p[0] > p[1])
            {
                return Err(format!(
                    "bin edges of dimension {d} must be at least two finite, increasing values, not {} edge(s)",
                    e.len()
                ));
            }
        }
        let mut sizes: Vec<Vec<usize>>;
        if self.dd {
            if x.meta.ndim() != 2 || x.meta.chunks.axis(1).len() != 1 {
                return Err(format!(
                    "histogramdd reads (N, D) samples with D in one chunk, but {} is chunked {:?}",
                    x.id,
                    x.meta.chunks.sizes()
                ));
            }
            if x.meta.chunks.shape()[1] != self.edges.len() {
                return Err(format!(
                    "its samples {} have {} dimensions, but {} edge lists are given",
                    x.id,
                    x.meta.chunks.shape()[1],
                    self.edges.len()
                ));
            }
            weights_match(w, x.meta.chunks.axis(0), x)?;
            sizes = vec![vec![1; x.meta.chunks.axis(0).len()]];
        } else {
            if let Some(w) = w
                && w.meta.chunks != x.meta.chunks
            {
                return Err(format!(
                    "its weights {} must be chunked as its samples {}",
                    w.id, x.id
                ));
            }
            sizes = x
                .meta
                .chunks
                .sizes()
                .iter()
                .map(|s| vec![1; s.len()])
                .collect();
        }
        sizes.extend(self.bins().into_iter().map(|n| vec![n]));
        let dtype = if self.weighted {
            DType::F64
        } else {
            DType::I64
        };
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            dtype,
            "one element per input block along each sample axis, then the bins",
            if self.weighted {
                "float64 weight sums"
            } else {
                "int64 counts"
            },
        ))
    }

    /// Output block `(b..., 0...)` reads input block `b` (and its weights).
    pub(crate) fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        let sample_axes = if self.dd {
            1
        } else {
            block.len() - self.edges.len()
        };
        let b = &block[..sample_axes];
        if self.dd {
            out.push((0, Block::from_slice(&[b[0], 0])));
        } else {
            out.push((0, Block::from_slice(b)));
        }
        if self.weighted {
            out.push((1, Block::from_slice(b)));
        }
    }

    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let x = self.f64_input(deps, 0)?;
        let w = if self.weighted {
            Some(self.f64_input(deps, 1)?)
        } else {
            None
        };
        let bins = self.bins();
        let lead = if self.dd { 1 } else { x.ndim() };
        let mut shape = vec![1; lead];
        shape.extend(&bins);
        // Row-major flat bin index of each sample, or None outside the edges.
        let binners: Vec<Binner> = self.edges.iter().map(|e| Binner::new(e)).collect();
        let flat = |sample: &mut dyn Iterator<Item = f64>| -> Option<usize> {
            let mut at = 0;
            for (b, n) in binners.iter().zip(&bins) {
                at = at * n + b.bin(sample.next()?)?;
            }
            Some(at)
        };
        let total: usize = bins.iter().product();
        let value = if let Some(w) = w {
            let mut sums = vec![0.0f64; total];
            if self.dd {
                for (row, &wv) in x.rows().into_iter().zip(w.iter()) {
                    if let Some(i) = flat(&mut row.iter().copied()) {
                        sums[i] += wv;
                    }
                }
            } else {
                for (&v, &wv) in x.iter().zip(w.iter()) {
                    if let Some(i) = flat(&mut std::iter::once(v)) {
                        sums[i] += wv;
                    }
                }
            }
            ArrayData::F64(ArrayD::from_shape_vec(IxDyn(&shape), sums).map_err(|e| self.bad(e))?)
        } else {
            let mut counts = vec![0i64; total];
            if self.dd {
                for row in x.rows() {
                    crate::exec::cancel::checkpoint()?;
                    if let Some(i) = flat(&mut row.iter().copied()) {
                        counts[i] += 1;
                    }
                }
            } else {
                let b = &binners[0];
                match x.as_slice_memory_order() {
                    // The order of the samples does not change the counts; a slice is read
                    // without the per-element index arithmetic of an n-d iterator.
                    Some(values) => b.count(values, &mut counts),
                    None => {
                        for &v in x.iter() {
                            if let Some(i) = b.bin(v) {
                                counts[i] += 1;
                            }
                        }
                    }
                }
            }
            ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&shape), counts).map_err(|e| self.bad(e))?)
        };
        Ok(ChunkValue::Array(value))
    }

    fn f64_input<'a>(&self, deps: &'a [Arc<ChunkValue>], i: usize) -> Result<&'a ArrayD<f64>> {
        let d = deps.get(i).ok_or_else(|| self.bad("missing input block"))?;
        match d.as_array()? {
            ArrayData::F64(a) => Ok(a),
            other => Err(Error::DTypeMismatch {
                expected: DType::F64,
                actual: other.dtype(),
            }),
        }
    }

    fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::InvalidArgument {
            op: self.name(),
            reason: reason.to_string(),
        }
    }
}

/// Bins values into one edge list: numpy's fast path (scale, truncate, correct by one against the
/// edges) when the edges are numpy's equal-width ones, a binary search otherwise. Both give
/// [`bin_of`]'s answer; the fast one is checked against the edges and falls back when it is off.
#[derive(Debug)]
pub struct Binner<'a> {
    edges: &'a [f64],
    /// `(first edge, bins / width)` for equal-width edges.
    uniform: Option<(f64, f64)>,
}

impl<'a> Binner<'a> {
    pub fn new(edges: &'a [f64]) -> Self {
        let n = edges.len() - 1;
        let (lo, hi) = (edges[0], edges[n]);
        let uniform =
            (hi > lo && uniform_edges(n, lo, hi) == edges).then(|| (lo, n as f64 / (hi - lo)));
        Binner { edges, uniform }
    }

    /// Adds one to `counts[bin]` for every value of `values` inside the edges; `counts` has one
    /// slot per bin.
    pub fn count(&self, values: &[f64], counts: &mut [i64]) {
        for &v in values {
            if let Some(i) = self.bin(v) {
                counts[i] += 1;
            }
        }
    }

    /// Inlined into [`Binner::count`] and the other loops: as a call it was half of a histogram.
    #[inline(always)]
    pub fn bin(&self, v: f64) -> Option<usize> {
        let e = self.edges;
        let n = e.len() - 1;
        if !(v >= e[0] && v <= e[n]) {
            return None;
        }
        if let Some((lo, scale)) = self.uniform {
            let mut i = (((v - lo) * scale) as usize).min(n - 1);
            if v < e[i] {
                i = i.saturating_sub(1);
            } else if i + 1 < n && v >= e[i + 1] {
                i += 1;
            }
            if e[i] <= v && (v < e[i + 1] || i == n - 1) {
                return Some(i);
            }
        }
        bin_of(e, v)
    }
}

/// numpy's bin of `v` in increasing `edges`: the last edge `<= v`, the last bin closed; `None`
/// outside the edges or for NaN.
#[inline]
pub fn bin_of(edges: &[f64], v: f64) -> Option<usize> {
    let n = edges.len() - 1;
    // NaN fails both comparisons.
    if !(v >= edges[0] && v <= edges[n]) {
        return None;
    }
    let i = edges.partition_point(|&e| e <= v) - 1;
    Some(i.min(n - 1))
}

/// numpy's `linspace(lo, hi, bins + 1)` edges of `histogram(bins=n, range=(lo, hi))`, an empty
/// range widened by 0.5 each side as numpy does.
pub fn uniform_edges(bins: usize, lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let step = (hi - lo) / bins as f64;
    let mut e: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    if let Some(last) = e.last_mut() {
        *last = hi;
    }
    e
}

impl BinCountOp {
    /// One element per input block, then `minlength` bins.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let (x, w) = inputs_of(inputs, self.weighted, "bincount")?;
        if x.meta.dtype != DType::I64 || x.meta.ndim() != 1 {
            return Err(format!(
                "counts a 1-D int64 array, but {} is {}-d {}",
                x.id,
                x.meta.ndim(),
                x.meta.dtype
            ));
        }
        if self.minlength == 0 {
            return Err(
                "bincount needs minlength > 0: its output length is fixed when the graph is built"
                    .into(),
            );
        }
        weights_match(w, x.meta.chunks.axis(0), x)?;
        Ok(Derived::new(
            Chunks::from_sizes(vec![
                vec![1; x.meta.chunks.axis(0).len()],
                vec![self.minlength],
            ]),
            if self.weighted {
                DType::F64
            } else {
                DType::I64
            },
            "one row per input block, then minlength bins",
            if self.weighted {
                "float64 weight sums"
            } else {
                "int64 counts"
            },
        ))
    }

    pub(crate) fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        out.push((0, Block::from_slice(&block[..1])));
        if self.weighted {
            out.push((1, Block::from_slice(&block[..1])));
        }
    }

    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let bad = |reason: String| Error::InvalidArgument {
            op: "bincount",
            reason,
        };
        let x = match deps.first().map(|d| d.as_array()).transpose()? {
            Some(ArrayData::I64(a)) => a,
            Some(other) => {
                return Err(Error::DTypeMismatch {
                    expected: DType::I64,
                    actual: other.dtype(),
                });
            }
            None => return Err(bad("reads one input block".into())),
        };
        let slot = |v: i64| -> Result<usize> {
            if v < 0 || v as u64 >= self.minlength as u64 {
                return Err(bad(format!(
                    "value {v} is outside 0..{} (minlength fixes the output length; pass a larger one)",
                    self.minlength
                )));
            }
            Ok(v as usize)
        };
        let shape = IxDyn(&[1, self.minlength]);
        let value = if self.weighted {
            let w = match deps.get(1).map(|d| d.as_array()).transpose()? {
                Some(ArrayData::F64(w)) => w,
                _ => return Err(bad("reads float64 weights".into())),
            };
            let mut sums = ArrayD::<f64>::zeros(shape);
            let s = sums.index_axis_mut(Axis(0), 0);
            let mut s = s
                .into_dimensionality::<ndarray::Ix1>()
                .map_err(|e| bad(e.to_string()))?;
            for (&v, &wv) in x.iter().zip(w.iter()) {
                s[slot(v)?] += wv;
            }
            ArrayData::F64(sums)
        } else {
            let mut counts = ArrayD::<i64>::zeros(shape);
            let s = counts.index_axis_mut(Axis(0), 0);
            let mut s = s
                .into_dimensionality::<ndarray::Ix1>()
                .map_err(|e| bad(e.to_string()))?;
            for &v in x.iter() {
                s[slot(v)?] += 1;
            }
            ArrayData::I64(counts)
        };
        Ok(ChunkValue::Array(value))
    }
}
