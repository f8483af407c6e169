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
//!
//! Every request carries a credential made from the cluster secret (see `tessera_proto::auth`):
//! [`Client::connect`] reads the secret file the scheduler wrote (the same default path, or
//! `$TESSERA_SECRET_FILE`); [`Client::builder`] takes another file, the secret's bytes, TLS settings
//! and timeouts. A job's chunks are fetched from the workers with the job's key, which only its
//! submitter receives. Nothing waits for ever: connecting, each call, and each fetched piece have
//! deadlines whose errors name the address and what was awaited.
//!
//! A job's Run stream also carries the scheduler's coalesced per-layer progress reports, which fill
//! the run's [`Progress`] (job handles, the progress bar) and [`ExecStats::layers`]. Submitting in the
//! background ([`Client::submit`], [`AsyncClient::submit`]) lives in `client/jobs.rs`; keeping
//! results on the workers ([`Client::persist`], `array.persist_on(&client)`) in `client/persist.rs`.

mod jobs;
mod persist;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndarray::ArrayD;
use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::auth::{AuthError, ClientAuth, Secret, default_secret_path};
use tessera_proto::dial::{AuthChannel, DialError, Dialer, within};
use tessera_proto::tls::TlsFiles;
use tessera_proto::v1::scheduler_client::SchedulerClient;
use tessera_proto::v1::worker_client::WorkerClient;
use tessera_proto::v1::{
    ChunkPiece, ChunkRef, ChunkRefs, ClientEvent, ClientMessage, Fetched, JobFailed, JobProgress,
    OutputChunk, StatusRequest, Submit, client_event, client_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::array::{Array, Assembly, Executor, checked_graph_of, compute_many_on};
use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result};
use crate::exec::progress::ProgressWriter;
use crate::exec::{ExecStats, LayerProgress, OutputSink, Progress};
use crate::graph::{Graph, Region};
use crate::wire::{Assembled, ChunkAssembler};

/// How long a fetch may wait for its reply to start, and then for each next piece, before it fails.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to a scheduler or worker may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call that expects one answer (status) may take.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Cached gRPC channels to workers, by address, and chunk fetches over them. Workers use it for their
/// peers too.
#[derive(Clone, Debug)]
pub struct WorkerChannels {
    dialer: Dialer,
    fetch_timeout: Duration,
    clients: Arc<Mutex<HashMap<String, WorkerClient<AuthChannel>>>>,
}

impl WorkerChannels {
    /// Channels made by `dialer`; a fetch fails when its reply does not start, or its next piece does
    /// not arrive, within `fetch_timeout`.
    pub fn new(dialer: Dialer, fetch_timeout: Duration) -> Self {
        WorkerChannels {
            dialer,
            fetch_timeout,
            clients: Arc::default(),
        }
    }

