//! Sorting kernels: the order key of each element type ([`SortKey`]), a stable sort of a lane by
//! that key (LSD radix sort, or the standard library's stable sort for short lanes — both stable on
//! the same key, so they give the same order), the exact split of several sorted runs at a global
//! rank, and the stable merge of sorted runs into an output slice.
//!
//! The key is numpy's sort order as an unsigned integer: floats in increasing order with `-0.0`
//! and `0.0` equal and every NaN after `+inf` (NaNs equal among themselves), integers in increasing
//! order, `false` before `true`. Sorting by key, stably, gives numpy's `kind="stable"` order;
//! merging runs with ties resolved in favour of the earlier run keeps that order across chunks, so
//! a chunked sort equals the one-chunk sort bit for bit.

use crate::data::Element;

/// An element type with numpy's sort order as a `u64` key.
pub trait SortKey: Element {
    /// The order key: `a` sorts before `b` in numpy's order iff `a.key() < b.key()`.
    fn key(self) -> u64;
}

impl SortKey for f64 {
    /// Without branches (integer selects only): a merge computes two keys per element, and the
    /// branches on the sign and on zero cost more than the comparison they feed.
    #[inline]
    fn key(self) -> u64 {
        let raw = self.to_bits();
        let magnitude = raw & !(1 << 63);
        // -0.0 and 0.0 compare equal in numpy's order: give them one key.
        let bits = if magnitude == 0 { 0 } else { raw };
        // Negative values: every bit flipped; positive: the sign bit set.
        let key = bits ^ (((bits as i64) >> 63) as u64 | (1 << 63));
        if magnitude > f64::INFINITY.to_bits() {
            u64::MAX
        } else {
            key
        }
    }
}

impl SortKey for f32 {
    /// Without branches, as for f64.
    #[inline]
    fn key(self) -> u64 {
        let raw = self.to_bits();
        let magnitude = raw & !(1 << 31);
        let bits = if magnitude == 0 { 0 } else { raw };
        let key = bits ^ (((bits as i32) >> 31) as u32 | (1 << 31));
        if magnitude > f32::INFINITY.to_bits() {
            u64::from(u32::MAX)
        } else {
            u64::from(key)
        }
    }
}

impl SortKey for i64 {
    #[inline]
    fn key(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
}

impl SortKey for i32 {
    #[inline]
    fn key(self) -> u64 {
        (self as i64 as u64) ^ (1 << 63)
    }
}

impl SortKey for u8 {
    #[inline]
    fn key(self) -> u64 {
        self as u64
    }
}

impl SortKey for u64 {
    #[inline]
    fn key(self) -> u64 {
        self
    }
}

impl SortKey for bool {
    #[inline]
    fn key(self) -> u64 {
        self as u64
    }
}

/// Whether a key is a float NaN's (NaN keys are the largest of their type; integers have none).
#[inline]
#[allow(clippy::eq_op)] // NaN is the one value not equal to itself
pub fn is_nan<T: SortKey>(v: T) -> bool {
    v != v
}

/// Lanes shorter than this are sorted by comparison; the radix sort's fixed cost (eight counting
/// tables and a scratch copy) only pays off above it.
const RADIX_MIN: usize = 512;

/// Sorts `v` stably by `key`.
pub fn sort_by_key_stable<T: Copy, K: Fn(T) -> u64 + Copy>(v: &mut [T], key: K) {
    if v.len() < RADIX_MIN {
        v.sort_by_key(|&x| key(x));
        return;
    }
    // One pass counts every byte of every key; a byte position where all keys agree is skipped.
    let mut counts = vec![[0usize; 256]; 8];
    for &x in v.iter() {
        let k = key(x);
        for (d, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * d)) & 0xff) as usize] += 1;
        }
    }
    let mut scratch: Vec<T> = v.to_vec();
    let mut in_v = true;
    for (d, c) in counts.iter().enumerate() {
        if c.contains(&v.len()) {
            continue;
        }
        let mut pos = [0usize; 256];
        let mut sum = 0;
        for (p, &n) in pos.iter_mut().zip(c.iter()) {
            *p = sum;
            sum += n;
        }
        if in_v {
            scatter(v, &mut scratch, &mut pos, 8 * d, key);
        } else {
            scatter(&scratch, v, &mut pos, 8 * d, key);
        }
        in_v = !in_v;
    }
    if !in_v {
        v.copy_from_slice(&scratch);
    }
}

