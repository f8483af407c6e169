//! The elementwise functions added beyond the first vocabulary (inverse and hyperbolic
//! trigonometry, expm1/exp2/cbrt, sign/trunc, isinf/signbit, floor_divide, fmod, copysign,
//! nextafter, fmax/fmin, logical and bitwise functions, shifts, power, around, and comparisons
//! with a scalar on either side), against plain-Rust oracles over whole ndarrays on every rank and
//! chunking, and against values numpy documents or gives, written out.

mod common;

use common::*;
use ndarray::{ArrayD, arr1};
use tessera::{Array, DType, Error, from_array, ufunc};

type UnaryOp = fn(&Array) -> tessera::Result<Array>;

/// Float data with NaN, infinities and signed zeros among values in [-10, 10).
fn float_data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut a = sample::<f64>(shape, seed);
    let n = a.len();
    if n > 4 {
        let s = a.as_slice_mut().unwrap();
        s[0] = f64::NAN;
        s[n / 2] = f64::INFINITY;
        s[n - 1] = f64::NEG_INFINITY;
        s[1] = 0.0;
        s[2] = -0.0;
    }
    a
}

fn np_sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else if v == 0.0 {
        0.0
    } else {
        v
    }
}

#[test]
fn new_unary_float_functions_every_rank_and_chunking() {
    type F = fn(f64) -> f64;
    let fns: [(&str, UnaryOp, F); 15] = [
        ("arcsin", Array::arcsin, f64::asin),
        ("arccos", Array::arccos, f64::acos),
        ("arctan", Array::arctan, f64::atan),
        ("sinh", Array::sinh, f64::sinh),
        ("cosh", Array::cosh, f64::cosh),
        ("arcsinh", Array::arcsinh, f64::asinh),
        ("arccosh", Array::arccosh, f64::acosh),
        ("arctanh", Array::arctanh, f64::atanh),
        ("expm1", Array::expm1, f64::exp_m1),
        ("exp2", Array::exp2, f64::exp2),
        ("cbrt", Array::cbrt, f64::cbrt),
        ("deg2rad", Array::deg2rad, |v| {
            v * (std::f64::consts::PI / 180.0)
        }),
        ("rad2deg", Array::rad2deg, |v| {
            v * (180.0 / std::f64::consts::PI)
        }),
        ("sign", Array::sign, np_sign),
        ("trunc", Array::trunc, f64::trunc),
    ];
    for shape in shapes_0_to_4() {
        let data = float_data(&shape, 70);
        // The inverse sine and cosine and arctanh see values in their domain as well as outside.
        let unit = data.mapv(|v| v / 10.0);
        for (cname, spec) in chunkings(&shape) {
            let a = from_array(data.clone(), spec.clone()).unwrap();
            let u = from_array(unit.clone(), spec).unwrap();
            for (name, f, oracle) in fns {
                in_context(format!("{name} {shape:?} {cname}"), || {
                    check(&f(&a).unwrap(), &data.mapv(oracle));
                    check(&f(&u).unwrap(), &unit.mapv(oracle));
                });
            }
            check(&a.isinf().unwrap(), &data.mapv(f64::is_infinite));
            check(&a.signbit().unwrap(), &data.mapv(f64::is_sign_negative));
            check(&a.logical_not().unwrap(), &data.mapv(|v| v == 0.0));
        }
    }
}

#[test]
fn new_unary_functions_f32_stay_f32() {
    let data = sample::<f32>(&[29, 13], 71).mapv(|v| v / 10.0);
    let a = from_array(data.clone(), [10, 6]).unwrap();
    type F = fn(f32) -> f32;
    let fns: [(&str, UnaryOp, F); 6] = [
        ("arcsin", Array::arcsin, f32::asin),
        ("cosh", Array::cosh, f32::cosh),
        ("expm1", Array::expm1, f32::exp_m1),
        ("cbrt", Array::cbrt, f32::cbrt),
        ("trunc", Array::trunc, f32::trunc),
        ("sign", Array::sign, |v| np_sign(v as f64) as f32),
    ];
    for (name, f, oracle) in fns {
        let got = f(&a).unwrap();
        assert_eq!(got.dtype(), DType::F32, "{name}");
        check(&got, &data.mapv(oracle));
    }
}

