//! The distributed executor driven the way a user runs it: the real `tessera-scheduler` and
//! `tessera-worker` binaries on loopback ports, a `tessera::Client`, and results compared bit for bit
//! with the local executor. Also: a worker killed with SIGKILL mid-run, malformed graphs, two clients
//! at once, and a closure that cannot leave the process.
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_same_bits, assert_suite_matches_local, local};
use tessera::{Array, Client, Error, ReduceOptions, s};

fn suite() -> Vec<(&'static str, Array)> {
    let rng = tessera::default_rng(7);
    let x = rng.random(&[300, 200], [70, 45]).unwrap();
    let n = rng.standard_normal(&[120, 90], [50, 40]).unwrap();
    let i = tessera::arange(0i64, 1000, 1, [128])
        .unwrap()
        .reshape(&[40, 25])
        .unwrap();
    let data = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[13, 17]), |ix| {
        (ix[0] * 17 + ix[1]) as f64 * 0.5
    });
    let f = tessera::from_array(data, [5, 6]).unwrap();
    let sq = x.slice(s![..150, ..150]).unwrap();
    vec![
        ("mean", x.mean().unwrap()),
        ("fused chain", ((&x * 2.0) + 1.0).sin().unwrap()),
        (
            "sum axis 0",
            x.sum_with(&ReduceOptions::axes([0]).split_every(3))
                .unwrap(),
        ),
        ("x + x.T mean", (&sq + &sq.t()).mean_axis(0).unwrap()),
        (
            "var ddof 1",
            n.var_with(&ReduceOptions::axis(1).ddof(1.0).keepdims(true))
                .unwrap(),
        ),
        ("std", n.std().unwrap()),
        ("argmax", n.argmax_axis(0).unwrap()),
        ("int sum", i.sum_axis(1).unwrap()),
        (
            "where",
            tessera::where_(n.gt(0.0).unwrap(), &n, 0.0).unwrap(),
        ),
        ("matmul x @ x.T", sq.matmul(&sq.t()).unwrap()),
        // Every distribution travels with its parameters and draws the same bits on a worker.
        (
            "integers",
            rng.integers(-3, 1 << 40, &[50, 40], [17, 9]).unwrap(),
        ),
        (
            "exponential",
            rng.exponential(2.0, &[50, 40], [17, 9]).unwrap(),
        ),
        ("gamma", rng.gamma(0.7, 3.0, &[50, 40], [17, 9]).unwrap()),
        ("beta", rng.beta(0.4, 2.5, &[50, 40], [17, 9]).unwrap()),
        ("poisson", rng.poisson(37.5, &[50, 40], [17, 9]).unwrap()),
        (
            "binomial",
            rng.binomial(80, 0.3, &[50, 40], [17, 9]).unwrap(),
        ),
        // Weighted choice: the uniform source and the weights' cumulative table travel, and the
        // lookup runs on the worker.
        (
            "choice p",
            rng.choice_weighted(5, 3000, true, &[0.1, 0.0, 2.5, 1.0, 0.4], [700])
                .unwrap(),
        ),
        ("matmul x.T @ x", sq.t().matmul(&sq).unwrap()),
        // Diagonal products read one chunk twice.
        ("matmul x @ x", sq.matmul(&sq).unwrap()),
        ("matmul a @ b.T", sq.matmul(&(&sq + 1.0).t()).unwrap()),
        ("slice step", x.slice(s![10..290;-3, 5..]).unwrap()),
        ("rechunk", x.rechunk([100, 100]).unwrap()),
        ("concatenate", tessera::concatenate(&[&f, &f], 1).unwrap()),
        (
            "stack",
            tessera::stack(&[&f, &f.clip(3.0, 50.0).unwrap()], 0).unwrap(),
        ),
        ("from_array transpose", f.t()),
        ("astype any", i.gt(500).unwrap().any_axis(0).unwrap()),
    ]
}

#[test]
fn cluster_results_match_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    assert_suite_matches_local(&client, suite());
    // Several outputs in one job share their common subgraph.
    let x = tessera::default_rng(3)
        .random(&[100, 100], [30, 30])
        .unwrap();
    let (a, b) = (x.sum().unwrap(), x.max_axis(1).unwrap());
    // Compared with the same graph locally: sharing `x` keeps it from fusing into the sum, which
    // rounds differently from the fused `random → sum`.
    let both = client.compute_many(&[&a, &b]).unwrap();
    let here = tessera::compute_many(&[&a, &b]).unwrap();
    assert_same_bits(&both[0], &here[0], "compute_many sum");
    assert_same_bits(&both[1], &here[1], "compute_many max");
    // persist keeps the chunks on the workers: computing it on the cluster gives them back (more in
    // tests/persist.rs).
    let p = client.persist(&x).unwrap();
    assert_same_bits(
        &client.compute_many(&[&p]).unwrap()[0],
        &local(&x),
        "persist",
    );
}

