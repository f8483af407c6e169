//! Runs one benchmark workload (defined in the `tessera-benches` library) and prints one JSON line per
//! repetition: `{"workload", "seconds", "cpu_seconds", "tasks", "result", "threads", "repetition"}`,
//! where `seconds` is the wall time of building, optimizing and computing the graph, `cpu_seconds` the
//! CPU time the process spent meanwhile (all threads; null where unavailable), `tasks` the tasks
//! executed and `result` a checksum (the mean of the result's elements). `benches/compare_dask.py`
//! drives it.
//!
//! ```text
//! cargo build --release -p tessera-examples --example workloads
//! target/release/examples/workloads --workload headline --threads 2 --repeat 3
//! /usr/bin/time -v target/release/examples/workloads --workload mean_40000   # peak RSS
//! target/release/examples/workloads --workload per_task --scheduler http://127.0.0.1:8786
//! ```
//!
//! With `--scheduler` the workload runs on that cluster (`threads` then reports the cluster's worker
//! threads); `benches/compare_distributed.py` drives that.
//!
//! Workloads: `headline`, `per_task`, `matmul`, `xxt_mean`, `mean_40000`, `anomaly_std`,
//! `anomaly_zscore`, `rechunk_rows_cols`, `normal_mean`, `poisson_mean`, `sort_1e8`, `sincos_mean`, `strided_sum_max`,
//! `histogram_1e8`.

use std::process::ExitCode;

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use tessera_benches::Workload;

#[derive(Parser, Debug)]
#[command(about = "Runs one tessera benchmark workload and prints a JSON line per repetition")]
struct Args {
    /// Workload to run.
    #[arg(long, value_parser = workload_parser())]
    workload: Workload,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Run on a cluster: the scheduler's address, e.g. http://127.0.0.1:8786 (--threads is then
    /// not allowed: the workers' own thread counts apply).
    #[arg(long, conflicts_with = "threads")]
    scheduler: Option<String>,
    /// Repetitions, each timed and printed on its own line.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
}

fn workload_parser() -> impl TypedValueParser<Value = Workload> {
    PossibleValuesParser::new(Workload::ALL.map(Workload::name))
        .map(|name| Workload::from_name(&name).expect("clap checked the name"))
}

fn run(args: &Args) -> tessera::Result<()> {
    let (local, cluster);
    let (executor, threads): (&dyn tessera::Executor, usize) = match &args.scheduler {
        Some(address) => {
            cluster = tessera::Client::connect(address)?;
            let threads = cluster
                .status()?
                .workers
                .iter()
                .map(|w| w.threads as usize)
                .sum();
            (&cluster, threads)
        }
        None => {
            local = match args.threads {
                Some(n) => tessera::LocalExecutor::with_threads(n.into())?,
                None => tessera::LocalExecutor::new(),
            };
            (&local, local.threads())
        }
    };
    for repetition in 0..args.repeat {
        let run = args.workload.run(executor)?;
        let line = serde_json::json!({
            "workload": args.workload.name(),
            "seconds": run.elapsed.as_secs_f64(),
            "cpu_seconds": run.cpu.map(|d| d.as_secs_f64()),
            "tasks": run.tasks,
            "result": run.checksum,
            "threads": threads,
            "executor": if args.scheduler.is_some() { "distributed" } else { "local" },
            "repetition": repetition,
        });
        println!("{line}");
    }
    Ok(())
}

/// A clap error on one line: its message and hints, without the usage and "try --help" lines.
fn one_line(e: &clap::Error) -> String {
    e.render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        // --help and --version are "errors" that print to stdout and exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