#[test]
fn new_unary_functions_on_integers_and_bools() {
    let data = sample::<i64>(&[23, 11], 72);
    let a = from_array(data.clone(), [7, 4]).unwrap();
    // Integer-preserving (numpy keeps int64 for sign and trunc).
    check(&a.sign().unwrap(), &data.mapv(i64::signum));
    check(&a.trunc().unwrap(), &data);
    // Float math goes through float64.
    check(&a.cbrt().unwrap(), &data.mapv(|v| (v as f64).cbrt()));
    check(&a.exp2().unwrap(), &data.mapv(|v| (v as f64).exp2()));
    check(&a.isinf().unwrap(), &data.mapv(|_| false));
    check(&a.signbit().unwrap(), &data.mapv(|v| v < 0));
    check(&a.logical_not().unwrap(), &data.mapv(|v| v == 0));
    check(&a.invert().unwrap(), &data.mapv(|v| !v));

    let b = sample::<bool>(&[23, 11], 73);
    let x = from_array(b.clone(), [7, 4]).unwrap();
    check(&x.logical_not().unwrap(), &b.mapv(|v| !v));
    check(&x.invert().unwrap(), &b.mapv(|v| !v));
    check(&x.signbit().unwrap(), &b.mapv(|_| false));
    check(&x.arctan().unwrap(), &b.mapv(|v| (v as u8 as f64).atan()));
    for (name, r) in [("sign", x.sign()), ("trunc", x.trunc())] {
        match r {
            Err(Error::UnsupportedDType { op, dtype }) => {
                assert_eq!((op, dtype), (name, DType::Bool))
            }
            other => panic!("{name} on bool: {other:?}"),
        }
    }
}

/// numpy's floor_divide on floats, from its definition: floor of the exact quotient where that is
/// representable; the cases below have exact quotients or are the documented special cases.
#[test]
fn floor_divide_fmod_remainder_known_values() {
    let a = arr1(&[7.0, -7.0, 7.0, -7.0, 0.5, 1.0, -0.0, 5.0, f64::INFINITY]).into_dyn();
    let b = arr1(&[2.0, 2.0, -2.0, -2.0, 0.1, 0.0, 3.0, f64::NAN, 2.0]).into_dyn();
    let x = from_array(a.clone(), [4]).unwrap();
    let y = from_array(b.clone(), [3]).unwrap();
    let fd = x.floor_divide(&y).unwrap().compute::<f64>().unwrap();
    // numpy: [3, -4, -4, 3, 4 (0.5 // 0.1 is 4.0), inf, -0.0, nan, nan]
    let want = [
        3.0,
        -4.0,
        -4.0,
        3.0,
        4.0,
        f64::INFINITY,
        -0.0,
        f64::NAN,
        f64::NAN,
    ];
    for (i, (&g, &w)) in fd.iter().zip(&want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || (g == w && g.is_sign_negative() == w.is_sign_negative()),
            "floor_divide element {i}: {g} vs {w}"
        );
    }
    let fm = x.fmod(&y).unwrap().compute::<f64>().unwrap();
    let want = [
        1.0,
        -1.0,
        1.0,
        -1.0,
        0.5 % 0.1,
        f64::NAN,
        -0.0,
        f64::NAN,
        f64::NAN,
    ];
    for (i, (&g, &w)) in fm.iter().zip(&want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || g == w,
            "fmod element {i}: {g} vs {w}"
        );
    }

    let ia = arr1(&[7i64, -7, 7, -7, 5, i64::MIN, 0]).into_dyn();
    let ib = arr1(&[2i64, 2, -2, -2, 0, -1, -3]).into_dyn();
    let x = from_array(ia, [3]).unwrap();
    let y = from_array(ib, [5]).unwrap();
    let fd = x.floor_divide(&y).unwrap();
    assert_eq!(fd.dtype(), DType::I64);
    assert_eq!(
        fd.compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(),
        vec![3, -4, -4, 3, 0, i64::MIN, 0]
    );
    assert_eq!(
        x.fmod(&y)
            .unwrap()
            .compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![1, -1, 1, -1, 0, 0, 0]
    );
    assert_eq!(
        ufunc::remainder(&x, &y)
            .unwrap()
            .compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![1, 1, -1, -1, 0, 0, 0]
    );
}

