//! Stories about the core, on real task graphs from the engine and a simulated cluster.
//!
//! [`TestEnv`] holds the [`State`], a recording outbox and a fake clock, plus a simulation of the
//! workers and clients the messages go to. Delivering a message checks it against the simulation (a
//! worker gets a job's graph once and before its tasks; every holder named in an assignment really
//! holds the input; a released chunk is really held; an announced output is really there) and, once
//! everything is delivered, that the scheduler's books match the simulated workers exactly (what each
//! runs, what each holds). The state's own invariants (`sanity_check`) are checked after every event.
//! A test can also take messages out of the outbox itself to look at them; whatever is left unchecked
//! when the test ends fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::graph::expand::TaskGraph;
use tessera::{Array, ReduceOptions, default_rng};

use super::outbox::RecordingOutbox;
use super::*;

const W1: WorkerId = WorkerId(1);
const W2: WorkerId = WorkerId(2);
const W3: WorkerId = WorkerId(3);
const J1: JobId = JobId(1);
const J2: JobId = JobId(2);

// ---------------------------------------------------------------------------------------------------
// Graphs, built with the engine's public API.

fn expand(graph: tessera::Graph) -> Arc<TaskGraph> {
    Arc::new(TaskGraph::expand(tessera::optimize::optimize(graph)).expect("expands"))
}

/// A `side × side` grid of 10 × 10 random chunks.
fn grid(side: usize) -> Array {
    default_rng(1)
        .random(&[10 * side, 10 * side], [10, 10])
        .expect("random")
}

/// `mean` of a 4 × 4 grid: 16 leaf tasks, then one combine reading all of them.
fn mean_graph() -> Arc<TaskGraph> {
    expand(grid(4).mean().expect("mean").graph())
}

/// `sum` of a `side × side` grid as a tree `split_every` wide.
fn tree_graph(side: usize, split_every: usize) -> Arc<TaskGraph> {
    let s = grid(side)
        .sum_with(&ReduceOptions::all().split_every(split_every))
        .expect("sum");
    expand(s.graph())
}

/// `sqrt` of a `side × side` grid: independent tasks, each an output chunk.
fn map_graph(side: usize) -> Arc<TaskGraph> {
    expand(grid(side).sqrt().expect("sqrt").graph())
}

/// Three outputs: `x`, an unrelated random `y`, and `x.T`. Tasks are numbered `x` (0–15), `y`
/// (16–31), then the transposes (32–47), which read the chunks of `x`.
fn held_then_read_graph() -> Arc<TaskGraph> {
    // Kept chunks, not a generated source: a transpose of a source would be generated transposed.
    let x = grid(4).persist().expect("persist");
    let y = default_rng(2).random(&[40, 40], [10, 10]).expect("random");
    let t = x.t();
    expand(tessera::Graph::new(
        t.graph()
            .layers()
            .iter()
            .chain(y.graph().layers())
            .cloned()
            .collect(),
        vec![x.id(), y.id(), t.id()],
    ))
}

/// Two outputs, one read by the other: `s = sqrt(x)` and `mean(s)`.
fn shared_output_graph() -> Arc<TaskGraph> {
    let s = grid(4).sqrt().expect("sqrt");
    let m = s.mean().expect("mean");
    expand(tessera::Graph::new(
        m.graph().layers().to_vec(),
        vec![s.id(), m.id()],
    ))
}

// ---------------------------------------------------------------------------------------------------
// The simulated cluster.

/// A simulated worker: what it was told and what it holds.
#[derive(Debug)]
struct SimWorker {
    threads: u32,
    graphs: BTreeMap<JobId, Arc<TaskGraph>>,
    /// Assigned tasks by (priority, job, task).
    queue: BTreeSet<(u32, JobId, u32)>,
    /// Replications to perform: (job, task, from).
    replicas: Vec<(JobId, u32, WorkerId)>,
    store: BTreeSet<ChunkRef>,
    /// Chunks the scheduler believes it holds but it lost (to simulate a failed fetch).
    vanished: BTreeSet<ChunkRef>,
    /// Tasks it ran.
    ran: u64,
}

/// A simulated client.
#[derive(Debug, Default)]
struct SimClient {
    accepted: Option<usize>,
    /// Output tasks announced, with the worker named.
    ready: BTreeMap<u32, WorkerId>,
    /// Announced and not fetched yet.
    to_fetch: BTreeSet<u32>,
    /// Number of `OutputsReady` messages.
    batches: usize,
    completed: Option<u64>,
    failed: Option<(String, Option<WorkerId>, String)>,
    /// Fetch outputs as soon as they are announced.
    auto_fetch: bool,
    /// The last `Progress` heard, and how many were heard.
    progress: Option<Vec<LayerCount>>,
    progress_reports: usize,
}

struct TestEnv {
    state: State,
    out: RecordingOutbox,
    now: Instant,
    workers: BTreeMap<WorkerId, SimWorker>,
    graphs: BTreeMap<JobId, Arc<TaskGraph>>,
    clients: BTreeMap<JobId, SimClient>,
    goodbyes: Vec<WorkerId>,
    /// Run `sanity_check` after every event (off for the large job: it is O(tasks)).
    check: bool,
    chunk_bytes: u64,
    /// The kernel run time the simulated workers report for each task.
    run_time: Duration,
    /// The memory limit workers join with.
    memory_limit: u64,
    /// Tasks that copy a kept chunk of another job, as their assignments said.
    reads: BTreeMap<(JobId, u32), ChunkRef>,
}

impl TestEnv {
    fn new() -> TestEnv {
        TestEnv::with_config(Config::default())
    }

    fn with_config(config: Config) -> TestEnv {
        TestEnv {
            state: State::new(config),
            out: RecordingOutbox::default(),
            // The fake clock starts anywhere; only differences matter.
            now: Instant::now(),
            workers: BTreeMap::new(),
            graphs: BTreeMap::new(),
            clients: BTreeMap::new(),
            goodbyes: Vec::new(),
            check: true,
            chunk_bytes: 1000,
            run_time: Duration::ZERO,
            memory_limit: 1 << 30,
            reads: BTreeMap::new(),
        }
    }

    /// An environment with workers 1, 2, … of the given thread counts, their (empty) joins delivered.
    fn with_workers(threads: &[u32]) -> TestEnv {
        let mut env = TestEnv::new();
        for (i, &t) in threads.iter().enumerate() {
            env.join(WorkerId(i as u32 + 1), t);
        }
        env.deliver();
        env
    }

    fn checked(&mut self) {
        if self.check {
            self.state.sanity_check();
        }
    }

    // -- events -----------------------------------------------------------------------------------

    fn join(&mut self, w: WorkerId, threads: u32) {
        self.workers.insert(
            w,
            SimWorker {
                threads,
                graphs: BTreeMap::new(),
                queue: BTreeSet::new(),
                replicas: Vec::new(),
                store: BTreeSet::new(),
                vanished: BTreeSet::new(),
                ran: 0,
            },
        );
        on_worker_joined(
            &mut self.state,
            &mut self.out,
            self.now,
            w,
            threads,
            self.memory_limit,
        );
        self.checked();
    }

    fn submit(&mut self, job: JobId, graph: Arc<TaskGraph>) {
        self.submit_with(job, graph, true);
    }

    fn submit_with(&mut self, job: JobId, graph: Arc<TaskGraph>, auto_fetch: bool) {
        self.graphs.insert(job, graph.clone());
        self.clients.insert(
            job,
            SimClient {
                auto_fetch,
                ..SimClient::default()
            },
        );
        on_job_submitted(&mut self.state, &mut self.out, self.now, job, graph);
        self.checked();
    }

    /// A job whose tasks `reads` copy kept chunks of other jobs; its client fetches its outputs.
    fn submit_reading(&mut self, job: JobId, graph: Arc<TaskGraph>, reads: Vec<(u32, ChunkRef)>) {
        self.graphs.insert(job, graph.clone());
        self.clients.insert(
            job,
            SimClient {
                auto_fetch: true,
                ..SimClient::default()
            },
        );
        on_job_submitted_reading(&mut self.state, &mut self.out, self.now, job, graph, reads);
        self.checked();
    }

    /// `w` reports a task (or a replica) done, with the environment's `run_time`.
    fn report_done(&mut self, w: WorkerId, job: JobId, task: u32, nbytes: u64) {
        let report = TaskReport {
            job,
            task,
            nbytes,
            run_time: self.run_time,
        };
        on_tasks_done(&mut self.state, &mut self.out, self.now, w, &[report]);
        self.checked();
    }

