//! Smoke test of the generated gRPC code: a `Worker` server on a loopback port streams a chunk, and a
//! batch of chunks, in pieces and the generated client reassembles them. Checks that the codegen, the
//! tonic transport features pinned in the workspace and the prost runtime fit together.

use std::pin::Pin;

use tessera_proto::v1::worker_client::WorkerClient;
use tessera_proto::v1::worker_server::{Worker, WorkerServer};
use tessera_proto::v1::{ChunkPiece, ChunkRef, ChunkRefs};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// Serves a chunk as the bytes `0..n` cut into pieces of `piece` bytes: `n` is `len` in `FetchChunk`,
/// and the task number in `FetchChunks`.
struct Pieces {
    len: usize,
    piece: usize,
}

type PieceStream = Pin<Box<dyn Stream<Item = Result<ChunkPiece, Status>> + Send>>;

impl Pieces {
    fn pieces(&self, index: u32, len: usize) -> impl Iterator<Item = Result<ChunkPiece, Status>> {
        let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut pieces: Vec<ChunkPiece> = bytes
            .chunks(self.piece)
            .map(|c| ChunkPiece {
                total_len: 0,
                data: c.to_vec(),
                index,
            })
            .collect();
        if pieces.is_empty() {
            pieces.push(ChunkPiece {
                total_len: 0,
                data: Vec::new(),
                index,
            });
        }
        pieces[0].total_len = len as u64;
        pieces.into_iter().map(Ok)
    }
}

#[tonic::async_trait]
impl Worker for Pieces {
    type FetchChunkStream = PieceStream;
    type FetchChunksStream = PieceStream;

    async fn fetch_chunk(
        &self,
        request: Request<ChunkRef>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        if r.task == u32::MAX {
            return Err(Status::not_found(format!("job {} task {}", r.job, r.task)));
        }
        let pieces: Vec<_> = self.pieces(0, self.len).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(pieces))))
    }

    async fn fetch_chunks(
        &self,
        request: Request<ChunkRefs>,
    ) -> Result<Response<PieceStream>, Status> {
        let r = request.into_inner();
        let pieces: Vec<_> = (0..)
            .zip(&r.tasks)
            .flat_map(|(index, &task)| self.pieces(index, task as usize))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(pieces))))
    }
}

#[tokio::test]
async fn worker_streams_a_chunk_over_loopback() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // One service per process, so no router: `serve_with_incoming` takes the service itself.
    let server = tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
        WorkerServer::new(Pieces {
            len: 100_000,
            piece: 30_000,
        }),
        tokio_stream::wrappers::TcpListenerStream::new(listener),
    ));

    let mut client = WorkerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut stream = client
        .fetch_chunk(ChunkRef {
            job: 7,
            task: 3,
            ..ChunkRef::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    let mut total = None;
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        total.get_or_insert(piece.total_len);
        got.extend_from_slice(&piece.data);
    }
    assert_eq!(total, Some(100_000));
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().enumerate().all(|(i, &b)| b == i as u8));

    let err = client
        .fetch_chunk(ChunkRef {
            job: 7,
            task: u32::MAX,
            ..ChunkRef::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // A batch: pieces carry the index of their chunk, and an empty chunk is one empty piece.
    let mut stream = client
        .fetch_chunks(ChunkRefs {
            job: 7,
            tasks: vec![70_000, 0, 3],
            ..ChunkRefs::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        if piece.index as usize == chunks.len() {
            chunks.push((piece.total_len, Vec::new()));
        }
        chunks[piece.index as usize]
            .1
            .extend_from_slice(&piece.data);
    }
    let lens: Vec<(u64, usize)> = chunks.iter().map(|(t, c)| (*t, c.len())).collect();
    assert_eq!(lens, [(70_000, 70_000), (0, 0), (3, 3)]);
    server.abort();
}
