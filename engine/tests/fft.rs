//! `tessera::fft` the way a user drives it, against a direct O(n²) DFT written here in plain
//! ndarray (so nothing of rustfft is the oracle): every one-axis transform with `n` cut, padded and
//! default, each `norm`, along either axis, on regular and irregular chunkings of the other axis;
//! the n-d transforms against one-axis oracles applied in turn; round trips; numpy's printed
//! values of `fftfreq`/`rfftfreq`/`fftshift`; and the errors (an axis in several chunks, n = 0, a
//! bad norm, complex input to rfft).

mod common;

use std::f64::consts::PI;

use common::*;
use ndarray::{ArrayD, Axis, IxDyn, arr2};
use tessera::fft;
use tessera::{Array, ChunkSpec, Complex64, DType, from_array};

// ---------------------------------------------------------------------------------------------
// oracles

/// The direct DFT of every lane along `axis`: the lane cut or zero-padded to `n`, then
/// `X[k] = Σ x[t]·e^(∓2πi·kt/n)` (− forward), scaled by `scale`.
fn dft(
    x: &ArrayD<Complex64>,
    axis: usize,
    n: usize,
    inverse: bool,
    scale: f64,
) -> ArrayD<Complex64> {
    let mut shape = x.shape().to_vec();
    shape[axis] = n;
    let mut out = ArrayD::from_elem(IxDyn(&shape), Complex64::new(0.0, 0.0));
    let sign = if inverse { 1.0 } else { -1.0 };
    for (lane, mut o) in x
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        let v: Vec<Complex64> = (0..n)
            .map(|t| lane.get(t).copied().unwrap_or_default())
            .collect();
        for (k, o) in o.iter_mut().enumerate() {
            let mut acc = Complex64::new(0.0, 0.0);
            for (t, &xt) in v.iter().enumerate() {
                // Reduce k·t mod n first so the angle stays small and exact.
                let ang = sign * 2.0 * PI * ((k * t) % n) as f64 / n as f64;
                acc += xt * Complex64::new(ang.cos(), ang.sin());
            }
            *o = acc * scale;
        }
    }
    out
}

/// numpy's scale for a transform of `n` points in one direction.
fn scale(norm: Option<&str>, n: usize, inverse: bool) -> f64 {
    let n = n as f64;
    match (norm, inverse) {
        (Some("ortho"), _) => 1.0 / n.sqrt(),
        (None | Some("backward"), true) | (Some("forward"), false) => 1.0 / n,
        _ => 1.0,
    }
}

/// numpy's irfft as a direct sum: the `n/2 + 1` frequencies (cut or padded) extended to the
/// Hermitian spectrum of `n` points, the imaginary parts of the zero and Nyquist terms ignored.
fn irdft(x: &ArrayD<Complex64>, axis: usize, n: usize, scale: f64) -> ArrayD<f64> {
    let m = n / 2 + 1;
    let mut shape = x.shape().to_vec();
    shape[axis] = n;
    let mut full = ArrayD::from_elem(IxDyn(&shape), Complex64::new(0.0, 0.0));
    for (lane, mut f) in x
        .lanes(Axis(axis))
        .into_iter()
        .zip(full.lanes_mut(Axis(axis)))
    {
        for k in 0..m {
            let mut v = lane.get(k).copied().unwrap_or_default();
            if k == 0 || (n.is_multiple_of(2) && k == n / 2) {
                v.im = 0.0;
            }
            f[k] = v;
            if k > 0 && k < n - k {
                f[n - k] = v.conj();
            }
        }
    }
    dft(&full, axis, n, true, scale).mapv(|v| v.re)
}

fn to_c(x: &ArrayD<f64>) -> ArrayD<Complex64> {
    x.mapv(|v| Complex64::new(v, 0.0))
}

fn complex_sample(shape: &[usize], seed: u64) -> ArrayD<Complex64> {
    let re = gen_range(shape, seed, -1.0, 1.0);
    let im = gen_range(shape, seed + 1, -1.0, 1.0);
    ndarray::Zip::from(&re)
        .and(&im)
        .map_collect(|&a, &b| Complex64::new(a, b))
}

