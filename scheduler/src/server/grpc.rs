//! The gRPC service: decodes requests, checks protocol versions and limits, validates and expands
//! submitted graphs, and forwards everything to the actor as events. Errors become `tonic::Status` here
//! and only here. (Credentials are checked before any of this, by the `ServerAuth` interceptor that
//! wraps the service.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera::graph::estimate;
use tessera::graph::expand::TaskGraph;
use tessera::graph::limits::{self, Limit, PlanLimits};
use tessera_proto::v1 as pb;
use tessera_proto::v1::scheduler_server::Scheduler;
use tessera_proto::{KEEP_METADATA, PROTOCOL_VERSION};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use super::actor::{ActorHandle, Event, LatestProgress};
use crate::config::Limits;
use crate::core::WorkerId;

/// Per client connection: its jobs in flight, and the jobs it keeps open after they completed.
#[derive(Debug, Default)]
struct ClientJobs {
    in_flight: usize,
    kept: usize,
}

type JobCounts = Arc<Mutex<HashMap<Option<SocketAddr>, ClientJobs>>>;

/// The scheduler's gRPC service.
#[derive(Clone, Debug)]
pub struct SchedulerService {
    actor: ActorHandle,
    heartbeat_interval: Duration,
    limits: Limits,
    jobs: JobCounts,
}

/// One job counted against its client's limits until dropped (when the Run call's inbound side is
/// done with). Every job counts as in flight until it completes; an ordinary job stays in flight
/// until its stream closes (its outputs are held until fetched). A job submitted with
/// [`KEEP_METADATA`] also takes one of the client's kept slots from submission (so a persist over the
/// limit is refused before it runs, not after) and leaves the in-flight count when it completes: a
/// client holding many persisted arrays keeps its whole `--max-jobs-per-client` for computing with
/// them, and what one client can pin stays bounded by the two limits together.
#[derive(Debug)]
struct JobSlot {
    counts: JobCounts,
    client: Option<SocketAddr>,
    keep: bool,
    /// Still counted in flight (a kept job stops being at `Completed`).
    in_flight: AtomicBool,
}

impl JobSlot {
    fn start(
        counts: &JobCounts,
        client: Option<SocketAddr>,
        keep: bool,
        limits: &Limits,
    ) -> Result<Arc<Self>, Status> {
        let mut c = counts.lock().expect("job counts");
        let n = c.entry(client).or_default();
        let refused = if n.in_flight >= limits.max_jobs_per_client {
            Some(format!(
                "this client already has {} jobs in flight; the limit is {} (--max-jobs-per-client)",
                n.in_flight, limits.max_jobs_per_client
            ))
        } else if keep && n.kept >= limits.max_kept_jobs_per_client {
            Some(format!(
                "this client already keeps {} persisted jobs open; the limit is {} \
                 (--max-kept-jobs-per-client): unpersist or drop persisted arrays first",
                n.kept, limits.max_kept_jobs_per_client
            ))
        } else {
            None
        };
        if let Some(message) = refused {
            if n.in_flight == 0 && n.kept == 0 {
                c.remove(&client);
            }
            return Err(Status::resource_exhausted(message));
        }
        n.in_flight += 1;
        n.kept += usize::from(keep);
        Ok(Arc::new(JobSlot {
            counts: counts.clone(),
            client,
            keep,
            in_flight: AtomicBool::new(true),
        }))
    }

    /// The job completed: a kept job is no longer in flight (it only holds its outputs now).
    fn completed(&self) {
        if self.keep && self.in_flight.swap(false, Ordering::Relaxed) {
            let mut c = self.counts.lock().expect("job counts");
            if let Some(n) = c.get_mut(&self.client) {
                n.in_flight -= 1;
            }
        }
    }
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("job counts");
        if let Some(n) = c.get_mut(&self.client) {
            if self.in_flight.load(Ordering::Relaxed) {
                n.in_flight -= 1;
            }
            n.kept -= usize::from(self.keep);
            if n.in_flight == 0 && n.kept == 0 {
                c.remove(&self.client);
            }
        }
    }
}

