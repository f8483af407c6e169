//! The worker's gRPC service: peers and clients fetch chunks from it, one per call (`FetchChunk`) or
//! several of a job per call (`FetchChunks`: a combine task reads many small partials, and a call
//! costs far more than their bytes). Each chunk is sent in pieces of at most [`PIECE_BYTES`], each
//! written from the chunk as the stream reaches it ([`PieceEncoder`]), so chunks of any size cross
//! the wire and no chunk is ever encoded whole.
//!
//! A send costs no memory the worker's limit does not count: a chunk in memory is pinned there
//! while it is sent (spilling it then would free nothing, yet the store would count its bytes as
//! gone), and a spilled chunk is sent straight from its file, a piece at a time, never read back
//! whole. A call takes each chunk from the store only when its turn comes, so a call for several
//! chunks holds one at a time.
//!
//! A call may ask for a region of each chunk (a rechunk task reads only where its target overlaps
//! each source): the region is encoded as the array it cuts out, written straight from the chunk in
//! memory (no copy of the region is made) or read from the spill file's runs of it (never the whole
//! file). A region that does not lie inside its chunk fails the call with INVALID_ARGUMENT naming
//! the job, task, region and shape.

use std::collections::VecDeque;
use std::pin::Pin;

use tessera::graph::Region;
use tessera_proto::v1::worker_server::Worker;
use tessera_proto::v1::{ChunkPiece, ChunkRef, ChunkRefs};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use tessera::wire::PieceEncoder;

use crate::spill::{self, FilePieces};
use crate::store::{Outbound, SendPin, Store};

/// Bytes per streamed piece: well under tonic's default 4 MiB message limit.
pub const PIECE_BYTES: usize = 1 << 20;

/// Serves the chunks in a [`Store`].
#[derive(Clone, Debug)]
pub struct WorkerService {
    store: Store,
}

impl WorkerService {
    pub fn new(store: Store) -> Self {
        WorkerService { store }
    }

    /// The pieces of chunks `tasks` of `job`, in that order, for a caller showing `key`; of only
    /// `regions` of them when given (see [`ChunkRefs::regions`]). Every chunk is checked to be held
    /// before the first piece is sent, so that a missing one fails the call cleanly rather than
    /// mid-stream (one released meanwhile fails it mid-stream, saying so); a region is checked
    /// against its chunk's shape when its turn comes.
    fn pieces(
        &self,
        job: u64,
        key: &[u8],
        tasks: &[u32],
        regions: &[tessera_proto::v1::Region],
    ) -> Result<PieceStream, Status> {
        // Job ids are not secrets: the key is what proves the caller may read the job.
        if !self.store.key_matches(job, key) {
            return Err(Status::permission_denied(format!(
                "no access to job {job} here: the job key is missing or wrong, or the job is not known here"
            )));
        }
        if let Some(task) = tasks.iter().find(|&&t| !self.store.contains((job, t))) {
            return Err(Status::not_found(format!(
                "chunk of task {task} of job {job} is not held here"
            )));
        }
        let regions = requested_regions(job, tasks, regions)?;
        let outgoing = Outgoing {
            job,
            store: self.store.clone(),
            chunks: tasks.iter().copied().zip(regions).collect(),
            next: 0,
            current: None,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            outgoing,
            Outgoing::next_piece,
        )))
    }
}

type PieceStream = Pin<Box<dyn Stream<Item = Result<ChunkPiece, Status>> + Send>>;

