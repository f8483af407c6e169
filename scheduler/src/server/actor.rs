//! The one task that owns the scheduler's state. gRPC handlers send it [`Event`]s; it applies each to
//! the core with the current time and translates what the core puts in its outbox into protobuf
//! messages on the workers' and clients' streams. Being the only owner, it needs no locks, and events
//! are applied in the order they arrive.
//!
//! The actor also keeps the identities the core does not need: each worker's session token (only the
//! process that registered a worker id may open its session) and each job's key (the capability to
//! fetch its chunks from workers). Job ids and keys are random, so nobody can walk other clients' jobs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera::graph::expand::TaskGraph;
use tessera::ops::Op;
use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::auth::{constant_time_eq, random_token};
use tessera_proto::v1 as pb;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tracing::{debug, info, warn};

use crate::config::SchedulerConfig;
use crate::core::{
    self, JobId, Outbox, State, TaskFailure, TaskReport, ToClient, ToWorker, WorkerId,
};
use crate::dashboard::record::{Recorder, WINDOW};
use crate::dashboard::snapshot::{JobState, Snapshot};

/// A job's newest progress report that its client's stream has not taken yet. Progress goes to the
/// client's queue as a placeholder, at most one at a time, and the stream puts the newest report in
/// its place when it sends it: a client reading slower than the reports come (a job of 100,000
/// layers makes a report of several megabytes every progress interval) makes the scheduler skip
/// reports instead of queueing them all (which peaked at gigabytes).
pub type LatestProgress = Arc<Mutex<Option<pb::JobProgress>>>;

/// A stream of messages to a worker's session or a client's job.
pub type WorkerSender = mpsc::UnboundedSender<Result<pb::SchedulerMessage, Status>>;
pub type ClientSender = mpsc::UnboundedSender<Result<pb::ClientEvent, Status>>;

/// Something that happened, for the actor to apply.
#[derive(Debug)]
pub enum Event {
    Register {
        address: String,
        threads: u32,
        memory_limit: u64,
        reply: oneshot::Sender<Result<(WorkerId, Token), Status>>,
    },
    SessionOpened {
        worker: WorkerId,
        token: Vec<u8>,
        sender: WorkerSender,
        /// Why the session was refused, if it was.
        reply: oneshot::Sender<Result<(), Status>>,
    },
    FromWorker {
        worker: WorkerId,
        msg: pb::worker_message::Msg,
    },
    SessionClosed {
        worker: WorkerId,
    },
    Submit {
        graph: Arc<TaskGraph>,
        wire: Arc<pb::Graph>,
        sender: ClientSender,
        progress: LatestProgress,
        reply: oneshot::Sender<Result<JobId, Status>>,
    },
    Fetched {
        job: JobId,
        tasks: Vec<u32>,
    },
    ClientClosed {
        job: JobId,
    },
    Status {
        reply: oneshot::Sender<pb::StatusReply>,
    },
    /// The dashboard's view; `since`: only task-stream records after this one (see
    /// [`Recorder::snapshot`]).
    Dashboard {
        since: u64,
        reply: oneshot::Sender<Snapshot>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// 128 random bits: a worker's session token or a job's key.
pub type Token = [u8; 16];

/// A handle to send events to the actor.
#[derive(Clone, Debug)]
pub struct ActorHandle {
    tx: mpsc::UnboundedSender<Event>,
    largest_memory_limit: Arc<AtomicU64>,
}

impl ActorHandle {
    /// The largest `--memory-limit` among the registered workers (0 when there are none): no chunk
    /// larger than this can be held anywhere.
    pub fn largest_memory_limit(&self) -> u64 {
        self.largest_memory_limit.load(Ordering::Relaxed)
    }

    /// Sends an event; false if the actor has stopped.
    pub fn send(&self, event: Event) -> bool {
        self.tx.send(event).is_ok()
    }

    /// The dashboard's view now (`None` once the actor has stopped).
    pub async fn dashboard(&self, since: u64) -> Option<Snapshot> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Event::Dashboard { since, reply }) {
            return None;
        }
        rx.await.ok()
    }

    /// Says goodbye to every worker and waits until the messages are queued.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.send(Event::Shutdown { reply }) {
            let _ = done.await;
        }
    }
}

