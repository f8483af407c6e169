//! Standard normal values from ARS-5 words by the ziggurat method (Marsaglia and Tsang, 2000, with 256
//! layers), arranged so that element `i` depends only on the key and `i`: its first try reads the
//! element's own word, and the rare element that a first try rejects (about 1.5 %) draws further
//! blocks from counters that belong to it alone, `(i, 1), (i, 2), …` (first tries use high word 0),
//! so rejections never shift another element's values. This module owns the ziggurat tables, the
//! `exp`/`ln` used to build and apply them, the first try (branch-free, vectorized by the kernels)
//! and the slow path.
//!
//! Everything here uses only `+ - * /`, `sqrt`, comparisons and integer operations — correctly
//! rounded IEEE operations with no FMA contraction or libm — so the tables and every value are
//! bit-identical on every CPU path and platform with IEEE f64 arithmetic.
//!
//! **Speed without new values.** The first try runs eight elements at a time ([`FirstTry`]): AVX-512
//! and AVX2 gather `x[l]` and `x[l+1]` for eight (or twice four) lanes and return the rejected
//! lanes as a bit mask, so the kernels visit only the ~11 % of groups holding a rejection and, in
//! them, only the rejected elements; the portable path does the same scalar operations. In the
//! wedges, the exact test `y < exp(-x²/2)` needs a 14-term series (most of the slow path's time),
//! so [`slow_path`] first compares `y` with a short approximation of the density and computes the
//! exact one only when `y` lies within the approximation's error bound of it: the decision, and so
//! every value, is the exact test's.

use std::sync::LazyLock;

use super::ars::{Blocks, RoundKeys, Soft};
use super::unit_f64;

/// Layers of the ziggurat; a word's low 8 bits choose one.
const LAYERS: usize = 256;
/// Where the tail begins for 256 layers of the unnormalized density `exp(-x²/2)`.
pub(super) const TAIL: f64 = 3.654_152_885_361_009;
/// The area of each layer (the base layer counts its tail).
const LAYER_AREA: f64 = 4.928_673_233_974_655e-3;

/// `x[l]`: the right edge of layer `l` (`x[0]` is the base layer's virtual width `area / f(TAIL)`,
/// `x[1] = TAIL`, `x[256] = 0`), and `f[l] = exp(-x[l]²/2)`.
pub(super) struct Tables {
    pub(super) x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

pub(super) static TABLES: LazyLock<Tables> = LazyLock::new(Tables::build);

impl Tables {
    fn build() -> Tables {
        let mut x = [0.0; LAYERS + 1];
        let mut f = [0.0; LAYERS + 1];
        let density = |v: f64| exp_neg(-0.5 * v * v);
        x[0] = LAYER_AREA / density(TAIL);
        x[1] = TAIL;
        for l in 1..LAYERS - 1 {
            // Layer l spans heights f(x[l])..f(x[l+1]) and has the common area.
            let height = LAYER_AREA / x[l] + density(x[l]);
            x[l + 1] = if height < 1.0 {
                (-2.0 * ln_unit(height)).sqrt()
            } else {
                0.0
            };
        }
        x[LAYERS] = 0.0;
        for l in 0..=LAYERS {
            f[l] = density(x[l]);
        }
        Tables { x, f }
    }
}

/// The first try for one element's word: `±u·x[l]` when that point lies under the density's inner
/// rectangle, NaN (with either sign) when the slow path must decide. Bits: 0–7 layer, 8 sign,
/// 12–63 the uniform `u` — disjoint, so the three are independent.
#[inline(always)]
pub(super) fn first_try(t: &Tables, w: u64) -> f64 {
    let layer = (w & 0xFF) as usize;
    let x = unit_f64(w) * t.x[layer];
    let v = if x < t.x[layer + 1] { x } else { f64::NAN };
    f64::from_bits(v.to_bits() | (w >> 8 & 1) << 63)
}

/// The ziggurat's first try for eight elements at once, with the vector instructions of a block
/// function's back end: the same operations as [`first_try`] per lane.
pub(super) trait FirstTry: Blocks {
    /// `out[k]` = the first try of word `w[k]` for the lanes it accepts; returns the rejected lanes
    /// as bits (lane k is bit k), whose `out` entries are unspecified and left for [`slow_path`].
    #[inline(always)]
    fn first_try8(self, t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
        let mut rejected = 0;
        for (k, (o, &w)) in out.iter_mut().zip(w).enumerate() {
            *o = first_try(t, w);
            rejected |= u32::from(o.is_nan()) << k;
        }
        rejected
    }
}

impl FirstTry for Soft {}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::ars::{AesNi, Vaes256, Vaes512};
    use super::{FirstTry, Tables};

