//! The worker's configuration as a plain struct ([`WorkerConfig`]), with the parsing of human memory
//! sizes such as `4GiB`. The binary's flags convert into it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::WorkerError;

/// How a worker runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The scheduler's address, e.g. `http://127.0.0.1:8786`.
    pub scheduler: String,
    /// Threads that run tasks.
    pub threads: usize,
    /// Bytes of chunks this worker should hold at most; reported to the scheduler and logged when
    /// exceeded.
    pub memory_limit: u64,
    /// Where the worker's own service (chunk fetches from peers and clients) listens.
    pub listen: SocketAddr,
    /// The address peers should use to reach this worker (default: the listen address), e.g. when
    /// listening on 0.0.0.0 behind a host name.
    pub advertise: Option<String>,
    /// How long the worker keeps trying to reach the scheduler when it starts (it may start first).
    pub connect_timeout: Duration,
}

impl WorkerConfig {
    /// A config for a scheduler address with defaults: all cores, 4 GiB, an ephemeral loopback port,
    /// 20 seconds to reach the scheduler.
    pub fn new(scheduler: impl Into<String>) -> Self {
        WorkerConfig {
            scheduler: scheduler.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_limit: 4 << 30,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            connect_timeout: Duration::from_secs(20),
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

    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
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
        if self.listen.ip().is_unspecified() && self.advertise.is_none() {
            return Err(WorkerError::Config(format!(
                "listening on {} needs --advertise with an address peers can reach",
                self.listen
            )));
        }
        Ok(())
    }
}

/// Parses a memory size: a number with an optional unit (`B`, `KB`, `MB`, `GB`, `TB` in powers of 1000,
/// `KiB`, `MiB`, `GiB`, `TiB` in powers of 1024), as in dask's `--memory-limit`.
pub fn parse_memory(text: &str) -> Result<u64, WorkerError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        WorkerError::Config(format!(
            "cannot read memory size {text:?} (try 4GiB or 512MB)"
        ))
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
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
        let c = WorkerConfig::new("http://h:1").with_listen("0.0.0.0:9000".parse().unwrap());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--advertise")
        );
    }
}