struct WorkerEntry {
    address: String,
    threads: u32,
    memory_limit: u64,
    session_token: Token,
    sender: Option<WorkerSender>,
}

struct JobEntry {
    graph: Arc<TaskGraph>,
    /// Tasks plus layers: whether the heap is worth trimming when it ends.
    size: usize,
    wire: Arc<pb::Graph>,
    client: ClientSender,
    /// The report the client's stream sends next in place of its queued placeholder.
    progress: LatestProgress,
    key: Token,
}

/// Translates the core's messages into protobuf and queues them on the right stream.
struct Shell<'a> {
    workers: &'a HashMap<WorkerId, WorkerEntry>,
    jobs: &'a mut HashMap<JobId, JobEntry>,
}

impl Shell<'_> {
    fn address(&self, w: WorkerId) -> String {
        self.workers
            .get(&w)
            .map(|e| e.address.clone())
            .unwrap_or_default()
    }
}

impl Outbox for Shell<'_> {
    fn to_worker(&mut self, worker: WorkerId, msg: ToWorker) {
        use pb::scheduler_message::Msg;
        let Some(sender) = self.workers.get(&worker).and_then(|e| e.sender.as_ref()) else {
            return;
        };
        let msg = match msg {
            ToWorker::Graph { job, .. } => match self.jobs.get(&job) {
                Some(j) => Msg::Graph(pb::JobGraph {
                    job: job.0,
                    graph: Some((*j.wire).clone()),
                    job_key: j.key.to_vec(),
                }),
                None => return,
            },
            ToWorker::Assign(assignments) => Msg::Assign(pb::Assign {
                tasks: assignments
                    .into_iter()
                    .filter_map(|a| {
                        let job = self.jobs.get(&a.job)?;
                        let task = job.graph.tasks.get(a.task as usize)?;
                        Some(pb::TaskAssignment {
                            job: a.job.0,
                            task: a.task,
                            layer: task.layer,
                            block: task.block.to_vec(),
                            // The core lists each input once; the kernel wants them in the op's
                            // order, a chunk read twice given twice.
                            deps: task
                                .deps
                                .iter()
                                .filter_map(|t| {
                                    let (_, holders) = a.deps.iter().find(|(d, _)| d == t)?;
                                    Some(pb::DepLocation {
                                        task: *t,
                                        addresses: holders
                                            .iter()
                                            .map(|&h| self.address(h))
                                            .collect(),
                                    })
                                })
                                .collect(),
                            priority: a.priority,
                            persisted: a.reads.map(|((job, task), holders)| pb::PersistedInput {
                                job: job.0,
                                task,
                                addresses: holders.iter().map(|&h| self.address(h)).collect(),
                            }),
                        })
                    })
                    .collect(),
            }),
            ToWorker::Release(chunks) => Msg::Release(pb::Release {
                chunks: chunks
                    .into_iter()
                    .map(|(job, task)| pb::ChunkRef {
                        job: job.0,
                        task,
                        job_key: Vec::new(),
                    })
                    .collect(),
            }),
            ToWorker::Replicate { job, task, from } => Msg::Replicate(pb::Replicate {
                chunk: Some(pb::ChunkRef {
                    job: job.0,
                    task,
                    job_key: Vec::new(),
                }),
                from_address: self.address(from),
                job_key: self
                    .jobs
                    .get(&job)
                    .map(|j| j.key.to_vec())
                    .unwrap_or_default(),
            }),
            ToWorker::Forget(job) => Msg::Forget(pb::ForgetJob { job: job.0 }),
            ToWorker::Goodbye => Msg::Goodbye(pb::Goodbye {}),
        };
        let _ = sender.send(Ok(pb::SchedulerMessage { msg: Some(msg) }));
    }

    fn to_client(&mut self, job: JobId, msg: ToClient) {
        use pb::client_event::Event as Ev;
        let ends = matches!(msg, ToClient::Failed { .. });
        let event = match msg {
            ToClient::Accepted { tasks } => Ev::Accepted(pb::Accepted {
                job: job.0,
                tasks: tasks as u32,
                job_key: self
                    .jobs
                    .get(&job)
                    .map(|j| j.key.to_vec())
                    .unwrap_or_default(),
            }),
            ToClient::OutputsReady(chunks) => Ev::OutputsReady(pb::OutputsReady {
                chunks: chunks
                    .into_iter()
                    .map(|c| pb::OutputChunk {
                        output: c.output as u32,
                        block: c.block,
                        task: c.task,
                        address: self.address(c.worker),
                    })
                    .collect(),
            }),
            ToClient::Progress(layers) => {
                let Some(j) = self.jobs.get(&job) else {
                    return;
                };
                let report = pb::JobProgress {
                    layers: layers
                        .into_iter()
                        .map(|l| pb::LayerProgress {
                            layer: l.layer,
                            done: l.done,
                            total: l.total,
                            bytes: l.bytes,
                        })
                        .collect(),
                };
                let queued = j
                    .progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(report)
                    .is_some();
                if !queued {
                    let _ = j.client.send(Ok(pb::ClientEvent {
                        event: Some(Ev::Progress(pb::JobProgress::default())),
                    }));
                }
                return;
            }
            ToClient::Completed { tasks_run } => Ev::Completed(pb::Completed { tasks_run }),
            ToClient::Failed {
                key,
                worker,
                message,
            } => Ev::Failed(pb::JobFailed {
                key,
                worker: worker.map(|w| self.address(w)).unwrap_or_default(),
                message,
            }),
        };
        if let Some(j) = self.jobs.get(&job) {
            let _ = j.client.send(Ok(pb::ClientEvent { event: Some(event) }));
        }
        if ends {
            // The core dropped the job; dropping the sender ends the client's stream.
            if let Some(entry) = self.jobs.remove(&job) {
                let size = entry.size;
                drop(entry);
                trim_after(size, self.jobs.is_empty());
            }
        }
    }
}

