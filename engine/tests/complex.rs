//! complex128 the way a user drives it, against plain ndarray/num-complex oracles: creation,
//! `astype` both ways, numpy 2 promotion, arithmetic, the parts (real/imag/conj/angle/abs), the
//! analytic functions, `==`/`!=`, NaN tests, `sum`/`mean`, `.npy` round trips — on regular and
//! irregular chunkings — and the typed errors of the ops that have no meaning for complex.

mod common;

use common::*;
use ndarray::ArrayD;
use tessera::{Array, ChunkSpec, Complex64, DType, Scalar, from_array, full, ones, zeros};

fn sample_c(shape: &[usize], seed: u64) -> ArrayD<Complex64> {
    let re = gen_range(shape, seed, -3.0, 3.0);
    let im = gen_range(shape, seed + 7, -3.0, 3.0);
    ndarray::Zip::from(&re)
        .and(&im)
        .map_collect(|&a, &b| Complex64::new(a, b))
}

fn chunkings_2d() -> Vec<ChunkSpec> {
    vec![
        ChunkSpec::Block(vec![5, 6]),
        ChunkSpec::Block(vec![2, 4]),
        ChunkSpec::Explicit(vec![vec![1, 3, 1], vec![4, 1, 1]]),
    ]
}

#[track_caller]
fn close_c(a: &Array, expect: &ArrayD<Complex64>, tol: f64) {
    assert_eq!(a.dtype(), DType::C128);
    let got = a.compute::<Complex64>().unwrap();
    assert_eq!(got.shape(), expect.shape());
    for (g, e) in got.iter().zip(expect) {
        let same_nan = (g.re.is_nan() == e.re.is_nan()) && (g.im.is_nan() == e.im.is_nan());
        assert!(same_nan, "{g} vs {e}");
        if !g.re.is_nan() && !g.im.is_nan() {
            assert!((g - e).norm() <= tol * e.norm().max(1.0), "{g} vs {e}");
        }
    }
}

#[test]
fn creation_and_round_trip_through_chunks() {
    let data = sample_c(&[5, 6], 1);
    for chunks in chunkings_2d() {
        let x = from_array(data.clone(), chunks).unwrap();
        assert_eq!(x.dtype(), DType::C128);
        assert_eq!(x.compute::<Complex64>().unwrap(), data);
        // Slicing and transposing move complex chunks like any other.
        let t = x.transpose().compute::<Complex64>().unwrap();
        assert_eq!(t, data.t().to_owned());
    }
    let z = zeros::<Complex64>(&[3, 2], [2, 2]).unwrap();
    assert_eq!(
        z.compute::<Complex64>().unwrap(),
        ArrayD::from_elem(vec![3, 2], Complex64::new(0.0, 0.0))
    );
    let o = ones::<Complex64>(&[3], [2]).unwrap();
    assert_eq!(
        o.compute::<Complex64>().unwrap(),
        ArrayD::from_elem(vec![3], Complex64::new(1.0, 0.0))
    );
    let f = full(&[2, 2], Complex64::new(1.5, -2.0), [1, 2]).unwrap();
    assert_eq!(f.dtype(), DType::C128);
    assert_eq!(
        f.compute::<Complex64>().unwrap()[[1, 1]],
        Complex64::new(1.5, -2.0)
    );
}

#[test]
fn astype_both_ways_follows_numpy() {
    let data = sample_c(&[4, 5], 3);
    let x = from_array(data.clone(), [3, 2]).unwrap();
    // Complex to real keeps the real part (numpy warns and does the same).
    let re = x.astype(DType::F64).unwrap().compute::<f64>().unwrap();
    assert_eq!(re, data.mapv(|v| v.re));
    let i = x.astype(DType::I64).unwrap().compute::<i64>().unwrap();
    assert_eq!(i, data.mapv(|v| v.re as i64));
    let b = from_array(
        ndarray::arr1(&[
            Complex64::new(0.0, 0.0),
            Complex64::new(0.0, 2.0),
            Complex64::new(-1.0, 0.0),
        ])
        .into_dyn(),
        [2],
    )
    .unwrap();
    assert_eq!(
        b.astype(DType::Bool)
            .unwrap()
            .compute::<bool>()
            .unwrap()
            .as_slice()
            .unwrap(),
        &[false, true, true]
    );
    // Real to complex: zero imaginary part, for every real dtype.
    let r = from_array(iota(&[2, 3]), [1, 3]).unwrap();
    for d in [DType::Bool, DType::I64, DType::F32, DType::F64] {
        let c = r.astype(d).unwrap().astype(DType::C128).unwrap();
        let expect = iota(&[2, 3]).mapv(|v| {
            let v = match d {
                DType::Bool => (v != 0) as i64 as f64,
                _ => v as f64,
            };
            Complex64::new(v, 0.0)
        });
        assert_eq!(c.compute::<Complex64>().unwrap(), expect, "{d}");
    }
}

