//! Job handles: a computation submitted to run in the background ([`crate::LocalExecutor::submit`],
//! `Client::submit`, `AsyncClient::submit`), like dask's futures or Celery's `delay`. Submitting
//! returns a [`JobHandle`] at once; the handle tells the job's [`JobStatus`] and live
//! [`ProgressSnapshot`], waits for it (blocking, or as a future), hands over its result, and cancels
//! it. The handle is the same type whichever executor runs the job, so code written against it does
//! not change with the executor.
//!
//! The handle is one half of a shared slot; the other half, a `JobDriver`, belongs to whatever runs
//! the job (a thread for the local executor, a task on the client's runtime for a cluster) and puts
//! the outcome in the slot when the job ends. A driver that goes away without an outcome (a panic)
//! fails the job, so no wait can hang on a job nobody runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ndarray::ArrayD;

use crate::array::{Array, compute_observed};
use crate::data::{ArrayData, Element};
use crate::error::{Error, Result};
use crate::exec::{CancelToken, ExecStats, LocalExecutor, Progress, ProgressSnapshot};

/// Where a submitted job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Submitted; not started yet (waiting for the executor, or for the scheduler to accept it).
    Pending,
    /// Running.
    Running,
    /// Every output chunk is computed and gathered: the result is ready.
    Finished,
    /// A task failed, or the job was rejected; [`JobHandle::result`] returns the error.
    Failed,
    /// Cancelled by [`JobHandle::cancel`] before it finished.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has ended (finished, failed or cancelled).
    pub fn is_done(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// A job's outcome: its outputs and what the executor did, or the error.
type Outcome = Result<(Vec<ArrayData>, ExecStats)>;

struct Slot {
    status: JobStatus,
    outcome: Option<Outcome>,
    /// The failure's text, kept after the outcome is taken.
    message: Option<String>,
    wakers: Vec<Waker>,
}

type CancelHook = Box<dyn Fn() + Send + Sync>;

struct Shared {
    slot: Mutex<Slot>,
    ended: Condvar,
    progress: Progress,
    cancel: CancelToken,
    /// Tells the driver to stop at once (a cluster job's driver waits on events, not on the token).
    on_cancel: Mutex<Option<CancelHook>>,
    outputs: usize,
}

impl Shared {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().expect("job slot")
    }
}

/// A job running in the background. Dropping the handle does not cancel the job (call
/// [`JobHandle::cancel`]); its result is then dropped when it ends.
///
/// ```
/// use tessera::{JobStatus, LocalExecutor};
/// let ex = LocalExecutor::with_threads(2)?;
/// let x = tessera::arange(0i64, 1000, 1, [100])?;
/// let job = ex.submit(&x.sum()?);
/// assert_eq!(job.wait(), JobStatus::Finished);
/// let p = job.progress();
/// assert_eq!(p.done(), p.total());
/// let total: i64 = job.result::<i64>()?.into_iter().next().unwrap();
/// assert_eq!(total, 499_500);
/// # Ok::<(), tessera::Error>(())
/// ```
pub struct JobHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.progress();
        f.debug_struct("JobHandle")
            .field("status", &self.status())
            .field("done", &p.done())
            .field("total", &p.total())
            .finish()
    }
}

/// The running side of a job: the executor reports start, progress and the outcome through it.
pub(crate) struct JobDriver {
    shared: Arc<Shared>,
    ended: bool,
}

/// A new job of `outputs` outputs: the handle for the caller and the driver for the executor.
/// `parent`, when given, is a token whose cancellation cancels the job too.
pub(crate) fn new_job(outputs: usize, parent: Option<&CancelToken>) -> (JobHandle, JobDriver) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            status: JobStatus::Pending,
            outcome: None,
            message: None,
            wakers: Vec::new(),
        }),
        ended: Condvar::new(),
        progress: Progress::new(),
        cancel: parent.map_or_else(CancelToken::new, |p| p.child(None)),
        on_cancel: Mutex::new(None),
        outputs,
    });
    (
        JobHandle {
            shared: shared.clone(),
        },
        JobDriver {
            shared,
            ended: false,
        },
    )
}

