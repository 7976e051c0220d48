//! Integration tests of the audit subsystem: the writer actor on real files (restart, rotation,
//! failing sinks and recovery, locking) and verification, cross-checked by an independent Python
//! verifier (`tests/tools/verify_audit.py`).
//!
//! Over 500 lines: each test is one failure mode of the single writer, and all share its file
//! fixtures and the Python cross-check.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use attachd_actors::audit::{
    chain_files, read_events, records_lost_total, verify_files, verify_path, write_errors_total,
    Audit, AuditConfig, AuditError, AuditEvent, AuditQuery,
};
use serde_json::Value;

const BIG: u64 = 64 * 1024 * 1024;

fn config(path: &Path, max_file_bytes: u64) -> AuditConfig {
    AuditConfig {
        path: path.to_path_buf(),
        max_file_bytes,
    }
}

fn event(i: u64) -> AuditEvent {
    AuditEvent::new("attach.connect", "ok")
        .subject(format!("user{}", i % 3))
        .tenant("acme")
        .session_id(format!("s{}", i % 2))
        .connection_id(format!("c{i}"))
        .role("driver")
        .remote_ip("127.0.0.1")
        .field_u64("n", i)
}

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn python_verifier() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/verify_audit.py")
}

/// Runs the independent Python verifier; fails (never skips) without python3.
fn python_verify(paths: &[PathBuf]) -> (bool, Value) {
    let out = match Command::new("python3")
        .arg(python_verifier())
        .args(paths)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!(
            "python3 is required to run the independent audit verifier; install python3 \
             (e.g. `apt-get install python3`): {e}"
        ),
    };
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify_audit.py printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.success(),
        report["ok"] == Value::Bool(true),
        "exit status must say the same as the report: {report}"
    );
    (out.status.success(), report)
}

/// Checks that the Rust and the Python verifier agree on `paths` and returns the Rust report's
/// (ok, records, first_bad_seq).
fn both_verifiers(paths: &[PathBuf]) -> (bool, u64, Option<u64>) {
    let rust = verify_files(paths);
    let (py_ok, py) = python_verify(paths);
    assert_eq!(rust.ok, py_ok, "rust {rust:?} vs python {py}");
    assert_eq!(
        Value::from(rust.records),
        py["records"],
        "rust {rust:?} vs python {py}"
    );
    assert_eq!(
        rust.first_bad_seq.map(Value::from).unwrap_or(Value::Null),
        py["first_bad_seq"],
        "rust {rust:?} vs python {py}"
    );
    (rust.ok, rust.records, rust.first_bad_seq)
}

async fn write_n(audit: &Audit, n: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 0..n {
        seqs.push(audit.record(event(i)).await.unwrap());
    }
    seqs
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix::clock::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a writer on a path that a writer of this process has just closed. The lock can still
/// be held for a moment by a child process another test forked (a child keeps the descriptors
/// it inherited until its exec); the writer retries on its own, as a restarted replica would,
/// so this waits while the only problem is the lock. Every other failure is returned at once.
async fn restart(path: &Path, max_file_bytes: u64) -> Audit {
    let a = Audit::start(config(path, max_file_bytes)).unwrap();
    let h = a.health().clone();
    wait_until("the restarted writer to get its lock", || {
        h.is_ok() || !h.last_error().unwrap_or_default().contains("locked")
    })
    .await;
    a
}

#[actix::test]
async fn chain_continues_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/audit.log");
    let a = Audit::start(config(&path, BIG)).unwrap();
    assert!(a.health().is_ok(), "{:?}", a.health().snapshot());
    assert_eq!(write_n(&a, 3).await, vec![1, 2, 3]);
    a.close().await.unwrap();
    assert!(matches!(a.record(event(9)).await, Err(AuditError::Closed)));
    let h = a.health().clone();
    wait_until("health failing after close", || !h.is_ok()).await;
    // Nothing sent to a stopped writer disappears silently.
    let lost_before = records_lost_total();
    a.record_detached(event(10));
    wait_until("the dropped record is counted", || {
        records_lost_total() > lost_before
    })
    .await;

    let b = restart(&path, BIG).await;
    assert!(b.health().is_ok(), "{:?}", b.health().snapshot());
    assert_eq!(b.health().last_seq(), 3);
    assert_eq!(write_n(&b, 2).await, vec![4, 5]);
    b.close().await.unwrap();

    let recs = lines(&path);
    assert_eq!(recs.len(), 5);
    assert_eq!(recs[0]["prev"], Value::from("0".repeat(64)));
    for w in recs.windows(2) {
        assert_eq!(w[1]["prev"], w[0]["hash"]);
        assert_eq!(
            w[1]["seq"].as_u64().unwrap(),
            w[0]["seq"].as_u64().unwrap() + 1
        );
        assert!(w[1]["ts"].as_u64() >= w[0]["ts"].as_u64());
    }
    let report = verify_path(&path);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 5);
    assert_eq!(
        both_verifiers(&chain_files(&path).unwrap()),
        (true, 5, None)
    );
}

