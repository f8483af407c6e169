//! The local executor: dependency counting over a rayon pool. Every pool thread takes the ready task
//! with the lowest priority number (the depth-first order [`TaskGraph`] assigns), runs it outside the
//! lock, then releases inputs whose last consumer has run. Because a group's combine step outranks the
//! next group's leaves, a reduction holds about threads × chunk size, not the whole array. A ready
//! task that is the last reader of a held chunk goes first: it frees memory, so a chunk read by two
//! reductions (`x.mean(0)` and `x.std(0)`) waits for one task, not for the rest of the pass. When
//! memory is short (what the run holds in memory and in spill files past the target fraction
//! below), a ready task that reads chunks goes before a
//! source, as the scheduler's policy does: in an all-to-all rechunk each loaded source chunk is then
//! cut into all its pieces and released before the next is loaded, so the pieces are spilled (at
//! most) once, where the depth-first order alone loads every source again for each target chunk.
//!
//! Memory is bounded by a limit ([`LocalExecutor::with_memory_limit`]; by default
//! [`super::memory::default_memory_limit`]). The executor knows the bytes of every chunk it holds and,
//! before starting a task, the bytes of its output from the layer's metadata. Past
//! [`super::memory::TARGET_FRACTION`] of the limit it spills the least recently used array chunks that
//! no running task reads ([`super::spill`]) and reads them back when a task needs them (keeping the
//! file, so spilling the chunk again writes nothing); a task that
//! would take memory past the limit waits for running tasks to finish (it runs alone if nothing
//! else is running). A job with a task that cannot fit even alone (by the plan-time estimate of
//! [`crate::graph::estimate`], the scheduler's figures) fails before anything runs, with an error
//! naming its layer, chunk shape, bytes, the limit and how far to rechunk.
//!
//! Every run has its own [`CancelToken`] (a child of the caller's token, with the executor's time
//! limit) under which each kernel runs: the first failure cancels it, so the tasks still running stop
//! at their next checkpoint instead of finishing work nobody will read, and the error returned is that
//! first failure, not the "cancelled" of the tasks it stopped.
//!
//! Each finished task is counted against its layer (tasks done out of the layer's total, bytes
//! produced): in [`ExecStats::layers`] at the end, and live in the run's [`Progress`] when one is
//! attached ([`LocalExecutor::with_progress`]), which is what job handles and the progress bar read.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use smallvec::SmallVec;

use std::time::Duration;

use super::OutputSink;
use super::cancel::{self, CancelToken};
use super::memory::{TARGET_FRACTION, bound_allocator, default_memory_limit};
use super::progress::{LayerProgress, Progress, ProgressWriter};
use super::spill::{self, SpillDir};
use crate::data::ChunkValue;
use crate::error::{Error, Result};
use crate::graph::estimate;
use crate::graph::expand::TaskGraph;
use crate::graph::limits::Limit;
use crate::graph::{ArrayMeta, region_elems};

/// Runs task graphs on a rayon pool.
#[derive(Clone, Debug, Default)]
pub struct LocalExecutor {
    pool: Option<Arc<rayon::ThreadPool>>,
    /// A caller's token: cancelling it stops every run of this executor.
    cancel: Option<CancelToken>,
    /// Wall-clock limit of one run, counted from the start of `execute`.
    time_limit: Option<Duration>,
    /// Bytes of chunk data a run may hold; None for [`default_memory_limit`].
    memory_limit: Option<usize>,
    /// Where spill directories are created; None for the system temporary directory.
    spill_dir: Option<PathBuf>,
    /// Where runs report their progress live.
    progress: Option<Progress>,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Tasks executed.
    pub tasks: usize,
    /// Most bytes of chunk data held at once by the executor (not counting what the sink keeps).
    pub peak_bytes: usize,
    /// Chunks written to spill storage (local executor; 0 elsewhere).
    pub spilled_chunks: usize,
    /// Bytes of those chunks.
    pub spilled_bytes: usize,
    /// Per layer that had tasks: tasks done out of its total, and bytes its chunks took, inputs
    /// first (the same figures a [`Progress`] shows live).
    pub layers: Vec<LayerProgress>,
}

/// Where a held chunk is.
enum Slot {
    /// Not computed, or released.
    Empty,
    Memory(Arc<ChunkValue>),
    /// In spill storage: the file and the chunk's bytes in memory.
    Spilled(PathBuf, usize),
}

