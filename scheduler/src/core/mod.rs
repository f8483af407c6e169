//! The scheduler's core: a synchronous state machine over workers, jobs and chunk tasks, with no I/O,
//! no clock and no threads. The gRPC shell owns the sockets and the clock; it turns every thing that
//! happens (a worker joining, a task result, a client going away, a timer tick) into one call of an
//! `on_*` function in [`reactor`], passing the current time, and translates what the core puts in its
//! [`Outbox`] into `SchedulerMessage`s and `ClientEvent`s of `tessera/v1/tessera.proto`. Everything here
//! is deterministic: the same events in the same order give the same messages, which is what the tests
//! in `tests.rs` rely on.
//!
//! # Terms
//! - A *chunk* is the result of one task, named by `(job, task)`; its *holders* are the workers that
//!   keep a copy (the one that computed it, plus replicas).
//! - A task is *active* while it is `Waiting`, `Ready` or `Running`. A chunk's *pending* count is the
//!   number of its active consumers. A chunk is *needed* while it is pending or is an output the client
//!   has not fetched yet.
//! - A worker's *in-flight* tasks are the ones assigned to it that it has not reported; it has
//!   slots for them: `threads × slots_per_thread` at first, more once its tasks prove short (about
//!   `Config::queue_time` of work per thread).
//!
//! # Task states
//!
//! ```text
//!                  every input Done           a slot is free          reported done
//!   submit ──► Waiting ──────────────► Ready ──────────────► Running ──────────────► Done
//!                 ▲ ◄──── input lost ───┘ ▲ ◄── worker lost ───┘                       │
//!                 │                       │   or missing input                         │
//!                 └──── needed again ──── Released ◄──────── no longer needed ─────────┘
//! ```
//!
//! | from              | to                            | when                                        |
//! |-------------------|-------------------------------|---------------------------------------------|
//! | Waiting           | Ready                         | its last missing input becomes `Done`       |
//! | Ready             | Waiting                       | an input lost its last holder               |
//! | Ready             | Running                       | assigned to a worker with a free slot       |
//! | Running           | Ready, Waiting                | its worker was lost, or it failed for a missing input (and no other worker runs it) |
//! | Running, Waiting, Ready | Done                    | a worker reports it (Waiting/Ready: a replica arriving while it is recomputed) |
//! | Done              | Released                      | no longer needed: its holders get `Release` |
//! | Done              | Waiting, Ready, Running       | its last holder is gone and it is still needed |
//! | Released          | Waiting, Ready, Running       | needed again: a consumer is being recomputed |
//! | Waiting, Ready    | Released                      | no longer needed (a recomputation whose reader finished after all, an output fetched meanwhile) |
//! | Running           | (stays)                       | no longer needed: it runs out and is released when reported |
//!
//! `Released` is not terminal: a chunk that was released and is needed again (a consumer lost its
//! result and must be recomputed) goes back to `Waiting` or `Ready`, which in turn makes its own inputs
//! pending again — that is how recomputation reaches back through already-released inputs.
//! A job is complete when none of its tasks is active; it is dropped when the client cancels it (or
//! closes its stream), or when one of its tasks fails deterministically.
//!
//! # Progress
//! Each job counts, per layer of its graph, the tasks that have reached `Done` once (a recomputed
//! task is not counted again) and the bytes of their chunks. Nothing is sent per task: the shell calls
//! [`on_progress_due`] on a timer (every 100 ms by default) and each job whose counts moved since its
//! last report gets one `Progress`; a job that completes gets a last one just before `Completed`.
//!
//! # Persisted jobs
//! A job whose client keeps it open after `Completed` without fetching its outputs keeps them: they
//! stay wanted, so they are never released and a lost one is recomputed from the job's own graph
//! (and announced again). That is what `persist_on(&client)` does. A later job of the same client
//! reads them through tasks that *read* a kept chunk ([`on_job_submitted_reading`]): such a task has
//! no input in its own job; it is placed only while the kept chunk is `Done` (preferring a worker
//! that holds it) and is assigned with that chunk's holders; until then it waits, and if the kept job
//! is dropped or the chunk released, the reading job fails saying so. A worker that cannot fetch the
//! kept chunk reports it missing, and its holders are presumed gone as for any input.
//!
//! # Workers
//!
//! ```text
//!   joined ──► Active ──── retiring ────► Retiring ── nothing in flight, every needed chunk ──► Goodbye
//!                │   (no new assignments; sole-held needed       it holds has another holder,   (removed)
//!                │    chunks are replicated to other workers)    or no other worker is left
//!                └──── session closed / heartbeat timeout ────► Lost (removed; its running tasks are
//!                                                                requeued, its chunks recomputed if needed)
//! ```

mod outbox;
mod policy;
pub mod reactor;
mod state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tessera::graph::expand::TaskGraph;

pub use outbox::Outbox;
pub use reactor::{
    TaskFailure, TaskReport, on_heartbeat, on_job_cancelled, on_job_submitted,
    on_job_submitted_reading, on_outputs_fetched, on_progress_due, on_task_failed, on_tasks_done,
    on_tick, on_worker_joined, on_worker_lost, on_worker_retiring,
};
pub use state::{
    Footprint, JobStatus, LayerProgress, State, Stats, TaskStatus, WorkerMemory, WorkerStatus,
};

/// Declares a copyable id newtype that displays as its number.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                $name(v)
            }
        }
    };
}

id_type!(
    /// A worker, numbered by the shell when it registers (`RegisterWorkerReply.worker_id`).
    WorkerId(u32)
);
id_type!(
    /// A job (one client's `Run` stream), numbered by the shell.
    JobId(u64)
);

/// A chunk: the result of `task` in `job` (the wire's `ChunkRef`).
pub type ChunkRef = (JobId, u32);

