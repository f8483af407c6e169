//! Sorting and histograms on a cluster, driven the way a user runs them: the real scheduler and two
//! workers. A chunked sort and argsort (local sorts, then merges that read every block along the
//! axis from whichever worker holds it), topk, searchsorted and histograms give the local executor's
//! result bit for bit.
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_same_bits, local};
use tessera::{Bins, histogramdd};

#[test]
fn sort_and_histogram_on_a_cluster_equal_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = tessera::default_rng(3)
        .standard_normal(&[40, 3000], [15, 700])
        .unwrap();
    // Ties and NaN: rounded values, NaN where x > 2.
    let rounded = (&x * 4.0).round().unwrap();
    let nan = tessera::where_(x.gt(2.0).unwrap(), f64::NAN, &rounded).unwrap();
    let bins = Bins::Range {
        n: 50,
        range: (-3.0, 3.0),
    };
    let pairs = x.slice(tessera::s![..2, ..]).unwrap().t();
    let cases = vec![
        ("sort axis 1", nan.sort(1).unwrap()),
        ("sort axis 0", nan.sort(0).unwrap()),
        ("argsort axis 1", nan.argsort(-1).unwrap()),
        ("topk", nan.topk(25, 1).unwrap()),
        ("argtopk", nan.argtopk(-25, 1).unwrap()),
        ("histogram", x.histogram(&bins, None).unwrap().0),
        (
            "weighted histogram",
            x.histogram(&bins, Some(&rounded)).unwrap().0,
        ),
        (
            "histogramdd",
            histogramdd(
                &pairs.rechunk([700, 2]).unwrap(),
                &[bins.clone(), bins.clone()],
                None,
            )
            .unwrap()
            .0,
        ),
    ];
    for (what, a) in cases {
        let remote = a.compute_on(&client).unwrap();
        assert_same_bits(&local(&a), &remote, what);
    }
}