#[test]
fn promotion_and_arithmetic_match_the_oracle() {
    let a = sample_c(&[5, 6], 5);
    let b = sample_c(&[5, 6], 9);
    let r = gen_range(&[5, 6], 13, -2.0, 2.0);
    for chunks in chunkings_2d() {
        let x = from_array(a.clone(), chunks.clone()).unwrap();
        let y = from_array(b.clone(), ChunkSpec::Block(vec![3, 3])).unwrap();
        let z = from_array(r.clone(), chunks.clone()).unwrap();
        close_c(&(&x + &y), &(&a + &b), 1e-15);
        close_c(&(&x - &y), &(&a - &b), 1e-15);
        close_c(&(&x * &y), &(&a * &b), 1e-15);
        close_c(
            &(&x / &y),
            &ndarray::Zip::from(&a).and(&b).map_collect(|p, q| p / q),
            1e-15,
        );
        close_c(&(-&x), &a.mapv(|v| -v), 0.0);
        // Real with complex promotes to complex128, float32 included (numpy 2 would say complex64).
        let zr = ndarray::Zip::from(&r)
            .and(&a)
            .map_collect(|&p, &q| Complex64::new(p, 0.0) + q);
        close_c(&(&z + &x), &zr, 1e-15);
        let z32 = z.astype(DType::F32).unwrap();
        assert_eq!((&z32 * &x).dtype(), DType::C128);
        let zi = z.astype(DType::I64).unwrap();
        assert_eq!((&zi - &x).dtype(), DType::C128);
        // A complex scalar makes a real array complex.
        let s = &z * Complex64::new(0.0, 2.0);
        close_c(
            &s,
            &r.mapv(|v| Complex64::new(v, 0.0) * Complex64::new(0.0, 2.0)),
            1e-15,
        );
        // A real scalar keeps complex128.
        close_c(&(&x * 2.0f64), &a.mapv(|v| v * 2.0), 0.0);
    }
}

#[test]
fn parts_and_analytic_functions() {
    let a = sample_c(&[5, 6], 17);
    let x = from_array(
        a.clone(),
        ChunkSpec::Explicit(vec![vec![1, 3, 1], vec![4, 1, 1]]),
    )
    .unwrap();
    let f = |arr: Array| arr.compute::<f64>().unwrap();
    assert_eq!(x.abs().unwrap().dtype(), DType::F64);
    // abs is a vectorized hypot, within 1 ulp of libm's (usually equal).
    let (got, want) = (f(x.abs().unwrap()), a.mapv(|v| v.re.hypot(v.im)));
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= w * f64::EPSILON,
            "|z| = {g}, libm's hypot {w}"
        );
    }
    assert_eq!(f(x.real().unwrap()), a.mapv(|v| v.re));
    assert_eq!(f(x.imag().unwrap()), a.mapv(|v| v.im));
    assert_eq!(f(x.angle().unwrap()), a.mapv(|v| v.im.atan2(v.re)));
    close_c(&x.conj().unwrap(), &a.mapv(|v| v.conj()), 0.0);
    close_c(&x.exp().unwrap(), &a.mapv(|v| v.exp()), 1e-15);
    close_c(&x.sqrt().unwrap(), &a.mapv(|v| v.sqrt()), 1e-15);
    close_c(&x.ln().unwrap(), &a.mapv(|v| v.ln()), 1e-15);
    close_c(&x.square().unwrap(), &a.mapv(|v| v * v), 1e-15);
    // The parts of a real array: itself, zeros, and numpy's angle (pi for negatives).
    let r = from_array(ndarray::arr1(&[-2.0, 0.0, 3.0]).into_dyn(), [2]).unwrap();
    assert_eq!(
        r.real()
            .unwrap()
            .compute::<f64>()
            .unwrap()
            .as_slice()
            .unwrap(),
        &[-2.0, 0.0, 3.0]
    );
    assert_eq!(
        r.imag()
            .unwrap()
            .compute::<f64>()
            .unwrap()
            .as_slice()
            .unwrap(),
        &[0.0, 0.0, 0.0]
    );
    assert_eq!(
        r.angle()
            .unwrap()
            .compute::<f64>()
            .unwrap()
            .as_slice()
            .unwrap(),
        &[std::f64::consts::PI, 0.0, 0.0]
    );
    let i = from_array(iota(&[3]), [2]).unwrap();
    assert_eq!(i.real().unwrap().dtype(), DType::I64);
}

