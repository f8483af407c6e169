//! Counter-based random numbers for `random` arrays: this module owns the key derivation, the
//! conversions from the generator's words to uniform values, and the kernels that fill chunks and
//! sum uniform values without storing them. The block function lives in `ars`, the normal
//! distribution in `normal`, the other distributions in `distributions`.
//!
//! Element `i` (the global flat C-order index in the whole array) of an array with key
//! `RandomKey::new(seed, stream)` depends only on `(seed, stream, i)`, so every chunking, thread count
//! and machine produces the same values; a chunk generates exactly the range of flat indices it needs.
//!
//! **Key.** `mix(z)` is the SplitMix64 finalizer: `z = (z ^ z >> 30) * M1;
//! z = (z ^ z >> 27) * M2; z ^ z >> 31`, with `M1 = 0xBF58476D1CE4E5B9`, `M2 = 0x94D049BB133111EB`
//! and all arithmetic wrapping modulo 2^64. The key is two words,
//! `k0 = mix(seed ^ mix(stream + 0x243F6A8885A308D3))` and
//! `k1 = mix(stream ^ mix(seed + 0xB7E151628AED2A6B))` (fractional bits of π and e); for a fixed
//! stream both words are bijections of the seed, and for a fixed seed both are bijections of the
//! stream, so keys differing in one argument differ in both words.
//!
//! **Generator.** ARS-5 (see `ars`) with the 128-bit key `(k0, k1)`: counter `(lo, hi)` gives a
//! block of two 64-bit words. A key's uniform values use high word 0: the f64 value of element `i` is
//! word `i mod 2` of block `(i >> 1, 0)`; the f32 value of element `i` is 32-bit word `i mod 4` of
//! block `(i >> 2, 0)` (word 0 the low half of the block's first u64).
//!
//! **Uniform.** f64: `from_bits(w >> 12 | 0x3FF0000000000000) - 1.0` of the 64-bit word, the
//! multiples of 2^-52 in [0, 1); f32: `from_bits(w >> 9 | 0x3F800000) - 1.0` of the 32-bit word, the
//! multiples of 2^-23 in [0, 1). Both conversions are exact.
//!
//! **Standard normal.** The ziggurat of `normal` under the derived key
//! `(mix(k0 ^ 0x6A09E667F3BCC908), mix(k1 + 0x6A09E667F3BCC908))` (fractional bits of √2), so a
//! key's normal array is independent of its uniform array. The first try of element `i` reads word
//! `i mod 2` of block `(i >> 1, 0)`; an element whose first try is rejected (0.43 %) continues
//! with blocks `(i, 1), (i, 2), …`, which no other element reads. The f32 normal is the f64 normal
//! rounded to f32.
//!
//! **Change of values (this version).** Earlier versions generated element `i` with a keyed
//! SplitMix64 hash of `i` and normals by Box–Muller from two derived streams; uniform and normal
//! values for a given seed are different from those versions' (the key derivation, the conversions
//! and the independence of elements are unchanged). The reason is speed where it matters: the hash
//! needs two 64-bit multiplies per value, which AVX2 lacks, while ARS-5 is five AES instructions per
//! two f64 values on every current x86 server (four with VAES), and the ziggurat replaces a `ln`,
//! a `sqrt` and a `cos` per normal with a table lookup and a multiply for 99.57 % of values.
//! Within this version the ziggurat went from 256 layers to 1024, which changed the normal values
//! again (not the uniform ones): a first try is rejected for 0.43 % of elements instead of 1.49 %.
//!
//! **Kernels.** Every kernel is one `#[inline(always)]` body generic over the block function's back
//! end and compiled four times by `ars::aes_kernel!` — software AES for the baseline target, AES-NI
//! with AVX2, VAES with AVX2 and VAES with AVX-512 — and chosen at run time by CPU detection that runs
//! once and is cached; nothing needs `target-cpu=native`. Contiguous runs generate blocks into a tile
//! buffer in L1 and convert it with a plain loop the compiler vectorizes; strided runs (along an outer
//! axis of a transposed array) compute one block per element. Every path performs the same integer
//! and correctly rounded float operations per element, so all paths give the same bits.
//! `sum_uniform_f64` adds the integers `w >> 12` exactly and scales once, so its result does not
//! depend on the path or the tiling; the AES-NI and 256-bit VAES back ends add them in registers as
//! the blocks come out of the last round (`Blocks::mantissa_sum`), the others fill a tile and add it.
//! Indices wrap modulo 2^64.

mod ars;
mod distributions;
mod normal;

use ars::{AesLevel, Blocks, RoundKeys, aes_kernel};
use normal::FirstTry;

const M1: u64 = 0xBF58_476D_1CE4_E5B9;
const M2: u64 = 0x94D0_49BB_1331_11EB;

