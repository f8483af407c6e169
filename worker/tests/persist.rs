//! Results kept on the workers (`client.persist`, `array.persist_on(&client)`), with the real binaries
//! on loopback: later jobs read the kept chunks where they are and give the local executor's bits
//! while the client receives no chunk data; dropping the last handle, `unpersist`, or disconnecting
//! brings the workers' held bytes back to where they were; a worker killed while holding kept chunks
//! has them recomputed from the persisting job's graph; an array persisted from a persisted one keeps
//! its lineage; and a second client cannot read them, neither
//! through the public API nor by submitting the first client's graph by hand with a guessed key. A
//! client keeps at most `--max-kept-jobs-per-client` arrays, refused past it naming the flag, and the
//! arrays it keeps do not count against `--max-jobs-per-client`, so it can still compute with them;
//! a job left open without declaring it is kept still counts as in flight.

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

#[test]
fn kept_jobs_have_their_own_limit_and_do_not_use_up_the_jobs_in_flight() {
    // Two jobs in flight, three kept: a client keeping three arrays still computes, two at once.
    let cluster = Cluster::start_with(
        2,
        &[
            "--max-jobs-per-client",
            "2",
            "--max-kept-jobs-per-client",
            "3",
        ],
    );
    let client = cluster.client();
    let y = source();
    let kept: Vec<Array> = (0..3)
        .map(|i| client.persist(&(&y + f64::from(i))).unwrap())
        .collect();

    // The fourth is refused before it runs, naming the limit and its flag.
    let err = client.persist(&(&y * 3.0)).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("keeps 3 persisted jobs")
            && message.contains("the limit is 3")
            && message.contains("--max-kept-jobs-per-client"),
        "{message}"
    );
    assert_eq!(held(&client).1, 3, "the refused persist left no job behind");

    // Ordinary jobs still run, reading the kept arrays, two submitted together (both within
    // --max-jobs-per-client): each sum agrees with ndarray's sum of the local executor's array (to
    // rounding: the local graph fuses the add into the sum), and the kept chunks are its bits.
    let expected = |i: usize| -> f64 { local(&(&y + i as f64)).into_typed::<f64>().unwrap().sum() };
    let sums: Vec<Array> = kept.iter().map(|p| p.sum().unwrap()).collect();
    let first = client.submit(&sums[0]);
    let second = client.submit(&sums[1]);
    let mut got = vec![
        *first.result::<f64>().unwrap().first().unwrap(),
        *second.result::<f64>().unwrap().first().unwrap(),
    ];
    got.push(client.compute_scalar::<f64>(&sums[2]).unwrap());
    for (i, got) in got.into_iter().enumerate() {
        let want = expected(i);
        assert!(
            (got - want).abs() <= 1e-12 * want.abs(),
            "sum of kept array {i}: {got} vs {want}"
        );
    }
    assert_same_bits(
        &local(&(&y + 2.0)),
        &client.compute_many(&[&kept[2]]).unwrap()[0],
        "a kept array",
    );

    // Releasing one frees its slot.
    client.unpersist(&kept[0]).unwrap();
    let again = poll(
        "a kept slot freed",
        Duration::from_secs(20),
        |last| match client.persist(&(&y * 3.0)) {
            Ok(p) => Some(p),
            Err(e) => {
                *last = e.to_string();
                None
            }
        },
    );
    assert_same_bits(
        &local(&(&y * 3.0)),
        &client.compute_many(&[&again]).unwrap()[0],
        "the array persisted in the freed slot",
    );
}

/// A Run stream opened by hand on `sched` (with the keep declaration when `keep`), read until its
/// job completes and left open; or the refusal.
async fn run_until_completed(
    sched: &mut pb::scheduler_client::SchedulerClient<tessera_proto::dial::AuthChannel>,
    graph: &pb::Graph,
    keep: bool,
) -> Result<tokio::sync::mpsc::Sender<pb::ClientMessage>, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::ClientMessage {
        msg: Some(pb::client_message::Msg::Submit(pb::Submit {
            protocol_version: PROTOCOL_VERSION,
            graph: Some(graph.clone()),
        })),
    })
    .await
    .unwrap();
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if keep {
        request.metadata_mut().insert(
            tessera_proto::KEEP_METADATA,
            tonic::metadata::MetadataValue::from_static("1"),
        );
    }
    let mut events = sched.run(request).await?.into_inner();
    loop {
        match events.message().await?.and_then(|e| e.event) {
            Some(pb::client_event::Event::Completed(_)) => return Ok(tx),
            Some(pb::client_event::Event::Failed(f)) => panic!("the job failed: {f:?}"),
            Some(_) => {}
            None => panic!("the stream ended before the job completed"),
        }
    }
}

#[test]
fn an_undeclared_open_job_stays_in_flight_and_a_declared_one_is_kept() {
    // By hand on one connection, one job in flight and one kept at most. A job left open after it
    // completed without the keep declaration still counts as in flight (what one client can pin
    // stays bounded whatever it declares); a declared one counts only as kept once complete.
    let cluster = Cluster::start_with(
        1,
        &[
            "--max-jobs-per-client",
            "1",
            "--max-kept-jobs-per-client",
            "1",
        ],
    );
    let graph = tessera::wire::graph_to_proto(&source().sum().unwrap().graph()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut sched = raw_scheduler(&cluster.address, Some(&cluster.secret_file)).await;
        let open = run_until_completed(&mut sched, &graph, false)
            .await
            .unwrap();
        let refused = run_until_completed(&mut sched, &graph, false)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused
                .message()
                .contains("1 jobs in flight; the limit is 1 (--max-jobs-per-client)"),
            "{}",
            refused.message()
        );
        drop(open);
        // Once the scheduler saw the stream close, the slot is free: a kept job takes it while it
        // runs, then gives it back.
        let mut kept = None;
        for _ in 0..200 {
            match run_until_completed(&mut sched, &graph, true).await {
                Ok(tx) => {
                    kept = Some(tx);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let kept = kept.expect("the in-flight slot was never freed");
        let ordinary = run_until_completed(&mut sched, &graph, false)
            .await
            .expect("a kept job does not count as in flight once complete");
        drop(ordinary);
        // A second kept job is over the kept limit, whatever is in flight.
        let mut refusal = None;
        for _ in 0..200 {
            match run_until_completed(&mut sched, &graph, true).await {
                Err(s) if s.message().contains("--max-jobs-per-client") => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(s) => {
                    refusal = Some(s);
                    break;
                }
                Ok(_) => panic!("a second kept job was accepted over the limit of 1"),
            }
        }
        let refusal = refusal.expect("the ordinary job's slot was never freed");
        assert_eq!(refusal.code(), tonic::Code::ResourceExhausted);
        assert!(
            refusal.message().contains(
                "already keeps 1 persisted jobs open; the limit is 1 (--max-kept-jobs-per-client)"
            ),
            "{}",
            refusal.message()
        );
        drop(kept);
    });
}
