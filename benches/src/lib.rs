//! The benchmark workloads of tessera, defined once and shared by the criterion bench
//! (`benches/benches/workloads.rs`), the `workloads` example (`examples/workloads.rs`) and, through that
//! example, `benches/compare_dask.py`, which runs the same workloads in dask and numpy beside ours.
//!
//! ```text
//! cargo bench -p tessera-benches --bench workloads            # criterion, all groups
//! cargo bench -p tessera-benches --bench workloads -- --quick # shorter
//! cargo run --release -p tessera-examples --example workloads -- --workload headline --repeat 3
//! python3 benches/compare_dask.py --python /tmp/daskenv/bin/python --repeat 3
//! ```
//!
//! Every workload draws its input from `default_rng(42).random(..)` (uniform float64 in [0, 1); the
//! anomaly workloads from `standard_normal(..)`), so
//! a timing covers building the graph, optimizing it and running every task, as `x.compute()` does in
//! dask. The dask side of `compare_dask.py` mirrors the definitions here: change both together.

use std::time::{Duration, Instant};

use tessera::{Array, ArrayData, DType, ExecStats, Executor, s};

/// Seed of every workload's random input.
pub const SEED: u64 = 42;

/// One benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Mean of a 10000×10000 random array in 1000×1000 chunks (100 chunks, 800 MB if stored).
    Headline,
    /// Sum of a 1,000,000-element random vector in chunks of 100 (10,000 chunks): the cost of a
    /// task, since a chunk's work is tiny.
    PerTask,
    /// `x[:2000, :2000] @ x[:2000, :2000].T` for x 10000×10000 in 1000×1000 chunks; the slice culls x
    /// to its 4 top-left chunks.
    Matmul,
    /// `(x + x.T).mean(axis=0)` for x 10000×10000 in 1000×1000 chunks.
    XxtMean,
    /// Mean of a 40000×40000 random array in 4000×4000 chunks (100 chunks of 128 MB, 12.8 GB if
    /// stored).
    Mean40000,
    /// The climatology anomaly's spread, `(x - x.mean(axis=0)).std()`, for x a 20000×20000
    /// standard-normal array in 2000×2000 chunks (400 chunks of 32 MB, 3.2 GB if stored): x is read
    /// in two passes, the column means and then the deviations from them.
    AnomalyStd,
    /// The standardized anomaly's spread, `((x - x.mean(axis=0)) / x.std(axis=0)).std()`, same x.
    AnomalyZscore,
    /// Row bands to column bands: x 10000×10000 uniform in 1000×10000 chunks rechunked to
    /// 10000×1000, then `max(axis=0)` (every target chunk overlaps every source chunk).
    RechunkRowsCols,
    /// Mean of a 10000×10000 standard-normal array in 1000×1000 chunks: the headline with normal
    /// draws (the ziggurat) instead of uniform ones.
    NormalMean,
    /// Mean of a 10000×10000 Poisson(4) array in 1000×1000 chunks: a discrete rejection sampler.
    PoissonMean,
    /// A chunked sort of 10⁸ uniform float64 in 8 chunks of 12.5 M (local radix sorts, then a merge
    /// per output chunk), every 1000th element of the result kept (so the client does not gather
    /// 800 MB; every sort task still runs). numpy's `np.sort` of the same count is the baseline.
    Sort1e8,
    /// `histogram` of 10⁸ uniform float64 in 10 chunks into 100 bins over [0, 1).
    Histogram1e8,
    /// `(sin(x)**2 + cos(x)**2).mean()` for x 10000×10000 uniform in 1000×1000 chunks: ordinary
    /// elementwise transcendental math (the vectorized `sin`/`cos`).
    SinCosMean,
    /// `x[::2, ::3].sum(axis=1).max()` for x 20000×20000 uniform in 2000×2000 chunks: a strided
    /// slice of a source (only the kept elements need generating).
    StridedSumMax,
    /// `abs(fft(x, axis=0)).mean()` for x 10000×10000 uniform in 10000×1000 chunks (the
    /// transformed axis whole in each of the 10 chunks): the FFT of every column, then a scalar so
    /// the client does not gather 1.6 GB of complex values.
    Fft10000,
}