/// `a == (a // b) * b + a % b` for float operands where no rounding intervenes, on every chunking.
#[test]
fn floor_divide_and_remainder_agree_everywhere() {
    for shape in shapes_0_to_4() {
        let a = sample::<i64>(&shape, 74);
        let b = sample::<i64>(&shape, 75).mapv(|v| if v == 0 { 3 } else { v });
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(a.clone(), spec.clone()).unwrap();
            let y = from_array(b.clone(), spec).unwrap();
            in_context(format!("{shape:?} {cname}"), || {
                let q = x.floor_divide(&y).unwrap();
                let r = &x % &y;
                let back = (&q * &y) + r;
                check(&back, &a);
                let want = zip_with(&a, &b, |p, q| (p as f64 / q as f64).floor() as i64);
                check(&q, &want);
                let xf = x.astype(DType::F64).unwrap();
                let yf = y.astype(DType::F64).unwrap();
                check(&xf.floor_divide(&yf).unwrap(), &want.mapv(|v| v as f64));
            });
        }
    }
}

#[test]
fn two_argument_float_functions_broadcast() {
    let a = float_data(&[13, 9], 76);
    let b = sample::<f64>(&[9], 77);
    let x = from_array(a.clone(), [5, 4]).unwrap();
    let y = from_array(b.clone(), [2]).unwrap();
    let bb = bcast(&b, &[13, 9]);
    type F = fn(f64, f64) -> f64;
    let cases: [(&str, tessera::Result<Array>, F); 4] = [
        ("arctan2", x.arctan2(&y), f64::atan2),
        ("hypot", x.hypot(&y), f64::hypot),
        ("copysign", x.copysign(&y), f64::copysign),
        ("powf", x.powf(&y), f64::powf),
    ];
    for (name, got, oracle) in cases {
        in_context(name, || check(&got.unwrap(), &zip_with(&a, &bb, oracle)));
    }
    // fmax/fmin ignore NaN where numpy's maximum/minimum propagate it.
    let fmax = zip_with(
        &a,
        &bb,
        |p: f64, q: f64| if p.is_nan() { q } else { p.max(q) },
    );
    check(&x.fmax(&y).unwrap(), &fmax);
    let fmin = zip_with(
        &a,
        &bb,
        |p: f64, q: f64| if p.is_nan() { q } else { p.min(q) },
    );
    check(&x.fmin(&y).unwrap(), &fmin);
    let nan = from_array(arr1(&[f64::NAN, 1.0, f64::NAN]).into_dyn(), [2]).unwrap();
    let other = from_array(arr1(&[f64::NAN, f64::NAN, 2.0]).into_dyn(), [1]).unwrap();
    let got = nan
        .fmax(&other)
        .unwrap()
        .compute::<f64>()
        .unwrap()
        .into_iter()
        .collect::<Vec<_>>();
    assert!(got[0].is_nan() && got[1] == 1.0 && got[2] == 2.0, "{got:?}");
}

#[test]
fn nextafter_steps_one_ulp() {
    let a = arr1(&[1.0, 1.0, 0.0, 0.0, -1.0, f64::MAX, 2.0, f64::NAN]).into_dyn();
    let b = arr1(&[2.0, 0.0, 1.0, -1.0, -2.0, f64::INFINITY, 2.0, 0.0]).into_dyn();
    let got = from_array(a, [3])
        .unwrap()
        .nextafter(from_array(b, [5]).unwrap())
        .unwrap()
        .compute::<f64>()
        .unwrap()
        .into_iter()
        .collect::<Vec<_>>();
    let want = [
        1.0 + f64::EPSILON,
        1.0 - f64::EPSILON / 2.0,
        f64::from_bits(1),
        -f64::from_bits(1),
        -1.0 - f64::EPSILON,
        f64::INFINITY,
        2.0,
    ];
    assert_eq!(&got[..7], &want);
    assert!(got[7].is_nan());
    let f = from_array(arr1(&[1.0f32]).into_dyn(), [1]).unwrap();
    let g = f.nextafter(2.0f64).unwrap();
    assert_eq!(g.dtype(), DType::F32);
    assert_eq!(g.compute::<f32>().unwrap()[[0]], 1.0 + f32::EPSILON);
}