    const ONE: i64 = 0x3FF0_0000_0000_0000;
    const SIGN: i64 = i64::MIN;

    /// Four lanes of the first try with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn first_try4(t: &Tables, w: *const u64, out: *mut f64) -> u32 {
        // SAFETY: the caller guarantees AVX2; `w` and `out` point at four elements, and every
        // gathered index is a layer (0..=255) or one more, inside `t.x` (257 entries).
        unsafe {
            let w = _mm256_loadu_si256(w.cast());
            let layer = _mm256_and_si256(w, _mm256_set1_epi64x(0xFF));
            let u = _mm256_sub_pd(
                _mm256_castsi256_pd(_mm256_or_si256(
                    _mm256_srli_epi64::<12>(w),
                    _mm256_set1_epi64x(ONE),
                )),
                _mm256_set1_pd(1.0),
            );
            let edge = _mm256_i64gather_pd::<8>(t.x.as_ptr(), layer);
            let inner = _mm256_i64gather_pd::<8>(t.x.as_ptr().add(1), layer);
            let x = _mm256_mul_pd(u, edge);
            let accepted = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(x, inner)) as u32;
            let sign = _mm256_and_si256(_mm256_slli_epi64::<55>(w), _mm256_set1_epi64x(SIGN));
            let v = _mm256_or_si256(_mm256_castpd_si256(x), sign);
            _mm256_storeu_si256(out.cast(), v);
            !accepted & 0xF
        }
    }

    /// Eight lanes of the first try with AVX-512F.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline(always)]
    unsafe fn first_try8_avx512(t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
        // SAFETY: the caller guarantees AVX-512F; loads and stores cover the two arrays, and the
        // gathered indices lie inside `t.x` as in `first_try4`.
        unsafe {
            let w = _mm512_loadu_si512(w.as_ptr().cast());
            let layer = _mm512_and_si512(w, _mm512_set1_epi64(0xFF));
            let u = _mm512_sub_pd(
                _mm512_castsi512_pd(_mm512_or_si512(
                    _mm512_srli_epi64::<12>(w),
                    _mm512_set1_epi64(ONE),
                )),
                _mm512_set1_pd(1.0),
            );
            let edge = _mm512_i64gather_pd::<8>(layer, t.x.as_ptr());
            let inner = _mm512_i64gather_pd::<8>(layer, t.x.as_ptr().add(1));
            let x = _mm512_mul_pd(u, edge);
            let accepted = u32::from(_mm512_cmp_pd_mask::<_CMP_LT_OQ>(x, inner));
            let sign = _mm512_and_si512(_mm512_slli_epi64::<55>(w), _mm512_set1_epi64(SIGN));
            let v = _mm512_or_si512(_mm512_castpd_si512(x), sign);
            _mm512_storeu_si512(out.as_mut_ptr().cast(), v);
            !accepted & 0xFF
        }
    }

    impl FirstTry for AesNi {
        #[inline(always)]
        fn first_try8(self, t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
            // SAFETY: an `AesNi` exists only in code compiled with AVX2 on a CPU that has it.
            unsafe {
                first_try4(t, w.as_ptr(), out.as_mut_ptr())
                    | first_try4(t, w.as_ptr().add(4), out.as_mut_ptr().add(4)) << 4
            }
        }
    }

    impl FirstTry for Vaes256 {
        #[inline(always)]
        fn first_try8(self, t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
            // SAFETY: a `Vaes256` exists only in code compiled with AVX2 on a CPU that has it.
            unsafe {
                first_try4(t, w.as_ptr(), out.as_mut_ptr())
                    | first_try4(t, w.as_ptr().add(4), out.as_mut_ptr().add(4)) << 4
            }
        }
    }

    impl FirstTry for Vaes512 {
        #[inline(always)]
        fn first_try8(self, t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
            // SAFETY: a `Vaes512` exists only in code compiled with AVX-512F on a CPU that has it.
            unsafe { first_try8_avx512(t, w, out) }
        }
    }
}

