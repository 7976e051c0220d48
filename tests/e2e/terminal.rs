//! Sessions are terminals (SPEC §8): a late joiner's screen judged cell by cell against the
//! driver's by an independent emulator, resume without gaps, `resume_from` bounds, resize.
//!
//! Over 500 lines: the screen-fidelity cases share the pyte judge and their session fixtures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::judge::{self, Side};
use crate::support::*;

/// The programs' markers (OSC 9 notices, see `tests/tools/programs/common.py`).
const READY: &[u8] = b"\x1b]9;attachd-test:ready\x07";
const PHASE1: &[u8] = b"\x1b]9;attachd-test:phase1\x07";
const DONE: &[u8] = b"\x1b]9;attachd-test:done\x07";
const MIB: u64 = 1 << 20;
/// `session.history_lines` (the default): the judge compares that much history too.
const HISTORY: usize = 1000;

/// The Python interpreter that runs the test programs (an absolute path for the PTY).
fn python() -> String {
    let out = python3(&["-c", "import sys; print(sys.executable)"]);
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "python3 printed no executable path");
    path
}

/// The argv of `tests/tools/programs/NAME.py ARGS...`.
fn program(name: &str, args: &[&str]) -> Vec<String> {
    let script = repo_root().join(format!("tests/tools/programs/{name}.py"));
    let mut argv = vec![python(), script.display().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// A server that may run `argv`, with outbound queues large enough that a test client that
/// reads as fast as it can is never cut while a flood passes.
fn server_for(argv: &[String], opts: Opts) -> Server {
    let toml = format!(
        "[session.local]\nallowed_commands = [{}]",
        serde_json::to_string(argv).expect("argv")
    );
    Server::start(
        opts.env("ATTACHD__WS__MAX_OUTBOUND_BYTES", &(64 * MIB).to_string())
            .toml(&toml),
    )
}

async fn create_session(srv: &Server, argv: &[String]) -> String {
    let r = srv
        .api(&ALICE)
        .call("POST", "/api/v1/sessions", Some(json!({ "command": argv })))
        .await;
    assert_eq!(r.status, 201, "create session: {}", r.text);
    r.body["id"].as_str().expect("id").to_string()
}

/// What one participant has seen: output since its last `snapshot` (or since `hello`),
/// as a client that resets its terminal on `snapshot` renders it.
struct Rec {
    ws: Ws,
    hello: Value,
    /// Output offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
    /// The last `snapshot` frame and its payload.
    snapshot: Option<(Value, Vec<u8>)>,
    snapshots: usize,
    /// The session's size as `hello` and `size` frames told it.
    size: (u16, u16),
    /// A `size` frame arrived after output was recorded (the judge renders one size).
    resized_mid_stream: bool,
    sizes_seen: Vec<(u16, u16)>,
    errors: Vec<Value>,
    closed: Option<Option<u16>>,
    /// `offset()`, readable while the recorder runs on another task.
    progress: Arc<AtomicU64>,
}

impl Rec {
    /// Attaches with `ticket` and reads `hello`.
    async fn attach(srv: &Server, sid: &str, ticket: &str) -> Rec {
        let mut ws = attach(srv, sid, ticket).await;
        let hello = match next(&mut ws, 10).await {
            Seen::Json(v) if v["type"] == "hello" => v,
            other => panic!("first frame is not hello: {other:?}"),
        };
        let start = hello["output_offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("hello has no output_offset: {hello}"));
        let size = dims(&hello["size"]).unwrap_or_else(|| panic!("hello has no size: {hello}"));
        Rec {
            ws,
            hello,
            start,
            bytes: Vec::new(),
            snapshot: None,
            snapshots: 0,
            size,
            resized_mid_stream: false,
            sizes_seen: Vec::new(),
            errors: Vec::new(),
            closed: None,
            progress: Arc::new(AtomicU64::new(start)),
        }
    }

    async fn attach_as(srv: &Server, tok: &Tok, sid: &str, role: &str) -> Rec {
        let t = srv.api(tok).ticket(sid, role).await;
        Rec::attach(srv, sid, &t).await
    }

    fn offset(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Reads one frame (within `secs`); false once the connection has closed.
    async fn step(&mut self, secs: u64) -> bool {
        match next(&mut self.ws, secs).await {
            Seen::Bin(b) => self.bytes.extend_from_slice(&b),
            Seen::Json(v) if v["type"] == "snapshot" => {
                let payload = match next(&mut self.ws, secs).await {
                    Seen::Bin(b) => b,
                    other => panic!("snapshot {v} is not followed by a binary frame: {other:?}"),
                };
                self.start = v["offset"].as_u64().expect("snapshot offset");
                self.size = dims(&v).expect("snapshot cols and rows");
                self.bytes.clear();
                self.resized_mid_stream = false;
                self.snapshot = Some((v, payload));
                self.snapshots += 1;
            }
            Seen::Json(v) if v["type"] == "size" => {
                let size = dims(&v).expect("size cols and rows");
                self.sizes_seen.push(size);
                if size != self.size && !self.bytes.is_empty() {
                    self.resized_mid_stream = true;
                }
                self.size = size;
            }
            Seen::Json(v) if v["type"] == "error" => self.errors.push(v),
            Seen::Json(_) => {}
            Seen::Closed(c) => {
                self.closed = Some(c);
                return false;
            }
        }
        self.progress.store(self.offset(), Ordering::Relaxed);
        true
    }

    /// Reads until `done(self)` holds; panics after `secs` or on close.
    async fn read_while(&mut self, what: &str, secs: u64, done: impl Fn(&Rec) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            assert!(
                left > 0,
                "{what}: not reached within {secs}s (at offset {})",
                self.offset()
            );
            assert!(
                self.step(left).await,
                "{what}: closed ({:?}) at offset {}",
                self.closed,
                self.offset()
            );
        }
    }

    /// Reads until the output ends with `marker` (programs print their markers last).
    async fn read_to_marker(&mut self, marker: &'static [u8], secs: u64) {
        let what = String::from_utf8_lossy(marker).into_owned();
        self.read_while(&what, secs, |r| r.bytes.ends_with(marker))
            .await;
    }

    /// Reads until at least `offset`.
    async fn read_to_offset(&mut self, offset: u64, secs: u64) {
        self.read_while(&format!("offset {offset}"), secs, |r| r.offset() >= offset)
            .await;
    }

    /// Reads until a `snapshot` has arrived.
    async fn read_to_snapshot(&mut self, secs: u64) -> Value {
        self.read_while("snapshot", secs, |r| r.snapshot.is_some())
            .await;
        self.snapshot.as_ref().expect("snapshot").0.clone()
    }

    async fn send_bin(&mut self, b: &[u8]) {
        send_bin(&mut self.ws, b).await;
    }

    async fn send_text(&mut self, v: Value) {
        send_text(&mut self.ws, v).await;
    }
}

fn dims(v: &Value) -> Option<(u16, u16)> {
    Some((v["cols"].as_u64()? as u16, v["rows"].as_u64()? as u16))
}

/// The driver, attached while the program has printed at most READY: its raw output from
/// offset 0 is the reference.
async fn driver_from_start(srv: &Server, sid: &str, size: Option<(u16, u16)>) -> Rec {
    let mut d = Rec::attach_as(srv, &ALICE, sid, "driver").await;
    assert_eq!(d.hello["control"]["you"], true, "{}", d.hello);
    if d.start == 0 {
        d.read_to_marker(READY, 30).await;
    } else {
        // Joined after READY (its snapshot shows a blank screen): the output so far is known.
        assert_eq!(
            d.start,
            READY.len() as u64,
            "the program wrote more: {}",
            d.hello
        );
        d.read_to_snapshot(10).await;
        d.start = 0;
        d.bytes = READY.to_vec();
    }
    assert_eq!(d.bytes, READY, "output before the first go");
    if let Some((cols, rows)) = size {
        d.send_text(json!({"type": "resize", "cols": cols, "rows": rows}))
            .await;
        d.read_while("size frame", 10, |r| r.size == (cols, rows))
            .await;
        // READY left nothing on the screen: rendering it at the new size changes nothing.
        d.resized_mid_stream = false;
    }
    d
}

/// `a == b`, reported as the first differing offset rather than megabytes of bytes.
fn assert_same_bytes(a: &[u8], b: &[u8], what: &str) {
    if a != b {
        let at = a
            .iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: {} and {} bytes, first difference at {at}: {:?} vs {:?}",
            a.len(),
            b.len(),
            String::from_utf8_lossy(&a[at..(at + 40).min(a.len())]),
            String::from_utf8_lossy(&b[at..(at + 40).min(b.len())]),
        );
    }
}

/// Both have reached the end of the program's output: the observer's live bytes are the
/// driver's from its snapshot on, and its screen (snapshot, then live bytes) is the driver's.
async fn assert_observer_sees_drivers_screen(d: &mut Rec, o: &mut Rec, what: &str) {
    let end = d.offset();
    o.read_to_offset(end, 120).await;
    assert_eq!(
        o.offset(),
        end,
        "{what}: the observer got more output than the driver"
    );
    let (snap, payload) = o.snapshot.clone().expect("the observer got no snapshot");
    assert!(
        !o.resized_mid_stream && !d.resized_mid_stream,
        "{what}: resized"
    );
    assert_eq!(o.size, d.size, "{what}: snapshot size {snap}");
    assert_same_bytes(
        &o.bytes,
        &d.bytes[(o.start - d.start) as usize..],
        &format!("{what}: live output after the snapshot at {}", o.start),
    );
    let report = judge::compare_with_history(
        &Side {
            cols: d.size.0,
            rows: d.size.1,
            parts: &[&d.bytes],
        },
        &Side {
            cols: o.size.0,
            rows: o.size.1,
            parts: &[&payload, &o.bytes],
        },
        HISTORY,
    );
    judge::assert_equal(
        &report,
        &format!("{what} (observer joined at offset {})", snap["offset"]),
    );
}

/// A session of `argv` whose driver has seen phase 1, and an observer that joined then.
async fn observer_after_phase1(
    srv: &Server,
    argv: &[String],
    size: Option<(u16, u16)>,
) -> (String, Rec, Rec) {
    let sid = create_session(srv, argv).await;
    let mut d = driver_from_start(srv, &sid, size).await;
    d.send_bin(b"g").await;
    d.read_to_marker(PHASE1, 60).await;
    // The emulator is fed beside the output path and may not have caught up yet: its snapshot
    // is then older and the ring's bytes follow it. Join again until the snapshot carries at
    // least half of phase 1 (else the test would check the ring, not the snapshot).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut o = Rec::attach_as(srv, &OLIVE, &sid, "observer").await;
        o.read_to_snapshot(10).await;
        if o.start >= d.offset() / 2 {
            return (sid, d, o);
        }
        assert!(
            Instant::now() < deadline,
            "every snapshot is older than half of phase 1 (last at {}, driver at {})",
            o.start,
            d.offset()
        );
        drop(o);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A program in two phases: the observer joins between them, then both see phase 2.
async fn late_joiner_after_phase1(name: &str, args: &[&str], size: Option<(u16, u16)>) {
    let argv = program(name, args);
    let srv = server_for(&argv, Opts::default());
    let (_sid, mut d, mut o) = observer_after_phase1(&srv, &argv, size).await;
    let snap = o.snapshot.as_ref().expect("snapshot").0.clone();
    assert_eq!(snap["reason"], "join", "{snap}");
    assert_eq!(snap["offset"], o.hello["output_offset"], "{snap}");
    // The program waits for its second go, so the session is where the driver is.
    let at = snap["offset"].as_u64().unwrap();
    assert!(at <= d.offset(), "{snap} (driver at {})", d.offset());

    d.send_bin(b"g").await;
    d.read_to_marker(DONE, 60).await;
    assert_observer_sees_drivers_screen(&mut d, &mut o, name).await;
}

#[tokio::test]
async fn late_joiner_after_200_kb_of_status_line_updates_sees_the_drivers_screen() {
    late_joiner_after_phase1("updater", &["--kb", "200"], None).await;
}

#[tokio::test]
async fn late_joiner_sees_the_alternate_screen_colours_and_input_modes() {
    late_joiner_after_phase1("altscreen", &[], Some((100, 30))).await;
}

#[tokio::test]
async fn late_joiner_keeps_the_scroll_region_of_the_program() {
    late_joiner_after_phase1("scrollregion", &[], None).await;
}

#[tokio::test]
async fn late_joiner_sees_wide_characters() {
    late_joiner_after_phase1("unicode", &["--precomposed"], Some((90, 20))).await;
}

#[tokio::test]
async fn late_joiner_sees_combining_characters() {
    late_joiner_after_phase1("unicode", &[], Some((90, 20))).await;
}

/// Reads `d` on its own task until the program's last marker; `progress` follows it.
fn read_in_background(mut d: Rec, secs: u64) -> tokio::task::JoinHandle<Rec> {
    tokio::spawn(async move {
        d.read_to_marker(DONE, secs).await;
        d
    })
}

async fn wait_progress(progress: &AtomicU64, at_least: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while progress.load(Ordering::Relaxed) < at_least {
        assert!(Instant::now() < deadline, "output did not reach {at_least}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn late_joiner_during_a_20_mib_flood_sees_the_drivers_screen() {
    let argv = program("flood", &["--mb", "20"]);
    let srv = server_for(&argv, Opts::default());
    let sid = create_session(&srv, &argv).await;
    let mut d = driver_from_start(&srv, &sid, None).await;
    d.send_bin(b"g").await;
    let progress = d.progress.clone();
    let driver = read_in_background(d, 240);
    wait_progress(&progress, 6 * MIB, 120).await;

    let mut o = Rec::attach_as(&srv, &OLIVE, &sid, "observer").await;
    let snap = o.read_to_snapshot(30).await;
    assert_eq!(snap["reason"], "join", "{snap}");
    let joined = snap["offset"].as_u64().unwrap();
    o.read_to_marker(DONE, 240).await;
    let mut d = driver.await.expect("driver task");
    assert!(
        joined < d.offset() - 4 * MIB,
        "the observer joined at {joined}, not during the flood (it ended at {})",
        d.offset()
    );
    assert_observer_sees_drivers_screen(&mut d, &mut o, "flood").await;
}

/// Server options for the resume tests: a ring of `replay` bytes, and a flow window wide
/// enough that the observer is never resynced (the test is about resume, not resync).
fn resume_server(argv: &[String], replay: u64) -> Server {
    server_for(
        argv,
        Opts::default()
            .env("ATTACHD__SESSION__REPLAY_BYTES", &replay.to_string())
            .env("ATTACHD__FLOW__WINDOW_BYTES", &(64 * MIB).to_string()),
    )
}

/// A ticket for `role` with `resume_from` set to `from` (any JSON value).
async fn resume_ticket(srv: &Server, sid: &str, tok: &Tok, from: Value) -> Resp {
    srv.api(tok)
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "observer", "resume_from": from})),
        )
        .await
}

async fn resume(srv: &Server, sid: &str, from: u64) -> Rec {
    let r = resume_ticket(srv, sid, &OLIVE, json!(from)).await;
    assert_eq!(r.status, 201, "resume ticket: {}", r.text);
    Rec::attach(srv, sid, r.body["ticket"].as_str().expect("ticket")).await
}

#[tokio::test]
async fn resume_after_a_dropped_connection_mid_flood_misses_and_repeats_no_byte() {
    let argv = program("flood", &["--mb", "0.5", "--mb2", "20"]);
    let srv = resume_server(&argv, 64 * MIB);
    let (sid, mut d, mut o) = observer_after_phase1(&srv, &argv, None).await;
    let joined = o.start;

    d.send_bin(b"g").await;
    let driver = read_in_background(d, 240);
    o.read_while("5 MiB into the flood", 120, |r| {
        r.offset() > joined + 5 * MIB
    })
    .await;
    // Gone without a close frame: the TCP connection just drops.
    let Rec {
        ws,
        start,
        bytes: before,
        ..
    } = o;
    let dropped_at = start + before.len() as u64;
    drop(ws);

    let mut o2 = resume(&srv, &sid, dropped_at).await;
    assert_eq!(o2.hello["resumed"], true, "{}", o2.hello);
    assert_eq!(o2.start, dropped_at, "{}", o2.hello);
    o2.read_to_marker(DONE, 240).await;
    let d = driver.await.expect("driver task");
    assert_eq!(o2.offset(), d.offset());
    assert_eq!(
        o2.snapshots, 0,
        "a resume within the ring sends no snapshot"
    );
    let mut seen = before;
    seen.extend_from_slice(&o2.bytes);
    assert_same_bytes(
        &seen,
        &d.bytes[start as usize..],
        "output before the drop, then after the resume",
    );
}

#[tokio::test]
async fn resume_from_an_offset_the_ring_no_longer_holds_gets_a_resume_gap_snapshot() {
    let argv = program("flood", &["--mb", "0.25", "--mb2", "2"]);
    let replay = 256 * 1024;
    let srv = resume_server(&argv, replay);
    let (sid, mut d, o) = observer_after_phase1(&srv, &argv, None).await;
    let left_at = o.offset();
    drop(o);

    d.send_bin(b"g").await;
    d.read_to_marker(DONE, 120).await;
    let end = d.offset();
    assert!(end - left_at > 2 * replay, "the flood is not past the ring");

    let mut o2 = resume(&srv, &sid, left_at).await;
    assert_eq!(o2.hello["resumed"], false, "{}", o2.hello);
    let snap = o2.read_to_snapshot(10).await;
    assert_eq!(snap["reason"], "resume_gap", "{snap}");
    assert_eq!(snap["offset"], o2.hello["output_offset"], "{snap}");
    // Past what the ring holds; the bytes from there to the end follow it (checked below).
    let at = snap["offset"].as_u64().unwrap();
    assert!(
        at > left_at + replay && at <= end,
        "{snap} (left at {left_at}, end {end})"
    );
    assert_eq!(snap["skipped_bytes"], at - left_at, "{snap}");
    assert_observer_sees_drivers_screen(&mut d, &mut o2, "resume gap").await;
}

#[tokio::test]
async fn resume_from_beyond_the_output_negative_or_not_a_number_is_invalid_request() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = Rec::attach_as(&srv, &ALICE, &sid, "driver").await;
    d.send_bin(b"echo ready-$((6*7))\n").await;
    d.read_while("echo", 10, |r| {
        String::from_utf8_lossy(&r.bytes).contains("ready-42")
    })
    .await;
    let now = d.offset();
    for bad in [
        json!(now + 1_000_000),
        json!(u64::MAX),
        json!(-1),
        json!("12"),
        json!("abc"),
        json!(1.5),
        json!(true),
        json!([0]),
    ] {
        let r = resume_ticket(&srv, &sid, &OLIVE, bad.clone()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "resume_from {bad}: {}",
            r.text
        );
        assert!(r.body["message"].is_string(), "{}", r.text);
    }
    for good in [json!(0), json!(now)] {
        let r = resume_ticket(&srv, &sid, &OLIVE, good.clone()).await;
        assert_eq!(r.status, 201, "resume_from {good}: {}", r.text);
    }
}