impl JobDriver {
    /// Where the executor writes the job's progress.
    pub(crate) fn progress(&self) -> &Progress {
        &self.shared.progress
    }

    /// The job's token: cancelled by [`JobHandle::cancel`].
    pub(crate) fn cancel_token(&self) -> &CancelToken {
        &self.shared.cancel
    }

    /// `hook` runs when the handle cancels the job (at once, if it already has).
    pub(crate) fn on_cancel(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.shared.on_cancel.lock().expect("cancel hook") = Some(Box::new(hook));
        if self.shared.cancel.is_cancelled() {
            hook_now(&self.shared);
        }
    }

    /// The job has started running.
    pub(crate) fn started(&self) {
        let mut slot = self.shared.slot();
        if slot.status == JobStatus::Pending {
            slot.status = JobStatus::Running;
        }
    }

    /// The job has ended with `outcome`; a failure after [`JobHandle::cancel`] counts as cancelled.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.ended = true;
        end(&self.shared, outcome);
    }
}

impl Drop for JobDriver {
    fn drop(&mut self) {
        if !self.ended {
            end(
                &self.shared,
                Err(Error::InvalidGraph {
                    reason: "the job's executor stopped without a result".into(),
                }),
            );
        }
    }
}

fn hook_now(shared: &Shared) {
    if let Some(hook) = shared.on_cancel.lock().expect("cancel hook").as_ref() {
        hook();
    }
}

fn end(shared: &Shared, outcome: Outcome) {
    shared.progress.finish();
    let mut slot = shared.slot();
    slot.status = match &outcome {
        Ok(_) => JobStatus::Finished,
        Err(_) if shared.cancel.is_cancelled() => JobStatus::Cancelled,
        Err(Error::Cancelled { .. }) => JobStatus::Cancelled,
        Err(_) => JobStatus::Failed,
    };
    if let Err(e) = &outcome {
        slot.message = Some(e.to_string());
    }
    slot.outcome = Some(outcome);
    for w in slot.wakers.drain(..) {
        w.wake();
    }
    drop(slot);
    shared.ended.notify_all();
}

impl JobHandle {
    /// Where the job stands now.
    pub fn status(&self) -> JobStatus {
        self.shared.slot().status
    }

    /// Tasks done out of the total, and bytes produced, per layer and in all. Counts only grow; they
    /// reach the total when the job finishes. On a cluster they arrive with the scheduler's progress
    /// reports (every 100 ms by default), so a short job may show nothing until it ends.
    pub fn progress(&self) -> ProgressSnapshot {
        self.shared.progress.snapshot()
    }

    /// The failure's message, once the job has failed or been cancelled.
    pub fn error(&self) -> Option<String> {
        self.shared.slot().message.clone()
    }

    /// Asks the job to stop: running kernels stop at their next checkpoint, a cluster job is dropped
    /// by the scheduler and its workers. Returns whether the job was still running (a job that has
    /// already ended keeps its result).
    pub fn cancel(&self) -> bool {
        if self.status().is_done() {
            return false;
        }
        self.shared.cancel.cancel();
        hook_now(&self.shared);
        true
    }

    /// Blocks until the job ends; returns how it ended.
    pub fn wait(&self) -> JobStatus {
        let mut slot = self.shared.slot();
        while !slot.status.is_done() {
            slot = self.shared.ended.wait(slot).expect("job slot");
        }
        slot.status
    }

