//! Runs assigned tasks: gathers inputs (from the local store, or from the peers that hold them), runs
//! the engine's kernel for the task's layer and block on the worker's rayon pool, keeps the result, and
//! reports the outcome. A task whose input cannot be fetched reports which one, so the scheduler
//! recomputes it rather than failing the job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tessera::exec::panic_message;
use tessera_proto::v1::TaskAssignment;
use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use tessera::client::WorkerChannels as Peers;

/// What became of a task.
#[derive(Debug)]
pub enum Outcome {
    Done {
        job: u64,
        task: u32,
        nbytes: u64,
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

    /// Starts a task; its outcome arrives on the results channel.
    pub fn start(&self, a: TaskAssignment) {
        self.running.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = this.run(a).await;
            this.running.fetch_sub(1, Ordering::Relaxed);
            let _ = this.results.send(outcome);
        });
    }

    /// Copies a chunk from another worker (when that worker retires) and reports it like a task.
    pub fn replicate(&self, job: u64, task: u32, from: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = match this.peers.fetch(&from, job, task).await {
                Ok(v) => {
                    let nbytes = v.nbytes() as u64;
                    this.store.put((job, task), Arc::new(v));
                    Outcome::Done { job, task, nbytes }
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

    async fn run(&self, a: TaskAssignment) -> Outcome {
        let (job, task) = (a.job, a.task);
        let fail = |message: String, missing_input| Outcome::Failed {
            job,
            task,
            message,
            missing_input,
        };
        let Some(graph) = self.store.graph(job) else {
            return fail(format!("the graph of job {job} was not received"), None);
        };
        let layer_pos = a.layer as usize;
        let Some(layer) = graph.graph.layers().get(layer_pos).cloned() else {
            return fail(format!("job {job} has no layer {layer_pos}"), None);
        };
        let mut inputs = Vec::with_capacity(a.deps.len());
        for dep in &a.deps {
            if let Some(v) = self.store.get((job, dep.task)) {
                inputs.push(v);
                continue;
            }
            let mut last_error = format!("no worker holds input task {}", dep.task);
            let mut found = None;
            for address in dep.addresses.iter().filter(|a| **a != self.address) {
                match self.peers.fetch(address, job, dep.task).await {
                    Ok(v) => {
                        found = Some(Arc::new(v));
                        break;
                    }
                    Err(e) => last_error = e,
                }
            }
            match found {
                Some(v) => inputs.push(v),
                None => return fail(last_error, Some((job, dep.task))),
            }
        }
        let (tx, rx) = oneshot::channel();
        let block: Vec<u32> = a.block.clone();
        let g = graph.clone();
        self.pool.spawn(move || {
            let metas = g.input_metas(layer_pos);
            let result = catch_unwind(AssertUnwindSafe(|| {
                layer.op.run(&layer, &metas, &block, &inputs)
            }));
            let _ = tx.send(result);
        });
        match rx.await {
            Ok(Ok(Ok(value))) => {
                let nbytes = value.nbytes() as u64;
                self.store.put((job, task), value);
                Outcome::Done { job, task, nbytes }
            }
            Ok(Ok(Err(e))) => fail(e.to_string(), None),
            Ok(Err(panic)) => fail(format!("panicked: {}", panic_message(&panic)), None),
            Err(_) => fail("the task was dropped by the thread pool".into(), None),
        }
    }
}
