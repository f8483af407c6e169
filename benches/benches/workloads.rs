//! Criterion benchmarks of tessera's benchmark workloads (defined in this package's library), each
//! computed on `LocalExecutor::new()` (all cores), graph building included:
//!
//! - `headline_mean`: mean of a 10000×10000 random array in 1000×1000 chunks.
//! - `per_task_overhead`: sum of a 1,000,000-element random vector in 10,000 chunks of 100, beside the
//!   same sum in one chunk; prints the time per chunk and the per-task overhead (the difference).
//! - `matmul_2000`: `x[:2000, :2000] @ x[:2000, :2000].T`, x 10000×10000 in 1000×1000 chunks.
//! - `x_plus_xt_mean_axis0`: `(x + x.T).mean(axis=0)`, x 10000×10000 in 1000×1000 chunks.
//! - `mean_40000`: mean of a 40000×40000 random array in 4000×4000 chunks.
//! - `distributed`: the headline job and the 10,000-chunk sum on a cluster started inside the bench
//!   process (a `tessera-scheduler` and two 1-thread `tessera-worker`s from their libraries, real gRPC
//!   on loopback) beside the same jobs on a 2-thread local executor; prints the ratios.
//!   `benches/compare_distributed.py` runs the real binaries and dask.distributed beside them.
//!
//! ```text
//! cargo bench -p tessera-benches --bench workloads                  # all groups, a few minutes
//! cargo bench -p tessera-benches --bench workloads -- --quick       # shorter
//! cargo bench -p tessera-benches --bench workloads -- per_task      # one group
//! cargo bench -p tessera-benches --bench workloads -- --test        # each benchmark once
//! ```
//!
//! Absolute times on a shared machine drift; for figures to quote, use ratios measured in one run:
//! the per-task line printed here, or `benches/compare_dask.py` (ours vs dask and numpy).
//! `cargo test --all-targets` builds this file but skips the workloads (criterion would run each once);
//! the library's unit tests check that every workload builds and that the cheap ones compute.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use tessera::{Client, Executor, LocalExecutor};
use tessera_benches::{Workload, compute_one, per_task_sum};

/// Benchmarks one workload in its own group.
fn workload_group(
    c: &mut Criterion,
    group: &str,
    workload: Workload,
    configure: impl FnOnce(&mut BenchmarkGroup<'_, WallTime>),
) {
    let executor = LocalExecutor::new();
    let mut g = c.benchmark_group(group);
    configure(&mut g);
    g.bench_function(workload.name(), |b| {
        b.iter(|| black_box(workload.compute(&executor).expect("workload computes")));
    });
    g.finish();
}

fn headline_mean(c: &mut Criterion) {
    workload_group(c, "headline_mean", Workload::Headline, |g| {
        g.sample_size(20).measurement_time(Duration::from_secs(5));
    });
}

/// Wall time and iterations measured by `iter_custom`, warm-up included.
#[derive(Default)]
struct Tally {
    total: Duration,
    iters: u64,
}

impl Tally {
    /// Mean seconds per iteration.
    fn mean(&self) -> Option<f64> {
        (self.iters > 0).then(|| self.total.as_secs_f64() / self.iters as f64)
    }
}

fn per_task_overhead(c: &mut Criterion) {
    let executor = LocalExecutor::new();
    let chunks = Workload::PerTask.input_chunks();
    let mut g = c.benchmark_group("per_task_overhead");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let tallies = [
        (100, "sum_10000_chunks_of_100"),
        (1_000_000, "sum_1_chunk_of_1000000"),
    ]
    .map(|(chunk, name)| {
        // Throughput in chunks: criterion prints chunks per second, the inverse of the time per chunk.
        g.throughput(Throughput::Elements((1_000_000 / chunk) as u64));
        let tally = RefCell::new(Tally::default());
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let array = per_task_sum(chunk).expect("builds");
                    black_box(compute_one(&array, &executor).expect("computes"));
                }
                let elapsed = start.elapsed();
                let mut t = tally.borrow_mut();
                t.total += elapsed;
                t.iters += iters;
                elapsed
            });
        });
        tally.into_inner()
    });
    g.finish();
    // Both are None when a filter skipped the group.
    if let (Some(many), Some(one)) = (tallies[0].mean(), tallies[1].mean()) {
        let tasks = compute_one(&per_task_sum(100).expect("builds"), &executor)
            .expect("computes")
            .1
            .tasks;
        let per_chunk = many / chunks as f64;
        let overhead = (many - one) / chunks as f64;
        println!(
            "per_task_overhead: {:.2} µs per chunk ({tasks} tasks run, {:.2} µs per task); \
             overhead over the 1-chunk sum {:.2} µs per chunk ({:.1}× the 1-chunk time) \
             [means over warm-up and samples]",
            per_chunk * 1e6,
            many / tasks as f64 * 1e6,
            overhead * 1e6,
            many / one,
        );
    }
}

