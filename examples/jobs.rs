//! Job handles and progress: submits three jobs at once, cancels one, shows a progress bar for
//! another while it runs, and prints what each job did per layer. The same code runs on the local
//! executor or, with `--scheduler`, on a cluster.
//!
//! ```text
//! cargo run --release --example jobs
//! cargo run --release --example jobs -- --scheduler http://127.0.0.1:8786
//! ```

use std::process::ExitCode;

use clap::Parser;
use tessera::{Array, JobHandle, JobStatus};
use tessera_examples::exit;

#[derive(Parser, Debug)]
#[command(about = "Submit jobs in the background, watch their progress, cancel one")]
struct Args {
    /// Side of the square random arrays.
    #[arg(long, default_value_t = 12000)]
    side: usize,
    /// Side of their square chunks.
    #[arg(long, default_value_t = 500)]
    chunk: usize,
    /// Run on a cluster: the scheduler's address, e.g. http://127.0.0.1:8786.
    #[arg(long, env = "TESSERA_SCHEDULER")]
    scheduler: Option<String>,
}

/// Where jobs go: the same calls whichever executor it is.
enum Target {
    Local(tessera::LocalExecutor),
    Cluster(Box<tessera::Client>),
}

impl Target {
    fn submit(&self, array: &Array) -> JobHandle {
        match self {
            Target::Local(ex) => ex.submit(array),
            Target::Cluster(client) => client.submit(array),
        }
    }
}

fn run(args: &Args) -> tessera::Result<()> {
    let target = match &args.scheduler {
        Some(address) => Target::Cluster(Box::new(tessera::Client::connect(address)?)),
        None => Target::Local(tessera::LocalExecutor::new()),
    };
    let rng = tessera::default_rng(7);
    let shape = [args.side, args.side];
    let chunks = [args.chunk, args.chunk];
    let x = rng.random(&shape, chunks)?;
    let n = rng.standard_normal(&shape, chunks)?;

    let mean = target.submit(&x.mean()?);
    let spread = target.submit(&(&x - &n).sin()?.std()?);
    let doomed = target.submit(&n.matmul(&n.t())?.sum()?);
    eprintln!("submitted three jobs; cancelling the matmul one");
    doomed.cancel();

    eprintln!("std(sin(x - n)):");
    tessera::progress_bar::show_progress(&spread);
    for (name, job) in [("mean", mean), ("std", spread), ("matmul sum", doomed)] {
        let status = job.wait();
        if status != JobStatus::Finished {
            println!("{name:<10} {status:?}: {}", job.error().unwrap_or_default());
            continue;
        }
        let (values, stats) = job.results_with_stats()?;
        let value = values[0].get(&[]).expect("a 0-d result");
        println!("{name:<10} {value:?} ({} tasks)", stats.tasks);
        for l in &stats.layers {
            println!(
                "    {:<28} {:>5}/{:<5} tasks {:>12} bytes",
                l.layer, l.done, l.total, l.bytes
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    exit(run(&Args::parse()))
}