    fn report_failed(
        &mut self,
        w: WorkerId,
        job: JobId,
        task: u32,
        message: &str,
        missing_input: Option<ChunkRef>,
    ) {
        on_task_failed(
            &mut self.state,
            &mut self.out,
            self.now,
            w,
            job,
            task,
            TaskFailure {
                message: message.to_string(),
                missing_input,
            },
        );
        self.checked();
    }

    /// The worker dies: its chunks and queue vanish, and its session closes.
    fn lose(&mut self, w: WorkerId) {
        self.deliver();
        self.workers.remove(&w);
        on_worker_lost(&mut self.state, &mut self.out, self.now, w);
        self.checked();
    }

    fn retire(&mut self, w: WorkerId) {
        on_worker_retiring(&mut self.state, &mut self.out, self.now, w);
        self.checked();
    }

    fn fetched(&mut self, job: JobId, tasks: &[u32]) {
        on_outputs_fetched(&mut self.state, &mut self.out, self.now, job, tasks);
        self.checked();
    }

    fn cancel(&mut self, job: JobId) {
        on_job_cancelled(&mut self.state, &mut self.out, self.now, job);
        self.checked();
    }

    fn heartbeat(&mut self, w: WorkerId) {
        on_heartbeat(
            &mut self.state,
            &mut self.out,
            self.now,
            w,
            WorkerMemory::default(),
        );
        self.checked();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// The shell's progress timer fires.
    fn progress_due(&mut self) {
        on_progress_due(&mut self.state, &mut self.out, self.now);
        self.checked();
    }

    /// A timer tick; the workers it declares lost die in the simulation too.
    fn tick(&mut self) -> Vec<WorkerId> {
        self.deliver();
        let lost = on_tick(&mut self.state, &mut self.out, self.now);
        for w in &lost {
            self.workers.remove(w);
        }
        self.checked();
        lost
    }

    // -- the simulated workers ----------------------------------------------------------------------

    /// Whether some live worker can serve the chunk.
    fn available(&self, chunk: ChunkRef) -> bool {
        self.workers.values().any(|w| w.store.contains(&chunk))
    }

    /// Worker `w` runs `task`: it fetches the inputs (reporting a missing one if no live worker has
    /// it), stores the result and reports it.
    fn finish(&mut self, w: WorkerId, job: JobId, task: u32) {
        let sw = self.workers.get_mut(&w).expect("a live worker");
        let entry = *sw
            .queue
            .iter()
            .find(|&&(_, j, t)| j == job && t == task)
            .unwrap_or_else(|| panic!("{w} was not assigned {job}/{task}"));
        sw.queue.remove(&entry);
        let graph = sw.graphs[&job].clone();
        if let Some(&kept) = self.reads.get(&(job, task))
            && !self.available(kept)
        {
            self.report_failed(w, job, task, "could not fetch", Some(kept));
            return;
        }
        for &d in &graph.tasks[task as usize].deps {
            if !self.available((job, d)) {
                self.report_failed(w, job, task, "could not fetch", Some((job, d)));
                return;
            }
        }
        let sw = self.workers.get_mut(&w).expect("a live worker");
        sw.store.insert((job, task));
        sw.ran += 1;
        self.report_done(w, job, task, self.chunk_bytes);
    }

    /// Worker `w` runs its highest-priority task, if it has one.
    fn finish_next(&mut self, w: WorkerId) -> Option<(JobId, u32)> {
        let &(_, job, task) = self.workers.get(&w)?.queue.first()?;
        self.finish(w, job, task);
        Some((job, task))
    }

    /// Worker `w` performs a replication it was asked for.
    fn replicate(&mut self, w: WorkerId, (job, task, from): (JobId, u32, WorkerId)) {
        let from_has = self
            .workers
            .get(&from)
            .is_some_and(|f| f.store.contains(&(job, task)));
        if from_has {
            self.workers
                .get_mut(&w)
                .expect("a live worker")
                .store
                .insert((job, task));
            self.report_done(w, job, task, self.chunk_bytes);
        } else {
            self.report_failed(w, job, task, "source gone", Some((job, task)));
        }
    }

    /// The client gathers every announced output it has not fetched yet, from the worker named. One
    /// whose worker is gone by now stays to fetch: the scheduler announces it again once recomputed.
    fn fetch_all(&mut self, job: JobId) {
        let client = &self.clients[&job];
        let tasks: Vec<u32> = client
            .to_fetch
            .iter()
            .copied()
            .filter(|t| {
                self.workers
                    .get(&client.ready[t])
                    .is_some_and(|sw| sw.store.contains(&(job, *t)))
            })
            .collect();
        if tasks.is_empty() {
            return;
        }
        let client = self.clients.get_mut(&job).expect("a client");
        for t in &tasks {
            client.to_fetch.remove(t);
        }
        self.fetched(job, &tasks);
    }

    /// Runs the cluster: each round every worker performs its replications and runs up to `threads`
    /// tasks, and clients fetch what was announced, delivering messages after every event. Returns
    /// when `stop` holds (checked after every event), or when nothing is left to do.
    fn run_until(&mut self, stop: impl Fn(&TestEnv) -> bool) -> bool {
        for _ in 0..1_000_000 {
            self.deliver();
            if stop(self) {
                return true;
            }
            let mut progressed = false;
            let jobs: Vec<JobId> = self.clients.keys().copied().collect();
            for job in jobs {
                let c = &self.clients[&job];
                if c.auto_fetch && !c.to_fetch.is_empty() {
                    let before = c.to_fetch.len();
                    self.fetch_all(job);
                    self.deliver();
                    progressed |= self.clients[&job].to_fetch.len() < before;
                    if stop(self) {
                        return true;
                    }
                }
            }
            let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
            for w in ids {
                while let Some(r) = self.workers.get_mut(&w).and_then(|sw| sw.replicas.pop()) {
                    self.replicate(w, r);
                    self.deliver();
                    progressed = true;
                    if stop(self) {
                        return true;
                    }
                }
                let threads = self.workers.get(&w).map_or(0, |sw| sw.threads);
                for _ in 0..threads {
                    if self.finish_next(w).is_none() {
                        break;
                    }
                    self.deliver();
                    progressed = true;
                    if stop(self) {
                        return true;
                    }
                }
            }
            if !progressed {
                return false;
            }
        }
        panic!("the cluster never settled");
    }

    fn run(&mut self) {
        self.run_until(|_| false);
    }

    // -- delivery -----------------------------------------------------------------------------------

    /// Delivers every message in the outbox to the simulation, checking each, then checks that the
    /// scheduler's books match the simulated workers.
    fn deliver(&mut self) {
        for (w, msg) in std::mem::take(&mut self.out.workers) {
            self.deliver_to_worker(w, msg);
        }
        for (job, msg) in std::mem::take(&mut self.out.clients) {
            self.deliver_to_client(job, msg);
        }
        for (&w, sw) in &self.workers {
            let Some(worker) = self.state.workers.get(&w) else {
                continue;
            };
            let running: BTreeSet<(JobId, u32)> = worker
                .jobs
                .iter()
                .flat_map(|(&j, wj)| wj.running.keys().map(move |&t| (j, t)))
                .collect();
            let queued: BTreeSet<(JobId, u32)> = sw.queue.iter().map(|&(_, j, t)| (j, t)).collect();
            assert_eq!(running, queued, "{w}: the scheduler's in-flight tasks");
            let held: BTreeSet<ChunkRef> = worker
                .jobs
                .iter()
                .flat_map(|(&j, wj)| wj.held.iter().map(move |&t| (j, t)))
                .collect();
            let has: BTreeSet<ChunkRef> = sw.store.union(&sw.vanished).copied().collect();
            assert_eq!(held, has, "{w}: the scheduler's view of its chunks");
        }
    }

    fn deliver_to_worker(&mut self, w: WorkerId, msg: ToWorker) {
        let Some(sw) = self.workers.get(&w) else {
            panic!("{msg:?} sent to {w}, which is gone");
        };
        match msg {
            ToWorker::Graph { job, graph } => {
                assert!(
                    Arc::ptr_eq(&graph, &self.graphs[&job]),
                    "{w} got another graph for {job}"
                );
                let sw = self.workers.get_mut(&w).expect("live");
                assert!(
                    sw.graphs.insert(job, graph).is_none(),
                    "{w} got the graph of {job} twice"
                );
            }
            ToWorker::Assign(tasks) => {
                assert!(!tasks.is_empty(), "empty Assign");
                for a in &tasks {
                    assert!(
                        sw.graphs.contains_key(&a.job),
                        "{w} got {}/{} before the job's graph",
                        a.job,
                        a.task
                    );
                    let graph = &self.graphs[&a.job];
                    let mut distinct: Vec<u32> = Vec::new();
                    for &d in &graph.tasks[a.task as usize].deps {
                        if !distinct.contains(&d) {
                            distinct.push(d);
                        }
                    }
                    assert_eq!(
                        a.deps.iter().map(|d| d.0).collect::<Vec<_>>(),
                        distinct,
                        "deps of {}/{}",
                        a.job,
                        a.task
                    );
                    for (d, holders) in &a.deps {
                        assert!(!holders.is_empty(), "{}/{d} has no holder", a.job);
                        for h in holders {
                            let hw = self.workers.get(h).unwrap_or_else(|| {
                                panic!("{}/{d} said to be on {h}, which is gone", a.job)
                            });
                            assert!(
                                hw.store.contains(&(a.job, *d))
                                    || hw.vanished.contains(&(a.job, *d)),
                                "{}/{d} said to be on {h}, which does not hold it",
                                a.job
                            );
                        }
                    }
                    assert_eq!(a.priority, a.task);
                    if let Some((kept, holders)) = &a.reads {
                        assert!(
                            !holders.is_empty(),
                            "{}/{}: a read with no holder",
                            a.job,
                            a.task
                        );
                        for h in holders {
                            assert!(
                                self.workers.get(h).is_some_and(
                                    |hw| hw.store.contains(kept) || hw.vanished.contains(kept)
                                ),
                                "{}/{} reads {kept:?} from {h}, which does not hold it",
                                a.job,
                                a.task
                            );
                        }
                    }
                }
                for a in &tasks {
                    if let Some((kept, _)) = a.reads {
                        self.reads.insert((a.job, a.task), kept);
                    }
                }
                let sw = self.workers.get_mut(&w).expect("live");
                for a in tasks {
                    assert!(
                        sw.queue.insert((a.priority, a.job, a.task)),
                        "{w} got {}/{} twice",
                        a.job,
                        a.task
                    );
                }
            }
            ToWorker::Release(chunks) => {
                assert!(!chunks.is_empty(), "empty Release");
                let sw = self.workers.get_mut(&w).expect("live");
                for c in chunks {
                    assert!(
                        sw.store.remove(&c) || sw.vanished.remove(&c),
                        "{w} told to release {}/{}, which it does not hold",
                        c.0,
                        c.1
                    );
                }
            }
            ToWorker::Replicate { job, task, from } => {
                assert_ne!(from, w);
                assert!(
                    self.workers
                        .get(&from)
                        .is_some_and(|f| f.store.contains(&(job, task))),
                    "{w} told to copy {job}/{task} from {from}, which does not hold it"
                );
                let sw = self.workers.get_mut(&w).expect("live");
                sw.replicas.push((job, task, from));
            }
            ToWorker::Forget(job) => {
                let sw = self.workers.get_mut(&w).expect("live");
                sw.graphs.remove(&job);
                sw.queue.retain(|&(_, j, _)| j != job);
                sw.store.retain(|&(j, _)| j != job);
                sw.vanished.retain(|&(j, _)| j != job);
                sw.replicas.retain(|&(j, _, _)| j != job);
            }
            ToWorker::Goodbye => {
                self.workers.remove(&w);
                self.goodbyes.push(w);
                assert!(
                    !self.state.has_worker(w),
                    "{w} said goodbye but is still known"
                );
            }
        }
    }

    fn deliver_to_client(&mut self, job: JobId, msg: ToClient) {
        let graph = self.graphs[&job].clone();
        let client = self.clients.get_mut(&job).expect("a client");
        assert!(
            client.completed.is_none() || matches!(msg, ToClient::OutputsReady(_)),
            "{job}: {msg:?} after Completed"
        );
        assert!(client.failed.is_none(), "{job}: {msg:?} after Failed");
        match msg {
            ToClient::Accepted { tasks } => {
                assert!(client.accepted.is_none(), "{job} accepted twice");
                assert_eq!(tasks, graph.tasks.len());
                client.accepted = Some(tasks);
            }
            ToClient::OutputsReady(chunks) => {
                assert!(client.accepted.is_some());
                client.batches += 1;
                for c in chunks {
                    assert_eq!(
                        graph.outputs[c.output]
                            .iter()
                            .filter(|&&t| t == c.task)
                            .count(),
                        1
                    );
                    assert_eq!(c.block, graph.tasks[c.task as usize].block.to_vec());
                    assert!(
                        self.workers
                            .get(&c.worker)
                            .is_some_and(|w| w.store.contains(&(job, c.task))),
                        "output {job}/{} announced on {}, which does not hold it",
                        c.task,
                        c.worker
                    );
                    client.ready.insert(c.task, c.worker);
                    client.to_fetch.insert(c.task);
                }
            }
            ToClient::Progress(layers) => {
                assert!(client.accepted.is_some());
                // Totals cover the graph, counts never pass them and never go back.
                let total: u64 = layers.iter().map(|l| l.total).sum();
                assert_eq!(total, graph.tasks.len() as u64, "{job}: {layers:?}");
                for (i, l) in layers.iter().enumerate() {
                    assert!(l.done <= l.total, "{job}: {l:?}");
                    if let Some(before) = &client.progress {
                        assert_eq!(before[i].layer, l.layer);
                        assert!(
                            before[i].done <= l.done && before[i].bytes <= l.bytes,
                            "{job}: progress went back from {:?} to {l:?}",
                            before[i]
                        );
                    }
                }
                client.progress = Some(layers);
                client.progress_reports += 1;
            }
            ToClient::Completed { tasks_run } => {
                assert!(client.accepted.is_some());
                // The last report, just before, says every task is done.
                if !graph.tasks.is_empty() {
                    let last = client.progress.as_ref().expect("a progress report");
                    assert!(last.iter().all(|l| l.done == l.total), "{job}: {last:?}");
                }
                for ids in &graph.outputs {
                    for t in ids {
                        assert!(
                            client.ready.contains_key(t),
                            "{job} completed before output {t}"
                        );
                    }
                }
                client.completed = Some(tasks_run);
            }
            ToClient::Failed {
                key,
                worker,
                message,
            } => client.failed = Some((key, worker, message)),
        }
    }

    /// Takes the messages to one worker out of the outbox to look at them; they are delivered to the
    /// simulation all the same.
    fn take_worker(&mut self, w: WorkerId) -> Vec<ToWorker> {
        let msgs = self.out.take_worker(w);
        for m in &msgs {
            self.deliver_to_worker(w, m.clone());
        }
        msgs
    }

    /// Takes the messages to one job's client out of the outbox to look at them; they are delivered
    /// to the simulation all the same.
    fn take_client(&mut self, job: JobId) -> Vec<ToClient> {
        let msgs = self.out.take_client(job);
        for m in &msgs {
            self.deliver_to_client(job, m.clone());
        }
        msgs
    }

    // -- looking -----------------------------------------------------------------------------------

    fn queue(&self, w: WorkerId) -> Vec<(JobId, u32)> {
        self.workers[&w]
            .queue
            .iter()
            .map(|&(_, j, t)| (j, t))
            .collect()
    }

    fn in_flight(&self, w: WorkerId) -> usize {
        self.workers[&w].queue.len()
    }

    fn status(&self, job: JobId, task: u32) -> TaskStatus {
        self.state.task_status(job, task).expect("a task")
    }

    fn completed(&self, job: JobId) -> Option<u64> {
        self.clients[&job].completed
    }

    fn assert_quiet(&self) {
        assert!(self.out.is_empty(), "unexpected messages: {:?}", self.out);
    }
}

/// The tasks of an `Assign`.
fn assigned(msgs: &[ToWorker]) -> Vec<u32> {
    msgs.iter()
        .flat_map(|m| match m {
            ToWorker::Assign(a) => a.iter().map(|a| a.task).collect(),
            _ => Vec::new(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Stories

#[test]
fn a_reduction_runs_to_completion_on_two_workers() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    let graph = mean_graph();
    let n = graph.tasks.len();
    env.submit(J1, graph.clone());

    // Accepted, and each worker gets the graph and two leaves (two slots per thread).
    assert_eq!(env.take_client(J1), vec![ToClient::Accepted { tasks: n }]);
    for (w, tasks) in [(W1, vec![0, 2]), (W2, vec![1, 3])] {
        let msgs = env.take_worker(w);
        assert!(
            matches!(&msgs[0], ToWorker::Graph { job: J1, .. }),
            "{msgs:?}"
        );
        assert_eq!(assigned(&msgs), tasks);
        assert_eq!(msgs.len(), 2);
    }
    env.assert_quiet();

    env.run();
    assert_eq!(env.completed(J1), Some(n as u64));
    let c = &env.clients[&J1];
    assert_eq!(c.ready.len(), 1);
    assert!(c.to_fetch.is_empty());
    // Both workers did their share, and every chunk was released in the end.
    assert_eq!(env.workers[&W1].ran + env.workers[&W2].ran, n as u64);
    assert!(env.workers[&W1].ran >= 8 && env.workers[&W2].ran >= 8);
    for w in env.state.workers() {
        assert_eq!((w.chunks_held, w.bytes_held, w.running), (0, 0, 0), "{w:?}");
    }
    assert!(env.workers.values().all(|w| w.store.is_empty()));
    assert_eq!(env.state.stats().missing_inputs, 0);
    assert_eq!(env.state.stats().recomputed, 0);
}

#[test]
fn outputs_stream_as_they_finish_and_are_kept_until_fetched() {
    let mut env = TestEnv::with_workers(&[2, 2]);
    let graph = shared_output_graph();
    let n = graph.tasks.len();
    let outputs: BTreeSet<u32> = graph.outputs.iter().flatten().copied().collect();
    // The client fetches nothing until the end.
    env.submit_with(J1, graph.clone(), false);
    env.run();
    let c = &env.clients[&J1];
    assert_eq!(c.completed, Some(n as u64));
    // Announced over several messages as they finished, not all at the end.
    assert!(c.batches > 1, "{} OutputsReady messages", c.batches);
    assert_eq!(c.ready.keys().copied().collect::<BTreeSet<_>>(), outputs);
    // Everything but the outputs was released; the outputs are all still held.
    for t in 0..n as u32 {
        let expected = if outputs.contains(&t) {
            TaskStatus::Done
        } else {
            TaskStatus::Released
        };
        assert_eq!(env.status(J1, t), expected, "task {t}");
    }
    // The client fetches half of them: those are released at once (their reader, the mean, is
    // done); then the rest.
    let (first, rest): (Vec<u32>, Vec<u32>) = outputs.iter().partition(|&&t| t % 2 == 0);
    env.fetched(J1, &first);
    env.deliver();
    for &t in &first {
        assert_eq!(env.status(J1, t), TaskStatus::Released);
    }
    env.fetched(J1, &rest);
    env.deliver();
    assert!(env.workers.values().all(|w| w.store.is_empty()));
    // The client closes: both workers forget the job.
    env.cancel(J1);
    assert_eq!(env.take_worker(W1), vec![ToWorker::Forget(J1)]);
    assert_eq!(env.take_worker(W2), vec![ToWorker::Forget(J1)]);
    assert_eq!(env.state.num_jobs(), 0);
}

#[test]
fn combine_tasks_go_where_their_inputs_are() {
    // Three workers with room to spare, so locality alone decides.
    let mut env = TestEnv::with_workers(&[8, 8, 8]);
    let graph = mean_graph();
    let combine = graph.tasks.len() as u32 - 1;
    env.submit(J1, graph);
    env.deliver();
    // All 16 leaves are out: spread 6/5/5 by load.
    assert_eq!(
        [env.in_flight(W1), env.in_flight(W2), env.in_flight(W3)],
        [6, 5, 5]
    );
    // W2's leaves are big, the others' small: the combine goes to W2, although W1 and W3 are as
    // idle.
    for w in [W1, W3] {
        env.chunk_bytes = 10;
        while env.finish_next(w).is_some() {}
    }
    env.chunk_bytes = 10_000;
    while env.finish_next(W2).is_some() {}
    let msgs = env.take_worker(W2);
    assert_eq!(assigned(&msgs), vec![combine]);
    let ToWorker::Assign(a) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert_eq!(a[0].deps.len(), 16);
    // It is told where each input is.
    assert_eq!(a[0].deps[0].1, vec![W1]);
    assert_eq!(a[0].deps[1].1, vec![W2]);
    env.run();
    assert!(env.completed(J1).is_some());
}

#[test]
fn a_two_thread_worker_gets_twice_the_work_of_a_one_thread_worker() {
    let mut env = TestEnv::with_workers(&[1, 2]);
    let graph = map_graph(12);
    let n = graph.tasks.len() as u64;
    env.submit(J1, graph);
    env.deliver();
    // Slots: 2 and 4.
    assert_eq!((env.in_flight(W1), env.in_flight(W2)), (2, 4));
    // Each round the 2-thread worker runs two tasks, the other one.
    env.run();
    assert_eq!(env.completed(J1), Some(n));
    let (a, b) = (env.workers[&W1].ran, env.workers[&W2].ran);
    assert_eq!(a + b, n);
    assert!((2 * a).abs_diff(b) <= 2, "W1 ran {a}, W2 ran {b}");
}

#[test]
fn a_worker_is_topped_up_in_batches_and_never_over_its_slots() {
    let config = Config {
        slots_per_thread: 3,
        ..Config::default()
    };
    let mut env = TestEnv::with_config(config);
    env.submit(J1, map_graph(10));
    // No worker yet: nothing to assign, nothing sent but the acceptance.
    assert_eq!(env.take_client(J1), vec![ToClient::Accepted { tasks: 100 }]);
    env.join(W1, 2);
    env.deliver();
    assert_eq!(env.in_flight(W1), 6);
    // Results free slots, but nothing is sent until half the queue has drained; then it is filled
    // with the next tasks in order, in one message.
    for expected in [0, 1] {
        let (_, t) = env.finish_next(W1).unwrap();
        assert_eq!(t, expected);
        assert_eq!(assigned(&env.take_worker(W1)), Vec::<u32>::new());
    }
    assert_eq!(env.in_flight(W1), 4);
    env.finish_next(W1).unwrap();
    assert_eq!(assigned(&env.take_worker(W1)), vec![6, 7, 8]);
    assert_eq!(env.in_flight(W1), 6);
    // Never over, to the end (the sanity check asserts after every event that no worker at half
    // its queue or below is left waiting while tasks are ready).
    env.run_until(|env| {
        let f = env.in_flight(W1);
        assert!(f <= 6);
        false
    });
    assert_eq!(env.completed(J1), Some(100));
}

#[test]
fn short_tasks_deepen_a_worker_s_queue_and_long_ones_shrink_it_back() {
    let mut env = TestEnv::with_workers(&[2]);
    env.submit(J1, map_graph(40));
    env.deliver();
    // Nothing timed yet: two slots per thread.
    assert_eq!(env.in_flight(W1), 4);
    // 100 µs tasks: `queue_time` of work per thread (4 ms by default: 40 tasks) on each of 2.
    let queue = Config::default().queue_time;
    env.run_time = Duration::from_micros(100);
    env.finish_next(W1);
    env.deliver();
    assert_eq!(env.in_flight(W1), 2 * queue.as_micros() as usize / 100);
    assert!(env.in_flight(W1) > 4);
    // Tasks of a nanosecond stop at the ceiling of 256 per thread.
    env.run_time = Duration::from_nanos(1);
    let mut most = 0;
    for _ in 0..200 {
        env.finish_next(W1);
        env.deliver();
        most = most.max(env.in_flight(W1));
    }
    assert_eq!(most, 512);
    // 5 ms tasks: the average follows within a few dozen reports, no new work is handed out until
    // the queue has drained to the floor of two per thread, and it stays there.
    env.run_time = Duration::from_millis(5);
    let mut previous = env.in_flight(W1);
    while env.in_flight(W1) > 4 {
        env.finish_next(W1);
        env.deliver();
        let now = env.in_flight(W1);
        assert!(now <= previous, "the queue grew from {previous} to {now}");
        previous = now;
    }
    env.run_until(|env| {
        assert!(env.in_flight(W1) <= 4);
        false
    });
    assert_eq!(env.completed(J1), Some(1600));
}

#[test]
fn a_lost_worker_s_tasks_are_reassigned_and_its_chunks_recomputed_through_released_inputs() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    let graph = tree_graph(8, 4);
    let n = graph.tasks.len();
    env.submit(J1, graph.clone());
    // Run until W2 holds a combine result whose inputs were all released already, and has work in
    // flight.
    let found = env.run_until(|env| {
        env.in_flight(W2) > 0
            && (0..n as u32).any(|t| {
                env.status(J1, t) == TaskStatus::Done
                    && env.state.holders(J1, t) == vec![W2]
                    && !graph.tasks[t as usize].deps.is_empty()
                    && graph.tasks[t as usize]
                        .deps
                        .iter()
                        .all(|&d| env.status(J1, d) == TaskStatus::Released)
            })
    });
    assert!(found);
    let lost: Vec<u32> = (0..n as u32)
        .filter(|&t| env.status(J1, t) == TaskStatus::Done && env.state.holders(J1, t) == vec![W2])
        .collect();
    let in_flight = env.queue(W2);
    let ran_before = env.state.job_status(J1).unwrap().tasks_run;

    env.lose(W2);
    // W1 gets W2's running tasks back (as its slots allow); the lost chunks are needed again, and so
    // are their released inputs.
    for &t in &lost {
        assert!(env.status(J1, t).is_active(), "lost chunk {t}");
        for &d in &graph.tasks[t as usize].deps {
            assert_ne!(
                env.status(J1, d),
                TaskStatus::Released,
                "input {d} of lost {t}"
            );
        }
    }
    for &(_, t) in &in_flight {
        assert!(env.status(J1, t).is_active(), "in-flight task {t}");
    }
    assert!(env.state.stats().recomputed >= lost.len() as u64);
    env.run();
    let tasks_run = env.completed(J1).expect("completed");
    assert!(tasks_run > ran_before);
    assert!(tasks_run > n as u64, "some tasks ran twice");
    assert_eq!(env.workers[&W1].store.len(), 0);
}

#[test]
fn a_silent_worker_is_lost_at_the_heartbeat_timeout() {
    let config = Config {
        heartbeat_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let mut env = TestEnv::with_config(config);
    env.join(W1, 1);
    env.join(W2, 1);
    env.submit(J1, map_graph(4));
    env.deliver();
    assert_eq!(env.in_flight(W2), 2);

    env.advance(Duration::from_secs(6));
    env.heartbeat(W1);
    assert!(env.tick().is_empty(), "nobody is late yet");
    env.advance(Duration::from_secs(6));
    // W2 has been silent for 12 s, W1 for 6 s.
    assert_eq!(env.tick(), vec![W2]);
    assert!(!env.state.has_worker(W2));
    // W1 has no free slot for W2's tasks yet; they wait and go out as W1's slots free up.
    assert_eq!(env.status(J1, 1), TaskStatus::Ready);
    env.run();
    assert_eq!(env.completed(J1), Some(16));
    assert_eq!(env.workers[&W1].ran, 16);
    // A late report from the lost worker is ignored.
    let ignored = env.state.stats().ignored;
    env.report_done(W2, J1, 1, 8);
    assert_eq!(env.state.stats().ignored, ignored + 1);
    env.assert_quiet();
}

#[test]
fn a_deterministic_failure_fails_the_job_once_and_forgets_it_everywhere() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    let graph = tree_graph(4, 4);
    env.submit(J1, graph.clone());
    env.deliver();
    env.finish_next(W1);
    env.deliver();
    // W2's first task fails in the kernel.
    let &(_, t) = env.queue(W2).first().unwrap();
    env.workers.get_mut(&W2).unwrap().queue.clear();
    env.report_failed(W2, J1, t, "shape mismatch", None);
    assert_eq!(
        env.take_client(J1),
        vec![ToClient::Failed {
            key: graph.key(t).to_string(),
            worker: Some(W2),
            message: "shape mismatch".into(),
        }]
    );
    // Key looks like the engine's: `layer-token/(i, j)`.
    assert!(graph.key(t).to_string().contains("/("));
    for w in [W1, W2] {
        assert_eq!(env.take_worker(w), vec![ToWorker::Forget(J1)]);
    }
    assert!(!env.state.has_job(J1));
    assert!(env.state.workers().iter().all(|w| w.running == 0));
    // W1's result for its other in-flight task arrives late: ignored, nothing retried.
    env.report_done(W1, J1, 2, 8);
    env.report_failed(W1, J1, 2, "again", None);
    env.assert_quiet();
    assert_eq!(env.state.stats().ignored, 2);
    env.deliver();
    assert!(
        env.workers
            .values()
            .all(|w| w.store.is_empty() && w.graphs.is_empty())
    );
}

#[test]
fn a_missing_input_reschedules_instead_of_failing() {
    let mut env = TestEnv::with_workers(&[8, 8]);
    let graph = mean_graph();
    let combine = graph.tasks.len() as u32 - 1;
    env.submit(J1, graph);
    env.deliver();
    // All leaves run; W1's are bigger, so the combine goes to W1.
    env.chunk_bytes = 100;
    while env.finish_next(W2).is_some() {}
    env.chunk_bytes = 1000;
    while env.finish_next(W1).is_some() {}
    env.deliver();
    assert_eq!(env.queue(W1), vec![(J1, combine)]);
    // Leaf 1 (on W2) cannot be fetched: W2 lost it, though it is still connected.
    assert_eq!(env.state.holders(J1, 1), vec![W2]);
    let sw = env.workers.get_mut(&W2).unwrap();
    sw.store.remove(&(J1, 1));
    sw.vanished.insert((J1, 1));
    env.finish(W1, J1, combine);
    // W2 is told to drop it (in case it still has it); it is computed again on the idle W1 (the
    // lower id of two idle workers), and the combine waits for it.
    assert_eq!(env.take_worker(W2), vec![ToWorker::Release(vec![(J1, 1)])]);
    assert_eq!(assigned(&env.take_worker(W1)), vec![1]);
    assert_eq!(env.status(J1, combine), TaskStatus::Waiting);
    assert_eq!(env.state.stats().missing_inputs, 1);
    assert_eq!(env.state.stats().recomputed, 1);
    env.run();
    assert_eq!(env.completed(J1), Some(18));
    assert!(env.clients[&J1].failed.is_none());
}

#[test]
fn a_worker_joining_mid_run_gets_work_at_once() {
    let mut env = TestEnv::with_workers(&[1]);
    env.submit(J1, map_graph(5));
    env.deliver();
    env.finish_next(W1);
    env.finish_next(W1);
    env.deliver();
    assert_eq!(env.queue(W1), vec![(J1, 2), (J1, 3)]);
    env.join(W2, 2);
    let msgs = env.take_worker(W2);
    assert!(matches!(msgs[0], ToWorker::Graph { job: J1, .. }));
    assert_eq!(assigned(&msgs), vec![4, 5, 6, 7]);
    env.run();
    assert_eq!(env.completed(J1), Some(25));
    assert!(env.workers[&W2].ran > env.workers[&W1].ran);
}

#[test]
fn a_retiring_worker_hands_its_chunks_over_then_says_goodbye() {
    let mut env = TestEnv::with_workers(&[2, 2]);
    let graph = map_graph(4);
    // Outputs stay on the workers until the client fetches them, which it does only at the end.
    env.submit_with(J1, graph, false);
    env.deliver();
    env.finish_next(W2);
    env.finish_next(W2);
    env.deliver();
    let held: Vec<ChunkRef> = env.workers[&W2].store.iter().copied().collect();
    assert_eq!(held.len(), 2);
    let running = env.queue(W2);
    assert_eq!(running.len(), 4);

    env.retire(W2);
    // Each chunk only W2 holds is copied to W1; W2 still has tasks in flight, so no goodbye yet.
    let msgs = env.take_worker(W1);
    assert_eq!(
        msgs,
        held.iter()
            .map(|&(job, task)| ToWorker::Replicate {
                job,
                task,
                from: W2
            })
            .collect::<Vec<_>>()
    );
    env.assert_quiet();
    // W2 finishes what it has, gets nothing new, and hands those over too.
    while env.finish_next(W2).is_some() {
        env.deliver();
        assert!(env.workers[&W2].queue.len() < 4);
    }
    assert!(env.goodbyes.is_empty());
    env.run();
    assert_eq!(env.goodbyes, vec![W2]);
    assert!(!env.state.has_worker(W2));
    assert_eq!(env.completed(J1), Some(16));
    // Every output is on W1 now, and the client can have them all.
    let c = &env.clients[&J1];
    assert_eq!(c.ready.len(), 16);
    assert_eq!(env.workers[&W1].store.len(), 16);
    env.fetch_all(J1);
    env.deliver();
    assert!(env.workers[&W1].store.is_empty());
    assert_eq!(env.state.stats().recomputed, 0);
}

#[test]
fn the_last_worker_retires_at_once_and_its_work_is_redone_by_the_next() {
    let mut env = TestEnv::with_workers(&[1]);
    env.submit_with(J1, map_graph(2), false);
    env.deliver();
    env.finish_next(W1);
    env.deliver();
    env.retire(W1);
    // Nobody to hand anything to: goodbye now.
    assert_eq!(env.take_worker(W1), vec![ToWorker::Goodbye]);
    assert_eq!(env.status(J1, 0), TaskStatus::Ready);
    env.join(W2, 2);
    env.deliver();
    env.run();
    assert_eq!(env.completed(J1), Some(5));
}

#[test]
fn two_jobs_take_turns() {
    let mut env = TestEnv::new();
    env.submit(J1, map_graph(4));
    env.submit(J2, tree_graph(4, 4));
    env.join(W1, 2);
    env.take_client(J1);
    env.take_client(J2);
    let msgs = env.take_worker(W1);
    // Both graphs, then the first tasks of each job alternately.
    assert!(matches!(msgs[0], ToWorker::Graph { job: J1, .. }));
    assert!(matches!(msgs[1], ToWorker::Graph { job: J2, .. }));
    let ToWorker::Assign(a) = &msgs[2] else {
        panic!("{msgs:?}")
    };
    assert_eq!(
        a.iter().map(|a| (a.job, a.task)).collect::<Vec<_>>(),
        vec![(J1, 0), (J2, 0), (J1, 1), (J2, 1)]
    );
    // Both make progress together: when J1 completes, J2 has done a fair share too.
    env.run_until(|env| env.completed(J1).is_some());
    let j2 = env.state.job_status(J2).unwrap();
    assert!(j2.tasks_run >= 12, "{j2:?}");
    env.run();
    assert!(env.completed(J2).is_some());
}

#[test]
fn cancelling_a_job_forgets_it_and_frees_its_slots_for_the_next() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    env.submit(J1, map_graph(4));
    env.deliver();
    env.finish_next(W1);
    env.deliver();
    env.submit(J2, map_graph(2));
    env.deliver();
    // All four slots are J1's.
    assert!(
        env.queue(W1)
            .iter()
            .chain(&env.queue(W2))
            .all(|&(j, _)| j == J1)
    );
    env.cancel(J1);
    // Both workers forget J1 and take J2's tasks in the same breath.
    for w in [W1, W2] {
        let msgs = env.take_worker(w);
        assert_eq!(msgs[0], ToWorker::Forget(J1));
        assert!(matches!(msgs[1], ToWorker::Graph { job: J2, .. }));
        assert_eq!(assigned(&msgs).len(), 2);
    }
    env.deliver();
    assert!(!env.state.has_job(J1));
    env.run();
    assert_eq!(env.completed(J2), Some(4));
    // A late client close of J1 changes nothing.
    env.cancel(J1);
    env.assert_quiet();
}

#[test]
fn duplicate_stale_and_unknown_reports_are_ignored() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    let graph = mean_graph();
    env.submit(J1, graph.clone());
    env.deliver();
    env.finish(W1, J1, 0);
    env.deliver();
    let ignored = |env: &TestEnv| env.state.stats().ignored;

    // The same result again, from the same worker.
    env.report_done(W1, J1, 0, 1000);
    // A result from a worker that was never assigned the task.
    env.report_done(W2, J1, 0, 1000);
    env.report_done(W1, J1, 5, 1000);
    // Unknown worker, job, task.
    env.report_done(WorkerId(9), J1, 1, 1000);
    env.report_done(W1, JobId(9), 1, 1000);
    env.report_done(W1, J1, 10_000, 1000);
    env.report_failed(W1, JobId(9), 0, "x", None);
    env.report_failed(W1, J1, 10_000, "x", Some((J1, 0)));
    env.report_failed(W2, J1, 7, "x", None);
    env.fetched(JobId(9), &[0]);
    env.fetched(J1, &[0, 10_000]);
    env.cancel(JobId(9));
    on_worker_lost(&mut env.state, &mut env.out, env.now, WorkerId(9));
    on_heartbeat(
        &mut env.state,
        &mut env.out,
        env.now,
        WorkerId(9),
        WorkerMemory::default(),
    );
    on_worker_retiring(&mut env.state, &mut env.out, env.now, WorkerId(9));
    on_job_submitted(&mut env.state, &mut env.out, env.now, J1, graph);
    env.checked();
    env.assert_quiet();
    assert_eq!(ignored(&env), 17);
    assert_eq!(env.state.holders(J1, 0), vec![W1]);
    // Nothing was disturbed: the job runs to the end.
    env.run();
    assert_eq!(env.completed(J1), Some(17));
}

#[test]
fn a_replica_report_adds_a_holder() {
    // Replicas of an output reported twice, and a replica of a chunk nobody needs any more.
    let mut env = TestEnv::with_workers(&[1, 1]);
    env.submit_with(J1, map_graph(1), false);
    env.deliver();
    env.finish(W1, J1, 0);
    env.deliver();
    env.join(W3, 1);
    env.deliver();
    env.retire(W1);
    assert_eq!(
        env.take_worker(W2),
        vec![ToWorker::Replicate {
            job: J1,
            task: 0,
            from: W1
        }]
    );
    let r = env.workers.get_mut(&W2).unwrap().replicas.pop().unwrap();
    env.replicate(W2, r);
    assert_eq!(env.take_worker(W1), vec![ToWorker::Goodbye]);
    // The client is told the output's new place.
    let msgs = env.take_client(J1);
    assert!(
        matches!(&msgs[..], [ToClient::OutputsReady(c)] if c[0].worker == W2),
        "{msgs:?}"
    );
    env.deliver();
    assert_eq!(env.state.holders(J1, 0), vec![W2]);
    // The same replica report again: nothing happens.
    env.report_done(W2, J1, 0, 1000);
    env.assert_quiet();
    assert_eq!(env.state.holders(J1, 0), vec![W2]);
}

#[test]
fn a_job_of_ten_thousand_tasks_runs_through_the_core() {
    let mut env = TestEnv::with_workers(&[4, 4, 4, 4]);
    // A tree reduction over 100 × 100 chunks: 10,000 leaves and their combines.
    let graph = tree_graph(100, 16);
    let n = graph.tasks.len();
    assert!(n > 10_000, "{n} tasks");
    env.check = false;
    env.submit(J1, graph);
    env.run();
    env.state.sanity_check();
    assert_eq!(env.completed(J1), Some(n as u64));
    assert!(env.workers.values().all(|w| w.store.is_empty()));
}

/// A tiny deterministic generator for the chaos test.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn chaos_workers_come_go_and_retire_and_every_job_still_completes() {
    let mut total = Stats::default();
    for seed in 0..12 {
        let mut env = TestEnv::with_workers(&[1, 2, 1]);
        let mut rng = Lcg(seed);
        env.submit(J1, tree_graph(6, 3));
        env.submit_with(J2, shared_output_graph(), seed % 2 == 0);
        let mut next_id = 10;
        let mut steps = 0;
        while env.completed(J1).is_none() || env.completed(J2).is_none() {
            steps += 1;
            assert!(steps < 20_000, "seed {seed}: no end");
            env.deliver();
            let live: Vec<WorkerId> = env.workers.keys().copied().collect();
            match rng.next(40) {
                0 if live.len() > 1 => env.lose(live[rng.next(live.len())]),
                1 if live.len() < 6 => {
                    env.join(WorkerId(next_id), 1 + rng.next(3) as u32);
                    next_id += 1;
                }
                2 if live.len() > 1 => env.retire(live[rng.next(live.len())]),
                3 => {
                    let c = &env.clients[&J2];
                    if !c.to_fetch.is_empty() {
                        env.fetch_all(J2);
                    }
                }
                5 => env.progress_due(),
                4 if !live.is_empty() => {
                    // A report nobody asked for (a duplicate, or a confused worker): ignored.
                    let w = live[rng.next(live.len())];
                    let t = rng.next(env.graphs[&J1].tasks.len()) as u32;
                    let sw = &env.workers[&w];
                    let asked = sw.queue.iter().any(|&(_, j, x)| (j, x) == (J1, t))
                        || sw.replicas.iter().any(|&(j, x, _)| (j, x) == (J1, t));
                    if !asked {
                        let ignored = env.state.stats().ignored;
                        env.report_done(w, J1, t, 1);
                        assert_eq!(env.state.stats().ignored, ignored + 1);
                    }
                }
                _ => {
                    // Some worker makes progress: a replication or a task.
                    if live.is_empty() {
                        env.join(WorkerId(next_id), 2);
                        next_id += 1;
                        continue;
                    }
                    let w = live[rng.next(live.len())];
                    if let Some(r) = env.workers.get_mut(&w).and_then(|sw| sw.replicas.pop()) {
                        env.replicate(w, r);
                    } else {
                        env.finish_next(w);
                    }
                }
            }
        }
        // The clients fetch everything (outputs lost after `Completed` are announced again).
        for job in [J1, J2] {
            env.clients.get_mut(&job).unwrap().auto_fetch = true;
        }
        if env.workers.is_empty() {
            env.join(WorkerId(next_id), 1);
        }
        env.run();
        for job in [J1, J2] {
            assert!(env.clients[&job].failed.is_none());
            assert!(env.clients[&job].to_fetch.is_empty(), "seed {seed}");
        }
        // Everything fetched: nothing is held anywhere.
        assert!(
            env.workers.values().all(|w| w.store.is_empty()),
            "seed {seed}"
        );
        env.cancel(J1);
        env.cancel(J2);
        env.deliver();
        let s = env.state.stats();
        total.recomputed += s.recomputed;
        total.missing_inputs += s.missing_inputs;
        total.replications += s.replications;
        total.workers_lost += s.workers_lost;
    }
    // The stories above did happen along the way.
    assert!(total.workers_lost >= 12, "{total:?}");
    assert!(total.recomputed > 0, "{total:?}");
    assert!(total.missing_inputs > 0, "{total:?}");
    assert!(total.replications > 0, "{total:?}");
}

