//! The worker's error type.

/// What can stop a worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot reach the scheduler at {address}: {message}")]
    Connect { address: String, message: String },
    #[error("the scheduler at {address} refused this worker: {message}")]
    Refused { address: String, message: String },
    #[error("lost the scheduler at {address}: {message}")]
    SchedulerLost { address: String, message: String },
    #[error("cannot serve on {address}: {message}")]
    Serve { address: String, message: String },
}
