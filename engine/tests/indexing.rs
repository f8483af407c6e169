//! `take` (integer-array indexing along an axis) driven the way a user calls it, against ndarray's
//! `select` on regular, irregular and single-chunk chunkings, with repeats, negative and unsorted
//! indices, empty index lists, every dtype, and the errors for bad indices and axes; point indexing
//! (`vindex`) and `take_along_axis` against per-element loops over plain ndarray arrays on regular,
//! irregular, zero-length-chunk, 0-d and empty cases, with proptest over shapes and chunkings.

mod common;

use common::{assert_array_eq, chunkings, sample};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use tessera::{ChunkSpec, DType, Error, from_array, take_along_axis};

fn data(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        (0..shape.len()).fold(0.0, |acc, d| acc * 31.0 + ix[d] as f64 + 0.25)
    })
}

fn oracle(x: &ArrayD<f64>, indices: &[i64], axis: usize) -> ArrayD<f64> {
    let len = x.shape()[axis] as i64;
    let idx: Vec<usize> = indices
        .iter()
        .map(|&i| if i < 0 { i + len } else { i } as usize)
        .collect();
    x.select(Axis(axis), &idx)
}

#[test]
fn take_matches_select_on_every_chunking() {
    let x = data(&[13, 9, 5]);
    let index_lists: [&[i64]; 5] = [
        &[0, 12, 5, 5, -1, 3],
        &[8, 7, 6, 5, 4, 3, 2, 1, 0],
        &[2],
        &[],
        &[-13, 12, 0, 0, 0, 11, 1, 10, 2, 9, 3, 8, 4, 7],
    ];
    for chunks in [vec![4, 4, 5], vec![13, 9, 5], vec![1, 2, 3], vec![6, 9, 1]] {
        let a = from_array(x.clone(), chunks.clone()).unwrap();
        for axis in 0..3 {
            for &indices in &index_lists {
                let in_range: Vec<i64> = indices
                    .iter()
                    .copied()
                    .filter(|&i| i < x.shape()[axis] as i64 && i >= -(x.shape()[axis] as i64))
                    .collect();
                let y = a.take(&in_range, axis as isize).unwrap();
                let got = y.compute::<f64>().unwrap();
                assert_eq!(
                    got,
                    oracle(&x, &in_range, axis),
                    "chunks {chunks:?} axis {axis} indices {in_range:?}"
                );
                // Other chunks are kept; the taken axis is cut into pieces no larger than the input's.
                for (d, c) in y.chunks().sizes().iter().enumerate() {
                    if d != axis {
                        assert_eq!(c, a.chunks().axis(d));
                    }
                }
            }
        }
    }
}

#[test]
fn take_feeds_further_work_and_other_dtypes() {
    let x = data(&[20, 6]);
    let a = from_array(x.clone(), [7, 4]).unwrap();
    let idx = [19i64, 0, 7, 7, 13];
    // A reduction over the taken rows.
    let s = a
        .take(&idx, 0)
        .unwrap()
        .sum_axis(0)
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert_eq!(s, oracle(&x, &idx, 0).sum_axis(Axis(0)));
    // int64 and bool.
    let i = tessera::arange(0i64, 40, 1, [9]).unwrap();
    let got = i.take(&[39, 0, 8, 9], 0).unwrap().compute::<i64>().unwrap();
    assert_eq!(got.into_raw_vec_and_offset().0, vec![39, 0, 8, 9]);
    let b = i.gt(20i64).unwrap();
    let got = b.take(&[21, 20], 0).unwrap().compute::<bool>().unwrap();
    assert_eq!(got.into_raw_vec_and_offset().0, vec![true, false]);
}

#[test]
fn a_task_reads_only_the_chunks_holding_its_indices() {
    let x = data(&[100]);
    let a = from_array(x, [10]).unwrap();
    // All indices in chunk 3: the graph after culling holds one input chunk.
    let y = a.take(&[31, 35, 39], 0).unwrap();
    let (_, stats) =
        tessera::compute_many_with_stats(&[&y], &tessera::LocalExecutor::with_threads(1).unwrap())
            .unwrap();
    // One source chunk and the take (the optimizer may fuse them into fewer).
    assert!(stats.tasks <= 2, "{stats:?}");
}