#[test]
fn progress_is_reported_per_layer_when_due_and_only_when_it_moved() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    env.chunk_bytes = 800;
    let graph = mean_graph();
    let n = graph.tasks.len() as u64;
    env.submit(J1, graph.clone());
    env.deliver();
    // Nothing has run: nothing to report, however often the timer fires.
    env.progress_due();
    env.progress_due();
    env.assert_quiet();
    assert_eq!(env.clients[&J1].progress_reports, 0);
    // Three leaves finish: one report for all three, none on the next tick.
    for w in [W1, W2, W1] {
        env.finish_next(w).expect("a task");
        env.deliver();
    }
    env.progress_due();
    env.deliver();
    env.progress_due();
    env.assert_quiet();
    let c = &env.clients[&J1];
    assert_eq!(c.progress_reports, 1);
    let layers = c.progress.clone().expect("a report");
    // The leaves' layer (random fused with the partial sums) and the combine, each named by its id.
    let want: Vec<(String, u64)> = {
        let mut per_layer = BTreeMap::new();
        for t in &graph.tasks {
            *per_layer.entry(t.layer).or_insert(0u64) += 1;
        }
        per_layer
            .into_iter()
            .map(|(l, k)| (graph.graph.layers()[l as usize].id.to_string(), k))
            .collect()
    };
    let got: Vec<(String, u64)> = layers.iter().map(|l| (l.layer.clone(), l.total)).collect();
    assert_eq!(got, want);
    assert_eq!(layers[0].done, 3);
    assert_eq!(layers[0].bytes, 3 * 800);
    assert_eq!(layers.iter().skip(1).map(|l| l.done).sum::<u64>(), 0);
    // The rest runs without the timer: the last counts still arrive, just before Completed.
    env.run();
    assert_eq!(env.completed(J1), Some(n));
    let c = &env.clients[&J1];
    assert_eq!(c.progress_reports, 2);
    let last = c.progress.as_ref().expect("a report");
    assert_eq!(last.iter().map(|l| l.done).sum::<u64>(), n);
    assert_eq!(last.iter().map(|l| l.bytes).sum::<u64>(), n * 800);
    // A finished job reports nothing more.
    env.progress_due();
    env.assert_quiet();
}

