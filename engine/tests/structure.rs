//! Structural operations against ndarray oracles: transpose/permute_axes, reshape, slicing with
//! ndarray's `s!` (checked against ndarray's own `slice`, with numpy's clamping of out-of-range
//! bounds), rechunk, concatenate, stack, matmul and map_blocks.
// Empty selections such as `s![20..10]` are deliberate: slicing must give empty arrays.
#![allow(clippy::reversed_empty_ranges)]

mod common;

use common::*;
use ndarray::{ArrayD, ArrayViewD, IxDyn, SliceInfoElem, arr1, arr2, s};
use tessera::{
    Array, ArrayData, ChunkSpec, DType, Error, concatenate, default_rng, from_array,
    from_array_data, stack,
};

// ---------------------------------------------------------------------------------------------
// transpose

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn transpose_and_permute_axes_every_rank_and_chunking() {
    for shape in shapes_0_to_4() {
        let f = sample::<f64>(&shape, 1);
        let b = sample::<bool>(&shape, 2);
        let i = sample::<i64>(&shape, 3);
        for (_, spec) in chunkings(&shape) {
            let lf = from_array(f.clone(), spec.clone()).unwrap();
            check(&lf.t(), &f.clone().reversed_axes());
            check(&lf.transpose(), &f.clone().reversed_axes());
            let li = from_array(i.clone(), spec.clone()).unwrap();
            let lb = from_array(b.clone(), spec.clone()).unwrap();
            for perm in permutations(shape.len()) {
                let expected = f.view().permuted_axes(IxDyn(&perm)).to_owned();
                let got = lf.permute_axes(&perm).unwrap();
                // The chunks move with the axes.
                for (k, &p) in perm.iter().enumerate() {
                    assert_eq!(got.chunks().axis(k), lf.chunks().axis(p));
                }
                check(&got, &expected);
                check(
                    &li.permute_axes(&perm).unwrap(),
                    &i.view().permuted_axes(IxDyn(&perm)).to_owned(),
                );
                check(
                    &lb.permute_axes(&perm).unwrap(),
                    &b.view().permuted_axes(IxDyn(&perm)).to_owned(),
                );
            }
        }
    }
}

#[test]
fn transpose_composes_with_elementwise_and_reductions() {
    let x = sample::<f64>(&[37, 23], 4);
    let a = from_array(x.clone(), [10, 7]).unwrap();
    // x + x.T needs a square array; use x.T @-free ops: (x.T * 2).sum over axis 0.
    let t = &a.t() * 2.0f64;
    let xt = x.t().mapv(|v| v * 2.0);
    check(&t, &xt);
    check(
        &t.sum_axis(0).unwrap(),
        &reduce_lanes(&xt, &[0], false, |l| l.iter().sum::<f64>()),
    );
    // t().t() is the original values.
    check(&a.t().t(), &x);
    let sq = from_array(sample::<f64>(&[12, 12], 5), [5, 7]).unwrap();
    let sqd = sample::<f64>(&[12, 12], 5);
    check(&(&sq + &sq.t()), &(&sqd + &sqd.t()));
}

/// A transpose of a generated source is generated in place (the optimizer's `transpose_sources`):
/// every value must be bit for bit the transpose of the source's values, whatever the source, the
/// permutation and the chunking, and `x + x.T` must fuse to one task per chunk.
#[test]
fn transposed_sources_are_generated_in_place_bit_for_bit() {
    let rng = default_rng(9);
    let sources: Vec<(&str, Array)> = vec![
        ("uniform", rng.random(&[37, 23], [10, 7]).unwrap()),
        (
            "uniform f32",
            rng.random_dtype(&[37, 23], [10, 7], DType::F32).unwrap(),
        ),
        ("normal", rng.standard_normal(&[23, 37], [7, 10]).unwrap()),
        ("uniform 3-d", rng.random(&[5, 6, 7], [2, 4, 3]).unwrap()),
        (
            "arange reshaped",
            tessera::arange(0.0, 60.0, 1.0, [7])
                .unwrap()
                .reshape(&[6, 10])
                .unwrap(),
        ),
        (
            "linspace row times full",
            (&tessera::linspace(0.0, 1.0, 10, true, [4]).unwrap()
                * &tessera::full(&[6, 10], 2.0f64, [4, 4]).unwrap()),
        ),
        // Math on a source, and a source broadcast against another: still input-free programs.
        (
            "sqrt(uniform) * 3 + row",
            (&(&rng.random(&[12, 9], [5, 4]).unwrap().sqrt().unwrap() * 3.0f64)
                + &rng.random(&[9], [4]).unwrap()),
        ),
    ];
    for (what, x) in sources {
        let values = x.compute_dyn().unwrap();
        let nd = x.ndim();
        for perm in permutations(nd) {
            let t = x.permute_axes(&perm).unwrap();
            let expected = tessera::map_array!(&values, v => {
                v.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned()
            });
            let counts = (t.task_counts().unwrap(), x.task_counts().unwrap());
            assert_bits_eq(&t.compute_dyn().unwrap(), &expected);
            if what != "arange reshaped" {
                // Generated in place: no transpose tasks on top of the source's.
                assert_eq!(counts.0.after, counts.1.after, "{what} {perm:?}");
            }
        }
        // Then reduced: the generated rows run along an outer axis of the source.
        if nd == 2 && values.dtype() == DType::F64 {
            let xs = x.compute::<f64>().unwrap();
            check(
                &x.t().sum_axis(1).unwrap(),
                &reduce_lanes(&xs, &[0], false, |l| l.iter().sum::<f64>()),
            );
        }
    }

    let x = rng.random(&[40, 40], [10, 10]).unwrap();
    let both = (&x + &x.t()).mean_axis(0).unwrap();
    // 16 fused (x + x.T → partial mean) tasks and one combine per output column block; no chunk of
    // x is materialized and no transpose copies one.
    assert_eq!(both.task_counts().unwrap().after, 16 + 4);
    let xs = x.compute::<f64>().unwrap();
    let sum = &xs + &xs.t();
    check(
        &both,
        &reduce_lanes(&sum, &[0], false, |l| {
            l.iter().sum::<f64>() / l.len() as f64
        }),
    );
}

