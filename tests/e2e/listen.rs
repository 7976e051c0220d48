//! Listeners: attachd binds them before anything else, so a busy port is one clear error and
//! nothing else is opened; `:0` picks free ports, which the "listening" line names.

use std::process::Command;

use crate::support::*;

/// A config on `listen` (admin on a free port) writing its audit log to `audit`.
fn config(dir: &std::path::Path, listen: &str, audit: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("attachd.toml");
    let toml = format!(
        "[server]\nlisten = \"{listen}\"\nadmin_listen = \"127.0.0.1:0\"\ntls_terminated_upstream = true\n\n[audit]\npath = \"{}\"\n\n{}",
        audit.display(),
        tokens_toml()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// A second replica started by mistake on a running one's port and audit log: one line naming
/// the port, exit 1. It used to open the audit log first and log an unrelated lock error.
#[test]
fn a_busy_port_is_one_clear_error_before_the_audit_log_is_opened() {
    let srv = Server::start(Opts::default());
    let before = srv.audit_text();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", srv.port);
    let cfg = config(dir.path(), &listen, &srv.audit_path());
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one line, nothing else logged first: {text}"
    );
    assert!(
        lines[0].starts_with(&format!("attachd: cannot listen on {listen}: ")),
        "{text}"
    );
    assert!(!text.contains("audit"), "{text}");
    assert_eq!(
        srv.audit_text(),
        before,
        "the running replica's log is untouched"
    );

    // A fresh audit path on a busy port: the log is not even created.
    let fresh = dir.path().join("audit.log");
    let cfg = config(dir.path(), &listen, &fresh);
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!fresh.exists(), "the audit log was opened before the bind");
}

/// `:0` binds free ports; the "listening" line names the real ones, which then answer.
#[tokio::test]
async fn port_zero_listens_on_the_ports_it_names() {
    let srv = Server::start(Opts::default());
    let (api, admin) = listening_ports(&srv.logs()).expect("a listening line with both ports");
    assert_ne!(api, 0);
    assert_ne!(admin, 0);
    assert_eq!((api, admin), (srv.port, srv.admin_port));
    let health = reqwest::get(srv.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(srv.metrics().await.contains("attachd_"));
}