#[actix::test]
async fn rotation_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let max = 1024;
    let a = Audit::start(config(&path, max)).unwrap();
    write_n(&a, 30).await;
    a.close().await.unwrap();
    // Restart and go on rotating: numbering and chain continue.
    let a = restart(&path, max).await;
    for i in 0..10 {
        a.record(event(i)).await.unwrap();
    }
    a.close().await.unwrap();

    let files = chain_files(&path).unwrap();
    assert!(files.len() >= 4, "expected several files, got {files:?}");
    for (i, f) in files[..files.len() - 1].iter().enumerate() {
        assert_eq!(
            f.file_name().unwrap().to_str().unwrap(),
            format!("audit.log.{:06}", i + 1)
        );
    }
    assert_eq!(files.last().unwrap(), &path);
    let mut total = 0;
    let mut prev_last: Option<Value> = None;
    for f in &files {
        let size = fs::metadata(f).unwrap().len();
        assert!(size <= max, "{} is {size} bytes", f.display());
        let recs = lines(f);
        if let Some(last) = &prev_last {
            let first = &recs[0];
            assert_eq!(first["type"], "audit.rotated");
            assert_eq!(first["prev"], last["hash"]);
            assert_eq!(
                first["seq"].as_u64().unwrap(),
                last["seq"].as_u64().unwrap() + 1
            );
        }
        for r in &recs[1..] {
            assert_ne!(r["type"], "audit.rotated");
        }
        total += recs.len();
        prev_last = recs.last().cloned();
    }
    // 40 user records plus one marker per rotated-into file.
    assert_eq!(total, 40 + files.len() - 1);
    // audit.rotated names the file it continues.
    let second = lines(&files[1]);
    assert_eq!(second[0]["rotated_file"], "audit.log.000001");

    let report = verify_path(&path);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records as usize, total);
    assert_eq!(
        both_verifiers(&files),
        (true, total as u64, None),
        "rust and python must agree"
    );
    // The oldest file missing is reported (the chain must start at seq 1).
    let (ok, _, bad) = both_verifiers(&files[1..]);
    assert!(!ok);
    assert!(bad.unwrap() > 1);
}

#[actix::test]
async fn dev_full_makes_health_fail_and_counts_errors() {
    assert!(
        Path::new("/dev/full").exists(),
        "/dev/full is needed for this test"
    );
    let before = write_errors_total();
    let a = Audit::start(config(Path::new("/dev/full"), BIG)).unwrap();
    let r = a.record(event(1)).await;
    assert!(matches!(r, Err(AuditError::Io { .. })), "{r:?}");
    assert!(!a.health().is_ok());
    let err = a.health().last_error().unwrap();
    assert!(err.contains("/dev/full"), "{err}");
    assert!(write_errors_total() > before);
    // Still failing on the next attempts, never silently ok.
    a.record_detached(event(2));
    assert!(a.flush().await.is_err());
    assert!(a.record(event(3)).await.is_err());
    assert!(!a.health().is_ok());
}

/// `flush` reports a failed batch even when the writer's own scheduled commit wrote (and
/// failed) it before the flush arrived, so nothing was left pending for the flush itself.
#[actix::test]
async fn flush_reports_a_failed_batch_that_was_already_committed() {
    let a = Audit::start(config(Path::new("/dev/full"), BIG)).unwrap();
    a.record_detached(event(1));
    // Give the scheduled commit time to run first; the answer must be Err either way.
    actix::clock::sleep(Duration::from_millis(200)).await;
    assert!(a.flush().await.is_err());
    assert!(a.close().await.is_err());
}

