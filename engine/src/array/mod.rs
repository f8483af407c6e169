//! The user-facing [`Array`]: a lazy chunked n-d array. Building expressions only records layers;
//! [`Array::compute`] (or [`compute_many`], [`Array::persist`], [`Array::to_npy`], [`Array::to_zarr`]) optimizes the graph,
//! expands it into chunk tasks and runs them on an [`Executor`] — the local rayon executor unless told
//! otherwise.

mod creation;
mod cumulative;
mod elementwise;
pub mod fft;
mod histogram;
mod indexing;
pub mod linalg;
mod manipulation;
mod overlap;
mod random;
mod reduction;
mod sets;
mod sorting;
mod statistics;
mod structure;
mod zarr;

pub use creation::{
    arange, empty, empty_like, from_array, from_array_data, from_npy, full, full_like, linspace,
    ones, ones_like, zeros, zeros_like,
};
pub use elementwise::{Operand, broadcast_shapes, ufunc, where_};
pub use histogram::{Bins, histogram2d, histogramdd};
pub use indexing::{IndexArray, take_along_axis};
pub use manipulation::{
    Nested, PadMode, Sections, array_split, atleast_1d, atleast_2d, atleast_3d, block,
    broadcast_arrays, dstack, eye, hstack, identity, meshgrid, split, unstack, vstack,
};
pub use random::{Generator, default_rng};
pub use reduction::ReduceOptions;
pub use sets::Unique;
pub use sorting::Side;
pub use structure::{concatenate, stack};
pub use zarr::{from_zarr, from_zarr_with};

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ndarray::ArrayD;

use crate::data::{ArrayData, ChunkValue, Element};
use crate::error::{Error, Result};
use crate::exec::{ExecStats, LocalExecutor, OutputSink, Progress};
use crate::graph::expand::TaskGraph;
use crate::graph::{ArrayMeta, Graph, Layer, LayerId};
use crate::meta::{Chunks, DType, Scalar};
use crate::ops::{InputMeta, Materialized, Op};

/// Something that runs optimized graphs: the local executor, or a distributed client.
pub trait Executor: Send + Sync {
    /// Runs `graph` (already optimized), handing every chunk of every output to `sink`.
    fn execute_graph(&self, graph: Graph, sink: &OutputSink<'_>) -> Result<ExecStats>;

    /// [`Executor::execute_graph`], reporting per-layer progress into `progress` as the run goes
    /// (what job handles and the progress bar read). An executor that cannot report live fills it in
    /// from [`ExecStats::layers`] when the run ends, which this default does.
    fn execute_graph_with_progress(
        &self,
        graph: Graph,
        sink: &OutputSink<'_>,
        progress: &Progress,
    ) -> Result<ExecStats> {
        let result = self.execute_graph(graph, sink);
        if let Ok(stats) = &result {
            progress.record(&stats.layers);
        }
        progress.finish();
        result
    }

    /// Persists `graph` (optimized, one output) where this executor keeps data and returns the op
    /// of a layer that reads it there (`token`: the persisted layer's id token). `None`, the
    /// default, means the executor keeps nothing itself: [`Array::persist_on`] then gathers every
    /// chunk into this process.
    fn persist_graph(&self, graph: &Graph, token: u64) -> Result<Option<Op>> {
        let _ = (graph, token);
        Ok(None)
    }
}

impl Executor for LocalExecutor {
    fn execute_graph(&self, graph: Graph, sink: &OutputSink<'_>) -> Result<ExecStats> {
        let tg = TaskGraph::expand(graph)?;
        self.execute(&tg, sink)
    }

