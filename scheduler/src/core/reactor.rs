//! The events. Each `on_*` function is one thing that happened, applied to the [`State`] at time
//! `now`; what it has to say goes to the [`Outbox`] before it returns, batched (one `Assign` and one
//! `Release` per worker, one `OutputsReady` per job). Every function ends the same way: retiring
//! workers make progress, free slots are filled with ready tasks, finished jobs report `Completed`,
//! and the batch is flushed.
//!
//! Reports that do not fit the state — an unknown or dropped worker, job or task, a second report of the
//! same result, a result nobody asked for — are counted in [`Stats::ignored`] and otherwise ignored:
//! the network reorders and repeats, and none of that may panic the scheduler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::graph::expand::TaskGraph;

use super::outbox::Outbox;
use super::policy;
#[cfg(doc)]
use super::state::Stats;
use super::state::{self, Evacuation, Job, State, TaskStatus, Worker, WorkerMemory};
use super::{ChunkRef, JobId, ToClient, WorkerId};

/// How a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFailure {
    /// The error, as the engine displays it.
    pub message: String,
    /// Set when the task could not fetch this input from any holder it was given: the holders are
    /// presumed gone and the task is rescheduled instead of failing the job.
    pub missing_input: Option<ChunkRef>,
}

fn begin(state: &mut State) {
    state.seq += 1;
}

/// What every event ends with.
fn finish(state: &mut State, out: &mut impl Outbox) {
    state::settle_all(state);
    if std::mem::take(&mut state.check_readers) && state.jobs.values().any(|j| !j.reads.is_empty())
    {
        state::fail_orphan_readers(state);
    }
    retire_steps(state);
    policy::schedule(state);
    for job in state.jobs.values_mut() {
        if job.unfinished == 0 && !job.completed {
            job.completed = true;
            // The last counts, so that the client's view ends at every task done.
            if let Some(report) = job.take_progress() {
                state.batch.progress(job.id, report);
            }
            state.batch.end(
                job.id,
                ToClient::Completed {
                    tasks_run: job.tasks_run,
                },
            );
        }
    }
    let State { batch, workers, .. } = state;
    batch.flush(out, workers);
}

fn touch(state: &mut State, w: WorkerId, now: Instant) -> bool {
    match state.workers.get_mut(&w) {
        Some(worker) => {
            worker.last_seen = worker.last_seen.max(now);
            true
        }
        None => false,
    }
}

/// A worker registered. It gets work at once if any is ready. A worker joining under the id of one
/// the scheduler still knows replaces it: the old one is treated as lost first.
pub fn on_worker_joined(
    state: &mut State,
    out: &mut impl Outbox,
    now: Instant,
    worker: WorkerId,
    threads: u32,
    memory_limit: u64,
) {
    begin(state);
    if state.workers.contains_key(&worker) {
        state.stats.workers_lost += 1;
        state::remove_worker(state, worker);
    }
    state
        .workers
        .insert(worker, Worker::new(worker, threads, memory_limit, now));
    finish(state, out);
}

/// A heartbeat: the worker is alive, and this is its memory. A worker that spilled or stopped
/// pausing since its last heartbeat may have room for tasks that did not fit before, so this may
/// assign work.
pub fn on_heartbeat(
    state: &mut State,
    out: &mut impl Outbox,
    now: Instant,
    worker: WorkerId,
    memory: WorkerMemory,
) {
    begin(state);
    match state.workers.get_mut(&worker) {
        Some(w) => {
            w.last_seen = w.last_seen.max(now);
            let roomier = memory.bytes_spilled > w.memory.bytes_spilled
                || (w.memory.paused && !memory.paused);
            w.reported_bytes = memory.bytes_held;
            w.memory = memory;
            if roomier {
                finish(state, out);
            }
        }
        None => state.stats.ignored += 1,
    }
}

/// The clock advanced: workers silent for longer than `config.heartbeat_timeout` are lost. Returns
/// them, so the shell can close their sessions (it must not report them lost again; if it does, the
/// report is ignored).
pub fn on_tick(state: &mut State, out: &mut impl Outbox, now: Instant) -> Vec<WorkerId> {
    begin(state);
    let timeout = state.config.heartbeat_timeout;
    let lost: Vec<WorkerId> = state
        .workers
        .values()
        .filter(|w| now.saturating_duration_since(w.last_seen) > timeout)
        .map(|w| w.id)
        .collect();
    for &w in &lost {
        state.stats.workers_lost += 1;
        state::remove_worker(state, w);
    }
    finish(state, out);
    lost
}

