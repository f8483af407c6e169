//! Runs assigned tasks: gathers inputs (from the local store, or from the peers that hold them, one
//! call per peer), runs the engine's kernel for the task's layer and block on the worker's rayon
//! pool, keeps the result, and reports the outcome. A task whose input cannot be fetched reports which
//! one, so the scheduler recomputes it rather than failing the job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::future::join_all;
use tessera::exec::{cancel, panic_message};
use tessera::graph::check::check_inputs;
use tessera::{ChunkValue, Error};
use tessera_proto::v1::{DepLocation, TaskAssignment};
use tokio::sync::mpsc;
use tracing::debug;

use crate::store::Store;
use tessera::client::WorkerChannels as Peers;

/// A task's inputs in dependency order, each with the peer it was fetched from (`None`: local).
type Inputs = (Vec<Arc<ChunkValue>>, Vec<Option<String>>);

/// What became of a task.
#[derive(Debug)]
pub enum Outcome {
    Done {
        job: u64,
        task: u32,
        nbytes: u64,
        /// How long the kernel ran (0 for a replica).
        run_nanos: u64,
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
    /// The worker's `--memory-limit`: a task whose output chunk alone exceeds it fails instead of
    /// aborting the process on allocation.
    memory_limit: u64,
}

impl Runner {
    pub fn new(
        store: Store,
        peers: Peers,
        pool: Arc<rayon::ThreadPool>,
        results: mpsc::UnboundedSender<Outcome>,
        address: String,
    ) -> Self {
        Runner {
            store,
            peers,
            pool,
            results,
            address,
            running: Arc::new(AtomicUsize::new(0)),
            memory_limit: u64::MAX,
        }
    }

    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Tasks started and not yet reported.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Starts a task; its outcome arrives on the results channel. A task whose inputs are all in the
    /// store goes straight to the pool (no async hop: microsecond tasks are common); one that needs
    /// chunks from peers fetches them first, one call per peer.
    pub fn start(&self, a: TaskAssignment) {
        self.running.fetch_add(1, Ordering::Relaxed);
        let local: Option<Vec<_>> = a
            .deps
            .iter()
            .map(|d| self.store.get((a.job, d.task)))
            .collect();
        match local {
            Some(inputs) => self.compute(a, inputs, Vec::new()),
            None => {
                let this = self.clone();
                tokio::spawn(async move {
                    match this.gather(&a).await {
                        Ok((inputs, sources)) => this.compute(a, inputs, sources),
                        Err(outcome) => this.report(outcome),
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
    /// holders, so one chunk a peer no longer has does not cost the batch.
    async fn gather(&self, a: &TaskAssignment) -> Result<Inputs, Outcome> {
        let job = a.job;
        let key = self.store.key(job).unwrap_or_default();
        let key = &*key;
        let mut inputs: Vec<Option<Arc<ChunkValue>>> = a
            .deps
            .iter()
            .map(|d| self.store.get((job, d.task)))
            .collect();
        // Positions in `a.deps` of the inputs to fetch, by the first peer that holds them.
        let mut batches: Vec<(&str, Vec<usize>)> = Vec::new();
        // An input read twice (the diagonal blocks of `x @ x.T`) is fetched once.
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, dep) in a.deps.iter().enumerate() {
            if inputs[i].is_some() {
                continue;
            }
            if let Some(first) = a.deps[..i].iter().position(|d| d.task == dep.task) {
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
            async move { self.peers.fetch_many(peer, job, key, &tasks).await }
        }))
        .await;
        let mut failed_at: Vec<Option<&str>> = vec![None; a.deps.len()];
        let mut sources: Vec<Option<String>> = vec![None; a.deps.len()];
        for ((peer, positions), result) in batches.iter().zip(fetched) {
            match result {
                Ok(values) => {
                    for (&i, v) in positions.iter().zip(values) {
                        inputs[i] = Some(Arc::new(v));
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
            .map(|(((input, dep), failed_at), source)| async move {
                match input {
                    Some(v) => Ok((v, source)),
                    None => self
                        .fetch_alone(job, key, dep, failed_at)
                        .await
                        .map(|(v, peer)| (v, Some(peer)))
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

    /// Fetches one input by itself from each peer that holds it in turn. The peer whose batched call
    /// failed goes last: it may have lost only another chunk of the batch, or be gone.
    async fn fetch_alone(
        &self,
        job: u64,
        key: &[u8],
        dep: &DepLocation,
        failed_at: Option<&str>,
    ) -> Result<(Arc<ChunkValue>, String), String> {
        let (others, failed): (Vec<&str>, Vec<&str>) = dep
            .addresses
            .iter()
            .map(String::as_str)
            .filter(|a| *a != self.address)
            .partition(|a| Some(*a) != failed_at);
        let mut last_error = format!("no worker holds input task {}", dep.task);
        for address in others.into_iter().chain(failed) {
            match self.peers.fetch(address, job, key, dep.task).await {
                Ok(v) => return Ok((Arc::new(v), address.to_string())),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Runs the task's kernel on the pool, under its job's cancellation token, after checking that
    /// each input is what its layer declares (`sources`: the peer each input came from, when
    /// fetched); the pool thread stores the chunk and reports.
    fn compute(
        &self,
        a: TaskAssignment,
        inputs: Vec<Arc<ChunkValue>>,
        sources: Vec<Option<String>>,
    ) {
        let (job, task) = (a.job, a.task);
        let fail = move |message: String| Outcome::Failed {
            job,
            task,
            message,
            missing_input: None,
        };
        let Some(graph) = self.store.graph(job) else {
            return self.report(fail(format!("the graph of job {job} was not received")));
        };
        let layer_pos = a.layer as usize;
        if layer_pos >= graph.graph.layers().len() {
            return self.report(fail(format!("job {job} has no layer {layer_pos}")));
        }
        let this = self.clone();
        self.pool.spawn(move || {
            // Forgotten while it waited for a thread (the client went away): nothing will read it.
            if this.store.is_forgotten(job) {
                return this.report(fail(format!("job {job} was cancelled")));
            }
            let layer = &graph.graph.layers()[layer_pos];
            let metas = graph.input_metas(layer_pos);
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
                return this.report(fail(format!("{e} (the chunk came from {from})")));
            }
            // The scheduler refuses such chunks at submit against its largest worker; this worker may
            // be smaller, or have joined later.
            let out_bytes = layer
                .meta
                .chunks
                .block_shape(&a.block)
                .iter()
                .fold(layer.meta.dtype.size() as u64, |acc, &n| {
                    acc.saturating_mul(n as u64)
                });
            if out_bytes > this.memory_limit {
                return this.report(fail(format!(
                    "its output chunk of shape {:?} needs {out_bytes} bytes, more than this worker's --memory-limit of {} bytes",
                    layer.meta.chunks.block_shape(&a.block),
                    this.memory_limit
                )));
            }
            let token = this.store.cancel_token(job);
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                cancel::scope(&token, || layer.op.run(layer, &metas, &a.block, &inputs))
            }));
            let run_nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            drop(inputs);
            let outcome = match result {
                Ok(Ok(value)) => {
                    let nbytes = value.nbytes() as u64;
                    this.store.put((job, task), value);
                    Outcome::Done {
                        job,
                        task,
                        nbytes,
                        run_nanos,
                    }
                }
                Ok(Err(e)) => fail(e.to_string()),
                Err(panic) => fail(format!("panicked: {}", panic_message(&panic))),
            };
            this.report(outcome);
        });
    }
}
