//! Vectorizable functions over f64 tiles: `sin`, `cos`, `exp`, `ln`, `hypot` and the absolute value
//! of complex128, for the elementwise kernels. Each is a branch-free lane function (range reduction, then a polynomial)
//! that the compiler vectorizes over a tile, compiled once per CPU level by `multiversion!`; the
//! rare element outside the lane function's range (NaN, ±inf, huge arguments, zero, subnormals,
//! results that overflow or underflow) is then recomputed by std's libm in a scalar pass.
//!
//! The reductions and polynomials follow fdlibm's (Sun's freely distributable libm, also the base of
//! musl and FreeBSD): Cody–Waite reduction by π/2 in three parts with the rounding error carried as a
//! tail, and fdlibm's minimax polynomials, all below 1 ulp. Everything here uses only `+ - * /`,
//! comparisons and integer operations — correctly rounded IEEE operations; Rust never contracts
//! `a * b + c` into an FMA, and no `mul_add` is written — so the AVX-512, AVX2 and portable builds
//! give the same bits (tested below), and the fallback is the same libm call on every path.
//!
//! `hypot` (and so `abs` of complex128, numpy's `absolute`) needs no polynomial: x² + y² is formed
//! exactly as a double-double (Dekker's product through Veltkamp's split, which needs no FMA), and
//! one correctly rounded `sqrt` plus a Newton step on the exact remainder gives a result within a
//! hair over ½ ulp, like libm's, with parts scaled by 2^±600 so nothing overflows or underflows.
//! libm's `hypot` was a third of `abs(fft(x)).mean()`'s time.
//!
//! f32 tiles go through the f64 functions and round once at the end, which is at least as accurate
//! as libm's single-precision functions.

// The constants are written with fdlibm's published digits (each rounds to the intended double);
// range tests are plain comparisons, since `contains` is a generic call that may stay out of line
// in the target-feature loops.
#![allow(clippy::excessive_precision, clippy::manual_range_contains)]

use num_complex::Complex64;

use super::simd::multiversion;

/// 1.5·2^52: adding it to |v| < 2^51 rounds `v` to an integer (ties to even) held in the low
/// mantissa bits, which converts to and from i64 without the instructions AVX2 lacks.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// `v` rounded to the nearest integer, as f64 and as i64 (|v| < 2^51).
#[inline(always)]
fn round_int(v: f64) -> (f64, i64) {
    let shifted = v + MAGIC;
    let k = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i64;
    (shifted - MAGIC, k)
}

/// `k as f64` for |k| < 2^51, exactly, through the mantissa of [`MAGIC`].
#[inline(always)]
fn int_to_f64(k: i64) -> f64 {
    f64::from_bits(MAGIC.to_bits().wrapping_add(k as u64)) - MAGIC
}

// ---- sin and cos ----------------------------------------------------------------------------

/// 2/π.
const INV_PIO2: f64 = std::f64::consts::FRAC_2_PI;
/// π/2 in three parts of 33 significant bits (so `n·part` is exact for |n| ≤ 2^20), each followed by
/// the rest of π/2 after it.
const PIO2_1: f64 = 1.570_796_326_734_125_614_17;
const PIO2_2: f64 = 6.077_100_506_303_965_976_60e-11;
const PIO2_3: f64 = 2.022_266_248_711_166_455_80e-21;
const PIO2_3T: f64 = 8.478_427_660_368_899_569_97e-32;
/// Arguments below this magnitude are reduced in the lane function (n < 2^20 quadrants); larger
/// ones, and non-finite ones, go to libm's exact reduction.
const SINCOS_LIMIT: f64 = 1_647_099.0;

/// x reduced by π/2: `x = n·π/2 + hi + lo` with |hi + lo| ≤ π/4 (a little more near the limit),
/// `lo` the rounding error of `hi`, and `n` the quadrant.
#[inline(always)]
fn reduce_pio2(x: f64) -> (f64, f64, i64) {
    let (nf, n) = round_int(x * INV_PIO2);
    // x - n·PIO2_1 is exact: both products are, and they nearly cancel.
    let r = x - nf * PIO2_1;
    // The second and third parts (their products exact), each subtraction's rounding error kept
    // (`(t - r) - w` is minus that error) and added to the last tail. fdlibm runs these rounds only
    // when the first ones cancel; always running them is never less accurate, and branch-free.
    let t = r;
    let w = nf * PIO2_2;
    let r = t - w;
    let e2 = (t - r) - w;
    let t = r;
    let w = nf * PIO2_3;
    let r = t - w;
    let e3 = (t - r) - w;
    let tail = (nf * PIO2_3T - e3) - e2;
    let hi = r - tail;
    let lo = (r - hi) - tail;
    (hi, lo, n)
}

