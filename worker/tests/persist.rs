//! Results kept on the workers (`client.persist`, `array.persist_on(&client)`), with the real binaries
//! on loopback: later jobs read the kept chunks where they are and give the local executor's bits
//! while the client receives no chunk data; dropping the last handle, `unpersist`, or disconnecting
//! brings the workers' held bytes back to where they were; a worker killed while holding kept chunks
//! has them recomputed from the persisting job's graph; an array persisted from a persisted one keeps
//! its lineage; and a second client cannot read them, neither
//! through the public API nor by submitting the first client's graph by hand with a guessed key.

mod common;

use std::time::Duration;

use common::{Cluster, assert_same_bits, local, poll, raw_scheduler};
use ndarray::s;
use tessera::{Array, Client, Error};
use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::v1 as pb;

/// The array every test persists: 1200 × 900 f64 in 12 chunks of 300 × 300, so both workers get
/// some (8,640,000 bytes in all).
fn source() -> Array {
    let x = tessera::default_rng(11)
        .random(&[1200, 900], [300, 300])
        .unwrap();
    (&x * 2.0) + 1.0
}

const SOURCE_BYTES: u64 = 1200 * 900 * 8;

/// (chunks, bytes) held per worker address by the scheduler's books, and jobs in flight.
fn held(client: &Client) -> (Vec<(String, u64, u64)>, u32) {
    let s = client.status().unwrap();
    (
        s.workers
            .iter()
            .map(|w| (w.address.clone(), w.chunks_held, w.bytes_held))
            .collect(),
        s.jobs,
    )
}

/// Waits until no worker holds anything and no job is in flight, as the scheduler's books and the
/// workers' own heartbeats say.
fn wait_until_released(client: &Client, what: &str) {
    poll(what, Duration::from_secs(20), |last| {
        let s = client.status().ok()?;
        *last = format!("{s:?}");
        (s.jobs == 0
            && s.workers
                .iter()
                .all(|w| w.bytes_held == 0 && w.chunks_held == 0 && w.reported_bytes == 0))
        .then_some(())
    });
}

#[test]
fn persisted_chunks_stay_on_the_workers_and_later_jobs_read_them_there() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let watcher = cluster.client();
    wait_until_released(&watcher, "an idle cluster");
    let y = source();

    let p = client.persist(&y).unwrap();
    assert!(Client::persisted_job(&p).is_some_and(|j| j != 0));
    assert_eq!(Client::persisted_job(&y), None);
    assert_eq!(p.shape(), y.shape());
    assert_eq!(p.chunks(), y.chunks());
    // The chunks are on the workers, pinned after the job completed: both hold some, and together
    // exactly the array's bytes; nothing came to the client.
    let (workers, jobs) = held(&watcher);
    assert_eq!(jobs, 1, "the persisting job stays open");
    assert!(
        workers.iter().all(|(_, chunks, _)| *chunks > 0),
        "{workers:?}"
    );
    assert_eq!(
        workers.iter().map(|(_, _, b)| b).sum::<u64>(),
        SOURCE_BYTES,
        "{workers:?}"
    );
    assert_eq!(client.bytes_fetched(), 0);
    // The workers' own heartbeats count the pinned chunks too (memory-aware scheduling sees them).
    poll(
        "heartbeats to report the pinned chunks",
        Duration::from_secs(10),
        |last| {
            let s = watcher.status().ok()?;
            *last = format!("{s:?}");
            (s.workers.iter().map(|w| w.reported_bytes).sum::<u64>() >= SOURCE_BYTES).then_some(())
        },
    );

    // Two different reductions of it, and a slice: the local executor's bits.
    let mean = p.mean().unwrap();
    let cols = p.sum_axis(0).unwrap();
    assert_same_bits(
        &local(&y.mean().unwrap()),
        &mean.compute_on(&client).unwrap(),
        "mean",
    );
    assert_same_bits(
        &local(&y.sum_axis(0).unwrap()),
        &cols.compute_on(&client).unwrap(),
        "sum over axis 0",
    );
    // Only the results came to the client: 8 bytes of mean and 900 f64 column sums.
    assert_eq!(client.bytes_fetched(), 8 + 900 * 8);
    let part = &p.slice(s![100..700, 250..]).unwrap() + 1.0;
    let want = &y.slice(s![100..700, 250..]).unwrap() + 1.0;
    assert_same_bits(&local(&want), &part.compute_on(&client).unwrap(), "a slice");
    // Several at once, in another job handle of the same client.
    let job = client.submit(&p.std().unwrap());
    assert_same_bits(
        &local(&y.std().unwrap()),
        &job.result_dyn().unwrap(),
        "std through a job handle",
    );
    // The reading jobs' copies are gone, the kept chunks are not.
    poll("the readers to finish", Duration::from_secs(10), |last| {
        let (workers, jobs) = held(&watcher);
        *last = format!("{workers:?} {jobs}");
        (jobs == 1 && workers.iter().map(|(_, _, b)| b).sum::<u64>() == SOURCE_BYTES).then_some(())
    });

    // Dropping the last handle (arrays built from it share it) releases them everywhere.
    drop((p, mean, cols, part));
    wait_until_released(&watcher, "the chunks to be released after the drop");
    cluster.assert_headline_job_is_exact();
}

