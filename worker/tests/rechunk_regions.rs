//! An all-to-all rechunk on a real cluster (the scheduler and two worker binaries on loopback):
//! row bands to column bands is one layer of one task per column band, each reading only the part
//! of every row band it needs — from memory here, or fetched from the peer as just that region —
//! so the answer is exact and the bytes moved between the workers are about the array's size, not
//! the number of bands times it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Cluster, free_port, poll};
use tessera::graph::expand::TaskGraph;
use tessera::ops::Op;

/// `x[i, j]`: no two elements alike, so an element from the wrong place shows.
fn value(i: usize, j: usize) -> f64 {
    (i * 1000 + j) as f64 + 0.25
}

/// The dashboard's bearer token, from the URL the scheduler's `dashboard-url` subcommand prints.
fn dashboard_token(cluster: &Cluster, dashboard: &str) -> String {
    let url = cluster.dashboard_url(dashboard);
    url.split_once("token=")
        .expect("a URL with a token")
        .1
        .to_string()
}

/// The value of metric `name` (no labels) in the dashboard's `/metrics`.
fn metric(dashboard: &str, token: &str, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(dashboard).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {dashboard}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn row_bands_to_column_bands_on_two_workers_read_only_regions() {
    let (cluster, transfer) = rechunk_on_two_workers(&[]);
    drop((cluster, transfer));
}

/// The same with workers of 1 MiB, less than the bands each holds: sources are spilled, and the
/// regions are read from the spill files (by a target here, or to send to the peer), never the
/// whole file; the answer is as exact and the bytes moved as few.
#[test]
fn row_bands_to_column_bands_read_regions_from_spill_files() {
    let spill = tempfile::tempdir().unwrap();
    let dir = spill.path().to_str().unwrap();
    let (cluster, _) = rechunk_on_two_workers(&["--memory-limit", "1MiB", "--spill-dir", dir]);
    // Workers report their spill counters with their status, so the scheduler's view may lag the
    // job's end by a report.
    let client = cluster.client();
    let (writes, reads) = poll(
        "the workers' spill writes to reach the scheduler's status",
        Duration::from_secs(10),
        |last| {
            let status = client.status().ok()?;
            let writes: u64 = status.workers.iter().map(|w| w.spill_writes).sum();
            let reads: u64 = status.workers.iter().map(|w| w.spill_reads).sum();
            *last = format!("{writes} writes, {reads} reads");
            (writes > 0).then_some((writes, reads))
        },
    );
    eprintln!("spill writes {writes}, reads {reads}");
}

/// Runs the rechunk on a cluster of two workers started with `worker_flags`, checks it (see the
/// module docs), and returns the cluster and the bytes the job's tasks fetched.
fn rechunk_on_two_workers(worker_flags: &[&str]) -> (Cluster, f64) {
    let port = free_port();
    let dashboard = format!("127.0.0.1:{port}");
    let mut cluster = Cluster::start_with(0, &["--dashboard", &dashboard]);
    for _ in 0..2 {
        cluster.add_worker_with(worker_flags);
    }
    cluster.wait_for_workers(2);
    let client = cluster.client();
    let token = dashboard_token(&cluster, &dashboard);

    // 500 × 480 float64 (1.92 MB) in 8 row bands (the last short) to 6 column bands.
    let (rows, cols, band_rows, band_cols) = (500, 480, 64, 80);
    let data = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[rows, cols]), |i| value(i[0], i[1]));
    // Computed (doubled), so the rechunk cannot be folded into how the data is made.
    let x = &tessera::from_array(data.clone(), [band_rows, cols]).unwrap() * 2.0;
    let y = x.rechunk([rows, band_cols]).unwrap();
    let (n, m) = (rows.div_ceil(band_rows), cols / band_cols);

    // The job the client sends: the rechunk is one layer of M tasks, each reading all N bands, with
    // no intermediate layer; every other layer makes the N bands.
    let tg = TaskGraph::expand(tessera::optimize::optimize(y.graph())).unwrap();
    let layers = tg.graph.layers();
    let mut tasks_per_layer = vec![0; layers.len()];
    for t in &tg.tasks {
        tasks_per_layer[t.layer as usize] += 1;
    }
    let rechunk_layers: Vec<usize> = (0..layers.len())
        .filter(|&l| matches!(layers[l].op, Op::Rechunk))
        .collect();
    assert_eq!(rechunk_layers.len(), 1, "one rechunk layer");
    let rechunk = rechunk_layers[0];
    assert_eq!(tasks_per_layer[rechunk], m, "rechunk tasks");
    for (l, &count) in tasks_per_layer.iter().enumerate() {
        assert!(
            l == rechunk || count == n,
            "layer {} has {count} tasks",
            layers[l].id
        );
    }
    assert!(
        tg.tasks
            .iter()
            .filter(|t| t.layer as usize == rechunk)
            .all(|t| t.deps.len() == n),
        "each target reads every band"
    );

    let got = match y.compute_on(&client).unwrap() {
        tessera::ArrayData::F64(a) => a,
        other => panic!("float64, not {:?}", other.dtype()),
    };
    let want = data.mapv(|v| v * 2.0);
    assert_eq!(got.shape(), want.shape());
    assert!(got == want, "the rechunked array differs from the oracle");

    // Bytes fetched by tasks from the other worker: at most every element once (a region of each
    // band per target), where whole bands would be about N/2 times the array.
    let array_bytes = (rows * cols * 8) as f64;
    let transfer = poll(
        "the job's tasks to be counted in /metrics",
        Duration::from_secs(10),
        |last| {
            let done = metric(&dashboard, &token, "tessera_tasks_completed_total")?;
            let transfer = metric(&dashboard, &token, "tessera_transfer_bytes_total")?;
            *last = format!("{done} tasks, {transfer} bytes");
            (done == tg.tasks.len() as f64).then_some(transfer)
        },
    );
    eprintln!(
        "row bands to column bands, {n} -> {m}: {transfer} bytes fetched, {:.2} × the array",
        transfer / array_bytes
    );
    assert!(
        transfer > 0.0,
        "both workers ran tasks, so some regions crossed"
    );
    let fetched_whole = m as f64 * array_bytes;
    assert!(transfer < fetched_whole / 2.0);
    assert!(
        transfer <= array_bytes + (m * 1024) as f64,
        "{transfer} bytes fetched for a {array_bytes}-byte array"
    );
    (cluster, transfer)
}
