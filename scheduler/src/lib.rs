//! # tessera-scheduler
//!
//! The scheduler of tessera's distributed executor. Clients submit array graphs; the scheduler expands
//! each into chunk tasks (the engine's [`TaskGraph`](tessera::graph::expand::TaskGraph)), hands the tasks
//! to worker nodes as they have room, tracks which worker holds which chunk, releases chunks as soon as
//! nothing needs them, recomputes what a lost worker took with it, and streams output locations back to
//! the client. Chunk data never passes through the scheduler: workers fetch inputs from each other.
//!
//! This crate is the scheduler's *core*: a pure, synchronous state machine ([`core::State`] plus the
//! `on_*` event functions of [`core::reactor`]) that takes events with the current time and puts the
//! messages it wants sent into an [`core::Outbox`]. It does no I/O, spawns nothing and never reads the
//! clock, so every behaviour is tested deterministically. The gRPC shell (sessions, timers, the
//! protobuf translation of [`core::ToWorker`] and [`core::ToClient`] to `tessera/v1/tessera.proto`)
//! is [`server`]: an actor task owns the state and applies events one at a time, and a thin tonic service
//! converts requests into events; [`run`] serves it on a listener until a shutdown future resolves.
//!
//! # Layout
//! - [`core`]: the state machine — ids, messages and [`core::Config`] (`core/mod.rs`, with the task and
//!   worker state diagrams).
//!   - `core/state.rs`: [`core::State`], per-task status and counters, holders, releases, the per-event
//!     message batch, and the invariants checked after every test step.
//!   - [`core::reactor`]: the events (`on_worker_joined`, `on_task_done`, `on_tick`, …).
//!   - `core/policy.rs`: placement — bounded per-worker queues, round robin across jobs, locality.
//!   - `core/outbox.rs`: the [`core::Outbox`] trait (and the tests' recording outbox).
//!   - `core/tests.rs`: stories over real engine graphs on a simulated cluster.
//! - [`server`]: the I/O shell — `server/actor.rs` (owns the state, translates the outbox to protobuf)
//!   and `server/grpc.rs` (the tonic service: version checks, graph validation and expansion).
//! - [`dashboard`]: the live dashboard, `/metrics` and `/health` on an HTTP port of their own (axum);
//!   the actor feeds its `record::Recorder` and answers its snapshot requests.
//! - [`config`]: [`SchedulerConfig`]; `src/bin/tessera-scheduler.rs` parses flags into it.
//! - [`error`]: the scheduler's error type, [`SchedulerError`].

pub mod config;
pub mod core;
pub mod dashboard;
pub mod error;
pub mod server;

pub use config::SchedulerConfig;
pub use error::SchedulerError;
pub use server::run;