fn matmul_2000(c: &mut Criterion) {
    workload_group(c, "matmul_2000", Workload::Matmul, |g| {
        g.sample_size(10).measurement_time(Duration::from_secs(10));
    });
}

fn x_plus_xt_mean_axis0(c: &mut Criterion) {
    workload_group(c, "x_plus_xt_mean_axis0", Workload::XxtMean, |g| {
        g.sample_size(10).measurement_time(Duration::from_secs(10));
    });
}

/// The headline's shape with other distributions: normal (ziggurat) and Poisson (rejection); and
/// ordinary work on the same kind of source: elementwise sin/cos, a strided slice.
fn distribution_means(c: &mut Criterion) {
    for (name, workload) in [
        ("normal_mean", Workload::NormalMean),
        ("poisson_mean", Workload::PoissonMean),
        ("sincos_mean", Workload::SinCosMean),
        ("strided_sum_max", Workload::StridedSumMax),
    ] {
        workload_group(c, name, workload, |g| {
            g.sample_size(10).measurement_time(Duration::from_secs(10));
        });
    }
}

fn mean_40000(c: &mut Criterion) {
    workload_group(c, "mean_40000", Workload::Mean40000, |g| {
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(10));
    });
}

/// A scheduler and `workers` one-thread workers on a tokio runtime of their own, on loopback ports;
/// dropping it drops the runtime, which stops them.
struct InProcessCluster {
    address: String,
    _runtime: tokio::runtime::Runtime,
}

impl InProcessCluster {
    fn start(workers: usize) -> InProcessCluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let bind = || {
            runtime
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("a loopback port")
        };
        let listener = bind();
        let at = listener.local_addr().expect("bound");
        let address = format!("http://{at}");
        let config = tessera_scheduler::SchedulerConfig::default().with_listen(at);
        runtime.spawn(tessera_scheduler::run(
            listener,
            config,
            std::future::pending(),
        ));
        for _ in 0..workers {
            let listener = bind();
            let mut config = tessera_worker::WorkerConfig::new(address.clone());
            config.threads = 1;
            config.listen = listener.local_addr().expect("bound");
            runtime.spawn(tessera_worker::run(
                config,
                listener,
                std::future::pending(),
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = Client::connect(&address)
                .and_then(|c| c.status())
                .is_ok_and(|s| s.workers.len() == workers);
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the in-process cluster did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        InProcessCluster {
            address,
            _runtime: runtime,
        }
    }
}

fn distributed(c: &mut Criterion) {
    let cluster = InProcessCluster::start(2);
    let client = Client::connect(&cluster.address).expect("connects");
    let local = LocalExecutor::with_threads(2).expect("a pool");
    let mut g = c.benchmark_group("distributed");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let mut means: Vec<(&str, Option<f64>)> = Vec::new();
    let sides: [(&str, &dyn Executor); 2] = [("local_2_threads", &local), ("cluster_2x1", &client)];
    for workload in [Workload::Headline, Workload::PerTask] {
        for (side, executor) in sides {
            let tally = RefCell::new(Tally::default());
            let name = format!("{}/{side}", workload.name());
            g.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(workload.compute(executor).expect("workload computes"));
                    }
                    let elapsed = start.elapsed();
                    let mut t = tally.borrow_mut();
                    t.total += elapsed;
                    t.iters += iters;
                    elapsed
                });
            });
            means.push((workload.name(), tally.into_inner().mean()));
        }
    }
    g.finish();
    for pair in means.chunks(2) {
        if let [(name, Some(local)), (_, Some(cluster))] = pair {
            let chunks = Workload::from_name(name)
                .expect("a workload")
                .input_chunks() as f64;
            println!(
                "distributed {name}: cluster {:.2} ms vs local {:.2} ms ({:.2}× local), \
                 {:.1} µs per chunk end to end [means over warm-up and samples]",
                cluster * 1e3,
                local * 1e3,
                cluster / local,
                cluster / chunks * 1e6,
            );
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and criterion would then run
    // every workload once. Skip them there: the library's unit tests cover the workloads.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "workloads bench: skipped (not run by `cargo bench`); \
             run `cargo bench -p tessera-benches --bench workloads`"
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    headline_mean(&mut c);
    per_task_overhead(&mut c);
    matmul_2000(&mut c);
    distribution_means(&mut c);
    x_plus_xt_mean_axis0(&mut c);
    mean_40000(&mut c);
    distributed(&mut c);
    c.final_summary();
}