#[test]
fn a_recomputed_task_is_not_counted_twice() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    let graph = mean_graph();
    let n = graph.tasks.len() as u64;
    env.submit(J1, graph);
    // Every leaf but the combine runs; then a worker holding leaves dies and they are recomputed.
    env.run_until(|e| e.workers.values().map(|w| w.ran).sum::<u64>() >= n - 1);
    env.progress_due();
    env.deliver();
    let before = env.clients[&J1].progress.clone().expect("a report");
    assert_eq!(before.iter().map(|l| l.done).sum::<u64>(), n - 1);
    env.lose(W1);
    env.run();
    assert_eq!(
        env.completed(J1).map(|r| r > n),
        Some(true),
        "reruns happened"
    );
    let last = env.clients[&J1].progress.clone().expect("a report");
    assert_eq!(last.iter().map(|l| l.done).sum::<u64>(), n);
}

#[test]
fn an_empty_job_completes_at_once() {
    let mut env = TestEnv::with_workers(&[1]);
    // A graph with no outputs.
    let graph = expand(tessera::Graph::new(Vec::new(), Vec::new()));
    assert_eq!(graph.tasks.len(), 0);
    env.submit(J1, graph);
    assert_eq!(
        env.take_client(J1),
        vec![
            ToClient::Accepted { tasks: 0 },
            ToClient::Completed { tasks_run: 0 }
        ]
    );
    env.assert_quiet();
}

