//! A cluster's life around the jobs, with the real binaries on loopback ports (harness in
//! `common/mod.rs`):
//!
//! - a worker sent SIGTERM mid-job retires gracefully: the scheduler copies the chunks only it holds
//!   to the other worker and says goodbye, the worker exits with status 0, no task runs twice, and
//!   the job's result is still bit for bit the local executor's;
//! - a client that goes away mid-job cancels it: the scheduler drops the job, and every worker lets go
//!   of its chunks — by the scheduler's books *and* by the bytes the workers themselves report — and
//!   the cluster then computes a fresh job correctly;
//! - a worker started before its scheduler waits for it and joins.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, assert_same_bits, local, poll, wait_exit};
use tessera::{Array, AsyncClient, ClusterStatus, ReduceOptions};

/// A job of a few hundred milliseconds on two one-thread workers whose intermediates live on the
/// workers: 1600 chunks of `x + x.T` (both generated in place), then a mean over axis 0 whose tree
/// partials wait on the workers for their siblings.
fn long_job() -> Array {
    let x = tessera::default_rng(7)
        .random(&[12_000, 12_000], [300, 300])
        .unwrap();
    (&x + &x.t())
        .mean_with(&ReduceOptions::axes([0]).split_every(4))
        .unwrap()
}

/// A job of seconds, far longer than a test waits for it to be under way: a test that cancels it
/// must not see it finish first, however fast the cluster gets.
fn job_to_cancel() -> Array {
    let x = tessera::default_rng(8)
        .random(&[40_000, 40_000], [400, 400])
        .unwrap();
    (&x + &x.t()).mean_axis(0).unwrap()
}

#[test]
fn a_worker_sent_sigterm_mid_job_retires_and_the_job_still_completes() {
    let started = Instant::now();
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    let expected = local(&long_job());

    let tasks = long_job().task_counts().unwrap().after;
    let (address, secret) = (cluster.address.clone(), cluster.secret_file.clone());
    let job = std::thread::spawn(move || {
        let client = common::connect(&address, &secret);
        tessera::compute_many_with_stats(&[&long_job()], &client)
    });

    // Mid-job: the victim holds chunks of the running job.
    cluster.wait_until_worker_holds_chunks(&client, 0);
    let survivor = cluster.worker_addresses[1].clone();
    assert!(
        !job.is_finished(),
        "the job ended before the worker was told to stop: make it longer"
    );
    let pid = cluster.workers[0].id() as libc::pid_t;
    let signalled = Instant::now();
    // SAFETY: sends a signal to a child process this test started (and has not reaped).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let status = wait_exit(
        &mut cluster.workers[0],
        "the worker to retire after SIGTERM",
        Duration::from_secs(10),
    );
    let retired_in = signalled.elapsed();
    assert!(
        status.success(),
        "a retiring worker exits with status 0, got {status}"
    );

    let (remote, stats) = job
        .join()
        .unwrap()
        .expect("the job survives a retiring worker");
    assert_same_bits(&remote[0], &expected, "mean after a retirement");
    // Every task ran once: the chunks the worker held were copied, not lost and recomputed (as they
    // are when a worker is killed).
    assert_eq!(stats.tasks, tasks, "tasks run");

    let s = client.status().unwrap();
    assert_eq!(s.workers.len(), 1, "{s:?}");
    assert_eq!(s.workers[0].address, survivor);
    // The survivor still serves.
    let small = tessera::default_rng(1)
        .random(&[300, 300], [100, 100])
        .unwrap()
        .sum_axis(1)
        .unwrap();
    assert_same_bits(
        &small.compute_on(&client).unwrap(),
        &local(&small),
        "after the retirement",
    );
    eprintln!(
        "retired in {retired_in:?}; test took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_that_goes_away_cancels_its_job_and_the_workers_free_its_chunks() {
    let started = Instant::now();
    let cluster = Cluster::start(2);
    let client = cluster.client();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let leaving = AsyncClient::builder(&cluster.address)
            .secret_file(&cluster.secret_file)
            .connect_async()
            .await
            .unwrap();
        let y = job_to_cancel();
        let outputs = [&y];
        let job = leaving.compute_many(&outputs);
        // Every worker holds chunks of the job, and has said so in a heartbeat.
        let busy = async {
            loop {
                let s = leaving.status().await.unwrap();
                if s.jobs == 1
                    && s.workers.len() == 2
                    && s.workers
                        .iter()
                        .all(|w| w.chunks_held > 0 && w.reported_bytes > 0)
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            r = job => panic!("the job ended before the client went away: {:?}", r.map(|_| ())),
            s = tokio::time::timeout(Duration::from_secs(10), busy) => {
                s.expect("the workers never held chunks of the job");
            }
        }
        // Leaving the select dropped the job's future: its stream to the scheduler is closed.
    });
    drop(runtime);

    let idle = |s: &ClusterStatus| {
        s.jobs == 0
            && s.workers.len() == 2
            && s.workers.iter().all(|w| {
                w.running == 0 && w.chunks_held == 0 && w.bytes_held == 0 && w.reported_bytes == 0
            })
    };
    let wait_idle = |what: &str| {
        poll(what, Duration::from_secs(10), |last| {
            let s = client.status().unwrap();
            *last = format!("{s:?}");
            idle(&s).then_some(())
        })
    };
    let cancelled = Instant::now();
    wait_idle("the job to be dropped and every chunk freed");
    let freed_in = cancelled.elapsed();

    // The cluster computes a fresh job correctly, and frees its chunks once the client has them.
    let fresh = tessera::default_rng(5)
        .random(&[1000, 1000], [100, 100])
        .unwrap();
    let fresh = (&fresh + &fresh.t()).max_axis(1).unwrap();
    assert_same_bits(
        &fresh.compute_on(&client).unwrap(),
        &local(&fresh),
        "a fresh job after the cancellation",
    );
    wait_idle("the finished job's chunks to be freed");
    eprintln!("freed in {freed_in:?}; test took {:?}", started.elapsed());
}

#[test]
fn a_worker_started_before_its_scheduler_waits_and_joins() {
    let port = common::free_port();
    let address = format!("http://127.0.0.1:{port}");
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("cluster.secret");
    let mut worker = Command::new(common::worker_binary())
        .args(["--scheduler", &address, "--threads", "1"])
        .args(["--connect-timeout-secs", "10"])
        .env("RUST_LOG", "warn")
        .env("TESSERA_SECRET_FILE", &secret)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The worker is trying (and failing) to connect: it must still be there a moment later.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker gave up at once"
    );
    let mut scheduler = Command::new(common::scheduler_binary())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .env("TESSERA_SECRET_FILE", &secret)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let joined = std::panic::catch_unwind(|| {
        let client = common::connect(&address, &secret);
        poll("the worker to join", Duration::from_secs(10), |last| {
            let s = client.status().unwrap();
            *last = format!("{s:?}");
            (s.workers.len() == 1).then_some(())
        });
        let x = tessera::arange(0.0, 100.0, 1.0, [30])
            .unwrap()
            .sum()
            .unwrap();
        let sum: f64 = client.compute_scalar(&x).unwrap();
        assert_eq!(sum, 4950.0);
    });
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = scheduler.kill();
    let _ = scheduler.wait();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
}
