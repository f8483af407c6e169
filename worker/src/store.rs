//! The worker's chunk store: task results by (job, task), with the bytes held, and the graphs of the
//! jobs it works on. Shared by the task runner, the session (releases) and the service (fetches).
//!
//! A job the scheduler has forgotten (cancelled, failed, or finished) stays forgotten: a task of it
//! that was already running, or a replica already on its way, finishes after the `Forget` and must not
//! leave its chunk behind, since nothing would ever release it.
//!
//! The store also keeps each job's key, the capability a fetch must show to read the job's chunks,
//! and its cancellation token: forgetting a job cancels it, so its running kernels stop at their next
//! checkpoint and free their threads.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tessera::graph::{ArrayMeta, Graph};
use tessera::{CancelToken, ChunkValue};

/// A chunk's identity on a worker: the job and the task index in the job's expanded graph.
pub type ChunkId = (u64, u32);

/// A job's graph as a worker uses it: layers by index, with their inputs' metadata.
#[derive(Debug)]
pub struct JobGraph {
    pub graph: Graph,
    /// Per layer, the positions of its inputs in `graph.layers()`.
    pub inputs: Vec<Vec<usize>>,
}

impl JobGraph {
    pub fn new(graph: Graph) -> Self {
        let inputs = graph
            .layers()
            .iter()
            .map(|l| {
                l.inputs
                    .iter()
                    .filter_map(|id| graph.position(*id))
                    .collect()
            })
            .collect();
        JobGraph { graph, inputs }
    }

    /// Metadata of the inputs of layer `layer`.
    pub fn input_metas(&self, layer: usize) -> Vec<&ArrayMeta> {
        self.inputs[layer]
            .iter()
            .map(|&p| &self.graph.layers()[p].meta)
            .collect()
    }
}

#[derive(Debug, Default)]
struct Inner {
    chunks: HashMap<ChunkId, Arc<ChunkValue>>,
    graphs: HashMap<u64, Arc<JobGraph>>,
    keys: HashMap<u64, Arc<[u8]>>,
    tokens: HashMap<u64, CancelToken>,
    bytes: u64,
    /// Jobs dropped by [`Store::forget`]; job ids are never reused within a session (eight bytes a
    /// job).
    forgotten: HashSet<u64>,
}

/// Chunks and graphs held by this worker.
#[derive(Debug, Default, Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

impl Store {
    /// Keeps a chunk, unless its job was forgotten (then the chunk is dropped and this returns false).
    pub fn put(&self, id: ChunkId, value: Arc<ChunkValue>) -> bool {
        let mut s = self.inner.lock().expect("store");
        if s.forgotten.contains(&id.0) {
            return false;
        }
        let n = value.nbytes() as u64;
        if let Some(old) = s.chunks.insert(id, value) {
            s.bytes -= old.nbytes() as u64;
        }
        s.bytes += n;
        true
    }

    pub fn get(&self, id: ChunkId) -> Option<Arc<ChunkValue>> {
        self.inner.lock().expect("store").chunks.get(&id).cloned()
    }

    pub fn release(&self, ids: impl IntoIterator<Item = ChunkId>) {
        let mut s = self.inner.lock().expect("store");
        for id in ids {
            if let Some(old) = s.chunks.remove(&id) {
                s.bytes -= old.nbytes() as u64;
            }
        }
    }

    pub fn put_graph(&self, job: u64, graph: Arc<JobGraph>) {
        let mut s = self.inner.lock().expect("store");
        if !s.forgotten.contains(&job) {
            s.graphs.insert(job, graph);
        }
    }

    pub fn graph(&self, job: u64) -> Option<Arc<JobGraph>> {
        self.inner.lock().expect("store").graphs.get(&job).cloned()
    }

    /// The token that cancels the job's running tasks when the job is forgotten (already cancelled
    /// if it has been).
    pub fn cancel_token(&self, job: u64) -> CancelToken {
        let mut s = self.inner.lock().expect("store");
        if s.forgotten.contains(&job) {
            let t = CancelToken::new();
            t.cancel();
            return t;
        }
        s.tokens.entry(job).or_default().clone()
    }

    /// Remembers the key of a job (from its graph, or from a replication order).
    pub fn put_key(&self, job: u64, key: &[u8]) {
        let mut s = self.inner.lock().expect("store");
        if !s.forgotten.contains(&job) {
            s.keys.entry(job).or_insert_with(|| Arc::from(key));
        }
    }

    /// The key of a job this worker works on, to show when fetching its chunks from peers.
    pub fn key(&self, job: u64) -> Option<Arc<[u8]>> {
        self.inner.lock().expect("store").keys.get(&job).cloned()
    }

    /// Whether `key` is the key of `job` (compared in constant time); false for an unknown job.
    pub fn key_matches(&self, job: u64, key: &[u8]) -> bool {
        let s = self.inner.lock().expect("store");
        s.keys
            .get(&job)
            .is_some_and(|k| tessera_proto::auth::constant_time_eq(k, key))
    }

    /// Drops a job's graph and every chunk of it, now and when any arrives later.
    pub fn forget(&self, job: u64) {
        let mut s = self.inner.lock().expect("store");
        s.forgotten.insert(job);
        s.graphs.remove(&job);
        s.keys.remove(&job);
        if let Some(t) = s.tokens.remove(&job) {
            t.cancel();
        }
        let mut freed = 0;
        s.chunks.retain(|&(j, _), v| {
            if j == job {
                freed += v.nbytes() as u64;
                false
            } else {
                true
            }
        });
        s.bytes -= freed;
    }

    /// Forgets every job (the session with the scheduler that assigned them is gone): returns the
    /// number of chunks and bytes dropped.
    pub fn forget_all(&self) -> (usize, u64) {
        let mut s = self.inner.lock().expect("store");
        let s = &mut *s;
        let jobs = s
            .graphs
            .keys()
            .chain(s.keys.keys())
            .copied()
            .chain(s.chunks.keys().map(|&(job, _)| job));
        let jobs: Vec<u64> = jobs.chain(s.tokens.keys().copied()).collect();
        s.forgotten.extend(jobs);
        for (_, t) in s.tokens.drain() {
            t.cancel();
        }
        let dropped = (s.chunks.len(), s.bytes);
        s.chunks.clear();
        s.graphs.clear();
        s.keys.clear();
        s.bytes = 0;
        dropped
    }

    /// Whether [`Store::forget`] dropped the job.
    pub fn is_forgotten(&self, job: u64) -> bool {
        self.inner.lock().expect("store").forgotten.contains(&job)
    }

    /// Bytes of chunk data held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().expect("store").bytes
    }

    /// Number of chunks held.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("store").chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Arc<ChunkValue> {
        Arc::new(ChunkValue::Array(tessera::ArrayData::F64(
            ndarray::ArrayD::zeros(ndarray::IxDyn(&[n])),
        )))
    }

    #[test]
    fn a_forgotten_job_keeps_nothing_even_what_arrives_late() {
        let store = Store::default();
        assert!(store.put((1, 0), chunk(10)));
        assert!(store.put((2, 0), chunk(5)));
        assert_eq!(store.bytes(), 120);
        store.forget(1);
        assert_eq!((store.len(), store.bytes()), (1, 40));
        assert!(store.is_forgotten(1) && !store.is_forgotten(2));
        // A task of job 1 that was running when the job was forgotten finishes now.
        assert!(!store.put((1, 1), chunk(10)));
        assert_eq!((store.len(), store.bytes()), (1, 40));
        assert!(store.get((1, 1)).is_none());
        store.release([(2, 0)]);
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }
}