// ---------------------------------------------------------------------------------------------------
// Memory.

/// Every chunk of the graphs below is 10 × 10 float64: 800 bytes.
const CHUNK: u64 = 800;

/// The peak bytes the scheduler books for each task of `map_graph(4)` (output, tile buffers), and a
/// limit with room for three and a half of them.
fn map_need() -> (u64, u64) {
    let need = tessera::graph::estimate::task_bytes(&map_graph(4), 0);
    (need, 3 * need + need / 2)
}

#[test]
fn tasks_go_only_where_their_bytes_fit_under_the_limit_less_held_and_queued() {
    let (need, limit) = map_need();
    let mut env = TestEnv::new();
    env.memory_limit = limit;
    // Each finished chunk is as large as its booking.
    env.chunk_bytes = need;
    env.join(W1, 8);
    env.deliver();
    env.submit(J1, map_graph(4));
    env.deliver();
    // Sixteen slots, but room for three tasks.
    assert_eq!(env.in_flight(W1), 3);
    let done = env.run_until(|e| {
        let w = &e.state.workers()[0];
        // More than one task in flight only if all fit with what the worker holds.
        assert!(
            w.running <= 1 || w.bytes_held + w.queued_bytes <= limit,
            "{w:?}"
        );
        e.completed(J1).is_some()
    });
    assert!(done, "the job did not complete");
}