    async fn client(&self, address: &str) -> Result<WorkerClient<AuthChannel>, String> {
        if let Some(c) = self.clients.lock().expect("worker channels").get(address) {
            return Ok(c.clone());
        }
        let channel = self
            .dialer
            .connect(address)
            .await
            .map_err(|e| format!("worker: {e}"))?;
        let client = WorkerClient::new(channel).max_decoding_message_size(usize::MAX);
        self.clients
            .lock()
            .expect("worker channels")
            .insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// Fetches chunk (job, task) from the worker at `address`, showing the job's key; the error text
    /// names both.
    pub async fn fetch(
        &self,
        address: &str,
        job: u64,
        key: &[u8],
        task: u32,
    ) -> Result<ChunkValue, String> {
        let reply = async {
            let mut client = self.client(address).await?;
            self.started(
                address,
                client.fetch_chunk(ChunkRef {
                    job,
                    task,
                    job_key: key.to_vec(),
                }),
            )
            .await
        };
        let mut values = self.receive(address, job, &[task], reply).await?;
        values
            .pop()
            .ok_or_else(|| format!("{address} sent nothing for task {task} of job {job}"))
    }

    /// Fetches chunks `tasks` of `job` from the worker at `address` in one call, in that order; the
    /// error text names the address and job, and the task when one chunk was the problem.
    pub async fn fetch_many(
        &self,
        address: &str,
        job: u64,
        key: &[u8],
        tasks: &[u32],
    ) -> Result<Vec<ChunkValue>, String> {
        self.fetch_regions(address, job, key, tasks, &[]).await
    }

    /// [`WorkerChannels::fetch_many`], asking for only a region of each chunk: `regions` is empty
    /// (every chunk whole) or one per task, `None` for a chunk wanted whole. Each region comes back
    /// as the array it cuts out of its chunk; the peer refuses a region that does not lie inside
    /// its chunk.
    pub async fn fetch_regions(
        &self,
        address: &str,
        job: u64,
        key: &[u8],
        tasks: &[u32],
        regions: &[Option<Region>],
    ) -> Result<Vec<ChunkValue>, String> {
        if !regions.is_empty() && regions.len() != tasks.len() {
            return Err(format!(
                "{} regions for {} chunks of job {job} asked of {address}",
                regions.len(),
                tasks.len()
            ));
        }
        // All whole: no regions on the wire, as from a caller that knows nothing of them.
        let regions: Vec<tessera_proto::v1::Region> = if regions.iter().all(Option::is_none) {
            Vec::new()
        } else {
            regions
                .iter()
                .map(|r| tessera_proto::v1::Region {
                    start: r.iter().flatten().map(|r| r.start as u64).collect(),
                    end: r.iter().flatten().map(|r| r.end as u64).collect(),
                })
                .collect()
        };
        let reply = async {
            let mut client = self.client(address).await?;
            self.started(
                address,
                client.fetch_chunks(ChunkRefs {
                    job,
                    tasks: tasks.to_vec(),
                    job_key: key.to_vec(),
                    regions,
                }),
            )
            .await
        };
        self.receive(address, job, tasks, reply).await
    }

    /// A fetch call's reply headers, within the fetch timeout.
    async fn started<T>(
        &self,
        address: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<tonic::Response<T>, String> {
        within(
            address,
            self.fetch_timeout,
            "waiting for a fetch to start",
            call,
        )
        .await
        .map_err(|e| e.to_string())?
        .map_err(|s| format!("{address}: {}", s.message()))
    }

    /// Reads a fetch's reply: the chunks of `tasks`, each decoded as soon as its last piece is in.
    /// Any error drops the cached channel to `address`.
    async fn receive(
        &self,
        address: &str,
        job: u64,
        tasks: &[u32],
        reply: impl Future<Output = Result<tonic::Response<Streaming<ChunkPiece>>, String>>,
    ) -> Result<Vec<ChunkValue>, String> {
        let result = async {
            let mut stream = reply.await?.into_inner();
            let mut values = Vec::with_capacity(tasks.len());
            let mut splitter = Splitter::default();
            let bad_stream = |e: String| format!("{address}, job {job}, tasks {tasks:?}: {e}");
            loop {
                let piece = within(
                    address,
                    self.fetch_timeout,
                    "waiting for the next piece of a chunk",
                    stream.message(),
                )
                .await
                .map_err(|e| e.to_string())?
                .map_err(|s| format!("{address}: {}", s.message()))?;
                let last = piece.is_none();
                let chunk = match piece {
                    Some(piece) => splitter.push(piece),
                    None => splitter.finish(),
                }
                .map_err(bad_stream)?;
                if let Some((index, assembled)) = chunk {
                    let Some(&task) = tasks.get(index as usize) else {
                        return Err(format!(
                            "{address} sent chunk {index} of job {job} when {} were asked for",
                            tasks.len()
                        ));
                    };
                    let value = match assembled {
                        Assembled::Value(value) => value,
                        Assembled::Encoded(bytes) => decode(bytes).await.map_err(|e| {
                            format!("chunk of task {task} of job {job} from {address}: {e}")
                        })?,
                    };
                    values.push(value);
                }
                if last {
                    break;
                }
            }
            if values.len() != tasks.len() {
                return Err(bad_stream(format!(
                    "the reply ended after {} of {} chunks",
                    values.len(),
                    tasks.len()
                )));
            }
            Ok(values)
        }
        .await;
        if result.is_err() {
            // A restarted worker gets a fresh connection next time.
            self.clients
                .lock()
                .expect("worker channels")
                .remove(address);
        }
        result
    }
}

/// Decodes a fetched chunk; big ones on the blocking pool (see [`crate::wire::BLOCKING_CODEC_BYTES`]).
async fn decode(bytes: Vec<u8>) -> std::result::Result<ChunkValue, String> {
    if bytes.len() < crate::wire::BLOCKING_CODEC_BYTES {
        return crate::wire::decode_chunk(&bytes).map_err(|e| e.to_string());
    }
    tokio::task::spawn_blocking(move || crate::wire::decode_chunk(&bytes))
        .await
        .map_err(|e| format!("decoding failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// Cuts a fetch's stream of pieces back into its chunks. The pieces of chunk `i` carry index `i` and
/// follow those of chunk `i - 1`; a chunk ends where the next index starts, or with the stream, so a
/// chunk that encodes to nothing (one empty piece) is still seen. Each piece's bytes go straight into
/// the chunk being received ([`ChunkAssembler`]), so a large chunk is never held twice.
#[derive(Debug, Default)]
struct Splitter {
    /// The chunk being received, with its index.
    current: Option<(u32, ChunkAssembler)>,
}

impl Splitter {
    /// Takes the next piece; when it starts a new chunk, returns the one before it.
    fn push(&mut self, piece: ChunkPiece) -> Result<Option<(u32, Assembled)>, String> {
        if let Some((index, chunk)) = &mut self.current
            && *index == piece.index
        {
            return chunk
                .push(&piece.data)
                .map(|()| None)
                .map_err(|e| format!("chunk {index}: {e}"));
        }
        let due = self.current.as_ref().map_or(0, |c| u64::from(c.0) + 1);
        if u64::from(piece.index) != due {
            return Err(format!(
                "a piece of chunk {} arrived where chunk {due} was due",
                piece.index
            ));
        }
        let index = piece.index;
        let mut chunk =
            ChunkAssembler::new(piece.total_len).map_err(|e| format!("chunk {index}: {e}"))?;
        chunk
            .push(&piece.data)
            .map_err(|e| format!("chunk {index}: {e}"))?;
        self.current
            .replace((index, chunk))
            .map(complete)
            .transpose()
    }

    /// The stream has ended: the last chunk, if there was any.
    fn finish(&mut self) -> Result<Option<(u32, Assembled)>, String> {
        self.current.take().map(complete).transpose()
    }
}

fn complete((index, chunk): (u32, ChunkAssembler)) -> Result<(u32, Assembled), String> {
    chunk
        .finish()
        .map(|a| (index, a))
        .map_err(|e| format!("chunk {index}: {e}"))
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
    /// Its number of task threads.
    pub threads: u32,
    /// Tasks assigned to it and not reported yet.
    pub running: u32,
    /// Chunks it holds by the scheduler's books (task-done reports, releases, forgotten jobs).
    pub chunks_held: u64,
    /// Bytes of those chunks.
    pub bytes_held: u64,
    /// Bytes of chunk data the worker itself reported holding in its last heartbeat: what its memory
    /// really holds, a heartbeat late. Spilled chunks are not counted (see `bytes_spilled`).
    pub reported_bytes: u64,
    /// Its `--memory-limit` in bytes.
    pub memory_limit: u64,
    /// Bytes reserved for its running tasks (inputs and outputs), from its last heartbeat.
    pub bytes_running: u64,
    /// Bytes and chunks it has written to its spill directory, from its last heartbeat.
    pub bytes_spilled: u64,
    /// Chunks now in its spill directory.
    pub chunks_spilled: u64,
    /// Spill writes and reads so far, and the nanoseconds spent in them.
    pub spill_writes: u64,
    /// Spill reads so far.
    pub spill_reads: u64,
    /// Nanoseconds spent in spill writes and reads so far.
    pub spill_nanos: u64,
    /// Whether it is past its `--memory-pause` fraction and starting no new task.
    pub paused: bool,
}

/// Where a client's cluster secret comes from.
#[derive(Clone, Debug)]
enum SecretSource {
    /// The default secret file, if it exists (a scheduler started with `--insecure` needs none).
    Default,
    File(PathBuf),
    Bytes(Arc<Secret>),
    Insecure,
}

/// TLS files named by `TESSERA_TLS_CA`, `TESSERA_TLS_CERT` and `TESSERA_TLS_KEY` (the binaries'
/// variables), so that a program connecting with defaults joins a TLS cluster configured the same way.
fn tls_from_env() -> TlsFiles {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    TlsFiles {
        cert: var("TESSERA_TLS_CERT"),
        key: var("TESSERA_TLS_KEY"),
        ca: var("TESSERA_TLS_CA"),
    }
}

/// Settings for connecting to a scheduler: [`Client::builder`] or [`AsyncClient::builder`]. The
/// defaults read the secret file and TLS files the binaries would (`TESSERA_SECRET_FILE`,
/// `TESSERA_TLS_CA`, `TESSERA_TLS_CERT`, `TESSERA_TLS_KEY`, else the per-user secret file).
///
/// ```no_run
/// use std::time::Duration;
/// let client = tessera::Client::builder("http://sched-host:8786")
///     .secret_file("/etc/tessera/cluster.secret")
///     .connect_timeout(Duration::from_secs(5))
///     .connect()?;
/// # Ok::<(), tessera::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    address: String,
    secret: SecretSource,
    tls: TlsFiles,
    connect_timeout: Duration,
    rpc_timeout: Duration,
    fetch_timeout: Duration,
}

impl ClientBuilder {
    fn new(address: &str) -> Self {
        ClientBuilder {
            address: address.to_string(),
            secret: SecretSource::Default,
            tls: tls_from_env(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }

    /// Reads the cluster secret from this file instead of the default one.
    pub fn secret_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret = SecretSource::File(path.into());
        self
    }

    /// Uses these bytes as the cluster secret (at least 16).
    pub fn secret(mut self, bytes: impl AsRef<[u8]>) -> Result<Self> {
        self.secret = SecretSource::Bytes(Arc::new(Secret::from_bytes(bytes.as_ref())?));
        Ok(self)
    }

    /// Sends no credentials (for a scheduler started with `--insecure`).
    pub fn insecure(mut self) -> Self {
        self.secret = SecretSource::Insecure;
        self
    }

    /// Verifies the scheduler's and workers' TLS certificates with this CA (PEM), for `https://`
    /// addresses.
    pub fn tls_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.tls.ca = Some(ca.into());
        self
    }

    /// Presents this certificate and key (PEM) to the cluster, as mutual TLS requires.
    pub fn tls_identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.cert = Some(cert.into());
        self.tls.key = Some(key.into());
        self
    }

    /// Longest wait to connect and hear back from the scheduler (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for a call with one answer, such as [`Client::status`] (default 30 s).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// Longest wait for a result fetch from a worker to start, and then for each piece (default 60 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The secret to use, and the default path when none was found there.
    fn resolve_secret(&self) -> Result<(Option<Arc<Secret>>, Option<PathBuf>)> {
        Ok(match &self.secret {
            SecretSource::Default => {
                let path = default_secret_path()?;
                match Secret::load(&path) {
                    Ok(s) => (Some(Arc::new(s)), None),
                    Err(AuthError::Missing { path }) => (None, Some(path)),
                    Err(e) => return Err(e.into()),
                }
            }
            SecretSource::File(path) => (Some(Arc::new(Secret::load(path)?)), None),
            SecretSource::Bytes(s) => (Some(s.clone()), None),
            SecretSource::Insecure => (None, None),
        })
    }

    /// Connects, from a program without an async runtime.
    pub fn connect(self) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Connect {
                address: self.address.clone(),
                message: format!("cannot start the client runtime: {e}"),
            })?;
        let inner = runtime.block_on(self.connect_async())?;
        Ok(Client { runtime, inner })
    }

    /// Connects and checks that the scheduler speaks this build's protocol version.
    pub async fn connect_async(self) -> Result<AsyncClient> {
        let address = self.address.as_str();
        let connect_err = |message: String| Error::Connect {
            address: address.to_string(),
            message,
        };
        let (secret, missing) = self.resolve_secret()?;
        let tls = self.tls.client().map_err(|e| connect_err(e.to_string()))?;
        let dialer = Dialer::new(ClientAuth::new(secret), self.connect_timeout).with_tls(tls);
        let channel = dialer
            .connect(address)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let mut scheduler = SchedulerClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let status = within(
            address,
            self.connect_timeout,
            "waiting for the scheduler's status (is it a tessera scheduler?)",
            scheduler.status(StatusRequest {}),
        )
        .await
        .map_err(|e| connect_err(e.to_string()))?
        .map_err(|s| {
            let mut message = s.message().to_string();
            if let (tonic::Code::Unauthenticated, Some(path)) = (s.code(), &missing) {
                message.push_str(&format!(
                    " (no cluster secret was found at {})",
                    path.display()
                ));
            }
            connect_err(message)
        })?
        .into_inner();
        if status.protocol_version != PROTOCOL_VERSION {
            return Err(Error::ProtocolMismatch {
                address: address.to_string(),
                ours: PROTOCOL_VERSION,
                theirs: status.protocol_version,
            });
        }
        let workers = WorkerChannels::new(dialer, self.fetch_timeout);
        // Open the workers' channels in the background now, so that a job's first result fetch
        // does not pay for a TCP and HTTP/2 handshake; a failure here only means the fetch connects.
        for w in &status.workers {
            let (channels, worker) = (workers.clone(), w.address.clone());
            tokio::spawn(async move {
                let _ = channels.client(&worker).await;
            });
        }
        // A random id for this connection: arrays it persists can only be read by its graphs.
        let token = tessera_proto::auth::random_token().map_err(|e| connect_err(e.to_string()))?;
        Ok(AsyncClient {
            address: self.address,
            scheduler,
            workers,
            rpc_timeout: self.rpc_timeout,
            session: u64::from_le_bytes(token[..8].try_into().expect("8 bytes")),
            fetched: Arc::default(),
        })
    }
}

/// An async connection to a tessera scheduler.
#[derive(Clone, Debug)]
pub struct AsyncClient {
    address: String,
    scheduler: SchedulerClient<AuthChannel>,
    workers: WorkerChannels,
    rpc_timeout: Duration,
    /// This connection's random id (see `client/persist.rs`).
    session: u64,
    /// Bytes of output chunks this connection has gathered from workers.
    fetched: Arc<AtomicU64>,
}

impl AsyncClient {
    /// Bytes of chunk data this connection (and its clones) has fetched from workers so far: what
    /// results cost in transfer to this process. Persisted arrays add nothing to it until computed
    /// results are gathered.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Connects with the defaults: the default secret file, 10 s to connect.
    pub async fn connect(address: &str) -> Result<AsyncClient> {
        ClientBuilder::new(address).connect_async().await
    }

