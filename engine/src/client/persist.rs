//! Results kept on the workers: [`Client::persist`] / `array.persist_on(&client)` run a job and keep
//! it open instead of gathering its outputs, so the workers keep the output chunks (pinned: not
//! released when the job completes, recomputed from the job's graph if a worker holding one dies).
//! The returned array reads them through an [`Op::Persisted`] layer; later graphs that use it are
//! scheduled with those chunks as inputs, fetched worker to worker, never through this process.
//!
//! The job stays open as long as a background task on the client's runtime holds its Run stream.
//! The task lets go when the [`KeptJob`] keeper inside the op is dropped (the last array built from
//! the persisted one is gone) or released ([`Client::unpersist`]): dropping it only drops a oneshot
//! sender, so `Drop` never blocks, and a client that disconnects (or a process that exits) closes the
//! stream just the same. A closed stream makes the scheduler drop the job, and every worker forgets its
//! chunks.
//!
//! A job persisted from a graph that reads other persisted arrays keeps their keepers, so its lineage
//! stays readable for as long as it is kept (a lost chunk of it is recomputed from them).
//!
//! A blocking [`Client::persist`] shows the progress bar while the job runs, from its progress
//! reports, as `compute` does (`crate::progress_bar`). The scheduler is told the job will be kept
//! (`tessera_proto::KEEP_METADATA`), so once it completes it counts against the client's
//! `--max-kept-jobs-per-client` rather than `--max-jobs-per-client`: kept arrays do not use up the
//! jobs a client may run.
//!
//! A persisted array belongs to the client connection that made it: the scheduler only lets a graph
//! read a kept job when it carries the job's key (which only the submitter received), and this side
//! refuses early, with [`Error::Persisted`], a graph that uses an array persisted by another
//! connection or one already released.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tessera_proto::v1::client_event;
use tokio::sync::oneshot;

use super::{AsyncClient, Client, FollowProgress};
use crate::array::Array;
use crate::error::{Error, Result};
use crate::exec::Progress;
use crate::graph::Graph;
use crate::ops::{Keeper, Op, Persisted};

/// The client's hold on a persisted job: while it lives, the job's Run stream stays open.
#[derive(Debug)]
pub(crate) struct KeptJob {
    session: u64,
    /// Dropping (or taking and dropping) it ends the task that holds the stream.
    hold: Mutex<Option<oneshot::Sender<()>>>,
    /// Set by an explicit release, or when the scheduler ended the stream (the job failed later, or
    /// the scheduler went away).
    released: Arc<AtomicBool>,
    /// The kept jobs this one's graph reads (it persisted an array built from persisted ones): kept
    /// as long as this one is, since recomputing a lost chunk of it reads them again.
    _lineage: Vec<Arc<dyn Keeper>>,
}

impl Keeper for KeptJob {
    fn session(&self) -> u64 {
        self.session
    }

    fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
        self.hold.lock().expect("kept job").take();
    }

    fn is_released(&self) -> bool {
        self.released.load(Ordering::Relaxed)
    }
}

impl AsyncClient {
    /// Runs `array` on the cluster and keeps its chunks on the workers; the returned array reads them
    /// there (see the `client::persist` module docs). Must be called within a tokio runtime: the task that
    /// keeps the job open runs on it.
    pub async fn persist(&self, array: &Array) -> Result<Array> {
        let op = self
            .persist_graph(
                crate::optimize::optimize(array.graph()),
                array.id().token,
                None,
            )
            .await?;
        Array::from_op(op, vec![], Some(array.meta().clone()))
    }

    /// Releases a persisted array's chunks now, whatever other arrays still use it (they fail with
    /// [`Error::Persisted`] from then on). An array that is not persisted on this client is an error.
    pub fn unpersist(&self, array: &Array) -> Result<()> {
        let layer = array.graph().get(array.id()).cloned();
        match layer.as_ref().map(|l| &l.op) {
            Some(Op::Persisted(Persisted {
                keeper: Some(k), ..
            })) if k.session() == self.session => {
                k.release();
                Ok(())
            }
            Some(Op::Persisted(Persisted {
                keeper: Some(_), ..
            })) => Err(Error::Persisted {
                layer: array.id().to_string(),
                reason: "it was persisted by another client connection".into(),
            }),
            _ => Err(Error::InvalidArgument {
                op: "unpersist",
                reason: format!("{} is not an array persisted on a cluster", array.id()),
            }),
        }
    }

