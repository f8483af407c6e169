//! The scheduler's state and the bookkeeping every event shares: task status transitions with their
//! pending/missing counters, holders, releases, requeues, the per-event message batch, and the
//! invariants (`sanity_check`, in tests).
//!
//! Per task a job keeps 12 bytes ([`TaskState`]: status, two flags, two counters) plus its lists of
//! inputs and consumers (4 bytes per task and per edge each, flat); the holders and size of a chunk
//! exist only while it is `Done` and the workers running a task only while it runs, in maps keyed by
//! task number, so a million-task job's bookkeeping is what is in flight, not a struct per task.
//!
//! Per job, per task, two counters are kept exact at all times:
//! - `missing`: inputs that are not `Done` (a `Waiting` task has `missing > 0`, a `Ready` one 0);
//! - `pending`: consumers that are active (`Waiting`, `Ready` or `Running`).
//!
//! Every status change goes through [`Job::set_status`], which updates the counters of the task's
//! inputs (`pending`) and consumers (`missing`) and marks the ones whose status may have to follow.
//! [`settle`] then brings those to their consistent status, highest task index first: consumers always
//! have higher indices than their inputs, so a chunk's `pending` count is final by the time it is
//! looked at, and no chunk is released only to be found needed a moment later in the same event.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;
use tessera::graph::expand::TaskGraph;

use super::outbox::Outbox;
use super::{
    Assignment, ChunkRef, Config, JobId, LayerCount, OutputChunk, ToClient, ToWorker, WorkerId,
};

/// Where a task stands. See the diagram in the [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Needed, but some input is not `Done`.
    Waiting,
    /// Needed, every input `Done`; in its job's ready heap.
    Ready,
    /// Assigned to at least one worker that has not reported it.
    Running,
    /// Computed and needed; at least one worker holds it.
    Done,
    /// Not needed (any more): nobody is asked to keep it.
    Released,
}

impl TaskStatus {
    /// Whether the task still has to run (and so keeps its inputs pending).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskStatus::Waiting | TaskStatus::Ready | TaskStatus::Running
        )
    }
}

/// A worker holding a chunk, since the event `since` (compared with an assignment's event to tell
/// whether a missing-input report is about this copy or an older one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub worker: WorkerId,
    pub since: u64,
}

/// What a job keeps for every task: 12 bytes. Everything that only some tasks have at a time (holders,
/// runners) is in the job's maps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskState {
    /// Inputs not `Done`.
    pub missing: u32,
    /// Consumers that are active.
    pub pending: u32,
    pub status: TaskStatus,
    /// An output the client has not fetched yet.
    pub wanted: bool,
    /// Counted in its layer's progress (it reached `Done` once; a recomputation is not counted again).
    pub counted: bool,
}

/// A `Done` chunk: where it is and how large.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chunk {
    /// Inline for the usual one holder: no allocation per chunk.
    pub holders: SmallVec<[Holder; 1]>,
    /// Size of the chunk as its first holder reported it.
    pub nbytes: u64,
}

/// Maps keyed by task number. SipHash with fixed keys: the same events give the same maps (the core
/// is deterministic), and task numbers are the scheduler's own, not chosen by a client.
type TaskMap<V> = HashMap<u32, V, BuildHasherDefault<DefaultHasher>>;

impl TaskState {
    pub fn needed(&self) -> bool {
        self.wanted || self.pending > 0
    }
}

/// A list per task, stored flat (compressed sparse rows).
#[derive(Debug, Default)]
pub(crate) struct Csr<T> {
    start: Vec<u32>,
    items: Vec<T>,
}

impl<T: Copy + Default> Csr<T> {
    /// Built in two passes over `push` (count, then fill), straight into the final arrays: no list
    /// of pairs in between, which for a million tasks would be as large as the result.
    fn from_lists(n: usize, mut push: impl FnMut(&mut dyn FnMut(usize, T))) -> Self {
        let mut counts = vec![0u32; n + 1];
        push(&mut |i, _| counts[i + 1] += 1);
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let mut items = vec![T::default(); counts[n] as usize];
        // `counts[i]` moves from the start of row i to its end while filling; shifted back below.
        push(&mut |i, v| {
            items[counts[i] as usize] = v;
            counts[i] += 1;
        });
        counts.copy_within(0..n, 1);
        counts[0] = 0;
        Csr {
            start: counts,
            items,
        }
    }

    pub fn get(&self, i: u32) -> &[T] {
        &self.items[self.start[i as usize] as usize..self.start[i as usize + 1] as usize]
    }
}

/// One submitted job.
pub(crate) struct Job {
    pub id: JobId,
    pub graph: Arc<TaskGraph>,
    pub tasks: Vec<TaskState>,
    /// The `Done` chunks: an entry exists iff the task is `Done`.
    chunks: TaskMap<Chunk>,
    /// Workers running each task in flight (usually one).
    runners: TaskMap<SmallVec<[WorkerId; 2]>>,
    /// Distinct inputs of each task, in the order it reads them.
    deps: Csr<u32>,
    /// Consumers of each task (computed once at submission).
    consumers: Csr<u32>,
    /// (output, position in the output's task list) of each task that is an output.
    outputs_of: Csr<(u32, u32)>,
    /// `Ready` tasks, lowest index first. Entries whose task is no longer `Ready` are skipped on pop.
    pub ready: BinaryHeap<Reverse<u32>>,
    /// The `Ready` tasks that read inputs (and so let chunks go once they run), lowest index first:
    /// where memory is short these go before sources. Stale entries are skipped the same way.
    pub ready_consumers: BinaryHeap<Reverse<u32>>,
    /// Whether the job is in the state's round-robin ring.
    pub in_ring: bool,
    /// Active tasks.
    pub unfinished: usize,
    /// Successful reports of assigned tasks (reruns included).
    pub tasks_run: u64,
    /// `Completed` was sent.
    pub completed: bool,
    /// Tasks whose status may have to follow a counter change; highest index first.
    dirty: BinaryHeap<u32>,
    /// Per layer of the graph: (tasks counted done, tasks, bytes of the counted chunks).
    layer_counts: Vec<(u64, u64, u64)>,
    /// Tasks that copy a kept chunk of another job (a persisted array's), with that chunk.
    pub reads: BTreeMap<u32, ChunkRef>,
    /// `Ready` reading tasks taken out of the ready heap because their kept chunk is not there yet
    /// (being recomputed); put back at the next scheduling pass, so they do not hold up the tasks
    /// behind them.
    pub parked: Vec<u32>,
    /// The counts moved since the last progress report.
    progress_changed: bool,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("tasks", &self.tasks.len())
            .field("unfinished", &self.unfinished)
            .field("completed", &self.completed)
            .finish()
    }
}

