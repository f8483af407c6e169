//! Job handles on a real cluster (the `tessera-scheduler` and `tessera-worker` binaries): three jobs
//! submitted at once, one cancelled (the scheduler forgets it), the others waited for and compared bit
//! for bit with the local executor; progress reported by the scheduler moving monotonically to every
//! task done; the async client's handles. Time bounds are liveness bounds only.

mod common;

use std::time::Duration;

use common::{Cluster, assert_same_bits, local, poll};
use tessera::{Array, Error, JobStatus, default_rng};

/// A one-chunk mean over 1e11 generated values: minutes of work, stopped only by cancelling it.
fn huge_mean() -> Array {
    default_rng(0)
        .random(&[1_000_000, 100_000], [1_000_000, 100_000])
        .unwrap()
        .mean()
        .unwrap()
}

#[test]
fn three_jobs_one_cancelled_the_others_finish_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let x = default_rng(5).random(&[600, 400], [100, 100]).unwrap();
    let a = x.mean_axis(0).unwrap();
    let b = (&x * 3.0).sum().unwrap();

    let slow = client.submit(&huge_mean());
    let ja = client.submit(&a);
    let jb = client.submit(&b);
    // The slow job is accepted and running before it is cancelled.
    poll("the slow job to start", Duration::from_secs(20), |_| {
        (slow.status() == JobStatus::Running).then_some(())
    });
    assert!(slow.cancel());
    assert_eq!(slow.wait(), JobStatus::Cancelled);
    assert!(matches!(slow.result::<f64>(), Err(Error::Cancelled { .. })));

    assert_eq!(ja.wait(), JobStatus::Finished);
    assert_same_bits(&ja.result_dyn().unwrap(), &local(&a), "mean axis 0");
    assert_same_bits(&jb.result_dyn().unwrap(), &local(&b), "sum");
    // The scheduler dropped the cancelled job (and the finished ones once their streams closed).
    poll(
        "the scheduler to forget every job",
        Duration::from_secs(20),
        |last| {
            let jobs = client.status().unwrap().jobs;
            *last = format!("{jobs} jobs");
            (jobs == 0).then_some(())
        },
    );
}

#[test]
fn cluster_progress_moves_monotonically_to_every_task_done() {
    // Reports every 10 ms, so that a job of a second or so sends many.
    let cluster = Cluster::start_with(2, &["--progress-interval-ms", "10"]);
    let client = cluster.client();
    let x = default_rng(11).random(&[6000, 6000], [300, 300]).unwrap();
    let y = x.sin().unwrap().cos().unwrap().mean_axis(0).unwrap();
    let job = client.submit(&y);
    let mut seen = Vec::new();
    while !job.status().is_done() {
        seen.push(job.progress());
        std::thread::sleep(Duration::from_millis(2));
    }
    seen.push(job.progress());
    let last = seen.last().unwrap().clone();
    assert!(last.finished);
    assert!(last.total() > 400, "{last:?}");
    assert_eq!(last.done(), last.total());
    let started: Vec<_> = seen.iter().filter(|p| p.total() > 0).collect();
    for pair in started.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(a.total(), b.total());
        assert!(
            a.done() <= b.done() && a.bytes() <= b.bytes(),
            "{a:?} then {b:?}"
        );
    }
    let partial = started
        .iter()
        .filter(|p| p.done() > 0 && p.done() < p.total())
        .count();
    eprintln!(
        "{} snapshots, {partial} part-way, {} tasks",
        seen.len(),
        last.total()
    );
    let (out, stats) = job.results_with_stats().unwrap();
    assert_eq!(stats.tasks as u64, last.total());
    assert_eq!(stats.layers, last.layers);
    assert!(stats.layers.iter().all(|l| l.bytes > 0));
    assert_same_bits(&out[0], &local(&y), "progress job");
}

#[test]
fn the_async_client_submits_and_awaits() {
    let cluster = Cluster::start(1);
    let client = cluster.client();
    let x = default_rng(2).random(&[300, 300], [100, 100]).unwrap();
    let m = x.mean().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mean, status) = runtime.block_on(async {
        let job = client.as_async().submit(&m).unwrap();
        let status = job.wait_async().await;
        (job.result_async::<f64>().await.unwrap(), status)
    });
    assert_eq!(status, JobStatus::Finished);
    let here: f64 = m.compute_scalar().unwrap();
    assert_eq!(mean.into_iter().next().unwrap().to_bits(), here.to_bits());
    // Outside a runtime the async client says so instead of panicking.
    let err = client.as_async().submit(&m).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
