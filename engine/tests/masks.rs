//! Boolean masks with numpy semantics — `mask_select` (`x[mask]`), `extract`, `nonzero`,
//! `argwhere`, `flatnonzero` — against plain ndarray filtering in C order, on regular, irregular and
//! single-chunk grids, 0-d to 3-d, masks chunked unlike their array, every dtype, all-false and
//! all-true masks; the output chunks the counts fix; errors.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, arr1};
use tessera::{ChunkSpec, DType, Error, from_array};

/// numpy's `x[mask]`: the elements where the mask is true, in C order.
fn filter<T: Clone>(a: &ArrayD<T>, m: &ArrayD<bool>) -> ArrayD<T> {
    let v: Vec<T> = a
        .iter()
        .zip(m.iter())
        .filter(|(_, b)| **b)
        .map(|(x, _)| x.clone())
        .collect();
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap()
}

/// numpy's `flatnonzero`.
fn flat_positions(m: &ArrayD<bool>) -> Vec<i64> {
    m.iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i as i64)
        .collect()
}

/// A mask true with probability about `p`.
fn mask(shape: &[usize], seed: u64, p: f64) -> ArrayD<bool> {
    gen_range(shape, seed, 0.0, 1.0).mapv(|u| u < p)
}

#[test]
fn mask_select_matches_ndarray_filtering_on_every_grid() {
    for (si, shape) in [vec![17], vec![9, 7], vec![4, 5, 6]]
        .into_iter()
        .enumerate()
    {
        let a = sample::<f64>(&shape, 20 + si as u64);
        for p in [0.0, 0.1, 0.5, 1.0] {
            let m = mask(&shape, 30 + si as u64, p);
            for (name, spec) in chunkings(&shape) {
                let x = from_array(a.clone(), spec.clone()).unwrap();
                // The mask chunked on its own grid, unlike the array.
                let mm = from_array(m.clone(), ChunkSpec::Block(vec![2; shape.len()])).unwrap();
                let y = x.mask_select(&mm).unwrap();
                let want = filter(&a, &m);
                assert_eq!(y.shape(), want.shape(), "{name} {shape:?} p={p}");
                check(&y, &want);
                // No empty chunk unless the selection is empty.
                if !want.is_empty() {
                    assert!(!y.chunks().axis(0).contains(&0), "{name}: {:?}", y.chunks());
                }
            }
        }
    }
}

#[test]
fn every_dtype_keeps_its_dtype() {
    let m = mask(&[6, 5], 40, 0.4);
    let mm = from_array(m.clone(), [4, 2]).unwrap();
    let i = sample::<i64>(&[6, 5], 41);
    check(
        &from_array(i.clone(), [3, 3])
            .unwrap()
            .mask_select(&mm)
            .unwrap(),
        &filter(&i, &m),
    );
    let f = sample::<f32>(&[6, 5], 42);
    check(
        &from_array(f.clone(), [3, 3])
            .unwrap()
            .mask_select(&mm)
            .unwrap(),
        &filter(&f, &m),
    );
    let b = sample::<bool>(&[6, 5], 43);
    check(
        &from_array(b.clone(), [3, 3])
            .unwrap()
            .mask_select(&mm)
            .unwrap(),
        &filter(&b, &m),
    );
}

#[test]
fn output_chunks_come_from_the_counts() {
    // 20 elements in chunks of 4; 4 true in chunk 1, 2 in chunk 4: a run closes once it holds a
    // chunk's worth (4), the empty chunks join the runs.
    let m: Vec<bool> = (0..20).map(|i| (4..8).contains(&i) || i >= 18).collect();
    let x = tessera::arange(0i64, 20, 1, [4]).unwrap();
    let y = x
        .mask_select(&from_array(arr1(&m).into_dyn(), [4]).unwrap())
        .unwrap();
    assert_eq!(y.chunks().axis(0), &[4, 2]);
    assert_eq!(
        y.compute::<i64>().unwrap().into_raw_vec_and_offset().0,
        vec![4, 5, 6, 7, 18, 19]
    );
    // Sparse selections gather many chunks into one run.
    let m: Vec<bool> = (0..20).map(|i| i == 5 || i == 17).collect();
    let y = x
        .mask_select(&from_array(arr1(&m).into_dyn(), [4]).unwrap())
        .unwrap();
    assert_eq!(y.chunks().axis(0), &[2]);
    assert_eq!(
        y.compute::<i64>().unwrap().into_raw_vec_and_offset().0,
        vec![5, 17]
    );
    // All false: one empty chunk.
    let none = from_array(arr1(&[false; 20]).into_dyn(), [4]).unwrap();
    let y = x.mask_select(&none).unwrap();
    assert_eq!(y.shape(), &[0]);
    assert_eq!(y.chunks().axis(0), &[0]);
    assert_eq!(y.compute::<i64>().unwrap().len(), 0);
    // All true: chunks of the input's size.
    let all = from_array(arr1(&[true; 20]).into_dyn(), [4]).unwrap();
    assert_eq!(x.mask_select(&all).unwrap().chunks().axis(0), &[4; 5]);
}

