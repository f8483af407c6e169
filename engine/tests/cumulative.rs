//! cumsum, cumprod, nancumsum and nancumprod along every axis of every rank and chunking, against
//! a sequential left-to-right fold over each lane written with ndarray (numpy's `accumulate`
//! order, so floats are compared bit for bit), on every dtype, empty and 0-d arrays, and random
//! shapes and chunkings.

mod common;

use common::*;
use ndarray::{ArrayD, Axis, IxDyn, arr1};
use proptest::prelude::*;
use tessera::{DType, from_array, from_array_data};

/// The running fold of `step` along `axis`, NaN skipped when `skip`.
fn scan_oracle<T: Copy>(
    a: &ArrayD<T>,
    axis: usize,
    identity: T,
    skip: impl Fn(T) -> bool,
    step: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    let mut out = a.clone();
    for mut lane in out.lanes_mut(Axis(axis)) {
        let mut acc = identity;
        for v in lane.iter_mut() {
            if !skip(*v) {
                acc = step(acc, *v);
            }
            *v = acc;
        }
    }
    out
}

fn nan_sprinkled(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = TestRng::new(seed);
    sample::<f64>(shape, seed).mapv(|v| if rng.unit() < 0.15 { f64::NAN } else { v / 4.0 })
}

#[test]
fn scans_every_axis_rank_and_chunking_bit_for_bit() {
    for shape in shapes_0_to_4().into_iter().skip(1) {
        let f = nan_sprinkled(&shape, 110);
        let i = sample::<i64>(&shape, 111);
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(f.clone(), spec.clone()).unwrap();
            let y = from_array(i.clone(), spec).unwrap();
            for axis in 0..shape.len() {
                let ax = Some(axis as isize);
                in_context(format!("{shape:?} {cname} axis {axis}"), || {
                    let no = |_: f64| false;
                    let nan = |v: f64| v.is_nan();
                    check_tol(
                        &x.cumsum(ax).unwrap(),
                        &scan_oracle(&f, axis, 0.0, no, |a, b| a + b),
                        EXACT,
                    );
                    check_tol(
                        &x.cumprod(ax).unwrap(),
                        &scan_oracle(&f, axis, 1.0, no, |a, b| a * b),
                        EXACT,
                    );
                    check_tol(
                        &x.nancumsum(ax).unwrap(),
                        &scan_oracle(&f, axis, 0.0, nan, |a, b| a + b),
                        EXACT,
                    );
                    check_tol(
                        &x.nancumprod(ax).unwrap(),
                        &scan_oracle(&f, axis, 1.0, nan, |a, b| a * b),
                        EXACT,
                    );
                    let ino = |_: i64| false;
                    check(
                        &y.cumsum(ax).unwrap(),
                        &scan_oracle(&i, axis, 0, ino, i64::wrapping_add),
                    );
                    check(
                        &y.cumprod(ax).unwrap(),
                        &scan_oracle(&i, axis, 1, ino, i64::wrapping_mul),
                    );
                    check(
                        &y.nancumsum(ax).unwrap(),
                        &scan_oracle(&i, axis, 0, ino, i64::wrapping_add),
                    );
                });
            }
            // Negative axes count from the end.
            let last = shape.len() - 1;
            check_tol(
                &x.cumsum(Some(-1)).unwrap(),
                &scan_oracle(&f, last, 0.0, |_| false, |a, b| a + b),
                EXACT,
            );
        }
    }
}

#[test]
fn scan_dtypes_follow_numpy() {
    let b = sample::<bool>(&[9, 4], 112);
    let x = from_array(b.clone(), [4, 3]).unwrap();
    let s = x.cumsum(Some(0)).unwrap();
    assert_eq!(s.dtype(), DType::I64);
    check(
        &s,
        &scan_oracle(&b.mapv(|v| v as i64), 0, 0, |_| false, |a, c| a + c),
    );
    let p = x.cumprod(Some(1)).unwrap();
    check(
        &p,
        &scan_oracle(&b.mapv(|v| v as i64), 1, 1, |_| false, |a, c| a * c),
    );
    let f = sample::<f32>(&[11], 113);
    let y = from_array(f.clone(), [3]).unwrap();
    let s = y.cumsum(Some(0)).unwrap();
    assert_eq!(s.dtype(), DType::F32);
    check_tol(
        &s,
        &scan_oracle(&f, 0, 0.0f32, |_| false, |a, c| a + c),
        EXACT,
    );
}

#[test]
fn scan_without_axis_flattens() {
    let d = iota(&[3, 4]);
    let x = from_array(d.clone(), [2, 3]).unwrap();
    let flat = d.iter().copied().collect::<Vec<_>>();
    let want = scan_oracle(
        &ArrayD::from_shape_vec(IxDyn(&[12]), flat).unwrap(),
        0,
        0,
        |_| false,
        |a, b| a + b,
    );
    check(&x.cumsum(None).unwrap(), &want);
    assert_eq!(
        from_array(arr1(&[2i64, 3, 4]).into_dyn(), [1])
            .unwrap()
            .cumprod(None)
            .unwrap()
            .compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![2, 6, 24]
    );
}

#[test]
fn scans_of_empty_and_zero_d_arrays() {
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 3])), [1, 2]).unwrap();
    for axis in [0isize, 1] {
        let c = e.cumsum(Some(axis)).unwrap();
        assert_eq!(c.shape(), &[0, 3]);
        assert_eq!(c.compute::<f64>().unwrap().shape(), &[0, 3]);
    }
    let z = from_array_data(
        tessera::ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), 2.5)),
        tessera::ChunkSpec::Block(vec![]),
    )
    .unwrap();
    assert!(z.cumsum(Some(0)).is_err());
    assert_eq!(
        z.cumsum(None)
            .unwrap()
            .compute::<f64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![2.5]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random shapes, ragged chunkings and axes: bit-for-bit equal to the sequential fold.
    #[test]
    fn cumsum_any_chunking(
        dims in prop::collection::vec(1usize..9, 1..4),
        seed in 0u64..1000,
    ) {
        let data = nan_sprinkled(&dims, seed);
        let mut rng = TestRng::new(seed);
        let sizes: Vec<Vec<usize>> = dims
            .iter()
            .map(|&n| {
                let mut left = n;
                let mut v = Vec::new();
                while left > 0 {
                    let c = (rng.int(1, 4) as usize).min(left);
                    v.push(c);
                    left -= c;
                }
                v
            })
            .collect();
        let x = from_array(data.clone(), sizes).unwrap();
        let axis = seed as usize % dims.len();
        check_tol(
            &x.nancumsum(Some(axis as isize)).unwrap(),
            &scan_oracle(&data, axis, 0.0, |v: f64| v.is_nan(), |a, b| a + b),
            EXACT,
        );
    }
}
