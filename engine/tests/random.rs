//! The random distributions the way a user draws them (`default_rng(seed).poisson(..)` …), checked
//! against their known laws: moments, a chi-square test of the counts for the discrete ones and a
//! Kolmogorov–Smirnov test against the exact CDF for the continuous ones (both at p = 0.001, at fixed
//! seeds), chunk- and thread-invariance, transposed reads, independence of neighbouring seeds, and
//! the errors for parameters outside a distribution's domain.

use ndarray::ArrayD;
use tessera::{Array, Error, LocalExecutor, default_rng};

fn f64s(a: &Array) -> Vec<f64> {
    a.compute::<f64>().unwrap().iter().copied().collect()
}

fn i64s(a: &Array) -> Vec<i64> {
    a.compute::<i64>().unwrap().iter().copied().collect()
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (
        m,
        x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0),
    )
}

/// Mean and variance within `sigmas` standard errors of the law's (the variance's error from the
/// fourth moment `mu4`, or a generous 3σ² when unknown).
fn assert_moments(name: &str, x: &[f64], mean: f64, var: f64, mu4: Option<f64>) {
    let n = x.len() as f64;
    let (m, v) = mean_var(x);
    let se_mean = (var / n).sqrt();
    let se_var = ((mu4.unwrap_or(3.0 * var * var) - var * var) / n).sqrt();
    assert!(
        (m - mean).abs() < 5.0 * se_mean,
        "{name}: mean {m} vs {mean} (se {se_mean})"
    );
    assert!(
        (v - var).abs() < 6.0 * se_var,
        "{name}: variance {v} vs {var} (se {se_var})"
    );
}

/// The chi-square critical value at p = 0.001 (Wilson–Hilferty).
fn chi2_critical(df: usize) -> f64 {
    let d = df as f64;
    let z = 3.09;
    d * (1.0 - 2.0 / (9.0 * d) + z * (2.0 / (9.0 * d)).sqrt()).powi(3)
}

/// Chi-square test of integer samples against `pmf(k)` over `lo..=hi`, the tails folded into the
/// end bins and bins merged until each expects at least 5.
fn assert_fits_pmf(name: &str, x: &[i64], lo: i64, hi: i64, pmf: impl Fn(i64) -> f64) {
    let n = x.len() as f64;
    let mut probs: Vec<f64> = (lo..=hi).map(&pmf).collect();
    let inside: f64 = probs.iter().sum();
    // Tails: everything below lo into the first bin, above hi into the last.
    let below: f64 = (lo.saturating_sub(2000).max(i64::MIN + 1)..lo)
        .map(&pmf)
        .sum();
    probs[0] += below;
    let last = probs.len() - 1;
    probs[last] += (1.0 - inside - below).max(0.0);
    let mut counts = vec![0f64; probs.len()];
    for &v in x {
        counts[(v.clamp(lo, hi) - lo) as usize] += 1.0;
    }
    let (mut stat, mut bins) = (0.0, 0);
    let (mut e_acc, mut o_acc) = (0.0, 0.0);
    for (p, o) in probs.iter().zip(&counts) {
        e_acc += p * n;
        o_acc += o;
        if e_acc >= 5.0 {
            stat += (o_acc - e_acc) * (o_acc - e_acc) / e_acc;
            bins += 1;
            e_acc = 0.0;
            o_acc = 0.0;
        }
    }
    if e_acc > 0.0 {
        stat += (o_acc - e_acc) * (o_acc - e_acc) / e_acc.max(1e-300);
        bins += 1;
    }
    let crit = chi2_critical(bins - 1);
    assert!(
        stat < crit,
        "{name}: chi-square {stat:.1} over {bins} bins ≥ {crit:.1}"
    );
}

/// Kolmogorov–Smirnov test against the exact CDF at p = 0.001.
fn assert_fits_cdf(name: &str, x: &[f64], cdf: impl Fn(f64) -> f64) {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let d = s
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = cdf(v);
            (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
        })
        .fold(0.0, f64::max);
    let crit = 1.95 / n.sqrt();
    assert!(d < crit, "{name}: KS distance {d} ≥ {crit}");
}

fn ln_choose(n: u64, k: u64) -> f64 {
    (1..=k)
        .map(|i| (((n - k + i) as f64) / i as f64).ln())
        .sum()
}