#[test]
fn bad_indices_and_axes_are_refused() {
    let a = from_array(data(&[5, 4]), [2, 2]).unwrap();
    match a.take(&[0, 5], 0) {
        Err(Error::IndexOutOfBounds { index, axis, len }) => {
            assert_eq!((index, axis, len), (5, 0, 5))
        }
        other => panic!("{other:?}"),
    }
    match a.take(&[-5], 1) {
        Err(e @ Error::IndexOutOfBounds { .. }) => {
            assert!(
                e.to_string()
                    .contains("index -5 is out of bounds for axis 1 of length 4")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.take(&[0], 2),
        Err(Error::AxisOutOfBounds { .. })
    ));
}

#[test]
fn repeat_compress_and_delete_match_numpy() {
    let x = data(&[7, 4]);
    let a = from_array(x.clone(), [3, 3]).unwrap();
    // repeat along an axis and flattened.
    let got = a.repeat(3, Some(1)).unwrap().compute::<f64>().unwrap();
    let idx: Vec<usize> = (0..4).flat_map(|i| [i, i, i]).collect();
    assert_eq!(got, x.select(Axis(1), &idx));
    let flat: Vec<f64> = x.iter().flat_map(|&v| [v, v]).collect();
    let got = a.repeat(2, None).unwrap().compute::<f64>().unwrap();
    assert_eq!(got.into_raw_vec_and_offset().0, flat);
    let got = a
        .repeat_each(&[0, 2, 1, 0, 0, 3, 1], Some(0))
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert_eq!(got, x.select(Axis(0), &[1, 1, 2, 5, 5, 5, 6]));
    assert!(matches!(
        a.repeat_each(&[1, 2], Some(0)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(a.repeat(0, Some(0)).unwrap().shape(), &[0, 4]);
    // compress with a short condition, and flattened.
    let got = a
        .compress(&[false, true, true, false, true], Some(0))
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert_eq!(got, x.select(Axis(0), &[1, 2, 4]));
    let got = a.compress(&[true, false, false, true], None).unwrap();
    let flat: Vec<f64> = x.iter().copied().collect();
    assert_eq!(
        got.compute::<f64>().unwrap().into_raw_vec_and_offset().0,
        vec![flat[0], flat[3]]
    );
    assert!(matches!(
        a.compress(&[true; 5], Some(1)),
        Err(Error::ShapeMismatch { .. })
    ));
    // delete, with negative and repeated indices.
    let got = a
        .delete(&[0, -1, 3, 3], Some(0))
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert_eq!(got, x.select(Axis(0), &[1, 2, 4, 5]));
    assert!(matches!(
        a.delete(&[4], Some(1)),
        Err(Error::IndexOutOfBounds { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// point indexing (vindex)

/// numpy's `x[idx0, idx1, ...]`: the index arrays broadcast to one shape, then for each point (C
/// order) the sub-array at its coordinates, written as plain loops.
fn vindex_oracle<T: Clone>(x: &ArrayD<T>, idx: &[ArrayD<i64>]) -> ArrayD<T> {
    let rank = idx.iter().map(|a| a.ndim()).max().unwrap();
    let mut shape = vec![1usize; rank];
    for a in idx {
        for (k, &n) in a.shape().iter().enumerate() {
            let d = rank - a.ndim() + k;
            if n != 1 {
                shape[d] = n;
            }
        }
    }
    let rest: Vec<usize> = x.shape()[idx.len()..].to_vec();
    let points: usize = shape.iter().product();
    let mut values = Vec::new();
    for p in 0..points {
        // The point's multi-index in the broadcast shape.
        let mut m = vec![0usize; rank];
        let mut q = p;
        for d in (0..rank).rev() {
            m[d] = q % shape[d];
            q /= shape[d];
        }
        let mut sub = x.view();
        for (axis, a) in idx.iter().enumerate() {
            let at: Vec<usize> = (0..a.ndim())
                .map(|k| {
                    let d = rank - a.ndim() + k;
                    if a.shape()[k] == 1 { 0 } else { m[d] }
                })
                .collect();
            let i = a[IxDyn(&at)];
            let len = x.shape()[axis] as i64;
            let j = if i < 0 { i + len } else { i } as usize;
            sub = sub.index_axis_move(Axis(0), j);
        }
        values.extend(sub.iter().cloned());
    }
    shape.extend(rest);
    ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
}

fn ix(shape: &[usize], v: &[i64]) -> ArrayD<i64> {
    ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
}

#[test]
fn vindex_matches_fancy_indexing_on_every_chunking() {
    let x = data(&[9, 7, 4]);
    let cases: Vec<Vec<ArrayD<i64>>> = vec![
        // One 1-D index array (like take along axis 0), with repeats and negatives.
        vec![ix(&[6], &[8, 0, -1, 3, 3, -9])],
        // Two, broadcast: a column against a row gives a 3×2 grid of points.
        vec![ix(&[3, 1], &[0, 4, -1]), ix(&[2], &[6, -7])],
        // Three (every axis), unsorted, 2-D index shape.
        vec![
            ix(&[2, 2], &[8, 0, 5, 5]),
            ix(&[2, 2], &[1, 6, 2, 2]),
            ix(&[1], &[-1]),
        ],
        // 0-d index arrays: the result is the remaining axes.
        vec![ix(&[], &[4]), ix(&[], &[-2])],
        // No points.
        vec![ix(&[0], &[]), ix(&[0], &[])],
    ];
    let zero_length = ChunkSpec::Explicit(vec![vec![4, 0, 5], vec![0, 3, 4, 0], vec![2, 0, 2]]);
    let mut specs: Vec<(&str, ChunkSpec)> = chunkings(x.shape());
    specs.push(("zero-length", zero_length));
    for (name, spec) in specs {
        let a = from_array(x.clone(), spec).unwrap();
        for idx in &cases {
            let got = a.vindex(idx).unwrap();
            let want = vindex_oracle(&x, idx);
            assert_eq!(got.shape(), want.shape(), "{name} {idx:?}");
            assert_eq!(got.compute::<f64>().unwrap(), want, "{name} {idx:?}");
            // The axes not indexed keep their chunks.
            let n = got.ndim();
            let kept = x.ndim() - idx.len();
            for d in 0..kept {
                assert_eq!(
                    got.chunks().axis(n - kept + d),
                    a.chunks().axis(idx.len() + d),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn vindex_takes_slices_vecs_and_every_dtype() {
    let x = tessera::arange(0i64, 24, 1, [5])
        .unwrap()
        .reshape(&[4, 6])
        .unwrap();
    let y = x.vindex(&[vec![3, 0], vec![-1, 2]]).unwrap();
    assert_eq!(
        y.compute::<i64>().unwrap().into_raw_vec_and_offset().0,
        vec![23, 2]
    );
    let y = x.vindex(&[&[1i64, 1][..]]).unwrap();
    assert_eq!(y.shape(), &[2, 6]);
    let base = sample::<i64>(&[6, 5], 3);
    for d in DType::ALL {
        if d == DType::C128 {
            continue;
        }
        let a = tessera::from_array_data(tessera::ArrayData::I64(base.clone()).cast(d), [4, 2])
            .unwrap();
        let idx = [ix(&[3], &[5, -6, 2]), ix(&[3], &[4, 0, 0])];
        let got = a.vindex(&idx).unwrap().compute_dyn().unwrap();
        let want = vindex_oracle(&base, &idx);
        assert_eq!(got, tessera::ArrayData::I64(want).cast(d), "{d}");
    }
    // A vindex feeds further work: a sum over the points.
    let s = from_array(data(&[8, 3]), [3, 2])
        .unwrap()
        .vindex(&[[7i64, 1, 7]])
        .unwrap()
        .sum_axis(0)
        .unwrap()
        .compute::<f64>()
        .unwrap();
    assert_eq!(
        s,
        vindex_oracle(&data(&[8, 3]), &[ix(&[3], &[7, 1, 7])]).sum_axis(Axis(0))
    );
}

#[test]
fn vindex_tasks_read_only_the_chunks_their_points_fall_in() {
    let x = from_array(data(&[100, 100]), [10, 10]).unwrap();
    // Three points in two source chunks out of a hundred.
    let y = x.vindex(&[[5i64, 7, 95], [5, 8, 99]]).unwrap();
    let (_, stats) =
        tessera::compute_many_with_stats(&[&y], &tessera::LocalExecutor::with_threads(1).unwrap())
            .unwrap();
    // Two source chunks and the gather (the optimizer may fuse them into fewer).
    assert!(stats.tasks <= 3, "{stats:?}");
}

#[test]
fn vindex_refuses_bad_indices() {
    let a = from_array(data(&[5, 4]), [2, 2]).unwrap();
    match a.vindex(&[[0i64, 1], [3, 4]]) {
        Err(e @ Error::IndexOutOfBounds { .. }) => assert!(
            e.to_string()
                .contains("index 4 is out of bounds for axis 1 of length 4"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    match a.vindex(&[[-6i64]]) {
        Err(Error::IndexOutOfBounds { index, axis, len }) => {
            assert_eq!((index, axis, len), (-6, 0, 5))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.vindex(&[[0i64], [0], [0]]),
        Err(Error::InvalidArgument { op: "vindex", .. })
    ));
    assert!(matches!(
        a.vindex::<[i64; 1]>(&[]),
        Err(Error::InvalidArgument { op: "vindex", .. })
    ));
    assert!(matches!(
        a.vindex(&[vec![0i64, 1, 2], vec![0, 1]]),
        Err(Error::Broadcast { .. })
    ));
    let s = tessera::from_array(ndarray::arr0(1.0).into_dyn(), ChunkSpec::Block(vec![])).unwrap();
    assert!(s.vindex(&[[0i64]]).is_err());
}

// ---------------------------------------------------------------------------------------------
// take_along_axis

/// numpy's `take_along_axis`: out[m] = x[m with axis replaced by indices[m]], broadcasting each
/// operand's length-1 axes, as loops.
fn take_along_oracle<T: Clone>(x: &ArrayD<T>, idx: &ArrayD<i64>, axis: usize) -> ArrayD<T> {
    let nd = x.ndim();
    let shape: Vec<usize> = (0..nd)
        .map(|d| {
            if d == axis {
                idx.shape()[d]
            } else {
                x.shape()[d].max(idx.shape()[d])
            }
        })
        .collect();
    let len = x.shape()[axis] as i64;
    ArrayD::from_shape_fn(IxDyn(&shape), |m| {
        let im: Vec<usize> = (0..nd)
            .map(|d| if idx.shape()[d] == 1 { 0 } else { m[d] })
            .collect();
        let i = idx[IxDyn(&im)];
        let j = if i < 0 { i + len } else { i } as usize;
        let xm: Vec<usize> = (0..nd)
            .map(|d| {
                if d == axis {
                    j
                } else if x.shape()[d] == 1 {
                    0
                } else {
                    m[d]
                }
            })
            .collect();
        x[IxDyn(&xm)].clone()
    })
}

/// Indices in `-len..len` of `shape`, from a seed.
fn random_indices(shape: &[usize], len: usize, seed: u64) -> ArrayD<i64> {
    let mut rng = common::TestRng::new(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        if len == 0 {
            0
        } else {
            rng.int(-(len as i64), len as i64)
        }
    })
}

#[test]
fn take_along_axis_matches_numpy_on_every_chunking() {
    let x = data(&[7, 6, 5]);
    let zero_length = ChunkSpec::Explicit(vec![vec![3, 0, 4], vec![0, 6], vec![2, 0, 3]]);
    let mut specs: Vec<(&str, ChunkSpec)> = chunkings(x.shape());
    specs.push(("zero-length", zero_length));
    for (name, spec) in specs {
        let a = from_array(x.clone(), spec).unwrap();
        for axis in 0..3 {
            let len = x.shape()[axis];
            // Same shape; longer and shorter along the axis; broadcast on another axis.
            let mut shapes = vec![x.shape().to_vec()];
            let mut longer = x.shape().to_vec();
            longer[axis] = 9;
            shapes.push(longer);
            let mut short = x.shape().to_vec();
            short[axis] = 2;
            short[(axis + 1) % 3] = 1;
            shapes.push(short);
            let mut empty = x.shape().to_vec();
            empty[axis] = 0;
            shapes.push(empty);
            for (k, shape) in shapes.iter().enumerate() {
                let idx = random_indices(shape, len, (axis * 10 + k) as u64);
                let i = from_array(idx.clone(), [3, 2, 4]).unwrap();
                let got = take_along_axis(&a, &i, axis as isize).unwrap();
                let want = take_along_oracle(&x, &idx, axis);
                assert_eq!(got.shape(), want.shape(), "{name} axis {axis} {shape:?}");
                assert_eq!(
                    got.compute::<f64>().unwrap(),
                    want,
                    "{name} axis {axis} {shape:?}"
                );
            }
        }
    }
}

#[test]
fn take_along_axis_of_argsort_is_sort() {
    for (name, spec) in chunkings(&[8, 11]) {
        let base = sample::<f64>(&[8, 11], 17);
        let x = from_array(base.clone(), spec).unwrap();
        for axis in [0isize, 1, -1] {
            let i = x.argsort(axis).unwrap();
            let got = take_along_axis(&x, &i, axis).unwrap();
            let want = x.sort(axis).unwrap();
            assert_eq!(
                got.compute::<f64>().unwrap(),
                want.compute::<f64>().unwrap(),
                "{name} axis {axis}"
            );
        }
    }
}

#[test]
fn take_along_axis_broadcasts_the_values_and_other_dtypes() {
    // The values have length 1 on axis 0, the indices 4: the values broadcast.
    let x = sample::<i64>(&[1, 6], 2);
    let idx = random_indices(&[4, 3], 6, 9);
    let got = take_along_axis(
        &from_array(x.clone(), [1, 4]).unwrap(),
        &from_array(idx.clone(), [3, 2]).unwrap(),
        1,
    )
    .unwrap();
    assert_array_eq(&got.compute_dyn().unwrap(), &take_along_oracle(&x, &idx, 1));
    // int32 and uint8 indices, bool and complex values.
    let idx32 = from_array(ndarray::arr1(&[2i32, -1, 0]).into_dyn(), [2]).unwrap();
    let b = from_array(ndarray::arr1(&[true, false, true, false]).into_dyn(), [3]).unwrap();
    let got = take_along_axis(&b, &idx32, 0)
        .unwrap()
        .compute::<bool>()
        .unwrap();
    assert_eq!(got.into_raw_vec_and_offset().0, vec![true, false, true]);
    let c = from_array(
        ndarray::arr1(&[
            tessera::Complex64::new(1.0, 2.0),
            tessera::Complex64::new(-3.0, 0.5),
        ])
        .into_dyn(),
        [1],
    )
    .unwrap();
    let idx8 = from_array(ndarray::arr1(&[1u8, 1, 0]).into_dyn(), [2]).unwrap();
    let got = take_along_axis(&c, &idx8, 0)
        .unwrap()
        .compute::<tessera::Complex64>()
        .unwrap();
    assert_eq!(got[1], tessera::Complex64::new(-3.0, 0.5));
    assert_eq!(got[2], tessera::Complex64::new(1.0, 2.0));
}

#[test]
fn take_along_axis_errors_name_what_was_wrong() {
    let x = from_array(data(&[4, 5]), [2, 3]).unwrap();
    // Out of range: found when the indices are computed, naming axis, index and length.
    let idx = from_array(ix(&[4, 2], &[0, 1, 2, 3, 4, 5, -5, -6]), [2, 2]).unwrap();
    let err = take_along_axis(&x, &idx, 1)
        .unwrap()
        .compute::<f64>()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("index 5 is out of bounds for axis 1 of length 5"),
        "{err}"
    );
    // Rank, dtype, broadcast and axis errors when the graph is built.
    let flat = from_array(ix(&[3], &[0, 1, 2]), [2]).unwrap();
    assert!(matches!(
        take_along_axis(&x, &flat, 0),
        Err(Error::ShapeMismatch {
            op: "take_along_axis",
            ..
        })
    ));
    let floats = from_array(data(&[4, 5]), [2, 3]).unwrap();
    assert!(matches!(
        take_along_axis(&x, &floats, 0),
        Err(Error::DTypeMismatch { .. })
    ));
    let wide = from_array(ix(&[2, 3], &[0; 6]), [2, 3]).unwrap();
    match take_along_axis(&x, &wide, 1) {
        Err(e @ Error::ShapeMismatch { .. }) => assert!(e.to_string().contains("axis 0"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        take_along_axis(&x, &idx, 2),
        Err(Error::AxisOutOfBounds { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn vindex_matches_the_oracle_on_random_shapes(
        shape in prop::collection::vec(1usize..7, 1..4),
        block in prop::collection::vec(1usize..5, 3),
        axes in 1usize..4,
        npts in 0usize..9,
        seed in 0u64..1000,
    ) {
        let axes = axes.min(shape.len());
        let x = sample::<f64>(&shape, seed);
        let a = from_array(x.clone(), block[..shape.len()].to_vec()).unwrap();
        let idx: Vec<ArrayD<i64>> = (0..axes)
            .map(|d| random_indices(&[npts], shape[d], seed + d as u64))
            .collect();
        let got = a.vindex(&idx).unwrap().compute::<f64>().unwrap();
        prop_assert_eq!(got, vindex_oracle(&x, &idx));
    }

    #[test]
    fn take_along_axis_matches_the_oracle_on_random_shapes(
        shape in prop::collection::vec(1usize..7, 1..4),
        block in prop::collection::vec(1usize..5, 3),
        iblock in prop::collection::vec(1usize..5, 3),
        axis in 0usize..3,
        n in 0usize..8,
        seed in 0u64..1000,
    ) {
        let axis = axis % shape.len();
        let x = sample::<f64>(&shape, seed);
        let a = from_array(x.clone(), block[..shape.len()].to_vec()).unwrap();
        let mut ishape = shape.clone();
        ishape[axis] = n;
        let idx = random_indices(&ishape, shape[axis], seed + 1);
        let i = from_array(idx.clone(), iblock[..shape.len()].to_vec()).unwrap();
        let got = take_along_axis(&a, &i, axis as isize).unwrap().compute::<f64>().unwrap();
        prop_assert_eq!(got, take_along_oracle(&x, &idx, axis));
    }
}
