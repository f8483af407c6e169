//! Creation functions against ndarray oracles: constant fills, ranges, wrapping an ndarray, and random
//! numbers (values checked bit for bit against the generator the `kernels::random` docs specify, and
//! independent of chunking and thread count).

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn};
use tessera::{
    ChunkSpec, DType, Error, LocalExecutor, arange, default_rng, from_array, full, linspace, ones,
    zeros,
};

#[test]
fn zeros_ones_full_every_dtype_rank_and_chunking() {
    for shape in shapes_0_to_4() {
        let d = IxDyn(&shape);
        for (name, spec) in chunkings(&shape) {
            let ctx = format!("{shape:?} {name}");
            check(
                &zeros::<f64>(&shape, spec.clone()).unwrap(),
                &ArrayD::<f64>::zeros(d.clone()),
            );
            check(
                &zeros::<i64>(&shape, spec.clone()).unwrap(),
                &ArrayD::<i64>::zeros(d.clone()),
            );
            check(
                &zeros::<bool>(&shape, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), false),
            );
            check(
                &ones::<f32>(&shape, spec.clone()).unwrap(),
                &ArrayD::<f32>::ones(d.clone()),
            );
            check(
                &ones::<bool>(&shape, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), true),
            );
            check(
                &ones::<i64>(&shape, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), 1i64),
            );
            check(
                &full(&shape, 2.5f64, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), 2.5f64),
            );
            check(
                &full(&shape, -1.25f32, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), -1.25f32),
            );
            check(
                &full(&shape, -7i64, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), -7i64),
            );
            // The fill value's Rust type is the dtype: an i32 gives int32, a u8 uint8.
            check(
                &full(&shape, 3i32, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), 3i32),
            );
            check(
                &full(&shape, 200u8, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), 200u8),
            );
            check(
                &full(&shape, true, spec.clone()).unwrap(),
                &ArrayD::from_elem(d.clone(), true),
            );
            let nan = full(&shape, f64::NAN, spec).unwrap();
            check(&nan, &ArrayD::from_elem(d.clone(), f64::NAN));
            assert_eq!(nan.ndim(), shape.len(), "{ctx}");
        }
    }
}

#[test]
fn empty_arrays_have_one_empty_chunk_and_compute() {
    let z = zeros::<f64>(&[0, 5], [3, 2]).unwrap();
    assert_eq!(z.numblocks(), vec![1, 3]);
    check(&z, &ArrayD::<f64>::zeros(IxDyn(&[0, 5])));
    let o = ones::<i64>(&[4, 0, 2], [2, 2, 2]).unwrap();
    check(&o, &ArrayD::<i64>::ones(IxDyn(&[4, 0, 2])));
}

#[test]
fn chunk_grids_follow_the_spec() {
    let a = zeros::<f64>(&[37, 23], [10, 7]).unwrap();
    assert_eq!(a.chunks().axis(0), &[10, 10, 10, 7]);
    assert_eq!(a.chunks().axis(1), &[7, 7, 7, 2]);
    assert_eq!(a.numblocks(), vec![4, 4]);
    let b = zeros::<f64>(&[37, 23], [100, 100]).unwrap();
    assert_eq!(b.numblocks(), vec![1, 1]);
    let c = zeros::<f64>(&[10, 6], vec![vec![1, 9], vec![2, 2, 2]]).unwrap();
    assert_eq!(c.chunks().axis(0), &[1, 9]);
    assert_eq!(c.nbytes(), 480);
    assert_eq!(c.size(), 60);
    let scalar = zeros::<f64>(&[], [0usize; 0]).unwrap();
    assert_eq!(scalar.numblocks(), Vec::<usize>::new());
    assert_eq!(scalar.chunks().num_chunks(), 1);
}

