//! `tessera::linalg` on the distributed executor: the real scheduler and worker binaries on loopback
//! ports, and every result compared bit for bit with the local executor — TSQR `qr` (row blocks
//! factored on different workers, the stacked `R`s on one), the TSQR `svd`, a one-chunk `solve`, and
//! products built from existing ops (`einsum`, batched `matmul`).
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_suite_matches_local};
use tessera::{Array, linalg};

fn suite() -> Vec<(&'static str, Array)> {
    let rng = tessera::default_rng(11);
    // Irregular row blocks, each with at least as many rows as the 12 columns.
    let a = rng
        .standard_normal(&[530, 12], vec![vec![100, 130, 50, 200, 50], vec![12]])
        .unwrap();
    let a32 = a.astype(tessera::DType::F32).unwrap();
    let (q, r) = linalg::qr(&a).unwrap();
    let (q32, r32) = linalg::qr(&a32).unwrap();
    let (u, s, vt) = linalg::svd(&a).unwrap();
    let sq = rng.random(&[40, 40], [20, 20]).unwrap();
    let spd = &sq.matmul(&sq.t()).unwrap()
        + &tessera::eye(40, None, 0, tessera::DType::F64, [20, 20]).unwrap();
    let b = rng.random(&[40, 3], [20, 3]).unwrap();
    let batch = rng.random(&[4, 30, 20], [2, 15, 10]).unwrap();
    let m = rng.random(&[20, 6], [10, 6]).unwrap();
    vec![
        ("qr q", q),
        ("qr r", r),
        ("qr q f32", q32),
        ("qr r f32", r32),
        ("svd u", u),
        ("svd s", s),
        ("svd vt", vt),
        ("solve", linalg::solve(&spd, &b).unwrap()),
        ("cholesky", linalg::cholesky(&spd).unwrap()),
        ("lstsq", linalg::lstsq(&a, &a.sum_axis(1).unwrap()).unwrap()),
        ("batched matmul", linalg::matmul(&batch, &m).unwrap()),
        ("einsum trace", linalg::einsum("ii", &[&sq]).unwrap()),
    ]
}

#[test]
fn linalg_on_the_cluster_matches_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    assert_suite_matches_local(&client, suite());
}

#[test]
fn a_singular_matrix_fails_on_the_cluster_with_its_shape_named() {
    let cluster = Cluster::start(1);
    let client = cluster.client();
    let a = tessera::ones::<f64>(&[5, 5], [5, 5]).unwrap();
    let err = linalg::inv(&a)
        .unwrap()
        .compute_on(&client)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("singular") && err.contains("[5, 5]"),
        "unexpected error: {err}"
    );
}
