//! What the dashboard shows that the core does not keep: the history. The actor feeds a [`Recorder`]
//! with the events it applies (tasks reported, jobs submitted and ended, worker heartbeats) and asks
//! it for a [`Snapshot`] together with the core's current state. It keeps the last minute of tasks
//! (the task stream) bounded by a length, counters and a histogram of task run times since start
//! (`/metrics`), tasks and bytes per second over the last minute (throughput), each worker's CPU rate
//! (from the process CPU time in its heartbeats), and the final progress of recently ended jobs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::graph::expand::TaskGraph;

use super::snapshot::{
    Counters, Histogram, JobState, JobView, LayerView, Snapshot, TaskRecord, WorkerView,
};
use crate::core::{JobId, LayerProgress, State, WorkerId};

/// The task stream and the throughput cover this much time.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Ended jobs kept for the dashboard (the newest).
const ENDED_JOBS: usize = 10;
/// Layer rows kept per ended job: the first ones with tasks, then one row summing the rest. A job of
/// 100,000 layers would otherwise keep 100,000 names and counts (about 7 MB) for as long as it is
/// among the last ended jobs, when the scheduler should be back to its idle size.
const ENDED_LAYER_ROWS: usize = 64;

/// The task stream's buffer is not shrunk below this many records (growing it back from nothing
/// at every burst would cost more than the 7 KB it keeps).
const STREAM_MIN_CAPACITY: usize = 128;

/// Upper bounds of the task run-time histogram's buckets, in seconds (Prometheus' `le`): from 10 µs
/// (an elementwise kernel on a small chunk) to 100 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    1e-5,
    3e-5,
    1e-4,
    3e-4,
    1e-3,
    3e-3,
    0.01,
    0.03,
    0.1,
    0.3,
    1.0,
    3.0,
    10.0,
    30.0,
    100.0,
    f64::INFINITY,
];

struct JobRecord {
    submitted: Instant,
    /// Emptied when the job ends (its rows are kept instead).
    layer_names: Vec<Arc<str>>,
    tasks: u64,
    /// `None` while the job is in the core (its progress is read from there); then its final rows,
    /// at most [`ENDED_LAYER_ROWS`].
    ended: Option<(JobState, Vec<LayerView>)>,
}

/// The dashboard's rows of a job: its layers that have tasks, with their progress; past `max` rows,
/// the first `max - 1` and one row summing the rest, saying how many layers it stands for.
fn layer_rows(names: &[Arc<str>], progress: Vec<LayerProgress>, max: usize) -> Vec<LayerView> {
    let mut rows: Vec<LayerView> = names
        .iter()
        .zip(progress)
        .filter(|(_, p)| p.tasks > 0)
        .map(|(name, p)| LayerView {
            name: name.clone(),
            tasks: p.tasks,
            done: p.done,
            running: p.running,
        })
        .collect();
    if rows.len() > max.max(1) {
        let rest = rows.split_off(max.max(1) - 1);
        rows.push(LayerView {
            name: Arc::from(format!("{} more layers", rest.len())),
            tasks: rest.iter().map(|r| r.tasks).sum(),
            done: rest.iter().map(|r| r.done).sum(),
            running: rest.iter().map(|r| r.running).sum(),
        });
    }
    rows.shrink_to_fit();
    rows
}

struct Cpu {
    at: Instant,
    nanos: u64,
    /// Cores in use between the last two heartbeats.
    rate: Option<f64>,
}

/// The dashboard's history, owned by the actor.
pub struct Recorder {
    started: Instant,
    /// Most tasks kept in the stream (a limit: `--dashboard-task-stream`).
    stream_len: usize,
    seq: u64,
    stream: VecDeque<TaskRecord>,
    histogram: Histogram,
    counters: Counters,
    /// Per second since start: tasks finished, bytes transferred.
    per_second: VecDeque<(u64, u64, u64)>,
    cpu: HashMap<WorkerId, Cpu>,
    jobs: BTreeMap<JobId, JobRecord>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stream", &self.stream.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl Recorder {
    pub fn new(now: Instant, stream_len: usize) -> Recorder {
        Recorder {
            started: now,
            stream_len,
            seq: 0,
            stream: VecDeque::new(),
            histogram: Histogram::new(&DURATION_BUCKETS),
            counters: Counters::default(),
            per_second: VecDeque::new(),
            cpu: HashMap::new(),
            jobs: BTreeMap::new(),
        }
    }

    fn millis(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64() * 1e3
    }

