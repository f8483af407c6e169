//! Random arrays: [`Generator`], numpy's `default_rng` shape over the counter-based generator of
//! [`crate::kernels::random`]. Every distribution is a source layer whose element `i` depends only on
//! the seed, the distribution and `i`, so values never change with the chunking, the thread count,
//! the executor or the worker; location and scale parameters are elementwise math on the standard
//! draw, which the optimizer fuses into the same task. Weighted choice is the uniform source looked
//! up in a cumulative table of the weights built once (`searchsorted`), so it keeps the same promise.

use super::Array;
use super::creation::source;
use crate::array::Side;
use crate::error::{Error, Result};
use crate::kernels::random::{self, RandomKey};
use crate::meta::{ChunkSpec, DType};
use crate::ops::{Distribution, LeafKind, ParamF64};

/// A random number generator in the style of numpy's `default_rng(seed)`.
///
/// Values are counter-based: element `i` (flat C-order index) of an array drawn with a seed depends
/// only on the seed, the distribution (with its parameters) and `i`, so the same seed and shape give
/// the same values whatever the chunking, the thread count or the machine that computes them. See
/// [`crate::kernels::random`] for the generator. Unlike numpy's stateful `Generator`, drawing twice
/// from one generator with the same distribution gives the same array: use another seed for another
/// array.
///
/// ```
/// let rng = tessera::default_rng(7);
/// let a = rng.random(&[100], [10]).unwrap().compute::<f64>().unwrap();
/// let b = rng.random(&[100], [33]).unwrap().compute::<f64>().unwrap();
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generator {
    seed: u64,
}

/// A generator seeded with `seed`.
pub fn default_rng(seed: u64) -> Generator {
    Generator { seed }
}

