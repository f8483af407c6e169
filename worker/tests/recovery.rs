//! A cluster that comes back, with the real binaries on loopback: a worker paused past its heartbeat
//! timeout (SIGSTOP, then SIGCONT) rejoins and gets work; a scheduler killed mid-job and started again
//! on the same port gives the client a clear error, every worker registers again, and the next job is
//! exact; and the whole cluster over mutual TLS computes the local executor's bits while a client
//! without the cluster's certificate is refused.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cluster, assert_same_bits, free_port, local, poll};
use tessera::Client;

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: sends a signal to a child process this test started (and has not reaped).
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

fn workers_up(client: &Client, n: usize, what: &str) {
    poll(what, Duration::from_secs(30), |last| {
        let s = client.status().ok()?;
        *last = format!("{s:?}");
        (s.workers.len() == n).then_some(())
    });
}

#[test]
fn a_worker_paused_past_its_heartbeat_timeout_rejoins_and_gets_work() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let paused = cluster.workers[0].id();
    signal(paused, libc::SIGSTOP);
    // The harness's heartbeat timeout is 2 s: the scheduler declares it lost.
    workers_up(&client, 1, "the paused worker to be declared lost");
    signal(paused, libc::SIGCONT);
    workers_up(&client, 2, "the paused worker to register again");
    // It gets work: a job wide enough for both workers runs on both.
    let x = tessera::default_rng(3)
        .random(&[4000, 4000], [250, 250])
        .unwrap();
    let y = (&x * 2.0).sum_axis(0).unwrap();
    let remote = y.compute_on(&client).unwrap();
    assert_same_bits(&local(&y), &remote, "after the pause");
    cluster.assert_headline_job_is_exact();
}

#[test]
fn a_scheduler_killed_mid_job_and_restarted_gets_its_workers_back() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    // A job of several seconds, running when the scheduler dies.
    let long = tessera::default_rng(9)
        .random(&[40000, 40000], [400, 400])
        .unwrap()
        .sqrt()
        .unwrap()
        .sum()
        .unwrap();
    let (address, secret) = (cluster.address.clone(), cluster.secret_file.clone());
    let job = std::thread::spawn(move || long.compute_on(&common::connect(&address, &secret)));
    poll("the job to start", Duration::from_secs(10), |_| {
        (client.status().ok()?.jobs == 1).then_some(())
    });
    cluster.kill_scheduler();
    let err = job.join().unwrap().unwrap_err().to_string();
    assert!(err.contains(&cluster.address), "{err}");

    cluster.restart_scheduler();
    let client = cluster.client();
    workers_up(
        &client,
        2,
        "both workers to register with the new scheduler",
    );
    cluster.assert_headline_job_is_exact();
}

#[test]
fn a_cluster_over_mutual_tls_is_exact_and_refuses_clients_without_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tessera_proto::certs::generate(&dir.path().join("certs"), &[], false).unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (ca, cert, key) = (s(&certs.ca_cert), s(&certs.node_cert), s(&certs.node_key));
    let secret = dir.path().join("cluster.secret");
    let port = free_port();
    let address = format!("https://127.0.0.1:{port}");
    let tls = |c: &mut Command| {
        c.args(["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca])
            .env("TESSERA_SECRET_FILE", &secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
    };
    let mut scheduler = Command::new(common::scheduler_binary());
    scheduler.args(["--listen", &format!("127.0.0.1:{port}")]);
    tls(&mut scheduler);
    let mut children = vec![scheduler.spawn().unwrap()];
    for _ in 0..2 {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut worker = Command::new(common::worker_binary());
        worker.args([
            "--scheduler",
            &address,
            "--threads",
            "1",
            "--listen",
            &listen,
        ]);
        tls(&mut worker);
        children.push(worker.spawn().unwrap());
    }
    let outcome = std::panic::catch_unwind(|| {
        let client = poll("the TLS scheduler", Duration::from_secs(30), |last| {
            Client::builder(&address)
                .secret_file(&secret)
                .tls_ca(&certs.ca_cert)
                .tls_identity(&certs.node_cert, &certs.node_key)
                .connect()
                .map_err(|e| *last = e.to_string())
                .ok()
        });
        workers_up(&client, 2, "both TLS workers");
        assert!(
            client
                .status()
                .unwrap()
                .workers
                .iter()
                .all(|w| w.address.starts_with("https://")),
            "workers advertise https"
        );
        for (name, a) in [
            (
                "headline",
                tessera::default_rng(42)
                    .random(&[2000, 2000], [500, 500])
                    .unwrap()
                    .mean()
                    .unwrap(),
            ),
            (
                "across workers",
                tessera::default_rng(5)
                    .random(&[1200, 900], [300, 300])
                    .unwrap()
                    .sum_axis(1)
                    .unwrap(),
            ),
        ] {
            assert_same_bits(&local(&a), &a.compute_on(&client).unwrap(), name);
        }
        // The CA but no client certificate: the handshake is refused.
        let err = Client::builder(&address)
            .secret_file(&secret)
            .tls_ca(&certs.ca_cert)
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .unwrap_err()
            .to_string();
        assert!(err.contains("127.0.0.1"), "{err}");
        // Plain http to a TLS scheduler fails cleanly too.
        let err = Client::builder(&format!("http://127.0.0.1:{port}"))
            .secret_file(&secret)
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .unwrap_err()
            .to_string();
        assert!(err.contains("127.0.0.1"), "{err}");
    });
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
