//! The scheduler binary: `tessera-scheduler --listen 127.0.0.1:8786`. Every flag can also be set
//! through its environment variable (see `--help`). Ctrl-C or SIGTERM stops it after telling the
//! workers goodbye.
//!
//! Requests are authenticated with the cluster secret: `--secret-file`, or the per-user default file,
//! which is created on first start (its path is logged, never the secret). `--insecure` turns that off.
//! `--tls-cert`/`--tls-key` serve over TLS; `--tls-ca` also requires clients and workers to present a
//! certificate signed by that CA (mutual TLS).
//!
//! The live dashboard, `/metrics` and `/health` are served on `--dashboard` (default 127.0.0.1:8787;
//! `--no-dashboard` turns them off; a port already taken only disables the dashboard, with one line
//! in the log). `tessera-scheduler dashboard-url` prints the URL to open, with the token derived from
//! the cluster secret.
//!
//! `tessera-scheduler certs DIR [--host NAME]... [--force]` instead writes a cluster CA and a node
//! certificate for TLS into DIR (`tessera_proto::certs`) and prints the flags that use them.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tessera_proto::tls::TlsFiles;
use tessera_scheduler::config::{DashboardConfig, Limits};
use tessera_scheduler::{SchedulerConfig, SchedulerError};

#[derive(Parser, Debug)]
#[command(
    name = "tessera-scheduler",
    version,
    about = "The tessera scheduler",
    // `certs` takes none of the serving flags: `--listen X certs DIR` is a mistake worth reporting.
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// With no subcommand the scheduler serves.
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Milliseconds between progress reports to a job's client (one per job per interval at most).
    #[arg(long, env = "TESSERA_PROGRESS_INTERVAL_MS", default_value_t = 100)]
    progress_interval_ms: u64,
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
    /// Most persisted arrays (jobs kept open after they complete) one client connection may hold;
    /// they do not count against --max-jobs-per-client once complete.
    #[arg(long, env = "TESSERA_MAX_KEPT_JOBS_PER_CLIENT", default_value_t = Limits::default().max_kept_jobs_per_client)]
    max_kept_jobs_per_client: usize,
    /// TLS certificate (PEM) to serve with, e.g. DIR/node.pem from `tessera-scheduler certs DIR`.
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate (PEM): clients and workers must present a certificate it signed (mutual TLS).
    #[arg(long, env = "TESSERA_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Address of the live dashboard, /metrics and /health (HTTP). If it is taken, the scheduler
    /// runs without them and says so; port 0 picks a free port (logged).
    #[arg(long, env = "TESSERA_DASHBOARD", default_value = "127.0.0.1:8787")]
    dashboard: SocketAddr,
    /// Serve no dashboard, /metrics or /health.
    #[arg(long, env = "TESSERA_NO_DASHBOARD")]
    no_dashboard: bool,
    /// Most dashboard pages (event streams) served at once.
    #[arg(long, env = "TESSERA_DASHBOARD_MAX_STREAMS", default_value_t = DashboardConfig::default().max_streams)]
    dashboard_max_streams: usize,
    /// Most task records the dashboard's task stream keeps (it covers the last minute).
    #[arg(long, env = "TESSERA_DASHBOARD_TASK_STREAM", default_value_t = DashboardConfig::default().task_stream_len)]
    dashboard_task_stream: usize,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the URL that opens the dashboard of the scheduler using this cluster secret, with the
    /// token derived from the secret (`http://ADDR/?token=...`); opening it stores the token in a
    /// cookie. The secret file is not created.
    DashboardUrl {
        /// The dashboard's address, as given to the scheduler.
        #[arg(long, env = "TESSERA_DASHBOARD", default_value = "127.0.0.1:8787")]
        dashboard: SocketAddr,
        /// The cluster secret file. Default: the scheduler's default file.
        #[arg(long, env = "TESSERA_SECRET_FILE")]
        secret_file: Option<PathBuf>,
        /// The scheduler runs with --insecure: the URL needs no token.
        #[arg(long, env = "TESSERA_INSECURE")]
        insecure: bool,
    },
    /// Write a cluster CA and a node certificate signed by it (valid as TLS server and client for
    /// localhost, 127.0.0.1, ::1 and every --host) into DIR, then print the flags that use them.
    /// The CA is valid for 10 years, the node certificate for 1 year; keys are written with mode 0600.
    Certs {
        /// Directory to write ca.pem, ca-key.pem, node.pem and node-key.pem into (created if missing).
        dir: PathBuf,
        /// A further DNS name or IP address the nodes are reached by (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// Overwrite existing files instead of refusing.
        #[arg(long)]
        force: bool,
    },
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
        let tls = TlsFiles {
            cert: self.tls_cert,
            key: self.tls_key,
            ca: self.tls_ca,
        }
        .server_config()
        .map_err(|e| SchedulerError::Config(e.to_string()))?;
        let config = SchedulerConfig::default()
            .with_tls(tls)
            .with_listen(self.listen)
            .with_heartbeat(
                Duration::from_millis(self.heartbeat_ms),
                Duration::from_millis(self.heartbeat_timeout_ms),
            )
            .with_progress_interval(Duration::from_millis(self.progress_interval_ms))
            .with_secret(secret.map(|(s, _, _)| s))
            .with_limits(Limits {
                max_message_bytes: usize::try_from(max_message_bytes).unwrap_or(usize::MAX),
                max_layers: self.max_layers,
                max_tasks: self.max_tasks,
                max_jobs_per_client: self.max_jobs_per_client,
                max_kept_jobs_per_client: self.max_kept_jobs_per_client,
            })
            .with_dashboard(DashboardConfig {
                listen: (!self.no_dashboard).then_some(self.dashboard),
                max_streams: self.dashboard_max_streams,
                task_stream_len: self.dashboard_task_stream,
            });
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    // Before any thread starts: one heap arena, so a finished job's memory can go back (see there).
    tessera_scheduler::server::actor::single_heap_arena();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    match &args.command {
        Some(Command::Certs { dir, hosts, force }) => return certs(dir, hosts, *force),
        Some(Command::DashboardUrl {
            dashboard,
            secret_file,
            insecure,
        }) => return dashboard_url(*dashboard, secret_file.as_deref(), *insecure),
        None => {}
    }
    let result = args.into_config().and_then(|config| {
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

/// `tessera-scheduler certs`: generates the files and says how to use them.
fn certs(dir: &std::path::Path, hosts: &[String], force: bool) -> ExitCode {
    match tessera_proto::certs::generate(dir, hosts, force) {
        Ok(generated) => {
            println!("wrote {}", generated.ca_cert.display());
            println!(
                "wrote {} (the CA's key: keep it, it need not go to the nodes)",
                generated.ca_key.display()
            );
            println!("wrote {}", generated.node_cert.display());
            println!("wrote {}", generated.node_key.display());
            println!("node certificate valid for: {}", generated.hosts.join(", "));
            println!("use on the scheduler, every worker and every client:");
            println!("  {}", generated.flags());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera-scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tessera-scheduler dashboard-url`: the dashboard's URL with its token (the secret is not shown).
fn dashboard_url(
    address: SocketAddr,
    secret_file: Option<&std::path::Path>,
    insecure: bool,
) -> ExitCode {
    let secret = if insecure {
        None
    } else {
        let path = match secret_file {
            Some(p) => p.to_path_buf(),
            None => match tessera_proto::auth::default_secret_path() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("tessera-scheduler: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        match tessera_proto::auth::Secret::load(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("tessera-scheduler: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    println!(
        "{}",
        tessera_scheduler::dashboard::url(address, secret.as_ref())
    );
    ExitCode::SUCCESS
}
