//! Smoke test of the generated gRPC code: a `Worker` server on a loopback port streams a chunk in
//! pieces and the generated client reassembles it. Checks that the codegen, the tonic transport
//! features pinned in the workspace and the prost runtime fit together.

use std::pin::Pin;

use tessera_proto::v1::worker_client::WorkerClient;
use tessera_proto::v1::worker_server::{Worker, WorkerServer};
use tessera_proto::v1::{ChunkPiece, ChunkRef};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// Serves every chunk as the bytes `0..len` cut into pieces of `piece` bytes.
struct Pieces {
    len: usize,
    piece: usize,
}

#[tonic::async_trait]
impl Worker for Pieces {
    type FetchChunkStream = Pin<Box<dyn Stream<Item = Result<ChunkPiece, Status>> + Send>>;

    async fn fetch_chunk(
        &self,
        request: Request<ChunkRef>,
    ) -> Result<Response<Self::FetchChunkStream>, Status> {
        let r = request.into_inner();
        if r.task == u32::MAX {
            return Err(Status::not_found(format!("job {} task {}", r.job, r.task)));
        }
        let bytes: Vec<u8> = (0..self.len).map(|i| i as u8).collect();
        let total = self.len as u64;
        let pieces: Vec<Result<ChunkPiece, Status>> = bytes
            .chunks(self.piece)
            .enumerate()
            .map(|(i, c)| {
                Ok(ChunkPiece {
                    total_len: if i == 0 { total } else { 0 },
                    data: c.to_vec(),
                })
            })
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
        .fetch_chunk(ChunkRef { job: 7, task: 3 })
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
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    server.abort();
}
