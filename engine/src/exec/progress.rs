//! Progress of one run, per layer: tasks done out of the layer's total and the bytes of the chunks
//! they produced. A [`Progress`] is a shared handle: the executor that runs the job writes it (the
//! local executor after each task, the distributed client from the scheduler's coalesced progress
//! events) and anyone holding a clone reads a [`ProgressSnapshot`] at any time, from any thread. It is
//! the one source the progress bar, job handles and [`super::ExecStats::layers`] all read, so every
//! view of a run agrees.
//!
//! Counts only move forward: a writer reports absolute counts and a lower one (a late or reordered
//! report) is ignored, so a reader polling a snapshot sees `done` grow monotonically to `total`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Tasks done, out of the total, and bytes produced, of one layer of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerProgress {
    /// The layer's id as displayed in task keys (`mean-3f9c…`).
    pub layer: String,
    /// The op's name (`mean`, `random`, `fused`…): the layer id without its token.
    pub name: String,
    /// Tasks of the layer that have finished (each counted once, even if recomputed).
    pub done: u64,
    /// Tasks of the layer the run has to finish.
    pub total: u64,
    /// Bytes of the chunks those tasks produced.
    pub bytes: u64,
}

/// A run's progress at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// One entry per layer that has tasks, in the graph's order (inputs first).
    pub layers: Vec<LayerProgress>,
    /// The run has ended (successfully or not): counts will not change any more.
    pub finished: bool,
}

impl ProgressSnapshot {
    /// Tasks finished, over every layer.
    pub fn done(&self) -> u64 {
        self.layers.iter().map(|l| l.done).sum()
    }

    /// Tasks to run, over every layer (0 before the run has started).
    pub fn total(&self) -> u64 {
        self.layers.iter().map(|l| l.total).sum()
    }

    /// Bytes of the chunks produced so far.
    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes).sum()
    }

    /// `done / total`, from 0 to 1 (0 while the total is not known yet).
    pub fn fraction(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            t => self.done() as f64 / t as f64,
        }
    }
}

/// Counters of one layer, written without a lock.
#[derive(Debug)]
struct Counters {
    layer: String,
    name: String,
    total: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Set once per run by [`Progress::start`]; writers keep their own `Arc` of it.
    table: Mutex<Option<Arc<[Counters]>>>,
    finished: AtomicBool,
}

/// A shared, thread-safe progress record of one run (clones share it).
///
/// ```
/// use tessera::{LocalExecutor, Progress};
/// let x = tessera::ones::<f64>(&[100, 100], [10, 10])?;
/// let progress = Progress::new();
/// let ex = LocalExecutor::with_threads(2)?.with_progress(progress.clone());
/// let total: f64 = x.sum()?.compute_on(&ex)?.into_typed::<f64>()?.into_iter().next().unwrap();
/// assert_eq!(total, 10_000.0);
/// let p = progress.snapshot();
/// assert!(p.finished);
/// assert_eq!(p.done(), p.total());
/// assert!(p.total() >= 100);
/// # Ok::<(), tessera::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Progress {
    inner: Arc<Inner>,
}

/// A writer's view of a started run: updates the counters without taking the handle's lock.
#[derive(Clone, Debug)]
pub(crate) struct ProgressWriter {
    table: Arc<[Counters]>,
}

