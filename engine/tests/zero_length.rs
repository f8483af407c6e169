//! Zero-length chunks on a non-empty axis (`[5, 0, 5]`), as dask allows: creation with explicit
//! chunks, rechunk to and from them, slicing, elementwise math and broadcasting, reductions (an empty
//! chunk's partial is the identity of sum/prod and is skipped by min/max/mean/var/arg*), cumulative
//! sums, concatenate, transpose, matmul, take and masks — each against plain ndarray.

mod common;

use common::*;
use ndarray::{ArrayD, Axis, IxDyn};
use tessera::{ChunkSpec, ReduceOptions, concatenate, from_array};

fn grid_1d() -> ChunkSpec {
    ChunkSpec::Explicit(vec![vec![0, 5, 0, 0, 5, 0]])
}

fn grid_2d() -> ChunkSpec {
    ChunkSpec::Explicit(vec![vec![3, 0, 4], vec![0, 2, 0, 3]])
}

#[test]
fn creation_keeps_the_empty_chunks_and_computes() {
    let a = sample::<f64>(&[10], 1);
    let x = from_array(a.clone(), grid_1d()).unwrap();
    assert_eq!(x.chunks().axis(0), &[0, 5, 0, 0, 5, 0]);
    check(&x, &a);
    let b = sample::<i64>(&[7, 5], 2);
    let y = from_array(b.clone(), grid_2d()).unwrap();
    assert_eq!(y.numblocks(), vec![3, 4]);
    check(&y, &b);
    // Still rejected: chunks that do not add up.
    assert!(from_array(a, ChunkSpec::Explicit(vec![vec![5, 0, 4]])).is_err());
}

#[test]
fn rechunk_to_and_from_empty_chunks() {
    let a = sample::<f64>(&[7, 5], 3);
    let x = from_array(a.clone(), [2, 2]).unwrap();
    let y = x.rechunk(grid_2d()).unwrap();
    assert_eq!(y.chunks().axis(1), &[0, 2, 0, 3]);
    check(&y, &a);
    let z = y.rechunk([3, 5]).unwrap();
    check(&z, &a);
    let w = y.rechunk(vec![vec![0, 7, 0], vec![5, 0]]).unwrap();
    check(&w, &a);
}

#[test]
fn elementwise_broadcasting_transpose_and_slicing() {
    let a = sample::<f64>(&[7, 5], 4);
    let b = sample::<f64>(&[7, 5], 5);
    let x = from_array(a.clone(), grid_2d()).unwrap();
    let y = from_array(b.clone(), [4, 3]).unwrap();
    check(&(&x + &y), &(&a + &b));
    check(&(&x * 2.0).sin().unwrap(), &a.mapv(|v| (v * 2.0).sin()));
    let row = sample::<f64>(&[5], 6);
    let r = from_array(row.clone(), ChunkSpec::Explicit(vec![vec![2, 0, 3]])).unwrap();
    check(&(&x - &r), &(&a - &row));
    check(&x.t(), &a.t().to_owned());
    let s = x.slice(tessera::s![1..6, ..;2]).unwrap();
    check(&s, &a.slice(ndarray::s![1..6, ..;2]).to_owned().into_dyn());
}

