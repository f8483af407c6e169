//! The wire format: the one module where the engine's types meet the protobuf messages of
//! `tessera-proto` ([`pb`]). Every graph type converts both ways — encoding with `From`/`TryFrom`
//! from a reference, decoding with `TryFrom` from the message — and chunks have a fast path
//! ([`encode_chunk`], [`decode_chunk`]) for the bytes workers stream to each other.
//!
//! Decoding never trusts the sender: a missing field, an unknown enum value or data that does not fit
//! its shape is an [`Error::Wire`] saying what and where, and [`graph_from_proto`] runs
//! [`validate`](crate::graph::validate::validate) so that a graph that decodes is one the kernels
//! can run.
//!
//! # Layer ids
//!
//! A decoded layer keeps the id it was sent with; it is not recomputed, and a recomputed id is not
//! required to match. Fusion keeps a consumer's id on the fused layer (so output keys do not change),
//! which means the id of a layer in an optimized graph — the graph that is sent — is in general *not*
//! `Layer::new`'s token of its op: checking it would reject every fused graph. Ids name tasks; they are
//! not integrity checks, and a sender able to forge a graph could forge its ids too. What protects the
//! kernels is [`validate`](crate::graph::validate::validate), which checks the structure.
//!
//! # Files
//!
//! A `.npy` source travels as its path: the machine that runs the task opens the file itself. Decoding
//! re-reads the header there and checks that dtype, shape and file length are still what the graph was
//! built against (the modification time is not compared: it need not survive a copy to another
//! machine).
//!
//! # Layout
//!
//! - `enums.rs`: dtypes, distributions, elementwise functions and reductions (`enum_pair!`).
//! - `meta.rs`: scalars, chunk grids, array metadata, layer ids.
//! - `program.rs`: blockwise programs.
//! - `ops.rs`: every op variant, with reductions, slices and sources.
//! - `chunk.rs`: array data, chunk values and the chunk codec.
//! - `stream.rs`: the chunk codec a piece at a time, for chunks streamed between processes.
//! - `graph.rs`: layers and graphs.
//!
//! Each file's tests sit beside it; the "every variant" lists they share are in `testing.rs`.

mod chunk;
mod enums;
mod graph;
mod meta;
mod ops;
mod program;
mod stream;
#[cfg(test)]
mod testing;

pub use tessera_proto::v1 as pb;

pub use chunk::{BLOCKING_CODEC_BYTES, array_encoding_prefix, decode_chunk, encode_chunk};
pub use graph::{graph_from_proto, graph_to_proto};
pub use stream::{Assembled, ChunkAssembler, PieceEncoder, RegionRuns};

use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::Reduction;

// ---------------------------------------------------------------------------------------------
// helpers

fn wire(what: impl Into<String>) -> Error {
    Error::Wire { what: what.into() }
}

/// Prefixes the context to a wire error; other errors (a file that cannot be read …) name their
/// subject already.
fn within(e: Error, context: impl std::fmt::Display) -> Error {
    match e {
        Error::Wire { what } => Error::Wire {
            what: format!("{context}: {what}"),
        },
        other => other,
    }
}

fn required<T>(field: Option<T>, what: &str) -> Result<T> {
    field.ok_or_else(|| wire(format!("{what} is missing")))
}

fn usize_of(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| wire(format!("{what} {v} does not fit in a usize here")))
}

fn usizes_of(v: &[u64], what: &str) -> Result<Vec<usize>> {
    v.iter().map(|&x| usize_of(x, what)).collect()
}

fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| wire(format!("{what} {v} does not fit the wire's 32 bits")))
}

fn u32s_of(v: &[usize], what: &str) -> Result<Vec<u32>> {
    v.iter().map(|&x| u32_of(x, what)).collect()
}

fn u64s(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

fn usizes_of_u32(v: &[u32]) -> Vec<usize> {
    v.iter().map(|&x| x as usize).collect()
}

/// An enum field's value, which prost keeps as the raw `i32` so that unknown values survive decoding.
fn enum_of<E: TryFrom<i32>>(v: i32, what: &str) -> Result<E> {
    E::try_from(v).map_err(|_| wire(format!("unknown {what} value {v}")))
}

/// A reduction from its table code: reductions travel by code, so a new row needs no proto change.
fn reduction_of(v: i32) -> Result<Reduction> {
    Reduction::from_code(v).ok_or_else(|| wire(format!("unknown reduction value {v}")))
}

fn dtype_of(v: i32) -> Result<DType> {
    DType::try_from(enum_of::<pb::DType>(v, "dtype")?)
}