#[test]
fn equality_and_nan_tests() {
    let nan = f64::NAN;
    let v = ndarray::arr1(&[
        Complex64::new(1.0, 2.0),
        Complex64::new(nan, 0.0),
        Complex64::new(0.0, f64::INFINITY),
        Complex64::new(1.0, -2.0),
    ])
    .into_dyn();
    let x = from_array(v.clone(), [3]).unwrap();
    let b = |a: Array| a.compute::<bool>().unwrap().into_iter().collect::<Vec<_>>();
    assert_eq!(b(x.isnan().unwrap()), [false, true, false, false]);
    assert_eq!(b(x.isfinite().unwrap()), [true, false, false, true]);
    assert_eq!(b(x.isinf().unwrap()), [false, false, true, false]);
    assert_eq!(
        b(x.eq(Complex64::new(1.0, 2.0)).unwrap()),
        [true, false, false, false]
    );
    assert_eq!(
        b(x.ne(x.conj().unwrap()).unwrap()),
        [true, true, true, true]
    );
    assert_eq!(b(x.eq(1.0).unwrap()), [false, false, false, false]);
}

#[test]
fn sum_and_mean_reduce_both_parts() {
    let a = sample_c(&[5, 6], 23);
    for chunks in chunkings_2d() {
        let x = from_array(a.clone(), chunks).unwrap();
        let total: Complex64 = a.iter().sum();
        let s = x.sum().unwrap().compute_scalar::<Complex64>().unwrap();
        assert!((s - total).norm() < 1e-12, "{s} vs {total}");
        let m = x.mean().unwrap().compute_scalar::<Complex64>().unwrap();
        assert!((m - total / 30.0).norm() < 1e-12);
        let by_col = x.sum_axis(0).unwrap();
        close_c(&by_col, &a.sum_axis(ndarray::Axis(0)), 1e-13);
        let by_row = x.mean_axis(1).unwrap();
        close_c(&by_row, &a.mean_axis(ndarray::Axis(1)).unwrap(), 1e-13);
    }
}

#[test]
fn npy_round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.npy");
    let mut a = sample_c(&[4, 3], 29);
    a[[0, 0]] = Complex64::new(f64::NAN, -0.0);
    let x = from_array(a.clone(), [3, 2]).unwrap();
    x.to_npy(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128]);
    assert!(header.contains("'descr': '<c16'"), "{header}");
    let back = tessera::from_npy(&path, [2, 3]).unwrap();
    assert_eq!(back.dtype(), DType::C128);
    let got = back.compute::<Complex64>().unwrap();
    for (g, e) in got.iter().zip(&a) {
        assert_eq!(
            (g.re.to_bits(), g.im.to_bits()),
            (e.re.to_bits(), e.im.to_bits())
        );
    }
}

#[test]
fn ops_without_meaning_for_complex_are_typed_errors() {
    let x = from_array(sample_c(&[4, 4], 31), [2, 2]).unwrap();
    let cases: Vec<(&str, tessera::Result<Array>)> = vec![
        ("max", x.max()),
        ("min", x.min()),
        ("argmax", x.argmax()),
        ("less", x.lt(&x)),
        ("greater_equal", x.ge(0.0)),
        ("floor", x.floor()),
        ("sign", x.sign()),
        ("clip", x.clip(0.0, 1.0)),
        ("maximum", x.maximum(&x)),
        ("sort", x.sort(0)),
        ("prod", x.prod()),
    ];
    for (op, r) in cases {
        let msg = r.map(|_| ()).unwrap_err().to_string();
        assert!(
            msg.contains(op) && msg.contains("complex128"),
            "{op}: {msg}"
        );
    }
    assert!(Scalar::C128(Complex64::new(1.0, 0.0)).dtype() == DType::C128);
}