/// A worker is gone without saying goodbye (its session closed, or the shell gave up on it): its
/// in-flight tasks go back to be assigned again, and the chunks only it held are recomputed if still
/// needed — through inputs that were already released, if need be.
pub fn on_worker_lost(state: &mut State, out: &mut impl Outbox, _now: Instant, worker: WorkerId) {
    begin(state);
    if state.workers.contains_key(&worker) {
        state.stats.workers_lost += 1;
        state::remove_worker(state, worker);
    } else {
        state.stats.ignored += 1;
    }
    finish(state, out);
}

/// A client submitted a job (its graph validated and expanded by the shell; `job` unused so far). The
/// client hears `Accepted`, and the job's tasks start going out. A second submission under a known id
/// is ignored.
pub fn on_job_submitted(
    state: &mut State,
    out: &mut impl Outbox,
    _now: Instant,
    job: JobId,
    graph: Arc<TaskGraph>,
) {
    begin(state);
    if state.jobs.contains_key(&job) {
        state.stats.ignored += 1;
    } else {
        state.batch.accepted(job, graph.tasks.len());
        state.jobs.insert(job, Job::new(job, graph));
    }
    finish(state, out);
}

/// [`on_job_submitted`] for a job some of whose tasks read a kept chunk of another job (a persisted
/// array's, see the module docs): `reads` gives each such task (a source in its own graph) and the
/// chunk it copies. The shell has checked that the client may read those jobs.
pub fn on_job_submitted_reading(
    state: &mut State,
    out: &mut impl Outbox,
    _now: Instant,
    job: JobId,
    graph: Arc<TaskGraph>,
    reads: Vec<(u32, ChunkRef)>,
) {
    begin(state);
    if state.jobs.contains_key(&job) {
        state.stats.ignored += 1;
    } else {
        state.batch.accepted(job, graph.tasks.len());
        let n = graph.tasks.len();
        let mut j = Job::new(job, graph);
        j.reads = reads
            .into_iter()
            .filter(|&(t, _)| (t as usize) < n && j.deps(t).is_empty())
            .collect();
        state.jobs.insert(job, j);
        state.check_readers = true;
    }
    finish(state, out);
}

/// What a worker reports of one finished task (or of a replica it now holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskReport {
    pub job: JobId,
    pub task: u32,
    /// Size of the chunk it produced.
    pub nbytes: u64,
    /// How long the kernel ran; zero when not measured (replicas).
    pub run_time: Duration,
}

/// A worker finished tasks (or replicas it was asked for) and holds their chunks: one event for a
/// whole `TaskResults` message, so its follow-up assignments leave as one `Assign`. Idempotent: a
/// second report of a chunk only adds a holder. Reports of unknown tasks are counted and ignored.
pub fn on_tasks_done(
    state: &mut State,
    out: &mut impl Outbox,
    now: Instant,
    worker: WorkerId,
    reports: &[TaskReport],
) {
    begin(state);
    if !touch(state, worker, now) {
        state.stats.ignored += reports.len() as u64;
        return finish(state, out);
    }
    for r in reports {
        let (job, task) = (r.job, r.task);
        if !valid_task(state, job, task) {
            state.stats.ignored += 1;
            continue;
        }
        let (ran, replicated) = take_request(state, worker, job, task);
        if !ran && !replicated {
            state.stats.ignored += 1;
            continue;
        }
        if ran {
            let j = state.jobs.get_mut(&job).expect("valid job");
            j.tasks_run += 1;
            j.remove_runner(task, worker);
            if !r.run_time.is_zero() {
                let w = state.workers.get_mut(&worker).expect("touched");
                w.record_run_time(r.run_time);
            }
        }
        state::chunk_reported(state, job, task, worker, r.nbytes);
    }
    finish(state, out);
}

