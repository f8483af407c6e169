//! The worker binary: `tessera-worker --scheduler http://127.0.0.1:8786 --threads N --memory-limit 4GiB
//! [--memory-target 0.6] [--memory-pause 0.8] [--spill-dir DIR] [--listen ADDR]
//! [--connect-timeout-secs S]`. Every flag can also be set through its environment
//! variable (see `--help`). Ctrl-C or SIGTERM retires the worker gracefully.
//!
//! The worker proves it knows the cluster secret (the scheduler's `--secret-file`, or the same per-user
//! default file) on every call, and asks the same of every caller of its own service.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tessera_proto::tls::TlsFiles;
use tessera_worker::{WorkerConfig, WorkerError, parse_memory};

#[derive(Parser, Debug)]
#[command(name = "tessera-worker", version, about = "A tessera worker node")]
struct Args {
    /// The scheduler's address.
    #[arg(
        long,
        env = "TESSERA_SCHEDULER",
        default_value = "http://127.0.0.1:8786"
    )]
    scheduler: String,
    /// Threads that run tasks (default: all cores).
    #[arg(long, env = "TESSERA_WORKER_THREADS")]
    threads: Option<usize>,
    /// Most chunk data to hold, e.g. 4GiB or 512MB.
    #[arg(long, env = "TESSERA_WORKER_MEMORY_LIMIT", default_value = "4GiB")]
    memory_limit: String,
    /// Fraction of --memory-limit past which chunks no running task reads are spilled to disk,
    /// least recently used first.
    #[arg(long, env = "TESSERA_WORKER_MEMORY_TARGET", default_value_t = 0.6)]
    memory_target: f64,
    /// Fraction of --memory-limit past which no new task starts until memory is back under.
    #[arg(long, env = "TESSERA_WORKER_MEMORY_PAUSE", default_value_t = 0.8)]
    memory_pause: f64,
    /// Directory in which the worker makes its private spill directory (removed at exit).
    /// Default: the system's temporary directory.
    #[arg(long, env = "TESSERA_WORKER_SPILL_DIR")]
    spill_dir: Option<PathBuf>,
    /// Where this worker serves chunks to peers and clients.
    #[arg(long, env = "TESSERA_WORKER_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The address peers use to reach this worker (default: the listen address).
    #[arg(long, env = "TESSERA_WORKER_ADVERTISE")]
    advertise: Option<String>,
    /// Seconds to keep trying to reach the scheduler at start-up before giving up.
    #[arg(
        long,
        env = "TESSERA_WORKER_CONNECT_TIMEOUT_SECS",
        default_value_t = 20
    )]
    connect_timeout_secs: u64,
    /// Seconds to keep trying to get back to the scheduler after losing it (scheduler restart,
    /// network failure, a long pause) before exiting.
    #[arg(
        long,
        env = "TESSERA_WORKER_RECONNECT_TIMEOUT_SECS",
        default_value_t = 300
    )]
    reconnect_timeout_secs: u64,
    /// Seconds a fetch from a peer may wait for its reply to start, and then for each piece.
    #[arg(long, env = "TESSERA_WORKER_FETCH_TIMEOUT_SECS", default_value_t = 60)]
    fetch_timeout_secs: u64,
    /// Seconds a call with one answer (registration) may take.
    #[arg(long, env = "TESSERA_WORKER_RPC_TIMEOUT_SECS", default_value_t = 30)]
    rpc_timeout_secs: u64,
    /// The cluster secret file (created if missing). Default: the scheduler's default file,
    /// $XDG_CONFIG_HOME/tessera/cluster.secret or ~/.config/tessera/cluster.secret.
    #[arg(long, env = "TESSERA_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// Send no credentials and serve chunks to anyone (for a scheduler started with --insecure).
    #[arg(long, env = "TESSERA_INSECURE")]
    insecure: bool,
    /// TLS certificate (PEM) this worker serves with and presents to the scheduler and its peers,
    /// e.g. DIR/node.pem from `tessera-scheduler certs DIR`. Advertise an https:// address.
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that verifies the scheduler and peers and, on this worker's own service,
    /// the certificates callers must present (mutual TLS).
    #[arg(long, env = "TESSERA_TLS_CA")]
    tls_ca: Option<PathBuf>,
}

impl Args {
    fn into_config(self) -> Result<WorkerConfig, WorkerError> {
        let mut config = WorkerConfig::new(self.scheduler)
            .with_memory_limit(parse_memory(&self.memory_limit)?)
            .with_memory_fractions(self.memory_target, self.memory_pause)
            .with_spill_dir(self.spill_dir)
            .with_listen(self.listen)
            .with_connect_timeout(Duration::from_secs(self.connect_timeout_secs))
            .with_reconnect_timeout(Duration::from_secs(self.reconnect_timeout_secs));
        if let Some(t) = self.threads {
            config = config.with_threads(t);
        }
        config.advertise = self.advertise;
        config.fetch_timeout = Duration::from_secs(self.fetch_timeout_secs);
        config.rpc_timeout = Duration::from_secs(self.rpc_timeout_secs);
        let secret = tessera_proto::auth::secret_for_process(
            self.secret_file.as_deref(),
            self.insecure,
            // A worker may start before its scheduler: whichever creates the file first, the other
            // reads the same secret (creation is atomic).
            true,
        )
        .map_err(|e| WorkerError::Config(e.to_string()))?;
        if let Some((_, path, _)) = &secret {
            // The scheduler announces the secret's file; a worker only says so when asked (RUST_LOG),
            // so that its errors stay one line.
            tracing::debug!("using the cluster secret in {}", path.display());
        }
        config.secret = secret.map(|(s, _, _)| s);
        let tls = TlsFiles {
            cert: self.tls_cert,
            key: self.tls_key,
            ca: self.tls_ca,
        };
        let tls_err = |e: tessera_proto::tls::TlsError| WorkerError::Config(e.to_string());
        config.server_tls = tls.server_config().map_err(tls_err)?;
        config.client_tls = tls.client().map_err(tls_err)?;
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    // A spill write past the process's file-size limit (RLIMIT_FSIZE) would kill the worker with
    // SIGXFSZ; ignored, the write fails with EFBIG and the task fails saying so.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // Freed chunks go back to the system at once, so the process's resident memory follows the
    // bytes its store accounts for (see the function for what glibc does otherwise).
    tessera::exec::memory::bound_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = Args::parse().into_config().and_then(|config| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| WorkerError::Config(format!("cannot start the runtime: {e}")))?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| WorkerError::Serve {
                    address: config.listen.to_string(),
                    message: e.to_string(),
                })?;
            tessera_worker::run(config, listener, tessera_proto::serve::shutdown_signal()).await
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
