//! Runnable examples of tessera live beside this file (`mean.rs` …); run them with
//! `cargo run --release --example NAME`. This library holds what the examples share: choosing the
//! executor from their flags, and printing an error as one line with a failing exit code.

use std::process::ExitCode;

/// The executor an example runs on: the local pool, or a cluster when a scheduler is given.
#[derive(Debug)]
pub struct Executors {
    local: tessera::LocalExecutor,
    cluster: Option<tessera::Client>,
}

impl Executors {
    /// A local pool of `threads` (all cores when `None`), and a connection to `scheduler` when given;
    /// `no_progress` turns the progress bar off.
    pub fn new(
        threads: Option<usize>,
        scheduler: Option<&str>,
        no_progress: bool,
    ) -> tessera::Result<Executors> {
        if no_progress {
            tessera::set_progress_bar(false);
        }
        let local = match threads {
            Some(n) => tessera::LocalExecutor::with_threads(n)?,
            None => tessera::LocalExecutor::new(),
        };
        let cluster = match scheduler {
            Some(address) => Some(tessera::Client::connect(address)?),
            None => None,
        };
        Ok(Executors { local, cluster })
    }

    /// The cluster when connected, else the local pool.
    pub fn executor(&self) -> &dyn tessera::Executor {
        match &self.cluster {
            Some(c) => c,
            None => &self.local,
        }
    }

    /// The cluster's client, when the example runs on one.
    pub fn cluster(&self) -> Option<&tessera::Client> {
        self.cluster.as_ref()
    }

    /// The local pool.
    pub fn local(&self) -> &tessera::LocalExecutor {
        &self.local
    }

    /// "distributed" or "local", as the JSON lines say.
    pub fn name(&self) -> &'static str {
        if self.cluster.is_some() {
            "distributed"
        } else {
            "local"
        }
    }
}

/// The exit code of an example's run: an error prints as one readable line on stderr.
pub fn exit(result: tessera::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
