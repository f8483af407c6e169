//! Standard normal values from ARS-5 words by the ziggurat method (Marsaglia and Tsang, 2000, with
//! 1024 layers), arranged so that element `i` depends only on the key and `i`: its first try reads
//! the element's own word, and the rare element that a first try rejects (0.43 %) draws further
//! blocks from counters that belong to it alone, `(i, 1), (i, 2), …` (first tries use high word 0),
//! so rejections never shift another element's values. This module owns the ziggurat tables, the
//! `exp`/`ln` used to build and apply them, the first try (branch-free, vectorized by the kernels)
//! and the slow path.
//!
//! Everything here uses only `+ - * /`, `sqrt`, comparisons and integer operations — correctly
//! rounded IEEE operations with no FMA contraction or libm — so the tables and every value are
//! bit-identical on every CPU path and platform with IEEE f64 arithmetic.
//!
//! **Speed without new values.** The first try runs eight elements at a time ([`FirstTry`]), in
//! place on the words the block function wrote: each lane's two table entries come from one
//! 16-byte load (gathers were the first try's largest cost): the signed edges `±x[l]`, `±x[l+1]`
//! indexed by the word's layer and sign bits, so the product is already signed and the test is an
//! integer compare of its bits (see [`Tables::signed`]). The rejected lanes come back as a bit
//! mask.
//! Rejected elements are queued ([`Rejected`]) and finished eight at a time: eight retry blocks at
//! once and the wedge test without branches, instead of one long dependent chain per element. In
//! the wedges, the exact test `y < exp(-x²/2)` needs a 14-term series, so the wedge test first
//! compares `y` with a short approximation of the density and computes the exact one only when
//! `y` lies within the approximation's error bound of it: the decision, and so
//! every value, is the exact test's.

use std::mem::MaybeUninit;
use std::sync::LazyLock;

use super::ars::{Blocks, RoundKeys, Soft};
use super::unit_f64;

/// A word's low `LAYER_BITS` bits choose its layer and the next bit its sign. With 1024 layers a
/// first try is rejected for 0.43 % of elements, against 1.49 % with 256 and 0.80 % with 512, and
/// the slow path is what a rejection costs; 2048 layers (0.23 %) were no faster, their 32 KiB
/// first-try table no longer sharing L1 with the words.
const LAYER_BITS: u32 = 10;
/// Layers of the ziggurat.
const LAYERS: usize = 1 << LAYER_BITS;
/// A word's layer bits.
const LAYER_MASK: u64 = LAYERS as u64 - 1;
/// A word's layer and sign bits.
const SIGNED_MASK: u64 = (2 * LAYERS - 1) as u64;
/// Where the tail begins for 1024 layers of the unnormalized density `exp(-x²/2)`: the `r` for
/// which layers of the common area `r·exp(-r²/2) + ∫_r^∞ exp(-x²/2) dx` stacked from the base
/// reach the top in exactly 1024 (solved in 40-digit arithmetic).
pub(super) const TAIL: f64 = 4.038_849_846_109_504;
/// The area of each layer (the base layer counts its tail).
const LAYER_AREA: f64 = 1.226_324_646_353_088e-3;

/// A word's layer.
#[inline(always)]
fn layer_of(w: u64) -> usize {
    (w & LAYER_MASK) as usize
}

/// A word's layer and sign: its index into [`Tables::signed`].
#[inline(always)]
fn signed_index(w: u64) -> usize {
    (w & SIGNED_MASK) as usize
}

/// A word's sign, as the sign bit of an f64.
#[inline(always)]
fn sign_of(w: u64) -> u64 {
    (w >> LAYER_BITS & 1) << 63
}

/// The ziggurat's tables. `x[l]` is the right edge of layer `l` (`x[0]` is the base layer's virtual
/// width `area / f(TAIL)`, `x[1] = TAIL`, `x[1024] = 0`) and `f[l] = exp(-x[l]²/2)`; `signed` is
/// what a first try reads.
#[repr(C, align(64))]
pub(super) struct Tables {
    /// The edges with a sign, indexed by a word's low eleven bits (layer `l` in bits 0–9, the sign
    /// in bit 10): `x[0..=1023]`, then `-x[0..=1024]`. A first try reads its signed edge and the
    /// next one with one unaligned 16-byte load at its index, multiplies the uniform by the first
    /// (IEEE multiplication is symmetric in sign, so that is the signed value with no sign bits to
    /// move) and accepts when the product's bits, as a signed integer, are below the second's:
    /// for two doubles of one sign that is `|u·x[l]| < x[l + 1]`. The one pair that straddles the
    /// halves, `(x[1023], -x[0])`, belongs to the top layer, whose first tries are all rejected
    /// (`x[1024] = 0`), and a product of sign + is never below a negative double's bits. First, so
    /// it is aligned to a cache line.
    pub(super) signed: [f64; 2 * LAYERS + 1],
    /// The edges, read by the slow path.
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
        let mut signed = [0.0; 2 * LAYERS + 1];
        signed[..LAYERS].copy_from_slice(&x[..LAYERS]);
        for l in 0..=LAYERS {
            signed[LAYERS + l] = -x[l];
        }
        Tables { signed, x, f }
    }
}