impl SchedulerService {
    pub fn new(actor: ActorHandle, heartbeat_interval: Duration, limits: Limits) -> Self {
        SchedulerService {
            actor,
            heartbeat_interval,
            limits,
            jobs: JobCounts::default(),
        }
    }

    fn send(&self, event: Event) -> Result<(), Status> {
        if self.actor.send(event) {
            Ok(())
        } else {
            Err(Status::unavailable("the scheduler is shutting down"))
        }
    }
}

fn check_version(theirs: u32, who: &str) -> Result<(), Status> {
    if theirs != PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "{who} speaks tessera protocol version {theirs}, this scheduler speaks {PROTOCOL_VERSION}: run the same tessera version everywhere"
        )));
    }
    Ok(())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Checks a submitted graph against the limits, decodes, validates and expands it; the error text is
/// what the client sees. `largest_memory_limit` is the largest worker's memory limit (0: no worker
/// yet, so no chunk-size check).
fn prepare(
    graph: pb::Graph,
    limits: &Limits,
    largest_memory_limit: u64,
) -> Result<(Arc<TaskGraph>, Arc<pb::Graph>), String> {
    // Counted on the message, before decoding allocates anything per layer.
    if graph.layers.len() > limits.max_layers {
        return Err(format!(
            "the graph has {} layers; the limit is {} (--max-layers)",
            graph.layers.len(),
            limits.max_layers
        ));
    }
    let wire = Arc::new(graph.clone());
    // Decoding validates the graph (missing inputs, cycles, shapes) before anything expands it.
    let graph = tessera::wire::graph_from_proto(graph).map_err(|e| e.to_string())?;
    // The grids are checked before expansion allocates anything per chunk, and expansion itself stops
    // at the task limit (culling can make a graph with huge layers cheap, so only it knows exactly).
    let mut plan = PlanLimits::none()
        .max_layers(limits.max_layers as u64, "--max-layers")
        .max_tasks(limits.max_tasks as u64, "--max-tasks");
    if largest_memory_limit > 0 {
        plan = plan.max_chunk_bytes(largest_memory_limit, "the largest worker's --memory-limit");
    }
    limits::check(&graph, &plan).map_err(|e| e.to_string())?;
    let tasks = TaskGraph::expand_limited(graph, limits.max_tasks, "--max-tasks")
        .map_err(|e| e.to_string())?;
    // Each task's peak (inputs + output + kernel scratch) must fit some worker, or the job could
    // never finish: refuse it now, naming the layer, rather than fail it on a worker later.
    if largest_memory_limit > 0 {
        estimate::check(
            &tasks,
            &Limit::new(largest_memory_limit, "the largest worker's --memory-limit"),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok((Arc::new(tasks), wire))
}

#[tonic::async_trait]
impl Scheduler for SchedulerService {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerReply>, Status> {
        let r = request.into_inner();
        check_version(r.protocol_version, "this worker")?;
        if r.threads == 0 {
            return Err(Status::invalid_argument(
                "a worker needs at least one thread",
            ));
        }
        if !(r.address.starts_with("http://") || r.address.starts_with("https://")) {
            return Err(Status::invalid_argument(format!(
                "worker address {:?} must be a URL such as http://127.0.0.1:9001",
                r.address
            )));
        }
        let (reply, id) = oneshot::channel();
        self.send(Event::Register {
            address: r.address,
            threads: r.threads,
            memory_limit: r.memory_limit,
            reply,
        })?;
        let (id, token) = id
            .await
            .map_err(|_| Status::unavailable("the scheduler is shutting down"))??;
        Ok(Response::new(pb::RegisterWorkerReply {
            worker_id: id.0,
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
            session_token: token.to_vec(),
        }))
    }

    type WorkerSessionStream = BoxStream<pb::SchedulerMessage>;

    async fn worker_session(
        &self,
        request: Request<Streaming<pb::WorkerMessage>>,
    ) -> Result<Response<Self::WorkerSessionStream>, Status> {
        let mut inbound = request.into_inner();
        let (worker, token) = match inbound.message().await? {
            Some(pb::WorkerMessage {
                msg: Some(pb::worker_message::Msg::Hello(h)),
            }) => (WorkerId(h.worker_id), h.session_token),
            _ => {
                return Err(Status::invalid_argument(
                    "a worker session must start with hello",
                ));
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (reply, accepted) = oneshot::channel();
        self.send(Event::SessionOpened {
            worker,
            token,
            sender: tx,
            reply,
        })?;
        accepted
            .await
            .map_err(|_| Status::unavailable("the scheduler is shutting down"))??;
        let actor = self.actor.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => {
                        if let Some(msg) = m.msg
                            && !actor.send(Event::FromWorker { worker, msg })
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(worker = %worker, "worker session error: {}", e.message());
                        break;
                    }
                }
            }
            actor.send(Event::SessionClosed { worker });
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    type RunStream = BoxStream<pb::ClientEvent>;

    async fn run(
        &self,
        request: Request<Streaming<pb::ClientMessage>>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let keep = request.metadata().contains_key(KEEP_METADATA);
        let slot = JobSlot::start(&self.jobs, request.remote_addr(), keep, &self.limits)?;
        let mut inbound = request.into_inner();
        let submit = match inbound.message().await? {
            Some(pb::ClientMessage {
                msg: Some(pb::client_message::Msg::Submit(s)),
            }) => s,
            _ => return Err(Status::invalid_argument("a job must start with submit")),
        };
        check_version(submit.protocol_version, "this client")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let graph = submit
            .graph
            .ok_or_else(|| Status::invalid_argument("the submission has no graph"))?;
        // Expansion is CPU work proportional to the number of chunks: off the async threads.
        let (limits, memory) = (self.limits, self.actor.largest_memory_limit());
        let prepared = tokio::task::spawn_blocking(move || prepare(graph, &limits, memory))
            .await
            .map_err(|e| Status::internal(format!("graph preparation failed: {e}")))?;
        let (graph, wire) = match prepared {
            Ok(p) => p,
            Err(message) => {
                warn!("rejected a graph: {message}");
                let _ = tx.send(Ok(pb::ClientEvent {
                    event: Some(pb::client_event::Event::Failed(pb::JobFailed {
                        key: String::new(),
                        worker: String::new(),
                        message,
                    })),
                }));
                return Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))));
            }
        };
        let (reply, job) = oneshot::channel();
        let progress = LatestProgress::default();
        self.send(Event::Submit {
            graph,
            wire,
            sender: tx,
            progress: progress.clone(),
            reply,
        })?;
        let job = job
            .await
            .map_err(|_| Status::unavailable("the scheduler is shutting down"))??;
        let actor = self.actor.clone();
        // The outbound stream only looks at the slot (weakly: the inbound side owns it, and the
        // job's counts end with it).
        let watched = Arc::downgrade(&slot);
        let events = UnboundedReceiverStream::new(rx).map(move |mut event| {
            // A progress placeholder carries the newest report (see `LatestProgress`).
            if let Ok(pb::ClientEvent {
                event: Some(pb::client_event::Event::Progress(report)),
            }) = &mut event
                && let Some(newest) = progress.lock().unwrap_or_else(|e| e.into_inner()).take()
            {
                *report = newest;
            }
            if let Ok(pb::ClientEvent {
                event: Some(pb::client_event::Event::Completed(_)),
            }) = &event
                && let Some(slot) = watched.upgrade()
            {
                slot.completed();
            }
            event
        });
        tokio::spawn(async move {
            let _slot = slot;
            // Fetch acknowledgements until the client closes its side, which ends (or cancels) the job.
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(pb::client_message::Msg::Fetched(f)) = m.msg
                    && !actor.send(Event::Fetched {
                        job,
                        tasks: f.tasks,
                    })
                {
                    return;
                }
            }
            actor.send(Event::ClientClosed { job });
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let (reply, status) = oneshot::channel();
        self.send(Event::Status { reply })?;
        let status = status
            .await
            .map_err(|_| Status::unavailable("the scheduler is shutting down"))?;
        Ok(Response::new(status))
    }
}
