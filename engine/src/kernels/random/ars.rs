//! ARS-5, the counter-based block function behind every random value: five AES rounds applied to a
//! 128-bit counter under a key schedule that adds a Weyl constant per round (Salmon, Moraes, Dror and
//! Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC11), written from that description. This
//! module owns the block function in three forms that give the same bits — a portable software AES
//! round (any CPU, any architecture), AES-NI on 128-bit registers, and VAES on 256- or 512-bit
//! registers (two or four blocks per instruction) — and the run-time choice between them.
//!
//! **Definition.** A block is two u64 words `(lo, hi)`, laid out like an x86 `__m128i` whose low
//! 64 bits are `lo` (bytes in little-endian order form the AES state column by column). For a key
//! `k = (k0, k1)` the round keys are `rk[r] = (k0 + r·W0, k1 + r·W1)` for r in 0..=5 (each word
//! wrapping modulo 2^64), with `W0 = 0x9E3779B97F4A7C15` (golden ratio) and
//! `W1 = 0xBB67AE8584CAA73B` (√3 − 1). Then `v = ctr ^ rk[0]`, `v = AESENC(v, rk[r])` for r in
//! 1..=4 and `v = AESENCLAST(v, rk[5])`, where AESENC is one full AES round (ShiftRows, SubBytes,
//! MixColumns, xor of the round key) and AESENCLAST omits MixColumns — exactly the x86 instructions,
//! so the AES-NI and VAES paths are one instruction per round. The output block `v` supplies two
//! 64-bit words.
//!
//! The software round uses the classic four 256-entry tables that fold SubBytes and MixColumns into
//! one lookup per byte; the tables are computed at compile time from the AES field arithmetic, and a
//! test checks the round against the FIPS-197 example and against the AES-NI instruction.

use std::sync::atomic::{AtomicU8, Ordering};

/// Weyl increments of the key schedule (low and high word).
const WEYL: [u64; 2] = [0x9E37_79B9_7F4A_7C15, 0xBB67_AE85_84CA_A73B];

/// AES rounds per block. Five is the count Salmon et al. found BigCrush-clean with margin (four pass
/// too); fewer would be faster and untested.
pub(super) const ROUNDS: usize = 5;

/// The round keys of one key: computed once per kernel call, so the loops only xor and encrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RoundKeys([[u64; 2]; ROUNDS + 1]);

impl RoundKeys {
    pub(super) fn new(k0: u64, k1: u64) -> Self {
        let mut rk = [[0u64; 2]; ROUNDS + 1];
        let mut k = [k0, k1];
        for r in &mut rk {
            *r = k;
            k = [k[0].wrapping_add(WEYL[0]), k[1].wrapping_add(WEYL[1])];
        }
        Self(rk)
    }
}

// ---------------------------------------------------------------------------------------------
// Software AES

/// Multiplication by x (that is, 2) in GF(2^8) modulo the AES polynomial x^8 + x^4 + x^3 + x + 1.
const fn xtime(a: u8) -> u8 {
    (a << 1) ^ if a & 0x80 != 0 { 0x1B } else { 0 }
}

const fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        a = xtime(a);
        b >>= 1;
    }
    p
}

/// The AES S-box: the multiplicative inverse in GF(2^8) (0 maps to 0) followed by the affine map
/// `b ^ rotl(b,1) ^ rotl(b,2) ^ rotl(b,3) ^ rotl(b,4) ^ 0x63`.
const fn sbox() -> [u8; 256] {
    let mut s = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        // The inverse by search: 256² multiplications, once, at compile time.
        let mut inv = 0u8;
        if x != 0 {
            let mut y = 1usize;
            while y < 256 {
                if gf_mul(x as u8, y as u8) == 1 {
                    inv = y as u8;
                    break;
                }
                y += 1;
            }
        }
        s[x] = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
        x += 1;
    }
    s
}

pub(super) const SBOX: [u8; 256] = sbox();

/// `TE[x]`: the column that input byte `x` in row 0 contributes after SubBytes and MixColumns,
/// packed little-endian (row 0 in the low byte): (2·S, S, S, 3·S). Rows 1–3 use the same column
/// rotated by 8, 16 and 24 bits.
const fn round_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut x = 0;
    while x < 256 {
        let s = SBOX[x];
        t[x] = u32::from_le_bytes([gf_mul(s, 2), s, s, gf_mul(s, 3)]);
        x += 1;
    }
    t
}

static TE: [u32; 256] = round_table();

/// The AES state as four little-endian columns.
#[inline(always)]
fn columns(v: [u64; 2]) -> [u32; 4] {
    [
        v[0] as u32,
        (v[0] >> 32) as u32,
        v[1] as u32,
        (v[1] >> 32) as u32,
    ]
}

