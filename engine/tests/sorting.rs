//! Sorting, searching, sets and histograms, driven as a user does, against independent oracles:
//! a plain stable sort of each lane with numpy's comparison (NaN last) written here on ndarray,
//! plain counting loops, and values printed by numpy 2.4 for the binning edge cases. Every check
//! runs on regular, irregular, ragged, single and larger-than-array chunkings, with duplicates,
//! NaN, signed zeros, reverse-sorted input and empty arrays; sorts are compared bit for bit.

mod common;

use std::cmp::Ordering;

use common::*;
use ndarray::{ArrayD, Axis, IxDyn, arr1, arr2};
use tessera::{ArrayData, Bins, DType, Side, from_array, histogram2d, histogramdd};

/// numpy's sort comparison: NaN after everything, equal among themselves; `-0.0 == 0.0`.
fn np_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

/// Stable argsort of every lane along `axis` by `cmp`.
fn oracle_argsort<T: Copy>(
    a: &ArrayD<T>,
    axis: usize,
    cmp: impl Fn(T, T) -> Ordering,
) -> ArrayD<i64> {
    let mut out = ArrayD::<i64>::zeros(a.raw_dim());
    for (lane, mut o) in a
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        let v: Vec<T> = lane.iter().copied().collect();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&p, &q| cmp(v[p], v[q]));
        o.iter_mut().zip(idx).for_each(|(o, i)| *o = i as i64);
    }
    out
}

/// The lanes of `a` gathered by `idx` along `axis`.
fn gather<T: Copy + num_zero::Zero>(a: &ArrayD<T>, idx: &ArrayD<i64>, axis: usize) -> ArrayD<T> {
    let mut out = ArrayD::from_elem(idx.raw_dim(), T::zero());
    for ((lane, il), mut o) in a
        .lanes(Axis(axis))
        .into_iter()
        .zip(idx.lanes(Axis(axis)))
        .zip(out.lanes_mut(Axis(axis)))
    {
        o.iter_mut()
            .zip(il)
            .for_each(|(o, &i)| *o = lane[i as usize]);
    }
    out
}

mod num_zero {
    pub trait Zero {
        fn zero() -> Self;
    }
    impl Zero for f64 {
        fn zero() -> Self {
            0.0
        }
    }
    impl Zero for f32 {
        fn zero() -> Self {
            0.0
        }
    }
    impl Zero for i64 {
        fn zero() -> Self {
            0
        }
    }
    impl Zero for bool {
        fn zero() -> Self {
            false
        }
    }
}

/// Few distinct values (so many ties), NaN, and both zeros.
fn awkward(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = TestRng::new(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        let u = rng.unit();
        if u < 0.1 {
            f64::NAN
        } else if u < 0.2 {
            -0.0
        } else if u < 0.3 {
            0.0
        } else {
            (rng.unit() * 8.0).floor() - 4.0
        }
    })
}

fn bits_of(a: &ArrayD<f64>) -> ArrayData {
    ArrayData::F64(a.clone())
}

