//! Criterion benchmarks of the random-number kernels on one thread, per element, without the graph
//! or the executor: the fused uniform sum behind `random(..).mean()` (a 2^20-element run), the fused
//! uniform and standard normal sums of one 1000-element chunk row (what the headline and
//! `normal_mean` workloads call per row, so their ratio is the normal-to-uniform cost in one run),
//! and the tile fills the blockwise evaluator calls (1024 elements, `kernels::TILE`) for uniform f64
//! and f32 and standard normal f64. Each runs on the best path the CPU has (VAES with AVX-512, VAES
//! with AVX2, AES-NI or software AES; see `tessera::kernels::random`).
//!
//! ```text
//! cargo bench -p tessera-benches --bench random_kernels
//! cargo bench -p tessera-benches --bench random_kernels -- --quick
//! ```
//!
//! Criterion reports elements per second; ns per element is its inverse. On a shared machine compare
//! kernels within one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use tessera::kernels::TILE;
use tessera::kernels::random::{
    RandomKey, fill_standard_normal_f64, fill_uniform_f32, fill_uniform_f64,
    sum_standard_normal_f64, sum_uniform_f64,
};

fn random_kernels(c: &mut Criterion) {
    let key = RandomKey::new(42, 0);
    let mut g = c.benchmark_group("random_kernels");
    g.sample_size(30).measurement_time(Duration::from_secs(3));

    const RUN: u64 = 1 << 20;
    g.throughput(Throughput::Elements(RUN));
    let mut start = 0u64;
    g.bench_function("sum_uniform_f64", |b| {
        b.iter(|| {
            start = start.wrapping_add(RUN);
            black_box(sum_uniform_f64(key, start, 1, RUN))
        })
    });

    const ROW: usize = 1000;
    g.throughput(Throughput::Elements(ROW as u64));
    g.bench_function("sum_uniform_f64_row", |b| {
        b.iter(|| {
            start = start.wrapping_add(10_000);
            black_box(sum_uniform_f64(key, start, 1, ROW as u64))
        })
    });
    g.bench_function("sum_standard_normal_f64_row", |b| {
        b.iter(|| {
            start = start.wrapping_add(10_000);
            black_box(sum_standard_normal_f64(key, start, 1, ROW))
        })
    });

    g.throughput(Throughput::Elements(TILE as u64));
    let mut f64s = vec![0.0f64; TILE];
    let mut f32s = vec![0.0f32; TILE];
    g.bench_function("fill_uniform_f64", |b| {
        b.iter(|| {
            start = start.wrapping_add(TILE as u64);
            fill_uniform_f64(key, start, 1, &mut f64s);
            black_box(f64s[7])
        })
    });
    g.bench_function("fill_uniform_f32", |b| {
        b.iter(|| {
            start = start.wrapping_add(TILE as u64);
            fill_uniform_f32(key, start, 1, &mut f32s);
            black_box(f32s[7])
        })
    });
    g.bench_function("fill_standard_normal_f64", |b| {
        b.iter(|| {
            start = start.wrapping_add(TILE as u64);
            fill_standard_normal_f64(key, start, 1, &mut f64s);
            black_box(f64s[7])
        })
    });
    g.finish();
}

fn main() {
    // `cargo test --all-targets` builds benches without --bench; there, only check that the kernels
    // run, so that the test suite does not spend seconds timing them.
    if !std::env::args().any(|a| a == "--bench") {
        let mut out = vec![0.0; TILE];
        fill_standard_normal_f64(RandomKey::new(1, 1), 0, 1, &mut out);
        assert!(out.iter().all(|v| v.is_finite()));
        println!("random_kernels bench: skipped (not run by `cargo bench`)");
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    random_kernels(&mut c);
    c.final_summary();
}
