//! The worker's gRPC service: peers and clients fetch chunks from it, one per call (`FetchChunk`) or
//! several of a job per call (`FetchChunks`: a combine task reads many small partials, and a call
//! costs far more than their bytes). Each chunk is sent in pieces of at most [`PIECE_BYTES`], each
//! written from the chunk as the stream reaches it ([`PieceEncoder`]), so chunks of any size cross
//! the wire and no chunk is ever encoded whole.

use std::collections::VecDeque;
use std::pin::Pin;

use tessera_proto::v1::worker_server::Worker;
use tessera_proto::v1::{ChunkPiece, ChunkRef, ChunkRefs};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use tessera::wire::PieceEncoder;

use crate::store::{Held, Store};

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

    /// The pieces of chunks `tasks` of `job`, in that order, for a caller showing `key`. Every chunk
    /// is looked up before the first piece is sent, so that a missing one fails the call cleanly
    /// rather than mid-stream.
    fn pieces(&self, job: u64, key: &[u8], tasks: &[u32]) -> Result<PieceStream, Status> {
        // Job ids are not secrets: the key is what proves the caller may read the job.
        if !self.store.key_matches(job, key) {
            return Err(Status::permission_denied(format!(
                "no access to job {job} here: the job key is missing or wrong, or the job is not known here"
            )));
        }
        let chunks = tasks
            .iter()
            .map(|&task| {
                let value = self.store.lookup((job, task)).ok_or_else(|| {
                    Status::not_found(format!(
                        "chunk of task {task} of job {job} is not held here"
                    ))
                })?;
                Ok((task, value))
            })
            .collect::<Result<VecDeque<_>, Status>>()?;
        let outgoing = Outgoing {
            job,
            store: self.store.clone(),
            chunks,
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

#[tonic::async_trait]
impl Worker for WorkerService {
    type FetchChunkStream = PieceStream;
    type FetchChunksStream = PieceStream;

    async fn fetch_chunk(
        &self,
        request: Request<ChunkRef>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        Ok(Response::new(self.pieces(r.job, &r.job_key, &[r.task])?))
    }

    async fn fetch_chunks(
        &self,
        request: Request<ChunkRefs>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        Ok(Response::new(self.pieces(r.job, &r.job_key, &r.tasks)?))
    }
}

/// A fetch's reply in progress.
struct Outgoing {
    job: u64,
    /// Reads spilled chunks back.
    store: Store,
    /// Chunks not started yet, with their tasks.
    chunks: VecDeque<(u32, Held)>,
    /// Index in the request of the front of `chunks`.
    next: u32,
    /// The chunk being sent, with its index: its pieces are written from the chunk as they go out,
    /// so a large chunk is never encoded whole.
    current: Option<(u32, PieceEncoder)>,
}

impl Outgoing {
    async fn next_piece(mut self) -> Option<(Result<ChunkPiece, Status>, Outgoing)> {
        let (index, mut encoder, first) = match self.current.take() {
            Some((index, encoder)) => (index, encoder, false),
            None => {
                let (task, held) = self.chunks.pop_front()?;
                let index = self.next;
                self.next += 1;
                match start(&self.store, held).await {
                    Ok(Ok(encoder)) => (index, encoder, true),
                    Ok(Err(e)) => {
                        self.chunks.clear();
                        let message = format!("task {task} of job {}: {e}", self.job);
                        return Some((Err(Status::internal(message)), self));
                    }
                    Err(e) => {
                        self.chunks.clear();
                        let message =
                            format!("reading the chunk of task {task} of job {}: {e}", self.job);
                        return Some((Err(Status::internal(message)), self));
                    }
                }
            }
        };
        // An empty encoding still goes out as one empty piece, so that the receiver sees the chunk.
        let total_len = if first { encoder.total_len() as u64 } else { 0 };
        let data = encoder.next_piece(PIECE_BYTES);
        if !encoder.is_done() {
            self.current = Some((index, encoder));
        }
        let piece = ChunkPiece {
            total_len,
            data,
            index,
        };
        Some((Ok(piece), self))
    }
}

/// A chunk ready to be sent a piece at a time; one on disk is read back first, on tokio's blocking
/// pool.
async fn start(
    store: &Store,
    held: Held,
) -> Result<Result<PieceEncoder, String>, tokio::task::JoinError> {
    if let Held::Memory(value) = held {
        return Ok(Ok(PieceEncoder::new(value)));
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.load(held).map(PieceEncoder::new)).await
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
            .pieces(5, b"key of job 5", &[0, 10, 20])
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

    #[tokio::test]
    async fn a_chunk_not_held_fails_the_whole_call() {
        let store = Store::default();
        store.put((5, 0), f64_chunk(&[3]));
        store.put_key(5, b"key of job 5");
        let service = WorkerService::new(store);
        for key in [&b"key of job 6"[..], b"", b"key of job 5 "] {
            let Err(status) = service.pieces(5, key, &[0]) else {
                panic!("a stream for a caller without the job's key");
            };
            assert_eq!(status.code(), tonic::Code::PermissionDenied);
        }
        let Err(status) = service.pieces(5, b"key of job 5", &[0, 7]) else {
            panic!("a stream for a chunk that is not held");
        };
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(
            status.message().contains("task 7 of job 5"),
            "{}",
            status.message()
        );
    }
}