/// The first try for one element's word: `±u·x[l]` when that point lies under the density's inner
/// rectangle, NaN when the slow path must decide. Bits: 0–9 layer, 10 sign, 12–63 the uniform
/// `u` — disjoint, so the three are independent.
#[inline(always)]
pub(super) fn first_try(t: &Tables, w: u64) -> f64 {
    let at = signed_index(w);
    // The vector paths compute `u·edge` as `v·edge - edge` (v = u + 1) in one fused, once-rounded
    // operation: the same value, except that u = 0 gives +0 for either sign. `+ 0.0` does the
    // same here (it changes nothing else). A +0 with sign - fails the test below, so the slow
    // path gives that element its -0.
    let x = unit_f64(w) * t.signed[at] + 0.0;
    if (x.to_bits() as i64) < (t.signed[at + 1].to_bits() as i64) {
        x
    } else {
        f64::NAN
    }
}

/// The ziggurat's first try for eight elements at once, with the vector instructions of a block
/// function's back end: the same operations as [`first_try`] per lane.
pub(super) trait FirstTry: Blocks {
    /// `v[k]` holds word k (as f64 bits); the accepted lanes' words are replaced by their first
    /// tries and the rejected lanes keep their words for [`slow_path`]. Returns the accepted lanes
    /// as bits, in the order that [`FirstTry::in_lane_order`] undoes. In place, so the words are
    /// read where the block function wrote them rather than copied to the stack and reloaded,
    /// which stalled on store forwarding.
    #[inline(always)]
    fn first_try8(self, t: &Tables, v: &mut [f64; 8]) -> u8 {
        let mut accepted = 0;
        for (k, o) in v.iter_mut().enumerate() {
            let value = first_try(t, o.to_bits());
            if !value.is_nan() {
                accepted |= 1 << k;
                *o = value;
            }
        }
        accepted
    }

    /// Eight results of [`FirstTry::first_try8`] (group `g` in byte `g`) with lane `k`'s bit at
    /// bit `k` of its byte.
    #[inline(always)]
    fn in_lane_order(masks: u64) -> u64 {
        masks
    }
}