#[inline(always)]
fn words(c: [u32; 4]) -> [u64; 2] {
    [
        u64::from(c[0]) | u64::from(c[1]) << 32,
        u64::from(c[2]) | u64::from(c[3]) << 32,
    ]
}

/// Byte `row` of column `col` after ShiftRows, which moves row r left by r columns.
#[inline(always)]
fn shifted(c: &[u32; 4], row: usize, col: usize) -> usize {
    ((c[(col + row) % 4] >> (8 * row)) & 0xFF) as usize
}

/// AESENC in software: ShiftRows, SubBytes, MixColumns, then xor of the round key.
#[inline(always)]
pub(super) fn soft_aesenc(v: [u64; 2], key: [u64; 2]) -> [u64; 2] {
    let c = columns(v);
    let mut out = [0u32; 4];
    for (col, o) in out.iter_mut().enumerate() {
        *o = TE[shifted(&c, 0, col)]
            ^ TE[shifted(&c, 1, col)].rotate_left(8)
            ^ TE[shifted(&c, 2, col)].rotate_left(16)
            ^ TE[shifted(&c, 3, col)].rotate_left(24);
    }
    let o = words(out);
    [o[0] ^ key[0], o[1] ^ key[1]]
}

/// AESENCLAST in software: ShiftRows, SubBytes, then xor of the round key.
#[inline(always)]
pub(super) fn soft_aesenclast(v: [u64; 2], key: [u64; 2]) -> [u64; 2] {
    let c = columns(v);
    let mut out = [0u32; 4];
    for (col, o) in out.iter_mut().enumerate() {
        *o = u32::from_le_bytes([0, 1, 2, 3].map(|row| SBOX[shifted(&c, row, col)]));
    }
    let o = words(out);
    [o[0] ^ key[0], o[1] ^ key[1]]
}

/// ARS-5 of one block in software.
#[inline(always)]
pub(super) fn soft_block(keys: &RoundKeys, ctr: [u64; 2]) -> [u64; 2] {
    let rk = &keys.0;
    let mut v = [ctr[0] ^ rk[0][0], ctr[1] ^ rk[0][1]];
    for key in &rk[1..ROUNDS] {
        v = soft_aesenc(v, *key);
    }
    soft_aesenclast(v, rk[ROUNDS])
}

// ---------------------------------------------------------------------------------------------
// Back ends

/// One implementation of the block function. Kernels are generic over it and are compiled once per
/// back end inside a function that enables the instructions it uses (see [`aes_kernel!`]).
pub(super) trait Blocks: Copy {
    /// The block of counter `(lo, hi)`.
    fn one(self, keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2];

    /// `out[2j], out[2j+1]` = the block of counter `(first + j, hi)` (`first + j` wrapping), for
    /// every j below `out.len() / 2`; `out.len()` must be even.
    #[inline(always)]
    fn fill(self, keys: &RoundKeys, first: u64, hi: u64, out: &mut [u64]) {
        debug_assert!(out.len().is_multiple_of(2));
        let mut lo = first;
        for pair in out.chunks_exact_mut(2) {
            pair.copy_from_slice(&self.one(keys, lo, hi));
            lo = lo.wrapping_add(1);
        }
    }

    /// The blocks of eight arbitrary counters `ctr[k] = (lo, hi)`: the rejected normals' retries,
    /// whose counters belong to scattered elements. Eight independent blocks let the AES rounds of
    /// different counters overlap instead of waiting on one another.
    #[inline(always)]
    fn blocks8(self, keys: &RoundKeys, ctr: &[[u64; 2]; 8]) -> [[u64; 2]; 8] {
        let mut out = [[0u64; 2]; 8];
        for (o, c) in out.iter_mut().zip(ctr) {
            *o = self.one(keys, c[0], c[1]);
        }
        out
    }

    /// The sum of `w >> 12` over the words [`Blocks::fill`] would write into `buf` (the uniform
    /// values in units of 2^-52), `buf.len()` even and at most 2^12 so the sum fits a u64. `buf`
    /// is scratch: a back end may sum the blocks in registers instead of storing them.
    #[inline(always)]
    fn mantissa_sum(self, keys: &RoundKeys, first: u64, hi: u64, buf: &mut [u64]) -> u64 {
        self.fill(keys, first, hi, buf);
        let mut sum = 0u64;
        for &w in buf.iter() {
            sum += w >> 12;
        }
        sum
    }
}

/// The portable back end.
#[derive(Clone, Copy, Debug)]
pub(super) struct Soft;

