//! The cluster tried as an attacker or a careless client would, with the real binaries on loopback:
//! requests without the cluster's secret or with another one, a session claiming another worker's id,
//! graphs and messages built to exhaust the scheduler, a chunk larger than any worker may hold, a
//! scheduler address that accepts connections and says nothing, and a job whose only task would run
//! for a minute being cancelled. After each, the scheduler and the workers are still up and the
//! headline job still gives the local executor's bits.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Cluster, free_port, raw_scheduler, rss_bytes};
use tessera::Client;
use tessera_proto::PROTOCOL_VERSION;
use tessera_proto::v1 as pb;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Submits `graph` with the cluster's credentials and returns the rejection (or the error status).
async fn submit_raw(cluster: &Cluster, graph: pb::Graph) -> Result<String, tonic::Status> {
    let mut sched = raw_scheduler(&cluster.address, Some(&cluster.secret_file)).await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::ClientMessage {
        msg: Some(pb::client_message::Msg::Submit(pb::Submit {
            protocol_version: PROTOCOL_VERSION,
            graph: Some(graph),
        })),
    })
    .await
    .unwrap();
    let mut events = sched
        .run(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(e) = events.message().await? {
        if let Some(pb::client_event::Event::Failed(f)) = e.event {
            return Ok(f.message);
        }
    }
    panic!("the graph was not rejected");
}

#[test]
fn requests_without_the_secret_are_refused_and_change_nothing() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let before = client.status().unwrap();
    assert_eq!(before.workers.len(), 2);

    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = stranger_dir.path().join("other.secret");
    tessera_proto::auth::Secret::load_or_create(&stranger).unwrap();
    let rt = runtime();
    for secret in [None, Some(stranger.as_path())] {
        rt.block_on(async {
            let mut sched = raw_scheduler(&cluster.address, secret).await;
            let status = sched.status(pb::StatusRequest {}).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
            assert!(
                status.message().contains("credential"),
                "{}",
                status.message()
            );
            let register = sched
                .register_worker(pb::RegisterWorkerRequest {
                    protocol_version: PROTOCOL_VERSION,
                    address: "http://127.0.0.1:9".into(),
                    threads: 1,
                    memory_limit: 1 << 30,
                })
                .await
                .unwrap_err();
            assert_eq!(register.code(), tonic::Code::Unauthenticated);
            let (_tx, rx) = tokio::sync::mpsc::channel::<pb::ClientMessage>(1);
            let run = sched
                .run(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .unwrap_err();
            assert_eq!(run.code(), tonic::Code::Unauthenticated);
        });
    }
    // The same through the public client: a clear error, naming the reason.
    let err = Client::builder(&cluster.address)
        .secret_file(&stranger)
        .connect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrong credential"), "{err}");
    let err = Client::builder(&cluster.address)
        .insecure()
        .connect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("no credential"), "{err}");
    // A worker with the wrong secret is refused at once, with one line, and exits.
    let out = std::process::Command::new(common::worker_binary())
        .args(["--scheduler", &cluster.address, "--threads", "1"])
        .env("TESSERA_SECRET_FILE", &stranger)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused this worker") && stderr.contains("wrong credential"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "colour codes in a pipe: {stderr}");

    let after = client.status().unwrap();
    assert_eq!(after.workers.len(), 2, "a stranger changed the workers");
    assert_eq!(after.jobs, 0);
    cluster.assert_headline_job_is_exact();
}

