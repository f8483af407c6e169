//! Cancellation reaching running kernels: a one-chunk job that would run for minutes stops soon after
//! its token is cancelled from another thread or its time limit passes; a failing task stops a long
//! task running beside it and its failure (not "cancelled") is what the caller gets; and the executor
//! is usable again afterwards. Bounds on time here are liveness bounds ("within a few seconds"), far
//! above what the checkpoints need, so a slow or busy machine does not fail them.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tessera::exec::CancelToken;
use tessera::{Array, Error, LocalExecutor, compute_many_on, default_rng, from_array};

/// Mean of a single 1e6 × 1e5 chunk: one fused task summing 1e11 generated values, minutes of work.
fn huge_mean() -> Array {
    default_rng(0)
        .random(&[1_000_000, 100_000], [1_000_000, 100_000])
        .unwrap()
        .mean()
        .unwrap()
}

fn small_job_is_right(exec: &LocalExecutor) {
    let data = sample::<f64>(&[30, 20], 3);
    let x = from_array(data.clone(), [7, 6]).unwrap();
    let got = x.sum_axis(1).unwrap().compute_on(exec).unwrap();
    let want = reduce_lanes(&data, &[1], false, |l| l.iter().sum::<f64>());
    assert_array_eq(&got, &want);
}

#[test]
fn a_token_cancelled_from_another_thread_stops_a_running_kernel() {
    let pool = LocalExecutor::with_threads(2).unwrap();
    let token = CancelToken::new();
    let exec = pool.clone().with_cancel_token(token.clone());
    let canceller = {
        let token = token.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            token.cancel();
            Instant::now()
        })
    };
    let start = Instant::now();
    let result = huge_mean().compute_on(&exec);
    let stopped = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    eprintln!(
        "stopped {:?} after the cancel",
        stopped.duration_since(cancelled_at)
    );
    match result {
        Err(Error::Cancelled { reason }) => assert_eq!(reason, "cancelled"),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(
        stopped.duration_since(cancelled_at) < Duration::from_secs(3),
        "stopped {:?} after the cancel ({:?} in all)",
        stopped.duration_since(cancelled_at),
        start.elapsed()
    );
    // The token stays cancelled; the executor's pool computes with a fresh one.
    assert!(matches!(
        huge_mean().compute_on(&exec),
        Err(Error::Cancelled { .. })
    ));
    small_job_is_right(&pool.with_cancel_token(CancelToken::new()));
}

#[test]
fn a_time_limit_stops_a_running_kernel_and_says_so() {
    let exec = LocalExecutor::with_threads(2)
        .unwrap()
        .with_time_limit(Duration::from_millis(200));
    let start = Instant::now();
    let result = huge_mean().compute_on(&exec);
    let took = start.elapsed();
    eprintln!("a 200ms time limit stopped the run after {took:?}");
    match result {
        Err(e @ Error::Cancelled { .. }) => {
            assert_eq!(e.to_string(), "time limit of 200ms exceeded")
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // The limit counts per run: the same executor computes a small job afterwards.
    small_job_is_right(&exec);
}

#[test]
fn a_failing_task_stops_a_long_one_and_its_failure_is_returned() {
    let exec = LocalExecutor::with_threads(2).unwrap();
    let failing = from_array(sample::<f64>(&[4], 1), [4])
        .unwrap()
        .map_blocks(|b: ndarray::ArrayViewD<f64>| {
            // Late enough that the long task is running when this fails.
            thread::sleep(Duration::from_millis(100));
            if b.len() == 4 {
                panic!("block function failed on purpose");
            }
            b.to_owned()
        })
        .unwrap();
    let long = huge_mean();
    let start = Instant::now();
    let result = compute_many_on(&[&long, &failing], &exec);
    let took = start.elapsed();
    match result {
        Err(Error::TaskPanicked { key, message }) => {
            assert!(key.starts_with("map-blocks-"), "{key}");
            assert!(message.contains("failed on purpose"), "{message}");
        }
        other => panic!("expected the map_blocks panic, got {other:?}"),
    }
    assert!(took < Duration::from_secs(4), "took {took:?}");
    small_job_is_right(&exec);
}

#[test]
fn a_token_cancelled_before_the_run_stops_it_before_any_task() {
    let token = CancelToken::new();
    token.cancel();
    let exec = LocalExecutor::with_threads(1)
        .unwrap()
        .with_cancel_token(token);
    let x = from_array(sample::<f64>(&[8], 2), [2]).unwrap();
    let err = x.sum().unwrap().compute_on(&exec).unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    assert_eq!(err.to_string(), "cancelled");
}

/// Runs every task of `a` serially; the first task of a layer whose op `is` is then run again under a
/// cancelled token, which its kernel must notice.
fn kernel_stops_under_a_cancelled_token(a: &Array, is: impl Fn(&tessera::Op) -> bool) -> Error {
    use std::sync::Arc;
    use tessera::exec::cancel;
    use tessera::graph::expand::TaskGraph;

    let tg = TaskGraph::expand(tessera::optimize::optimize(a.graph())).unwrap();
    let layers = tg.graph.layers();
    let mut values: Vec<Arc<tessera::ChunkValue>> = Vec::new();
    let cancelled = CancelToken::new();
    cancelled.cancel();
    for t in &tg.tasks {
        let layer = &layers[t.layer as usize];
        let metas: Vec<_> = layer
            .inputs
            .iter()
            .map(|i| &tg.graph.get(*i).unwrap().meta)
            .collect();
        let deps: Vec<_> = t.deps.iter().map(|&d| values[d as usize].clone()).collect();
        if is(&layer.op) {
            return cancel::scope(&cancelled, || layer.op.run(layer, &metas, &t.block, &deps))
                .unwrap_err();
        }
        values.push(layer.op.run(layer, &metas, &t.block, &deps).unwrap());
    }
    panic!("no task of that op");
}

#[test]
fn every_long_kernel_has_a_checkpoint() {
    use tessera::Op;
    let x = default_rng(4).random(&[64, 48], [32, 24]).unwrap();
    type IsOp = fn(&Op) -> bool;
    let cases: Vec<(&str, Array, IsOp)> = vec![
        ("blockwise program", (&x * 2.0), |op| {
            matches!(op, Op::Blockwise(_))
        }),
        ("fused uniform sum", x.mean().unwrap(), |op| {
            matches!(op, Op::Blockwise(_))
        }),
        ("combine", x.var_axis(0, 0.0).unwrap(), |op| {
            matches!(op, Op::ReduceCombine(_))
        }),
        ("block product", x.matmul(&x.t()).unwrap(), |op| {
            matches!(op, Op::Matmul(_))
        }),
        (
            "block product, untransposed",
            x.t().matmul(&(&x + 1.0)).unwrap(),
            |op| matches!(op, Op::Matmul(_)),
        ),
    ];
    for (what, a, is) in cases {
        let err = kernel_stops_under_a_cancelled_token(&a, is);
        assert!(matches!(err, Error::Cancelled { .. }), "{what}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    x.to_npy(&path).unwrap();
    let y = tessera::from_npy(&path, [32, 24]).unwrap();
    let err = kernel_stops_under_a_cancelled_token(&y, |op| matches!(op, Op::Npy(_)));
    assert!(matches!(err, Error::Cancelled { .. }), ".npy read: {err}");
}
