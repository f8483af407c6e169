//! Counter-based random numbers for `random` arrays: this module owns the generator, its key
//! derivation, the conversions to uniform and standard-normal values, and the SIMD kernels that fill
//! chunks and that sum uniform values without storing them.
//!
//! Element `i` (the global flat C-order index in the whole array) of an array with key
//! `RandomKey::new(seed, stream)` depends only on `(seed, stream, i)`, so every chunking, thread count
//! and machine produces the same values; a chunk generates exactly the range of flat indices it needs.
//!
//! **Generator.** `mix(z)` is the SplitMix64 finalizer: `z = (z ^ z >> 30) * M1;
//! z = (z ^ z >> 27) * M2; z ^ z >> 31`, with `M1 = 0xBF58476D1CE4E5B9`, `M2 = 0x94D049BB133111EB`
//! and all arithmetic wrapping modulo 2^64. The key is two words,
//! `k0 = mix(seed ^ mix(stream + 0x243F6A8885A308D3))` and
//! `k1 = mix(stream ^ mix(seed + 0xB7E151628AED2A6B))` (fractional bits of π and e); for a fixed
//! stream both words are bijections of the seed, and for a fixed seed both are bijections of the
//! stream, so keys differing in one argument differ in both words. The raw 64 bits of element `i` are
//! `z = i * G + k0` with `G = 0x9E3779B97F4A7C15`, then `z = (z ^ z >> 30) * M1; z ^= k1;
//! z = (z ^ z >> 27) * M2; bits = z ^ z >> 31`. Injecting `k1` between the multiplications is what
//! keeps two keys from being index-shifted copies of one sequence (which `k0` alone, or
//! `seed ^ index`, would make them).
//!
//! **Uniform.** f64: `from_bits(bits >> 12 | 0x3FF0000000000000) - 1.0`, the multiples of 2^-52 in
//! [0, 1); f32: `from_bits((bits >> 41) as u32 | 0x3F800000) - 1.0`, the multiples of 2^-23 in
//! [0, 1). Both conversions are exact.
//!
//! **Standard normal.** Box–Muller on two sub-keys derived from the key,
//! `a = (mix(k0 ^ 0x6A09E667F3BCC908), mix(k1 + 0x6A09E667F3BCC908))` and the same with
//! `0xBB67AE8584CAA73B` for `b` (fractional bits of √2 and √3): with `u1 = 1 - uniform_f64` of `a`'s
//! bits (in (0, 1], so the log is finite) and `u2 = uniform_f64` of `b`'s bits, element `i` is
//! `sqrt(-2 ln u1) * cos(2π u2)`. Neither sub-key is the key itself, so a key's normal array is
//! independent of its uniform array. `ln` and `cos` are evaluated here with only `+ - * /`, `sqrt`
//! and integer operations (no FMA, no libm), all correctly rounded IEEE operations, so the normals are
//! bit-identical on every CPU path and platform with IEEE f64 arithmetic — the platform libm may pick
//! different code per CPU, and scalar libm calls would not vectorize. `cos` is reduced exactly in
//! integers; both functions are accurate to a few ulp. The f32 normal is the f64 normal rounded to
//! f32.
//!
//! **Kernels.** Each kernel is one `#[inline(always)]` body compiled three times — for AVX-512
//! (F+DQ+VL, whose `vpmullq` is a native 64-bit multiply), for AVX2, and for the baseline target —
//! and chosen at run time by CPU detection that runs once and is cached; nothing needs
//! `target-cpu=native`. A body is a branch-free loop over a counter `i * G + k0` that steps by
//! adding `G`, which LLVM vectorizes (eight u64 lanes per AVX-512 register). Every path performs the
//! same integer and correctly rounded float operations per element, so all paths give the same bits.
//! `sum_uniform_f64` adds the integers `bits >> 12` exactly and scales once, so its result does not
//! depend on the path or on how the vectorizer splits the accumulator. Indices wrap modulo 2^64.