struct State {
    /// Ready tasks that read chunks (consumers).
    ready: BinaryHeap<Reverse<u32>>,
    /// Ready tasks without inputs (sources): they only add to memory.
    sources: BinaryHeap<Reverse<u32>>,
    /// Ready tasks that are the last reader of a held chunk (a task may also be in `ready`).
    releasing: BinaryHeap<Reverse<u32>>,
    started: Vec<bool>,
    waiting_on: Vec<u32>,
    readers_left: Vec<u32>,
    values: Vec<Slot>,
    /// Array chunks in memory by last use, least recent first: the spill candidates.
    lru: BTreeSet<(u64, u32)>,
    last_use: Vec<u64>,
    tick: u64,
    done: usize,
    running: usize,
    /// A task is waiting for running ones to free memory.
    blocked: bool,
    error: Option<Error>,
    held_bytes: usize,
    /// Output bytes of the running tasks, not yet held, and the regions they read back from disk.
    reserved_bytes: usize,
    /// Bytes of the regions a running task read back from spill files.
    region_bytes: HashMap<u32, usize>,
    peak_bytes: usize,
    spill: SpillDir,
    spilled_chunks: usize,
    spilled_bytes: usize,
    /// Bytes of the chunks in spill storage now (still to be read or released).
    on_disk_bytes: usize,
    /// Chunks whose spill file is kept after being read back: spilling one again writes nothing.
    has_file: Vec<bool>,
    /// Tasks done and bytes produced, per layer of the graph.
    layer_done: Vec<(u64, u64)>,
}

impl State {
    /// Takes the next task: a ready last reader of a held chunk first; then, when memory is `short`,
    /// a consumer before a source (an all-to-all rechunk then cuts each loaded source into its pieces
    /// and lets it go before loading the next, instead of loading every source for each target
    /// chunk in turn); else the lowest priority number.
    fn pop(&mut self, short: bool) -> Option<u32> {
        while let Some(Reverse(id)) = self.releasing.pop() {
            if !self.started[id as usize] {
                return Some(id);
            }
        }
        let started = &self.started;
        let head = |heap: &mut BinaryHeap<Reverse<u32>>| {
            while let Some(&Reverse(id)) = heap.peek() {
                if !started[id as usize] {
                    return Some(id);
                }
                heap.pop();
            }
            None
        };
        let (consumer, source) = (head(&mut self.ready), head(&mut self.sources));
        let from_sources = match (consumer, source) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(c), Some(s)) => !short && s < c,
        };
        let heap = if from_sources {
            &mut self.sources
        } else {
            &mut self.ready
        };
        heap.pop().map(|Reverse(id)| id)
    }

    /// Puts ready task `id` back in line (its heap by whether it reads anything).
    fn push_ready(&mut self, id: u32, has_deps: bool) {
        if has_deps {
            self.ready.push(Reverse(id));
        } else {
            self.sources.push(Reverse(id));
        }
    }

    /// Whether ready task `id` is the last reader of one of its (held) inputs.
    fn releases(&self, deps: &[u32]) -> bool {
        deps.iter().any(|&d| self.readers_left[d as usize] == 1)
    }

    fn touch(&mut self, id: u32) {
        if self.lru.remove(&(self.last_use[id as usize], id)) {
            self.tick += 1;
            self.last_use[id as usize] = self.tick;
            self.lru.insert((self.tick, id));
        }
    }

    /// Spills least recently used chunks that nobody else holds (no running task, not the sink) and
    /// that `keep` does not list, until `held + reserved + extra <= goal` or none is left.
    fn spill_until(&mut self, goal: usize, extra: usize, keep: &[u32]) -> Result<()> {
        let mut skipped: Vec<(u64, u32)> = Vec::new();
        while self.held_bytes + self.reserved_bytes + extra > goal {
            let Some((t, id)) = self.lru.pop_first() else {
                break;
            };
            let Slot::Memory(v) = &self.values[id as usize] else {
                continue;
            };
            if Arc::strong_count(v) > 1 || keep.contains(&id) {
                skipped.push((t, id));
                continue;
            }
            let path = self.spill.path(id)?;
            let bytes = v.nbytes();
            if !self.has_file[id as usize] {
                let Some(_) = spill::write(&path, v)? else {
                    continue;
                };
                self.has_file[id as usize] = true;
                self.spilled_chunks += 1;
                self.spilled_bytes += bytes;
            }
            self.values[id as usize] = Slot::Spilled(path, bytes);
            self.held_bytes -= bytes;
            self.on_disk_bytes += bytes;
        }
        self.lru.extend(skipped);
        Ok(())
    }

    /// Frees chunk `id` (its last reader has run).
    fn release(&mut self, id: u32) {
        match std::mem::replace(&mut self.values[id as usize], Slot::Empty) {
            Slot::Memory(v) => {
                self.held_bytes -= v.nbytes();
                self.lru.remove(&(self.last_use[id as usize], id));
                if self.has_file[id as usize]
                    && let Ok(path) = self.spill.path(id)
                {
                    let _ = std::fs::remove_file(path);
                }
            }
            Slot::Spilled(path, bytes) => {
                self.on_disk_bytes -= bytes;
                let _ = std::fs::remove_file(path);
            }
            Slot::Empty => {}
        }
    }
}

