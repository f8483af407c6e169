//! NaN-aware reductions, `count_nonzero` and `average`, built from the table reductions and
//! elementwise functions the way numpy's own `nanfunctions` are: NaNs are replaced by the
//! reduction's identity (0 for sums, 1 for products, ±inf for min/max and argmin/argmax) and counted
//! separately where a mean needs the count. Everything here is composition, so it fuses with its
//! producers, runs on both executors, and honours `axes`, `keepdims` and `split_every` as the plain
//! reductions do. On int64 and bool, which hold no NaN, each is its plain reduction.

use super::Array;
use super::elementwise::where_;
use super::reduction::ReduceOptions;
use crate::error::{Error, Result};
use crate::meta::{DType, Scalar};
use crate::ops::Reduction;

/// The reduction options with `keepdims` forced, for values broadcast back against the input.
fn kept(opts: &ReduceOptions) -> ReduceOptions {
    opts.clone().keepdims(true)
}

impl Array {
    /// `where(isnan(self), fill, self)` for floats; other dtypes hold no NaN.
    fn nan_to(&self, fill: f64) -> Result<Array> {
        if !self.dtype().is_float() {
            return Ok(self.clone());
        }
        where_(self.isnan()?, Scalar::F64(fill).cast(self.dtype()), self)
    }

    /// How many elements are not NaN, as int64, reduced as `opts` say.
    fn count_not_nan(&self, opts: &ReduceOptions) -> Result<Array> {
        let present = if self.dtype().is_float() {
            self.isnan()?.logical_not()?
        } else {
            crate::full(self.shape(), true, self.chunks())?
        };
        present.reduce(Reduction::Sum, &opts.clone().ddof(0.0))
    }