#[test]
fn sort_and_argsort_every_axis_rank_and_chunking_match_a_stable_sort() {
    for shape in shapes_0_to_4().into_iter().skip(1) {
        let f = awkward(&shape, 7);
        let i = sample::<i64>(&shape, 8).mapv(|v| v % 5);
        let b = i.mapv(|v| v % 2 == 0);
        let g = sample::<f64>(&shape, 9).mapv(|v| v as f32);
        for (cname, spec) in chunkings(&shape) {
            for axis in 0..shape.len() {
                in_context(format!("{shape:?} {cname} axis {axis}"), || {
                    let x = from_array(f.clone(), spec.clone()).unwrap();
                    let order = oracle_argsort(&f, axis, np_cmp);
                    let sorted = gather(&f, &order, axis);
                    let s = x.sort(axis as isize).unwrap();
                    assert_eq!(s.chunks(), x.chunks(), "sort keeps the chunks");
                    assert_bits_eq(&s.compute_dyn().unwrap(), &bits_of(&sorted));
                    check(&x.argsort(axis as isize).unwrap(), &order);

                    let y = from_array(i.clone(), spec.clone()).unwrap();
                    let order = oracle_argsort(&i, axis, |p: i64, q| p.cmp(&q));
                    check(&y.sort(axis as isize).unwrap(), &gather(&i, &order, axis));
                    check(&y.argsort(axis as isize).unwrap(), &order);

                    let z = from_array(b.clone(), spec.clone()).unwrap();
                    let order = oracle_argsort(&b, axis, |p: bool, q| p.cmp(&q));
                    check(&z.sort(axis as isize).unwrap(), &gather(&b, &order, axis));
                    check(&z.argsort(axis as isize).unwrap(), &order);

                    let w = from_array(g.clone(), spec.clone()).unwrap();
                    let order = oracle_argsort(&g, axis, |p: f32, q| np_cmp(p as f64, q as f64));
                    check(&w.argsort(axis as isize).unwrap(), &order);
                    assert_bits_eq(
                        &w.sort(axis as isize).unwrap().compute_dyn().unwrap(),
                        &ArrayData::F32(gather(&g, &order, axis)),
                    );
                });
            }
        }
    }
}

#[test]
fn sort_of_reverse_sorted_long_input_uses_the_radix_path_and_merges_across_many_chunks() {
    // Long enough for the radix sort (lanes of 512 and more), chunked along the sorted axis.
    let n = 5000;
    let rev: Vec<f64> = (0..n).rev().map(|v| (v / 3) as f64 - 700.5).collect();
    let rev = arr1(&rev).into_dyn();
    let mut want: Vec<f64> = rev.iter().copied().collect();
    want.sort_by(|a, b| np_cmp(*a, *b));
    for chunks in [vec![n], vec![700], vec![1234], vec![n / 2 + 1]] {
        let x = from_array(rev.clone(), chunks.clone()).unwrap();
        check(&x.sort(0).unwrap(), &arr1(&want).into_dyn());
        check(&x.argsort(0).unwrap(), &oracle_argsort(&rev, 0, np_cmp));
    }
    // Random floats with NaN, chunked unevenly, against the stable oracle.
    let r = awkward(&[3, 4000], 21).mapv(|v| if v.is_nan() { v } else { v * 1.37e10 + v });
    for spec in [vec![2, 999], vec![3, 4000], vec![1, 1500]] {
        let x = from_array(r.clone(), spec).unwrap();
        let order = oracle_argsort(&r, 1, np_cmp);
        check(&x.argsort(-1).unwrap(), &order);
        assert_bits_eq(
            &x.sort(-1).unwrap().compute_dyn().unwrap(),
            &bits_of(&gather(&r, &order, 1)),
        );
    }
}

#[test]
fn sort_of_empty_arrays_and_bad_axes() {
    for shape in [vec![0], vec![0, 3], vec![4, 0]] {
        let a = ArrayD::<f64>::zeros(IxDyn(&shape));
        let x = from_array(a.clone(), [2, 2][..shape.len()].to_vec()).unwrap();
        for axis in 0..shape.len() {
            check(&x.sort(axis as isize).unwrap(), &a);
            check(
                &x.argsort(axis as isize).unwrap(),
                &ArrayD::<i64>::zeros(IxDyn(&shape)),
            );
        }
    }
    let x = from_array(arr1(&[1.0, 2.0]).into_dyn(), [1]).unwrap();
    assert!(matches!(
        x.sort(1),
        Err(tessera::Error::AxisOutOfBounds { .. })
    ));
    let zero_d = from_array(ndarray::arr0(1.0).into_dyn(), Vec::<usize>::new()).unwrap();
    assert!(zero_d.sort(0).is_err());
}

/// dask's topk: the k largest (k > 0, largest first) or smallest (k < 0, smallest first).
fn oracle_topk(a: &ArrayD<f64>, k: i64, axis: usize) -> (ArrayD<f64>, ArrayD<i64>) {
    let order = if k > 0 {
        oracle_argsort(a, axis, |p, q| np_cmp(q, p))
    } else {
        oracle_argsort(a, axis, np_cmp)
    };
    let keep = k.unsigned_abs() as usize;
    let order = order
        .slice_axis(Axis(axis), ndarray::Slice::from(..keep))
        .to_owned();
    (gather(a, &order, axis), order)
}