#[test]
fn permute_axes_rejects_bad_permutations() {
    let a = from_array(sample::<f64>(&[2, 3, 4], 1), [1, 2, 3]).unwrap();
    for bad in [vec![0, 1], vec![0, 1, 1], vec![0, 1, 3], vec![0, 1, 2, 3]] {
        assert!(
            matches!(
                a.permute_axes(&bad),
                Err(Error::InvalidArgument {
                    op: "transpose",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(a.permute_axes(&[0, 1, 2]).unwrap().id(), a.id());
}

// ---------------------------------------------------------------------------------------------
// reshape

/// (input shape, input chunks, requested shape, resulting shape)
type ReshapeCase = (Vec<usize>, ChunkSpec, Vec<isize>, Vec<usize>);

#[test]
fn reshape_matches_c_order() {
    let cases: Vec<ReshapeCase> = vec![
        (vec![37, 23], [10, 7].into(), vec![-1], vec![851]),
        (vec![37, 23], [10, 7].into(), vec![23, 37], vec![23, 37]),
        (
            vec![37, 23],
            [10, 7].into(),
            vec![1, 851, 1],
            vec![1, 851, 1],
        ),
        (vec![37, 23], [10, 7].into(), vec![37, 23], vec![37, 23]),
        (vec![37, 23], [3, 23].into(), vec![23, -1], vec![23, 37]),
        (
            vec![37, 23],
            vec![ragged_axis(37), ragged_axis(23)].into(),
            vec![-1, 37],
            vec![23, 37],
        ),
        (vec![851], [100].into(), vec![37, 23], vec![37, 23]),
        (vec![851], [7].into(), vec![23, -1], vec![23, 37]),
        (vec![851], [851].into(), vec![37, 23], vec![37, 23]),
        (vec![2, 3, 4], [1, 2, 3].into(), vec![4, -1], vec![4, 6]),
        (vec![2, 3, 4], [1, 2, 3].into(), vec![24], vec![24]),
        (vec![2, 3, 4], [2, 2, 2].into(), vec![3, 8], vec![3, 8]),
        (
            vec![2, 3, 4],
            [1, 1, 1].into(),
            vec![1, 2, 3, 4],
            vec![1, 2, 3, 4],
        ),
        (vec![6, 4], [4, 3].into(), vec![2, 3, 4], vec![2, 3, 4]),
        (
            vec![3, 4, 5, 6],
            [2, 3, 2, 5].into(),
            vec![12, 30],
            vec![12, 30],
        ),
        (
            vec![3, 4, 5, 6],
            [2, 3, 2, 5].into(),
            vec![-1, 6],
            vec![60, 6],
        ),
        (vec![3, 4, 5, 6], [3, 1, 5, 6].into(), vec![360], vec![360]),
        (
            vec![3, 4, 5, 6],
            [1, 4, 4, 4].into(),
            vec![6, 10, 6],
            vec![6, 10, 6],
        ),
        (vec![], [0usize; 0].into(), vec![1], vec![1]),
        (vec![], [0usize; 0].into(), vec![1, 1], vec![1, 1]),
        (vec![], [0usize; 0].into(), vec![-1], vec![1]),
        (vec![1], [1].into(), vec![], vec![]),
        (vec![1, 1], [1, 1].into(), vec![], vec![]),
        (vec![0, 3], [1, 2].into(), vec![3, 0], vec![3, 0]),
        (vec![0, 3], [1, 2].into(), vec![0], vec![0]),
        (vec![4, 0], [2, 1].into(), vec![0, 5], vec![0, 5]),
    ];
    for (from, spec, to, expected_shape) in cases {
        let f = sample::<f64>(&from, 6);
        let b = sample::<bool>(&from, 7);
        let i = iota(&from);
        let ctx = format!("{from:?} chunked {spec:?} -> {to:?}");
        let lf = from_array(f.clone(), spec.clone()).unwrap();
        let got = lf.reshape(&to).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(got.shape(), expected_shape.as_slice(), "{ctx}");
        check(&got, &oracle_reshape(&f, &expected_shape));
        let lb = from_array(b.clone(), spec.clone()).unwrap();
        check(
            &lb.reshape(&to).unwrap(),
            &oracle_reshape(&b, &expected_shape),
        );
        let li = from_array(i.clone(), spec.clone()).unwrap();
        let ri = li.reshape(&to).unwrap();
        check(&ri, &oracle_reshape(&i, &expected_shape));
        // And back again.
        let back: Vec<isize> = from.iter().map(|&d| d as isize).collect();
        check(&ri.reshape(&back).unwrap(), &i);
    }
}

#[test]
fn reshape_of_computed_expressions_and_then_reduce() {
    let x = sample::<f64>(&[37, 23], 8);
    let a = from_array(x.clone(), [10, 7]).unwrap();
    let e = (&a * 3.0f64).reshape(&[23, 37]).unwrap();
    let ex = oracle_reshape(&x.mapv(|v| v * 3.0), &[23, 37]);
    check(&e, &ex);
    check(
        &e.sum_axis(1).unwrap(),
        &reduce_lanes(&ex, &[1], false, |l| l.iter().sum::<f64>()),
    );
    let r = default_rng(1).random(&[6, 10], [4, 3]).unwrap();
    let rv = r.compute::<f64>().unwrap();
    check(
        &r.reshape(&[3, 4, 5]).unwrap(),
        &oracle_reshape(&rv, &[3, 4, 5]),
    );
    check(
        &r.reshape(&[-1]).unwrap().slice(s![5..50;7]).unwrap(),
        &oracle_slice(&oracle_reshape(&rv, &[60]), s![5..50;7].as_ref()),
    );
}

#[test]
fn reshape_errors_are_typed() {
    let a = from_array(sample::<f64>(&[37, 23], 1), [10, 7]).unwrap();
    for bad in [
        vec![-1, -1],
        vec![5, 5],
        vec![-2, 851],
        vec![2, -1],
        vec![852],
    ] {
        assert!(
            matches!(
                a.reshape(&bad),
                Err(Error::InvalidArgument { op: "reshape", .. })
            ),
            "{bad:?}"
        );
    }
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 3])), [1, 1]).unwrap();
    assert!(matches!(
        e.reshape(&[-1, 0]),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(a.reshape(&[37, -1]).unwrap().id(), a.id());
}

// ---------------------------------------------------------------------------------------------
// slicing

fn slice_cases_2d() -> Vec<Vec<SliceInfoElem>> {
    vec![
        s![.., ..].as_ref().to_vec(),
        s![3..30, ..].as_ref().to_vec(),
        s![..;3, 1..;2].as_ref().to_vec(),
        s![..;-1, ..].as_ref().to_vec(),
        s![.., ..;-1].as_ref().to_vec(),
        s![5..20;-3, -5..].as_ref().to_vec(),
        s![-1, ..].as_ref().to_vec(),
        s![.., 4].as_ref().to_vec(),
        s![3, 5].as_ref().to_vec(),
        s![-37, -23].as_ref().to_vec(),
        s![10..10, ..].as_ref().to_vec(),
        s![20..10, ..].as_ref().to_vec(),
        s![40..50, ..].as_ref().to_vec(),
        s![-100..100, ..;-4].as_ref().to_vec(),
        s![..-3;2, -20..-2;-5].as_ref().to_vec(),
        s![9..11, 6..8].as_ref().to_vec(),
        s![1..36;7, 22..23].as_ref().to_vec(),
        s![..;100, ..;-100].as_ref().to_vec(),
        s![-3.., ..-21].as_ref().to_vec(),
        s![29..30;-1, 13].as_ref().to_vec(),
        s![..;-2, ..;-3].as_ref().to_vec(),
        s![7..8, ..].as_ref().to_vec(),
    ]
}

#[test]
fn slicing_2d_matches_ndarray_on_every_chunking() {
    let shape = [37, 23];
    let x = sample::<f64>(&shape, 9);
    let b = sample::<bool>(&shape, 10);
    let mut specs = chunkings(&shape);
    specs.push(("10x7", [10, 7].into()));
    for (name, spec) in specs {
        let a = from_array(x.clone(), spec.clone()).unwrap();
        let ab = from_array(b.clone(), spec.clone()).unwrap();
        for info in slice_cases_2d() {
            let ctx = format!("{info:?} on {name}");
            let got = a.slice(&info).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let expected = oracle_slice(&x, &info);
            in_context(&ctx, || check(&got, &expected));
            check(&ab.slice(&info).unwrap(), &oracle_slice(&b, &info));
        }
    }
}

#[test]
fn slicing_other_ranks() {
    // 1-d
    let v = iota(&[50]);
    for spec in [[7], [50], [1], [64]] {
        let a = from_array(v.clone(), spec).unwrap();
        for info in [
            s![..].as_ref().to_vec(),
            s![3..47;5].as_ref().to_vec(),
            s![..;-7].as_ref().to_vec(),
            s![-10..;-1].as_ref().to_vec(),
            s![-60..60].as_ref().to_vec(),
            s![49..].as_ref().to_vec(),
            s![0..0].as_ref().to_vec(),
        ] {
            check(&a.slice(&info).unwrap(), &oracle_slice(&v, &info));
        }
        assert_eq!(
            a.slice(s![-1]).unwrap().compute_scalar::<i64>().unwrap(),
            49
        );
        assert_eq!(a.slice(s![13]).unwrap().ndim(), 0);
    }
    // 3-d and 4-d, fewer indices than axes.
    let c = sample::<f64>(&[5, 6, 7], 11);
    let d = sample::<i64>(&[3, 4, 5, 6], 12);
    for (_, spec) in chunkings(&[5, 6, 7]) {
        let a = from_array(c.clone(), spec).unwrap();
        for info in [
            s![1..4, ..;-2, 3].as_ref().to_vec(),
            s![-1, 2, ..].as_ref().to_vec(),
            s![.., 1..5;3, -3..;-1].as_ref().to_vec(),
            s![2, 3, 4].as_ref().to_vec(),
            s![1..3].as_ref().to_vec(),
            s![..;-1, 4].as_ref().to_vec(),
        ] {
            check(&a.slice(&info).unwrap(), &oracle_slice(&c, &info));
        }
    }
    for (_, spec) in chunkings(&[3, 4, 5, 6]) {
        let a = from_array(d.clone(), spec).unwrap();
        for info in [
            s![.., 1..3, ..;2, -1].as_ref().to_vec(),
            s![1, .., 4, 1..5;-2].as_ref().to_vec(),
            s![..;-1, ..;-1, ..;-1, ..;-1].as_ref().to_vec(),
            s![2..1, .., .., ..].as_ref().to_vec(),
        ] {
            check(&a.slice(&info).unwrap(), &oracle_slice(&d, &info));
        }
    }
    // 0-d: an empty slice is the array itself.
    let z = from_array(ArrayD::from_elem(IxDyn(&[]), 4.5f64), [0usize; 0]).unwrap();
    let empty: [SliceInfoElem; 0] = [];
    assert_eq!(
        z.slice(empty).unwrap().compute_scalar::<f64>().unwrap(),
        4.5
    );
}

#[test]
fn slices_compose_and_feed_other_ops() {
    let x = sample::<f64>(&[37, 23], 13);
    let a = from_array(x.clone(), [10, 7]).unwrap();
    let s1 = a.slice(s![2..35;2, ..;-1]).unwrap();
    let s2 = s1.slice(s![..;-3, 4..20;3]).unwrap();
    let e1 = oracle_slice(&x, s![2..35;2, ..;-1].as_ref());
    let e2 = oracle_slice(&e1, s![..;-3, 4..20;3].as_ref());
    check(&s2, &e2);
    // Elementwise between slices with different chunk grids.
    let l = a.slice(s![..20, ..]).unwrap();
    let r = a.slice(s![17.., ..;-1]).unwrap();
    let el = oracle_slice(&x, s![..20, ..].as_ref());
    let er = oracle_slice(&x, s![17.., ..;-1].as_ref());
    check(&(&l - &r), &(&el - &er));
    // Reductions of slices.
    check(
        &s1.mean_axis(0).unwrap(),
        &reduce_lanes(&e1, &[0], false, |v| v.iter().sum::<f64>() / v.len() as f64),
    );
    // A slice of an elementwise expression.
    let sq = a.square().unwrap().slice(s![-5.., 3]).unwrap();
    check(&sq, &oracle_slice(&x.mapv(|v| v * v), s![-5.., 3].as_ref()));
    // An empty slice reduces to the identity.
    let empty = a.slice(s![5..5, ..]).unwrap();
    check(
        &empty.sum_axis(0).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[23])),
    );
}

#[test]
fn slicing_errors_are_typed() {
    let a = from_array(sample::<f64>(&[37, 23], 1), [10, 7]).unwrap();
    match a.slice(s![37, ..]) {
        Err(Error::IndexOutOfBounds {
            index: 37,
            axis: 0,
            len: 37,
        }) => {}
        other => panic!("expected IndexOutOfBounds, got {other:?}"),
    }
    assert!(matches!(
        a.slice(s![.., -24]),
        Err(Error::IndexOutOfBounds {
            index: -24,
            axis: 1,
            len: 23
        })
    ));
    assert!(matches!(
        a.slice(s![1, 2, 3]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        a.slice(s![ndarray::NewAxis, .., ..]),
        Err(Error::InvalidArgument { .. })
    ));
    let zero_step = [
        SliceInfoElem::Slice {
            start: 0,
            end: None,
            step: 0,
        },
        SliceInfoElem::Slice {
            start: 0,
            end: None,
            step: 1,
        },
    ];
    assert!(matches!(
        a.slice(zero_step),
        Err(Error::InvalidArgument { .. })
    ));
    // A full slice is the array itself.
    assert_eq!(a.slice(s![.., ..]).unwrap().id(), a.id());
}

// ---------------------------------------------------------------------------------------------
// rechunk

#[test]
fn rechunk_to_explicit_block_and_auto_chunks() {
    let x = sample::<f64>(&[37, 23], 14);
    let i = sample::<i64>(&[37, 23], 15);
    let b = sample::<bool>(&[37, 23], 16);
    for (_, from) in chunkings(&[37, 23]) {
        let a = from_array(x.clone(), from.clone()).unwrap();
        let ai = from_array(i.clone(), from.clone()).unwrap();
        let ab = from_array(b.clone(), from.clone()).unwrap();
        let targets: Vec<(ChunkSpec, Vec<usize>)> = vec![
            ([5, 5].into(), vec![8, 5]),
            ([37, 1].into(), vec![1, 23]),
            ([1, 23].into(), vec![37, 1]),
            (vec![vec![30, 7], vec![1, 22]].into(), vec![2, 2]),
            (
                vec![ragged_axis(37), vec![23]].into(),
                vec![ragged_axis(37).len(), 1],
            ),
            (ChunkSpec::auto(), vec![1, 1]),
            (ChunkSpec::AutoBytes(8 * 50), vec![]),
        ];
        for (spec, numblocks) in targets {
            let r = a.rechunk(spec.clone()).unwrap();
            if !numblocks.is_empty() {
                assert_eq!(r.numblocks(), numblocks, "{spec:?}");
            } else {
                assert!(r.chunks().max_chunk_elems() <= 50, "{:?}", r.chunks());
            }
            check(&r, &x);
            check(&ai.rechunk(spec.clone()).unwrap(), &i);
            check(&ab.rechunk(spec.clone()).unwrap(), &b);
            // Rechunking back again.
            check(&r.rechunk(from.clone()).unwrap(), &x);
        }
    }
    // Rechunking to the same chunks is the same array.
    let a = from_array(x.clone(), [10, 7]).unwrap();
    assert_eq!(a.rechunk([10, 7]).unwrap().id(), a.id());
    // 4-d and empty.
    let d = sample::<f32>(&[3, 4, 5, 6], 17);
    let ad = from_array(d.clone(), [1, 2, 3, 4]).unwrap();
    check(&ad.rechunk([3, 3, 2, 5]).unwrap(), &d);
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 5])), [1, 2]).unwrap();
    check(
        &e.rechunk([4, 4]).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0, 5])),
    );
}