const FRAC_PI: u64 = 0x243F_6A88_85A3_08D3;
const FRAC_E: u64 = 0xB7E1_5162_8AED_2A6B;
const FRAC_SQRT2: u64 = 0x6A09_E667_F3BC_C908;

/// Spacing of the uniform f64 values: the value of one unit of `w >> 12`.
const UNIT_F64: f64 = 1.0 / (1u64 << 52) as f64;

/// u64 words generated per tile: 4 KiB, so a tile and the output it is converted into stay in L1.
/// Each word adds less than 2^52 to a sum, so a tile's sum fits a u64.
const TILE_WORDS: usize = 512;

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

    /// An independent key for a distribution that must not reuse the key's own blocks.
    fn derive(self, salt: u64) -> Self {
        Self {
            k0: mix64(self.k0 ^ salt),
            k1: mix64(self.k1.wrapping_add(salt)),
        }
    }

    fn round_keys(self) -> RoundKeys {
        RoundKeys::new(self.k0, self.k1)
    }

    fn normal_keys(self) -> RoundKeys {
        self.derive(FRAC_SQRT2).round_keys()
    }

    /// The 64-bit word behind element `index`'s uniform f64 value.
    #[cfg(test)]
    fn bits(self, index: u64) -> u64 {
        ars::soft_block(&self.round_keys(), [index >> 1, 0])[(index & 1) as usize]
    }
}

#[inline(always)]
fn unit_f64(w: u64) -> f64 {
    f64::from_bits((w >> 12) | 0x3FF0_0000_0000_0000) - 1.0
}

#[inline(always)]
fn unit_f32(w: u32) -> f32 {
    f32::from_bits((w >> 9) | 0x3F80_0000) - 1.0
}

/// The f64-layout word of element `i` (word `i mod 2` of block `(i >> 1, 0)`), one block at a time.
#[inline(always)]
fn word_at<B: Blocks>(b: B, keys: &RoundKeys, i: u64) -> u64 {
    b.one(keys, i >> 1, 0)[(i & 1) as usize]
}

/// The f32-layout word of element `i` (32-bit word `i mod 4` of block `(i >> 2, 0)`).
#[inline(always)]
fn word32_at<B: Blocks>(b: B, keys: &RoundKeys, i: u64) -> u32 {
    let w = b.one(keys, i >> 2, 0)[(i >> 1 & 1) as usize];
    (w >> (32 * (i & 1))) as u32
}

/// One piece of a contiguous run of elements in the f64 layout (see [`runs`]).
#[derive(Clone, Copy)]
enum Run {
    /// The element at offset `at`, alone (odd first index, or the last element of an odd count).
    One { at: usize, index: u64 },
    /// `len` elements (even) from offset `at`: the blocks `first_block..` in full.
    Tile {
        at: usize,
        first_block: u64,
        len: usize,
    },
}

/// Splits elements `start..start + n` (wrapping) into [`Run`]s, in order: a lone first element when
/// `start` is odd, whole tiles of blocks, a lone last element. Tiles end at index 2^64, where the
/// block index wraps from 2^63 - 1 to 0. The kernels loop over these and generate each run's words
/// themselves — a plain loop rather than a callback, because closures are compiled without the
/// caller's target features unless LLVM happens to inline them.
#[inline(always)]
fn runs(start: u64, n: usize) -> impl Iterator<Item = Run> {
    let mut i = start;
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done == n {
            return None;
        }
        let left = n - done;
        let run = if i & 1 == 1 || left == 1 {
            Run::One { at: done, index: i }
        } else {
            let mut len = left.min(TILE_WORDS) & !1;
            let to_wrap = i.wrapping_neg();
            if to_wrap != 0 {
                len = len.min(usize::try_from(to_wrap).unwrap_or(usize::MAX));
            }
            Run::Tile {
                at: done,
                first_block: i >> 1,
                len,
            }
        };
        let len = match run {
            Run::One { .. } => 1,
            Run::Tile { len, .. } => len,
        };
        done += len;
        i = i.wrapping_add(len as u64);
        Some(run)
    })
}

#[inline(always)]
fn uniform_f64_body<B: Blocks>(b: B, keys: &RoundKeys, start: u64, step: u64, out: &mut [f64]) {
    if step != 1 {
        let mut i = start;
        for o in out {
            *o = unit_f64(word_at(b, keys, i));
            i = i.wrapping_add(step);
        }
        return;
    }
    for run in runs(start, out.len()) {
        match run {
            Run::One { at, index } => out[at] = unit_f64(word_at(b, keys, index)),
            Run::Tile {
                at,
                first_block,
                len,
            } => {
                // The blocks are written straight into the output and converted in place: no tile
                // buffer to store and reload (measurably slower with VAES, where generation is
                // cheap).
                let run = &mut out[at..at + len];
                let words: &mut [u64] = bytemuck::cast_slice_mut(run);
                b.fill(keys, first_block, 0, words);
                for w in words.iter_mut() {
                    *w = unit_f64(*w).to_bits();
                }
            }
        }
    }
}