#[actix::test]
async fn failing_directory_recovers_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let away = dir.path().join("logs.away");
    let path = logs.join("audit.log");
    let a = Audit::start(config(&path, BIG)).unwrap();
    assert_eq!(write_n(&a, 2).await, vec![1, 2]);

    // Root ignores permission bits, so break the path itself: the parent becomes a regular file.
    fs::rename(&logs, &away).unwrap();
    fs::write(&logs, b"not a directory").unwrap();
    let before = write_errors_total();
    let r = a.record(event(3)).await;
    assert!(r.is_err(), "{r:?}");
    assert!(!a.health().is_ok());
    assert!(write_errors_total() > before);
    assert!(a.record(event(4)).await.is_err());

    // Restore: the writer's own retry (reopen + probe) brings health back without traffic.
    fs::remove_file(&logs).unwrap();
    fs::rename(&away, &logs).unwrap();
    let h = a.health().clone();
    wait_until("health ok after restore", || h.is_ok()).await;

    // Failed records consumed no seq: the chain continues at 3.
    assert_eq!(a.record(event(5)).await.unwrap(), 3);
    assert_eq!(a.record(event(6)).await.unwrap(), 4);
    a.close().await.unwrap();
    let report = verify_path(&path);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 4);
    assert_eq!(
        both_verifiers(&chain_files(&path).unwrap()),
        (true, 4, None)
    );
}

#[actix::test]
async fn failure_and_recovery_with_rotation() {
    // The directory breaks between records of a log that rotates after every record.
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let away = dir.path().join("logs.away");
    let path = logs.join("audit.log");
    let a = Audit::start(config(&path, 600)).unwrap();
    write_n(&a, 2).await;
    fs::rename(&logs, &away).unwrap();
    fs::write(&logs, b"x").unwrap();
    for i in 0..3 {
        assert!(a.record(event(i)).await.is_err());
    }
    fs::remove_file(&logs).unwrap();
    fs::rename(&away, &logs).unwrap();
    let h = a.health().clone();
    wait_until("health ok", || h.is_ok()).await;
    for i in 0..10 {
        a.record(event(i)).await.unwrap();
    }
    a.close().await.unwrap();
    let files = chain_files(&path).unwrap();
    assert!(files.len() > 1);
    let (ok, records, _) = both_verifiers(&files);
    assert!(ok);
    assert_eq!(records, 12 + files.len() as u64 - 1);
}

/// Writes `n` records in one file and returns its lines.
async fn sample_file(dir: &Path, n: u64) -> (PathBuf, Vec<String>) {
    let path = dir.join("audit.log");
    let a = Audit::start(config(&path, BIG)).unwrap();
    write_n(&a, n).await;
    a.close().await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    (path, text.lines().map(str::to_owned).collect())
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    fs::write(path, s).unwrap();
}

#[actix::test]
async fn verify_detects_tamper_delete_reorder_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let (path, orig) = sample_file(dir.path(), 10).await;
    assert_eq!(
        both_verifiers(std::slice::from_ref(&path)),
        (true, 10, None)
    );
    let case = |name: &str, lines: &[String]| -> (bool, u64, Option<u64>) {
        let p = dir.path().join(name);
        write_lines(&p, lines);
        both_verifiers(&[p])
    };

    // A tampered field: seq 5's subject changed.
    let mut t = orig.clone();
    t[4] = t[4].replace("\"subject\":\"user1\"", "\"subject\":\"mallory\"");
    assert_ne!(t[4], orig[4]);
    assert_eq!(case("tampered", &t), (false, 4, Some(5)));

    // A tampered number (bytes_in-like counter).
    let mut t = orig.clone();
    t[6] = t[6].replace("\"n\":6", "\"n\":60");
    assert_eq!(case("tampered_n", &t), (false, 6, Some(7)));

    // A deleted line: the chain fails at the seq after the gap.
    let mut d = orig.clone();
    d.remove(4);
    assert_eq!(case("deleted", &d), (false, 4, Some(6)));

    // Deleting the first line.
    let mut d = orig.clone();
    d.remove(0);
    assert_eq!(case("deleted_first", &d), (false, 0, Some(2)));

    // Reordered lines: 5 and 6 swapped; the first record out of place is 6.
    let mut r = orig.clone();
    r.swap(4, 5);
    assert_eq!(case("reordered", &r), (false, 4, Some(6)));

    // A duplicated line (replay): fails where seq 6 was expected.
    let mut dup = orig.clone();
    dup.insert(5, orig[4].clone());
    assert_eq!(case("duplicated", &dup), (false, 5, Some(6)));

    // Truncated in the middle of the last line.
    let full = fs::read(&path).unwrap();
    let p = dir.path().join("truncated_last");
    fs::write(&p, &full[..full.len() - 20]).unwrap();
    assert_eq!(both_verifiers(&[p]), (false, 9, Some(10)));

    // Truncated in the middle of line 7.
    let cut: usize = orig[..6].iter().map(|l| l.len() + 1).sum::<usize>() + 30;
    let p = dir.path().join("truncated_mid");
    fs::write(&p, &full[..cut]).unwrap();
    assert_eq!(both_verifiers(&[p]), (false, 6, Some(7)));

    // Only the final newline missing.
    let p = dir.path().join("no_newline");
    fs::write(&p, &full[..full.len() - 1]).unwrap();
    assert_eq!(both_verifiers(&[p]), (false, 9, Some(10)));

    // Garbage line.
    let mut g = orig.clone();
    g[2] = "not json".into();
    assert_eq!(case("garbage", &g), (false, 2, Some(3)));

    // A record rewritten with a recomputed hash is caught at the next record.
    let mut f = orig.clone();
    f[3] = forge(&f[3]);
    assert_eq!(case("forged", &f), (false, 4, Some(5)));

    // Missing file.
    assert_eq!(
        both_verifiers(&[dir.path().join("nope")]),
        (false, 0, Some(1))
    );
}