#[test]
fn bad_chunks_are_typed_errors() {
    assert!(matches!(
        zeros::<f64>(&[10], [0]),
        Err(Error::InvalidChunks { .. })
    ));
    assert!(matches!(
        zeros::<f64>(&[10, 4], [5]),
        Err(Error::ChunksRank { .. })
    ));
    assert!(matches!(
        zeros::<f64>(&[10], vec![vec![3, 3]]),
        Err(Error::InvalidChunks { .. })
    ));
    // A zero-length chunk on a non-empty axis is fine (as in dask); a length-0 axis still has one.
    let z = zeros::<f64>(&[10], vec![vec![10, 0]]).unwrap();
    assert_eq!(z.chunks().axis(0), &[10, 0]);
    assert!(matches!(
        zeros::<f64>(&[0], vec![vec![0, 0]]),
        Err(Error::InvalidChunks { .. })
    ));
    assert!(matches!(
        from_array(sample::<f64>(&[4, 4], 1), [2, 2, 2]),
        Err(Error::ChunksRank { .. })
    ));
    match zeros::<f64>(&[10, 4], [5]) {
        Err(Error::ChunksRank { shape, .. }) => assert_eq!(shape, vec![10, 4]),
        other => panic!("expected ChunksRank, got {other:?}"),
    }
}

#[test]
fn auto_chunks_tile_the_shape() {
    let a = zeros::<f64>(&[300, 200], ChunkSpec::AutoBytes(8 * 1000)).unwrap();
    assert!(a.chunks().max_chunk_elems() <= 1000, "{a:?}");
    assert!(a.chunks().num_chunks() > 1);
    check(&a, &ArrayD::<f64>::zeros(IxDyn(&[300, 200])));
    let b = ones::<i64>(&[30, 20], ChunkSpec::auto()).unwrap();
    assert_eq!(b.numblocks(), vec![1, 1]);
}

// ---------------------------------------------------------------------------------------------
// arange and linspace