const S1: f64 = -1.666_666_666_666_663_243_48e-1;
const S2: f64 = 8.333_333_333_322_489_461_24e-3;
const S3: f64 = -1.984_126_982_985_794_931_34e-4;
const S4: f64 = 2.755_731_370_707_006_767_89e-6;
const S5: f64 = -2.505_076_025_340_686_341_95e-8;
const S6: f64 = 1.589_690_995_211_550_102_21e-10;

/// sin(x + y) for |x| ≤ π/4 and |y| tiny against x.
#[inline(always)]
fn sin_kernel(x: f64, y: f64) -> f64 {
    let z = x * x;
    let v = z * x;
    let r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    x - ((z * (0.5 * y - v * r) - y) - v * S1)
}

const C1: f64 = 4.166_666_666_666_660_190_37e-2;
const C2: f64 = -1.388_888_888_887_410_957_49e-3;
const C3: f64 = 2.480_158_728_947_672_941_78e-5;
const C4: f64 = -2.755_731_435_139_066_330_35e-7;
const C5: f64 = 2.087_572_321_298_174_827_90e-9;
const C6: f64 = -1.135_964_755_778_819_482_65e-11;

/// cos(x + y) for |x| ≤ π/4 and |y| tiny against x.
#[inline(always)]
fn cos_kernel(x: f64, y: f64) -> f64 {
    let z = x * x;
    let w = z * z;
    let r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    w + (((1.0 - w) - hz) + (z * r - x * y))
}

/// sin(x) (or cos(x) when `cos`) for |x| < [`SINCOS_LIMIT`]; garbage elsewhere.
#[inline(always)]
fn sincos_lane(x: f64, cos: bool) -> f64 {
    let (hi, lo, n) = reduce_pio2(x);
    let s = sin_kernel(hi, lo);
    let c = cos_kernel(hi, lo);
    // cos(x) = sin(x + π/2): one quadrant on.
    let q = n.wrapping_add(cos as i64);
    let v = if q & 1 == 0 { s } else { c };
    f64::from_bits(v.to_bits() ^ (((q as u64) & 2) << 62))
}

// ---- exp ------------------------------------------------------------------------------------

/// ln 2 in two parts: `k·LN2_HI` is exact for |k| < 2^11.
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const P1: f64 = 1.666_666_666_666_660_190_37e-1;
const P2: f64 = -2.777_777_777_701_559_338_42e-3;
const P3: f64 = 6.613_756_321_437_934_361_17e-5;
const P4: f64 = -1.653_390_220_546_525_153_90e-6;
const P5: f64 = 4.138_136_797_057_238_460_39e-8;
/// Arguments whose exp is a normal number (and not within rounding of overflow) stay in the lane
/// function; the rest (overflow, underflow to subnormals or zero, NaN) go to libm.
const EXP_LIMIT: f64 = 708.0;

/// exp(x) for |x| < [`EXP_LIMIT`]: x = k·ln2 + r, |r| ≤ ln2/2, exp(r) from fdlibm's rational form
/// `1 + r + r·c/(2 - c)`, and 2^k placed in the exponent bits.
#[inline(always)]
fn exp_lane(x: f64) -> f64 {
    let (kf, k) = round_int(x * std::f64::consts::LOG2_E);
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // |k| ≤ 1022 here, so the scale is a normal power of two.
    y * f64::from_bits((k.wrapping_add(1023) as u64) << 52)
}

// ---- ln -------------------------------------------------------------------------------------

const LG1: f64 = 6.666_666_666_666_735_130e-1;
const LG2: f64 = 3.999_999_999_940_941_908e-1;
const LG3: f64 = 2.857_142_874_366_239_149e-1;
const LG4: f64 = 2.222_219_843_214_978_396e-1;
const LG5: f64 = 1.818_357_216_161_805_012e-1;
const LG6: f64 = 1.531_383_769_920_937_332e-1;
const LG7: f64 = 1.479_819_860_511_658_591e-1;
/// The upper word of √½: mantissas are brought into [√½, √2).
const SQRT_HALF_HI: u64 = 0x3FE6_A09E_0000_0000;