impl Workload {
    /// Every workload, in the order reports list them.
    pub const ALL: [Workload; 15] = [
        Workload::Headline,
        Workload::PerTask,
        Workload::Matmul,
        Workload::XxtMean,
        Workload::Mean40000,
        Workload::AnomalyStd,
        Workload::AnomalyZscore,
        Workload::RechunkRowsCols,
        Workload::NormalMean,
        Workload::PoissonMean,
        Workload::Sort1e8,
        Workload::Histogram1e8,
        Workload::SinCosMean,
        Workload::StridedSumMax,
        Workload::Fft10000,
    ];

    /// The name on the command line and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Headline => "headline",
            Workload::PerTask => "per_task",
            Workload::Matmul => "matmul",
            Workload::XxtMean => "xxt_mean",
            Workload::Mean40000 => "mean_40000",
            Workload::AnomalyStd => "anomaly_std",
            Workload::AnomalyZscore => "anomaly_zscore",
            Workload::RechunkRowsCols => "rechunk_rows_cols",
            Workload::NormalMean => "normal_mean",
            Workload::PoissonMean => "poisson_mean",
            Workload::Sort1e8 => "sort_1e8",
            Workload::Histogram1e8 => "histogram_1e8",
            Workload::SinCosMean => "sincos_mean",
            Workload::StridedSumMax => "strided_sum_max",
            Workload::Fft10000 => "fft_10000",
        }
    }

    /// The workload of a name given by [`Workload::name`].
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Chunks of the random input (the number of leaf tasks before culling).
    pub fn input_chunks(self) -> usize {
        match self {
            Workload::PerTask => 10_000,
            Workload::Headline
            | Workload::Matmul
            | Workload::XxtMean
            | Workload::Mean40000
            | Workload::NormalMean
            | Workload::PoissonMean
            | Workload::SinCosMean => 100,
            Workload::AnomalyStd | Workload::AnomalyZscore | Workload::StridedSumMax => 400,
            Workload::RechunkRowsCols | Workload::Histogram1e8 | Workload::Fft10000 => 10,
            Workload::Sort1e8 => 8,
        }
    }

    /// Builds the lazy result array.
    pub fn build(self) -> tessera::Result<Array> {
        let rng = tessera::default_rng(SEED);
        match self {
            Workload::Headline => rng.random(&[10_000, 10_000], [1000, 1000])?.mean(),
            Workload::PerTask => per_task_sum(100),
            Workload::Matmul => {
                let x = rng.random(&[10_000, 10_000], [1000, 1000])?;
                let a = x.slice(s![..2000, ..2000])?;
                a.matmul(&a.t())
            }
            Workload::XxtMean => {
                let x = rng.random(&[10_000, 10_000], [1000, 1000])?;
                (&x + x.t()).mean_axis(0)
            }
            Workload::Mean40000 => rng.random(&[40_000, 40_000], [4000, 4000])?.mean(),
            Workload::AnomalyStd => {
                let x = rng.standard_normal(&[20_000, 20_000], [2000, 2000])?;
                (&x - x.mean_axis(0)?).std()
            }
            Workload::AnomalyZscore => {
                let x = rng.standard_normal(&[20_000, 20_000], [2000, 2000])?;
                ((&x - x.mean_axis(0)?) / x.std_axis(0, 0.0)?).std()
            }
            Workload::RechunkRowsCols => rng
                .random(&[10_000, 10_000], [1000, 10_000])?
                .rechunk([10_000, 1000])?
                .max_axis(0),
            Workload::NormalMean => rng.standard_normal(&[10_000, 10_000], [1000, 1000])?.mean(),
            Workload::PoissonMean => rng.poisson(4.0, &[10_000, 10_000], [1000, 1000])?.mean(),
            Workload::Sort1e8 => rng
                .random(&[100_000_000], [12_500_000])?
                .sort(0)?
                .slice(s![..;1000]),
            Workload::Histogram1e8 => Ok(rng
                .random(&[100_000_000], [10_000_000])?
                .histogram(
                    &tessera::Bins::Range {
                        n: 100,
                        range: (0.0, 1.0),
                    },
                    None,
                )?
                .0),
            Workload::SinCosMean => {
                let x = rng.random(&[10_000, 10_000], [1000, 1000])?;
                (x.sin()?.square()? + x.cos()?.square()?).mean()
            }
            Workload::StridedSumMax => rng
                .random(&[20_000, 20_000], [2000, 2000])?
                .slice(s![..;2, ..;3])?
                .sum_axis(1)?
                .max(),
            Workload::Fft10000 => {
                let x = rng.random(&[10_000, 10_000], [10_000, 1000])?;
                tessera::fft::fft(&x, None, 0, None)?.abs()?.mean()
            }
        }
    }

    /// Builds and computes the workload on `executor`: what a benchmark times.
    pub fn compute(self, executor: &dyn Executor) -> tessera::Result<(ArrayData, ExecStats)> {
        compute_one(&self.build()?, executor)
    }

    /// Builds, computes and times the workload, then takes the checksum of its result (outside the
    /// timing).
    pub fn run(self, executor: &dyn Executor) -> tessera::Result<Run> {
        let cpu_start = process_cpu_time();
        let start = Instant::now();
        let (data, stats) = self.compute(executor)?;
        let elapsed = start.elapsed();
        let cpu = process_cpu_time()
            .zip(cpu_start)
            .map(|(end, start)| end.saturating_sub(start));
        Ok(Run {
            elapsed,
            cpu,
            tasks: stats.tasks,
            checksum: checksum(data)?,
        })
    }
}

