//! Reductions against ndarray oracles: every reduction over all axes, each single axis and axis sets
//! (negative axes too), keepdims, split_every trees with many chunks, var/std against a two-pass
//! oracle, argmin/argmax with ties and NaN, integer and bool reductions, empty reductions, and the
//! numerical stability of mean/var on data with a large offset.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, arr1, arr2};
use tessera::{
    Array, ArrayData, ChunkSpec, DType, Error, ReduceOptions, from_array, from_array_data, zeros,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum R {
    Sum,
    Prod,
    Min,
    Max,
    Any,
    All,
    Mean,
    Var(f64),
    Std(f64),
    ArgMin,
    ArgMax,
}

const ALL: [R; 13] = [
    R::Sum,
    R::Prod,
    R::Min,
    R::Max,
    R::Any,
    R::All,
    R::Mean,
    R::Var(0.0),
    R::Var(1.0),
    R::Std(0.0),
    R::Std(1.0),
    R::ArgMin,
    R::ArgMax,
];

fn run(r: R, a: &Array, opts: &ReduceOptions) -> tessera::Result<Array> {
    match r {
        R::Sum => a.sum_with(opts),
        R::Prod => a.prod_with(opts),
        R::Min => a.min_with(opts),
        R::Max => a.max_with(opts),
        R::Any => a.any_with(opts),
        R::All => a.all_with(opts),
        R::Mean => a.mean_with(opts),
        R::Var(d) => a.var_with(&opts.clone().ddof(d)),
        R::Std(d) => a.std_with(&opts.clone().ddof(d)),
        R::ArgMin => a.argmin_with(opts),
        R::ArgMax => a.argmax_with(opts),
    }
}

/// numpy's result dtype, as a table.
fn result_dtype(r: R, d: DType) -> DType {
    use DType::*;
    match r {
        R::Sum | R::Prod => match d {
            Bool | I64 => I64,
            x => x,
        },
        R::Min | R::Max => d,
        R::Any | R::All => Bool,
        R::Mean | R::Var(_) | R::Std(_) => {
            if d == F32 {
                F32
            } else {
                F64
            }
        }
        R::ArgMin | R::ArgMax => I64,
    }
}

fn is_arg(r: R) -> bool {
    matches!(r, R::ArgMin | R::ArgMax)
}

/// The reduction computed on whole arrays with ndarray, lane by lane.
fn oracle(r: R, data: &ArrayData, axes: &[usize], keepdims: bool) -> ArrayData {
    let out = result_dtype(r, data.dtype());
    let float_out = |v: ArrayD<f64>| -> ArrayData {
        match out {
            DType::F32 => ArrayData::F32(v.mapv(|x| x as f32)),
            DType::F64 => ArrayData::F64(v),
            _ => unreachable!(),
        }
    };
    let is_float = data.dtype().is_float();
    match r {
        R::Sum | R::Prod if !is_float => {
            let x = data_i64(data);
            ArrayData::I64(reduce_lanes(&x, axes, keepdims, |l| {
                if r == R::Sum {
                    l.iter().fold(0i64, |a, &b| a.wrapping_add(b))
                } else {
                    l.iter().fold(1i64, |a, &b| a.wrapping_mul(b))
                }
            }))
        }
        R::Sum | R::Prod => {
            let x = data_f64(data);
            float_out(reduce_lanes(&x, axes, keepdims, |l| {
                if r == R::Sum {
                    l.iter().sum()
                } else {
                    l.iter().product()
                }
            }))
        }
        R::Min | R::Max => {
            let is_min = r == R::Min;
            match data {
                ArrayData::Bool(x) => ArrayData::Bool(reduce_lanes(x, axes, keepdims, |l| {
                    if is_min {
                        l.iter().all(|&v| v)
                    } else {
                        l.iter().any(|&v| v)
                    }
                })),
                ArrayData::I64(x) => ArrayData::I64(reduce_lanes(x, axes, keepdims, |l| {
                    if is_min {
                        *l.iter().min().unwrap()
                    } else {
                        *l.iter().max().unwrap()
                    }
                })),
                _ => float_out(reduce_lanes(&data_f64(data), axes, keepdims, |l| {
                    nan_extreme(l, is_min)
                })),
            }
        }
        R::Any | R::All => {
            let x = data_bool(data);
            ArrayData::Bool(reduce_lanes(&x, axes, keepdims, |l| {
                if r == R::Any {
                    l.iter().any(|&v| v)
                } else {
                    l.iter().all(|&v| v)
                }
            }))
        }
        R::Mean => float_out(reduce_lanes(&data_f64(data), axes, keepdims, |l| {
            l.iter().sum::<f64>() / l.len() as f64
        })),
        R::Var(d) => float_out(reduce_lanes(&data_f64(data), axes, keepdims, |l| {
            two_pass_var(l, d)
        })),
        R::Std(d) => float_out(reduce_lanes(&data_f64(data), axes, keepdims, |l| {
            two_pass_var(l, d).sqrt()
        })),
        R::ArgMin | R::ArgMax => {
            ArrayData::I64(reduce_lanes(&data_f64(data), axes, keepdims, |l| {
                arg_best(l, r == R::ArgMin)
            }))
        }
    }
}

/// Data for reduction tests: general values, except for products, whose float factors stay near 1
/// so that products of hundreds of them neither overflow nor underflow.
fn reduction_data(r: R, dtype: DType, shape: &[usize], seed: u64) -> ArrayData {
    match (r, dtype) {
        (R::Prod, DType::F64) => {
            ArrayData::F64(sample::<f64>(shape, seed).mapv(|v| 1.0 + v / 20.0))
        }
        (R::Prod, DType::F32) => {
            ArrayData::F32(sample::<f32>(shape, seed).mapv(|v| 1.0 + v / 20.0))
        }
        _ => sample_data(dtype, shape, seed),
    }
}

fn subsets(ndim: usize) -> Vec<Vec<usize>> {
    (0..1usize << ndim)
        .map(|m| (0..ndim).filter(|a| m >> a & 1 == 1).collect())
        .collect()
}

/// Checks one reduction over `axes` of `data` chunked as `spec`; `negative` writes the axes counted
/// from the end.
fn check_reduction(
    r: R,
    data: &ArrayData,
    spec: &ChunkSpec,
    axes: &[usize],
    all_axes: bool,
    keepdims: bool,
    negative: bool,
) {
    let ndim = data.shape().len();
    let a = from_array_data(data.clone(), spec.clone()).unwrap();
    let opts = ReduceOptions {
        axes: if all_axes {
            None
        } else {
            Some(
                axes.iter()
                    .map(|&x| {
                        if negative {
                            x as isize - ndim as isize
                        } else {
                            x as isize
                        }
                    })
                    .collect(),
            )
        },
        keepdims,
        ..ReduceOptions::default()
    };
    let ctx = format!(
        "{r:?} of {} {:?} chunked {spec:?} over {:?} keepdims={keepdims}",
        data.dtype(),
        data.shape(),
        opts.axes
    );
    let got = run(r, &a, &opts).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let expected = oracle(r, data, axes, keepdims);
    assert_eq!(got.shape(), expected.shape(), "{ctx}");
    assert_eq!(got.dtype(), expected.dtype(), "{ctx}");
    let computed = got.compute_dyn().unwrap_or_else(|e| panic!("{ctx}: {e}"));
    in_context(&ctx, || assert_data_eq(&computed, &expected));
}

#[test]
fn every_reduction_every_axis_set_rank_0_to_3() {
    for shape in [vec![], vec![17], vec![37, 23], vec![5, 6, 7]] {
        let ndim = shape.len();
        for (ci, (_, spec)) in chunkings(&shape).into_iter().enumerate() {
            for (di, &dtype) in DTYPES.iter().enumerate() {
                for (ri, &r) in ALL.iter().enumerate() {
                    let data = reduction_data(r, dtype, &shape, (ci * 100 + di * 10 + ri) as u64);
                    for (si, axes) in subsets(ndim).into_iter().enumerate() {
                        if is_arg(r) && axes.len() > 1 && axes.len() < ndim {
                            continue;
                        }
                        if is_arg(r) && axes.is_empty() && ndim > 0 {
                            continue;
                        }
                        let keepdims = (si + ci + ri) % 2 == 1;
                        let negative = (si + di) % 2 == 1;
                        check_reduction(r, &data, &spec, &axes, false, keepdims, negative);
                    }
                    // axes: None reduces everything.
                    let all: Vec<usize> = (0..ndim).collect();
                    check_reduction(r, &data, &spec, &all, true, false, false);
                    check_reduction(r, &data, &spec, &all, true, true, false);
                }
            }
        }
    }
}

#[test]
fn every_reduction_on_4d() {
    let shape = [3, 4, 5, 6];
    let axis_sets: [&[usize]; 7] = [&[0], &[3], &[1, 2], &[0, 2], &[0, 1, 3], &[1, 2, 3], &[]];
    for (ci, (_, spec)) in chunkings(&shape).into_iter().enumerate() {
        for &dtype in &DTYPES {
            for (ri, &r) in ALL.iter().enumerate() {
                let data = reduction_data(r, dtype, &shape, (ci * 31 + ri) as u64);
                for (si, axes) in axis_sets.iter().enumerate() {
                    if is_arg(r) && axes.len() != 1 {
                        continue;
                    }
                    check_reduction(r, &data, &spec, axes, false, si % 2 == 0, si % 3 == 0);
                }
                let all: Vec<usize> = (0..4).collect();
                check_reduction(r, &data, &spec, &all, true, ri % 2 == 0, false);
            }
        }
    }
}

#[test]
fn irregular_37_by_23_in_10_by_7_every_reduction() {
    let spec: ChunkSpec = [10, 7].into();
    for &dtype in &DTYPES {
        for &r in &ALL {
            let data = reduction_data(r, dtype, &[37, 23], 5);
            for axes in [vec![0], vec![1]] {
                for keepdims in [false, true] {
                    check_reduction(r, &data, &spec, &axes, false, keepdims, false);
                    check_reduction(r, &data, &spec, &axes, false, keepdims, true);
                }
            }
            check_reduction(r, &data, &spec, &[0, 1], true, false, false);
        }
    }
}

#[test]
fn split_every_trees_with_many_chunks() {
    // 100 chunks along one axis, and a 10×10 grid of chunks.
    let cases: [(&[usize], ChunkSpec); 3] = [
        (&[100, 6], [1, 6].into()),
        (&[300], [3].into()),
        (&[40, 50], [4, 5].into()),
    ];
    for (shape, spec) in cases {
        let ndim = shape.len();
        for &dtype in &[DType::F64, DType::I64, DType::F32] {
            for (ri, &r) in ALL.iter().enumerate() {
                let data = reduction_data(r, dtype, shape, 70 + ri as u64);
                let a = from_array_data(data.clone(), spec.clone()).unwrap();
                let mut sets: Vec<Vec<usize>> = (0..ndim).map(|x| vec![x]).collect();
                sets.push((0..ndim).collect());
                for axes in sets {
                    if is_arg(r) && axes.len() != 1 && axes.len() != ndim {
                        continue;
                    }
                    let expected = oracle(r, &data, &axes, false);
                    for split in [2, 3, 4, 16] {
                        let opts = ReduceOptions {
                            axes: Some(axes.iter().map(|&x| x as isize).collect()),
                            split_every: split,
                            ..ReduceOptions::default()
                        };
                        let got = run(r, &a, &opts).unwrap();
                        let ctx = format!("{r:?} {dtype} {shape:?} axes {axes:?} split {split}");
                        let computed = got.compute_dyn().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        in_context(&ctx, || assert_data_eq(&computed, &expected));
                    }
                }
            }
        }
    }
}

#[test]
fn split_every_builds_a_deeper_tree() {
    let a = from_array(sample::<f64>(&[100], 1), [1]).unwrap();
    let combines = |split: usize| {
        a.sum_with(&ReduceOptions::all().split_every(split))
            .unwrap()
            .graph()
            .layers()
            .iter()
            .filter(|l| l.id.name == "combine")
            .count()
    };
    // 100 partials merged two at a time need at least log2(100) - 1 intermediate levels.
    assert!(combines(2) >= 6, "split 2: {} levels", combines(2));
    assert!(combines(3) >= 3, "split 3: {} levels", combines(3));
    assert!(combines(16) >= 1, "split 16: {} levels", combines(16));
    assert!(combines(2) > combines(3) && combines(3) > combines(16));
    let tasks2 = a
        .sum_with(&ReduceOptions::all().split_every(2))
        .unwrap()
        .task_counts()
        .unwrap()
        .after;
    let tasks16 = a.sum().unwrap().task_counts().unwrap().after;
    assert!(tasks2 > tasks16 + 50, "{tasks2} vs {tasks16}");
    assert!(matches!(
        a.sum_with(&ReduceOptions::all().split_every(1)),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn var_and_std_two_pass_with_ddof() {
    let data = sample::<f64>(&[37, 23], 8);
    for spec in [ChunkSpec::from([10, 7]), [37, 23].into(), [1, 23].into()] {
        let a = from_array(data.clone(), spec).unwrap();
        for ddof in [0.0, 1.0, 2.5] {
            let v = a.var_ddof(ddof).unwrap();
            let expected = two_pass_var(data.as_slice().unwrap(), ddof);
            assert!((v.compute_scalar::<f64>().unwrap() - expected).abs() <= 1e-10 * expected);
            let s = a.std_ddof(ddof).unwrap().compute_scalar::<f64>().unwrap();
            assert!((s - expected.sqrt()).abs() <= 1e-10 * expected.sqrt());
            for axis in [0isize, 1, -1, -2] {
                let ax = axis.rem_euclid(2) as usize;
                check(
                    &a.var_axis(axis, ddof).unwrap(),
                    &reduce_lanes(&data, &[ax], false, |l| two_pass_var(l, ddof)),
                );
                check(
                    &a.std_axis(axis, ddof).unwrap(),
                    &reduce_lanes(&data, &[ax], false, |l| two_pass_var(l, ddof).sqrt()),
                );
            }
        }
    }
    // ddof equal to the count divides by zero, as numpy does (inf for non-constant data).
    let b = from_array(arr1(&[1.0, 2.0, 4.0]).into_dyn(), [2]).unwrap();
    assert_eq!(
        b.var_ddof(3.0).unwrap().compute_scalar::<f64>().unwrap(),
        f64::INFINITY
    );
    assert_eq!(
        b.var().unwrap().compute_scalar::<f64>().unwrap(),
        two_pass_var(&[1.0, 2.0, 4.0], 0.0)
    );
    // One element with ddof 1 is 0/0.
    let one = from_array(arr1(&[5.0]).into_dyn(), [1]).unwrap();
    assert!(
        one.var_ddof(1.0)
            .unwrap()
            .compute_scalar::<f64>()
            .unwrap()
            .is_nan()
    );
    assert_eq!(one.var().unwrap().compute_scalar::<f64>().unwrap(), 0.0);
}

#[test]
fn mean_and_var_of_large_offset_data_stay_accurate() {
    let noise = gen_range(&[4000], 9, -1.0, 1.0);
    let data = noise.mapv(|v| 1e9 + v);
    let noise_mean = noise.sum() / 4000.0;
    let noise_var = two_pass_var(noise.as_slice().unwrap(), 0.0);
    for spec in [[37], [1000], [4000], [3]] {
        let a = from_array(data.clone(), spec).unwrap();
        let m = a.mean().unwrap().compute_scalar::<f64>().unwrap();
        assert!(
            (m - (1e9 + noise_mean)).abs() < 1e-6,
            "mean {m} with {spec:?}"
        );
        let v = a.var().unwrap().compute_scalar::<f64>().unwrap();
        assert!(
            (v - noise_var).abs() < 1e-6 * noise_var,
            "var {v} vs {noise_var} with {spec:?}"
        );
        let s = a.std_ddof(1.0).unwrap().compute_scalar::<f64>().unwrap();
        let expected = (noise_var * 4000.0 / 3999.0).sqrt();
        assert!((s - expected).abs() < 1e-6 * expected, "std {s}");
    }
    // Per axis, with rows at very different offsets.
    let rows = ArrayD::from_shape_fn(IxDyn(&[6, 500]), |ix| {
        10f64.powi(ix[0] as i32 * 2) + noise[ix[1]]
    });
    let a = from_array(rows.clone(), [2, 7]).unwrap();
    check_tol(
        &a.var_axis(1, 0.0).unwrap(),
        &ArrayD::from_elem(
            IxDyn(&[6]),
            two_pass_var(&noise.as_slice().unwrap()[..500], 0.0),
        ),
        Tol {
            rtol: 1e-6,
            atol: 0.0,
        },
    );
    // And through elementwise work fused into the partials.
    let b = from_array(noise.clone(), [64]).unwrap();
    let shifted = &b + 1e9f64;
    let v = shifted.var().unwrap().compute_scalar::<f64>().unwrap();
    assert!((v - noise_var).abs() < 1e-6 * noise_var, "{v}");
}

#[test]
fn f32_reductions_return_f32() {
    let data = sample::<f32>(&[37, 23], 10);
    let a = from_array(data.clone(), [10, 7]).unwrap();
    let f = data.mapv(|v| v as f64);
    for (name, arr, expected) in [
        ("mean", a.mean().unwrap(), f.mean().unwrap()),
        ("sum", a.sum().unwrap(), f.sum()),
        (
            "var",
            a.var().unwrap(),
            two_pass_var(f.as_slice().unwrap(), 0.0),
        ),
    ] {
        assert_eq!(arr.dtype(), DType::F32, "{name}");
        let got = arr.compute_scalar::<f32>().unwrap();
        assert!(
            ((got as f64) - expected).abs() <= 1e-5 * expected.abs().max(1.0),
            "{name}: {got} vs {expected}"
        );
    }
    check(
        &a.mean_axis(0).unwrap(),
        &reduce_lanes(&f, &[0], false, |l| {
            (l.iter().sum::<f64>() / l.len() as f64) as f32
        }),
    );
    // compute with the wrong type is a typed error.
    assert!(matches!(
        a.mean().unwrap().compute_scalar::<f64>(),
        Err(Error::DTypeMismatch {
            expected: DType::F64,
            actual: DType::F32
        })
    ));
}

#[test]
fn argmin_argmax_ties_and_nan() {
    // Ties: the first occurrence wins, flat and per axis, whatever the chunking.
    let t = arr2(&[[3i64, 1, 1, 5], [5, 0, 5, 0], [1, 0, 5, 5]]).into_dyn();
    for spec in [
        ChunkSpec::from([1, 1]),
        [2, 3].into(),
        [3, 4].into(),
        [10, 10].into(),
    ] {
        let a = from_array(t.clone(), spec).unwrap();
        assert_eq!(a.argmin().unwrap().compute_scalar::<i64>().unwrap(), 5);
        assert_eq!(a.argmax().unwrap().compute_scalar::<i64>().unwrap(), 3);
        check(
            &a.argmin_axis(0).unwrap(),
            &arr1(&[2i64, 1, 0, 1]).into_dyn(),
        );
        check(
            &a.argmax_axis(0).unwrap(),
            &arr1(&[1i64, 0, 1, 0]).into_dyn(),
        );
        check(&a.argmin_axis(1).unwrap(), &arr1(&[1i64, 1, 1]).into_dyn());
        check(&a.argmax_axis(-1).unwrap(), &arr1(&[3i64, 0, 2]).into_dyn());
        check(
            &a.argmax_with(&ReduceOptions::axis(1).keepdims(true))
                .unwrap(),
            &arr2(&[[3i64], [0], [2]]).into_dyn(),
        );
        check(
            &a.argmin_with(&ReduceOptions::all().keepdims(true)).unwrap(),
            &arr2(&[[5i64]]).into_dyn(),
        );
    }
    // NaN: the first NaN wins for both argmin and argmax.
    let n = arr2(&[
        [1.0, f64::NAN, -5.0, 9.0],
        [f64::NAN, 2.0, 3.0, f64::NAN],
        [0.0, -1.0, f64::NAN, 7.0],
    ])
    .into_dyn();
    for spec in [ChunkSpec::from([1, 1]), [2, 3].into(), [3, 4].into()] {
        let a = from_array(n.clone(), spec).unwrap();
        assert_eq!(a.argmin().unwrap().compute_scalar::<i64>().unwrap(), 1);
        assert_eq!(a.argmax().unwrap().compute_scalar::<i64>().unwrap(), 1);
        check(
            &a.argmin_axis(0).unwrap(),
            &arr1(&[1i64, 0, 2, 1]).into_dyn(),
        );
        check(
            &a.argmax_axis(0).unwrap(),
            &arr1(&[1i64, 0, 2, 1]).into_dyn(),
        );
        check(&a.argmin_axis(1).unwrap(), &arr1(&[1i64, 0, 2]).into_dyn());
        check(&a.argmax_axis(1).unwrap(), &arr1(&[1i64, 0, 2]).into_dyn());
        // min/max propagate NaN.
        assert!(a.min().unwrap().compute_scalar::<f64>().unwrap().is_nan());
        check(
            &a.max_axis(1).unwrap(),
            &arr1(&[f64::NAN, f64::NAN, f64::NAN]).into_dyn(),
        );
        check(
            &a.min_axis(0).unwrap(),
            &arr1(&[f64::NAN, f64::NAN, f64::NAN, f64::NAN]).into_dyn(),
        );
        assert!(a.sum().unwrap().compute_scalar::<f64>().unwrap().is_nan());
    }
    // A NaN only in a later chunk still beats every number of earlier chunks.
    let mut late = sample::<f64>(&[200], 11);
    late[150] = f64::NAN;
    late[170] = f64::NAN;
    let a = from_array(late.clone(), [7]).unwrap();
    assert_eq!(a.argmin().unwrap().compute_scalar::<i64>().unwrap(), 150);
    assert_eq!(a.argmax().unwrap().compute_scalar::<i64>().unwrap(), 150);
    // Bools: the first true / first false.
    let b = from_array(arr1(&[false, false, true, true, false]).into_dyn(), [2]).unwrap();
    assert_eq!(b.argmax().unwrap().compute_scalar::<i64>().unwrap(), 2);
    assert_eq!(b.argmin().unwrap().compute_scalar::<i64>().unwrap(), 0);
    // Flat argmax of a 3-d array is the C-order flat index.
    let c = sample::<f64>(&[5, 6, 7], 12);
    let best = arg_best(&c.iter().copied().collect::<Vec<_>>(), false);
    let a = from_array(c, [2, 4, 3]).unwrap();
    assert_eq!(a.argmax().unwrap().compute_scalar::<i64>().unwrap(), best);
    assert!(matches!(
        a.argmax_with(&ReduceOptions::axes([0, 2])),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn integer_and_bool_reductions_are_exact() {
    // Values whose sums f64 cannot hold exactly.
    let big = arr1(&[(1i64 << 53) + 1, 1, (1i64 << 60) + 3, -(1i64 << 59), 7]).into_dyn();
    for block in [1, 2, 5] {
        let a = from_array(big.clone(), [block]).unwrap();
        let s = a.sum().unwrap();
        assert_eq!(s.dtype(), DType::I64);
        assert_eq!(s.compute_scalar::<i64>().unwrap(), big.iter().sum::<i64>());
        assert_eq!(
            a.max().unwrap().compute_scalar::<i64>().unwrap(),
            (1i64 << 60) + 3
        );
        assert_eq!(
            a.min().unwrap().compute_scalar::<i64>().unwrap(),
            -(1i64 << 59)
        );
    }
    let p = arr1(&[3i64, -7, 11, 13, 1 << 20, 1 << 25]).into_dyn();
    let a = from_array(p.clone(), [4]).unwrap();
    assert_eq!(
        a.prod().unwrap().compute_scalar::<i64>().unwrap(),
        p.iter().fold(1i64, |x, &y| x.wrapping_mul(y))
    );
    let bools = sample::<bool>(&[37, 23], 13);
    let b = from_array(bools.clone(), [10, 7]).unwrap();
    let count = bools.iter().filter(|&&v| v).count() as i64;
    let s = b.sum().unwrap();
    assert_eq!(s.dtype(), DType::I64);
    assert_eq!(s.compute_scalar::<i64>().unwrap(), count);
    let m = b.mean().unwrap();
    assert_eq!(m.dtype(), DType::F64);
    assert!((m.compute_scalar::<f64>().unwrap() - count as f64 / 851.0).abs() < 1e-12);
    check(
        &b.sum_axis(0).unwrap(),
        &reduce_lanes(&bools, &[0], false, |l| {
            l.iter().filter(|&&v| v).count() as i64
        }),
    );
    assert!(b.any().unwrap().compute_scalar::<bool>().unwrap());
    assert!(!b.all().unwrap().compute_scalar::<bool>().unwrap());
    let all_true = from_array(ArrayD::from_elem(IxDyn(&[9, 4]), true), [2, 3]).unwrap();
    assert!(all_true.all().unwrap().compute_scalar::<bool>().unwrap());
    // any/all of numbers test non-zero; NaN is true.
    let f = from_array(arr1(&[0.0, f64::NAN, 0.0]).into_dyn(), [1]).unwrap();
    assert!(f.any().unwrap().compute_scalar::<bool>().unwrap());
    assert!(!f.all().unwrap().compute_scalar::<bool>().unwrap());
    let z = from_array(arr1(&[0i64, 0, 0]).into_dyn(), [2]).unwrap();
    assert!(!z.any().unwrap().compute_scalar::<bool>().unwrap());
}

#[test]
fn empty_reductions() {
    let e = zeros::<f64>(&[0, 3], [1, 2]).unwrap();
    for (name, r) in [
        ("min", e.min()),
        ("max", e.max()),
        ("argmin", e.argmin()),
        ("argmax", e.argmax()),
        ("min axis 0", e.min_axis(0)),
        ("argmax axis 0", e.argmax_axis(0)),
    ] {
        assert!(
            matches!(r, Err(Error::InvalidArgument { .. })),
            "{name}: {r:?}"
        );
    }
    // Non-empty lanes over an empty outer axis are fine.
    check(&e.max_axis(1).unwrap(), &ArrayD::<f64>::zeros(IxDyn(&[0])));
    check(&e.sum_axis(1).unwrap(), &ArrayD::<f64>::zeros(IxDyn(&[0])));
    // Identities over empty lanes.
    check(&e.sum_axis(0).unwrap(), &ArrayD::<f64>::zeros(IxDyn(&[3])));
    check(&e.prod_axis(0).unwrap(), &ArrayD::<f64>::ones(IxDyn(&[3])));
    assert_eq!(e.sum().unwrap().compute_scalar::<f64>().unwrap(), 0.0);
    assert_eq!(e.prod().unwrap().compute_scalar::<f64>().unwrap(), 1.0);
    assert!(!e.any().unwrap().compute_scalar::<bool>().unwrap());
    assert!(e.all().unwrap().compute_scalar::<bool>().unwrap());
    assert!(e.mean().unwrap().compute_scalar::<f64>().unwrap().is_nan());
    check(
        &e.mean_axis(0).unwrap(),
        &ArrayD::from_elem(IxDyn(&[3]), f64::NAN),
    );
    assert!(e.var().unwrap().compute_scalar::<f64>().unwrap().is_nan());
    let ei = zeros::<i64>(&[4, 0], [2, 1]).unwrap();
    check(&ei.sum_axis(1).unwrap(), &ArrayD::<i64>::zeros(IxDyn(&[4])));
    check(
        &ei.sum_with(&ReduceOptions::axis(1).keepdims(true)).unwrap(),
        &ArrayD::<i64>::zeros(IxDyn(&[4, 1])),
    );
}

#[test]
fn axis_errors_are_typed() {
    let a = zeros::<f64>(&[3, 4, 5], [2, 2, 2]).unwrap();
    match a.sum_axis(3) {
        Err(Error::AxisOutOfBounds { axis: 3, ndim: 3 }) => {}
        other => panic!("expected AxisOutOfBounds, got {other:?}"),
    }
    assert!(matches!(
        a.mean_axis(-4),
        Err(Error::AxisOutOfBounds { axis: -4, ndim: 3 })
    ));
    assert!(matches!(
        a.sum_with(&ReduceOptions::axes([0, -3])),
        Err(Error::DuplicateAxis { axis: 0, .. })
    ));
    assert!(matches!(
        a.argmin_axis(5),
        Err(Error::AxisOutOfBounds { .. })
    ));
    let s = zeros::<f64>(&[], [0usize; 0]).unwrap();
    assert!(matches!(s.sum_axis(0), Err(Error::AxisOutOfBounds { .. })));
    // compute_scalar wants a 0-d array.
    assert!(matches!(
        a.sum_axis(0).unwrap().compute_scalar::<f64>(),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn reductions_of_fused_expressions() {
    let x = sample::<f64>(&[37, 23], 14);
    let y = sample::<f64>(&[23], 15);
    let a = from_array(x.clone(), [10, 7]).unwrap();
    let b = from_array(y.clone(), [5]).unwrap();
    let e = ((&a * 2.0f64) + &b) - 1.0f64;
    let ex = zip_with(&x, &y, |p, q| p * 2.0 + q - 1.0);
    check(
        &e.sum_axis(0).unwrap(),
        &reduce_lanes(&ex, &[0], false, |l| l.iter().sum::<f64>()),
    );
    check(
        &e.max_with(&ReduceOptions::axis(-1).keepdims(true)).unwrap(),
        &reduce_lanes(&ex, &[1], true, |l| nan_extreme(l, false)),
    );
    check(
        &e.argmin_axis(0).unwrap(),
        &reduce_lanes(&ex, &[0], false, |l| arg_best(l, true)),
    );
    check(
        &e.std_axis(1, 1.0).unwrap(),
        &reduce_lanes(&ex, &[1], false, |l| two_pass_var(l, 1.0).sqrt()),
    );
    // A comparison fused into any/all, and the mean of a bool mask.
    let mask = e.gt(0.0f64).unwrap();
    check(
        &mask.any_axis(1).unwrap(),
        &reduce_lanes(&ex, &[1], false, |l| l.iter().any(|&v| v > 0.0)),
    );
    check(
        &mask.mean_axis(0).unwrap(),
        &reduce_lanes(&ex, &[0], false, |l| {
            l.iter().filter(|&&v| v > 0.0).count() as f64 / l.len() as f64
        }),
    );
    // Reductions of reductions.
    let rr = e.sum_axis(0).unwrap().max().unwrap();
    let col_sums = reduce_lanes(&ex, &[0], false, |l| l.iter().sum::<f64>());
    assert!(
        (rr.compute_scalar::<f64>().unwrap() - nan_extreme(col_sums.as_slice().unwrap(), false))
            .abs()
            < 1e-9
    );
}

#[test]
fn reductions_of_random_sources_match_their_values() {
    // random → sum/mean may take fused paths that never materialize the values; whatever the path,
    // the result must equal the reduction of the values themselves, for every chunking and axis set
    // (chunks cutting rows, rows reduced or kept).
    let shape = [23, 37];
    for (name, spec) in chunkings(&shape) {
        for seed in [0u64, 5] {
            let rng = tessera::default_rng(seed);
            for src in [
                rng.random(&shape, spec.clone()).unwrap(),
                rng.standard_normal(&shape, spec.clone()).unwrap(),
            ] {
                let v = src.compute::<f64>().unwrap();
                for axes in [vec![], vec![0], vec![1], vec![0, 1]] {
                    let ctx = format!("{name} seed {seed} axes {axes:?}");
                    let opts = ReduceOptions {
                        axes: Some(axes.iter().map(|&a| a as isize).collect()),
                        ..ReduceOptions::default()
                    };
                    in_context(&ctx, || {
                        check(
                            &src.sum_with(&opts).unwrap(),
                            &reduce_lanes(&v, &axes, false, |l| l.iter().sum::<f64>()),
                        );
                        check(
                            &src.mean_with(&opts).unwrap(),
                            &reduce_lanes(&v, &axes, false, |l| {
                                l.iter().sum::<f64>() / l.len() as f64
                            }),
                        );
                        check(
                            &src.var_with(&opts).unwrap(),
                            &reduce_lanes(&v, &axes, false, |l| two_pass_var(l, 0.0)),
                        );
                        check(
                            &src.max_with(&opts).unwrap(),
                            &reduce_lanes(&v, &axes, false, |l| nan_extreme(l, false)),
                        );
                    });
                }
                // A fused scalar multiple, summed over everything.
                let s = (&src * 3.0f64).sum().unwrap();
                let expected = v.sum() * 3.0;
                let got = s.compute_scalar::<f64>().unwrap();
                assert!(
                    (got - expected).abs() <= 1e-10 * expected.abs().max(1.0),
                    "{name}"
                );
            }
            // float32 uniform values summed: float32 result.
            let f = rng
                .random_dtype(&shape, spec.clone(), tessera::DType::F32)
                .unwrap();
            let fv = f.compute::<f32>().unwrap().mapv(|x| x as f64);
            check(
                &f.sum_axis(1).unwrap(),
                &reduce_lanes(&fv, &[1], false, |l| l.iter().sum::<f64>() as f32),
            );
            check(
                &f.mean().unwrap(),
                &ArrayD::from_elem(IxDyn(&[]), (fv.sum() / fv.len() as f64) as f32),
            );
        }
    }
    // 1-d and 3-d random sources, including 0-d sums of one element.
    let r1 = tessera::default_rng(9).random(&[1000], [37]).unwrap();
    let v1 = r1.compute::<f64>().unwrap();
    assert!((r1.sum().unwrap().compute_scalar::<f64>().unwrap() - v1.sum()).abs() < 1e-9);
    let r3 = tessera::default_rng(9)
        .random(&[6, 7, 8], [4, 3, 5])
        .unwrap();
    let v3 = r3.compute::<f64>().unwrap();
    check(
        &r3.mean_with(&ReduceOptions::axes([0, 2])).unwrap(),
        &reduce_lanes(&v3, &[0, 2], false, |l| {
            l.iter().sum::<f64>() / l.len() as f64
        }),
    );
    let r0 = tessera::default_rng(9).random(&[], [0usize; 0]).unwrap();
    assert_eq!(
        r0.sum().unwrap().compute_scalar::<f64>().unwrap(),
        r0.compute_scalar::<f64>().unwrap()
    );
}