#[test]
fn topk_and_argtopk_as_tree_reductions_match_a_sort() {
    let shape = [6, 101];
    let a = awkward(&shape, 31);
    for spec in [vec![6, 101], vec![4, 10], vec![6, 3], vec![2, 1]] {
        for k in [1i64, 3, 17, 101, -1, -5, -101] {
            let axis = 1usize;
            in_context(format!("chunks {spec:?} k {k}"), || {
                let x = from_array(a.clone(), spec.clone()).unwrap();
                let (v, i) = oracle_topk(&a, k, axis);
                let t = x.topk(k, axis as isize).unwrap();
                assert_bits_eq(&t.compute_dyn().unwrap(), &bits_of(&v));
                check(&x.argtopk(k, axis as isize).unwrap(), &i);
            });
        }
    }
    // Along axis 0 too, and integer input.
    let ints = sample::<i64>(&[40, 3], 5).mapv(|v| v % 7);
    let x = from_array(ints.clone(), [3, 2]).unwrap();
    let order = oracle_argsort(&ints, 0, |p: i64, q| q.cmp(&p));
    let top = order
        .slice_axis(Axis(0), ndarray::Slice::from(..4))
        .to_owned();
    check(&x.argtopk(4, 0).unwrap(), &top);
    check(&x.topk(4, 0).unwrap(), &gather(&ints, &top, 0));
    assert!(x.topk(0, 0).is_err());
    assert!(x.topk(41, 0).is_err());
}

#[test]
fn searchsorted_and_digitize_match_numpy() {
    // Values from numpy 2.4: searchsorted([1, 2, 2, 3, nan], [2, nan, 0, 9, 3], side).
    let a = from_array(arr1(&[1.0, 2.0, 2.0, 3.0, f64::NAN]).into_dyn(), [2]).unwrap();
    let v = from_array(arr1(&[2.0, f64::NAN, 0.0, 9.0, 3.0]).into_dyn(), [3]).unwrap();
    check(
        &a.searchsorted(&v, Side::Left).unwrap(),
        &arr1(&[1i64, 4, 0, 4, 3]).into_dyn(),
    );
    check(
        &a.searchsorted(&v, Side::Right).unwrap(),
        &arr1(&[3i64, 5, 0, 4, 4]).into_dyn(),
    );
    // Integers against a float table promote; an oracle by counting on a large 2-D v.
    let table: Vec<f64> = (0..50).map(|i| (i / 2) as f64 * 1.5).collect();
    let t = from_array(arr1(&table).into_dyn(), [7]).unwrap();
    let vals = sample::<i64>(&[30, 20], 3).mapv(|v| v % 40);
    for (cname, spec) in chunkings(&[30, 20]) {
        let vv = from_array(vals.clone(), spec).unwrap();
        for (side, right) in [(Side::Left, false), (Side::Right, true)] {
            let want = vals.mapv(|v| {
                table
                    .iter()
                    .filter(|&&e| if right { e <= v as f64 } else { e < v as f64 })
                    .count() as i64
            });
            in_context(format!("{cname} {side:?}"), || {
                check(&t.searchsorted(&vv, side).unwrap(), &want)
            });
        }
    }
    let x = from_array(arr1(&[0.2, 6.4, 3.0, 1.6, 10.0, -1.0]).into_dyn(), [4]).unwrap();
    let inc = [0.0, 1.0, 2.5, 4.0, 10.0];
    let dec = [10.0, 4.0, 2.5, 1.0, 0.0];
    check(
        &x.digitize(&inc, false).unwrap(),
        &arr1(&[1i64, 4, 3, 2, 5, 0]).into_dyn(),
    );
    check(
        &x.digitize(&inc, true).unwrap(),
        &arr1(&[1i64, 4, 3, 2, 4, 0]).into_dyn(),
    );
    check(
        &x.digitize(&dec, false).unwrap(),
        &arr1(&[4i64, 1, 2, 3, 0, 5]).into_dyn(),
    );
    check(
        &x.digitize(&dec, true).unwrap(),
        &arr1(&[4i64, 1, 2, 3, 1, 5]).into_dyn(),
    );
    assert!(x.digitize(&[0.0, 2.0, 1.0], false).is_err());
    let two_d = from_array(arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn(), [1, 2]).unwrap();
    assert!(two_d.searchsorted(&x, Side::Left).is_err());
}

