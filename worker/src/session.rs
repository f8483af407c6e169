//! The worker's life: serve chunks, register with the scheduler, then run the session — assignments,
//! releases and graphs in; heartbeats and task results out — until the scheduler says goodbye. On
//! shutdown the worker retires gracefully: it tells the scheduler, which moves the chunks only this
//! worker holds to others before saying goodbye.
//!
//! A session that is lost without a goodbye (the scheduler restarted or died, the network failed, or
//! this worker was paused long enough to be declared lost) does not end the worker: it drops every
//! chunk and graph it holds — the scheduler has already rescheduled that work, or has forgotten the
//! jobs with its restart, so nothing would ever read or release them — and registers again, as a new
//! worker, retrying with backoff for `reconnect_timeout`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::auth::{ClientAuth, ServerAuth};
use tessera_proto::dial::{DialError, Dialer, within};
use tessera_proto::v1::scheduler_client::SchedulerClient;
use tessera_proto::v1::worker_server::WorkerServer;
use tessera_proto::v1::{
    Heartbeat, RegisterWorkerRequest, Retiring, TaskDone, TaskFailed, TaskResults, WorkerHello,
    WorkerMessage, scheduler_message, worker_message,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tracing::{debug, info, warn};

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::runner::{Outcome, Runner};
use crate::service::WorkerService;
use crate::spill::SpillDir;
use crate::store::{JobGraph, MemoryLimits, Store};
use tessera::client::WorkerChannels as Peers;

/// How long a retiring worker waits for the scheduler's goodbye before leaving anyway.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Backoff between attempts to reach the scheduler: from the first to the longest wait.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// Runs a worker on `listener` until `shutdown` resolves (then retires gracefully), the scheduler says
/// goodbye, or the scheduler cannot be reached for longer than the configured patience.
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
    let scheme = if config.server_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let address = config
        .advertise
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{local}"));
    let spill = SpillDir::new(config.spill_dir.as_deref())?;
    // At debug level: a worker that fails to start says one line, and the registration line below
    // names the limit.
    debug!(
        limit = config.memory_limit,
        target = config.memory_target,
        pause = config.memory_pause,
        spill_dir = %spill.path().display(),
        "memory"
    );
    let store = Store::new(
        MemoryLimits::new(
            config.memory_limit,
            config.memory_target,
            config.memory_pause,
        ),
        Some(spill),
    );

    let auth = ServerAuth::new(config.secret.clone(), "worker");
    if !auth.is_secure() {
        warn!("AUTHENTICATION IS OFF (--insecure): anyone who can reach {address} can read chunks");
    }
    let service = InterceptedService::new(
        WorkerServer::new(WorkerService::new(store.clone())).max_decoding_message_size(64 << 20),
        auth,
    );
    let serve_err = |message: String| WorkerError::Serve {
        address: address.clone(),
        message,
    };
    let server = tessera_proto::serve::server(config.server_tls.clone())
        .map_err(|e| serve_err(tessera::error::display_chain(&e)))?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let mut server = server;
        server.add_service(service).serve_with_incoming_shutdown(
            tessera_proto::serve::incoming(listener),
            async {
                let _ = server_stopped.await;
            },
        )
    });

    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("tessera-worker-{i}"))
            .build()
            .map_err(|e| {
                WorkerError::Config(format!("cannot start {} threads: {e}", config.threads))
            })?,
    );
    let dialer = Dialer::new(
        ClientAuth::new(config.secret.clone()),
        // One attempt never outlasts the patience by much (a silent host would take all of it).
        config
            .connect_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(5)),
    )
    .with_tls(config.client_tls.clone());
    let peers = Peers::new(dialer.clone(), config.fetch_timeout);

    tokio::pin!(shutdown);
    let mut patience = config.connect_timeout;
    let result = loop {
        let session = Session {
            config: &config,
            dialer: &dialer,
            address: &address,
            store: &store,
            peers: &peers,
            pool: &pool,
        };
        let ended = match session.connect(patience, shutdown.as_mut()).await {
            Ok(Some(registered)) => session.run(registered, shutdown.as_mut()).await,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match ended {
            Ok(()) => break Ok(()),
            Err(WorkerError::SchedulerLost { message, .. }) => {
                let (chunks, bytes) = store.forget_all();
                warn!(
                    "lost the scheduler at {}: {message}; dropped {chunks} chunks ({bytes} bytes) and registering again (for up to {:?})",
                    config.scheduler, config.reconnect_timeout
                );
                patience = config.reconnect_timeout;
            }
            Err(e) => break Err(e),
        }
    };
    let _ = stop_server.send(());
    let _ = server.await;
    result
}