#[inline(always)]
fn uniform_f32_body<B: Blocks>(b: B, keys: &RoundKeys, start: u64, step: u64, out: &mut [f32]) {
    let mut i = start;
    let mut out = out;
    if step != 1 {
        for o in out {
            *o = unit_f32(word32_at(b, keys, i));
            i = i.wrapping_add(step);
        }
        return;
    }
    let mut buf = [0u64; TILE_WORDS];
    loop {
        // Single elements up to a block boundary, and the last few.
        while !out.is_empty() && (i & 3 != 0 || out.len() < 4) {
            out[0] = unit_f32(word32_at(b, keys, i));
            out = &mut out[1..];
            i = i.wrapping_add(1);
        }
        if out.is_empty() {
            return;
        }
        // Whole blocks of four elements (two u64 words each), not crossing index 2^64.
        let mut m = out.len().min(2 * TILE_WORDS) & !3;
        let to_wrap = i.wrapping_neg();
        if to_wrap != 0 {
            m = m.min(usize::try_from(to_wrap).unwrap_or(usize::MAX));
        }
        let words = &mut buf[..m / 2];
        b.fill(keys, i >> 2, 0, words);
        let (run, rest) = out.split_at_mut(m);
        for (pair, &w) in run.chunks_exact_mut(2).zip(words.iter()) {
            pair[0] = unit_f32(w as u32);
            pair[1] = unit_f32((w >> 32) as u32);
        }
        out = rest;
        i = i.wrapping_add(m as u64);
    }
}

#[inline(always)]
fn normal_f64_body<B: FirstTry>(b: B, keys: &RoundKeys, start: u64, step: u64, out: &mut [f64]) {
    let t = &*normal::TABLES;
    if step != 1 {
        let mut i = start;
        for o in out {
            let w = word_at(b, keys, i);
            let v = normal::first_try(t, w);
            *o = if v.is_nan() {
                normal::slow_path(b, keys, t, i, w)
            } else {
                v
            };
            i = i.wrapping_add(step);
        }
        return;
    }
    let mut queue = normal::Rejected::new();
    for run in runs(start, out.len()) {
        let (at, len, first_block) = match run {
            Run::One { at, index } => {
                let w = word_at(b, keys, index);
                let v = normal::first_try(t, w);
                out[at] = if v.is_nan() {
                    normal::slow_path(b, keys, t, index, w)
                } else {
                    v
                };
                continue;
            }
            Run::Tile {
                at,
                first_block,
                len,
            } => (at, len, first_block),
        };
        // The words go straight into the output and each group of eight is replaced by its
        // values in place, as the uniform kernel does: no tile buffer to zero, store and reload
        // (the zeroing alone was ~7 % of a normal mean).
        b.fill(
            keys,
            first_block,
            0,
            bytemuck::cast_slice_mut(&mut out[at..at + len]),
        );
        // Eight first tries at a time, branch-free: each group's rejected lanes (0.43 % of
        // elements) are only noted as a bit mask here, so this loop never leaves the vector
        // registers; the scan below queues them for the batched slow path. Checking each group's
        // mask inside this loop had cost as much as all the first tries together (its branch
        // mispredicted on one group in nine with 256 layers, and the queue's bookkeeping kept
        // registers spilled).
        let groups = len / 8;
        // Accepted-lane masks; the groups past the last whole one count as accepted.
        let mut masks = [0xFFu8; TILE_WORDS / 8];
        let (eights, _) = out[at..at + len].as_chunks_mut::<8>();
        for (mask, o) in masks.iter_mut().zip(eights) {
            *mask = b.first_try8(t, o);
        }
        for (c, eight) in masks[..groups.next_multiple_of(8)]
            .chunks_exact(8)
            .enumerate()
        {
            let accepted = u64::from_le_bytes(eight.try_into().expect("eight masks"));
            let rejected = !B::in_lane_order(accepted);
            queue.push_mask(at + 64 * c, rejected);
            if queue.is_full() {
                queue.finish(b, keys, t, start, out);
            }
        }
        for j in at + 8 * groups..at + len {
            let w = out[j].to_bits();
            let v = normal::first_try(t, w);
            if v.is_nan() {
                queue.push(j);
                if queue.is_full() {
                    queue.finish(b, keys, t, start, out);
                }
            } else {
                out[j] = v;
            }
        }
    }
    queue.finish(b, keys, t, start, out);
}

