//! tessera's wire protocol: the protobuf messages and gRPC services of `proto/tessera/v1/tessera.proto`,
//! generated at build time (protox + tonic-prost-build, so no `protoc` is needed). This crate owns the
//! generated types, the protocol version, and what every process of a cluster does the same way on the
//! wire: [`auth`] (the cluster secret and per-request credentials), [`dial`] (outgoing channels with
//! credentials, timeouts and keep-alives) and [`serve`] (listening and shutdown). Converting messages
//! to and from the engine's own types is `tessera::wire`'s job, the one place the two meet.
//!
//! The generated items live in [`v1`]: messages such as [`v1::Graph`], the `Scheduler` service as
//! [`v1::scheduler_client::SchedulerClient`] and [`v1::scheduler_server::SchedulerServer`] (with the
//! [`v1::scheduler_server::Scheduler`] trait to implement), and the `Worker` service likewise.
//!
//! ```
//! use tessera_proto::{PROTOCOL_VERSION, v1};
//! let hello = v1::RegisterWorkerRequest {
//!     protocol_version: PROTOCOL_VERSION,
//!     address: "http://127.0.0.1:9001".into(),
//!     threads: 2,
//!     memory_limit: 1 << 30,
//! };
//! assert_eq!(hello.protocol_version, 5);
//! ```
//!
//! # Layout
//!
//! - [`v1`]: the generated messages, clients and servers.
//! - [`auth`]: the cluster secret, per-request credentials, and the client and server interceptors.
//! - [`dial`]: outgoing channels (credentials, connect deadlines, keep-alives, TLS for https://).
//! - [`serve`]: how a tessera gRPC server listens (TCP_NODELAY, keep-alives, TLS) and stops (Ctrl-C,
//!   SIGTERM), and the size parser the binaries' flags share.
//! - [`tls`]: TLS and mutual TLS from PEM files ([`tls::TlsFiles`]), checked at start-up, into
//!   tonic's server and client configurations; [`tls::ClientTls::endpoint`] matches an address's
//!   scheme to them.
//! - [`certs`]: generates a cluster CA and a node certificate (`tessera-scheduler certs DIR`).

pub mod auth;
pub mod certs;
pub mod dial;
pub mod serve;
pub mod tls;

/// The protocol version this build speaks. Workers and clients send it when they register or submit;
/// the scheduler refuses a different one. Bump it with any change to the .proto that is not
/// backward compatible — including a new field whose absence changes results: version 2 added
/// `Leaf.axes` (a peer that ignored it would generate a transposed source untransposed); version 3
/// added `Worker.FetchChunks`, which workers and clients call and older workers do not serve, and
/// `Matmul.transpose_b` and `MirrorUpper`, which change results if a peer ignores them; version 4
/// added session tokens and job keys, without which a peer is refused; version 5 added the strided
/// source window (`Leaf` fields 20–22: a peer that ignored them would generate the unstrided source),
/// kept jobs (`Op.persisted`: a worker that did not know them could not read a persisted array),
/// complex128, FFT, overlap and mask ops, and the integer dtypes int32/uint8/uint64.
pub const PROTOCOL_VERSION: u32 = 5;

/// Request metadata a client sets on a `Run` call whose job it means to keep open after it completes
/// (`persist_on(&client)`), so the scheduler counts it against its kept-jobs limit rather than the
/// jobs-in-flight one once it completes. A job without it stays in flight until its stream closes.
/// (Metadata rather than a `Submit` field: peers that ignore it lose nothing but the separate count.)
pub const KEEP_METADATA: &str = "tessera-keep";

/// Generated code for package `tessera.v1`.
///
/// Lints are allowed wholesale because the code is machine-written: its style is prost's and tonic's,
/// not ours, and a new compiler or clippy lint must not break the workspace's `-D warnings` build. Doc
/// comments come from the .proto, which keeps them plain prose so that rustdoc finds no code blocks
/// (doctests) in them.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    rustdoc::all
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tessera.v1.rs"));
}
