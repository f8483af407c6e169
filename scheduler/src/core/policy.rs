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
//! - **Replicas** (from a retiring worker) go to the least loaded active worker, counting replications
//!   already asked of it, then fewest bytes held, then lowest id.

use std::cmp::Ordering;

use super::state::{State, TaskStatus, Worker, Workers};
use super::{Assignment, Config, WorkerId};
use crate::core::state::Job;

/// Orders workers by load: in-flight tasks per thread, compared exactly.
fn cmp_load(a: &Worker, b: &Worker) -> Ordering {
    (a.in_flight as u64 * b.threads as u64).cmp(&(b.in_flight as u64 * a.threads as u64))
}

/// The worker task `t` of `job` should run on, among those with a free slot.
pub(crate) fn choose_worker(
    workers: &Workers,
    config: &Config,
    job: &Job,
    t: u32,
) -> Option<WorkerId> {
    // Bytes of the task's inputs per holder; a handful of entries, so a short list beats a map.
    let mut local: Vec<(WorkerId, u64)> = Vec::new();
    for &d in job.deps(t) {
        let dt = job.task(d);
        for h in &dt.holders {
            match local.iter_mut().find(|(w, _)| *w == h.worker) {
                Some((_, b)) => *b += dt.nbytes,
                None => local.push((h.worker, dt.nbytes)),
            }
        }
    }
    let bytes_on = |w: WorkerId| local.iter().find(|(x, _)| *x == w).map_or(0, |&(_, b)| b);
    let mut best: Option<(&Worker, u64)> = None;
    for w in workers.values() {
        if !w.has_capacity(config) {
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

/// Hands out ready tasks while some worker has a free slot: the next job in the ring gives its
/// lowest-index ready task, which goes where [`choose_worker`] says; the job goes to the back of the
/// ring. One `Assign` per worker per event (the batch merges them).
pub(crate) fn schedule(state: &mut State) {
    let State {
        config,
        seq,
        workers,
        jobs,
        ring,
        batch,
        stats,
    } = state;
    for w in workers.values_mut() {
        w.refilling = w.hungry(config);
    }
    while workers.values().any(|w| w.has_capacity(config)) {
        let Some(job_id) = ring.pop_front() else {
            break;
        };
        let Some(job) = jobs.get_mut(&job_id) else {
            continue;
        };
        let Some(t) = job.peek_ready() else {
            job.in_ring = false;
            continue;
        };
        let w = choose_worker(workers, config, job, t).expect("a worker has a free slot");
        job.ready.pop();
        job.set_status(t, TaskStatus::Running);
        job.task_mut(t).running_on.push(w);
        let worker = workers.get_mut(&w).expect("chosen among the workers");
        worker.in_flight += 1;
        let wj = worker.jobs.entry(job_id).or_default();
        wj.running.insert(t, *seq);
        if !wj.graph_sent {
            wj.graph_sent = true;
            batch.graph(w, job_id, job.graph.clone());
        }
        let deps = job
            .deps(t)
            .iter()
            .map(|&d| (d, job.task(d).holders.iter().map(|h| h.worker).collect()))
            .collect();
        batch.assign(
            w,
            Assignment {
                job: job_id,
                task: t,
                deps,
                priority: t,
            },
        );
        stats.assigned += 1;
        ring.push_back(job_id);
    }
}