#[test]
fn reductions_skip_or_absorb_empty_chunks() {
    let a = sample::<f64>(&[7, 5], 7);
    let x = from_array(a.clone(), grid_2d()).unwrap();
    let tol = TOL_F64;
    check_tol(
        &x.sum().unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), a.sum()),
        tol,
    );
    check_tol(
        &x.prod().unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), a.iter().product::<f64>()),
        tol,
    );
    let min = a.iter().copied().fold(f64::INFINITY, f64::min);
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    check(&x.min().unwrap(), &ArrayD::from_elem(IxDyn(&[]), min));
    check(&x.max().unwrap(), &ArrayD::from_elem(IxDyn(&[]), max));
    check_tol(
        &x.mean().unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), a.mean().unwrap()),
        tol,
    );
    let var = a.var(0.0);
    check_tol(&x.var().unwrap(), &ArrayD::from_elem(IxDyn(&[]), var), tol);
    for axis in 0..2 {
        let opts = ReduceOptions::axis(axis as isize);
        check_tol(&x.sum_with(&opts).unwrap(), &a.sum_axis(Axis(axis)), tol);
        check_tol(
            &x.mean_with(&opts).unwrap(),
            &a.mean_axis(Axis(axis)).unwrap(),
            tol,
        );
        let m = a.map_axis(Axis(axis), |l| {
            l.iter().copied().fold(f64::INFINITY, f64::min)
        });
        check(&x.min_with(&opts).unwrap(), &m);
        let am = a.map_axis(Axis(axis), |l| arg_best(l.to_vec().as_slice(), true));
        check(&x.argmin_axis(axis as isize).unwrap(), &am);
    }
    // A tree reduction whose groups are all empty chunks.
    let opts = ReduceOptions::axis(1).split_every(2);
    check_tol(&x.sum_with(&opts).unwrap(), &a.sum_axis(Axis(1)), tol);
    check_tol(
        &x.max_with(&opts).unwrap(),
        &a.map_axis(Axis(1), |l| {
            l.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }),
        tol,
    );
}

#[test]
fn cumsum_concatenate_matmul_take() {
    let a = sample::<f64>(&[7, 5], 8);
    let x = from_array(a.clone(), grid_2d()).unwrap();
    let mut c = a.clone();
    c.accumulate_axis_inplace(Axis(1), |&p, q| *q += p);
    check_tol(&x.cumsum(Some(1)).unwrap(), &c, TOL_F64);
    let y = from_array(a.clone(), [7, 5]).unwrap();
    let cat = concatenate(&[&x, &y], 0).unwrap();
    check(
        &cat,
        &ndarray::concatenate(Axis(0), &[a.view(), a.view()]).unwrap(),
    );
    let b = sample::<f64>(&[5, 4], 9);
    let bx = from_array(
        b.clone(),
        ChunkSpec::Explicit(vec![vec![0, 2, 0, 3], vec![4]]),
    )
    .unwrap();
    let p = x.matmul(&bx).unwrap();
    check_tol(&p, &oracle_matmul(&a, &b), TOL_F64);
    let t = x.take(&[6, 0, 3, 3], 0).unwrap();
    check(&t, &a.select(Axis(0), &[6, 0, 3, 3]));
    let m = a.mapv(|v| v > 0.3);
    let mx = from_array(m.clone(), grid_2d()).unwrap();
    let sel: Vec<f64> = a
        .iter()
        .zip(m.iter())
        .filter(|(_, b)| **b)
        .map(|(v, _)| *v)
        .collect();
    check(
        &x.mask_select(&mx).unwrap(),
        &ArrayD::from_shape_vec(IxDyn(&[sel.len()]), sel).unwrap(),
    );
}

#[test]
fn overlap_along_an_axis_next_to_empty_chunks() {
    use tessera::Boundary;
    let a = sample::<f64>(&[7, 7], 10);
    let x = from_array(
        a.clone(),
        ChunkSpec::Explicit(vec![vec![3, 0, 4], vec![2, 2, 3]]),
    )
    .unwrap();
    for mode in [
        Boundary::Periodic,
        Boundary::None,
        Boundary::Constant(0.5.into()),
    ] {
        let g = x.overlap(&[0, 1], &[mode]).unwrap();
        assert_eq!(g.chunks().axis(0), &[3, 0, 4]);
        let t = g.trim_internal(&[0, 1], &[mode]).unwrap();
        check(&t, &a);
    }
    // Depth along the axis with the empty chunk: the smallest chunk there is 0, so rechunk first.
    assert!(x.overlap(&[1, 0], &[Boundary::Reflect]).is_err());
}
