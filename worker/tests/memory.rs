//! Bounded memory on the cluster, proven with the real binaries: workers started with
//! `--memory-limit` run jobs over data four times their limit — reading a 2 GiB `.npy` file and
//! holding all of it until a global mean is known — with the exact answer, while the peak resident
//! memory of each worker process (`VmHWM`) stays within its limit plus 64 MiB, alone and beside a
//! worker with half its memory; a job with one 80 GB
//! chunk is refused at submit, saying what to rechunk to; and a worker whose spill disk is full fails
//! the task with the reason, and stays up.
//!
//! The answers are checked against plain loops: the file holds `x[i, j] = (i mod 7) + j / 1000`, so
//! over the whole grid the variance is the variance of the row term plus that of the column term.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cluster, free_port, peak_rss_bytes, poll, wait_exit, worker_binary};
use tessera::Client;

const MIB: u64 = 1 << 20;
/// What a worker process may use besides its limit: the binary, its runtime and thread stacks, and
/// the transient encodings of chunks it sends.
const SLACK: u64 = 64 * MIB;

fn value(i: usize, j: usize) -> f64 {
    (i % 7) as f64 + j as f64 / 1000.0
}

/// Writes `x[i, j] = value(i, j)` as an `n × n` float64 `.npy` file, a row at a time.
fn write_npy(path: &Path, n: usize) {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, {n}), }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(b"\x93NUMPY\x01\x00").unwrap();
    out.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    out.write_all(header.as_bytes()).unwrap();
    let mut row = Vec::with_capacity(n * 8);
    for i in 0..n {
        row.clear();
        for j in 0..n {
            row.extend_from_slice(&value(i, j).to_le_bytes());
        }
        out.write_all(&row).unwrap();
    }
    out.flush().unwrap();
}

/// The population standard deviation of `value` over the `n × n` grid: the row and column terms
/// vary independently over the grid, so their variances add.
fn expected_std(n: usize) -> f64 {
    let var = |f: &dyn Fn(usize) -> f64| {
        let mean = (0..n).map(f).sum::<f64>() / n as f64;
        (0..n).map(|k| (f(k) - mean).powi(2)).sum::<f64>() / n as f64
    };
    (var(&|i| (i % 7) as f64) + var(&|j| j as f64 / 1000.0)).sqrt()
}

/// A 2 GiB file (16384 × 16384 float64) in a temporary directory of its own; returns the directory
/// (the file goes with it), the file and its side.
fn two_gib_file() -> (tempfile::TempDir, PathBuf, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let n = 16384;
    write_npy(&path, n);
    (dir, path, n)
}

/// `(x - x.mean()).std()`: the mean needs every chunk of `x` before any difference can be taken, so
/// the cluster holds all of `x` (read once from the file) — four times a 512 MiB worker's limit.
fn hold_then_reduce(path: &Path, chunk: usize) -> tessera::Array {
    let x = tessera::from_npy(path, [chunk, chunk]).unwrap();
    let m = x.mean().unwrap();
    (&x - &m).std().unwrap()
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        ((got - want) / want).abs() < 1e-9,
        "{what}: got {got}, want {want}"
    );
}

fn scalar(client: &Client, a: &tessera::Array) -> tessera::Result<f64> {
    let d = a.compute_on(client)?;
    match d {
        tessera::ArrayData::F64(x) => Ok(*x.iter().next().unwrap()),
        other => panic!("a float64 scalar, not {:?}", other.dtype()),
    }
}

