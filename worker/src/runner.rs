//! Runs assigned tasks: gathers inputs (from the local store, or from the peers that hold them), runs
//! the engine's kernel for the task's layer and block on the worker's rayon pool, keeps the result, and
//! reports the outcome. A task whose input cannot be fetched reports which one, so the scheduler
//! recomputes it rather than failing the job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tessera::ChunkValue;
use tessera::exec::panic_message;
use tessera_proto::v1::TaskAssignment;
use tokio::sync::mpsc;

use crate::store::Store;
use tessera::client::WorkerChannels as Peers;

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
        }
    }

    /// Tasks started and not yet reported.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Starts a task; its outcome arrives on the results channel. A task whose inputs are all in the
    /// store goes straight to the pool (no async hop: microsecond tasks are common); one that needs
    /// chunks from peers fetches them all at once first.
    pub fn start(&self, a: TaskAssignment) {
        self.running.fetch_add(1, Ordering::Relaxed);
        let local: Option<Vec<_>> = a
            .deps
            .iter()
            .map(|d| self.store.get((a.job, d.task)))
            .collect();
        match local {
            Some(inputs) => self.compute(a, inputs),
            None => {
                let this = self.clone();
                tokio::spawn(async move {
                    match this.gather(&a).await {
                        Ok(inputs) => this.compute(a, inputs),
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
    pub fn replicate(&self, job: u64, task: u32, from: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = match this.peers.fetch(&from, job, task).await {
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

    /// The task's inputs, from the store or fetched concurrently from the peers that hold them.
    async fn gather(&self, a: &TaskAssignment) -> Result<Vec<Arc<ChunkValue>>, Outcome> {
        let job = a.job;
        let fetches = a.deps.iter().map(|dep| async move {
            if let Some(v) = self.store.get((job, dep.task)) {
                return Ok(v);
            }
            let mut last_error = format!("no worker holds input task {}", dep.task);
            for address in dep.addresses.iter().filter(|a| **a != self.address) {
                match self.peers.fetch(address, job, dep.task).await {
                    Ok(v) => return Ok(Arc::new(v)),
                    Err(e) => last_error = e,
                }
            }
            Err(Outcome::Failed {
                job,
                task: a.task,
                message: last_error,
                missing_input: Some((job, dep.task)),
            })
        });
        futures_util::future::join_all(fetches)
            .await
            .into_iter()
            .collect()
    }

    /// Runs the task's kernel on the pool; the pool thread stores the chunk and reports.
    fn compute(&self, a: TaskAssignment, inputs: Vec<Arc<ChunkValue>>) {
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
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                layer.op.run(layer, &metas, &a.block, &inputs)
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
