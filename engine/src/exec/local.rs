//! The local executor: dependency counting over a rayon pool. Every pool thread takes the ready task
//! with the lowest priority number (the depth-first order [`TaskGraph`] assigns), runs it outside the
//! lock, then releases inputs whose last consumer has run. Because a group's combine step outranks the
//! next group's leaves, a reduction holds about threads × chunk size, not the whole array.
//!
//! Every run has its own [`CancelToken`] (a child of the caller's token, with the executor's time
//! limit) under which each kernel runs: the first failure cancels it, so the tasks still running stop
//! at their next checkpoint instead of finishing work nobody will read, and the error returned is that
//! first failure, not the "cancelled" of the tasks it stopped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};

use smallvec::SmallVec;

use std::time::Duration;

use super::OutputSink;
use super::cancel::{self, CancelToken};
use crate::data::ChunkValue;
use crate::error::{Error, Result};
use crate::graph::ArrayMeta;
use crate::graph::expand::TaskGraph;

/// Runs task graphs on a rayon pool.
#[derive(Clone, Debug, Default)]
pub struct LocalExecutor {
    pool: Option<Arc<rayon::ThreadPool>>,
    /// A caller's token: cancelling it stops every run of this executor.
    cancel: Option<CancelToken>,
    /// Wall-clock limit of one run, counted from the start of `execute`.
    time_limit: Option<Duration>,
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Tasks executed.
    pub tasks: usize,
    /// Most bytes of chunk data held at once by the executor (not counting what the sink keeps).
    pub peak_bytes: usize,
}

struct State {
    ready: BinaryHeap<Reverse<u32>>,
    waiting_on: Vec<u32>,
    readers_left: Vec<u32>,
    values: Vec<Option<Arc<ChunkValue>>>,
    done: usize,
    error: Option<Error>,
    held_bytes: usize,
    peak_bytes: usize,
}

impl LocalExecutor {
    /// An executor on rayon's global pool (all cores).
    pub fn new() -> Self {
        LocalExecutor::default()
    }

    /// The same executor (sharing its pool) whose runs stop with [`Error::Cancelled`] once `token`
    /// is cancelled, for example from another thread. The token stays cancelled: later runs need a
    /// new one.
    pub fn with_cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The same executor (sharing its pool) whose runs stop with [`Error::Cancelled`] ("time limit
    /// of 2s exceeded") once they have run for `limit`.
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// An executor on its own pool of `threads` threads.
    pub fn with_threads(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("tessera-{i}"))
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?;
        Ok(LocalExecutor {
            pool: Some(Arc::new(pool)),
            ..LocalExecutor::default()
        })
    }

    /// Number of threads tasks run on.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(p) => p.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Runs every task of `tg`, handing output chunks to `sink`. Stops at the first failure, whose
    /// error names the task's key, and cancels the tasks still running; stops with
    /// [`Error::Cancelled`] when the caller's token is cancelled or the time limit passes.
    pub fn execute(&self, tg: &TaskGraph, sink: &OutputSink<'_>) -> Result<ExecStats> {
        let run = match &self.cancel {
            Some(t) => t.child(self.time_limit),
            None => match self.time_limit {
                Some(limit) => CancelToken::with_time_limit(limit),
                None => CancelToken::new(),
            },
        };
        run.check()?;
        let n = tg.tasks.len();
        let mut readers = vec![0u32; n];
        let mut consumers: Vec<SmallVec<[u32; 2]>> = vec![SmallVec::new(); n];
        for (i, t) in tg.tasks.iter().enumerate() {
            for &d in &t.deps {
                readers[d as usize] += 1;
                consumers[d as usize].push(i as u32);
            }
        }
        let mut output_of: Vec<SmallVec<[(usize, usize); 1]>> = vec![SmallVec::new(); n];
        for (o, ids) in tg.outputs.iter().enumerate() {
            for (b, &id) in ids.iter().enumerate() {
                output_of[id as usize].push((o, b));
            }
        }
        let layers = tg.graph.layers();
        let input_metas: Vec<Vec<&ArrayMeta>> = layers
            .iter()
            .map(|l| {
                l.inputs
                    .iter()
                    .map(|i| &tg.graph.get(*i).expect("expanded graphs are closed").meta)
                    .collect()
            })
            .collect();
        let ready: BinaryHeap<Reverse<u32>> = tg
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.deps.is_empty())
            .map(|(i, _)| Reverse(i as u32))
            .collect();
        let state = Mutex::new(State {
            ready,
            waiting_on: tg.tasks.iter().map(|t| t.deps.len() as u32).collect(),
            readers_left: readers,
            values: vec![None; n],
            done: 0,
            error: None,
            held_bytes: 0,
            peak_bytes: 0,
        });
        let wake = Condvar::new();