    /// Refuses a graph that reads an array persisted by another connection, or one released.
    pub(crate) fn check_persisted(&self, graph: &Graph) -> Result<()> {
        for layer in graph.layers() {
            if let Op::Persisted(Persisted {
                keeper: Some(k), ..
            }) = &layer.op
            {
                let reason = if k.session() != self.session {
                    "it was persisted by another client connection, and only that connection may \
                     read its chunks (compute it there, or persist it again on this client)"
                } else if k.is_released() {
                    "its chunks were released (unpersist, or the scheduler ended the job that kept them)"
                } else {
                    continue;
                };
                return Err(Error::Persisted {
                    layer: layer.id.to_string(),
                    reason: reason.into(),
                });
            }
        }
        Ok(())
    }

    /// Submits `graph` (one output, of meta `meta`) and waits until every chunk is computed, then
    /// leaves the job open on a background task instead of gathering it; returns the op that reads
    /// the kept chunks. The job's progress reports go to `progress` (the bar of a blocking
    /// [`Client::persist`]) until it completes.
    pub(crate) async fn persist_graph(
        &self,
        graph: Graph,
        token: u64,
        progress: Option<&Progress>,
    ) -> Result<Op> {
        self.check_persisted(&graph)?;
        let lineage: Vec<Arc<dyn Keeper>> = graph
            .layers()
            .iter()
            .filter_map(|l| match &l.op {
                Op::Persisted(Persisted {
                    keeper: Some(k), ..
                }) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let (tx, mut events) = self
            .open_run(&graph, 4, "submitting a job to persist", true)
            .await?;
        let mut accepted: Option<(u64, Arc<[u8]>)> = None;
        let mut followed = FollowProgress::new(progress);
        loop {
            let event = self.job_event(events.message().await)?;
            match event.event {
                Some(client_event::Event::Accepted(a)) => {
                    accepted = Some((a.job, Arc::from(a.job_key)));
                }
                Some(client_event::Event::Progress(p)) => followed.report(&p),
                Some(client_event::Event::Completed(_)) => {
                    followed.complete();
                    break;
                }
                Some(client_event::Event::Failed(f)) => return Err(self.job_failed(f)),
                // Where the chunks are is the scheduler's business from now on.
                Some(client_event::Event::OutputsReady(_)) | None => {}
            }
        }
        let (job, key) =
            accepted.ok_or_else(|| self.remote("the job completed without being accepted"))?;
        let (hold, held) = oneshot::channel::<()>();
        let released = Arc::new(AtomicBool::new(false));
        let ended = released.clone();
        tokio::spawn(async move {
            // Holding `tx` keeps the job open; the events keep coming (outputs announced again
            // after a recomputation) and are read so that nothing piles up.
            let _open = tx;
            let drain = async { while let Ok(Some(_)) = events.message().await {} };
            tokio::select! {
                _ = held => {}
                _ = drain => ended.store(true, Ordering::Relaxed),
            }
        });
        Ok(Op::Persisted(Persisted {
            job,
            key,
            token,
            keeper: Some(Arc::new(KeptJob {
                session: self.session,
                hold: Mutex::new(Some(hold)),
                released,
                _lineage: lineage,
            })),
        }))
    }
}

impl Client {
    /// Computes every chunk on the cluster and keeps the chunks on the workers (see the
    /// `client::persist` module docs): the returned array reads them where they are. They are released when
    /// the last array built from it is dropped, on [`Client::unpersist`], or when this client
    /// disconnects.
    ///
    /// ```no_run
    /// let client = tessera::Client::connect("http://127.0.0.1:8786")?;
    /// let x = tessera::default_rng(42).random(&[10000, 10000], [1000, 1000])?;
    /// let p = client.persist(&(&x * 2.0))?;          // chunks stay on the workers
    /// let m: f64 = client.compute_scalar(&p.mean()?)?; // read where they are
    /// let s: f64 = client.compute_scalar(&p.std()?)?;
    /// client.unpersist(&p)?;                           // or drop(p)
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn persist(&self, array: &Array) -> Result<Array> {
        array.persist_on(self)
    }

    /// Releases a persisted array's chunks on the workers now (see [`AsyncClient::unpersist`]).
    pub fn unpersist(&self, array: &Array) -> Result<()> {
        self.inner.unpersist(array)
    }

    /// The job that keeps a persisted array's chunks, as the scheduler numbers it (for logs).
    pub fn persisted_job(array: &Array) -> Option<u64> {
        match &array.graph().get(array.id())?.op {
            Op::Persisted(p) => Some(p.job),
            _ => None,
        }
    }
}