#[test]
fn a_session_claiming_another_workers_id_is_refused_and_the_worker_keeps_working() {
    let cluster = Cluster::start(2);
    let rt = runtime();
    rt.block_on(async {
        let mut sched = raw_scheduler(&cluster.address, Some(&cluster.secret_file)).await;
        // An impostor with the secret registers, then presents its own token for worker 1's id.
        let mine = sched
            .register_worker(pb::RegisterWorkerRequest {
                protocol_version: PROTOCOL_VERSION,
                address: "http://127.0.0.1:9".into(),
                threads: 1,
                memory_limit: 1 << 30,
            })
            .await
            .unwrap()
            .into_inner();
        for (id, token) in [
            (1, mine.session_token.clone()),
            (1, Vec::new()),
            (mine.worker_id, vec![0; 16]),
        ] {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tx.send(pb::WorkerMessage {
                msg: Some(pb::worker_message::Msg::Hello(pb::WorkerHello {
                    worker_id: id,
                    session_token: token,
                })),
            })
            .await
            .unwrap();
            let status = sched
                .worker_session(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
            assert!(status.message().contains("session token"), "{status:?}");
        }
    });
    let status = cluster.client().status().unwrap();
    assert!(
        status
            .workers
            .iter()
            .any(|w| w.address == cluster.worker_addresses[0]),
        "the real worker was cut off: {status:?}"
    );
    cluster.assert_headline_job_is_exact();
}

#[test]
fn graphs_and_messages_built_to_exhaust_the_scheduler_are_refused_at_once() {
    let cluster = Cluster::start(1);
    let client = cluster.client();
    let pid = cluster.scheduler.id();
    let rss_before = rss_bytes(pid);

    // A 32-axis array with 2 chunks per axis: 4.3e9 chunks from a graph of a few hundred bytes.
    let huge = tessera::zeros::<f64>(&[2; 32], [1; 32])
        .unwrap()
        .sum()
        .unwrap();
    let started = Instant::now();
    let err = huge.compute_on(&client).unwrap_err().to_string();
    assert!(
        err.contains("the limit is") && err.contains("--max-tasks"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");

    // A message over the size limit is refused from its length prefix.
    let big = pb::Graph {
        layers: vec![pb::Layer {
            op: Some(pb::Op {
                op: Some(pb::op::Op::FromArray(pb::FromArray {
                    data: Some(pb::ArrayData {
                        dtype: pb::DType::DtypeF64 as i32,
                        shape: vec![100 << 17],
                        data: vec![0u8; 100 << 20],
                    }),
                    content_token: 1,
                })),
            }),
            ..Default::default()
        }],
        outputs: Vec::new(),
    };
    let status = runtime().block_on(submit_raw(&cluster, big)).unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("the limit is"), "{status:?}");

    // A chunk bigger than any worker's --memory-limit (1 GiB here): refused at submit, naming the
    // layer's chunks, the limit and a way out.
    let fat = tessera::zeros::<f64>(&[20000, 10000], [20000, 10000]).unwrap() + 1.0;
    let err = fat.compute_on(&client).unwrap_err().to_string();
    assert!(
        err.contains("--memory-limit") && err.contains("rechunk to at most"),
        "{err}"
    );

    let grown = rss_bytes(pid).saturating_sub(rss_before);
    assert!(
        grown < 64 << 20,
        "the scheduler grew by {grown} bytes refusing those"
    );
    cluster.assert_headline_job_is_exact();
}

#[test]
fn a_client_facing_a_silent_listener_fails_within_its_timeout_naming_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let started = Instant::now();
    let err = Client::builder(&address)
        .insecure()
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    assert!(
        err.contains(&address) || err.contains(&address["http://".len()..]),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    drop(listener);
    // Nobody listening at all is just as clear.
    let port = free_port();
    let err = Client::builder(&format!("http://127.0.0.1:{port}"))
        .insecure()
        .connect()
        .unwrap_err()
        .to_string();
    assert!(err.contains(&port.to_string()), "{err}");
}

#[test]
fn cancelling_a_job_whose_only_task_runs_for_a_minute_frees_the_worker_at_once() {
    let cluster = Cluster::start(1);
    let client = cluster.client();
    // One chunk of 1e11 uniform draws: about a minute of one thread.
    let long = tessera::default_rng(0)
        .random(&[1_000_000, 100_000], [1_000_000, 100_000])
        .unwrap()
        .mean()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let leaving = tessera::AsyncClient::builder(&cluster.address)
            .secret_file(&cluster.secret_file)
            .connect_async()
            .await
            .unwrap();
        let outputs = [&long];
        // Once the worker is running the task, the client gives up: dropping the computation
        // cancels the job.
        let running = async {
            loop {
                let s = leaving.status().await.unwrap();
                if s.workers.iter().any(|w| w.running > 0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        tokio::select! {
            r = leaving.compute_many(&outputs) => panic!("the minute-long job finished: {r:?}"),
            _ = running => {}
        }
    });
    let cancelled = Instant::now();
    // The worker's one thread must be free for the next job well before the minute is up.
    cluster.assert_headline_job_is_exact();
    let freed = cancelled.elapsed();
    assert!(
        freed < Duration::from_secs(10),
        "the next job waited {freed:?}"
    );
    let status = client.status().unwrap();
    assert_eq!(status.jobs, 0, "{status:?}");
    assert!(status.workers.iter().all(|w| w.running == 0), "{status:?}");
}

#[test]
fn a_worker_given_a_chunk_larger_than_its_memory_limit_fails_the_task_and_stays_up() {
    // The job is submitted while no worker is there to size it against; a small worker joins.
    let mut cluster = Cluster::start(0);
    let client = cluster.client();
    let (address, secret) = (cluster.address.clone(), cluster.secret_file.clone());
    let job = std::thread::spawn(move || {
        let big = tessera::zeros::<f64>(&[4000, 4000], [4000, 4000]).unwrap() + 1.0;
        big.compute_on(&common::connect(&address, &secret))
    });
    common::poll("the job to be submitted", Duration::from_secs(10), |_| {
        (client.status().ok()?.jobs == 1).then_some(())
    });
    cluster.add_worker_with(&["--memory-limit", "64MiB"]);
    let err = job.join().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("128000000") && err.contains("--memory-limit"),
        "{err}"
    );
    cluster.wait_for_workers(1);
    cluster.assert_headline_job_is_exact();
}
