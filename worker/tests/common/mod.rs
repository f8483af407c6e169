//! The cluster harness shared by the integration tests: the real `tessera-scheduler` and
//! `tessera-worker` binaries on loopback ports, killed when the [`Cluster`] is dropped, and bit-for-bit
//! comparison with the local executor.
//!
//! `cargo test --workspace` builds both binaries before any test runs (each package's integration
//! tests need its own binary); the scheduler's is found next to the worker's.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tessera::{Array, Client, LocalExecutor};

pub fn worker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera-worker"))
}

pub fn scheduler_binary() -> PathBuf {
    let path = worker_binary()
        .with_file_name(format!("tessera-scheduler{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p tessera-scheduler` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// A loopback port that is free now and that nothing else in this machine's normal traffic will take
/// before the process the test starts binds it.
///
/// Asking the kernel for port 0 and closing the socket is not enough: the port goes back into the
/// ephemeral range, and an outgoing connection (a client, a worker dialling the scheduler) can be given
/// it before the test's process binds it ("Address already in use"). So the port comes from below the
/// ephemeral range, which outgoing connections never use, in a sequence of this process's own (offset
/// by its pid, so test binaries run side by side start far apart), skipping any port already bound.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Linux's default ephemeral range starts at 32768; read the machine's own where it says.
    let ephemeral_start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_start.max(12_000));
    let span = high - low;
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let port = (low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// Calls `probe` every 20 ms until it returns `Some`, for at most `patience`; panics naming `what`
/// (and the last thing `probe` saw, through `last`) when time runs out.
pub fn poll<T>(
    what: &str,
    patience: Duration,
    mut probe: impl FnMut(&mut String) -> Option<T>,
) -> T {
    let deadline = Instant::now() + patience;
    let mut last = String::new();
    loop {
        if let Some(v) = probe(&mut last) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {patience:?} (last seen: {last})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child process to exit, for at most `patience`.
/// Runs `command` to completion and returns its output, failing the test with its stderr when it
/// exits unsuccessfully.
pub fn output_ok(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn wait_exit(child: &mut Child, what: &str, patience: Duration) -> ExitStatus {
    poll(what, patience, |_| child.try_wait().unwrap())
}

/// A client of the cluster whose secret is in `secret_file`, retrying while the scheduler starts.
pub fn connect(address: &str, secret_file: &Path) -> Client {
    poll(
        "the scheduler to come up",
        Duration::from_secs(30),
        |last| {
            Client::builder(address)
                .secret_file(secret_file)
                .connect()
                .map_err(|e| *last = e.to_string())
                .ok()
        },
    )
}

/// A raw gRPC client of the scheduler, sending the cluster's credentials (or none, with `None`), for
/// tests that speak the protocol by hand.
pub async fn raw_scheduler(
    address: &str,
    secret_file: Option<&Path>,
) -> tessera_proto::v1::scheduler_client::SchedulerClient<tessera_proto::dial::AuthChannel> {
    let secret =
        secret_file.map(|f| std::sync::Arc::new(tessera_proto::auth::Secret::load(f).unwrap()));
    let channel = tessera_proto::dial::Dialer::new(
        tessera_proto::auth::ClientAuth::new(secret),
        Duration::from_secs(10),
    )
    .connect(address)
    .await
    .unwrap();
    tessera_proto::v1::scheduler_client::SchedulerClient::new(channel)
}

/// Kills its processes when dropped, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct Cluster {
    pub address: String,
    /// The cluster secret, written by the scheduler into a directory of this cluster's own.
    pub secret_file: PathBuf,
    _secret_dir: tempfile::TempDir,
    pub scheduler: Child,
    pub workers: Vec<Child>,
    /// The address each worker in `workers` serves on (as the scheduler's status lists it).
    pub worker_addresses: Vec<String>,
}

impl Cluster {
    /// Waits until worker `i` holds chunks of the one job in progress (by the scheduler's books): the
    /// job is under way there, so stopping that worker now lands mid-run.
    pub fn wait_until_worker_holds_chunks(&self, client: &Client, i: usize) {
        let address = &self.worker_addresses[i];
        poll(
            "the worker to hold chunks of the job",
            Duration::from_secs(10),
            |last| {
                let s = client.status().unwrap();
                *last = format!("{s:?}");
                (s.jobs == 1
                    && s.workers
                        .iter()
                        .any(|w| &w.address == address && w.chunks_held > 0))
                .then_some(())
            },
        );
    }

    pub fn start(workers: usize) -> Cluster {
        Cluster::start_with(workers, &[])
    }

    /// Starts the scheduler with `flags` added to the test cluster's, and `workers` workers.
    pub fn start_with(workers: usize, flags: &[&str]) -> Cluster {
        let port = free_port();
        let address = format!("http://127.0.0.1:{port}");
        let secret_dir = tempfile::tempdir().expect("a directory for the secret");
        let secret_file = secret_dir.path().join("cluster.secret");
        let scheduler = Command::new(scheduler_binary())
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--heartbeat-ms",
                "200",
                "--heartbeat-timeout-ms",
                "2000",
            ])
            .args(flags)
            .env("RUST_LOG", "warn")
            .env("TESSERA_SECRET_FILE", &secret_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the scheduler");
        let mut cluster = Cluster {
            address,
            secret_file,
            _secret_dir: secret_dir,
            scheduler,
            workers: Vec::new(),
            worker_addresses: Vec::new(),
        };
        drop(cluster.client());
        for _ in 0..workers {
            cluster.add_worker();
        }
        cluster.wait_for_workers(workers);
        cluster
    }

    /// Starts a worker with one thread on a port of its own.
    pub fn add_worker(&mut self) {
        self.add_worker_with(&[]);
    }

    /// Starts a worker with one thread on a port of its own, with `flags` added.
    pub fn add_worker_with(&mut self, flags: &[&str]) {
        let listen = format!("127.0.0.1:{}", free_port());
        let memory: &[&str] = if flags.contains(&"--memory-limit") {
            &[]
        } else {
            &["--memory-limit", "1GiB"]
        };
        let child = Command::new(worker_binary())
            .args([
                "--scheduler",
                &self.address,
                "--threads",
                "1",
                "--listen",
                &listen,
            ])
            .args(memory)
            .args(flags)
            .env("RUST_LOG", "warn")
            .env("TESSERA_SECRET_FILE", &self.secret_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("start a worker");
        self.workers.push(child);
        self.worker_addresses.push(format!("http://{listen}"));
    }

    /// Kills the scheduler with SIGKILL (no goodbye to anyone).
    pub fn kill_scheduler(&mut self) {
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }

    /// Starts the scheduler again on the same port with the same secret, as an operator would after
    /// a crash.
    pub fn restart_scheduler(&mut self) {
        let listen = self.address.trim_start_matches("http://").to_string();
        self.scheduler = Command::new(scheduler_binary())
            .args(["--listen", &listen])
            .args(["--heartbeat-ms", "200", "--heartbeat-timeout-ms", "2000"])
            .env("RUST_LOG", "warn")
            .env("TESSERA_SECRET_FILE", &self.secret_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("restart the scheduler");
    }

    /// The headline job, checked bit for bit against the local executor: the cluster still works.
    pub fn assert_headline_job_is_exact(&self) {
        let x = tessera::default_rng(42)
            .random(&[2000, 2000], [500, 500])
            .unwrap()
            .mean()
            .unwrap();
        let remote = x.compute_on(&self.client()).unwrap();
        assert_same_bits(&local(&x), &remote, "headline job");
    }

    pub fn client(&self) -> Client {
        connect(&self.address, &self.secret_file)
    }

    /// The dashboard's URL with its token, as `tessera-scheduler dashboard-url` prints it for the
    /// cluster's secret (the scheduler was started with `--dashboard dashboard`).
    pub fn dashboard_url(&self, dashboard: &str) -> String {
        let out = output_ok(
            Command::new(scheduler_binary())
                .args(["dashboard-url", "--dashboard", dashboard, "--secret-file"])
                .arg(&self.secret_file)
                .env_remove("TESSERA_SECRET_FILE"),
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn wait_for_workers(&self, n: usize) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.status().unwrap().workers.len() < n {
            assert!(Instant::now() < deadline, "workers did not register");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }
}

pub fn local(a: &Array) -> tessera::ArrayData {
    a.compute_on(&LocalExecutor::with_threads(2).unwrap())
        .unwrap()
}

/// Every array of a named suite computed on the cluster equals the local executor's result bit for bit.
pub fn assert_suite_matches_local(client: &Client, suite: Vec<(&str, Array)>) {
    for (name, array) in suite {
        let remote = array
            .compute_on(client)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same_bits(&remote, &local(&array), name);
    }
}

/// Bit-for-bit equality, NaN included.
pub fn assert_same_bits(a: &tessera::ArrayData, b: &tessera::ArrayData, what: &str) {
    assert_eq!(a.dtype(), b.dtype(), "{what}: dtype");
    assert_eq!(a.shape(), b.shape(), "{what}: shape");
    let bits = |d: &tessera::ArrayData| -> Vec<u64> {
        match d {
            tessera::ArrayData::F64(x) => x.iter().map(|v| v.to_bits()).collect(),
            tessera::ArrayData::F32(x) => x.iter().map(|v| v.to_bits() as u64).collect(),
            tessera::ArrayData::I64(x) => x.iter().map(|&v| v as u64).collect(),
            tessera::ArrayData::I32(x) => x.iter().map(|&v| v as u32 as u64).collect(),
            tessera::ArrayData::U8(x) => x.iter().map(|&v| v as u64).collect(),
            tessera::ArrayData::U64(x) => x.iter().copied().collect(),
            tessera::ArrayData::Bool(x) => x.iter().map(|&v| v as u64).collect(),
            tessera::ArrayData::C128(x) => x
                .iter()
                .flat_map(|v| [v.re.to_bits(), v.im.to_bits()])
                .collect(),
        }
    };
    assert!(bits(a) == bits(b), "{what}: values differ");
}

/// A process's resident memory in bytes (from /proc), for checks that a request cost it nothing.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// A process's peak resident memory in bytes (`VmHWM` in /proc/PID/status).
pub fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}