impl FirstTry for Soft {}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::ars::{AesNi, Vaes256, Vaes512};
    use super::{FirstTry, Tables};

    const ONE: i64 = 0x3FF0_0000_0000_0000;

    /// Lanes 2, 3 and 4, 5 of every byte swapped: the order of `_mm256_packs_epi32` of two
    /// four-lane masks, which packs within each 128-bit half (lanes 0, 1, 4, 5 | 2, 3, 6, 7).
    #[inline(always)]
    fn swap_middle_pairs(m: u64) -> u64 {
        m & 0xC3C3_C3C3_C3C3_C3C3
            | (m >> 2) & 0x0C0C_0C0C_0C0C_0C0C
            | (m << 2) & 0x3030_3030_3030_3030
    }

    /// Lane `k`'s signed edges `(±x[l], ±x[l + 1])` for its word's low nine bits, in one 16-byte
    /// load.
    ///
    /// # Safety
    /// `w` must point at a readable word (SSE2, the x86_64 baseline, does the load).
    #[inline(always)]
    unsafe fn signed_edges(t: &Tables, w: *const u64) -> __m128d {
        // SAFETY: the caller guarantees `w`; the index is below 2·LAYERS, so the next entry is in
        // the table (2·LAYERS + 1 entries).
        unsafe { _mm_loadu_pd(t.signed.as_ptr().add(super::signed_index(*w))) }
    }

    /// `(a, b)` as the low and high halves of a 256-bit register.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[inline(always)]
    unsafe fn half(a: __m128d, b: __m128d) -> __m256d {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(a), b) }
    }

    /// Four lanes of [`FirstTry::first_try8`] with AVX2 and FMA; returns the accepted lanes' mask.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `v` points at four words.
    #[inline(always)]
    unsafe fn first_try4(t: &Tables, v: *mut f64) -> __m256i {
        // SAFETY: the caller guarantees AVX2, FMA and the four elements.
        unsafe {
            let w = v.cast::<u64>().cast_const();
            // Lanes 0 and 2 in one register, 1 and 3 in the other: the in-lane unpacks then give
            // the entries' halves in lane order.
            let even = half(signed_edges(t, w), signed_edges(t, w.add(2)));
            let odd = half(signed_edges(t, w.add(1)), signed_edges(t, w.add(3)));
            let edge = _mm256_unpacklo_pd(even, odd);
            let inner = _mm256_castpd_si256(_mm256_unpackhi_pd(even, odd));
            let w = _mm256_loadu_si256(w.cast());
            // v = u + 1 in [1, 2); v·edge - edge is u·edge rounded once (see `first_try`).
            let v1 = _mm256_castsi256_pd(_mm256_or_si256(
                _mm256_srli_epi64::<12>(w),
                _mm256_set1_epi64x(ONE),
            ));
            let x = _mm256_fmsub_pd(v1, edge, edge);
            // The bits as signed integers: |x| < |inner| for doubles of one sign.
            let accepted = _mm256_cmpgt_epi64(inner, _mm256_castpd_si256(x));
            let kept = _mm256_blendv_pd(_mm256_castsi256_pd(w), x, _mm256_castsi256_pd(accepted));
            _mm256_storeu_pd(v, kept);
            accepted
        }
    }

    /// [`FirstTry::first_try8`] with AVX2 and FMA: two four-lane halves, their masks packed into
    /// one byte in the order [`swap_middle_pairs`] undoes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline(always)]
    unsafe fn first_try8_avx2(t: &Tables, v: &mut [f64; 8]) -> u8 {
        // SAFETY: the caller guarantees AVX2 and FMA; the halves cover the array.
        unsafe {
            let low = first_try4(t, v.as_mut_ptr());
            let high = first_try4(t, v.as_mut_ptr().add(4));
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_packs_epi32(low, high))) as u8
        }
    }

    /// [`FirstTry::first_try8`] with AVX-512F: [`first_try4`]'s operations on eight lanes.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline(always)]
    unsafe fn first_try8_avx512(t: &Tables, v: &mut [f64; 8]) -> u8 {
        // SAFETY: the caller guarantees AVX-512F; loads and stores cover the array.
        unsafe {
            let p = v.as_ptr().cast::<u64>();
            // Two lanes' edges per 128-bit quarter: even lanes in one register, odd in the other,
            // so the in-lane unpacks give the edges in lane order.
            let even = _mm512_insertf64x4::<1>(
                _mm512_castpd256_pd512(half(signed_edges(t, p), signed_edges(t, p.add(2)))),
                half(signed_edges(t, p.add(4)), signed_edges(t, p.add(6))),
            );
            let odd = _mm512_insertf64x4::<1>(
                _mm512_castpd256_pd512(half(signed_edges(t, p.add(1)), signed_edges(t, p.add(3)))),
                half(signed_edges(t, p.add(5)), signed_edges(t, p.add(7))),
            );
            let edge = _mm512_unpacklo_pd(even, odd);
            let inner = _mm512_castpd_si512(_mm512_unpackhi_pd(even, odd));
            let w = _mm512_loadu_si512(p.cast());
            let v1 = _mm512_castsi512_pd(_mm512_or_si512(
                _mm512_srli_epi64::<12>(w),
                _mm512_set1_epi64(ONE),
            ));
            let x = _mm512_castpd_si512(_mm512_fmsub_pd(v1, edge, edge));
            // The bits as signed integers: |x| < |inner| for doubles of one sign.
            let accepted = _mm512_cmpgt_epi64_mask(inner, x);
            _mm512_mask_storeu_epi64(v.as_mut_ptr().cast(), accepted, x);
            accepted
        }
    }

    /// The AVX2 back ends share one first try.
    macro_rules! avx2_first_try {
        ($($backend:ident),*) => {$(
            impl FirstTry for $backend {
                #[inline(always)]
                fn first_try8(self, t: &Tables, v: &mut [f64; 8]) -> u8 {
                    // SAFETY: this token exists only in code compiled with AVX2 and FMA on a CPU
                    // that has them.
                    unsafe { first_try8_avx2(t, v) }
                }

                #[inline(always)]
                fn in_lane_order(masks: u64) -> u64 {
                    swap_middle_pairs(masks)
                }
            }
        )*};
    }

    avx2_first_try!(AesNi, Vaes256);

    impl FirstTry for Vaes512 {
        #[inline(always)]
        fn first_try8(self, t: &Tables, v: &mut [f64; 8]) -> u8 {
            // SAFETY: a `Vaes512` exists only in code compiled with AVX-512F on a CPU that has it.
            unsafe { first_try8_avx512(t, v) }
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
        let layer = layer_of(w);
        let sign = sign_of(w);
        let x = unit_f64(w) * t.x[layer];
        if x < t.x[layer + 1] {
            return f64::from_bits(x.to_bits() | sign);
        }
        let [a, c] = b.one(keys, index, retry);
        retry += 1;
        if layer == 0 {
            return f64::from_bits(tail(b, keys, index, retry, a, c).to_bits() | sign);
        }
        // In the wedge: a uniform height within the layer, under the density or a fresh try.
        let y = wedge_height(t, layer, a);
        if under_density(y, -0.5 * x * x) {
            return f64::from_bits(x.to_bits() | sign);
        }
        w = c;
    }
}