use std::sync::atomic::{AtomicU8, Ordering};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const M1: u64 = 0xBF58_476D_1CE4_E5B9;
const M2: u64 = 0x94D0_49BB_1331_11EB;

const FRAC_PI: u64 = 0x243F_6A88_85A3_08D3;
const FRAC_E: u64 = 0xB7E1_5162_8AED_2A6B;
const FRAC_SQRT2: u64 = 0x6A09_E667_F3BC_C908;
const FRAC_SQRT3: u64 = 0xBB67_AE85_84CA_A73B;

/// Spacing of the uniform f64 values: the value of one unit of `bits >> 12`.
const UNIT_F64: f64 = 1.0 / (1u64 << 52) as f64;
/// Elements summed in one u64 before moving the partial sum to a u128: each adds less than 2^52, so
/// 2^12 of them cannot overflow.
const SUM_BLOCK: u64 = 1 << 12;

/// The SplitMix64 finalizer, a bijection of u64 with good avalanche.
#[inline(always)]
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(M1);
    z = (z ^ (z >> 27)).wrapping_mul(M2);
    z ^ (z >> 31)
}

/// Which array a kernel is generating: the seed of the array and a stream number separating arrays
/// that share a seed (see the module documentation for the derivation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RandomKey {
    k0: u64,
    k1: u64,
}

impl RandomKey {
    /// The key of the array with this seed and stream.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self {
            k0: mix64(seed ^ mix64(stream.wrapping_add(FRAC_PI))),
            k1: mix64(stream ^ mix64(seed.wrapping_add(FRAC_E))),
        }
    }

    /// An independent key for one of the sub-streams a distribution needs besides the key's own.
    fn derive(self, salt: u64) -> Self {
        Self {
            k0: mix64(self.k0 ^ salt),
            k1: mix64(self.k1.wrapping_add(salt)),
        }
    }

    /// The stream of raw bits, in the form the kernels evaluate fastest.
    #[inline(always)]
    fn stream(self) -> Stream {
        Stream {
            k0: self.k0,
            k1_mixed: self.k1 ^ (self.k1 >> 27),
        }
    }

    #[cfg(test)]
    fn bits(self, index: u64) -> u64 {
        let stream = self.stream();
        stream.bits(stream.counter(index))
    }
}

/// A key rewritten for speed: `(b ^ k1) ^ ((b ^ k1) >> 27)` equals `b ^ (b >> 27) ^ k1_mixed`, one
/// three-input xor instead of two dependent xors, because shifts distribute over xor.
#[derive(Clone, Copy)]
struct Stream {
    k0: u64,
    k1_mixed: u64,
}

impl Stream {
    /// `index * GAMMA + k0`: the counter steps by `GAMMA`, so the loops add instead of multiplying.
    #[inline(always)]
    fn counter(self, index: u64) -> u64 {
        index.wrapping_mul(GAMMA).wrapping_add(self.k0)
    }

    #[inline(always)]
    fn bits(self, counter: u64) -> u64 {
        let mut z = (counter ^ (counter >> 30)).wrapping_mul(M1);
        z = (z ^ (z >> 27) ^ self.k1_mixed).wrapping_mul(M2);
        z ^ (z >> 31)
    }
}

#[inline(always)]
fn unit_f64(bits: u64) -> f64 {
    f64::from_bits((bits >> 12) | 0x3FF0_0000_0000_0000) - 1.0
}