    fn execute_graph_with_progress(
        &self,
        graph: Graph,
        sink: &OutputSink<'_>,
        progress: &Progress,
    ) -> Result<ExecStats> {
        let result = TaskGraph::expand(graph).and_then(|tg| {
            self.clone()
                .with_progress(progress.clone())
                .execute(&tg, sink)
        });
        progress.finish();
        result
    }
}

struct Node {
    layer: Arc<Layer>,
    inputs: Vec<Array>,
    shape: Vec<usize>,
    /// Where and why the operator that should have built this array failed (see
    /// [`Array::usable`]); its layer is then a 0-d placeholder that never reaches a graph.
    failed: Option<(String, Arc<Error>)>,
}

/// A lazy, chunked n-dimensional array.
///
/// ```
/// use tessera::{default_rng, ReduceOptions};
/// let x = default_rng(42).random(&[1000, 1000], [250, 250]).unwrap();
/// let y = &x * 2.0 + 1.0;                  // operators return arrays, errors wait for `?`
/// let m: f64 = y.mean().unwrap().compute_scalar().unwrap();
/// assert!((m - 2.0).abs() < 0.01);
/// let cols = y.sum_with(&ReduceOptions::axes([0])).unwrap();
/// assert_eq!(cols.shape(), &[1000]);
/// ```
#[derive(Clone)]
pub struct Array(Arc<Node>);

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((at, e)) = &self.0.failed {
            return write!(f, "tessera.Array<failed at {at}: {e}>");
        }
        write!(
            f,
            "tessera.Array<{}, shape={:?}, dtype={}, chunks={}>",
            self.0.layer.id,
            self.shape(),
            self.dtype(),
            self.chunks()
        )
    }
}

/// Task counts of a computation, as dask reports `len(graph)` before and after optimization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskCounts {
    /// Chunk tasks of every layer, unfused and uncut.
    pub before: usize,
    /// Chunk tasks that run after fusion and culling.
    pub after: usize,
}

impl Array {
    /// A new layer applying `op` to `inputs`, with the meta the op's own metadata rule
    /// ([`Op::output_meta`]) derives — the rule the validator checks graphs from outside with.
    /// `chosen` is the caller's choice for what the op leaves free (a source's, a rechunk's or a
    /// reshape's grid; a `map_blocks` dtype), `None` for ops that derive everything.
    pub(crate) fn from_op(op: Op, inputs: Vec<Array>, chosen: Option<ArrayMeta>) -> Result<Array> {
        for a in &inputs {
            a.usable()?;
        }
        let metas: Vec<InputMeta<'_>> = inputs.iter().map(Array::input_meta).collect();
        let meta = op.output_meta(&metas, chosen.as_ref())?;
        drop(metas);
        let ids = inputs.iter().map(|a| a.id()).collect();
        let shape = meta.chunks.shape();
        let layer = Layer::new(op, ids, meta);
        Ok(Array(Arc::new(Node {
            layer: Arc::new(layer),
            inputs,
            shape,
            failed: None,
        })))
    }

    /// The array an operator returns: `built`, or, when building failed, an array that carries the
    /// error and the caller's location, reported by the next call that returns a `Result`
    /// ([`Array::usable`]). An error that is already an operator's keeps its first location.
    #[track_caller]
    pub(crate) fn or_failed(built: Result<Array>) -> Array {
        let failed = match built {
            Ok(a) => return a,
            Err(Error::Operator { location, error }) => (location, error),
            Err(e) => {
                let at = std::panic::Location::caller();
                (format!("{}:{}", at.file(), at.line()), Arc::new(e))
            }
        };
        let placeholder = creation::zeros::<f64>(&[], Vec::<usize>::new())
            .expect("a 0-d array of zeros is valid");
        let node = &placeholder.0;
        Array(Arc::new(Node {
            layer: node.layer.clone(),
            inputs: Vec::new(),
            shape: node.shape.clone(),
            failed: Some(failed),
        }))
    }

    /// `Ok` unless this array came from an operator that failed (`&a + &b` of shapes that do not
    /// broadcast, say): operators return an [`Array`] rather than a `Result` so that formulas read
    /// as formulas, and the error waits here, with where the operator was written, for the next
    /// call that returns a `Result` — every method and `compute` begin with this check.
    ///
    /// ```
    /// let a = tessera::zeros::<f64>(&[3], [2])?;
    /// let b = tessera::zeros::<f64>(&[4], [2])?;
    /// let c = (&a + &b) * 2.0;                       // no `?`: the error travels with `c`
    /// let err = c.sum().unwrap_err().to_string();
    /// assert!(err.contains("cannot be broadcast") && err.contains(".rs:"), "{err}");
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn usable(&self) -> Result<()> {
        match &self.0.failed {
            None => Ok(()),
            Some((location, error)) => Err(Error::Operator {
                location: location.clone(),
                error: error.clone(),
            }),
        }
    }