/// What one timed run of a workload gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    /// Wall time of building, optimizing and computing the graph.
    pub elapsed: Duration,
    /// CPU time the whole process (every thread) spent meanwhile, where the platform reports it.
    /// Other load on a shared machine inflates wall time far more than this.
    pub cpu: Option<Duration>,
    /// Tasks the executor ran.
    pub tasks: usize,
    /// [`checksum`] of the result.
    pub checksum: f64,
}

/// Sum of a 1,000,000-element random vector in chunks of `chunk` elements: the
/// [`Workload::PerTask`] job with `chunk = 100`; with `chunk = 1_000_000` (one chunk) it does the
/// same arithmetic with almost no tasks, the reference that isolates the per-task cost.
pub fn per_task_sum(chunk: usize) -> tessera::Result<Array> {
    tessera::default_rng(SEED)
        .random(&[1_000_000], [chunk])?
        .sum()
}

/// Computes one array on `executor`, with the executor's statistics.
pub fn compute_one(
    array: &Array,
    executor: &dyn Executor,
) -> tessera::Result<(ArrayData, ExecStats)> {
    let (mut values, stats) = tessera::compute_many_with_stats(&[array], executor)?;
    Ok((values.pop().expect("one output"), stats))
}

/// The memory workloads of issue 9 (`benches/compare_memory.py`, the `memory` example): jobs over a
/// float64 `.npy` file several times a worker's memory limit, where the data must be held or passed
/// through rather than regenerated. [`write_memory_npy`] writes the file, `x[i, j] = (i mod 7) + j /
/// 1000`, so every answer has a closed form ([`memory_expected`]) that checks each side's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryWorkload {
    /// `(x - x.mean()).std()` in square chunks: the mean needs every chunk of `x` before any
    /// deviation can be taken, so all of `x` (read once) is held or spilled until then.
    HoldThenReduce,
    /// `x` in row bands rechunked to column bands, then the column sums (`sum(axis=0)`): every
    /// target chunk overlaps every source chunk.
    RechunkRowsCols,
    /// [`MemoryWorkload::RechunkRowsCols`] of `2 * x`: the rechunk's input is computed, so it cannot
    /// be re-read from the file in column bands; its row bands are cut into pieces that each column
    /// band gathers (the all-to-all case, where every piece is held or spilled once).
    RechunkComputed,
}