/// Sum of the standard normal values of elements `start + k·step` for `k` in `0..n`, in the order
/// of [`simd::sum_f64`](crate::kernels::simd::sum_f64) over the filled values (so the same bits),
/// without storing more than a tile of them.
#[inline(always)]
fn normal_sum_body<B: FirstTry>(
    b: B,
    keys: &RoundKeys,
    start: u64,
    step: u64,
    n: usize,
    buf: &mut Scratch,
) -> f64 {
    use crate::kernels::simd::{LANES, LaneSum};
    // A whole number of lane groups per tile, so the groups line up with one `sum_f64` call's. The
    // whole scratch buffer: the rejected first tries wait in one queue for the whole tile, and a
    // fused mean calls this once per chunk row (often ~1000 elements), so a 512-element tile
    // finished half-empty batches of the slow path twice per row.
    const TILE: usize = SCRATCH_WORDS - SCRATCH_WORDS % LANES;
    let buf = words_as_f64(buf);
    let buf = &mut buf[..TILE];
    let mut lanes = LaneSum::new();
    let mut i = start;
    let mut left = n;
    loop {
        // A row that fits the tile is one call (its fewer-than-LANES last values too): one queue
        // of rejected first tries and one batch of the slow path per row, not two.
        let m = left.min(TILE);
        normal_f64_body(b, keys, i, step, &mut buf[..m]);
        left -= m;
        if left == 0 {
            let whole = m - m % LANES;
            lanes.add_groups_apart(&buf[..whole]);
            return lanes.finish(&buf[whole..m]);
        }
        lanes.add_groups_apart(&buf[..m]);
        i = i.wrapping_add((m as u64).wrapping_mul(step));
    }
}

#[inline(always)]
fn normal_f32_body<B: FirstTry>(b: B, keys: &RoundKeys, start: u64, step: u64, out: &mut [f32]) {
    let mut buf = [0.0f64; TILE_WORDS];
    let mut i = start;
    for run in out.chunks_mut(TILE_WORDS) {
        let values = &mut buf[..run.len()];
        normal_f64_body(b, keys, i, step, values);
        for (o, &v) in run.iter_mut().zip(values.iter()) {
            *o = v as f32;
        }
        i = i.wrapping_add((run.len() as u64).wrapping_mul(step));
    }
}

/// Sum of `w >> 12` over elements `start + k·step` for `k` in `0..n`: the uniform values in units
/// of 2^-52. Integer addition is associative, so the result is exact and the same on every path.
#[inline(always)]
fn mantissa_sum_body<B: Blocks>(
    b: B,
    keys: &RoundKeys,
    start: u64,
    step: u64,
    n: u64,
    buf: &mut Scratch,
) -> u128 {
    let mut total = 0u128;
    if step != 1 {
        let mut i = start;
        for _ in 0..n {
            total += u128::from(word_at(b, keys, i) >> 12);
            i = i.wrapping_add(step);
        }
        return total;
    }
    // Runs of at most 2^20 elements keep the counts in usize on every platform.
    let mut at = start;
    let mut left = n;
    while left > 0 {
        let len = left.min(1 << 20);
        for run in runs(at, len as usize) {
            // At most TILE_WORDS values below 2^52 each: the tile's sum fits a u64.
            let tile = match run {
                Run::One { index, .. } => word_at(b, keys, index) >> 12,
                Run::Tile {
                    first_block, len, ..
                } => b.mantissa_sum(keys, first_block, 0, &mut buf[..len]),
            };
            total += u128::from(tile);
        }
        at = at.wrapping_add(len);
        left -= len;
    }
    total
}

aes_kernel! {
    fn uniform_f64_at(keys: &RoundKeys, start: u64, step: u64, out: &mut [f64]) = uniform_f64_body;
}

aes_kernel! {
    fn uniform_f32_at(keys: &RoundKeys, start: u64, step: u64, out: &mut [f32]) = uniform_f32_body;
}

aes_kernel! {
    fn normal_f64_at(keys: &RoundKeys, start: u64, step: u64, out: &mut [f64]) = normal_f64_body;
}

aes_kernel! {
    fn normal_f32_at(keys: &RoundKeys, start: u64, step: u64, out: &mut [f32]) = normal_f32_body;
}

aes_kernel! {
    fn normal_sum_in(keys: &RoundKeys, start: u64, step: u64, n: usize, buf: &mut Scratch) -> f64
        = normal_sum_body;
}

/// Words of [`Scratch`]: four tiles, 16 KiB, so a typical chunk row fits one normal-sum tile and
/// the buffer still sits in L1 beside the tables.
const SCRATCH_WORDS: usize = 4 * TILE_WORDS;