impl Job {
    /// A job with every task active: `Ready` if it has no inputs, else `Waiting`.
    pub fn new(id: JobId, graph: Arc<TaskGraph>) -> Job {
        let n = graph.tasks.len();
        // Distinct inputs: a task may read the same chunk twice (say `x @ x`). `seen[d]` is the last
        // task that listed `d`, reset for each of the two passes.
        let mut seen = vec![u32::MAX; n];
        let deps = Csr::from_lists(n, |push| {
            seen.fill(u32::MAX);
            for (t, task) in graph.tasks.iter().enumerate() {
                for &d in &task.deps {
                    if seen[d as usize] != t as u32 {
                        seen[d as usize] = t as u32;
                        push(t, d);
                    }
                }
            }
        });
        drop(seen);
        let consumers = Csr::from_lists(n, |push| {
            for t in 0..n as u32 {
                for &d in deps.get(t) {
                    push(d as usize, t);
                }
            }
        });
        let outputs_of = Csr::from_lists(n, |push| {
            for (o, ids) in graph.outputs.iter().enumerate() {
                for (p, &t) in ids.iter().enumerate() {
                    push(t as usize, (o as u32, p as u32));
                }
            }
        });
        let mut tasks = Vec::with_capacity(n);
        let mut ready = BinaryHeap::new();
        for t in 0..n as u32 {
            let missing = deps.get(t).len() as u32;
            let status = if missing == 0 {
                ready.push(Reverse(t));
                TaskStatus::Ready
            } else {
                TaskStatus::Waiting
            };
            tasks.push(TaskState {
                status,
                missing,
                pending: consumers.get(t).len() as u32,
                wanted: !outputs_of.get(t).is_empty(),
                counted: false,
            });
        }
        let mut layer_counts = vec![(0, 0, 0); graph.graph.layers().len()];
        for task in &graph.tasks {
            if let Some(c) = layer_counts.get_mut(task.layer as usize) {
                c.1 += 1;
            }
        }
        let mut job = Job {
            id,
            graph,
            tasks,
            chunks: TaskMap::default(),
            runners: TaskMap::default(),
            deps,
            consumers,
            outputs_of,
            ready,
            ready_consumers: BinaryHeap::new(),
            in_ring: false,
            unfinished: n,
            tasks_run: 0,
            completed: false,
            dirty: BinaryHeap::new(),
            layer_counts,
            progress_changed: false,
            reads: BTreeMap::new(),
            parked: Vec::new(),
        };
        // An expanded graph is culled, so every task is needed; should one not be, settling
        // releases it (and whatever only it read) before anything runs.
        for t in 0..n as u32 {
            if !job.tasks[t as usize].needed() {
                job.dirty.push(t);
            }
        }
        job
    }

    /// Counts task `t` done in its layer's progress, once.
    fn count_done(&mut self, t: u32, nbytes: u64) {
        let ts = &mut self.tasks[t as usize];
        if ts.counted {
            return;
        }
        ts.counted = true;
        let layer = self.graph.tasks[t as usize].layer as usize;
        if let Some(c) = self.layer_counts.get_mut(layer) {
            c.0 += 1;
            c.2 += nbytes;
            self.progress_changed = true;
        }
    }

    /// The per-layer counts (layers with tasks only) if they moved since the last call.
    pub fn take_progress(&mut self) -> Option<Vec<LayerCount>> {
        if !std::mem::take(&mut self.progress_changed) {
            return None;
        }
        let layers = self.graph.graph.layers();
        Some(
            self.layer_counts
                .iter()
                .zip(layers)
                .filter(|((_, total, _), _)| *total > 0)
                .map(|(&(done, total, bytes), l)| LayerCount {
                    layer: l.id.to_string(),
                    done,
                    total,
                    bytes,
                })
                .collect(),
        )
    }

    pub fn deps(&self, t: u32) -> &[u32] {
        self.deps.get(t)
    }

    #[cfg(test)]
    pub fn consumers(&self, t: u32) -> &[u32] {
        self.consumers.get(t)
    }

    pub fn outputs_of(&self, t: u32) -> &[(u32, u32)] {
        self.outputs_of.get(t)
    }

    pub fn task(&self, t: u32) -> &TaskState {
        &self.tasks[t as usize]
    }

    /// The workers holding chunk `t` (none unless it is `Done`).
    pub fn holders(&self, t: u32) -> &[Holder] {
        self.chunks.get(&t).map_or(&[], |c| &c.holders)
    }

    /// The size of chunk `t` as reported (0 unless it is `Done`).
    pub fn nbytes(&self, t: u32) -> u64 {
        self.chunks.get(&t).map_or(0, |c| c.nbytes)
    }

    /// The workers running task `t`.
    pub fn running_on(&self, t: u32) -> &[WorkerId] {
        self.runners.get(&t).map_or(&[], |r| r)
    }

    /// Records that `w` runs task `t`.
    pub fn add_runner(&mut self, t: u32, w: WorkerId) {
        self.runners.entry(t).or_default().push(w);
    }

    /// Records that `w` no longer runs task `t`.
    pub fn remove_runner(&mut self, t: u32, w: WorkerId) {
        if let Some(r) = self.runners.get_mut(&t) {
            r.retain(|x| *x != w);
            if r.is_empty() {
                self.runners.remove(&t);
            }
        }
    }

    /// How many tasks have a chunk entry and how many have runners: both 0 once nothing is held or
    /// in flight (the memory test's check that a job keeps no per-task state beyond its arrays).
    pub fn sparse_counts(&self) -> (usize, usize) {
        (self.chunks.len(), self.runners.len())
    }

    /// Changes a task's status, keeping `pending` of its inputs, `missing` of its consumers, the ready
    /// heap and `unfinished` right, and marking the neighbours whose status may have to follow.
    pub fn set_status(&mut self, t: u32, new: TaskStatus) {
        let old = self.tasks[t as usize].status;
        if old == new {
            return;
        }
        self.tasks[t as usize].status = new;
        if old.is_active() != new.is_active() {
            if new.is_active() {
                self.unfinished += 1;
                for &d in self.deps.get(t) {
                    let dt = &mut self.tasks[d as usize];
                    dt.pending += 1;
                    if dt.status == TaskStatus::Released {
                        self.dirty.push(d);
                    }
                }
            } else {
                self.unfinished -= 1;
                for &d in self.deps.get(t) {
                    let dt = &mut self.tasks[d as usize];
                    dt.pending -= 1;
                    if !dt.needed() {
                        self.dirty.push(d);
                    }
                }
            }
        }
        if (old == TaskStatus::Done) != (new == TaskStatus::Done) {
            let done = new == TaskStatus::Done;
            for &c in self.consumers.get(t) {
                let ct = &mut self.tasks[c as usize];
                if done {
                    ct.missing -= 1;
                    if ct.missing == 0 && ct.status == TaskStatus::Waiting {
                        self.dirty.push(c);
                    }
                } else {
                    ct.missing += 1;
                    if ct.status == TaskStatus::Ready {
                        self.dirty.push(c);
                    }
                }
            }
        }
        match new {
            TaskStatus::Ready => {
                self.ready.push(Reverse(t));
                if !self.deps.get(t).is_empty() {
                    self.ready_consumers.push(Reverse(t));
                }
            }
            TaskStatus::Done => self.dirty.push(t),
            _ => {}
        }
    }

