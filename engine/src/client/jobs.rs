//! The cluster backend of job handles: [`Client::submit`] and [`AsyncClient::submit`] start a job's
//! Run stream in a task on the client's runtime and return a [`JobHandle`] at once. The task gathers
//! the outputs as [`AsyncClient::compute_many`] does, writes the scheduler's progress reports into the
//! handle's [`crate::Progress`], marks the job running when the scheduler accepts it, and closes the
//! stream when the handle cancels it (the scheduler then drops the job everywhere).

use std::sync::Arc;

use tokio::sync::Notify;

use super::{AsyncClient, Client, Observer};
use crate::array::{Array, Assembly, checked_graph_of};
use crate::data::ChunkValue;
use crate::error::{Error, Result};
use crate::jobs::{JobDriver, JobHandle, new_job};

impl AsyncClient {
    /// Starts computing `array` on the cluster and returns its handle at once; must be called from
    /// within a tokio runtime (the job runs on it). Await the handle's `result_async`.
    ///
    /// ```no_run
    /// # async fn f() -> tessera::Result<()> {
    /// let client = tessera::AsyncClient::connect("http://127.0.0.1:8786").await?;
    /// let x = tessera::default_rng(0).random(&[4000, 4000], [1000, 1000])?;
    /// let job = client.submit(&x.mean()?)?;
    /// let mean = job.result_async::<f64>().await?;
    /// # Ok(()) }
    /// ```
    pub fn submit(&self, array: &Array) -> Result<JobHandle> {
        self.submit_many(&[array])
    }

    /// Starts computing `arrays` in one job on the cluster (see [`AsyncClient::submit`]).
    pub fn submit_many(&self, arrays: &[&Array]) -> Result<JobHandle> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| Error::InvalidArgument {
                op: "AsyncClient::submit",
                reason: "called outside a tokio runtime (use Client::submit from plain code)"
                    .into(),
            })?;
        Ok(self.spawn_job(&runtime, arrays))
    }

    /// Spawns the job's driver on `runtime`.
    fn spawn_job(&self, runtime: &tokio::runtime::Handle, arrays: &[&Array]) -> JobHandle {
        let (handle, driver) = new_job(arrays.len(), None);
        let cancel = Arc::new(Notify::new());
        let signal = cancel.clone();
        // `notify_one` keeps a permit when nobody waits yet, so a cancel before the driver starts
        // listening is not lost.
        driver.on_cancel(move || signal.notify_one());
        let client = self.clone();
        let arrays: Vec<Array> = arrays.iter().map(|a| (*a).clone()).collect();
        runtime.spawn(async move {
            let outcome = run(&client, &arrays, &driver, &cancel).await;
            driver.finish(outcome);
        });
        handle
    }
}

/// Runs one submitted job to its end.
async fn run(
    client: &AsyncClient,
    arrays: &[Array],
    driver: &JobDriver,
    cancel: &Notify,
) -> Result<(Vec<crate::ArrayData>, crate::ExecStats)> {
    let refs: Vec<&Array> = arrays.iter().collect();
    let assembly = Assembly::new(&refs);
    let sink = |o: usize, block: &[u32], v: Arc<ChunkValue>| assembly.accept(o, block, v);
    let accepted = || driver.started();
    let observer = Observer {
        progress: Some(driver.progress()),
        cancel: Some(cancel),
        accepted: Some(&accepted),
    };
    let graph = crate::optimize::optimize(checked_graph_of(&refs)?);
    let stats = client.execute_observed(graph, &sink, observer).await?;
    Ok((assembly.finish(), stats))
}

impl Client {
    /// Starts computing `array` on the cluster and returns its handle at once; the job runs on the
    /// client's runtime while the caller does something else.
    ///
    /// ```no_run
    /// let client = tessera::Client::connect("http://127.0.0.1:8786")?;
    /// let x = tessera::default_rng(0).random(&[10000, 10000], [1000, 1000])?;
    /// let job = client.submit(&x.mean()?);
    /// while !job.status().is_done() {
    ///     let p = job.progress();
    ///     eprintln!("{}/{} tasks", p.done(), p.total());
    ///     std::thread::sleep(std::time::Duration::from_millis(200));
    /// }
    /// let mean: f64 = job.result::<f64>()?.into_iter().next().unwrap();
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn submit(&self, array: &Array) -> JobHandle {
        self.submit_many(&[array])
    }

    /// Starts computing `arrays` in one job on the cluster (see [`Client::submit`]).
    pub fn submit_many(&self, arrays: &[&Array]) -> JobHandle {
        self.inner.spawn_job(self.runtime.handle(), arrays)
    }
}