/// A tile buffer for the fused sums, kept per thread: a fused sum is called once per row of a
/// chunk (often ~1000 elements), and zeroing a fresh stack buffer each time was ~7 % of the
/// headline and normal means.
type Scratch = [u64; SCRATCH_WORDS];

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new([0; SCRATCH_WORDS]) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if it is in use: never nested today).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|c| match c.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut [0; SCRATCH_WORDS]),
    })
}

/// The scratch words viewed as f64 (same size and alignment; every bit pattern is valid).
#[inline(always)]
fn words_as_f64(buf: &mut Scratch) -> &mut [f64] {
    bytemuck::cast_slice_mut(&mut buf[..])
}

fn normal_sum_at(level: AesLevel, keys: &RoundKeys, start: u64, step: u64, n: usize) -> f64 {
    with_scratch(|buf| normal_sum_in(level, keys, start, step, n, buf))
}

fn mantissa_sum_at(level: AesLevel, keys: &RoundKeys, start: u64, step: u64, n: u64) -> u128 {
    with_scratch(|buf| mantissa_sum_in(level, keys, start, step, n, buf))
}

aes_kernel! {
    fn mantissa_sum_in(keys: &RoundKeys, start: u64, step: u64, n: u64, buf: &mut Scratch) -> u128
        = mantissa_sum_body;
}

aes_kernel! {
    fn integers_at(keys: &RoundKeys, low: i64, high: i64, start: u64, step: u64, out: &mut [i64])
        = distributions::integers_body;
}

aes_kernel! {
    fn exponential_at(keys: &RoundKeys, start: u64, step: u64, out: &mut [f64])
        = distributions::exponential_body;
}

aes_kernel! {
    fn gamma_at(keys: &RoundKeys, shape: f64, start: u64, step: u64, out: &mut [f64])
        = distributions::gamma_body;
}

aes_kernel! {
    fn beta_at(keys: &RoundKeys, a: f64, b: f64, start: u64, step: u64, out: &mut [f64])
        = distributions::beta_body;
}

aes_kernel! {
    fn poisson_at(keys: &RoundKeys, lam: f64, start: u64, step: u64, out: &mut [i64])
        = distributions::poisson_body;
}

aes_kernel! {
    fn binomial_at(keys: &RoundKeys, n: u64, p: f64, start: u64, step: u64, out: &mut [i64])
        = distributions::binomial_body;
}

aes_kernel! {
    fn permutation_at(keys: &RoundKeys, n: u64, start: u64, step: u64, out: &mut [i64])
        = distributions::permutation_body;
}

/// out\[j\] = the image of start + j·step (below `n`) under the key's random permutation of `0..n`.
pub fn fill_permutation(key: RandomKey, n: u64, start: u64, step: u64, out: &mut [i64]) {
    permutation_at(AesLevel::BEST, &key.round_keys(), n, start, step, out);
}

/// out\[j\] = integer in [low, high] (inclusive) of element start + j·step, unbiased.
pub fn fill_integers(key: RandomKey, low: i64, high: i64, start: u64, step: u64, out: &mut [i64]) {
    integers_at(
        AesLevel::BEST,
        &key.round_keys(),
        low,
        high,
        start,
        step,
        out,
    );
}

/// out\[j\] = standard exponential value of element start + j·step.
pub fn fill_standard_exponential(key: RandomKey, start: u64, step: u64, out: &mut [f64]) {
    exponential_at(AesLevel::BEST, &key.round_keys(), start, step, out);
}

/// out\[j\] = Gamma(shape, 1) value of element start + j·step.
pub fn fill_standard_gamma(key: RandomKey, shape: f64, start: u64, step: u64, out: &mut [f64]) {
    gamma_at(AesLevel::BEST, &key.round_keys(), shape, start, step, out);
}

/// out\[j\] = Beta(a, b) value of element start + j·step.
pub fn fill_beta(key: RandomKey, a: f64, b: f64, start: u64, step: u64, out: &mut [f64]) {
    beta_at(AesLevel::BEST, &key.round_keys(), a, b, start, step, out);
}

/// out\[j\] = Poisson(lam) count of element start + j·step.
pub fn fill_poisson(key: RandomKey, lam: f64, start: u64, step: u64, out: &mut [i64]) {
    poisson_at(AesLevel::BEST, &key.round_keys(), lam, start, step, out);
}

/// out\[j\] = Binomial(n, p) count of element start + j·step.
pub fn fill_binomial(key: RandomKey, n: u64, p: f64, start: u64, step: u64, out: &mut [i64]) {
    binomial_at(AesLevel::BEST, &key.round_keys(), n, p, start, step, out);
}

/// out\[j\] = uniform value of element start + j·step (step 1: a contiguous run; another step: a run
/// along an outer axis, for a transposed array).
pub fn fill_uniform_f64(key: RandomKey, start: u64, step: u64, out: &mut [f64]) {
    uniform_f64_at(AesLevel::BEST, &key.round_keys(), start, step, out);
}