struct Actor {
    core: State,
    workers: HashMap<WorkerId, WorkerEntry>,
    jobs: HashMap<JobId, JobEntry>,
    next_worker: u32,
    largest_memory_limit: Arc<AtomicU64>,
    /// The dashboard's history (task stream, counters), fed from the events applied here.
    recorder: Recorder,
    /// When a job last ran (at a tick or a submission); `None` once the heap was trimmed after
    /// the dashboard's window had passed since, so that what the history held of the last jobs
    /// (the task stream's records) goes back too.
    last_busy: Option<Instant>,
}

/// Starts the actor on the current tokio runtime.
pub fn spawn(config: SchedulerConfig) -> ActorHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let largest_memory_limit = Arc::new(AtomicU64::new(0));
    let actor = Actor {
        core: State::new(config.core()),
        workers: HashMap::new(),
        jobs: HashMap::new(),
        next_worker: 1,
        largest_memory_limit: largest_memory_limit.clone(),
        recorder: Recorder::new(Instant::now(), config.dashboard.task_stream_len),
        last_busy: None,
    };
    tokio::spawn(actor.run(rx, config));
    ActorHandle {
        tx,
        largest_memory_limit,
    }
}

fn no_randomness(e: tessera_proto::auth::AuthError) -> Status {
    Status::unavailable(format!("the scheduler cannot make a token: {e}"))
}

/// Jobs of at least this many tasks plus layers trim the heap when they end even while other jobs
/// run (a kept, persisted array would otherwise hold every large job's freed memory resident).
const TRIM_SIZE: usize = 1 << 16;

/// Trims the heap after a job of `size` tasks plus layers ended (and was dropped): when it was the
/// last job, or a large one.
fn trim_after(size: usize, last: bool) {
    if last || size >= TRIM_SIZE {
        trim_heap();
    }
}

/// Makes every thread of the process allocate from one glibc heap arena (unless the operator set
/// `MALLOC_ARENA_MAX`); the scheduler calls it first thing in `main`. The scheduler's state has one
/// owner, the actor, so more arenas buy no parallelism; but each thread that once allocated (the
/// gRPC and blocking-pool threads) would keep an arena of its own, and the free pages of a large
/// job's bookkeeping scattered over several arenas stayed resident after `malloc_trim`: measured
/// with `scheduler/examples/memory_client.rs`, a 1.1-million-task job left the scheduler 96% above
/// its idle size with the default arenas and 35% above with one. Returns whether it was set.
pub fn single_heap_arena() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's tuning; called before other threads start.
        return unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) } == 1;
    }
    false
}

