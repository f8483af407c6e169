//! Executor and graph behaviour: compute_many with shared subexpressions, deterministic layer ids,
//! persist, culling and fusion (seen through task counts), DOT output, executors with different
//! thread counts, and typed errors for every kind of bad input.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use ndarray::{ArrayD, ArrayViewD, IxDyn, s};
use tessera::exec::OutputSink;
use tessera::ops::LeafKind;
use tessera::{
    Array, ArrayData, Error, ExecStats, Executor, Graph, LocalExecutor, Op, compute_many,
    compute_many_on, compute_many_with_stats, default_rng, from_array, ones, zeros,
};

#[test]
fn compute_many_with_shared_subexpressions_matches_separate_computes() {
    let x = default_rng(1).random(&[60, 40], [7, 9]).unwrap();
    let y = &x * 2.0f64;
    let total = y.sum().unwrap();
    let cols = y.mean_axis(0).unwrap();
    let shifted = &y - &cols;
    let sliced = shifted.slice(s![5..50;3, ..;-1]).unwrap();
    let arrays = [&total, &cols, &shifted, &sliced, &x];
    let together = compute_many(&arrays).unwrap();
    assert_eq!(together.len(), arrays.len());
    for (a, got) in arrays.iter().zip(&together) {
        let alone = a.compute_dyn().unwrap();
        // Sharing changes which layers fuse, and so may change float rounding slightly.
        assert_data_eq(got, &alone);
    }
    // And against an oracle computed from the random values.
    let xv = x.compute::<f64>().unwrap();
    let yv = xv.mapv(|v| v * 2.0);
    let colv = reduce_lanes(&yv, &[0], false, |l| l.iter().sum::<f64>() / l.len() as f64);
    assert_array_eq(&together[1], &colv);
    let sh = zip_with(&yv, &colv, |p, q| p - q);
    assert_array_eq(&together[2], &sh);
    assert_array_eq(
        &together[3],
        &oracle_slice(&sh, s![5..50;3, ..;-1].as_ref()),
    );
    let t = together[0].get(&[]).unwrap().as_f64();
    assert!((t - yv.sum()).abs() < 1e-9 * yv.sum());

    // The same array twice, and on an explicit executor.
    let two = LocalExecutor::with_threads(2).unwrap();
    let again = compute_many_on(&[&cols, &cols], &two).unwrap();
    assert_data_eq(&again[0], &together[1]);
    assert_data_eq(&again[1], &together[1]);
    assert!(compute_many(&[]).unwrap().is_empty());
}

#[test]
fn shared_subexpressions_run_once() {
    let x = default_rng(2).random(&[100, 100], [10, 10]).unwrap();
    let a = x.sum().unwrap();
    let b = x.max().unwrap();
    let (_, stats) =
        compute_many_with_stats(&[&a, &b], &LocalExecutor::with_threads(2).unwrap()).unwrap();
    let alone_a = a.task_counts().unwrap().after;
    let alone_b = b.task_counts().unwrap().after;
    // Alone, each reduction fuses the random source into its partials. Together, x has two readers,
    // so it is materialized once (100 tasks) and read by both: never more than that.
    assert!(
        stats.tasks <= alone_a + alone_b + 100,
        "{stats:?} vs {alone_a} + {alone_b}"
    );
    assert!(stats.tasks >= alone_a.max(alone_b), "{stats:?}");
}

