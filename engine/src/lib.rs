//! # tessera
//!
//! Chunked n-dimensional arrays for arrays far larger than one chunk. Array expressions (`random`,
//! `+`, `mean`, `matmul`, slicing …) are lazy: they build a layered task graph, one layer per operation.
//! Computing a result optimizes the graph (fusing chains of blockwise work so that, for example,
//! `random → * 2 → mean` runs as one task per chunk), expands it into chunk tasks culled to what the
//! outputs need, and runs them on an executor — a rayon thread pool by default.
//!
//! ```
//! let x = tessera::default_rng(0).random(&[2000, 2000], [500, 500]).unwrap();
//! let m: f64 = x.mean().unwrap().compute_scalar().unwrap();
//! assert!((m - 0.5).abs() < 1e-3);
//! ```
//!
//! # Layout
//! - [`array`](mod@array): the user API — [`Array`], creation functions, operators, reductions, structure;
//!   [`linalg`] has numpy's linear algebra (products, TSQR `qr`/`svd`, one-chunk factorizations).
//!   [`fft`] has numpy's discrete Fourier transforms along axes that are one chunk.
//! - [`meta`]: dtypes and promotion, scalars, chunk grids ([`Chunks`]).
//! - [`data`]: chunk data ([`ArrayData`], [`ChunkValue`]).
//! - [`dtype_info`]: the data type functions ([`can_cast`], [`finfo`], [`iinfo`], [`isdtype`]).
//! - `graph` (internal, hidden from these docs; [`Graph`], [`LayerId`] and [`ChunkKey`] are
//!   re-exported): layers, layer ids, the layered [`Graph`] and its expansion into chunk tasks; plan
//!   limits checked before expansion and checks of a task's input chunks.
//! - `ops` (internal): the op vocabulary ([`Op`]) — per op, which input blocks a block reads and how to compute it.
//! - `optimize` (internal): blockwise fusion.
//! - `kernels` (internal): per-chunk compute (program evaluator, elementwise, reductions, random numbers).
//! - [`exec`]: the local executor, cancellation ([`CancelToken`], checkpoints in kernels) and live
//!   per-layer [`Progress`].
//! - [`jobs`]: [`JobHandle`], a computation submitted to run in the background on either executor.
//! - [`progress_bar`]: the terminal progress bar `compute` shows for work longer than about a second.
//! - [`io`]: `.npy` files and Zarr stores.
//! - `wire` (internal; feature `distributed`, on by default): conversions between the engine's graphs and chunks
//!   and the protobuf messages of `tessera-proto`.
//! - `client` (feature `distributed`): [`Client`] and [`AsyncClient`], the distributed executor's
//!   client side.
//! - [`error`]: the one error type.

#![warn(missing_docs)]

pub mod array;
#[cfg(feature = "distributed")]
pub mod client;
pub mod data;
pub mod dtype_info;
pub mod error;
pub mod exec;
#[doc(hidden)]
pub mod graph;
pub mod io;
pub mod jobs;
#[doc(hidden)]
pub mod kernels;
pub mod meta;
#[doc(hidden)]
pub mod ops;
#[doc(hidden)]
pub mod optimize;
pub mod progress_bar;
#[cfg(feature = "distributed")]
#[doc(hidden)]
pub mod wire;

pub use array::fft;
pub use array::from_array_data;
pub use array::linalg;
pub use array::{
    Array, Executor, Generator, ReduceOptions, TaskCounts, arange, broadcast_shapes, compute_many,
    compute_many_on, compute_many_with_stats, concatenate, default_rng, empty, empty_like,
    from_array, from_npy, from_zarr, from_zarr_with, full, full_like, linspace, ones, ones_like,
    stack, ufunc, where_, zeros, zeros_like,
};
pub use array::{Bins, Side, Unique, histogram2d, histogramdd};
pub use array::{
    IndexArray, Nested, Operand, PadMode, Sections, array_split, atleast_1d, atleast_2d,
    atleast_3d, block, broadcast_arrays, dstack, eye, hstack, identity, meshgrid, split,
    take_along_axis, unstack, vstack,
};
#[cfg(feature = "distributed")]
pub use client::{AsyncClient, Client, ClusterStatus, WorkerInfo};
pub use data::{ArrayData, ChunkValue, Element};
pub use dtype_info::{DTypeKind, FloatInfo, IntInfo, can_cast, finfo, iinfo, isdtype};
pub use error::{Error, Result};
pub use exec::{CancelToken, ExecStats, LayerProgress, LocalExecutor, Progress, ProgressSnapshot};
pub use graph::{ChunkKey, Graph, LayerId};
pub use io::zarr::{BloscCompressor, ZarrCodec, ZarrOptions, ZarrReadOptions, ZarrStore};
pub use jobs::{JobHandle, JobStatus};
pub use meta::{ChunkSpec, Chunks, DType, Scalar};
/// The `ndarray` crate tessera's results and inputs are made of, re-exported so that a program need
/// not pin the same version itself: `tessera::ndarray::ArrayD`.
pub use ndarray;
pub use ndarray::s;
/// complex128 elements (`DType::C128`), as `num_complex::Complex64`.
pub use num_complex::Complex64;
pub use ops::{Boundary, Op, Reduction};
pub use progress_bar::set_progress_bar;