#[test]
fn a_worker_killed_while_holding_persisted_chunks_has_them_recomputed() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    let y = source();
    let p = client.persist(&y).unwrap();
    let (workers, _) = held(&client);
    let victim = cluster
        .worker_addresses
        .iter()
        .position(|a| workers.iter().any(|(w, chunks, _)| w == a && *chunks > 0))
        .expect("a worker holds kept chunks");
    cluster.workers[victim].kill().unwrap();
    cluster.workers[victim].wait().unwrap();
    // Whether or not the scheduler has noticed yet, the next reductions are exact: the lost chunks
    // are recomputed from the persisting job's graph.
    assert_same_bits(
        &local(&y.mean().unwrap()),
        &p.mean().unwrap().compute_on(&client).unwrap(),
        "mean after the kill",
    );
    assert_same_bits(
        &local(&y.max_axis(1).unwrap()),
        &p.max_axis(1).unwrap().compute_on(&client).unwrap(),
        "max over axis 1 after the kill",
    );
    // The survivor now holds every kept chunk.
    let (workers, jobs) = held(&client);
    assert_eq!(jobs, 1);
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0].2, SOURCE_BYTES, "{workers:?}");
    // Explicit release.
    client.unpersist(&p).unwrap();
    wait_until_released(&client, "the chunks to be released after unpersist");
    let err = p.mean().unwrap().compute_on(&client).unwrap_err();
    assert!(
        matches!(&err, Error::Persisted { reason, .. } if reason.contains("released")),
        "{err}"
    );
}

#[test]
fn an_array_persisted_from_a_persisted_one_keeps_its_lineage() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let y = source();
    let p = client.persist(&y).unwrap();
    let q = client.persist(&(&p * 3.0)).unwrap();
    let jobs = |c: &Client| c.status().unwrap().jobs;
    assert_eq!(jobs(&client), 2);
    // Dropping p does not release what q would need to recompute a lost chunk.
    drop(p);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(jobs(&client), 2);
    let want = (&y * 3.0).sum_axis(1).unwrap();
    assert_same_bits(
        &local(&want),
        &q.sum_axis(1).unwrap().compute_on(&client).unwrap(),
        "q's row sums",
    );
    assert_eq!(client.bytes_fetched(), 1200 * 8);
    drop(q);
    wait_until_released(&client, "both kept jobs to be released");
}

#[test]
fn another_client_cannot_read_a_persisted_array() {
    let cluster = Cluster::start(2);
    let owner = cluster.client();
    let other = cluster.client();
    let y = source();
    let p = owner.persist(&y).unwrap();

    // Through the API: refused before anything is sent, naming the layer.
    let err = p.mean().unwrap().compute_on(&other).unwrap_err();
    match &err {
        Error::Persisted { layer, reason } => {
            assert_eq!(*layer, p.id().to_string());
            assert!(reason.contains("another client connection"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    assert!(other.unpersist(&p).is_err());

    // By hand: the owner's graph with the key replaced (an attacker knows the job id at best).
    let graph = tessera::wire::graph_to_proto(&p.mean().unwrap().graph()).unwrap();
    let forged = {
        let mut g = graph.clone();
        let mut found = false;
        for l in &mut g.layers {
            if let Some(pb::op::Op::Persisted(k)) = l.op.as_mut().and_then(|o| o.op.as_mut()) {
                k.job_key = vec![0; 16];
                found = true;
            }
        }
        assert!(found, "the graph reads a persisted layer");
        g
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        let mut sched = raw_scheduler(&cluster.address, Some(&cluster.secret_file)).await;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(pb::ClientMessage {
            msg: Some(pb::client_message::Msg::Submit(pb::Submit {
                protocol_version: PROTOCOL_VERSION,
                graph: Some(forged),
            })),
        })
        .await
        .unwrap();
        sched
            .run(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("is not kept for this client"),
        "{}",
        status.message()
    );
    // The owner is untouched.
    assert_same_bits(
        &local(&y.mean().unwrap()),
        &p.mean().unwrap().compute_on(&owner).unwrap(),
        "the owner's mean",
    );

    // The local executor cannot read the workers' memory: a clear error naming the task and the
    // kept job, not a silent fetch.
    let err = p.sum().unwrap().compute_dyn().unwrap_err();
    match &err {
        Error::TaskFailed { key, message } => {
            assert!(key.starts_with(&p.id().to_string()), "{key}");
            assert!(message.contains("client that persisted it"), "{message}");
        }
        e => panic!("{e:?}"),
    }

    // A client that disconnects releases what it persisted, even with handles still alive.
    drop(owner);
    wait_until_released(
        &other,
        "the chunks to be released after the owner disconnected",
    );
    let err = p.mean().unwrap().compute_on(&other).unwrap_err();
    assert!(matches!(err, Error::Persisted { .. }), "{err}");
    drop(p);
    cluster.assert_headline_job_is_exact();
}
