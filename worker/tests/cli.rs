//! The worker binary as an operator meets it: `--help` lists the flags and their environment
//! variables; a bad memory limit, zero threads, a scheduler address without a scheme, or a scheduler
//! nobody answers at are each reported as one readable line naming the bad value, with a non-zero
//! exit; every flag can be set through its environment variable, and a flag beats its variable.

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The worker binary with no `TESSERA_*` variable inherited from the test's environment.
fn worker() -> Command {
    let mut cmd = Command::new(common::worker_binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("RUST_LOG");
    // The default secret file goes under this directory, not the user's own.
    let home = std::env::temp_dir().join("tessera-worker-cli-tests");
    cmd.env("XDG_CONFIG_HOME", &home);
    // A temporary directory of its own: at start-up a worker removes the spill directories that
    // killed workers left in its temporary directory and logs each one, and workers that other test
    // binaries kill on purpose would add such lines to the one-line errors checked here.
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    cmd.env("TMPDIR", tmp);
    cmd
}

/// Runs `cmd` to completion, killing it (and failing) if it takes longer than `patience`.
fn run(cmd: &mut Command, patience: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the worker");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > patience {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the worker was still running after {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        elapsed,
    )
}

/// Asserts a failed run said exactly one line, `tessera-worker: …`, containing every one of `needles`;
/// returns the line.
fn one_line_error(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited successfully; stderr: {err}");
    assert_eq!(out.status.code(), Some(1), "exit status; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {err}");
    let line = lines[0];
    assert!(line.starts_with("tessera-worker: "), "{line}");
    for needle in needles {
        assert!(
            line.contains(needle),
            "{line:?} does not mention {needle:?}"
        );
    }
    line.to_string()
}

/// An address with nothing listening on it.
fn unreachable_scheduler() -> String {
    format!("http://127.0.0.1:{}", common::free_port())
}

const QUICK: Duration = Duration::from_secs(10);

#[test]
fn help_lists_the_flags_and_their_environment_variables() {
    let (out, _) = run(worker().arg("--help"), QUICK);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--scheduler",
        "TESSERA_SCHEDULER",
        "--threads",
        "TESSERA_WORKER_THREADS",
        "--memory-limit",
        "TESSERA_WORKER_MEMORY_LIMIT",
        "--listen",
        "--advertise",
        "--connect-timeout-secs",
        "TESSERA_WORKER_CONNECT_TIMEOUT_SECS",
    ] {
        assert!(
            text.contains(needle),
            "--help does not mention {needle}:\n{text}"
        );
    }
}

/// A bad setting given as a flag, then as its environment variable: the same one-line error, which
/// contains every string in `expect`.
fn same_error_from_flag_and_environment(flag: &str, env: &str, value: &str, expect: &[&str]) {
    let scheduler = unreachable_scheduler();
    let (out, _) = run(
        worker().args([
            "--scheduler",
            &scheduler,
            "--connect-timeout-secs",
            "1",
            flag,
            value,
        ]),
        QUICK,
    );
    let from_flag = one_line_error(&out, expect);
    let (out, _) = run(
        worker()
            .env("TESSERA_SCHEDULER", &scheduler)
            .env("TESSERA_WORKER_CONNECT_TIMEOUT_SECS", "1")
            .env(env, value),
        QUICK,
    );
    assert_eq!(one_line_error(&out, expect), from_flag);
}

#[test]
fn a_bad_memory_limit_is_one_line_naming_it_from_a_flag_or_the_environment() {
    same_error_from_flag_and_environment(
        "--memory-limit",
        "TESSERA_WORKER_MEMORY_LIMIT",
        "4XB",
        &["\"4XB\""],
    );
}

#[test]
fn zero_threads_is_one_line_from_a_flag_or_the_environment() {
    same_error_from_flag_and_environment(
        "--threads",
        "TESSERA_WORKER_THREADS",
        "0",
        &["--threads", "at least 1"],
    );
}

#[test]
fn a_scheduler_address_without_a_scheme_is_one_line_naming_it() {
    let (out, _) = run(
        worker().args([
            "--scheduler",
            "127.0.0.1:8786",
            "--connect-timeout-secs",
            "1",
        ]),
        QUICK,
    );
    one_line_error(&out, &["\"127.0.0.1:8786\"", "http://"]);
}

#[test]
fn an_unreachable_scheduler_is_one_line_naming_it_after_the_connect_timeout() {
    let scheduler = unreachable_scheduler();
    let (out, elapsed) = run(
        worker().args(["--scheduler", &scheduler, "--connect-timeout-secs", "1"]),
        QUICK,
    );
    one_line_error(&out, &[&scheduler, "gave up after 1s"]);
    // It kept trying for the whole timeout, and not much longer.
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "gave up after {elapsed:?}"
    );
}

#[test]
fn the_environment_sets_every_flag_and_a_flag_beats_its_variable() {
    let scheduler = unreachable_scheduler();
    let (out, elapsed) = run(
        worker()
            .env("TESSERA_SCHEDULER", &scheduler)
            .env("TESSERA_WORKER_CONNECT_TIMEOUT_SECS", "1")
            .env("TESSERA_WORKER_MEMORY_LIMIT", "512MB")
            .env("TESSERA_WORKER_LISTEN", "127.0.0.1:0")
            // The flag wins over the variable, so the worker gets as far as the scheduler.
            .env("TESSERA_WORKER_THREADS", "0")
            .args(["--threads", "1"]),
        QUICK,
    );
    one_line_error(&out, &[&scheduler, "gave up after 1s"]);
    assert!(
        elapsed < Duration::from_secs(5),
        "gave up after {elapsed:?}"
    );
}
