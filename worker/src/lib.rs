//! # tessera-worker
//!
//! A worker node of a tessera cluster. It registers with the scheduler, heartbeats, runs the tasks it
//! is assigned with the engine's kernels on its own rayon pool, keeps results in a local store, and
//! serves them to peers and clients over gRPC (`Worker.FetchChunks`, several chunks per call, and
//! `Worker.FetchChunk`), streamed in pieces so chunks of any size move directly between workers —
//! never through the scheduler.
//!
//! # Layout
//! - [`config`]: [`WorkerConfig`] and memory-size parsing; the binary's flags convert into it.
//! - [`session`]: [`run`] — serve, register, and the session loop with the scheduler (including
//!   graceful retirement).
//! - [`runner`]: gathers a task's inputs (locally, or from peers through the engine's
//!   `tessera::client::WorkerChannels`) and runs its kernel on the pool.
//! - [`service`]: the gRPC service peers and clients fetch chunks from.
//! - [`store`]: chunks and job graphs held by this worker.
//! - [`error`]: the worker's error type, [`WorkerError`].

pub mod config;
pub mod error;
pub mod runner;
pub mod service;
pub mod session;
pub mod spill;
pub mod store;

pub use config::{WorkerConfig, parse_memory};
pub use error::WorkerError;
pub use session::run;