/// What `echo TAG:$(stty size):` printed in `out` ("rows cols"), once it has.
fn stty_output(out: &[u8], tag: &str) -> Option<String> {
    let text = String::from_utf8_lossy(out);
    // The echoed command line has `TAG:$(`; the printed line has digits there.
    text.split(&format!("{tag}:"))
        .skip(1)
        .find(|rest| rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains(':'))
        .map(|rest| rest[..rest.find(':').unwrap()].to_string())
}

/// Runs `stty size` in the session through the driver; returns "rows cols".
async fn stty_size(d: &mut Rec, tag: &str) -> String {
    let from = d.bytes.len();
    d.send_bin(format!("echo {tag}:$(stty size):\n").as_bytes())
        .await;
    d.read_while("stty size", 10, |r| {
        stty_output(&r.bytes[from..], tag).is_some()
    })
    .await;
    stty_output(&d.bytes[from..], tag).expect("stty output")
}

#[tokio::test]
async fn the_holders_resize_reaches_the_pty_and_everyone_an_observers_is_ignored() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = Rec::attach_as(&srv, &ALICE, &sid, "driver").await;
    let mut o = Rec::attach_as(&srv, &OLIVE, &sid, "observer").await;
    assert_eq!(d.size, (80, 24), "{}", d.hello);
    assert_eq!(stty_size(&mut d, "before").await, "24 80");

    d.send_text(json!({"type": "resize", "cols": 100, "rows": 30}))
        .await;
    d.read_while("driver's size frame", 10, |r| r.size == (100, 30))
        .await;
    o.read_while("observer's size frame", 10, |r| r.size == (100, 30))
        .await;
    assert_eq!(stty_size(&mut d, "driven").await, "30 100");

    o.send_text(json!({"type": "resize", "cols": 50, "rows": 10}))
        .await;
    // The driver's next command runs after the observer's resize was handled.
    assert_eq!(stty_size(&mut d, "after").await, "30 100");
    let end = d.offset();
    o.read_to_offset(end, 10).await;
    assert!(
        o.errors.is_empty(),
        "observer resize answered: {:?}",
        o.errors
    );
    assert_eq!(
        o.sizes_seen,
        vec![(100, 30)],
        "only the holder's resize is announced"
    );
    assert_eq!(d.sizes_seen, vec![(100, 30)]);

    let late = Rec::attach_as(&srv, &BOB, &sid, "observer").await;
    assert_eq!(late.size, (100, 30), "{}", late.hello);
}