/// Beyond the tail edge: Marsaglia's exact tail sampler, `x = TAIL + e₁/TAIL` accepted when
/// `2e₂ > (e₁/TAIL)²` for exponentials e₁, e₂ (uniforms in (0, 1] keep ln finite), drawn from the
/// words `a`, `c` of the block that found the tail and then from blocks `(index, retry)`,
/// `(index, retry + 1)`, …. Returns the magnitude.
#[inline(always)]
fn tail<B: Blocks>(b: B, keys: &RoundKeys, index: u64, retry: u64, a: u64, c: u64) -> f64 {
    let (mut a, mut c, mut retry) = (a, c, retry);
    loop {
        let dx = -ln_unit(1.0 - unit_f64(a)) / TAIL;
        let y = -ln_unit(1.0 - unit_f64(c));
        if y + y > dx * dx {
            return TAIL + dx;
        }
        [a, c] = b.one(keys, index, retry);
        retry += 1;
    }
}

/// The uniform height within wedge `layer` (1..=1023) that word `a` gives.
#[inline(always)]
fn wedge_height(t: &Tables, layer: usize, a: u64) -> f64 {
    t.f[layer] + unit_f64(a) * (t.f[layer + 1] - t.f[layer])
}

/// Rejected first tries held back for [`Rejected::finish`]; a multiple of eight.
const QUEUE: usize = 32;

/// Room in the queue: a full queue plus one [`Rejected::push_mask`] of 64 lanes (a power of two,
/// so a position is `% ROOM` rather than bounds-checked).
const ROOM: usize = 128;

/// The batched slow path: a kernel queues the positions of the elements whose first try was
/// rejected (the words stay in the output, where a rejected first try leaves them) and
/// [`Rejected::finish`] decides them eight at a time. Run one by one, each rejected element was a
/// long chain of dependent steps (a block, the wedge's density, a compare) ended by a branch that
/// goes either way about half the time, so nothing overlapped; eight independent lanes computed
/// without branches keep the CPU busy. Every lane performs the operations of [`slow_path`] in its
/// order, so the values are its values.
pub(super) struct Rejected {
    len: usize,
    /// Positions; only slots below `len` are read, and each is written before `len` counts it.
    /// Left uninitialized: zeroing it was ~2 % of a normal mean (a kernel makes a queue per chunk
    /// row).
    at: [MaybeUninit<usize>; ROOM],
}

impl Rejected {
    #[inline(always)]
    pub(super) fn new() -> Self {
        Self {
            len: 0,
            at: [MaybeUninit::uninit(); ROOM],
        }
    }

    /// The queued positions, in order.
    #[cfg(test)]
    fn queued(&self) -> Vec<usize> {
        // SAFETY: every slot below `len` was written before `len` counted it.
        self.at[..self.len]
            .iter()
            .map(|a| unsafe { a.assume_init() })
            .collect()
    }

    /// Whether the queue must be finished before the next push.
    #[inline(always)]
    pub(super) fn is_full(&self) -> bool {
        self.len >= QUEUE
    }

    /// Queues the element at `out[at]`, which holds the word whose first try was rejected. The
    /// queue must not be full. Only the position is stored (the element's index and word are
    /// found from it when the queue is finished): pushing is on the path of every rejection.
    #[inline(always)]
    pub(super) fn push(&mut self, at: usize) {
        let n = self.len;
        debug_assert!(n < ROOM);
        self.at[n % ROOM].write(at);
        self.len = n + 1;
    }