#[test]
fn a_full_worker_runs_one_task_at_a_time_until_it_reports_spilling_or_pausing_ends() {
    let (need, limit) = map_need();
    let mut env = TestEnv::new();
    env.memory_limit = limit;
    env.chunk_bytes = need;
    env.join(W1, 8);
    env.deliver();
    // Outputs are not fetched, so the worker keeps holding them.
    env.submit_with(J1, map_graph(4), false);
    env.deliver();
    for _ in 0..3 {
        env.finish_next(W1).expect("a task");
        env.deliver();
    }
    // Three held: nothing fits beside another task, but an idle worker takes one (it spills).
    assert_eq!(env.in_flight(W1), 1);
    env.finish_next(W1).expect("a task");
    env.deliver();
    assert_eq!(env.in_flight(W1), 1);
    // The worker says it wrote four chunks to disk: room for three again.
    on_heartbeat(
        &mut env.state,
        &mut env.out,
        env.now,
        W1,
        WorkerMemory {
            bytes_spilled: 4 * need,
            ..WorkerMemory::default()
        },
    );
    env.checked();
    env.deliver();
    assert_eq!(env.in_flight(W1), 3);
    // Paused: nothing more while it has work, though the books say there is room.
    env.finish_next(W1).expect("a task");
    on_heartbeat(
        &mut env.state,
        &mut env.out,
        env.now,
        W1,
        WorkerMemory {
            bytes_spilled: 8 * need,
            paused: true,
            ..WorkerMemory::default()
        },
    );
    env.checked();
    env.deliver();
    let before = env.in_flight(W1);
    env.finish_next(W1).expect("a task");
    env.deliver();
    assert_eq!(
        env.in_flight(W1),
        before - 1,
        "a paused worker was given work"
    );
    assert!(env.state.workers()[0].memory.paused);
}