#[test]
fn rechunk_errors_are_typed() {
    let a = from_array(sample::<f64>(&[37, 23], 1), [10, 7]).unwrap();
    assert!(matches!(
        a.rechunk(vec![vec![30, 6], vec![23]]),
        Err(Error::InvalidChunks { .. })
    ));
    assert!(matches!(a.rechunk([5]), Err(Error::ChunksRank { .. })));
    assert!(matches!(
        a.rechunk([0, 5]),
        Err(Error::InvalidChunks { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// concatenate and stack

#[test]
fn concatenate_matches_ndarray() {
    let x = sample::<f64>(&[37, 23], 18);
    let y = sample::<f64>(&[5, 23], 19);
    let z = sample::<f64>(&[37, 4], 20);
    let (a, b, c) = (
        from_array(x.clone(), [10, 7]).unwrap(),
        from_array(y.clone(), [2, 3]).unwrap(),
        from_array(z.clone(), [6, 4]).unwrap(),
    );
    check(
        &concatenate(&[&a, &b], 0).unwrap(),
        &oracle_concat(&[x.clone(), y.clone()], 0),
    );
    check(
        &concatenate(&[&b, &a, &b], 0).unwrap(),
        &oracle_concat(&[y.clone(), x.clone(), y.clone()], 0),
    );
    check(
        &concatenate(&[&a, &c], 1).unwrap(),
        &oracle_concat(&[x.clone(), z.clone()], 1),
    );
    check(
        &concatenate(&[&c, &a, &c], -1).unwrap(),
        &oracle_concat(&[z.clone(), x.clone(), z.clone()], 1),
    );
    check(&concatenate(&[&a], 0).unwrap(), &x);
    // Then reduce across the seam and slice across it.
    let cat = concatenate(&[&a, &b], 0).unwrap();
    let ecat = oracle_concat(&[x.clone(), y.clone()], 0);
    check(
        &cat.sum_axis(0).unwrap(),
        &reduce_lanes(&ecat, &[0], false, |l| l.iter().sum::<f64>()),
    );
    check(
        &cat.slice(s![30..40;3, ..;-2]).unwrap(),
        &oracle_slice(&ecat, s![30..40;3, ..;-2].as_ref()),
    );
    // Empty pieces.
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 23])), [1, 5]).unwrap();
    check(&concatenate(&[&e, &a, &e], 0).unwrap(), &x);
    check(
        &concatenate(&[&e, &e], 0).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0, 23])),
    );
    // 1-d and 3-d.
    let v = iota(&[10]);
    let w = iota(&[7]).mapv(|q| q * 100);
    check(
        &concatenate(
            &[
                &from_array(v.clone(), [3]).unwrap(),
                &from_array(w.clone(), [7]).unwrap(),
            ],
            0,
        )
        .unwrap(),
        &oracle_concat(&[v, w], 0),
    );
    let p = sample::<i64>(&[2, 3, 4], 21);
    let q = sample::<i64>(&[2, 5, 4], 22);
    check(
        &concatenate(
            &[
                &from_array(p.clone(), [1, 2, 3]).unwrap(),
                &from_array(q.clone(), [2, 2, 1]).unwrap(),
            ],
            1,
        )
        .unwrap(),
        &oracle_concat(&[p, q], 1),
    );
}