#[track_caller]
fn assert_close_c(actual: &Array, expected: &ArrayD<Complex64>) {
    assert_eq!(actual.dtype(), DType::C128, "dtype");
    assert_eq!(actual.shape(), expected.shape(), "shape metadata");
    let got = actual.compute::<Complex64>().unwrap();
    assert_eq!(got.shape(), expected.shape(), "computed shape");
    let big = expected.iter().map(|v| v.norm()).fold(1.0, f64::max);
    for ((i, g), e) in got.indexed_iter().zip(expected.iter()) {
        assert!((g - e).norm() <= 1e-12 * big, "at {i:?}: {g} vs {e}");
    }
}

#[track_caller]
fn assert_close_f(actual: &Array, expected: &ArrayD<f64>) {
    assert_eq!(actual.dtype(), DType::F64, "dtype");
    assert_eq!(actual.shape(), expected.shape(), "shape metadata");
    let got = actual.compute::<f64>().unwrap();
    let big = expected.iter().map(|v| v.abs()).fold(1.0, f64::max);
    for ((i, g), e) in got.indexed_iter().zip(expected.iter()) {
        assert!((g - e).abs() <= 1e-12 * big, "at {i:?}: {g} vs {e}");
    }
}

/// Chunkings of a (rows, cols) array with the transformed axis whole: regular, irregular and
/// one-chunk along the other axis.
fn chunkings_keeping(shape: [usize; 2], axis: usize) -> Vec<ChunkSpec> {
    let other = 1 - axis;
    let mut out = Vec::new();
    for split in [
        vec![shape[other]],
        vec![2; shape[other] / 2],
        ragged_axis(shape[other]),
    ] {
        let mut split = split;
        let s: usize = split.iter().sum();
        if s < shape[other] {
            split.push(shape[other] - s);
        }
        let mut sizes = vec![vec![], vec![]];
        sizes[axis] = vec![shape[axis]];
        sizes[other] = split;
        out.push(ChunkSpec::Explicit(sizes));
    }
    out
}

const NORMS: [Option<&str>; 4] = [None, Some("backward"), Some("ortho"), Some("forward")];

// ---------------------------------------------------------------------------------------------
// one-axis transforms

#[test]
fn fft_and_ifft_match_the_direct_dft_on_every_chunking_n_and_norm() {
    let shape = [7usize, 10];
    let real = gen_range(&shape, 3, -2.0, 2.0);
    let cplx = complex_sample(&shape, 5);
    for axis in 0..2 {
        let len = shape[axis];
        for chunks in chunkings_keeping(shape, axis) {
            let xr = from_array(real.clone(), chunks.clone()).unwrap();
            let xc = from_array(cplx.clone(), chunks.clone()).unwrap();
            for n in [None, Some(len - 3), Some(len + 5)] {
                let points = n.unwrap_or(len);
                for norm in NORMS {
                    let ax = axis as isize - 2; // negative axes, as numpy users write them
                    let f = fft::fft(&xr, n, ax, norm).unwrap();
                    assert_close_c(
                        &f,
                        &dft(
                            &to_c(&real),
                            axis,
                            points,
                            false,
                            scale(norm, points, false),
                        ),
                    );
                    let f = fft::fft(&xc, n, axis as isize, norm).unwrap();
                    assert_close_c(
                        &f,
                        &dft(&cplx, axis, points, false, scale(norm, points, false)),
                    );
                    let i = fft::ifft(&xc, n, axis as isize, norm).unwrap();
                    assert_close_c(
                        &i,
                        &dft(&cplx, axis, points, true, scale(norm, points, true)),
                    );
                }
            }
        }
    }
}

