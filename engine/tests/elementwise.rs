//! Elementwise operations against ndarray oracles: arithmetic with arrays and scalars on both sides,
//! numpy broadcasting across differently chunked operands, numpy dtype promotion (with numpy 2's weak
//! scalars), unary math, comparisons, where, clip, minimum/maximum, logic and astype.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, arr1};
use tessera::{
    Array, ArrayData, ChunkSpec, DType, Error, Scalar, from_array, from_array_data, full, where_,
};

fn lazy(d: &ArrayData, chunks: impl Into<ChunkSpec>) -> Array {
    from_array_data(d.clone(), chunks).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

const BINS: [Bin; 5] = [Bin::Add, Bin::Sub, Bin::Mul, Bin::Div, Bin::Rem];

fn apply_arrays(op: Bin, a: &Array, b: &Array) -> tessera::Result<Array> {
    match op {
        Bin::Add => a + b,
        Bin::Sub => a - b,
        Bin::Mul => a * b,
        Bin::Div => a / b,
        Bin::Rem => a % b,
    }
    .checked()
}

/// numpy 2's result dtype of `l op r` for two arrays, written out as a table; `None` where numpy
/// raises (boolean subtract) or gives a type tessera does not have (bool % bool is int8 in numpy).
fn numpy_result(op: Bin, l: DType, r: DType) -> Option<DType> {
    use DType::*;
    let (lo, hi) = if l <= r { (l, r) } else { (r, l) };
    let common = match (lo, hi) {
        (Bool, Bool) => Bool,
        (Bool, x) => x,
        (I64, I64) => I64,
        (I64, F32) => F64,
        (I64, F64) => F64,
        (F32, F32) => F32,
        (F32, F64) | (F64, F64) => F64,
        _ => unreachable!(),
    };
    match op {
        Bin::Div => Some(if common == F32 { F32 } else { F64 }),
        Bin::Sub | Bin::Rem if common == Bool => None,
        _ => Some(common),
    }
}

/// The value of `a op b` computed as numpy does, given the result dtype.
fn binary_oracle(op: Bin, a: &ArrayData, b: &ArrayData, out: DType) -> ArrayData {
    match out {
        DType::Bool => {
            let f = move |p: bool, q: bool| match op {
                Bin::Add => p || q,
                Bin::Mul => p && q,
                _ => unreachable!("{op:?} on bools"),
            };
            ArrayData::Bool(zip_with(&data_bool(a), &data_bool(b), f))
        }
        DType::I64 => {
            let f = move |p: i64, q: i64| match op {
                Bin::Add => p.wrapping_add(q),
                Bin::Sub => p.wrapping_sub(q),
                Bin::Mul => p.wrapping_mul(q),
                Bin::Rem => np_rem_i64(p, q),
                Bin::Div => unreachable!("true division of ints gives float"),
            };
            ArrayData::I64(zip_with(&data_i64(a), &data_i64(b), f))
        }
        DType::F32 | DType::F64 => {
            // For f32 results, computing in f64 and rounding once gives the correctly rounded f32
            // result of + - * / and the exact remainder, as f32 arithmetic does.
            let (x, y) = if out == DType::F32 {
                (
                    data_f64(a).mapv(|v| v as f32 as f64),
                    data_f64(b).mapv(|v| v as f32 as f64),
                )
            } else {
                (data_f64(a), data_f64(b))
            };
            let f = move |p: f64, q: f64| match op {
                Bin::Add => p + q,
                Bin::Sub => p - q,
                Bin::Mul => p * q,
                Bin::Div => p / q,
                Bin::Rem => np_rem_f64(p, q),
            };
            let r = zip_with(&x, &y, f);
            if out == DType::F32 {
                ArrayData::F32(r.mapv(|v| v as f32))
            } else {
                ArrayData::F64(r)
            }
        }
        DType::C128 => unreachable!("complex128 arithmetic is checked in tests/complex.rs"),
        DType::I32 | DType::U8 | DType::U64 => {
            unreachable!("int32, uint8 and uint64 arithmetic is checked in tests/dtypes.rs")
        }
    }
}

#[test]
fn binary_ops_follow_numpy_promotion_for_every_dtype_pair() {
    // Same shape, different chunkings on the two sides; and a broadcast row vector.
    let cases: [(&[usize], ChunkSpec, &[usize], ChunkSpec); 2] = [
        (&[37, 23], [10, 7].into(), &[37, 23], [6, 5].into()),
        (&[37, 23], [10, 7].into(), &[23], [4].into()),
    ];
    for (sa, ca, sb, cb) in cases {
        for (i, &l) in DTYPES.iter().enumerate() {
            for (j, &r) in DTYPES.iter().enumerate() {
                let a = sample_data(l, sa, 10 + i as u64);
                let b = sample_data(r, sb, 20 + j as u64);
                let (la, lb) = (lazy(&a, ca.clone()), lazy(&b, cb.clone()));
                for op in BINS {
                    let ctx = format!("{l} {op:?} {r} on {sa:?} and {sb:?}");
                    let got = apply_arrays(op, &la, &lb);
                    match numpy_result(op, l, r) {
                        None => assert!(
                            matches!(
                                got.as_ref().map_err(Error::root),
                                Err(Error::UnsupportedDType { .. })
                            ),
                            "{ctx}: expected UnsupportedDType, got {got:?}"
                        ),
                        Some(out) => {
                            let got = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                            assert_eq!(got.dtype(), out, "{ctx}");
                            let expected = binary_oracle(op, &a, &b, out);
                            let data = got.compute_dyn().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                            assert_data_eq(&data, &expected);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn binary_ops_on_every_rank_and_chunking() {
    for shape in shapes_0_to_4() {
        let a = sample::<f64>(&shape, 1);
        let b = sample::<f64>(&shape, 2).mapv(|v| if v == 0.0 { 0.5 } else { v });
        let ai = sample::<i64>(&shape, 3);
        let bi = sample::<i64>(&shape, 4);
        let chunkings = chunkings(&shape);
        for (k, (na, ca)) in chunkings.iter().enumerate() {
            // Pair every chunking with a different one on the other side.
            let (nb, cb) = &chunkings[(k + 2) % chunkings.len()];
            let ctx = format!("{shape:?} {na} vs {nb}");
            let (x, y) = (
                from_array(a.clone(), ca.clone()).unwrap(),
                from_array(b.clone(), cb.clone()).unwrap(),
            );
            check(&(&x + &y), &(&a + &b));
            check(&(&x - &y), &(&a - &b));
            check(&(&x * &y), &(&a * &b));
            check(&(&x / &y), &(&a / &b));
            check(&(&x % &y), &zip_with(&a, &b, np_rem_f64));
            let (xi, yi) = (
                from_array(ai.clone(), ca.clone()).unwrap(),
                from_array(bi.clone(), cb.clone()).unwrap(),
            );
            check(&(&xi + &yi), &(&ai + &bi));
            check(&(&xi * &yi), &(&ai * &bi));
            check(&(&xi % &yi), &zip_with(&ai, &bi, np_rem_i64));
            check(
                &(&xi / &yi),
                &zip_with(&ai, &bi, |p, q| p as f64 / q as f64),
            );
            let (af, bf) = (sample::<f32>(&shape, 5), sample::<f32>(&shape, 6));
            let (xf, yf) = (
                from_array(af.clone(), ca.clone()).unwrap(),
                from_array(bf.clone(), cb.clone()).unwrap(),
            );
            let (ab, bb) = (sample::<bool>(&shape, 7), sample::<bool>(&shape, 8));
            let (xb, yb) = (
                from_array(ab.clone(), ca.clone()).unwrap(),
                from_array(bb.clone(), cb.clone()).unwrap(),
            );
            in_context(&ctx, || {
                check(&(&xf - &yf), &(&af - &bf));
                check(&(&xf * &yf), &(&af * &bf));
                check(&(&xb + &yb), &zip_with(&ab, &bb, |p, q| p | q));
                check(&(&xb * &yb), &zip_with(&ab, &bb, |p, q| p & q));
                // Mixed: bool + f32 is f32, i64 - f32 is f64.
                check(&(&xb + &yf), &zip_with(&ab, &bf, |p, q| p as u8 as f32 + q));
                check(
                    &(&xi - &yf),
                    &zip_with(&ai, &bf, |p, q| p as f64 - q as f64),
                );
            });
        }
    }
}

#[test]
fn broadcasting_with_different_chunkings() {
    // (5,1,4) with (3,1) gives (5,3,4).
    let a = sample::<f64>(&[5, 1, 4], 1);
    let b = sample::<f64>(&[3, 1], 2);
    for (ca, cb) in [
        (ChunkSpec::from([2, 1, 3]), ChunkSpec::from([1, 1])),
        ([5, 1, 4].into(), [2, 1].into()),
        (vec![vec![1, 4], vec![1], vec![3, 1]].into(), [3, 1].into()),
    ] {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        let s = &x + &y;
        assert_eq!(s.shape(), &[5, 3, 4]);
        check(&s, &zip_with(&a, &b, |p, q| p + q));
        check(&(&y * &x), &zip_with(&b, &a, |p, q| p * q));
        check(&(&y - &x), &zip_with(&b, &a, |p, q| p - q));
    }

    // 37×23 in 10×7 with a row vector, a column, a 1×1 and a 0-d array, each chunked differently.
    let m = sample::<f64>(&[37, 23], 3);
    let row = sample::<f64>(&[23], 4);
    let col = sample::<f64>(&[37, 1], 5);
    let one = sample::<f64>(&[1, 1], 6);
    let zero_d = sample::<f64>(&[], 7);
    let x = from_array(m.clone(), [10, 7]).unwrap();
    let r = from_array(row.clone(), [5]).unwrap();
    let c = from_array(col.clone(), [6, 1]).unwrap();
    let o = from_array(one.clone(), [1, 1]).unwrap();
    let z = from_array(zero_d.clone(), [0usize; 0]).unwrap();
    check(&(&x + &r), &zip_with(&m, &row, |p, q| p + q));
    check(&(&r - &x), &zip_with(&row, &m, |p, q| p - q));
    check(&(&x * &c), &zip_with(&m, &col, |p, q| p * q));
    check(&(&c / &x), &zip_with(&col, &m, |p, q| p / q));
    check(&(&x - &o), &zip_with(&m, &one, |p, q| p - q));
    check(&(&z - &x), &zip_with(&zero_d, &m, |p, q| p - q));
    // Outer sum of a column and a row, neither matching the result on the other axis.
    check(&(&c + &r), &zip_with(&col, &row, |p, q| p + q));
    // Chains mixing all of them.
    let chain = (((&x + &r) * &c) - &z) / &o;
    let expected = zip_with(
        &zip_with(
            &zip_with(&zip_with(&m, &row, |p, q| p + q), &col, |p, q| p * q),
            &zero_d,
            |p, q| p - q,
        ),
        &one,
        |p, q| p / q,
    );
    check(&chain, &expected);

    // 0-d with 0-d stays 0-d; 0-d with 4-d.
    let z2 = from_array(sample::<f64>(&[], 8), [0usize; 0]).unwrap();
    let zz = &z * &z2;
    assert_eq!(zz.ndim(), 0);
    assert_eq!(
        zz.compute_scalar::<f64>().unwrap(),
        zero_d[[]] * sample::<f64>(&[], 8)[[]]
    );
    let big = sample::<i64>(&[3, 4, 5, 6], 9);
    let zi = from_array(ArrayD::from_elem(IxDyn(&[]), 3i64), [0usize; 0]).unwrap();
    let bigl = from_array(big.clone(), [2, 3, 2, 5]).unwrap();
    check(&(&zi * &bigl), &big.mapv(|v| 3 * v));

    // Size-1 axes against longer ones, and a length-1 array against any length.
    let v1 = from_array(arr1(&[2.0]).into_dyn(), [1]).unwrap();
    let v6 = from_array(arr1(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).into_dyn(), [4]).unwrap();
    check(
        &(&v1 * &v6),
        &arr1(&[2.0, 4.0, 6.0, 8.0, 10.0, 12.0]).into_dyn(),
    );
    // Empty arrays broadcast too.
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 4])), [1, 2]).unwrap();
    let row4 = from_array(sample::<f64>(&[4], 1), [3]).unwrap();
    check(&(&e + &row4), &ArrayD::<f64>::zeros(IxDyn(&[0, 4])));
}

#[test]
fn broadcast_errors_are_typed() {
    let a = full(&[3, 4], 1.0f64, [2, 2]).unwrap();
    let b = full(&[5], 1.0f64, [2]).unwrap();
    let e = (&a + &b).checked().unwrap_err();
    match e.root() {
        Error::Broadcast { left, right } => {
            let mut got = vec![left.clone(), right.clone()];
            got.sort();
            assert_eq!(got, vec![vec![3, 4], vec![5]]);
        }
        other => panic!("expected a Broadcast error, got {other:?}"),
    }
    // The deferred error names the line of the operator.
    assert!(e.to_string().contains("elementwise.rs:"), "{e}");
    let c = full(&[5, 1, 4], 1.0f64, [2, 1, 2]).unwrap();
    let d = full(&[3, 2], 1.0f64, [2, 2]).unwrap();
    assert!(matches!(
        (&c * &d).checked().unwrap_err().root(),
        Error::Broadcast { .. }
    ));
    assert!(matches!(
        where_(&c, &d, 0.0f64),
        Err(Error::Broadcast { .. })
    ));
    // Errors flow through chained operators and the methods after them, keeping the first line.
    let first = (&a + &b).checked().unwrap_err().to_string();
    let chained = ((&a + &b) * &a) - 1.0f64;
    let e = chained.sum().unwrap_err();
    assert!(matches!(e.root(), Error::Broadcast { .. }));
    assert_ne!(e.to_string(), first, "a different line: {e}");
    let chained = &a * ((&a - &b) / &a);
    assert!(matches!(
        chained.compute::<f64>().unwrap_err().root(),
        Error::Broadcast { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// scalars

fn scalar_oracle(op: Bin, a: &ArrayData, s: Scalar, scalar_left: bool, out: DType) -> ArrayData {
    let sd = match s {
        Scalar::Bool(v) => ArrayData::Bool(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::I64(v) => ArrayData::I64(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::I32(v) => ArrayData::I32(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::U8(v) => ArrayData::U8(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::U64(v) => ArrayData::U64(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::F32(v) => ArrayData::F32(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::F64(v) => ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), v)),
        Scalar::C128(v) => ArrayData::C128(ArrayD::from_elem(IxDyn(&[]), v)),
    };
    if scalar_left {
        binary_oracle(op, &sd, a, out)
    } else {
        binary_oracle(op, a, &sd, out)
    }
}

fn with_scalar(op: Bin, a: &Array, s: Scalar, scalar_left: bool) -> tessera::Result<Array> {
    macro_rules! go {
        ($v:expr) => {
            match (op, scalar_left) {
                (Bin::Add, false) => a + $v,
                (Bin::Sub, false) => a - $v,
                (Bin::Mul, false) => a * $v,
                (Bin::Div, false) => a / $v,
                (Bin::Rem, false) => a % $v,
                (Bin::Add, true) => $v + a,
                (Bin::Sub, true) => $v - a,
                (Bin::Mul, true) => $v * a,
                (Bin::Div, true) => $v / a,
                (Bin::Rem, true) => $v % a,
            }
            .checked()
        };
    }
    match s {
        Scalar::Bool(v) => go!(v),
        Scalar::I64(v) => go!(v),
        Scalar::I32(v) => go!(Scalar::I32(v)),
        Scalar::U8(v) => go!(Scalar::U8(v)),
        Scalar::U64(v) => go!(Scalar::U64(v)),
        Scalar::F32(v) => go!(Scalar::F32(v)),
        Scalar::F64(v) => go!(v),
        Scalar::C128(v) => go!(Scalar::C128(v)),
    }
}

#[test]
fn scalars_on_both_sides_with_weak_promotion() {
    use DType::*;
    // (array dtype, scalar, result dtype of + - * %): numpy 2 treats Python scalars as weak, so they
    // take the array's type unless of a higher kind.
    let cases: [(DType, Scalar, DType); 12] = [
        (F32, Scalar::F64(2.0), F32),
        (F32, Scalar::F64(0.1), F32),
        (F32, Scalar::I64(3), F32),
        (F64, Scalar::F32(2.5), F64),
        (F64, Scalar::I64(-3), F64),
        (I64, Scalar::F64(2.5), F64),
        (I64, Scalar::F32(0.5), F64),
        (I64, Scalar::I64(7), I64),
        (I64, Scalar::Bool(true), I64),
        (Bool, Scalar::I64(2), I64),
        (Bool, Scalar::F64(1.5), F64),
        (Bool, Scalar::Bool(true), Bool),
    ];
    let shape = [37, 23];
    for (k, (dt, s, out)) in cases.into_iter().enumerate() {
        let data = sample_data(dt, &shape, 30 + k as u64);
        let a = lazy(&data, [10, 7]);
        for op in BINS {
            for scalar_left in [false, true] {
                let ctx = format!(
                    "{dt} {op:?} {s:?} ({})",
                    if scalar_left {
                        "scalar left"
                    } else {
                        "scalar right"
                    }
                );
                let expected_dtype = match op {
                    Bin::Div => Some(if out == F32 { F32 } else { F64 }),
                    Bin::Sub | Bin::Rem if out == Bool => None,
                    _ => Some(out),
                };
                let got = with_scalar(op, &a, s, scalar_left);
                match expected_dtype {
                    None => assert!(
                        matches!(
                            got.as_ref().map_err(Error::root),
                            Err(Error::UnsupportedDType { .. })
                        ),
                        "{ctx}: {got:?}"
                    ),
                    Some(d) => {
                        let got = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        assert_eq!(got.dtype(), d, "{ctx}");
                        let expected = scalar_oracle(op, &data, s, scalar_left, d);
                        let computed = got.compute_dyn().unwrap();
                        assert_data_eq(&computed, &expected);
                    }
                }
            }
        }
    }
}

#[test]
fn scalar_examples_written_out() {
    let x = from_array(arr1(&[1.5f32, -2.0, 4.0]).into_dyn(), [2]).unwrap();
    let y = &x * 2.0f64;
    assert_eq!(y.dtype(), DType::F32);
    check(&y, &arr1(&[3.0f32, -4.0, 8.0]).into_dyn());
    let i = from_array(arr1(&[7i64, -7, 3, 0]).into_dyn(), [3]).unwrap();
    check(&(&i % 3i64), &arr1(&[1i64, 2, 0, 0]).into_dyn());
    check(&(&i % -3i64), &arr1(&[-2i64, -1, 0, 0]).into_dyn());
    check(&(&i % 0i64), &arr1(&[0i64, 0, 0, 0]).into_dyn());
    check(&(10i64 - &i), &arr1(&[3i64, 17, 7, 10]).into_dyn());
    check(&(&i / 2i64), &arr1(&[3.5f64, -3.5, 1.5, 0.0]).into_dyn());
    check(
        &(1.0f64 / &i),
        &arr1(&[1.0 / 7.0, -1.0 / 7.0, 1.0 / 3.0, f64::INFINITY]).into_dyn(),
    );
    let f = from_array(arr1(&[7.5f64, -7.5, 0.0, -0.0]).into_dyn(), [4]).unwrap();
    check(&(&f % 2.0f64), &arr1(&[1.5f64, 0.5, 0.0, 0.0]).into_dyn());
    check(
        &(&f % -2.0f64),
        &arr1(&[-0.5f64, -1.5, 0.0, 0.0]).into_dyn(),
    );
    check(
        &(&f % 0.0f64),
        &arr1(&[f64::NAN, f64::NAN, f64::NAN, f64::NAN]).into_dyn(),
    );
    check(
        &(5.0f64 % &f),
        &arr1(&[5.0f64, -2.5, f64::NAN, f64::NAN]).into_dyn(),
    );
    // bool + bool is logical or, bool * bool logical and.
    let b = from_array(arr1(&[true, true, false, false]).into_dyn(), [3]).unwrap();
    let c = from_array(arr1(&[true, false, true, false]).into_dyn(), [1]).unwrap();
    check(&(&b + &c), &arr1(&[true, true, true, false]).into_dyn());
    check(&(&b * &c), &arr1(&[true, false, false, false]).into_dyn());
    check(&(&b + 1i64), &arr1(&[2i64, 2, 1, 1]).into_dyn());
    check(&(&b + &b), &arr1(&[true, true, false, false]).into_dyn());
    assert!(matches!(
        (&b - &c).checked().unwrap_err().root(),
        Error::UnsupportedDType { .. }
    ));
    // An operation with no array at all is rejected.
    assert!(matches!(
        where_(true, 1i64, 2i64),
        Err(Error::InvalidArgument { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// unary math

/// A lazy unary operation.
type UnaryOp = fn(&Array) -> tessera::Result<Array>;

fn float_data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    // Includes negatives, zeros, a NaN and infinities.
    let mut a = sample::<f64>(shape, seed);
    let n = a.len();
    if n > 3 {
        let s = a.as_slice_mut().unwrap();
        s[0] = f64::NAN;
        s[n / 2] = f64::INFINITY;
        s[n - 1] = f64::NEG_INFINITY;
        s[1] = 0.0;
        s[2] = -0.0;
    }
    a
}

#[test]
fn unary_math_f64_every_rank_and_chunking() {
    type F = fn(f64) -> f64;
    let fns: [(&str, UnaryOp, F); 16] = [
        ("neg", |a| (-a).checked(), |v| -v),
        ("abs", Array::abs, f64::abs),
        ("sqrt", Array::sqrt, f64::sqrt),
        ("exp", Array::exp, f64::exp),
        ("ln", Array::ln, f64::ln),
        ("log2", Array::log2, f64::log2),
        ("log10", Array::log10, f64::log10),
        ("sin", Array::sin, f64::sin),
        ("cos", Array::cos, f64::cos),
        ("tan", Array::tan, f64::tan),
        ("tanh", Array::tanh, f64::tanh),
        ("floor", Array::floor, f64::floor),
        ("ceil", Array::ceil, f64::ceil),
        ("round", Array::round, f64::round_ties_even),
        ("square", Array::square, |v| v * v),
        ("powf2.5", |a| a.powf(2.5f64), |v| v.powf(2.5)),
    ];
    for shape in shapes_0_to_4() {
        let data = float_data(&shape, 40);
        for (cname, spec) in chunkings(&shape) {
            let a = from_array(data.clone(), spec).unwrap();
            for (name, f, oracle) in fns {
                let got = f(&a).unwrap_or_else(|e| panic!("{name} {shape:?} {cname}: {e}"));
                check(&got, &data.mapv(oracle));
            }
            check(&a.isnan().unwrap(), &data.mapv(f64::is_nan));
            check(&a.isfinite().unwrap(), &data.mapv(f64::is_finite));
        }
    }
}

#[test]
fn unary_math_f32_stays_f32() {
    type F = fn(f32) -> f32;
    let fns: [(&str, UnaryOp, F); 10] = [
        ("neg", |a| (-a).checked(), |v| -v),
        ("abs", Array::abs, f32::abs),
        ("sqrt", Array::sqrt, f32::sqrt),
        ("exp", Array::exp, f32::exp),
        ("ln", Array::ln, f32::ln),
        ("sin", Array::sin, f32::sin),
        ("floor", Array::floor, f32::floor),
        ("ceil", Array::ceil, f32::ceil),
        ("round", Array::round, f32::round_ties_even),
        ("powf", |a| a.powf(2.0f64), |v| v * v),
    ];
    let data = sample::<f32>(&[37, 23], 41);
    let a = from_array(data.clone(), [10, 7]).unwrap();
    for (name, f, oracle) in fns {
        let got = f(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.dtype(), DType::F32, "{name}");
        check(&got, &data.mapv(oracle));
    }
    check(&a.isnan().unwrap(), &data.mapv(f32::is_nan));
}

#[test]
fn unary_math_on_integers_and_bools() {
    let data = sample::<i64>(&[37, 23], 42);
    let a = from_array(data.clone(), [10, 7]).unwrap();
    let f = data.mapv(|v| v as f64);
    // Integer-preserving.
    check(&(-&a), &data.mapv(|v| -v));
    check(&a.abs().unwrap(), &data.mapv(i64::abs));
    check(&a.square().unwrap(), &data.mapv(|v| v * v));
    check(&a.floor().unwrap(), &data);
    check(&a.ceil().unwrap(), &data);
    check(&a.round().unwrap(), &data);
    check(&(!&a), &data.mapv(|v| !v));
    // Float math gives float64.
    check(&a.sqrt().unwrap(), &f.mapv(f64::sqrt));
    check(&a.exp().unwrap(), &f.mapv(f64::exp));
    check(&a.sin().unwrap(), &f.mapv(f64::sin));
    check(&a.ln().unwrap(), &f.mapv(f64::ln));
    check(&a.powf(2i64).unwrap(), &f.mapv(|v| v * v));
    check(&a.powf(0.5f64).unwrap(), &f.mapv(|v| v.powf(0.5)));
    check(&a.isnan().unwrap(), &data.mapv(|_| false));
    check(&a.isfinite().unwrap(), &data.mapv(|_| true));

    let bools = sample::<bool>(&[37, 23], 43);
    let b = from_array(bools.clone(), [10, 7]).unwrap();
    check(&(!&b), &bools.mapv(|v| !v));
    check(&b.abs().unwrap(), &bools);
    check(
        &b.sqrt().unwrap(),
        &bools.mapv(|v| if v { 1.0f64 } else { 0.0 }),
    );
    assert!(matches!(
        (-&b).checked().unwrap_err().root(),
        Error::UnsupportedDType { .. }
    ));
    assert!(matches!(b.floor(), Err(Error::UnsupportedDType { .. })));
    assert!(matches!(b.square(), Err(Error::UnsupportedDType { .. })));
    let fl = from_array(sample::<f64>(&[5], 1), [2]).unwrap();
    assert!(matches!(
        (!&fl).checked().unwrap_err().root(),
        Error::UnsupportedDType { .. }
    ));
}

/// `log1p` (added as one table row and one kernel arm): float64 on every rank and chunking, float32
/// staying float32, integers and bools computing in float64, values near 0 where `ln(1 + x)` loses
/// them, and its name in layer ids.
#[test]
fn log1p_matches_ndarray() {
    for shape in shapes_0_to_4() {
        let data = float_data(&shape, 44);
        for (cname, spec) in chunkings(&shape) {
            let a = from_array(data.clone(), spec).unwrap();
            let got = a
                .log1p()
                .unwrap_or_else(|e| panic!("log1p {shape:?} {cname}: {e}"));
            check(&got, &data.mapv(f64::ln_1p));
        }
    }
    let tiny = arr1(&[1e-300, -1e-17, 1e-10, -0.5, -1.0, -2.0]).into_dyn();
    let got = from_array(tiny.clone(), [4]).unwrap().log1p().unwrap();
    check(&got, &tiny.mapv(f64::ln_1p));
    let v = got.compute::<f64>().unwrap();
    assert_eq!(
        v[0], 1e-300,
        "log1p keeps tiny values that ln(1 + x) rounds to 0"
    );
    assert_eq!(v[4], f64::NEG_INFINITY);
    assert!(v[5].is_nan());
    assert!(got.id().to_string().starts_with("log1p-"), "{}", got.id());

    let data = sample::<f32>(&[37, 23], 45);
    let got = from_array(data.clone(), [10, 7]).unwrap().log1p().unwrap();
    assert_eq!(got.dtype(), DType::F32);
    check(&got, &data.mapv(f32::ln_1p));

    let ints = sample::<i64>(&[37, 23], 46);
    let got = from_array(ints.clone(), [10, 7]).unwrap().log1p().unwrap();
    assert_eq!(got.dtype(), DType::F64);
    check(&got, &ints.mapv(|v| (v as f64).ln_1p()));
    let bools = sample::<bool>(&[9], 47);
    let got = from_array(bools.clone(), [4]).unwrap().log1p().unwrap();
    check(&got, &bools.mapv(|b| if b { 2f64.ln() } else { 0.0 }));
}

#[test]
fn round_is_half_to_even() {
    let x = arr1(&[
        0.5,
        1.5,
        2.5,
        3.5,
        -0.5,
        -1.5,
        -2.5,
        0.49999999999999994,
        2.4,
        -2.6,
        1e300,
    ])
    .into_dyn();
    let a = from_array(x, [4]).unwrap();
    check(
        &a.round().unwrap(),
        &arr1(&[0.0, 2.0, 2.0, 4.0, -0.0, -2.0, -2.0, 0.0, 2.0, -3.0, 1e300]).into_dyn(),
    );
    let y = from_array(arr1(&[0.5f32, 1.5, 2.5, -2.5]).into_dyn(), [3]).unwrap();
    check(
        &y.round().unwrap(),
        &arr1(&[0.0f32, 2.0, 2.0, -2.0]).into_dyn(),
    );
}

#[test]
fn powf_with_array_exponents_broadcasts() {
    let base = sample_range(&[6, 5], 1, 0.5, 3.0);
    let exps = sample::<f64>(&[5], 2).mapv(|v| v / 4.0);
    let a = from_array(base.clone(), [4, 2]).unwrap();
    let e = from_array(exps.clone(), [3]).unwrap();
    check(&a.powf(&e).unwrap(), &zip_with(&base, &exps, f64::powf));
}

fn sample_range(shape: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f64> {
    gen_range(shape, seed, lo, hi)
}

// ---------------------------------------------------------------------------------------------
// comparisons, where, clip, minimum/maximum, logic

#[test]
fn comparisons_give_bool_across_dtypes() {
    let f = float_data(&[37, 23], 50);
    let g = sample::<f64>(&[23], 51);
    let i = sample::<i64>(&[37, 23], 52);
    let s = sample::<f32>(&[37, 1], 53);
    let (lf, lg, li, ls) = (
        from_array(f.clone(), [10, 7]).unwrap(),
        from_array(g.clone(), [5]).unwrap(),
        from_array(i.clone(), [6, 9]).unwrap(),
        from_array(s.clone(), [8, 1]).unwrap(),
    );
    type Cmp = fn(&f64, &f64) -> bool;
    type CmpOp = fn(&Array, &Array) -> tessera::Result<Array>;
    let ops: [(&str, CmpOp, Cmp); 6] = [
        ("eq", |a, b| a.eq(b), |a, b| a == b),
        ("ne", |a, b| a.ne(b), |a, b| a != b),
        ("lt", |a, b| a.lt(b), |a, b| a < b),
        ("le", |a, b| a.le(b), |a, b| a <= b),
        ("gt", |a, b| a.gt(b), |a, b| a > b),
        ("ge", |a, b| a.ge(b), |a, b| a >= b),
    ];
    let fi = i.mapv(|v| v as f64);
    let fs = s.mapv(|v| v as f64);
    for (name, op, oracle) in ops {
        let got = op(&lf, &lg).unwrap();
        assert_eq!(got.dtype(), DType::Bool, "{name}");
        check(&got, &zip_with(&f, &g, |a, b| oracle(&a, &b)));
        // int64 against float64 compares as float64; float32 against int64 as float64.
        check(
            &op(&li, &lf).unwrap(),
            &zip_with(&fi, &f, |a, b| oracle(&a, &b)),
        );
        check(
            &op(&ls, &li).unwrap(),
            &zip_with(&fs, &fi, |a, b| oracle(&a, &b)),
        );
        check(
            &op(&lf, &lf).unwrap(),
            &zip_with(&f, &f, |a, b| oracle(&a, &b)),
        );
    }
    // Scalars: an f32 array compares with 0.1 in float32, as numpy 2 does.
    let small = arr1(&[0.1f32, 0.2, 0.05]).into_dyn();
    let ls = from_array(small.clone(), [2]).unwrap();
    check(
        &ls.eq(0.1f64).unwrap(),
        &arr1(&[true, false, false]).into_dyn(),
    );
    check(&ls.lt(0.1f64).unwrap(), &small.mapv(|v| v < 0.1f32));
    check(&li.ge(2.5f64).unwrap(), &i.mapv(|v| v as f64 >= 2.5));
    check(&li.lt(3i64).unwrap(), &i.mapv(|v| v < 3));
    check(&lf.ne(f64::NAN).unwrap(), &f.mapv(|_| true));
    check(&lf.eq(f64::NAN).unwrap(), &f.mapv(|_| false));
    let b = sample::<bool>(&[10], 54);
    let c = sample::<bool>(&[10], 55);
    let (lb, lc) = (
        from_array(b.clone(), [3]).unwrap(),
        from_array(c.clone(), [4]).unwrap(),
    );
    check(&lb.lt(&lc).unwrap(), &zip_with(&b, &c, |p, q| !p & q));
    check(&lb.eq(true).unwrap(), &b);
}

#[test]
fn where_broadcasts_and_promotes() {
    let x = sample::<f64>(&[37, 23], 60);
    let y = sample::<i64>(&[23], 61);
    let c = sample::<bool>(&[37, 1], 62);
    let (lx, ly, lc) = (
        from_array(x.clone(), [10, 7]).unwrap(),
        from_array(y.clone(), [6]).unwrap(),
        from_array(c.clone(), [9, 1]).unwrap(),
    );
    let fy = y.mapv(|v| v as f64);
    let w = where_(&lc, &lx, &ly).unwrap();
    assert_eq!(w.dtype(), DType::F64);
    check(&w, &zip3_with(&c, &x, &fy, |c, a, b| if c { a } else { b }));
    // A scalar branch; an int array with a float scalar gives float64.
    let w = where_(lx.gt(0.0f64).unwrap(), &ly, 0.5f64).unwrap();
    assert_eq!(w.dtype(), DType::F64);
    check(&w, &zip_with(&x, &fy, |a, b| if a > 0.0 { b } else { 0.5 }));
    let w = where_(lx.gt(0.0f64).unwrap(), &ly, 7i64).unwrap();
    assert_eq!(w.dtype(), DType::I64);
    check(&w, &zip_with(&x, &y, |a, b| if a > 0.0 { b } else { 7 }));
    // float32 branches stay float32 with a float scalar.
    let s = sample::<f32>(&[37, 23], 63);
    let ls = from_array(s.clone(), [5, 5]).unwrap();
    let w = where_(&lc, &ls, 0.0f64).unwrap();
    assert_eq!(w.dtype(), DType::F32);
    check(&w, &zip_with(&c, &s, |c, v| if c { v } else { 0.0 }));
    // An int64 condition is truthiness.
    let w = where_(&ly, 1.0f64, &lx).unwrap();
    check(&w, &zip_with(&y, &x, |c, v| if c != 0 { 1.0 } else { v }));
    // int64 with float32 branches: float64.
    let w = where_(&lc, &ly, &ls).unwrap();
    assert_eq!(w.dtype(), DType::F64);
    check(
        &w,
        &zip3_with(
            &c,
            &fy,
            &s.mapv(|v| v as f64),
            |c, a, b| if c { a } else { b },
        ),
    );
}

#[test]
fn clip_matches_numpy() {
    let f = float_data(&[37, 23], 70);
    let lf = from_array(f.clone(), [10, 7]).unwrap();
    let got = lf.clip(-2.5f64, 3.0f64).unwrap();
    assert_eq!(got.dtype(), DType::F64);
    check(
        &got,
        // numpy's clip is min(max(x, lo), hi), propagating NaN.
        &f.mapv(|v| if v.is_nan() { v } else { v.clamp(-2.5, 3.0) }),
    );
    let i = sample::<i64>(&[37, 23], 71);
    let li = from_array(i.clone(), [10, 7]).unwrap();
    let got = li.clip(-5i64, 5i64).unwrap();
    assert_eq!(got.dtype(), DType::I64);
    check(&got, &i.mapv(|v| v.clamp(-5, 5)));
    let got = li.clip(-2.5f64, 2.5f64).unwrap();
    assert_eq!(got.dtype(), DType::F64);
    check(&got, &i.mapv(|v| (v as f64).clamp(-2.5, 2.5)));
    let s = sample::<f32>(&[50], 72);
    let got = from_array(s.clone(), [7])
        .unwrap()
        .clip(0.0f64, 1.0f64)
        .unwrap();
    assert_eq!(got.dtype(), DType::F32);
    check(&got, &s.mapv(|v| v.clamp(0.0, 1.0)));
}

#[test]
fn minimum_maximum_propagate_nan() {
    let a = float_data(&[37, 23], 80);
    let b = sample::<f64>(&[37, 1], 81);
    let (la, lb) = (
        from_array(a.clone(), [10, 7]).unwrap(),
        from_array(b.clone(), [4, 1]).unwrap(),
    );
    let nanmin = |p: f64, q: f64| {
        if p.is_nan() || q.is_nan() {
            f64::NAN
        } else {
            p.min(q)
        }
    };
    let nanmax = |p: f64, q: f64| {
        if p.is_nan() || q.is_nan() {
            f64::NAN
        } else {
            p.max(q)
        }
    };
    check(&la.minimum(&lb).unwrap(), &zip_with(&a, &b, nanmin));
    check(&lb.maximum(&la).unwrap(), &zip_with(&b, &a, nanmax));
    check(&la.maximum(0.0f64).unwrap(), &a.mapv(|v| nanmax(v, 0.0)));
    let i = sample::<i64>(&[20], 82);
    let li = from_array(i.clone(), [3]).unwrap();
    check(&li.minimum(0i64).unwrap(), &i.mapv(|v| v.min(0)));
    check(&li.maximum(&li).unwrap(), &i);
}

#[test]
fn logic_ops_on_bools_and_ints() {
    let (p, q) = (sample::<bool>(&[37, 23], 90), sample::<bool>(&[23], 91));
    let (lp, lq) = (
        from_array(p.clone(), [10, 7]).unwrap(),
        from_array(q.clone(), [5]).unwrap(),
    );
    check(&(&lp & &lq), &zip_with(&p, &q, |a, b| a & b));
    check(&(&lp | &lq), &zip_with(&p, &q, |a, b| a | b));
    check(&(&lp ^ &lq), &zip_with(&p, &q, |a, b| a ^ b));
    check(&(&lp & true), &p);
    check(&(false | &lp), &p);
    let (x, y) = (sample::<i64>(&[30], 92), sample::<i64>(&[30], 93));
    let (lx, ly) = (
        from_array(x.clone(), [7]).unwrap(),
        from_array(y.clone(), [4]).unwrap(),
    );
    check(&(&lx & &ly), &zip_with(&x, &y, |a, b| a & b));
    check(&(&lx | 5i64), &x.mapv(|a| a | 5));
    check(&(&lx ^ &ly), &zip_with(&x, &y, |a, b| a ^ b));
    // bool with int64 promotes to int64.
    let pb = from_array(sample::<bool>(&[30], 94), [6]).unwrap();
    let got = &pb | &lx;
    assert_eq!(got.dtype(), DType::I64);
    let lf = from_array(sample::<f64>(&[30], 95), [6]).unwrap();
    assert!(matches!(
        (&lf & &lf).checked().unwrap_err().root(),
        Error::UnsupportedDType { .. }
    ));
    assert!(matches!(
        (&lf | true).checked().unwrap_err().root(),
        Error::UnsupportedDType { .. }
    ));
}

#[test]
fn astype_follows_numpy() {
    let f = arr1(&[
        2.7,
        -2.7,
        0.0,
        -0.5,
        1e30,
        -1e30,
        f64::NAN,
        3.0,
        f64::INFINITY,
    ])
    .into_dyn();
    let lf = from_array(f.clone(), [4]).unwrap();
    // float -> int truncates toward zero; out-of-range values saturate and NaN gives 0 (tessera's
    // documented choice where numpy is undefined).
    check(
        &lf.astype(DType::I64).unwrap(),
        &arr1(&[2i64, -2, 0, 0, i64::MAX, i64::MIN, 0, 3, i64::MAX]).into_dyn(),
    );
    check(
        &lf.astype(DType::Bool).unwrap(),
        &arr1(&[true, true, false, true, true, true, true, true, true]).into_dyn(),
    );
    check(&lf.astype(DType::F32).unwrap(), &f.mapv(|v| v as f32));
    let i = sample::<i64>(&[37, 23], 100);
    let li = from_array(i.clone(), [10, 7]).unwrap();
    check(&li.astype(DType::F64).unwrap(), &i.mapv(|v| v as f64));
    check(&li.astype(DType::F32).unwrap(), &i.mapv(|v| v as f32));
    check(&li.astype(DType::Bool).unwrap(), &i.mapv(|v| v != 0));
    let b = sample::<bool>(&[37, 23], 101);
    let lb = from_array(b.clone(), [10, 7]).unwrap();
    check(&lb.astype(DType::I64).unwrap(), &b.mapv(|v| v as i64));
    check(
        &lb.astype(DType::F64).unwrap(),
        &b.mapv(|v| if v { 1.0 } else { 0.0 }),
    );
    let s = sample::<f32>(&[37, 23], 102).mapv(|v| v * 1.37);
    let ls = from_array(s.clone(), [10, 7]).unwrap();
    check(&ls.astype(DType::F64).unwrap(), &s.mapv(|v| v as f64));
    check(
        &ls.astype(DType::I64).unwrap(),
        &s.mapv(|v| v.trunc() as i64),
    );
    // astype to the same dtype is the same array.
    assert_eq!(li.astype(DType::I64).unwrap().id(), li.id());
}

#[test]
fn long_fused_chains_match() {
    // A chain long enough to fuse into one program per chunk, over several dtypes.
    let x = sample::<f64>(&[37, 23], 110);
    let i = sample::<i64>(&[23], 111);
    let lx = from_array(x.clone(), [10, 7]).unwrap();
    let li = from_array(i.clone(), [4]).unwrap();
    let t = (&lx * 2.0f64) + &li;
    let t = (((&t - 1i64) / 3.0f64).abs()).unwrap();
    let y = t.sqrt().unwrap() + lx.sin();
    let neg = -&lx;
    let y = where_(y.gt(1.0f64).unwrap(), &y, &neg)
        .unwrap()
        .clip(-3.0f64, 3.0f64)
        .unwrap();
    let fi = i.mapv(|v| v as f64);
    let expected = zip_with(&x, &fi, |a, b| {
        let t = (((a * 2.0 + b) - 1.0) / 3.0).abs().sqrt() + a.sin();
        let w = if t > 1.0 { t } else { -a };
        w.clamp(-3.0, 3.0)
    });
    check(&y, &expected);
}

#[test]
fn generated_sources_mixed_with_inputs_and_broadcasts() {
    // Programs whose leaves are generated (random, arange, full) and read (from_array), broadcast
    // along different axes, over chunkings that cut rows and ones that keep them whole.
    let shape = [37, 23];
    let data = sample::<f64>(&shape, 120);
    let row_vals = ArrayD::from_shape_fn(IxDyn(&[23]), |i| 0.5 * i[0] as f64 - 3.0);
    for (name, spec) in chunkings(&shape) {
        let r = tessera::default_rng(4)
            .random(&shape, spec.clone())
            .unwrap();
        let rv = r.compute::<f64>().unwrap();
        let row = tessera::arange(-3.0f64, 8.5, 0.5, [5]).unwrap();
        assert_eq!(row.shape(), &[23]);
        let col = full(&[37, 1], 2.5f64, [8, 1]).unwrap();
        let x = from_array(data.clone(), spec.clone()).unwrap();
        let e = (((&r * &col) + &row) - &x) / 2.0f64;
        let expected = zip_with(
            &zip_with(&rv.mapv(|v| v * 2.5), &row_vals, |a, b| a + b),
            &data,
            |a, b| (a - b) / 2.0,
        );
        in_context(name, || check(&e, &expected));
        in_context(name, || {
            check(
                &e.sum_axis(0).unwrap(),
                &reduce_lanes(&expected, &[0], false, |l| l.iter().sum::<f64>()),
            );
            check(
                &e.max_axis(1).unwrap(),
                &reduce_lanes(&expected, &[1], false, |l| nan_extreme(l, false)),
            );
            check(
                &e.argmin_axis(1).unwrap(),
                &reduce_lanes(&expected, &[1], false, |l| arg_best(l, true)),
            );
        });
        // An integer arange broadcast down the columns of an int array.
        let ints = sample::<i64>(&shape, 121);
        let li = from_array(ints.clone(), spec.clone()).unwrap();
        let ar = tessera::arange(0i64, 23, 1, [6]).unwrap();
        let s = (&li * &ar) % 7i64;
        let es = zip_with(&ints, &iota(&[23]), |a, b| np_rem_i64(a * b, 7));
        in_context(name, || check(&s, &es));
        in_context(name, || {
            check(
                &s.sum_with(&tessera::ReduceOptions::axes([0, 1]).keepdims(true))
                    .unwrap(),
                &reduce_lanes(&es, &[0, 1], true, |l| l.iter().sum::<i64>()),
            )
        });
    }
}

#[test]
fn where_with_non_bool_conditions_uses_truthiness() {
    let c = arr1(&[0.0, -0.0, 1.5, f64::NAN, -2.0]).into_dyn();
    let lc = from_array(c, [2]).unwrap();
    check(
        &where_(&lc, 1i64, 0i64).unwrap(),
        &arr1(&[0i64, 0, 1, 1, 1]).into_dyn(),
    );
}

#[test]
fn broadcast_errors_name_two_shapes_that_conflict() {
    // Three operands where the first broadcasts with both others: the error must name the pair that
    // does not broadcast, not the innocent first shape.
    let c = full(&[3, 1], true, [3, 1]).unwrap();
    let a = full(&[3, 4], 1.0f64, [3, 4]).unwrap();
    let b = full(&[3, 5], 1.0f64, [3, 5]).unwrap();
    match where_(&c, &a, &b) {
        Err(Error::Broadcast { left, right }) => {
            assert!(
                np_broadcast_shape(&left, &right).is_none(),
                "the error names {left:?} and {right:?}, which broadcast together"
            );
        }
        other => panic!("expected a Broadcast error, got {other:?}"),
    }
    let d = full(&[2, 1, 5], 1.0f64, [1, 1, 5]).unwrap();
    let e = full(&[4, 1], 1.0f64, [4, 1]).unwrap();
    let f = full(&[3, 1, 1], 1.0f64, [3, 1, 1]).unwrap();
    match where_(&d, &e, &f) {
        Err(Error::Broadcast { left, right }) => {
            assert!(
                np_broadcast_shape(&left, &right).is_none(),
                "{left:?} {right:?}"
            );
        }
        other => panic!("expected a Broadcast error, got {other:?}"),
    }
}