/// The order in which the tasks of `held_then_read_graph` complete on one worker with `limit`.
fn completion_order(limit: u64) -> Vec<u32> {
    let mut env = TestEnv::new();
    env.memory_limit = limit;
    env.chunk_bytes = CHUNK;
    env.join(W1, 1);
    env.deliver();
    env.submit_with(J1, held_then_read_graph(), false);
    env.deliver();
    let mut order = Vec::new();
    while let Some((_, t)) = env.finish_next(W1) {
        order.push(t);
        env.deliver();
    }
    assert_eq!(order.len(), 48, "every task ran");
    order
}

#[test]
fn when_memory_is_short_tasks_reading_held_chunks_go_before_sources() {
    let last = |order: &[u32], range: std::ops::Range<u32>| {
        order.iter().rposition(|t| range.contains(t)).unwrap()
    };
    // Plenty of memory: lowest index first, so every source of `y` before any transpose.
    let roomy = completion_order(1 << 30);
    assert!(last(&roomy, 16..32) < last(&roomy, 32..48), "{roomy:?}");
    // 20000 bytes, short past 12000: once `x` is held, the transposes that read it go first.
    let short = completion_order(20_000);
    assert!(last(&short, 32..48) < last(&short, 16..32), "{short:?}");
}

#[test]
fn memory_stays_short_while_spilled_chunks_wait_so_readers_still_go_before_sources() {
    // 20000 bytes again, but after every task the worker reports it spilled all it holds: its
    // memory is nearly empty, yet the spilled chunks of `x` are still live, so the transposes that
    // read them go before the sources of `y` (which would only push more of `x` to disk).
    let mut env = TestEnv::new();
    env.memory_limit = 20_000;
    env.chunk_bytes = CHUNK;
    env.join(W1, 1);
    env.deliver();
    env.submit_with(J1, held_then_read_graph(), false);
    env.deliver();
    let mut order = Vec::new();
    while let Some((_, t)) = env.finish_next(W1) {
        order.push(t);
        let held = env.state.workers()[0].bytes_held;
        on_heartbeat(
            &mut env.state,
            &mut env.out,
            env.now,
            W1,
            WorkerMemory {
                bytes_spilled: held,
                ..WorkerMemory::default()
            },
        );
        env.checked();
        env.deliver();
    }
    assert_eq!(order.len(), 48, "every task ran");
    // With plenty of memory every source of `y` runs before any transpose; here all but the last
    // transpose run before the first source (measured: 15 of 16).
    let first_source = order.iter().position(|t| (16..32).contains(t)).unwrap();
    let readers_before = order[..first_source]
        .iter()
        .filter(|t| (32..48).contains(*t))
        .count();
    assert!(readers_before >= 15, "{order:?}");
}

