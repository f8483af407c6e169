//! The distributions beyond uniform and normal — bounded integers, exponential, gamma, beta, Poisson
//! and binomial — drawn so that element `i` depends only on the key and `i`, like every random array.
//!
//! **Words of an element.** A first try that needs one word reads the element's word of the shared
//! layout (word `i mod 2` of block `(i >> 1, 0)`, as uniform values do); everything else comes from
//! the element's own stream, blocks `(i, 1), (i, 2), …` two words at a time, which no other element
//! reads. So a rejection sampler can take as many words as it needs without shifting any other
//! element's values, and the chunking, thread count and machine never change a value.
//!
//! **Arithmetic.** Only `+ - * /`, `sqrt`, `floor`, comparisons, integer operations and the portable
//! `ln`/`exp` of [`super::normal`] — no libm, no FMA contraction — so every CPU path and platform
//! gives the same bits.
//!
//! **Methods** (published, chosen for short expected loops): Lemire's multiply-and-reject for
//! integers in a range (unbiased; a retry has probability below range / 2^64); inversion for the
//! exponential; Marsaglia and Tsang (2000) for gamma with shape ≥ 1 (normals by Marsaglia's polar
//! method), boosted by `U^(1/shape)` below 1; beta as `X / (X + Y)` of two gammas, or Jöhnk's method
//! in log space when both parameters are ≤ 1; Poisson by inversion of one word below a mean of 10
//! and by Hörmann's PTRS transformed rejection (1993) above; binomial by inversion when `n·min(p, 1-p)`
//! is below 10 and by Hörmann's BTRS (1993) above.
//!
//! **Permutations** of `0..n`. Up to [`SMALL_PERMUTATION`] elements: a Fisher–Yates shuffle whose
//! step `j` (from `n - 1` down to 1) draws its unbiased position in `0..=j` from the stream of
//! counter `j`, so the whole permutation is a function of the key and `n`. Above: element `i` is
//! the image of `i` under a keyed six-round Feistel network on the smallest even number of bits
//! that holds `n` (round `r` of half `h` is the low bits of block `(h, r)`), walked until it lands
//! below `n` (cycle walking: the domain is under 4n, so about four steps at most on average); each
//! element is computed on its own, so any slice costs only its own length. (A Feistel network on a
//! few bits reaches too few permutations, and unevenly, hence the shuffle below the threshold.)

use std::sync::LazyLock;

use super::ars::{Blocks, RoundKeys};
use super::normal::{exp_neg, ln_unit as ln};
use super::{unit_f64, word_at};

/// The words of one element beyond its shared first word: blocks `(index, 1), (index, 2), …`.
/// Methods are `#[inline(always)]` and closure-free so they compile with the caller's instructions.
struct ElementStream<'k, B: Blocks> {
    b: B,
    keys: &'k RoundKeys,
    index: u64,
    next_hi: u64,
    words: [u64; 2],
    used: usize,
}

impl<'k, B: Blocks> ElementStream<'k, B> {
    #[inline(always)]
    fn new(b: B, keys: &'k RoundKeys, index: u64) -> Self {
        Self {
            b,
            keys,
            index,
            next_hi: 1,
            words: [0; 2],
            used: 2,
        }
    }

    #[inline(always)]
    fn word(&mut self) -> u64 {
        if self.used == 2 {
            self.words = self.b.one(self.keys, self.index, self.next_hi);
            self.next_hi += 1;
            self.used = 0;
        }
        let w = self.words[self.used];
        self.used += 1;
        w
    }

    /// Uniform in [0, 1).
    #[inline(always)]
    fn uniform(&mut self) -> f64 {
        unit_f64(self.word())
    }

    /// Uniform in (0, 1], where a logarithm must stay finite.
    #[inline(always)]
    fn uniform_open(&mut self) -> f64 {
        1.0 - unit_f64(self.word())
    }