#[test]
fn logical_functions_read_truth_values() {
    for shape in shapes_0_to_4() {
        let a = sample::<f64>(&shape, 78).mapv(|v| if v > 3.0 { 0.0 } else { v });
        let b = sample::<i64>(&shape, 79).mapv(|v| v % 3);
        let (ta, tb) = (a.mapv(|v| v != 0.0), b.mapv(|v| v != 0));
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(a.clone(), spec.clone()).unwrap();
            let y = from_array(b.clone(), spec).unwrap();
            in_context(format!("{shape:?} {cname}"), || {
                check(
                    &x.logical_and(&y).unwrap(),
                    &zip_with(&ta, &tb, |p, q| p && q),
                );
                check(
                    &x.logical_or(&y).unwrap(),
                    &zip_with(&ta, &tb, |p, q| p || q),
                );
                check(
                    &x.logical_xor(&y).unwrap(),
                    &zip_with(&ta, &tb, |p, q| p ^ q),
                );
                check(&ufunc::logical_and(true, &y).unwrap(), &tb);
            });
        }
    }
}

#[test]
fn bitwise_functions_and_shifts_on_integers_and_bools() {
    let a = sample::<i64>(&[17, 5], 80).mapv(|v| v * 1_000_003);
    let s = arr1(&[0i64, 1, 5, 63, 64]).into_dyn();
    let x = from_array(a.clone(), [6, 2]).unwrap();
    let sh = from_array(s.clone(), [2]).unwrap();
    let sb = bcast(&s, &[17, 5]);
    let shl = zip_with(&a, &sb, |p, q| if q < 64 { p << q } else { 0 });
    let shr = zip_with(&a, &sb, |p, q| {
        if q < 64 {
            p >> q
        } else if p < 0 {
            -1
        } else {
            0
        }
    });
    check(&x.left_shift(&sh).unwrap(), &shl);
    check(&x.right_shift(&sh).unwrap(), &shr);
    check(
        &ufunc::right_shift(&x, -1i64).unwrap(),
        &a.mapv(|p| if p < 0 { -1i64 } else { 0 }),
    );
    check(&x.bitwise_and(255i64).unwrap(), &a.mapv(|p| p & 255));
    check(&x.bitwise_or(&x).unwrap(), &a);
    check(&x.bitwise_xor(&x).unwrap(), &a.mapv(|_| 0i64));
    // numpy: 1 << 3 on bools computes in an integer type (int8 there, int64 here).
    let t = from_array(arr1(&[true, false]).into_dyn(), [1]).unwrap();
    let got = t.left_shift(3i64).unwrap();
    assert_eq!(got.dtype(), DType::I64);
    assert_eq!(
        got.compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![8, 0]
    );
    let f = from_array(arr1(&[1.0]).into_dyn(), [1]).unwrap();
    assert!(matches!(
        f.left_shift(1i64),
        Err(Error::UnsupportedDType {
            op: "left_shift",
            dtype: DType::F64
        })
    ));
    assert!(matches!(
        f.bitwise_and(1i64),
        Err(Error::UnsupportedDType {
            op: "bitwise_and",
            ..
        })
    ));
}

#[test]
fn power_keeps_integers_and_takes_a_scalar_base() {
    let a = arr1(&[2i64, -3, 0, 1, -1, 7]).into_dyn();
    let e = arr1(&[10i64, 3, 0, -2, -3, 2]).into_dyn();
    let x = from_array(a, [4]).unwrap();
    let y = from_array(e.clone(), [3]).unwrap();
    let p = x.power(&y).unwrap();
    assert_eq!(p.dtype(), DType::I64);
    assert_eq!(
        p.compute::<i64>().unwrap().into_iter().collect::<Vec<_>>(),
        vec![1024, -27, 1, 1, -1, 49]
    );
    // scalar ** array, as numpy's `2 ** e`.
    let two = ufunc::power(2i64, y.abs().unwrap()).unwrap();
    assert_eq!(
        two.compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        e.mapv(|v| 2i64.pow(v.unsigned_abs() as u32))
            .into_iter()
            .collect::<Vec<_>>()
    );
    // A float scalar base gives float64 (weak scalars), array ** array in float.
    let f = ufunc::power(0.5, &y).unwrap();
    assert_eq!(f.dtype(), DType::F64);
    check(&f, &e.mapv(|v| 0.5f64.powf(v as f64)));
    let data = gen_positive(&[11, 7], 81);
    let ex = sample::<f64>(&[11, 7], 82);
    let xf = from_array(data.clone(), [4, 4]).unwrap();
    let ef = from_array(ex.clone(), [3, 7]).unwrap();
    check(&xf.power(&ef).unwrap(), &zip_with(&data, &ex, f64::powf));
    assert!(matches!(
        from_array(arr1(&[true]).into_dyn(), [1])
            .unwrap()
            .power(true),
        Err(Error::UnsupportedDType { op: "power", .. })
    ));
}

