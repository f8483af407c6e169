//! dask's `overlap`, `trim_internal` and `map_overlap`: every grown block checked against a window
//! of the whole array padded with plain ndarray indexing, stencils (3-point and 5-point moving sums,
//! an n-d box sum) checked against the same stencil computed on the whole array, for every boundary,
//! on regular, irregular and single-chunk grids, in 1 to 3 dimensions; the reads of a task; errors.

mod common;

use common::*;
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn, arr1};
use tessera::{Array, Boundary, ChunkSpec, DType, Error, Scalar, from_array};

const MODES: [Boundary; 5] = [
    Boundary::Reflect,
    Boundary::Periodic,
    Boundary::Nearest,
    Boundary::None,
    Boundary::Constant(Scalar::F64(-7.0)),
];

/// The element at global position `g` (possibly outside the array) along an axis of length `n`,
/// as numpy's pad modes define it: `Some(source index)`, or `None` for the constant.
fn source(g: isize, n: usize, mode: Boundary) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&g) {
        return Some(g as usize);
    }
    match mode {
        // numpy's "symmetric": ..., x1, x0 | x0, x1, ...
        Boundary::Reflect => {
            let m = g.rem_euclid(2 * n);
            Some(if m < n { m } else { 2 * n - 1 - m } as usize)
        }
        Boundary::Periodic => Some(g.rem_euclid(n) as usize),
        Boundary::Nearest => Some(if g < 0 { 0 } else { n as usize - 1 }),
        Boundary::Constant(_) | Boundary::None => None,
    }
}

/// The whole array padded by `depth` on every side with `mode` (the constant as `fill`).
fn pad<T: Clone>(a: &ArrayD<T>, depth: &[usize], modes: &[Boundary], fill: T) -> ArrayD<T> {
    let shape: Vec<usize> = a
        .shape()
        .iter()
        .zip(depth)
        .map(|(n, d)| n + 2 * d)
        .collect();
    ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let mut at = Vec::new();
        for axis in 0..a.ndim() {
            let g = ix[axis] as isize - depth[axis] as isize;
            match source(g, a.shape()[axis], modes[axis]) {
                Some(s) => at.push(s),
                None => return fill.clone(),
            }
        }
        a[IxDyn(&at)].clone()
    })
}

/// The expected grown block `block` of an overlap: a window of the padded array.
fn expected_block<T: Clone>(
    padded: &ArrayD<T>,
    chunks: &[Vec<usize>],
    depth: &[usize],
    modes: &[Boundary],
    block: &[usize],
) -> ArrayD<T> {
    let mut v = padded.view();
    for axis in 0..chunks.len() {
        let start: usize = chunks[axis][..block[axis]].iter().sum();
        let end = start + chunks[axis][block[axis]];
        let n = chunks[axis].len();
        let d = depth[axis];
        let none = modes[axis] == Boundary::None;
        let lo = if none && block[axis] == 0 {
            start + d
        } else {
            start
        };
        let hi = if none && block[axis] + 1 == n {
            end + d
        } else {
            end + 2 * d
        };
        v.slice_axis_inplace(ndarray::Axis(axis), ndarray::Slice::from(lo..hi));
    }
    v.to_owned()
}

/// Checks every block of `x.overlap(depth, modes)` against the padded oracle.
#[track_caller]
fn check_overlap<T: tessera::Element + Clone + PartialEq + std::fmt::Debug>(
    a: &ArrayD<T>,
    chunks: ChunkSpec,
    depth: &[usize],
    modes: &[Boundary],
    fill: T,
) {
    let x = from_array(a.clone(), chunks).unwrap();
    let y = x.overlap(depth, modes).unwrap();
    let nd = a.ndim();
    let depth: &[usize] = &(0..nd)
        .map(|i| depth[i.min(depth.len() - 1)])
        .collect::<Vec<_>>();
    let modes: &[Boundary] = &(0..nd)
        .map(|i| modes[i.min(modes.len() - 1)])
        .collect::<Vec<_>>();
    let sizes = x.chunks().sizes().to_vec();
    let padded = pad(a, depth, modes, fill);
    let got = y.compute::<T>().unwrap();
    let ysizes = y.chunks().sizes().to_vec();
    assert_eq!(got.shape(), y.shape().to_vec().as_slice());
    for block in ndarray::indices(x.numblocks()).into_iter() {
        let block: Vec<usize> = block.slice().to_vec();
        let want = expected_block(&padded, &sizes, depth, modes, &block);
        let mut v = got.view();
        for axis in 0..block.len() {
            let s: usize = ysizes[axis][..block[axis]].iter().sum();
            let e = s + ysizes[axis][block[axis]];
            v.slice_axis_inplace(ndarray::Axis(axis), ndarray::Slice::from(s..e));
        }
        assert_eq!(
            v.to_owned(),
            want,
            "block {block:?} of {x:?} overlapped by {depth:?} with {modes:?}"
        );
    }
}

