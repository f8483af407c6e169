//! The scheduler binary: `tessera-scheduler --listen 127.0.0.1:8786`. Every flag can also be set
//! through its environment variable (see `--help`). Ctrl-C or SIGTERM stops it after telling the
//! workers goodbye.
//!
//! Requests are authenticated with the cluster secret: `--secret-file`, or the per-user default file,
//! which is created on first start (its path is logged, never the secret). `--insecure` turns that off.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tessera_scheduler::config::Limits;
use tessera_scheduler::{SchedulerConfig, SchedulerError};

#[derive(Parser, Debug)]
#[command(name = "tessera-scheduler", version, about = "The tessera scheduler")]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "TESSERA_SCHEDULER_LISTEN",
        default_value = "127.0.0.1:8786"
    )]
    listen: SocketAddr,
    /// Milliseconds between worker heartbeats.
    #[arg(long, env = "TESSERA_HEARTBEAT_MS", default_value_t = 500)]
    heartbeat_ms: u64,
    /// Milliseconds of silence after which a worker is declared lost.
    #[arg(long, env = "TESSERA_HEARTBEAT_TIMEOUT_MS", default_value_t = 5000)]
    heartbeat_timeout_ms: u64,
    /// The cluster secret file (created if missing). Default: $XDG_CONFIG_HOME/tessera/cluster.secret
    /// or ~/.config/tessera/cluster.secret, created on first start.
    #[arg(long, env = "TESSERA_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// Accept requests without credentials: anyone who can reach the scheduler can use the cluster.
    #[arg(long, env = "TESSERA_INSECURE")]
    insecure: bool,
    /// Largest request accepted, e.g. 64MiB (graphs are small; data moves between workers).
    #[arg(long, env = "TESSERA_MAX_MESSAGE_SIZE", default_value = "64MiB")]
    max_message_size: String,
    /// Most layers in one submitted graph.
    #[arg(long, env = "TESSERA_MAX_LAYERS", default_value_t = Limits::default().max_layers)]
    max_layers: usize,
    /// Most chunk tasks one job may expand to.
    #[arg(long, env = "TESSERA_MAX_TASKS", default_value_t = Limits::default().max_tasks)]
    max_tasks: usize,
    /// Most jobs one client connection may have in flight.
    #[arg(long, env = "TESSERA_MAX_JOBS_PER_CLIENT", default_value_t = Limits::default().max_jobs_per_client)]
    max_jobs_per_client: usize,
}

impl Args {
    fn into_config(self) -> Result<SchedulerConfig, SchedulerError> {
        let max_message_bytes = tessera_proto::serve::parse_size(&self.max_message_size)
            .map_err(|e| SchedulerError::Config(format!("--max-message-size: {e}")))?;
        let secret = tessera_proto::auth::secret_for_process(
            self.secret_file.as_deref(),
            self.insecure,
            true,
        )
        .map_err(|e| SchedulerError::Config(e.to_string()))?;
        if let Some((_, path, created)) = &secret {
            let path = path.display();
            if *created {
                tracing::info!("generated a new cluster secret in {path}");
            } else {
                tracing::info!("using the cluster secret in {path}");
            }
        }
        let config = SchedulerConfig::default()
            .with_listen(self.listen)
            .with_heartbeat(
                Duration::from_millis(self.heartbeat_ms),
                Duration::from_millis(self.heartbeat_timeout_ms),
            )
            .with_secret(secret.map(|(s, _, _)| s))
            .with_limits(Limits {
                max_message_bytes: usize::try_from(max_message_bytes).unwrap_or(usize::MAX),
                max_layers: self.max_layers,
                max_tasks: self.max_tasks,
                max_jobs_per_client: self.max_jobs_per_client,
            });
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
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
            .map_err(|e| SchedulerError::Config(format!("cannot start the runtime: {e}")))?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| SchedulerError::Serve {
                    address: config.listen.to_string(),
                    message: e.to_string(),
                })?;
            tessera_scheduler::run(listener, config, tessera_proto::serve::shutdown_signal()).await
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}