/// A representative selection of the everyday functions: table ufuncs (one and two arguments, a
/// scalar on the left), NaN-aware reductions, scans across chunks, quantiles, and manipulation
/// built from slices, concatenation and broadcasting.
fn functions_suite() -> Vec<(&'static str, Array)> {
    let rng = tessera::default_rng(9);
    let x = rng.standard_normal(&[90, 70], [25, 30]).unwrap();
    let nanny = tessera::where_(x.gt(1.2).unwrap(), f64::NAN, &x).unwrap();
    let i = tessera::arange(-500i64, 500, 1, [128])
        .unwrap()
        .reshape(&[40, 25])
        .unwrap();
    use tessera::{PadMode, ufunc};
    vec![
        ("arctan2", x.arctan2(&x + 0.5).unwrap()),
        ("arcsinh cbrt", x.arcsinh().unwrap().cbrt().unwrap()),
        ("power scalar base", ufunc::power(2.0, &x).unwrap()),
        ("floor_divide int", i.floor_divide(7i64).unwrap()),
        (
            "shifts",
            i.left_shift(3i64).unwrap().right_shift(1i64).unwrap(),
        ),
        (
            "logical_xor",
            x.gt(0.0).unwrap().logical_xor(&nanny).unwrap(),
        ),
        ("less scalar left", ufunc::less(0.25, &x).unwrap()),
        ("around", x.around(2).unwrap()),
        (
            "nansum axis 1",
            nanny
                .nansum_with(&ReduceOptions::axis(1).split_every(2))
                .unwrap(),
        ),
        ("nanmean", nanny.nanmean().unwrap()),
        (
            "nanstd axis 0",
            nanny
                .nanstd_with(&ReduceOptions::axis(0).ddof(1.0))
                .unwrap(),
        ),
        (
            "nanmax",
            nanny.nanmax_with(&ReduceOptions::axis(0)).unwrap(),
        ),
        (
            "nanargmin",
            nanny.nanargmin_with(&ReduceOptions::axis(1)).unwrap(),
        ),
        (
            "count_nonzero",
            i.count_nonzero_with(&ReduceOptions::axis(0)).unwrap(),
        ),
        ("cumsum axis 0", x.cumsum(Some(0)).unwrap()),
        (
            "nancumprod axis 1",
            (&nanny / 2.0).nancumprod(Some(1)).unwrap(),
        ),
        ("int cumsum flat", i.cumsum(None).unwrap()),
        ("median axis 0", nanny.nanmedian(Some(0)).unwrap()),
        ("quantile", x.quantile(&[0.1, 0.5, 0.9], Some(1)).unwrap()),
        ("roll", x.roll(17, Some(1)).unwrap()),
        (
            "pad reflect",
            x.pad(&[(3, 2), (0, 4)], PadMode::Reflect).unwrap(),
        ),
        ("diff 2", x.diff(2, 0).unwrap()),
        ("triu", x.triu(-3).unwrap()),
        ("diagonal", x.diagonal(5).unwrap()),
        ("tile", i.tile(&[2, 1, 2]).unwrap()),
    ]
}

#[test]
fn everyday_functions_match_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    assert_suite_matches_local(&client, functions_suite());
}

#[test]
fn the_headline_job_gives_the_same_mean_on_the_cluster() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = tessera::default_rng(42)
        .random(&[2000, 2000], [500, 500])
        .unwrap();
    let m = x.mean().unwrap();
    let remote: f64 = client.compute_scalar(&m).unwrap();
    let here: f64 = m.compute_scalar().unwrap();
    assert_eq!(remote.to_bits(), here.to_bits());
    assert_eq!(client.status().unwrap().workers.len(), 2);
}