        let worker = || {
            let mut inputs: Vec<Arc<ChunkValue>> = Vec::new();
            loop {
                let id = {
                    let mut s = state.lock().expect("executor state");
                    let id = loop {
                        if s.error.is_some() || s.done == n {
                            return;
                        }
                        // A cancel between kernels: nothing is running that would notice it.
                        if run.is_cancelled() {
                            s.error = Some(run.error());
                            wake.notify_all();
                            return;
                        }
                        if let Some(Reverse(id)) = s.ready.pop() {
                            break id;
                        }
                        s = wake.wait(s).expect("executor state");
                    };
                    inputs.clear();
                    inputs.extend(tg.tasks[id as usize].deps.iter().map(|&d| {
                        s.values[d as usize]
                            .clone()
                            .expect("inputs finish before their readers")
                    }));
                    id
                };
                let task = &tg.tasks[id as usize];
                let layer = &layers[task.layer as usize];
                let result = catch_unwind(AssertUnwindSafe(|| {
                    // Kernel bugs that hand a task the wrong chunk are caught here in debug builds.
                    #[cfg(debug_assertions)]
                    crate::graph::check::check_inputs(
                        layer,
                        &input_metas[task.layer as usize],
                        &task.block,
                        &inputs,
                    )?;
                    cancel::scope(&run, || {
                        layer.op.run(
                            layer,
                            &input_metas[task.layer as usize],
                            &task.block,
                            &inputs,
                        )
                    })
                }));
                inputs.clear();
                let result = match result {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e @ Error::Cancelled { .. })) => Err(e),
                    Ok(Err(e)) => Err(Error::TaskFailed {
                        key: tg.key(id).to_string(),
                        message: e.to_string(),
                    }),
                    Err(panic) => Err(Error::TaskPanicked {
                        key: tg.key(id).to_string(),
                        message: panic_message(&panic),
                    }),
                };
                let result = result.and_then(|v| {
                    for &(o, b) in &output_of[id as usize] {
                        let block = &tg.tasks[tg.outputs[o][b] as usize].block;
                        sink(o, block, v.clone())?;
                    }
                    Ok(v)
                });
                let mut s = state.lock().expect("executor state");
                match result {
                    Err(e) => {
                        // Set before cancelling, so that the tasks this stops find the real
                        // failure already recorded and their "cancelled" is dropped.
                        if s.error.is_none() {
                            s.error = Some(e);
                        }
                        run.cancel();
                        wake.notify_all();
                        return;
                    }
                    Ok(v) => {
                        let mut woke = 0;
                        for &c in &consumers[id as usize] {
                            let w = &mut s.waiting_on[c as usize];
                            *w -= 1;
                            if *w == 0 {
                                s.ready.push(Reverse(c));
                                woke += 1;
                            }
                        }
                        if !consumers[id as usize].is_empty() {
                            s.held_bytes += v.nbytes();
                            s.peak_bytes = s.peak_bytes.max(s.held_bytes);
                            s.values[id as usize] = Some(v);
                        }
                        for &d in &task.deps {
                            let r = &mut s.readers_left[d as usize];
                            *r -= 1;
                            if *r == 0
                                && let Some(old) = s.values[d as usize].take()
                            {
                                s.held_bytes -= old.nbytes();
                            }
                        }
                        s.done += 1;
                        if s.done == n || woke > 1 {
                            wake.notify_all();
                        } else if woke == 1 {
                            wake.notify_one();
                        }
                    }
                }
            }
        };

        if n > 0 {
            match &self.pool {
                Some(p) => {
                    p.broadcast(|_| worker());
                }
                None => {
                    rayon::broadcast(|_| worker());
                }
            }
        }
        let s = state.into_inner().expect("executor state");
        if let Some(e) = s.error {
            return Err(e);
        }
        Ok(ExecStats {
            tasks: n,
            peak_bytes: s.peak_bytes,
        })
    }
}

/// The text of a caught panic's payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}
