//! The worker's gRPC service: peers and clients fetch chunks from it. Chunks are encoded once and
//! streamed in pieces of [`PIECE_BYTES`], so chunks of any size cross the wire.

use std::pin::Pin;

use tessera_proto::v1::worker_server::Worker;
use tessera_proto::v1::{ChunkPiece, ChunkRef};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::store::Store;

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
}

type PieceStream = Pin<Box<dyn Stream<Item = Result<ChunkPiece, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for WorkerService {
    type FetchChunkStream = PieceStream;

    async fn fetch_chunk(
        &self,
        request: Request<ChunkRef>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        let value = self.store.get((r.job, r.task)).ok_or_else(|| {
            Status::not_found(format!(
                "chunk of task {} of job {} is not held here",
                r.task, r.job
            ))
        })?;
        // Encoding a large chunk is CPU work: keep it off the async threads.
        let bytes = tokio::task::spawn_blocking(move || tessera::wire::encode_chunk(&value))
            .await
            .map_err(|e| Status::internal(format!("encoding failed: {e}")))?;
        let total = bytes.len() as u64;
        let pieces: Vec<Result<ChunkPiece, Status>> = if bytes.is_empty() {
            vec![Ok(ChunkPiece {
                total_len: 0,
                data: Vec::new(),
            })]
        } else {
            bytes
                .chunks(PIECE_BYTES)
                .enumerate()
                .map(|(i, c)| {
                    Ok(ChunkPiece {
                        total_len: if i == 0 { total } else { 0 },
                        data: c.to_vec(),
                    })
                })
                .collect()
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(pieces))))
    }
}