/// The region asked of each of `tasks` (`None`: whole), from a request's `regions` (empty: all
/// whole). Their lengths and indices are checked here, before any piece; a region's fit in its
/// chunk is checked when the chunk's turn comes.
fn requested_regions(
    job: u64,
    tasks: &[u32],
    regions: &[tessera_proto::v1::Region],
) -> Result<Vec<Option<Region>>, Status> {
    if regions.is_empty() {
        return Ok(vec![None; tasks.len()]);
    }
    if regions.len() != tasks.len() {
        return Err(Status::invalid_argument(format!(
            "{} regions asked for {} chunks of job {job}",
            regions.len(),
            tasks.len()
        )));
    }
    tasks
        .iter()
        .zip(regions)
        .map(|(task, r)| {
            if r.start.is_empty() && r.end.is_empty() {
                return Ok(None);
            }
            let invalid = || {
                Status::invalid_argument(format!(
                    "task {task} of job {job}: region with starts {:?} and ends {:?} is not a range per axis",
                    r.start, r.end
                ))
            };
            if r.start.len() != r.end.len() {
                return Err(invalid());
            }
            r.start
                .iter()
                .zip(&r.end)
                .map(|(&a, &b)| Some(usize::try_from(a).ok()?..usize::try_from(b).ok()?))
                .collect::<Option<Region>>()
                .map(Some)
                .ok_or_else(invalid)
        })
        .collect()
}

#[tonic::async_trait]
impl Worker for WorkerService {
    type FetchChunkStream = PieceStream;
    type FetchChunksStream = PieceStream;

    async fn fetch_chunk(
        &self,
        request: Request<ChunkRef>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        Ok(Response::new(self.pieces(
            r.job,
            &r.job_key,
            &[r.task],
            &[],
        )?))
    }

    async fn fetch_chunks(
        &self,
        request: Request<ChunkRefs>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            self.pieces(r.job, &r.job_key, &r.tasks, &r.regions)?,
        ))
    }
}

/// A fetch's reply in progress.
struct Outgoing {
    job: u64,
    store: Store,
    /// Tasks of the chunks not started yet, each with the region asked of it (`None`: whole).
    chunks: VecDeque<(u32, Option<Region>)>,
    /// Index in the request of the front of `chunks`.
    next: u32,
    /// The chunk being sent, with its index: its pieces are written from the chunk (or its spill
    /// file) as they go out, so a large chunk is never encoded whole.
    current: Option<(u32, Sending)>,
}

/// A chunk being sent.
enum Sending {
    /// From memory, where the pin keeps it until it has gone.
    Memory(PieceEncoder, Option<SendPin>),
    /// From its spill file.
    File(FilePieces),
}

impl Sending {
    fn total_len(&self) -> usize {
        match self {
            Sending::Memory(e, _) => e.total_len(),
            Sending::File(f) => f.total_len(),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Sending::Memory(e, _) => e.is_done(),
            Sending::File(f) => f.is_done(),
        }
    }

    /// The next piece: the disk is read on tokio's blocking pool.
    async fn next_piece(self) -> Result<(Self, Vec<u8>), String> {
        match self {
            Sending::Memory(mut e, pin) => {
                let piece = e.next_piece(PIECE_BYTES);
                Ok((Sending::Memory(e, pin), piece))
            }
            Sending::File(mut f) => tokio::task::spawn_blocking(move || {
                let piece = f.next_piece(PIECE_BYTES)?;
                Ok((Sending::File(f), piece))
            })
            .await
            .map_err(|e| format!("reading the spilled chunk: {e}"))?,
        }
    }
}

impl Outgoing {
    async fn next_piece(mut self) -> Option<(Result<ChunkPiece, Status>, Outgoing)> {
        let (index, sending, first) = match self.current.take() {
            Some((index, sending)) => (index, sending, false),
            None => {
                let (task, region) = self.chunks.pop_front()?;
                let index = self.next;
                self.next += 1;
                match start(&self.store, self.job, task, region).await {
                    Ok(sending) => (index, sending, true),
                    Err(e) => {
                        self.chunks.clear();
                        let (code, e) = match e {
                            StartError::BadRegion(e) => (tonic::Code::InvalidArgument, e),
                            StartError::Other(e) => (tonic::Code::Internal, e),
                        };
                        let message = format!("task {task} of job {}: {e}", self.job);
                        return Some((Err(Status::new(code, message)), self));
                    }
                }
            }
        };
        // An empty encoding still goes out as one empty piece, so that the receiver sees the chunk.
        let total_len = if first { sending.total_len() as u64 } else { 0 };
        let (sending, data) = match sending.next_piece().await {
            Ok(next) => next,
            Err(e) => {
                self.chunks.clear();
                let message = format!("chunk {index} of the call, of job {}: {e}", self.job);
                return Some((Err(Status::internal(message)), self));
            }
        };
        if !sending.is_done() {
            self.current = Some((index, sending));
        }
        let piece = ChunkPiece {
            total_len,
            data,
            index,
        };
        Some((Ok(piece), self))
    }
}

