//! Runs one of the memory workloads of issue 9 ([`tessera_benches::MemoryWorkload`]) over a float64
//! `.npy` file, on the local executor with a memory limit or on a cluster, and prints one JSON line:
//! `{"workload", "seconds", "result", "expected", "tasks", "peak_held", "spilled_bytes"}` (`expected`
//! is the closed-form answer; the last two are the local executor's figures, zero on a cluster).
//! `--wait-workers N` waits for N workers to register before the clock starts. With `--write N` it writes the `N × N` file first (and times nothing). `benches/compare_memory.py`
//! drives it and reads the peak RSS of this process and of the cluster's from `/proc`.
//!
//! ```text
//! cargo build --release -p tessera-benches --example memory
//! target/release/examples/memory --npy /tmp/x.npy --write 16384
//! target/release/examples/memory --npy /tmp/x.npy --workload hold_then_reduce --chunk 2048 \
//!     --threads 2 --memory-limit 512MiB
//! target/release/examples/memory --npy /tmp/x.npy --workload rechunk_rows_cols_npy --chunk 512 \
//!     --scheduler http://127.0.0.1:8786
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tessera_benches::{
    MemoryWorkload, checksum, compute_one, memory_expected, memory_npy_side, write_memory_npy,
};

/// The value after `name` on the command line.
fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `512MiB`, `1GiB`, `4096` (bytes).
fn parse_bytes(s: &str) -> Result<usize, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = digits
        .parse()
        .map_err(|_| format!("--memory-limit {s:?}: not a size such as 512MiB"))?;
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "--memory-limit {s:?}: unit {unit:?} is not B, KiB, MiB or GiB"
            ));
        }
    };
    Ok(n * scale)
}

fn run(args: &[String]) -> Result<(), String> {
    let path = PathBuf::from(arg(args, "--npy").ok_or("--npy PATH is required")?);
    if let Some(n) = arg(args, "--write") {
        let n: usize = n.parse().map_err(|_| "--write takes the side N")?;
        write_memory_npy(&path, n).map_err(|e| format!("writing {}: {e}", path.display()))?;
        return Ok(());
    }
    let name = arg(args, "--workload").ok_or("--workload NAME is required")?;
    let workload = MemoryWorkload::from_name(&name).ok_or_else(|| {
        let names: Vec<_> = MemoryWorkload::ALL.map(MemoryWorkload::name).to_vec();
        format!("--workload {name:?} is not one of {names:?}")
    })?;
    let chunk: usize = arg(args, "--chunk")
        .ok_or("--chunk N is required")?
        .parse()
        .map_err(|_| "--chunk takes a number of elements")?;
    let (local, cluster);
    let executor: &dyn tessera::Executor = match arg(args, "--scheduler") {
        Some(address) => {
            cluster = tessera::Client::connect(&address).map_err(|e| e.to_string())?;
            if let Some(n) = arg(args, "--wait-workers") {
                let n: usize = n.parse().map_err(|_| "--wait-workers takes a count")?;
                wait_for_workers(&cluster, n)?;
            }
            &cluster
        }
        None => {
            let threads = arg(args, "--threads").map_or(Ok(2), |t| t.parse::<usize>());
            let threads = threads.map_err(|_| "--threads takes a number")?;
            let mut executor =
                tessera::LocalExecutor::with_threads(threads).map_err(|e| e.to_string())?;
            if let Some(limit) = arg(args, "--memory-limit") {
                executor = executor.with_memory_limit(parse_bytes(&limit)?);
            }
            local = executor;
            &local
        }
    };
    let start = Instant::now();
    let array = workload.build(&path, chunk).map_err(|e| e.to_string())?;
    let (data, stats) = compute_one(&array, executor).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let n = memory_npy_side(&path).map_err(|e| e.to_string())?;
    let line = format!(
        "{{\"workload\": \"{}\", \"seconds\": {seconds}, \"result\": {}, \"expected\": {}, \
         \"tasks\": {}, \"peak_held\": {}, \"spilled_bytes\": {}}}",
        workload.name(),
        checksum(data).map_err(|e| e.to_string())?,
        memory_expected(workload, n),
        stats.tasks,
        stats.peak_bytes,
        stats.spilled_bytes
    );
    println!("{line}");
    Ok(())
}

/// Waits (up to 30 s) until `n` workers have registered with the cluster.
fn wait_for_workers(client: &tessera::Client, n: usize) -> Result<(), String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let workers = client.status().map_err(|e| e.to_string())?.workers.len();
        if workers >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{workers} of {n} workers registered within 30 s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