fn arange_i64_oracle(start: i64, stop: i64, step: i64) -> ArrayD<i64> {
    let mut v = Vec::new();
    let mut x = start;
    while (step > 0 && x < stop) || (step < 0 && x > stop) {
        v.push(x);
        match x.checked_add(step) {
            Some(next) => x = next,
            None => break,
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap()
}

#[test]
fn arange_int_matches_numpy() {
    let cases = [
        (0i64, 10i64, 1i64),
        (2, 11, 3),
        (10, 0, -3),
        (-7, 8, 4),
        (5, 5, 1),
        (5, 0, 1),
        (0, 5, -1),
        (-3, -20, -5),
        (0, 100, 1),
    ];
    for (start, stop, step) in cases {
        let expected = arange_i64_oracle(start, stop, step);
        let n = expected.len();
        for block in [1, 3, 7, n.max(1), n + 5] {
            let a = arange(start, stop, step, [block]).unwrap();
            check(&a, &expected);
        }
    }
}

#[test]
fn arange_float_matches_numpy() {
    let cases = [
        (0.0f64, 1.0f64, 0.1f64, 10usize),
        (1.0, -1.0, -0.25, 8),
        (0.5, 3.0, 0.5, 5),
        (0.0, 1.0, 0.3, 4),
        (2.0, 2.0, 0.5, 0),
        (3.0, 1.0, 0.5, 0),
        (-2.5, 2.5, 1.0, 5),
    ];
    for (start, stop, step, len) in cases {
        let expected = ArrayD::from_shape_fn(IxDyn(&[len]), |i| start + i[0] as f64 * step);
        for block in [1, 3, len.max(1), len + 4] {
            let a = arange(start, stop, step, [block]).unwrap();
            assert_eq!(a.shape(), &[len], "arange({start}, {stop}, {step})");
            check(&a, &expected);
        }
    }
    let f = arange(0.0f32, 2.0f32, 0.5f32, [3]).unwrap();
    check(&f, &ndarray::arr1(&[0.0f32, 0.5, 1.0, 1.5]).into_dyn());
}

#[test]
fn arange_rejects_bad_arguments() {
    assert!(matches!(
        arange(0i64, 10, 0, [4]),
        Err(Error::InvalidArgument { op: "arange", .. })
    ));
    assert!(matches!(
        arange(0.0, f64::NAN, 1.0, [4]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        arange(0.0, 1.0, f64::INFINITY, [4]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        arange(false, true, true, [4]),
        Err(Error::UnsupportedDType { .. })
    ));
}

fn linspace_oracle(start: f64, stop: f64, num: usize, endpoint: bool) -> ArrayD<f64> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let step = if div > 0 {
        (stop - start) / div as f64
    } else {
        0.0
    };
    let mut v: Vec<f64> = (0..num).map(|i| start + i as f64 * step).collect();
    if endpoint && num > 1 {
        v[num - 1] = stop;
    }
    ArrayD::from_shape_vec(IxDyn(&[num]), v).unwrap()
}

#[test]
fn linspace_matches_numpy() {
    // Literal numpy results first.
    let a = linspace(0.0, 1.0, 5, true, [2]).unwrap();
    check(&a, &ndarray::arr1(&[0.0, 0.25, 0.5, 0.75, 1.0]).into_dyn());
    let b = linspace(0.0, 1.0, 5, false, [3]).unwrap();
    check(&b, &ndarray::arr1(&[0.0, 0.2, 0.4, 0.6, 0.8]).into_dyn());
    check(
        &linspace(3.0, 7.0, 1, true, [1]).unwrap(),
        &ndarray::arr1(&[3.0]).into_dyn(),
    );
    check(
        &linspace(3.0, 7.0, 1, false, [4]).unwrap(),
        &ndarray::arr1(&[3.0]).into_dyn(),
    );
    let empty = linspace(3.0, 7.0, 0, true, [4]).unwrap();
    assert_eq!(empty.shape(), &[0]);
    check(&empty, &ArrayD::<f64>::zeros(IxDyn(&[0])));
    check(
        &linspace(3.0, 7.0, 0, false, [1]).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0])),
    );
    for (start, stop, num) in [(2.0, -3.0, 11), (0.1, 0.7, 13), (-1.0, 1.0, 100)] {
        for endpoint in [true, false] {
            let expected = linspace_oracle(start, stop, num, endpoint);
            for block in [1, 4, 7, num, num + 3] {
                let a = linspace(start, stop, num, endpoint, [block]).unwrap();
                check(&a, &expected);
            }
            if endpoint {
                // numpy makes the last value exactly `stop`.
                let a = linspace(start, stop, num, endpoint, [3]).unwrap();
                assert_eq!(a.compute::<f64>().unwrap()[num - 1], stop);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// from_array

#[test]
fn from_array_round_trips_every_dtype_rank_and_chunking() {
    for shape in shapes_0_to_4() {
        let f = sample::<f64>(&shape, 1);
        let s = sample::<f32>(&shape, 2);
        let i = sample::<i64>(&shape, 3);
        let b = sample::<bool>(&shape, 4);
        for (_, spec) in chunkings(&shape) {
            check(&from_array(f.clone(), spec.clone()).unwrap(), &f);
            check(&from_array(s.clone(), spec.clone()).unwrap(), &s);
            check(&from_array(i.clone(), spec.clone()).unwrap(), &i);
            check(&from_array(b.clone(), spec.clone()).unwrap(), &b);
        }
    }
}

#[test]
fn from_array_of_a_non_standard_layout_view() {
    // A transposed (Fortran-order) ndarray must be read in logical order.
    let base = sample::<f64>(&[6, 9], 5);
    let t = base.t().to_owned();
    let f_order = base.view().reversed_axes().to_owned();
    assert_eq!(t, f_order);
    let transposed_view = base.clone().reversed_axes();
    assert!(!transposed_view.is_standard_layout());
    let a = from_array(transposed_view, [4, 2]).unwrap();
    check(&a, &t);
}

#[test]
fn irregular_37_by_23_in_10_by_7() {
    let data = sample::<f64>(&[37, 23], 9);
    let a = from_array(data.clone(), [10, 7]).unwrap();
    assert_eq!(a.numblocks(), vec![4, 4]);
    check(&a, &data);
    assert_eq!(a.compute::<f64>().unwrap(), data);
}

// ---------------------------------------------------------------------------------------------
// random

/// The generator exactly as the `kernels::random` module documentation specifies it: the key
/// derivation, then ARS-5 with a byte-by-byte textbook AES round (FIPS-197), independent of the
/// engine's table-driven and instruction-based rounds.
mod spec {
    const M1: u64 = 0xBF58_476D_1CE4_E5B9;
    const M2: u64 = 0x94D0_49BB_1331_11EB;

    pub fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(M1);
        z = (z ^ (z >> 27)).wrapping_mul(M2);
        z ^ (z >> 31)
    }

    fn xtime(a: u8) -> u8 {
        (a << 1) ^ if a & 0x80 != 0 { 0x1B } else { 0 }
    }

    fn sbox(x: u8) -> u8 {
        // The inverse is x^254 in GF(2^8); then the affine map.
        let mul = |mut a: u8, mut b: u8| {
            let mut p = 0;
            while b != 0 {
                if b & 1 != 0 {
                    p ^= a;
                }
                a = xtime(a);
                b >>= 1;
            }
            p
        };
        let mut inv = 1u8;
        for _ in 0..254 {
            inv = mul(inv, x);
        }
        let inv = if x == 0 { 0 } else { inv };
        inv ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63
    }

    /// One AES round on the 16-byte state (byte 4c + r is row r of column c); MixColumns unless
    /// this is the last round.
    fn round(s: [u8; 16], key: [u8; 16], last: bool) -> [u8; 16] {
        let mut t = [0u8; 16];
        for c in 0..4 {
            for r in 0..4 {
                t[4 * c + r] = sbox(s[4 * ((c + r) % 4) + r]);
            }
        }
        if !last {
            let mut m = [0u8; 16];
            for c in 0..4 {
                let a = &t[4 * c..4 * c + 4];
                for r in 0..4 {
                    m[4 * c + r] = xtime(a[r])
                        ^ xtime(a[(r + 1) % 4])
                        ^ a[(r + 1) % 4]
                        ^ a[(r + 2) % 4]
                        ^ a[(r + 3) % 4];
                }
            }
            t = m;
        }
        std::array::from_fn(|i| t[i] ^ key[i])
    }

    fn bytes(w: [u64; 2]) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&w[0].to_le_bytes());
        b[8..].copy_from_slice(&w[1].to_le_bytes());
        b
    }

    #[derive(Clone, Copy)]
    pub struct Key(pub u64, pub u64);

    impl Key {
        pub fn new(seed: u64, stream: u64) -> Key {
            Key(
                mix(seed ^ mix(stream.wrapping_add(0x243F_6A88_85A3_08D3))),
                mix(stream ^ mix(seed.wrapping_add(0xB7E1_5162_8AED_2A6B))),
            )
        }

        /// ARS-5 of counter (lo, hi).
        pub fn block(self, lo: u64, hi: u64) -> [u64; 2] {
            let mut k = [self.0, self.1];
            let mut v = bytes([lo ^ k[0], hi ^ k[1]]);
            for r in 1..=5 {
                k = [
                    k[0].wrapping_add(0x9E37_79B9_7F4A_7C15),
                    k[1].wrapping_add(0xBB67_AE85_84CA_A73B),
                ];
                v = round(v, bytes(k), r == 5);
            }
            [
                u64::from_le_bytes(v[..8].try_into().unwrap()),
                u64::from_le_bytes(v[8..].try_into().unwrap()),
            ]
        }

        pub fn uniform_f64(self, i: u64) -> f64 {
            let w = self.block(i >> 1, 0)[(i & 1) as usize];
            f64::from_bits((w >> 12) | 0x3FF0_0000_0000_0000) - 1.0
        }

        pub fn uniform_f32(self, i: u64) -> f32 {
            let w = (self.block(i >> 2, 0)[(i >> 1 & 1) as usize] >> (32 * (i & 1))) as u32;
            f32::from_bits((w >> 9) | 0x3F80_0000) - 1.0
        }
    }
}

/// Stream numbers of the two distributions (the order of `tessera::ops::Distribution`).
const UNIFORM_STREAM: u64 = 0;
const NORMAL_STREAM: u64 = 1;

#[test]
fn uniform_values_match_the_documented_generator_bit_for_bit() {
    for seed in [0u64, 7, 42, u64::MAX] {
        let key = spec::Key::new(seed, UNIFORM_STREAM);
        let shape = [13, 17];
        let expected = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
            key.uniform_f64((ix[0] * 17 + ix[1]) as u64)
        });
        for (name, chunks) in chunkings(&shape) {
            let got = default_rng(seed)
                .random(&shape, chunks)
                .unwrap()
                .compute_dyn()
                .unwrap();
            assert_array_close(&got, &expected, EXACT);
            let _ = name;
        }
        let expected32 = ArrayD::from_shape_fn(IxDyn(&[50]), |ix| key.uniform_f32(ix[0] as u64));
        let got = default_rng(seed)
            .random_dtype(&[50], [7], DType::F32)
            .unwrap()
            .compute_dyn()
            .unwrap();
        assert_array_close(&got, &expected32, EXACT);
    }
}

