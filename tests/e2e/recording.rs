//! Session recording (SPEC §9): a recording read as plain asciicast replays, through the
//! independent emulator, to the driver's screen; input only in `output+input`; markers;
//! rotation; tampering found by `attachd audit verify`; the API's tenancy and scope; `deny`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::judge::{self, Side};
use crate::support::*;

const DONE: &str = "REC-DONE";

/// The header and events of an asciicast v2 file, read without attachd's own parser; times
/// must never go back.
fn read_cast(path: &Path) -> (Value, Vec<(f64, String, String)>) {
    let text = std::fs::read_to_string(path).expect("read recording");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).expect("header json");
    assert_eq!(header["version"], 2, "{header}");
    let mut events = Vec::new();
    let mut last = 0.0;
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}"));
        let t = v[0].as_f64().expect("time");
        assert!(t >= last, "time goes back: {t} after {last}");
        last = t;
        let code = v[1].as_str().expect("code").to_owned();
        assert!(["o", "i", "r", "m"].contains(&code.as_str()), "{l}");
        events.push((t, code, v[2].as_str().expect("data").to_owned()));
    }
    (header, events)
}

/// A session's recording files, oldest first.
fn cast_files(srv: &Server, sid: &str) -> Vec<PathBuf> {
    let dir = srv.recordings_dir().join("acme").join(sid);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// What the driver has seen: the snapshot it joined with and the output after it.
struct Driver {
    ws: Ws,
    size: (u16, u16),
    screen: Vec<u8>,
}

impl Driver {
    async fn attach(srv: &Server, sid: &str) -> Driver {
        let mut ws = attach_as(srv, &ALICE, sid, "driver").await;
        let hello = expect_json(&mut ws, "hello", 10).await;
        assert_eq!(hello["control"]["you"], true, "{hello}");
        let snap = expect_json(&mut ws, "snapshot", 10).await;
        let size = (
            snap["cols"].as_u64().expect("cols") as u16,
            snap["rows"].as_u64().expect("rows") as u16,
        );
        let Seen::Bin(payload) = next(&mut ws, 10).await else {
            panic!("no snapshot payload")
        };
        Driver {
            ws,
            size,
            screen: payload,
        }
    }

    /// Types `line` and reads until the output contains `needle`.
    async fn run(&mut self, line: &str, needle: &str) {
        send_bin(&mut self.ws, line.as_bytes()).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let from = self.screen.len();
        loop {
            assert!(Instant::now() < deadline, "no {needle:?} after {line:?}");
            match next(&mut self.ws, 30).await {
                Seen::Bin(b) => self.screen.extend_from_slice(&b),
                Seen::Closed(c) => panic!("closed {c:?}"),
                Seen::Json(_) => {}
            }
            if String::from_utf8_lossy(&self.screen[from..]).contains(needle) {
                break;
            }
        }
        // The prompt after it may come in a later frame: read until the shell is quiet.
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(700), self.ws.next()).await
        {
            if let Message::Binary(b) = m {
                self.screen.extend_from_slice(&b);
            }
        }
    }
}

/// A driver runs commands with colours, wide characters and scrolling, then detaches; the
/// server drains so the last chunk is sealed.
async fn recorded_session(srv: &mut Server) -> (String, Driver) {
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = Driver::attach(srv, &sid).await;
    d.run(
        "printf '\\033[1;31mred\\033[0m \\342\\202\\254 \\346\\274\\242\\345\\255\\227 %s\\n' wide; seq 1 40; echo REC-''DONE\r",
        DONE,
    )
    .await;
    (sid, d)
}

fn drain(srv: &mut Server) {
    let st = srv.terminate(Duration::from_secs(15));
    assert!(
        st.is_some_and(|s| s.success()),
        "attachd did not drain: {st:?}"
    );
}

#[tokio::test]
async fn a_recording_replays_to_the_drivers_screen_with_markers_and_no_input() {
    let mut srv = Server::start(Opts::default());
    let (sid, d) = recorded_session(&mut srv).await;
    let ticket = srv.api(&ALICE).ticket(&sid, "observer").await;
    let mut o = attach(&srv, &sid, &ticket).await;
    expect_json(&mut o, "snapshot", 10).await;
    drop(o);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut srv);

    let files = cast_files(&srv, &sid);
    assert_eq!(files.len(), 1, "{files:?}");
    let (header, events) = read_cast(&files[0]);
    assert_eq!(header["title"], sid.as_str(), "{header}");
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    assert!(
        header["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000),
        "{header}"
    );
    let output: String = events
        .iter()
        .filter(|e| e.1 == "o")
        .map(|e| e.2.as_str())
        .collect();
    let report = judge::compare(
        &Side {
            cols: d.size.0,
            rows: d.size.1,
            parts: &[&d.screen],
        },
        &Side {
            cols: 80,
            rows: 24,
            parts: &[output.as_bytes()],
        },
    );
    judge::assert_equal(
        &report,
        "the recording replayed against the driver's screen",
    );
    assert!(
        events.iter().all(|e| e.1 != "i"),
        "output mode records no input"
    );
    let markers: Vec<&str> = events
        .iter()
        .filter(|e| e.1 == "m")
        .map(|e| e.2.as_str())
        .collect();
    for want in [
        "join driver alice",
        "control acquired alice",
        "join observer alice",
    ] {
        assert!(markers.contains(&want), "no marker {want:?} in {markers:?}");
    }
    // No credential ever reaches a recording or the audit log.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let audit = srv.audit_text();
    for secret in [ALICE.secret, ticket.as_str()] {
        assert!(!text.contains(secret) && !audit.contains(secret));
    }
    let (ok, report) = cli_verify(&srv.audit_path(), None);
    assert!(ok, "{report}");
    assert!(
        report["recordings"]["chunks"].as_u64() >= Some(1),
        "{report}"
    );
}

