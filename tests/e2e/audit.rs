//! The audit trail end to end: what a session's life writes, the query and verify endpoints,
//! the CLI verifier, an independent Python verifier, restarts and rotation.

use std::process::Command;

use serde_json::json;

use crate::support::*;

fn python_verify(files: &[std::path::PathBuf]) -> (bool, String) {
    let script = repo_root().join("tests/tools/verify_audit.py");
    let mut args: Vec<String> = vec![script.display().to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python3(&refs);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn audit_files(srv: &Server) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(srv.dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("audit.log.") && n[10..].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    files.sort();
    files.push(srv.audit_path());
    files
}

#[tokio::test]
async fn a_session_life_is_audited_and_the_chain_verifies_independently() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    send_bin(&mut d, b"echo typed-secret-words\n").await;
    expect_output(&mut d, "typed-secret-words\r\n", 10).await;
    drop(d);
    let disc = srv
        .wait_audit("disconnect", |r| r["type"] == "attach.disconnect")
        .await;
    for k in ["duration_ms", "bytes_in", "bytes_out", "close_code"] {
        assert!(disc[k].is_u64(), "{k} missing: {disc}");
    }
    let stdin = srv
        .wait_audit("stdin summary", |r| r["type"] == "attach.stdin")
        .await;
    assert_eq!(stdin["messages"], 1);
    assert!(stdin["bytes"].as_u64().unwrap() > 10);
    for ty in [
        "session.created",
        "attach.ticket.issued",
        "attach.connect",
        "attach.control.acquired",
    ] {
        srv.wait_audit(ty, |r| r["type"] == ty).await;
    }
    let text = srv.audit_text();
    assert!(
        !text.contains("typed-secret-words"),
        "stdin content was audited"
    );
    assert!(!text.contains(ALICE.secret), "an API token was audited");

    // The API: filters, tenancy, verify.
    let r = api
        .call(
            "GET",
            &format!("/api/v1/audit?type=attach.connect&session_id={sid}&limit=10"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let evs = r.body["events"].as_array().unwrap();
    assert!(!evs.is_empty());
    assert!(evs
        .iter()
        .all(|e| e["type"] == "attach.connect" && e["session_id"] == sid.as_str()));
    let r = srv.api(&MALLORY).call("GET", "/api/v1/audit", None).await;
    assert_eq!(
        r.body["events"].as_array().unwrap().len(),
        0,
        "another tenant's records leaked"
    );
    let r = api.call("GET", "/api/v1/audit/verify", None).await;
    assert_eq!(r.body["ok"], true, "{}", r.text);
    assert!(r.body["records"].as_u64().unwrap() >= 6);
    assert!(r.body["first_bad_seq"].is_null());

    let (ok, out) = python_verify(&audit_files(&srv));
    assert!(ok, "independent verifier: {out}");
}

#[tokio::test]
async fn audit_query_filters_are_bounded() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let r = api.call("GET", "/api/v1/audit?limit=1001", None).await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_request"));
    let r = api.call("GET", "/api/v1/audit?limit=0", None).await;
    assert_eq!(r.status, 400);
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let r = api
        .call(
            "GET",
            &format!("/api/v1/audit?type={}", many.join(",")),
            None,
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_request"));
    let r = api
        .call(
            "GET",
            &format!("/api/v1/audit?type={}", many[..50].join(",")),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api.call("GET", "/api/v1/audit?since=yesterday", None).await;
    assert_eq!(r.status, 400);
    let r = api.call("GET", "/api/v1/audit?bogus=1", None).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn tampering_is_detected_by_the_cli_and_the_api_with_the_right_seq() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for _ in 0..3 {
        api.ticket(&sid, "observer").await;
    }
    let cli = |path: &std::path::Path| {
        Command::new(bin())
            .args(["audit", "verify"])
            .arg(path)
            .output()
            .unwrap()
    };
    // Ticket records are queued, not awaited.
    for _ in 0..100 {
        if srv.audit_records().len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = cli(&srv.audit_path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Change one field of record 3.
    let text = std::fs::read_to_string(srv.audit_path()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace("\"observer\"", "\"driver\"");
    std::fs::write(srv.audit_path(), lines.join("\n") + "\n").unwrap();
    let out = cli(&srv.audit_path());
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["first_bad_seq"], 3, "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("seq 3"));
    let r = api.call("GET", "/api/v1/audit/verify", None).await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["first_bad_seq"], 3);
    let (ok, _) = python_verify(&[srv.audit_path()]);
    assert!(!ok, "the independent verifier must see the tampering too");
}

#[tokio::test]
async fn restarts_and_rotation_continue_the_chain() {
    // Recordings chain their chunks into the log in the background; this test reads the files
    // while nothing else writes them.
    let mut srv = Server::start(
        Opts::default()
            .env("ATTACHD__AUDIT__MAX_FILE_BYTES", "2048")
            .env("ATTACHD__RECORDING__MODE", "off"),
    );
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for _ in 0..10 {
        api.ticket(&sid, "observer").await;
    }
    srv.restart_graceful();
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for _ in 0..10 {
        api.ticket(&sid, "observer").await;
    }
    // Ticket records are queued, not awaited: wait until all twenty are on disk.
    let mut issued = 0;
    for _ in 0..200 {
        let r = api
            .call(
                "GET",
                "/api/v1/audit?type=attach.ticket.issued&limit=1000",
                None,
            )
            .await;
        issued = r.body["events"].as_array().map_or(0, Vec::len);
        if issued == 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(issued, 20, "ticket records lost across the restart");
    let files = audit_files(&srv);
    assert!(files.len() >= 3, "expected rotations at 2 KiB: {files:?}");
    let out = Command::new(bin())
        .args(["audit", "verify"])
        .arg(srv.audit_path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert!(report["records"].as_u64().unwrap() >= 24, "{report}");
    let (ok, py) = python_verify(&files);
    assert!(ok, "{py}");
    let first = srv.audit_records();
    assert_eq!(
        first[0]["type"], "audit.rotated",
        "a rotated file starts with audit.rotated"
    );
    let r = api
        .call(
            "GET",
            "/api/v1/audit?type=attach.ticket.issued&limit=1000",
            None,
        )
        .await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), 20, "{}", r.text);
    let _ = json!({});
}

/// Each start writes a durable `server.started` record first.
#[tokio::test]
async fn every_start_is_audited_first() {
    let mut srv = Server::start(Opts::default());
    srv.restart_graceful();
    let starts: Vec<u64> = srv
        .audit_records()
        .iter()
        .filter(|r| r["type"] == "server.started")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.first(), Some(&1), "{starts:?}");
    assert_eq!(starts.len(), 2, "{starts:?}");
}

/// The last lines of the log removed while the server is stopped: the CLI reports the cut,
/// and the restarted server refuses to continue the chain (it would reuse the removed seqs):
/// `/readyz` 503 and new sessions 503 under `deny`, nothing appended.
#[tokio::test]
async fn a_cut_tail_is_reported_and_the_chain_is_not_continued() {
    let mut srv = Server::start(Opts::default().env("ATTACHD__AUDIT__ON_FAILURE", "deny"));
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for _ in 0..4 {
        api.ticket(&sid, "observer").await;
    }
    let st = srv.terminate(std::time::Duration::from_secs(15));
    assert!(st.is_some_and(|s| s.success()), "{st:?}");
    let (ok, report) = cli_verify(&srv.audit_path(), None);
    assert!(ok, "{report}");
    let last = report["records"].as_u64().unwrap();
    let text = std::fs::read_to_string(srv.audit_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 3].join("\n") + "\n";
    std::fs::write(srv.audit_path(), &kept).unwrap();

    let (ok, report) = cli_verify(&srv.audit_path(), None);
    assert!(!ok, "{report}");
    assert_eq!(report["first_bad_seq"], last - 2, "{report}");
    assert!(
        report["message"].as_str().unwrap().contains("cut off"),
        "{report}"
    );
    let (py_ok, _) = python_verify(&[srv.audit_path()]);
    assert!(
        py_ok,
        "the chain alone still verifies: only the head shows the cut"
    );

    srv.restart();
    let api = srv.api(&ALICE);
    let r = api.call("GET", "/readyz", None).await;
    assert_eq!(
        (r.status, &r.body["checks"]["audit"]),
        (503, &json!("failing")),
        "{}",
        r.text
    );
    let (st, text) = api.create_session_status().await;
    assert_eq!(st, 503, "{text}");
    assert!(text.contains("audit_unavailable"), "{text}");
    assert!(srv.logs().contains("refusing to continue this chain"));
    assert_eq!(std::fs::read_to_string(srv.audit_path()).unwrap(), kept);
}

/// `attachd audit verify` on a missing or an empty file is not a success.
#[test]
fn verify_fails_on_a_missing_or_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (ok, report) = cli_verify(&path, None);
    assert!(!ok, "{report}");
    assert_eq!(report["first_bad_seq"], 1);
    std::fs::write(&path, "").unwrap();
    let (ok, report) = cli_verify(&path, None);
    assert!(!ok, "{report}");
}