impl Blocks for Soft {
    #[inline(always)]
    fn one(self, keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2] {
        soft_block(keys, [lo, hi])
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{AesNi, Vaes256, Vaes512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Blocks, ROUNDS, RoundKeys};

    /// ARS-5's rounds on every register of the array `$v` (counters in, blocks out): the whitening
    /// XOR with `$rk[0]`, the middle rounds, the last round. `$xor`, `$enc` and `$last` are the
    /// register width's intrinsics, so the three widths share one statement of the rounds. Each
    /// round runs over all registers before the next, keeping that many blocks in flight. Expands
    /// to intrinsic calls: use it inside `unsafe` code whose CPU features cover them.
    macro_rules! ars5_rounds {
        ($v:expr, $rk:expr, $xor:ident, $enc:ident, $last:ident) => {{
            let rk = $rk;
            for x in $v.iter_mut() {
                *x = $xor(*x, rk[0]);
            }
            for key in &rk[1..ROUNDS] {
                for x in $v.iter_mut() {
                    *x = $enc(*x, *key);
                }
            }
            for x in $v.iter_mut() {
                *x = $last(*x, rk[ROUNDS]);
            }
        }};
    }

    /// AES-NI on one block per register. Only [`super::aes_kernel!`] creates it, inside a function
    /// compiled with `aes` (and `avx2`) enabled after detection said the CPU has them.
    #[derive(Clone, Copy, Debug)]
    pub(in super::super) struct AesNi(());

    /// VAES on two blocks per 256-bit register (with AVX2).
    #[derive(Clone, Copy, Debug)]
    pub(in super::super) struct Vaes256(());

    /// VAES on four blocks per 512-bit register (with AVX-512F).
    #[derive(Clone, Copy, Debug)]
    pub(in super::super) struct Vaes512(());

    impl AesNi {
        /// # Safety
        /// The CPU must support `aes`, `avx2` and `fma`, and the token must only be used in code
        /// compiled with them enabled.
        pub(in super::super) unsafe fn new() -> Self {
            Self(())
        }
    }

    impl Vaes256 {
        /// # Safety
        /// The CPU must support `vaes`, `aes`, `avx2` and `fma`, used as for [`AesNi::new`].
        pub(in super::super) unsafe fn new() -> Self {
            Self(())
        }
    }

    impl Vaes512 {
        /// # Safety
        /// The CPU must support `vaes`, `aes`, `avx512f` (and the AVX-512 subsets the caller enables),
        /// used as for [`AesNi::new`].
        pub(in super::super) unsafe fn new() -> Self {
            Self(())
        }
    }

    #[inline(always)]
    fn xmm(w: [u64; 2]) -> __m128i {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_set_epi64x(w[1] as i64, w[0] as i64) }
    }

    /// ARS-5 of one block with AES-NI.
    ///
    /// # Safety
    /// The CPU must support `aes`.
    #[inline(always)]
    unsafe fn one_xmm(keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2] {
        let rk = &keys.0;
        // SAFETY: the caller guarantees AES-NI; the rest is SSE2.
        unsafe {
            let mut v = _mm_xor_si128(xmm([lo, hi]), xmm(rk[0]));
            for key in &rk[1..ROUNDS] {
                v = _mm_aesenc_si128(v, xmm(*key));
            }
            v = _mm_aesenclast_si128(v, xmm(rk[ROUNDS]));
            let mut out = [0u64; 2];
            _mm_storeu_si128(out.as_mut_ptr().cast(), v);
            out
        }
    }

    impl Blocks for AesNi {
        #[inline(always)]
        fn one(self, keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2] {
            // SAFETY: an `AesNi` exists only where AES-NI is available (see `new`).
            unsafe { one_xmm(keys, lo, hi) }
        }

        #[inline(always)]
        fn blocks8(self, keys: &RoundKeys, ctr: &[[u64; 2]; 8]) -> [[u64; 2]; 8] {
            let mut rk = [xmm([0, 0]); ROUNDS + 1];
            for (r, k) in rk.iter_mut().zip(&keys.0) {
                *r = xmm(*k);
            }
            let mut out = [[0u64; 2]; 8];
            // SAFETY: AES-NI as in `one`; every load and store covers one 16-byte counter or block.
            unsafe {
                let mut v = [_mm_setzero_si128(); 8];
                for (x, c) in v.iter_mut().zip(ctr) {
                    *x = _mm_loadu_si128(c.as_ptr().cast());
                }
                let v = Self::blocks::<8>(&v, &rk);
                for (o, x) in out.iter_mut().zip(&v) {
                    _mm_storeu_si128(o.as_mut_ptr().cast(), *x);
                }
            }
            out
        }