/// Every chunking gives, bit for bit, the values the kernel computes for the flat indices (the
/// ziggurat itself is checked in the kernel's own tests).
#[test]
fn normal_values_are_the_kernels_at_the_flat_index() {
    use tessera::kernels::random::{RandomKey, fill_standard_normal_f32, fill_standard_normal_f64};
    let seed = 11;
    let key = RandomKey::new(seed, NORMAL_STREAM);
    let shape = [9, 31];
    let mut flat = vec![0.0; 9 * 31];
    fill_standard_normal_f64(key, 0, 1, &mut flat);
    let expected = ArrayD::from_shape_vec(IxDyn(&shape), flat).unwrap();
    for (_, chunks) in chunkings(&shape) {
        let a = default_rng(seed).standard_normal(&shape, chunks).unwrap();
        assert_array_close(&a.compute_dyn().unwrap(), &expected, EXACT);
    }
    let mut flat32 = vec![0.0f32; 9 * 31];
    fill_standard_normal_f32(key, 0, 1, &mut flat32);
    assert!(
        flat32
            .iter()
            .zip(expected.iter())
            .all(|(&a, &b)| a == b as f32)
    );
    let expected32 = ArrayD::from_shape_vec(IxDyn(&shape), flat32).unwrap();
    let f32s = default_rng(seed)
        .standard_normal_dtype(&shape, [4, 8], DType::F32)
        .unwrap();
    assert_array_close(&f32s.compute_dyn().unwrap(), &expected32, EXACT);
}