/// A task failed on a worker. With `missing_input` the input's holders are presumed gone: they stop
/// counting as holders (and get a `Release`, in case they are alive after all), the chunk is recomputed
/// if no holder is left, and the task is requeued. Without it the failure is deterministic: the client
/// hears `Failed` with the task's key, and the job is dropped (`Forget` to every worker that had any of
/// it) — never retried.
pub fn on_task_failed(
    state: &mut State,
    out: &mut impl Outbox,
    now: Instant,
    worker: WorkerId,
    job: JobId,
    task: u32,
    failure: TaskFailure,
) {
    begin(state);
    if !touch(state, worker, now) || !valid_task(state, job, task) {
        state.stats.ignored += 1;
        return finish(state, out);
    }
    let wj = state
        .workers
        .get_mut(&worker)
        .and_then(|w| w.jobs.get_mut(&job));
    let ran_since = wj
        .as_ref()
        .and_then(|wj| wj.running.get(&task).map(|&(since, _)| since));
    let replica = wj.and_then(|wj| wj.replicating.get(&task).copied());
    take_request(state, worker, job, task);
    if ran_since.is_none() && replica.is_none() {
        state.stats.ignored += 1;
        return finish(state, out);
    }
    let Some(missing) = failure.missing_input else {
        if ran_since.is_none() {
            // A replication that failed for some other reason: ask again (maybe elsewhere).
            if let Some((from, _)) = replica
                && let Some(ev) = state
                    .workers
                    .get_mut(&from)
                    .and_then(|w| w.retiring.as_mut())
            {
                ev.retarget((job, task), worker);
            }
            return finish(state, out);
        }
        let key = state.jobs[&job].graph.key(task).to_string();
        state::drop_job(state, job);
        state.batch.end(
            job,
            ToClient::Failed {
                key,
                worker: Some(worker),
                message: failure.message,
            },
        );
        return finish(state, out);
    };
    state.stats.missing_inputs += 1;
    state.check_readers = true;
    // Holders the worker could have been told about: those from before its request. A chunk the
    // request did not involve is no evidence against its holders.
    let reads = state.jobs[&job].reads.get(&task) == Some(&missing);
    if let Some(since) = ran_since
        && ((missing.0 == job && state.jobs[&job].deps(task).contains(&missing.1)) || reads)
    {
        presume_gone(state, missing, None, since);
    }
    if let Some((from, since)) = replica {
        if missing == (job, task) {
            presume_gone(state, missing, Some(from), since);
        }
        if let Some(ev) = state
            .workers
            .get_mut(&from)
            .and_then(|w| w.retiring.as_mut())
        {
            ev.retarget((job, task), worker);
        }
    }
    if ran_since.is_some() {
        let j = state.jobs.get_mut(&job).expect("valid job");
        state::stop_running(j, task, worker);
    }
    finish(state, out);
}

/// The client has fetched these output chunks: they are released unless a task still reads them.
pub fn on_outputs_fetched(
    state: &mut State,
    out: &mut impl Outbox,
    _now: Instant,
    job: JobId,
    tasks: &[u32],
) {
    begin(state);
    state.check_readers = true;
    match state.jobs.get_mut(&job) {
        Some(j) => {
            for &t in tasks {
                match j.tasks.get_mut(t as usize) {
                    Some(ts) if ts.wanted => {
                        ts.wanted = false;
                        // Settling releases it (Done) or drops its recomputation (Waiting, Ready).
                        if !ts.needed() {
                            j.mark_dirty(t);
                        }
                    }
                    _ => state.stats.ignored += 1,
                }
            }
        }
        None => state.stats.ignored += 1,
    }
    finish(state, out);
}

/// The job is over for its client (it went away, or fetched everything and closed): the job is
/// dropped, workers that had any of it get `Forget`, and its slots go to other jobs.
pub fn on_job_cancelled(state: &mut State, out: &mut impl Outbox, _now: Instant, job: JobId) {
    begin(state);
    if state.jobs.contains_key(&job) {
        state::drop_job(state, job);
    } else {
        state.stats.ignored += 1;
    }
    finish(state, out);
}

/// Progress reports are due (the shell's progress timer): every job still running whose counts moved
/// since its last report gets one `Progress`. Changes nothing else, so it may run as often as the shell
/// likes; between reports a job's progress costs a few counter increments per task.
pub fn on_progress_due(state: &mut State, out: &mut impl Outbox, _now: Instant) {
    begin(state);
    for job in state.jobs.values_mut() {
        if !job.completed
            && let Some(report) = job.take_progress()
        {
            state.batch.progress(job.id, report);
        }
    }
    let State { batch, workers, .. } = state;
    batch.flush(out, workers);
}