#[actix::test]
async fn verify_detects_problems_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = Audit::start(config(&path, 700)).unwrap();
    write_n(&a, 12).await;
    a.close().await.unwrap();
    let files = chain_files(&path).unwrap();
    assert!(files.len() >= 3);
    let (ok, total, _) = both_verifiers(&files);
    assert!(ok);

    // Files given out of order.
    let mut swapped = files.clone();
    swapped.swap(0, 1);
    assert!(!both_verifiers(&swapped).0);

    // The middle file deleted: fails at the first seq of the file after it.
    let mut gap = files.clone();
    let removed = lines(&gap.remove(1));
    let (ok, _, bad) = both_verifiers(&gap);
    assert!(!ok);
    assert_eq!(
        bad.unwrap(),
        removed.last().unwrap()["seq"].as_u64().unwrap() + 1
    );

    // The last line of a rotated file truncated.
    let first = fs::read(&files[0]).unwrap();
    fs::write(&files[0], &first[..first.len() - 5]).unwrap();
    let n0 = lines_count(&first);
    let (ok, records, bad) = both_verifiers(&files);
    assert!(!ok);
    assert_eq!((records, bad), (n0 - 1, Some(n0)));
    assert!(total > records);
}

fn lines_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[actix::test]
async fn broken_chain_on_start_refuses_to_append() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut orig) = sample_file(dir.path(), 5).await;
    orig[2] = orig[2].replace("\"role\":\"driver\"", "\"role\":\"observer\"");
    write_lines(&path, &orig);
    let before = fs::read(&path).unwrap();

    refused_on_start(&path, &["broken", "seq 3"]).await;
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a broken chain must not be appended to"
    );
}

/// Starts a writer on `path` and checks it refuses to append, for a reason naming `why`.
async fn refused_on_start(path: &Path, why: &[&str]) {
    let a = restart(path, BIG).await;
    assert!(!a.health().is_ok());
    let error = a.health().last_error().unwrap();
    assert!(why.iter().all(|w| error.contains(w)), "{error}");
    let r = a.record(event(1)).await;
    assert!(matches!(r, Err(AuditError::ChainBroken(_))), "{r:?}");
    a.close().await.ok();
}

/// `line` with its subject changed and its own hash recomputed (its `prev` kept).
fn forge(line: &str) -> String {
    let mut v: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
    v.insert("subject".into(), Value::from("forged"));
    let h = attachd_actors::audit::chain::record_hash(&v)
        .unwrap()
        .unwrap();
    v.insert("hash".into(), Value::from(h));
    attachd_actors::audit::canonical::to_string(&Value::Object(v)).unwrap()
}

#[actix::test]
async fn torn_last_line_is_cut_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sample_file(dir.path(), 3).await;
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":4,\"ts\":1");
    fs::write(&path, &bytes).unwrap();
    let a = restart(&path, BIG).await;
    assert!(a.health().is_ok(), "{:?}", a.health().snapshot());
    assert_eq!(a.record(event(4)).await.unwrap(), 4);
    a.close().await.unwrap();
    assert_eq!(both_verifiers(&[path]), (true, 4, None));
}