#[test]
fn rfft_and_irfft_match_the_direct_sums() {
    let shape = [6usize, 9];
    let real = gen_range(&shape, 11, -1.0, 3.0);
    let spec = complex_sample(&[6, 5], 13);
    for chunks in chunkings_keeping(shape, 1) {
        let x = from_array(real.clone(), chunks).unwrap();
        for n in [None, Some(6), Some(12), Some(13)] {
            let points = n.unwrap_or(9);
            for norm in NORMS {
                let f = fft::rfft(&x, n, -1, norm).unwrap();
                let full = dft(&to_c(&real), 1, points, false, scale(norm, points, false));
                let half = full
                    .slice_axis(Axis(1), (0..points / 2 + 1).into())
                    .to_owned();
                assert_close_c(&f, &half);
            }
        }
    }
    for chunks in chunkings_keeping([6, 5], 1) {
        let s = from_array(spec.clone(), chunks).unwrap();
        // Default n = 2·(5 − 1) = 8; odd and even lengths, cutting and padding the spectrum.
        for n in [None, Some(9), Some(4), Some(15)] {
            let points = n.unwrap_or(8);
            for norm in NORMS {
                let y = fft::irfft(&s, n, 1, norm).unwrap();
                assert_close_f(&y, &irdft(&spec, 1, points, scale(norm, points, true)));
            }
        }
    }
}

#[test]
fn round_trips_give_the_input_back() {
    let shape = [5usize, 12];
    let real = gen_range(&shape, 21, -4.0, 4.0);
    let cplx = complex_sample(&shape, 23);
    for chunks in chunkings_keeping(shape, 1) {
        let x = from_array(cplx.clone(), chunks.clone()).unwrap();
        for norm in NORMS {
            let back = fft::ifft(&fft::fft(&x, None, -1, norm).unwrap(), None, -1, norm).unwrap();
            assert_close_c(&back, &cplx);
        }
        let r = from_array(real.clone(), chunks).unwrap();
        for n in [12usize, 11] {
            let cut = real.slice_axis(Axis(1), (0..n).into()).to_owned();
            for norm in NORMS {
                let f = fft::rfft(&r, Some(n), -1, norm).unwrap();
                let back = fft::irfft(&f, Some(n), -1, norm).unwrap();
                assert_close_f(&back, &cut);
            }
        }
    }
}

#[test]
fn input_dtypes_follow_numpy_typing() {
    let x = from_array(iota(&[3, 4]), [1, 4]).unwrap();
    let f = fft::fft(&x, None, -1, None).unwrap();
    assert_eq!(f.dtype(), DType::C128);
    let expect = dft(
        &iota(&[3, 4]).mapv(|v| Complex64::new(v as f64, 0.0)),
        1,
        4,
        false,
        1.0,
    );
    assert_close_c(&f, &expect);
    // float32 gives complex128 here (numpy 2: complex64, a dtype tessera does not have).
    let x32 = x.astype(DType::F32).unwrap();
    assert_eq!(
        fft::rfft(&x32, None, -1, None).unwrap().dtype(),
        DType::C128
    );
    // irfft of real input reads it as complex with zero imaginary parts, as numpy does.
    let xr = x.astype(DType::F64).unwrap();
    let y = fft::irfft(&xr, None, -1, None).unwrap();
    let expect = irdft(
        &iota(&[3, 4]).mapv(|v| Complex64::new(v as f64, 0.0)),
        1,
        6,
        1.0 / 6.0,
    );
    assert_close_f(&y, &expect);
}