impl Generator {
    /// Uniform float64 values in [0, 1).
    pub fn random(&self, shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array> {
        self.random_dtype(shape, chunks, DType::F64)
    }

    /// Uniform values in [0, 1) of a float dtype.
    pub fn random_dtype(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        dtype: DType,
    ) -> Result<Array> {
        self.draw(Distribution::Uniform, shape, chunks.into(), dtype)
    }

    /// Standard normal float64 values.
    pub fn standard_normal(&self, shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array> {
        self.draw(
            Distribution::StandardNormal,
            shape,
            chunks.into(),
            DType::F64,
        )
    }

    /// Standard normal values of a float dtype.
    pub fn standard_normal_dtype(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        dtype: DType,
    ) -> Result<Array> {
        self.draw(Distribution::StandardNormal, shape, chunks.into(), dtype)
    }

    /// Uniform float64 values in [low, high).
    pub fn uniform(
        &self,
        low: f64,
        high: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        let u = self.random(shape, chunks)?;
        ((&u * (high - low)) + low).checked()
    }

    /// Normal float64 values with mean `loc` and standard deviation `scale` (≥ 0).
    ///
    /// ```
    /// let x = tessera::default_rng(1).normal(10.0, 2.0, &[100_000], [25_000]).unwrap();
    /// let mean = x.mean().unwrap().compute_scalar::<f64>().unwrap();
    /// assert!((mean - 10.0).abs() < 0.05);
    /// ```
    pub fn normal(
        &self,
        loc: f64,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        check_scale("normal", scale)?;
        let z = self.standard_normal(shape, chunks)?;
        ((&z * scale) + loc).checked()
    }

    /// Integers drawn uniformly from `[low, high)` (numpy's `integers` with `endpoint=False`), as
    /// int64, without bias: every value has exactly the same probability.
    ///
    /// ```
    /// let d = tessera::default_rng(3).integers(1, 7, &[1000], [300]).unwrap();
    /// let v = d.compute::<i64>().unwrap();
    /// assert!(v.iter().all(|&x| (1..7).contains(&x)));
    /// ```
    pub fn integers(
        &self,
        low: i64,
        high: i64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        if low >= high {
            return Err(Error::InvalidArgument {
                op: "integers",
                reason: format!("low {low} must be below high {high}"),
            });
        }
        let dist = Distribution::Integers {
            low,
            high: high - 1,
        };
        self.draw(dist, shape, chunks.into(), DType::I64)
    }

    /// Exponential float64 values with scale 1.
    pub fn standard_exponential(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        self.draw(
            Distribution::StandardExponential,
            shape,
            chunks.into(),
            DType::F64,
        )
    }

    /// Exponential float64 values with mean `scale` (≥ 0).
    pub fn exponential(
        &self,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        check_scale("exponential", scale)?;
        (&self.standard_exponential(shape, chunks)? * scale).checked()
    }

    /// Gamma float64 values with the given shape (> 0) and scale 1.
    pub fn standard_gamma(
        &self,
        shape_param: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        let dist = Distribution::StandardGamma {
            shape: ParamF64::new(shape_param),
        };
        self.draw(dist, shape, chunks.into(), DType::F64)
    }

    /// Gamma float64 values with shape `k` (> 0) and `scale` (≥ 0): mean `k·scale`.
    pub fn gamma(
        &self,
        k: f64,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        check_scale("gamma", scale)?;
        (&self.standard_gamma(k, shape, chunks)? * scale).checked()
    }

    /// Chi-square float64 values with `df` (> 0) degrees of freedom: twice a Gamma(df/2).
    pub fn chisquare(
        &self,
        df: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        if !(df.is_finite() && df > 0.0) {
            return Err(Error::InvalidArgument {
                op: "chisquare",
                reason: format!("df must be finite and > 0, not {df}"),
            });
        }
        (&self.standard_gamma(df / 2.0, shape, chunks)? * 2.0).checked()
    }

    /// Beta(a, b) float64 values in [0, 1], for a, b > 0.
    pub fn beta(
        &self,
        a: f64,
        b: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        let dist = Distribution::Beta {
            a: ParamF64::new(a),
            b: ParamF64::new(b),
        };
        self.draw(dist, shape, chunks.into(), DType::F64)
    }

    /// Poisson int64 counts with mean `lam` (0 ≤ lam ≤ 1e15).
    ///
    /// ```
    /// let k = tessera::default_rng(5).poisson(4.0, &[50_000], [10_000]).unwrap();
    /// let mean = k.mean().unwrap().compute_scalar::<f64>().unwrap();
    /// assert!((mean - 4.0).abs() < 0.05);
    /// ```
    pub fn poisson(
        &self,
        lam: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        let dist = Distribution::Poisson {
            lam: ParamF64::new(lam),
        };
        self.draw(dist, shape, chunks.into(), DType::I64)
    }

    /// Binomial int64 counts: successes in `n` trials of probability `p` (0 ≤ p ≤ 1).
    pub fn binomial(
        &self,
        n: u64,
        p: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        let dist = Distribution::Binomial {
            n,
            p: ParamF64::new(p),
        };
        self.draw(dist, shape, chunks.into(), DType::I64)
    }

    /// A random permutation of `0..n` as int64 (numpy's `permutation(n)`), lazily: element `i` is
    /// computed on its own, so a slice costs only its length.
    ///
    /// ```
    /// let p = tessera::default_rng(4).permutation(10, [3]).unwrap();
    /// let mut v = p.compute::<i64>().unwrap().into_raw_vec_and_offset().0;
    /// v.sort();
    /// assert_eq!(v, (0..10).collect::<Vec<i64>>());
    /// ```
    pub fn permutation(&self, n: usize, chunks: impl Into<ChunkSpec>) -> Result<Array> {
        let dist = Distribution::Permutation { n: n as u64 };
        self.draw(dist, &[n], chunks.into(), DType::I64)
    }

    /// `x` with its positions along `axis` in the order of [`Generator::permutation`] of that
    /// axis's length (numpy's `permutation(x, axis)`; numpy's `shuffle` does the same in place).
    /// The permutation is worked out when the graph is built and travels in it as a [`Array::take`].
    pub fn shuffle(&self, x: &Array, axis: isize) -> Result<Array> {
        let axis = crate::ops::reduce::normalize_axis(axis, x.ndim())?;
        let n = x.shape()[axis];
        let order = self.values(Distribution::Permutation { n: n as u64 }, n)?;
        x.take(&order, axis as isize)
    }

    /// `size` integers from `0..n` (numpy's `choice(n, size, replace)`): with replacement, uniform
    /// draws; without, the first `size` elements of [`Generator::permutation`]`(n)` (so
    /// `size ≤ n`), distinct.
    ///
    /// ```
    /// let c = tessera::default_rng(2).choice(100, 30, false, [10]).unwrap();
    /// let mut v = c.compute::<i64>().unwrap().into_raw_vec_and_offset().0;
    /// v.sort();
    /// v.dedup();
    /// assert_eq!(v.len(), 30);
    /// ```
    pub fn choice(
        &self,
        n: usize,
        size: usize,
        replace: bool,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        check_choice(n, size, replace)?;
        if replace && n > 0 {
            return self.integers(0, n as i64, &[size], chunks);
        }
        let dist = Distribution::Permutation { n: n as u64 };
        self.draw(dist, &[size], chunks.into(), DType::I64)
    }

    /// `size` elements of the 1-d array `a` (numpy's `choice(a, size, replace)`), the positions
    /// drawn as by [`Generator::choice`] when the graph is built.
    pub fn choice_from(&self, a: &Array, size: usize, replace: bool) -> Result<Array> {
        if a.ndim() != 1 {
            return Err(Error::InvalidArgument {
                op: "choice",
                reason: format!("a must be 1-d, not of shape {:?}", a.shape()),
            });
        }
        let n = a.shape()[0];
        check_choice(n, size, replace)?;
        let positions = if replace && n > 0 {
            let dist = Distribution::Integers {
                low: 0,
                high: n as i64 - 1,
            };
            self.values(dist, size)?
        } else {
            self.values(Distribution::Permutation { n: n as u64 }, size)?
        };
        a.take(&positions, 0)
    }

    /// `size` integers from `0..n` drawn with the probabilities `p` (numpy's
    /// `choice(n, size, replace, p)`); `p` holds `n` finite, non-negative weights with a positive
    /// sum and is normalized here (numpy also demands that it sums to 1; any positive total is
    /// accepted here).
    ///
    /// With replacement, numpy's method, lazily: element `i` is the number of cumulative weights
    /// (normalized once when the graph is built, the last non-zero one set to exactly 1) at or below
    /// the uniform value of element `i` of [`Generator::random`] with the same seed — a
    /// [`Array::searchsorted`] of that uniform array in the weights' cumulative table, so element `i`
    /// depends only on the seed, the weights and `i`, on every chunking and worker. A weight of 0
    /// is never drawn.
    ///
    /// Without replacement (at most as many draws as non-zero weights), worked out when the graph is
    /// built: the `size` indices with the smallest `e[j] / p[j]`, in increasing order of it, where
    /// `e` is [`Generator::standard_exponential`] with the same seed (Efraimidis and Spirakis's
    /// weighted sampling, 2006): the same law as numpy's draw-then-renormalize sequence, with other
    /// values.
    ///
    /// ```
    /// let rng = tessera::default_rng(3);
    /// let c = rng.choice_weighted(3, 10_000, true, &[1.0, 0.0, 3.0], [4096]).unwrap();
    /// let v = c.compute::<i64>().unwrap();
    /// assert!(v.iter().all(|&k| k == 0 || k == 2));
    /// let twos = v.iter().filter(|&&k| k == 2).count();
    /// assert!((7_000..8_000).contains(&twos));
    /// // The same draws on any chunking.
    /// let again = rng.choice_weighted(3, 10_000, true, &[1.0, 0.0, 3.0], [999]).unwrap();
    /// assert_eq!(again.compute::<i64>().unwrap(), v);
    /// ```
    pub fn choice_weighted(
        &self,
        n: usize,
        size: usize,
        replace: bool,
        p: &[f64],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<Array> {
        let chunks = chunks.into();
        let weights = check_weights(n, size, replace, p)?;
        if replace {
            let cdf = cumulative(&weights);
            let table = crate::from_array(ndarray::Array1::from(cdf).into_dyn(), [n.max(1)])?;
            let u = self.random(&[size], chunks)?;
            return table.searchsorted(&u, Side::Right);
        }
        let picked = self.weighted_sample(&weights, size);
        crate::from_array(ndarray::Array1::from(picked).into_dyn(), chunks)
    }

    /// `size` elements of the 1-d array `a` drawn with the probabilities `p` (numpy's
    /// `choice(a, size, replace, p)`): the positions of [`Generator::choice_weighted`], worked out
    /// when the graph is built as [`Generator::choice_from`]'s are.
    pub fn choice_from_weighted(
        &self,
        a: &Array,
        size: usize,
        replace: bool,
        p: &[f64],
    ) -> Result<Array> {
        if a.ndim() != 1 {
            return Err(Error::InvalidArgument {
                op: "choice",
                reason: format!("a must be 1-d, not of shape {:?}", a.shape()),
            });
        }
        let weights = check_weights(a.shape()[0], size, replace, p)?;
        let positions = if replace {
            // The lookup `choice_weighted` makes lazily, here in place.
            let cdf = cumulative(&weights);
            let mut u = vec![0.0; size];
            let key = RandomKey::new(self.seed, Distribution::Uniform.code());
            random::fill_uniform_f64(key, 0, 1, &mut u);
            u.iter()
                .map(|&u| cdf.partition_point(|&c| c <= u) as i64)
                .collect()
        } else {
            self.weighted_sample(&weights, size)
        };
        a.take(&positions, 0)
    }

    /// Efraimidis–Spirakis: the `size` non-zero weights' indices with the smallest exponential
    /// draw over weight, in increasing order (ties by index).
    fn weighted_sample(&self, weights: &[f64], size: usize) -> Vec<i64> {
        let key = RandomKey::new(self.seed, Distribution::StandardExponential.code());
        let mut e = vec![0.0; weights.len()];
        random::fill_standard_exponential(key, 0, 1, &mut e);
        let mut keyed: Vec<(f64, usize)> = (0..weights.len())
            .filter(|&j| weights[j] > 0.0)
            .map(|j| (e[j] / weights[j], j))
            .collect();
        // Exponential draws are finite and ≥ 0 and weights positive, so no key is NaN.
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        keyed[..size].iter().map(|&(_, j)| j as i64).collect()
    }

    /// The first `len` int64 values of a distribution's array, computed here (for indices that a
    /// graph carries).
    fn values(&self, dist: Distribution, len: usize) -> Result<Vec<i64>> {
        dist.check().map_err(|reason| Error::InvalidArgument {
            op: dist.name(),
            reason,
        })?;
        let key = RandomKey::new(self.seed, dist.code());
        let mut out = vec![0i64; len];
        match dist {
            Distribution::Permutation { n } => random::fill_permutation(key, n, 0, 1, &mut out),
            Distribution::Integers { low, high } => {
                random::fill_integers(key, low, high, 0, 1, &mut out)
            }
            other => unreachable!("{} is not drawn for indices", other.name()),
        }
        Ok(out)
    }

    fn draw(
        &self,
        dist: Distribution,
        shape: &[usize],
        chunks: ChunkSpec,
        dtype: DType,
    ) -> Result<Array> {
        if !dist.dtype_ok(dtype) {
            return Err(Error::UnsupportedDType {
                op: dist.name(),
                dtype,
            });
        }
        dist.check().map_err(|reason| Error::InvalidArgument {
            op: dist.name(),
            reason,
        })?;
        source(
            LeafKind::Random {
                seed: self.seed,
                dist,
            },
            shape,
            chunks,
            dtype,
        )
    }
}

fn check_choice(n: usize, size: usize, replace: bool) -> Result<()> {
    if n == 0 && size > 0 {
        return Err(Error::InvalidArgument {
            op: "choice",
            reason: format!("cannot take {size} from an empty population"),
        });
    }
    if !replace && size > n {
        return Err(Error::InvalidArgument {
            op: "choice",
            reason: format!("cannot take {size} of {n} without replacement"),
        });
    }
    Ok(())
}

/// The weights `p` of a choice among `n` checked (one per candidate, finite, non-negative, a
/// positive total, and without replacement at least `size` of them non-zero) and scaled by their
/// largest, so that their sum cannot overflow.
fn check_weights(n: usize, size: usize, replace: bool, p: &[f64]) -> Result<Vec<f64>> {
    let refuse = |reason: String| {
        Err(Error::InvalidArgument {
            op: "choice",
            reason,
        })
    };
    if p.len() != n {
        return refuse(format!(
            "p holds {} weights for a population of {n}",
            p.len()
        ));
    }
    if let Some((j, w)) = p
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return refuse(format!("p[{j}] is {w}: weights must be finite and ≥ 0"));
    }
    let largest = p.iter().copied().fold(0.0, f64::max);
    if largest == 0.0 && size > 0 {
        return refuse(format!(
            "the {n} weights in p sum to 0: nothing can be drawn"
        ));
    }
    let nonzero = p.iter().filter(|&&w| w > 0.0).count();
    if !replace && size > nonzero {
        return refuse(format!(
            "cannot take {size} without replacement: p has {nonzero} non-zero weights"
        ));
    }
    Ok(p.iter()
        .map(|&w| if largest > 0.0 { w / largest } else { w })
        .collect())
}

/// The cumulative sums of `w` divided by the total, non-decreasing (sums of non-negative terms
/// divided by one positive number), with every entry from the last non-zero weight on exactly 1,
/// so a uniform value in [0, 1) always lands on a non-zero weight.
fn cumulative(w: &[f64]) -> Vec<f64> {
    let mut running = 0.0;
    let sums: Vec<f64> = w
        .iter()
        .map(|&v| {
            running += v;
            running
        })
        .collect();
    let last = w.iter().rposition(|&v| v > 0.0).unwrap_or(0);
    sums.iter()
        .enumerate()
        .map(|(j, &s)| if j >= last { 1.0 } else { s / running })
        .collect()
}

fn check_scale(op: &'static str, scale: f64) -> Result<()> {
    if scale.is_finite() && scale >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            reason: format!("scale must be finite and ≥ 0, not {scale}"),
        })
    }
}
