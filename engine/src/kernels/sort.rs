//! Sorting kernels: the order key of each element type ([`SortKey`]), a stable sort of a lane by
//! that key (LSD radix sort, or the standard library's stable sort for short lanes — both stable on
//! the same key, so they give the same order), the exact split of several sorted runs at a global
//! rank, and the stable merge of sorted runs.
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
    #[inline]
    fn key(self) -> u64 {
        if self.is_nan() {
            return u64::MAX;
        }
        // -0.0 and 0.0 compare equal in numpy's order: give them one key.
        let bits = if self == 0.0 { 0 } else { self.to_bits() };
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    }
}

impl SortKey for f32 {
    #[inline]
    fn key(self) -> u64 {
        if self.is_nan() {
            return u32::MAX as u64;
        }
        let bits = if self == 0.0 { 0 } else { self.to_bits() };
        (if bits >> 31 == 1 {
            !bits
        } else {
            bits | (1 << 31)
        }) as u64
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

/// Merges sorted runs stably (ties to the earlier run) by rounds of two-way merges of neighbours:
/// `log2(runs)` passes of a branch-light loop, cheaper per element than a heap.
pub fn merge_runs<T: Copy, K: Fn(T) -> u64 + Copy>(mut runs: Vec<Vec<T>>, key: K) -> Vec<T> {
    runs.retain(|r| !r.is_empty());
    while runs.len() > 1 {
        let mut next = Vec::with_capacity(runs.len().div_ceil(2));
        let mut it = runs.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(merge_two(&a, &b, key)),
                None => next.push(a),
            }
        }
        runs = next;
    }
    runs.pop().unwrap_or_default()
}

/// The stable merge of two sorted runs, `a` first on ties.
fn merge_two<T: Copy, K: Fn(T) -> u64>(a: &[T], b: &[T], key: K) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if key(b[j]) < key(a[i]) {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
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
        let v: Vec<(u64, usize)> = (0..5000).map(|i| (next() % 97 + (1 << 40), i)).collect();
        let mut a = v.clone();
        sort_by_key_stable(&mut a, |x: (u64, usize)| x.0);
        let mut b = v.clone();
        b.sort_by_key(|x| x.0);
        assert_eq!(a, b);
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
                let got = merge_runs(segs, |x: (u64, usize, usize)| x.0);
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