#[test]
fn concatenate_and_stack_promote_dtypes() {
    let i = sample::<i64>(&[4, 3], 23);
    let f = sample::<f32>(&[2, 3], 24);
    let b = sample::<bool>(&[4, 3], 25);
    let (li, lf, lb) = (
        from_array(i.clone(), [3, 2]).unwrap(),
        from_array(f.clone(), [1, 3]).unwrap(),
        from_array(b.clone(), [4, 1]).unwrap(),
    );
    let c = concatenate(&[&li, &lf], 0).unwrap();
    assert_eq!(c.dtype(), DType::F64);
    check(
        &c,
        &oracle_concat(&[i.mapv(|v| v as f64), f.mapv(|v| v as f64)], 0),
    );
    let c = concatenate(&[&lb, &li], 1).unwrap();
    assert_eq!(c.dtype(), DType::I64);
    check(&c, &oracle_concat(&[b.mapv(|v| v as i64), i.clone()], 1));
    let s = stack(&[&li, &lb], 0).unwrap();
    assert_eq!(s.dtype(), DType::I64);
    check(&s, &oracle_stack(&[i.clone(), b.mapv(|v| v as i64)], 0));
    let f4 = sample::<f32>(&[4, 3], 26);
    let lf4 = from_array(f4.clone(), [2, 2]).unwrap();
    let s = stack(&[&lf4, &lf4], 1).unwrap();
    assert_eq!(s.dtype(), DType::F32);
    check(&s, &oracle_stack(&[f4.clone(), f4.clone()], 1));
}

