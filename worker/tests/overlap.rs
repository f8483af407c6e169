//! Overlapping blocks and boolean masks on a cluster, driven the way a user runs them: the real
//! scheduler and two workers. `overlap` (every boundary, irregular chunks, n-d), `trim_internal`
//! after elementwise work on the grown blocks, and the mask selections give the local executor's
//! result bit for bit.
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_suite_matches_local};
use tessera::{Boundary, Scalar};

#[test]
fn overlap_and_trim_on_a_cluster_equal_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = tessera::default_rng(7)
        .standard_normal(&[90, 70], [25, 30])
        .unwrap()
        .rechunk(vec![vec![20, 30, 25, 15], vec![30, 12, 28]])
        .unwrap();
    let mut suite = Vec::new();
    for (name, b) in [
        ("reflect", Boundary::Reflect),
        ("periodic", Boundary::Periodic),
        ("nearest", Boundary::Nearest),
        ("none", Boundary::None),
        ("constant", Boundary::Constant(Scalar::F64(0.25))),
    ] {
        let g = x.overlap(&[3, 2], &[b]).unwrap();
        // A stencil-like use: work on the grown blocks, then cut the margins.
        let w = (&g * 3.0) - g.sqrt().unwrap();
        let t = w.trim_internal(&[3, 2], &[b]).unwrap();
        suite.push((name, g));
        suite.push((name, t));
    }
    let i = x
        .gt(0.0)
        .unwrap()
        .overlap(&[1, 0], &[Boundary::Periodic])
        .unwrap();
    suite.push(("bool periodic", i));
    assert_suite_matches_local(&client, suite);
}

#[test]
fn masks_on_a_cluster_equal_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = tessera::default_rng(8)
        .standard_normal(&[60, 50], [25, 20])
        .unwrap();
    let m = x.gt(0.7).unwrap().rechunk([15, 50]).unwrap();
    // The counts computed on the cluster and locally agree, and so do the selections.
    let remote_counted = x.mask_select_on(&m, &client).unwrap();
    let local_counted = x.mask_select(&m).unwrap();
    assert_eq!(remote_counted.chunks(), local_counted.chunks());
    let suite = vec![
        ("mask_select", remote_counted),
        ("flatnonzero", m.flatnonzero_on(&client).unwrap()),
        ("argwhere", m.argwhere_on(&client).unwrap()),
        ("extract", x.extract(&x.lt(-1.0).unwrap()).unwrap()),
    ];
    assert_suite_matches_local(&client, suite);
}
