//! Chunk fetches end to end in one process, without a scheduler: a worker's gRPC service on a
//! loopback port serving chunks from its store, the client that workers and `tessera::Client` fetch
//! with (`tessera::client::WorkerChannels`), and a task runner gathering its inputs from two peers.
//! The service checks credentials and job keys as a worker's does.

use std::sync::Arc;
use std::time::Duration;

use ndarray::{ArrayD, Dimension, IxDyn};
use tessera::client::WorkerChannels;
use tessera::data::Moments;
use tessera::{ArrayData, ChunkValue};
use tessera_proto::auth::{ClientAuth, Secret, ServerAuth};
use tessera_proto::dial::Dialer;
use tessera_proto::v1::worker_client::WorkerClient;
use tessera_proto::v1::worker_server::WorkerServer;
use tessera_proto::v1::{ChunkRefs, DepLocation, TaskAssignment};
use tessera_worker::runner::{Outcome, Runner};
use tessera_worker::service::{PIECE_BYTES, WorkerService};
use tessera_worker::store::Store;

const JOB: u64 = 3;
const KEY: &[u8] = b"the key of job 3";

fn secret() -> Arc<Secret> {
    Arc::new(Secret::from_bytes(&[7; 32]).unwrap())
}

/// Fetches as a worker of the cluster with `secret` would.
fn peers_with(secret: Option<Arc<Secret>>) -> WorkerChannels {
    WorkerChannels::new(
        Dialer::new(ClientAuth::new(secret), Duration::from_secs(5)),
        Duration::from_secs(10),
    )
}

fn peers() -> WorkerChannels {
    peers_with(Some(secret()))
}

/// Serves `store` on a loopback port, checking credentials; returns the address and the server task.
async fn serve(store: Store) -> (String, tokio::task::JoinHandle<()>) {
    store.put_key(JOB, KEY);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let service = tonic::service::interceptor::InterceptedService::new(
        WorkerServer::new(WorkerService::new(store)),
        ServerAuth::new(Some(secret()), "worker"),
    );
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tessera_proto::serve::incoming(listener))
            .await
            .unwrap();
    });
    (address, server)
}

fn array(shape: &[usize]) -> ChunkValue {
    let a = ArrayD::from_shape_fn(IxDyn(shape), |i| {
        i.slice().iter().fold(0.5, |acc, &k| acc * 3.0 + k as f64)
    });
    ChunkValue::Array(ArrayData::F64(a))
}

/// Task 10: 8 MB, eight pieces; 11: an empty array (no data field at all); 12: a reduction's partial
/// of a few bytes; 13: just over one piece.
fn store() -> (Store, Vec<(u32, ChunkValue)>) {
    let partial = ChunkValue::Moments(Moments {
        count: ArrayD::from_elem(IxDyn(&[]), 4.0),
        mean: ArrayD::from_elem(IxDyn(&[]), 0.25),
        m2: Some(ArrayD::from_elem(IxDyn(&[]), 1.5)),
    });
    let chunks = vec![
        (10, array(&[1000, 1000])),
        (11, array(&[0, 7])),
        (12, partial),
        (13, array(&[PIECE_BYTES / 8 + 1])),
    ];
    let store = Store::default();
    for (task, value) in &chunks {
        store.put((JOB, *task), Arc::new(value.clone()));
    }
    (store, chunks)
}

#[tokio::test]
async fn a_batch_of_big_and_tiny_chunks_arrives_whole_and_in_request_order() {
    let (store, chunks) = store();
    let (address, server) = serve(store).await;
    let peers = peers();
    let value = |task: u32| chunks.iter().find(|(t, _)| *t == task).unwrap().1.clone();

    let order = [13, 11, 10, 12, 11];
    let got = peers.fetch_many(&address, JOB, KEY, &order).await.unwrap();
    assert!(got == order.map(value), "chunks differ or are out of order");

    assert_eq!(
        peers.fetch_many(&address, JOB, KEY, &[]).await,
        Ok(Vec::new())
    );
    assert!(peers.fetch(&address, JOB, KEY, 10).await == Ok(value(10)));
    server.abort();
}

