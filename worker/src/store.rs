//! The worker's chunk store: task results by (job, task), with the bytes held, and the graphs of the
//! jobs it works on. Shared by the task runner, the session (releases) and the service (fetches).
//!
//! It also keeps the worker within its memory limit, exactly: Rust owns every chunk, so the bytes in
//! memory are known, and a task reserves what it needs (inputs not already held, output, scratch:
//! `tessera::graph::estimate::block_bytes`) before it starts ([`Store::admit`]). A task that does
//! not fit makes room by spilling — past the memory target, the least recently used chunks no running
//! task reads are written to the spill directory ([`crate::spill`]) — or waits for running tasks to
//! end; one that could never fit is refused with a message saying why. Past the pause fraction no new
//! task starts while others run, and heartbeats tell the scheduler so it sends nothing more.
//!
//! The books hold only while nothing else keeps a chunk alive: a chunk is spilled only when no
//! running task reads it and no send to a peer is under way ([`Store::checkout`] pins it). A chunk
//! spilled while a send still held it stayed in memory uncounted; in a 2 GiB all-to-all rechunk on
//! 512 MiB workers that was up to 134 MiB more than the books said (and a spilled chunk a peer
//! asked for was read back whole, uncounted, to be sent: now it is sent from its file).
//!
//! A job the scheduler has forgotten (cancelled, failed, or finished) stays forgotten: a task of it
//! that was already running, or a replica already on its way, finishes after the `Forget` and must not
//! leave its chunk behind, since nothing would ever release it.
//!
//! The store also keeps each job's key, the capability a fetch must show to read the job's chunks,
//! and its cancellation token: forgetting a job cancels it, so its running kernels stop at their next
//! checkpoint and free their threads.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tessera::graph::estimate::TaskBytes;
use tessera::graph::{ArrayMeta, Graph};
use tessera::{CancelToken, ChunkValue};
use tracing::debug;

use crate::spill::{self, SpillDir};

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

/// The worker's memory settings, in bytes: its `--memory-limit`, and the `--memory-target` and
/// `--memory-pause` fractions of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimits {
    pub limit: u64,
    /// Past this, chunks no running task reads are spilled, least recently used first.
    pub target: u64,
    /// Past this, no new task starts until memory is back under (and the scheduler is told).
    pub pause: u64,
}

impl MemoryLimits {
    /// No limit at all (tests of other parts, and a store without a spill directory).
    pub fn unlimited() -> Self {
        MemoryLimits {
            limit: u64::MAX,
            target: u64::MAX,
            pause: u64::MAX,
        }
    }

    /// `limit` with the target and pause at the given fractions of it.
    pub fn new(limit: u64, target: f64, pause: f64) -> Self {
        let at = |f: f64| ((limit as f64) * f.clamp(0.0, 1.0)) as u64;
        MemoryLimits {
            limit,
            target: at(target),
            pause: at(pause),
        }
    }
}

/// A worker's memory at one moment, for heartbeats, `Status` and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStatus {
    /// Bytes of chunks in memory.
    pub held: u64,
    /// Bytes reserved for running tasks (their inputs not already held, outputs and scratch).
    pub running: u64,
    /// Bytes and number of chunks on disk.
    pub spilled: u64,
    pub spilled_chunks: u64,
    pub spill_writes: u64,
    pub spill_reads: u64,
    pub spill_nanos: u64,
    /// Past the pause fraction.
    pub paused: bool,
}

/// A chunk a task reads, for admission: its task, and the bytes the task's need counts for it when
/// the task reads only a region of it (`None`: the whole chunk).
pub type DepRead = (u32, Option<u64>);

/// A chunk as the store has it.
#[derive(Clone, Debug)]
pub enum Held {
    Memory(Arc<ChunkValue>),
    /// On disk, in this file.
    Spilled(PathBuf),
}

/// A chunk on its way to a peer ([`Store::checkout`]).
#[derive(Debug)]
pub enum Outbound {
    /// In memory: the value, kept in memory by the pin while it is sent.
    Memory(Arc<ChunkValue>, SendPin),
    /// On disk, in this file: sent from it a piece at a time, never read back whole.
    Spilled(PathBuf),
}