#[test]
fn a_killed_worker_is_replaced_and_the_result_is_still_right() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    // Enough work that the kill lands mid-run: 6400 chunks of elementwise math, then a tree sum.
    let y = || {
        tessera::default_rng(11)
            .random(&[8000, 8000], [100, 100])
            .unwrap()
            .sin()
            .unwrap()
            .exp()
            .unwrap()
            .sqrt()
            .unwrap()
            .sum_with(&ReduceOptions::all().split_every(4))
            .unwrap()
    };
    let expected = local(&y());
    let (address, secret) = (cluster.address.clone(), cluster.secret_file.clone());
    let job = std::thread::spawn(move || y().compute_on(&common::connect(&address, &secret)));
    // Mid-run: the victim holds chunks of the job.
    cluster.wait_until_worker_holds_chunks(&client, 0);
    // SAFETY: sends a signal to a child process this test started (and has not reaped).
    assert_eq!(
        unsafe { libc::kill(cluster.workers[0].id() as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert!(
        !job.is_finished(),
        "the job ended before the worker was killed: make it longer"
    );
    // A third worker joins mid-run and must get work too.
    cluster.add_worker();
    let remote = job.join().unwrap().expect("the job survives a lost worker");
    assert_same_bits(&remote, &expected, "sum after SIGKILL");
    // The cluster keeps serving with the survivors.
    let again = y().compute_on(&client).unwrap();
    assert_same_bits(&again, &expected, "sum after recovery");
}

#[test]
fn malformed_graphs_are_rejected_and_the_scheduler_keeps_serving() {
    use tessera_proto::v1 as pb;
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = tessera::default_rng(1).random(&[50, 50], [10, 10]).unwrap();
    let good =
        tessera::wire::graph_to_proto(&tessera::optimize::optimize(x.sum().unwrap().graph()))
            .unwrap();

    let submit = |graph: pb::Graph| -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut sched =
                common::raw_scheduler(&cluster.address, Some(&cluster.secret_file)).await;
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(pb::ClientMessage {
                msg: Some(pb::client_message::Msg::Submit(pb::Submit {
                    protocol_version: tessera_proto::PROTOCOL_VERSION,
                    graph: Some(graph),
                })),
            })
            .await
            .unwrap();
            let mut events = sched
                .run(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .unwrap()
                .into_inner();
            while let Some(e) = events.message().await.unwrap() {
                if let Some(pb::client_event::Event::Failed(f)) = e.event {
                    return f.message;
                }
            }
            panic!("a malformed graph was not rejected");
        })
    };

    // A missing dependency: drop the first layer.
    let mut missing = good.clone();
    missing.layers.remove(0);
    let msg = submit(missing);
    assert!(msg.contains("not") || msg.contains("missing"), "{msg}");
    // A cycle / forward reference: reverse the layers.
    let mut cycle = good.clone();
    cycle.layers.reverse();
    assert!(!submit(cycle).is_empty());
    // An unknown op: clear the op of a layer.
    let mut unknown = good.clone();
    unknown.layers[0].op = None;
    assert!(!submit(unknown).is_empty());
    // A shape mismatch: change a chunk size.
    let mut shape = good.clone();
    if let Some(meta) = shape.layers[0].meta.as_mut()
        && let Some(chunks) = meta.chunks.as_mut()
    {
        chunks.axes[0].sizes[0] += 1;
    }
    assert!(!submit(shape).is_empty());

    // Nothing else was disturbed.
    let m = x.sum().unwrap();
    assert_same_bits(
        &m.compute_on(&client).unwrap(),
        &local(&m),
        "after rejections",
    );
}

#[test]
fn two_clients_at_once_and_errors_that_name_the_problem() {
    let cluster = Cluster::start(2);
    let threads: Vec<_> = (0..2u64)
        .map(|seed| {
            let (address, secret) = (cluster.address.clone(), cluster.secret_file.clone());
            std::thread::spawn(move || {
                let client = common::connect(&address, &secret);
                let x = tessera::default_rng(seed)
                    .random(&[600, 600], [100, 100])
                    .unwrap();
                let y = (&x * &x).mean_axis(1).unwrap();
                let remote = y.compute_on(&client).unwrap();
                assert_same_bits(&remote, &local(&y), "concurrent client");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let client = cluster.client();
    // A closure cannot cross processes.
    let x = tessera::arange(0.0, 10.0, 1.0, [5]).unwrap();
    let mapped = x
        .map_blocks(|b: ndarray::ArrayViewD<f64>| b.to_owned())
        .unwrap();
    match mapped.compute_on(&client) {
        Err(Error::NotSerializable { .. }) => {}
        other => panic!("expected NotSerializable, got {other:?}"),
    }
    // A task that fails deterministically is reported with its key, not retried forever.
    let dir = std::env::temp_dir().join(format!("tessera-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vanishing.npy");
    tessera::ones::<f64>(&[10], [5])
        .unwrap()
        .to_npy(&path)
        .unwrap();
    let a = tessera::from_npy(&path, [5]).unwrap().sum().unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = a.compute_on(&client).unwrap_err().to_string();
    assert!(err.contains("vanishing.npy"), "{err}");
    // A bad address is a clear error.
    let err = Client::connect("http://127.0.0.1:1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
}
