//! Strided and partial slices of sources (random draws, arange, linspace, full, and elementwise math
//! on them) are generated in place by the optimizer: only the kept elements are generated, and the
//! values are bit for bit those of slicing the whole source (the oracle: the whole source computed,
//! then sliced by ndarray), under composition with transposes, further slices and reductions.

mod common;

use common::*;
use ndarray::{IxDyn, SliceInfoElem, s};
use tessera::{Array, ArrayData, DType, default_rng};

fn sources() -> Vec<(&'static str, Array)> {
    let rng = default_rng(11);
    vec![
        ("uniform", rng.random(&[37, 41], [10, 9]).unwrap()),
        (
            "uniform f32",
            rng.random_dtype(&[37, 41], [10, 9], DType::F32).unwrap(),
        ),
        ("normal", rng.standard_normal(&[37, 41], [12, 7]).unwrap()),
        (
            "integers",
            rng.integers(-5, 9, &[37, 41], [10, 10]).unwrap(),
        ),
        // A rejection sampler: rejected elements draw further blocks of their own index.
        ("poisson", rng.poisson(3.5, &[37, 41], [9, 11]).unwrap()),
        (
            "arange reshaped",
            tessera::arange(0.0, 37.0 * 41.0, 1.0, [37 * 41])
                .unwrap()
                .reshape(&[37, 41])
                .unwrap(),
        ),
        (
            "linspace row times full",
            (&tessera::linspace(0.0, 1.0, 41, true, [8]).unwrap()
                * &tessera::full(&[37, 41], 2.0f64, [10, 8]).unwrap()),
        ),
        (
            "sin(uniform) * 3 + column of normals",
            (&(&rng.random(&[37, 41], [10, 9]).unwrap().sin().unwrap() * 3.0f64)
                + &rng.standard_normal(&[37, 1], [10, 1]).unwrap()),
        ),
        (
            "transposed uniform",
            rng.random(&[41, 37], [9, 10]).unwrap().t(),
        ),
    ]
}

fn slices() -> Vec<Vec<SliceInfoElem>> {
    vec![
        s![..;2, ..;3].as_ref().to_vec(),
        s![3..;4, 1..40;5].as_ref().to_vec(),
        s![5..30, 2..].as_ref().to_vec(),
        s![..;7, 40..41].as_ref().to_vec(),
        s![36..37, ..;1].as_ref().to_vec(),
        s![1..36;17, 3..40;36].as_ref().to_vec(),
    ]
}

fn sliced(values: &ArrayData, sl: &[SliceInfoElem]) -> ArrayData {
    tessera::map_array!(values, v => v.slice(sl).as_standard_layout().into_owned())
}

#[test]
fn slices_of_sources_are_generated_bit_for_bit() {
    for (what, x) in sources() {
        let values = x.compute_dyn().unwrap();
        for sl in slices() {
            let y = x.slice(&sl).unwrap();
            assert_bits_eq(&y.compute_dyn().unwrap(), &sliced(&values, &sl));
            // Generated in place: the slice's tasks, and no source chunk under them.
            let counts = y.task_counts().unwrap();
            // (A reshape is not a blockwise program: that source is sliced by copying, as before.)
            assert!(
                what == "arange reshaped" || counts.after < counts.before,
                "{what} {sl:?}: {counts:?} — the source is still generated whole"
            );
            // A slice of the slice composes its window; a transpose of it permutes the window.
            let z = y.slice(s![..;2, 1..]).unwrap();
            assert_bits_eq(
                &z.compute_dyn().unwrap(),
                &sliced(&sliced(&values, &sl), s![..;2, 1..].as_ref()),
            );
            let t = y.t();
            let expected = tessera::map_array!(&sliced(&values, &sl), v => {
                v.view().reversed_axes().as_standard_layout().into_owned()
            });
            assert_bits_eq(&t.compute_dyn().unwrap(), &expected);
        }
    }
}

#[test]
fn one_d_arange_linspace_and_integer_arange_windows() {
    let sources = [
        tessera::arange(0.5, 300.5, 1.0, [37]).unwrap(),
        tessera::arange(-7i64, 593, 2, [41]).unwrap(),
        // The endpoint is exact: a window that keeps the last element keeps `stop`.
        tessera::linspace(-1.0, 3.0, 301, true, [29]).unwrap(),
        tessera::linspace(-1.0, 3.0, 300, false, [29]).unwrap(),
    ];
    for x in sources {
        let values = x.compute_dyn().unwrap();
        for sl in [s![..;3], s![4..;7], s![299..300], s![1..297;37]] {
            let y = x.slice(sl).unwrap();
            assert_bits_eq(&y.compute_dyn().unwrap(), &sliced(&values, sl.as_ref()));
            let counts = y.task_counts().unwrap();
            assert!(counts.after < counts.before, "{sl:?}: {counts:?}");
        }
    }
}

#[test]
fn strided_slice_then_reductions_match_ndarray() {
    // The benchmark's shape: x[::2, ::3].sum(axis=1).max(), small.
    let x = default_rng(3).random(&[200, 210], [20, 21]).unwrap();
    let xs = x.compute::<f64>().unwrap();
    let y = x.slice(s![..;2, ..;3]).unwrap();
    let rows = y.sum_axis(1).unwrap();
    let expected: Vec<f64> = xs
        .slice(s![..;2, ..;3])
        .rows()
        .into_iter()
        .map(|r| r.iter().sum::<f64>())
        .collect();
    check(&rows, &ndarray::Array1::from(expected.clone()).into_dyn());
    let max = rows.max().unwrap().compute::<f64>().unwrap();
    let want = expected.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(
        (max[IxDyn(&[])] - want).abs() <= 1e-12 * want,
        "{max} vs {want}"
    );
    // Fused: one task per slice chunk (source, slice and partial sum together) plus the combines;
    // without the rewrite the 100 source chunks would be tasks of their own.
    let counts = rows.task_counts().unwrap();
    assert!(counts.after < counts.before, "{counts:?}");
}

#[test]
fn three_d_and_transposed_then_sliced_sources() {
    let rng = default_rng(5);
    let x = rng.random(&[9, 10, 11], [4, 3, 5]).unwrap();
    let values = x.compute_dyn().unwrap();
    for sl in [
        s![..;2, 1..;3, ..;4].as_ref().to_vec(),
        s![8..9, ..;9, 2..7].as_ref().to_vec(),
    ] {
        assert_bits_eq(
            &x.slice(&sl).unwrap().compute_dyn().unwrap(),
            &sliced(&values, &sl),
        );
        // Permuted first, then sliced.
        let p = x.permute_axes(&[2, 0, 1]).unwrap();
        let pv = tessera::map_array!(&values, v => {
            v.view().permuted_axes(IxDyn(&[2, 0, 1])).as_standard_layout().into_owned()
        });
        assert_bits_eq(
            &p.slice(&sl).unwrap().compute_dyn().unwrap(),
            &sliced(&pv, &sl),
        );
    }
    // A lower-rank source broadcast against a 3-d one, then sliced.
    let row = rng.random(&[11], [5]).unwrap();
    let b = &x + &row;
    let bv = b.compute_dyn().unwrap();
    let sl = s![1..;2, ..;3, 3..;2];
    assert_bits_eq(
        &b.slice(sl).unwrap().compute_dyn().unwrap(),
        &sliced(&bv, sl.as_ref()),
    );
}
