//! The scheduler's memory measured from outside, on a real process: a client submits a job of about
//! a million chunk tasks and then one of 100,000 layers to a running `tessera-scheduler` (with at
//! least one worker), and reads the scheduler's resident memory from `/proc/PID/status` when idle,
//! its peak during each job (VmHWM, reset before each job through `/proc/PID/clear_refs`) and its
//! resident memory a second after each job ended (the scheduler returns freed heap to the system when
//! its last job ends).
//!
//! ```sh
//! tessera-scheduler --listen 127.0.0.1:8786 &            # note its pid
//! tessera-worker --scheduler http://127.0.0.1:8786 --threads 2 &
//! cargo run --release -p tessera-scheduler --example memory_client -- \
//!     --scheduler http://127.0.0.1:8786 --pid PID [--secret-file F] [--side 1024] [--layers 99999] \
//!     [--settle 62]
//! ```
//!
//! "Idle" is measured after a one-task job (the connections' buffers exist from then on) and
//! before it; `--settle S` also reads the resident size S seconds after each job (62: after the
//! dashboard's 60 s task-stream window, when the scheduler trims its heap once more).

use std::time::{Duration, Instant};

use tessera::Graph;

/// Resident and peak resident bytes of process `pid`.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the process's peak resident size to its current size (Linux 4.0+).
fn reset_peak(pid: u32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the peak of {pid} ({e}): VmHWM is the process's lifetime peak");
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Runs `graph` on the cluster, dropping its outputs; returns the tasks and the seconds it took, and
/// the scheduler's peak and after-job resident bytes (a second after the job; with `settle`, also
/// that many seconds after, printed).
async fn run(
    client: &tessera::AsyncClient,
    pid: u32,
    graph: Graph,
    settle: u64,
) -> (u64, f64, u64, u64) {
    reset_peak(pid);
    let start = Instant::now();
    let stats = client
        .execute(graph, &|_, _, _| Ok(()))
        .await
        .expect("the job runs");
    let seconds = start.elapsed().as_secs_f64();
    let (_, peak) = memory(pid);
    // The scheduler trims its heap once its last job is gone; give it a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after, _) = memory(pid);
    if settle > 0 {
        tokio::time::sleep(Duration::from_secs(settle)).await;
        let (later, _) = memory(pid);
        println!(
            "  {settle} s after that (the dashboard's 60 s window passed): {:.1} MiB",
            mib(later)
        );
    }
    (stats.tasks as u64, seconds, peak, after)
}

fn main() {
    // Building and dropping a chain of 100,000 lazy arrays recurses once per layer: far deeper
    // than a main thread's 8 MiB stack.
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(measure())
        })
        .expect("a thread")
        .join()
        .expect("the measurement ran");
}

async fn measure() {
    let args: Vec<String> = std::env::args().collect();
    let address = arg(&args, "--scheduler").unwrap_or_else(|| "http://127.0.0.1:8786".into());
    let pid: u32 = arg(&args, "--pid")
        .expect("--pid PID of the scheduler")
        .parse()
        .expect("--pid is a number");
    let side: usize = arg(&args, "--side").map_or(1024, |s| s.parse().expect("--side"));
    let layers: usize = arg(&args, "--layers").map_or(99_999, |s| s.parse().expect("--layers"));
    let settle: u64 = arg(&args, "--settle").map_or(0, |s| s.parse().expect("--settle SECONDS"));
    let mut builder = tessera::Client::builder(&address);
    if let Some(f) = arg(&args, "--secret-file") {
        builder = builder.secret_file(f);
    }
    let client = builder.connect_async().await.expect("connects");

    let (cold, _) = memory(pid);
    // One small job first: the connections' buffers and the runtime's lazily made state exist
    // from then on whatever ran; "idle" is the scheduler with them, and no job.
    let one = tessera::ones::<f64>(&[4], [4])
        .and_then(|x| x.sum())
        .expect("sum");
    run(&client, pid, one.graph(), 0).await;
    let (idle, _) = memory(pid);
    println!(
        "scheduler idle: {:.1} MiB ({:.1} MiB before any job)",
        mib(idle),
        mib(cold)
    );

    // side × side chunks of 1 × 1 summed as a tree: about 1.05 million tasks for side 1024.
    let sum = tessera::default_rng(1)
        .random(&[side, side], [1, 1])
        .and_then(|x| x.sum())
        .expect("sum");
    let graph = tessera::optimize::optimize(sum.graph());
    let (tasks, seconds, peak, after) = run(&client, pid, graph, settle).await;
    println!(
        "{tasks} tasks in {seconds:.1} s: scheduler peak {:.1} MiB ({:.0} B/task over idle), after the job {:.1} MiB ({:+.1}% of idle)",
        mib(peak),
        (peak.saturating_sub(idle)) as f64 / tasks as f64,
        mib(after),
        (after as f64 / idle as f64 - 1.0) * 100.0
    );

    // A chain of `layers` elementwise adds on a small array, unoptimized so that each stays a layer.
    let mut y = tessera::ones::<f64>(&[4], [4]).expect("ones");
    for _ in 0..layers {
        y = &y + 1.0;
    }
    let graph = y.graph();
    drop(y);
    let n = graph.layers().len();
    let (tasks, seconds, peak, after) = run(&client, pid, graph, settle).await;
    println!(
        "{n} layers ({tasks} tasks) in {seconds:.1} s: scheduler peak {:.1} MiB, after the job {:.1} MiB ({:+.1}% of idle)",
        mib(peak),
        mib(after),
        (after as f64 / idle as f64 - 1.0) * 100.0
    );
}