    /// This array, or at once the error of the operator that built it (see [`Array::usable`]):
    /// for code that wants an operator's error where the operator is, `(&a + &b).checked()?`.
    pub fn checked(self) -> Result<Array> {
        self.usable()?;
        Ok(self)
    }

    /// This array as an input of an op's metadata rule.
    pub(crate) fn input_meta(&self) -> InputMeta<'_> {
        InputMeta {
            id: self.id(),
            meta: &self.0.layer.meta,
            holds: self.0.layer.op.holds(),
        }
    }

    /// The layer id: op name plus a token of the whole expression.
    pub fn id(&self) -> LayerId {
        self.0.layer.id
    }

    /// The array's shape, in elements per axis.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.0.shape.iter().product()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.layer.meta.dtype
    }

    /// The chunk grid: block sizes along each axis.
    pub fn chunks(&self) -> &Chunks {
        &self.0.layer.meta.chunks
    }

    /// Number of chunks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.chunks().numblocks()
    }

    /// Bytes of the whole array once computed.
    pub fn nbytes(&self) -> usize {
        self.size() * self.dtype().size()
    }

    /// The unoptimized layer graph of this array.
    pub fn graph(&self) -> Graph {
        graph_of(&[self])
    }

    /// Task counts before and after optimization.
    pub fn task_counts(&self) -> Result<TaskCounts> {
        self.usable()?;
        let g = self.graph();
        let before = g.num_chunk_tasks();
        let tg = TaskGraph::expand(crate::optimize::optimize(g))?;
        Ok(TaskCounts {
            before,
            after: tg.tasks.len(),
        })
    }

    /// The optimized chunk-task graph as Graphviz DOT (dask's `visualize`).
    pub fn to_dot(&self) -> Result<String> {
        self.usable()?;
        Ok(TaskGraph::expand(crate::optimize::optimize(self.graph()))?.to_dot())
    }

    /// Computes the array on the default local executor (all cores).
    pub fn compute<T: Element>(&self) -> Result<ArrayD<T>> {
        self.usable()?;
        self.compute_dyn()?.into_typed()
    }

    /// Computes a 0-d array (the result of a full reduction) as a scalar.
    pub fn compute_scalar<T: Element>(&self) -> Result<T> {
        self.usable()?;
        if self.ndim() != 0 {
            return Err(Error::ShapeMismatch {
                op: "compute_scalar",
                reason: format!("array of shape {:?} is not 0-d", self.shape()),
            });
        }
        let a = self.compute::<T>()?;
        Ok(*a.first().expect("a 0-d array has one element"))
    }

    /// Computes the array whatever its dtype.
    pub fn compute_dyn(&self) -> Result<ArrayData> {
        self.usable()?;
        Ok(compute_many(&[self])?.pop().expect("one output"))
    }

    /// The array's chunk grid and dtype.
    pub(crate) fn meta(&self) -> &ArrayMeta {
        &self.0.layer.meta
    }

    /// Computes on a given executor (a [`LocalExecutor`] with its own thread count, or a distributed
    /// client).
    pub fn compute_on(&self, executor: &dyn Executor) -> Result<ArrayData> {
        self.usable()?;
        Ok(compute_many_on(&[self], executor)?
            .pop()
            .expect("one output"))
    }

    /// Computes every chunk and keeps them in memory: the returned array reads the kept chunks instead
    /// of recomputing its graph.
    pub fn persist(&self) -> Result<Array> {
        self.usable()?;
        self.persist_on(default_executor())
    }

    /// [`Array::persist`] on a given executor. The local executor keeps the chunks in this process;
    /// a cluster [`Client`](crate::Client) keeps them on its workers, and the returned array reads
    /// them there (it can then only be computed with that client; see `Client::persist`).
    pub fn persist_on(&self, executor: &dyn Executor) -> Result<Array> {
        self.usable()?;
        let graph = crate::optimize::optimize(self.graph());
        if let Some(op) = executor.persist_graph(&graph, self.id().token)? {
            return Array::from_op(op, vec![], Some(self.0.layer.meta.clone()));
        }
        let n = self.chunks().num_chunks();
        let nb = self.numblocks();
        let slots: Mutex<Vec<Option<Arc<ChunkValue>>>> = Mutex::new(vec![None; n]);
        let sink = |_o: usize, block: &[u32], v: Arc<ChunkValue>| -> Result<()> {
            let flat = block
                .iter()
                .zip(&nb)
                .fold(0usize, |acc, (&b, &n)| acc * n + b as usize);
            slots.lock().expect("persist slots")[flat] = Some(v);
            Ok(())
        };
        run_graph_shown(executor, graph, &sink)?;
        let chunks = slots
            .into_inner()
            .expect("persist slots")
            .into_iter()
            .map(|v| {
                v.ok_or_else(|| Error::InvalidGraph {
                    reason: format!("persist of {} did not produce every chunk", self.id()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Array::from_op(
            Op::Materialized(Materialized {
                chunks: Arc::new(chunks),
                token: self.id().token,
            }),
            vec![],
            Some(self.0.layer.meta.clone()),
        )
    }

    /// Computes the array chunk by chunk into a `.npy` file, never holding the whole array.
    pub fn to_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        self.usable()?;
        let path = path.as_ref();
        let writer = crate::io::npy::NpyWriter::create(path, self.dtype(), self.shape())?;
        let chunks = self.chunks().clone();
        let sink = |_o: usize, block: &[u32], v: Arc<ChunkValue>| -> Result<()> {
            writer.write_region(&chunks.block_offset(block), v.as_array()?)
        };
        run_graph_shown(
            default_executor(),
            crate::optimize::optimize(self.graph()),
            &sink,
        )?;
        writer.finish()
    }

    /// Casts to another dtype (numpy's `astype`).
    pub fn astype(&self, dtype: DType) -> Result<Array> {
        self.usable()?;
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        elementwise::cast(self, dtype)
    }
}

/// The layers behind some arrays, deduplicated by id, inputs first.
/// [`graph_of`] for arrays about to be computed: an array carrying an operator's error reports it.
pub(crate) fn checked_graph_of(arrays: &[&Array]) -> Result<Graph> {
    for a in arrays {
        a.usable()?;
    }
    Ok(graph_of(arrays))
}

pub(crate) fn graph_of(arrays: &[&Array]) -> Graph {
    let mut seen = std::collections::HashSet::new();
    let mut layers = Vec::new();
    // Iterative post-order so that deep expressions do not overflow the stack.
    let mut stack: Vec<(Array, bool)> =
        arrays.iter().rev().map(|a| ((*a).clone(), false)).collect();
    while let Some((a, expanded)) = stack.pop() {
        if expanded {
            if seen.insert(a.id()) {
                layers.push(a.0.layer.clone());
            }
            continue;
        }
        if seen.contains(&a.id()) {
            continue;
        }
        stack.push((a.clone(), true));
        for i in a.0.inputs.iter().rev() {
            if !seen.contains(&i.id()) {
                stack.push((i.clone(), false));
            }
        }
    }
    Graph::new(layers, arrays.iter().map(|a| a.id()).collect())
}

static DEFAULT: std::sync::OnceLock<LocalExecutor> = std::sync::OnceLock::new();

fn default_executor() -> &'static LocalExecutor {
    DEFAULT.get_or_init(LocalExecutor::new)
}

/// Computes several arrays in one pass: subexpressions they share are computed once.
///
/// ```
/// let x = tessera::arange(0i64, 10, 1, [4]).unwrap();
/// let total = x.sum().unwrap();
/// let doubled = &x * 2i64;
/// let out = tessera::compute_many(&[&total, &doubled]).unwrap();
/// assert_eq!(out[0].get(&[]), Some(tessera::Scalar::I64(45)));
/// assert_eq!(out[1].get(&[9]), Some(tessera::Scalar::I64(18)));
/// ```
pub fn compute_many(arrays: &[&Array]) -> Result<Vec<ArrayData>> {
    compute_many_on(arrays, default_executor())
}

/// [`compute_many`] on a given executor.
pub fn compute_many_on(arrays: &[&Array], executor: &dyn Executor) -> Result<Vec<ArrayData>> {
    Ok(compute_many_with_stats(arrays, executor)?.0)
}

/// [`compute_many_on`], also returning what the executor did (tasks run, peak bytes held, per-layer
/// counts). Shows a progress bar on a terminal when the work lasts more than about a second (see
/// [`crate::progress_bar`]).
pub fn compute_many_with_stats(
    arrays: &[&Array],
    executor: &dyn Executor,
) -> Result<(Vec<ArrayData>, ExecStats)> {
    crate::progress_bar::with_bar(|progress| compute_observed(arrays, executor, progress))
}

/// Computes `arrays` on `executor`, reporting into `progress` when given (no progress bar).
pub(crate) fn compute_observed(
    arrays: &[&Array],
    executor: &dyn Executor,
    progress: Option<&Progress>,
) -> Result<(Vec<ArrayData>, ExecStats)> {
    let assembly = Assembly::new(arrays);
    let sink = |o: usize, block: &[u32], v: Arc<ChunkValue>| assembly.accept(o, block, v);
    let graph = crate::optimize::optimize(checked_graph_of(arrays)?);
    let stats = run_graph(executor, graph, &sink, progress)?;
    Ok((assembly.finish(), stats))
}

/// Runs an optimized graph on `executor`, reporting into `progress` when given.
fn run_graph(
    executor: &dyn Executor,
    graph: Graph,
    sink: &OutputSink<'_>,
    progress: Option<&Progress>,
) -> Result<ExecStats> {
    match progress {
        Some(p) => executor.execute_graph_with_progress(graph, sink, p),
        None => executor.execute_graph(graph, sink),
    }
}

/// Runs an optimized graph on `executor` with the progress bar `compute` shows (for the calls that
/// stream their chunks elsewhere: `to_npy`, a local `persist`).
fn run_graph_shown(
    executor: &dyn Executor,
    graph: Graph,
    sink: &OutputSink<'_>,
) -> Result<ExecStats> {
    crate::progress_bar::with_bar(|progress| run_graph(executor, graph, sink, progress))
}

/// Assembles output chunks, as they arrive in any order, into whole arrays.
pub(crate) struct Assembly<'a> {
    arrays: &'a [&'a Array],
    results: Vec<Mutex<ArrayData>>,
}