#[test]
fn isin_and_unique_match_plain_sets() {
    let f = awkward(&[13, 9], 41);
    let test = arr1(&[1.0, -0.0, f64::NAN, 3.0, 3.0]).into_dyn();
    for (cname, spec) in chunkings(&[13, 9]) {
        let x = from_array(f.clone(), spec).unwrap();
        let t = from_array(test.clone(), [2]).unwrap();
        let want = f.mapv(|v| test.iter().any(|&e| e == v));
        in_context(cname, || {
            check(&x.isin(&t, false).unwrap(), &want);
            check(&x.isin(&t, true).unwrap(), &want.mapv(|b| !b));
        });
    }
    // numpy 2.4: unique([3, nan, -0., 1, 0., nan, 3, 1]) with index, inverse and counts.
    let v = arr1(&[3.0, f64::NAN, -0.0, 1.0, 0.0, f64::NAN, 3.0, 1.0]).into_dyn();
    for chunks in [3usize, 8, 1] {
        let u = from_array(v.clone(), [chunks]).unwrap().unique().unwrap();
        let vals = data_f64(&u.values);
        assert_eq!(vals.len(), 4);
        assert_eq!(
            vals[0].to_bits(),
            (-0.0f64).to_bits(),
            "first occurrence's sign"
        );
        assert_eq!(vals[1], 1.0);
        assert_eq!(vals[2], 3.0);
        assert!(vals[3].is_nan());
        assert_eq!(u.index.to_vec(), vec![2, 3, 0, 1]);
        assert_eq!(u.inverse.to_vec(), vec![2, 3, 0, 1, 0, 3, 2, 1]);
        assert_eq!(u.counts.to_vec(), vec![2, 2, 2, 2]);
    }
    // A 2-D integer array against a BTreeMap count.
    let ints = sample::<i64>(&[20, 30], 2).mapv(|v| v % 11);
    let x = from_array(ints.clone(), [7, 4]).unwrap();
    let u = x.unique().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for &v in ints.iter() {
        *counts.entry(v).or_insert(0i64) += 1;
    }
    assert_eq!(
        data_i64(&u.values).into_iter().collect::<Vec<_>>(),
        counts.keys().copied().collect::<Vec<_>>()
    );
    assert_eq!(
        u.counts.to_vec(),
        counts.values().copied().collect::<Vec<_>>()
    );
    let flat: Vec<i64> = ints.iter().copied().collect();
    let values = data_i64(&u.values);
    for (p, &v) in flat.iter().enumerate() {
        assert_eq!(values[u.inverse[p] as usize], v);
    }
    for (j, &i) in u.index.iter().enumerate() {
        assert_eq!(flat.iter().position(|&v| v == values[j]), Some(i as usize));
    }
    let empty = from_array(ArrayD::<f64>::zeros(IxDyn(&[0])), [1]).unwrap();
    assert_eq!(empty.unique().unwrap().counts.len(), 0);
}

/// numpy's bin of `v` by a linear scan of the edges: `[e_i, e_{i+1})`, the last bin closed.
fn oracle_bin(edges: &[f64], v: f64) -> Option<usize> {
    let n = edges.len() - 1;
    (0..n).find(|&i| edges[i] <= v && (v < edges[i + 1] || (i == n - 1 && v == edges[n])))
}

