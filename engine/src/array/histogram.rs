//! Histograms and counting: numpy's `histogram`, `histogram2d`, `histogramdd` and `bincount` with
//! bins fixed when the graph is built (explicit edges, or a count and a range — the output shape
//! must be known up front, so numpy's data-dependent defaults are not offered). Each chunk's counts
//! are one small block ([`Op::Histogram`], [`Op::BinCount`]); an ordinary `sum` tree-reduces them,
//! so int64 counts are exact and identical on every executor.

use super::Array;
use super::reduction::ReduceOptions;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::histogram::uniform_edges;
use crate::ops::{BinCountOp, HistogramOp, Op};

/// The bins of one histogram dimension.
#[derive(Clone, Debug, PartialEq)]
pub enum Bins {
    /// Increasing edges: bin `i` is `[edges[i], edges[i+1])`, the last bin closed.
    Edges(Vec<f64>),
    /// `n` equal bins over `range` (numpy's `bins=n, range=(lo, hi)`; the edges are numpy's
    /// `linspace(lo, hi, n + 1)`).
    Range {
        /// Number of bins.
        n: usize,
        /// Lower and upper edge of the outermost bins.
        range: (f64, f64),
    },
}

impl Bins {
    /// The edges, checked.
    fn edges(&self, op: &'static str) -> Result<Vec<f64>> {
        let e = match self {
            Bins::Edges(e) => e.clone(),
            Bins::Range { n, range: (lo, hi) } => {
                if *n == 0 || !(lo.is_finite() && hi.is_finite()) || lo > hi {
                    return Err(Error::InvalidArgument {
                        op,
                        reason: format!(
                            "needs at least one bin over a finite range lo <= hi, not {n} over ({lo}, {hi})"
                        ),
                    });
                }
                uniform_edges(*n, *lo, *hi)
            }
        };
        if e.len() < 2 || e.iter().any(|v| !v.is_finite()) || e.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("bin edges must be at least two finite, increasing values: {e:?}"),
            });
        }
        Ok(e)
    }
}

impl Array {
    /// The histogram of all elements (numpy's `histogram` with explicit bins): int64 counts, or
    /// float64 sums of `weights` (same shape and chunks as the array) per bin; with the edges.
    /// NaN and values outside the edges are not counted.
    ///
    /// ```
    /// use tessera::Bins;
    /// let x = tessera::from_array(ndarray::arr1(&[0.5, 1.0, 1.5, 2.0, 9.0, f64::NAN]).into_dyn(), [4]).unwrap();
    /// let (h, edges) = x.histogram(&Bins::Range { n: 2, range: (0.0, 2.0) }, None).unwrap();
    /// assert_eq!(edges, vec![0.0, 1.0, 2.0]);
    /// assert_eq!(h.compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(), vec![1, 3]);
    /// ```
    pub fn histogram(&self, bins: &Bins, weights: Option<&Array>) -> Result<(Array, Vec<f64>)> {
        self.usable()?;
        let edges = bins.edges("histogram")?;
        let mut inputs = vec![self.astype(DType::F64)?];
        if let Some(w) = weights {
            if w.shape() != self.shape() {
                return Err(Error::ShapeMismatch {
                    op: "histogram",
                    reason: format!(
                        "weights of shape {:?} for samples of shape {:?}",
                        w.shape(),
                        self.shape()
                    ),
                });
            }
            inputs.push(
                w.astype(DType::F64)?
                    .rechunk(self.chunks().sizes().to_vec())?,
            );
        }
        let counts = Array::from_op(
            Op::Histogram(HistogramOp {
                edges: vec![edges.clone()],
                dd: false,
                weighted: weights.is_some(),
            }),
            inputs,
            None,
        )?;
        let lead: Vec<isize> = (0..self.ndim() as isize).collect();
        Ok((sum_leading(&counts, lead)?, edges))
    }

    /// Occurrences of each value `0..minlength` of a 1-D int64 array (numpy's `bincount`), or the
    /// float64 sums of `weights` per value. The output length is `minlength`, fixed when the graph
    /// is built: a value outside `0..minlength` fails the computation, naming the value.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[0i64, 1, 1, 3, 1]).into_dyn(), [2]).unwrap();
    /// let c = x.bincount(None, 5).unwrap().compute::<i64>().unwrap();
    /// assert_eq!(c.into_iter().collect::<Vec<_>>(), vec![1, 3, 0, 1, 0]);
    /// ```
    pub fn bincount(&self, weights: Option<&Array>, minlength: usize) -> Result<Array> {
        self.usable()?;
        let x = if self.dtype() == DType::Bool {
            self.astype(DType::I64)?
        } else {
            self.clone()
        };
        if x.dtype() != DType::I64 || x.ndim() != 1 {
            return Err(Error::InvalidArgument {
                op: "bincount",
                reason: format!(
                    "counts a 1-D integer array, not a {}-d {} one",
                    x.ndim(),
                    x.dtype()
                ),
            });
        }
        let mut inputs = vec![x.clone()];
        if let Some(w) = weights {
            if w.shape() != x.shape() {
                return Err(Error::ShapeMismatch {
                    op: "bincount",
                    reason: format!("weights of shape {:?} for {:?}", w.shape(), x.shape()),
                });
            }
            inputs.push(w.astype(DType::F64)?.rechunk(x.chunks().sizes().to_vec())?);
        }
        let counts = Array::from_op(
            Op::BinCount(BinCountOp {
                minlength,
                weighted: weights.is_some(),
            }),
            inputs,
            None,
        )?;
        sum_leading(&counts, vec![0])
    }
}