#[tokio::test]
async fn output_plus_input_records_what_was_typed_and_record_text_shows_it() {
    let mut srv = Server::start(Opts::default().env("ATTACHD__RECORDING__MODE", "output+input"));
    let (sid, _d) = recorded_session(&mut srv).await;
    drain(&mut srv);
    let files = cast_files(&srv, &sid);
    let (_, events) = read_cast(&files[0]);
    let typed: String = events
        .iter()
        .filter(|e| e.1 == "i")
        .map(|e| e.2.as_str())
        .collect();
    assert!(typed.contains("seq 1 40; echo REC-''DONE\r"), "{typed:?}");
    let out = std::process::Command::new(bin())
        .args(["record", "text"])
        .arg(&files[0])
        .output()
        .expect("attachd record text");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\n40\n") && text.contains("REC-DONE"),
        "{text}"
    );
    assert!(text.contains("--- typed ---\nprintf"), "{text}");
}

/// The `recording.chunk` records of one file, in order.
fn chunks_of(srv: &Server, file: &str) -> Vec<Value> {
    srv.audit_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["type"] == "recording.chunk" && r["file"] == file)
        .collect()
}

/// Changes a recording file in place.
type Tamper<'a> = Box<dyn Fn(&Path) + 'a>;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn rotation_and_every_kind_of_tampering_are_found_at_the_right_file_and_chunk() {
    let mut srv = Server::start(
        Opts::default()
            // A chunk is sealed at a quarter of the file size (256 KiB) plus at most one 64 KiB
            // read (escaped, under 90 KB): every file holds at least 3 chunks.
            .env("ATTACHD__RECORDING__MAX_FILE_BYTES", "1 MiB")
            .env("ATTACHD__WS__MAX_OUTBOUND_BYTES", "67108864"),
    );
    let api = srv.api(&ALICE);
    let other = api.create_session().await;
    let sid = api.create_session().await;
    let mut d = Driver::attach(&srv, &sid).await;
    // About 1.6 MB of output (2 MB as asciicast): several chunks per file, several files.
    d.run("seq 1 250000; echo REC-''DONE\r", DONE).await;
    drop(d);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drain(&mut srv);

    let files = cast_files(&srv, &sid);
    assert!(files.len() >= 2, "rotated at 1 MiB: {files:?}");
    let mut output = String::new();
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() <= 2 * 1024 * 1024,
            "{f:?} was not rotated"
        );
        let (h, ev) = read_cast(f);
        assert_eq!(h["title"], sid.as_str());
        output.extend(ev.iter().filter(|e| e.1 == "o").map(|e| e.2.clone()));
    }
    assert!(
        output.contains("\n249999\r\n250000\r\n"),
        "the files, in order, hold all the output"
    );
    let (ok, report) = cli_verify(&srv.audit_path(), None);
    assert!(ok, "{report}");

    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    let first = name(&files[0]);
    let chunks = chunks_of(&srv, &first);
    assert!(chunks.len() >= 3, "{chunks:?}");
    let range = |i: usize| {
        let c = &chunks[i];
        let off = c["offset"].as_u64().unwrap() as usize;
        (off, off + c["bytes"].as_u64().unwrap() as usize)
    };
    let last = chunks.len() - 1;
    let cases: Vec<(&str, Tamper, u64)> = vec![
        (
            "an edited byte",
            Box::new(|p: &Path| {
                let mut b = std::fs::read(p).unwrap();
                b[range(1).0 + 5] ^= 0x01;
                std::fs::write(p, b).unwrap();
            }),
            1,
        ),
        (
            "a missing chunk",
            Box::new(|p: &Path| {
                let mut b = std::fs::read(p).unwrap();
                b.drain(range(1).0..range(1).1);
                std::fs::write(p, b).unwrap();
            }),
            1,
        ),
        (
            "a cut tail",
            Box::new(|p: &Path| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..range(last).0 + 3]).unwrap();
            }),
            last as u64,
        ),
    ];
    for (what, tamper, chunk) in cases {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&srv.recordings_dir(), copy.path());
        tamper(&copy.path().join("acme").join(&sid).join(&first));
        let (ok, report) = cli_verify(&srv.audit_path(), Some(copy.path()));
        assert!(!ok, "{what} went unnoticed: {report}");
        let bad = &report["recordings"]["first_bad"];
        assert_eq!(bad["file"], first.as_str(), "{what}: {report}");
        assert_eq!(bad["session_id"], sid.as_str(), "{what}: {report}");
        assert_eq!(bad["chunk"], chunk, "{what}: {report}");
    }
    // A file moved to another session: missing where its records put it, and unrecorded
    // where it lies.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&srv.recordings_dir(), copy.path());
    let acme = copy.path().join("acme");
    std::fs::rename(acme.join(&sid).join(&first), acme.join(&other).join(&first)).unwrap();
    let (ok, report) = cli_verify(&srv.audit_path(), Some(copy.path()));
    assert!(!ok, "a moved file went unnoticed: {report}");
    let bad = &report["recordings"]["first_bad"];
    assert_eq!(bad["file"], first.as_str(), "{report}");
    assert_eq!(bad["chunk"], 0, "{report}");
}