impl LocalExecutor {
    /// An executor on rayon's global pool (all cores).
    pub fn new() -> Self {
        LocalExecutor::default()
    }

    /// The same executor (sharing its pool) whose runs stop with [`Error::Cancelled`] once `token`
    /// is cancelled, for example from another thread. The token stays cancelled: later runs need a
    /// new one.
    pub fn with_cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The same executor (sharing its pool) whose runs stop with [`Error::Cancelled`] ("time limit
    /// of 2s exceeded") once they have run for `limit`.
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// The same executor (sharing its pool) whose runs hold at most `bytes` of chunk data: past 60%
    /// of it they spill least recently used chunks to disk, and a task that cannot fit is an error.
    /// Without it the limit is [`default_memory_limit`] (`TESSERA_MEMORY_LIMIT`, else half of the
    /// physical memory).
    ///
    /// ```
    /// use tessera::{LocalExecutor, default_rng};
    /// let ex = LocalExecutor::with_threads(2)?.with_memory_limit(64 << 20);
    /// let x = default_rng(1).random(&[2000, 2000], [500, 500])?;
    /// let y = (&x - x.mean_axis(0)?).std()?;
    /// let v: f64 = y.compute_on(&ex)?.into_typed::<f64>()?.into_iter().next().unwrap();
    /// assert!((v - (1.0f64 / 12.0).sqrt()).abs() < 1e-2);
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The same executor, spilling into a private directory created under `dir` (instead of the
    /// system temporary directory) and removed when each run ends.
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// The same executor (sharing its pool) reporting every run's progress, per layer, into
    /// `progress` as tasks finish (each run starts it afresh).
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The caller's token this executor's runs stop on, if any.
    pub(crate) fn cancel_token(&self) -> Option<&CancelToken> {
        self.cancel.as_ref()
    }

    /// The memory limit runs use.
    pub fn memory_limit(&self) -> Result<usize> {
        match self.memory_limit {
            Some(b) => Ok(b),
            None => default_memory_limit(),
        }
    }

    /// An executor on its own pool of `threads` threads.
    pub fn with_threads(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("tessera-{i}"))
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?;
        Ok(LocalExecutor {
            pool: Some(Arc::new(pool)),
            ..LocalExecutor::default()
        })
    }

    /// Number of threads tasks run on.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(p) => p.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Runs every task of `tg`, handing output chunks to `sink`. Stops at the first failure, whose
    /// error names the task's key, and cancels the tasks still running; stops with
    /// [`Error::Cancelled`] when the caller's token is cancelled or the time limit passes.
    pub fn execute(&self, tg: &TaskGraph, sink: &OutputSink<'_>) -> Result<ExecStats> {
        let run = match &self.cancel {
            Some(t) => t.child(self.time_limit),
            None => match self.time_limit {
                Some(limit) => CancelToken::with_time_limit(limit),
                None => CancelToken::new(),
            },
        };
        run.check()?;
        let n = tg.tasks.len();
        let mut readers = vec![0u32; n];
        let mut consumers: Vec<SmallVec<[u32; 2]>> = vec![SmallVec::new(); n];
        for (i, t) in tg.tasks.iter().enumerate() {
            for &d in &t.deps {
                readers[d as usize] += 1;
                consumers[d as usize].push(i as u32);
            }
        }
        let mut output_of: Vec<SmallVec<[(usize, usize); 1]>> = vec![SmallVec::new(); n];
        for (o, ids) in tg.outputs.iter().enumerate() {
            for (b, &id) in ids.iter().enumerate() {
                output_of[id as usize].push((o, b));
            }
        }
        let layers = tg.graph.layers();
        let input_metas: Vec<Vec<&ArrayMeta>> = layers
            .iter()
            .map(|l| {
                l.inputs
                    .iter()
                    .map(|i| &tg.graph.get(*i).expect("expanded graphs are closed").meta)
                    .collect()
            })
            .collect();
        // Layers with tasks, in graph order, and each layer's place among them.
        let mut layer_total = vec![0u64; layers.len()];
        for t in &tg.tasks {
            layer_total[t.layer as usize] += 1;
        }
        let progress: Option<ProgressWriter> = self.progress.as_ref().map(|p| {
            p.start(
                layers
                    .iter()
                    .zip(&layer_total)
                    .filter(|(_, n)| **n > 0)
                    .map(|(l, n)| (l.id.to_string(), *n)),
            )
        });
        let mut next = 0usize;
        let table_index: Vec<usize> = layer_total
            .iter()
            .map(|&n| {
                if n == 0 {
                    return usize::MAX;
                }
                next += 1;
                next - 1
            })
            .collect();
        let finish_progress = || {
            if let Some(p) = &self.progress {
                p.finish();
            }
        };
        let limit = match self.memory_limit() {
            Ok(l) => l,
            Err(e) => {
                finish_progress();
                return Err(e);
            }
        };
        // A job with a task that cannot fit the limit even alone fails here, before anything runs,
        // with the same plan-time figures (inputs + output + kernel scratch) the scheduler checks.
        let setting = "LocalExecutor::with_memory_limit or TESSERA_MEMORY_LIMIT";
        if let Err(e) = estimate::check(tg, &Limit::new(limit as u64, setting)) {
            finish_progress();
            return Err(e);
        }
        let goal = (limit as f64 * TARGET_FRACTION) as usize;
        // Bytes of each task's output, from its layer's metadata (a partial holds its extra values).
        let out_bytes = |id: u32| -> usize {
            usize::try_from(estimate::output_bytes(tg, id)).unwrap_or(usize::MAX)
        };
        let sources: BinaryHeap<Reverse<u32>> = tg
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.deps.is_empty())
            .map(|(i, _)| Reverse(i as u32))
            .collect();
        let state = Mutex::new(State {
            ready: BinaryHeap::new(),
            sources,
            releasing: BinaryHeap::new(),
            started: vec![false; n],
            waiting_on: tg.tasks.iter().map(|t| t.deps.len() as u32).collect(),
            readers_left: readers,
            values: (0..n).map(|_| Slot::Empty).collect(),
            lru: BTreeSet::new(),
            last_use: vec![0; n],
            tick: 0,
            done: 0,
            running: 0,
            blocked: false,
            error: None,
            held_bytes: 0,
            reserved_bytes: 0,
            region_bytes: HashMap::new(),
            peak_bytes: 0,
            spill: SpillDir::new(self.spill_dir.clone()),
            spilled_chunks: 0,
            spilled_bytes: 0,
            on_disk_bytes: 0,
            has_file: vec![false; n],
            layer_done: vec![(0, 0); layers.len()],
        });
        let wake = Condvar::new();

        // Takes the next task that fits in memory, marks it started and gathers its inputs (read
        // back from spill storage where needed); None when the run is over.
        let admit = |s: &mut State, inputs: &mut Vec<Arc<ChunkValue>>| -> Result<Option<u32>> {
            // Short by what the job holds in memory and on disk: once chunks have been spilled to
            // stay under the target, memory stays short until they are consumed.
            let short = s.held_bytes + s.reserved_bytes + s.on_disk_bytes > goal;
            if short {
                // From here on resident memory must follow the bytes held, so freed chunks must
                // leave the process. Not before: chunks in pages of their own cost page faults on
                // every allocation (a 2000² matmul took 25 % longer), which a job that fits in
                // memory need not pay.
                bound_allocator();
            }
            let Some(id) = s.pop(short) else {
                return Ok(None);
            };
            let task = &tg.tasks[id as usize];
            let layer = &layers[task.layer as usize];
            let output = out_bytes(id);
            // A task that reads only regions of its inputs (a rechunk) is given a chunk it holds
            // whole, and reads back only the region of one that was spilled.
            let regions = layer.op.reads_regions().then(|| {
                layer
                    .op
                    .dep_regions(layer, &input_metas[task.layer as usize], &task.block)
            });
            let region_of = |i: usize| regions.as_ref().and_then(|r| r.as_ref()?.get(i));
            let (mut in_memory, mut on_disk) = (0usize, 0usize);
            for (i, &d) in task.deps.iter().enumerate() {
                let region = region_of(i).map(|r| {
                    region_elems(r)
                        * layers[tg.tasks[d as usize].layer as usize]
                            .meta
                            .dtype
                            .size()
                });
                match &s.values[d as usize] {
                    Slot::Memory(v) => in_memory += region.unwrap_or(v.nbytes()),
                    Slot::Spilled(_, b) => on_disk += region.unwrap_or(*b),
                    Slot::Empty => {}
                }
            }
            let own = output + in_memory + on_disk;
            if own > limit {
                let shape = layer.meta.chunks.block_shape(&task.block);
                let elems = (limit / 2 / layer.meta.dtype.size().max(1)).max(1);
                return Err(Error::LimitExceeded {
                    what: format!(
                        "task {} (layer {}, chunk shape {shape:?}, {}) needs",
                        tg.key(id),
                        layer.id,
                        layer.meta.dtype
                    ),
                    amount: own as u64,
                    unit: "bytes for its inputs and output",
                    limit: limit as u64,
                    setting: setting.into(),
                    hint: format!(
                        "; rechunk to at most {elems} elements per chunk, or raise the limit"
                    ),
                });
            }
            let extra = output + on_disk;
            if s.held_bytes + s.reserved_bytes + extra > limit {
                s.spill_until(limit, extra, &task.deps)?;
                if s.held_bytes + s.reserved_bytes + extra > limit && s.running > 0 {
                    // Wait for running tasks to free memory; the task stays first in line.
                    s.push_ready(id, !task.deps.is_empty());
                    if s.releases(&task.deps) {
                        s.releasing.push(Reverse(id));
                    }
                    s.blocked = true;
                    return Ok(None);
                }
            }
            s.started[id as usize] = true;
            s.running += 1;
            s.reserved_bytes += output;
            inputs.clear();
            let mut region_bytes = 0;
            for (i, &d) in task.deps.iter().enumerate() {
                let v = match &s.values[d as usize] {
                    Slot::Memory(v) => v.clone(),
                    // Only the region is read back, and is the task's alone: the chunk stays on disk.
                    Slot::Spilled(path, _) if region_of(i).is_some() => {
                        let region = region_of(i).expect("checked");
                        let v = Arc::new(spill::read_region(path, region)?);
                        region_bytes += v.nbytes();
                        v
                    }
                    Slot::Spilled(path, bytes) => {
                        let bytes = *bytes;
                        let v = Arc::new(spill::read(path)?);
                        s.on_disk_bytes -= bytes;
                        s.held_bytes += v.nbytes();
                        s.peak_bytes = s.peak_bytes.max(s.held_bytes);
                        s.values[d as usize] = Slot::Memory(v.clone());
                        s.tick += 1;
                        s.last_use[d as usize] = s.tick;
                        s.lru.insert((s.tick, d));
                        v
                    }
                    Slot::Empty => unreachable!("inputs finish before their readers"),
                };
                s.touch(d);
                inputs.push(v);
            }
            if region_bytes > 0 {
                s.reserved_bytes += region_bytes;
                s.region_bytes.insert(id, region_bytes);
            }
            Ok(Some(id))
        };

        let worker = || {
            let mut inputs: Vec<Arc<ChunkValue>> = Vec::new();
            loop {
                let id = {
                    let mut s = state.lock().expect("executor state");
                    loop {
                        if s.error.is_some() || s.done == n {
                            return;
                        }
                        // A cancel between kernels: nothing is running that would notice it.
                        if run.is_cancelled() {
                            s.error = Some(run.error());
                            wake.notify_all();
                            return;
                        }
                        match admit(&mut s, &mut inputs) {
                            Ok(Some(id)) => break id,
                            Ok(None) => {}
                            Err(e) => {
                                s.error = Some(e);
                                run.cancel();
                                wake.notify_all();
                                return;
                            }
                        }
                        s = wake.wait(s).expect("executor state");
                    }
                };
                let task = &tg.tasks[id as usize];
                let layer = &layers[task.layer as usize];
                let result = catch_unwind(AssertUnwindSafe(|| {
                    // Kernel bugs that hand a task the wrong chunk are caught here in debug builds.
                    #[cfg(debug_assertions)]
                    crate::graph::check::check_inputs(
                        layer,
                        &input_metas[task.layer as usize],
                        &task.block,
                        &inputs,
                    )?;
                    cancel::scope(&run, || {
                        layer.op.run(
                            layer,
                            &input_metas[task.layer as usize],
                            &task.block,
                            &inputs,
                        )
                    })
                }));
                inputs.clear();
                let result = match result {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e @ Error::Cancelled { .. })) => Err(e),
                    Ok(Err(e)) => Err(Error::TaskFailed {
                        key: tg.key(id).to_string(),
                        message: e.to_string(),
                    }),
                    Err(panic) => Err(Error::TaskPanicked {
                        key: tg.key(id).to_string(),
                        message: panic_message(&panic),
                    }),
                };
                let result = result.and_then(|v| {
                    for &(o, b) in &output_of[id as usize] {
                        let block = &tg.tasks[tg.outputs[o][b] as usize].block;
                        sink(o, block, v.clone())?;
                    }
                    Ok(v)
                });
                let mut s = state.lock().expect("executor state");
                s.running -= 1;
                s.reserved_bytes -= out_bytes(id);
                if let Some(b) = s.region_bytes.remove(&id) {
                    s.reserved_bytes -= b;
                }
                match result {
                    Err(e) => {
                        // Set before cancelling, so that the tasks this stops find the real
                        // failure already recorded and their "cancelled" is dropped.
                        if s.error.is_none() {
                            s.error = Some(e);
                        }
                        run.cancel();
                        wake.notify_all();
                        return;
                    }
                    Ok(v) => {
                        let mut woke = 0;
                        for &c in &consumers[id as usize] {
                            let w = &mut s.waiting_on[c as usize];
                            *w -= 1;
                            if *w == 0 {
                                s.ready.push(Reverse(c));
                                if s.releases(&tg.tasks[c as usize].deps) {
                                    s.releasing.push(Reverse(c));
                                }
                                woke += 1;
                            }
                        }
                        let bytes = v.nbytes() as u64;
                        if !consumers[id as usize].is_empty() {
                            s.held_bytes += v.nbytes();
                            s.peak_bytes = s.peak_bytes.max(s.held_bytes);
                            if matches!(*v, ChunkValue::Array(_)) {
                                s.tick += 1;
                                s.last_use[id as usize] = s.tick;
                                let t = s.tick;
                                s.lru.insert((t, id));
                            }
                            s.values[id as usize] = Slot::Memory(v);
                        }
                        for &d in &task.deps {
                            s.readers_left[d as usize] -= 1;
                            match s.readers_left[d as usize] {
                                0 => s.release(d),
                                1 => {
                                    // The one reader left frees the chunk: let it go first.
                                    if let Some(&c) = consumers[d as usize].iter().find(|&&c| {
                                        !s.started[c as usize] && s.waiting_on[c as usize] == 0
                                    }) {
                                        s.releasing.push(Reverse(c));
                                        woke += 1;
                                    }
                                }
                                _ => {}
                            }
                        }
                        s.done += 1;
                        let counts = &mut s.layer_done[task.layer as usize];
                        counts.0 += 1;
                        counts.1 += bytes;
                        if let Some(p) = &progress {
                            p.task_done(table_index[task.layer as usize], bytes);
                        }
                        if s.held_bytes + s.reserved_bytes > goal
                            && let Err(e) = s.spill_until(goal, 0, &[])
                        {
                            s.error.get_or_insert(e);
                            run.cancel();
                            wake.notify_all();
                            return;
                        }
                        // Memory was freed: a task waiting for room may fit now.
                        if s.done == n || woke > 1 || std::mem::take(&mut s.blocked) {
                            wake.notify_all();
                        } else if woke == 1 {
                            wake.notify_one();
                        }
                    }
                }
            }
        };
        if n > 0 {
            match &self.pool {
                Some(p) => {
                    p.broadcast(|_| worker());
                }
                None => {
                    rayon::broadcast(|_| worker());
                }
            }
        }
        let s = state.into_inner().expect("executor state");
        finish_progress();
        if let Some(e) = s.error {
            return Err(e);
        }
        let layers = layers
            .iter()
            .zip(&layer_total)
            .zip(&s.layer_done)
            .filter(|((_, total), _)| **total > 0)
            .map(|((l, &total), &(done, bytes))| LayerProgress {
                layer: l.id.to_string(),
                name: l.id.name.to_string(),
                done,
                total,
                bytes,
            })
            .collect();
        Ok(ExecStats {
            tasks: n,
            peak_bytes: s.peak_bytes,
            spilled_chunks: s.spilled_chunks,
            spilled_bytes: s.spilled_bytes,
            layers,
        })
    }
}

/// The text of a caught panic's payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}
