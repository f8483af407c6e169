//! Where the core's messages go. The gRPC shell implements [`Outbox`] by translating each message to
//! its protobuf form and queueing it on the worker's or client's stream; tests use a recording outbox
//! that keeps them for assertions and fails if any was left unchecked.

use super::{JobId, ToClient, ToWorker, WorkerId};

/// Receives the core's messages, in the order they must be delivered (per receiver).
pub trait Outbox {
    fn to_worker(&mut self, worker: WorkerId, msg: ToWorker);
    fn to_client(&mut self, job: JobId, msg: ToClient);
}

/// Keeps every message; tests take them out and check them. Dropping it with messages left panics, so
/// no test can ignore a message by accident.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct RecordingOutbox {
    pub workers: Vec<(WorkerId, ToWorker)>,
    pub clients: Vec<(JobId, ToClient)>,
}

#[cfg(test)]
impl Outbox for RecordingOutbox {
    fn to_worker(&mut self, worker: WorkerId, msg: ToWorker) {
        self.workers.push((worker, msg));
    }

    fn to_client(&mut self, job: JobId, msg: ToClient) {
        self.clients.push((job, msg));
    }
}

#[cfg(test)]
impl RecordingOutbox {
    /// Takes the messages to one worker, in order.
    pub fn take_worker(&mut self, w: WorkerId) -> Vec<ToWorker> {
        let (mine, rest) = std::mem::take(&mut self.workers)
            .into_iter()
            .partition(|(x, _)| *x == w);
        self.workers = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    /// Takes the messages to one job's client, in order.
    pub fn take_client(&mut self, job: JobId) -> Vec<ToClient> {
        let (mine, rest) = std::mem::take(&mut self.clients)
            .into_iter()
            .partition(|(x, _)| *x == job);
        self.clients = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty() && self.clients.is_empty()
    }
}

#[cfg(test)]
impl Drop for RecordingOutbox {
    fn drop(&mut self) {
        if !std::thread::panicking() && !self.is_empty() {
            panic!(
                "unchecked messages left in the outbox:\n  workers: {:?}\n  clients: {:?}",
                self.workers, self.clients
            );
        }
    }
}