    /// Blocks until the job ends or `timeout` passes; returns the status either way.
    pub fn wait_timeout(&self, timeout: Duration) -> JobStatus {
        let deadline = Instant::now() + timeout;
        let mut slot = self.shared.slot();
        while !slot.status.is_done() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            slot = self
                .shared
                .ended
                .wait_timeout(slot, left)
                .expect("job slot")
                .0;
        }
        slot.status
    }

    /// A future that resolves, with how it ended, when the job ends (for async code; it needs no
    /// particular runtime).
    pub fn wait_async(&self) -> JobEnd<'_> {
        JobEnd { handle: self }
    }

    /// Waits for the job and returns its outputs (one per submitted array) and the executor's
    /// statistics (tasks run, per-layer progress), or the error that ended it.
    pub fn results_with_stats(self) -> Result<(Vec<ArrayData>, ExecStats)> {
        self.wait();
        self.take()
    }

    /// Waits for the job and returns its outputs, one per submitted array.
    pub fn results(self) -> Result<Vec<ArrayData>> {
        Ok(self.results_with_stats()?.0)
    }

    /// Waits for the job of one array and returns it as an `ndarray` of `T`.
    pub fn result<T: Element>(self) -> Result<ArrayD<T>> {
        self.result_dyn()?.into_typed()
    }

    /// Waits for the job of one array and returns it whatever its dtype.
    pub fn result_dyn(self) -> Result<ArrayData> {
        if self.shared.outputs != 1 {
            return Err(Error::InvalidArgument {
                op: "JobHandle::result",
                reason: format!(
                    "the job has {} outputs; use results() for more than one",
                    self.shared.outputs
                ),
            });
        }
        Ok(self.results()?.pop().expect("one output"))
    }

    /// [`JobHandle::results`] as a future.
    pub async fn results_async(self) -> Result<Vec<ArrayData>> {
        self.wait_async().await;
        Ok(self.take()?.0)
    }

    /// [`JobHandle::result`] as a future.
    pub async fn result_async<T: Element>(self) -> Result<ArrayD<T>> {
        self.wait_async().await;
        let mut outputs = self.take()?.0;
        if outputs.len() != 1 {
            return Err(Error::InvalidArgument {
                op: "JobHandle::result_async",
                reason: format!(
                    "the job has {} outputs; use results_async() for more than one",
                    outputs.len()
                ),
            });
        }
        outputs.pop().expect("one output").into_typed()
    }

    fn take(&self) -> Result<(Vec<ArrayData>, ExecStats)> {
        self.shared
            .slot()
            .outcome
            .take()
            .expect("a handle takes its job's outcome once, after the job ended")
    }
}

/// The future of [`JobHandle::wait_async`].
#[derive(Debug)]
pub struct JobEnd<'a> {
    handle: &'a JobHandle,
}

impl Future for JobEnd<'_> {
    type Output = JobStatus;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<JobStatus> {
        let mut slot = self.handle.shared.slot();
        if slot.status.is_done() {
            return Poll::Ready(slot.status);
        }
        if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            slot.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The local backend: a job is driven by a thread of its own that runs the graph on the executor's
/// pool (so jobs submitted together share the pool's threads, taking turns), under a token that is a
/// child of the executor's own.
impl LocalExecutor {
    /// Starts computing `array` in the background and returns its handle at once.
    pub fn submit(&self, array: &Array) -> JobHandle {
        self.submit_many(&[array])
    }

    /// Starts computing `arrays` in one job (sharing common subexpressions), in the background.
    ///
    /// ```
    /// let ex = tessera::LocalExecutor::with_threads(2)?;
    /// let x = tessera::arange(0.0f64, 100.0, 1.0, [10])?;
    /// let job = ex.submit_many(&[&x.sum()?, &x.max()?]);
    /// let out = job.results()?;
    /// assert_eq!(out[0].get(&[]), Some(tessera::Scalar::F64(4950.0)));
    /// assert_eq!(out[1].get(&[]), Some(tessera::Scalar::F64(99.0)));
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn submit_many(&self, arrays: &[&Array]) -> JobHandle {
        let (handle, driver) = new_job(arrays.len(), self.cancel_token());
        let executor = self
            .clone()
            .with_cancel_token(driver.cancel_token().clone());
        let arrays: Vec<Array> = arrays.iter().map(|a| (*a).clone()).collect();
        // Should the thread not start, the closure (and the driver in it) is dropped, which fails
        // the job instead of leaving it pending.
        let _ = std::thread::Builder::new()
            .name("tessera-job".into())
            .spawn(move || {
                driver.started();
                let refs: Vec<&Array> = arrays.iter().collect();
                let outcome = compute_observed(&refs, &executor, Some(driver.progress()));
                driver.finish(outcome);
            });
        handle
    }
}