    /// A standard normal value by Marsaglia's polar method (one `ln` and one `sqrt`, no
    /// trigonometry, accepted with probability π/4).
    #[inline(always)]
    fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * ln(s) / s).sqrt();
            }
        }
    }

    /// Gamma(shape ≥ 1, 1) by Marsaglia and Tsang.
    #[inline(always)]
    fn gamma_at_least_one(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let t = 1.0 + c * x;
            if t <= 0.0 {
                continue;
            }
            let v = t * t * t;
            let u = self.uniform_open();
            let x2 = x * x;
            if u < 1.0 - 0.0331 * x2 * x2 || ln(u) < 0.5 * x2 + d * (1.0 - v + ln(v)) {
                return d * v;
            }
        }
    }

    /// Gamma(shape, 1) for any shape > 0.
    #[inline(always)]
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape >= 1.0 {
            return self.gamma_at_least_one(shape);
        }
        // Gamma(a) = Gamma(a + 1) · U^(1/a).
        let g = self.gamma_at_least_one(shape + 1.0);
        g * exp_nonpositive(ln(self.uniform_open()) / shape)
    }

    #[inline(always)]
    fn beta(&mut self, a: f64, b: f64) -> f64 {
        if a > 1.0 || b > 1.0 {
            let x = self.gamma(a);
            let y = self.gamma(b);
            return x / (x + y);
        }
        // Jöhnk: X = U^(1/a), Y = V^(1/b), accepted when X + Y ≤ 1; in logs so that tiny parameters
        // (where X and Y underflow) still give the ratio.
        loop {
            let lx = ln(self.uniform_open()) / a;
            let ly = ln(self.uniform_open()) / b;
            let top = if lx > ly { lx } else { ly };
            let (ex, ey) = (exp_nonpositive(lx - top), exp_nonpositive(ly - top));
            // X + Y ≤ 1  ⇔  top + ln(ex + ey) ≤ 0.
            let ln_sum = ln(ex + ey);
            if top + ln_sum <= 0.0 {
                return exp_nonpositive(lx - top - ln_sum);
            }
        }
    }

    /// Poisson by Hörmann's PTRS, for a mean of at least 10.
    #[inline(always)]
    fn poisson_ptrs(&mut self, lam: f64) -> f64 {
        let slam = lam.sqrt();
        let loglam = ln(lam);
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let ln_inv_alpha = ln(1.1239 + 1.1328 / (b - 3.4));
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform_open();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lam + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if ln(v) + ln_inv_alpha - ln(a / (us * us) + b) <= -lam + k * loglam - ln_factorial(k) {
                return k;
            }
        }
    }

    /// Binomial(n, p) for p ≤ 1/2.
    #[inline(always)]
    fn binomial_low(&mut self, n: f64, p: f64) -> f64 {
        if p <= 0.0 || n <= 0.0 {
            return 0.0;
        }
        let q = 1.0 - p;
        if n * p < 10.0 {
            // Inversion: walk the probabilities P(0), P(1), … until the uniform is used up.
            let s = p / q;
            let a = (n + 1.0) * s;
            let p0 = exp_nonpositive(n * ln(q));
            loop {
                let mut u = self.uniform();
                let mut r = p0;
                let mut x = 0.0;
                // Far beyond any reachable value (the mean is below 10): rounding left `u` unused.
                while x <= n && x <= 1000.0 {
                    if u < r {
                        return x;
                    }
                    u -= r;
                    x += 1.0;
                    r *= a / x - s;
                }
            }
        }
        // Hörmann's BTRS.
        let spq = (n * p * q).sqrt();
        let b = 1.15 + 2.53 * spq;
        let a = -0.0873 + 0.0248 * b + 0.01 * p;
        let c = n * p + 0.5;
        let vr = 0.92 - 4.2 / b;
        let alpha = (2.83 + 5.1 / b) * spq;
        let lpq = ln(p / q);
        let m = ((n + 1.0) * p).floor();
        let h = ln_factorial(m) + ln_factorial(n - m);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform_open();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + c).floor();
            if k < 0.0 || k > n {
                continue;
            }
            if us >= 0.07 && v <= vr {
                return k;
            }
            let lv = ln(v * alpha / (a / (us * us) + b));
            if lv <= h - ln_factorial(k) - ln_factorial(n - k) + (k - m) * lpq {
                return k;
            }
        }
    }
}