/// Every path under `dir`, for a failure message that says what was left behind.
fn leftovers(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// Waits until the scheduler's status shows that the worker at `address` has written spill files.
fn wait_for_spills(client: &Client, address: &str) -> tessera::WorkerInfo {
    poll(
        "the worker to report spilling",
        Duration::from_secs(10),
        |last| {
            let s = client.status().unwrap();
            *last = format!("{s:?}");
            s.workers
                .into_iter()
                .find(|w| w.address == address && w.spill_writes > 0)
        },
    )
}

#[test]
fn workers_of_512_and_256_mib_hold_a_2_gib_array_until_its_mean_is_known() {
    let (_dir, path, n) = two_gib_file();
    let want = expected_std(n);

    // One worker of 512 MiB.
    let spill = tempfile::tempdir().unwrap();
    let spill_dir = spill.path().to_str().unwrap();
    let mut cluster = Cluster::start(0);
    cluster.add_worker_with(&["--memory-limit", "512MiB", "--spill-dir", spill_dir]);
    cluster.wait_for_workers(1);
    let client = cluster.client();
    let got = scalar(&client, &hold_then_reduce(&path, 2048)).unwrap();
    assert_close(got, want, "std of x - mean, one worker");
    let w = wait_for_spills(&client, &cluster.worker_addresses[0]);
    assert_eq!(w.memory_limit, 512 * MIB);
    let peak = peak_rss_bytes(cluster.workers[0].id());
    eprintln!(
        "one worker, 512 MiB: peak RSS {} MiB; {} spill writes, {} reads, {} ms",
        peak / MIB,
        w.spill_writes,
        w.spill_reads,
        w.spill_nanos / 1_000_000
    );
    assert!(
        peak <= 512 * MIB + SLACK,
        "the worker peaked at {} MiB, over its 512 MiB limit + 64 MiB",
        peak / MIB
    );
    // The private spill directory is inside --spill-dir while the worker runs, and gone once it
    // exits (SIGTERM: it retires and cleans up; nothing can clean up after SIGKILL).
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 1);
    drop(client);
    // SAFETY: kill(2) on the worker process this test started.
    unsafe {
        libc::kill(cluster.workers[0].id() as i32, libc::SIGTERM);
    }
    let exit = wait_exit(
        &mut cluster.workers[0],
        "the worker to retire",
        Duration::from_secs(40),
    );
    let left = leftovers(spill.path());
    assert!(
        left.is_empty(),
        "the spill directory outlived the worker ({} exited with {exit:?}): {left:?}",
        cluster.worker_addresses[0]
    );
    drop(cluster);

    // Two workers, one with half the memory of the other.
    let mut cluster = Cluster::start(0);
    let limits = [512 * MIB, 256 * MIB];
    cluster.add_worker_with(&["--memory-limit", "512MiB", "--spill-dir", spill_dir]);
    cluster.add_worker_with(&["--memory-limit", "256MiB", "--spill-dir", spill_dir]);
    cluster.wait_for_workers(2);
    let client = cluster.client();
    let got = scalar(&client, &hold_then_reduce(&path, 2048)).unwrap();
    assert_close(got, want, "std of x - mean, two workers");
    let status = client.status().unwrap();
    for (i, limit) in limits.iter().enumerate() {
        let info = status
            .workers
            .iter()
            .find(|w| w.address == cluster.worker_addresses[i])
            .expect("the worker is listed");
        assert_eq!(info.memory_limit, *limit);
        let peak = peak_rss_bytes(cluster.workers[i].id());
        eprintln!(
            "worker {i} ({} MiB): peak RSS {} MiB",
            limit / MIB,
            peak / MIB
        );
        assert!(
            peak <= limit + SLACK,
            "worker {i} peaked at {} MiB, over its {} MiB limit + 64 MiB",
            peak / MIB,
            limit / MIB
        );
    }
}