impl MemoryWorkload {
    /// The memory workloads.
    pub const ALL: [MemoryWorkload; 3] = [
        MemoryWorkload::HoldThenReduce,
        MemoryWorkload::RechunkRowsCols,
        MemoryWorkload::RechunkComputed,
    ];

    /// The name on the command line and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            MemoryWorkload::HoldThenReduce => "hold_then_reduce",
            MemoryWorkload::RechunkRowsCols => "rechunk_rows_cols_npy",
            MemoryWorkload::RechunkComputed => "rechunk_rows_cols_computed",
        }
    }

    /// The workload of a name given by [`MemoryWorkload::name`].
    pub fn from_name(name: &str) -> Option<MemoryWorkload> {
        MemoryWorkload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Builds the lazy result over the `n × n` file at `path`: square chunks of side `chunk` for
    /// [`MemoryWorkload::HoldThenReduce`], bands `chunk` rows (then columns) wide for
    /// [`MemoryWorkload::RechunkRowsCols`].
    pub fn build(self, path: &std::path::Path, chunk: usize) -> tessera::Result<Array> {
        let n = memory_npy_side(path)?;
        match self {
            MemoryWorkload::HoldThenReduce => {
                let x = tessera::from_npy(path, [chunk, chunk])?;
                let m = x.mean()?;
                (&x - &m).std()
            }
            MemoryWorkload::RechunkRowsCols => tessera::from_npy(path, [chunk, n])?
                .rechunk([n, chunk])?
                .sum_axis(0),
            MemoryWorkload::RechunkComputed => (&tessera::from_npy(path, [chunk, n])? * 2.0)
                .rechunk([n, chunk])?
                .sum_axis(0),
        }
    }
}

/// The side of the square `.npy` file at `path` (its first dimension), from its header.
pub fn memory_npy_side(path: &std::path::Path) -> tessera::Result<usize> {
    Ok(tessera::io::npy::read_header(path)?
        .shape
        .first()
        .copied()
        .unwrap_or(0))
}

/// The value of the memory workloads' file at `(i, j)`.
pub fn memory_value(i: usize, j: usize) -> f64 {
    (i % 7) as f64 + j as f64 / 1000.0
}

/// Writes `x[i, j] = memory_value(i, j)` as an `n × n` float64 `.npy` file, a row at a time.
pub fn write_memory_npy(path: &std::path::Path, n: usize) -> std::io::Result<()> {
    use std::io::Write;
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, {n}), }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    let mut row = Vec::with_capacity(n * 8);
    for i in 0..n {
        row.clear();
        for j in 0..n {
            row.extend_from_slice(&memory_value(i, j).to_le_bytes());
        }
        out.write_all(&row)?;
    }
    out.flush()
}

/// The [`checksum`] each memory workload must give on the `n × n` file, from closed forms: the row
/// and column terms of `memory_value` vary independently over the grid, so the variance is the sum
/// of theirs, and the mean of the column sums is `n` times the mean of the grid.
pub fn memory_expected(w: MemoryWorkload, n: usize) -> f64 {
    let mean = |f: &dyn Fn(usize) -> f64| (0..n).map(f).sum::<f64>() / n as f64;
    let var = |f: &dyn Fn(usize) -> f64| {
        let m = mean(f);
        (0..n).map(|k| (f(k) - m).powi(2)).sum::<f64>() / n as f64
    };
    let row = |i: usize| (i % 7) as f64;
    let col = |j: usize| j as f64 / 1000.0;
    match w {
        MemoryWorkload::HoldThenReduce => (var(&row) + var(&col)).sqrt(),
        MemoryWorkload::RechunkRowsCols => n as f64 * (mean(&row) + mean(&col)),
        MemoryWorkload::RechunkComputed => 2.0 * n as f64 * (mean(&row) + mean(&col)),
    }
}

