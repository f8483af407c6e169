//! The scheduler's own memory, measured: a job of about a million chunk tasks is expanded, submitted
//! to the core and run to completion by a simulated worker that finishes every task at once, and the
//! process's resident memory is read from /proc before, at its peak and after the job is dropped (with
//! the heap trimmed, as the server does when its last job ends); then the same for a graph of 100,000
//! layers. Prints the bytes of scheduler bookkeeping per task.
//!
//! `cargo run --release -p tessera-scheduler --example core_memory`

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::graph::expand::TaskGraph;
use tessera_scheduler::core::{
    self, JobId, Outbox, State, TaskReport, ToClient, ToWorker, WorkerId,
};

/// Resident and peak resident bytes of this process.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Collects assignments and output announcements; drops everything else.
#[derive(Default)]
struct Sink {
    assigned: Vec<u32>,
    outputs: Vec<u32>,
}

impl Outbox for Sink {
    fn to_worker(&mut self, _worker: WorkerId, msg: ToWorker) {
        if let ToWorker::Assign(tasks) = msg {
            self.assigned.extend(tasks.iter().map(|a| a.task));
        }
    }

    fn to_client(&mut self, _job: JobId, msg: ToClient) {
        if let ToClient::OutputsReady(chunks) = msg {
            self.outputs.extend(chunks.iter().map(|c| c.task));
        }
    }
}

/// Runs `graph` through a fresh core with one 64-thread worker; returns the peak resident bytes
/// seen while the job was live and the number of tasks.
fn run(graph: Arc<TaskGraph>) -> (u64, usize) {
    let tasks = graph.tasks.len();
    let now = Instant::now();
    let mut state = State::new(core::Config::default());
    let mut out = Sink::default();
    let w = WorkerId(1);
    core::on_worker_joined(&mut state, &mut out, now, w, 64, 0);
    core::on_job_submitted(&mut state, &mut out, now, JobId(1), graph);
    let mut peak = memory().0;
    while !out.assigned.is_empty() {
        let reports: Vec<TaskReport> = out
            .assigned
            .drain(..)
            .map(|task| TaskReport {
                job: JobId(1),
                task,
                nbytes: 8,
                run_time: Duration::from_micros(50),
            })
            .collect();
        core::on_tasks_done(&mut state, &mut out, now, w, &reports);
        if !out.outputs.is_empty() {
            let fetched = std::mem::take(&mut out.outputs);
            core::on_outputs_fetched(&mut state, &mut out, now, JobId(1), &fetched);
        }
        peak = peak.max(memory().0);
    }
    assert_eq!(state.job_status(JobId(1)).map(|s| s.unfinished), Some(0));
    core::on_job_cancelled(&mut state, &mut out, now, JobId(1));
    (peak, tasks)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn main() {
    trim();
    let (idle, _) = memory();
    // 1024 × 1024 chunks of 1 × 1 summed as a tree: about 1.05 million tasks.
    let x = tessera::default_rng(1)
        .random(&[1024, 1024], [1, 1])
        .expect("random");
    let sum = x.sum().expect("sum");
    let graph =
        Arc::new(TaskGraph::expand(tessera::optimize::optimize(sum.graph())).expect("expands"));
    let (expanded, _) = memory();
    let (peak, tasks) = run(graph);
    trim();
    let (after, _) = memory();
    println!(
        "{tasks} tasks: idle {:.1} MiB, expanded graph {:.1} MiB ({:.0} B/task), peak while running {:.1} MiB ({:.0} B/task incl. graph), after the job {:.1} MiB",
        mib(idle),
        mib(expanded),
        (expanded - idle) as f64 / tasks as f64,
        mib(peak),
        (peak - idle) as f64 / tasks as f64,
        mib(after)
    );

    // 100,000 layers: a chain of elementwise ops on a small array, unoptimized so each stays a layer.
    let mut y = tessera::ones::<f64>(&[4], [4]).expect("ones");
    for _ in 0..100_000 {
        y = &y + 1.0;
    }
    let graph = Arc::new(TaskGraph::expand(y.graph()).expect("expands"));
    drop(y);
    let layers = graph.graph.layers().len();
    let (peak, tasks) = run(graph);
    trim();
    let (after, _) = memory();
    println!(
        "{layers} layers ({tasks} tasks): peak {:.1} MiB, after the job {:.1} MiB (idle {:.1} MiB)",
        mib(peak),
        mib(after),
        mib(idle)
    );
}