    /// Sum treating NaN as zero (numpy's `nansum`).
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[1.0, f64::NAN, 2.0]).into_dyn(), [2]).unwrap();
    /// assert_eq!(x.nansum().unwrap().compute_scalar::<f64>().unwrap(), 3.0);
    /// ```
    pub fn nansum(&self) -> Result<Array> {
        self.usable()?;
        self.nansum_with(&ReduceOptions::all())
    }

    /// [`Array::nansum`] with options (axes, keepdims, split_every).
    pub fn nansum_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.nan_to(0.0)?.reduce(Reduction::Sum, opts)
    }

    /// Product treating NaN as one (numpy's `nanprod`).
    pub fn nanprod(&self) -> Result<Array> {
        self.usable()?;
        self.nanprod_with(&ReduceOptions::all())
    }

    /// [`Array::nanprod`] with options.
    pub fn nanprod_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.nan_to(1.0)?.reduce(Reduction::Prod, opts)
    }

    /// Smallest element ignoring NaN; NaN where every element of a slice is NaN (numpy's `nanmin`,
    /// which also warns). An empty reduction is an error, as for `min`.
    pub fn nanmin(&self) -> Result<Array> {
        self.usable()?;
        self.nanmin_with(&ReduceOptions::all())
    }

    /// [`Array::nanmin`] with options.
    pub fn nanmin_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.nan_extreme(Reduction::Min, f64::INFINITY, opts)
    }

    /// Largest element ignoring NaN; NaN where every element of a slice is NaN (numpy's `nanmax`).
    pub fn nanmax(&self) -> Result<Array> {
        self.usable()?;
        self.nanmax_with(&ReduceOptions::all())
    }

    /// [`Array::nanmax`] with options.
    pub fn nanmax_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.nan_extreme(Reduction::Max, f64::NEG_INFINITY, opts)
    }

    fn nan_extreme(&self, r: Reduction, fill: f64, opts: &ReduceOptions) -> Result<Array> {
        let m = self.nan_to(fill)?.reduce(r, opts)?;
        if !self.dtype().is_float() {
            return Ok(m);
        }
        let all_nan = self.isnan()?.reduce(Reduction::All, opts)?;
        where_(all_nan, Scalar::F64(f64::NAN).cast(self.dtype()), &m)
    }

    /// Index of the smallest element ignoring NaN (numpy's `nanargmin`, over one axis or all).
    /// Where every element of a slice is NaN numpy raises; here the index is -1, since the
    /// condition depends on the data.
    pub fn nanargmin(&self) -> Result<Array> {
        self.usable()?;
        self.nanargmin_with(&ReduceOptions::all())
    }

    /// [`Array::nanargmin`] with options.
    pub fn nanargmin_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.nan_arg(Reduction::ArgMin, f64::INFINITY, opts)
    }

    /// Index of the largest element ignoring NaN (numpy's `nanargmax`); -1 for an all-NaN slice.
    pub fn nanargmax(&self) -> Result<Array> {
        self.usable()?;
        self.nanargmax_with(&ReduceOptions::all())
    }

    /// [`Array::nanargmax`] with options.
    pub fn nanargmax_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.nan_arg(Reduction::ArgMax, f64::NEG_INFINITY, opts)
    }

    fn nan_arg(&self, r: Reduction, fill: f64, opts: &ReduceOptions) -> Result<Array> {
        let i = self.nan_to(fill)?.reduce(r, opts)?;
        if !self.dtype().is_float() {
            return Ok(i);
        }
        let all_nan = self.isnan()?.reduce(Reduction::All, opts)?;
        where_(all_nan, -1i64, &i)
    }

    /// Mean of the elements that are not NaN (numpy's `nanmean`): their sum over their count;
    /// NaN for an all-NaN slice. float32 stays float32 (the division runs in float64, as numpy's
    /// does through its int64 count).
    pub fn nanmean(&self) -> Result<Array> {
        self.usable()?;
        self.nanmean_with(&ReduceOptions::all())
    }

    /// [`Array::nanmean`] with options.
    pub fn nanmean_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        if !self.dtype().is_float() {
            return self.reduce(Reduction::Mean, opts);
        }
        let sum = self.nansum_with(opts)?;
        let count = self.count_not_nan(opts)?;
        (sum.astype(DType::F64)? / count).astype(self.dtype())
    }

    /// Variance of the elements that are not NaN (numpy's `nanvar`), with `opts.ddof`: the squared
    /// deviations from [`Array::nanmean`] summed over `count - ddof`; NaN where that is not
    /// positive.
    pub fn nanvar_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        if !self.dtype().is_float() {
            return self.reduce(Reduction::Var, opts);
        }
        let mean = self.nanmean_with(&kept(opts))?;
        let dev = (self - &mean).nan_to(0.0)?;
        let sq = (&dev * &dev).reduce(Reduction::Sum, opts)?;
        let dof = self.count_not_nan(opts)?.astype(DType::F64)? - opts.ddof;
        let var = sq.astype(DType::F64)? / &dof;
        where_(dof.le(0.0)?, f64::NAN, &var)?.astype(self.dtype())
    }

    /// [`Array::nanvar_with`] over all axes with numpy's default `ddof = 0`.
    pub fn nanvar(&self) -> Result<Array> {
        self.usable()?;
        self.nanvar_with(&ReduceOptions::all())
    }

    /// Standard deviation of the elements that are not NaN (numpy's `nanstd`), with `opts.ddof`.
    pub fn nanstd_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        if !self.dtype().is_float() {
            return self.reduce(Reduction::Std, opts);
        }
        self.nanvar_with(opts)?.sqrt()
    }

    /// [`Array::nanstd_with`] over all axes with `ddof = 0`.
    pub fn nanstd(&self) -> Result<Array> {
        self.usable()?;
        self.nanstd_with(&ReduceOptions::all())
    }

    /// How many elements are non-zero (true, not 0, NaN counts as non-zero), as int64 (numpy's
    /// `count_nonzero`).
    ///
    /// ```
    /// let x = tessera::arange(-2i64, 3, 1, [2]).unwrap();
    /// assert_eq!(x.count_nonzero().unwrap().compute_scalar::<i64>().unwrap(), 4);
    /// ```
    pub fn count_nonzero(&self) -> Result<Array> {
        self.usable()?;
        self.count_nonzero_with(&ReduceOptions::all())
    }

    /// [`Array::count_nonzero`] with options.
    pub fn count_nonzero_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.astype(DType::Bool)?.reduce(Reduction::Sum, opts)
    }

    /// Weighted average (numpy's `average`): `sum(self * w) / sum(w)` over `axis` (all axes for
    /// `None`). `weights` has this array's shape, or — with an axis — is 1-D along that axis.
    /// Integers and bools compute in float64, as numpy's. A zero total weight gives inf or NaN
    /// where numpy raises.
    ///
    /// ```
    /// let x = tessera::arange(1.0, 4.0, 1.0, [2]).unwrap();
    /// let w = tessera::from_array(ndarray::arr1(&[3.0, 1.0, 0.0]).into_dyn(), [3]).unwrap();
    /// assert_eq!(x.average(&w, None).unwrap().compute_scalar::<f64>().unwrap(), 1.25);
    /// ```
    pub fn average(&self, weights: &Array, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        let float = |d: DType| if d.is_float() { d } else { DType::F64 };
        let dtype = DType::promote(float(self.dtype()), weights.dtype());
        let a = self.astype(dtype)?;
        let w = weights.astype(dtype)?;
        match axis {
            None => {
                if w.shape() != a.shape() {
                    return Err(average_shape_error(self.shape(), weights.shape(), None));
                }
                ((&a * &w).sum()? / w.sum()?).checked()
            }
            Some(ax) => {
                let k = crate::ops::reduce::normalize_axis(ax, a.ndim())?;
                if w.shape() == a.shape() {
                    let opts = ReduceOptions::axis(ax);
                    return ((&a * &w).sum_with(&opts)? / w.sum_with(&opts)?).checked();
                }
                if w.ndim() != 1 || w.shape()[0] != a.shape()[k] {
                    return Err(average_shape_error(self.shape(), weights.shape(), Some(k)));
                }
                // Move the axis last, where a 1-D weight broadcasts along it.
                let mut perm: Vec<usize> = (0..a.ndim()).filter(|&i| i != k).collect();
                perm.push(k);
                let moved = a.permute_axes(&perm)?;
                ((&moved * &w).sum_axis(-1)? / w.sum()?).checked()
            }
        }
    }

    /// [`Array::average`] without weights: the mean (over `axis`, or all axes).
    pub fn average_unweighted(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        match axis {
            None => self.mean(),
            Some(a) => self.mean_axis(a),
        }
    }
}