/// out\[j\] = uniform f32 value of element start + j·step (23-bit resolution from its own 32-bit word,
/// not the f64 value rounded).
pub fn fill_uniform_f32(key: RandomKey, start: u64, step: u64, out: &mut [f32]) {
    uniform_f32_at(AesLevel::BEST, &key.round_keys(), start, step, out);
}

/// out\[j\] = standard normal value of element start + j·step.
pub fn fill_standard_normal_f64(key: RandomKey, start: u64, step: u64, out: &mut [f64]) {
    normal_f64_at(AesLevel::BEST, &key.normal_keys(), start, step, out);
}

/// out\[j\] = standard normal value of element start + j·step, the f64 value rounded to f32.
pub fn fill_standard_normal_f32(key: RandomKey, start: u64, step: u64, out: &mut [f32]) {
    normal_f32_at(AesLevel::BEST, &key.normal_keys(), start, step, out);
}

/// Sum of the standard normal values of elements start + k·step for k in 0..n, without storing
/// more than a few KiB of them: the fused kernel for `standard_normal(..).sum()/mean()`. The
/// result has the bits of [`simd::sum_f64`](crate::kernels::simd::sum_f64) over the values
/// [`fill_standard_normal_f64`] gives, so fusing does not change a result; sums of `n` up to
/// [`TILE`](crate::kernels::TILE) are what the tile evaluator adds.
pub fn sum_standard_normal_f64(key: RandomKey, start: u64, step: u64, n: usize) -> f64 {
    normal_sum_at(AesLevel::BEST, &key.normal_keys(), start, step, n)
}

