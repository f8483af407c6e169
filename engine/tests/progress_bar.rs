//! The progress bar as a user's program shows it: each test re-runs this test binary as a child
//! process with `TESSERA_PROGRESS` set (the bar is process-wide) and reads the child's standard error,
//! which is a pipe, so the bar is written as plain lines.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Set in the child: which work to do.
const CHILD_ENV: &str = "TESSERA_PROGRESS_TEST_CHILD";

/// Runs `test` (a test name of this file) in a child process with `TESSERA_PROGRESS=progress` and
/// returns its standard error.
fn child_stderr(test: &str, progress: &str, dir: &std::path::Path) -> String {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env("TESSERA_PROGRESS", progress)
        .output()
        .expect("the child test runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child {test} failed: {stderr}");
    stderr
}

/// A 24-chunk array whose every block takes `pause` to compute.
fn slow_array(pause: Duration) -> tessera::Array {
    let x = tessera::arange(0.0, 24.0 * 64.0, 1.0, [64]).unwrap();
    x.map_blocks(move |b: ndarray::ArrayViewD<f64>| {
        std::thread::sleep(pause);
        b.mapv(|v| v * 2.0)
    })
    .unwrap()
}

/// The progress lines among `stderr`'s: (done, total, percent).
fn progress_lines(stderr: &str) -> Vec<(u64, u64, u64)> {
    stderr
        .lines()
        .filter_map(tessera::progress_bar::parse_line)
        .collect()
}

#[test]
fn to_npy_longer_than_a_second_logs_progress_to_its_end() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let path = PathBuf::from(dir).join("slow.npy");
        slow_array(Duration::from_millis(120))
            .to_npy(&path)
            .unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stderr = child_stderr(
        "to_npy_longer_than_a_second_logs_progress_to_its_end",
        "always",
        dir.path(),
    );
    let lines = progress_lines(&stderr);
    assert!(!lines.is_empty(), "no progress lines in: {stderr}");
    let &(done, total, percent) = lines.last().unwrap();
    assert_eq!((done, percent), (total, 100), "the last line: {stderr}");
    assert!(total >= 24, "one task per block at least: {stderr}");
    // Counts only move forward.
    assert!(lines.windows(2).all(|w| w[0].0 <= w[1].0), "{stderr}");
    let written = ndarray_npy_len(&dir.path().join("slow.npy"));
    assert_eq!(written, 24 * 64);
}

#[test]
fn short_work_and_an_opt_out_print_nothing() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let pause = if std::env::var("TESSERA_PROGRESS").as_deref() == Ok("0") {
            Duration::from_millis(120)
        } else {
            Duration::ZERO
        };
        let path = PathBuf::from(dir).join("x.npy");
        slow_array(pause).to_npy(&path).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = "short_work_and_an_opt_out_print_nothing";
    for progress in ["always", "0"] {
        let stderr = child_stderr(name, progress, dir.path());
        assert!(
            progress_lines(&stderr).is_empty(),
            "TESSERA_PROGRESS={progress}: {stderr}"
        );
    }
}

/// The element count of a 1-d `.npy` file, read back with tessera.
fn ndarray_npy_len(path: &std::path::Path) -> usize {
    let back = tessera::from_npy(path, [4096]).unwrap();
    let v = back.compute::<f64>().unwrap();
    assert!(v.iter().enumerate().all(|(i, &x)| x == 2.0 * i as f64));
    v.len()
}