impl<'a> Assembly<'a> {
    pub(crate) fn new(arrays: &'a [&'a Array]) -> Self {
        let results = arrays
            .iter()
            .map(|a| Mutex::new(ArrayData::full(a.shape(), Scalar::Bool(false), a.dtype())))
            .collect();
        Assembly { arrays, results }
    }

    /// Copies chunk `block` of output `o` into place.
    pub(crate) fn accept(&self, o: usize, block: &[u32], v: Arc<ChunkValue>) -> Result<()> {
        let array = self.arrays.get(o).ok_or_else(|| Error::InvalidGraph {
            reason: format!("a chunk arrived for output {o} of {}", self.arrays.len()),
        })?;
        let numblocks = array.numblocks();
        if block.len() != numblocks.len()
            || block.iter().zip(&numblocks).any(|(&b, &n)| b as usize >= n)
        {
            return Err(Error::InvalidGraph {
                reason: format!(
                    "chunk {block:?} is outside the {numblocks:?} blocks of {}",
                    array.id()
                ),
            });
        }
        let chunk = v.as_array()?;
        let expected = array.chunks().block_shape(block);
        if chunk.shape() != expected.as_slice() || chunk.dtype() != array.dtype() {
            return Err(Error::ShapeMismatch {
                op: "compute",
                reason: format!(
                    "chunk {block:?} of {} arrived as {:?} {}, expected {expected:?} {}",
                    array.id(),
                    chunk.shape(),
                    chunk.dtype(),
                    array.dtype()
                ),
            });
        }
        let offset = array.chunks().block_offset(block);
        let origin = vec![0; offset.len()];
        let mut out = self.results[o].lock().expect("result assembly");
        crate::ops::structure::copy_overlap(&mut out, &origin, chunk, &offset);
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<ArrayData> {
        self.results
            .into_iter()
            .map(|m| m.into_inner().expect("result assembly"))
            .collect()
    }
}
