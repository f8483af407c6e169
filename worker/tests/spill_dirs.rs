//! Spill directories left behind by workers killed with SIGKILL, with the real binaries: the next
//! worker started on the same `--spill-dir` removes them at start-up, and never the directory of a
//! worker that is still running.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, poll};

/// The spill directories in `parent`, by name.
fn spill_dirs(parent: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("tessera-spill-"))
        })
        .collect();
    dirs.sort();
    dirs
}

/// Waits until worker `pid`'s spill directory exists with its `owner` file; returns its path.
fn wait_for_dir_of(parent: &Path, pid: u32) -> PathBuf {
    poll(
        "the worker's spill directory",
        Duration::from_secs(30),
        |last| {
            let dirs = spill_dirs(parent);
            *last = format!("{dirs:?}");
            dirs.into_iter().find(|d| {
                let name = d.file_name().unwrap().to_str().unwrap();
                name.starts_with(&format!("tessera-spill-{pid}-"))
                    && std::fs::read_to_string(d.join("owner"))
                        .is_ok_and(|o| o.contains(&format!("pid={pid}\n")))
            })
        },
    )
}

#[test]
fn a_killed_workers_spill_directory_is_removed_by_the_next_worker_and_a_live_ones_is_not() {
    let spill = tempfile::tempdir().unwrap();
    let spill_dir = spill.path().to_str().unwrap();
    let mut cluster = Cluster::start(0);
    let flags = ["--memory-limit", "256MiB", "--spill-dir", spill_dir];

    // Worker 0 runs; worker 1 is killed with SIGKILL and leaves its directory (with a spilled
    // chunk's worth of file in it) behind.
    cluster.add_worker_with(&flags);
    cluster.add_worker_with(&flags);
    cluster.wait_for_workers(2);
    let live = wait_for_dir_of(spill.path(), cluster.workers[0].id());
    let killed_pid = cluster.workers[1].id();
    let orphan = wait_for_dir_of(spill.path(), killed_pid);
    std::fs::write(orphan.join("1-7.chunk"), vec![0u8; 1 << 20]).unwrap();
    cluster.workers[1].kill().unwrap();
    cluster.workers[1].wait().unwrap();
    assert!(
        orphan.exists(),
        "SIGKILL cannot clean up, so the directory is there"
    );

    // A directory being created by a worker starting right now has no owner file yet: kept.
    let unowned = spill
        .path()
        .join(format!("tessera-spill-{killed_pid}-starting"));
    std::fs::create_dir(&unowned).unwrap();

    // The next worker on the same --spill-dir removes the orphan and keeps the live worker's.
    cluster.add_worker_with(&flags);
    let fresh = wait_for_dir_of(spill.path(), cluster.workers[2].id());
    assert!(!orphan.exists(), "{} was left behind", orphan.display());
    let mut want = vec![live.clone(), fresh.clone(), unowned.clone()];
    want.sort();
    assert_eq!(spill_dirs(spill.path()), want);

    // Both surviving workers still compute: the live worker's files were not touched.
    cluster.wait_for_workers(2);
    cluster.assert_headline_job_is_exact();
    assert!(live.join("owner").exists());
}