        #[inline(always)]
        fn fill(self, keys: &RoundKeys, first: u64, hi: u64, out: &mut [u64]) {
            // Eight independent blocks in flight cover the latency of `aesenc` (3–4 cycles at up to
            // two per cycle).
            const B: usize = 8;
            let mut rk = [xmm([0, 0]); ROUNDS + 1];
            for (r, k) in rk.iter_mut().zip(&keys.0) {
                *r = xmm(*k);
            }
            let mut chunks = out.chunks_exact_mut(2 * B);
            let mut lo = first;
            // SAFETY: AES-NI as in `one`; every store writes 16 bytes inside a chunk of 2·B words.
            unsafe {
                let step = _mm_set_epi64x(0, B as i64);
                // Plain loops over the lanes rather than `array::map`, whose closures would be
                // compiled without the target features and keep the intrinsics out of line.
                let mut ctr = [_mm_setzero_si128(); B];
                for (j, c) in ctr.iter_mut().enumerate() {
                    *c = xmm([lo.wrapping_add(j as u64), hi]);
                }
                for chunk in &mut chunks {
                    let v = Self::blocks(&ctr, &rk);
                    for (j, x) in v.iter().enumerate() {
                        _mm_storeu_si128(chunk.as_mut_ptr().add(2 * j).cast(), *x);
                    }
                    for c in &mut ctr {
                        *c = _mm_add_epi64(*c, step);
                    }
                    lo = lo.wrapping_add(B as u64);
                }
            }
            for pair in chunks.into_remainder().chunks_exact_mut(2) {
                pair.copy_from_slice(&self.one(keys, lo, hi));
                lo = lo.wrapping_add(1);
            }
        }

        #[inline(always)]
        fn mantissa_sum(self, keys: &RoundKeys, first: u64, hi: u64, buf: &mut [u64]) -> u64 {
            // The blocks are shifted and added in registers as they come out of the last round:
            // no store and reload of every word (the headline's AVX2 path is this loop). Integer
            // sums, so the result is the default method's.
            const B: usize = 8;
            debug_assert!(buf.len().is_multiple_of(2) && buf.len() <= 1 << 12);
            let mut rk = [xmm([0, 0]); ROUNDS + 1];
            for (r, k) in rk.iter_mut().zip(&keys.0) {
                *r = xmm(*k);
            }
            let groups = buf.len() / (2 * B);
            let mut lo = first;
            let mut sum = 0u64;
            // SAFETY: an `AesNi` exists only where AES-NI (and AVX2) are available.
            unsafe {
                let step = _mm_set_epi64x(0, B as i64);
                let mut ctr = [_mm_setzero_si128(); B];
                for (j, c) in ctr.iter_mut().enumerate() {
                    *c = xmm([lo.wrapping_add(j as u64), hi]);
                }
                let mut acc = [_mm_setzero_si128(); 2];
                for _ in 0..groups {
                    let v = Self::blocks::<B>(&ctr, &rk);
                    for (j, x) in v.iter().enumerate() {
                        acc[j & 1] = _mm_add_epi64(acc[j & 1], _mm_srli_epi64::<12>(*x));
                    }
                    for c in &mut ctr {
                        *c = _mm_add_epi64(*c, step);
                    }
                    lo = lo.wrapping_add(B as u64);
                }
                let mut lanes = [0u64; 4];
                _mm_storeu_si128(lanes.as_mut_ptr().cast(), acc[0]);
                _mm_storeu_si128(lanes.as_mut_ptr().add(2).cast(), acc[1]);
                for l in lanes {
                    sum += l;
                }
            }
            for _ in groups * B..buf.len() / 2 {
                let [a, b] = self.one(keys, lo, hi);
                sum += (a >> 12) + (b >> 12);
                lo = lo.wrapping_add(1);
            }
            sum
        }
    }

    impl AesNi {
        /// `B` blocks from the counters `ctr`, ARS-5 with the round keys `rk`.
        ///
        /// # Safety
        /// The CPU must support AES-NI.
        #[inline(always)]
        unsafe fn blocks<const B: usize>(
            ctr: &[__m128i; B],
            rk: &[__m128i; ROUNDS + 1],
        ) -> [__m128i; B] {
            let mut v = *ctr;
            // SAFETY: the caller guarantees AES-NI; the rest is SSE2.
            unsafe {
                ars5_rounds!(v, rk, _mm_xor_si128, _mm_aesenc_si128, _mm_aesenclast_si128);
            }
            v
        }
    }