    /// Marks a task whose status may have to follow a change the caller made.
    pub fn mark_dirty(&mut self, t: u32) {
        self.dirty.push(t);
    }

    /// The status a task that is neither done nor to be kept running should have now.
    fn idle_status(&self, t: u32) -> TaskStatus {
        let ts = &self.tasks[t as usize];
        if !ts.needed() {
            TaskStatus::Released
        } else if self.runners.contains_key(&t) {
            TaskStatus::Running
        } else if ts.missing == 0 {
            TaskStatus::Ready
        } else {
            TaskStatus::Waiting
        }
    }

    /// The first `Ready` task that reads inputs, dropping stale heap entries.
    pub fn peek_ready_consumer(&mut self) -> Option<u32> {
        while let Some(&Reverse(t)) = self.ready_consumers.peek() {
            if self.tasks[t as usize].status == TaskStatus::Ready {
                return Some(t);
            }
            self.ready_consumers.pop();
        }
        None
    }

    /// The first `Ready` task, dropping stale heap entries.
    pub fn peek_ready(&mut self) -> Option<u32> {
        while let Some(&Reverse(t)) = self.ready.peek() {
            if self.tasks[t as usize].status == TaskStatus::Ready {
                return Some(t);
            }
            self.ready.pop();
        }
        None
    }
}

/// What a worker has of one job.
#[derive(Debug, Default)]
pub(crate) struct WorkerJob {
    /// The job's graph was sent to it.
    pub graph_sent: bool,
    /// In-flight tasks, with the event they were assigned in and the bytes booked for them (their
    /// peak from the plan-time estimate).
    pub running: BTreeMap<u32, (u64, u64)>,
    /// Chunks it holds.
    pub held: BTreeSet<u32>,
    /// Chunks it was asked to replicate: (from, event of the request).
    pub replicating: BTreeMap<u32, (WorkerId, u64)>,
}

/// A retiring worker's chunks that must be copied elsewhere before it may leave: the needed chunks it
/// is the only holder of, each with the worker asked to copy it (`None` until asked).
#[derive(Debug, Default)]
pub(crate) struct Evacuation {
    pub copies: BTreeMap<ChunkRef, Option<WorkerId>>,
    /// Entries of `copies` with no target yet.
    pub unsent: usize,
}

impl Evacuation {
    pub fn add(&mut self, chunk: ChunkRef) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.copies.entry(chunk) {
            e.insert(None);
            self.unsent += 1;
        }
    }

    pub fn remove(&mut self, chunk: ChunkRef) {
        if let Some(None) = self.copies.remove(&chunk) {
            self.unsent -= 1;
        }
    }

    /// The copy to `target` did not happen: ask again.
    pub fn retarget(&mut self, chunk: ChunkRef, target: WorkerId) {
        if let Some(t) = self.copies.get_mut(&chunk)
            && *t == Some(target)
        {
            *t = None;
            self.unsent += 1;
        }
    }
}

#[derive(Debug)]
pub(crate) struct Worker {
    pub id: WorkerId,
    pub threads: u32,
    pub memory_limit: u64,
    pub last_seen: Instant,
    /// Bytes the worker said it holds in its last heartbeat.
    pub reported_bytes: u64,
    pub in_flight: u32,
    /// Bytes booked for its in-flight tasks (the sum over `WorkerJob::running`).
    pub queued_bytes: u64,
    /// Its memory as its last heartbeat told it.
    pub memory: WorkerMemory,
    pub held_chunks: u64,
    /// Bytes of the chunks it holds, from the task-done reports.
    pub held_bytes: u64,
    /// Replications asked of it and not reported yet.
    pub replicating: u32,
    /// Moving average of its tasks' kernel run times, in nanoseconds (None until one is reported).
    pub mean_run_nanos: Option<u64>,
    pub jobs: BTreeMap<JobId, WorkerJob>,
    pub retiring: Option<Evacuation>,
    /// Taking tasks in this scheduling pass: its queue had drained to half (see [`Worker::hungry`]).
    pub refilling: bool,
}

impl Worker {
    pub fn new(id: WorkerId, threads: u32, memory_limit: u64, now: Instant) -> Worker {
        Worker {
            id,
            threads: threads.max(1),
            memory_limit,
            last_seen: now,
            reported_bytes: 0,
            in_flight: 0,
            queued_bytes: 0,
            memory: WorkerMemory::default(),
            held_chunks: 0,
            held_bytes: 0,
            replicating: 0,
            mean_run_nanos: None,
            jobs: BTreeMap::new(),
            retiring: None,
            refilling: false,
        }
    }

    /// Forgets that this worker holds chunk `t` of `job` (`nbytes` long).
    fn unbook_chunk(&mut self, job: JobId, t: u32, nbytes: u64) {
        if let Some(wj) = self.jobs.get_mut(&job) {
            wj.held.remove(&t);
        }
        self.held_chunks -= 1;
        self.held_bytes -= nbytes;
        if let Some(ev) = &mut self.retiring {
            ev.remove((job, t));
        }
    }