#[test]
fn flatnonzero_nonzero_argwhere_match_numpy() {
    for shape in [vec![13], vec![7, 6], vec![3, 4, 5]] {
        let a = sample::<i64>(&shape, 50).mapv(|v| v % 3);
        let nz = a.mapv(|v| v != 0);
        let pos = flat_positions(&nz);
        let x = from_array(a.clone(), ChunkSpec::Block(vec![2; shape.len()])).unwrap();
        check(&x.flatnonzero().unwrap(), &arr1(&pos).into_dyn());
        let idx = x.nonzero().unwrap();
        assert_eq!(idx.len(), shape.len());
        // numpy: the per-axis indices are the unravelled flat positions.
        let mut rows = Vec::new();
        for &p in &pos {
            let mut rest = p as usize;
            let mut ix = vec![0i64; shape.len()];
            for axis in (0..shape.len()).rev() {
                ix[axis] = (rest % shape[axis]) as i64;
                rest /= shape[axis];
            }
            rows.push(ix);
        }
        for (axis, i) in idx.iter().enumerate() {
            let want: Vec<i64> = rows.iter().map(|r| r[axis]).collect();
            check(i, &arr1(&want).into_dyn());
        }
        let w = x.argwhere().unwrap();
        let want =
            ArrayD::from_shape_fn(IxDyn(&[rows.len(), shape.len()]), |ix| rows[ix[0]][ix[1]]);
        check(&w, &want);
        // Floats: NaN counts as nonzero, -0.0 does not.
        let f = arr1(&[0.0, f64::NAN, -0.0, 2.0]).into_dyn();
        let fx = from_array(f, [3]).unwrap();
        check(&fx.flatnonzero().unwrap(), &arr1(&[1i64, 3]).into_dyn());
    }
}

#[test]
fn zero_d_and_extract() {
    let s = from_array(ArrayD::from_elem(IxDyn(&[]), 5.0), ChunkSpec::Block(vec![])).unwrap();
    let nz = s.nonzero().unwrap();
    assert_eq!(nz.len(), 1);
    check(&nz[0], &arr1(&[0i64]).into_dyn());
    let w = s.argwhere().unwrap();
    assert_eq!(w.shape(), &[1, 0]);
    let z = from_array(
        ArrayD::from_elem(IxDyn(&[]), 0i64),
        ChunkSpec::Block(vec![]),
    )
    .unwrap();
    assert_eq!(z.argwhere().unwrap().shape(), &[0, 0]);
    // extract: a nonzero condition of any dtype.
    let a = sample::<f64>(&[5, 4], 60);
    let c = sample::<i64>(&[5, 4], 61).mapv(|v| v % 2);
    let x = from_array(a.clone(), [2, 3]).unwrap();
    let cx = from_array(c.clone(), [3, 2]).unwrap();
    check(&x.extract(&cx).unwrap(), &filter(&a, &c.mapv(|v| v != 0)));
}

#[test]
fn wrong_masks_are_typed_errors() {
    let x = from_array(sample::<f64>(&[4, 3], 70), [2, 2]).unwrap();
    let m = from_array(mask(&[3, 4], 71, 0.5), [2, 2]).unwrap();
    match x.mask_select(&m) {
        Err(Error::ShapeMismatch {
            op: "mask_select",
            reason,
        }) => {
            assert!(
                reason.contains("[3, 4]") && reason.contains("[4, 3]"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    match x.mask_select(&x) {
        Err(Error::DTypeMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (DType::Bool, DType::F64))
        }
        other => panic!("{other:?}"),
    }
}
