//! Runs assigned tasks: gathers inputs (from the local store, or from the peers that hold them, one
//! call per peer), runs the engine's kernel for the task's layer and block on the worker's rayon
//! pool, keeps the result, and reports the outcome. A task whose input cannot be fetched reports which
//! one, so the scheduler recomputes it rather than failing the job.
//!
//! A task of a `Persisted` layer (a persisted array read by a later job) runs no kernel: it copies
//! the kept chunk of the persisting job that its assignment names — from this worker's store when
//! it holds it (no copy of the data, the same chunk), else from a holder, showing the key the layer
//! carries — and keeps it as its own result. A kept chunk no holder can give is reported missing,
//! so the scheduler recomputes it from the persisting job's graph.
//!
//! Before anything of a task is fetched or allocated, the store admits it against the worker's
//! memory ([`Store::admit`]): it reserves the task's peak bytes, spilling other chunks on a task
//! thread if that makes room. A task that must wait for running tasks to end waits here, in
//! assignment order, and is admitted again each time a task ends; one that can never fit fails with
//! the reason.
//!
//! A task whose op reads only part of each input (a rechunk reads where its target chunk overlaps
//! each source: [`Op::dep_regions`]) takes an input held in memory here whole (shared, no copy),
//! reads only the region of one spilled here from its file, and fetches only the region of one a
//! peer holds. Its admission counts the regions' bytes, and `fetched_bytes` the region bytes
//! fetched: an all-to-all rechunk moves the array's bytes once, not every source chunk per target.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::join_all;
use tessera::exec::{cancel, panic_message};
use tessera::graph::check::check_inputs;
use tessera::graph::{Region, estimate, region_elems, region_is_whole};
use tessera::ops::Op;
use tessera::{ChunkValue, Error};
use tessera_proto::v1::{DepLocation, PersistedInput, TaskAssignment};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::store::{Admission, DepRead, Held, JobGraph, Reservation, Store};
use tessera::client::WorkerChannels as Peers;

/// A task's inputs in dependency order, each with the peer it was fetched from (`None`: local).
type Inputs = (Vec<Held>, Vec<Option<String>>);

/// Per dep of a task, in dependency order, the region of it the task reads when that is not the
/// whole chunk (`None`: whole). Empty for a task of an op that reads its inputs whole.
type DepRegions = Arc<[Option<Region>]>;

/// The region of dep `i`, if the task reads only a region of it.
fn region_of(regions: &DepRegions, i: usize) -> Option<&Region> {
    regions.get(i).and_then(Option::as_ref)
}

/// What became of a task.
#[derive(Debug)]
pub enum Outcome {
    Done {
        job: u64,
        task: u32,
        nbytes: u64,
        /// How long the kernel ran (0 for a replica).
        run_nanos: u64,
        /// The pool thread that ran it, from 1 (0 for a replica): the dashboard's task stream.
        thread: u32,
        /// Bytes of its inputs fetched from peers.
        fetched_bytes: u64,
    },
    Failed {
        job: u64,
        task: u32,
        message: String,
        missing_input: Option<(u64, u32)>,
    },
}

/// Runs tasks; clones share the pool, store and result channel.
#[derive(Clone, Debug)]
pub struct Runner {
    store: Store,
    peers: Peers,
    pool: Arc<rayon::ThreadPool>,
    results: mpsc::UnboundedSender<Outcome>,
    address: String,
    running: Arc<AtomicUsize>,
    /// Tasks admitted to nothing yet: running tasks hold the memory they need.
    waiting: Arc<Mutex<VecDeque<TaskAssignment>>>,
    /// The session's runtime, for fetches started from a task thread.
    runtime: tokio::runtime::Handle,
}