#[test]
fn identical_expressions_have_identical_ids() {
    let build = || {
        let x = default_rng(3).random(&[50, 50], [10, 10]).unwrap();
        let y = (&x * 2.0f64) + 1.0f64;
        y.slice(s![..20, 3..]).unwrap().sum_axis(0).unwrap()
    };
    let (p, q) = (build(), build());
    assert_eq!(p.id(), q.id());
    assert_eq!(p.id().to_string(), q.id().to_string());
    // Anything that changes the values changes the id.
    let x = default_rng(3).random(&[50, 50], [10, 10]).unwrap();
    let other_seed = default_rng(4).random(&[50, 50], [10, 10]).unwrap();
    let other_chunks = default_rng(3).random(&[50, 50], [10, 5]).unwrap();
    assert_ne!(x.id(), other_seed.id());
    assert_ne!(x.id(), other_chunks.id());
    assert_ne!((&x * 2.0f64).id(), (&x * 3.0f64).id());
    // A weak scalar takes the array's type, so 2.0f32 and 2.0f64 give the same expression.
    assert_eq!((&x * 2.0f64).id(), (&x * tessera::Scalar::F32(2.0)).id());
    assert_ne!((&x * 2.0f64).id(), (&x + 2.0f64).id());
    assert_ne!(x.sum().unwrap().id(), x.max().unwrap().id());
    assert_ne!(x.sum_axis(0).unwrap().id(), x.sum_axis(1).unwrap().id());
    assert_ne!(
        x.slice(s![..20, ..]).unwrap().id(),
        x.slice(s![..21, ..]).unwrap().id()
    );
    // from_array is identified by content.
    let d = sample::<f64>(&[10, 10], 1);
    let a1 = from_array(d.clone(), [5, 5]).unwrap();
    let a2 = from_array(d.clone(), [5, 5]).unwrap();
    assert_eq!(a1.id(), a2.id());
    let mut d2 = d.clone();
    d2[[9, 9]] += 1.0;
    assert_ne!(a1.id(), from_array(d2, [5, 5]).unwrap().id());
    // map_blocks closures cannot be compared, so each call is its own expression.
    let m1 = a1.map_blocks(|b: ArrayViewD<f64>| b.to_owned()).unwrap();
    let m2 = a1.map_blocks(|b: ArrayViewD<f64>| b.to_owned()).unwrap();
    assert_ne!(m1.id(), m2.id());
    // The layer graph is deduplicated by id.
    let z = &x + &x;
    assert_eq!(z.graph().layers().len(), 2);
}

fn has_random_leaf(g: &Graph) -> bool {
    g.layers().iter().any(|l| match &l.op {
        Op::Blockwise(p) => p
            .leaves
            .iter()
            .any(|leaf| matches!(leaf.kind, LeafKind::Random { .. })),
        _ => false,
    })
}

#[test]
fn persist_keeps_values_and_drops_the_graph() {
    let x = default_rng(5).random(&[37, 23], [10, 7]).unwrap();
    let y = (&x * 2.0f64) + 1.0f64;
    assert!(has_random_leaf(&y.graph()));
    let p = y.persist().unwrap();
    assert_eq!(p.shape(), y.shape());
    assert_eq!(p.dtype(), y.dtype());
    assert_eq!(p.chunks(), y.chunks());
    let g = p.graph();
    assert!(!has_random_leaf(&g), "{g:?}");
    assert_eq!(g.layers().len(), 1);
    assert!(matches!(g.layers()[0].op, Op::Materialized(_)));
    assert_bits_eq(&p.compute_dyn().unwrap(), &y.compute_dyn().unwrap());
    // Further work on the persisted array reads the kept chunks.
    let m = p.mean_axis(1).unwrap();
    assert!(!has_random_leaf(&m.graph()));
    let yv = y.compute::<f64>().unwrap();
    check(
        &m,
        &reduce_lanes(&yv, &[1], false, |l| l.iter().sum::<f64>() / l.len() as f64),
    );
    // Persisting a reduction and on an explicit executor.
    let one = LocalExecutor::with_threads(1).unwrap();
    let r = y.sum_axis(0).unwrap().persist_on(&one).unwrap();
    assert_bits_eq(
        &r.compute_dyn().unwrap(),
        &y.sum_axis(0).unwrap().compute_on(&one).unwrap(),
    );
    // Every dtype, a 0-d array and a failing graph.
    let b = x.gt(0.5f64).unwrap().persist().unwrap();
    check(&b, &x.compute::<f64>().unwrap().mapv(|v| v > 0.5));
    let s = x.sum().unwrap().persist().unwrap();
    assert_eq!(s.ndim(), 0);
    let bad = x
        .map_blocks(|_: ArrayViewD<f64>| -> ArrayD<f64> { panic!("no") })
        .unwrap();
    assert!(matches!(bad.persist(), Err(Error::TaskPanicked { .. })));
}