#[actix::test]
async fn second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = Audit::start(config(&path, BIG)).unwrap();
    let b = Audit::start(config(&path, BIG)).unwrap();
    assert!(a.health().is_ok());
    assert!(!b.health().is_ok());
    assert!(b.health().last_error().unwrap().contains("locked"));
    assert!(matches!(
        b.record(event(1)).await,
        Err(AuditError::Locked(_))
    ));
    assert_eq!(a.record(event(1)).await.unwrap(), 1);
    a.close().await.unwrap();
    b.close().await.ok();
}

#[actix::test]
async fn invalid_event_is_refused_without_failing_health() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = Audit::start(config(&path, BIG)).unwrap();
    let r = a
        .record(AuditEvent::new("attach.connect", "ok").field_u64("seq", 99))
        .await;
    assert!(matches!(r, Err(AuditError::InvalidEvent(_))), "{r:?}");
    assert!(a.health().is_ok());
    assert_eq!(a.record(event(1)).await.unwrap(), 1);
    a.close().await.unwrap();
}

#[actix::test]
async fn concurrent_records_and_detached_records_are_all_chained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = Audit::start(config(&path, 64 * 1024)).unwrap();
    let mut tasks = Vec::new();
    for t in 0..40u64 {
        let a = a.clone();
        tasks.push(actix::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                seqs.push(a.record(event(t * 100 + i)).await.unwrap());
            }
            seqs
        }));
    }
    for i in 0..2000 {
        a.record_detached(event(i));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    a.flush().await.unwrap();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 1000);
    a.close().await.unwrap();
    let files = chain_files(&path).unwrap();
    let (ok, records, _) = both_verifiers(&files);
    assert!(ok);
    assert_eq!(records, 3000 + files.len() as u64 - 1);
}

#[actix::test]
async fn read_events_filters_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = Audit::start(config(&path, 900)).unwrap();
    for i in 0..20u64 {
        let ev = if i % 4 == 0 {
            AuditEvent::new("attach.disconnect", "ok")
                .session_id("s9")
                .field_u64("close_code", 1000)
        } else {
            event(i)
        };
        a.record(ev).await.unwrap();
    }
    a.close().await.unwrap();
    assert!(chain_files(&path).unwrap().len() > 2);

    let q = AuditQuery {
        types: vec!["attach.connect".into()],
        limit: 5,
        ..Default::default()
    };
    let got = read_events(&path, &q).unwrap();
    let ns: Vec<u64> = got.iter().map(|v| v["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, vec![14, 15, 17, 18, 19]);

    let q = AuditQuery {
        session_ids: vec!["s9".into()],
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(read_events(&path, &q).unwrap().len(), 5);

    let q = AuditQuery {
        subjects: vec!["user1".into(), "user2".into()],
        tenant: None,
        types: vec!["attach.connect".into()],
        limit: 1000,
        ..Default::default()
    };
    let got = read_events(&path, &q).unwrap();
    assert!(got.iter().all(|v| v["subject"] != "user0"));
    assert_eq!(got.len(), 10);

    let all = read_events(
        &path,
        &AuditQuery {
            limit: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let seqs: Vec<u64> = all.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(seqs, sorted, "oldest first");
    let future = AuditQuery {
        since_ms: Some(all.last().unwrap()["ts"].as_u64().unwrap() + 1),
        limit: 1000,
        ..Default::default()
    };
    assert!(read_events(&path, &future).unwrap().is_empty());
    assert!(read_events(&path, &AuditQuery::default())
        .unwrap()
        .is_empty());
}

#[test]
fn handle_and_futures_are_send() {
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Audit>();
    let sys = actix::System::new();
    sys.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let a = Audit::start(config(&dir.path().join("audit.log"), BIG)).unwrap();
        let f = a.record(event(1));
        send(&f);
        assert_eq!(f.await.unwrap(), 1);
        let f = a.flush();
        send(&f);
        f.await.unwrap();
        a.close().await.unwrap();
    });
}

#[actix::test]
async fn start_outside_a_system_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let r = std::thread::spawn(move || Audit::start(config(&path, BIG)).map(|_| ()))
        .join()
        .unwrap();
    assert!(matches!(r, Err(AuditError::NoSystem)), "{r:?}");
    assert!(matches!(
        Audit::start(config(&dir.path().join("x"), 10)),
        Err(AuditError::Config(_))
    ));
}

#[actix::test]
async fn crash_between_rotation_rename_and_new_file_is_completed_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = Audit::start(config(&path, 1024)).unwrap();
    write_n(&a, 5).await;
    a.close().await.unwrap();
    // As if the writer died right after renaming the current file.
    let n = chain_files(&path).unwrap().len();
    let target = dir.path().join(format!("audit.log.{n:06}"));
    fs::rename(&path, &target).unwrap();
    let last = lines(&target).pop().unwrap();

    let a = restart(&path, 1024).await;
    assert!(a.health().is_ok(), "{:?}", a.health().snapshot());
    let first = lines(&path).remove(0);
    assert_eq!(first["type"], "audit.rotated");
    assert_eq!(first["prev"], last["hash"]);
    assert_eq!(
        first["rotated_file"],
        Value::from(format!("audit.log.{n:06}"))
    );
    let seq = a.record(event(6)).await.unwrap();
    assert_eq!(seq, last["seq"].as_u64().unwrap() + 2);
    a.close().await.unwrap();
    assert!(both_verifiers(&chain_files(&path).unwrap()).0);
}