#[test]
fn known_values_in_one_dimension() {
    let x = tessera::arange(0i64, 6, 1, [3]).unwrap();
    let cases: [(Boundary, Vec<i64>); 5] = [
        (Boundary::Reflect, vec![0, 0, 1, 2, 3, 2, 3, 4, 5, 5]),
        (Boundary::Periodic, vec![5, 0, 1, 2, 3, 2, 3, 4, 5, 0]),
        (Boundary::Nearest, vec![0, 0, 1, 2, 3, 2, 3, 4, 5, 5]),
        (Boundary::None, vec![0, 1, 2, 3, 2, 3, 4, 5]),
        (
            Boundary::Constant(Scalar::I64(9)),
            vec![9, 0, 1, 2, 3, 2, 3, 4, 5, 9],
        ),
    ];
    for (mode, want) in cases {
        let y = x.overlap(&[1], &[mode]).unwrap();
        assert_eq!(
            y.compute::<i64>().unwrap(),
            arr1(&want).into_dyn(),
            "{mode:?}"
        );
    }
    // Depth 2 shows reflect and nearest apart.
    let y = x.overlap(&[2], &[Boundary::Reflect]).unwrap();
    assert_eq!(y.chunks().axis(0), &[7, 7]);
    let v = y.compute::<i64>().unwrap().into_raw_vec_and_offset().0;
    assert_eq!(v, vec![1, 0, 0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 5, 4]);
    let y = x.overlap(&[2], &[Boundary::Nearest]).unwrap();
    let v = y.compute::<i64>().unwrap().into_raw_vec_and_offset().0;
    assert_eq!(v, vec![0, 0, 0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 5, 5]);
}

#[test]
fn every_block_matches_the_padded_array() {
    let a1 = sample::<f64>(&[17], 1);
    let a2 = sample::<i64>(&[11, 9], 2);
    let a3 = sample::<f64>(&[6, 7, 5], 3);
    for &mode in &MODES {
        for (chunks, depth) in [
            (ChunkSpec::Block(vec![6]), 2),
            (ChunkSpec::Explicit(vec![vec![3, 5, 2, 4, 3]]), 2),
            (ChunkSpec::Block(vec![17]), 3),
            (ChunkSpec::Block(vec![5]), 1),
        ] {
            check_overlap(&a1, chunks, &[depth], &[mode], -7.0);
        }
        let imode = match mode {
            Boundary::Constant(_) => Boundary::Constant(Scalar::I64(-7)),
            m => m,
        };
        for (chunks, depth) in [
            (
                ChunkSpec::Explicit(vec![vec![3, 4, 4], vec![2, 3, 2, 2]]),
                vec![2, 1],
            ),
            (ChunkSpec::Block(vec![11, 3]), vec![0, 3]),
            (ChunkSpec::Block(vec![4, 9]), vec![3, 2]),
        ] {
            check_overlap(&a2, chunks, &depth, &[imode], -7);
        }
        check_overlap(
            &a3,
            ChunkSpec::Block(vec![2, 3, 2]),
            &[1, 1, 1],
            &[mode],
            -7.0,
        );
    }
    // A boundary per axis.
    check_overlap(
        &a2,
        ChunkSpec::Block(vec![4, 3]),
        &[2, 1],
        &[Boundary::Periodic, Boundary::None],
        0,
    );
    check_overlap(
        &a3,
        ChunkSpec::Explicit(vec![vec![3, 3], vec![2, 2, 3], vec![5]]),
        &[1, 2, 2],
        &[
            Boundary::Reflect,
            Boundary::Constant(Scalar::F64(0.5)),
            Boundary::Nearest,
        ],
        0.5,
    );
}

#[test]
fn every_dtype_and_a_constant_cast_to_it() {
    let b = sample::<bool>(&[9, 4], 4);
    check_overlap(
        &b,
        ChunkSpec::Block(vec![3, 2]),
        &[1],
        &[Boundary::Periodic],
        false,
    );
    let x = from_array(b.clone(), [3, 2]).unwrap();
    let y = x
        .overlap(&[1], &[Boundary::Constant(Scalar::I64(1))])
        .unwrap();
    assert_eq!(y.dtype(), DType::Bool);
    check_overlap(
        &b,
        ChunkSpec::Block(vec![3, 2]),
        &[1],
        &[Boundary::Constant(Scalar::Bool(true))],
        true,
    );
    let f = sample::<f32>(&[11], 5);
    check_overlap(
        &f,
        ChunkSpec::Block(vec![3]),
        &[2],
        &[Boundary::Reflect],
        0.0,
    );
    let x = from_array(f, [3]).unwrap();
    let y = x
        .overlap(&[1], &[Boundary::Constant(Scalar::F64(2.5))])
        .unwrap();
    let v = y.compute::<f32>().unwrap();
    assert_eq!(v[[0]], 2.5f32);
}

