//! Placement: which ready task runs next, and where.
//!
//! - **Bounded queues instead of work stealing.** A worker holds a bounded number of tasks in flight:
//!   per thread, about `Config::queue_time` of work by its recent task run times, never fewer than
//!   `slots_per_thread` (two: one running, one queued so the thread never waits for the scheduler)
//!   nor more than `max_slots_per_thread`. Millisecond tasks thus get two slots per thread, and
//!   microsecond tasks get hundreds, so the round trip to the scheduler is hidden either way. A
//!   worker is topped up once half its queue has drained (or fewer tasks than threads are left), in
//!   one message, rather than by one task per result: with sub-millisecond tasks that halves the
//!   messages or better. Nothing beyond that is handed out ahead of time: every other ready task
//!   stays in the scheduler until some worker is due. So work never piles up behind a busy worker,
//!   a worker that finishes early (or joins mid-run) takes the next ready task at once, and there is
//!   nothing to steal back — the most a slow worker can hold up is about `queue_time` of work per
//!   thread.
//! - **Fair across jobs.** Jobs with ready tasks take turns, one task per turn (round robin); within a
//!   job the lowest task index runs first. Task indices are the engine's depth-first post-order, so a
//!   job finishes one subtree (say, one group of a tree reduction) before starting the next and its
//!   intermediates are released early.
//! - **Locality, then load.** Among the workers with a free slot, the task goes to the one already
//!   holding the most bytes of its inputs (sizes from task-done reports); ties go to the least loaded
//!   worker (in-flight tasks per thread, so a 2-thread worker takes twice the tasks of a 1-thread one),
//!   then to the lowest id.
//! - **Memory.** Each task is booked at its peak bytes from the plan-time estimate
//!   (`tessera::graph::estimate`: inputs + output + kernel scratch). A task goes only to a worker
//!   where it fits under the memory limit less the chunks the worker holds in memory (held, less what
//!   its heartbeat says it spilled) and the bookings of its in-flight tasks; a worker with nothing in
//!   flight takes any task within its limit (it spills to make room), and a paused worker nothing.
//!   Where the chosen worker is short of memory (past `Config::memory_short` of its limit), a ready
//!   task that reads held chunks goes before the job's next source: running consumers lets chunks
//!   go, so a wide graph does not load everything before reducing it.
//! - **Replicas** (from a retiring worker) go to the least loaded active worker, counting replications
//!   already asked of it, then fewest bytes held, then lowest id.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tessera::graph::estimate;

use super::state::{State, TaskStatus, Worker, Workers};
use super::{Assignment, ChunkRef, Config, WorkerId};
use crate::core::state::Job;

/// Orders workers by load: in-flight tasks per thread, compared exactly.
fn cmp_load(a: &Worker, b: &Worker) -> Ordering {
    (a.in_flight as u64 * b.threads as u64).cmp(&(b.in_flight as u64 * a.threads as u64))
}

/// The worker task `t` of `job` should run on, among those with a free slot and room for the
/// task's `need` bytes.
pub(crate) fn choose_worker(
    workers: &Workers,
    config: &Config,
    job: &Job,
    t: u32,
    need: u64,
    kept: Option<&(Vec<WorkerId>, u64)>,
) -> Option<WorkerId> {
    // Bytes of the task's inputs per holder; a handful of entries, so a short list beats a map.
    // A task that copies a kept chunk counts that chunk as its input.
    let mut local: Vec<(WorkerId, u64)> = kept
        .map(|(holders, nbytes)| holders.iter().map(|&w| (w, *nbytes)).collect())
        .unwrap_or_default();
    for &d in job.deps(t) {
        let nbytes = job.nbytes(d);
        for h in job.holders(d) {
            match local.iter_mut().find(|(w, _)| *w == h.worker) {
                Some((_, b)) => *b += nbytes,
                None => local.push((h.worker, nbytes)),
            }
        }
    }
    let bytes_on = |w: WorkerId| local.iter().find(|(x, _)| *x == w).map_or(0, |&(_, b)| b);
    // A task larger than every worker's limit (one that joined after the submit-time check, or
    // limits that shrank) would otherwise wait for ever: an idle worker with the largest limit takes
    // it and fails it, saying why, so the client gets an error instead of a hang.
    let largest = workers.values().map(|w| w.memory_limit).max().unwrap_or(0);
    let fits_none = largest > 0 && workers.values().all(|w| w.memory_limit > 0) && need > largest;
    let mut best: Option<(&Worker, u64)> = None;
    for w in workers.values() {
        let takes = w.fits(need) || (fits_none && w.in_flight == 0 && w.memory_limit == largest);
        if !w.has_capacity(config) || !takes {
            continue;
        }
        let bytes = bytes_on(w.id);
        let better = match best {
            None => true,
            // Workers are visited by id, so on a full tie the lower id stays.
            Some((b, b_bytes)) => bytes.cmp(&b_bytes).then_with(|| cmp_load(b, w)).is_gt(),
        };
        if better {
            best = Some((w, bytes));
        }
    }
    best.map(|(w, _)| w.id)
}

