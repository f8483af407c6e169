//! The scheduler's I/O shell around the pure core: [`actor`] owns the core's state and applies events
//! one at a time; [`grpc`] decodes requests into events and streams the actor's messages back. Neither
//! decides anything — the policy lives in `core`.

pub mod actor;
pub mod grpc;
pub mod session;

use std::future::Future;

use tessera_proto::auth::ServerAuth;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tracing::{info, warn};

use crate::config::SchedulerConfig;

/// Aborts a task when dropped (whichever way `run` returns).
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}
use crate::error::SchedulerError;

/// Serves the scheduler on `listener` until `shutdown` resolves; then tells every worker goodbye.
pub async fn run(
    listener: TcpListener,
    config: SchedulerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SchedulerError> {
    config.validate()?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| config.listen.to_string());
    let actor = actor::spawn(config.clone());
    // The generated server, with the worker sessions' outbound messages framed by `session` (so
    // that no connection keeps a buffer the size of the largest graph it carried).
    let service = session::SessionRoute::new(
        grpc::SchedulerService::new(actor.clone(), config.heartbeat_interval, config.limits),
        config.limits.max_message_bytes,
    );
    let auth = ServerAuth::new(config.secret.clone(), "scheduler");
    if !auth.is_secure() {
        warn!(
            "AUTHENTICATION IS OFF (--insecure): anyone who can reach {address} can submit jobs, register workers and read results"
        );
    }
    let tls = config.tls.is_some();
    info!(%address, authenticated = auth.is_secure(), tls, "scheduler listening");
    let dashboard = match config.dashboard.listen {
        Some(listen) => crate::dashboard::bind(listen).await.map(|l| {
            crate::dashboard::spawn(
                l,
                actor.clone(),
                config.secret.as_deref(),
                config.dashboard.max_streams,
            )
        }),
        None => None,
    };
    // Event streams never end by themselves: the dashboard stops with the scheduler.
    let _stop_dashboard = AbortOnDrop(dashboard);
    let serve_err = |e: tonic::transport::Error| SchedulerError::Serve {
        address: address.clone(),
        message: tessera::error::display_chain(&e),
    };
    tessera_proto::serve::server(config.tls.clone())
        .map_err(serve_err)?
        .add_service(InterceptedService::new(service, auth))
        .serve_with_incoming_shutdown(tessera_proto::serve::incoming(listener), async {
            shutdown.await;
            info!("shutting down: saying goodbye to the workers");
            actor.shutdown().await;
        })
        .await
        .map_err(serve_err)
}