/// A moving sum of width `2 * half + 1` along `axis`, over the positions inside the block.
fn moving_sum(b: ArrayViewD<f64>, axis: usize, half: usize) -> ArrayD<f64> {
    let n = b.shape()[axis] as isize;
    ArrayD::from_shape_fn(b.raw_dim(), |ix| {
        let mut s = 0.0;
        let mut j = ix.slice().to_vec();
        for k in -(half as isize)..=half as isize {
            let p = ix[axis] as isize + k;
            if (0..n).contains(&p) {
                j[axis] = p as usize;
                s += b[IxDyn(&j)];
            }
        }
        s
    })
}

/// The same moving sum on the whole array, with the boundary's values outside it (none: nothing).
fn moving_sum_oracle(a: &ArrayD<f64>, axis: usize, half: usize, mode: Boundary) -> ArrayD<f64> {
    let n = a.shape()[axis];
    ArrayD::from_shape_fn(a.raw_dim(), |ix| {
        let mut s = 0.0;
        let mut j = ix.slice().to_vec();
        for k in -(half as isize)..=half as isize {
            match (source(ix[axis] as isize + k, n, mode), mode) {
                (Some(p), _) => {
                    j[axis] = p;
                    s += a[IxDyn(&j)];
                }
                (None, Boundary::Constant(c)) => s += c.as_f64(),
                (None, _) => {}
            }
        }
        s
    })
}

#[test]
fn map_overlap_moving_sums_match_the_whole_array() {
    let a = sample::<f64>(&[23], 6);
    for &mode in &MODES {
        for chunks in [
            ChunkSpec::Block(vec![5]),
            ChunkSpec::Explicit(vec![vec![2, 7, 3, 2, 9]]),
            ChunkSpec::Block(vec![23]),
        ] {
            for half in [1usize, 2] {
                let x = from_array(a.clone(), chunks.clone()).unwrap();
                let y = x
                    .map_overlap(move |b| moving_sum(b, 0, half), &[half], &[mode], true)
                    .unwrap();
                assert_eq!(y.chunks(), x.chunks());
                check_tol(&y, &moving_sum_oracle(&a, 0, half, mode), TOL_F64);
            }
        }
    }
    // 2-D and 3-D: a moving sum along one axis with depth only there, and along another with depth
    // on every axis.
    let a2 = sample::<f64>(&[13, 10], 7);
    let a3 = sample::<f64>(&[6, 9, 4], 8);
    for &mode in &MODES {
        let x = from_array(a2.clone(), vec![vec![4, 4, 5], vec![3, 2, 5]]).unwrap();
        let y = x
            .map_overlap(|b| moving_sum(b, 1, 2), &[0, 2], &[mode], true)
            .unwrap();
        check_tol(&y, &moving_sum_oracle(&a2, 1, 2, mode), TOL_F64);
        let x = from_array(a3.clone(), [2, 3, 2]).unwrap();
        let y = x
            .map_overlap(|b| moving_sum(b, 0, 1), &[1], &[mode], true)
            .unwrap();
        check_tol(&y, &moving_sum_oracle(&a3, 0, 1, mode), TOL_F64);
    }
}

#[test]
fn box_sum_in_two_dimensions_reads_diagonal_neighbours() {
    // A 3x3 box sum needs the corner of the diagonal neighbour block.
    let a = sample::<f64>(&[10, 11], 9);
    for &mode in &MODES {
        let x = from_array(a.clone(), vec![vec![3, 4, 3], vec![5, 2, 4]]).unwrap();
        let y = x
            .map_overlap(
                |b| moving_sum(moving_sum(b, 0, 1).view(), 1, 1),
                &[1, 1],
                &[mode],
                true,
            )
            .unwrap();
        let want = match mode {
            // A constant outside: the box sum of the padded array, not two separable sums.
            Boundary::Constant(c) => {
                let p = pad(&a, &[1, 1], &[mode, mode], c.as_f64());
                ArrayD::from_shape_fn(a.raw_dim(), |ix| {
                    let mut s = 0.0;
                    for di in 0..3 {
                        for dj in 0..3 {
                            s += p[[ix[0] + di, ix[1] + dj]];
                        }
                    }
                    s
                })
            }
            _ => moving_sum_oracle(&moving_sum_oracle(&a, 0, 1, mode), 1, 1, mode),
        };
        check_tol(&y, &want, TOL_F64);
    }
}