/// The worker to copy a retiring worker's chunk to: an active worker other than `from`.
pub(crate) fn replica_target(workers: &Workers, from: WorkerId) -> Option<WorkerId> {
    workers
        .values()
        .filter(|w| w.id != from && w.retiring.is_none())
        .min_by(|a, b| {
            cmp_load(a, b)
                .then(a.replicating.cmp(&b.replicating))
                .then(a.held_bytes.cmp(&b.held_bytes))
                .then(a.id.cmp(&b.id))
        })
        .map(|w| w.id)
}

/// The task of `job` to run next and its worker, if any fits: the lowest-index ready task, unless
/// it would go to a worker short of memory (or fits none) and a ready task that reads held chunks
/// fits somewhere — that one goes first, since running it lets chunks go.
///
/// A task that copies a kept chunk is placed only while `kept` has the chunk (it is `Done`); until
/// then the job waits, like a job whose task fits no worker.
fn pick(
    workers: &Workers,
    config: &Config,
    job: &mut Job,
    kept: &BTreeMap<ChunkRef, (Vec<WorkerId>, u64)>,
) -> Option<(u32, WorkerId, u64)> {
    // Reading tasks whose kept chunk is not there yet step aside (parked until the next pass).
    let (t, reads) = loop {
        let t = job.peek_ready()?;
        match job.reads.get(&t) {
            None => break (t, None),
            Some(c) => match kept.get(c) {
                Some(at) => break (t, Some(at)),
                None => {
                    job.ready.pop();
                    job.parked.push(t);
                }
            },
        }
    };
    let need = estimate::task_bytes(&job.graph, t);
    let first = choose_worker(workers, config, job, t, need, reads);
    let short = first.is_none_or(|w| workers[&w].memory_short(config));
    if short
        && let Some(c) = job.peek_ready_consumer()
        && c != t
    {
        let c_need = estimate::task_bytes(&job.graph, c);
        if let Some(w) = choose_worker(workers, config, job, c, c_need, None) {
            return Some((c, w, c_need));
        }
    }
    first.map(|w| (t, w, need))
}

/// Hands out ready tasks while some worker has a free slot: the next job in the ring gives the task
/// [`pick`] chooses, which goes where [`choose_worker`] says; the job goes to the back of the ring.
/// A job none of whose ready tasks fits any worker's memory now keeps its place and waits for a
/// result, a release or a heartbeat to make room. One `Assign` per worker per event (the batch merges
/// them).
pub(crate) fn schedule(state: &mut State) {
    let State {
        config,
        seq,
        workers,
        jobs,
        ring,
        batch,
        stats,
        ..
    } = state;
    for w in workers.values_mut() {
        w.refilling = w.hungry(config);
    }
    // Parked reading tasks get another look, and their jobs a turn.
    for job in jobs.values_mut() {
        if job.parked.is_empty() {
            continue;
        }
        for t in std::mem::take(&mut job.parked) {
            job.ready.push(std::cmp::Reverse(t));
        }
        if !job.in_ring && job.peek_ready().is_some() {
            job.in_ring = true;
            ring.push_back(job.id);
        }
    }
    // The kept chunks that ready reading tasks copy, where they are now (placing tasks moves none).
    let mut kept: BTreeMap<ChunkRef, (Vec<WorkerId>, u64)> = BTreeMap::new();
    for job in jobs.values() {
        for (&t, &c) in &job.reads {
            if job.task(t).status == TaskStatus::Ready
                && let Ok(Some(at)) = super::state::kept_chunk(jobs, c)
            {
                kept.insert(c, at);
            }
        }
    }
    // Jobs in a row that had ready tasks but none that fits: once every job in the ring has had its
    // turn without placing anything, stop.
    let mut stalled = 0;
    while workers.values().any(|w| w.has_capacity(config)) && stalled <= ring.len() {
        let Some(job_id) = ring.pop_front() else {
            break;
        };
        let Some(job) = jobs.get_mut(&job_id) else {
            continue;
        };
        if job.peek_ready().is_none() {
            job.in_ring = false;
            continue;
        }
        let Some((t, w, need)) = pick(workers, config, job, &kept) else {
            stalled += 1;
            ring.push_back(job_id);
            continue;
        };
        stalled = 0;
        job.set_status(t, TaskStatus::Running);
        job.add_runner(t, w);
        let worker = workers.get_mut(&w).expect("chosen among the workers");
        worker.in_flight += 1;
        worker.queued_bytes += need;
        let wj = worker.jobs.entry(job_id).or_default();
        wj.running.insert(t, (*seq, need));
        if !wj.graph_sent {
            wj.graph_sent = true;
            batch.graph(w, job_id, job.graph.clone());
        }
        let deps = job
            .deps(t)
            .iter()
            .map(|&d| (d, job.holders(d).iter().map(|h| h.worker).collect()))
            .collect();
        batch.assign(
            w,
            Assignment {
                job: job_id,
                task: t,
                deps,
                priority: t,
                reads: job
                    .reads
                    .get(&t)
                    .and_then(|c| Some((*c, kept.get(c)?.0.clone()))),
            },
        );
        stats.assigned += 1;
        ring.push_back(job_id);
    }
}
