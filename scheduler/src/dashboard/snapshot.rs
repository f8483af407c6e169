//! The dashboard's view of the scheduler at one moment ([`Snapshot`]), made by the actor from the core
//! and the [`Recorder`](super::record::Recorder), and rendered here as the JSON the page reads. Plain
//! data: building it is the only work done on the actor; rendering happens on the HTTP side.

use std::sync::Arc;

use serde_json::{Value, json};

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug)]
pub struct WorkerView {
    pub id: u32,
    pub address: String,
    pub threads: u32,
    /// Tasks assigned and not yet reported.
    pub running: u32,
    pub chunks_held: u64,
    /// Bytes of chunks it holds by the scheduler's books.
    pub bytes_held: u64,
    /// Bytes it says it holds in memory (its last heartbeat).
    pub reported_bytes: u64,
    pub memory_limit: u64,
    pub bytes_running: u64,
    pub bytes_spilled: u64,
    pub paused: bool,
    pub retiring: bool,
    /// Cores in use between its last two heartbeats (`None` until two have come).
    pub cpu: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct LayerView {
    /// The op's name and the layer's position, e.g. `random#0`.
    pub name: Arc<str>,
    pub tasks: u64,
    pub done: u64,
    pub running: u64,
}

#[derive(Clone, Debug)]
pub struct JobView {
    pub id: u64,
    pub state: JobState,
    pub tasks: u64,
    pub done: u64,
    pub age_seconds: f64,
    /// The layers that have tasks, in graph order (of an ended job at most 64 rows, the last one
    /// summing the layers past them).
    pub layers: Vec<LayerView>,
}

/// One task run, for the task stream. Times are milliseconds since the scheduler started.
#[derive(Clone, Debug)]
pub struct TaskRecord {
    /// Increases by one per record: the page asks for what came after the last one it has.
    pub seq: u64,
    pub worker: u32,
    /// The worker's pool thread, from 1.
    pub thread: u32,
    pub job: u64,
    pub layer: Arc<str>,
    pub start_ms: f64,
    pub end_ms: f64,
}

/// Counters since the scheduler started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub tasks_done: u64,
    pub tasks_failed: u64,
    /// Chunks copied from a retiring worker (reported like tasks, but not run).
    pub replicas: u64,
    /// Bytes of task inputs workers fetched from each other.
    pub transfer_bytes: u64,
    pub jobs_submitted: u64,
    pub jobs_completed: u64,
    pub jobs_failed: u64,
    pub jobs_cancelled: u64,
}

/// A Prometheus-style histogram: counts per bucket (not cumulative), their sum and count.
#[derive(Clone, Debug)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len() - 1);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// Observations at or below each bound (what Prometheus' `_bucket{le=..}` lines say).
    pub fn cumulative(&self) -> Vec<u64> {
        self.counts
            .iter()
            .scan(0, |acc, &c| {
                *acc += c;
                Some(*acc)
            })
            .collect()
    }
}

/// Everything the page and `/metrics` show.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Milliseconds since the scheduler started (the task stream's clock).
    pub now_ms: f64,
    /// The last task record's sequence number.
    pub cursor: u64,
    pub workers: Vec<WorkerView>,
    /// Jobs in the core and recently ended ones, newest first.
    pub jobs: Vec<JobView>,
    pub tasks: Vec<TaskRecord>,
    /// Tasks of the jobs in flight by state: waiting, ready, running, done, released.
    pub task_states: [u64; 5],
    pub jobs_in_flight: u64,
    pub counters: Counters,
    pub workers_lost: u64,
    pub histogram: Histogram,
    /// Tasks finished and bytes transferred in each of the last 60 seconds, oldest first.
    pub throughput: Vec<(u64, u64)>,
}

/// The names of [`Snapshot::task_states`], in order.
pub const TASK_STATES: [&str; 5] = ["waiting", "ready", "running", "done", "released"];

impl Snapshot {
    /// The JSON the page reads (one server-sent event's data).
    pub fn to_json(&self) -> Value {
        json!({
            "now_ms": self.now_ms,
            "cursor": self.cursor,
            "workers": self.workers.iter().map(|w| json!({
                "id": w.id,
                "address": w.address,
                "threads": w.threads,
                "running": w.running,
                "chunks_held": w.chunks_held,
                "bytes_held": w.bytes_held,
                "reported_bytes": w.reported_bytes,
                "memory_limit": w.memory_limit,
                "bytes_running": w.bytes_running,
                "bytes_spilled": w.bytes_spilled,
                "paused": w.paused,
                "retiring": w.retiring,
                "cpu": w.cpu,
            })).collect::<Vec<_>>(),
            "jobs": self.jobs.iter().map(|j| json!({
                // Job ids are 64 random bits: a string, since JavaScript numbers hold 53.
                "id": format!("{:016x}", j.id),
                "state": j.state.name(),
                "tasks": j.tasks,
                "done": j.done,
                "age_seconds": j.age_seconds,
                "layers": j.layers.iter().map(|l| json!({
                    "name": &*l.name,
                    "tasks": l.tasks,
                    "done": l.done,
                    "running": l.running,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "tasks": self.tasks.iter().map(|t| json!({
                "seq": t.seq,
                "worker": t.worker,
                "thread": t.thread,
                "job": format!("{:016x}", t.job),
                "layer": &*t.layer,
                "start_ms": t.start_ms,
                "end_ms": t.end_ms,
            })).collect::<Vec<_>>(),
            "task_states": TASK_STATES.iter().zip(self.task_states)
                .map(|(name, n)| (name.to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "jobs_in_flight": self.jobs_in_flight,
            "tasks_done": self.counters.tasks_done,
            "tasks_failed": self.counters.tasks_failed,
            "transfer_bytes": self.counters.transfer_bytes,
            "throughput": self.throughput.iter()
                .map(|(tasks, bytes)| json!([tasks, bytes])).collect::<Vec<_>>(),
        })
    }
}