    /// Queues `base + k` for every set bit k of `mask` (the rejected lanes of 64 consecutive
    /// elements). The queue must not be full. A first try rejects one element in 234, so a mask
    /// seldom holds more than one lane: the first two are queued without branches (an unqueued slot is
    /// written and not counted), and only the rarer masks with more lanes loop. Looping over every
    /// mask had mispredicted about once per 64 elements, ~8 % of a normal mean.
    #[inline(always)]
    pub(super) fn push_mask(&mut self, base: usize, mask: u64) {
        debug_assert!(self.len < QUEUE);
        let mut mask = mask;
        for _ in 0..2 {
            let n = self.len;
            self.at[n % ROOM].write(base + mask.trailing_zeros() as usize);
            self.len = n + usize::from(mask != 0);
            mask &= mask.wrapping_sub(1);
        }
        while mask != 0 {
            self.push(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }

    /// Writes the value of every queued element to its position in `out`, where element `start + k`
    /// is `out[k]`, and empties the queue.
    #[inline(always)]
    pub(super) fn finish<B: Blocks>(
        &mut self,
        b: B,
        keys: &RoundKeys,
        t: &Tables,
        start: u64,
        out: &mut [f64],
    ) {
        let mut from = 0;
        while from < self.len {
            // Eight lanes at a time. When fewer are queued, the lanes from `n` on repeat the last
            // queued element: they compute its value again and store it to the same position, so
            // every lane can be computed and stored without a branch on `n`.
            let n = (self.len - from).min(8);
            let mut lanes = Retries {
                n,
                at: [0; 8],
                index: [0; 8],
                retry: [1; 8],
                word: [0; 8],
            };
            for k in 0..8 {
                // SAFETY: `from + k.min(n - 1) < self.len`, and every slot below `len` was
                // written by `push` or `push_mask` before `len` counted it (`len` stays below
                // `ROOM`: at most `QUEUE - 1 + 64` after a push).
                let at = unsafe { self.at[(from + k.min(n - 1)) % ROOM].assume_init() };
                lanes.at[k] = at;
                lanes.index[k] = start.wrapping_add(at as u64);
                lanes.word[k] = out[at].to_bits();
            }
            while lanes.n > 0 {
                lanes.step(b, keys, t, out);
            }
            from += 8;
        }
        self.len = 0;
    }
}

/// Up to eight rejected elements in flight (lanes `0..n`): each one's output position, index, the
/// retry its next block uses and the word whose first try was rejected. Lanes from `n` on repeat
/// lane `n - 1`.
struct Retries {
    n: usize,
    at: [usize; 8],
    index: [u64; 8],
    retry: [u64; 8],
    word: [u64; 8],
}

impl Retries {
    /// One round of [`slow_path`]'s loop for every lane: its block `(index, retry)`, the wedge test
    /// of its word (the tail, for the base layer, scalar: 1 in 80 rejections), and the first try of
    /// the block's second word when the wedge rejects. Finished lanes write their values; the rare
    /// lanes rejected again (under 1 %) stay, compacted to the front.
    #[inline(always)]
    fn step<B: Blocks>(&mut self, b: B, keys: &RoundKeys, t: &Tables, out: &mut [f64]) {
        let mut ctr = [[0u64; 2]; 8];
        for (c, (&index, &retry)) in ctr.iter_mut().zip(self.index.iter().zip(&self.retry)) {
            *c = [index, retry];
        }
        let blocks = b.blocks8(keys, &ctr);
        // Branch-free over the lanes: the wedge value, its height and exponent, the quick decision
        // and the second word's first try.
        let mut value = [0.0f64; 8];
        let mut next = [0.0f64; 8];
        let mut height = [0.0f64; 8];
        let mut exponent = [0.0f64; 8];
        let mut under = 0u32;
        let mut band = 0u32;
        let mut base = 0u32;
        let mut next_rejected = 0u32;
        for k in 0..8 {
            let w = self.word[k];
            let layer = layer_of(w);
            let x = unit_f64(w) * t.x[layer];
            let y = wedge_height(t, layer, blocks[k][0]);
            let e = -0.5 * x * x;
            let (below, above) = quick_wedge(y, e);
            under |= u32::from(below) << k;
            band |= u32::from(!below & !above) << k;
            base |= u32::from(layer == 0) << k;
            value[k] = f64::from_bits(x.to_bits() | sign_of(w));
            next[k] = first_try(t, blocks[k][1]);
            next_rejected |= u32::from(next[k].is_nan()) << k;
            height[k] = y;
            exponent[k] = e;
        }
        let active = (1u32 << self.n) - 1;
        // Heights within the approximation's error band (2·10⁻⁹ relative: rare) get the exact test,
        // in every lane: a lane that repeats an element must choose what that element's lane
        // chooses, since both store to its position.
        let mut exact = band & !base;
        while exact != 0 {
            let k = exact.trailing_zeros() as usize;
            let bit = 1 << k;
            under = if under_density(height[k], exponent[k]) {
                under | bit
            } else {
                under & !bit
            };
            exact &= exact - 1;
        }
        // Wedge accepted: the value; rejected: the next word's first try (NaN when rejected too;
        // such lanes, and the tails, are overwritten below or in a later round).
        // Selected for all lanes first, without branches (which way a lane goes is a coin toss),
        // then stored.
        let mut chosen = [0.0f64; 8];
        for k in 0..8 {
            chosen[k] = if under >> k & 1 == 1 {
                value[k]
            } else {
                next[k]
            };
        }
        for (&at, &v) in self.at.iter().zip(&chosen) {
            out[at] = v;
        }
        let mut tails = base & active;
        while tails != 0 {
            let k = tails.trailing_zeros() as usize;
            let [a, c] = blocks[k];
            let magnitude = tail(b, keys, self.index[k], self.retry[k] + 1, a, c);
            out[self.at[k]] = f64::from_bits(magnitude.to_bits() | sign_of(self.word[k]));
            tails &= tails - 1;
        }
        let mut again = active & !base & !under & next_rejected;
        let mut n = 0;
        while again != 0 {
            let k = again.trailing_zeros() as usize;
            self.at[n] = self.at[k];
            self.index[n] = self.index[k];
            self.retry[n] = self.retry[k] + 1;
            self.word[n] = blocks[k][1];
            n += 1;
            again &= again - 1;
        }
        // The lanes from `n` on repeat lane `n - 1` again (see `Rejected::finish`).
        if n > 0 {
            for k in n..8 {
                self.at[k] = self.at[n - 1];
                self.index[k] = self.index[n - 1];
                self.retry[k] = self.retry[n - 1];
                self.word[k] = self.word[n - 1];
            }
        }
        self.n = n;
    }
}

/// Whether `y < exp_neg(e)` for `e` in [-700, 0], the wedge test, mostly without [`exp_neg`]: a
/// degree-9 series (relative error below 1e-11 after the same range reduction) decides when `y` is
/// farther from it than 1e-9 relative, where the exact value cannot be on the other side; the rare
/// `y` within that band gets the exact comparison. So the answer is always the exact test's.
#[inline(always)]
fn under_density(y: f64, e: f64) -> bool {
    let (below, above) = quick_wedge(y, e);
    if below {
        true
    } else if above {
        false
    } else {
        y < exp_neg(e)
    }
}

/// The quick half of [`under_density`]: whether `y` is surely under and whether it is surely
/// over `exp_neg(e)` (neither: within the band where only the exact value decides).
#[inline(always)]
fn quick_wedge(y: f64, e: f64) -> (bool, bool) {
    let approx = exp_neg_approx(e);
    (y < approx * (1.0 - 1e-9), y > approx * (1.0 + 1e-9))
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
    fn the_signed_first_try_is_the_edge_test() {
        let t = &*TABLES;
        // The definition: ±u·x[l] when u·x[l] < x[l + 1] (u the top 52 bits over 2^52), else
        // rejected (NaN); and rejected for u = 0 with sign -, whose -0 the slow path gives.
        let check = |w: u64| {
            let layer = layer_of(w);
            let x = unit_f64(w) * t.x[layer];
            let got = first_try(t, w);
            if x < t.x[layer + 1] && !(x == 0.0 && sign_of(w) != 0) {
                assert_eq!(got.to_bits(), x.to_bits() | sign_of(w), "{w:#x}");
            } else {
                assert!(got.is_nan(), "{w:#x}");
            }
        };
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for low in 0..=SIGNED_MASK {
            let layer = layer_of(low);
            // u = 0 (a signed zero), the largest u, and the uniforms on either side of the edge
            // test's boundary, found by bisection on the top 52 bits.
            let passes = |m: u64| unit_f64(m << 12) * t.x[layer] < t.x[layer + 1];
            let (mut pass, mut fail) = (0u64, 1u64 << 52);
            if passes(0) {
                while fail - pass > 1 {
                    let mid = pass + (fail - pass) / 2;
                    if passes(mid) {
                        pass = mid;
                    } else {
                        fail = mid;
                    }
                }
            }
            let mut ms = vec![
                0,
                1,
                (1 << 52) - 1,
                pass,
                pass + 1,
                fail.saturating_sub(1),
                fail,
            ];
            for _ in 0..100 {
                state = super::super::mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
                ms.push(state >> 12);
            }
            for m in ms.into_iter().filter(|&m| m < 1 << 52) {
                // The unused bits between the sign and the uniform vary too.
                check(m << 12 | (m << (LAYER_BITS + 1) & 0xFFF) | low);
            }
        }
        // The top layer is always rejected, the base layer accepts up to the tail edge.
        let top = LAYER_MASK;
        assert!(first_try(t, top).is_nan() && first_try(t, top | 1 << LAYER_BITS).is_nan());
        assert_eq!(first_try(t, 0).to_bits(), 0);
        assert!(first_try(t, 1 << LAYER_BITS).is_nan());
        let keys = RoundKeys::new(1, 2);
        let slow = slow_path(Soft, &keys, t, 0, 1 << LAYER_BITS);
        assert_eq!(slow.to_bits(), (-0.0f64).to_bits());
        for _ in 0..200_000 {
            state = super::super::mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            check(state);
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
            // Force the top layer (always rejected) and the base layer into some rounds, and u = 0
            // with either sign (the fused product's +0) into others.
            if round % 7 == 0 {
                words[3] |= LAYER_MASK;
                words[5] &= !LAYER_MASK;
            }
            if round % 11 == 0 {
                words[round % 8] &= 0xFFF;
                words[(round + 3) % 8] &= SIGNED_MASK >> 1;
            }
            // The accepted bits in lane order; the rejected ones are the rest.
            let check = |accepted: u64, out: &[f64; 8], path: &str| {
                let rejected = !accepted & 0xFF;
                for (k, &w) in words.iter().enumerate() {
                    let scalar = first_try(t, w);
                    assert_eq!(rejected >> k & 1 == 1, scalar.is_nan(), "{path} lane {k}");
                    // Accepted lanes hold the value, rejected ones still their word.
                    let expect = if scalar.is_nan() { w } else { scalar.to_bits() };
                    assert_eq!(out[k].to_bits(), expect, "{path} lane {k}");
                }
            };
            let fresh = || words.map(f64::from_bits);
            let mut out = fresh();
            let r = Soft.first_try8(t, &mut out);
            rejections += r.count_zeros();
            check(Soft::in_lane_order(u64::from(r)), &out, "portable");
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("aes")
                {
                    use super::super::ars::AesNi;
                    #[target_feature(enable = "avx2,fma")]
                    fn avx2(t: &Tables, v: &mut [f64; 8]) -> u8 {
                        // SAFETY: called only after detecting AVX2, FMA and AES-NI.
                        unsafe { AesNi::new() }.first_try8(t, v)
                    }
                    let mut out = fresh();
                    // SAFETY: AVX2, FMA and AES-NI were detected.
                    let r = unsafe { avx2(t, &mut out) };
                    check(AesNi::in_lane_order(u64::from(r)), &out, "avx2");
                }
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("vaes")
                    && is_x86_feature_detected!("aes")
                {
                    #[target_feature(enable = "avx512f")]
                    fn avx512(t: &Tables, v: &mut [f64; 8]) -> u8 {
                        // SAFETY: called only after detecting AVX-512F, VAES and AES-NI (the
                        // token's contract); only AVX-512F is used here.
                        unsafe { super::super::ars::Vaes512::new() }.first_try8(t, v)
                    }
                    let mut out = fresh();
                    // SAFETY: AVX-512F, VAES and AES-NI were detected.
                    let r = unsafe { avx512(t, &mut out) };
                    let in_order = super::super::ars::Vaes512::in_lane_order(u64::from(r));
                    check(in_order, &out, "avx512");
                }
            }
        }
        // The words exercised both outcomes (0.43 % of lanes are rejected, more here).
        assert!(rejections > 1000, "{rejections}");
    }

    /// The batched slow path over `words` (each one's first try rejected), element `start + j` having
    /// word `words[j]`: their values in order.
    #[inline(always)]
    fn batched_body<B: Blocks>(b: B, keys: &RoundKeys, start: u64, words: &[u64], out: &mut [f64]) {
        let t = &*TABLES;
        let mut queue = Rejected::new();
        for (o, &w) in out.iter_mut().zip(words) {
            *o = f64::from_bits(w);
        }
        for j in 0..words.len() {
            queue.push(j);
            if queue.is_full() {
                queue.finish(b, keys, t, start, out);
            }
        }
        queue.finish(b, keys, t, start, out);
    }

    use super::super::ars::AesLevel;

    super::super::ars::aes_kernel! {
        fn batched(keys: &RoundKeys, start: u64, words: &[u64], out: &mut [f64]) = batched_body;
    }

    #[test]
    fn the_batched_slow_path_gives_the_scalar_values_on_every_path() {
        use super::super::ars::soft_block;
        let t = &*TABLES;
        let keys = RoundKeys::new(0x0DDB_1A5E_5BAD_5EED, 0x5EED_0FC0_FFEE);
        // Rejected first tries: random words that are rejected, and forced ones in the top layer
        // (always rejected: a wedge) and in the base layer beyond the tail edge (the tail).
        let mut words = Vec::new();
        let mut state = 0x0123_4567_89AB_CDEFu64;
        while words.len() < 60_000 {
            state = super::super::mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            let w = match words.len() % 10 {
                0 => state | LAYER_MASK,
                1 => state & !LAYER_MASK | 0xFFF0_0000_0000_0000,
                _ => super::super::mix64(state),
            };
            if first_try(t, w).is_nan() {
                words.push(w);
            }
        }
        // Element indices from 0, from the middle, and across 2^64 (where they wrap).
        for start in [0, 0x0123_4567_89AB_CDEF, u64::MAX - 10_000] {
            // The cases the lanes must handle all occur: a wedge accepted at once, a wedge
            // rejected whose next word is accepted, rejected again (another round), and the tail.
            let (mut accepted, mut next_word, mut again, mut tails) = (0, 0, 0, 0);
            for (j, &w) in words.iter().enumerate() {
                let layer = layer_of(w);
                let [a, c] = soft_block(&keys, [start.wrapping_add(j as u64), 1]);
                if layer == 0 {
                    tails += 1;
                } else {
                    let x = unit_f64(w) * t.x[layer];
                    if under_density(wedge_height(t, layer, a), -0.5 * x * x) {
                        accepted += 1;
                    } else if first_try(t, c).is_nan() {
                        again += 1;
                    } else {
                        next_word += 1;
                    }
                }
            }
            assert!(
                accepted > 1000 && next_word > 1000 && again > 30 && tails > 1000,
                "{accepted} {next_word} {again} {tails}"
            );
            let expect: Vec<u64> = words
                .iter()
                .enumerate()
                .map(|(j, &w)| slow_path(Soft, &keys, t, start.wrapping_add(j as u64), w).to_bits())
                .collect();
            let mut levels = AesLevel::all();
            levels.retain(|&l| l <= AesLevel::detected());
            for level in levels {
                // Queue lengths that leave partial groups of lanes too.
                for n in [words.len(), 13, 1] {
                    let mut out = vec![f64::NAN; n];
                    batched(level, &keys, start, &words[..n], &mut out);
                    let got: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, expect[..n], "{level:?} {start}");
                }
            }
        }
    }