impl Runner {
    /// A runner; call it within the session's tokio runtime. Until the session drops the results'
    /// receiver, each send to a peer that ends lets the tasks waiting for memory try again (the
    /// chunk it pinned may now be spilled).
    pub fn new(
        store: Store,
        peers: Peers,
        pool: Arc<rayon::ThreadPool>,
        results: mpsc::UnboundedSender<Outcome>,
        address: String,
    ) -> Self {
        let runner = Runner {
            store,
            peers,
            pool,
            results,
            address,
            running: Arc::new(AtomicUsize::new(0)),
            waiting: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
        };
        let this = runner.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = this.results.closed() => break,
                    _ = this.store.send_ended() => this.wake(),
                }
            }
        });
        runner
    }

    /// Tasks started and not yet reported.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Tasks waiting for memory.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().expect("waiting").len()
    }

    /// Starts a task; its outcome arrives on the results channel. It is admitted against the
    /// worker's memory first (see the module docs). A task whose inputs are all in the store goes
    /// straight to the pool (no async hop: microsecond tasks are common); one that needs chunks from
    /// peers fetches them first, one call per peer.
    pub fn start(&self, a: TaskAssignment) {
        self.running.fetch_add(1, Ordering::Relaxed);
        self.admit(a, false);
    }

    /// Admits a task, or queues it, or fails it. `on_pool`: already on a task thread, where the
    /// disk may be used to make room.
    fn admit(&self, a: TaskAssignment, on_pool: bool) {
        let (job, task) = (a.job, a.task);
        let fail = |message: String| Outcome::Failed {
            job,
            task,
            message,
            missing_input: None,
        };
        // Without its graph (never decoded, or the job forgotten) the task fails once its inputs
        // are in, saying so; a missing input is reported first, so the scheduler can recompute it.
        let Some(graph) = self.store.graph(job) else {
            return self.proceed(a, Reservation::default(), Arc::new([]));
        };
        let layer_pos = match locate(&graph, &a) {
            Ok(p) => p,
            Err(message) => return self.report(fail(message)),
        };
        let need = estimate::block_bytes(&graph.graph, layer_pos, &a.block);
        let (regions, region_bytes) = dep_regions(&graph, layer_pos, &a);
        let deps: Vec<DepRead> = a
            .deps
            .iter()
            .enumerate()
            .map(|(i, d)| (d.task, region_bytes.get(i).copied().flatten()))
            .collect();
        let admission = if on_pool {
            self.store.admit(job, &deps, need)
        } else {
            self.store.try_admit(job, &deps, need)
        };
        match admission {
            Admission::Granted(r) => self.proceed(a, r, regions),
            Admission::Refused(why) => {
                let chunk = graph.graph.layers()[layer_pos]
                    .meta
                    .chunks
                    .block_shape(&a.block);
                self.report(fail(format!(
                    "task of layer {} with an output chunk of shape {chunk:?}: {why}",
                    graph.graph.layers()[layer_pos].id
                )))
            }
            Admission::Wait if !on_pool => {
                // Spilling may make room; that touches the disk, so on a task thread.
                let this = self.clone();
                self.pool.spawn(move || this.admit(a, true));
            }
            Admission::Wait => {
                debug!(job, task, bytes = need.total(), "waiting for memory");
                self.waiting.lock().expect("waiting").push_back(a);
                // The last running task may have ended between the admission and the queueing. A
                // send that ends wakes the waiting tasks itself (see `Runner::new`).
                if self.store.memory().running == 0 && !self.store.sending() {
                    self.wake();
                }
            }
        }
    }

    /// A task ended: the waiting tasks try again, in the order they came, on a task thread (making
    /// room may touch the disk).
    fn wake(&self) {
        let waiting: Vec<TaskAssignment> =
            self.waiting.lock().expect("waiting").drain(..).collect();
        if waiting.is_empty() {
            return;
        }
        let this = self.clone();
        self.pool.spawn(move || {
            for a in waiting {
                this.admit(a, true);
            }
        });
    }

    /// Runs an admitted task: from the store if every input is here (in memory or spilled), else
    /// after fetching the rest (or the regions of them it reads) from peers.
    fn proceed(&self, a: TaskAssignment, r: Reservation, regions: DepRegions) {
        if let Some(source) = a.persisted.clone() {
            let this = self.clone();
            self.runtime.spawn(async move {
                let outcome = this.copy_kept(&a, &source).await;
                this.store.finish(r);
                this.report(outcome);
                this.wake();
            });
            return;
        }
        let local: Option<Vec<Held>> = a
            .deps
            .iter()
            .map(|d| self.store.lookup((a.job, d.task)))
            .collect();
        match local {
            Some(inputs) => self.compute(a, inputs, Vec::new(), regions, r),
            None => {
                let this = self.clone();
                self.runtime.spawn(async move {
                    match this.gather(&a, &regions).await {
                        Ok((inputs, sources)) => this.compute(a, inputs, sources, regions, r),
                        Err(outcome) => {
                            this.store.finish(r);
                            this.report(outcome);
                            this.wake();
                        }
                    }
                });
            }
        }
    }

    fn report(&self, outcome: Outcome) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let _ = self.results.send(outcome);
    }

    /// Copies a chunk from another worker (when that worker retires) and reports it like a task.
    pub fn replicate(&self, job: u64, task: u32, from: String, key: Vec<u8>) {
        self.store.put_key(job, &key);
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = match this.peers.fetch(&from, job, &key, task).await {
                Ok(v) => {
                    let nbytes = v.nbytes() as u64;
                    this.store.put((job, task), Arc::new(v));
                    Outcome::Done {
                        job,
                        task,
                        nbytes,
                        run_nanos: 0,
                        thread: 0,
                        fetched_bytes: nbytes,
                    }
                }
                Err(message) => Outcome::Failed {
                    job,
                    task,
                    message,
                    missing_input: Some((job, task)),
                },
            };
            let _ = this.results.send(outcome);
        });
    }

    /// The task's inputs, in dependency order, with the peer each fetched one came from: from the
    /// store, or fetched from the peers that hold them with one call per peer (a combine task reads many small partials, often several from one
    /// peer), all peers at once. A chunk whose call failed is then fetched alone from each of its
    /// holders, so one chunk a peer no longer has does not cost the batch. Of an input the task reads
    /// only a region of, only that region is fetched.
    async fn gather(&self, a: &TaskAssignment, regions: &DepRegions) -> Result<Inputs, Outcome> {
        let job = a.job;
        let key = self.store.key(job).unwrap_or_default();
        let key = &*key;
        let mut inputs: Vec<Option<Held>> = a
            .deps
            .iter()
            .map(|d| self.store.lookup((job, d.task)))
            .collect();
        // Positions in `a.deps` of the inputs to fetch, by the first peer that holds them.
        let mut batches: Vec<(&str, Vec<usize>)> = Vec::new();
        // An input read twice (the diagonal blocks of `x @ x.T`) is fetched once.
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, dep) in a.deps.iter().enumerate() {
            if inputs[i].is_some() {
                continue;
            }
            if let Some(first) = a.deps[..i].iter().enumerate().position(|(j, d)| {
                d.task == dep.task && region_of(regions, j) == region_of(regions, i)
            }) {
                repeats.push((i, first));
                continue;
            }
            let Some(peer) = dep.addresses.iter().find(|a| **a != self.address) else {
                continue;
            };
            match batches.iter_mut().find(|(p, _)| *p == peer.as_str()) {
                Some((_, positions)) => positions.push(i),
                None => batches.push((peer, vec![i])),
            }
        }
        let fetched = join_all(batches.iter().map(|(peer, positions)| {
            let tasks: Vec<u32> = positions.iter().map(|&i| a.deps[i].task).collect();
            let parts: Vec<Option<Region>> = positions
                .iter()
                .map(|&i| region_of(regions, i).cloned())
                .collect();
            async move {
                self.peers
                    .fetch_regions(peer, job, key, &tasks, &parts)
                    .await
            }
        }))
        .await;
        let mut failed_at: Vec<Option<&str>> = vec![None; a.deps.len()];
        let mut sources: Vec<Option<String>> = vec![None; a.deps.len()];
        for ((peer, positions), result) in batches.iter().zip(fetched) {
            match result {
                Ok(values) => {
                    for (&i, v) in positions.iter().zip(values) {
                        inputs[i] = Some(Held::Memory(Arc::new(v)));
                        sources[i] = Some(peer.to_string());
                    }
                }
                Err(e) => {
                    debug!(
                        peer,
                        job, "batched fetch failed, fetching its chunks alone: {e}"
                    );
                    for &i in positions {
                        failed_at[i] = Some(peer);
                    }
                }
            }
        }
        for (i, first) in repeats {
            inputs[i] = inputs[first].clone();
            failed_at[i] = failed_at[first];
            sources[i] = sources[first].clone();
        }
        let inputs = inputs
            .into_iter()
            .zip(&a.deps)
            .zip(failed_at)
            .zip(sources)
            .enumerate()
            .map(|(i, (((input, dep), failed_at), source))| async move {
                match input {
                    Some(v) => Ok((v, source)),
                    None => self
                        .fetch_alone(job, key, dep, failed_at, region_of(regions, i))
                        .await
                        .map(|(v, peer)| (Held::Memory(v), Some(peer)))
                        .map_err(|message| Outcome::Failed {
                            job,
                            task: a.task,
                            message,
                            missing_input: Some((job, dep.task)),
                        }),
                }
            });
        join_all(inputs).await.into_iter().collect()
    }

    /// Runs a `Persisted` layer's task: the kept chunk `source`, from the store or a holder, checked
    /// against the layer's grid and dtype, kept as the task's result.
    async fn copy_kept(&self, a: &TaskAssignment, source: &PersistedInput) -> Outcome {
        let (job, task) = (a.job, a.task);
        let fail = |message: String, missing: bool| Outcome::Failed {
            job,
            task,
            message,
            missing_input: missing.then_some((source.job, source.task)),
        };
        let Some(graph) = self.store.graph(job) else {
            return fail(format!("the graph of job {job} was not received"), false);
        };
        let layer_pos = match locate(&graph, a) {
            Ok(p) => p,
            Err(message) => return fail(message, false),
        };
        let layer = &graph.graph.layers()[layer_pos];
        let Op::Persisted(kept) = &layer.op else {
            return fail(
                format!(
                    "task {task} of job {job} was sent a persisted chunk, but its layer {} is not persisted",
                    layer.id
                ),
                false,
            );
        };
        if kept.job != source.job {
            return fail(
                format!(
                    "layer {} reads persisted job {:016x}, the assignment named job {:016x}",
                    layer.id, kept.job, source.job
                ),
                false,
            );
        }
        let started = Instant::now();
        let (value, fetched_bytes) = match self.store.lookup((source.job, source.task)) {
            Some(Held::Memory(v)) => (v, 0),
            Some(spilled) => {
                let store = self.store.clone();
                match tokio::task::spawn_blocking(move || store.load(spilled)).await {
                    Ok(Ok(v)) => (v, 0),
                    Ok(Err(e)) => return fail(e, false),
                    Err(e) => return fail(format!("reading a spilled chunk failed: {e}"), false),
                }
            }
            None => {
                let mut last = format!(
                    "no worker holds chunk {} of persisted job {:016x}",
                    source.task, source.job
                );
                let mut got = None;
                for address in source.addresses.iter().filter(|x| **x != self.address) {
                    match self
                        .peers
                        .fetch(address, source.job, &kept.key, source.task)
                        .await
                    {
                        Ok(v) => {
                            got = Some(v);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                match got {
                    Some(v) => {
                        let n = v.nbytes() as u64;
                        (Arc::new(v), n)
                    }
                    None => return fail(last, true),
                }
            }
        };
        // A kept chunk that is not what the layer declares would be a silently different answer.
        let want = layer.meta.chunks.block_shape(&a.block);
        match value.as_array() {
            Ok(v) if v.shape() == want.as_slice() && v.dtype() == layer.meta.dtype => {}
            Ok(v) => {
                return fail(
                    format!(
                        "chunk {} of persisted job {:016x} is {} of shape {:?}; layer {} block {:?} expects {} of shape {want:?}",
                        source.task,
                        source.job,
                        v.dtype(),
                        v.shape(),
                        layer.id,
                        a.block,
                        layer.meta.dtype
                    ),
                    false,
                );
            }
            Err(e) => {
                return fail(
                    format!(
                        "chunk {} of persisted job {:016x}: {e}",
                        source.task, source.job
                    ),
                    false,
                );
            }
        }
        let nbytes = value.nbytes() as u64;
        if !self.store.put((job, task), value) {
            return fail(format!("job {job} was cancelled"), false);
        }
        Outcome::Done {
            job,
            task,
            nbytes,
            run_nanos: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            thread: 0,
            fetched_bytes,
        }
    }

    /// Fetches one input (or `region` of it) by itself from each peer that holds it in turn. The
    /// peer whose batched call failed goes last: it may have lost only another chunk of the batch,
    /// or be gone.
    async fn fetch_alone(
        &self,
        job: u64,
        key: &[u8],
        dep: &DepLocation,
        failed_at: Option<&str>,
        region: Option<&Region>,
    ) -> Result<(Arc<ChunkValue>, String), String> {
        let (others, failed): (Vec<&str>, Vec<&str>) = dep
            .addresses
            .iter()
            .map(String::as_str)
            .filter(|a| *a != self.address)
            .partition(|a| Some(*a) != failed_at);
        let mut last_error = format!("no worker holds input task {}", dep.task);
        for address in others.into_iter().chain(failed) {
            let fetched = match region {
                None => self.peers.fetch(address, job, key, dep.task).await,
                Some(r) => self
                    .peers
                    .fetch_regions(address, job, key, &[dep.task], &[Some(r.clone())])
                    .await
                    .and_then(|mut v| {
                        v.pop()
                            .ok_or_else(|| format!("{address} sent nothing for task {}", dep.task))
                    }),
            };
            match fetched {
                Ok(v) => return Ok((Arc::new(v), address.to_string())),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Runs the task's kernel on the pool, under its job's cancellation token, after reading back any
    /// spilled input and checking that each input is what its layer declares (`sources`: the peer
    /// each input came from, when fetched); the pool thread stores the chunk, gives the reservation
    /// back, reports, brings memory back under the target, and lets waiting tasks try again.
    fn compute(
        &self,
        a: TaskAssignment,
        inputs: Vec<Held>,
        sources: Vec<Option<String>>,
        regions: DepRegions,
        r: Reservation,
    ) {
        let this = self.clone();
        self.pool.spawn(move || {
            let outcome = this.run(a, inputs, sources, &regions);
            this.store.finish(r);
            this.report(outcome);
            if let Err(e) = this.store.make_room(0) {
                warn!("cannot bring memory back under --memory-target: {e}");
            }
            this.wake();
        });
    }

    /// The kernel run of [`Runner::compute`], on a task thread.
    fn run(
        &self,
        a: TaskAssignment,
        inputs: Vec<Held>,
        sources: Vec<Option<String>>,
        regions: &DepRegions,
    ) -> Outcome {
        let (job, task) = (a.job, a.task);
        let fail = move |message: String| Outcome::Failed {
            job,
            task,
            message,
            missing_input: None,
        };
        // Forgotten while it waited for a thread (the client went away): nothing will read it.
        if self.store.is_forgotten(job) {
            return fail(format!("job {job} was cancelled"));
        }
        let Some(graph) = self.store.graph(job) else {
            return fail(format!("the graph of job {job} was not received"));
        };
        let layer_pos = match locate(&graph, &a) {
            Ok(p) => p,
            Err(message) => return fail(message),
        };
        let layer = &graph.graph.layers()[layer_pos];
        let metas = graph.input_metas(layer_pos);
        // A spilled input the task reads a region of is read back as just that region.
        let inputs: Vec<Arc<ChunkValue>> = match inputs
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                self.store
                    .load_part(h, region_of(regions, i).map(|r| r.as_slice()))
            })
            .collect::<Result<_, String>>()
        {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        // An input read twice is fetched once (see `gather`): count each fetched chunk once. A
        // fetched region is the array it cuts out, so this counts the region's bytes.
        let fetched_bytes: u64 = inputs
            .iter()
            .zip(&sources)
            .enumerate()
            .filter(|(i, (v, source))| {
                source.is_some() && !inputs[..*i].iter().any(|w| Arc::ptr_eq(w, v))
            })
            .map(|(_, (v, _))| v.nbytes() as u64)
            .sum();
        // A peer's chunk that is not what the graph declares would give a silently different
        // answer: fail the task naming the chunk and where it came from.
        if let Err(e) = check_inputs(layer, &metas, &a.block, &inputs) {
            let from = match &e {
                Error::InputMismatch { input, .. } => sources
                    .get(*input)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "this worker".to_string()),
                _ => "this worker".to_string(),
            };
            return fail(format!("{e} (the chunk came from {from})"));
        }
        let token = self.store.cancel_token(job);
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            cancel::scope(&token, || layer.op.run(layer, &metas, &a.block, &inputs))
        }));
        let run_nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        drop(inputs);
        match result {
            Ok(Ok(value)) => {
                let nbytes = value.nbytes() as u64;
                self.store.put((job, task), value);
                Outcome::Done {
                    job,
                    task,
                    nbytes,
                    run_nanos,
                    thread: rayon::current_thread_index().map_or(0, |i| i as u32 + 1),
                    fetched_bytes,
                }
            }
            Ok(Err(e)) => fail(e.to_string()),
            Err(panic) => fail(format!("panicked: {}", panic_message(&panic))),
        }
    }
}