#[tokio::test]
async fn strangers_and_callers_without_the_job_key_read_nothing() {
    let (store, _) = store();
    let (address, server) = serve(store).await;
    for (who, peers) in [
        ("no credential", peers_with(None)),
        (
            "another secret",
            peers_with(Some(Arc::new(Secret::from_bytes(&[8; 32]).unwrap()))),
        ),
    ] {
        let err = peers.fetch(&address, JOB, KEY, 10).await.unwrap_err();
        assert!(
            err.contains("refused the request") && err.contains(&address),
            "{who}: {err}"
        );
    }
    // The cluster's secret but the wrong key (walking job ids gets nowhere without it).
    for key in [&b""[..], b"the key of job 4"] {
        let err = peers().fetch(&address, JOB, key, 10).await.unwrap_err();
        assert!(err.contains("no access to job 3"), "{err}");
    }
    assert!(peers().fetch(&address, JOB, KEY, 10).await.is_ok());
    server.abort();
}

#[tokio::test]
async fn a_chunk_not_held_fails_its_batch_naming_it() {
    let (store, _) = store();
    let (address, server) = serve(store).await;
    let peers = peers();

    let err = peers
        .fetch_many(&address, JOB, KEY, &[10, 99, 12])
        .await
        .unwrap_err();
    assert!(
        err.contains(&address) && err.contains("task 99 of job 3 is not held"),
        "{err}"
    );
    let channel = Dialer::new(ClientAuth::new(Some(secret())), Duration::from_secs(5))
        .connect(&address)
        .await
        .unwrap();
    let mut client = WorkerClient::new(channel);
    let status = client
        .fetch_chunks(ChunkRefs {
            job: JOB,
            tasks: vec![12, 99],
            job_key: KEY.to_vec(),
            regions: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    // The failed call dropped the cached channel; the next call connects again.
    assert_eq!(
        peers
            .fetch_many(&address, JOB, KEY, &[12])
            .await
            .unwrap()
            .len(),
        1
    );
    server.abort();
}

fn dep(task: u32, addresses: &[&str]) -> DepLocation {
    DepLocation {
        task,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    }
}

/// Runs a task with `deps` on a runner of its own and returns its outcome. The job's graph is never
/// sent, so a task fails as soon as its inputs are in: all these tests look at is the gathering.
async fn gather(deps: Vec<DepLocation>) -> Outcome {
    let (results, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let store = Store::default();
    store.put_key(JOB, KEY);
    let runner = Runner::new(
        store,
        peers(),
        Arc::new(pool),
        results,
        "http://127.0.0.1:1".to_string(),
    );
    runner.start(TaskAssignment {
        job: JOB,
        task: 50,
        deps,
        ..TaskAssignment::default()
    });
    outcomes.recv().await.unwrap()
}

#[tokio::test]
async fn a_failed_batch_falls_back_to_each_chunk_alone() {
    let (store_a, _) = store();
    let store_b = Store::default();
    store_b.put((JOB, 20), Arc::new(array(&[2])));
    let (a, server_a) = serve(store_a).await;
    let (b, server_b) = serve(store_b).await;

    // A is listed first for chunk 20 but does not hold it, so the batch [12, 13, 20] to A fails;
    // chunk 20 then comes from B and chunks 12 and 13 from A again.
    let outcome = gather(vec![dep(12, &[&a]), dep(20, &[&a, &b]), dep(13, &[&a])]).await;
    let Outcome::Failed {
        message,
        missing_input: None,
        ..
    } = outcome
    else {
        panic!("inputs not gathered: {outcome:?}");
    };
    assert!(message.contains("graph of job 3"), "{message}");

    // Chunk 99 is nowhere: the task names it as its missing input.
    let outcome = gather(vec![dep(12, &[&a]), dep(99, &[&a, &b])]).await;
    let Outcome::Failed {
        message,
        missing_input: Some((JOB, 99)),
        ..
    } = outcome
    else {
        panic!("no missing input reported: {outcome:?}");
    };
    assert!(
        message.contains("task 99 of job 3 is not held"),
        "{message}"
    );
    server_a.abort();
    server_b.abort();
}