impl ProgressWriter {
    /// One more task of layer `index` finished, producing `bytes`.
    pub(crate) fn task_done(&self, index: usize, bytes: u64) {
        if let Some(c) = self.table.get(index) {
            c.done.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Absolute counts of layer `index` (from a remote report): lower ones than already seen are
    /// ignored, so counts never go back.
    pub(crate) fn set(&self, index: usize, done: u64, total: u64, bytes: u64) {
        if let Some(c) = self.table.get(index) {
            c.total.fetch_max(total, Ordering::Relaxed);
            c.done.fetch_max(done.min(total), Ordering::Relaxed);
            c.bytes.fetch_max(bytes, Ordering::Relaxed);
        }
    }

    /// Every task of every layer is done (the run succeeded).
    pub(crate) fn complete(&self) {
        for c in self.table.iter() {
            let total = c.total.load(Ordering::Relaxed);
            c.done.fetch_max(total, Ordering::Relaxed);
        }
    }
}

impl Progress {
    /// An empty record: no layers until a run starts writing it.
    pub fn new() -> Self {
        Progress::default()
    }

    /// What the run has done so far.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let table = self.inner.table.lock().expect("progress table").clone();
        let layers = table
            .map(|t| {
                t.iter()
                    .map(|c| LayerProgress {
                        layer: c.layer.clone(),
                        name: c.name.clone(),
                        done: c.done.load(Ordering::Relaxed),
                        total: c.total.load(Ordering::Relaxed),
                        bytes: c.bytes.load(Ordering::Relaxed),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ProgressSnapshot {
            layers,
            finished: self.inner.finished.load(Ordering::Acquire),
        }
    }

    /// Whether a run has ended on this record.
    pub fn is_finished(&self) -> bool {
        self.inner.finished.load(Ordering::Acquire)
    }

    /// A run starts with these layers (id, total tasks): the table is replaced, counts start at 0.
    pub(crate) fn start(&self, layers: impl IntoIterator<Item = (String, u64)>) -> ProgressWriter {
        let table: Arc<[Counters]> = layers
            .into_iter()
            .map(|(layer, total)| Counters {
                name: layer_name(&layer).to_string(),
                layer,
                total: AtomicU64::new(total),
                done: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
            })
            .collect();
        *self.inner.table.lock().expect("progress table") = Some(table.clone());
        self.inner.finished.store(false, Ordering::Release);
        ProgressWriter { table }
    }

    /// A whole run's per-layer counts at once (an executor that reports only at the end).
    pub(crate) fn record(&self, layers: &[LayerProgress]) {
        let w = self.start(layers.iter().map(|l| (l.layer.clone(), l.total)));
        for (i, l) in layers.iter().enumerate() {
            w.set(i, l.done, l.total, l.bytes);
        }
    }

    /// The run is over: readers see `finished`.
    pub(crate) fn finish(&self) {
        self.inner.finished.store(true, Ordering::Release);
    }
}

/// The op name of a displayed layer id (`mean-00ab…` → `mean`).
fn layer_name(layer: &str) -> &str {
    layer.rsplit_once('-').map_or(layer, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_never_go_back() {
        let p = Progress::new();
        assert_eq!(p.snapshot(), ProgressSnapshot::default());
        let w = p.start([
            ("random-00000000000000aa".to_string(), 4),
            ("sum-00000000000000bb".to_string(), 1),
        ]);
        w.task_done(0, 100);
        w.task_done(0, 100);
        let s = p.snapshot();
        assert_eq!((s.done(), s.total(), s.bytes()), (2, 5, 200));
        assert_eq!(s.layers[0].name, "random");
        assert_eq!(s.layers[1].layer, "sum-00000000000000bb");
        assert!((s.fraction() - 0.4).abs() < 1e-12);
        // A stale absolute report changes nothing; a newer one moves forward, capped at the total.
        w.set(0, 1, 4, 50);
        assert_eq!(p.snapshot().layers[0].done, 2);
        w.set(0, 9, 4, 400);
        assert_eq!(p.snapshot().layers[0].done, 4);
        assert!(!p.is_finished());
        w.complete();
        p.finish();
        let s = p.snapshot();
        assert!(s.finished);
        assert_eq!((s.done(), s.total()), (5, 5));
        // An index out of the table (a garbled remote report) is ignored.
        w.task_done(7, 1);
        w.set(7, 1, 1, 1);
        assert_eq!(p.snapshot().layers.len(), 2);
    }
}