/// One radix pass: each element to the next free slot of its byte's bucket, in input order.
#[inline]
fn scatter<T: Copy, K: Fn(T) -> u64>(
    src: &[T],
    dst: &mut [T],
    pos: &mut [usize; 256],
    shift: usize,
    key: K,
) {
    for &x in src {
        let b = ((key(x) >> shift) & 0xff) as usize;
        dst[pos[b]] = x;
        pos[b] += 1;
    }
}

/// How many elements of each sorted run come before global rank `rank` in the stable merge of the
/// runs (ordered by key, then run, then position). `lens[j]` is run `j`'s length and
/// `key_at(j, p)` the key of its element `p`. The counts sum to `rank` (clamped to the total).
///
/// The key of the element at `rank` is found by bisection on the key space (each probe is one
/// binary search per run), then the ties at that key are taken run by run. `None` if the runs are
/// not sorted (the searches disagree), which only a forged graph can cause.
pub fn split_at_rank<K: Fn(usize, usize) -> u64>(
    lens: &[usize],
    rank: usize,
    key_at: K,
) -> Option<Vec<usize>> {
    let total: usize = lens.iter().sum();
    if rank == 0 {
        return Some(vec![0; lens.len()]);
    }
    if rank >= total {
        return Some(lens.to_vec());
    }
    // Elements of run j with key <= v.
    let upto = |j: usize, v: u64| {
        let (mut lo, mut hi) = (0, lens[j]);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key_at(j, mid) <= v {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let below = |j: usize, v: u64| if v == 0 { 0 } else { upto(j, v - 1) };
    // Smallest key v with more than `rank` elements at or below it.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let n: usize = (0..lens.len()).map(|j| upto(j, mid)).sum();
        if n > rank {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let v = lo;
    let mut out = Vec::with_capacity(lens.len());
    let mut need = rank.checked_sub((0..lens.len()).map(|j| below(j, v)).sum())?;
    for j in 0..lens.len() {
        let (b, u) = (below(j, v), upto(j, v));
        let take = u.checked_sub(b)?.min(need);
        need -= take;
        out.push(b + take);
    }
    (need == 0).then_some(out)
}

/// Merges the sorted runs `runs` stably (ties to the earlier run) into `out`, whose length is their
/// total, by rounds of two-way merges of neighbours: `log2(runs)` passes between `out` and one
/// scratch buffer, arranged so that the last lands in `out`. The runs are read where they lie (no
/// copies), and each merge step is branch-free: which run gives the next element is a coin toss on
/// random data, and as a branch it mispredicted about every other element.
pub fn merge_into<T: Copy, K: Fn(T) -> u64 + Copy>(runs: &[&[T]], out: &mut [T], key: K) {
    let runs: Vec<&[T]> = runs.iter().copied().filter(|r| !r.is_empty()).collect();
    let total: usize = runs.iter().map(|r| r.len()).sum();
    assert_eq!(
        total,
        out.len(),
        "merge_into: the runs do not fill the output"
    );
    let Some(&first) = runs.first() else {
        return;
    };
    if runs.len() == 1 {
        out.copy_from_slice(first);
        return;
    }
    let rounds = runs.len().next_power_of_two().trailing_zeros();
    let mut scratch = if rounds > 1 {
        vec![first[0]; total]
    } else {
        Vec::new()
    };
    // The first round reads the runs in place and writes where an odd number of rounds ends in
    // `out`; every later round merges neighbouring ranges of one buffer into the other.
    let mut bounds = Vec::with_capacity(runs.len() + 1);
    {
        let dst: &mut [T] = if rounds % 2 == 1 {
            &mut *out
        } else {
            &mut scratch
        };
        let mut at = 0;
        bounds.push(0);
        for pair in runs.chunks(2) {
            let len = pair.iter().map(|r| r.len()).sum::<usize>();
            match pair {
                [a, b] => merge_two(a, b, &mut dst[at..at + len], key),
                [a] => dst[at..at + len].copy_from_slice(a),
                _ => unreachable!("chunks of two"),
            }
            at += len;
            bounds.push(at);
        }
    }
    let mut in_out = rounds % 2 == 1;
    for _ in 1..rounds {
        let (src, dst): (&[T], &mut [T]) = if in_out {
            (&*out, &mut scratch)
        } else {
            (&scratch, &mut *out)
        };
        // Runs t and t + 1 span bounds[t]..bounds[t + 1]..bounds[t + 2]; a last odd run is copied.
        let mut next = vec![0];
        for t in (0..bounds.len() - 1).step_by(2) {
            let lo = bounds[t];
            let hi = bounds[(t + 2).min(bounds.len() - 1)];
            if t + 2 < bounds.len() {
                let mid = bounds[t + 1];
                merge_two(&src[lo..mid], &src[mid..hi], &mut dst[lo..hi], key);
            } else {
                dst[lo..hi].copy_from_slice(&src[lo..hi]);
            }
            next.push(hi);
        }
        bounds = next;
        in_out = !in_out;
    }
    debug_assert!(in_out, "the last round wrote into out");
}

/// The stable merge of two sorted runs into `out` (`a.len() + b.len()` long), `a` first on ties.
///
/// The front half is merged from the starts and the back half from the ends at the same time:
/// each branch-free step waits for the previous one's comparison (a chain of loads, keys and a
/// compare), so two independent chains run in the time of one.
fn merge_two<T: Copy, K: Fn(T) -> u64>(a: &[T], b: &[T], out: &mut [T], key: K) {
    let n = out.len();
    let half = n / 2;
    // Front: next unread of a and b, next slot. Back: one past the last unread, one past the
    // last free slot.
    let (mut i, mut j, mut k) = (0, 0, 0);
    let (mut ia, mut jb, mut kb) = (a.len(), b.len(), n);
    while k < half && i < a.len() && j < b.len() && ia > 0 && jb > 0 {
        let (x, y) = (a[i], b[j]);
        let take_b = key(y) < key(x);
        out[k] = if take_b { y } else { x };
        j += usize::from(take_b);
        i += usize::from(!take_b);
        k += 1;
        // From the end, `b` goes last on ties.
        let (x, y) = (a[ia - 1], b[jb - 1]);
        let take_a = key(x) > key(y);
        out[kb - 1] = if take_a { x } else { y };
        ia -= usize::from(take_a);
        jb -= usize::from(!take_a);
        kb -= 1;
    }
    // What is left of each half once a run ran out at one end.
    while k < half {
        if i >= a.len() || (j < b.len() && key(b[j]) < key(a[i])) {
            out[k] = b[j];
            j += 1;
        } else {
            out[k] = a[i];
            i += 1;
        }
        k += 1;
    }
    while kb > half {
        if jb == 0 || (ia > 0 && key(a[ia - 1]) > key(b[jb - 1])) {
            out[kb - 1] = a[ia - 1];
            ia -= 1;
        } else {
            out[kb - 1] = b[jb - 1];
            jb -= 1;
        }
        kb -= 1;
    }
}

/// Index of the first element of the sorted keys `sorted` not less than `k` (`right`: greater
/// than `k`): numpy's `searchsorted` with `side="left"` / `"right"`.
#[inline]
pub fn search(sorted: &[u64], k: u64, right: bool) -> usize {
    if right {
        sorted.partition_point(|&s| s <= k)
    } else {
        sorted.partition_point(|&s| s < k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The float keys by their definition, with branches: NaN last, -0.0 = 0.0, negatives flipped.
    fn reference_key_f64(v: f64) -> u64 {
        if v.is_nan() {
            return u64::MAX;
        }
        let bits = if v == 0.0 { 0 } else { v.to_bits() };
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        }
    }

    fn reference_key_f32(v: f32) -> u64 {
        if v.is_nan() {
            return u64::from(u32::MAX);
        }
        let bits = if v == 0.0 { 0 } else { v.to_bits() };
        u64::from(if bits >> 31 == 1 {
            !bits
        } else {
            bits | 1 << 31
        })
    }

    #[test]
    fn branch_free_float_keys_are_the_definition() {
        let mut special: Vec<u64> = vec![0, 1 << 63, 1, (1 << 63) | 1];
        for base in [
            f64::INFINITY.to_bits(),
            f64::NAN.to_bits(),
            0x7FF0_0000_0000_0001,
        ] {
            special.extend([base, base | 1 << 63, base - 1, (base - 1) | 1 << 63]);
        }
        special.extend([
            f64::MIN_POSITIVE.to_bits(),
            f64::MAX.to_bits(),
            (-f64::MAX).to_bits(),
        ]);
        // A fixed xorshift stream of bit patterns: every exponent, sign and NaN payload.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            special.push(x);
        }
        for &b in &special {
            let v = f64::from_bits(b);
            assert_eq!(v.key(), reference_key_f64(v), "{b:#x}");
            let w = f32::from_bits(b as u32);
            assert_eq!(w.key(), reference_key_f32(w), "{:#x}", b as u32);
            let w = f32::from_bits((b >> 32) as u32);
            assert_eq!(w.key(), reference_key_f32(w), "{:#x}", b >> 32);
        }
    }

    #[test]
    fn keys_follow_numpy_order() {
        let v = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            f64::INFINITY,
        ];
        for w in v.windows(2) {
            assert!(w[0].key() < w[1].key(), "{w:?}");
        }
        assert_eq!((-0.0f64).key(), 0.0f64.key());
        assert_eq!(f64::NAN.key(), (-f64::NAN).key());
        assert!(f64::INFINITY.key() < f64::NAN.key());
        assert!(f32::INFINITY.key() < f32::NAN.key());
        assert_eq!((-0.0f32).key(), 0.0f32.key());
        assert!((-1.5f32).key() < (-1.25f32).key());
        assert!(i64::MIN.key() < (-1i64).key() && (-1i64).key() < 0i64.key());
        assert!(0i64.key() < i64::MAX.key());
        assert!(false.key() < true.key());
    }

    #[test]
    fn radix_equals_comparison_sort_and_is_stable() {
        // Pairs (key, original position) with many ties: both sorts must agree on positions.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        // Few keys (a few byte positions vary), and keys over every byte position with ties.
        for (n, spread) in [(5000, 97), (100_000, u64::MAX)] {
            let v: Vec<(u64, usize)> = (0..n)
                .map(|i| {
                    let r = next() << 31 ^ next();
                    let k = if spread == u64::MAX {
                        (r % 50_000).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    } else {
                        r % spread + (1 << 40)
                    };
                    (k, i)
                })
                .collect();
            let mut a = v.clone();
            sort_by_key_stable(&mut a, |x: (u64, usize)| x.0);
            let mut b = v.clone();
            b.sort_by_key(|x| x.0);
            assert_eq!(a, b, "{n} elements");
        }
    }

    #[test]
    fn merging_any_number_of_runs_is_the_stable_sort() {
        // 1 to 9 runs of 0 to 300 elements with many equal keys, so that ties, runs that run out
        // at either end and an odd run out in a round all occur; each element remembers its run and
        // position, so any instability shows.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for case in 0..400 {
            let k = 1 + case % 9;
            let runs: Vec<Vec<(u64, usize, usize)>> = (0..k)
                .map(|j| {
                    let len = next(301) as usize;
                    let mut keys: Vec<u64> = (0..len).map(|_| next(40)).collect();
                    keys.sort();
                    keys.into_iter()
                        .enumerate()
                        .map(|(p, key)| (key, j, p))
                        .collect()
                })
                .collect();
            let mut expected: Vec<(u64, usize, usize)> = runs.concat();
            expected.sort();
            let views: Vec<&[(u64, usize, usize)]> = runs.iter().map(Vec::as_slice).collect();
            let mut got = vec![(0, 0, 0); expected.len()];
            merge_into(&views, &mut got, |e: (u64, usize, usize)| e.0);
            assert_eq!(got, expected, "case {case}: {k} runs");
        }
    }

    #[test]
    fn split_and_merge_reproduce_a_stable_sort() {
        let runs: Vec<Vec<u64>> = vec![vec![1, 3, 3, 7], vec![], vec![0, 3, 3, 9, 9], vec![3]];
        let lens: Vec<usize> = runs.iter().map(Vec::len).collect();
        let key_at = |j: usize, p: usize| runs[j][p];
        let mut all: Vec<(u64, usize, usize)> = runs
            .iter()
            .enumerate()
            .flat_map(|(j, r)| r.iter().enumerate().map(move |(p, &k)| (k, j, p)))
            .collect();
        all.sort();
        for lo in 0..=all.len() {
            for hi in lo..=all.len() {
                let a = split_at_rank(&lens, lo, key_at).unwrap();
                let b = split_at_rank(&lens, hi, key_at).unwrap();
                let segs: Vec<Vec<(u64, usize, usize)>> = (0..runs.len())
                    .map(|j| (a[j]..b[j]).map(|p| (runs[j][p], j, p)).collect())
                    .collect();
                let views: Vec<&[(u64, usize, usize)]> = segs.iter().map(Vec::as_slice).collect();
                let mut got = vec![(0, 0, 0); hi - lo];
                merge_into(&views, &mut got, |x: (u64, usize, usize)| x.0);
                assert_eq!(got, all[lo..hi].to_vec(), "ranks {lo}..{hi}");
            }
        }
        // Unsorted runs are reported, not trusted.
        let bad: Vec<Vec<u64>> = vec![vec![5, 1, 4, 0, 2], vec![3, 0]];
        let bl: Vec<usize> = bad.iter().map(Vec::len).collect();
        for r in 0..=7 {
            if let Some(c) = split_at_rank(&bl, r, |j, p| bad[j][p]) {
                assert_eq!(c.iter().sum::<usize>(), r);
                assert!(c.iter().zip(&bl).all(|(c, l)| c <= l));
            }
        }
    }
}
