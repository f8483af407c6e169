//! Quantiles and medians along one axis ([`QuantileOp`]: numpy's `quantile`, `nanquantile`,
//! `median`, `nanmedian`; percentiles are quantiles over 100). The axis must be one chunk, so each
//! block sorts its own lanes: the builder rechunks that axis to one chunk first, as dask's
//! `median` does. The axis is replaced, in place, by one element per requested quantile.
//!
//! Values follow numpy's default `linear` method exactly: the virtual index `q·(n-1)`, and numpy's
//! two-sided interpolation (`a + (b-a)·t` below `t = 0.5`, `b - (b-a)·(1-t)` from it); a median
//! of an even count is `(a + b) / 2`, as numpy's mean of the two middle values.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::{Derived, Holds, InputMeta, RuleResult, one_input, whole_axis};

/// Quantiles `q` (each in `[0, 1]`) of every lane along `axis`, or the median.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileOp {
    pub axis: usize,
    pub q: Vec<f64>,
    /// Ignore NaN (nanquantile, nanmedian); otherwise a lane with a NaN gives NaN.
    pub skip_nan: bool,
    /// numpy's median (one output per lane; `q` is `[0.5]`): the mean of the two middle values.
    pub median: bool,
}

impl QuantileOp {
    /// numpy's name for the op.
    pub fn name(&self) -> &'static str {
        match (self.median, self.skip_nan) {
            (true, false) => "median",
            (true, true) => "nanmedian",
            (false, false) => "quantile",
            (false, true) => "nanquantile",
        }
    }

    /// The input's chunks with the axis (one chunk) replaced by `q.len()`; a float dtype kept.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, self.name())?;
        if input.holds != Holds::Array {
            return Err(format!("its input {} holds no array chunks", input.id));
        }
        let m = input.meta;
        whole_axis(input, self.axis, "takes quantiles")?;
        if !m.dtype.is_float() {
            return Err(format!(
                "reads float input, but its input {} is {}",
                input.id, m.dtype
            ));
        }
        if self.q.is_empty() || self.q.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err(format!(
                "quantiles {:?} must be in [0, 1], at least one",
                self.q
            ));
        }
        if self.median && self.q != [0.5] {
            return Err(format!("a median takes q = [0.5], not {:?}", self.q));
        }
        let mut sizes = m.chunks.sizes().to_vec();
        sizes[self.axis] = vec![self.q.len()];
        Ok(Derived::new(
            crate::meta::Chunks::from_sizes(sizes),
            m.dtype,
            "replacing the axis by one element per quantile",
            "keeping its input's float dtype",
        ))
    }

    /// Computes the block: each lane sorted, then each quantile read off it.
    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let x = deps
            .first()
            .ok_or_else(|| Error::InvalidArgument {
                op: self.name(),
                reason: "reads one input block".into(),
            })?
            .as_array()?;
        let value = match x {
            ArrayData::F64(a) => ArrayData::F64(self.lanes(a)),
            ArrayData::F32(a) => ArrayData::F32(self.lanes(a)),
            other => {
                return Err(Error::UnsupportedDType {
                    op: self.name(),
                    dtype: other.dtype(),
                });
            }
        };
        Ok(ChunkValue::Array(value))
    }

    fn lanes<T: Float>(&self, a: &ArrayD<T>) -> ArrayD<T> {
        let axis = Axis(self.axis);
        let mut shape = a.shape().to_vec();
        shape[self.axis] = self.q.len();
        let mut out = ArrayD::from_elem(IxDyn(&shape), T::nan());
        let mut buf: Vec<T> = Vec::with_capacity(a.len_of(axis));
        for (lane, mut o) in a.lanes(axis).into_iter().zip(out.lanes_mut(axis)) {
            buf.clear();
            let mut has_nan = false;
            for &v in lane {
                if v.is_nan_() {
                    has_nan = true;
                } else {
                    buf.push(v);
                }
            }
            if (has_nan && !self.skip_nan) || buf.is_empty() {
                continue; // NaN, as numpy (an empty lane warns there and gives NaN).
            }
            buf.sort_unstable_by(|p, q| p.partial_cmp(q).expect("NaN filtered out"));
            let n = buf.len();
            for (o, &q) in o.iter_mut().zip(&self.q) {
                *o = if self.median {
                    if n % 2 == 1 {
                        buf[n / 2]
                    } else {
                        (buf[n / 2 - 1] + buf[n / 2]) / T::two()
                    }
                } else {
                    let index = q * (n - 1) as f64;
                    let lo = index.floor() as usize;
                    let hi = (lo + 1).min(n - 1);
                    lerp(buf[lo], buf[hi], T::from_f64(index - lo as f64))
                };
            }
        }
        out
    }
}

/// numpy's `_lerp`: from `a` below `t = 0.5`, from `b` above, so that `t = 1` gives `b` exactly.
fn lerp<T: Float>(a: T, b: T, t: T) -> T {
    let d = b - a;
    if t >= T::from_f64(0.5) {
        b - d * (T::from_f64(1.0) - t)
    } else {
        a + d * t
    }
}

/// The float types quantiles compute in.
trait Float:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn nan() -> Self;
    fn two() -> Self;
    fn from_f64(v: f64) -> Self;
    fn is_nan_(self) -> bool;
}
impl Float for f64 {
    fn nan() -> Self {
        f64::NAN
    }
    fn two() -> Self {
        2.0
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn is_nan_(self) -> bool {
        self.is_nan()
    }
}
impl Float for f32 {
    fn nan() -> Self {
        f32::NAN
    }
    fn two() -> Self {
        2.0
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn is_nan_(self) -> bool {
        self.is_nan()
    }
}

/// The dtype quantiles compute in for an input of `dtype`: float32 stays, others give float64.
pub fn quantile_dtype(dtype: DType) -> DType {
    dtype.float_result()
}