#[test]
fn stack_matches_ndarray() {
    let xs: Vec<ArrayD<f64>> = (0..3).map(|k| sample::<f64>(&[37, 23], 30 + k)).collect();
    let specs: [ChunkSpec; 3] = [[10, 7].into(), [37, 23].into(), [6, 9].into()];
    let arrays: Vec<Array> = xs
        .iter()
        .zip(specs)
        .map(|(x, s)| from_array(x.clone(), s).unwrap())
        .collect();
    let refs: Vec<&Array> = arrays.iter().collect();
    for axis in [0isize, 1, 2, -1, -3] {
        let ax = axis.rem_euclid(3) as usize;
        let got = stack(&refs, axis).unwrap();
        check(&got, &oracle_stack(&xs, ax));
        check(
            &got.sum_axis(axis).unwrap(),
            &reduce_lanes(&oracle_stack(&xs, ax), &[ax], false, |l| {
                l.iter().sum::<f64>()
            }),
        );
    }
    // 0-d arrays stack into a 1-d array.
    let zs: Vec<Array> = (0..4)
        .map(|k| from_array(ArrayD::from_elem(IxDyn(&[]), k as i64 * 3), [0usize; 0]).unwrap())
        .collect();
    let zr: Vec<&Array> = zs.iter().collect();
    check(&stack(&zr, 0).unwrap(), &arr1(&[0i64, 3, 6, 9]).into_dyn());
}