#[test]
fn slicing_a_huge_random_array_culls_to_the_chunks_needed() {
    let x = default_rng(6)
        .random(&[10000, 10000], [1000, 1000])
        .unwrap();
    let corner = x.slice(s![..1000, ..1000]).unwrap();
    let total = corner.sum().unwrap();
    let counts = total.task_counts().unwrap();
    assert!(counts.before >= 100, "{counts:?}");
    assert!(counts.after <= 5, "{counts:?}");
    assert!(counts.after * 20 < counts.before, "{counts:?}");
    // A slice inside one chunk away from the origin is culled the same way.
    let inner = x.slice(s![5500..5600, 7001..7003]).unwrap();
    assert!(inner.task_counts().unwrap().after <= 2);
    let iv = inner.compute::<f64>().unwrap();
    assert_eq!(iv.shape(), &[100, 2]);
    // The culled computation gives the right value: check against the slice's own values.
    let cv = corner.compute::<f64>().unwrap();
    let s = total.compute_scalar::<f64>().unwrap();
    assert!(
        (s - cv.sum()).abs() < 1e-9 * cv.sum(),
        "{s} vs {}",
        cv.sum()
    );
    assert!((s / 1e6 - 0.5).abs() < 0.005);
    // The same elements read through a different chunking of the same seed agree.
    let small = default_rng(6).random(&[10000, 10000], [2000, 500]).unwrap();
    assert_bits_eq(
        &small
            .slice(s![5500..5600, 7001..7003])
            .unwrap()
            .compute_dyn()
            .unwrap(),
        &ArrayData::F64(iv),
    );
}

#[test]
fn fused_chain_runs_one_task_per_chunk_plus_the_tree() {
    let x = default_rng(7).random(&[100_000], [10_000]).unwrap();
    let m = ((&x * 2.0f64) + 1.0f64).mean().unwrap();
    let counts = m.task_counts().unwrap();
    // 10 chunks: random, *2, +1 and the partial mean fuse into one task each; 10 partials need only
    // the final combine with the default split_every of 16.
    assert_eq!(counts.after, 10 + 1, "{counts:?}");
    assert_eq!(counts.before, 10 * 4 + 1, "{counts:?}");
    let (out, stats) =
        compute_many_with_stats(&[&m], &LocalExecutor::with_threads(2).unwrap()).unwrap();
    assert_eq!(stats.tasks, counts.after);
    let xv = x.compute::<f64>().unwrap();
    let expected = xv.mapv(|v| v * 2.0 + 1.0).sum() / 1e5;
    let got = out[0].get(&[]).unwrap().as_f64();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    assert!((got - 2.0).abs() < 0.01);
    // The fused mean never holds the chunks themselves, only partials.
    assert!(stats.peak_bytes < xv.len() * 8 / 4, "{stats:?}");

    // 100 chunks: groups of 16 give 7 intermediate combines, then the final one.
    let many = default_rng(7).random(&[100_000], [1000]).unwrap();
    let m2 = (&many * 2.0f64).mean().unwrap();
    assert_eq!(m2.task_counts().unwrap().after, 100 + 7 + 1);
    // 2-D: split_every is shared among the reduced axes (dask's rule): 16^(1/2) = 4 per axis, so a
    // 10×1 grid of partials takes ceil(10/4) = 3 intermediate combines, then the final one.
    let y = default_rng(7).random(&[1000, 100], [100, 100]).unwrap();
    let m3 = ((&y * 2.0f64) + 1.0f64).mean().unwrap();
    assert_eq!(m3.task_counts().unwrap().after, 10 + 3 + 1);
    let m3v = m3.compute_scalar::<f64>().unwrap();
    let yv = y.compute::<f64>().unwrap().mapv(|v| v * 2.0 + 1.0);
    assert!((m3v - yv.sum() / 1e5).abs() < 1e-12);
}

