//! The distributed client: [`Client`] (blocking, for plain `main`) and [`AsyncClient`] (for tokio
//! users) connect to a scheduler, submit a graph's layers, and gather output chunks directly from the
//! workers that hold them. Both implement [`Executor`] through the same code, so
//! `array.compute_on(&client)` returns what the local `compute()` returns, bit for bit.
//!
//! ```no_run
//! let client = tessera::Client::connect("http://127.0.0.1:8786")?;
//! let x = tessera::default_rng(42).random(&[10000, 10000], [1000, 1000])?;
//! let mean: f64 = client.compute_scalar(&x.mean()?)?;
//! # Ok::<(), tessera::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndarray::ArrayD;
use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::v1::scheduler_client::SchedulerClient;
use tessera_proto::v1::worker_client::WorkerClient;
use tessera_proto::v1::{
    ChunkRef, ClientMessage, Fetched, StatusRequest, Submit, client_event, client_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::array::{Array, Assembly, Executor, compute_many_on, graph_of};
use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result, display_chain};
use crate::exec::{ExecStats, OutputSink};
use crate::graph::Graph;

/// Cached gRPC channels to workers, by address, and chunk fetches over them. Workers use it for their
/// peers too.
#[derive(Clone, Debug, Default)]
pub struct WorkerChannels {
    clients: Arc<Mutex<HashMap<String, WorkerClient<Channel>>>>,
}

impl WorkerChannels {
    async fn client(&self, address: &str) -> Result<WorkerClient<Channel>, String> {
        if let Some(c) = self.clients.lock().expect("worker channels").get(address) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(address.to_string())
            .map_err(|e| format!("bad worker address {address:?}: {e}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to worker {address}: {}", display_chain(&e)))?;
        let client = WorkerClient::new(channel).max_decoding_message_size(usize::MAX);
        self.clients
            .lock()
            .expect("worker channels")
            .insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// Fetches chunk (job, task) from the worker at `address`; the error text names both.
    pub async fn fetch(&self, address: &str, job: u64, task: u32) -> Result<ChunkValue, String> {
        let result = self.fetch_once(address, job, task).await;
        if result.is_err() {
            // A restarted worker gets a fresh connection next time.
            self.clients
                .lock()
                .expect("worker channels")
                .remove(address);
        }
        result
    }

    async fn fetch_once(&self, address: &str, job: u64, task: u32) -> Result<ChunkValue, String> {
        let mut client = self.client(address).await?;
        let mut stream = client
            .fetch_chunk(ChunkRef { job, task })
            .await
            .map_err(|s| format!("{address}: {}", s.message()))?
            .into_inner();
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(piece) = stream
            .message()
            .await
            .map_err(|s| format!("{address}: {}", s.message()))?
        {
            if bytes.is_empty() && piece.total_len > 0 {
                bytes.reserve_exact(piece.total_len as usize);
            }
            bytes.extend_from_slice(&piece.data);
        }
        crate::wire::decode_chunk(&bytes)
            .map_err(|e| format!("chunk of task {task} of job {job} from {address}: {e}"))
    }
}

/// The cluster as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// Each connected worker, by id.
    pub workers: Vec<WorkerInfo>,
    /// Jobs in progress.
    pub jobs: u32,
}

/// One worker in a [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Where peers and clients reach it, e.g. `http://127.0.0.1:9001`.
    pub address: String,
    pub threads: u32,
    /// Tasks assigned to it and not reported yet.
    pub running: u32,
    /// Chunks it holds by the scheduler's books (task-done reports, releases, forgotten jobs).
    pub chunks_held: u64,
    /// Bytes of those chunks.
    pub bytes_held: u64,
    /// Bytes of chunk data the worker itself reported holding in its last heartbeat: what its memory
    /// really holds, a heartbeat late.
    pub reported_bytes: u64,
}

/// An async connection to a tessera scheduler.
#[derive(Clone, Debug)]
pub struct AsyncClient {
    address: String,
    scheduler: SchedulerClient<Channel>,
    workers: WorkerChannels,
}