    /// Folds a task's run time into the moving average (weight 1/8: a few tasks of a new kind of
    /// work move it, one outlier does not).
    pub fn record_run_time(&mut self, run_time: Duration) {
        let nanos = u64::try_from(run_time.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.mean_run_nanos = Some(match self.mean_run_nanos {
            None => nanos,
            Some(mean) => mean - mean / 8 + nanos / 8,
        });
    }

    /// Slots for tasks in flight: none once retiring; otherwise per thread about
    /// `config.queue_time` worth of its recent tasks, between `slots_per_thread` and
    /// `max_slots_per_thread`.
    pub fn capacity(&self, config: &Config) -> u32 {
        if self.retiring.is_some() {
            return 0;
        }
        let low = config.slots_per_thread.max(1);
        let high = config.max_slots_per_thread.max(low);
        let per_thread = match self.mean_run_nanos {
            None => low,
            Some(mean) => {
                let queue = u64::try_from(config.queue_time.as_nanos()).unwrap_or(u64::MAX);
                u32::try_from(queue.div_ceil(mean.max(1)))
                    .unwrap_or(u32::MAX)
                    .clamp(low, high)
            }
        };
        self.threads.saturating_mul(per_thread)
    }

    /// Bytes of its chunks in memory by the scheduler's books: what it holds, less what its last
    /// heartbeat said it had spilled to disk.
    pub fn resident_bytes(&self) -> u64 {
        self.held_bytes.saturating_sub(self.memory.bytes_spilled)
    }

    /// Whether a task needing `need` bytes may be sent to it: the need fits under its limit less what
    /// it holds in memory and what its in-flight tasks are booked for. A worker with nothing in flight
    /// takes any task that fits its limit at all, since it spills what it holds to make room (and
    /// refuses the task, saying why, if it cannot); a paused worker takes nothing more while it has
    /// work. A limit of 0 is no limit.
    pub fn fits(&self, need: u64) -> bool {
        if self.in_flight == 0 {
            return self.memory_limit == 0 || need <= self.memory_limit;
        }
        if self.memory.paused {
            return false;
        }
        if self.memory_limit == 0 {
            return true;
        }
        need <= self
            .memory_limit
            .saturating_sub(self.resident_bytes())
            .saturating_sub(self.queued_bytes)
    }

    /// Whether its memory is short: what it holds (in memory or spilled) and has booked is past
    /// `config.memory_short` of its limit. Then tasks that release memory go first. Spilled chunks
    /// count: a worker that spilled to stay under its target is still short until they are consumed,
    /// and loading more sources then only spills more (an all-to-all rechunk would otherwise load
    /// every source again for each target chunk, re-reading spilled ones each time).
    pub fn memory_short(&self, config: &Config) -> bool {
        self.memory_limit > 0
            && (self.held_bytes.saturating_add(self.queued_bytes) as f64)
                > config.memory_short * self.memory_limit as f64
    }

    pub fn has_capacity(&self, config: &Config) -> bool {
        self.refilling && self.in_flight < self.capacity(config)
    }

    /// Whether the worker should be topped up: its queue has drained to half its capacity (or below
    /// one task per thread). Topping up in batches, rather than one task per result, keeps the
    /// messages per task down when tasks are short.
    pub fn hungry(&self, config: &Config) -> bool {
        let capacity = self.capacity(config);
        self.in_flight < capacity
            && (self.in_flight * 2 <= capacity || self.in_flight < self.threads)
    }
}

pub(crate) type Workers = BTreeMap<WorkerId, Worker>;

/// Messages of one worker in one event.
#[derive(Debug, Default)]
pub(crate) struct WorkerBatch {
    forget: Vec<JobId>,
    graphs: Vec<(JobId, Arc<TaskGraph>)>,
    release: Vec<ChunkRef>,
    replicate: Vec<(JobId, u32, WorkerId)>,
    assign: Vec<Assignment>,
}

/// Messages of one job's client in one event.
#[derive(Debug, Default)]
pub(crate) struct ClientBatch {
    accepted: Option<usize>,
    outputs: Vec<OutputChunk>,
    progress: Option<Vec<LayerCount>>,
    end: Option<ToClient>,
}

/// Everything one event sends, merged per receiver and put in the outbox in a fixed order when the
/// event ends: per worker (by id) `Forget`s, `Graph`s, one `Release`, `Replicate`s, one `Assign`; then
/// `Goodbye`s; then per job `Accepted`, one `OutputsReady`, one `Progress`, and `Completed` or `Failed`. Messages to
/// workers that left during the event, and announcements of chunks that left with them, are dropped.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    workers: BTreeMap<WorkerId, WorkerBatch>,
    goodbyes: Vec<WorkerId>,
    clients: BTreeMap<JobId, ClientBatch>,
}

impl Batch {
    fn worker(&mut self, w: WorkerId) -> &mut WorkerBatch {
        self.workers.entry(w).or_default()
    }

    fn client(&mut self, job: JobId) -> &mut ClientBatch {
        self.clients.entry(job).or_default()
    }

    pub fn forget(&mut self, w: WorkerId, job: JobId) {
        self.worker(w).forget.push(job);
    }

    pub fn graph(&mut self, w: WorkerId, job: JobId, graph: Arc<TaskGraph>) {
        self.worker(w).graphs.push((job, graph));
    }

    pub fn release(&mut self, w: WorkerId, chunk: ChunkRef) {
        self.worker(w).release.push(chunk);
    }

    pub fn replicate(&mut self, w: WorkerId, job: JobId, task: u32, from: WorkerId) {
        self.worker(w).replicate.push((job, task, from));
    }

    pub fn assign(&mut self, w: WorkerId, a: Assignment) {
        self.worker(w).assign.push(a);
    }

    pub fn goodbye(&mut self, w: WorkerId) {
        self.goodbyes.push(w);
    }

    pub fn accepted(&mut self, job: JobId, tasks: usize) {
        self.client(job).accepted = Some(tasks);
    }

    pub fn output(&mut self, job: JobId, chunk: OutputChunk) {
        self.client(job).outputs.push(chunk);
    }

    pub fn progress(&mut self, job: JobId, layers: Vec<LayerCount>) {
        self.client(job).progress = Some(layers);
    }

    pub fn end(&mut self, job: JobId, msg: ToClient) {
        self.client(job).end = Some(msg);
    }

    /// Drops what the event meant to send about a job that is gone.
    pub fn purge_job(&mut self, job: JobId) {
        for b in self.workers.values_mut() {
            b.graphs.retain(|(j, _)| *j != job);
            b.release.retain(|(j, _)| *j != job);
            b.replicate.retain(|(j, _, _)| *j != job);
            b.assign.retain(|a| a.job != job);
        }
        self.clients.remove(&job);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty() && self.goodbyes.is_empty() && self.clients.is_empty()
    }

    /// Puts the batch in the outbox. Messages to workers that are gone by now are dropped (they said
    /// goodbye or were lost in this event), except the `Goodbye` itself.
    pub fn flush(&mut self, out: &mut impl Outbox, workers: &Workers) {
        for (w, b) in std::mem::take(&mut self.workers) {
            if !workers.contains_key(&w) {
                continue;
            }
            for job in b.forget {
                out.to_worker(w, ToWorker::Forget(job));
            }
            for (job, graph) in b.graphs {
                out.to_worker(w, ToWorker::Graph { job, graph });
            }
            if !b.release.is_empty() {
                out.to_worker(w, ToWorker::Release(b.release));
            }
            for (job, task, from) in b.replicate {
                out.to_worker(w, ToWorker::Replicate { job, task, from });
            }
            if !b.assign.is_empty() {
                out.to_worker(w, ToWorker::Assign(b.assign));
            }
        }
        for w in std::mem::take(&mut self.goodbyes) {
            out.to_worker(w, ToWorker::Goodbye);
        }
        for (job, mut b) in std::mem::take(&mut self.clients) {
            // Only chunks still where they are said to be: one whose worker left later in the event
            // is announced again from its next holder, or once recomputed.
            b.outputs.retain(|c| {
                workers
                    .get(&c.worker)
                    .and_then(|w| w.jobs.get(&job))
                    .is_some_and(|wj| wj.held.contains(&c.task))
            });
            b.outputs.dedup();
            if let Some(tasks) = b.accepted {
                out.to_client(job, ToClient::Accepted { tasks });
            }
            let failed = matches!(b.end, Some(ToClient::Failed { .. }));
            if !b.outputs.is_empty() && !failed {
                out.to_client(job, ToClient::OutputsReady(b.outputs));
            }
            if let Some(layers) = b.progress.filter(|_| !failed) {
                out.to_client(job, ToClient::Progress(layers));
            }
            if let Some(end) = b.end {
                out.to_client(job, end);
            }
        }
    }
}