#[test]
fn comparisons_with_a_scalar_on_either_side() {
    for shape in shapes_0_to_4() {
        let a = sample::<f64>(&shape, 83);
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(a.clone(), spec).unwrap();
            in_context(format!("{shape:?} {cname}"), || {
                check(&ufunc::less(0.5, &x).unwrap(), &a.mapv(|v| 0.5 < v));
                check(
                    &ufunc::greater_equal(0.5, &x).unwrap(),
                    &a.mapv(|v| 0.5 >= v),
                );
                check(&ufunc::less_equal(&x, 0.5).unwrap(), &a.mapv(|v| v <= 0.5));
                check(&ufunc::greater(2i64, &x).unwrap(), &a.mapv(|v| 2.0 > v));
                check(&ufunc::equal(0.0, &x).unwrap(), &a.mapv(|v| v == 0.0));
                check(&ufunc::not_equal(&x, &x).unwrap(), &a.mapv(|v| v.is_nan()));
            });
        }
    }
    assert!(matches!(
        ufunc::less(1.0, 2.0),
        Err(Error::InvalidArgument { op: "less", .. })
    ));
}

#[test]
fn around_follows_numpy_steps() {
    let a = arr1(&[1.2345, -2.675, 0.5, 1.5, 2.5, 125.0, -0.0, f64::NAN, 1e300]).into_dyn();
    let x = from_array(a.clone(), [4]).unwrap();
    for d in [-2, -1, 0, 1, 2, 3] {
        let want = if d >= 0 {
            let f = 10f64.powi(d);
            a.mapv(|v| (v * f).round_ties_even() / f)
        } else {
            let f = 10f64.powi(-d);
            a.mapv(|v| (v / f).round_ties_even() * f)
        };
        check_tol(&x.around(d).unwrap(), &want, EXACT);
    }
    // numpy: np.around([0.5, 1.5, 2.5], 0) is [0, 2, 2]; np.around(1.2345, 2) is 1.23.
    let got = x.around(0).unwrap().compute::<f64>().unwrap();
    assert_eq!(
        &got.iter().copied().collect::<Vec<_>>()[2..5],
        &[0.0, 2.0, 2.0]
    );
    assert_eq!(x.around(2).unwrap().compute::<f64>().unwrap()[[0]], 1.23);
    let i = from_array(arr1(&[1234i64, -1250, 15, 25]).into_dyn(), [3]).unwrap();
    assert_eq!(i.around(1).unwrap().dtype(), DType::I64);
    assert_eq!(
        i.around(-1)
            .unwrap()
            .compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![1230, -1250, 20, 20]
    );
    let f = from_array(arr1(&[1.25f32, 2.675]).into_dyn(), [1]).unwrap();
    let r = f.around(1).unwrap();
    assert_eq!(r.dtype(), DType::F32);
    assert_eq!(
        r.compute::<f32>().unwrap().into_iter().collect::<Vec<_>>(),
        vec![
            (1.25f32 * 10.0).round_ties_even() / 10.0,
            (2.675f32 * 10.0).round_ties_even() / 10.0
        ]
    );
    assert!(
        from_array(arr1(&[true]).into_dyn(), [1])
            .unwrap()
            .around(1)
            .is_err()
    );
}

#[test]
fn new_functions_on_empty_arrays_keep_shape_and_dtype() {
    let e = from_array(ArrayD::<f64>::zeros(ndarray::IxDyn(&[0, 3])), [1, 2]).unwrap();
    for (name, got, dtype) in [
        ("arcsinh", e.arcsinh().unwrap(), DType::F64),
        ("isinf", e.isinf().unwrap(), DType::Bool),
        ("hypot", e.hypot(1.0).unwrap(), DType::F64),
        ("logical_or", e.logical_or(&e).unwrap(), DType::Bool),
        ("floor_divide", e.floor_divide(2.0).unwrap(), DType::F64),
    ] {
        assert_eq!(got.shape(), &[0, 3], "{name}");
        assert_eq!(got.dtype(), dtype, "{name}");
        assert_eq!(got.compute_dyn().unwrap().shape(), &[0, 3], "{name}");
    }
}