impl AsyncClient {
    /// Connects and checks that the scheduler speaks this build's protocol version.
    pub async fn connect(address: &str) -> Result<AsyncClient> {
        let connect_err = |message: String| Error::Connect {
            address: address.to_string(),
            message,
        };
        let channel = Endpoint::from_shared(address.to_string())
            .map_err(|e| connect_err(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| connect_err(display_chain(&e)))?;
        let mut scheduler = SchedulerClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let status = scheduler
            .status(StatusRequest {})
            .await
            .map_err(|s| connect_err(s.message().to_string()))?
            .into_inner();
        if status.protocol_version != PROTOCOL_VERSION {
            return Err(Error::ProtocolMismatch {
                address: address.to_string(),
                ours: PROTOCOL_VERSION,
                theirs: status.protocol_version,
            });
        }
        let workers = WorkerChannels::default();
        // Open the workers' channels in the background now, so that a job's first result fetch
        // does not pay for a TCP and HTTP/2 handshake; a failure here only means the fetch connects.
        for w in &status.workers {
            let (channels, worker) = (workers.clone(), w.address.clone());
            tokio::spawn(async move {
                let _ = channels.client(&worker).await;
            });
        }
        Ok(AsyncClient {
            address: address.to_string(),
            scheduler,
            workers,
        })
    }

    /// The scheduler's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Workers and jobs as the scheduler sees them.
    pub async fn status(&self) -> Result<ClusterStatus> {
        let s = self
            .scheduler
            .clone()
            .status(StatusRequest {})
            .await
            .map_err(|s| self.remote(s.message()))?
            .into_inner();
        Ok(ClusterStatus {
            workers: s
                .workers
                .into_iter()
                .map(|w| WorkerInfo {
                    address: w.address,
                    threads: w.threads,
                    running: w.running,
                    chunks_held: w.chunks_held,
                    bytes_held: w.bytes_held,
                    reported_bytes: w.reported_bytes,
                })
                .collect(),
            jobs: s.jobs,
        })
    }

    fn remote(&self, message: &str) -> Error {
        Error::Remote {
            address: self.address.clone(),
            message: message.to_string(),
        }
    }

    /// Computes arrays on the cluster (see [`crate::compute_many`]).
    pub async fn compute_many(&self, arrays: &[&Array]) -> Result<Vec<ArrayData>> {
        let assembly = Assembly::new(arrays);
        let sink = |o: usize, block: &[u32], v: Arc<ChunkValue>| assembly.accept(o, block, v);
        self.execute(crate::optimize::optimize(graph_of(arrays)), &sink)
            .await?;
        Ok(assembly.finish())
    }

    /// Computes one array on the cluster.
    pub async fn compute<T: Element>(&self, array: &Array) -> Result<ArrayD<T>> {
        self.compute_many(&[array])
            .await?
            .pop()
            .expect("one output")
            .into_typed()
    }

    /// Runs an optimized graph on the cluster, handing output chunks to `sink` as they are gathered.
    pub async fn execute(&self, graph: Graph, sink: &OutputSink<'_>) -> Result<ExecStats> {
        let graph = crate::wire::graph_to_proto(&graph)?;
        let (tx, rx) = mpsc::channel::<ClientMessage>(64);
        tx.send(ClientMessage {
            msg: Some(client_message::Msg::Submit(Submit {
                protocol_version: PROTOCOL_VERSION,
                graph: Some(graph),
            })),
        })
        .await
        .map_err(|_| self.remote("the job stream closed before the submission"))?;
        let mut events = self
            .scheduler
            .clone()
            .run(ReceiverStream::new(rx))
            .await
            .map_err(|s| self.remote(s.message()))?
            .into_inner();
        let mut job = 0;
        let mut fetches = tokio::task::JoinSet::new();
        let mut completed: Option<u64> = None;
        let mut pending = 0usize;
        loop {
            if let Some(tasks_run) = completed
                && pending == 0
            {
                drop(tx);
                return Ok(ExecStats {
                    tasks: tasks_run as usize,
                    peak_bytes: 0,
                });
            }
            tokio::select! {
                event = events.message(), if completed.is_none() => {
                    let event = match event {
                        Ok(Some(e)) => e,
                        Ok(None) => return Err(self.remote("the scheduler ended the job without a result")),
                        Err(s) => return Err(self.remote(s.message())),
                    };
                    match event.event {
                        Some(client_event::Event::Accepted(a)) => job = a.job,
                        Some(client_event::Event::OutputsReady(ready)) => {
                            for chunk in ready.chunks {
                                let workers = self.workers.clone();
                                pending += 1;
                                fetches.spawn(async move {
                                    let value = workers.fetch(&chunk.address, job, chunk.task).await;
                                    (chunk, value)
                                });
                            }
                        }
                        Some(client_event::Event::Completed(c)) => completed = Some(c.tasks_run),
                        Some(client_event::Event::Failed(f)) => {
                            return Err(if f.key.is_empty() {
                                Error::Rejected { address: self.address.clone(), message: f.message }
                            } else {
                                Error::TaskFailed {
                                    key: f.key,
                                    message: format!("on worker {}: {}", f.worker, f.message),
                                }
                            });
                        }
                        None => {}
                    }
                }
                Some(done) = fetches.join_next(), if pending > 0 => {
                    pending -= 1;
                    let (chunk, value) = done.map_err(|e| self.remote(&format!("a fetch task failed: {e}")))?;
                    let value = value.map_err(|m| self.remote(&m))?;
                    sink(chunk.output as usize, &chunk.block, Arc::new(value))?;
                    // The scheduler may release what the client has; a closed stream only means the
                    // job is over.
                    let _ = tx
                        .send(ClientMessage {
                            msg: Some(client_message::Msg::Fetched(Fetched { tasks: vec![chunk.task] })),
                        })
                        .await;
                }
            }
        }
    }
}

/// A blocking connection to a tessera scheduler, for programs without an async runtime.
#[derive(Debug)]
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: AsyncClient,
}