    /// Settings for connecting (secret, timeouts); finish with [`ClientBuilder::connect_async`].
    pub fn builder(address: &str) -> ClientBuilder {
        ClientBuilder::new(address)
    }

    /// The scheduler's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Workers and jobs as the scheduler sees them.
    pub async fn status(&self) -> Result<ClusterStatus> {
        let mut scheduler = self.scheduler.clone();
        let s = within(
            &self.address,
            self.rpc_timeout,
            "waiting for the cluster's status",
            scheduler.status(StatusRequest {}),
        )
        .await
        .map_err(|e: DialError| self.remote(&e.to_string()))?
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
                    memory_limit: w.memory_limit,
                    bytes_running: w.bytes_running,
                    bytes_spilled: w.bytes_spilled,
                    chunks_spilled: w.chunks_spilled,
                    spill_writes: w.spill_writes,
                    spill_reads: w.spill_reads,
                    spill_nanos: w.spill_nanos,
                    paused: w.paused,
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

    /// Opens a Run stream and submits `graph` on it: the sender keeps the job open (dropping it
    /// cancels the job) and the events stream answers it. `what` names the call in a timeout error;
    /// `keep` tells the scheduler the job will be kept open after it completes (a persist), which it
    /// counts against its kept-jobs limit instead of the jobs-in-flight one.
    async fn open_run(
        &self,
        graph: &Graph,
        buffer: usize,
        what: &'static str,
        keep: bool,
    ) -> Result<(mpsc::Sender<ClientMessage>, Streaming<ClientEvent>)> {
        let graph = crate::wire::graph_to_proto(graph)?;
        let (tx, rx) = mpsc::channel::<ClientMessage>(buffer);
        tx.send(ClientMessage {
            msg: Some(client_message::Msg::Submit(Submit {
                protocol_version: PROTOCOL_VERSION,
                graph: Some(graph),
            })),
        })
        .await
        .map_err(|_| self.remote("the job stream closed before the submission"))?;
        let mut scheduler = self.scheduler.clone();
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        if keep {
            request.metadata_mut().insert(
                tessera_proto::KEEP_METADATA,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        let events = within(
            &self.address,
            self.rpc_timeout,
            what,
            scheduler.run(request),
        )
        .await
        .map_err(|e| self.remote(&e.to_string()))?
        .map_err(|s| self.remote(s.message()))?
        .into_inner();
        Ok((tx, events))
    }

    /// The next event of a job's stream, or the error a closed or broken stream means.
    fn job_event(
        &self,
        next: std::result::Result<Option<ClientEvent>, tonic::Status>,
    ) -> Result<ClientEvent> {
        match next {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(self.remote("the scheduler ended the job without a result")),
            Err(s) => Err(self.remote(s.message())),
        }
    }

    /// The error a job's Failed event stands for: a rejection at submit (no task key) or a task
    /// that failed on a worker.
    fn job_failed(&self, f: JobFailed) -> Error {
        if f.key.is_empty() {
            Error::Rejected {
                address: self.address.clone(),
                message: f.message,
            }
        } else {
            Error::TaskFailed {
                key: f.key,
                message: format!("on worker {}: {}", f.worker, f.message),
            }
        }
    }

    /// Computes arrays on the cluster (see [`crate::compute_many`]).
    pub async fn compute_many(&self, arrays: &[&Array]) -> Result<Vec<ArrayData>> {
        let assembly = Assembly::new(arrays);
        let sink = |o: usize, block: &[u32], v: Arc<ChunkValue>| assembly.accept(o, block, v);
        self.execute(crate::optimize::optimize(checked_graph_of(arrays)?), &sink)
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
        self.execute_observed(graph, sink, Observer::default())
            .await
    }

    /// [`AsyncClient::execute`], reporting to `observer` (progress, acceptance) and stopping with
    /// [`Error::Cancelled`] when its cancel signal fires, which closes the Run stream: the scheduler
    /// then drops the job and its workers forget it.
    pub(crate) async fn execute_observed(
        &self,
        graph: Graph,
        sink: &OutputSink<'_>,
        observer: Observer<'_>,
    ) -> Result<ExecStats> {
        let cancelled = async {
            match observer.cancel {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(cancelled);
        self.check_persisted(&graph)?;
        let mut followed = FollowProgress::new(observer.progress);
        let (tx, mut events) = tokio::select! {
            run = self.open_run(&graph, 64, "submitting a job", false) => run?,
            _ = &mut cancelled => return Err(job_cancelled()),
        };
        let mut job = 0;
        let mut key: Arc<[u8]> = Arc::from(Vec::new());
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
                    layers: followed.complete(),
                    ..ExecStats::default()
                });
            }
            tokio::select! {
                _ = &mut cancelled => return Err(job_cancelled()),
                event = events.message(), if completed.is_none() => {
                    let event = self.job_event(event)?;
                    match event.event {
                        Some(client_event::Event::Accepted(a)) => {
                            job = a.job;
                            key = Arc::from(a.job_key);
                            if let Some(f) = observer.accepted {
                                f();
                            }
                        }
                        Some(client_event::Event::Progress(p)) => followed.report(&p),
                        Some(client_event::Event::OutputsReady(ready)) => {
                            // One call per worker for the chunks announced together.
                            let mut by_worker: HashMap<String, Vec<OutputChunk>> = HashMap::new();
                            for chunk in ready.chunks {
                                by_worker.entry(chunk.address.clone()).or_default().push(chunk);
                            }
                            for (address, chunks) in by_worker {
                                let workers = self.workers.clone();
                                let key = key.clone();
                                pending += 1;
                                fetches.spawn(async move {
                                    let tasks: Vec<u32> = chunks.iter().map(|c| c.task).collect();
                                    let values = workers.fetch_many(&address, job, &key, &tasks).await;
                                    (chunks, values)
                                });
                            }
                        }
                        Some(client_event::Event::Completed(c)) => completed = Some(c.tasks_run),
                        Some(client_event::Event::Failed(f)) => return Err(self.job_failed(f)),
                        None => {}
                    }
                }
                Some(done) = fetches.join_next(), if pending > 0 => {
                    pending -= 1;
                    let (chunks, values) = done.map_err(|e| self.remote(&format!("a fetch task failed: {e}")))?;
                    let values = values.map_err(|m| self.remote(&m))?;
                    for (chunk, value) in chunks.iter().zip(values) {
                        self.fetched.fetch_add(value.nbytes() as u64, Ordering::Relaxed);
                        sink(chunk.output as usize, &chunk.block, Arc::new(value))?;
                    }
                    // The scheduler may release what the client has; a closed stream only means the
                    // job is over.
                    let tasks = chunks.iter().map(|c| c.task).collect();
                    let _ = tx
                        .send(ClientMessage {
                            msg: Some(client_message::Msg::Fetched(Fetched { tasks })),
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
    /// Connects to the scheduler at `address` (e.g. `http://127.0.0.1:8786`) with the default secret
    /// file and timeouts.
    pub fn connect(address: &str) -> Result<Client> {
        ClientBuilder::new(address).connect()
    }

    /// Settings for connecting (secret, timeouts); finish with [`ClientBuilder::connect`].
    pub fn builder(address: &str) -> ClientBuilder {
        ClientBuilder::new(address)
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

    /// Bytes of chunk data this client has fetched from workers (see [`AsyncClient::bytes_fetched`]).
    pub fn bytes_fetched(&self) -> u64 {
        self.inner.bytes_fetched()
    }
}

impl Executor for Client {
    fn execute_graph(&self, graph: Graph, sink: &OutputSink<'_>) -> Result<ExecStats> {
        self.runtime.block_on(self.inner.execute(graph, sink))
    }

    fn execute_graph_with_progress(
        &self,
        graph: Graph,
        sink: &OutputSink<'_>,
        progress: &Progress,
    ) -> Result<ExecStats> {
        let observer = Observer {
            progress: Some(progress),
            ..Observer::default()
        };
        let result = self
            .runtime
            .block_on(self.inner.execute_observed(graph, sink, observer));
        progress.finish();
        result
    }

    /// Keeps the chunks on the workers (see `client/persist.rs`).
    /// Shows the progress bar while the job runs, as `compute` does.
    fn persist_graph(&self, graph: &Graph, token: u64) -> Result<Option<crate::ops::Op>> {
        crate::progress_bar::with_bar(|progress| {
            let result =
                self.runtime
                    .block_on(self.inner.persist_graph(graph.clone(), token, progress));
            if let Some(p) = progress {
                p.finish();
            }
            result.map(Some)
        })
    }
}

/// Follows a job's per-layer progress reports into its layer counts (which only move forward,
/// whatever order reports come in) and, when someone watches the run, into its [`Progress`].
pub(crate) struct FollowProgress<'a> {
    layers: Vec<LayerProgress>,
    writer: Option<ProgressWriter>,
    progress: Option<&'a Progress>,
}

impl<'a> FollowProgress<'a> {
    pub(crate) fn new(progress: Option<&'a Progress>) -> Self {
        FollowProgress {
            layers: Vec::new(),
            writer: None,
            progress,
        }
    }

    /// One report from the scheduler.
    pub(crate) fn report(&mut self, p: &JobProgress) {
        let same = p.layers.len() == self.layers.len()
            && p.layers
                .iter()
                .zip(&self.layers)
                .all(|(a, b)| a.layer == b.layer);
        if !same {
            self.layers = p
                .layers
                .iter()
                .map(|l| LayerProgress {
                    layer: l.layer.clone(),
                    name: l
                        .layer
                        .rsplit_once('-')
                        .map_or(&*l.layer, |(n, _)| n)
                        .to_string(),
                    ..LayerProgress::default()
                })
                .collect();
            self.writer = self
                .progress
                .map(|pr| pr.start(p.layers.iter().map(|l| (l.layer.clone(), l.total))));
        }
        for (i, (l, mine)) in p.layers.iter().zip(&mut self.layers).enumerate() {
            mine.total = mine.total.max(l.total);
            mine.done = mine.done.max(l.done.min(l.total));
            mine.bytes = mine.bytes.max(l.bytes);
            if let Some(w) = &self.writer {
                w.set(i, l.done, l.total, l.bytes);
            }
        }
    }

    /// The job completed: every layer is done; returns the per-layer counts.
    pub(crate) fn complete(self) -> Vec<LayerProgress> {
        let mut layers = self.layers;
        for l in &mut layers {
            l.done = l.total;
        }
        if let Some(w) = &self.writer {
            w.complete();
        }
        layers
    }
}

/// Who watches a cluster run: where its progress goes, a signal that cancels it, and what to call
/// when the scheduler accepts it.
#[derive(Default)]
pub(crate) struct Observer<'a> {
    pub progress: Option<&'a Progress>,
    pub cancel: Option<&'a tokio::sync::Notify>,
    pub accepted: Option<&'a (dyn Fn() + Send + Sync)>,
}

fn job_cancelled() -> Error {
    Error::Cancelled {
        reason: "the job was cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(index: u32, total_len: u64, data: &[u8]) -> ChunkPiece {
        ChunkPiece {
            total_len,
            data: data.to_vec(),
            index,
        }
    }

    /// The chunks of a reply, as bytes: these pieces are not array encodings, so the assembler
    /// hands each back whole.
    fn split(pieces: Vec<ChunkPiece>) -> Result<Vec<(u32, Vec<u8>)>, String> {
        let mut splitter = Splitter::default();
        let mut chunks = Vec::new();
        for p in pieces {
            chunks.extend(splitter.push(p)?);
        }
        chunks.extend(splitter.finish()?);
        Ok(chunks
            .into_iter()
            .map(|(i, a)| match a {
                Assembled::Encoded(bytes) => (i, bytes),
                Assembled::Value(v) => panic!("chunk {i} decoded as {v:?}"),
            })
            .collect())
    }

    #[test]
    fn a_reply_splits_into_its_chunks_even_empty_ones() {
        let chunks = split(vec![
            piece(0, 5, b"abc"),
            piece(0, 0, b"de"),
            piece(1, 0, b""),
            piece(2, 1, b"f"),
            piece(3, 0, b""),
        ]);
        let want: Vec<(u32, Vec<u8>)> = vec![
            (0, b"abcde".to_vec()),
            (1, Vec::new()),
            (2, b"f".to_vec()),
            (3, Vec::new()),
        ];
        assert_eq!(chunks, Ok(want));
        assert_eq!(split(Vec::new()), Ok(Vec::new()));
    }

    #[test]
    fn array_chunks_arrive_decoded_and_partials_whole() {
        let a = ChunkValue::Array(ArrayData::F64(
            ndarray::Array::range(0.0, 5000.0, 1.0).into_dyn(),
        ));
        let m = ChunkValue::Moments(crate::data::Moments {
            count: ndarray::arr1(&[2.0]).into_dyn(),
            mean: ndarray::arr1(&[0.5]).into_dyn(),
            m2: None,
        });
        let mut pieces = Vec::new();
        for (index, value) in [a.clone(), m.clone()].into_iter().enumerate() {
            let mut encoder = crate::wire::PieceEncoder::new(std::sync::Arc::new(value));
            let total = encoder.total_len() as u64;
            let mut first = true;
            while !encoder.is_done() {
                let data = encoder.next_piece(1000);
                pieces.push(piece(index as u32, if first { total } else { 0 }, &data));
                first = false;
            }
        }
        assert!(pieces.len() > 40);
        let mut splitter = Splitter::default();
        let mut chunks = Vec::new();
        for p in pieces {
            chunks.extend(splitter.push(p).unwrap());
        }
        chunks.extend(splitter.finish().unwrap());
        assert_eq!(chunks.len(), 2);
        assert!(matches!(&chunks[0], (0, Assembled::Value(v)) if *v == a));
        match &chunks[1] {
            (1, Assembled::Encoded(bytes)) => {
                assert_eq!(crate::wire::decode_chunk(bytes).unwrap(), m)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_garbled_reply_is_an_error_naming_the_chunk() {
        let skipped = split(vec![piece(0, 1, b"a"), piece(2, 1, b"b")]).unwrap_err();
        assert!(
            skipped.contains("chunk 2") && skipped.contains("chunk 1 was due"),
            "{skipped}"
        );
        let back = split(vec![
            piece(0, 1, b"a"),
            piece(1, 1, b"b"),
            piece(0, 1, b"c"),
        ]);
        assert!(back.is_err());
        let short = split(vec![piece(0, 4, b"ab"), piece(1, 0, b"")]).unwrap_err();
        assert!(
            short.contains("chunk 0: ") && short.contains("announced 4 bytes and 2 arrived"),
            "{short}"
        );
        let huge = split(vec![piece(0, u64::MAX, b"")]).unwrap_err();
        assert!(huge.contains("more than this process can hold"), "{huge}");
    }
}