/// What one session with the scheduler works with.
struct Session<'a> {
    config: &'a WorkerConfig,
    dialer: &'a Dialer,
    address: &'a str,
    store: &'a Store,
    peers: &'a Peers,
    pool: &'a Arc<rayon::ThreadPool>,
}

/// A registration: the scheduler's client, the worker id, its session token and the heartbeat interval.
struct Registered {
    client: SchedulerClient<tessera_proto::dial::AuthChannel>,
    id: u32,
    token: Vec<u8>,
    heartbeat: Duration,
}

impl Session<'_> {
    fn lost(&self, message: String) -> WorkerError {
        WorkerError::SchedulerLost {
            address: self.config.scheduler.clone(),
            message,
        }
    }

    /// Registers with the scheduler, retrying what may get better (no connection, the scheduler
    /// starting or stopping) with backoff for `patience`. `None` if shutdown came first. A refusal
    /// (a wrong credential, another protocol version) is final.
    async fn connect(
        &self,
        patience: Duration,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<Registered>, WorkerError> {
        let scheduler = &self.config.scheduler;
        let deadline = tokio::time::Instant::now() + patience;
        let mut wait = FIRST_RETRY;
        loop {
            let attempt = async {
                let channel = self.dialer.connect(scheduler).await?;
                let mut client = SchedulerClient::new(channel)
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX);
                let reply = within(
                    scheduler,
                    self.config.rpc_timeout,
                    "registering",
                    client.register_worker(RegisterWorkerRequest {
                        protocol_version: PROTOCOL_VERSION,
                        address: self.address.to_string(),
                        threads: self.config.threads as u32,
                        memory_limit: self.config.memory_limit,
                    }),
                )
                .await?;
                Ok::<_, DialError>((client, reply))
            };
            let last_error = tokio::select! {
                _ = shutdown.as_mut() => return Ok(None),
                outcome = attempt => match outcome {
                    Ok((client, Ok(reply))) => {
                        let reply = reply.into_inner();
                        info!(worker = reply.worker_id, address = self.address, threads = self.config.threads, memory_limit = self.config.memory_limit, "registered with {scheduler}");
                        return Ok(Some(Registered {
                            client,
                            id: reply.worker_id,
                            token: reply.session_token,
                            heartbeat: Duration::from_millis(reply.heartbeat_interval_ms.max(10) as u64),
                        }));
                    }
                    Ok((_, Err(status))) if !retryable(status.code()) => {
                        return Err(WorkerError::Refused {
                            address: scheduler.clone(),
                            message: status.message().to_string(),
                        });
                    }
                    Ok((_, Err(status))) => status.message().to_string(),
                    Err(e) => e.to_string(),
                },
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(WorkerError::Connect {
                    address: scheduler.clone(),
                    message: format!("gave up after {patience:?}: {last_error}"),
                });
            }
            tokio::select! {
                _ = shutdown.as_mut() => return Ok(None),
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(LONGEST_RETRY);
        }
    }

    /// Runs one session until goodbye (`Ok`), retirement (`Ok`), or its loss
    /// ([`WorkerError::SchedulerLost`]).
    async fn run(
        &self,
        registered: Registered,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), WorkerError> {
        let Registered {
            mut client,
            id,
            token,
            heartbeat,
        } = registered;
        let store = self.store;
        let (out_tx, out_rx) = mpsc::channel::<WorkerMessage>(1024);
        let send = |msg: worker_message::Msg| {
            let tx = out_tx.clone();
            async move { tx.send(WorkerMessage { msg: Some(msg) }).await.is_ok() }
        };
        send(worker_message::Msg::Hello(WorkerHello {
            worker_id: id,
            session_token: token,
        }))
        .await;
        let mut inbound = within(
            &self.config.scheduler,
            self.config.rpc_timeout,
            "opening the worker session",
            client.worker_session(ReceiverStream::new(out_rx)),
        )
        .await
        .map_err(|e| self.lost(e.to_string()))?
        .map_err(|s| self.lost(s.message().to_string()))?
        .into_inner();

        // A fresh runner per session: results of tasks from a lost session go to a closed channel.
        let (results_tx, mut results_rx) = mpsc::unbounded_channel::<Outcome>();
        let runner = Runner::new(
            store.clone(),
            self.peers.clone(),
            self.pool.clone(),
            results_tx,
            self.address.to_string(),
        );

        let mut heartbeat = tokio::time::interval(heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retiring = false;
        let retire_deadline = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(retire_deadline);
        let mut was_paused = false;

        loop {
            tokio::select! {
                message = inbound.message() => {
                    let message = match message {
                        Ok(Some(m)) => m,
                        Ok(None) if retiring => return Ok(()),
                        Ok(None) => return Err(self.lost("the session was closed".into())),
                        Err(s) => return Err(self.lost(s.message().to_string())),
                    };
                    let Some(msg) = message.msg else { continue };
                    match msg {
                        scheduler_message::Msg::Graph(g) => {
                            let job = g.job;
                            store.put_key(job, &g.job_key);
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
                                runner.replicate(c.job, c.task, r.from_address, r.job_key);
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
                        Outcome::Done { job, task, nbytes, run_nanos, thread, fetched_bytes } => results.done.push(TaskDone { job, task, nbytes, run_nanos, thread, fetched_bytes }),
                        Outcome::Failed { job, task, message, missing_input } => results.failed.push(TaskFailed {
                            job,
                            task,
                            message,
                            missing_input: missing_input.map(|(job, task)| tessera_proto::v1::ChunkRef { job, task, job_key: Vec::new() }),
                        }),
                    };
                    push(first);
                    while let Ok(o) = results_rx.try_recv() {
                        push(o);
                    }
                    if !send(worker_message::Msg::Results(results)).await {
                        return Err(self.lost("the session was closed".into()));
                    }
                }
                _ = heartbeat.tick() => {
                    let m = store.memory();
                    if m.paused != was_paused {
                        info!(worker = id, held = m.held, running = m.running, spilled = m.spilled, waiting = runner.waiting(),
                            "{} (--memory-pause)", if m.paused { "paused: memory is short" } else { "memory is back under the pause fraction" });
                        was_paused = m.paused;
                    }
                    send(worker_message::Msg::Heartbeat(Heartbeat {
                        bytes_held: m.held,
                        running: runner.running() as u32,
                        bytes_running: m.running,
                        bytes_spilled: m.spilled,
                        chunks_spilled: m.spilled_chunks,
                        spill_writes: m.spill_writes,
                        spill_reads: m.spill_reads,
                        spill_nanos: m.spill_nanos,
                        paused: m.paused,
                        cpu_nanos: process_cpu_nanos(),
                    })).await;
                }
                _ = shutdown.as_mut(), if !retiring => {
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
}

/// Whether a refused registration may succeed later: the scheduler is starting, stopping or
/// unreachable. A wrong credential or another protocol version will not change by retrying.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Internal
    )
}

/// CPU time this process has used, user and system, in nanoseconds (0 if the clock is unavailable):
/// the scheduler's dashboard shows its rate as the worker's CPU use.
fn process_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}