fn binomial_pmf(n: u64, p: f64) -> impl Fn(i64) -> f64 {
    move |k| {
        if k < 0 || k as u64 > n {
            return 0.0;
        }
        let k = k as u64;
        (ln_choose(n, k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp()
    }
}

fn poisson_pmf(lam: f64) -> impl Fn(i64) -> f64 {
    move |k| {
        if k < 0 {
            return 0.0;
        }
        let ln_fact: f64 = (1..=k).map(|i| (i as f64).ln()).sum();
        (k as f64 * lam.ln() - lam - ln_fact).exp()
    }
}

const N: usize = 40_000;

#[test]
fn integers_are_uniform_and_in_range() {
    let rng = default_rng(11);
    let die = i64s(&rng.integers(1, 7, &[N], [3001]).unwrap());
    assert!(die.iter().all(|v| (1..7).contains(v)));
    assert_fits_pmf("die", &die, 1, 6, |k| {
        if (1..=6).contains(&k) { 1.0 / 6.0 } else { 0.0 }
    });
    // A range that does not divide 2^64 evenly, wide enough that a biased mapping would show.
    let range = (1i64 << 62) + (1 << 61);
    let wide: Vec<f64> = i64s(&rng.integers(-5, range - 5, &[N], [N]).unwrap())
        .into_iter()
        .map(|v| (v + 5) as f64 / range as f64)
        .collect();
    assert!(wide.iter().all(|v| (0.0..1.0).contains(v)));
    assert_fits_cdf("wide integers", &wide, |u| u.clamp(0.0, 1.0));
    // The whole int64 range and a single value.
    let all = i64s(&rng.integers(i64::MIN, i64::MAX, &[1000], [100]).unwrap());
    assert!(all.iter().any(|&v| v < 0) && all.iter().any(|&v| v > 0));
    let one = i64s(&rng.integers(42, 43, &[10], [3]).unwrap());
    assert_eq!(one, vec![42; 10]);
}

#[test]
fn continuous_distributions_fit_their_laws() {
    let rng = default_rng(2026);
    let e = f64s(&rng.exponential(2.0, &[N], [4096]).unwrap());
    assert!(e.iter().all(|&v| v >= 0.0));
    assert_moments("exponential", &e, 2.0, 4.0, Some(9.0 * 16.0));
    assert_fits_cdf("exponential", &e, |x| 1.0 - (-x / 2.0).exp());

    // Gamma(2): CDF 1 - e^-x (1 + x); below 1 (boosted) and large shapes by their moments.
    let g = f64s(&rng.standard_gamma(2.0, &[N], [5000]).unwrap());
    assert_fits_cdf("gamma(2)", &g, |x| 1.0 - (-x).exp() * (1.0 + x));
    let g = f64s(&rng.gamma(0.3, 2.0, &[N], [5000]).unwrap());
    assert!(g.iter().all(|&v| v >= 0.0));
    assert_moments("gamma(0.3, 2)", &g, 0.6, 1.2, None);
    // Gamma(1) is the exponential.
    let g = f64s(&rng.standard_gamma(1.0, &[N], [5000]).unwrap());
    assert_fits_cdf("gamma(1)", &g, |x| 1.0 - (-x).exp());
    let g = f64s(&rng.gamma(50.0, 0.1, &[N], [5000]).unwrap());
    assert_moments("gamma(50, 0.1)", &g, 5.0, 0.5, None);
    let c = f64s(&rng.chisquare(4.0, &[N], [5000]).unwrap());
    assert_moments("chisquare(4)", &c, 4.0, 8.0, None);

    let b = f64s(&rng.beta(2.0, 2.0, &[N], [7000]).unwrap());
    assert_fits_cdf("beta(2, 2)", &b, |x| 3.0 * x * x - 2.0 * x * x * x);
    let b = f64s(&rng.beta(0.5, 0.5, &[N], [7000]).unwrap());
    assert!(b.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_fits_cdf("beta(0.5, 0.5)", &b, |x| {
        2.0 / std::f64::consts::PI * x.clamp(0.0, 1.0).sqrt().asin()
    });
    let b = f64s(&rng.beta(5.0, 1.0, &[N], [7000]).unwrap());
    assert_fits_cdf("beta(5, 1)", &b, |x| x.clamp(0.0, 1.0).powi(5));

    let z = f64s(&rng.normal(10.0, 2.0, &[N], [4096]).unwrap());
    assert_moments("normal(10, 2)", &z, 10.0, 4.0, Some(3.0 * 16.0));
}

#[test]
fn discrete_distributions_fit_their_laws() {
    let rng = default_rng(77);
    // Multiplication below a mean of 10, PTRS above.
    for lam in [0.7, 3.5, 9.99, 10.0, 15.0, 250.0] {
        let k = i64s(&rng.poisson(lam, &[N], [6000]).unwrap());
        let (lo, hi) = (
            (lam - 6.0 * lam.sqrt()).floor().max(0.0) as i64,
            (lam + 6.0 * lam.sqrt()).ceil() as i64 + 3,
        );
        assert_fits_pmf(&format!("poisson({lam})"), &k, lo, hi, poisson_pmf(lam));
    }
    let k: Vec<f64> = i64s(&rng.poisson(1e9, &[N], [N]).unwrap())
        .into_iter()
        .map(|v| v as f64)
        .collect();
    assert_moments("poisson(1e9)", &k, 1e9, 1e9, None);
    assert_eq!(i64s(&rng.poisson(0.0, &[5], [5]).unwrap()), vec![0; 5]);

    // Inversion when n·min(p, 1-p) < 10, BTRS above; p > 1/2 by symmetry.
    for (n, p) in [
        (20u64, 0.3),
        (1000, 0.004),
        (1000, 0.4),
        (1000, 0.9),
        (55, 0.5),
    ] {
        let k = i64s(&rng.binomial(n, p, &[N], [6000]).unwrap());
        assert!(k.iter().all(|&v| (0..=n as i64).contains(&v)));
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let mean = n as f64 * p;
        let (lo, hi) = (
            (mean - 6.0 * sd).floor().max(0.0) as i64,
            ((mean + 6.0 * sd).ceil() as i64 + 3).min(n as i64),
        );
        assert_fits_pmf(
            &format!("binomial({n}, {p})"),
            &k,
            lo,
            hi,
            binomial_pmf(n, p),
        );
    }
    assert_eq!(i64s(&rng.binomial(9, 1.0, &[4], [4]).unwrap()), vec![9; 4]);
    assert_eq!(i64s(&rng.binomial(9, 0.0, &[4], [4]).unwrap()), vec![0; 4]);
    assert_eq!(i64s(&rng.binomial(0, 0.5, &[4], [4]).unwrap()), vec![0; 4]);
}

fn every_distribution(seed: u64, shape: &[usize], chunks: &[usize]) -> Vec<(&'static str, Array)> {
    let rng = default_rng(seed);
    let c = chunks.to_vec();
    vec![
        (
            "integers",
            rng.integers(-100, 1 << 50, shape, c.clone()).unwrap(),
        ),
        (
            "exponential",
            rng.exponential(1.5, shape, c.clone()).unwrap(),
        ),
        (
            "gamma<1",
            rng.standard_gamma(0.4, shape, c.clone()).unwrap(),
        ),
        ("gamma", rng.gamma(3.0, 2.0, shape, c.clone()).unwrap()),
        ("beta", rng.beta(2.0, 3.0, shape, c.clone()).unwrap()),
        ("beta<1", rng.beta(0.3, 0.6, shape, c.clone()).unwrap()),
        ("poisson", rng.poisson(4.5, shape, c.clone()).unwrap()),
        (
            "poisson ptrs",
            rng.poisson(123.0, shape, c.clone()).unwrap(),
        ),
        ("binomial", rng.binomial(40, 0.2, shape, c.clone()).unwrap()),
        ("binomial btrs", rng.binomial(5000, 0.7, shape, c).unwrap()),
    ]
}

fn bits(a: &Array, on: &LocalExecutor) -> Vec<u64> {
    let d = a.compute_on(on).unwrap();
    match d {
        tessera::ArrayData::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        tessera::ArrayData::I64(v) => v.iter().map(|&x| x as u64).collect(),
        other => panic!("unexpected dtype {}", other.dtype()),
    }
}

#[test]
fn values_do_not_depend_on_chunking_threads_or_layout() {
    let one = LocalExecutor::with_threads(1).unwrap();
    let two = LocalExecutor::with_threads(2).unwrap();
    let a = every_distribution(5, &[37, 29], &[37, 29]);
    let b = every_distribution(5, &[37, 29], &[5, 11]);
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let reference = bits(x, &one);
        assert_eq!(reference, bits(y, &two), "{name}: chunking/threads");
        // A transposed array is generated in place (a strided run): the same values.
        let t = y.t().rechunk([7, 7]).unwrap().t();
        assert_eq!(reference, bits(&t, &two), "{name}: transposed");
    }
    // A slice of a larger array is the same slice of values.
    let whole = default_rng(8).poisson(30.0, &[100], [100]).unwrap();
    let sliced = whole.slice(tessera::s![40..60]).unwrap();
    let v = i64s(&whole);
    assert_eq!(i64s(&sliced), v[40..60].to_vec());
}

#[test]
fn neighbouring_seeds_and_distributions_are_independent() {
    let corr = |a: &[f64], b: &[f64]| {
        let (ma, va) = mean_var(a);
        let (mb, vb) = mean_var(b);
        let n = a.len() as f64;
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / (n - 1.0)
            / (va * vb).sqrt()
    };
    let as_f64 = |a: &Array| match a.compute_dyn().unwrap() {
        tessera::ArrayData::F64(v) => v.iter().copied().collect::<Vec<_>>(),
        tessera::ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        other => panic!("unexpected dtype {}", other.dtype()),
    };
    let limit = 5.0 / (N as f64).sqrt();
    let a = every_distribution(1000, &[N], &[N]);
    let b = every_distribution(1001, &[N], &[N]);
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let (x, y) = (as_f64(x), as_f64(y));
        let r = corr(&x, &y);
        assert!(r.abs() < limit, "{name}: seeds 1000/1001 correlate {r}");
        // Neighbouring elements too.
        let r = corr(&x[1..], &x[..x.len() - 1]);
        assert!(r.abs() < limit, "{name}: lag-1 correlation {r}");
    }
    // Distributions drawn with one seed use separate streams.
    let rng = default_rng(3);
    let u = as_f64(&rng.random(&[N], [N]).unwrap());
    let e = as_f64(&rng.standard_exponential(&[N], [N]).unwrap());
    assert!(corr(&u, &e).abs() < limit);
}

#[test]
fn parameters_outside_the_domain_are_refused() {
    let rng = default_rng(0);
    let refused = |r: tessera::Result<Array>, needle: &str| match r {
        Err(e @ Error::InvalidArgument { .. }) => {
            assert!(e.to_string().contains(needle), "{e} lacks {needle}")
        }
        other => panic!("expected an invalid-argument error, got {other:?}"),
    };
    refused(rng.integers(5, 5, &[3], [3]), "low 5 must be below high 5");
    refused(
        rng.standard_gamma(0.0, &[3], [3]),
        "shape must be finite and > 0",
    );
    refused(rng.gamma(2.0, -1.0, &[3], [3]), "scale");
    refused(rng.beta(1.0, f64::NAN, &[3], [3]), "b must be");
    refused(rng.poisson(-1.0, &[3], [3]), "lam must be in");
    refused(rng.poisson(1e16, &[3], [3]), "lam must be in");
    refused(rng.binomial(10, 1.5, &[3], [3]), "p must be in [0, 1]");
    refused(rng.binomial(u64::MAX, 0.5, &[3], [3]), "does not fit int64");
    refused(rng.normal(0.0, -2.0, &[3], [3]), "scale must be");
    refused(rng.exponential(f64::INFINITY, &[3], [3]), "scale must be");
    refused(rng.chisquare(0.0, &[3], [3]), "df must be");
}

#[test]
fn draws_feed_the_rest_of_the_api() {
    // Counts are int64 arrays like any other: reductions and arithmetic work on them.
    let k = default_rng(9).poisson(2.0, &[1000, 10], [300, 10]).unwrap();
    let col = k.sum_axis(0).unwrap().compute::<i64>().unwrap();
    let plain: ArrayD<i64> = k.compute::<i64>().unwrap();
    assert_eq!(col, plain.sum_axis(ndarray::Axis(0)));
}

#[test]
fn permutations_are_permutations_and_uniform() {
    let rng = default_rng(21);
    // Both methods: whole shuffles up to 2^14, the Feistel network above.
    for n in [
        0usize, 1, 2, 3, 7, 64, 65, 1000, 4097, 16384, 16385, 100_003,
    ] {
        let mut v = i64s(&rng.permutation(n, [7000]).unwrap());
        v.sort_unstable();
        assert_eq!(v, (0..n as i64).collect::<Vec<_>>(), "n = {n}");
    }
    // Over many seeds, each of the 24 orders of 4 items is about equally likely, and element 0's
    // image is uniform over 0..10.
    let seeds = 4800;
    let mut orders = std::collections::HashMap::new();
    let mut first = vec![0i64; seeds];
    for seed in 0..seeds as u64 {
        let r = default_rng(seed);
        *orders
            .entry(i64s(&r.permutation(4, [4]).unwrap()))
            .or_insert(0i64) += 1;
        first[seed as usize] = i64s(&r.permutation(10, [10]).unwrap())[0];
    }
    assert_eq!(orders.len(), 24);
    let counts: Vec<i64> = orders.values().copied().collect();
    let flat: Vec<i64> = counts
        .iter()
        .enumerate()
        .flat_map(|(k, &c)| std::iter::repeat_n(k as i64, c as usize))
        .collect();
    assert_fits_pmf("orders of 4", &flat, 0, 23, |k| {
        if (0..24).contains(&k) {
            1.0 / 24.0
        } else {
            0.0
        }
    });
    assert_fits_pmf("image of 0", &first, 0, 9, |k| {
        if (0..10).contains(&k) { 0.1 } else { 0.0 }
    });
    // The Feistel network: where the elements of one permutation of 10^6 land, in 10 bands of
    // 10^5, and positions of consecutive elements uncorrelated.
    let n = 1_000_000usize;
    let big = i64s(&rng.permutation(n, [250_000]).unwrap());
    let bands: Vec<i64> = big[..N].iter().map(|&v| v / 100_000).collect();
    assert_fits_pmf("feistel bands", &bands, 0, 9, |k| {
        if (0..10).contains(&k) { 0.1 } else { 0.0 }
    });
    let pairs: Vec<i64> = big[..N]
        .chunks(2)
        .map(|p| (p[0] / 250_000) * 4 + p[1] / 250_000)
        .collect();
    assert_fits_pmf("feistel pairs", &pairs, 0, 15, |k| {
        if (0..16).contains(&k) {
            1.0 / 16.0
        } else {
            0.0
        }
    });
}

#[test]
fn choice_and_shuffle() {
    let rng = default_rng(8);
    // Without replacement: distinct, and the first elements of the permutation.
    let c = i64s(&rng.choice(1000, 300, false, [64]).unwrap());
    let p = i64s(&rng.permutation(1000, [1000]).unwrap());
    assert_eq!(c, p[..300].to_vec());
    let mut d = c.clone();
    d.sort_unstable();
    d.dedup();
    assert_eq!(d.len(), 300);
    // With replacement: uniform over 0..6.
    let r = i64s(&rng.choice(6, N, true, [5000]).unwrap());
    assert_fits_pmf("choice", &r, 0, 5, |k| {
        if (0..6).contains(&k) { 1.0 / 6.0 } else { 0.0 }
    });
    // Shuffling rows of a matrix moves whole rows, in the permutation's order.
    let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[50, 3]), |ix| (ix[0] * 10 + ix[1]) as f64);
    let a = tessera::from_array(x.clone(), [7, 2]).unwrap();
    let s = rng.shuffle(&a, 0).unwrap().compute::<f64>().unwrap();
    let order = i64s(&rng.permutation(50, [50]).unwrap());
    for (j, &i) in order.iter().enumerate() {
        assert_eq!(
            s.index_axis(ndarray::Axis(0), j),
            x.index_axis(ndarray::Axis(0), i as usize)
        );
    }
    // choice_from picks elements of the array.
    let v = tessera::arange(100i64, 200, 1, [30]).unwrap();
    let picked = i64s(&rng.choice_from(&v, 40, false).unwrap());
    assert!(picked.iter().all(|x| (100..200).contains(x)));
    let positions = i64s(&rng.choice(100, 40, false, [40]).unwrap());
    assert_eq!(
        picked,
        positions.iter().map(|i| i + 100).collect::<Vec<_>>()
    );
    // Errors.
    assert!(matches!(
        rng.choice(5, 6, false, [3]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        rng.choice(0, 1, true, [3]),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(
        i64s(&rng.choice(0, 0, true, [3]).unwrap()),
        Vec::<i64>::new()
    );
}

/// The standard normal CDF, Φ(x) = erfc(-x/√2)/2, with Abramowitz and Stegun's 7.1.26 for erf
/// (absolute error below 1.5e-7, far inside the KS tolerance).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[test]
fn standard_normal_fits_its_law() {
    let z = f64s(&default_rng(2027).standard_normal(&[N], [4096]).unwrap());
    assert_moments("standard_normal", &z, 0.0, 1.0, Some(3.0));
    assert_fits_cdf("standard_normal", &z, normal_cdf);
    // The test has power: an 8 % wider spread (KS distance about 0.019 against a limit of 0.0098)
    // fails it.
    let wide: Vec<f64> = z.iter().map(|v| v * 1.08).collect();
    let result = std::panic::catch_unwind(|| assert_fits_cdf("wide", &wide, normal_cdf));
    assert!(result.is_err(), "a wrong scale passed the KS test");
}

#[test]
fn the_fused_normal_mean_is_the_tile_paths_and_the_values_mean() {
    // `standard_normal(..).mean()` sums straight from the generator; `(x * 1.0).mean()` fills tiles
    // and sums them. Rows longer than a tile (1024) and irregular chunks cover the tile split.
    let x = default_rng(5)
        .standard_normal(&[700, 2500], vec![vec![300, 400], vec![1300, 1200]])
        .unwrap();
    let fused: f64 = x.mean().unwrap().compute_scalar().unwrap();
    let tiled: f64 = (&x * 1.0).mean().unwrap().compute_scalar().unwrap();
    assert_eq!(fused.to_bits(), tiled.to_bits(), "{fused} {tiled}");
    let values = f64s(&x);
    let plain = values.iter().sum::<f64>() / values.len() as f64;
    assert!((fused - plain).abs() < 1e-15, "{fused} {plain}");

    // Row sums: the fused per-row path against the values.
    let rows = f64s(&x.sum_axis(1).unwrap());
    let tiled_rows = f64s(&(&x * 1.0).sum_axis(1).unwrap());
    assert_eq!(rows, tiled_rows);
    for (r, &s) in rows.iter().enumerate() {
        let plain: f64 = values[r * 2500..(r + 1) * 2500].iter().sum();
        assert!((s - plain).abs() < 1e-10, "row {r}: {s} {plain}");
    }
}

#[test]
fn weighted_choice_follows_its_weights_on_any_chunking() {
    let rng = default_rng(12);
    let w = [0.5, 0.0, 2.0, 1.0, 3.5, 0.0, 3.0];
    let total: f64 = w.iter().sum();
    let drawn = rng.choice_weighted(w.len(), N, true, &w, [4096]).unwrap();
    let x = i64s(&drawn);
    assert!(
        x.iter()
            .all(|&k| (0..7).contains(&k) && w[k as usize] > 0.0)
    );
    assert_fits_pmf("choice p", &x, 0, 6, |k| {
        if (0..7).contains(&k) {
            w[k as usize] / total
        } else {
            0.0
        }
    });
    // The documented definition: numpy's lookup of the uniform array of the same seed in the
    // cumulative weights, done here with plain code.
    let u = f64s(&rng.random(&[N], [N]).unwrap());
    let mut cdf = Vec::new();
    let mut running = 0.0;
    for v in w {
        running += v;
        cdf.push(running / total);
    }
    let oracle: Vec<i64> = u
        .iter()
        .map(|&u| cdf.iter().filter(|&&c| c <= u).count() as i64)
        .collect();
    assert_eq!(x, oracle);
    // Chunkings and thread counts do not change a value.
    let one = LocalExecutor::with_threads(1).unwrap();
    let two = LocalExecutor::with_threads(2).unwrap();
    let reference = bits(&drawn, &one);
    for chunks in [
        vec![vec![N]],
        vec![vec![333; N / 333]],
        vec![vec![7, N - 7]],
    ] {
        let mut chunks = chunks;
        let covered: usize = chunks[0].iter().sum();
        if covered < N {
            chunks[0].push(N - covered);
        }
        let y = rng.choice_weighted(w.len(), N, true, &w, chunks).unwrap();
        assert_eq!(reference, bits(&y, &two));
    }
    // A single non-zero weight is always drawn, even at the end of the table.
    let last = i64s(
        &rng.choice_weighted(4, 500, true, &[0.0, 0.0, 0.0, 1e-300], [64])
            .unwrap(),
    );
    assert_eq!(last, vec![3; 500]);
    // choice_from_weighted takes the elements at those positions.
    let v = tessera::arange(100i64, 107, 1, [3]).unwrap();
    let picked = i64s(&rng.choice_from_weighted(&v, 300, true, &w).unwrap());
    assert_eq!(picked, x[..300].iter().map(|k| k + 100).collect::<Vec<_>>());
}

#[test]
fn weighted_choice_without_replacement() {
    let w = [1.0, 0.0, 2.0, 3.0, 4.0];
    let total: f64 = w.iter().sum();
    // Distinct, never a zero weight; as many as there are non-zero weights may be taken.
    let rng = default_rng(4);
    let mut all = i64s(&rng.choice_weighted(5, 4, false, &w, [2]).unwrap());
    all.sort_unstable();
    assert_eq!(all, vec![0, 2, 3, 4]);
    // The definition: the smallest exponential draw over weight first.
    let e = f64s(&rng.standard_exponential(&[5], [5]).unwrap());
    let mut order: Vec<usize> = (0..5).filter(|&j| w[j] > 0.0).collect();
    order.sort_by(|&a, &b| (e[a] / w[a]).total_cmp(&(e[b] / w[b])));
    let two = i64s(&rng.choice_weighted(5, 2, false, &w, [2]).unwrap());
    assert_eq!(two, vec![order[0] as i64, order[1] as i64]);
    // Over many seeds: the first pick has the law p, and the second, given the first is 4, the
    // renormalized law of the rest (numpy's sequence of draws).
    let seeds = 6000u64;
    let mut first = Vec::new();
    let mut second_after_4 = Vec::new();
    for seed in 0..seeds {
        let s = i64s(
            &default_rng(seed)
                .choice_weighted(5, 2, false, &w, [2])
                .unwrap(),
        );
        assert_ne!(s[0], s[1]);
        first.push(s[0]);
        if s[0] == 4 {
            second_after_4.push(s[1]);
        }
    }
    assert_fits_pmf("first pick", &first, 0, 4, |k| {
        if (0..5).contains(&k) {
            w[k as usize] / total
        } else {
            0.0
        }
    });
    assert_fits_pmf("second pick after 4", &second_after_4, 0, 3, |k| {
        if (0..4).contains(&k) {
            w[k as usize] / (total - 4.0)
        } else {
            0.0
        }
    });
    // choice_from_weighted takes the elements at those positions.
    let v = tessera::arange(10i64, 15, 1, [2]).unwrap();
    let picked = i64s(&rng.choice_from_weighted(&v, 2, false, &w).unwrap());
    assert_eq!(picked, two.iter().map(|k| k + 10).collect::<Vec<_>>());
}

#[test]
fn bad_weights_are_refused_by_name() {
    let rng = default_rng(0);
    let refused = |r: tessera::Result<Array>, needle: &str| match r {
        Err(e @ Error::InvalidArgument { op: "choice", .. }) => {
            assert!(e.to_string().contains(needle), "{e} lacks {needle}")
        }
        other => panic!("expected an invalid-argument error, got {other:?}"),
    };
    refused(
        rng.choice_weighted(3, 5, true, &[1.0, 2.0], [5]),
        "p holds 2 weights for a population of 3",
    );
    refused(
        rng.choice_weighted(3, 5, true, &[1.0, -2.0, 1.0], [5]),
        "p[1] is -2",
    );
    refused(
        rng.choice_weighted(3, 5, true, &[1.0, 2.0, f64::NAN], [5]),
        "p[2] is NaN",
    );
    refused(
        rng.choice_weighted(2, 5, true, &[f64::INFINITY, 1.0], [5]),
        "p[0] is inf",
    );
    refused(
        rng.choice_weighted(2, 5, true, &[0.0, 0.0], [5]),
        "sum to 0",
    );
    refused(
        rng.choice_weighted(3, 3, false, &[1.0, 0.0, 1.0], [3]),
        "p has 2 non-zero weights",
    );
    let v = tessera::arange(0i64, 4, 1, [2]).unwrap();
    refused(
        rng.choice_from_weighted(&v, 2, true, &[1.0; 3]),
        "p holds 3",
    );
    // Drawing nothing needs no weight.
    assert_eq!(
        i64s(&rng.choice_weighted(0, 0, true, &[], [1]).unwrap()),
        Vec::<i64>::new()
    );
}