#[test]
fn random_is_in_unit_interval_and_fills_it() {
    let x = default_rng(3)
        .random(&[20000], [3000])
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
    let lo = x.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(lo < 0.001 && hi > 0.999, "{lo} {hi}");
    // Ten equal bins each hold about a tenth (binomial sd ≈ 42; allow 6 sd).
    let mut bins = [0usize; 10];
    for &v in x.iter() {
        bins[(v * 10.0) as usize] += 1;
    }
    for b in bins {
        assert!((b as i64 - 2000).abs() < 250, "{bins:?}");
    }
    let f = default_rng(3)
        .random_dtype(&[5000], [999], DType::F32)
        .unwrap()
        .compute::<f32>()
        .unwrap();
    assert!(f.iter().all(|&v| (0.0..1.0).contains(&v)));
}

#[test]
fn random_is_independent_of_chunking() {
    let rng = default_rng(2024);
    let a = rng.random(&[1000], [10]).unwrap().compute_dyn().unwrap();
    let b = rng.random(&[1000], [7]).unwrap().compute_dyn().unwrap();
    let c = rng.random(&[1000], [100]).unwrap().compute_dyn().unwrap();
    let d = rng.random(&[1000], [5000]).unwrap().compute_dyn().unwrap();
    assert_bits_eq(&a, &b);
    assert_bits_eq(&a, &c);
    assert_bits_eq(&a, &d);
    // 2-D: chunks that cut rows must give the same values as whole rows.
    let m1 = rng
        .random(&[30, 40], [7, 9])
        .unwrap()
        .compute_dyn()
        .unwrap();
    let m2 = rng
        .random(&[30, 40], [30, 40])
        .unwrap()
        .compute_dyn()
        .unwrap();
    let m3 = rng
        .random(&[30, 40], vec![ragged_axis(30), ragged_axis(40)])
        .unwrap()
        .compute_dyn()
        .unwrap();
    assert_bits_eq(&m1, &m2);
    assert_bits_eq(&m1, &m3);
    // The flat C-order index decides a value: a [1200] array holds the same values as [30, 40].
    let flat = rng.random(&[1200], [11]).unwrap().compute::<f64>().unwrap();
    assert_eq!(
        flat.as_slice().unwrap(),
        m2.clone().into_typed::<f64>().unwrap().as_slice().unwrap()
    );
    let n1 = rng
        .standard_normal(&[500], [3])
        .unwrap()
        .compute_dyn()
        .unwrap();
    let n2 = rng
        .standard_normal(&[500], [500])
        .unwrap()
        .compute_dyn()
        .unwrap();
    assert_bits_eq(&n1, &n2);
    let f1 = rng
        .random_dtype(&[17, 5, 3], [4, 2, 2], DType::F32)
        .unwrap()
        .compute_dyn()
        .unwrap();
    let f2 = rng
        .random_dtype(&[17, 5, 3], [17, 5, 3], DType::F32)
        .unwrap()
        .compute_dyn()
        .unwrap();
    assert_bits_eq(&f1, &f2);
}

