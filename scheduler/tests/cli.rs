//! The scheduler binary as an operator meets it: `--help`, and bad flags or settings reported as one
//! readable line with a non-zero exit.

use std::process::Command;

fn scheduler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera-scheduler"))
}

#[test]
fn help_lists_the_flags_and_their_environment_variables() {
    let out = scheduler().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--listen") && text.contains("TESSERA_SCHEDULER_LISTEN"),
        "{text}"
    );
}

#[test]
fn bad_settings_fail_with_one_line() {
    let out = scheduler()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "1000",
            "--heartbeat-timeout-ms",
            "500",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tessera-scheduler: ") && last.contains("timeout"),
        "{err}"
    );

    let out = scheduler()
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-an-address"));
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = scheduler()
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&port.to_string()), "{err}");
}