    pub fn job_submitted(&mut self, now: Instant, job: JobId, graph: &TaskGraph) {
        self.counters.jobs_submitted += 1;
        let layer_names = graph
            .graph
            .layers()
            .iter()
            .enumerate()
            .map(|(i, l)| Arc::from(format!("{}#{i}", l.op.name())))
            .collect();
        self.jobs.insert(
            job,
            JobRecord {
                submitted: now,
                layer_names,
                tasks: graph.tasks.len() as u64,
                ended: None,
            },
        );
    }

    /// The job left the core (`progress`: its last per-layer progress, `None` when the core had
    /// already dropped it, which it does when a task fails).
    pub fn job_ended(&mut self, job: JobId, state: JobState, progress: Option<Vec<LayerProgress>>) {
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        if record.ended.is_some() {
            return;
        }
        match state {
            JobState::Completed => self.counters.jobs_completed += 1,
            JobState::Failed => self.counters.jobs_failed += 1,
            JobState::Cancelled => self.counters.jobs_cancelled += 1,
            JobState::Running => {}
        }
        let progress =
            progress.unwrap_or_else(|| vec![LayerProgress::default(); record.layer_names.len()]);
        let names = std::mem::take(&mut record.layer_names);
        record.ended = Some((state, layer_rows(&names, progress, ENDED_LAYER_ROWS)));
        let ended: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, r)| r.ended.is_some())
            .map(|(&id, _)| id)
            .collect();
        if ended.len() > ENDED_JOBS {
            let mut by_age: Vec<(Instant, JobId)> = ended
                .iter()
                .map(|id| (self.jobs[id].submitted, *id))
                .collect();
            by_age.sort();
            for (_, id) in &by_age[..ended.len() - ENDED_JOBS] {
                self.jobs.remove(id);
            }
        }
    }

    /// A task a worker reported done. `thread` 0 is a replica (copied, not run).
    #[allow(clippy::too_many_arguments)]
    pub fn task_done(
        &mut self,
        now: Instant,
        worker: WorkerId,
        thread: u32,
        job: JobId,
        layer: u32,
        run_nanos: u64,
        fetched_bytes: u64,
    ) {
        self.counters.transfer_bytes += fetched_bytes;
        if thread == 0 {
            self.counters.replicas += 1;
            self.count_second(now, 0, fetched_bytes);
            return;
        }
        self.counters.tasks_done += 1;
        let seconds = run_nanos as f64 / 1e9;
        self.histogram.observe(seconds);
        self.count_second(now, 1, fetched_bytes);
        let layer_name = self
            .jobs
            .get(&job)
            .and_then(|r| r.layer_names.get(layer as usize).cloned())
            .unwrap_or_else(|| Arc::from(format!("layer#{layer}")));
        self.seq += 1;
        let end = self.millis(now);
        self.stream.push_back(TaskRecord {
            seq: self.seq,
            worker: worker.0,
            thread,
            job: job.0,
            layer: layer_name,
            // The report's arrival stands for the end: the kernel ended at most one result batch
            // earlier.
            start_ms: (end - seconds * 1e3).max(0.0),
            end_ms: end,
        });
        while self.stream.len() > self.stream_len {
            self.stream.pop_front();
        }
        self.trim(now);
    }

    pub fn task_failed(&mut self) {
        self.counters.tasks_failed += 1;
    }

    fn count_second(&mut self, now: Instant, tasks: u64, bytes: u64) {
        let second = now.saturating_duration_since(self.started).as_secs();
        match self.per_second.back_mut() {
            Some((s, t, b)) if *s == second => {
                *t += tasks;
                *b += bytes;
            }
            _ => self.per_second.push_back((second, tasks, bytes)),
        }
    }

    /// Drops what is older than the window. The stream's buffer shrinks once it is mostly empty:
    /// a burst of tasks grows it to its length limit (about 1.8 MB for 20,000 records), which
    /// would otherwise stay allocated (and resident) while the scheduler is idle.
    pub fn trim(&mut self, now: Instant) {
        let horizon = self.millis(now) - WINDOW.as_secs_f64() * 1e3;
        while self.stream.front().is_some_and(|t| t.end_ms < horizon) {
            self.stream.pop_front();
        }
        if self.stream.capacity() > 4 * self.stream.len().max(STREAM_MIN_CAPACITY) {
            self.stream
                .shrink_to(2 * self.stream.len().max(STREAM_MIN_CAPACITY));
        }
        let second = now.saturating_duration_since(self.started).as_secs();
        while self
            .per_second
            .front()
            .is_some_and(|(s, _, _)| s + WINDOW.as_secs() < second)
        {
            self.per_second.pop_front();
        }
    }

    /// A heartbeat's process CPU time (0: the worker does not measure it).
    pub fn heartbeat(&mut self, now: Instant, worker: WorkerId, cpu_nanos: u64) {
        if cpu_nanos == 0 {
            return;
        }
        let rate = self.cpu.get(&worker).and_then(|prev| {
            let wall = now.saturating_duration_since(prev.at).as_nanos() as f64;
            (wall > 0.0 && cpu_nanos >= prev.nanos).then(|| (cpu_nanos - prev.nanos) as f64 / wall)
        });
        self.cpu.insert(
            worker,
            Cpu {
                at: now,
                nanos: cpu_nanos,
                rate,
            },
        );
    }

    pub fn worker_gone(&mut self, worker: WorkerId) {
        self.cpu.remove(&worker);
    }

    /// The dashboard's view now: the core's workers and jobs with this history. `since`: only tasks
    /// of the stream after this sequence number (0: the whole window; `u64::MAX`: none).
    pub fn snapshot(
        &mut self,
        now: Instant,
        core: &State,
        addresses: &dyn Fn(WorkerId) -> String,
        since: u64,
    ) -> Snapshot {
        self.trim(now);
        // Jobs the core dropped without the actor seeing them end (a failed task drops the job at
        // once; its client's stream closes later).
        let gone: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(id, r)| r.ended.is_none() && !core.has_job(**id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.job_ended(id, JobState::Failed, None);
        }
        let workers = core
            .workers()
            .into_iter()
            .map(|w| WorkerView {
                id: w.id.0,
                address: addresses(w.id),
                threads: w.threads,
                running: w.running,
                chunks_held: w.chunks_held,
                bytes_held: w.bytes_held,
                reported_bytes: w.reported_bytes,
                memory_limit: w.memory_limit,
                bytes_running: w.memory.bytes_running,
                bytes_spilled: w.memory.bytes_spilled,
                paused: w.memory.paused,
                retiring: w.retiring,
                cpu: self.cpu.get(&w.id).and_then(|c| c.rate),
            })
            .collect();
        // Newest first (ids are random: order by submission).
        let mut by_age: Vec<(&JobId, &JobRecord)> = self.jobs.iter().collect();
        by_age.sort_by_key(|(_, r)| std::cmp::Reverse(r.submitted));
        let jobs = by_age
            .into_iter()
            .map(|(&id, r)| {
                let (state, layers) = match &r.ended {
                    Some((state, rows)) => (*state, rows.clone()),
                    None => {
                        let progress = core.job_layer_progress(id).unwrap_or_default();
                        let completed = core.job_status(id).is_some_and(|s| s.completed);
                        let state = if completed {
                            JobState::Completed
                        } else {
                            JobState::Running
                        };
                        (state, layer_rows(&r.layer_names, progress, usize::MAX))
                    }
                };
                JobView {
                    id: id.0,
                    state,
                    tasks: r.tasks,
                    done: layers.iter().map(|l| l.done).sum(),
                    age_seconds: now.saturating_duration_since(r.submitted).as_secs_f64(),
                    layers,
                }
            })
            .collect();
        let second = now.saturating_duration_since(self.started).as_secs();
        // Seconds before the scheduler started count as empty.
        let throughput = (0..WINDOW.as_secs())
            .map(|i| second.checked_sub(WINDOW.as_secs() - 1 - i))
            .map(|s| {
                self.per_second
                    .iter()
                    .find(|(t, _, _)| Some(*t) == s)
                    .map_or((0, 0), |&(_, tasks, bytes)| (tasks, bytes))
            })
            .collect();
        Snapshot {
            now_ms: self.millis(now),
            cursor: self.seq,
            workers,
            jobs,
            tasks: self
                .stream
                .iter()
                .filter(|t| t.seq > since)
                .cloned()
                .collect(),
            task_states: core.task_counts(),
            jobs_in_flight: core.num_jobs() as u64,
            counters: self.counters,
            workers_lost: core.stats().workers_lost,
            histogram: self.histogram.clone(),
            throughput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Config;

    #[test]
    fn the_stream_keeps_the_last_minute_and_at_most_its_length() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, 3);
        let core = State::new(Config::default());
        for i in 0..5u64 {
            r.task_done(
                t0 + Duration::from_secs(i),
                WorkerId(1),
                1,
                JobId(7),
                0,
                2_000_000,
                10,
            );
        }
        let s = r.snapshot(t0 + Duration::from_secs(4), &core, &|_| String::new(), 0);
        assert_eq!(s.tasks.iter().map(|t| t.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(s.counters.tasks_done, 5);
        assert_eq!(s.counters.transfer_bytes, 50);
        assert_eq!(s.histogram.count, 5);
        // One task in each of the last five seconds, 10 bytes each, at the end of the window.
        assert_eq!(s.throughput.len(), 60);
        assert_eq!(s.throughput[55..], [(1, 10); 5]);
        assert_eq!(s.throughput[..55].iter().map(|t| t.0).sum::<u64>(), 0);
        // 2 ms each: in the (1 ms, 3 ms] bucket and every one above it.
        assert_eq!(s.histogram.cumulative()[4], 0);
        assert_eq!(s.histogram.cumulative()[5], 5);
        assert!((s.tasks[0].end_ms - s.tasks[0].start_ms - 2.0).abs() < 1e-9);
        // Only what came after the cursor; then nothing once a minute has passed.
        let s = r.snapshot(t0 + Duration::from_secs(4), &core, &|_| String::new(), 4);
        assert_eq!(s.tasks.len(), 1);
        let s = r.snapshot(t0 + Duration::from_secs(70), &core, &|_| String::new(), 0);
        assert!(s.tasks.is_empty());
        assert_eq!(s.throughput.iter().map(|t| t.0).sum::<u64>(), 0);
    }

    #[test]
    fn an_ended_job_keeps_a_bounded_number_of_layer_rows() {
        // 200 layers of one task each (unoptimized, so each add stays a layer).
        let mut y = tessera::ones::<f64>(&[4], [4]).unwrap();
        for _ in 0..199 {
            y = &y + 1.0;
        }
        let graph = TaskGraph::expand(y.graph()).unwrap();
        assert_eq!(graph.graph.layers().len(), 200);
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, 10);
        let core = State::new(Config::default());
        r.job_submitted(t0, JobId(3), &graph);
        let progress: Vec<LayerProgress> = (0..200)
            .map(|i| LayerProgress {
                tasks: 1,
                done: u64::from(i % 2 == 0),
                running: 0,
            })
            .collect();
        r.job_ended(JobId(3), JobState::Completed, Some(progress));
        assert!(r.jobs[&JobId(3)].layer_names.is_empty());
        let s = r.snapshot(t0, &core, &|_| String::new(), 0);
        let layers = &s.jobs[0].layers;
        assert_eq!(layers.len(), ENDED_LAYER_ROWS);
        assert_eq!(&*layers[0].name, "full#0");
        assert_eq!(&*layers[1].name, "add#1");
        let last = &layers[ENDED_LAYER_ROWS - 1];
        assert_eq!(&*last.name, "137 more layers");
        assert_eq!((last.tasks, last.done), (137, 68));
        // Nothing is lost from the totals.
        assert_eq!(s.jobs[0].done, 100);
        assert_eq!(layers.iter().map(|l| l.tasks).sum::<u64>(), 200);
    }

    #[test]
    fn the_stream_gives_its_buffer_back_once_the_window_has_passed() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, 20_000);
        for _ in 0..20_000 {
            r.task_done(t0, WorkerId(1), 1, JobId(7), 0, 1_000, 0);
        }
        assert_eq!(r.stream.len(), 20_000);
        // Half the window later nothing expires and the buffer stays.
        r.trim(t0 + WINDOW / 2);
        assert_eq!(r.stream.len(), 20_000);
        assert!(r.stream.capacity() >= 20_000);
        // Past the window (with no snapshot asked for): empty, and the buffer is small again.
        r.trim(t0 + WINDOW + Duration::from_secs(1));
        assert!(r.stream.is_empty());
        assert!(
            r.stream.capacity() <= 2 * STREAM_MIN_CAPACITY,
            "{} records of capacity kept",
            r.stream.capacity()
        );
    }

    #[test]
    fn cpu_is_the_rate_of_the_process_cpu_time() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, 10);
        r.heartbeat(t0, WorkerId(1), 1_000_000_000);
        r.heartbeat(t0 + Duration::from_secs(2), WorkerId(1), 4_000_000_000);
        let rate = r.cpu[&WorkerId(1)].rate.unwrap();
        assert!((rate - 1.5).abs() < 1e-9, "{rate}");
    }
}