/// The value of element `index` whose first try (word `w`) was rejected: the rest of the ziggurat
/// with the element's own further blocks. Inlined so that its block function is compiled with the
/// caller's instructions; it only runs for rejected first tries.
#[inline(always)]
pub(super) fn slow_path<B: Blocks>(b: B, keys: &RoundKeys, t: &Tables, index: u64, w: u64) -> f64 {
    // No closures here: they would be compiled without the caller's target features.
    let mut w = w;
    let mut retry = 1u64;
    loop {
        let layer = (w & 0xFF) as usize;
        let sign = (w >> 8 & 1) << 63;
        let x = unit_f64(w) * t.x[layer];
        if x < t.x[layer + 1] {
            return f64::from_bits(x.to_bits() | sign);
        }
        let [mut a, mut c] = b.one(keys, index, retry);
        retry += 1;
        if layer == 0 {
            // Beyond the tail edge: Marsaglia's exact tail sampler, x = TAIL + e₁/TAIL accepted
            // when 2e₂ > (e₁/TAIL)² for exponentials e₁, e₂ (uniforms in (0, 1] keep ln finite).
            loop {
                let dx = -ln_unit(1.0 - unit_f64(a)) / TAIL;
                let y = -ln_unit(1.0 - unit_f64(c));
                if y + y > dx * dx {
                    return f64::from_bits((TAIL + dx).to_bits() | sign);
                }
                [a, c] = b.one(keys, index, retry);
                retry += 1;
            }
        }
        // In the wedge: a uniform height within the layer, under the density or a fresh try.
        let y = t.f[layer] + unit_f64(a) * (t.f[layer + 1] - t.f[layer]);
        if under_density(y, -0.5 * x * x) {
            return f64::from_bits(x.to_bits() | sign);
        }
        w = c;
    }
}

/// Whether `y < exp_neg(e)` for `e` in [-700, 0], the wedge test, mostly without [`exp_neg`]: a
/// degree-9 series (relative error below 1e-11 after the same range reduction) decides when `y` is
/// farther from it than 1e-9 relative, where the exact value cannot be on the other side; the rare
/// `y` within that band gets the exact comparison. So the answer is always the exact test's.
#[inline(always)]
fn under_density(y: f64, e: f64) -> bool {
    let approx = exp_neg_approx(e);
    if y < approx * (1.0 - 1e-9) {
        true
    } else if y > approx * (1.0 + 1e-9) {
        false
    } else {
        y < exp_neg(e)
    }
}

/// `exp(x)` for x in [-700, 0] to about 1e-11 relative: [`exp_neg`]'s range reduction and a shorter
/// series evaluated by Estrin's scheme, so its latency is a third of the exact one's.
#[inline(always)]
fn exp_neg_approx(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let shifted = x * std::f64::consts::LOG2_E + MAGIC;
    let k = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i64;
    let kf = shifted - MAGIC;
    let r = x - kf * std::f64::consts::LN_2;
    let c = &EXP_SERIES;
    let r2 = r * r;
    let r4 = r2 * r2;
    let p01 = c[0] + c[1] * r;
    let p23 = c[2] + c[3] * r;
    let p45 = c[4] + c[5] * r;
    let p67 = c[6] + c[7] * r;
    let p89 = c[8] + c[9] * r;
    let p = (p01 + p23 * r2) + (p45 + p67 * r2) * r4 + p89 * (r4 * r4);
    p * f64::from_bits(((k + 1023) as u64) << 52)
}