#[test]
fn concatenate_and_stack_errors_are_typed() {
    let a = from_array(sample::<f64>(&[4, 3], 1), [2, 2]).unwrap();
    let b = from_array(sample::<f64>(&[4, 5], 2), [2, 2]).unwrap();
    let v = from_array(sample::<f64>(&[4], 3), [2]).unwrap();
    let z = from_array(ArrayD::from_elem(IxDyn(&[]), 1.0f64), [0usize; 0]).unwrap();
    assert!(matches!(
        concatenate(&[&a, &b], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(concatenate(&[&a, &b], 1).is_ok());
    assert!(matches!(
        concatenate(&[&a, &v], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        concatenate(&[&a, &a], 2),
        Err(Error::AxisOutOfBounds { .. })
    ));
    assert!(matches!(
        concatenate(&[&z, &z], 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        concatenate(&[], 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        stack(&[&a, &b], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        stack(&[&a, &a], 3),
        Err(Error::AxisOutOfBounds { .. })
    ));
    assert!(matches!(stack(&[], 0), Err(Error::InvalidArgument { .. })));
}

// ---------------------------------------------------------------------------------------------
// matmul

#[test]
fn matmul_f64_irregular_and_non_square() {
    let x = sample::<f64>(&[37, 23], 40);
    let y = sample::<f64>(&[23, 11], 41);
    let expected = oracle_matmul(&x, &y);
    let pairs: Vec<(ChunkSpec, ChunkSpec)> = vec![
        ([10, 7].into(), [5, 4].into()),
        ([10, 7].into(), [7, 11].into()),
        ([37, 23].into(), [23, 11].into()),
        ([100, 100].into(), [100, 100].into()),
        ([1, 1].into(), [1, 1].into()),
        ([37, 1].into(), [23, 1].into()),
        (
            vec![ragged_axis(37), ragged_axis(23)].into(),
            vec![vec![20, 3], ragged_axis(11)].into(),
        ),
    ];
    for (ca, cb) in pairs {
        let a = from_array(x.clone(), ca.clone()).unwrap();
        let b = from_array(y.clone(), cb.clone()).unwrap();
        let c = a.matmul(&b).unwrap();
        in_context(format!("{ca:?} @ {cb:?}"), || check(&c, &expected));
        check(&a.dot(&b).unwrap(), &expected);
    }
    // Vectors as 1×n and n×1 matrices.
    let r = sample::<f64>(&[1, 23], 42);
    let col = sample::<f64>(&[23, 1], 43);
    let lr = from_array(r.clone(), [1, 5]).unwrap();
    let lc = from_array(col.clone(), [4, 1]).unwrap();
    check(&lr.matmul(&lc).unwrap(), &oracle_matmul(&r, &col));
    check(&lc.matmul(&lr).unwrap(), &oracle_matmul(&col, &r));
    // A product of computed expressions, then a reduction.
    let a = from_array(x.clone(), [10, 7]).unwrap();
    let at = a.t();
    let gram = at.matmul(&a).unwrap();
    let eg = oracle_matmul(&x.t().to_owned(), &x);
    check(&gram, &eg);
    check(
        &gram.sum_axis(0).unwrap(),
        &reduce_lanes(&eg, &[0], false, |l| l.iter().sum::<f64>()),
    );
}

#[test]
fn matmul_i64_f32_and_mixed() {
    let x = sample::<i64>(&[37, 23], 44);
    let y = sample::<i64>(&[23, 11], 45);
    let a = from_array(x.clone(), [10, 7]).unwrap();
    let b = from_array(y.clone(), [6, 4]).unwrap();
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.dtype(), DType::I64);
    check(&c, &oracle_matmul(&x, &y));
    let xf = sample::<f32>(&[12, 9], 46);
    let yf = sample::<f32>(&[9, 5], 47);
    let c = from_array(xf.clone(), [5, 4])
        .unwrap()
        .matmul(&from_array(yf.clone(), [2, 5]).unwrap())
        .unwrap();
    assert_eq!(c.dtype(), DType::F32);
    let exact = oracle_matmul(&xf.mapv(|v| v as f64), &yf.mapv(|v| v as f64)).mapv(|v| v as f32);
    check(&c, &exact);
    // int64 @ float64 promotes to float64; int64 @ float32 to float64 as well.
    let yd = sample::<f64>(&[23, 11], 48);
    let c = a.matmul(&from_array(yd.clone(), [5, 5]).unwrap()).unwrap();
    assert_eq!(c.dtype(), DType::F64);
    check(&c, &oracle_matmul(&x.mapv(|v| v as f64), &yd));
    let ys = sample::<f32>(&[23, 11], 49);
    let c = a.matmul(&from_array(ys.clone(), [23, 3]).unwrap()).unwrap();
    assert_eq!(c.dtype(), DType::F64);
    check(
        &c,
        &oracle_matmul(&x.mapv(|v| v as f64), &ys.mapv(|v| v as f64)),
    );
}

#[test]
fn matmul_with_transposed_operands() {
    let x = sample::<f64>(&[37, 23], 60);
    let y = sample::<f64>(&[11, 23], 61);
    let z = sample::<f64>(&[37, 11], 64);
    let wide = sample::<f64>(&[11, 37], 65);
    let xt = x.t().to_owned();
    let expected = oracle_matmul(&x, &y.t().to_owned());
    for (name, spec) in chunkings(&[37, 23]) {
        let a = from_array(x.clone(), spec.clone()).unwrap();
        for other in [ChunkSpec::from([5, 4]), ChunkSpec::from([11, 23])] {
            let b = from_array(y.clone(), other.clone()).unwrap();
            in_context(format!("{name} @ ({other:?}).T"), || {
                check(&a.matmul(&b.t()).unwrap(), &expected)
            });
            let c = from_array(z.clone(), other.clone()).unwrap();
            in_context(format!("({name}).T @ {other:?}"), || {
                check(&a.t().matmul(&c).unwrap(), &oracle_matmul(&xt, &z))
            });
            let w = from_array(wide.clone(), other.clone()).unwrap();
            in_context(format!("({name}).T @ ({other:?}).T"), || {
                check(
                    &a.t().matmul(&w.t()).unwrap(),
                    &oracle_matmul(&xt, &wide.t().to_owned()),
                )
            });
        }
    }
}

#[test]
fn a_gram_matrix_computes_its_upper_block_triangle_and_is_exactly_symmetric() {
    // 450 rows in one block: the diagonal block's half-products recurse twice.
    for (shape, spec) in [
        (vec![37, 23], ChunkSpec::from([10, 7])),
        (vec![37, 23], vec![ragged_axis(37), ragged_axis(23)].into()),
        (vec![37, 23], ChunkSpec::from([100, 100])),
        (vec![450, 40], ChunkSpec::from([450, 15])),
        (vec![450, 40], ChunkSpec::from([200, 40])),
    ] {
        let x = sample::<f64>(&shape, 62);
        let a = from_array(x.clone(), spec.clone()).unwrap();
        let gram = a.matmul(&a.t()).unwrap();
        in_context(format!("{shape:?} in {spec:?}"), || {
            check(&gram, &oracle_matmul(&x, &x.t().to_owned()));
            let got = gram.compute::<f64>().unwrap();
            assert_eq!(got, got.t(), "a @ a.T is symmetric bit for bit");
        });
        let cov = a.t().matmul(&a).unwrap();
        in_context(format!("{shape:?} in {spec:?}, a.T @ a"), || {
            check(&cov, &oracle_matmul(&x.t().to_owned(), &x));
            let got = cov.compute::<f64>().unwrap();
            assert_eq!(got, got.t(), "a.T @ a is symmetric bit for bit");
        });
        let xs = x.mapv(|v| v as f32);
        let gs = from_array(xs.clone(), spec.clone()).unwrap();
        let gs = gs.matmul(&gs.t()).unwrap();
        let exact = oracle_matmul(&x, &x.t().to_owned()).mapv(|v| v as f32);
        in_context(format!("float32 {shape:?} in {spec:?}"), || {
            check(&gs, &exact)
        });
        let xi = x.mapv(|v| (v * 100.0) as i64);
        let gi = from_array(xi.clone(), spec).unwrap();
        check(
            &gi.matmul(&gi.t()).unwrap(),
            &oracle_matmul(&xi, &xi.t().to_owned()),
        );
    }
    // 4 × 4 blocks and 4 inner blocks. The gram matrix: 16 source chunks, 4 products for each of
    // the 10 blocks on or above the diagonal, their 10 sums, and 16 mirrored blocks. A product of
    // two arrays: 2 × 16 source chunks, 16 × 4 products and 16 sums.
    let x = sample::<f64>(&[37, 23], 63);
    let a = from_array(x.clone(), [10, 7]).unwrap();
    let other = from_array(x.mapv(|v| v + 1.0), [10, 7]).unwrap();
    let tasks = |c: &tessera::Array| c.task_counts().unwrap().after;
    assert_eq!(tasks(&a.matmul(&a.t()).unwrap()), 16 + 40 + 10 + 16);
    // a.T @ a: 4 × 4 inner blocks make 10 upper blocks of 4 products each as well.
    assert_eq!(tasks(&a.t().matmul(&a).unwrap()), 16 + 40 + 10 + 16);
    assert_eq!(tasks(&a.matmul(&other.t()).unwrap()), 32 + 64 + 16);
}

#[test]
fn matmul_with_an_empty_inner_dimension_is_zero() {
    let a = from_array(ArrayD::<f64>::zeros(IxDyn(&[3, 0])), [2, 1]).unwrap();
    let b = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 4])), [1, 3]).unwrap();
    check(
        &a.matmul(&b).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[3, 4])),
    );
}

