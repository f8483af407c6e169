//! `tessera::fft` and complex128 on the distributed executor: the real scheduler and worker
//! binaries on loopback ports, and every result compared bit for bit with the local executor —
//! one-axis and n-d transforms over irregular chunkings of the other axes (blocks on different
//! workers), the real transforms, the frequency and shift helpers, and complex arithmetic,
//! parts and sums (complex chunks and scalars crossing the wire).
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_suite_matches_local};
use tessera::{Array, Complex64, fft};

fn suite() -> Vec<(&'static str, Array)> {
    let rng = tessera::default_rng(7);
    // Axis 1 (transformed) whole, axis 0 in irregular blocks.
    let x = rng
        .standard_normal(&[50, 64], vec![vec![20, 7, 23], vec![64]])
        .unwrap();
    let y = rng
        .standard_normal(&[50, 64], vec![vec![10, 40], vec![64]])
        .unwrap();
    let z = x.astype(tessera::DType::C128).unwrap() + (&y * Complex64::new(0.0, 1.0));
    let cube = rng.random(&[6, 8, 10], [3, 8, 10]).unwrap();
    let spectrum = fft::rfft(&x, None, -1, None).unwrap();
    vec![
        ("fft", fft::fft(&x, None, -1, None).unwrap()),
        (
            "fft padded ortho",
            fft::fft(&z, Some(80), 1, Some("ortho")).unwrap(),
        ),
        (
            "ifft cut forward",
            fft::ifft(&z, Some(50), -1, Some("forward")).unwrap(),
        ),
        ("rfft", spectrum.clone()),
        (
            "irfft odd",
            fft::irfft(&spectrum, Some(63), -1, None).unwrap(),
        ),
        ("fft2", fft::fft2(&cube, None, None, None).unwrap()),
        (
            "rfftn",
            fft::rfftn(&cube, Some(&[8, 9]), Some(&[1, 2]), None).unwrap(),
        ),
        (
            "irfftn",
            fft::irfftn(
                &fft::rfftn(&cube, None, Some(&[1, 2]), None).unwrap(),
                None,
                Some(&[1, 2]),
                None,
            )
            .unwrap(),
        ),
        ("fftfreq", fft::fftfreq(101, 0.3, [40]).unwrap()),
        ("rfftfreq", fft::rfftfreq(64, 1.0, [10]).unwrap()),
        ("fftshift", fft::fftshift(&z, None).unwrap()),
        ("ifftshift", fft::ifftshift(&cube, Some(&[0, 2])).unwrap()),
        ("complex product", (&z * &z.conj().unwrap())),
        ("complex abs", z.abs().unwrap()),
        ("complex angle", z.angle().unwrap()),
        ("complex exp", z.exp().unwrap()),
        ("complex sum", z.sum_axis(0).unwrap()),
        ("complex mean", z.mean().unwrap()),
        ("complex eq", z.eq(z.conj().unwrap()).unwrap()),
    ]
}

#[test]
fn fft_and_complex_on_the_cluster_match_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    assert_suite_matches_local(&client, suite());
}

#[test]
fn a_chunked_transform_axis_is_refused_before_anything_runs() {
    let x = tessera::default_rng(1).random(&[20, 30], [10, 10]).unwrap();
    let msg = fft::fft(&x, None, 1, None).unwrap_err().to_string();
    assert!(msg.contains("rechunk"), "{msg}");
}
