//! The worker's life: serve chunks, register with the scheduler, then run the session — assignments,
//! releases and graphs in; heartbeats and task results out — until the scheduler says goodbye. On
//! shutdown the worker retires gracefully: it tells the scheduler, which moves the chunks only this
//! worker holds to others before saying goodbye.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::v1::scheduler_client::SchedulerClient;
use tessera_proto::v1::worker_server::WorkerServer;
use tessera_proto::v1::{
    Heartbeat, RegisterWorkerRequest, Retiring, TaskDone, TaskFailed, TaskResults, WorkerHello,
    WorkerMessage, scheduler_message, worker_message,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::runner::{Outcome, Runner};
use crate::service::WorkerService;
use crate::store::{JobGraph, Store};
use tessera::client::WorkerChannels as Peers;

/// How long a retiring worker waits for the scheduler's goodbye before leaving anyway.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a worker on `listener` until `shutdown` resolves (then retires gracefully) or the scheduler
/// goes away.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    config.validate()?;
    let local = listener.local_addr().map_err(|e| WorkerError::Serve {
        address: config.listen.to_string(),
        message: e.to_string(),
    })?;
    let address = config
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let store = Store::default();

    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let service =
        WorkerServer::new(WorkerService::new(store.clone())).max_decoding_message_size(64 << 20);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(tessera_proto::serve::incoming(listener), async {
                let _ = server_stopped.await;
            }),
    );

    let result = run_session(&config, &address, store, shutdown).await;
    let _ = stop_server.send(());
    let _ = server.await;
    result
}

async fn run_session(
    config: &WorkerConfig,
    address: &str,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let scheduler = config.scheduler.clone();
    let connect_err = |message: String| WorkerError::Connect {
        address: scheduler.clone(),
        message,
    };
    // A worker may start before its scheduler: keep trying for a while, as dask workers do. One
    // attempt never outlasts the patience by much (a silent host would take the whole timeout).
    let patience = config.connect_timeout;
    let endpoint = Endpoint::from_shared(scheduler.clone())
        .map_err(|e| connect_err(e.to_string()))?
        .tcp_nodelay(true)
        .connect_timeout(patience.clamp(Duration::from_secs(1), Duration::from_secs(5)));
    let deadline = tokio::time::Instant::now() + patience;
    let channel = loop {
        match endpoint.connect().await {
            Ok(c) => break c,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(connect_err(format!(
                    "gave up after {patience:?}: {}",
                    tessera::error::display_chain(&e)
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let mut client = SchedulerClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let reply = client
        .register_worker(RegisterWorkerRequest {
            protocol_version: PROTOCOL_VERSION,
            address: address.to_string(),
            threads: config.threads as u32,
            memory_limit: config.memory_limit,
        })
        .await
        .map_err(|s| WorkerError::Refused {
            address: scheduler.clone(),
            message: s.message().to_string(),
        })?
        .into_inner();
    let id = reply.worker_id;
    info!(worker = id, %address, threads = config.threads, "registered with {scheduler}");

    let (out_tx, out_rx) = mpsc::channel::<WorkerMessage>(1024);
    let send = |msg: worker_message::Msg| {
        let tx = out_tx.clone();
        async move { tx.send(WorkerMessage { msg: Some(msg) }).await.is_ok() }
    };
    send(worker_message::Msg::Hello(WorkerHello { worker_id: id })).await;
    let lost = |message: String| WorkerError::SchedulerLost {
        address: scheduler.clone(),
        message,
    };
    let mut inbound = client
        .worker_session(ReceiverStream::new(out_rx))
        .await
        .map_err(|s| lost(s.message().to_string()))?
        .into_inner();

    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("tessera-worker-{i}"))
            .build()
            .map_err(|e| {
                WorkerError::Config(format!("cannot start {} threads: {e}", config.threads))
            })?,
    );
    let (results_tx, mut results_rx) = mpsc::unbounded_channel::<Outcome>();
    let runner = Runner::new(
        store.clone(),
        Peers::default(),
        pool,
        results_tx,
        address.to_string(),
    );

    let mut heartbeat = tokio::time::interval(Duration::from_millis(
        reply.heartbeat_interval_ms.max(10) as u64,
    ));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut retiring = false;
    let retire_deadline = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(retire_deadline);
    let mut warned_memory = false;

    loop {
        tokio::select! {
            message = inbound.message() => {
                let message = match message {
                    Ok(Some(m)) => m,
                    Ok(None) if retiring => return Ok(()),
                    Ok(None) => return Err(lost("the session was closed".into())),
                    Err(s) => return Err(lost(s.message().to_string())),
                };
                let Some(msg) = message.msg else { continue };
                match msg {
                    scheduler_message::Msg::Graph(g) => {
                        let job = g.job;
                        match g.graph.map(tessera::wire::graph_from_proto) {
                            Some(Ok(graph)) => store.put_graph(job, Arc::new(JobGraph::new(graph))),
                            Some(Err(e)) => warn!(job, "cannot decode the graph: {e}"),
                            None => warn!(job, "a graph message without a graph"),
                        }
                    }
                    scheduler_message::Msg::Assign(a) => {
                        for t in a.tasks {
                            runner.start(t);
                        }
                    }
                    scheduler_message::Msg::Release(r) => {
                        store.release(r.chunks.iter().map(|c| (c.job, c.task)));
                    }
                    scheduler_message::Msg::Replicate(r) => {
                        if let Some(c) = r.chunk {
                            runner.replicate(c.job, c.task, r.from_address);
                        }
                    }
                    scheduler_message::Msg::Forget(f) => store.forget(f.job),
                    scheduler_message::Msg::Goodbye(_) => {
                        info!(worker = id, "the scheduler said goodbye");
                        return Ok(());
                    }
                }
            }
            Some(first) = results_rx.recv() => {
                let mut results = TaskResults::default();
                let mut push = |o: Outcome| match o {
                    Outcome::Done { job, task, nbytes, run_nanos } => results.done.push(TaskDone { job, task, nbytes, run_nanos }),
                    Outcome::Failed { job, task, message, missing_input } => results.failed.push(TaskFailed {
                        job,
                        task,
                        message,
                        missing_input: missing_input.map(|(job, task)| tessera_proto::v1::ChunkRef { job, task }),
                    }),
                };
                push(first);
                while let Ok(o) = results_rx.try_recv() {
                    push(o);
                }
                if !send(worker_message::Msg::Results(results)).await {
                    return Err(lost("the session was closed".into()));
                }
            }
            _ = heartbeat.tick() => {
                let bytes = store.bytes();
                if bytes > config.memory_limit && !warned_memory {
                    warn!(worker = id, bytes, limit = config.memory_limit, "holding more chunk data than --memory-limit");
                    warned_memory = true;
                } else if bytes <= config.memory_limit {
                    warned_memory = false;
                }
                send(worker_message::Msg::Heartbeat(Heartbeat {
                    bytes_held: bytes,
                    running: runner.running() as u32,
                })).await;
            }
            _ = &mut shutdown, if !retiring => {
                info!(worker = id, "retiring: handing chunks to other workers");
                retiring = true;
                retire_deadline.as_mut().reset(tokio::time::Instant::now() + RETIRE_TIMEOUT);
                send(worker_message::Msg::Retiring(Retiring {})).await;
            }
            _ = &mut retire_deadline, if retiring => {
                warn!(worker = id, "no goodbye from the scheduler in {RETIRE_TIMEOUT:?}; leaving");
                return Ok(());
            }
        }
    }
}