    /// Blocks that are ARS-5's except for one scripted counter.
    #[derive(Clone, Copy)]
    struct Scripted {
        counter: [u64; 2],
        block: [u64; 2],
    }

    impl Blocks for Scripted {
        fn one(self, keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2] {
            if [lo, hi] == self.counter {
                self.block
            } else {
                super::super::ars::soft_block(keys, [lo, hi])
            }
        }
    }

    #[test]
    fn a_partial_group_decides_a_wedge_in_the_exact_band_as_the_scalar_path_does() {
        // The last of three queued elements (a group of eight lanes, five repeating it) has a wedge
        // height within the quick test's error band, just under the density: only the exact
        // test accepts it. Every lane that stores to its position must agree.
        let t = &*TABLES;
        let keys = RoundKeys::new(7, 11);
        let layer = 100;
        let w = ((1u64 << 52) - 1) << 12 | layer as u64;
        assert!(first_try(t, w).is_nan());
        let x = unit_f64(w) * t.x[layer];
        let e = -0.5 * x * x;
        let target = exp_neg(e) * (1.0 - 1e-12);
        let u = (target - t.f[layer]) / (t.f[layer + 1] - t.f[layer]);
        let a = ((u * (1u64 << 52) as f64) as u64) << 12;
        let y = wedge_height(t, layer, a);
        assert_eq!(quick_wedge(y, e), (false, false), "in the band");
        assert!(y < exp_neg(e), "under the density");
        // Its block's second word would be accepted at once: a lane that skipped the exact test
        // would store that value instead.
        let c = (1u64 << 40) << 12 | 3;
        assert!(!first_try(t, c).is_nan());
        let start = 1000;
        let b = Scripted {
            counter: [start + 2, 1],
            block: [a, c],
        };
        let mut words = vec![];
        let mut state = 99u64;
        while words.len() < 2 {
            state = super::super::mix64(state);
            if first_try(t, state).is_nan() && layer_of(state) != 0 {
                words.push(state);
            }
        }
        words.push(w);
        let mut out: Vec<f64> = words.iter().map(|&w| f64::from_bits(w)).collect();
        let mut queue = Rejected::new();
        for j in 0..words.len() {
            queue.push(j);
        }
        queue.finish(b, &keys, t, start, &mut out);
        for (j, &w) in words.iter().enumerate() {
            let expect = slow_path(b, &keys, t, start + j as u64, w);
            assert_eq!(out[j].to_bits(), expect.to_bits(), "element {j}");
        }
        assert_eq!(out[2], x);
    }

    #[test]
    fn a_mask_queues_its_lanes_in_order() {
        // No lane, one, two (the branch-free pushes), three and all 64 (the loop), and masks
        // that take the queue past QUEUE before it is finished.
        let masks = [
            0u64,
            1 << 63,
            0b101,
            0b1_0000_0110,
            u64::MAX,
            1,
            1 << 40 | 1 << 7 | 1 << 3,
        ];
        let mut queue = Rejected::new();
        let mut expected = Vec::new();
        for (c, &mask) in masks.iter().enumerate() {
            if queue.is_full() {
                assert_eq!(queue.queued(), expected);
                queue.len = 0;
                expected.clear();
            }
            queue.push_mask(1000 * c, mask);
            expected.extend((0..64).filter(|k| mask >> k & 1 == 1).map(|k| 1000 * c + k));
        }
        assert_eq!(queue.queued(), expected);
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
        // is the normal distribution's tail probability P(Z > R) = 2.685696730343e-5 times √(2π).
        let base = TAIL * t.f[1] + 2.685_696_730_343e-5 * (2.0 * std::f64::consts::PI).sqrt();
        assert!((base - LAYER_AREA).abs() < 1e-12, "{base}");
    }
}
