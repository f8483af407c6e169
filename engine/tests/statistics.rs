//! NaN-aware reductions, count_nonzero, average and the ddof-0 defaults of var/std, against lane
//! oracles written with plain ndarray (NaNs filtered out of each lane by hand), on every rank and
//! chunking, over all axes, single axes and axis sets, with keepdims and narrow split_every trees.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, arr1, arr2};
use proptest::prelude::*;
use tessera::{Array, DType, ReduceOptions, from_array};

/// Float data with about one NaN in five, and one all-NaN lane along the last axis where the
/// array has one.
fn nan_data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = TestRng::new(seed);
    let mut a = sample::<f64>(shape, seed);
    a.mapv_inplace(|v| if rng.unit() < 0.2 { f64::NAN } else { v });
    if let Some(&last) = shape.last()
        && a.len() > last
    {
        let s = a.as_slice_mut().unwrap();
        s[..last].fill(f64::NAN);
    }
    a
}

fn present(lane: &[f64]) -> Vec<f64> {
    lane.iter().copied().filter(|v| !v.is_nan()).collect()
}

fn axis_sets(ndim: usize) -> Vec<Option<Vec<isize>>> {
    let mut v: Vec<Option<Vec<isize>>> = vec![None];
    for a in 0..ndim as isize {
        v.push(Some(vec![a]));
    }
    if ndim >= 2 {
        v.push(Some(vec![0, -1]));
    }
    v
}

fn opts(axes: &Option<Vec<isize>>, keepdims: bool, split_every: usize) -> ReduceOptions {
    ReduceOptions {
        axes: axes.clone(),
        keepdims,
        split_every,
        ddof: 0.0,
    }
}

fn resolved(axes: &Option<Vec<isize>>, ndim: usize) -> Vec<usize> {
    match axes {
        None => (0..ndim).collect(),
        Some(a) => {
            let mut v: Vec<usize> = a
                .iter()
                .map(|&x| {
                    if x < 0 {
                        (x + ndim as isize) as usize
                    } else {
                        x as usize
                    }
                })
                .collect();
            v.sort_unstable();
            v
        }
    }
}

type Lane = fn(&[f64]) -> f64;
type Reducer = fn(&Array, &ReduceOptions) -> tessera::Result<Array>;