#[test]
fn to_dot_describes_the_task_graph() {
    let x = ones::<f64>(&[20, 20], [10, 10]).unwrap();
    let y = (&x + 1.0f64).sum_axis(0).unwrap();
    let dot = y.to_dot().unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("->"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    let layers = y.graph().to_dot();
    assert!(layers.contains("digraph"), "{layers}");
}

#[test]
fn executors_with_different_thread_counts_agree() {
    let one = LocalExecutor::with_threads(1).unwrap();
    let two = LocalExecutor::with_threads(2).unwrap();
    let x = default_rng(8).standard_normal(&[90, 70], [13, 17]).unwrap();
    let d = sample::<f64>(&[70, 30], 1);
    let w = from_array(d, [9, 7]).unwrap();
    let exprs: Vec<Array> = vec![
        x.clone(),
        x.std_axis(0, 1.0).unwrap(),
        x.matmul(&w).unwrap(),
        x.t().reshape(&[-1]).unwrap().slice(s![..;-3]).unwrap(),
        x.argmax_axis(1).unwrap(),
        x.rechunk([30, 70]).unwrap().var().unwrap(),
    ];
    for e in &exprs {
        let a = e.compute_on(&one).unwrap();
        let b = e.compute_on(&two).unwrap();
        assert_bits_eq(&a, &b);
        assert_bits_eq(&a, &e.compute_dyn().unwrap());
    }
}

/// An executor that forwards to a local one and counts the graphs it was given.
struct Counting {
    inner: LocalExecutor,
    graphs: AtomicUsize,
}

impl Executor for Counting {
    fn execute_graph(&self, graph: Graph, sink: &OutputSink<'_>) -> tessera::Result<ExecStats> {
        self.graphs.fetch_add(1, Ordering::SeqCst);
        self.inner.execute_graph(graph, sink)
    }
}

#[test]
fn compute_on_a_custom_executor() {
    let ex = Counting {
        inner: LocalExecutor::with_threads(2).unwrap(),
        graphs: AtomicUsize::new(0),
    };
    let d = sample::<i64>(&[37, 23], 2);
    let a = from_array(d.clone(), [10, 7]).unwrap();
    let got = a.sum_axis(1).unwrap().compute_on(&ex).unwrap();
    assert_array_eq(
        &got,
        &reduce_lanes(&d, &[1], false, |l| l.iter().sum::<i64>()),
    );
    let both = compute_many_on(&[&a, &a.t()], &ex).unwrap();
    assert_array_eq(&both[1], &d.t().to_owned());
    let p = a.persist_on(&ex).unwrap();
    check(&p, &d);
    assert_eq!(ex.graphs.load(Ordering::SeqCst), 3);
}

#[test]
fn errors_are_typed() {
    // Bad chunks.
    assert!(matches!(
        zeros::<f64>(&[10, 10], [0, 5]),
        Err(Error::InvalidChunks { .. })
    ));
    assert!(matches!(
        zeros::<f64>(&[10, 10], [5]),
        Err(Error::ChunksRank { .. })
    ));
    let a = zeros::<f64>(&[4, 6], [2, 3]).unwrap();
    // Bad broadcast.
    let b = zeros::<f64>(&[5], [5]).unwrap();
    assert!(matches!(
        (&a + &b).checked().unwrap_err().root(),
        Error::Broadcast { .. }
    ));
    // Bad axis.
    assert!(matches!(
        a.sum_axis(2),
        Err(Error::AxisOutOfBounds { axis: 2, ndim: 2 })
    ));
    assert!(matches!(
        a.std_axis(-3, 0.0),
        Err(Error::AxisOutOfBounds { .. })
    ));
    // Bad reshape.
    assert!(matches!(
        a.reshape(&[5, -1]),
        Err(Error::InvalidArgument { op: "reshape", .. })
    ));
    // Out-of-bounds index.
    assert!(matches!(
        a.slice(s![1, 6]),
        Err(Error::IndexOutOfBounds {
            index: 6,
            axis: 1,
            len: 6
        })
    ));
    // Wrong element type on compute.
    assert!(matches!(
        a.compute::<i64>(),
        Err(Error::DTypeMismatch { .. })
    ));
    // Messages name what was wrong.
    let e = zeros::<f64>(&[10, 4], [5]).unwrap_err();
    assert!(e.to_string().contains("[10, 4]"), "{e}");
    let e = (&a + &b).checked().unwrap_err();
    assert!(
        e.to_string().contains("[4, 6]") && e.to_string().contains("[5]"),
        "{e}"
    );
}

#[test]
fn empty_and_zero_d_computations() {
    let e = zeros::<f64>(&[0, 7], [3, 3]).unwrap();
    let out = compute_many(&[&e, &e.sum().unwrap()]).unwrap();
    assert_eq!(out[0].shape(), &[0, 7]);
    assert_eq!(out[1].get(&[]).unwrap().as_f64(), 0.0);
    let z = from_array(ArrayD::from_elem(IxDyn(&[]), 3i64), [0usize; 0]).unwrap();
    let w = (&z * 2i64) + &z;
    assert_eq!(w.compute_scalar::<i64>().unwrap(), 9);
    assert_eq!(w.task_counts().unwrap().after, 2);
}