    impl Vaes256 {
        /// The round keys, each broadcast to both 128-bit lanes.
        ///
        /// # Safety
        /// The CPU must support AVX2.
        #[inline(always)]
        unsafe fn round_keys(keys: &RoundKeys) -> [__m256i; ROUNDS + 1] {
            // SAFETY: the caller guarantees AVX2.
            unsafe {
                let mut rk = [_mm256_setzero_si256(); ROUNDS + 1];
                for (r, k) in rk.iter_mut().zip(&keys.0) {
                    let (a, b) = (k[0] as i64, k[1] as i64);
                    *r = _mm256_set_epi64x(b, a, b, a);
                }
                rk
            }
        }

        /// The counters `(lo + 2j, hi)` and `(lo + 2j + 1, hi)` in register `j`, for `j < R`.
        ///
        /// # Safety
        /// The CPU must support AVX2.
        #[inline(always)]
        unsafe fn counters<const R: usize>(lo: u64, hi: u64) -> [__m256i; R] {
            // SAFETY: the caller guarantees AVX2.
            unsafe {
                let mut ctr = [_mm256_setzero_si256(); R];
                for (j, c) in ctr.iter_mut().enumerate() {
                    let l = lo.wrapping_add(2 * j as u64);
                    let (h, l0, l1) = (hi as i64, l as i64, l.wrapping_add(1) as i64);
                    *c = _mm256_set_epi64x(h, l1, h, l0);
                }
                ctr
            }
        }

        /// ARS-5 of the `2R` blocks in `ctr`, two per register.
        ///
        /// # Safety
        /// The CPU must support VAES and AVX2.
        #[inline(always)]
        unsafe fn blocks<const R: usize>(
            ctr: &[__m256i; R],
            rk: &[__m256i; ROUNDS + 1],
        ) -> [__m256i; R] {
            let mut v = *ctr;
            // SAFETY: the caller guarantees VAES and AVX2.
            unsafe {
                ars5_rounds!(
                    v,
                    rk,
                    _mm256_xor_si256,
                    _mm256_aesenc_epi128,
                    _mm256_aesenclast_epi128
                );
            }
            v
        }
    }

    /// Registers of two blocks each that [`Vaes256`] keeps in flight: `vaesenc ymm` issues up to
    /// two per cycle with a latency of about four (AMD Zen 3, the AVX2 servers with VAES), so
    /// eight independent registers keep both units busy; four left half the throughput unused.
    const VAES256_REGS: usize = 8;

    impl Blocks for Vaes256 {
        #[inline(always)]
        fn one(self, keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2] {
            // SAFETY: a `Vaes256` exists only where AES-NI is available (see `new`).
            unsafe { one_xmm(keys, lo, hi) }
        }

        #[inline(always)]
        fn blocks8(self, keys: &RoundKeys, ctr: &[[u64; 2]; 8]) -> [[u64; 2]; 8] {
            let mut out = [[0u64; 2]; 8];
            // SAFETY: VAES and AVX2 as `new` requires; each load and store covers two 16-byte
            // counters or blocks (k = 0, 2, 4, 6 of eight).
            unsafe {
                let rk = Self::round_keys(keys);
                let mut c = [_mm256_setzero_si256(); 4];
                for (j, x) in c.iter_mut().enumerate() {
                    *x = _mm256_loadu_si256(ctr.as_ptr().add(2 * j).cast());
                }
                for (j, x) in Self::blocks(&c, &rk).iter().enumerate() {
                    _mm256_storeu_si256(out.as_mut_ptr().add(2 * j).cast(), *x);
                }
            }
            out
        }

        #[inline(always)]
        fn fill(self, keys: &RoundKeys, first: u64, hi: u64, out: &mut [u64]) {
            const R: usize = VAES256_REGS;
            const WORDS: usize = 4 * R;
            let mut chunks = out.chunks_exact_mut(WORDS);
            let mut lo = first;
            // SAFETY: VAES and AVX2 as `new` requires; every store writes 32 bytes inside a chunk
            // of WORDS words.
            unsafe {
                let rk = Self::round_keys(keys);
                let step = _mm256_set_epi64x(0, 2 * R as i64, 0, 2 * R as i64);
                let mut ctr = Self::counters::<R>(lo, hi);
                for chunk in &mut chunks {
                    for (j, x) in Self::blocks(&ctr, &rk).iter().enumerate() {
                        _mm256_storeu_si256(chunk.as_mut_ptr().add(4 * j).cast(), *x);
                    }
                    for c in &mut ctr {
                        *c = _mm256_add_epi64(*c, step);
                    }
                    lo = lo.wrapping_add(2 * R as u64);
                }
            }
            for pair in chunks.into_remainder().chunks_exact_mut(2) {
                pair.copy_from_slice(&self.one(keys, lo, hi));
                lo = lo.wrapping_add(1);
            }
        }

