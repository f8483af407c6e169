//! The scheduler binary: `tessera-scheduler --listen 127.0.0.1:8786`. Every flag can also be set
//! through its environment variable (see `--help`). Ctrl-C or SIGTERM stops it after telling the
//! workers goodbye.
//!
//! `tessera-scheduler certs DIR [--host NAME]... [--force]` instead writes a cluster CA and a node
//! certificate for TLS into DIR (`tessera_proto::certs`) and prints the flags that use them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
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
}

#[derive(Subcommand, Debug)]
enum Command {
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(Command::Certs { dir, hosts, force }) = &args.command {
        return certs(dir, hosts, *force);
    }
    let config = SchedulerConfig::default()
        .with_listen(args.listen)
        .with_heartbeat(
            Duration::from_millis(args.heartbeat_ms),
            Duration::from_millis(args.heartbeat_timeout_ms),
        );
    let result = config.validate().and_then(|()| {
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