#[test]
fn a_job_with_an_80_gb_chunk_is_refused_at_submit_saying_how_to_rechunk() {
    let mut cluster = Cluster::start(0);
    cluster.add_worker_with(&["--memory-limit", "512MiB"]);
    cluster.wait_for_workers(1);
    let client = cluster.client();
    // A block product must hold its operands: one 80 GB chunk each.
    let x = tessera::zeros::<f64>(&[100_000, 100_000], [100_000, 100_000]).unwrap();
    let job = x.matmul(&x).unwrap().sum().unwrap();
    let e = job.compute_on(&client).unwrap_err().to_string();
    for part in [
        "[100000, 100000]",
        "80000000000",
        "536870912",
        "--memory-limit",
        "rechunk to at most",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    // Refused before anything ran: the worker is fine and runs the next job.
    assert!(cluster.workers[0].try_wait().unwrap().is_none());
    cluster.assert_headline_job_is_exact();
}

#[test]
fn a_full_spill_disk_fails_the_task_with_the_reason_and_the_worker_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let n = 8192;
    write_npy(&path, n);
    let mut cluster = Cluster::start(0);
    // A worker whose files may not exceed 1 MiB: every spill write of an 8 MiB chunk fails (the
    // worker ignores SIGXFSZ, so the write returns EFBIG).
    let listen = format!("127.0.0.1:{}", free_port());
    let spill = tempfile::tempdir().unwrap();
    let mut command = Command::new(worker_binary());
    command
        .args(["--scheduler", &cluster.address, "--threads", "1"])
        .args(["--listen", &listen, "--memory-limit", "128MiB"])
        .arg("--spill-dir")
        .arg(spill.path())
        .env("RUST_LOG", "warn")
        .env("TESSERA_SECRET_FILE", &cluster.secret_file)
        .stdout(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MIB,
                rlim_max: MIB,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cluster.workers.push(command.spawn().unwrap());
    cluster.worker_addresses.push(format!("http://{listen}"));
    cluster.wait_for_workers(1);
    let client = cluster.client();
    // 512 MiB held until the mean is known, by a 128 MiB worker that cannot spill.
    let e = scalar(&client, &hold_then_reduce(&path, 1024))
        .unwrap_err()
        .to_string();
    for part in ["spilling a chunk to", "File too large", "--memory-limit"] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    assert!(
        cluster.workers[0].try_wait().unwrap().is_none(),
        "the worker died"
    );
    // It still computes what fits.
    let small = tessera::from_npy(&path, [1024, 1024])
        .unwrap()
        .slice(tessera::s![..1024, ..])
        .unwrap()
        .sum()
        .unwrap();
    let want: f64 = (0..1024)
        .flat_map(|i| (0..n).map(move |j| value(i, j)))
        .sum();
    assert_close(
        scalar(&client, &small).unwrap(),
        want,
        "sum of the first rows",
    );
}

#[test]
fn a_512_mib_worker_rechunks_2_gib_from_row_bands_to_column_bands() {
    // Rechunking a `.npy` file is reading it again in column bands: one task per band, nothing
    // held between steps. (Through pieces this overshot the bound and spilled ~16× the array.)
    let (_dir, path, n) = two_gib_file();
    let spill = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(0);
    let spill_dir = spill.path().to_str().unwrap();
    cluster.add_worker_with(&["--memory-limit", "512MiB", "--spill-dir", spill_dir]);
    cluster.wait_for_workers(1);
    let client = cluster.client();
    let rows = tessera::from_npy(&path, [512, n]).unwrap();
    let cols = rows.rechunk([n, 512]).unwrap();
    // Column sums: n × mean of (i mod 7) + n × j / 1000 for column j.
    let sums = cols.sum_axis(0).unwrap().compute_on(&client).unwrap();
    let tessera::ArrayData::F64(sums) = sums else {
        panic!("float64 sums");
    };
    let row_term: f64 = (0..n).map(|i| (i % 7) as f64).sum();
    for (j, &s) in sums.iter().enumerate() {
        assert_close(s, row_term + n as f64 * j as f64 / 1000.0, "column sum");
    }
    let peak = peak_rss_bytes(cluster.workers[0].id());
    eprintln!(
        "2 GiB rechunk of a file, 512 MiB worker: peak RSS {} MiB",
        peak / MIB
    );
    assert!(peak <= 512 * MIB + SLACK, "peak {} MiB", peak / MIB);
}

/// `x[i, j]` of the all-to-all test's file: small integers, so sums in any order are exact, and no
/// two pieces alike, so a piece in the wrong place changes some row or column sum.
fn grid_value(i: usize, j: usize) -> f64 {
    ((i * 31 + j * 17) % 1009) as f64
}

#[test]
fn a_128_mib_worker_rechunks_a_computed_512_mib_array_through_pieces_within_its_limit() {
    // The same ratio as 2 GiB in 512 MiB, at a size a debug build runs in CI. The rechunk's input is
    // computed (the file doubled), so it cannot be re-read: row bands are cut into pieces and each
    // column band gathers its own, the all-to-all case where every piece must be held or spilled.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let (n, band) = (8192, 256);
    {
        let mut header =
            format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, {n}), }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        out.write_all(b"\x93NUMPY\x01\x00").unwrap();
        out.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
        out.write_all(header.as_bytes()).unwrap();
        for i in 0..n {
            for j in 0..n {
                out.write_all(&grid_value(i, j).to_le_bytes()).unwrap();
            }
        }
        out.flush().unwrap();
    }
    let spill = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(0);
    let spill_dir = spill.path().to_str().unwrap();
    cluster.add_worker_with(&["--memory-limit", "128MiB", "--spill-dir", spill_dir]);
    cluster.wait_for_workers(1);
    let client = cluster.client();
    let x = &tessera::from_npy(&path, [band, n]).unwrap() * 2.0;
    let y = x.rechunk_with([n, band], 64 << 20).unwrap();
    let start = std::time::Instant::now();
    let (col_sums, row_sums) = (y.sum_axis(0).unwrap(), y.sum_axis(1).unwrap());
    let got: Vec<Vec<f64>> = client
        .compute_many(&[&col_sums, &row_sums])
        .unwrap()
        .into_iter()
        .map(|a| match a {
            tessera::ArrayData::F64(v) => v.iter().copied().collect(),
            other => panic!("float64 sums, not {:?}", other.dtype()),
        })
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    let (mut cols, mut rows) = (vec![0f64; n], vec![0f64; n]);
    for (i, row) in rows.iter_mut().enumerate() {
        for (j, col) in cols.iter_mut().enumerate() {
            let v = 2.0 * grid_value(i, j);
            *col += v;
            *row += v;
        }
    }
    assert_eq!(got[0], cols, "column sums");
    assert_eq!(got[1], rows, "row sums");
    let info = client
        .status()
        .unwrap()
        .workers
        .into_iter()
        .find(|w| w.address == cluster.worker_addresses[0])
        .expect("the worker is listed");
    let peak = peak_rss_bytes(cluster.workers[0].id());
    eprintln!(
        "all-to-all rechunk of 512 MiB on a 128 MiB worker: {seconds:.1} s, peak RSS {} MiB, \
         {} spill writes, {} reads",
        peak / MIB,
        info.spill_writes,
        info.spill_reads
    );
    assert!(peak <= 128 * MIB + SLACK, "peak {} MiB", peak / MIB);
}