/// Sum of the uniform values of elements start + k·step for k in 0..n, without storing them: the
/// fused kernel for `random(..).sum()/mean()`. The sum is computed exactly and rounded once
/// (correctly rounded), so it is the same on every CPU path and at least as accurate as any summation
/// of the filled values. Adding the results for several ranges rounds once per range.
pub fn sum_uniform_f64(key: RandomKey, start: u64, step: u64, n: u64) -> f64 {
    // Exact: the total is below 2^116, and scaling by a power of two does not round.
    mantissa_sum_at(AesLevel::BEST, &key.round_keys(), start, step, n) as f64 * UNIT_F64
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
    let keys = key.round_keys();
    let mut total = 0u128;
    let mut at = start;
    let mut left = n;
    loop {
        let len = left.min(SUM_SEGMENT);
        total += mantissa_sum_at(AesLevel::BEST, &keys, at, step, len);
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

    fn levels() -> Vec<AesLevel> {
        let mut all = AesLevel::all();
        all.retain(|&l| l <= AesLevel::detected());
        all
    }

    #[test]
    fn values_follow_the_documented_layout() {
        let key = RandomKey::new(12_345, 6);
        let keys = key.round_keys();
        let block = |lo: u64| ars::soft_block(&keys, [lo, 0]);
        let mut out = vec![0.0; 101];
        fill_uniform_f64(key, 999, 1, &mut out);
        for (j, &v) in out.iter().enumerate() {
            let i = 999 + j as u64;
            let w = block(i / 2)[(i % 2) as usize];
            assert_eq!(key.bits(i), w);
            assert_eq!(v, (w >> 12) as f64 / (1u64 << 52) as f64);
        }
        let mut out = vec![0.0f32; 101];
        fill_uniform_f32(key, 999, 1, &mut out);
        for (j, &v) in out.iter().enumerate() {
            let i = 999 + j as u64;
            let w = block(i / 4)[(i % 4 / 2) as usize] >> (32 * (i % 2));
            assert_eq!(v, (w as u32 >> 9) as f32 / (1u32 << 23) as f32);
        }
    }

    #[test]
    fn stream_is_pinned() {
        // Saved arrays and results must not change between versions by accident; this catches any
        // edit of the generator, key derivation or conversions that the layout test above was
        // edited along with. Values from this version (ARS-5 and the 1024-layer ziggurat).
        let key = RandomKey::new(0, 0);
        let got: Vec<u64> = (0..3).map(|i| key.bits(i)).collect();
        let pinned: [u64; 3] = [
            2_885_924_168_597_775_174,
            15_283_136_139_716_491_144,
            13_998_395_968_491_113_830,
        ];
        let mut u = [0.0f64; 3];
        fill_uniform_f64(RandomKey::new(42, 0), 10, 1, &mut u);
        let mut u32s = [0.0f32; 3];
        fill_uniform_f32(RandomKey::new(42, 0), 10, 1, &mut u32s);
        let mut z = [0.0f64; 3];
        fill_standard_normal_f64(RandomKey::new(42, 1), 10, 1, &mut z);
        let pinned_u: [f64; 3] = [0.0844173484448365, 0.13217510039543723, 0.2898210748740595];
        let pinned_u32: [f32; 3] = [0.37398028, 0.23362958, 0.6835182];
        let pinned_z: [f64; 3] = [-1.0079749481293965, 0.5389036172574357, 0.6073846328456703];
        // About 43 of these 10^4 normals take the slow path (wedges and tail).
        let mut many = vec![0.0f64; 10_000];
        fill_standard_normal_f64(RandomKey::new(42, 1), 0, 1, &mut many);
        let sum: f64 = many.iter().sum();
        assert_eq!(sum, -147.82689618157315);
        assert_eq!(got, pinned);
        assert_eq!(u, pinned_u);
        assert_eq!(u32s, pinned_u32);
        assert_eq!(z, pinned_z);
    }

    #[test]
    fn conversion_extremes() {
        assert_eq!(unit_f64(0), 0.0);
        assert_eq!(unit_f64(u64::MAX), 1.0 - f64::EPSILON);
        assert_eq!(unit_f32(0), 0.0);
        assert_eq!(unit_f32(u32::MAX), 1.0 - f32::EPSILON);
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
                        mantissa_sum_at(AesLevel::BEST, &key.round_keys(), from, 1, len as u64)
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
        let (keys, normal_keys) = (key.round_keys(), key.normal_keys());
        let (start, step, n) = (123usize, 1000usize, 500usize);
        let at = |j: usize| start + j * step;
        let mut uniform = vec![0.0; at(n)];
        fill_uniform_f64(key, 0, 1, &mut uniform);
        let mut normal = vec![0.0; at(n)];
        fill_standard_normal_f64(key, 0, 1, &mut normal);
        let mantissas: u128 = (0..n).map(|j| (uniform[at(j)] / UNIT_F64) as u128).sum();
        for level in levels() {
            let mut strided = vec![0.0; n];
            uniform_f64_at(level, &keys, start as u64, step as u64, &mut strided);
            assert!((0..n).all(|j| strided[j] == uniform[at(j)]), "{level:?}");
            normal_f64_at(level, &normal_keys, start as u64, step as u64, &mut strided);
            assert!((0..n).all(|j| strided[j] == normal[at(j)]), "{level:?}");
            let sum = mantissa_sum_at(level, &keys, start as u64, step as u64, n as u64);
            assert_eq!(sum, mantissas, "{level:?}");
        }
    }

    #[test]
    fn every_path_matches_the_portable_one() {
        let key = RandomKey::new(99, 3);
        let (stream, normals) = (&key.round_keys(), &key.normal_keys());
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for level in levels() {
            for &start in &STARTS {
                for &n in &LENGTHS {
                    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                    uniform_f64_at(AesLevel::Soft, stream, start, 1, &mut a);
                    uniform_f64_at(level, stream, start, 1, &mut b);
                    assert_eq!(bits64(&a), bits64(&b), "{level:?}");
                    normal_f64_at(AesLevel::Soft, normals, start, 1, &mut a);
                    normal_f64_at(level, normals, start, 1, &mut b);
                    assert_eq!(bits64(&a), bits64(&b), "{level:?}");

                    let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
                    uniform_f32_at(AesLevel::Soft, stream, start, 1, &mut a);
                    uniform_f32_at(level, stream, start, 1, &mut b);
                    assert_eq!(bits32(&a), bits32(&b), "{level:?}");
                    normal_f32_at(AesLevel::Soft, normals, start, 1, &mut a);
                    normal_f32_at(level, normals, start, 1, &mut b);
                    assert_eq!(bits32(&a), bits32(&b), "{level:?}");

                    assert_eq!(
                        mantissa_sum_at(AesLevel::Soft, stream, start, 1, n as u64),
                        mantissa_sum_at(level, stream, start, 1, n as u64),
                        "{level:?}"
                    );
                    assert_eq!(
                        normal_sum_at(AesLevel::Soft, normals, start, 1, n).to_bits(),
                        normal_sum_at(level, normals, start, 1, n).to_bits(),
                        "{level:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_distribution_path_matches_the_portable_one() {
        let keys = &RandomKey::new(17, 9).round_keys();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for level in levels() {
            for &start in &STARTS {
                let n = 300;
                let (mut a, mut b) = (vec![0i64; n], vec![0i64; n]);
                for (low, high) in [(-5, 7), (0, (1 << 62) + 12345), (i64::MIN, i64::MAX)] {
                    integers_at(AesLevel::Soft, keys, low, high, start, 3, &mut a);
                    integers_at(level, keys, low, high, start, 3, &mut b);
                    assert_eq!(a, b, "{level:?}");
                }
                for lam in [0.5, 9.9, 10.0, 1e6] {
                    poisson_at(AesLevel::Soft, keys, lam, start, 1, &mut a);
                    poisson_at(level, keys, lam, start, 1, &mut b);
                    assert_eq!(a, b, "{level:?} {lam}");
                }
                for (trials, p) in [(20, 0.3), (1000, 0.5), (1000, 0.99)] {
                    binomial_at(AesLevel::Soft, keys, trials, p, start, 1, &mut a);
                    binomial_at(level, keys, trials, p, start, 1, &mut b);
                    assert_eq!(a, b, "{level:?}");
                }
                let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                exponential_at(AesLevel::Soft, keys, start, 1, &mut a);
                exponential_at(level, keys, start, 1, &mut b);
                assert_eq!(bits(&a), bits(&b), "{level:?}");
                for shape in [0.3, 1.0, 7.5] {
                    gamma_at(AesLevel::Soft, keys, shape, start, 1, &mut a);
                    gamma_at(level, keys, shape, start, 1, &mut b);
                    assert_eq!(bits(&a), bits(&b), "{level:?}");
                }
                let (mut p, mut q) = (vec![0i64; 300], vec![0i64; 300]);
                for len in [1000, (1 << 20) + 7] {
                    permutation_at(AesLevel::Soft, keys, len, 17, 3, &mut p);
                    permutation_at(level, keys, len, 17, 3, &mut q);
                    assert_eq!(p, q, "{level:?}");
                }
                beta_at(AesLevel::Soft, keys, 0.5, 0.5, start, 1, &mut a);
                beta_at(level, keys, 0.5, 0.5, start, 1, &mut b);
                assert_eq!(bits(&a), bits(&b), "{level:?}");
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
    fn the_fused_normal_sum_is_the_sum_of_the_filled_values() {
        let key = RandomKey::new(21, 1);
        for &start in &STARTS {
            for &n in LENGTHS.iter().chain(&[1000, 1024, 10_000]) {
                for step in [1, 1000] {
                    let mut values = vec![0.0; n];
                    fill_standard_normal_f64(key, start, step, &mut values);
                    let filled = crate::kernels::simd::sum_f64(&values);
                    let fused = sum_standard_normal_f64(key, start, step, n);
                    assert_eq!(fused.to_bits(), filled.to_bits(), "{start} {n} {step}");
                    // And against a plain left-to-right sum, which only rounds differently.
                    let plain: f64 = values.iter().sum();
                    assert!(
                        (fused - plain).abs() <= 1e-12 * (n as f64 + 1.0),
                        "{fused} {plain}"
                    );
                }
            }
        }
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
        // A key's normals must not reuse its uniforms (z² would follow them).
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
        // The body, the shoulders and the tail beyond the ziggurat's base layer (sampled by the
        // slow path's tail method): P(|Z| < 1), P(|Z| < 2), P(|Z| < 3), P(|Z| > TAIL).
        for (edge, inside) in [
            (1.0, 0.682_689_492_137),
            (2.0, 0.954_499_736_104),
            (3.0, 0.997_300_203_937),
            (normal::TAIL, 1.0 - 2.0 * 2.685_696_730_343e-5),
        ] {
            let got = z.iter().filter(|v| v.abs() < edge).count() as f64 / N as f64;
            let se = (inside * (1.0 - inside) / N as f64).sqrt();
            assert!((got - inside).abs() < 5.0 * se, "P(|Z| < {edge}) = {got}");
        }
        // Symmetry: the sign bit is independent of the magnitude.
        let positive = z.iter().filter(|v| **v > 0.0).count() as f64 / N as f64;
        assert!((positive - 0.5).abs() < 5.0 * 0.5 / (N as f64).sqrt());

        let mut z32 = vec![0.0f32; 1000];
        fill_standard_normal_f32(RandomKey::new(77, 0), 0, 1, &mut z32);
        assert!(z32.iter().zip(&z).all(|(&a, &b)| a == b as f32));
    }

    #[test]
    fn the_slow_path_is_rare_and_every_element_ends_there_or_on_its_first_try() {
        let key = RandomKey::new(5, 1);
        let keys = key.normal_keys();
        let t = &*normal::TABLES;
        let n = 200_000u64;
        let mut z = vec![0.0; n as usize];
        fill_standard_normal_f64(key, 0, 1, &mut z);
        let mut slow = 0;
        for i in 0..n {
            let w = ars::soft_block(&keys, [i >> 1, 0])[(i & 1) as usize];
            let first = normal::first_try(t, w);
            if first.is_nan() {
                slow += 1;
                assert_eq!(z[i as usize], normal::slow_path(ars::Soft, &keys, t, i, w));
            } else {
                assert_eq!(z[i as usize], first);
            }
        }
        // The inner rectangles cover 99.57 % of the ziggurat.
        let rate = slow as f64 / n as f64;
        assert!((0.0035..0.0051).contains(&rate), "{rate}");
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
