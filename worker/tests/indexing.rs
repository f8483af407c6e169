//! Point indexing (`vindex`), `take_along_axis` and `block` on a cluster, driven the way a user
//! runs them: the real scheduler and two workers. Each gives the local executor's result bit for
//! bit, including a `take_along_axis` that gathers across chunks of the taken axis held by either
//! worker, and an out-of-range index is the job's typed error, not a crashed worker.
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_same_bits, local};
use ndarray::{ArrayD, IxDyn};
use tessera::{block, take_along_axis};

#[test]
fn vindex_take_along_axis_and_block_on_a_cluster_equal_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = tessera::default_rng(7)
        .standard_normal(&[300, 40, 6], [70, 15, 4])
        .unwrap();
    let rows = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![299i64, 0, -1, 150, 71, 71]).unwrap();
    let cols = ArrayD::from_shape_vec(IxDyn(&[3]), vec![39i64, -40, 16]).unwrap();
    let along = x.argsort(0).unwrap();
    let y = tessera::default_rng(8)
        .random(&[300, 40], [70, 15])
        .unwrap();
    let top = tessera::concatenate(&[&y, &y], 1).unwrap();
    let cases = vec![
        ("vindex", x.vindex(&[rows.clone(), cols.clone()]).unwrap()),
        ("vindex 1 axis", x.vindex(&[[5i64, 299, 5]]).unwrap()),
        (
            "take_along_axis sort",
            take_along_axis(&x, &along, 0).unwrap(),
        ),
        (
            "take_along_axis broadcast",
            take_along_axis(&x, &along.slice(tessera::s![..50, ..1, ..]).unwrap(), 0).unwrap(),
        ),
        ("block", block(vec![vec![&y, &y], vec![&top]]).unwrap()),
    ];
    for (what, a) in cases {
        let remote = a.compute_on(&client).unwrap();
        assert_same_bits(&local(&a), &remote, what);
    }
    // take_along_axis of argsort is sort, on the cluster too.
    assert_same_bits(
        &take_along_axis(&x, &along, 0)
            .unwrap()
            .compute_on(&client)
            .unwrap(),
        &local(&x.sort(0).unwrap()),
        "take_along_axis(argsort) vs sort",
    );
    // An index out of range (data, so found when the task runs) fails the job with the typed
    // message, and the workers keep serving.
    let bad = tessera::full(&[3, 40, 6], tessera::Scalar::I64(300), [3, 15, 4]).unwrap();
    let err = take_along_axis(&x, &bad, 0)
        .unwrap()
        .compute_on(&client)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("index 300 is out of bounds for axis 0 of length 300"),
        "{err}"
    );
    let again = x.vindex(&[[1i64]]).unwrap();
    assert_same_bits(&local(&again), &again.compute_on(&client).unwrap(), "after");
}