/// ln(x) for positive, normal, finite x: x = 2^k·(1 + f) with 1 + f in [√½, √2),
/// ln(1 + f) = 2·atanh(s) for s = f/(2 + f), from fdlibm's polynomial in s².
#[inline(always)]
fn ln_lane(x: f64) -> f64 {
    // Adding 1 - √½ (in the upper word) to the bits carries into the exponent exactly when the
    // mantissa is at least √2's, so k and the recentred mantissa come without a branch.
    let hx = x
        .to_bits()
        .wrapping_add(0x3FF0_0000_0000_0000 - SQRT_HALF_HI);
    let k = (hx >> 52) as i64 - 1023;
    let m = f64::from_bits((hx & 0x000F_FFFF_FFFF_FFFF) + SQRT_HALF_HI);
    let f = m - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let dk = int_to_f64(k);
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

// ---- hypot and complex abs -------------------------------------------------------------------

/// 2^e for a normal exponent e.
const fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// Veltkamp's splitter 2^27 + 1: `a·SPLIT` splits a double into two halves of 26 bits whose
/// products are exact.
const SPLIT: f64 = 134_217_729.0;
/// Above this larger magnitude the parts are scaled down by 2^-600 first, below
/// [`HYPOT_SMALL`] up by 2^600, so squares, their error terms and the splitter's product stay
/// normal and finite.
const HYPOT_BIG: f64 = pow2(450);
const HYPOT_SMALL: f64 = pow2(-450);
const TWO_600: f64 = pow2(600);
const TWO_M600: f64 = pow2(-600);
/// Smallest larger magnitude handled in the lane function (2^-969): below it the result may be
/// subnormal, where unscaling would round a second time, so libm takes those (and zeros).
const HYPOT_TINY: f64 = pow2(-969);

/// `a·a` as an unevaluated sum `hi + lo`, exactly (Dekker's product through Veltkamp's split:
/// only `+ - *`, so no FMA is needed and every path rounds alike).
#[inline(always)]
fn square_exact(a: f64) -> (f64, f64) {
    let c = SPLIT * a;
    let ah = c - (c - a);
    let al = a - ah;
    let p = a * a;
    (p, ((ah * ah - p) + 2.0 * ah * al) + al * al)
}

/// hypot(x, y) for finite x, y with max(|x|, |y|) ≥ [`HYPOT_TINY`]; garbage elsewhere.
///
/// x² + y² is formed in double-double (exact squares, Knuth's two-sum), `h = √hi` is one
/// correctly rounded square root, and one Newton step on the double-double remainder
/// `(x² + y²) − h²` corrects it: the result is within a hair over ½ ulp of the true value, as
/// libm's hypot is, so they differ by at most 1 ulp (usually not at all).
#[inline(always)]
fn hypot_lane(x: f64, y: f64) -> f64 {
    let (ax, ay) = (x.abs(), y.abs());
    let a = if ax >= ay { ax } else { ay };
    let b = if ax >= ay { ay } else { ax };
    // Powers of two: scaling is exact (a part that becomes subnormal is < 2^-800 of the other).
    let scale = if a > HYPOT_BIG {
        TWO_M600
    } else if a < HYPOT_SMALL {
        TWO_600
    } else {
        1.0
    };
    let unscale = if a > HYPOT_BIG {
        TWO_600
    } else if a < HYPOT_SMALL {
        TWO_M600
    } else {
        1.0
    };
    let (a, b) = (a * scale, b * scale);
    let (aa, aal) = square_exact(a);
    let (bb, bbl) = square_exact(b);
    // Two-sum of the squares (aa ≥ bb): s + e = aa + bb exactly.
    let s = aa + bb;
    let e = bb - (s - aa);
    let lo = (e + aal) + bbl;
    let h = (s + lo).sqrt();
    // s − h² in double-double: s − hh is exact (Sterbenz: hh is within a few ulps of s).
    let (hh, hhl) = square_exact(h);
    let r = ((s - hh) - hhl) + lo;
    (h + r / (2.0 * h)) * unscale
}

// ---- tile loops -----------------------------------------------------------------------------

/// Recomputes with `exact` every element the lane function does not cover (`!covered(x)`). The
/// check is a vectorized fold; the scalar pass only runs for tiles that hold such an element.
///
/// Loops here are plain `while` loops over indices: iterator adapters (`zip`, `fold`) are generic
/// functions that may stay out of line, compiled without the caller's target features, and then
/// run at the baseline instruction set.
#[inline(always)]
fn fix_up(x: &[f64], o: &mut [f64], covered: impl Fn(f64) -> bool, exact: impl Fn(f64) -> f64) {
    let n = x.len();
    let o = &mut o[..n];
    let mut any = false;
    let mut i = 0;
    while i < n {
        any |= !covered(x[i]);
        i += 1;
    }
    if any {
        let mut i = 0;
        while i < n {
            if !covered(x[i]) {
                o[i] = exact(x[i]);
            }
            i += 1;
        }
    }
}

/// `o[i] = lane(x[i])` over the tile.
#[inline(always)]
fn map_lanes(x: &[f64], o: &mut [f64], lane: impl Fn(f64) -> f64) {
    let n = x.len();
    let o = &mut o[..n];
    let mut i = 0;
    while i < n {
        o[i] = lane(x[i]);
        i += 1;
    }
}

#[inline(always)]
fn sin_body(x: &[f64], o: &mut [f64]) {
    map_lanes(x, o, |v| sincos_lane(v, false));
    // Tiny arguments (sin x = x, keeping -0) and the rest outside the reduction's range.
    fix_up(
        x,
        o,
        |v| v.abs() >= 1e-300 && v.abs() < SINCOS_LIMIT,
        f64::sin,
    );
}

#[inline(always)]
fn cos_body(x: &[f64], o: &mut [f64]) {
    map_lanes(x, o, |v| sincos_lane(v, true));
    fix_up(x, o, |v| v.abs() < SINCOS_LIMIT, f64::cos);
}

#[inline(always)]
fn exp_body(x: &[f64], o: &mut [f64]) {
    map_lanes(x, o, exp_lane);
    fix_up(x, o, |v| v.abs() < EXP_LIMIT, f64::exp);
}

#[inline(always)]
fn ln_body(x: &[f64], o: &mut [f64]) {
    map_lanes(x, o, ln_lane);
    fix_up(x, o, |v| v >= f64::MIN_POSITIVE && v <= f64::MAX, f64::ln);
}

#[inline(always)]
fn hypot_covered(x: f64, y: f64) -> bool {
    let a = x.abs().max(y.abs());
    // NaN fails both comparisons: NaN and ±inf parts (hypot(inf, nan) is inf) go to libm.
    a >= HYPOT_TINY && a <= f64::MAX
}

#[inline(always)]
fn hypot_body(x: &[f64], y: &[f64], o: &mut [f64]) {
    let n = x.len();
    let (y, o) = (&y[..n], &mut o[..n]);
    let mut any = false;
    let mut i = 0;
    while i < n {
        o[i] = hypot_lane(x[i], y[i]);
        any |= !hypot_covered(x[i], y[i]);
        i += 1;
    }
    if any {
        let mut i = 0;
        while i < n {
            if !hypot_covered(x[i], y[i]) {
                o[i] = x[i].hypot(y[i]);
            }
            i += 1;
        }
    }
}

#[inline(always)]
fn abs_c128_body(z: &[Complex64], o: &mut [f64]) {
    let n = z.len();
    let o = &mut o[..n];
    let mut any = false;
    let mut i = 0;
    while i < n {
        let (x, y) = (z[i].re, z[i].im);
        o[i] = hypot_lane(x, y);
        any |= !hypot_covered(x, y);
        i += 1;
    }
    if any {
        let mut i = 0;
        while i < n {
            let (x, y) = (z[i].re, z[i].im);
            if !hypot_covered(x, y) {
                o[i] = x.hypot(y);
            }
            i += 1;
        }
    }
}

multiversion! {
    /// `o[i] = sin(x[i])` (`o` at least as long as `x`); the same bits on every CPU.
    pub fn sin_f64(x: &[f64], o: &mut [f64]) = sin_body;
}
multiversion! {
    /// `o[i] = cos(x[i])`; the same bits on every CPU.
    pub fn cos_f64(x: &[f64], o: &mut [f64]) = cos_body;
}
multiversion! {
    /// `o[i] = exp(x[i])`; the same bits on every CPU.
    pub fn exp_f64(x: &[f64], o: &mut [f64]) = exp_body;
}
multiversion! {
    /// `o[i] = ln(x[i])`; the same bits on every CPU.
    pub fn ln_f64(x: &[f64], o: &mut [f64]) = ln_body;
}

multiversion! {
    /// `o[i] = hypot(x[i], y[i])` (`y` and `o` at least as long as `x`); the same bits on every
    /// CPU, within 1 ulp of libm's.
    pub fn hypot_f64(x: &[f64], y: &[f64], o: &mut [f64]) = hypot_body;
}
multiversion! {
    /// `o[i] = |z[i]|` (numpy's absolute of complex128: hypot of the parts, no overflow); the
    /// same bits on every CPU, within 1 ulp of libm's hypot.
    pub fn abs_c128(z: &[Complex64], o: &mut [f64]) = abs_c128_body;
}

/// Applies an f64 tile function to f32 values through an f64 scratch, rounding once at the end.
pub fn via_f64(f: fn(&[f64], &mut [f64]), x: &[f32], o: &mut [f32]) {
    const STEP: usize = 256;
    let (mut a, mut b) = ([0.0f64; STEP], [0.0f64; STEP]);
    for (xs, os) in x.chunks(STEP).zip(o.chunks_mut(STEP)) {
        let n = xs.len();
        a[..n].iter_mut().zip(xs).for_each(|(a, &v)| *a = v as f64);
        f(&a[..n], &mut b[..n]);
        os.iter_mut().zip(&b[..n]).for_each(|(o, &v)| *o = v as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite values of the same sign (or both
    /// zero); NaNs must agree.
    fn ulps(a: f64, b: f64) -> u64 {
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() {
                0
            } else {
                u64::MAX
            };
        }
        if a == b {
            return 0;
        }
        let key = |v: f64| {
            let b = v.to_bits() as i64;
            if b < 0 { i64::MIN - b } else { b }
        };
        key(a).abs_diff(key(b))
    }

    /// A fixed pseudo-random stream (SplitMix64), independent of the engine's generator.
    fn stream(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    fn edge_cases() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::from_bits(0x000F_FFFF_FFFF_FFFF),
            1e-300,
            1e-310,
            f64::EPSILON,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MAX,
            f64::MIN,
            1.0,
            -1.0,
            0.5,
            2.0,
            std::f64::consts::PI,
            std::f64::consts::FRAC_PI_2,
            std::f64::consts::FRAC_PI_4,
            -std::f64::consts::FRAC_PI_4,
            SINCOS_LIMIT,
            -SINCOS_LIMIT,
            SINCOS_LIMIT * 0.999_999,
            1e6,
            1e7,
            1e22,
            1e300,
            -1e300,
            EXP_LIMIT,
            -EXP_LIMIT,
            EXP_LIMIT - 1e-9,
            709.78,
            709.79,
            -745.0,
            -745.2,
            -800.0,
            1e-20,
            -1e-20,
        ];
        // Multiples of π/2 and their neighbours: the reduction's hardest cases.
        for k in [1.0, 2.0, 3.0, 4.0, 100.0, 1e3, 1e4, 1e5, 1e6, 6_381_956.0] {
            let m = k * std::f64::consts::FRAC_PI_2;
            for d in -3i64..=3 {
                let b = f64::from_bits((m.to_bits() as i64 + d) as u64);
                v.push(b);
                v.push(-b);
            }
        }
        v
    }

    /// Points spread over every magnitude from subnormal to `max`, both signs.
    fn points(n: usize, max_exp: i32, seed: u64) -> Vec<f64> {
        let mut r = stream(seed);
        (0..n)
            .map(|_| {
                let w = r();
                let e = (w % (max_exp as u64 + 1100)) as i32 - 1100;
                let m = 1.0 + (r() >> 12) as f64 / (1u64 << 52) as f64;
                let v = m * 2f64.powi(e);
                if w >> 63 == 1 { -v } else { v }
            })
            .collect()
    }

    fn check(
        name: &str,
        ours: fn(&[f64], &mut [f64]),
        body: fn(&[f64], &mut [f64]),
        exact: fn(f64) -> f64,
        inputs: &[f64],
    ) {
        let mut got = vec![0.0; inputs.len()];
        let mut portable = vec![0.0; inputs.len()];
        for (xs, (g, p)) in inputs
            .chunks(1000)
            .zip(got.chunks_mut(1000).zip(portable.chunks_mut(1000)))
        {
            ours(xs, g);
            body(xs, p);
        }
        let mut worst = (0u64, 0.0);
        for (i, &x) in inputs.iter().enumerate() {
            assert_eq!(
                got[i].to_bits(),
                portable[i].to_bits(),
                "{name}({x:e}): the dispatched path and the portable one differ"
            );
            let want = exact(x);
            let u = ulps(got[i], want);
            if u > worst.0 {
                worst = (u, x);
            }
            // Zeros, infinities and NaN exactly as libm gives them (with their signs).
            if want == 0.0 || !want.is_finite() {
                assert!(
                    got[i].to_bits() == want.to_bits() || (want.is_nan() && got[i].is_nan()),
                    "{name}({x:e}) = {} not {want}",
                    got[i]
                );
            }
        }
        assert!(
            worst.0 <= 1,
            "{name}: {} ulps from libm at {:e}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn sin_cos_within_an_ulp_of_libm() {
        let mut x = edge_cases();
        x.extend(points(1_000_000, 1030, 1));
        // Dense in the range the lane function covers, and over [0, 1) as the benchmark uses.
        let mut r = stream(2);
        x.extend((0..1_000_000).map(|_| ((r() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2e4));
        x.extend((0..200_000).map(|_| (r() >> 11) as f64 / (1u64 << 53) as f64));
        check("sin", sin_f64, sin_body, f64::sin, &x);
        check("cos", cos_f64, cos_body, f64::cos, &x);
    }

    #[test]
    fn exp_ln_within_an_ulp_of_libm() {
        let mut x = edge_cases();
        x.extend(points(1_000_000, 12, 3));
        let mut r = stream(4);
        x.extend((0..1_000_000).map(|_| ((r() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1500.0));
        check("exp", exp_f64, exp_body, f64::exp, &x);
        let mut y = edge_cases();
        y.extend(points(2_000_000, 1030, 5));
        y.extend((0..200_000).map(|_| 0.5 + (r() >> 11) as f64 / (1u64 << 53) as f64));
        check("ln", ln_f64, ln_body, f64::ln, &y);
    }

    #[test]
    fn hypot_and_complex_abs_within_an_ulp_of_libm() {
        let edges = edge_cases();
        let mut x = Vec::new();
        let mut y = Vec::new();
        // Every pair of edge cases: zeros, subnormals, the scaling thresholds, ±inf with NaN.
        let mut e = edges.clone();
        e.extend([
            HYPOT_BIG,
            HYPOT_SMALL,
            HYPOT_TINY,
            f64::from_bits(HYPOT_BIG.to_bits() + 1),
            f64::from_bits(HYPOT_SMALL.to_bits() - 1),
            f64::from_bits(HYPOT_TINY.to_bits() - 1),
            f64::MAX / std::f64::consts::SQRT_2,
            3.0,
            4.0,
        ]);
        for &a in &e {
            for &b in &e {
                x.push(a);
                y.push(b);
            }
        }
        // Parts of every magnitude, independent and of close magnitudes (where rounding is
        // hardest), and the FFT benchmark's range.
        let p = points(1_000_000, 1030, 6);
        let q = points(1_000_000, 1030, 7);
        x.extend(&p);
        y.extend(&q);
        let mut r = stream(8);
        for &v in &p[..500_000] {
            let f = 0.25 + 2.0 * ((r() >> 11) as f64 / (1u64 << 53) as f64);
            x.push(v);
            y.push(v * f);
        }
        x.extend((0..200_000).map(|_| ((r() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e4));
        y.extend((0..200_000).map(|_| ((r() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e4));

        let z: Vec<Complex64> = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| Complex64::new(a, b))
            .collect();
        let n = x.len();
        let (mut got, mut portable, mut abs, mut abs_portable) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for s in (0..n).step_by(1000) {
            let t = (s + 1000).min(n);
            hypot_f64(&x[s..t], &y[s..t], &mut got[s..t]);
            hypot_body(&x[s..t], &y[s..t], &mut portable[s..t]);
            abs_c128(&z[s..t], &mut abs[s..t]);
            abs_c128_body(&z[s..t], &mut abs_portable[s..t]);
        }
        let mut worst = (0u64, 0.0, 0.0);
        let mut differ = 0usize;
        for i in 0..n {
            let (a, b) = (x[i], y[i]);
            for v in [portable[i], abs[i], abs_portable[i]] {
                assert_eq!(
                    got[i].to_bits(),
                    v.to_bits(),
                    "hypot({a:e}, {b:e}): the paths (or hypot and abs) differ"
                );
            }
            let want = a.hypot(b);
            let u = ulps(got[i], want);
            differ += (u != 0) as usize;
            if u > worst.0 {
                worst = (u, a, b);
            }
            if want == 0.0 || !want.is_finite() {
                assert!(
                    got[i].to_bits() == want.to_bits() || (want.is_nan() && got[i].is_nan()),
                    "hypot({a:e}, {b:e}) = {} not {want}",
                    got[i]
                );
            }
        }
        assert!(
            worst.0 <= 1,
            "hypot: {} ulps from libm at ({:e}, {:e})",
            worst.0,
            worst.1,
            worst.2
        );
        // Both are within a hair over half an ulp of the true value: they differ only where the
        // true value is within a hair of a rounding boundary, a small minority of points.
        assert!(
            differ < n / 100,
            "{differ} of {n} differ from libm by an ulp"
        );
    }

    #[test]
    fn hypot_known_values() {
        let x = [
            3.0,
            -5.0,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NAN,
            f64::MAX,
            1e-320,
            1e300,
        ];
        let y = [
            4.0,
            12.0,
            -0.0,
            0.0,
            f64::NAN,
            1.0,
            f64::MAX,
            1e-320,
            1e-300,
        ];
        let mut o = [0.0; 9];
        hypot_f64(&x, &y, &mut o);
        assert_eq!(&o[..4], &[5.0, 13.0, 0.0, 0.0]);
        assert_eq!(o[3].to_bits(), 0.0f64.to_bits());
        // C99: hypot(±inf, NaN) is +inf; NaN otherwise.
        assert_eq!(o[4], f64::INFINITY);
        assert!(o[5].is_nan());
        assert_eq!(o[6], f64::INFINITY);
        assert_eq!(o[7], 1e-320f64.hypot(1e-320));
        assert_eq!(o[8], 1e300);
        let mut a = [0.0; 2];
        abs_c128(
            &[Complex64::new(-3.0, 4.0), Complex64::new(1e308, 1e308)],
            &mut a,
        );
        assert_eq!(a[0], 5.0);
        assert_eq!(a[1], 1e308f64.hypot(1e308));
        assert!(a[1].is_finite());
    }

    #[test]
    fn known_values() {
        let mut o = [0.0; 6];
        sin_f64(
            &[
                0.0,
                -0.0,
                std::f64::consts::FRAC_PI_2,
                1e300,
                f64::INFINITY,
                f64::NAN,
            ],
            &mut o,
        );
        assert_eq!(o[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(o[1].to_bits(), (-0.0f64).to_bits());
        assert_eq!(o[2], 1.0);
        assert_eq!(o[3], 1e300f64.sin());
        assert!(o[4].is_nan() && o[5].is_nan());
        exp_f64(
            &[0.0, 1.0, -1000.0, 1000.0, f64::NEG_INFINITY, f64::NAN],
            &mut o,
        );
        // fdlibm's exp is within an ulp, not correctly rounded: e comes out one ulp high.
        assert_eq!(ulps(o[1], std::f64::consts::E), 1);
        assert_eq!([o[0], o[2], o[3], o[4]], [1.0, 0.0, f64::INFINITY, 0.0]);
        assert!(o[5].is_nan());
        ln_f64(
            &[1.0, std::f64::consts::E, 0.0, -1.0, f64::INFINITY, 1e-310],
            &mut o,
        );
        assert_eq!(o[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(o[1], 1.0);
        assert_eq!(o[2], f64::NEG_INFINITY);
        assert!(o[3].is_nan());
        assert_eq!(o[4], f64::INFINITY);
        assert_eq!(o[5], 1e-310f64.ln());
    }

    #[test]
    fn f32_rounds_the_f64_result() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.37 - 100.0).collect();
        let mut o = vec![0.0f32; 1000];
        via_f64(sin_f64, &x, &mut o);
        for (&x, &o) in x.iter().zip(&o) {
            assert_eq!(o, (x as f64).sin() as f32, "{x}");
        }
    }
}