/// Blocks the kernel transforms a tile of lanes at a time: many columns along axis 0 (tiles of
/// neighbouring columns and a short last tile), a middle axis of a 3-d block (lanes strided inside
/// each outer slab), and more short contiguous lanes than one tile holds — each against the direct
/// DFT, for real and complex input, every kind, with `n` cut and padded.
#[test]
fn tiled_lanes_match_the_direct_dft_on_wide_3d_and_many_lane_blocks() {
    // (shape, axis, chunks): the transformed axis whole, the others split unevenly.
    let cases: Vec<(Vec<usize>, usize, ChunkSpec)> = vec![
        (
            vec![23, 45],
            0,
            ChunkSpec::Explicit(vec![vec![23], vec![37, 8]]),
        ),
        (
            vec![3, 16, 11],
            1,
            ChunkSpec::Explicit(vec![vec![2, 1], vec![16], vec![11]]),
        ),
        (
            vec![2100, 16],
            1,
            ChunkSpec::Explicit(vec![vec![2100], vec![16]]),
        ),
    ];
    for (k, (shape, axis, chunks)) in cases.into_iter().enumerate() {
        let seed = 60 + 4 * k as u64;
        let real = gen_range(&shape, seed, -1.0, 1.0);
        let cplx = complex_sample(&shape, seed + 2);
        let xr = from_array(real.clone(), chunks.clone()).unwrap();
        let xc = from_array(cplx.clone(), chunks.clone()).unwrap();
        let ax = axis as isize;
        let len = shape[axis];
        for n in [None, Some(len - 3), Some(len + 4)] {
            let points = n.unwrap_or(len);
            let norm = Some("ortho");
            let s = scale(norm, points, false);
            let forward_real = dft(&to_c(&real), axis, points, false, s);
            assert_close_c(&fft::fft(&xr, n, ax, norm).unwrap(), &forward_real);
            assert_close_c(
                &fft::ifft(&xr, n, ax, None).unwrap(),
                &dft(&to_c(&real), axis, points, true, 1.0 / points as f64),
            );
            let half = forward_real
                .slice_axis(Axis(axis), (0..points / 2 + 1).into())
                .to_owned();
            assert_close_c(&fft::rfft(&xr, n, ax, norm).unwrap(), &half);
            assert_close_c(
                &fft::fft(&xc, n, ax, None).unwrap(),
                &dft(&cplx, axis, points, false, 1.0),
            );
            assert_close_c(
                &fft::ifft(&xc, n, ax, Some("forward")).unwrap(),
                &dft(&cplx, axis, points, true, 1.0),
            );
            assert_close_f(
                &fft::irfft(&xc, n, ax, None).unwrap(),
                &irdft(
                    &cplx,
                    axis,
                    n.unwrap_or(2 * (len - 1)),
                    1.0 / n.unwrap_or(2 * (len - 1)) as f64,
                ),
            );
        }
    }
}

/// Real input of every dtype goes through the real-input transform, cast as lanes are loaded:
/// the result is the DFT of the values cast to float64, along a strided and a contiguous axis.
/// A block stored column-major (from a transposed ndarray) is read in its logical order.
#[test]
fn real_dtypes_and_column_major_blocks_match_the_dft_of_their_values() {
    let shape = [12usize, 19];
    let real = gen_range(&shape, 81, -3.0, 3.0);
    let ints = real.mapv(|v| (v * 10.0).round() as i64);
    let bools = real.mapv(|v| v > 0.5);
    let singles = real.mapv(|v| v as f32);
    let column_major = gen_range(&[19, 12], 83, -1.0, 1.0).reversed_axes();
    assert!(!column_major.is_standard_layout());
    let inputs: Vec<(Array, ArrayD<f64>)> = vec![
        (
            from_array(ints.clone(), [12, 19]).unwrap(),
            ints.mapv(|v| v as f64),
        ),
        (
            from_array(bools.clone(), [12, 19]).unwrap(),
            bools.mapv(|v| v as u8 as f64),
        ),
        (
            from_array(singles.clone(), [12, 19]).unwrap(),
            singles.mapv(|v| v as f64),
        ),
        (
            from_array(column_major.clone(), [12, 19]).unwrap(),
            column_major.as_standard_layout().to_owned(),
        ),
    ];
    for (x, values) in inputs {
        for (axis, &len) in shape.iter().enumerate() {
            assert_close_c(
                &fft::fft(&x, None, axis as isize, None).unwrap(),
                &dft(&to_c(&values), axis, len, false, 1.0),
            );
            assert_close_c(
                &fft::ifft(&x, Some(len + 1), axis as isize, None).unwrap(),
                &dft(&to_c(&values), axis, len + 1, true, 1.0 / (len + 1) as f64),
            );
        }
    }
    let c = from_array(to_c(&column_major), [12, 19]).unwrap();
    assert_close_c(
        &fft::fft(&c, None, 0, None).unwrap(),
        &dft(&to_c(&column_major), 0, 12, false, 1.0),
    );
}

