//! The operator's dashboard API: the tenant's sessions with holder, counts and idle deadline,
//! thumbnails that match the driver's screen (judged by pyte) and are built at most once a
//! second, and the live event stream.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The rows of a thumbnail as text, trailing blanks dropped.
fn thumb_rows(t: &Value) -> Vec<String> {
    t["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|runs| {
            runs.as_array()
                .expect("runs")
                .iter()
                .map(|r| r["text"].as_str().expect("text"))
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// Collects a participant's output for `quiet` after the last frame (or `max` in all).
async fn drain_output(ws: &mut Ws, into: &mut Vec<u8>, quiet: Duration, max: Duration) {
    let end = Instant::now() + max;
    while Instant::now() < end {
        match tokio::time::timeout(quiet, futures_util::StreamExt::next(ws)).await {
            Err(_) => return,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b)))) => {
                into.extend_from_slice(&b)
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => return,
        }
    }
}

fn session<'a>(d: &'a Value, sid: &str) -> &'a Value {
    d["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["id"] == sid)
        .unwrap_or_else(|| panic!("{sid} missing from {d}"))
}

#[tokio::test]
async fn dashboard_lists_the_tenants_sessions_with_holder_counts_and_deadline() {
    let srv = Server::start(Opts::default());
    let alice = srv.api(&ALICE);
    let mallory = srv.api(&MALLORY);
    let busy = alice.create_session().await;
    let quiet = alice.create_session().await;
    let theirs = mallory.create_session().await;
    let mut driver = attach_as(&srv, &ALICE, &busy, "driver").await;
    expect_json(&mut driver, "hello", 5).await;
    let mut observer = attach_as(&srv, &BOB, &busy, "observer").await;
    expect_json(&mut observer, "hello", 5).await;

    let d = alice.call("GET", "/api/v1/dashboard", None).await;
    assert_eq!(d.status, 200, "{}", d.text);
    let ids: BTreeSet<&str> = d.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([busy.as_str(), quiet.as_str()]));
    assert_eq!(d.body["viewer"]["subject"], "alice");
    let b = session(&d.body, &busy);
    assert_eq!(b["holder"]["subject"], "alice", "{b}");
    assert_eq!(
        (b["drivers"].as_u64(), b["observers"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(b["backend"], "local");
    assert_eq!(b["command"], serde_json::json!(["/bin/sh"]));
    let deadline = b["idle_deadline"].as_str().expect("idle_deadline");
    assert!(deadline > b["created_at"].as_str().unwrap(), "{b}");
    assert!(
        b.get("thumbnail").is_none(),
        "thumbnails only when asked: {b}"
    );
    let q = session(&d.body, &quiet);
    assert!(q["holder"].is_null(), "{q}");
    assert_eq!(
        (q["drivers"].as_u64(), q["observers"].as_u64()),
        (Some(0), Some(0))
    );

    let m = mallory.call("GET", "/api/v1/dashboard", None).await;
    let theirs_only: Vec<&str> = m.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(theirs_only, vec![theirs.as_str()]);
    let t = mallory
        .call("GET", &format!("/api/v1/sessions/{busy}/thumbnail"), None)
        .await;
    assert_eq!((t.status, t.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn thumbnail_is_the_drivers_screen_with_its_attributes() {
    let srv = Server::start(Opts::default());
    let alice = srv.api(&ALICE);
    let sid = alice.create_session().await;
    let mut driver = attach_as(&srv, &ALICE, &sid, "driver").await;
    let hello = expect_json(&mut driver, "hello", 5).await;
    let (cols, rows) = (
        hello["size"]["cols"].as_u64().unwrap() as u16,
        hello["size"]["rows"].as_u64().unwrap() as u16,
    );
    send_bin(
        &mut driver,
        b"printf 'plain \\033[1;31mred\\033[0m thumb-%s\\n' $((40+2))\n",
    )
    .await;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        drain_output(
            &mut driver,
            &mut seen,
            Duration::from_millis(300),
            Duration::from_secs(3),
        )
        .await;
        let want = crate::judge::screen_rows(cols, rows, &seen);
        let t = alice
            .call("GET", &format!("/api/v1/sessions/{sid}/thumbnail"), None)
            .await;
        assert_eq!(t.status, 200, "{}", t.text);
        if thumb_rows(&t.body) == want && want.iter().any(|r| r.contains("thumb-42")) {
            break t.body;
        }
        assert!(
            Instant::now() < deadline,
            "the thumbnail never matched the driver's screen:\n thumbnail {:#?}\n driver {want:#?}",
            thumb_rows(&t.body)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        (last["cols"].as_u64(), last["rows"].as_u64()),
        (Some(cols.into()), Some(rows.into()))
    );
    let runs: Vec<&Value> = last["lines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l.as_array().unwrap())
        .collect();
    let red = runs
        .iter()
        .find(|r| r["text"] == "red")
        .unwrap_or_else(|| panic!("no run for the red word: {runs:?}"));
    assert_eq!(red["fg"], 1, "{red}");
    assert_eq!(red["attrs"], serde_json::json!(["bold"]), "{red}");
}

#[tokio::test]
async fn thumbnails_are_built_at_most_once_a_second_however_often_asked() {
    let srv = Server::start(Opts::default());
    let alice = srv.api(&ALICE);
    let sid = alice.create_session().await;
    let mut driver = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut driver, "hello", 5).await;
    // Output that never stops: every fresh thumbnail has a new offset.
    send_bin(&mut driver, b"while :; do echo tick; sleep 0.02; done\n").await;
    expect_output(&mut driver, "tick", 5).await;
    let started = Instant::now();
    let mut offsets = BTreeSet::new();
    let mut asked = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let t = alice
            .call("GET", &format!("/api/v1/sessions/{sid}/thumbnail"), None)
            .await;
        assert_eq!(t.status, 200);
        offsets.insert(t.body["offset"].as_u64().unwrap());
        asked += 1;
        let mut sink = Vec::new();
        drain_output(
            &mut driver,
            &mut sink,
            Duration::from_millis(1),
            Duration::from_millis(20),
        )
        .await;
    }
    let secs = started.elapsed().as_secs_f64().ceil() as usize;
    assert!(asked >= 20, "only {asked} requests");
    assert!(
        offsets.len() >= 2 && offsets.len() <= secs + 1,
        "{asked} requests in {secs} s built {} thumbnails (offsets {offsets:?})",
        offsets.len()
    );
}

/// Reads the stream until an event whose data satisfies `pred`; panics after `secs`.
async fn event_where(
    stream: &mut reqwest::Response,
    buf: &mut String,
    secs: u64,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).expect("event data is JSON");
                if pred(&v) {
                    return v;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no matching event within {secs} s"))
            .expect("stream")
            .expect("the stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_event_stream_follows_joins_and_leaves_with_thumbnails() {
    let srv = Server::start(Opts::default());
    let alice = srv.api(&ALICE);
    let sid = alice.create_session().await;
    let theirs = srv.api(&MALLORY).create_session().await;
    let mut stream = reqwest::Client::new()
        .get(srv.url("/api/v1/dashboard/events?thumbnails=true"))
        .header("Authorization", format!("Bearer {}", ALICE.secret))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let first = event_where(&mut stream, &mut buf, 5, |_| true).await;
    assert!(first["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["id"] != theirs.as_str()));
    assert_eq!(session(&first, &sid)["observers"], 0);
    assert!(
        session(&first, &sid)["thumbnail"]["lines"].is_array(),
        "{first}"
    );

    let mut observer = attach_as(&srv, &BOB, &sid, "observer").await;
    expect_json(&mut observer, "hello", 5).await;
    let joined = Instant::now();
    event_where(&mut stream, &mut buf, 5, |d| {
        session(d, &sid)["observers"] == 1
    })
    .await;
    let join_seen = joined.elapsed();
    drop(observer);
    let left = Instant::now();
    event_where(&mut stream, &mut buf, 5, |d| {
        session(d, &sid)["observers"] == 0
    })
    .await;
    eprintln!(
        "stream saw the join after {join_seen:?}, the leave after {:?}",
        left.elapsed()
    );

    let mut driver = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut driver, "hello", 5).await;
    send_bin(&mut driver, b"echo stream-$((3*7))\n").await;
    let d = event_where(&mut stream, &mut buf, 10, |d| {
        let t = &session(d, &sid)["thumbnail"];
        t["lines"].is_array() && thumb_rows(t).iter().any(|r| r == "stream-21")
    })
    .await;
    assert_eq!(session(&d, &sid)["holder"]["subject"], "alice");

    // Without the header there is no stream, whatever the query says.
    let r = reqwest::Client::new()
        .get(srv.url("/api/v1/dashboard/events?thumbnails=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