/// The region of each dep the task reads when that is not the whole chunk, and its bytes (what
/// `estimate::block_bytes` counts for it), for a task of an op that reads regions; empty otherwise.
/// Deps are matched to the op's own list of them by position, as the scheduler sends them; a list
/// that does not match leaves every dep whole (the kernel's input check then says what is wrong).
fn dep_regions(
    graph: &JobGraph,
    layer_pos: usize,
    a: &TaskAssignment,
) -> (DepRegions, Vec<Option<u64>>) {
    let layer = &graph.graph.layers()[layer_pos];
    if !layer.op.reads_regions() {
        return (Arc::new([]), Vec::new());
    }
    let metas = graph.input_metas(layer_pos);
    let Some(regions) = layer.op.dep_regions(layer, &metas, &a.block) else {
        return (Arc::new([]), Vec::new());
    };
    let mut deps = Vec::new();
    layer.op.deps(layer, &metas, &a.block, &mut deps);
    if regions.len() != a.deps.len() || deps.len() != a.deps.len() {
        return (Arc::new([]), Vec::new());
    }
    let (regions, bytes): (Vec<_>, Vec<_>) = regions
        .into_iter()
        .zip(&deps)
        .map(|(region, (pos, block))| {
            let meta = metas[*pos];
            if region_is_whole(&region, &meta.chunks.block_shape(block)) {
                (None, None)
            } else {
                let bytes = (region_elems(&region) as u64).saturating_mul(meta.dtype.size() as u64);
                (Some(region), Some(bytes))
            }
        })
        .unzip();
    (regions.into(), bytes)
}

/// The position of the task's layer in its job's graph, checking that the layer exists and that the
/// block is in its grid (the scheduler's word is not taken for it: the op's rules index by it).
fn locate(graph: &JobGraph, a: &TaskAssignment) -> Result<usize, String> {
    let layer_pos = a.layer as usize;
    let Some(layer) = graph.graph.layers().get(layer_pos) else {
        return Err(format!("job {} has no layer {layer_pos}", a.job));
    };
    let grid = layer.meta.chunks.sizes();
    if a.block.len() != grid.len()
        || a.block
            .iter()
            .zip(grid)
            .any(|(&b, axis)| b as usize >= axis.len())
    {
        return Err(format!(
            "block {:?} is not in the grid of layer {} of job {}",
            a.block, layer.id, a.job
        ));
    }
    Ok(layer_pos)
}
