//! The scheduler's configuration as a plain struct with defaults and a `validate`; the binary's flags
//! convert into it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::SchedulerError;

/// How the scheduler runs.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// Where the gRPC service listens.
    pub listen: SocketAddr,
    /// How often workers send heartbeats (told to each worker when it registers).
    pub heartbeat_interval: Duration,
    /// A worker silent for this long is declared lost and its work is rescheduled.
    pub heartbeat_timeout: Duration,
    /// The fewest tasks in flight per worker thread; a worker whose tasks prove short gets more
    /// (about 1 ms of work per thread, see `core::Config`).
    pub slots_per_thread: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8786)),
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(5),
            slots_per_thread: 2,
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

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        if self.heartbeat_interval.is_zero() {
            return Err(SchedulerError::Config(
                "the heartbeat interval must be positive".into(),
            ));
        }
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(SchedulerError::Config(format!(
                "the heartbeat timeout ({:?}) must be longer than the interval ({:?})",
                self.heartbeat_timeout, self.heartbeat_interval
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
    }
}