#[actix::test]
async fn file_moved_away_while_running_is_not_forked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let moved = dir.path().join("moved.log");
    let a = Audit::start(config(&path, BIG)).unwrap();
    write_n(&a, 2).await;
    fs::rename(&path, &moved).unwrap();
    // The open file is no longer at the path: refuse, and do not start a new chain there.
    assert!(a.record(event(3)).await.is_err());
    let h = a.health().clone();
    actix::clock::sleep(Duration::from_millis(500)).await;
    assert!(!h.is_ok());
    let r = a.record(event(4)).await;
    assert!(r.is_err(), "{r:?}");
    assert!(
        h.last_error().unwrap().contains("broken") || h.last_error().unwrap().contains("moved"),
        "{:?}",
        h.last_error()
    );
    assert!(!path.exists(), "no second chain may be started at the path");
    // Putting the file back heals it, and the chain continues where it was.
    fs::rename(&moved, &path).unwrap();
    wait_until("health ok after the file is back", || h.is_ok()).await;
    assert_eq!(a.record(event(5)).await.unwrap(), 3);
    a.close().await.unwrap();
    assert_eq!(
        both_verifiers(&chain_files(&path).unwrap()),
        (true, 3, None)
    );
}

/// Lines cut off the end at a line boundary leave a chain that verifies by itself; the head
/// file shows the cut: verify reports the first missing seq and a writer refuses to continue
/// (it would reuse the removed seqs).
#[actix::test]
async fn cut_tail_is_reported_by_verify_and_refused_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let (path, orig) = sample_file(dir.path(), 5).await;
    assert!(verify_path(&path).ok);
    write_lines(&path, &orig[..3]);
    let before = fs::read(&path).unwrap();
    assert!(
        verify_files(std::slice::from_ref(&path)).ok,
        "the chain alone cannot see it"
    );
    let r = verify_path(&path);
    assert_eq!(
        (r.ok, r.records, r.first_bad_seq),
        (false, 3, Some(4)),
        "{r:?}"
    );
    assert!(r.message.contains("cut off"), "{}", r.message);

    refused_on_start(&path, &["cut off", "seq 5"]).await;
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a cut chain must not be continued"
    );
}

/// A record replaced at the head's seq (a rewritten, re-chained tail) is refused too.
#[actix::test]
async fn rewritten_head_record_is_refused_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let (path, orig) = sample_file(dir.path(), 3).await;
    let mut forged = orig.clone();
    forged[2] = forge(&orig[2]);
    write_lines(&path, &forged);
    assert!(verify_files(std::slice::from_ref(&path)).ok);
    let r = verify_path(&path);
    assert_eq!((r.ok, r.first_bad_seq), (false, Some(3)), "{r:?}");
    refused_on_start(&path, &["rewritten"]).await;
}

/// A missing or empty log is not a verified one.
#[test]
fn missing_or_empty_logs_do_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("audit.log");
    let r = verify_path(&missing);
    assert_eq!((r.ok, r.first_bad_seq), (false, Some(1)), "{r:?}");
    fs::write(&missing, b"").unwrap();
    let r = verify_path(&missing);
    assert_eq!((r.ok, r.first_bad_seq), (false, Some(1)), "{r:?}");
    assert!(!verify_files(&[]).ok);
}
