//! `map_blocks`: a user's Rust closure applied to every chunk. The one op that cannot cross a process
//! boundary; the distributed client rejects it with [`crate::Error::NotSerializable`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::ArrayMeta;
use crate::ops::{Derived, InputMeta, RuleResult, chosen, one_input};

type BlockClosure = dyn Fn(ArrayData) -> Result<ArrayData> + Send + Sync;

/// A closure over chunks, with a token unique to the `map_blocks` call that made it.
#[derive(Clone)]
pub struct BlockFn {
    f: Arc<BlockClosure>,
    token: u64,
}

impl fmt::Debug for BlockFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockFn({:#x})", self.token)
    }
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl BlockFn {
    pub fn new(f: impl Fn(ArrayData) -> Result<ArrayData> + Send + Sync + 'static) -> Self {
        BlockFn {
            f: Arc::new(f),
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn token(&self) -> u64 {
        self.token
    }

    /// Its input's grid (a closure keeps each block's shape), and the dtype the caller's closure
    /// gives.
    pub(crate) fn output_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen_meta: Option<&ArrayMeta>,
    ) -> RuleResult<Derived> {
        let input = one_input(inputs, "map_blocks")?;
        let dtype = chosen(chosen_meta, "map_blocks")?.dtype;
        Ok(Derived::new(
            input.meta.chunks.clone(),
            dtype,
            "its input",
            "the closure's result",
        ))
    }

    pub(crate) fn run(
        &self,
        meta: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let input = deps[0].as_array()?.clone();
        let out = (self.f)(input)?;
        let expected = meta.chunks.block_shape(block);
        if out.shape() != expected.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "map_blocks",
                reason: format!(
                    "the closure returned a block of shape {:?}, expected {expected:?}",
                    out.shape()
                ),
            });
        }
        if out.dtype() != meta.dtype {
            return Err(Error::DTypeMismatch {
                expected: meta.dtype,
                actual: out.dtype(),
            });
        }
        Ok(ChunkValue::Array(out))
    }
}
