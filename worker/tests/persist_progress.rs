//! The progress bar of a cluster persist (`client.persist`, `array.persist_on(&client)`) as a user's
//! program shows it, like `compute`'s: the test starts a real cluster, then re-runs this test binary
//! as a child process (the bar is process-wide) with `TESSERA_PROGRESS` set, which persists an array
//! on that cluster; its standard error is a pipe, so the bar is written as plain lines, read here.

mod common;

use std::process::Command;

use common::{Cluster, assert_same_bits, connect, local};

/// Set in the child: the scheduler's address and its secret file, `ADDRESS SECRET_FILE`.
const CHILD_ENV: &str = "TESSERA_PERSIST_PROGRESS_CHILD";

/// An array whose persist lasts more than a second on a test cluster (two one-thread workers) even
/// on an idle machine: a 2800² matrix times its transpose in 350² blocks (22 G multiply-adds; about
/// 5 s on the loaded 2-core CI machine, where a 1200² one took 0.6 s: too short to be sure of a bar).
fn slow_array() -> tessera::Array {
    let x = tessera::default_rng(3)
        .random(&[2800, 2800], [350, 350])
        .unwrap();
    x.matmul(&x.t()).unwrap()
}

/// Runs `test` of this file in a child process connected to `cluster`, with
/// `TESSERA_PROGRESS=progress`, and returns its standard error.
fn child_stderr(test: &str, progress: &str, cluster: &Cluster) -> String {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{} {}", cluster.address, cluster.secret_file.display()),
        )
        .env("TESSERA_PROGRESS", progress)
        .output()
        .expect("the child test runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child {test} failed: {stderr}");
    stderr
}

/// In the child: the client for the parent's cluster, if this process is the child.
fn child_client() -> Option<tessera::Client> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    let (address, secret) = spec.split_once(' ').expect("ADDRESS SECRET_FILE");
    Some(connect(address, std::path::Path::new(secret)))
}

/// The progress lines among `stderr`'s: (done, total, percent).
fn progress_lines(stderr: &str) -> Vec<(u64, u64, u64)> {
    stderr
        .lines()
        .filter_map(tessera::progress_bar::parse_line)
        .collect()
}

/// The child's work: persist the slow array on the cluster (the bar shows while it runs), then check
/// the kept chunks against the local executor.
fn persist_slow_array(client: &tessera::Client) {
    let started = std::time::Instant::now();
    let kept = client.persist(&slow_array()).unwrap();
    // For the parent's messages: how long the work took.
    eprintln!("persisted in {:?}", started.elapsed());
    // The check's own compute shows no bar, so every line is the persist's.
    tessera::set_progress_bar(false);
    assert_same_bits(
        &local(&slow_array()),
        &client.compute_many(&[&kept]).unwrap()[0],
        "the persisted running sum",
    );
}

#[test]
fn a_cluster_persist_longer_than_a_second_logs_progress_to_its_end_and_can_be_turned_off() {
    if let Some(client) = child_client() {
        persist_slow_array(&client);
        return;
    }
    let cluster = Cluster::start(2);
    let stderr = child_stderr(
        "a_cluster_persist_longer_than_a_second_logs_progress_to_its_end_and_can_be_turned_off",
        "always",
        &cluster,
    );
    let lines = progress_lines(&stderr);
    assert!(
        lines.len() >= 2,
        "more than a second of work logs a line a second and the last: {stderr}"
    );
    let &(done, total, percent) = lines.last().unwrap();
    assert_eq!((done, percent), (total, 100), "the last line: {stderr}");
    assert!(total >= 64, "one task per output block at least: {stderr}");
    // Counts only move forward, and once the first report came (before it the line reads 0/0) the
    // total stays the job's.
    let reported: Vec<_> = lines.iter().filter(|l| l.1 > 0).collect();
    assert!(
        reported
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1),
        "{stderr}"
    );

    // The program's own choice wins over TESSERA_PROGRESS=always: nothing.
    let stderr = child_stderr(
        "a_cluster_persist_with_the_bar_turned_off_prints_nothing",
        "always",
        &cluster,
    );
    assert!(progress_lines(&stderr).is_empty(), "{stderr}");
}

/// Run only as the child of the test above (one cluster for both, one after the other).
#[test]
fn a_cluster_persist_with_the_bar_turned_off_prints_nothing() {
    if let Some(client) = child_client() {
        tessera::set_progress_bar(false);
        let kept = client.persist(&slow_array()).unwrap();
        assert_eq!(kept.shape(), &[2800, 2800]);
    }
}