/// `exp(x)` for any x ≤ 0 (zero below -700, where the true value is below 1e-304).
#[inline(always)]
fn exp_nonpositive(x: f64) -> f64 {
    if x < -700.0 { 0.0 } else { exp_neg(x) }
}

/// ln(k!) for k below this come from a table of exact factorials.
const FACTORIAL_TABLE: usize = 16;

static LN_FACTORIALS: LazyLock<[f64; FACTORIAL_TABLE]> = LazyLock::new(|| {
    let mut t = [0.0; FACTORIAL_TABLE];
    let mut f = 1.0f64; // k! is exact in f64 up to 18!
    for (k, v) in t.iter_mut().enumerate().skip(1) {
        f *= k as f64;
        *v = ln(f);
    }
    t
});

/// ln(k!) for an integral k ≥ 0: the table, then Stirling's series for ln Γ(k + 1) (four terms;
/// the error is below 1e-14 from k = 16).
#[inline(always)]
fn ln_factorial(k: f64) -> f64 {
    if k < FACTORIAL_TABLE as f64 {
        return LN_FACTORIALS[k as usize];
    }
    const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
    let x = k + 1.0;
    let r = 1.0 / x;
    let r2 = r * r;
    (x - 0.5) * ln(x) - x
        + HALF_LN_2PI
        + r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 / 1680.0)))
}

/// Permutations of at most this many elements are shuffled whole (Fisher–Yates); larger ones use
/// the Feistel network element by element.
pub(super) const SMALL_PERMUTATION: u64 = 1 << 14;

/// Rounds of the Feistel network.
const FEISTEL_ROUNDS: u64 = 6;

/// A keyed permutation of `0..2^(2·half_bits)`.
#[inline(always)]
fn feistel<B: Blocks>(b: B, keys: &RoundKeys, half_bits: u32, x: u64) -> u64 {
    let mask = (1u64 << half_bits) - 1;
    let (mut left, mut right) = (x >> half_bits, x & mask);
    for round in 0..FEISTEL_ROUNDS {
        let f = b.one(keys, right, round)[0] & mask;
        (left, right) = (right, left ^ f);
    }
    (left << half_bits) | right
}

/// An unbiased integer in `0..range` (range ≥ 1) from a stream (Lemire's multiply-and-reject).
#[inline(always)]
fn below<B: Blocks>(s: &mut ElementStream<'_, B>, range: u64) -> u64 {
    let mut m = u128::from(s.word()) * u128::from(range);
    if (m as u64) < range {
        let threshold = range.wrapping_neg() % range;
        while (m as u64) < threshold {
            m = u128::from(s.word()) * u128::from(range);
        }
    }
    (m >> 64) as u64
}

#[inline(always)]
pub(super) fn permutation_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    n: u64,
    start: u64,
    step: u64,
    out: &mut [i64],
) {
    // The graph checks that a permutation leaf holds at most n elements: every index is below n.
    if n <= SMALL_PERMUTATION {
        let mut whole: Vec<u32> = (0..n as u32).collect();
        for j in (1..n).rev() {
            let k = below(&mut ElementStream::new(b, keys, j), j + 1);
            whole.swap(j as usize, k as usize);
        }
        let mut i = start;
        for o in out {
            *o = i64::from(whole[i as usize]);
            i = i.wrapping_add(step);
        }
        return;
    }
    // Every index is below n, so its cycle contains a value below n (itself) and the walk ends.
    let bits = 64 - (n - 1).leading_zeros();
    let half_bits = bits.div_ceil(2);
    let mut i = start;
    for o in out {
        debug_assert!(i < n, "permutation index {i} of {n}");
        let mut x = i;
        loop {
            x = feistel(b, keys, half_bits, x);
            if x < n {
                break;
            }
        }
        *o = x as i64;
        i = i.wrapping_add(step);
    }
}

