//! The scheduler's I/O shell around the pure core: [`actor`] owns the core's state and applies events
//! one at a time; [`grpc`] decodes requests into events and streams the actor's messages back. Neither
//! decides anything — the policy lives in `core`.

pub mod actor;
pub mod grpc;

use std::future::Future;

use tessera_proto::v1::scheduler_server::SchedulerServer;
use tokio::net::TcpListener;
use tracing::info;

use crate::config::SchedulerConfig;
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
    let service = SchedulerServer::new(grpc::SchedulerService::new(
        actor.clone(),
        config.heartbeat_interval,
    ))
    .max_decoding_message_size(usize::MAX)
    .max_encoding_message_size(usize::MAX);
    info!(%address, "scheduler listening");
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(tessera_proto::serve::incoming(listener), async {
            shutdown.await;
            info!("shutting down: saying goodbye to the workers");
            actor.shutdown().await;
        })
        .await
        .map_err(|e| SchedulerError::Serve {
            address: address.clone(),
            message: e.to_string(),
        })
}