/// Tunables of the core.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// A worker not heard from (heartbeat or task result) for longer than this is lost at the next
    /// [`on_tick`].
    pub heartbeat_timeout: Duration,
    /// The fewest tasks in flight per worker thread (and the number before any task has been timed):
    /// two keeps a thread busy while its next result travels, without piling work on it.
    pub slots_per_thread: u32,
    /// The most tasks in flight per worker thread, however short the tasks.
    pub max_slots_per_thread: u32,
    /// About how much work (by the worker's recent task run times) each worker thread gets queued:
    /// enough to hide a round trip to the scheduler when tasks take microseconds, and to top queues
    /// up in batches when they take a fraction of a millisecond, and little enough that no worker
    /// sits on work another could start.
    pub queue_time: Duration,
    /// A worker whose in-memory chunks and booked tasks pass this fraction of its memory limit is
    /// short of memory: tasks that read held chunks (and so let them go) are sent to it before
    /// sources, which only add to what it holds.
    pub memory_short: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_timeout: Duration::from_secs(30),
            slots_per_thread: 2,
            max_slots_per_thread: 256,
            queue_time: Duration::from_millis(4),
            memory_short: 0.6,
        }
    }
}

/// One task for a worker to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub job: JobId,
    pub task: u32,
    /// Each distinct input task, in the order the task reads them, with the workers that hold it (the
    /// receiving worker itself when it holds it). Never empty for an input.
    pub deps: Vec<(u32, Vec<WorkerId>)>,
    /// Lower runs first (the task's index in the job's depth-first order).
    pub priority: u32,
    /// A task that copies a kept chunk of another job (a persisted array): that chunk and the
    /// workers that hold it. Never with an empty holder list.
    pub reads: Option<(ChunkRef, Vec<WorkerId>)>,
}

/// A message to a worker (the wire's `SchedulerMessage`).
#[derive(Clone)]
pub enum ToWorker {
    /// The job's graph; sent once per (worker, job), before the worker's first assignment of the job.
    Graph { job: JobId, graph: Arc<TaskGraph> },
    /// Tasks to run, at most one `Assign` per worker per event.
    Assign(Vec<Assignment>),
    /// Chunks the worker may drop: no task needs them any more.
    Release(Vec<ChunkRef>),
    /// Fetch the chunk from `from` and keep a copy, then report it with a task-done (`from` is retiring).
    Replicate {
        job: JobId,
        task: u32,
        from: WorkerId,
    },
    /// Drop everything of the job (cancelled, failed, or finished and closed by its client).
    Forget(JobId),
    /// The worker has retired: it holds nothing anyone needs and may exit.
    Goodbye,
}

impl fmt::Debug for ToWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToWorker::Graph { job, graph } => f
                .debug_struct("Graph")
                .field("job", job)
                .field("tasks", &graph.tasks.len())
                .finish(),
            ToWorker::Assign(a) => f.debug_tuple("Assign").field(a).finish(),
            ToWorker::Release(r) => f.debug_tuple("Release").field(r).finish(),
            ToWorker::Replicate { job, task, from } => f
                .debug_struct("Replicate")
                .field("job", job)
                .field("task", task)
                .field("from", from)
                .finish(),
            ToWorker::Forget(j) => f.debug_tuple("Forget").field(j).finish(),
            ToWorker::Goodbye => f.write_str("Goodbye"),
        }
    }
}

/// Graphs compare by identity (the same `Arc`), everything else by value.
impl PartialEq for ToWorker {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ToWorker::Graph { job: a, graph: g }, ToWorker::Graph { job: b, graph: h }) => {
                a == b && Arc::ptr_eq(g, h)
            }
            (ToWorker::Assign(a), ToWorker::Assign(b)) => a == b,
            (ToWorker::Release(a), ToWorker::Release(b)) => a == b,
            (
                ToWorker::Replicate { job, task, from },
                ToWorker::Replicate {
                    job: j,
                    task: t,
                    from: f,
                },
            ) => job == j && task == t && from == f,
            (ToWorker::Forget(a), ToWorker::Forget(b)) => a == b,
            (ToWorker::Goodbye, ToWorker::Goodbye) => true,
            _ => false,
        }
    }
}

/// One output chunk that is ready to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputChunk {
    /// Position of the output in the graph's outputs.
    pub output: usize,
    /// The chunk's block index in the output's chunk grid.
    pub block: Vec<u32>,
    pub task: u32,
    /// A worker that holds it.
    pub worker: WorkerId,
}

/// Progress of one layer of a job: tasks done (each once) out of the layer's total, and the bytes
/// of their chunks (the wire's `LayerProgress`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCount {
    /// The layer's id as task keys display it (`mean-3f9c…`).
    pub layer: String,
    pub done: u64,
    pub total: u64,
    pub bytes: u64,
}

/// A message to a job's client (the wire's `ClientEvent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToClient {
    /// The job was accepted; it has this many tasks.
    Accepted { tasks: usize },
    /// Output chunks ready to fetch, at most one message per job per event. A chunk the client has
    /// not fetched is announced again, naming another worker, when the worker named before leaves
    /// (retires, or is lost and the chunk is recomputed) — even after `Completed`.
    OutputsReady(Vec<OutputChunk>),
    /// Per-layer counts of the job's layers that have tasks, inputs first: sent by
    /// [`on_progress_due`] when they moved since the last report, and once more before `Completed`.
    Progress(Vec<LayerCount>),
    /// Every task is done; comes after every output was announced once.
    Completed { tasks_run: u64 },
    /// A task failed deterministically; the job is dropped.
    Failed {
        key: String,
        worker: Option<WorkerId>,
        message: String,
    },
}