#[inline(always)]
fn unit_f32(bits: u64) -> f32 {
    f32::from_bits(((bits >> 41) as u32) | 0x3F80_0000) - 1.0
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

/// Natural log of `x` in (0, 1] (never zero, infinite, NaN or subnormal here).
#[inline(always)]
fn ln_unit(x: f64) -> f64 {
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

/// (-1)^k / (2k+1)! for k = 1..=10: sin x = x + x³·P(x²), accurate to 2e-18 for |x| ≤ π/2.
const SIN_SERIES: [f64; 10] = [
    -1.0 / 6.0,
    1.0 / 120.0,
    -1.0 / 5_040.0,
    1.0 / 362_880.0,
    -1.0 / 39_916_800.0,
    1.0 / 6_227_020_800.0,
    -1.0 / 1_307_674_368_000.0,
    1.0 / 355_687_428_096_000.0,
    -1.0 / 121_645_100_408_832_000.0,
    1.0 / 51_090_942_171_709_440_000.0,
];

/// `v as f64` for |v| < 2^51, exactly, by placing `v` in the mantissa of 1.5·2^52. Unlike `as`, this
/// vectorizes without AVX-512DQ.
#[inline(always)]
fn small_int_to_f64(v: i64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    f64::from_bits(MAGIC.to_bits().wrapping_add(v as u64)) - MAGIC
}

/// Radians per unit of the remainder `cos_turns` reduces to (a half turn is 2^51 units).
const RADIANS_PER_UNIT: f64 = std::f64::consts::PI / (1u64 << 51) as f64;

/// cos(2π·j/2^52) for a 52-bit `j`, i.e. cos(2π·u) of the uniform f64 `u` with those mantissa bits.
#[inline(always)]
fn cos_turns(j: u64) -> f64 {
    // cos(2πu) = sin(2π(u + ¼)). Reducing in integers is exact: the nearest half turn h in 0..=2 and
    // a remainder within ±¼ turn, where sin(hπ + x) = (-1)^h sin x. One polynomial and no select.
    let turns = (j + (1 << 50)) & ((1 << 52) - 1);
    let half = (turns + (1 << 50)) >> 51;
    let x = small_int_to_f64(turns as i64 - (half << 51) as i64) * RADIANS_PER_UNIT;
    let sin = x + x * (x * x) * horner(x * x, &SIN_SERIES);
    f64::from_bits(sin.to_bits() ^ (half << 63))
}

/// The standard normal drawn from the radius and angle streams' bits of one element.
#[inline(always)]
fn standard_normal(radius_bits: u64, angle_bits: u64) -> f64 {
    let u1 = 1.0 - unit_f64(radius_bits);
    (-2.0 * ln_unit(u1)).sqrt() * cos_turns(angle_bits >> 12)
}

fn normal_streams(key: RandomKey) -> (Stream, Stream) {
    (
        key.derive(FRAC_SQRT2).stream(),
        key.derive(FRAC_SQRT3).stream(),
    )
}

/// `out[j] = elem(stream.counter(start + j·step))`. A plain loop over a linear counter is what LLVM's
/// loop vectorizer handles best (explicit lane arrays get vectorized across steps, with scatters);
/// the counter of index `i + step` is the counter of `i` plus `step·GAMMA`, so any step costs the same.
#[inline(always)]
fn fill_counters<T>(stream: Stream, start: u64, step: u64, out: &mut [T], elem: impl Fn(u64) -> T) {
    let mut counter = stream.counter(start);
    let delta = step.wrapping_mul(GAMMA);
    for o in out {
        *o = elem(counter);
        counter = counter.wrapping_add(delta);
    }
}

/// Instruction sets a kernel can be compiled for, ordered by preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SimdLevel {
    Portable = 1,
    #[cfg(target_arch = "x86_64")]
    Avx2 = 2,
    #[cfg(target_arch = "x86_64")]
    Avx512 = 3,
}

impl SimdLevel {
    #[cfg(target_arch = "x86_64")]
    const BEST: SimdLevel = SimdLevel::Avx512;
    #[cfg(not(target_arch = "x86_64"))]
    const BEST: SimdLevel = SimdLevel::Portable;

    /// The best level the running CPU supports, detected on first use.
    fn detected() -> SimdLevel {
        static CACHE: AtomicU8 = AtomicU8::new(0);
        match CACHE.load(Ordering::Relaxed) {
            1 => SimdLevel::Portable,
            #[cfg(target_arch = "x86_64")]
            2 => SimdLevel::Avx2,
            #[cfg(target_arch = "x86_64")]
            3 => SimdLevel::Avx512,
            _ => {
                let level = Self::detect();
                CACHE.store(level as u8, Ordering::Relaxed);
                level
            }
        }
    }

    fn detect() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
            {
                return SimdLevel::Avx512;
            }
            if is_x86_feature_detected!("avx2") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Portable
    }
}