/// Counters over the scheduler's life, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Assignments sent.
    pub assigned: u64,
    /// Chunks that lost their last holder while still needed and were put back to be computed again.
    pub recomputed: u64,
    /// Task failures for a missing input (rescheduled, not fatal).
    pub missing_inputs: u64,
    /// `Replicate` requests sent.
    pub replications: u64,
    /// Reports that were stale, duplicate, or about unknown workers, jobs or tasks.
    pub ignored: u64,
    /// Workers lost (session closed or timed out).
    pub workers_lost: u64,
}

/// A worker's memory as its heartbeat reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerMemory {
    /// Bytes of chunks in memory (spilled ones not counted).
    pub bytes_held: u64,
    /// Bytes reserved for its running tasks.
    pub bytes_running: u64,
    pub bytes_spilled: u64,
    pub chunks_spilled: u64,
    pub spill_writes: u64,
    pub spill_reads: u64,
    pub spill_nanos: u64,
    /// Past its pause fraction: it starts nothing new.
    pub paused: bool,
}

/// A worker as the scheduler sees it (for the `Status` RPC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    pub id: WorkerId,
    pub threads: u32,
    pub memory_limit: u64,
    /// Tasks in flight.
    pub running: u32,
    pub chunks_held: u64,
    /// Bytes of the chunks it holds, from task-done reports.
    pub bytes_held: u64,
    /// Bytes held in memory according to its last heartbeat.
    pub reported_bytes: u64,
    /// Bytes booked for its in-flight tasks.
    pub queued_bytes: u64,
    /// Its last heartbeat's memory report.
    pub memory: WorkerMemory,
    pub retiring: bool,
}

/// A job's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    pub tasks: usize,
    /// Tasks that still have to run.
    pub unfinished: usize,
    pub tasks_run: u64,
    pub completed: bool,
}

/// One layer's share of a job's tasks ([`State::job_layer_progress`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerProgress {
    pub tasks: u64,
    /// Computed (`Done`, or `Released` once nothing needs it).
    pub done: u64,
    pub running: u64,
}

/// How much per-task and per-chunk state the core keeps, as entry counts ([`State::footprint`]):
/// what a finished and closed job must leave none of, and what the memory example reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    pub jobs: usize,
    /// Entries of the jobs' per-task arrays (one per task of every job).
    pub tasks: usize,
    /// Input and consumer list entries (one each per distinct edge).
    pub edges: usize,
    /// `Done` chunks with their holders.
    pub chunks: usize,
    /// Tasks with the workers running them.
    pub running: usize,
    /// Entries of the jobs' ready heaps (stale ones included), parked readers and reading tasks.
    pub queued: usize,
    /// Jobs in the round-robin ring.
    pub ring: usize,
    /// (worker, job) records, and the chunks, runs and replications they list.
    pub worker_jobs: usize,
    pub worker_entries: usize,
}

/// The whole scheduler state. Create one with [`State::new`] and drive it with the `on_*` functions.
pub struct State {
    pub(crate) config: Config,
    /// Number of the current event; orders holders against assignments.
    pub(crate) seq: u64,
    pub(crate) workers: Workers,
    pub(crate) jobs: BTreeMap<JobId, Job>,
    /// Jobs that may have `Ready` tasks, in round-robin order.
    pub(crate) ring: VecDeque<JobId>,
    pub(crate) batch: Batch,
    pub(crate) stats: Stats,
    /// Something happened that can leave a task reading a kept chunk that will never be there
    /// again (a job dropped, outputs fetched, a worker lost, a failure, a reading job submitted):
    /// the next event's end looks for such readers. Task results alone never can, so the check
    /// costs nothing per task.
    pub(crate) check_readers: bool,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .field("workers", &self.workers.keys().collect::<Vec<_>>())
            .field("jobs", &self.jobs.values().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish()
    }
}

