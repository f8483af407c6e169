//! The headline job: the mean of a large uniform random array.
//!
//! ```text
//! cargo run --release --example mean
//! cargo run --release --example mean -- --shape 40000,40000 --chunks 4000,4000 --threads 2 --json
//! cargo run --release --example mean -- --scheduler http://127.0.0.1:8786 --json
//! ```
//!
//! Prints the mean, the wall time of the computation (building the graph included, process start-up
//! excluded) and the task counts; with `--json`, the last line is one JSON object with keys `mean`,
//! `seconds` and `tasks` (tasks executed), plus the run's settings. On a terminal, a computation that
//! lasts more than a second shows a progress bar on stderr (`--no-progress` or `TESSERA_PROGRESS=0`
//! turns it off).

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tessera_examples::{Executors, exit};

#[derive(Parser, Debug)]
#[command(about = "Mean of a uniform random array, computed chunk by chunk")]
struct Args {
    /// Array shape, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,10000")]
    shape: Vec<usize>,
    /// Chunk shape, comma-separated (one entry per axis).
    #[arg(long, value_delimiter = ',', default_value = "1000,1000")]
    chunks: Vec<usize>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run on a cluster: the scheduler's address, e.g. http://127.0.0.1:8786.
    #[arg(long, env = "TESSERA_SCHEDULER")]
    scheduler: Option<String>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Never show the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn run(args: &Args) -> tessera::Result<()> {
    let executors = Executors::new(args.threads, args.scheduler.as_deref(), args.no_progress)?;
    let executor = executors.executor();
    let threads = match executors.cluster() {
        Some(c) => {
            let workers = c.status()?.workers;
            let threads: u32 = workers.iter().map(|w| w.threads).sum();
            format!("{threads} (on {} workers)", workers.len())
        }
        None => executors.local().threads().to_string(),
    };
    let start = Instant::now();
    let x = tessera::default_rng(args.seed).random(&args.shape, args.chunks.clone())?;
    let mean = x.mean()?;
    let (values, stats) = tessera::compute_many_with_stats(&[&mean], executor)?;
    let seconds = start.elapsed().as_secs_f64();
    let value = values[0].clone().into_typed::<f64>()?;
    let value = *value.first().expect("a 0-d result has one element");
    let counts = mean.task_counts()?;
    if args.json {
        println!(
            "{{\"mean\": {value}, \"seconds\": {seconds}, \"tasks\": {}, \"tasks_before_optimization\": {}, \"shape\": {:?}, \"chunks\": {:?}, \"threads\": \"{threads}\", \"executor\": \"{}\"}}",
            stats.tasks,
            counts.before,
            args.shape,
            args.chunks,
            executors.name()
        );
    } else {
        println!("mean     {value}");
        println!("time     {:.1} ms", seconds * 1e3);
        println!(
            "tasks    {} executed ({} before optimization) on {threads} threads",
            stats.tasks, counts.before
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    exit(run(&Args::parse()))
}