/// Returns memory freed by a finished job to the operating system. glibc keeps freed heap pages
/// for reuse, so without this a large job's bookkeeping stays resident after it ends.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only releases free memory back to the kernel; it is thread-safe and
        // touches no memory in use.
        unsafe { libc::malloc_trim(0) };
        // What is left, for whoever measures the scheduler's memory (RUST_LOG=debug): bytes in
        // use on the heap, free but kept inside it, and in mmapped blocks.
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let info = unsafe { libc::mallinfo2() };
        debug!(
            in_use = info.uordblks,
            free = info.fordblks,
            mmapped = info.hblkhd,
            heap = info.arena,
            "heap trimmed"
        );
    });
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>, config: SchedulerConfig) {
        let mut tick = tokio::time::interval(config.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Progress reports are coalesced to one per job per interval, whatever the task rate.
        let mut progress = tokio::time::interval(config.progress_interval);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(e) => self.apply(e),
                    None => return,
                },
                _ = progress.tick(), if !self.jobs.is_empty() => {
                    let mut shell = Shell { workers: &self.workers, jobs: &mut self.jobs };
                    core::on_progress_due(&mut self.core, &mut shell, Instant::now());
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let mut shell = Shell { workers: &self.workers, jobs: &mut self.jobs };
                    let lost = core::on_tick(&mut self.core, &mut shell, now);
                    for w in lost {
                        warn!(worker = %w, "no heartbeat: worker lost, rescheduling its work");
                        self.workers.remove(&w);
                        self.recorder.worker_gone(w);
                    }
                    self.workers_changed();
                    if !self.jobs.is_empty() {
                        self.last_busy = Some(now);
                    } else if self
                        .last_busy
                        .is_some_and(|t| now >= t + WINDOW + Duration::from_secs(1))
                    {
                        self.last_busy = None;
                        // The task stream's records of the last jobs are past the window now
                        // (nobody may have asked for a snapshot since): dropped before the trim.
                        self.recorder.trim(now);
                        trim_heap();
                    }
                }
            }
        }
    }

    /// Keeps the largest worker memory limit current for the service's submit checks.
    fn workers_changed(&self) {
        let largest = self.workers.values().map(|w| w.memory_limit).max();
        self.largest_memory_limit
            .store(largest.unwrap_or(0), Ordering::Relaxed);
    }

    /// A random job id that is not in use (never 0, which means "none" on the wire).
    fn new_job_id(&self) -> Result<JobId, Status> {
        loop {
            let t = random_token().map_err(no_randomness)?;
            let id = u64::from_le_bytes(t[..8].try_into().expect("8 bytes"));
            if id != 0 && !self.jobs.contains_key(&JobId(id)) && !self.core.has_job(JobId(id)) {
                return Ok(JobId(id));
            }
        }
    }

    /// The kept chunk each task of a `Persisted` layer copies: block `b` of the layer is output
    /// chunk `b` of the kept job. Refused, with the same words whether the job does not exist or the
    /// key is wrong (so nobody learns which jobs exist), when the kept job is not alive or its key
    /// does not match; and when the layer's grid or dtype is not the kept output's.
    fn kept_reads(&self, graph: &TaskGraph) -> Result<Vec<(u32, core::ChunkRef)>, Status> {
        let layers = graph.graph.layers();
        // Per layer: the kept job's output tasks, once checked.
        let mut checked: HashMap<u32, (JobId, &[u32], Vec<usize>)> = HashMap::new();
        let mut reads = Vec::new();
        for (t, task) in graph.tasks.iter().enumerate() {
            let layer = &layers[task.layer as usize];
            let Op::Persisted(p) = &layer.op else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = checked.entry(task.layer) {
                let entry = self
                    .jobs
                    .get(&JobId(p.job))
                    .filter(|e| constant_time_eq(&e.key, &p.key))
                    .ok_or_else(|| {
                        Status::permission_denied(format!(
                            "layer {}: persisted job {:016x} is not kept for this client: it was released (unpersisted, dropped, or its client disconnected), or it belongs to another client",
                            layer.id, p.job
                        ))
                    })?;
                let kept = &entry.graph;
                let out = match (kept.outputs.as_slice(), kept.graph.outputs()) {
                    ([tasks], [id]) => kept.graph.get(*id).map(|l| (tasks, l)),
                    _ => None,
                };
                let Some((tasks, _)) = out.filter(|(_, l)| l.meta == layer.meta) else {
                    return Err(Status::invalid_argument(format!(
                        "layer {}: its grid and dtype are not those of persisted job {:016x}'s output",
                        layer.id, p.job
                    )));
                };
                slot.insert((
                    JobId(p.job),
                    tasks.as_slice(),
                    layer.meta.chunks.numblocks(),
                ));
            }
            let (kept, tasks, numblocks) = &checked[&task.layer];
            let flat = task
                .block
                .iter()
                .zip(numblocks)
                .fold(0usize, |acc, (&b, &n)| acc * n + b as usize);
            let Some(&source) = tasks.get(flat) else {
                return Err(Status::invalid_argument(format!(
                    "layer {}: block {:?} is not in persisted job {:016x}'s output",
                    layer.id, task.block, p.job
                )));
            };
            reads.push((t as u32, (*kept, source)));
        }
        Ok(reads)
    }

    fn job_ended(&mut self, job: JobId) {
        if let Some(entry) = self.jobs.remove(&job) {
            let size = entry.size;
            // The core dropped its copy of the graph already: this frees the job's last memory.
            drop(entry);
            trim_after(size, self.jobs.is_empty());
        }
    }

    /// Feeds the dashboard's recorder with an event, before the core applies it (a closing client's
    /// job is still in the core, so its final progress can be read).
    fn observe(&mut self, event: &Event, now: Instant) {
        match event {
            Event::FromWorker {
                worker,
                msg: pb::worker_message::Msg::Results(r),
            } => {
                for d in &r.done {
                    let layer = self
                        .jobs
                        .get(&JobId(d.job))
                        .and_then(|j| j.graph.tasks.get(d.task as usize))
                        .map_or(0, |t| t.layer);
                    self.recorder.task_done(
                        now,
                        *worker,
                        d.thread,
                        JobId(d.job),
                        layer,
                        d.run_nanos,
                        d.fetched_bytes,
                    );
                }
                for f in &r.failed {
                    // A missing input is rescheduled, not a failure of the task itself.
                    if f.missing_input.is_none() {
                        self.recorder.task_failed();
                    }
                }
            }
            Event::FromWorker {
                worker,
                msg: pb::worker_message::Msg::Heartbeat(h),
            } => self.recorder.heartbeat(now, *worker, h.cpu_nanos),
            Event::SessionClosed { worker } => self.recorder.worker_gone(*worker),
            Event::ClientClosed { job } => {
                let progress = self.core.job_layer_progress(*job);
                let state = match self.core.job_status(*job) {
                    Some(s) if s.completed => JobState::Completed,
                    Some(_) => JobState::Cancelled,
                    // Dropped by the core already: a task failed.
                    None => JobState::Failed,
                };
                self.recorder.job_ended(*job, state, progress);
            }
            _ => {}
        }
    }

    fn apply(&mut self, event: Event) {
        let now = Instant::now();
        self.observe(&event, now);
        let mut shell = Shell {
            workers: &self.workers,
            jobs: &mut self.jobs,
        };
        match event {
            Event::Register {
                address,
                threads,
                memory_limit,
                reply,
            } => {
                let session_token = match random_token() {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = reply.send(Err(no_randomness(e)));
                        return;
                    }
                };
                let id = WorkerId(self.next_worker);
                self.next_worker += 1;
                info!(worker = %id, %address, threads, "worker registered");
                self.workers.insert(
                    id,
                    WorkerEntry {
                        address,
                        threads,
                        memory_limit,
                        session_token,
                        sender: None,
                    },
                );
                self.workers_changed();
                let _ = reply.send(Ok((id, session_token)));
            }
            Event::SessionOpened {
                worker,
                token,
                sender,
                reply,
            } => {
                let refused = match self.workers.get(&worker) {
                    None => Some(Status::not_found(format!(
                        "worker {worker} is not registered (register first)"
                    ))),
                    Some(e) if !constant_time_eq(&e.session_token, &token) => {
                        Some(Status::permission_denied(format!(
                            "wrong session token for worker {worker}: only the process that registered it can open its session"
                        )))
                    }
                    Some(e) if e.sender.is_some() => Some(Status::already_exists(format!(
                        "worker {worker} already has a session"
                    ))),
                    Some(_) => None,
                };
                if let Some(status) = refused {
                    warn!(worker = %worker, "refused a worker session: {}", status.message());
                    let _ = reply.send(Err(status));
                    return;
                }
                let entry = self.workers.get_mut(&worker).expect("checked above");
                entry.sender = Some(sender);
                let (threads, memory_limit) = (entry.threads, entry.memory_limit);
                let mut shell = Shell {
                    workers: &self.workers,
                    jobs: &mut self.jobs,
                };
                core::on_worker_joined(
                    &mut self.core,
                    &mut shell,
                    now,
                    worker,
                    threads,
                    memory_limit,
                );
                let _ = reply.send(Ok(()));
            }
            Event::FromWorker { worker, msg } => {
                use pb::worker_message::Msg;
                match msg {
                    Msg::Hello(_) => {}
                    Msg::Heartbeat(h) => core::on_heartbeat(
                        &mut self.core,
                        &mut shell,
                        now,
                        worker,
                        core::WorkerMemory {
                            bytes_held: h.bytes_held,
                            bytes_running: h.bytes_running,
                            bytes_spilled: h.bytes_spilled,
                            chunks_spilled: h.chunks_spilled,
                            spill_writes: h.spill_writes,
                            spill_reads: h.spill_reads,
                            spill_nanos: h.spill_nanos,
                            paused: h.paused,
                        },
                    ),
                    Msg::Results(r) => {
                        let reports: Vec<TaskReport> = r
                            .done
                            .iter()
                            .map(|d| TaskReport {
                                job: JobId(d.job),
                                task: d.task,
                                nbytes: d.nbytes,
                                run_time: Duration::from_nanos(d.run_nanos),
                            })
                            .collect();
                        if !reports.is_empty() {
                            core::on_tasks_done(&mut self.core, &mut shell, now, worker, &reports);
                        }
                        for f in r.failed {
                            let failure = TaskFailure {
                                message: f.message,
                                missing_input: f.missing_input.map(|c| (JobId(c.job), c.task)),
                            };
                            core::on_task_failed(
                                &mut self.core,
                                &mut shell,
                                now,
                                worker,
                                JobId(f.job),
                                f.task,
                                failure,
                            );
                        }
                    }
                    Msg::Retiring(_) => {
                        info!(worker = %worker, "worker retiring");
                        core::on_worker_retiring(&mut self.core, &mut shell, now, worker);
                    }
                }
            }
            Event::SessionClosed { worker } => {
                if self.core.has_worker(worker) {
                    warn!(worker = %worker, "worker session closed: rescheduling its work");
                    core::on_worker_lost(&mut self.core, &mut shell, now, worker);
                } else {
                    debug!(worker = %worker, "session of a departed worker closed");
                }
                self.workers.remove(&worker);
                self.workers_changed();
            }
            Event::Submit {
                graph,
                wire,
                sender,
                progress,
                reply,
            } => {
                self.last_busy = Some(Instant::now());
                let ids = self
                    .new_job_id()
                    .and_then(|job| Ok((job, random_token().map_err(no_randomness)?)));
                let (job, key) = match ids {
                    Ok(ids) => ids,
                    Err(status) => {
                        let _ = reply.send(Err(status));
                        return;
                    }
                };
                // Persisted arrays it reads: the kept jobs must be alive and the graph must carry
                // their keys (which only their submitter received).
                let reads = match self.kept_reads(&graph) {
                    Ok(r) => r,
                    Err(status) => {
                        warn!("refused a job: {}", status.message());
                        let _ = reply.send(Err(status));
                        return;
                    }
                };
                info!(job = %job, tasks = graph.tasks.len(), "job submitted");
                self.jobs.insert(
                    job,
                    JobEntry {
                        size: graph.tasks.len() + graph.graph.layers().len(),
                        graph: graph.clone(),
                        wire,
                        client: sender,
                        progress,
                        key,
                    },
                );
                let _ = reply.send(Ok(job));
                self.recorder.job_submitted(now, job, &graph);
                let mut shell = Shell {
                    workers: &self.workers,
                    jobs: &mut self.jobs,
                };
                if reads.is_empty() {
                    core::on_job_submitted(&mut self.core, &mut shell, now, job, graph);
                } else {
                    core::on_job_submitted_reading(
                        &mut self.core,
                        &mut shell,
                        now,
                        job,
                        graph,
                        reads,
                    );
                }
            }
            Event::Fetched { job, tasks } => {
                core::on_outputs_fetched(&mut self.core, &mut shell, now, job, &tasks);
            }
            Event::ClientClosed { job } => {
                if self.core.has_job(job) {
                    core::on_job_cancelled(&mut self.core, &mut shell, now, job);
                }
                self.job_ended(job);
            }
            Event::Status { reply } => {
                let workers = self
                    .core
                    .workers()
                    .into_iter()
                    .map(|w| pb::WorkerStatus {
                        id: w.id.0,
                        address: self
                            .workers
                            .get(&w.id)
                            .map(|e| e.address.clone())
                            .unwrap_or_default(),
                        threads: w.threads,
                        running: w.running,
                        chunks_held: w.chunks_held,
                        bytes_held: w.bytes_held,
                        reported_bytes: w.reported_bytes,
                        memory_limit: w.memory_limit,
                        bytes_running: w.memory.bytes_running,
                        bytes_spilled: w.memory.bytes_spilled,
                        chunks_spilled: w.memory.chunks_spilled,
                        spill_writes: w.memory.spill_writes,
                        spill_reads: w.memory.spill_reads,
                        spill_nanos: w.memory.spill_nanos,
                        paused: w.memory.paused,
                    })
                    .collect();
                let _ = reply.send(pb::StatusReply {
                    protocol_version: PROTOCOL_VERSION,
                    workers,
                    jobs: self.core.num_jobs() as u32,
                });
            }
            Event::Dashboard { since, reply } => {
                let workers = &self.workers;
                let address = |w: WorkerId| {
                    workers
                        .get(&w)
                        .map(|e| e.address.clone())
                        .unwrap_or_default()
                };
                let _ = reply.send(self.recorder.snapshot(now, &self.core, &address, since));
            }
            Event::Shutdown { reply } => {
                for entry in self.workers.values() {
                    if let Some(s) = &entry.sender {
                        let _ = s.send(Ok(pb::SchedulerMessage {
                            msg: Some(pb::scheduler_message::Msg::Goodbye(pb::Goodbye {})),
                        }));
                    }
                }
                let _ = reply.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(done: u64) -> ToClient {
        ToClient::Progress(vec![core::LayerCount {
            layer: "add-1".into(),
            done,
            total: 10,
            bytes: 8 * done,
        }])
    }

    #[test]
    fn a_client_that_has_not_read_its_progress_gets_only_the_newest_report() {
        let graph = tessera::ones::<f64>(&[4], [4]).unwrap().graph();
        let graph = Arc::new(TaskGraph::expand(graph).unwrap());
        let (client, mut events) = mpsc::unbounded_channel();
        let progress = LatestProgress::default();
        let job = JobId(5);
        let mut jobs = HashMap::new();
        jobs.insert(
            job,
            JobEntry {
                size: 2,
                graph,
                wire: Arc::new(pb::Graph::default()),
                client,
                progress: progress.clone(),
                key: [0; 16],
            },
        );
        let workers = HashMap::new();
        let mut shell = Shell {
            workers: &workers,
            jobs: &mut jobs,
        };
        for done in 1..=3 {
            shell.to_client(job, report(done));
        }
        shell.to_client(job, ToClient::Completed { tasks_run: 10 });
        // One placeholder, then `Completed`: three reports did not make three queued messages.
        let first = events.try_recv().unwrap().unwrap();
        assert!(matches!(
            first.event,
            Some(pb::client_event::Event::Progress(ref p)) if p.layers.is_empty()
        ));
        assert!(matches!(
            events.try_recv().unwrap().unwrap().event,
            Some(pb::client_event::Event::Completed(_))
        ));
        assert!(events.try_recv().is_err());
        // What the client's stream puts in the placeholder's place: the newest report.
        let newest = progress.lock().unwrap().take().unwrap();
        assert_eq!((newest.layers[0].done, newest.layers[0].bytes), (3, 24));
        // Taken: the next report queues a placeholder again.
        shell.to_client(job, report(4));
        assert!(events.try_recv().is_ok());
    }
}