/// Keeps a chunk being sent in memory; dropping it (the send ended, or the caller went away) lets
/// the chunk be spilled again.
#[derive(Debug)]
pub struct SendPin {
    store: Store,
    id: ChunkId,
}

impl Drop for SendPin {
    fn drop(&mut self) {
        if let Ok(mut s) = self.store.inner.lock() {
            s.unpin(&[self.id]);
            s.sends -= 1;
        }
        // Tasks waiting for memory may fit now that this chunk may be spilled.
        self.store.send_ended.notify_one();
    }
}

/// Bytes set aside for a running task, and the chunks it reads from memory (kept there while it
/// runs). Give it back with [`Store::finish`].
#[derive(Debug, Default)]
pub struct Reservation {
    bytes: u64,
    pins: Vec<ChunkId>,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Whether a task may start now.
#[derive(Debug)]
pub enum Admission {
    Granted(Reservation),
    /// Not now: running tasks hold the memory it needs; try again when one ends.
    Wait,
    /// Never on this worker: the message says why.
    Refused(String),
}

#[derive(Debug)]
struct Slot {
    /// `None` once spilled.
    value: Option<Arc<ChunkValue>>,
    nbytes: u64,
    /// Tick of its last use, for least-recently-used spilling.
    last_use: u64,
    /// Running tasks reading it from memory, and sends of it to peers in progress: it is not
    /// spilled while any holds it (writing it out would free nothing, yet the books would count
    /// its bytes as gone).
    pins: u32,
    /// Being written to disk now.
    writing: bool,
}

#[derive(Debug, Default)]
struct Inner {
    chunks: HashMap<ChunkId, Slot>,
    graphs: HashMap<u64, Arc<JobGraph>>,
    keys: HashMap<u64, Arc<[u8]>>,
    tokens: HashMap<u64, CancelToken>,
    /// Bytes of chunks in memory.
    bytes: u64,
    /// Bytes reserved by running tasks.
    reserved: u64,
    /// Sends to peers in progress holding a chunk pinned in memory.
    sends: u64,
    spilled: u64,
    spilled_chunks: u64,
    spill_writes: u64,
    spill_reads: u64,
    spill_nanos: u64,
    tick: u64,
    /// Jobs dropped by [`Store::forget`]; job ids are never reused within a session (eight bytes a
    /// job).
    forgotten: HashSet<u64>,
}

impl Inner {
    fn in_use(&self) -> u64 {
        self.bytes.saturating_add(self.reserved)
    }

    /// Takes a chunk out of the books; returns its spill file if it had one.
    fn remove(&mut self, id: ChunkId, spill: Option<&SpillDir>) -> Option<PathBuf> {
        let slot = self.chunks.remove(&id)?;
        if slot.value.is_some() {
            self.bytes -= slot.nbytes;
            None
        } else {
            self.spilled -= slot.nbytes;
            self.spilled_chunks -= 1;
            spill.map(|d| d.file(id.0, id.1))
        }
    }

    fn unpin(&mut self, pins: &[ChunkId]) {
        for id in pins {
            if let Some(slot) = self.chunks.get_mut(id) {
                slot.pins = slot.pins.saturating_sub(1);
            }
        }
    }
}

/// Deletes spill files off the calling thread (the session's, which must not wait for the disk).
fn delete_files(files: Vec<PathBuf>) {
    if files.is_empty() {
        return;
    }
    std::thread::spawn(move || {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    });
}

/// Chunks and graphs held by this worker.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    limits: MemoryLimits,
    spill: Option<Arc<SpillDir>>,
    /// Signalled when a send to a peer ends ([`Store::send_ended`]).
    send_ended: Arc<tokio::sync::Notify>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(MemoryLimits::unlimited(), None)
    }
}