#[test]
fn layer_progress_and_task_counts_follow_the_tasks() {
    let mut env = TestEnv::with_workers(&[1, 1]);
    let graph = mean_graph();
    let n = graph.tasks.len() as u64;
    // The oracle: tasks per layer straight from the expanded graph.
    let mut per_layer = vec![0u64; graph.graph.layers().len()];
    for t in &graph.tasks {
        per_layer[t.layer as usize] += 1;
    }
    env.submit(J1, graph.clone());
    let before = env.state.job_layer_progress(J1).unwrap();
    assert_eq!(
        before.iter().map(|l| l.tasks).collect::<Vec<_>>(),
        per_layer
    );
    assert_eq!(before.iter().map(|l| l.done).sum::<u64>(), 0);
    // Two leaves per worker were assigned: four running, the rest waiting or ready.
    assert_eq!(before.iter().map(|l| l.running).sum::<u64>(), 4);
    let counts = env.state.task_counts();
    assert_eq!(counts[2], 4);
    assert_eq!(counts.iter().sum::<u64>(), n);

    env.run();
    let after = env.state.job_layer_progress(J1).unwrap();
    assert!(
        after.iter().all(|l| l.done == l.tasks && l.running == 0),
        "{after:?}"
    );
    assert_eq!(env.state.task_counts()[..3], [0, 0, 0]);
    assert_eq!(env.state.job_ids(), vec![J1]);
    assert_eq!(env.state.job_layer_progress(JobId(999)), None);
}

#[test]
fn a_kept_jobs_chunks_are_read_where_they_are_waited_for_when_lost_and_refused_once_released() {
    let mut env = TestEnv::with_workers(&[4, 4]);
    // J1 is kept (persisted): its client never fetches, so its outputs stay pinned after it
    // completes.
    let kept = map_graph(2);
    let outputs = kept.outputs[0].clone();
    env.submit_with(J1, kept, false);
    env.run();
    assert!(env.clients[&J1].completed.is_some());
    for &t in &outputs {
        assert_eq!(env.state.task_status(J1, t), Some(TaskStatus::Done));
    }
    let on_w1: Vec<u32> = outputs
        .iter()
        .copied()
        .filter(|&t| env.state.holders(J1, t) == vec![W1])
        .collect();
    assert!(
        !on_w1.is_empty() && on_w1.len() < outputs.len(),
        "both workers hold some"
    );

    // W1 dies: its kept chunks go back to be recomputed from J1's graph, on W2.
    env.lose(W1);
    for &t in &on_w1 {
        assert_ne!(env.state.task_status(J1, t), Some(TaskStatus::Done));
    }
    // J2 reads every kept chunk: task i copies output i. The ones still held go to W2 at once;
    // the lost ones wait for their recomputation.
    let reader = map_graph(2);
    let reads: Vec<(u32, ChunkRef)> = (0..4).map(|i| (i, (J1, outputs[i as usize]))).collect();
    env.submit_reading(J2, reader, reads.clone());
    let assigned: Vec<Assignment> = env
        .out
        .workers
        .iter()
        .filter_map(|(_, m)| match m {
            ToWorker::Assign(a) => Some(a.clone()),
            _ => None,
        })
        .flatten()
        .filter(|a| a.job == J2)
        .collect();
    assert_eq!(
        assigned.len(),
        4 - on_w1.len(),
        "the reads of held chunks go out at once, past the waiting ones: {assigned:?}"
    );
    for a in &assigned {
        let (kept, holders) = a.reads.clone().expect("a reading task says what it reads");
        assert_eq!(kept, reads[a.task as usize].1);
        assert_eq!(holders, vec![W2]);
        assert!(
            !on_w1.contains(&kept.1),
            "{a:?} was placed before its chunk was back"
        );
    }
    env.run();
    assert!(
        env.clients[&J2].completed.is_some(),
        "{:?}",
        env.clients[&J2]
    );
    // The kept job is still kept, whole, on W2.
    for &t in &outputs {
        assert_eq!(env.state.holders(J1, t), vec![W2]);
    }

    // Released (the client let go of J1): a job that reads it fails, saying so.
    env.cancel(J1);
    env.deliver();
    env.submit_reading(JobId(3), map_graph(2), reads);
    env.deliver();
    let (key, worker, message) = env.clients[&JobId(3)].failed.clone().expect("failed");
    assert_eq!((key.as_str(), worker), ("", None));
    assert!(
        message.contains("persisted job") && message.contains("released"),
        "{message}"
    );
    assert!(message.contains("layer "), "{message}");
    assert_eq!(env.state.num_jobs(), 1, "only J2 is left");
}

#[test]
fn a_finished_job_leaves_no_per_task_state_in_the_core() {
    // What the core keeps per task is 12 bytes; holders and runners live in maps of what is held
    // and in flight.
    assert_eq!(std::mem::size_of::<state::TaskState>(), 12);
    let mut env = TestEnv::with_workers(&[2, 1]);
    assert_eq!(env.state.footprint(), Footprint::default());
    // A tree reduction that loses a worker midway (chunks recomputed through released inputs),
    // next to a map whose outputs the client fetches only at the end.
    let tree = tree_graph(8, 4);
    let map = map_graph(4);
    let (n1, n2) = (tree.tasks.len(), map.tasks.len());
    env.submit(J1, tree);
    env.submit_with(J2, map, false);
    let mid = env.run_until(|e| {
        e.state
            .workers()
            .iter()
            .any(|w| w.id == W2 && w.chunks_held > 0)
    });
    assert!(mid, "W2 never held a chunk");
    let during = env.state.footprint();
    assert!(during.chunks > 0 && during.worker_entries > 0, "{during:?}");
    env.lose(W2);
    env.join(W3, 1);
    env.run();
    assert_eq!(
        env.completed(J1),
        Some(env.state.job_status(J1).unwrap().tasks_run)
    );
    assert!(env.state.stats().recomputed > 0 || env.state.stats().assigned > (n1 + n2) as u64);
    // Completed, the map's outputs not fetched: those chunks are all that is kept beyond the arrays.
    let f = env.state.footprint();
    assert_eq!(
        (f.jobs, f.tasks, f.chunks, f.running),
        (2, n1 + n2, 16, 0),
        "{f:?}"
    );
    assert_eq!(f.worker_entries, 16, "{f:?}");
    env.fetch_all(J2);
    env.deliver();
    let f = env.state.footprint();
    assert_eq!((f.chunks, f.running, f.worker_entries), (0, 0, 0), "{f:?}");
    // The clients close: nothing of either job is left, on the jobs' side or the workers'.
    env.cancel(J1);
    env.cancel(J2);
    env.deliver();
    assert_eq!(env.state.footprint(), Footprint::default());

    // A job that fails leaves nothing either.
    env.submit(J1, tree_graph(4, 4));
    env.deliver();
    let &(_, t) = env.queue(W1).first().unwrap();
    env.workers.get_mut(&W1).unwrap().queue.clear();
    env.report_failed(W1, J1, t, "shape mismatch", None);
    env.take_client(J1);
    env.deliver();
    assert_eq!(env.state.footprint(), Footprint::default());
}
