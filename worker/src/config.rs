//! The worker's configuration as a plain struct ([`WorkerConfig`]), with the parsing of human memory
//! sizes such as `4GiB`. The binary's flags convert into it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::auth::Secret;
use tessera_proto::tls::ClientTls;
use tonic::transport::ServerTlsConfig;

use crate::error::WorkerError;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The scheduler's address, e.g. `http://127.0.0.1:8786`.
    pub scheduler: String,
    /// Threads that run tasks.
    pub threads: usize,
    /// Bytes of chunks (held, and reserved by running tasks) this worker keeps in memory at most;
    /// reported to the scheduler, which books tasks against it.
    pub memory_limit: u64,
    /// Fraction of the limit past which chunks no running task reads are spilled to disk, least
    /// recently used first (dask's default, 0.6).
    pub memory_target: f64,
    /// Fraction of the limit past which the worker starts no new task until it is back under, and
    /// tells the scheduler (0.8).
    pub memory_pause: f64,
    /// Where a private spill directory is made (removed at exit); default: the system's temporary
    /// directory.
    pub spill_dir: Option<PathBuf>,
    /// Where the worker's own service (chunk fetches from peers and clients) listens.
    pub listen: SocketAddr,
    /// The address peers should use to reach this worker (default: the listen address), e.g. when
    /// listening on 0.0.0.0 behind a host name.
    pub advertise: Option<String>,
    /// How long the worker keeps trying to reach the scheduler when it starts (it may start first).
    pub connect_timeout: Duration,
    /// How long the worker keeps trying to get back to the scheduler after losing its session
    /// (scheduler restart, network failure, a long pause) before it exits.
    pub reconnect_timeout: Duration,
    /// A fetch from a peer fails when its reply does not start, or its next piece does not arrive,
    /// within this long.
    pub fetch_timeout: Duration,
    /// The longest wait for a call with one answer (registration).
    pub rpc_timeout: Duration,
    /// The cluster secret; `None` sends no credentials and accepts every request (`--insecure`).
    pub secret: Option<Arc<Secret>>,
    /// TLS for the worker's own service (peers and clients fetch from it).
    pub server_tls: Option<ServerTlsConfig>,
    /// TLS for the worker's connections to the scheduler and its peers (`https://` addresses).
    pub client_tls: ClientTls,
}

impl WorkerConfig {
    /// A config for a scheduler address with defaults: all cores, 4 GiB, an ephemeral loopback port,
    /// 20 seconds to reach the scheduler.
    pub fn new(scheduler: impl Into<String>) -> Self {
        WorkerConfig {
            scheduler: scheduler.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_limit: 4 << 30,
            memory_target: 0.6,
            memory_pause: 0.8,
            spill_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            connect_timeout: Duration::from_secs(20),
            reconnect_timeout: Duration::from_secs(300),
            fetch_timeout: tessera::client::DEFAULT_FETCH_TIMEOUT,
            rpc_timeout: tessera::client::DEFAULT_RPC_TIMEOUT,
            secret: None,
            server_tls: None,
            client_tls: ClientTls::plain(),
        }
    }

    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The spill and pause fractions of the memory limit.
    pub fn with_memory_fractions(mut self, target: f64, pause: f64) -> Self {
        self.memory_target = target;
        self.memory_pause = pause;
        self
    }

    pub fn with_spill_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.spill_dir = dir;
        self
    }

    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn with_reconnect_timeout(mut self, timeout: Duration) -> Self {
        self.reconnect_timeout = timeout;
        self
    }

    pub fn with_secret(mut self, secret: Option<Arc<Secret>>) -> Self {
        self.secret = secret;
        self
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), WorkerError> {
        if self.threads == 0 {
            return Err(WorkerError::Config("--threads must be at least 1".into()));
        }
        if !(self.scheduler.starts_with("http://") || self.scheduler.starts_with("https://")) {
            return Err(WorkerError::Config(format!(
                "scheduler address {:?} must start with http:// (e.g. http://127.0.0.1:8786)",
                self.scheduler
            )));
        }
        for (value, flag) in [
            (self.fetch_timeout, "--fetch-timeout-secs"),
            (self.rpc_timeout, "--rpc-timeout-secs"),
        ] {
            if value.is_zero() {
                return Err(WorkerError::Config(format!("{flag} must be positive")));
            }
        }
        for (value, flag) in [
            (self.memory_target, "--memory-target"),
            (self.memory_pause, "--memory-pause"),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(WorkerError::Config(format!(
                    "{flag} is a fraction of --memory-limit between 0 and 1, not {value}"
                )));
            }
        }
        if self.memory_target > self.memory_pause {
            return Err(WorkerError::Config(format!(
                "--memory-target ({}) must not be above --memory-pause ({}): the worker spills before it pauses",
                self.memory_target, self.memory_pause
            )));
        }
        if self.listen.ip().is_unspecified() && self.advertise.is_none() {
            return Err(WorkerError::Config(format!(
                "listening on {} needs --advertise with an address peers can reach",
                self.listen
            )));
        }
        Ok(())
    }
}

/// Parses a memory size such as `4GiB` or `512MB` (see [`tessera_proto::serve::parse_size`]).
pub fn parse_memory(text: &str) -> Result<u64, WorkerError> {
    tessera_proto::serve::parse_size(text).map_err(WorkerError::Config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_dask() {
        assert_eq!(parse_memory("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_memory("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_memory("1.5 GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_memory("1000").unwrap(), 1000);
        assert!(
            parse_memory("lots")
                .unwrap_err()
                .to_string()
                .contains("lots")
        );
        assert!(parse_memory("4XB").is_err());
        assert!(parse_memory("0").is_err());
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let c = WorkerConfig::new("127.0.0.1:8786");
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        let c = WorkerConfig::new("http://127.0.0.1:8786").with_threads(0);
        assert!(c.validate().unwrap_err().to_string().contains("--threads"));
        let c = WorkerConfig::new("http://h:1").with_memory_fractions(0.0, 0.8);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--memory-target")
        );
        let c = WorkerConfig::new("http://h:1").with_memory_fractions(0.6, 1.5);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--memory-pause")
        );
        let c = WorkerConfig::new("http://h:1").with_memory_fractions(0.9, 0.8);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("spills before it pauses")
        );
        let c = WorkerConfig::new("http://h:1").with_listen("0.0.0.0:9000".parse().unwrap());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--advertise")
        );
    }
}