#[test]
fn histogram_matches_numpy_and_a_counting_loop() {
    // Values from numpy 2.4 (edges that rounding puts on either side of a sample).
    let x = arr1(&[0.5, 1.0, 1.5, 2.0, 9.0, f64::NAN, -3.0, 0.0, 1.999999, 0.1]).into_dyn();
    let tenths = arr1(&(0..10).map(|i| i as f64 * 0.1).collect::<Vec<_>>()).into_dyn();
    let cases: Vec<(ArrayD<f64>, Bins, Vec<i64>)> = vec![
        (
            x.clone(),
            Bins::Range {
                n: 4,
                range: (0.0, 2.0),
            },
            vec![2, 1, 1, 3],
        ),
        (
            x.clone(),
            Bins::Edges(vec![-5.0, 0.0, 0.5, 2.0, 10.0]),
            vec![1, 2, 4, 2],
        ),
        (
            tenths.clone(),
            Bins::Range {
                n: 3,
                range: (0.0, 0.9),
            },
            vec![3, 3, 4],
        ),
        (
            tenths.clone(),
            Bins::Range {
                n: 7,
                range: (0.1, 0.8),
            },
            vec![1, 1, 1, 1, 1, 1, 2],
        ),
    ];
    for (data, bins, want) in cases {
        for chunks in [1usize, 3, 10] {
            let a = from_array(data.clone(), [chunks]).unwrap();
            let (h, _) = a.histogram(&bins, None).unwrap();
            check(&h, &arr1(&want).into_dyn());
        }
    }
    let (_, e) = from_array(tenths, [4])
        .unwrap()
        .histogram(
            &Bins::Range {
                n: 3,
                range: (0.0, 0.9),
            },
            None,
        )
        .unwrap();
    assert_eq!(e, vec![0.0, 0.3, 0.6, 0.9], "numpy's linspace edges");

    // Any rank and chunking, with and without weights, against a counting loop.
    let data = gen_range(&[23, 17], 4, -1.2, 1.2).mapv(|v| if v > 1.1 { f64::NAN } else { v });
    let wts = gen_range(&[23, 17], 5, 0.0, 4.0).mapv(f64::floor);
    let edges = vec![-1.0, -0.25, 0.0, 0.3, 0.9, 1.0];
    let mut counts = vec![0i64; 5];
    let mut sums = vec![0f64; 5];
    for (&v, &w) in data.iter().zip(wts.iter()) {
        if let Some(i) = oracle_bin(&edges, v) {
            counts[i] += 1;
            sums[i] += w;
        }
    }
    for (cname, spec) in chunkings(&[23, 17]) {
        let a = from_array(data.clone(), spec.clone()).unwrap();
        let w = from_array(wts.clone(), [5, 5]).unwrap();
        in_context(cname, || {
            let (h, _) = a.histogram(&Bins::Edges(edges.clone()), None).unwrap();
            check(&h, &arr1(&counts).into_dyn());
            // Integer-valued weights: the float sums are exact in any order.
            let (hw, _) = a.histogram(&Bins::Edges(edges.clone()), Some(&w)).unwrap();
            check_tol(&hw, &arr1(&sums).into_dyn(), EXACT);
        });
    }
    let a = from_array(data, [5, 5]).unwrap();
    assert!(a.histogram(&Bins::Edges(vec![1.0, 0.0]), None).is_err());
    assert!(
        a.histogram(
            &Bins::Range {
                n: 0,
                range: (0.0, 1.0)
            },
            None
        )
        .is_err()
    );
    assert!(
        a.histogram(
            &Bins::Range {
                n: 2,
                range: (0.0, f64::INFINITY)
            },
            None
        )
        .is_err()
    );
}