/// Evaluates the polynomial with coefficients `c` (constant term first) at `x`.
#[inline(always)]
fn horner<const N: usize>(x: f64, c: &[f64; N]) -> f64 {
    c.iter()
        .rev()
        .skip(1)
        .fold(c[N - 1], |acc, &ci| acc * x + ci)
}

/// 1/(2k+1) for k = 0..=10: the series of atanh(s)/s in s², truncated where the next term is below
/// 1e-18 relative for |s| ≤ 3 - 2√2.
const ATANH_SERIES: [f64; 11] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
];

/// `v as f64` for |v| < 2^51, exactly, by placing `v` in the mantissa of 1.5·2^52.
#[inline(always)]
fn small_int_to_f64(v: i64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    f64::from_bits(MAGIC.to_bits().wrapping_add(v as u64)) - MAGIC
}

/// Natural log of a positive, finite, normal `x` (the ziggurat needs it on (0, 1]; the other
/// distributions anywhere).
#[inline(always)]
pub(super) fn ln_unit(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut exponent = (bits >> 52) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    // Centring the mantissa on 1 (range [√½, √2)) keeps |s| ≤ 0.172 so the series is short.
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln m = 2 atanh(s); m - 1 is exact for m in [√½, √2).
    let s = (m - 1.0) / (m + 1.0);
    small_int_to_f64(exponent) * std::f64::consts::LN_2 + 2.0 * s * horner(s * s, &ATANH_SERIES)
}