impl Store {
    /// A store that keeps its chunks within `limits`, spilling to `spill` (without one, nothing is
    /// spilled and tasks that do not fit wait or fail).
    pub fn new(limits: MemoryLimits, spill: Option<SpillDir>) -> Self {
        Store {
            inner: Arc::default(),
            limits,
            spill: spill.map(Arc::new),
            send_ended: Arc::default(),
        }
    }

    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }

    /// The spill directory, if any.
    pub fn spill_dir(&self) -> Option<&Path> {
        self.spill.as_deref().map(SpillDir::path)
    }

    /// Keeps a chunk, unless its job was forgotten (then the chunk is dropped and this returns false).
    pub fn put(&self, id: ChunkId, value: Arc<ChunkValue>) -> bool {
        let mut s = self.inner.lock().expect("store");
        if s.forgotten.contains(&id.0) {
            return false;
        }
        let old = s.remove(id, self.spill.as_deref());
        let nbytes = value.nbytes() as u64;
        s.tick += 1;
        let last_use = s.tick;
        s.chunks.insert(
            id,
            Slot {
                value: Some(value),
                nbytes,
                last_use,
                pins: 0,
                writing: false,
            },
        );
        s.bytes += nbytes;
        drop(s);
        delete_files(old.into_iter().collect());
        true
    }

    /// The chunk if it is in memory (spilled chunks are read with [`Store::lookup`] and
    /// [`Store::load`], off the session's thread).
    pub fn get(&self, id: ChunkId) -> Option<Arc<ChunkValue>> {
        let mut s = self.inner.lock().expect("store");
        s.tick += 1;
        let tick = s.tick;
        let slot = s.chunks.get_mut(&id)?;
        slot.last_use = tick;
        slot.value.clone()
    }

    /// The chunk, in memory or on disk.
    pub fn lookup(&self, id: ChunkId) -> Option<Held> {
        if let Some(v) = self.get(id) {
            return Some(Held::Memory(v));
        }
        let s = self.inner.lock().expect("store");
        let spill = self.spill.as_deref()?;
        s.chunks
            .contains_key(&id)
            .then(|| Held::Spilled(spill.file(id.0, id.1)))
    }

    /// The chunk's value, read from its spill file if it is on disk (blocking: call it on a task
    /// thread or tokio's blocking pool). A value read back is not kept in memory: the reader holds
    /// it, its reservation counts it, and it is dropped when the reader is done.
    pub fn load(&self, held: Held) -> Result<Arc<ChunkValue>, String> {
        self.load_part(held, None)
    }

    /// What a task reading `region` of the chunk (`None`: all of it) needs of it: the chunk itself
    /// when it is in memory (shared, no copy), else just the region read from its spill file, never
    /// the whole file (blocking, like [`Store::load`]; not kept either).
    pub fn load_part(
        &self,
        held: Held,
        region: Option<&[Range<usize>]>,
    ) -> Result<Arc<ChunkValue>, String> {
        match held {
            Held::Memory(v) => Ok(v),
            Held::Spilled(path) => {
                let started = Instant::now();
                let v = match region {
                    Some(r) => spill::read_region(&path, r)?,
                    None => spill::read(&path)?,
                };
                let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let mut s = self.inner.lock().expect("store");
                s.spill_reads += 1;
                s.spill_nanos = s.spill_nanos.saturating_add(nanos);
                debug!(
                    file = %path.display(),
                    bytes = v.nbytes(),
                    micros = nanos / 1000,
                    "read a spilled chunk"
                );
                Ok(Arc::new(v))
            }
        }
    }

    /// Whether the chunk is held, in memory or on disk.
    pub fn contains(&self, id: ChunkId) -> bool {
        self.inner.lock().expect("store").chunks.contains_key(&id)
    }

    /// The chunk, to send to a peer: in memory, pinned there until the [`SendPin`] is dropped (the
    /// send holds it, so spilling it would free nothing), or the spill file to send it from.
    pub fn checkout(&self, id: ChunkId) -> Option<Outbound> {
        let mut s = self.inner.lock().expect("store");
        s.tick += 1;
        let tick = s.tick;
        let slot = s.chunks.get_mut(&id)?;
        match &slot.value {
            Some(v) => {
                slot.last_use = tick;
                slot.pins += 1;
                let value = v.clone();
                s.sends += 1;
                let pin = SendPin {
                    store: self.clone(),
                    id,
                };
                Some(Outbound::Memory(value, pin))
            }
            None => {
                let spill = self.spill.as_deref()?;
                Some(Outbound::Spilled(spill.file(id.0, id.1)))
            }
        }
    }

    /// Resolves when a send to a peer has ended since the last time it resolved (or now, if one
    /// has): the memory it pinned may be spilled, so tasks waiting for memory should try again.
    pub async fn send_ended(&self) {
        self.send_ended.notified().await;
    }

    /// Whether sends to peers hold chunks pinned in memory.
    pub fn sending(&self) -> bool {
        self.inner.lock().expect("store").sends > 0
    }

    pub fn release(&self, ids: impl IntoIterator<Item = ChunkId>) {
        let mut s = self.inner.lock().expect("store");
        let files: Vec<PathBuf> = ids
            .into_iter()
            .filter_map(|id| s.remove(id, self.spill.as_deref()))
            .collect();
        drop(s);
        delete_files(files);
    }

    /// Decides whether a task reading chunks `deps` of `job` and needing `need` bytes at its peak
    /// may start, without touching the disk. Inputs held in memory are pinned there and count as
    /// already paid for: as much of `need` as the need counts for them (all of the chunk, or only
    /// the region's bytes for a task that reads a region of it: [`DepRead`]). The rest of the need
    /// is reserved. `Wait` here may become a grant after [`Store::make_room`].
    pub fn try_admit(&self, job: u64, deps: &[DepRead], need: TaskBytes) -> Admission {
        let mut s = self.inner.lock().expect("store");
        let mut pins = Vec::new();
        let mut held = 0u64;
        for &(d, counted) in deps {
            let id = (job, d);
            if pins.contains(&id) {
                continue;
            }
            if let Some(slot) = s.chunks.get_mut(&id)
                && slot.value.is_some()
            {
                slot.pins += 1;
                // A region read from a chunk in memory costs nothing new, but the need counted only
                // the region: crediting the whole chunk would leave other inputs unpaid for.
                held += counted.map_or(slot.nbytes, |c| c.min(slot.nbytes));
                pins.push(id);
            }
        }
        let total = need.total();
        let limit = self.limits.limit;
        if total > limit {
            s.unpin(&pins);
            return Admission::Refused(format!(
                "it needs {total} bytes at its peak (inputs {} + output {} + scratch {}), more than this worker's --memory-limit of {limit} bytes",
                need.inputs, need.output, need.scratch
            ));
        }
        let extra = total.saturating_sub(held);
        let in_use = s.in_use();
        // Past the pause fraction nothing new starts while anything runs.
        let paused = in_use > self.limits.pause && s.reserved > 0;
        if !paused && in_use.saturating_add(extra) <= limit {
            s.reserved += extra;
            return Admission::Granted(Reservation { bytes: extra, pins });
        }
        s.unpin(&pins);
        Admission::Wait
    }

    /// Spills chunks that no running task reads, least recently used first, until the chunks in
    /// memory and the reservations plus `extra` are under the memory target (or nothing more can
    /// go). Blocks on the disk. A failed write stops it with the error, naming the file and cause.
    pub fn make_room(&self, extra: u64) -> Result<(), String> {
        let Some(spill) = self.spill.as_deref() else {
            return Ok(());
        };
        loop {
            let mut s = self.inner.lock().expect("store");
            if s.in_use().saturating_add(extra) <= self.limits.target {
                return Ok(());
            }
            let victim = s
                .chunks
                .iter()
                .filter(|(_, slot)| slot.value.is_some() && slot.pins == 0 && !slot.writing)
                .min_by_key(|(_, slot)| slot.last_use)
                .map(|(&id, _)| id);
            let Some(id) = victim else {
                return Ok(());
            };
            let slot = s.chunks.get_mut(&id).expect("just found");
            slot.writing = true;
            let value = slot.value.clone().expect("in memory");
            drop(s);
            let path = spill.file(id.0, id.1);
            let started = Instant::now();
            let written = spill::write(&path, &value);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            drop(value);
            let mut s = self.inner.lock().expect("store");
            let Some(slot) = s.chunks.get_mut(&id) else {
                // Released while it was being written.
                drop(s);
                let _ = std::fs::remove_file(&path);
                continue;
            };
            slot.writing = false;
            written?;
            if slot.pins > 0 {
                // A task or a send took it while it was being written: it stays in memory (and in
                // the books) for them, and the file goes.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            slot.value = None;
            let n = slot.nbytes;
            s.bytes -= n;
            s.spilled += n;
            s.spilled_chunks += 1;
            s.spill_writes += 1;
            s.spill_nanos = s.spill_nanos.saturating_add(nanos);
            debug!(
                job = id.0,
                task = id.1,
                bytes = n,
                micros = nanos / 1000,
                held = s.bytes,
                "spilled a chunk"
            );
        }
    }

    /// Admits a task as [`Store::try_admit`] does, spilling to make room where that helps. `Wait`:
    /// running tasks hold what it needs; `Refused`: it cannot run here (too large for the limit, or
    /// the room it needs could not be made because spilling failed).
    pub fn admit(&self, job: u64, deps: &[DepRead], need: TaskBytes) -> Admission {
        match self.try_admit(job, deps, need) {
            Admission::Wait => {}
            other => return other,
        }
        // Room for all of it (its held inputs are pinned, so they cannot go anyway).
        let spilled = self.make_room(need.total());
        match self.try_admit(job, deps, need) {
            Admission::Wait => {}
            other => return other,
        }
        if let Err(e) = spilled {
            return Admission::Refused(format!(
                "this worker could not make room for it under its --memory-limit of {} bytes: {e}",
                self.limits.limit
            ));
        }
        let s = self.inner.lock().expect("store");
        // Running tasks and sends in progress will give memory back.
        if s.reserved > 0 || s.sends > 0 {
            return Admission::Wait;
        }
        Admission::Refused(format!(
            "it needs {} bytes and nothing more can be spilled: {} bytes of chunks are in memory and this worker's --memory-limit is {} bytes",
            need.total(),
            s.bytes,
            self.limits.limit
        ))
    }

    /// A task ended: its reservation is given back and its inputs may be spilled again.
    pub fn finish(&self, r: Reservation) {
        let mut s = self.inner.lock().expect("store");
        s.reserved -= r.bytes;
        s.unpin(&r.pins);
    }

    /// The worker's memory now.
    pub fn memory(&self) -> MemoryStatus {
        let s = self.inner.lock().expect("store");
        MemoryStatus {
            held: s.bytes,
            running: s.reserved,
            spilled: s.spilled,
            spilled_chunks: s.spilled_chunks,
            spill_writes: s.spill_writes,
            spill_reads: s.spill_reads,
            spill_nanos: s.spill_nanos,
            paused: s.in_use() > self.limits.pause,
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
        let ids: Vec<ChunkId> = s.chunks.keys().filter(|id| id.0 == job).copied().collect();
        let files: Vec<PathBuf> = ids
            .into_iter()
            .filter_map(|id| s.remove(id, self.spill.as_deref()))
            .collect();
        drop(s);
        delete_files(files);
    }

    /// Forgets every job (the session with the scheduler that assigned them is gone): returns the
    /// number of chunks and bytes (in memory and spilled) dropped.
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
        let dropped = (s.chunks.len(), s.bytes + s.spilled);
        let ids: Vec<ChunkId> = s.chunks.keys().copied().collect();
        let files: Vec<PathBuf> = ids
            .into_iter()
            .filter_map(|id| s.remove(id, self.spill.as_deref()))
            .collect();
        s.graphs.clear();
        s.keys.clear();
        delete_files(files);
        dropped
    }

    /// Whether [`Store::forget`] dropped the job.
    pub fn is_forgotten(&self, job: u64) -> bool {
        self.inner.lock().expect("store").forgotten.contains(&job)
    }

    /// Bytes of chunk data held in memory.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().expect("store").bytes
    }

    /// Number of chunks held (in memory or spilled).
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

    /// A chunk being sent is pinned in memory, and counted there: spilling it would free nothing
    /// while the send holds it. Once the send ends it may go like any other.
    #[test]
    fn a_chunk_being_sent_stays_in_memory_and_in_the_books() {
        let spill = SpillDir::new(None).unwrap();
        // Target 0: make_room spills everything it may.
        let store = Store::new(MemoryLimits::new(1 << 20, 0.0, 1.0), Some(spill));
        store.put((1, 0), chunk(10));
        store.put((1, 1), chunk(20));
        let Some(Outbound::Memory(value, pin)) = store.checkout((1, 0)) else {
            panic!("chunk (1, 0) is in memory");
        };
        assert_eq!(value.nbytes(), 80);
        store.make_room(0).unwrap();
        let m = store.memory();
        assert_eq!((m.held, m.spilled, m.spilled_chunks), (80, 160, 1));
        let Some(Outbound::Spilled(path)) = store.checkout((1, 1)) else {
            panic!("chunk (1, 1) was spilled");
        };
        assert!(path.exists());
        drop((value, pin));
        store.make_room(0).unwrap();
        let m = store.memory();
        assert_eq!((m.held, m.spilled, m.spilled_chunks), (0, 240, 2));
        assert!(store.checkout((1, 2)).is_none() && !store.contains((1, 2)));
        assert!(store.contains((1, 0)) && store.contains((1, 1)));
    }

    /// A task that does not fit beside a chunk a send holds waits for the send to end (which
    /// signals [`Store::send_ended`]) rather than being refused: the memory will come back.
    #[tokio::test]
    async fn a_task_waits_for_a_send_to_end_rather_than_failing() {
        let spill = SpillDir::new(None).unwrap();
        let store = Store::new(MemoryLimits::new(100, 0.5, 1.0), Some(spill));
        store.put((1, 0), chunk(10));
        let Some(Outbound::Memory(_, pin)) = store.checkout((1, 0)) else {
            panic!("chunk (1, 0) is in memory");
        };
        assert!(store.sending());
        let need = TaskBytes {
            inputs: 0,
            output: 40,
            scratch: 0,
        };
        assert!(matches!(store.admit(1, &[], need), Admission::Wait));
        drop(pin);
        tokio::time::timeout(std::time::Duration::from_secs(5), store.send_ended())
            .await
            .expect("the end of the send is signalled");
        assert!(!store.sending());
        let Admission::Granted(r) = store.admit(1, &[], need) else {
            panic!("the task does not fit once the chunk may be spilled");
        };
        assert_eq!((store.memory().held, store.memory().spilled), (0, 80));
        store.finish(r);
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

    /// A task reading a region of a chunk in memory is credited with the region's bytes (what its
    /// need counted for it), not the whole chunk: otherwise a large held source would pay for the
    /// task's other inputs and its output, and the worker would run past its limit.
    #[test]
    fn a_region_of_a_held_chunk_is_credited_as_the_region() {
        let store = Store::new(MemoryLimits::new(1 << 20, 1.0, 1.0), None);
        // 8000 bytes held; the task reads 800 of them, 1600 of a chunk elsewhere, writes 2400.
        store.put((1, 0), chunk(1000));
        let need = TaskBytes {
            inputs: 800 + 1600,
            output: 2400,
            scratch: 0,
        };
        let Admission::Granted(r) = store.try_admit(1, &[(0, Some(800)), (9, Some(1600))], need)
        else {
            panic!("the task fits");
        };
        assert_eq!(r.bytes(), 1600 + 2400);
        assert_eq!(store.memory().running, 4000);
        store.finish(r);
        // Read whole, the held chunk pays for its 8000 bytes, at most what the need counts.
        let need = TaskBytes {
            inputs: 8000 + 1600,
            output: 2400,
            scratch: 0,
        };
        let Admission::Granted(r) = store.try_admit(1, &[(0, None), (9, None)], need) else {
            panic!("the task fits");
        };
        assert_eq!(r.bytes(), 1600 + 2400);
        store.finish(r);
        // A region's count is capped at the chunk's bytes.
        let Admission::Granted(r) = store.try_admit(1, &[(0, Some(1 << 30))], need) else {
            panic!("the task fits");
        };
        assert_eq!(r.bytes(), 8000 + 1600 + 2400 - 8000);
        store.finish(r);
        assert_eq!(store.memory().running, 0);
    }
}