/// Why a chunk could not be sent.
enum StartError {
    /// The region asked of it does not lie inside it, or it is not an array: the caller's mistake.
    BadRegion(String),
    Other(String),
}

/// Chunk `task` of `job`, or `region` of it, ready to be sent a piece at a time: pinned in memory,
/// or opened on disk (on tokio's blocking pool).
async fn start(
    store: &Store,
    job: u64,
    task: u32,
    region: Option<Region>,
) -> Result<Sending, StartError> {
    match store.checkout((job, task)) {
        Some(Outbound::Memory(value, pin)) => {
            let encoder = match region {
                None => PieceEncoder::new(value),
                Some(r) => PieceEncoder::region(value, &r).map_err(StartError::BadRegion)?,
            };
            Ok(Sending::Memory(encoder, Some(pin)))
        }
        Some(Outbound::Spilled(path)) => {
            let opened =
                tokio::task::spawn_blocking(move || spill::open_outgoing(&path, region.as_deref()))
                    .await
                    .map_err(|e| StartError::Other(format!("reading the spilled chunk: {e}")))?;
            match opened.map_err(|e| match e {
                spill::OutgoingError::BadRegion(e) => StartError::BadRegion(e),
                spill::OutgoingError::File(e) => StartError::Other(e),
            })? {
                spill::Outgoing::Pieces(f) => Ok(Sending::File(f)),
                spill::Outgoing::Value(v) => Ok(Sending::Memory(
                    PieceEncoder::new(std::sync::Arc::new(*v)),
                    None,
                )),
            }
        }
        None => Err(StartError::Other(
            "the chunk was released while the call was in progress".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Dimension;
    use std::sync::Arc;
    use tessera::ChunkValue;
    use tokio_stream::StreamExt;

    fn f64_chunk(shape: &[usize]) -> Arc<ChunkValue> {
        let a = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(shape), |i| {
            i.slice().iter().sum::<usize>() as f64
        });
        Arc::new(ChunkValue::Array(tessera::ArrayData::F64(a)))
    }

    #[tokio::test]
    async fn chunks_are_cut_into_pieces_in_request_order() {
        let store = Store::default();
        // 8 MB: eight pieces; then chunks far below one piece.
        let chunks = [f64_chunk(&[1000, 1000]), f64_chunk(&[0]), f64_chunk(&[3])];
        for (task, c) in chunks.iter().enumerate() {
            store.put((5, task as u32 * 10), c.clone());
        }
        store.put_key(5, b"key of job 5");
        let service = WorkerService::new(store);
        let pieces: Vec<ChunkPiece> = service
            .pieces(5, b"key of job 5", &[0, 10, 20], &[])
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let mut got: Vec<Vec<u8>> = Vec::new();
        for p in &pieces {
            assert!(p.data.len() <= PIECE_BYTES);
            if p.index as usize == got.len() {
                got.push(Vec::new());
                assert_eq!(
                    p.total_len,
                    tessera::wire::encode_chunk(&chunks[p.index as usize]).len() as u64
                );
            } else {
                assert_eq!(p.index as usize, got.len() - 1, "pieces out of order");
                assert_eq!(p.total_len, 0);
            }
            got.last_mut().unwrap().extend_from_slice(&p.data);
        }
        assert_eq!(pieces.len(), 8 + 1 + 1);
        let want: Vec<Vec<u8>> = chunks
            .iter()
            .map(|c| tessera::wire::encode_chunk(c))
            .collect();
        assert!(got == want);
    }

    /// A store that spills everything it may when asked to make room.
    fn spilling_store() -> Store {
        let spill = crate::spill::SpillDir::new(None).unwrap();
        Store::new(
            crate::store::MemoryLimits::new(1 << 30, 0.0, 1.0),
            Some(spill),
        )
    }

    /// A store holding job 5's key (`key`), spilling everything it can when `spilled`.
    fn keyed_store(spilled: bool) -> Store {
        let store = if spilled {
            spilling_store()
        } else {
            Store::default()
        };
        store.put_key(5, b"key");
        store
    }

    /// The bytes of each chunk a call sends, in request order.
    async fn received(stream: PieceStream) -> Vec<Vec<u8>> {
        let mut got: Vec<Vec<u8>> = Vec::new();
        let pieces: Vec<ChunkPiece> = stream.map(Result::unwrap).collect().await;
        for p in pieces {
            assert!(p.data.len() <= PIECE_BYTES);
            if p.index as usize == got.len() {
                got.push(Vec::with_capacity(p.total_len as usize));
            }
            got.last_mut().unwrap().extend_from_slice(&p.data);
        }
        got
    }

    /// A spilled chunk goes out from its file: the same bytes as from memory, and nothing read
    /// back into memory (which the worker's limit would not count).
    #[tokio::test]
    async fn a_spilled_chunk_is_sent_from_its_file() {
        let store = spilling_store();
        let chunks = [
            f64_chunk(&[1000, 1000]),
            f64_chunk(&[3, 0]),
            f64_chunk(&[7]),
        ];
        for (task, c) in chunks.iter().enumerate() {
            store.put((5, task as u32), c.clone());
        }
        store.put_key(5, b"key");
        store.make_room(0).unwrap();
        assert_eq!((store.memory().held, store.memory().spilled_chunks), (0, 3));
        let service = WorkerService::new(store.clone());
        let got = received(service.pieces(5, b"key", &[0, 1, 2], &[]).unwrap()).await;
        let want: Vec<Vec<u8>> = chunks
            .iter()
            .map(|c| tessera::wire::encode_chunk(c))
            .collect();
        assert!(got == want);
        let m = store.memory();
        assert_eq!((m.held, m.spill_reads), (0, 0));
    }

    /// A chunk in memory is pinned while its send is under way, so making room does not spill it
    /// (that would free nothing); the chunks of a call not started yet are not held by it.
    #[tokio::test]
    async fn a_chunk_being_sent_is_not_spilled_under_the_send() {
        let store = spilling_store();
        let (big, small) = (f64_chunk(&[1000, 1000]), f64_chunk(&[10]));
        store.put((5, 0), big.clone());
        store.put((5, 1), small.clone());
        store.put_key(5, b"key");
        let service = WorkerService::new(store.clone());
        let mut stream = service.pieces(5, b"key", &[0, 1], &[]).unwrap();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.index, 0);
        store.make_room(0).unwrap();
        // The chunk being sent stays; the one not started yet is spilled, and sent from disk.
        assert_eq!(store.memory().held, big.nbytes() as u64);
        assert_eq!(store.memory().spilled, small.nbytes() as u64);
        let mut rest = vec![first];
        while let Some(p) = stream.next().await {
            rest.push(p.unwrap());
        }
        let bytes = |i: u32| -> Vec<u8> {
            rest.iter()
                .filter(|p| p.index == i)
                .flat_map(|p| p.data.iter().copied())
                .collect()
        };
        assert!(bytes(0) == tessera::wire::encode_chunk(&big));
        assert!(bytes(1) == tessera::wire::encode_chunk(&small));
        drop(stream);
        store.make_room(0).unwrap();
        assert_eq!(store.memory().held, 0);
    }

    #[tokio::test]
    async fn a_chunk_not_held_fails_the_whole_call() {
        let store = Store::default();
        store.put((5, 0), f64_chunk(&[3]));
        store.put_key(5, b"key of job 5");
        let service = WorkerService::new(store);
        for key in [&b"key of job 6"[..], b"", b"key of job 5 "] {
            let Err(status) = service.pieces(5, key, &[0], &[]) else {
                panic!("a stream for a caller without the job's key");
            };
            assert_eq!(status.code(), tonic::Code::PermissionDenied);
        }
        let Err(status) = service.pieces(5, b"key of job 5", &[0, 7], &[]) else {
            panic!("a stream for a chunk that is not held");
        };
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(
            status.message().contains("task 7 of job 5"),
            "{}",
            status.message()
        );
    }

    /// Arrays of every dtype, one not in C order, a 3-D one and a 0-dimensional one, each with
    /// regions to ask of it: a box inside, whole rows (one run), a single element, an empty region
    /// and the whole chunk.
    fn arrays_and_regions() -> Vec<(tessera::ArrayData, Vec<Region>)> {
        use tessera::ArrayData as A;
        let f = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[30, 70]), |i| {
            (i[0] * 70 + i[1]) as f64 * 0.5 - 7.0
        });
        let r = |v: &[std::ops::Range<usize>]| -> Region { v.iter().cloned().collect() };
        let two_d = vec![
            r(&[3..17, 20..61]),
            r(&[10..29, 0..70]),
            r(&[29..30, 69..70]),
            r(&[0..30, 5..5]),
            r(&[0..30, 0..70]),
        ];
        let cube = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[4, 5, 6]), |i| {
            (i[0] * 100 + i[1] * 10 + i[2]) as i64
        });
        let mut cases: Vec<(A, Vec<Region>)> = [
            A::F64(f.clone()),
            // Not in C order: its region is copied, the bytes are the same.
            A::F64(f.t().as_standard_layout().into_owned().reversed_axes()),
            A::F32(f.mapv(|x| x as f32)),
            A::I64(f.mapv(|x| x as i64)),
            A::I32(f.mapv(|x| x as i32 - 1000)),
            A::U8(f.mapv(|x| x as i64 as u8)),
            A::U64(f.mapv(|x| (x as i64 as u64) << 20)),
            A::Bool(f.mapv(|x| x > 300.0)),
            A::C128(f.mapv(|x| tessera::Complex64::new(x, -x / 3.0))),
        ]
        .into_iter()
        .map(|a| (a, two_d.clone()))
        .collect();
        assert!(!matches!(&cases[1].0, A::F64(x) if x.is_standard_layout()));
        cases.push((
            A::I64(cube),
            vec![
                r(&[1..3, 0..5, 2..4]),
                r(&[1..3, 0..5, 0..6]),
                r(&[0..4, 2..3, 0..6]),
            ],
        ));
        cases.push((
            A::F64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), 2.5)),
            vec![r(&[])],
        ));
        cases
    }

    /// The request's form of a region.
    fn wire_region(r: &Region) -> tessera_proto::v1::Region {
        tessera_proto::v1::Region {
            start: r.iter().map(|r| r.start as u64).collect(),
            end: r.iter().map(|r| r.end as u64).collect(),
        }
    }

    /// A region is sent as the encoding of the array it cuts out (the engine's own
    /// `ArrayData::region` and `encode_chunk` are the oracle), from memory and from a spill file,
    /// in pieces that may end mid-run.
    #[tokio::test]
    async fn a_region_is_sent_as_the_array_it_cuts_out_from_memory_and_from_disk() {
        for spilled in [false, true] {
            let store = keyed_store(spilled);
            let cases = arrays_and_regions();
            let mut tasks = Vec::new();
            let mut regions = Vec::new();
            let mut want = Vec::new();
            for (c, (a, rs)) in cases.iter().enumerate() {
                let value = Arc::new(ChunkValue::Array(a.clone()));
                store.put((5, c as u32), value.clone());
                for r in rs {
                    tasks.push(c as u32);
                    regions.push(wire_region(r));
                    let part = ChunkValue::Array(a.region(r).unwrap());
                    want.push(tessera::wire::encode_chunk(&part));
                    // The encoder itself, in pieces far smaller than a run.
                    let mut e = PieceEncoder::region(value.clone(), r).unwrap();
                    assert_eq!(e.total_len(), want.last().unwrap().len());
                    let mut got = Vec::new();
                    while !e.is_done() {
                        got.extend(e.next_piece(40));
                    }
                    assert!(&got == want.last().unwrap(), "case {c} region {r:?}");
                }
                // And once whole, in the same call.
                tasks.push(c as u32);
                regions.push(tessera_proto::v1::Region::default());
                want.push(tessera::wire::encode_chunk(&value));
            }
            if spilled {
                store.make_room(0).unwrap();
                assert_eq!(store.memory().held, 0);
            }
            let service = WorkerService::new(store.clone());
            let got = received(service.pieces(5, b"key", &tasks, &regions).unwrap()).await;
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(g == w, "spilled {spilled}: entry {i} ({:?})", regions[i]);
            }
            // Sent from the files: nothing read back into memory.
            assert_eq!(store.memory().spill_reads, 0);
        }
    }

    /// A region that does not lie inside its chunk, or asked of a partial, fails the call with
    /// INVALID_ARGUMENT naming the job, task, region and shape; a request whose regions do not
    /// match its tasks fails before any piece. Nothing panics.
    #[tokio::test]
    async fn a_bad_region_fails_the_call_naming_it() {
        for spilled in [false, true] {
            let store = keyed_store(spilled);
            store.put((5, 0), f64_chunk(&[4, 6]));
            store.put(
                (5, 1),
                Arc::new(ChunkValue::Moments(tessera::data::Moments {
                    count: ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1, 3]), 4.0),
                    mean: ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1, 3]), 0.25),
                    m2: None,
                })),
            );
            if spilled {
                store.make_room(0).unwrap();
                assert_eq!(store.memory().spilled_chunks, 2);
            }
            let service = WorkerService::new(store);
            let region = |start: &[u64], end: &[u64]| tessera_proto::v1::Region {
                start: start.to_vec(),
                end: end.to_vec(),
            };
            let bad = [
                (0, region(&[0, 0], &[5, 6]), "[0..5, 0..6]", "[4, 6]"),
                (0, region(&[2, 3], &[1, 6]), "[2..1, 3..6]", "[4, 6]"),
                (0, region(&[0], &[4]), "[0..4]", "[4, 6]"),
                (
                    0,
                    region(&[0, 0, 0], &[1, 1, 1]),
                    "[0..1, 0..1, 0..1]",
                    "[4, 6]",
                ),
                (1, region(&[0, 0], &[1, 1]), "[0..1, 0..1]", "not an array"),
            ];
            for (task, r, shown, shape) in bad {
                // A good chunk first: the call fails when the bad one's turn comes.
                let stream = service
                    .pieces(5, b"key", &[0, task], &[Default::default(), r])
                    .unwrap();
                let results: Vec<Result<ChunkPiece, Status>> = stream.collect().await;
                let status = results
                    .into_iter()
                    .find_map(Result::err)
                    .expect("the call fails");
                assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                let m = status.message();
                assert!(
                    m.contains(&format!("task {task} of job 5"))
                        && m.contains(shown)
                        && m.contains(shape),
                    "spilled {spilled}: {m}"
                );
            }
            for (tasks, regions) in [
                (&[0u32, 0][..], vec![region(&[0, 0], &[1, 1])]),
                (&[0], vec![region(&[0, 0], &[1])]),
            ] {
                let Err(status) = service.pieces(5, b"key", tasks, &regions) else {
                    panic!("a stream for regions {regions:?} of tasks {tasks:?}");
                };
                assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                assert!(status.message().contains("job 5"), "{}", status.message());
            }
        }
    }
}