#[test]
fn random_is_independent_of_thread_count() {
    let one = LocalExecutor::with_threads(1).unwrap();
    let two = LocalExecutor::with_threads(2).unwrap();
    assert_eq!(one.threads(), 1);
    assert_eq!(two.threads(), 2);
    let rng = default_rng(99);
    let x = rng.random(&[200, 50], [17, 13]).unwrap();
    assert_bits_eq(&x.compute_on(&one).unwrap(), &x.compute_on(&two).unwrap());
    assert_bits_eq(&x.compute_on(&one).unwrap(), &x.compute_dyn().unwrap());
    let n = rng.standard_normal(&[3000], [128]).unwrap();
    assert_bits_eq(&n.compute_on(&one).unwrap(), &n.compute_on(&two).unwrap());
    // Reductions merge partials in a fixed order, so they too are bit-identical across threads.
    let m = (&x * 3.0f64).mean().unwrap();
    assert_bits_eq(&m.compute_on(&one).unwrap(), &m.compute_on(&two).unwrap());
    let s = n.std_ddof(1.0).unwrap();
    assert_bits_eq(&s.compute_on(&one).unwrap(), &s.compute_on(&two).unwrap());
}

#[test]
fn seeds_give_different_streams() {
    let a = default_rng(1)
        .random(&[100], [10])
        .unwrap()
        .compute::<f64>()
        .unwrap();
    let b = default_rng(2)
        .random(&[100], [10])
        .unwrap()
        .compute::<f64>()
        .unwrap();
    let same = a.iter().zip(b.iter()).filter(|(x, y)| x == y).count();
    assert!(same < 3, "{same} equal values");
    // The same seed's uniform and normal arrays are unrelated.
    let n = default_rng(1)
        .standard_normal(&[100], [10])
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert!(a.iter().zip(n.iter()).all(|(x, y)| x != y));
}

#[test]
fn normal_moments_are_about_right() {
    let n = 200_000usize;
    let x = default_rng(5)
        .standard_normal(&[n], [20_000])
        .unwrap()
        .compute::<f64>()
        .unwrap();
    let mean = x.sum() / n as f64;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let m3 = x.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / n as f64;
    let m4 = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n as f64;
    // Standard errors: mean 1/sqrt(n) ≈ 0.0022, var sqrt(2/n) ≈ 0.0032, skew sqrt(6/n) ≈ 0.0055,
    // kurtosis sqrt(24/n) ≈ 0.011. Allow five of them.
    assert!(mean.abs() < 0.011, "mean {mean}");
    assert!((var - 1.0).abs() < 0.016, "var {var}");
    assert!(m3.abs() < 0.03, "third moment {m3}");
    assert!((m4 - 3.0).abs() < 0.06, "fourth moment {m4}");
    let within_one = x.iter().filter(|v| v.abs() < 1.0).count() as f64 / n as f64;
    assert!((within_one - 0.6827).abs() < 0.006, "{within_one}");
    assert!(x.iter().all(|v| v.is_finite()));
}

#[test]
fn uniform_low_high() {
    let rng = default_rng(8);
    let u = rng.uniform(-3.0, 5.0, &[40, 7], [9, 3]).unwrap();
    let base = rng
        .random(&[40, 7], [40, 7])
        .unwrap()
        .compute::<f64>()
        .unwrap();
    check(&u, &base.mapv(|v| v * 8.0 - 3.0));
    let got = u.compute::<f64>().unwrap();
    assert!(got.iter().all(|&v| (-3.0..5.0).contains(&v)));
}

#[test]
fn random_rejects_non_float_dtypes() {
    assert!(matches!(
        default_rng(0).random_dtype(&[4], [2], DType::I64),
        Err(Error::UnsupportedDType { op: "random", .. })
    ));
    assert!(matches!(
        default_rng(0).standard_normal_dtype(&[4], [2], DType::Bool),
        Err(Error::UnsupportedDType { .. })
    ));
}