#[inline(always)]
pub(super) fn integers_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    low: i64,
    high: i64,
    start: u64,
    step: u64,
    out: &mut [i64],
) {
    // The number of values, modulo 2^64 (0: all of them).
    let range = (high as u64).wrapping_sub(low as u64).wrapping_add(1);
    let mut i = start;
    for o in out {
        let mut w = word_at(b, keys, i);
        let offset = if range == 0 {
            w
        } else {
            let mut m = u128::from(w) * u128::from(range);
            if (m as u64) < range {
                // Reject the words that would favour some values: 2^64 mod range of them.
                let threshold = range.wrapping_neg() % range;
                let mut more = ElementStream::new(b, keys, i);
                while (m as u64) < threshold {
                    w = more.word();
                    m = u128::from(w) * u128::from(range);
                }
            }
            (m >> 64) as u64
        };
        *o = low.wrapping_add(offset as i64);
        i = i.wrapping_add(step);
    }
}

#[inline(always)]
pub(super) fn exponential_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    start: u64,
    step: u64,
    out: &mut [f64],
) {
    let mut i = start;
    for o in out {
        // -ln(1 - U) with U in [0, 1): finite, and exactly 0 for U = 0.
        *o = -ln(1.0 - unit_f64(word_at(b, keys, i)));
        i = i.wrapping_add(step);
    }
}

#[inline(always)]
pub(super) fn gamma_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    shape: f64,
    start: u64,
    step: u64,
    out: &mut [f64],
) {
    let mut i = start;
    for o in out {
        *o = ElementStream::new(b, keys, i).gamma(shape);
        i = i.wrapping_add(step);
    }
}

#[inline(always)]
pub(super) fn beta_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    alpha: f64,
    beta: f64,
    start: u64,
    step: u64,
    out: &mut [f64],
) {
    let mut i = start;
    for o in out {
        *o = ElementStream::new(b, keys, i).beta(alpha, beta);
        i = i.wrapping_add(step);
    }
}

#[inline(always)]
pub(super) fn poisson_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    lam: f64,
    start: u64,
    step: u64,
    out: &mut [i64],
) {
    let mut i = start;
    if lam >= 10.0 {
        for o in out {
            *o = ElementStream::new(b, keys, i).poisson_ptrs(lam) as i64;
            i = i.wrapping_add(step);
        }
        return;
    }
    // Inversion with the element's one shared word: walk the CDF until it passes the uniform.
    // Rounding can leave the CDF a few ulps short of 1; past `last` (whose tail probability is
    // below 1e-25 for every mean under 10) the walk stops.
    let p0 = exp_neg(-lam);
    let last = 60.0;
    for o in out {
        let u = unit_f64(word_at(b, keys, i));
        let (mut k, mut p, mut cdf) = (0.0, p0, p0);
        while u >= cdf && k < last {
            k += 1.0;
            p *= lam / k;
            cdf += p;
        }
        *o = k as i64;
        i = i.wrapping_add(step);
    }
}

#[inline(always)]
pub(super) fn binomial_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    n: u64,
    p: f64,
    start: u64,
    step: u64,
    out: &mut [i64],
) {
    // n fits int64 (checked with the graph), so it and every count are exact below 2^53 and the
    // float arithmetic stays meaningful above.
    let nf = n as f64;
    let mut i = start;
    for o in out {
        let mut s = ElementStream::new(b, keys, i);
        *o = if p > 0.5 {
            n as i64 - s.binomial_low(nf, 1.0 - p) as i64
        } else {
            s.binomial_low(nf, p) as i64
        };
        i = i.wrapping_add(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_factorial_matches_the_product() {
        let mut exact = 0.0f64;
        for k in 1..200u32 {
            exact += (k as f64).ln();
            let ours = ln_factorial(k as f64);
            assert!(
                (ours - exact).abs() <= 1e-12 * exact.max(1.0),
                "{k}: {ours} vs {exact}"
            );
        }
        assert_eq!(ln_factorial(0.0), 0.0);
    }

    #[test]
    fn exp_nonpositive_covers_every_input() {
        assert_eq!(exp_nonpositive(-1e9), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!((exp_nonpositive(-1.0) - (-1.0f64).exp()).abs() < 1e-16);
    }
}
