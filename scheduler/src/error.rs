//! The scheduler's error type. Errors become `tonic::Status` only in the gRPC shell.

/// What can stop the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot serve on {address}: {message}")]
    Serve { address: String, message: String },
}