#[test]
fn histogram2d_and_histogramdd_match_numpy_and_a_counting_loop() {
    // numpy 2.4: histogram2d([.1,.6,.7,.5,1.], [.9,.2,.8,.5,0.], bins=[[0,.5,1],[0,.25,.5,1]]).
    let x = from_array(arr1(&[0.1, 0.6, 0.7, 0.5, 1.0]).into_dyn(), [2]).unwrap();
    let y = from_array(arr1(&[0.9, 0.2, 0.8, 0.5, 0.0]).into_dyn(), [3]).unwrap();
    let bx = Bins::Edges(vec![0.0, 0.5, 1.0]);
    let by = Bins::Edges(vec![0.0, 0.25, 0.5, 1.0]);
    let (h, edges) = histogram2d(&x, &y, [&bx, &by], None).unwrap();
    check(&h, &arr2(&[[0i64, 0, 1], [2, 0, 2]]).into_dyn());
    assert_eq!(edges[1], vec![0.0, 0.25, 0.5, 1.0]);

    let s = gen_range(&[200, 3], 6, 0.0, 1.0);
    let bins = [
        Bins::Range {
            n: 3,
            range: (0.0, 1.0),
        },
        Bins::Edges(vec![0.0, 0.1, 0.5, 0.6]),
        Bins::Range {
            n: 2,
            range: (0.25, 0.75),
        },
    ];
    let e: Vec<Vec<f64>> = vec![
        vec![0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0],
        vec![0.0, 0.1, 0.5, 0.6],
        vec![0.25, 0.5, 0.75],
    ];
    let w = gen_range(&[200], 7, 0.0, 3.0).mapv(f64::floor);
    let mut want = ArrayD::<i64>::zeros(IxDyn(&[3, 3, 2]));
    let mut want_w = ArrayD::<f64>::zeros(IxDyn(&[3, 3, 2]));
    for (r, row) in s.rows().into_iter().enumerate() {
        let ix: Option<Vec<usize>> = (0..3).map(|d| oracle_bin(&e[d], row[d])).collect();
        if let Some(ix) = ix {
            want[&ix[..]] += 1;
            want_w[&ix[..]] += w[r];
        }
    }
    for rows in [200usize, 33, 7] {
        let sample = from_array(s.clone(), [rows, 2]).unwrap();
        let weights = from_array(w.clone(), [50]).unwrap();
        let (h, got_edges) = histogramdd(&sample, &bins, None).unwrap();
        check(&h, &want);
        assert_eq!(got_edges[1], e[1]);
        let (hw, _) = histogramdd(&sample, &bins, Some(&weights)).unwrap();
        check_tol(&hw, &want_w, EXACT);
    }
    let sample = from_array(s, [50, 3]).unwrap();
    assert!(histogramdd(&sample, &bins[..2], None).is_err());
}

#[test]
fn bincount_with_minlength_and_weights() {
    let v = sample::<i64>(&[500], 9).mapv(|v| v.rem_euclid(13));
    let w = gen_range(&[500], 10, -2.0, 2.0).mapv(f64::round);
    let mut counts = vec![0i64; 16];
    let mut sums = vec![0f64; 16];
    for (&x, &wv) in v.iter().zip(w.iter()) {
        counts[x as usize] += 1;
        sums[x as usize] += wv;
    }
    for (cname, spec) in chunkings(&[500]) {
        let x = from_array(v.clone(), spec).unwrap();
        let wa = from_array(w.clone(), [64]).unwrap();
        in_context(cname, || {
            check(&x.bincount(None, 16).unwrap(), &arr1(&counts).into_dyn());
            check_tol(
                &x.bincount(Some(&wa), 16).unwrap(),
                &arr1(&sums).into_dyn(),
                EXACT,
            );
        });
    }
    // A value outside 0..minlength fails the computation, naming it.
    let x = from_array(arr1(&[0i64, 3, 12]).into_dyn(), [2]).unwrap();
    let err = x
        .bincount(None, 5)
        .unwrap()
        .compute_dyn()
        .unwrap_err()
        .to_string();
    assert!(err.contains("value 12") && err.contains("0..5"), "{err}");
    let neg = from_array(arr1(&[-1i64]).into_dyn(), [1]).unwrap();
    assert!(neg.bincount(None, 5).unwrap().compute_dyn().is_err());
    assert!(x.bincount(None, 0).is_err());
    let f = from_array(arr1(&[1.0]).into_dyn(), [1]).unwrap();
    assert!(f.bincount(None, 3).is_err());
    assert_eq!(x.bincount(None, 13).unwrap().dtype(), DType::I64);
}