/// Quantiles, medians and percentiles along one axis.
impl Array {
    fn quantile_op(
        &self,
        q: Vec<f64>,
        axis: Option<isize>,
        skip_nan: bool,
        median: bool,
        op: &'static str,
    ) -> Result<Array> {
        if q.is_empty() || q.iter().any(|v| !(0.0..=1.0).contains(v)) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "quantiles {q:?} must be in [0, 1] (percentiles in [0, 100]), at least one"
                ),
            });
        }
        let (x, k) = match axis {
            None => (self.ravel()?, 0),
            Some(a) => (
                self.clone(),
                crate::ops::reduce::normalize_axis(a, self.ndim())?,
            ),
        };
        let x = x.astype(x.dtype().float_result())?;
        // The op sorts whole lanes, so the axis becomes one chunk, as dask's median rechunks it.
        let mut sizes = x.chunks().sizes().to_vec();
        sizes[k] = vec![x.shape()[k]];
        let x = x.rechunk(crate::meta::ChunkSpec::Explicit(sizes))?;
        let out = Array::from_op(
            crate::ops::Op::Quantile(crate::ops::QuantileOp {
                axis: k,
                q,
                skip_nan,
                median,
            }),
            vec![x],
            None,
        )?;
        if median {
            out.squeeze(Some(&[k as isize]))
        } else {
            out.moveaxis(k as isize, 0)
        }
    }

    /// The median along `axis` (all elements for `None`), numpy's `median`: a lane holding NaN
    /// gives NaN. The axis is rechunked to one chunk (as dask's `median` does), so each lane is
    /// sorted in one task; integers give float64.
    ///
    /// ```
    /// let x = tessera::from_array(ndarray::arr1(&[3.0, 1.0, 4.0, 1.5]).into_dyn(), [3]).unwrap();
    /// assert_eq!(x.median(None).unwrap().compute_scalar::<f64>().unwrap(), 2.25);
    /// ```
    pub fn median(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.quantile_op(vec![0.5], axis, false, true, "median")
    }

    /// [`Array::median`] ignoring NaN (numpy's `nanmedian`); NaN for an all-NaN lane.
    pub fn nanmedian(&self, axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.quantile_op(vec![0.5], axis, true, true, "nanmedian")
    }

    /// Quantiles `q` (in `[0, 1]`) along `axis` with numpy's default linear interpolation; the
    /// result has a leading axis of `q.len()`, then the other axes (numpy's `quantile` with a
    /// sequence `q`). The axis is rechunked to one chunk.
    ///
    /// ```
    /// let x = tessera::arange(0.0, 11.0, 1.0, [4]).unwrap();
    /// let q = x.quantile(&[0.25, 0.5, 0.95], None).unwrap();
    /// assert_eq!(q.compute::<f64>().unwrap().into_iter().collect::<Vec<_>>(), vec![2.5, 5.0, 9.5]);
    /// ```
    pub fn quantile(&self, q: &[f64], axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.quantile_op(q.to_vec(), axis, false, false, "quantile")
    }

    /// [`Array::quantile`] ignoring NaN (numpy's `nanquantile`).
    pub fn nanquantile(&self, q: &[f64], axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        self.quantile_op(q.to_vec(), axis, true, false, "nanquantile")
    }

    /// Percentiles `p` (in `[0, 100]`): [`Array::quantile`] of `p / 100` (numpy's `percentile`).
    pub fn percentile(&self, p: &[f64], axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        let q = p.iter().map(|v| v / 100.0).collect();
        self.quantile_op(q, axis, false, false, "percentile")
    }

    /// [`Array::percentile`] ignoring NaN (numpy's `nanpercentile`).
    pub fn nanpercentile(&self, p: &[f64], axis: Option<isize>) -> Result<Array> {
        self.usable()?;
        let q = p.iter().map(|v| v / 100.0).collect();
        self.quantile_op(q, axis, true, false, "nanpercentile")
    }
}

fn average_shape_error(shape: &[usize], weights: &[usize], axis: Option<usize>) -> Error {
    Error::InvalidArgument {
        op: "average",
        reason: match axis {
            None => format!(
                "weights of shape {weights:?} must have the array's shape {shape:?} when no axis is given"
            ),
            Some(k) => format!(
                "weights of shape {weights:?} must have the array's shape {shape:?} or be 1-D of \
                 length {} (axis {k})",
                shape[k]
            ),
        },
    }
}
