//! `take` (integer-array indexing along an axis) driven the way a user calls it, against ndarray's
//! `select` on regular, irregular and single-chunk chunkings, with repeats, negative and unsorted
//! indices, empty index lists, every dtype, and the errors for bad indices and axes.

use ndarray::{ArrayD, Axis, IxDyn};
use tessera::{Error, from_array};

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