#[test]
fn random_zero_d_and_empty() {
    let key = spec::Key::new(4, UNIFORM_STREAM);
    let s = default_rng(4).random(&[], [0usize; 0]).unwrap();
    assert_eq!(s.compute_scalar::<f64>().unwrap(), key.uniform_f64(0));
    let e = default_rng(4).random(&[0, 3], [2, 2]).unwrap();
    check(&e, &ArrayD::<f64>::zeros(IxDyn(&[0, 3])));
}

#[test]
fn arange_of_large_int64_values_is_exact() {
    // numpy computes int64 ranges in integers: values beyond 2^53 are exact.
    let start = (1i64 << 53) + 1;
    let a = arange(start, start + 6, 1, [4]).unwrap();
    check(&a, &arange_i64_oracle(start, start + 6, 1));
    let b = arange(i64::MAX - 10, i64::MAX, 3, [2]).unwrap();
    check(&b, &arange_i64_oracle(i64::MAX - 10, i64::MAX, 3));
    let c = arange(-(1i64 << 60), -(1i64 << 60) + 30, 7, [2]).unwrap();
    check(&c, &arange_i64_oracle(-(1i64 << 60), -(1i64 << 60) + 30, 7));
    let d = arange(0, 1i64 << 55, (1i64 << 53) + 3, [3]).unwrap();
    check(&d, &arange_i64_oracle(0, 1i64 << 55, (1i64 << 53) + 3));
}

#[test]
fn like_functions_keep_shape_chunks_and_dtype() {
    for shape in shapes_0_to_4() {
        let d = IxDyn(&shape);
        for (name, spec) in chunkings(&shape) {
            let ctx = format!("{shape:?} {name}");
            let x = from_array(iota(&shape), spec.clone()).unwrap();
            let f = x.astype(DType::F32).unwrap();
            for (like, got) in [
                (&x, tessera::zeros_like(&x).unwrap()),
                (&f, tessera::ones_like(&f).unwrap()),
                (&x, tessera::full_like(&x, 2.9).unwrap()),
                (&f, tessera::empty_like(&f).unwrap()),
            ] {
                assert_eq!(got.shape(), like.shape(), "{ctx}");
                assert_eq!(got.chunks(), like.chunks(), "{ctx}");
                assert_eq!(got.dtype(), like.dtype(), "{ctx}");
            }
            check(
                &tessera::zeros_like(&x).unwrap(),
                &ArrayD::<i64>::zeros(d.clone()),
            );
            check(
                &tessera::ones_like(&f).unwrap(),
                &ArrayD::<f32>::ones(d.clone()),
            );
            // numpy's full_like casts the value to the array's dtype: 2.9 into int64 is 2.
            check(
                &tessera::full_like(&x, 2.9).unwrap(),
                &ArrayD::from_elem(d.clone(), 2i64),
            );
            check(
                &tessera::empty::<f64>(&shape, spec.clone()).unwrap(),
                &ArrayD::<f64>::zeros(d.clone()),
            );
        }
    }
}

#[test]
fn unstack_gives_each_index_along_the_axis() {
    for shape in shapes_0_to_4().into_iter().filter(|s| !s.is_empty()) {
        let oracle = iota(&shape);
        for (name, spec) in chunkings(&shape) {
            let x = from_array(oracle.clone(), spec).unwrap();
            for axis in 0..shape.len() {
                let pieces = tessera::unstack(&x, axis as isize).unwrap();
                assert_eq!(pieces.len(), shape[axis], "{shape:?} {name} axis {axis}");
                for (i, p) in pieces.iter().enumerate() {
                    check(p, &oracle.index_axis(ndarray::Axis(axis), i).to_owned());
                }
            }
        }
    }
    let x = zeros::<f64>(&[2, 3], [1, 2]).unwrap();
    assert!(matches!(
        tessera::unstack(&x, 2),
        Err(Error::AxisOutOfBounds { .. })
    ));
    assert_eq!(
        tessera::broadcast_shapes(&[&[5, 1, 3], &[4, 1], &[]]).unwrap(),
        vec![5, 4, 3]
    );
    assert!(matches!(
        tessera::broadcast_shapes(&[&[2, 3], &[3, 2]]),
        Err(Error::Broadcast { .. })
    ));
}