#[test]
fn nan_reductions_every_rank_chunking_and_axis_set() {
    let cases: [(&str, Reducer, Lane); 7] = [
        ("nansum", Array::nansum_with, |l| present(l).iter().sum()),
        ("nanprod", Array::nanprod_with, |l| {
            present(l).iter().map(|v| v / 8.0).product()
        }),
        ("nanmin", Array::nanmin_with, |l| {
            let p = present(l);
            if p.is_empty() {
                f64::NAN
            } else {
                p.iter().copied().fold(f64::INFINITY, f64::min)
            }
        }),
        ("nanmax", Array::nanmax_with, |l| {
            let p = present(l);
            if p.is_empty() {
                f64::NAN
            } else {
                p.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            }
        }),
        ("nanmean", Array::nanmean_with, |l| {
            let p = present(l);
            p.iter().sum::<f64>() / p.len() as f64
        }),
        ("nanvar", Array::nanvar_with, |l| {
            let p = present(l);
            if p.is_empty() {
                f64::NAN
            } else {
                two_pass_var(&p, 0.0)
            }
        }),
        ("nanstd", Array::nanstd_with, |l| {
            let p = present(l);
            if p.is_empty() {
                f64::NAN
            } else {
                two_pass_var(&p, 0.0).sqrt()
            }
        }),
    ];
    for shape in shapes_0_to_4() {
        let data = nan_data(&shape, 90);
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(data.clone(), spec).unwrap();
            // nanprod sees values scaled down so that products stay finite.
            let xs = &x / 8.0;
            for axes in axis_sets(shape.len()) {
                for keepdims in [false, true] {
                    let o = opts(&axes, keepdims, 2);
                    let ax = resolved(&axes, shape.len());
                    for (name, f, lane) in cases {
                        in_context(
                            format!("{name} {shape:?} {cname} {axes:?} {keepdims}"),
                            || {
                                // nanprod reads the scaled array; its oracle scales each element.
                                let input = if name == "nanprod" { &xs } else { &x };
                                let got = f(input, &o).unwrap();
                                check(&got, &reduce_lanes(&data, &ax, keepdims, lane));
                            },
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn nanargmin_nanargmax_skip_nan_and_mark_all_nan_lanes() {
    let data = arr2(&[
        [f64::NAN, 3.0, -1.0, f64::NAN],
        [f64::NAN, f64::NAN, f64::NAN, f64::NAN],
        [2.0, 2.0, f64::NAN, 5.0],
    ])
    .into_dyn();
    for (cname, spec) in chunkings(&[3, 4]) {
        let x = from_array(data.clone(), spec).unwrap();
        in_context(cname, || {
            assert_eq!(
                x.nanargmin_with(&ReduceOptions::axis(1))
                    .unwrap()
                    .compute::<i64>()
                    .unwrap()
                    .into_iter()
                    .collect::<Vec<_>>(),
                vec![2, -1, 0]
            );
            assert_eq!(
                x.nanargmax_with(&ReduceOptions::axis(-1))
                    .unwrap()
                    .compute::<i64>()
                    .unwrap()
                    .into_iter()
                    .collect::<Vec<_>>(),
                vec![1, -1, 3]
            );
            assert_eq!(
                x.nanargmin_with(&ReduceOptions::axis(0))
                    .unwrap()
                    .compute::<i64>()
                    .unwrap()
                    .into_iter()
                    .collect::<Vec<_>>(),
                vec![2, 2, 0, 2]
            );
            assert_eq!(x.nanargmin().unwrap().compute_scalar::<i64>().unwrap(), 2);
            assert_eq!(x.nanargmax().unwrap().compute_scalar::<i64>().unwrap(), 11);
        });
    }
    let shape = [5, 6, 7];
    let data = nan_data(&shape, 91);
    let want = reduce_lanes(&data, &[1], false, |l| {
        let p = present(l);
        if p.is_empty() {
            return -1;
        }
        let m = p.iter().copied().fold(f64::INFINITY, f64::min);
        l.iter().position(|&v| v == m).unwrap() as i64
    });
    for (cname, spec) in chunkings(&shape) {
        let x = from_array(data.clone(), spec).unwrap();
        in_context(cname, || {
            check(
                &x.nanargmin_with(&ReduceOptions::axis(1).split_every(2))
                    .unwrap(),
                &want,
            )
        });
    }
}

#[test]
fn nan_reductions_on_integers_and_f32() {
    let i = sample::<i64>(&[13, 6], 92);
    let x = from_array(i.clone(), [4, 4]).unwrap();
    check(
        &x.nansum().unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), i.sum()),
    );
    check(
        &x.nanmax_with(&ReduceOptions::axis(0)).unwrap(),
        &reduce_lanes(&i, &[0], false, |l| *l.iter().max().unwrap()),
    );
    assert_eq!(x.nanmean().unwrap().dtype(), DType::F64);
    assert_eq!(x.nanvar().unwrap().dtype(), DType::F64);

    let f = nan_data(&[9, 8], 93).mapv(|v| v as f32);
    let y = from_array(f.clone(), [4, 3]).unwrap();
    for (name, got) in [
        ("nansum", y.nansum_with(&ReduceOptions::axis(1)).unwrap()),
        ("nanmean", y.nanmean_with(&ReduceOptions::axis(1)).unwrap()),
        ("nanstd", y.nanstd_with(&ReduceOptions::axis(1)).unwrap()),
        ("nanmin", y.nanmin_with(&ReduceOptions::axis(1)).unwrap()),
    ] {
        assert_eq!(got.dtype(), DType::F32, "{name}");
    }
    let want = reduce_lanes(&f, &[1], false, |l: &[f32]| {
        let p: Vec<f64> = l
            .iter()
            .filter(|v| !v.is_nan())
            .map(|&v| v as f64)
            .collect();
        (p.iter().sum::<f64>() / p.len() as f64) as f32
    });
    check(&y.nanmean_with(&ReduceOptions::axis(1)).unwrap(), &want);
}

#[test]
fn nanvar_with_ddof_gives_nan_where_too_few_values() {
    let data = arr2(&[[1.0, f64::NAN, 3.0], [f64::NAN, 4.0, f64::NAN]]).into_dyn();
    let x = from_array(data, [1, 2]).unwrap();
    let v = x
        .nanvar_with(&ReduceOptions::axis(1).ddof(1.0))
        .unwrap()
        .compute::<f64>()
        .unwrap()
        .into_iter()
        .collect::<Vec<_>>();
    assert_eq!(v[0], 2.0);
    assert!(v[1].is_nan(), "{v:?}");
}

#[test]
fn count_nonzero_every_dtype() {
    for dtype in DTYPES {
        for shape in shapes_0_to_4() {
            let d = sample_data(dtype, &shape, 94);
            let truth = data_bool(&sample_data(dtype, &shape, 94).clone());
            let truth = match dtype {
                DType::Bool => truth,
                DType::I64 => data_i64(&d).mapv(|v| v != 0),
                _ => data_f64(&d).mapv(|v| v != 0.0),
            };
            for (cname, spec) in chunkings(&shape) {
                let x = tessera::from_array_data(d.clone(), spec).unwrap();
                for axes in axis_sets(shape.len()) {
                    in_context(format!("{dtype} {shape:?} {cname} {axes:?}"), || {
                        let got = x.count_nonzero_with(&opts(&axes, false, 3)).unwrap();
                        let ax = resolved(&axes, shape.len());
                        check(
                            &got,
                            &reduce_lanes(&truth, &ax, false, |l| {
                                l.iter().filter(|&&b| b).count() as i64
                            }),
                        );
                    });
                }
            }
        }
    }
}

#[test]
fn average_with_weights() {
    let a = sample::<f64>(&[7, 5, 4], 95);
    let w_full = gen_positive(&[7, 5, 4], 96);
    let w1 = gen_positive(&[5], 97);
    for (cname, spec) in chunkings(&[7, 5, 4]) {
        let x = from_array(a.clone(), spec).unwrap();
        let wf = from_array(w_full.clone(), [3, 2, 4]).unwrap();
        let w = from_array(w1.clone(), [2]).unwrap();
        in_context(cname, || {
            let total: f64 = (&a * &w_full).sum() / w_full.sum();
            check(
                &x.average(&wf, None).unwrap(),
                &ArrayD::from_elem(IxDyn(&[]), total),
            );
            // 1-D weights along axis 1.
            let want = ArrayD::from_shape_fn(IxDyn(&[7, 4]), |ix| {
                let (i, k) = (ix[0], ix[1]);
                let num: f64 = (0..5).map(|j| a[[i, j, k]] * w1[[j]]).sum();
                num / w1.sum()
            });
            check(&x.average(&w, Some(1)).unwrap(), &want);
            let want = ArrayD::from_shape_fn(IxDyn(&[5, 4]), |ix| {
                let num: f64 = (0..7)
                    .map(|i| a[[i, ix[0], ix[1]]] * w_full[[i, ix[0], ix[1]]])
                    .sum();
                let den: f64 = (0..7).map(|i| w_full[[i, ix[0], ix[1]]]).sum();
                num / den
            });
            check(&x.average(&wf, Some(0)).unwrap(), &want);
        });
    }
    // Integers average in float64; a wrong weight shape names both shapes.
    let i = from_array(arr1(&[1i64, 2, 3]).into_dyn(), [2]).unwrap();
    let w = from_array(arr1(&[1i64, 0, 1]).into_dyn(), [3]).unwrap();
    let got = i.average(&w, None).unwrap();
    assert_eq!(got.dtype(), DType::F64);
    assert_eq!(got.compute_scalar::<f64>().unwrap(), 2.0);
    let bad = from_array(arr1(&[1.0, 2.0]).into_dyn(), [2]).unwrap();
    let msg = i.average(&bad, Some(0)).unwrap_err().to_string();
    assert!(msg.contains("[2]") && msg.contains("[3]"), "{msg}");
}

#[test]
fn var_and_std_default_to_ddof_zero() {
    let a = sample::<f64>(&[40], 98);
    let x = from_array(a.clone(), [7]).unwrap();
    let v0 = two_pass_var(a.as_slice().unwrap(), 0.0);
    let v1 = two_pass_var(a.as_slice().unwrap(), 1.0);
    check(&x.var().unwrap(), &ArrayD::from_elem(IxDyn(&[]), v0));
    check(&x.std().unwrap(), &ArrayD::from_elem(IxDyn(&[]), v0.sqrt()));
    check(
        &x.var_ddof(1.0).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), v1),
    );
    check(
        &x.std_ddof(1.0).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), v1.sqrt()),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// nansum and nanmean on random shapes and chunkings equal the filtered lane oracle.
    #[test]
    fn nansum_nanmean_any_shape(
        dims in prop::collection::vec(1usize..6, 1..4),
        seed in 0u64..1000,
        split in 2usize..5,
    ) {
        let data = nan_data(&dims, seed);
        let chunks: Vec<usize> = dims.iter().map(|&n| (n / 2).max(1)).collect();
        let x = from_array(data.clone(), chunks).unwrap();
        let axis = (seed as usize) % dims.len();
        let o = ReduceOptions::axis(axis as isize).split_every(split);
        check(&x.nansum_with(&o).unwrap(), &reduce_lanes(&data, &[axis], false, |l| present(l).iter().sum::<f64>()));
        check(&x.nanmean_with(&o).unwrap(), &reduce_lanes(&data, &[axis], false, |l| {
            let p = present(l);
            p.iter().sum::<f64>() / p.len() as f64
        }));
    }
}

/// numpy's documented examples: `np.median(a)`, `np.median(a, axis=0)`, `np.percentile(a, 50,
/// axis=1)` for `a = [[10, 7, 4], [3, 2, 1]]`.
#[test]
fn median_and_percentile_documented_values() {
    let a = arr2(&[[10i64, 7, 4], [3, 2, 1]]).into_dyn();
    for (cname, spec) in chunkings(&[2, 3]) {
        let x = from_array(a.clone(), spec).unwrap();
        in_context(cname, || {
            assert_eq!(
                x.median(None).unwrap().compute_scalar::<f64>().unwrap(),
                3.5
            );
            assert_eq!(
                x.median(Some(0))
                    .unwrap()
                    .compute::<f64>()
                    .unwrap()
                    .into_iter()
                    .collect::<Vec<_>>(),
                vec![6.5, 4.5, 2.5]
            );
            assert_eq!(
                x.median(Some(1))
                    .unwrap()
                    .compute::<f64>()
                    .unwrap()
                    .into_iter()
                    .collect::<Vec<_>>(),
                vec![7.0, 2.0]
            );
            let p = x.percentile(&[50.0], Some(1)).unwrap();
            assert_eq!(p.shape(), &[1, 2]);
            assert_eq!(
                p.compute::<f64>().unwrap().into_iter().collect::<Vec<_>>(),
                vec![7.0, 2.0]
            );
            // np.quantile(a, [0, 0.3, 1]) over all elements: 1, 2.5, 10.
            let q = x
                .quantile(&[0.0, 0.3, 1.0], None)
                .unwrap()
                .compute::<f64>()
                .unwrap();
            assert_eq!(q.into_iter().collect::<Vec<_>>(), vec![1.0, 2.5, 10.0]);
        });
    }
}

/// numpy's linear method from its definition, on sorted lanes.
fn np_quantile(lane: &[f64], q: f64, skip_nan: bool) -> f64 {
    if !skip_nan && lane.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut s = present(lane);
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = q * (s.len() - 1) as f64;
    let lo = idx.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let t = idx - lo as f64;
    let d = s[hi] - s[lo];
    if t >= 0.5 {
        s[hi] - d * (1.0 - t)
    } else {
        s[lo] + d * t
    }
}

fn np_median(lane: &[f64], skip_nan: bool) -> f64 {
    if !skip_nan && lane.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut s = present(lane);
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[test]
fn quantiles_every_axis_and_chunking() {
    let qs = [0.0, 0.1, 0.5, 0.77, 1.0];
    for shape in [vec![17], vec![9, 8], vec![4, 5, 6]] {
        let data = nan_data(&shape, 120);
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(data.clone(), spec).unwrap();
            for axis in 0..shape.len() {
                in_context(format!("{shape:?} {cname} axis {axis}"), || {
                    let ax = Some(axis as isize);
                    check_tol(
                        &x.median(ax).unwrap(),
                        &reduce_lanes(&data, &[axis], false, |l| np_median(l, false)),
                        EXACT,
                    );
                    check_tol(
                        &x.nanmedian(ax).unwrap(),
                        &reduce_lanes(&data, &[axis], false, |l| np_median(l, true)),
                        EXACT,
                    );
                    for skip in [false, true] {
                        let got = if skip {
                            x.nanquantile(&qs, ax).unwrap()
                        } else {
                            x.quantile(&qs, ax).unwrap()
                        };
                        let parts: Vec<ArrayD<f64>> = qs
                            .iter()
                            .map(|&q| {
                                reduce_lanes(&data, &[axis], false, |l| np_quantile(l, q, skip))
                            })
                            .collect();
                        check_tol(&got, &oracle_stack(&parts, 0), EXACT);
                    }
                });
            }
        }
    }
    let f = from_array(arr1(&[1.0f32, 2.0, 4.0]).into_dyn(), [2]).unwrap();
    assert_eq!(f.median(None).unwrap().dtype(), DType::F32);
    let bad = f.quantile(&[1.5], None).unwrap_err().to_string();
    assert!(bad.contains("[1.5]"), "{bad}");
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 3])), [1, 2]).unwrap();
    let m = e.median(Some(0)).unwrap().compute::<f64>().unwrap();
    assert!(m.shape() == [3] && m.iter().all(|v| v.is_nan()), "{m:?}");
}