// ---------------------------------------------------------------------------------------------
// n-d transforms

#[test]
fn nd_transforms_match_one_axis_oracles_in_turn() {
    let shape = [4usize, 6, 5];
    let cplx = complex_sample(&shape, 31);
    let real = gen_range(&shape, 33, -1.0, 1.0);
    // Only axis 0 chunked (irregularly) for the transforms over axes 1 and 2; all axes whole for fftn.
    let part = ChunkSpec::Explicit(vec![vec![1, 3], vec![6], vec![5]]);
    let whole = ChunkSpec::Block(vec![4, 6, 5]);
    let xc = from_array(cplx.clone(), part.clone()).unwrap();
    let xr = from_array(real.clone(), part.clone()).unwrap();

    let f2 = fft::fft2(&xc, None, None, None).unwrap();
    let expect = dft(&dft(&cplx, 2, 5, false, 1.0), 1, 6, false, 1.0);
    assert_close_c(&f2, &expect);
    let back = fft::ifft2(&f2, None, None, None).unwrap();
    assert_close_c(&back, &cplx);

    let s = [8usize, 3];
    let f = fft::fftn(&xc, Some(&s), None, Some("ortho")).unwrap();
    let expect = dft(
        &dft(&cplx, 2, 3, false, 1.0 / 3f64.sqrt()),
        1,
        8,
        false,
        1.0 / 8f64.sqrt(),
    );
    assert_close_c(&f, &expect);

    let all = from_array(cplx.clone(), whole.clone()).unwrap();
    let f = fft::fftn(&all, None, None, None).unwrap();
    let expect = dft(
        &dft(&dft(&cplx, 2, 5, false, 1.0), 1, 6, false, 1.0),
        0,
        4,
        false,
        1.0,
    );
    assert_close_c(&f, &expect);
    assert_close_c(&fft::ifftn(&f, None, None, None).unwrap(), &cplx);
    let g = fft::ifftn(&all, None, Some(&[0, 2]), Some("forward")).unwrap();
    let expect = dft(&dft(&cplx, 2, 5, true, 1.0), 0, 4, true, 1.0);
    assert_close_c(&g, &expect);

    // rfftn: rfft along the last axis, then fft along the others; irfftn inverts it.
    let f = fft::rfftn(&xr, None, Some(&[1, 2]), None).unwrap();
    let full = dft(&dft(&to_c(&real), 2, 5, false, 1.0), 1, 6, false, 1.0);
    let expect = full.slice_axis(Axis(2), (0..3).into()).to_owned();
    assert_close_c(&f, &expect);
    let back = fft::irfftn(&f, Some(&[6, 5]), Some(&[1, 2]), None).unwrap();
    assert_close_f(&back, &real);
    let rall = from_array(real.clone(), whole).unwrap();
    let back = fft::irfftn(
        &fft::rfftn(&rall, None, None, None).unwrap(),
        Some(&[4, 6, 5]),
        None,
        None,
    )
    .unwrap();
    assert_close_f(&back, &real);
}

// ---------------------------------------------------------------------------------------------
// frequencies and shifts

#[test]
fn fftfreq_and_rfftfreq_give_numpys_values() {
    // numpy 2: np.fft.fftfreq(8, 0.1), np.fft.fftfreq(5), np.fft.rfftfreq(8, 0.1), rfftfreq(5).
    let cases: Vec<(Array, Vec<f64>)> = vec![
        (
            fft::fftfreq(8, 0.1, [3]).unwrap(),
            vec![0.0, 1.25, 2.5, 3.75, -5.0, -3.75, -2.5, -1.25],
        ),
        (
            fft::fftfreq(5, 1.0, [2]).unwrap(),
            vec![0.0, 0.2, 0.4, -0.4, -0.2],
        ),
        (fft::fftfreq(1, 1.0, [1]).unwrap(), vec![0.0]),
        (
            fft::rfftfreq(8, 0.1, [2]).unwrap(),
            vec![0.0, 1.25, 2.5, 3.75, 5.0],
        ),
        (fft::rfftfreq(5, 1.0, [5]).unwrap(), vec![0.0, 0.2, 0.4]),
    ];
    for (a, expect) in cases {
        assert_eq!(a.dtype(), DType::F64);
        let got = a.compute::<f64>().unwrap();
        assert_eq!(got.as_slice().unwrap(), expect.as_slice());
    }
    assert_eq!(
        fft::fftfreq(10, 1.0, [3]).unwrap().chunks().axis(0),
        &[3, 3, 3, 1]
    );
    assert!(fft::fftfreq(0, 1.0, [1]).is_err());
}

