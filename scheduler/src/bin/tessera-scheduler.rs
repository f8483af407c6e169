//! The scheduler binary: `tessera-scheduler --listen 127.0.0.1:8786`. Every flag can also be set
//! through its environment variable (see `--help`). Ctrl-C or SIGTERM stops it after telling the
//! workers goodbye.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
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
