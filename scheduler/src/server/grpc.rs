//! The gRPC service: decodes requests, checks protocol versions, validates and expands submitted
//! graphs, and forwards everything to the actor as events. Errors become `tonic::Status` here and only
//! here.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera::graph::expand::TaskGraph;
use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::v1 as pb;
use tessera_proto::v1::scheduler_server::Scheduler;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use super::actor::{ActorHandle, Event};
use crate::core::WorkerId;

/// The scheduler's gRPC service.
#[derive(Clone, Debug)]
pub struct SchedulerService {
    actor: ActorHandle,
    heartbeat_interval: Duration,
}

impl SchedulerService {
    pub fn new(actor: ActorHandle, heartbeat_interval: Duration) -> Self {
        SchedulerService {
            actor,
            heartbeat_interval,
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

/// Decodes, validates and expands a submitted graph; the error text is what the client sees.
fn prepare(graph: pb::Graph) -> Result<(Arc<TaskGraph>, Arc<pb::Graph>), String> {
    let wire = Arc::new(graph.clone());
    // Decoding validates the graph (missing inputs, cycles, shapes) before anything expands it.
    let graph = tessera::wire::graph_from_proto(graph).map_err(|e| e.to_string())?;
    let tasks = TaskGraph::expand(graph).map_err(|e| e.to_string())?;
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
        let id = id
            .await
            .map_err(|_| Status::unavailable("the scheduler is shutting down"))?;
        Ok(Response::new(pb::RegisterWorkerReply {
            worker_id: id.0,
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
        }))
    }

    type WorkerSessionStream = BoxStream<pb::SchedulerMessage>;

    async fn worker_session(
        &self,
        request: Request<Streaming<pb::WorkerMessage>>,
    ) -> Result<Response<Self::WorkerSessionStream>, Status> {
        let mut inbound = request.into_inner();
        let worker = match inbound.message().await? {
            Some(pb::WorkerMessage {
                msg: Some(pb::worker_message::Msg::Hello(h)),
            }) => WorkerId(h.worker_id),
            _ => {
                return Err(Status::invalid_argument(
                    "a worker session must start with hello",
                ));
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (reply, known) = oneshot::channel();
        self.send(Event::SessionOpened {
            worker,
            sender: tx,
            reply,
        })?;
        if !known.await.unwrap_or(false) {
            return Err(Status::not_found(format!(
                "worker {worker} is not registered (register first)"
            )));
        }
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
        let prepared = tokio::task::spawn_blocking(move || prepare(graph))
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
        self.send(Event::Submit {
            graph,
            wire,
            sender: tx,
            reply,
        })?;
        let job = job
            .await
            .map_err(|_| Status::unavailable("the scheduler is shutting down"))?;
        let actor = self.actor.clone();
        tokio::spawn(async move {
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
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
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