impl State {
    pub fn new(config: Config) -> State {
        State {
            config,
            seq: 0,
            workers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            ring: VecDeque::new(),
            batch: Batch::default(),
            stats: Stats::default(),
            check_readers: false,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn has_worker(&self, w: WorkerId) -> bool {
        self.workers.contains_key(&w)
    }

    /// Every worker, by id.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        self.workers
            .values()
            .map(|w| WorkerStatus {
                id: w.id,
                threads: w.threads,
                memory_limit: w.memory_limit,
                running: w.in_flight,
                chunks_held: w.held_chunks,
                bytes_held: w.held_bytes,
                reported_bytes: w.reported_bytes,
                queued_bytes: w.queued_bytes,
                memory: w.memory,
                retiring: w.retiring.is_some(),
            })
            .collect()
    }

    pub fn num_jobs(&self) -> usize {
        self.jobs.len()
    }

    pub fn has_job(&self, job: JobId) -> bool {
        self.jobs.contains_key(&job)
    }

    pub fn job_status(&self, job: JobId) -> Option<JobStatus> {
        self.jobs.get(&job).map(|j| JobStatus {
            tasks: j.tasks.len(),
            unfinished: j.unfinished,
            tasks_run: j.tasks_run,
            completed: j.completed,
        })
    }

    pub fn task_status(&self, job: JobId, task: u32) -> Option<TaskStatus> {
        self.jobs
            .get(&job)
            .and_then(|j| j.tasks.get(task as usize))
            .map(|t| t.status)
    }

    /// The jobs in the core, by id (the dashboard's list of jobs in flight).
    pub fn job_ids(&self) -> Vec<JobId> {
        self.jobs.keys().copied().collect()
    }

    /// A job's progress per layer, indexed by the layer's position in its graph: tasks, finished
    /// (`Done` or `Released`) and running. One pass over the job's tasks: called for the dashboard
    /// about once a second, not per event.
    pub fn job_layer_progress(&self, job: JobId) -> Option<Vec<LayerProgress>> {
        let j = self.jobs.get(&job)?;
        let mut layers = vec![LayerProgress::default(); j.graph.graph.layers().len()];
        for (task, state) in j.graph.tasks.iter().zip(&j.tasks) {
            let Some(l) = layers.get_mut(task.layer as usize) else {
                continue;
            };
            l.tasks += 1;
            match state.status {
                TaskStatus::Done | TaskStatus::Released => l.done += 1,
                TaskStatus::Running => l.running += 1,
                TaskStatus::Waiting | TaskStatus::Ready => {}
            }
        }
        Some(layers)
    }

    /// How many tasks of all jobs are in each state (the `/metrics` gauge), in the order
    /// waiting, ready, running, done, released.
    pub fn task_counts(&self) -> [u64; 5] {
        let mut counts = [0u64; 5];
        for j in self.jobs.values() {
            for t in &j.tasks {
                counts[match t.status {
                    TaskStatus::Waiting => 0,
                    TaskStatus::Ready => 1,
                    TaskStatus::Running => 2,
                    TaskStatus::Done => 3,
                    TaskStatus::Released => 4,
                }] += 1;
            }
        }
        counts
    }

    /// Counts of the per-task and per-chunk state the core keeps now (O(jobs + workers)).
    pub fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            jobs: self.jobs.len(),
            ring: self.ring.len(),
            ..Footprint::default()
        };
        for j in self.jobs.values() {
            f.tasks += j.tasks.len();
            f.edges += j.deps.items.len() + j.consumers.items.len();
            let (chunks, running) = j.sparse_counts();
            f.chunks += chunks;
            f.running += running;
            f.queued += j.ready.len() + j.ready_consumers.len() + j.parked.len() + j.reads.len();
        }
        for w in self.workers.values() {
            f.worker_jobs += w.jobs.len();
            f.worker_entries += w
                .jobs
                .values()
                .map(|wj| wj.held.len() + wj.running.len() + wj.replicating.len())
                .sum::<usize>();
        }
        f
    }

    /// The workers holding a chunk.
    pub fn holders(&self, job: JobId, task: u32) -> Vec<WorkerId> {
        self.jobs
            .get(&job)
            .filter(|j| (task as usize) < j.tasks.len())
            .map(|j| j.holders(task).iter().map(|h| h.worker).collect())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------------
// Shared transitions. Free functions over the state's parts, so that a job and the workers can be
// borrowed at once.

/// Records that `w` holds chunk `t` (no-op if it already does).
pub(crate) fn add_holder(job: &mut Job, t: u32, w: WorkerId, workers: &mut Workers, seq: u64) {
    let chunk = job.chunks.entry(t).or_default();
    if chunk.holders.iter().any(|h| h.worker == w) {
        return;
    }
    chunk.holders.push(Holder {
        worker: w,
        since: seq,
    });
    let nbytes = chunk.nbytes;
    if let Some(worker) = workers.get_mut(&w) {
        worker.jobs.entry(job.id).or_default().held.insert(t);
        worker.held_chunks += 1;
        worker.held_bytes += nbytes;
    }
    evacuation_check(job, t, workers);
}

/// Forgets that `w` holds chunk `t`, sending it a `Release` if `notify`. If that was the last holder
/// of a `Done` chunk, the chunk is lost: it goes back to be recomputed if needed.
pub(crate) fn drop_holder(
    job: &mut Job,
    t: u32,
    w: WorkerId,
    workers: &mut Workers,
    batch: &mut Batch,
    stats: &mut Stats,
    notify: bool,
) {
    let Some(chunk) = job.chunks.get_mut(&t) else {
        return;
    };
    let Some(i) = chunk.holders.iter().position(|h| h.worker == w) else {
        return;
    };
    chunk.holders.remove(i);
    let nbytes = chunk.nbytes;
    let last = chunk.holders.is_empty();
    if last {
        job.chunks.remove(&t);
    }
    if let Some(worker) = workers.get_mut(&w) {
        worker.unbook_chunk(job.id, t, nbytes);
        if notify {
            batch.release(w, (job.id, t));
        }
    }
    if last {
        if job.tasks[t as usize].status == TaskStatus::Done {
            if job.tasks[t as usize].needed() {
                stats.recomputed += 1;
            }
            // Through Released, so that the consumers count the input as missing and the task's own
            // inputs as pending again before its new status is chosen.
            job.set_status(t, TaskStatus::Released);
            let s = job.idle_status(t);
            job.set_status(t, s);
        }
    } else {
        evacuation_check(job, t, workers);
        // The client may have been told to fetch it from `w`.
        let other = job.holders(t)[0].worker;
        announce(job, t, other, batch);
    }
}

/// A task's run on `w` ended without a result (worker lost, or a missing input): if no other worker
/// runs it, it goes back to `Ready` or `Waiting` (or `Released` if nobody needs it any more).
pub(crate) fn stop_running(job: &mut Job, t: u32, w: WorkerId) {
    job.remove_runner(t, w);
    if job.running_on(t).is_empty() && job.tasks[t as usize].status == TaskStatus::Running {
        let s = job.idle_status(t);
        job.set_status(t, s);
    }
}

/// Keeps retiring workers' evacuation lists right for chunk `t` after its holders changed: a retiring
/// worker must see a chunk copied away iff it is the chunk's only holder (and the chunk is `Done`).
fn evacuation_check(job: &Job, t: u32, workers: &mut Workers) {
    let holders = job.holders(t);
    let sole = job.tasks[t as usize].status == TaskStatus::Done && holders.len() == 1;
    for h in holders {
        if let Some(ev) = workers.get_mut(&h.worker).and_then(|w| w.retiring.as_mut()) {
            if sole {
                ev.add((job.id, t));
            } else {
                ev.remove((job.id, t));
            }
        }
    }
}

/// Tells the client where an output chunk it has not fetched yet is (again, if its worker left).
fn announce(job: &Job, t: u32, w: WorkerId, batch: &mut Batch) {
    if !job.tasks[t as usize].wanted {
        return;
    }
    for &(o, p) in job.outputs_of(t) {
        let task = job.graph.outputs[o as usize][p as usize];
        batch.output(
            job.id,
            OutputChunk {
                output: o as usize,
                block: job.graph.tasks[task as usize].block.to_vec(),
                task,
                worker: w,
            },
        );
    }
}

/// Releases a `Done` chunk nobody needs: every holder gets a `Release`.
fn release_chunk(job: &mut Job, t: u32, workers: &mut Workers, batch: &mut Batch) {
    let Chunk { holders, nbytes } = job.chunks.remove(&t).unwrap_or_default();
    for h in holders {
        if let Some(worker) = workers.get_mut(&h.worker) {
            worker.unbook_chunk(job.id, t, nbytes);
            batch.release(h.worker, (job.id, t));
        }
    }
    job.set_status(t, TaskStatus::Released);
}

/// Brings every marked task of the job to the status its counters call for, highest index first
/// (see the module docs), releasing chunks that are no longer needed and reviving released ones that
/// are needed again.
pub(crate) fn settle(job: &mut Job, workers: &mut Workers, batch: &mut Batch) {
    while let Some(t) = job.dirty.pop() {
        while job.dirty.peek() == Some(&t) {
            job.dirty.pop();
        }
        let ts = &job.tasks[t as usize];
        let needed = ts.needed();
        match ts.status {
            TaskStatus::Done if !needed => release_chunk(job, t, workers, batch),
            TaskStatus::Waiting | TaskStatus::Ready | TaskStatus::Released => {
                let s = job.idle_status(t);
                job.set_status(t, s);
            }
            _ => {}
        }
    }
}

/// Settles every job and puts the jobs with `Ready` tasks in the ring.
pub(crate) fn settle_all(state: &mut State) {
    let State {
        workers,
        jobs,
        ring,
        batch,
        ..
    } = state;
    for job in jobs.values_mut() {
        if !job.dirty.is_empty() {
            settle(job, workers, batch);
        }
        if !job.in_ring && job.peek_ready().is_some() {
            job.in_ring = true;
            ring.push_back(job.id);
        }
    }
}

/// Records a task result from `w`: the chunk becomes `Done` (or gains a holder), its consumers may
/// become ready, its inputs may be released, and an output is announced to the client.
pub(crate) fn chunk_reported(state: &mut State, job_id: JobId, t: u32, w: WorkerId, nbytes: u64) {
    let State {
        workers,
        jobs,
        batch,
        seq,
        ..
    } = state;
    let Some(job) = jobs.get_mut(&job_id) else {
        return;
    };
    match job.tasks[t as usize].status {
        TaskStatus::Done => add_holder(job, t, w, workers, *seq),
        TaskStatus::Released => {
            // Nobody needs it any more (say, a replica arriving after the last reader finished).
            batch.release(w, (job_id, t));
        }
        TaskStatus::Waiting | TaskStatus::Ready | TaskStatus::Running => {
            job.count_done(t, nbytes);
            job.chunks.insert(
                t,
                Chunk {
                    holders: SmallVec::new(),
                    nbytes,
                },
            );
            job.set_status(t, TaskStatus::Done);
            add_holder(job, t, w, workers, *seq);
            announce(job, t, w, batch);
        }
    }
}

/// Where the kept chunk a reading task copies is: its holders and size, if it is `Done`; `Err`
/// with the reason when it will never be (its job was dropped, or the chunk released).
pub(crate) fn kept_chunk(
    jobs: &BTreeMap<JobId, Job>,
    chunk: ChunkRef,
) -> Result<Option<(Vec<WorkerId>, u64)>, String> {
    let Some(job) = jobs.get(&chunk.0) else {
        return Err(format!(
            "the persisted job {:016x} it reads was released (unpersisted, dropped, or its client \
             disconnected)",
            chunk.0.0
        ));
    };
    let Some(ts) = job.tasks.get(chunk.1 as usize) else {
        return Err(format!(
            "the persisted job {:016x} has no task {}",
            chunk.0.0, chunk.1
        ));
    };
    Ok(match ts.status {
        TaskStatus::Done => Some((
            job.holders(chunk.1).iter().map(|h| h.worker).collect(),
            job.nbytes(chunk.1),
        )),
        TaskStatus::Released => {
            return Err(format!(
                "chunk {} of the persisted job {:016x} was released",
                chunk.1, chunk.0.0
            ));
        }
        // Being recomputed (a worker holding it was lost): the reader waits.
        TaskStatus::Waiting | TaskStatus::Ready | TaskStatus::Running => None,
    })
}

/// Fails every job with a `Ready` reading task whose kept chunk will never be there again: the
/// client hears `Failed` naming the layer, and the job is dropped.
pub(crate) fn fail_orphan_readers(state: &mut State) {
    let mut failed: Vec<(JobId, String)> = Vec::new();
    for job in state.jobs.values() {
        for (&t, &chunk) in &job.reads {
            if job.tasks[t as usize].status != TaskStatus::Ready {
                continue;
            }
            if let Err(why) = kept_chunk(&state.jobs, chunk) {
                let layer = &job.graph.graph.layers()[job.graph.tasks[t as usize].layer as usize];
                failed.push((job.id, format!("layer {}: {why}", layer.id)));
                break;
            }
        }
    }
    for (job, message) in failed {
        drop_job(state, job);
        state.batch.end(
            job,
            ToClient::Failed {
                key: String::new(),
                worker: None,
                message,
            },
        );
    }
}

/// Takes a worker out: its running tasks are requeued, the chunks it held lose a holder (and are
/// recomputed if that was the last one and they are still needed), and replications it was asked for
/// are asked of someone else. Sends nothing to the worker.
pub(crate) fn remove_worker(state: &mut State, w: WorkerId) {
    let Some(worker) = state.workers.remove(&w) else {
        return;
    };
    state.check_readers = true;
    let State {
        workers,
        jobs,
        batch,
        stats,
        ..
    } = state;
    for (job_id, wj) in worker.jobs {
        let Some(job) = jobs.get_mut(&job_id) else {
            continue;
        };
        for t in wj.held {
            drop_holder(job, t, w, workers, batch, stats, false);
        }
        for (t, _) in wj.running {
            stop_running(job, t, w);
        }
        for (t, (from, _)) in wj.replicating {
            if let Some(ev) = workers.get_mut(&from).and_then(|f| f.retiring.as_mut()) {
                ev.retarget((job_id, t), w);
            }
        }
    }
    settle_all(state);
}

/// Drops a job: every worker that has anything of it gets a `Forget`, and their slots are freed.
pub(crate) fn drop_job(state: &mut State, job_id: JobId) {
    let Some(job) = state.jobs.remove(&job_id) else {
        return;
    };
    state.check_readers = true;
    state.ring.retain(|&j| j != job_id);
    state.batch.purge_job(job_id);
    for worker in state.workers.values_mut() {
        if let Some(wj) = worker.jobs.remove(&job_id) {
            worker.in_flight -= wj.running.len() as u32;
            worker.queued_bytes -= wj.running.values().map(|&(_, b)| b).sum::<u64>();
            worker.replicating -= wj.replicating.len() as u32;
            for t in wj.held {
                worker.held_chunks -= 1;
                worker.held_bytes -= job.nbytes(t);
            }
            state.batch.forget(worker.id, job_id);
        }
        if let Some(ev) = &mut worker.retiring {
            let chunks: Vec<ChunkRef> = ev
                .copies
                .range((job_id, 0)..=(job_id, u32::MAX))
                .map(|(c, _)| *c)
                .collect();
            for c in chunks {
                ev.remove(c);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Invariants

#[cfg(test)]
impl State {
    /// Checks every invariant of the state; panics with what is wrong. Tests call it after every event.
    pub(crate) fn sanity_check(&self) {
        assert!(self.batch.is_empty(), "messages left in the batch");
        // Workers' bookkeeping against the jobs' view.
        for (&wid, w) in &self.workers {
            assert_eq!(wid, w.id);
            let running: usize = w.jobs.values().map(|j| j.running.len()).sum();
            assert_eq!(w.in_flight as usize, running, "{wid}: in-flight count");
            let queued: u64 = w
                .jobs
                .values()
                .flat_map(|j| j.running.values())
                .map(|&(_, b)| b)
                .sum();
            assert_eq!(w.queued_bytes, queued, "{wid}: queued bytes");
            // The capacity shrinks when tasks turn out long, so in flight may exceed it until the
            // queue drains; never the ceiling.
            let ceiling = self
                .config
                .max_slots_per_thread
                .max(self.config.slots_per_thread)
                .max(1);
            assert!(w.in_flight <= w.threads * ceiling, "{wid}: over capacity");
            let replicating: usize = w.jobs.values().map(|j| j.replicating.len()).sum();
            assert_eq!(w.replicating as usize, replicating, "{wid}: replicating");
            let mut chunks = 0;
            let mut bytes = 0;
            for (jid, wj) in &w.jobs {
                let job = self
                    .jobs
                    .get(jid)
                    .unwrap_or_else(|| panic!("{wid} has state of dropped job {jid}"));
                if !wj.running.is_empty() {
                    assert!(wj.graph_sent, "{wid} runs tasks of {jid} without its graph");
                }
                for &t in wj.running.keys() {
                    assert!(
                        job.running_on(t).contains(&wid),
                        "{wid} runs {jid}/{t} but the task does not list it"
                    );
                }
                for &t in &wj.held {
                    assert!(
                        job.holders(t).iter().any(|h| h.worker == wid),
                        "{wid} holds {jid}/{t} but the chunk does not list it"
                    );
                    chunks += 1;
                    bytes += job.nbytes(t);
                }
            }
            assert_eq!(w.held_chunks, chunks, "{wid}: chunk count");
            assert_eq!(w.held_bytes, bytes, "{wid}: byte count");
            if let Some(ev) = &w.retiring {
                let unsent = ev.copies.values().filter(|t| t.is_none()).count();
                assert_eq!(ev.unsent, unsent, "{wid}: unsent copies");
                for (&(jid, t), target) in &ev.copies {
                    let job = &self.jobs[&jid];
                    assert_eq!(
                        job.task(t).status,
                        TaskStatus::Done,
                        "{wid} evacuates {jid}/{t}"
                    );
                    assert_eq!(
                        job.holders(t).iter().map(|h| h.worker).collect::<Vec<_>>(),
                        vec![wid],
                        "{wid} evacuates {jid}/{t}, which it is not the sole holder of"
                    );
                    if let Some(target) = target {
                        let tw = &self.workers[target];
                        assert!(
                            tw.jobs[&jid].replicating.get(&t).map(|r| r.0) == Some(wid),
                            "{target} was asked to copy {jid}/{t} from {wid}"
                        );
                    }
                }
            }
        }
        // Jobs.
        let mut ring_seen = BTreeSet::new();
        for &j in &self.ring {
            assert!(ring_seen.insert(j), "{j} is twice in the ring");
            assert!(self.jobs[&j].in_ring, "{j} is in the ring unflagged");
        }
        for (&jid, job) in &self.jobs {
            assert_eq!(jid, job.id);
            assert_eq!(job.in_ring, ring_seen.contains(&jid), "{jid}: ring flag");
            assert!(job.dirty.is_empty(), "{jid}: unsettled tasks");
            let in_heap: BTreeSet<u32> = job
                .ready
                .iter()
                .map(|r| r.0)
                .chain(job.parked.iter().copied())
                .collect();
            let mut unfinished = 0;
            let mut any_ready = false;
            for t in 0..job.tasks.len() as u32 {
                let ts = job.task(t);
                let key = format!("{jid}/{t} ({:?})", ts.status);
                let missing = job
                    .deps(t)
                    .iter()
                    .filter(|&&d| job.task(d).status != TaskStatus::Done)
                    .count() as u32;
                assert_eq!(ts.missing, missing, "{key}: missing count");
                let pending = job
                    .consumers(t)
                    .iter()
                    .filter(|&&c| job.task(c).status.is_active())
                    .count() as u32;
                assert_eq!(ts.pending, pending, "{key}: pending count");
                assert_eq!(
                    job.holders(t).is_empty(),
                    ts.status != TaskStatus::Done,
                    "{key}: a chunk has holders iff it is Done"
                );
                assert_eq!(
                    job.chunks.contains_key(&t),
                    ts.status == TaskStatus::Done,
                    "{key}: a chunk entry iff it is Done"
                );
                for h in job.holders(t) {
                    let w = self
                        .workers
                        .get(&h.worker)
                        .unwrap_or_else(|| panic!("{key} is held by gone worker {}", h.worker));
                    assert!(w.jobs[&jid].held.contains(&t), "{key}: holder's list");
                    assert!(h.since <= self.seq);
                }
                for r in job.running_on(t) {
                    let w = self
                        .workers
                        .get(r)
                        .unwrap_or_else(|| panic!("{key} runs on gone worker {r}"));
                    assert!(
                        w.jobs[&jid].running.contains_key(&t),
                        "{key}: runner's list"
                    );
                }
                match ts.status {
                    TaskStatus::Waiting => {
                        assert!(ts.needed(), "{key} waits but is not needed");
                        assert!(ts.missing > 0, "{key} waits with every input done");
                        assert!(job.running_on(t).is_empty(), "{key} waits while running");
                    }
                    TaskStatus::Ready => {
                        assert!(ts.needed(), "{key} is ready but not needed");
                        assert_eq!(ts.missing, 0, "{key} is ready with inputs missing");
                        assert!(
                            job.running_on(t).is_empty(),
                            "{key} is both ready and in flight"
                        );
                        assert!(in_heap.contains(&t), "{key} is ready but not in the heap");
                        any_ready |= !job.parked.contains(&t);
                    }
                    TaskStatus::Running => {
                        assert!(!job.running_on(t).is_empty(), "{key} runs nowhere");
                    }
                    TaskStatus::Done => {
                        assert!(ts.needed(), "{key} is kept but not needed");
                    }
                    TaskStatus::Released => {
                        assert!(!ts.needed(), "{key} is released but needed");
                        assert_eq!(ts.pending, 0, "{key} is released with pending consumers");
                    }
                }
                if ts.status.is_active() {
                    unfinished += 1;
                }
            }
            assert_eq!(job.unfinished, unfinished, "{jid}: unfinished count");
            if any_ready {
                assert!(job.in_ring, "{jid} has ready tasks but is not in the ring");
            }
        }
        // Ready work and a worker due for topping up never coexist after an event.
        let ready = self
            .jobs
            .values()
            .any(|j| j.tasks.iter().any(|t| t.status == TaskStatus::Ready));
        if ready {
            // Unless none of the ready tasks fits the hungry worker's memory.
            for w in self.workers.values().filter(|w| w.hungry(&self.config)) {
                for job in self.jobs.values() {
                    for t in 0..job.tasks.len() as u32 {
                        // A reader of a kept chunk being recomputed waits for it.
                        let waits = job
                            .reads
                            .get(&t)
                            .is_some_and(|&c| !matches!(kept_chunk(&self.jobs, c), Ok(Some(_))));
                        if job.task(t).status == TaskStatus::Ready && !waits {
                            let need = tessera::graph::estimate::task_bytes(&job.graph, t);
                            assert!(
                                !w.fits(need),
                                "{}'s queue has drained to half while {}/{t} is ready and fits it",
                                w.id,
                                job.id
                            );
                        }
                    }
                }
            }
        }
    }
}
