//! Executors run a [`TaskGraph`]. [`LocalExecutor`] runs it on a rayon thread pool in this process;
//! with one thread it is the deterministic reference the tests compare against. Outputs are streamed
//! to a sink as their chunks finish, so a caller can assemble, write or keep them without the executor
//! holding every chunk. [`cancel`] lets a caller, a deadline or a failing task stop kernels that are
//! still running.

pub mod cancel;
mod local;

pub use cancel::CancelToken;
pub use local::{ExecStats, LocalExecutor, panic_message};

use std::sync::Arc;

use crate::data::ChunkValue;
use crate::error::Result;

/// Receives output chunks: (output position, block index, value).
pub type OutputSink<'a> = dyn Fn(usize, &[u32], Arc<ChunkValue>) -> Result<()> + Sync + 'a;