/// A worker wants to leave gracefully. It gets no new tasks; every needed chunk only it holds is
/// copied (`Replicate { from: it }`) to the least loaded other worker; once nothing is in flight on
/// it and every such chunk has another holder, it gets `Goodbye` and is removed. With no other worker
/// to hand its chunks to, it gets `Goodbye` at once (what it held is recomputed when workers join).
pub fn on_worker_retiring(
    state: &mut State,
    out: &mut impl Outbox,
    now: Instant,
    worker: WorkerId,
) {
    begin(state);
    if !touch(state, worker, now) {
        state.stats.ignored += 1;
        return finish(state, out);
    }
    let w = state.workers.get_mut(&worker).expect("touched");
    if w.retiring.is_none() {
        let mut ev = Evacuation::default();
        for (&job_id, wj) in &w.jobs {
            let job = &state.jobs[&job_id];
            for &t in &wj.held {
                if job.holders(t).len() == 1 {
                    ev.add((job_id, t));
                }
            }
        }
        w.retiring = Some(ev);
    }
    finish(state, out);
}

// ---------------------------------------------------------------------------------------------------

fn valid_task(state: &State, job: JobId, task: u32) -> bool {
    state
        .jobs
        .get(&job)
        .is_some_and(|j| (task as usize) < j.tasks.len())
}

/// Takes the worker's request for the chunk off its books: (it was running the task, it was asked to
/// replicate the chunk).
fn take_request(state: &mut State, worker: WorkerId, job: JobId, task: u32) -> (bool, bool) {
    let Some(w) = state.workers.get_mut(&worker) else {
        return (false, false);
    };
    let Some(wj) = w.jobs.get_mut(&job) else {
        return (false, false);
    };
    let ran = wj.running.remove(&task);
    let replicated = wj.replicating.remove(&task).is_some();
    if let Some((_, need)) = ran {
        w.in_flight -= 1;
        w.queued_bytes -= need;
    }
    let ran = ran.is_some();
    if replicated {
        w.replicating -= 1;
    }
    (ran, replicated)
}

/// A worker could not fetch `chunk` from the holders it was told about at event `since` (only `from`,
/// for a replication): they no longer count as holders.
fn presume_gone(state: &mut State, chunk: ChunkRef, from: Option<WorkerId>, since: u64) {
    let State {
        workers,
        jobs,
        batch,
        stats,
        ..
    } = state;
    let Some(job) = jobs.get_mut(&chunk.0) else {
        return;
    };
    let Some(ts) = job.tasks.get(chunk.1 as usize) else {
        return;
    };
    if ts.status != TaskStatus::Done {
        return;
    }
    let gone: Vec<WorkerId> = job
        .holders(chunk.1)
        .iter()
        .filter(|h| h.since <= since && from.is_none_or(|f| f == h.worker))
        .map(|h| h.worker)
        .collect();
    for w in gone {
        state::drop_holder(job, chunk.1, w, workers, batch, stats, true);
    }
}

/// Moves every retiring worker along: asks for the copies it still needs, and says goodbye to it once
/// it may go. A goodbye can leave another retiring worker the sole holder of a chunk, so this repeats
/// until nothing changes.
fn retire_steps(state: &mut State) {
    loop {
        let retiring: Vec<WorkerId> = state
            .workers
            .values()
            .filter(|w| w.retiring.is_some())
            .map(|w| w.id)
            .collect();
        let mut gone = false;
        for w in retiring {
            if policy::replica_target(&state.workers, w).is_none() {
                goodbye(state, w);
                gone = true;
                continue;
            }
            let unsent: Vec<ChunkRef> = {
                let ev = state.workers[&w].retiring.as_ref().expect("retiring");
                if ev.unsent == 0 {
                    Vec::new()
                } else {
                    ev.copies
                        .iter()
                        .filter(|(_, t)| t.is_none())
                        .map(|(c, _)| *c)
                        .collect()
                }
            };
            for (job, task) in unsent {
                let to = policy::replica_target(&state.workers, w).expect("checked above");
                let target = state.workers.get_mut(&to).expect("a worker");
                target.replicating += 1;
                target
                    .jobs
                    .entry(job)
                    .or_default()
                    .replicating
                    .insert(task, (w, state.seq));
                state.batch.replicate(to, job, task, w);
                state.stats.replications += 1;
                let ev = state
                    .workers
                    .get_mut(&w)
                    .and_then(|x| x.retiring.as_mut())
                    .expect("retiring");
                ev.copies.insert((job, task), Some(to));
                ev.unsent -= 1;
            }
            let worker = &state.workers[&w];
            let ev = worker.retiring.as_ref().expect("retiring");
            if worker.in_flight == 0 && ev.copies.is_empty() {
                goodbye(state, w);
                gone = true;
            }
        }
        if !gone {
            break;
        }
    }
}

fn goodbye(state: &mut State, w: WorkerId) {
    state.batch.goodbye(w);
    state::remove_worker(state, w);
}
