//! Executors run a [`TaskGraph`](crate::graph::expand::TaskGraph). [`LocalExecutor`] runs it on a rayon thread pool in this process;
//! with one thread it is the deterministic reference the tests compare against. Outputs are streamed
//! to a sink as their chunks finish, so a caller can assemble, write or keep them without the executor
//! holding every chunk. [`memory`] holds the limit's default and parsing, and the spill storage
//! keeps chunks on disk when memory runs short. [`cancel`] lets a caller, a deadline or a failing task stop kernels that are
//! still running. [`progress`] is a run's live per-layer progress, shared by job handles, the progress
//! bar and [`ExecStats::layers`].

pub mod cancel;
mod local;
pub mod memory;
pub mod progress;
mod spill;

pub use cancel::CancelToken;
pub use local::{ExecStats, LocalExecutor, panic_message};
pub use memory::{
    MEMORY_LIMIT_ENV, TARGET_FRACTION, default_memory_limit, parse_bytes, physical_memory,
};
pub use progress::{LayerProgress, Progress, ProgressSnapshot};

use std::sync::Arc;

use crate::data::ChunkValue;
use crate::error::Result;

/// Receives output chunks: (output position, block index, value).
pub type OutputSink<'a> = dyn Fn(usize, &[u32], Arc<ChunkValue>) -> Result<()> + Sync + 'a;