/// Defines `fn $name(max_level: SimdLevel, args..)` running `$body` compiled for the best level that
/// is both at most `max_level` and supported by the CPU. Capping rather than trusting the argument
/// keeps the function safe; tests pass lower levels to compare paths.
macro_rules! multiversion {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        fn $name(max_level: SimdLevel, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            let level = max_level.min(SimdLevel::detected());
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }

                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }

                match level {
                    // SAFETY: `detected` only reports features the running CPU has.
                    SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    SimdLevel::Portable => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = level;
            body($($arg),*)
        }
    };
}

multiversion! {
    fn uniform_f64_at(stream: Stream, start: u64, step: u64, out: &mut [f64]) {
        fill_counters(stream, start, step, out, |c| unit_f64(stream.bits(c)));
    }
}

multiversion! {
    fn uniform_f32_at(stream: Stream, start: u64, step: u64, out: &mut [f32]) {
        fill_counters(stream, start, step, out, |c| unit_f32(stream.bits(c)));
    }
}

multiversion! {
    fn normal_f64_at(radius: Stream, angle: Stream, start: u64, step: u64, out: &mut [f64]) {
        // Both sub-streams advance by step·GAMMA per element, so their counters differ by a constant.
        let offset = angle.k0.wrapping_sub(radius.k0);
        fill_counters(radius, start, step, out, |c| {
            standard_normal(radius.bits(c), angle.bits(c.wrapping_add(offset)))
        });
    }
}

multiversion! {
    fn normal_f32_at(radius: Stream, angle: Stream, start: u64, step: u64, out: &mut [f32]) {
        let offset = angle.k0.wrapping_sub(radius.k0);
        fill_counters(radius, start, step, out, |c| {
            standard_normal(radius.bits(c), angle.bits(c.wrapping_add(offset))) as f32
        });
    }
}

multiversion! {
    /// Sum of `bits >> 12` over elements `start + k·step` for `k` in `0..n`: the uniform values in
    /// units of 2^-52.
    /// Integer addition is associative, so the result is exact and the same on every path however
    /// the vectorizer splits the accumulator.
    fn mantissa_sum_at(stream: Stream, start: u64, step: u64, n: u64) -> u128 {
        let mut counter = stream.counter(start);
        let delta = step.wrapping_mul(GAMMA);
        let mut total = 0u128;
        let mut left = n;
        while left > 0 {
            let block = left.min(SUM_BLOCK);
            let mut acc = 0u64;
            for _ in 0..block {
                acc += stream.bits(counter) >> 12;
                counter = counter.wrapping_add(delta);
            }
            total += u128::from(acc);
            left -= block;
        }
        total
    }
}

/// out[j] = uniform value of element start + j·step (step 1: a contiguous run; another step: a run
/// along an outer axis, for a transposed array).
pub fn fill_uniform_f64(key: RandomKey, start: u64, step: u64, out: &mut [f64]) {
    uniform_f64_at(SimdLevel::BEST, key.stream(), start, step, out);
}

/// out[j] = uniform f32 value of element start + j·step (23-bit resolution, not the f64 value
/// rounded).
pub fn fill_uniform_f32(key: RandomKey, start: u64, step: u64, out: &mut [f32]) {
    uniform_f32_at(SimdLevel::BEST, key.stream(), start, step, out);
}

/// out[j] = standard normal value of element start + j·step.
pub fn fill_standard_normal_f64(key: RandomKey, start: u64, step: u64, out: &mut [f64]) {
    let (radius, angle) = normal_streams(key);
    normal_f64_at(SimdLevel::BEST, radius, angle, start, step, out);
}

/// out[j] = standard normal value of element start + j·step, the f64 value rounded to f32.
pub fn fill_standard_normal_f32(key: RandomKey, start: u64, step: u64, out: &mut [f32]) {
    let (radius, angle) = normal_streams(key);
    normal_f32_at(SimdLevel::BEST, radius, angle, start, step, out);
}