#[test]
fn fftshift_and_ifftshift_match_numpy_on_any_chunking() {
    let x = iota(&[3, 4]);
    // numpy: np.fft.fftshift(np.arange(12).reshape(3, 4))
    let shifted = arr2(&[[10i64, 11, 8, 9], [2, 3, 0, 1], [6, 7, 4, 5]]).into_dyn();
    for chunks in [
        ChunkSpec::Block(vec![3, 4]),
        ChunkSpec::Block(vec![1, 3]),
        ChunkSpec::Explicit(vec![vec![2, 1], vec![1, 3]]),
    ] {
        let a = from_array(x.clone(), chunks).unwrap();
        let s = fft::fftshift(&a, None).unwrap();
        check(&s, &shifted);
        check(&fft::ifftshift(&s, None).unwrap(), &x);
        // One axis only: numpy's fftshift(x, axes=1).
        let s1 = fft::fftshift(&a, Some(&[1])).unwrap();
        check(
            &s1,
            &arr2(&[[2i64, 3, 0, 1], [6, 7, 4, 5], [10, 11, 8, 9]]).into_dyn(),
        );
    }
    // Odd length: the two shifts differ (numpy: fftshift([0,1,2,3,4]) = [3,4,0,1,2]).
    let a = from_array(iota(&[5]), [2]).unwrap();
    check(
        &fft::fftshift(&a, None).unwrap(),
        &ndarray::arr1(&[3i64, 4, 0, 1, 2]).into_dyn(),
    );
    check(
        &fft::ifftshift(&a, None).unwrap(),
        &ndarray::arr1(&[2i64, 3, 4, 0, 1]).into_dyn(),
    );
}

// ---------------------------------------------------------------------------------------------
// errors

#[test]
fn errors_name_what_is_wrong() {
    let x = from_array(gen_range(&[6, 8], 41, 0.0, 1.0), [3, 4]).unwrap();
    let msg = fft::fft(&x, None, 1, None).unwrap_err().to_string();
    assert!(msg.contains("axis 1") && msg.contains("rechunk"), "{msg}");
    let msg = fft::fft2(&x, None, None, None).unwrap_err().to_string();
    assert!(msg.contains("rechunk"), "{msg}");
    let ok = x.rechunk([3, 8]).unwrap();
    let msg = fft::fft(&ok, Some(0), 1, None).unwrap_err().to_string();
    assert!(msg.contains("(0)"), "{msg}");
    let msg = fft::fft(&ok, None, 1, Some("unitary"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("unitary") && msg.contains("ortho"), "{msg}");
    let msg = fft::fft(&ok, None, 2, None).unwrap_err().to_string();
    assert!(msg.contains('2'), "{msg}");
    let c = fft::fft(&ok, None, 1, None).unwrap();
    let msg = fft::rfft(&c, None, 1, None).unwrap_err().to_string();
    assert!(msg.contains("rfft") && msg.contains("complex128"), "{msg}");
    let spectrum = fft::rfft(&ok, None, 1, None)
        .unwrap()
        .rechunk([3, 2])
        .unwrap();
    let msg = fft::irfft(&spectrum, None, 1, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("irfft") && msg.contains("rechunk"), "{msg}");
    let msg = fft::fftn(&ok, Some(&[2, 2, 2]), None, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("s [2, 2, 2]"), "{msg}");
}