        #[inline(always)]
        fn mantissa_sum(self, keys: &RoundKeys, first: u64, hi: u64, buf: &mut [u64]) -> u64 {
            // As AES-NI's: the blocks are shifted and added in registers as they leave the last
            // round, never stored (the headline's path on an AVX2 server with VAES).
            const R: usize = VAES256_REGS;
            debug_assert!(buf.len().is_multiple_of(2) && buf.len() <= 1 << 12);
            let groups = buf.len() / (4 * R);
            let mut lo = first;
            let mut sum = 0u64;
            // SAFETY: VAES and AVX2 as `new` requires.
            unsafe {
                let rk = Self::round_keys(keys);
                let step = _mm256_set_epi64x(0, 2 * R as i64, 0, 2 * R as i64);
                let mut ctr = Self::counters::<R>(lo, hi);
                let mut acc = [_mm256_setzero_si256(); 2];
                for _ in 0..groups {
                    for (j, x) in Self::blocks(&ctr, &rk).iter().enumerate() {
                        acc[j & 1] = _mm256_add_epi64(acc[j & 1], _mm256_srli_epi64::<12>(*x));
                    }
                    for c in &mut ctr {
                        *c = _mm256_add_epi64(*c, step);
                    }
                    lo = lo.wrapping_add(2 * R as u64);
                }
                let mut lanes = [0u64; 8];
                _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc[0]);
                _mm256_storeu_si256(lanes.as_mut_ptr().add(4).cast(), acc[1]);
                for l in lanes {
                    sum += l;
                }
            }
            for _ in groups * 2 * R..buf.len() / 2 {
                let [a, b] = self.one(keys, lo, hi);
                sum += (a >> 12) + (b >> 12);
                lo = lo.wrapping_add(1);
            }
            sum
        }
    }

    impl Blocks for Vaes512 {
        #[inline(always)]
        fn one(self, keys: &RoundKeys, lo: u64, hi: u64) -> [u64; 2] {
            // SAFETY: a `Vaes512` exists only where AES-NI is available (see `new`).
            unsafe { one_xmm(keys, lo, hi) }
        }

        #[inline(always)]
        fn blocks8(self, keys: &RoundKeys, ctr: &[[u64; 2]; 8]) -> [[u64; 2]; 8] {
            let mut out = [[0u64; 2]; 8];
            // SAFETY: VAES and AVX-512F as `new` requires; each load and store covers four
            // 16-byte counters or blocks (k = 0 and 4 of eight).
            unsafe {
                let mut rk = [_mm512_setzero_si512(); ROUNDS + 1];
                for (r, k) in rk.iter_mut().zip(&keys.0) {
                    let (a, b) = (k[0] as i64, k[1] as i64);
                    *r = _mm512_set_epi64(b, a, b, a, b, a, b, a);
                }
                let mut v = [_mm512_setzero_si512(); 2];
                for (j, x) in v.iter_mut().enumerate() {
                    *x = _mm512_loadu_si512(ctr.as_ptr().add(4 * j).cast());
                }
                ars5_rounds!(
                    v,
                    &rk,
                    _mm512_xor_si512,
                    _mm512_aesenc_epi128,
                    _mm512_aesenclast_epi128
                );
                for (j, x) in v.iter().enumerate() {
                    _mm512_storeu_si512(out.as_mut_ptr().add(4 * j).cast(), *x);
                }
            }
            out
        }

        #[inline(always)]
        fn fill(self, keys: &RoundKeys, first: u64, hi: u64, out: &mut [u64]) {
            // Four registers of four blocks each in flight (`vaesenc zmm`: one per cycle, latency
            // 3–5).
            const R: usize = 4;
            const WORDS: usize = 8 * R;
            let mut chunks = out.chunks_exact_mut(WORDS);
            let mut lo = first;
            // SAFETY: VAES and AVX-512F as `new` requires; every store writes 64 bytes inside a
            // chunk of WORDS words.
            unsafe {
                let mut rk = [_mm512_setzero_si512(); ROUNDS + 1];
                for (r, k) in rk.iter_mut().zip(&keys.0) {
                    let (a, b) = (k[0] as i64, k[1] as i64);
                    *r = _mm512_set_epi64(b, a, b, a, b, a, b, a);
                }
                let s = 4 * R as i64;
                let step = _mm512_set_epi64(0, s, 0, s, 0, s, 0, s);
                let mut ctr = [_mm512_setzero_si512(); R];
                let h = hi as i64;
                for (j, c) in ctr.iter_mut().enumerate() {
                    let l = lo.wrapping_add(4 * j as u64);
                    let at = |k: u64| l.wrapping_add(k) as i64;
                    *c = _mm512_set_epi64(h, at(3), h, at(2), h, at(1), h, at(0));
                }
                for chunk in &mut chunks {
                    let mut v = ctr;
                    ars5_rounds!(
                        v,
                        &rk,
                        _mm512_xor_si512,
                        _mm512_aesenc_epi128,
                        _mm512_aesenclast_epi128
                    );
                    for (j, x) in v.iter().enumerate() {
                        _mm512_storeu_si512(chunk.as_mut_ptr().add(8 * j).cast(), *x);
                    }
                    for c in &mut ctr {
                        *c = _mm512_add_epi64(*c, step);
                    }
                    lo = lo.wrapping_add(4 * R as u64);
                }
            }
            for pair in chunks.into_remainder().chunks_exact_mut(2) {
                pair.copy_from_slice(&self.one(keys, lo, hi));
                lo = lo.wrapping_add(1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Run-time choice

/// The back ends, ordered by preference. Capping a kernel at a lower level forces that path (the
/// tests compare every path with `Soft`; `TESSERA_SIMD=avx2` caps at `Vaes256`, `portable` at `Soft`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum AesLevel {
    /// Software AES, auto-vectorized conversions for the baseline target.
    Soft = 1,
    /// AES-NI, one block per instruction, AVX2 conversions: AVX2 servers without VAES (Intel
    /// before Ice Lake, AMD before Zen 3).
    #[cfg(target_arch = "x86_64")]
    AesNi = 2,
    /// VAES on 256-bit registers with AVX2 conversions: AVX2 servers with VAES (AMD Zen 3).
    #[cfg(target_arch = "x86_64")]
    Vaes256 = 3,
    /// VAES on 512-bit registers with AVX-512 conversions.
    #[cfg(target_arch = "x86_64")]
    Vaes512 = 4,
}

impl AesLevel {
    #[cfg(target_arch = "x86_64")]
    pub(super) const BEST: AesLevel = AesLevel::Vaes512;
    #[cfg(not(target_arch = "x86_64"))]
    pub(super) const BEST: AesLevel = AesLevel::Soft;

    /// Every level, lowest first.
    #[cfg(test)]
    pub(super) fn all() -> Vec<AesLevel> {
        let mut all = vec![AesLevel::Soft];
        #[cfg(target_arch = "x86_64")]
        all.extend([AesLevel::AesNi, AesLevel::Vaes256, AesLevel::Vaes512]);
        all
    }

    /// The best level the running CPU supports, detected on first use and capped by
    /// [`simd::level`](crate::kernels::simd::level): the AVX2 level allows VAES on 256-bit registers
    /// (where the CPU has it, else AES-NI), `portable` the software rounds.
    pub(super) fn detected() -> AesLevel {
        static CACHE: AtomicU8 = AtomicU8::new(0);
        match CACHE.load(Ordering::Relaxed) {
            1 => AesLevel::Soft,
            #[cfg(target_arch = "x86_64")]
            2 => AesLevel::AesNi,
            #[cfg(target_arch = "x86_64")]
            3 => AesLevel::Vaes256,
            #[cfg(target_arch = "x86_64")]
            4 => AesLevel::Vaes512,
            _ => {
                let level = Self::detect().min(Self::cap(crate::kernels::simd::level()));
                CACHE.store(level as u8, Ordering::Relaxed);
                level
            }
        }
    }

    /// The highest AES level a vector level allows.
    fn cap(level: crate::kernels::simd::Level) -> AesLevel {
        use crate::kernels::simd::Level;
        match level {
            Level::Portable => AesLevel::Soft,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => AesLevel::Vaes256,
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => AesLevel::Vaes512,
            #[cfg(not(target_arch = "x86_64"))]
            _ => AesLevel::Soft,
        }
    }

    fn detect() -> AesLevel {
        #[cfg(target_arch = "x86_64")]
        {
            let aes = is_x86_feature_detected!("aes")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma");
            let vaes = aes && is_x86_feature_detected!("vaes");
            if vaes
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bw")
            {
                return AesLevel::Vaes512;
            }
            if vaes {
                return AesLevel::Vaes256;
            }
            if aes {
                return AesLevel::AesNi;
            }
        }
        AesLevel::Soft
    }
}

/// Defines `fn $name(max_level: AesLevel, args..)` that runs the generic `$body(backend, args..)`
/// compiled for the best level that is both at most `max_level` and supported by the CPU. The body
/// is `#[inline(always)]`, so its block function and its conversion loops are compiled with the
/// level's instructions enabled.
macro_rules! aes_kernel {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:path;) => {
        $(#[$attr])*
        fn $name(max_level: AesLevel, $($arg: $ty),*) $(-> $ret)? {
            let level = max_level.min(AesLevel::detected());
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::kernels::random::ars::{AesNi, Vaes256, Vaes512};

                #[target_feature(enable = "aes,vaes,avx512f,avx512dq,avx512vl,avx512bw")]
                fn vaes512($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: this function runs only where detection found these features.
                    $body(unsafe { Vaes512::new() }, $($arg),*)
                }

                #[target_feature(enable = "aes,vaes,avx2,fma")]
                fn vaes256($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: as above.
                    $body(unsafe { Vaes256::new() }, $($arg),*)
                }

                #[target_feature(enable = "aes,avx2,fma")]
                fn aesni($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: as above.
                    $body(unsafe { AesNi::new() }, $($arg),*)
                }

                match level {
                    // SAFETY: `detected` only reports features the running CPU has.
                    AesLevel::Vaes512 => return unsafe { vaes512($($arg),*) },
                    // SAFETY: as above.
                    AesLevel::Vaes256 => return unsafe { vaes256($($arg),*) },
                    // SAFETY: as above.
                    AesLevel::AesNi => return unsafe { aesni($($arg),*) },
                    AesLevel::Soft => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = level;
            $body($crate::kernels::random::ars::Soft, $($arg),*)
        }
    };
}
pub(super) use aes_kernel;

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS-197 Appendix B: the cipher example's key expansion needs only SubWord and Rcon, and the
    /// rounds are exactly AESENC / AESENCLAST, so the software round is checked against the standard
    /// without any instruction set.
    #[test]
    fn software_rounds_encrypt_the_fips_197_example() {
        let bytes = |s: &str| -> [u8; 16] {
            std::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        };
        let block = |b: [u8; 16]| {
            [
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u64::from_le_bytes(b[8..].try_into().unwrap()),
            ]
        };
        let key = bytes("2b7e151628aed2a6abf7158809cf4f3c");
        let mut w: Vec<[u8; 4]> = key.chunks(4).map(|c| c.try_into().unwrap()).collect();
        let mut rcon = 1u8;
        for i in 4..44 {
            let mut t = w[i - 1];
            if i % 4 == 0 {
                t = [t[1], t[2], t[3], t[0]].map(|b| SBOX[b as usize]);
                t[0] ^= rcon;
                rcon = xtime(rcon);
            }
            w.push(std::array::from_fn(|j| w[i - 4][j] ^ t[j]));
        }
        let round_key = |r: usize| block(std::array::from_fn(|i| w[4 * r + i / 4][i % 4]));
        let input = block(bytes("3243f6a8885a308d313198a2e0370734"));
        let mut v = [input[0] ^ round_key(0)[0], input[1] ^ round_key(0)[1]];
        for r in 1..10 {
            v = soft_aesenc(v, round_key(r));
        }
        v = soft_aesenclast(v, round_key(10));
        assert_eq!(v, block(bytes("3925841d02dc09fbdc118597196a0b32")));
    }

    #[test]
    fn sbox_spot_values() {
        assert_eq!(
            (SBOX[0x00], SBOX[0x01], SBOX[0x53], SBOX[0xFF]),
            (0x63, 0x7C, 0xED, 0x16)
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_back_end_gives_the_software_blocks() {
        aes_kernel! {
            fn blocks(keys: &RoundKeys, first: u64, hi: u64, out: &mut [u64]) = fill_with;
        }
        #[inline(always)]
        fn fill_with<B: Blocks>(b: B, keys: &RoundKeys, first: u64, hi: u64, out: &mut [u64]) {
            b.fill(keys, first, hi, out);
            // The single-block form must agree too (it serves heads, tails and retries).
            if out.len() >= 2 {
                assert_eq!(b.one(keys, first, hi), [out[0], out[1]]);
            }
            // And the eight-counter form, on scattered counters with distinct high words.
            let ctr: [[u64; 2]; 8] = std::array::from_fn(|k| {
                let k = k as u64;
                [first.wrapping_mul(k + 3) ^ k << 60, hi.wrapping_add(k * k)]
            });
            let expect: [[u64; 2]; 8] = std::array::from_fn(|k| soft_block(keys, ctr[k]));
            assert_eq!(b.blocks8(keys, &ctr), expect);
        }
        let keys = RoundKeys::new(0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210);
        for first in [0, 5, u64::MAX - 9] {
            for blocks_n in [0usize, 1, 3, 8, 15, 16, 17, 40, 77] {
                let expect: Vec<u64> = (0..blocks_n as u64)
                    .flat_map(|j| soft_block(&keys, [first.wrapping_add(j), 42]))
                    .collect();
                for level in AesLevel::all() {
                    let mut got = vec![0u64; 2 * blocks_n];
                    blocks(level, &keys, first, 42, &mut got);
                    assert_eq!(got, expect, "{level:?} first {first} blocks {blocks_n}");
                }
            }
        }
    }
}