#[tokio::test]
async fn the_recordings_api_is_tenant_isolated_scoped_and_outlives_the_session() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let mut d = Driver::attach(&srv, &sid).await;
    d.run("echo REC-''DONE\r", DONE).await;
    let path = format!("/api/v1/sessions/{sid}/recordings");
    // The first chunk is sealed within a second.
    let mut list = api.call("GET", &path, None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while list.body[0]["verified"] != true && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        list = api.call("GET", &path, None).await;
    }
    assert_eq!(list.status, 200, "{}", list.text);
    let entry = &list.body[0];
    let file = entry["file"].as_str().expect("file").to_owned();
    assert!(
        entry["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{entry}"
    );
    assert_eq!(entry["verified"], true, "{entry}");

    let get = api.call("GET", &format!("{path}/{file}"), None).await;
    assert_eq!(get.status, 200);
    assert_eq!(
        get.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-asciicast")
    );
    assert!(get.text.starts_with("{\"") && get.text.contains(DONE));

    for p in [path.clone(), format!("{path}/{file}")] {
        let r = srv.api(&MALLORY).call("GET", &p, None).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, "not_found"),
            "{p}: {}",
            r.text
        );
        let r = srv.api(&OLIVE).call("GET", &p, None).await;
        assert_eq!(
            (r.status, r.error_code()),
            (403, "forbidden"),
            "{p}: {}",
            r.text
        );
    }
    for bad in [
        "..%2F..%2Faudit.log",
        "%2e%2e",
        "..",
        "20260101T000000.000Z-00000000.cast",
        "x.cast",
    ] {
        let r = api.call("GET", &format!("{path}/{bad}"), None).await;
        assert_eq!(r.status, 404, "{bad}: {}", r.text);
        assert!(!r.text.contains("seq"), "{bad} reached a file: {}", r.text);
    }
    // The session ends; its recordings stay listable.
    drop(d);
    let r = api
        .call("DELETE", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, 204);
    let after = api.call("GET", &path, None).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(after.body[0]["file"], file.as_str());
    let r = srv.api(&MALLORY).call("GET", &path, None).await;
    assert_eq!(r.status, 404);
    let r = api
        .call("GET", "/api/v1/sessions/s-never/recordings", None)
        .await;
    assert_eq!(r.status, 404);
}

/// A recording directory that cannot exist: a path under a regular file.
fn unwritable(srv_dir: &Path) -> String {
    let file = srv_dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    file.join("recordings").display().to_string()
}

#[tokio::test]
async fn an_unwritable_recording_dir_refuses_attaches_under_deny_and_only_logs_under_log() {
    let base = tempfile::tempdir().unwrap();
    let dir = unwritable(base.path());
    let srv = Server::start(Opts::default().env("ATTACHD__RECORDING__DIR", &dir));
    let api = srv.api(&ALICE);
    let ready = api.call("GET", "/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(
        ready.body["checks"]["recording"], "failing",
        "{}",
        ready.text
    );
    let sid = api.create_session().await;
    let t = api.ticket(&sid, "driver").await;
    let (st, body) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("\"recording_unavailable\""), "{body}");
    let metrics = srv.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("attachd_recording_write_errors_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        srv.logs().contains("cannot be written"),
        "the failure is logged"
    );
    srv.wait_audit("refused attach", |r| {
        r["type"] == "attach.connect" && r["reason"] == "recording_unavailable"
    })
    .await;

    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__RECORDING__DIR", &dir)
            .env("ATTACHD__RECORDING__ON_FAILURE", "log"),
    );
    let api = srv.api(&ALICE);
    let ready = api.call("GET", "/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(
        ready.body["checks"]["recording"], "degraded",
        "{}",
        ready.text
    );
    let sid = api.create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut ws, "hello", 10).await;
    send_text(&mut ws, json!({"type": "resize", "cols": 100, "rows": 30})).await;
}
