//! Chunks kept on a cluster's workers by `array.persist_on(&client)`: the [`Persisted`] op, its
//! metadata rule, and what running it anywhere but on that cluster means (an error that says so).
//!
//! A persisted array is the output of a job its client keeps open: the workers keep the job's output
//! chunks (pinned, recomputed from the job's graph if a worker holding one dies), and a later graph
//! reads them through a `Persisted` layer. The layer names the job and carries its key (only the
//! submitting client received it); on the cluster each of its tasks copies one kept chunk, from the
//! worker that holds it, into the new job — the chunk never passes through the client. The local
//! executor has no access to the workers' memory, so a `Persisted` layer fails there with
//! [`Error::Persisted`] rather than fetching the chunks behind the user's back.
//!
//! The op also holds the client-side [`Keeper`] (never on the wire): every array built from a
//! persisted one shares it, and when the last of them is dropped the keeper tells the scheduler to
//! release the chunks.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Tokenizer};
use crate::ops::{Derived, InputMeta, RuleResult, chosen, no_inputs};

/// What keeps a persisted job alive on the client side; dropping the last `Arc` releases it.
pub trait Keeper: Send + Sync + fmt::Debug {
    /// The client session that persisted it (a random id per connection): graphs that read it must
    /// run on that same session.
    fn session(&self) -> u64;
    /// Releases the kept chunks now (`unpersist`), without waiting for the last handle to go.
    fn release(&self);
    /// Whether the chunks were released (explicitly, or because the cluster ended the job).
    fn is_released(&self) -> bool;
}

/// An array whose chunks are the outputs of job `job`, kept on the cluster's workers.
#[derive(Clone)]
pub struct Persisted {
    /// The job that computed and keeps the chunks.
    pub job: u64,
    /// The job's key: the capability to read its chunks (see `Accepted.job_key`).
    pub key: Arc<[u8]>,
    /// The token of the persisted layer's id, so that the persisted array's id is deterministic.
    pub token: u64,
    /// The client's handle on the kept job; `None` in a graph decoded from the wire.
    pub keeper: Option<Arc<dyn Keeper>>,
}

impl fmt::Debug for Persisted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a capability: never in debug output.
        f.debug_struct("Persisted")
            .field("job", &format_args!("{:016x}", self.job))
            .field("token", &format_args!("{:016x}", self.token))
            .field("kept", &self.keeper.is_some())
            .finish()
    }
}

impl Persisted {
    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.job);
        t.u64(self.token);
    }

    /// The grid and dtype the persisting client recorded; the scheduler checks them against the
    /// kept job's output when a graph reads it.
    pub(crate) fn output_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen_meta: Option<&ArrayMeta>,
    ) -> RuleResult<Derived> {
        no_inputs(inputs, "persisted")?;
        let meta = chosen(chosen_meta, "persisted")?;
        if self.job == 0 {
            return Err("names job 0, which is no job".to_string());
        }
        Ok(Derived::new(
            meta.chunks.clone(),
            meta.dtype,
            "the persisted job's output grid",
            "the persisted job's output",
        ))
    }

    /// Running a persisted layer anywhere but on its cluster: the chunks are in the workers' memory,
    /// not here.
    pub(crate) fn run(&self, layer: &str) -> Result<crate::data::ChunkValue> {
        Err(Error::Persisted {
            layer: layer.to_string(),
            reason: format!(
                "its chunks are kept on the cluster's workers by job {:016x}; compute arrays made \
                 from it with the client that persisted it (compute_on(&client)), or compute() it \
                 there and use the result locally",
                self.job
            ),
        })
    }
}