/// The d-dimensional histogram of the rows of `sample`, shape `(N, D)` (numpy's `histogramdd`
/// with explicit bins per dimension): counts of shape `(bins_0, …, bins_{D-1})` and the edges.
///
/// ```
/// use tessera::Bins;
/// let s = tessera::from_array(ndarray::arr2(&[[0.1, 0.9], [0.6, 0.2], [0.7, 0.8]]).into_dyn(), [2, 2]).unwrap();
/// let b = Bins::Range { n: 2, range: (0.0, 1.0) };
/// let (h, _) = tessera::histogramdd(&s, &[b.clone(), b], None).unwrap();
/// assert_eq!(h.compute::<i64>().unwrap(), ndarray::arr2(&[[0i64, 1], [1, 1]]).into_dyn());
/// ```
pub fn histogramdd(
    sample: &Array,
    bins: &[Bins],
    weights: Option<&Array>,
) -> Result<(Array, Vec<Vec<f64>>)> {
    if sample.ndim() != 2 || sample.shape()[1] != bins.len() {
        return Err(Error::ShapeMismatch {
            op: "histogramdd",
            reason: format!(
                "samples of shape {:?} need shape (N, {}) for {} bin specs",
                sample.shape(),
                bins.len(),
                bins.len()
            ),
        });
    }
    let edges: Vec<Vec<f64>> = bins
        .iter()
        .map(|b| b.edges("histogramdd"))
        .collect::<Result<_>>()?;
    let rows = sample.chunks().axis(0).to_vec();
    let x = sample
        .astype(DType::F64)?
        .rechunk(vec![rows.clone(), vec![bins.len()]])?;
    let mut inputs = vec![x];
    if let Some(w) = weights {
        if w.shape() != [sample.shape()[0]] {
            return Err(Error::ShapeMismatch {
                op: "histogramdd",
                reason: format!(
                    "weights of shape {:?} for {} samples",
                    w.shape(),
                    sample.shape()[0]
                ),
            });
        }
        inputs.push(w.astype(DType::F64)?.rechunk(vec![rows])?);
    }
    let counts = Array::from_op(
        Op::Histogram(HistogramOp {
            edges: edges.clone(),
            dd: true,
            weighted: weights.is_some(),
        }),
        inputs,
        None,
    )?;
    Ok((sum_leading(&counts, vec![0])?, edges))
}

/// numpy's `histogram2d(x, y, bins)`: [`histogramdd`] of the pairs `(x[i], y[i])` of two 1-D
/// arrays of one length.
///
/// ```
/// use tessera::Bins;
/// let x = tessera::from_array(ndarray::arr1(&[0.1, 0.6, 0.7]).into_dyn(), [2]).unwrap();
/// let y = tessera::from_array(ndarray::arr1(&[0.9, 0.2, 0.8]).into_dyn(), [2]).unwrap();
/// let b = Bins::Edges(vec![0.0, 0.5, 1.0]);
/// let (h, _) = tessera::histogram2d(&x, &y, [&b, &b], None).unwrap();
/// assert_eq!(h.compute::<i64>().unwrap(), ndarray::arr2(&[[0i64, 1], [1, 1]]).into_dyn());
/// ```
pub fn histogram2d(
    x: &Array,
    y: &Array,
    bins: [&Bins; 2],
    weights: Option<&Array>,
) -> Result<(Array, Vec<Vec<f64>>)> {
    if x.ndim() != 1 || x.shape() != y.shape() {
        return Err(Error::ShapeMismatch {
            op: "histogram2d",
            reason: format!(
                "x and y must be 1-D of one length, not {:?} and {:?}",
                x.shape(),
                y.shape()
            ),
        });
    }
    let dtype = DType::F64;
    let y = y.astype(dtype)?.rechunk(x.chunks().sizes().to_vec())?;
    let sample = super::stack(&[&x.astype(dtype)?, &y], 1)?;
    histogramdd(&sample, &[bins[0].clone(), bins[1].clone()], weights)
}

/// The per-block counts summed over their leading (per-block) axes.
fn sum_leading(counts: &Array, axes: Vec<isize>) -> Result<Array> {
    counts.sum_with(&ReduceOptions {
        axes: Some(axes),
        ..ReduceOptions::default()
    })
}