#[test]
fn matmul_errors_are_typed() {
    let a = from_array(sample::<f64>(&[4, 3], 1), [2, 2]).unwrap();
    let v = from_array(sample::<f64>(&[3], 2), [2]).unwrap();
    let b = from_array(sample::<bool>(&[3, 3], 3), [2, 2]).unwrap();
    assert!(matches!(a.matmul(&v), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.matmul(&a), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(b.matmul(&b), Err(Error::UnsupportedDType { .. })));
    assert!(a.matmul(&a.t()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// map_blocks

#[test]
fn map_blocks_applies_the_closure_per_chunk() {
    let x = sample::<f64>(&[37, 23], 50);
    for (_, spec) in chunkings(&[37, 23]) {
        let a = from_array(x.clone(), spec.clone()).unwrap();
        let y = a
            .map_blocks(|b: ArrayViewD<f64>| b.mapv(|v| v * 10.0 + 1.0))
            .unwrap();
        check(&y, &x.mapv(|v| v * 10.0 + 1.0));
        // A dtype change.
        let z = a
            .map_blocks(|b: ArrayViewD<f64>| b.mapv(|v| v.floor() as i64))
            .unwrap();
        assert_eq!(z.dtype(), DType::I64);
        check(&z, &x.mapv(|v| v.floor() as i64));
        // The closure sees exactly each chunk: replace every chunk by its own sum.
        let sums = a
            .map_blocks(|b: ArrayViewD<f64>| ArrayD::from_elem(b.raw_dim(), b.sum()))
            .unwrap();
        let mut expected = ArrayD::<f64>::zeros(IxDyn(&[37, 23]));
        let (r0, r1) = (a.chunks().axis_offsets(0), a.chunks().axis_offsets(1));
        for i in 0..r0.len() - 1 {
            for j in 0..r1.len() - 1 {
                let block = s![r0[i]..r0[i + 1], r1[j]..r1[j + 1]];
                let total = x.slice(block.as_ref()).sum();
                expected.slice_mut(block.as_ref()).fill(total);
            }
        }
        check(&sums, &expected);
        // Composes with other ops on both sides.
        let w = (&y + &a).sum_axis(0).unwrap();
        check(
            &w,
            &reduce_lanes(&x.mapv(|v| v * 11.0 + 1.0), &[0], false, |l| {
                l.iter().sum::<f64>()
            }),
        );
    }
}

#[test]
fn map_blocks_failures_are_errors_naming_the_task() {
    let a = from_array(sample::<f64>(&[37, 23], 51), [10, 7]).unwrap();
    let panicking = a
        .map_blocks(|b: ArrayViewD<f64>| -> ArrayD<f64> {
            if b.shape() == [7, 2] {
                panic!("the corner chunk is cursed");
            }
            b.to_owned()
        })
        .unwrap();
    match panicking.compute::<f64>() {
        Err(Error::TaskPanicked { key, message }) => {
            assert!(key.starts_with("map-blocks-"), "{key}");
            assert!(key.ends_with("/(3, 3)"), "{key}");
            assert!(message.contains("the corner chunk is cursed"), "{message}");
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    // The error also surfaces through downstream ops.
    assert!(matches!(
        panicking.sum().unwrap().compute_scalar::<f64>(),
        Err(Error::TaskPanicked { .. })
    ));

    let wrong_shape = a
        .map_blocks(|b: ArrayViewD<f64>| b.slice(s![..1, ..].as_ref()).to_owned())
        .unwrap();
    match wrong_shape.compute_dyn() {
        Err(Error::TaskFailed { key, message }) => {
            assert!(key.starts_with("map-blocks-"), "{key}");
            assert!(message.contains("shape"), "{message}");
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    // The input dtype is checked when the op is built.
    assert!(matches!(
        a.map_blocks(|b: ArrayViewD<i64>| b.to_owned()),
        Err(Error::DTypeMismatch {
            expected: DType::I64,
            actual: DType::F64
        })
    ));
}

#[test]
fn structure_ops_on_dynamic_data_of_every_dtype() {
    for &dtype in &DTYPES {
        let data = sample_data(dtype, &[6, 8], 60);
        let a = from_array_data(data.clone(), [4, 3]).unwrap();
        let t = a
            .t()
            .slice(s![1..7;2, ..;-1])
            .unwrap()
            .reshape(&[-1])
            .unwrap();
        let expected: ArrayData = match &data {
            ArrayData::Bool(x) => ArrayData::Bool(chain_oracle(x)),
            ArrayData::I64(x) => ArrayData::I64(chain_oracle(x)),
            ArrayData::F32(x) => ArrayData::F32(chain_oracle(x)),
            ArrayData::F64(x) => ArrayData::F64(chain_oracle(x)),
            ArrayData::C128(x) => ArrayData::C128(chain_oracle(x)),
            ArrayData::I32(x) => ArrayData::I32(chain_oracle(x)),
            ArrayData::U8(x) => ArrayData::U8(chain_oracle(x)),
            ArrayData::U64(x) => ArrayData::U64(chain_oracle(x)),
        };
        check_data(&t, &expected);
        let r = a.rechunk([5, 5]).unwrap();
        check_data(&r, &data);
    }
}

fn chain_oracle<T: Clone>(x: &ArrayD<T>) -> ArrayD<T> {
    let t = x.t().to_owned();
    let s = oracle_slice(&t, s![1..7;2, ..;-1].as_ref());
    let n = s.len();
    oracle_reshape(&s, &[n])
}

#[test]
fn matmul_of_literal_matrices() {
    let a = arr2(&[[1i64, 2, 3], [4, 5, 6]]).into_dyn();
    let b = arr2(&[[7i64, 8], [9, 10], [11, 12]]).into_dyn();
    let c = from_array(a, [1, 2])
        .unwrap()
        .matmul(&from_array(b, [2, 1]).unwrap())
        .unwrap();
    check(&c, &arr2(&[[58i64, 64], [139, 154]]).into_dyn());
}

#[test]
fn structure_ops_on_empty_and_zero_d_arrays() {
    let e = ArrayD::<f64>::zeros(IxDyn(&[0, 5]));
    let le = from_array(e.clone(), [2, 2]).unwrap();
    check(&le.t(), &e.t().to_owned());
    check(
        &le.slice(s![.., 1..3]).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0, 2])),
    );
    check(
        &le.slice(s![.., 4]).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0])),
    );
    assert!(matches!(
        le.slice(s![0, ..]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    check(
        &stack(&[&le, &le], 1).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0, 2, 5])),
    );
    // Empty outer dimensions of a matrix product.
    let b = from_array(sample::<f64>(&[5, 3], 1), [2, 2]).unwrap();
    check(
        &le.matmul(&b).unwrap(),
        &ArrayD::<f64>::zeros(IxDyn(&[0, 3])),
    );
    // map_blocks sees the empty chunk.
    check(
        &le.map_blocks(|c: ArrayViewD<f64>| c.mapv(|v| v + 1.0))
            .unwrap(),
        &e,
    );
    // 0-d arrays through every structural op that accepts them.
    let z = from_array(ArrayD::from_elem(IxDyn(&[]), 6.5f64), [0usize; 0]).unwrap();
    assert_eq!(z.t().id(), z.id());
    check(
        &z.reshape(&[1, 1, 1]).unwrap(),
        &ArrayD::from_elem(IxDyn(&[1, 1, 1]), 6.5),
    );
    check(
        &z.rechunk([0usize; 0]).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), 6.5),
    );
    check(
        &z.map_blocks(|c: ArrayViewD<f64>| c.mapv(|v| v * 2.0))
            .unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), 13.0),
    );
    check(&z.persist().unwrap(), &ArrayD::from_elem(IxDyn(&[]), 6.5));
}

#[test]
fn four_d_slices_transposes_and_reshapes_compose() {
    let x = sample::<f64>(&[3, 4, 5, 6], 70);
    for (name, spec) in chunkings(&[3, 4, 5, 6]) {
        let a = from_array(x.clone(), spec).unwrap();
        let chain = a
            .permute_axes(&[2, 0, 3, 1])
            .unwrap()
            .slice(s![..;-2, 1.., 1..6;2, ..])
            .unwrap()
            .reshape(&[-1, 4])
            .unwrap();
        let t = x.view().permuted_axes(IxDyn(&[2, 0, 3, 1])).to_owned();
        let sl = oracle_slice(&t, s![..;-2, 1.., 1..6;2, ..].as_ref());
        let n = sl.len();
        let expected = oracle_reshape(&sl, &[n / 4, 4]);
        in_context(name, || check(&chain, &expected));
        in_context(name, || {
            check(
                &chain.mean_axis(0).unwrap(),
                &reduce_lanes(&expected, &[0], false, |l| {
                    l.iter().sum::<f64>() / l.len() as f64
                }),
            )
        });
    }
}