/// numpy's `logaddexp`, written from its definition in exact terms where it can be: the larger
/// argument plus `ln(1 + e^-|a-b|)`.
fn np_logaddexp(a: f64, b: f64) -> f64 {
    if a == b {
        return a + std::f64::consts::LN_2;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    hi + (lo - hi).exp().ln_1p()
}

#[test]
fn logaddexp_positive_reciprocal_every_rank_and_chunking() {
    for shape in shapes_0_to_4() {
        let a = float_data(&shape, 80);
        let b = float_data(&shape, 81).mapv(|v| v * 90.0);
        for (cname, spec) in chunkings(&shape) {
            in_context(format!("{shape:?} {cname}"), || {
                let x = from_array(a.clone(), spec.clone()).unwrap();
                let y = from_array(b.clone(), spec.clone()).unwrap();
                check(&x.logaddexp(&y).unwrap(), &zip_with(&a, &b, np_logaddexp));
                check(&x.positive().unwrap(), &a);
                check(&x.reciprocal().unwrap(), &a.mapv(|v| 1.0 / v));
            });
        }
    }
    // Known values: no overflow for large arguments, infinities, NaN.
    let p = from_array(
        arr1(&[1000.0, -f64::INFINITY, f64::INFINITY, f64::NAN, 0.0]).into_dyn(),
        [2],
    )
    .unwrap();
    let q = from_array(
        arr1(&[1000.0, -f64::INFINITY, 1.0, 1.0, 0.0]).into_dyn(),
        [3],
    )
    .unwrap();
    let got = p.logaddexp(&q).unwrap().compute::<f64>().unwrap();
    let ln2 = std::f64::consts::LN_2;
    assert_eq!(got[0], 1000.0 + ln2);
    assert_eq!(got[1], f64::NEG_INFINITY);
    assert_eq!(got[2], f64::INFINITY);
    assert!(got[3].is_nan());
    assert_eq!(got[4], ln2);
    // Integers: positive keeps the type; reciprocal and logaddexp compute in float64.
    let ints = sample::<i64>(&[17, 5], 82).mapv(|v| if v == 0 { 3 } else { v });
    let n = from_array(ints.clone(), [6, 2]).unwrap();
    check(&n.positive().unwrap(), &ints);
    check(&n.reciprocal().unwrap(), &ints.mapv(|v| 1.0 / v as f64));
    let u = n.astype(DType::U8).unwrap();
    check(&u.positive().unwrap(), &ints.mapv(|v| v as u8));
    // f32 stays f32.
    let f = sample::<f32>(&[9], 83);
    let x = from_array(f.clone(), [4]).unwrap();
    check(&x.reciprocal().unwrap(), &f.mapv(|v| 1.0 / v));
    check(
        &x.logaddexp(&x).unwrap(),
        &f.mapv(|v| v + std::f32::consts::LN_2),
    );
    // bool: numpy refuses positive.
    let t = from_array(arr1(&[true, false]).into_dyn(), [1]).unwrap();
    assert!(matches!(
        t.positive(),
        Err(Error::UnsupportedDType {
            op: "positive",
            dtype: DType::Bool
        })
    ));
}

#[test]
fn complex_reciprocal_does_not_overflow() {
    use tessera::Complex64;
    let z = [
        Complex64::new(3.0, 4.0),
        Complex64::new(1e300, 1e300),
        Complex64::new(-2.0, 0.5),
        Complex64::new(0.0, -8.0),
    ];
    let x = from_array(arr1(&z).into_dyn(), [3]).unwrap();
    let got = x.reciprocal().unwrap().compute::<Complex64>().unwrap();
    for (g, v) in got.iter().zip(z) {
        // The product with v is 1 within a few ulps, and nothing overflowed to 0 or inf.
        let one = g * v;
        assert!(
            (one.re - 1.0).abs() < 1e-15 && one.im.abs() < 1e-15,
            "{v} -> {g}"
        );
    }
    assert_eq!(got[0], Complex64::new(0.12, -0.16));
    let same = x.positive().unwrap().compute::<Complex64>().unwrap();
    assert_eq!(same.as_slice().unwrap(), &z);
}