/// CPU time used so far by the whole process, all threads (exited ones included).
#[cfg(unix)]
pub fn process_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// CPU time used so far by the whole process: not available on this platform.
#[cfg(not(unix))]
pub fn process_cpu_time() -> Option<Duration> {
    None
}

/// The checksum a workload reports: the mean of its result's elements as float64 (for a 0-d result,
/// its value). `compare_dask.py` computes the same on dask's result.
pub fn checksum(data: ArrayData) -> tessera::Result<f64> {
    let values = data.cast(DType::F64).into_typed::<f64>()?;
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        assert_eq!(Workload::from_name("nope"), None);
    }

    #[test]
    fn graphs_have_the_documented_shapes() {
        let shapes: Vec<Vec<usize>> = Workload::ALL
            .iter()
            .map(|w| w.build().unwrap().shape().to_vec())
            .collect();
        assert_eq!(
            shapes,
            vec![
                vec![],
                vec![],
                vec![2000, 2000],
                vec![10_000],
                vec![],
                vec![],
                vec![],
                vec![10_000],
                vec![],
                vec![],
                vec![100_000],
                vec![100],
                vec![],
                vec![],
                vec![]
            ]
        );
    }

    #[test]
    fn headline_computes_the_mean() {
        let run = Workload::Headline
            .run(&tessera::LocalExecutor::new())
            .unwrap();
        assert!((run.checksum - 0.5).abs() < 1e-3, "{run:?}");
        assert!(run.tasks >= Workload::Headline.input_chunks(), "{run:?}");
    }

    #[test]
    fn sincos_mean_is_one() {
        let run = Workload::SinCosMean
            .run(&tessera::LocalExecutor::new())
            .unwrap();
        // sin² + cos² is 1 within an ulp or two for every element.
        assert!((run.checksum - 1.0).abs() < 1e-14, "{run:?}");
    }

    #[test]
    fn memory_workloads_match_their_closed_forms() {
        // Against plain loops over the same values: the closed forms are what the compare script
        // checks every side with.
        let dir = std::env::temp_dir().join(format!("tessera-memory-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.npy");
        let n = 64;
        write_memory_npy(&path, n).unwrap();
        let values: Vec<f64> = (0..n * n).map(|k| memory_value(k / n, k % n)).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let std =
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
        let col_sums_mean = (0..n)
            .map(|j| (0..n).map(|i| values[i * n + j]).sum::<f64>())
            .sum::<f64>()
            / n as f64;
        let exec = tessera::LocalExecutor::with_threads(2).unwrap();
        for (w, want) in [
            (MemoryWorkload::HoldThenReduce, std),
            (MemoryWorkload::RechunkRowsCols, col_sums_mean),
        ] {
            assert!((memory_expected(w, n) - want).abs() < 1e-9 * want, "{w:?}");
            let got =
                checksum(compute_one(&w.build(&path, 16).unwrap(), &exec).unwrap().0).unwrap();
            assert!((got - want).abs() < 1e-9 * want, "{w:?}: {got} vs {want}");
            assert_eq!(MemoryWorkload::from_name(w.name()), Some(w));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn checksum_is_the_mean_of_the_elements() {
        let x = tessera::arange(1i64, 5, 1, [2]).unwrap();
        let (data, _) = compute_one(&x, &tessera::LocalExecutor::new()).unwrap();
        assert_eq!(checksum(data).unwrap(), 2.5);
    }

    #[test]
    fn per_task_reference_matches_the_chunked_sum() {
        let exec = tessera::LocalExecutor::new();
        let small = checksum(
            compute_one(&per_task_sum(100_000).unwrap(), &exec)
                .unwrap()
                .0,
        )
        .unwrap();
        let one = checksum(
            compute_one(&per_task_sum(1_000_000).unwrap(), &exec)
                .unwrap()
                .0,
        )
        .unwrap();
        assert!((small - one).abs() < 1e-6 * one, "{small} vs {one}");
        assert!((one / 1e6 - 0.5).abs() < 0.01);
    }
}