impl Client {
    /// Connects to the scheduler at `address` (e.g. `http://127.0.0.1:8786`).
    pub fn connect(address: &str) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Connect {
                address: address.to_string(),
                message: format!("cannot start the client runtime: {e}"),
            })?;
        let inner = runtime.block_on(AsyncClient::connect(address))?;
        Ok(Client { runtime, inner })
    }

    /// The async client inside.
    pub fn as_async(&self) -> &AsyncClient {
        &self.inner
    }

    /// Workers and jobs as the scheduler sees them.
    pub fn status(&self) -> Result<ClusterStatus> {
        self.runtime.block_on(self.inner.status())
    }

    /// Computes one array on the cluster.
    pub fn compute<T: Element>(&self, array: &Array) -> Result<ArrayD<T>> {
        array.compute_on(self)?.into_typed()
    }

    /// Computes a 0-d array on the cluster as a scalar.
    pub fn compute_scalar<T: Element>(&self, array: &Array) -> Result<T> {
        if array.ndim() != 0 {
            return Err(Error::ShapeMismatch {
                op: "compute_scalar",
                reason: format!("array of shape {:?} is not 0-d", array.shape()),
            });
        }
        Ok(*self
            .compute::<T>(array)?
            .first()
            .expect("a 0-d array has one element"))
    }

    /// Computes several arrays in one job, sharing common subexpressions.
    pub fn compute_many(&self, arrays: &[&Array]) -> Result<Vec<ArrayData>> {
        compute_many_on(arrays, self)
    }

    /// Computes every chunk on the cluster and keeps the chunks in this process (see
    /// [`Array::persist`]).
    pub fn persist(&self, array: &Array) -> Result<Array> {
        array.persist_on(self)
    }
}

impl Executor for Client {
    fn execute_graph(&self, graph: Graph, sink: &OutputSink<'_>) -> Result<ExecStats> {
        self.runtime.block_on(self.inner.execute(graph, sink))
    }
}