/// 1/k! for k = 0..=13: exp(r) for |r| ≤ ln2/2, truncated where the next term is below 1e-17.
const EXP_SERIES: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// `exp(x)` for x in [-700, 0]: x = k·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so that k·ln2 is
/// subtracted almost exactly), a series for exp(r), and 2^k placed in the exponent bits.
#[inline(always)]
pub(super) fn exp_neg(x: f64) -> f64 {
    debug_assert!((-700.0..=0.0).contains(&x), "{x}");
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with trailing zero bits so that k·LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let shifted = x * std::f64::consts::LOG2_E + MAGIC;
    let k = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i64;
    let kf = shifted - MAGIC;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let scale = f64::from_bits(((k + 1023) as u64) << 52);
    horner(r, &EXP_SERIES) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math_matches_libm() {
        for k in 0..=52 {
            let x = 0.75f64.powi(k) * 0.999;
            let (ours, std) = (ln_unit(x), x.ln());
            assert!((ours - std).abs() <= 4e-16 * std.abs().max(1e-300), "{x}");
        }
        assert_eq!(ln_unit(1.0), 0.0);
        let tiny = f64::EPSILON;
        assert!((ln_unit(tiny) - tiny.ln()).abs() <= 4e-16 * tiny.ln().abs());
        for j in 0..=7000 {
            let x = -(j as f64) * 0.1 - 1e-3 * (j % 7) as f64;
            let (ours, std) = (exp_neg(x), x.exp());
            assert!((ours - std).abs() <= 4e-16 * std, "{x}: {ours} {std}");
        }
        assert_eq!(exp_neg(0.0), 1.0);
        // The split of ln 2 adds up to it.
        assert_eq!(
            6.931_471_803_691_238e-1 + 1.908_214_929_270_587_7e-10,
            std::f64::consts::LN_2
        );
    }

    #[test]
    fn the_quick_wedge_test_is_the_exact_one() {
        // The approximation is within its stated error everywhere the wedges use it.
        for j in 0..=20_000 {
            let e = -(j as f64) * 7e-4 - 1e-7 * (j % 13) as f64;
            let (fast, exact) = (exp_neg_approx(e), exp_neg(e));
            assert!((fast - exact).abs() <= 1e-11 * exact, "{e}: {fast} {exact}");
        }
        // Decisions agree just inside, on and just outside the band, where the exact exp decides.
        for j in 0..2000 {
            let e = -(j as f64) * 3.3e-3;
            let exact = exp_neg(e);
            for y in [
                exact,
                f64::from_bits(exact.to_bits() - 1),
                f64::from_bits(exact.to_bits() + 1),
                exact * (1.0 - 2e-9),
                exact * (1.0 + 2e-9),
                exact * 0.5,
                exact * 1.5,
            ] {
                assert_eq!(under_density(y, e), y < exact, "{e} {y}");
            }
        }
    }

    #[test]
    fn every_first_try_path_gives_the_scalar_lanes() {
        let t = &*TABLES;
        let mut words = [0u64; 8];
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        let mut rejections = 0;
        for round in 0..20_000 {
            for w in &mut words {
                state = super::super::mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
                *w = state;
            }
            // Force the top layer (always rejected) and the base layer into some rounds.
            if round % 7 == 0 {
                words[3] |= 0xFF;
                words[5] &= !0xFF;
            }
            let check = |rejected: u32, out: &[f64; 8], path: &str| {
                for (k, &w) in words.iter().enumerate() {
                    let scalar = first_try(t, w);
                    assert_eq!(rejected >> k & 1 == 1, scalar.is_nan(), "{path} lane {k}");
                    if !scalar.is_nan() {
                        assert_eq!(out[k].to_bits(), scalar.to_bits(), "{path} lane {k}");
                    }
                }
            };
            let mut out = [0.0; 8];
            let r = Soft.first_try8(t, &words, &mut out);
            rejections += r.count_ones();
            check(r, &out, "portable");
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("aes") {
                    #[target_feature(enable = "avx2")]
                    fn avx2(t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
                        // SAFETY: called only after detecting AVX2 and AES-NI.
                        unsafe { super::super::ars::AesNi::new() }.first_try8(t, w, out)
                    }
                    // SAFETY: AVX2 and AES-NI were detected.
                    let r = unsafe { avx2(t, &words, &mut out) };
                    check(r, &out, "avx2");
                }
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("vaes")
                    && is_x86_feature_detected!("aes")
                {
                    #[target_feature(enable = "avx512f")]
                    fn avx512(t: &Tables, w: &[u64; 8], out: &mut [f64; 8]) -> u32 {
                        // SAFETY: called only after detecting AVX-512F, VAES and AES-NI (the
                        // token's contract); only AVX-512F is used here.
                        unsafe { super::super::ars::Vaes512::new() }.first_try8(t, w, out)
                    }
                    // SAFETY: AVX-512F, VAES and AES-NI were detected.
                    let r = unsafe { avx512(t, &words, &mut out) };
                    check(r, &out, "avx512");
                }
            }
        }
        // The words exercised both outcomes (about 1.5 % of lanes are rejected, more here).
        assert!(rejections > 1000, "{rejections}");
    }

    #[test]
    fn tables_have_equal_layers() {
        let t = &*TABLES;
        assert_eq!(t.x[1], TAIL);
        assert!(
            t.x.windows(2).skip(1).all(|w| w[0] > w[1]),
            "edges decrease"
        );
        // Every layer's area (the top one closes at x = 0) is the common one.
        for l in 1..LAYERS {
            let area = t.x[l] * (t.f[l + 1] - t.f[l]);
            assert!(
                (area - LAYER_AREA).abs() < 1e-9 * LAYER_AREA,
                "layer {l}: {area}"
            );
        }
        // The base layer: the rectangle up to the tail plus the tail, ∫_R^∞ exp(-x²/2) dx, which
        // is the normal distribution's tail probability P(Z > R) = 1.290162438e-4 times √(2π).
        let base = TAIL * t.f[1] + 1.290_162_438e-4 * (2.0 * std::f64::consts::PI).sqrt();
        assert!((base - LAYER_AREA).abs() < 1e-12, "{base}");
    }
}