/// Sum of the uniform values of elements start + k·step for k in 0..n, without storing them: the
/// fused kernel for `random(..).sum()/mean()`. The sum is computed exactly and rounded once (correctly rounded), so it
/// is the same on every CPU path and at least as accurate as any summation of the filled values.
/// Adding the results for several ranges rounds once per range.
pub fn sum_uniform_f64(key: RandomKey, start: u64, step: u64, n: u64) -> f64 {
    // Exact: the total is below 2^116, and scaling by a power of two does not round.
    mantissa_sum_at(SimdLevel::BEST, key.stream(), start, step, n) as f64 * UNIT_F64
}

/// Elements summed between two cancellation checkpoints of [`sum_uniform_f64_checked`]: about a
/// millisecond of work, so that one huge row (a whole 10^11-element chunk reduced at once) stops soon
/// after it is cancelled.
const SUM_SEGMENT: u64 = 1 << 20;

/// [`sum_uniform_f64`] in segments with a [`checkpoint`](crate::exec::cancel::checkpoint) between
/// them. The segments' integer sums add up to the same total, so the result is bit-identical.
pub fn sum_uniform_f64_checked(
    key: RandomKey,
    start: u64,
    step: u64,
    n: u64,
) -> crate::error::Result<f64> {
    let stream = key.stream();
    let mut total = 0u128;
    let mut at = start;
    let mut left = n;
    loop {
        let len = left.min(SUM_SEGMENT);
        total += mantissa_sum_at(SimdLevel::BEST, stream, at, step, len);
        left -= len;
        if left == 0 {
            break;
        }
        at = at.wrapping_add(len.wrapping_mul(step));
        crate::exec::cancel::checkpoint()?;
    }
    Ok(total as f64 * UNIT_F64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 1_000_000;

    fn uniform(seed: u64, stream: u64, start: u64, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        fill_uniform_f64(RandomKey::new(seed, stream), start, 1, &mut out);
        out
    }

    fn normal(seed: u64, stream: u64, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        fill_standard_normal_f64(RandomKey::new(seed, stream), 0, 1, &mut out);
        out
    }

    fn mean(x: &[f64]) -> f64 {
        x.iter().sum::<f64>() / x.len() as f64
    }

    fn variance(x: &[f64]) -> f64 {
        let m = mean(x);
        x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
    }

    fn correlation(x: &[f64], y: &[f64]) -> f64 {
        let (mx, my) = (mean(x), mean(y));
        let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        cov / x.len() as f64 / (variance(x) * variance(y)).sqrt()
    }

    fn chi_square_64(x: &[f64]) -> f64 {
        let mut bins = [0u64; 64];
        for &v in x {
            bins[(v * 64.0) as usize] += 1;
        }
        let expected = x.len() as f64 / 64.0;
        bins.iter()
            .map(|&b| (b as f64 - expected).powi(2) / expected)
            .sum()
    }

    /// Both tails of chi-square with 63 degrees of freedom at p ≈ 1e-4 (Wilson–Hilferty).
    fn chi_square_passes(x: &[f64]) -> bool {
        (29.0..114.0).contains(&chi_square_64(x))
    }

    /// Lengths around the vector width (8 lanes, unrolled 4×) and the sum block, and starts that
    /// are not aligned to either or that wrap around.
    const LENGTHS: [usize; 12] = [0, 1, 7, 8, 9, 31, 33, 1003, 4095, 4096, 4097, 3 * 4096 + 77];
    const STARTS: [u64; 4] = [0, 3, 1 << 40, u64::MAX - 5];

    fn levels() -> Vec<SimdLevel> {
        let mut all = vec![SimdLevel::Portable];
        #[cfg(target_arch = "x86_64")]
        all.extend([SimdLevel::Avx2, SimdLevel::Avx512]);
        all.retain(|&l| l <= SimdLevel::detected());
        all
    }

    #[test]
    fn bits_follow_the_documented_formula() {
        let (seed, stream) = (12_345u64, 6u64);
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let k0 = mix(seed ^ mix(stream.wrapping_add(0x243F_6A88_85A3_08D3)));
        let k1 = mix(stream ^ mix(seed.wrapping_add(0xB7E1_5162_8AED_2A6B)));
        let key = RandomKey::new(seed, stream);
        let mut out = vec![0.0; 100];
        fill_uniform_f64(key, 1_000, 1, &mut out);
        for (j, &v) in out.iter().enumerate() {
            let i = 1_000 + j as u64;
            let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k0);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ k1;
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            assert_eq!(key.bits(i), z);
            assert_eq!(v, (z >> 12) as f64 / (1u64 << 52) as f64);
        }
    }

    #[test]
    fn stream_is_pinned() {
        // Saved arrays and results must not change between versions; this catches any edit of the
        // generator or key derivation that the formula test above was edited along with.
        let key = RandomKey::new(0, 0);
        let got: Vec<u64> = (0..3).map(|i| key.bits(i)).collect();
        let pinned = [
            17_471_495_767_779_612_299,
            9_614_813_627_060_653_440,
            5_015_872_162_902_973_578,
        ];
        assert_eq!(got, pinned);
    }

    #[test]
    fn conversion_extremes() {
        assert_eq!(unit_f64(0), 0.0);
        assert_eq!(unit_f64(u64::MAX), 1.0 - f64::EPSILON);
        assert_eq!(unit_f32(0), 0.0);
        assert_eq!(unit_f32(u64::MAX), 1.0 - f32::EPSILON);
        // u1 = 1 (uniform 0) and the smallest u1 (uniform just below 1) keep the radius finite.
        for bits in [0, u64::MAX] {
            let r = (-2.0 * ln_unit(1.0 - unit_f64(bits))).sqrt();
            assert!(r.is_finite() && r.abs() < 8.6, "{r}");
        }
    }

    #[test]
    fn chunk_invariance() {
        let key = RandomKey::new(7, 1);
        for &start in &STARTS {
            for &n in &LENGTHS {
                for k in [0, 1, n / 3, n.saturating_sub(1), n].map(|k| k.min(n)) {
                    let mut whole = vec![0.0; n];
                    let mut parts = vec![0.0; n];
                    fill_uniform_f64(key, start, 1, &mut whole);
                    let (a, b) = parts.split_at_mut(k);
                    fill_uniform_f64(key, start, 1, a);
                    fill_uniform_f64(key, start.wrapping_add(k as u64), 1, b);
                    assert_eq!(whole, parts, "start {start} n {n} k {k}");

                    let mut whole = vec![0.0f32; n];
                    let mut parts = vec![0.0f32; n];
                    fill_standard_normal_f32(key, start, 1, &mut whole);
                    let (a, b) = parts.split_at_mut(k);
                    fill_standard_normal_f32(key, start, 1, a);
                    fill_standard_normal_f32(key, start.wrapping_add(k as u64), 1, b);
                    assert_eq!(whole, parts, "start {start} n {n} k {k}");

                    let sum = |from: u64, len: usize| {
                        mantissa_sum_at(SimdLevel::BEST, key.stream(), from, 1, len as u64)
                    };
                    let parts = sum(start, k) + sum(start.wrapping_add(k as u64), n - k);
                    assert_eq!(sum(start, n), parts, "start {start} n {n} k {k}");
                }
            }
        }
    }

    #[test]
    fn a_strided_run_is_the_contiguous_values_at_those_indices() {
        let key = RandomKey::new(8, 0);
        let (radius, angle) = normal_streams(key);
        let (start, step, n) = (123usize, 1000usize, 500usize);
        let at = |j: usize| start + j * step;
        let mut uniform = vec![0.0; at(n)];
        fill_uniform_f64(key, 0, 1, &mut uniform);
        let mut normal = vec![0.0; at(n)];
        fill_standard_normal_f64(key, 0, 1, &mut normal);
        let mantissas: u128 = (0..n).map(|j| (uniform[at(j)] / UNIT_F64) as u128).sum();
        for level in levels() {
            let mut strided = vec![0.0; n];
            uniform_f64_at(level, key.stream(), start as u64, step as u64, &mut strided);
            assert!((0..n).all(|j| strided[j] == uniform[at(j)]), "{level:?}");
            normal_f64_at(
                level,
                radius,
                angle,
                start as u64,
                step as u64,
                &mut strided,
            );
            assert!((0..n).all(|j| strided[j] == normal[at(j)]), "{level:?}");
            let sum = mantissa_sum_at(level, key.stream(), start as u64, step as u64, n as u64);
            assert_eq!(sum, mantissas, "{level:?}");
        }
    }

    #[test]
    fn every_path_matches_the_portable_one() {
        let key = RandomKey::new(99, 3);
        let stream = key.stream();
        let (radius, angle) = normal_streams(key);
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for level in levels() {
            for &start in &STARTS {
                for &n in &LENGTHS {
                    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                    uniform_f64_at(SimdLevel::Portable, stream, start, 1, &mut a);
                    uniform_f64_at(level, stream, start, 1, &mut b);
                    assert_eq!(bits64(&a), bits64(&b), "{level:?}");
                    normal_f64_at(SimdLevel::Portable, radius, angle, start, 1, &mut a);
                    normal_f64_at(level, radius, angle, start, 1, &mut b);
                    assert_eq!(bits64(&a), bits64(&b), "{level:?}");

                    let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
                    uniform_f32_at(SimdLevel::Portable, stream, start, 1, &mut a);
                    uniform_f32_at(level, stream, start, 1, &mut b);
                    assert_eq!(bits32(&a), bits32(&b), "{level:?}");
                    normal_f32_at(SimdLevel::Portable, radius, angle, start, 1, &mut a);
                    normal_f32_at(level, radius, angle, start, 1, &mut b);
                    assert_eq!(bits32(&a), bits32(&b), "{level:?}");

                    assert_eq!(
                        mantissa_sum_at(SimdLevel::Portable, stream, start, 1, n as u64),
                        mantissa_sum_at(level, stream, start, 1, n as u64),
                        "{level:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn sum_matches_filled_values() {
        for &start in &STARTS {
            for &n in &LENGTHS {
                let values = uniform(5, 0, start, n);
                let plain: f64 = values.iter().sum();
                let fused = sum_uniform_f64(RandomKey::new(5, 0), start, 1, n as u64);
                assert!(
                    (fused - plain).abs() <= 1e-9 * plain.abs(),
                    "{fused} {plain}"
                );
            }
        }
        // Splitting the range only adds one rounding per part.
        let key = RandomKey::new(5, 0);
        let whole = sum_uniform_f64(key, 11, 1, 100_001);
        let split = sum_uniform_f64(key, 11, 1, 40_000) + sum_uniform_f64(key, 40_011, 1, 60_001);
        assert!((whole - split).abs() <= 1e-12 * whole);
    }

    #[test]
    fn uniform_quality() {
        let x = uniform(2024, 0, 0, N);
        assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
        let se = (1.0 / 12.0 / N as f64).sqrt();
        assert!((mean(&x) - 0.5).abs() < 5.0 * se, "{}", mean(&x));
        // The variance of (u - ½)² is 1/80 - 1/144.
        let se_var = ((1.0 / 80.0 - 1.0 / 144.0) / N as f64).sqrt();
        assert!((variance(&x) - 1.0 / 12.0).abs() < 5.0 * se_var);
        assert!(chi_square_passes(&x), "{}", chi_square_64(&x));

        // The test has power: half the range, or a too-even sweep, fails.
        let half: Vec<f64> = x.iter().map(|v| v * 0.5).collect();
        assert!(!chi_square_passes(&half));
        let sweep: Vec<f64> = (0..N).map(|i| i as f64 / N as f64).collect();
        assert!(!chi_square_passes(&sweep));

        let limit = 5.0 / (N as f64).sqrt();
        let lag1 = correlation(&x[..N - 1], &x[1..]);
        assert!(lag1.abs() < limit, "lag-1 {lag1}");
        let next_seed = uniform(2025, 0, 0, N);
        let r = correlation(&x, &next_seed);
        assert!(r.abs() < limit, "seeds {r}");
        let next_stream = uniform(2024, 1, 0, N);
        let r = correlation(&x, &next_stream);
        assert!(r.abs() < limit, "streams {r}");
        // A key's normals must not reuse its uniforms (the radius would follow them).
        let z = normal(2024, 0, N);
        let z2: Vec<f64> = z.iter().map(|v| v * v).collect();
        let r = correlation(&x, &z2);
        assert!(r.abs() < limit, "uniform vs normal {r}");
    }

    #[test]
    fn uniform_f32_quality() {
        let mut x = vec![0.0f32; N];
        fill_uniform_f32(RandomKey::new(31, 0), 0, 1, &mut x);
        let x: Vec<f64> = x.into_iter().map(f64::from).collect();
        assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
        let se = (1.0 / 12.0 / N as f64).sqrt();
        assert!((mean(&x) - 0.5).abs() < 5.0 * se);
        assert!(chi_square_passes(&x), "{}", chi_square_64(&x));
    }

    #[test]
    fn normal_quality() {
        let z = normal(77, 0, N);
        assert!(z.iter().all(|v| v.is_finite()));
        let se = 1.0 / (N as f64).sqrt();
        assert!(mean(&z).abs() < 5.0 * se, "{}", mean(&z));
        assert!((variance(&z) - 1.0).abs() < 5.0 * 2f64.sqrt() * se);
        let inside = z.iter().filter(|v| v.abs() < 1.959_964).count() as f64 / N as f64;
        assert!((inside - 0.95).abs() < 5.0 * (0.95f64 * 0.05 / N as f64).sqrt());
        let lag1 = correlation(&z[..N - 1], &z[1..]);
        assert!(lag1.abs() < 5.0 * se);

        let mut z32 = vec![0.0f32; 1000];
        fill_standard_normal_f32(RandomKey::new(77, 0), 0, 1, &mut z32);
        assert!(z32.iter().zip(&z).all(|(&a, &b)| a == b as f32));
    }

    #[test]
    fn normal_math_matches_libm() {
        for k in 0..=52 {
            let x = 0.75f64.powi(k) * 0.999;
            let (ours, std) = (ln_unit(x), x.ln());
            assert!((ours - std).abs() <= 4e-16 * std.abs().max(1e-300), "{x}");
        }
        assert_eq!(ln_unit(1.0), 0.0);
        let tiny = f64::EPSILON;
        assert!((ln_unit(tiny) - tiny.ln()).abs() <= 4e-16 * tiny.ln().abs());

        let key = RandomKey::new(3, 4);
        for i in 0..100_000 {
            let j = key.bits(i) >> 12;
            let turns = j as f64 * UNIT_F64;
            let ours = cos_turns(j);
            assert!(
                (ours - (std::f64::consts::TAU * turns).cos()).abs() < 4e-15,
                "{turns}"
            );
            let u = 1.0 - unit_f64(key.bits(!i));
            assert!((ln_unit(u) - u.ln()).abs() <= 4e-16 * u.ln().abs().max(1e-300));
        }
        // Quarter turns land exactly.
        for (q, expect) in [(0u64, 1.0), (1, 0.0), (2, -1.0), (3, 0.0)] {
            assert_eq!(cos_turns(q << 50).abs(), f64::abs(expect));
        }
    }

    #[test]
    fn seeds_give_different_arrays() {
        let n = 100_000;
        let a = uniform(1, 0, 0, n);
        let b = uniform(2, 0, 0, n);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        assert_ne!(RandomKey::new(1, 0), RandomKey::new(0, 1));
        assert_ne!(RandomKey::new(1, 0), RandomKey::new(1, 1));
    }
}