#[test]
fn trim_internal_undoes_overlap_and_map_overlap_without_trim_keeps_margins() {
    let a = sample::<i64>(&[12, 7], 10);
    for &mode in &MODES {
        let mode = match mode {
            Boundary::Constant(_) => Boundary::Constant(Scalar::I64(3)),
            m => m,
        };
        let x = from_array(a.clone(), vec![vec![5, 4, 3], vec![3, 4]]).unwrap();
        let g = x.overlap(&[2, 1], &[mode]).unwrap();
        let t = g.trim_internal(&[2, 1], &[mode]).unwrap();
        assert_eq!(t.chunks(), x.chunks());
        check(&t, &a);
        let m = x
            .map_overlap(
                |b: ArrayViewD<i64>| b.mapv(|v| v * 2),
                &[2, 1],
                &[mode],
                false,
            )
            .unwrap();
        assert_eq!(m.chunks(), g.chunks());
        check(&m, &g.compute::<i64>().unwrap().mapv(|v| v * 2));
    }
}

#[test]
fn a_task_reads_only_its_neighbours() {
    let x = from_array(sample::<f64>(&[20], 11), [4]).unwrap();
    let reads = |y: &Array, b: u32| -> Vec<u32> {
        let g = y.graph();
        let layer = g.layers().last().unwrap().clone();
        let input = x.graph().layers().last().unwrap().meta.clone();
        let mut out = Vec::new();
        layer.op.deps(&layer, &[&input], &[b], &mut out);
        out.into_iter().map(|(_, blk)| blk[0]).collect()
    };
    let y = x.overlap(&[2], &[Boundary::Reflect]).unwrap();
    assert_eq!(reads(&y, 2), vec![1, 2, 3]);
    assert_eq!(reads(&y, 0), vec![0, 1]);
    let y = x.overlap(&[2], &[Boundary::Periodic]).unwrap();
    assert_eq!(reads(&y, 0), vec![0, 1, 4]);
    assert_eq!(reads(&y, 4), vec![0, 3, 4]);
    let y = x.overlap(&[2], &[Boundary::None]).unwrap();
    assert_eq!(reads(&y, 4), vec![3, 4]);
    // In 2-D an inner block reads its 3x3 neighbourhood, never more.
    let x2 = from_array(sample::<f64>(&[12, 12], 12), [4, 4]).unwrap();
    let y = x2.overlap(&[1, 1], &[Boundary::Nearest]).unwrap();
    let g = y.graph();
    let layer = g.layers().last().unwrap().clone();
    let mut out = Vec::new();
    layer.op.deps(
        &layer,
        &[&x2.graph().layers().last().unwrap().meta],
        &[1, 1],
        &mut out,
    );
    assert_eq!(out.len(), 9);
    assert!(out.iter().all(|(_, b)| b.iter().all(|&i| i <= 2)));
}

#[test]
fn depth_larger_than_a_chunk_says_to_rechunk() {
    let x = from_array(sample::<f64>(&[10], 13), vec![vec![4, 2, 4]]).unwrap();
    match x.overlap(&[3], &[Boundary::Reflect]) {
        Err(Error::InvalidArgument {
            op: "overlap",
            reason,
        }) => {
            assert!(reason.contains("depth 3 on axis 0"), "{reason}");
            assert!(reason.contains("smallest chunk there (2"), "{reason}");
            assert!(reason.contains("rechunk"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // After the rechunk the hint asks for, it works.
    let y = x
        .rechunk([5])
        .unwrap()
        .overlap(&[3], &[Boundary::Reflect])
        .unwrap();
    assert_eq!(y.chunks().axis(0), &[11, 11]);
    // Wrong numbers of entries.
    assert!(matches!(
        x.overlap(&[1, 1], &[Boundary::Reflect]),
        Err(Error::InvalidArgument { op: "overlap", .. })
    ));
    assert!(matches!(
        x.trim_internal(&[1], &[Boundary::Reflect, Boundary::None]),
        Err(Error::InvalidArgument {
            op: "trim_internal",
            ..
        })
    ));
    // Trimming more than a chunk holds.
    match x.trim_internal(&[2], &[Boundary::Reflect]) {
        Err(Error::InvalidLayer { reason, .. }) => {
            assert!(reason.contains("trims 4 elements from chunk 1"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn zero_depth_and_zero_d_are_the_input() {
    let x = from_array(sample::<f64>(&[7], 14), [3]).unwrap();
    assert_eq!(x.overlap(&[0], &[Boundary::Reflect]).unwrap().id(), x.id());
    let s = x.sum().unwrap();
    let y = s.overlap(&[1], &[Boundary::Periodic]).unwrap();
    assert_eq!(y.id(), s.id());
}
