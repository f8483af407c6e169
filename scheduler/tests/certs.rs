//! `tessera-scheduler certs DIR` as an operator runs it: the four files written (keys private), the
//! flags to use printed, a second run refused without `--force`, and the serving flags still working
//! without a subcommand.

use std::path::Path;
use std::process::{Command, Output};

fn scheduler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera-scheduler"))
}

fn certs(dir: &Path, extra: &[&str]) -> Output {
    scheduler()
        .arg("certs")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// A directory of its own under the target's scratch space, empty.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("certs-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn certs_writes_the_files_and_prints_the_flags() {
    let dir = scratch("writes").join("cluster");
    let out = certs(&dir, &["--host", "head.example", "--host", "10.0.0.9"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for name in ["ca.pem", "ca-key.pem", "node.pem", "node-key.pem"] {
        let file = dir.join(name);
        assert!(file.is_file(), "{name} missing");
        assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    }
    let flags = format!(
        "--tls-cert {} --tls-key {} --tls-ca {}",
        dir.join("node.pem").display(),
        dir.join("node-key.pem").display(),
        dir.join("ca.pem").display()
    );
    assert!(stdout.contains(&flags), "{stdout}");
    assert!(
        stdout.contains("head.example") && stdout.contains("10.0.0.9"),
        "{stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca-key.pem", "node-key.pem"] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
    }
    // The files load as a mutual-TLS server set-up.
    let files = tessera_proto::tls::TlsFiles {
        cert: Some(dir.join("node.pem")),
        key: Some(dir.join("node-key.pem")),
        ca: Some(dir.join("ca.pem")),
    };
    assert!(files.server_config().unwrap().is_some());
}

#[test]
fn certs_refuses_to_overwrite_without_force() {
    let dir = scratch("overwrite");
    assert!(certs(&dir, &[]).status.success());
    let before = std::fs::read(dir.join("ca.pem")).unwrap();

    let out = certs(&dir, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tessera-scheduler: ") && last.contains("already exists"),
        "{err}"
    );
    assert!(last.contains(&dir.display().to_string()), "{err}");
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);

    let out = certs(&dir, &["--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
}

#[test]
fn certs_reports_a_bad_host_in_one_line() {
    let dir = scratch("bad-host");
    let out = certs(&dir, &["--host", "not a host"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tessera-scheduler: ") && last.contains("not a host"),
        "{err}"
    );
    assert!(!dir.join("ca.pem").exists());
}

#[test]
fn serving_flags_do_not_mix_with_certs() {
    let dir = scratch("mixed");
    let out = scheduler()
        .args(["--listen", "127.0.0.1:0", "certs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!dir.exists());
}
