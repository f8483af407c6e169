//! The scheduler's configuration as a plain struct with defaults and a `validate`; the binary's flags
//! convert into it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::auth::Secret;
use tonic::transport::ServerTlsConfig;

use crate::error::SchedulerError;

/// What the scheduler accepts from clients, checked when a request arrives, before anything is
/// allocated or expanded for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest gRPC message decoded (graphs are small; data travels as chunks between workers).
    pub max_message_bytes: usize,
    /// Most layers in one graph.
    pub max_layers: usize,
    /// Most chunk tasks one job may expand to.
    pub max_tasks: usize,
    /// Most jobs one client connection may have in flight at once (submitted and not completed, or
    /// completed with outputs not yet fetched). Kept (persisted) jobs stop counting once they complete.
    pub max_jobs_per_client: usize,
    /// Most jobs one client connection may keep open after they completed (`persist_on(&client)`:
    /// arrays whose chunks stay on the workers), counted from submission.
    pub max_kept_jobs_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 << 20,
            max_layers: 100_000,
            // About 260 bytes of bookkeeping each: a job at the limit costs the scheduler ~2.6 GB.
            max_tasks: 10_000_000,
            max_jobs_per_client: 64,
            // Each holds its graph's bookkeeping here and its output chunks on the workers.
            max_kept_jobs_per_client: 256,
        }
    }
}

/// The live dashboard and `/metrics` (`crate::dashboard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DashboardConfig {
    /// Where it listens; `None`: no dashboard (`--no-dashboard`).
    pub listen: Option<SocketAddr>,
    /// Most event streams (open dashboard pages) served at once.
    pub max_streams: usize,
    /// Most task records the task stream keeps (it covers the last minute, up to this many).
    pub task_stream_len: usize,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8787))),
            max_streams: 32,
            task_stream_len: 20_000,
        }
    }
}

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Where the gRPC service listens.
    pub listen: SocketAddr,
    /// How often workers send heartbeats (told to each worker when it registers).
    pub heartbeat_interval: Duration,
    /// A worker silent for this long is declared lost and its work is rescheduled.
    pub heartbeat_timeout: Duration,
    /// How often each running job's client hears its per-layer progress (at most once per interval,
    /// and only when it moved).
    pub progress_interval: Duration,
    /// The fewest tasks in flight per worker thread; a worker whose tasks prove short gets more
    /// (about 1 ms of work per thread, see `core::Config`).
    pub slots_per_thread: u32,
    /// The cluster secret every request must prove it knows; `None` accepts everyone (the binary's
    /// `--insecure`; the binary otherwise loads or creates the secret file).
    pub secret: Option<Arc<Secret>>,
    /// TLS for the gRPC service (mutual when it names a client CA).
    pub tls: Option<ServerTlsConfig>,
    /// Request limits.
    pub limits: Limits,
    /// The dashboard.
    pub dashboard: DashboardConfig,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8786)),
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(5),
            progress_interval: Duration::from_millis(100),
            slots_per_thread: 2,
            secret: None,
            tls: None,
            limits: Limits::default(),
            dashboard: DashboardConfig::default(),
        }
    }
}

impl SchedulerConfig {
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    pub fn with_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    pub fn with_secret(mut self, secret: Option<Arc<Secret>>) -> Self {
        self.secret = secret;
        self
    }

    pub fn with_tls(mut self, tls: Option<ServerTlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_dashboard(mut self, dashboard: DashboardConfig) -> Self {
        self.dashboard = dashboard;
        self
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        if self.heartbeat_interval.is_zero() {
            return Err(SchedulerError::Config(
                "the heartbeat interval must be positive".into(),
            ));
        }
        if self.progress_interval.is_zero() {
            return Err(SchedulerError::Config(
                "the progress interval (--progress-interval-ms) must be positive".into(),
            ));
        }
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(SchedulerError::Config(format!(
                "the heartbeat timeout ({:?}) must be longer than the interval ({:?})",
                self.heartbeat_timeout, self.heartbeat_interval
            )));
        }
        let l = &self.limits;
        for (value, flag) in [
            (l.max_message_bytes, "--max-message-size"),
            (l.max_layers, "--max-layers"),
            (l.max_tasks, "--max-tasks"),
            (l.max_jobs_per_client, "--max-jobs-per-client"),
            (l.max_kept_jobs_per_client, "--max-kept-jobs-per-client"),
            (self.dashboard.max_streams, "--dashboard-max-streams"),
            (self.dashboard.task_stream_len, "--dashboard-task-stream"),
        ] {
            if value == 0 {
                return Err(SchedulerError::Config(format!("{flag} must be at least 1")));
            }
        }
        if l.max_tasks > u32::MAX as usize {
            return Err(SchedulerError::Config(format!(
                "--max-tasks can be at most {} (tasks are numbered with 32 bits)",
                u32::MAX
            )));
        }
        if self.slots_per_thread == 0 {
            return Err(SchedulerError::Config(
                "slots per thread must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn core(&self) -> crate::core::Config {
        crate::core::Config {
            heartbeat_timeout: self.heartbeat_timeout,
            slots_per_thread: self.slots_per_thread,
            ..crate::core::Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_setting() {
        assert!(SchedulerConfig::default().validate().is_ok());
        let c = SchedulerConfig::default()
            .with_heartbeat(Duration::from_secs(2), Duration::from_secs(1));
        assert!(c.validate().unwrap_err().to_string().contains("timeout"));
        let c = SchedulerConfig::default().with_limits(Limits {
            max_kept_jobs_per_client: 0,
            ..Limits::default()
        });
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            SchedulerError::Config("--max-kept-jobs-per-client must be at least 1".into())
                .to_string()
        );
    }
}
