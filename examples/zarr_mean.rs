//! The headline job on real data: the mean of an array read from a Zarr store.
//!
//! ```text
//! cargo run --release --example zarr_mean -- --store /tmp/x.zarr --write
//! cargo run --release --example zarr_mean -- --store /tmp/x.zarr --json
//! cargo run --release --example zarr_mean -- --store /tmp/x.zarr --scheduler http://127.0.0.1:8786
//! ```
//!
//! With `--write`, first writes the headline's 10000×10000 uniform random array (seed 42) to a Zarr v3
//! store at `--store` (zstd, 1000×1000 store chunks; `--shape`/`--chunks`/`--level` change that), then
//! computes its mean back from the store. Without `--write` it computes the mean of the array already
//! at `--store`, whoever wrote it (zarr-python, dask, tessera), in the store's own chunking. A path that
//! every worker sees (or an `s3://` URL with the `s3` feature) runs on a cluster with `--scheduler`: each
//! worker reads its chunks from the store itself. `--json` prints one JSON object last, as the `mean`
//! example does (`mean`, `seconds`, `tasks`, plus `write_seconds` when it wrote).

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tessera::{ZarrCodec, ZarrOptions};
use tessera_examples::{Executors, exit};

#[derive(Parser, Debug)]
#[command(
    about = "Mean of an array in a Zarr store, computed chunk by chunk (optionally writing it first)"
)]
struct Args {
    /// The store: a directory path or an object-store URL.
    #[arg(long)]
    store: String,
    /// Write the random array to the store first (replacing what is there).
    #[arg(long)]
    write: bool,
    /// Shape of the array written with --write, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,10000")]
    shape: Vec<usize>,
    /// Chunk shape of the array written with --write (and of the store's chunks).
    #[arg(long, value_delimiter = ',', default_value = "1000,1000")]
    chunks: Vec<usize>,
    /// zstd level of the chunks written with --write.
    #[arg(long, default_value_t = 3)]
    level: i32,
    /// Random seed of the array written with --write.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads of the local executor (default: all cores).
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

    let write_seconds = if args.write {
        let start = Instant::now();
        let x = tessera::default_rng(args.seed).random(&args.shape, args.chunks.clone())?;
        let options = ZarrOptions::new()
            .chunks(args.chunks.clone())
            .codec(ZarrCodec::Zstd { level: args.level });
        x.to_zarr_on(&args.store, &options, executor)?;
        Some(start.elapsed().as_secs_f64())
    } else {
        None
    };

    let start = Instant::now();
    let x = tessera::from_zarr(&args.store)?;
    let mean = x.astype(tessera::DType::F64)?.mean()?;
    let (values, stats) = tessera::compute_many_with_stats(&[&mean], executor)?;
    let seconds = start.elapsed().as_secs_f64();
    // The store's chunk shape (the first chunk along each axis).
    let chunk_shape: Vec<usize> = x
        .chunks()
        .sizes()
        .iter()
        .map(|axis| axis.first().copied().unwrap_or(0))
        .collect();
    let value = values[0].clone().into_typed::<f64>()?;
    let value = *value.first().expect("a 0-d result has one element");
    let executor_name = executors.name();
    if args.json {
        let write = write_seconds
            .map(|s| format!(", \"write_seconds\": {s}"))
            .unwrap_or_default();
        println!(
            "{{\"mean\": {value}, \"seconds\": {seconds}, \"tasks\": {}, \"shape\": {:?}, \"chunks\": {:?}, \"dtype\": \"{}\", \"executor\": \"{executor_name}\"{write}}}",
            stats.tasks,
            x.shape(),
            chunk_shape,
            x.dtype().name(),
        );
    } else {
        if let Some(s) = write_seconds {
            println!("write    {:.1} ms ({})", s * 1e3, args.store);
        }
        println!("mean     {value}");
        println!("time     {:.1} ms", seconds * 1e3);
        println!(
            "tasks    {} executed ({executor_name}), array {:?} in {:?} chunks",
            stats.tasks,
            x.shape(),
            chunk_shape
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    exit(run(&Args::parse()))
}
