//! Job handles on the local executor, driven as a user drives them: several jobs submitted at once,
//! one cancelled, the others waited for and checked against plain ndarray arithmetic; progress
//! polled while a job runs (monotonic, ending at every task done); a failing job; the async waits;
//! and the per-layer counts of `ExecStats`. Time bounds here are liveness bounds only.

mod common;

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::*;
use tessera::{
    Array, Error, JobStatus, LocalExecutor, Progress, compute_many_with_stats, default_rng,
    from_array,
};

/// A one-chunk mean over 1e11 generated values: minutes of work, stopped only by cancelling it.
fn huge_mean() -> Array {
    default_rng(0)
        .random(&[1_000_000, 100_000], [1_000_000, 100_000])
        .unwrap()
        .mean()
        .unwrap()
}

/// Polls a future to its end on this thread (the engine's futures need no runtime).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn three_jobs_one_cancelled_the_others_finish_with_the_right_results() {
    let ex = LocalExecutor::with_threads(2).unwrap();
    let data = sample::<f64>(&[300, 200], 5);
    let x = from_array(data.clone(), [40, 30]).unwrap();
    let ints = tessera::arange(0i64, 100_000, 1, [1000]).unwrap();

    // The long one first: it holds the pool until it is cancelled.
    let slow = ex.submit(&huge_mean());
    let sums = ex.submit(&x.sum_axis(0).unwrap());
    let total = ex.submit(&ints.sum().unwrap());
    assert!(!slow.status().is_done());

    assert!(slow.cancel());
    assert_eq!(slow.wait(), JobStatus::Cancelled);
    assert!(!slow.cancel(), "cancelling an ended job does nothing");
    assert!(slow.error().is_some_and(|e| e.contains("cancelled")));
    match slow.result::<f64>() {
        Err(Error::Cancelled { .. }) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }

    assert_eq!(sums.wait(), JobStatus::Finished);
    let want = reduce_lanes(&data, &[0], false, |l| l.iter().sum::<f64>());
    let got = sums.result_dyn().unwrap();
    assert_array_close(&got, &want, TOL_F64);
    let t: i64 = total.result::<i64>().unwrap().into_iter().next().unwrap();
    assert_eq!(t, (0..100_000i64).sum::<i64>());
}

#[test]
fn progress_moves_monotonically_to_every_task_done() {
    let ex = LocalExecutor::with_threads(1).unwrap();
    let x = default_rng(3).random(&[2000, 2000], [100, 100]).unwrap();
    let y = x.sin().unwrap().mean_axis(1).unwrap();
    let job = ex.submit(&y);
    let mut seen = Vec::new();
    while !job.status().is_done() {
        seen.push(job.progress());
        std::thread::sleep(Duration::from_millis(1));
    }
    seen.push(job.progress());
    let last = seen.last().unwrap().clone();
    assert!(last.finished);
    assert_eq!(last.done(), last.total());
    assert_eq!(last.fraction(), 1.0);
    let started: Vec<_> = seen.iter().filter(|p| p.total() > 0).collect();
    for pair in started.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(a.total(), b.total());
        assert!(
            a.done() <= b.done() && a.bytes() <= b.bytes(),
            "{a:?} then {b:?}"
        );
        for (la, lb) in a.layers.iter().zip(&b.layers) {
            assert!(
                la.done <= lb.done && lb.done <= lb.total,
                "{la:?} then {lb:?}"
            );
        }
    }
    // The totals are the tasks that ran, and the result is right.
    let (out, stats) = job.results_with_stats().unwrap();
    assert_eq!(last.total(), stats.tasks as u64);
    assert_eq!(stats.layers, last.layers);
    assert_bits_eq(&out[0], &y.compute_on(&ex).unwrap());
}

#[test]
fn exec_stats_count_every_layer_s_tasks_and_bytes() {
    let ex = LocalExecutor::with_threads(2).unwrap();
    let data = sample::<f64>(&[100, 60], 2);
    let x = from_array(data, [10, 20]).unwrap();
    let doubled = &x * 2.0;
    let (_, stats) = compute_many_with_stats(&[&doubled], &ex).unwrap();
    // One fused layer of 10 × 3 tasks, each producing its 10 × 20 float64 chunk.
    let out = stats.layers.last().unwrap();
    assert_eq!((out.done, out.total), (30, 30));
    assert_eq!(out.bytes, 100 * 60 * 8);
    assert_eq!(
        stats.layers.iter().map(|l| l.total).sum::<u64>(),
        stats.tasks as u64
    );
    assert!(stats.layers.iter().all(|l| l.done == l.total));
    // The same figures through a Progress attached to the executor.
    let progress = Progress::new();
    let (_, again) =
        compute_many_with_stats(&[&doubled], &ex.clone().with_progress(progress.clone())).unwrap();
    let p = progress.snapshot();
    assert!(p.finished);
    assert_eq!(p.layers, again.layers);
}

#[test]
fn a_failing_job_reports_the_task_and_a_multi_output_job_returns_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let data = sample::<f64>(&[50, 40], 9);
    from_array(data.clone(), [50, 40])
        .unwrap()
        .to_npy(&path)
        .unwrap();
    let lazy = tessera::from_npy(&path, [10, 10]).unwrap();
    std::fs::remove_file(&path).unwrap();
    let ex = LocalExecutor::with_threads(2).unwrap();
    let job = ex.submit(&lazy.sum().unwrap());
    assert_eq!(job.wait(), JobStatus::Failed);
    let message = job.error().unwrap();
    assert!(message.contains("x.npy"), "{message}");
    assert!(job.result::<f64>().is_err());

    let x = from_array(data.clone(), [20, 20]).unwrap();
    let both = ex.submit_many(&[&x.max().unwrap(), &x.t()]);
    let err = ex.submit_many(&[&x, &x]).result::<f64>().unwrap_err();
    assert!(err.to_string().contains("2 outputs"), "{err}");
    let out = both.results().unwrap();
    let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(out[0].get(&[]), Some(tessera::Scalar::F64(max)));
    assert_array_eq(&out[1], &data.t().to_owned());
}

#[test]
fn async_waits_resolve_when_the_job_ends() {
    let ex = LocalExecutor::with_threads(2).unwrap();
    let ints = tessera::arange(0i64, 10_000, 1, [100]).unwrap();
    let job = ex.submit(&ints.sum().unwrap());
    assert_eq!(block_on(job.wait_async()), JobStatus::Finished);
    let v = block_on(job.result_async::<i64>()).unwrap();
    assert_eq!(v.into_iter().next(), Some((0..10_000i64).sum::<i64>()));

    let slow = ex.submit(&huge_mean());
    assert!(!slow.wait_timeout(Duration::from_millis(50)).is_done());
    slow.cancel();
    assert_eq!(block_on(slow.wait_async()), JobStatus::Cancelled);
}
