//! Connection limits and timers (SPEC §5): heartbeat, lifetime, idle, invalid-message budget,
//! stdin rate, slow consumers, drain; and that every exit frees the slot and is audited.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// Sends `msg(i)` for i = 0, 1, … as fast as the server reads, until it closes the connection
/// (at most 30 s); returns the close code and how many `rate_limited` errors arrived.
async fn send_until_closed(
    ws: Ws,
    msg: impl Fn(usize) -> Message + Send + 'static,
) -> (Option<u16>, usize) {
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(20);
        let mut i = 0;
        while Instant::now() < until {
            match tokio::time::timeout(Duration::from_secs(1), tx.send(msg(i))).await {
                Ok(Ok(())) => i += 1,
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    });
    let mut limited = 0;
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"rate_limited\"") => limited += 1,
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("no close within 30 s");
    writer.abort();
    (code, limited)
}

async fn disconnect_record(srv: &Server, code: u16) -> serde_json::Value {
    srv.wait_audit(&format!("disconnect {code}"), |r| {
        r["type"] == "attach.disconnect" && r["close_code"] == code
    })
    .await
}

#[tokio::test]
async fn silent_client_is_closed_with_4001_and_its_slot_freed() {
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__WS__PING_INTERVAL", "1s")
            .env("ATTACHD__WS__HEARTBEAT_TIMEOUT", "2s")
            .env("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "1"),
    );
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "driver").await;
    // Not reading means never answering pings: the server sees silence.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(expect_close(&mut ws, 10).await, Some(4001));
    let rec = disconnect_record(&srv, 4001).await;
    assert_eq!(rec["subject"], "alice");
    // Control was released (grace) and the only slot is free again.
    let mut again = attach_as(&srv, &ALICE, &sid, "driver").await;
    let h = expect_json(&mut again, "hello", 5).await;
    assert_eq!(
        h["control"]["you"], true,
        "same subject reclaims within grace"
    );
}

#[tokio::test]
async fn answering_pings_keeps_the_connection_open() {
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__WS__PING_INTERVAL", "1s")
            .env("ATTACHD__WS__HEARTBEAT_TIMEOUT", "2s"),
    );
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "observer").await;
    let until = Instant::now() + Duration::from_secs(5);
    let mut pings = 0;
    while Instant::now() < until {
        // tungstenite answers pings while we read.
        match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c)))) => {
                panic!("closed while answering pings: {c:?}")
            }
            Ok(None) | Ok(Some(Err(_))) => panic!("connection dropped"),
            _ => {}
        }
    }
    assert!(pings >= 3, "server pinged {pings} times in 5 s");
}

#[tokio::test]
async fn max_lifetime_closes_with_4002() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__MAX_LIFETIME", "2s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "observer").await;
    expect_json(&mut ws, "hello", 5).await;
    assert_eq!(expect_close(&mut ws, 10).await, Some(4002));
    disconnect_record(&srv, 4002).await;
}

#[tokio::test]
async fn idle_session_closes_with_4000_after_idle_frames() {
    let srv = Server::start(Opts::default().env("ATTACHD__SESSION__IDLE_TIMEOUT", "3s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "driver").await;
    let hello = expect_json(&mut ws, "hello", 5).await;
    let first = hello["idle_deadline"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    send_bin(&mut ws, b"\n").await;
    // Activity moved the deadline by more than the threshold: an `idle` frame announces it.
    let idle = expect_json(&mut ws, "idle", 5).await;
    assert!(
        idle["deadline"].as_str().unwrap() > first.as_str(),
        "{idle} vs {first}"
    );
    assert_eq!(expect_close(&mut ws, 10).await, Some(4000));
    disconnect_record(&srv, 4000).await;
}

#[tokio::test]
async fn invalid_messages_are_answered_then_closed_with_1008() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__MAX_INVALID_MESSAGES", "3"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut ws, "hello", 5).await;
    send_text(&mut ws, json!({"type": "bogus"})).await;
    assert_eq!(
        expect_json(&mut ws, "error", 5).await["code"],
        "invalid_message"
    );
    send_text(&mut ws, json!({"type": "resize", "cols": "wide"})).await;
    assert_eq!(
        expect_json(&mut ws, "error", 5).await["code"],
        "invalid_message"
    );
    send_text(&mut ws, json!({"type": "control", "action": "steal"})).await;
    assert_eq!(expect_close(&mut ws, 5).await, Some(1008));
    disconnect_record(&srv, 1008).await;
}

#[tokio::test]
async fn observer_forbidden_frames_count_against_the_budget() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__MAX_INVALID_MESSAGES", "2"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut ws, "hello", 5).await;
    send_bin(&mut ws, b"ls\n").await;
    send_bin(&mut ws, b"ls\n").await;
    assert_eq!(expect_close(&mut ws, 5).await, Some(1008));
}

#[tokio::test]
async fn stdin_over_budget_is_delayed_not_dropped_and_announced_once() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STDIN_MESSAGES_PER_SEC", "5"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut ws, "hello", 5).await;
    // 24 messages at a budget of 5 per second: about 4 s of delay, every byte in order.
    send_bin(&mut ws, b"echo ").await;
    for c in b"delayed-not-dropped".iter().chain(b"-ok") {
        send_bin(&mut ws, &[*c]).await;
    }
    send_bin(&mut ws, b"\n").await;
    let mut errors = 0;
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.contains("\r\ndelayed-not-dropped-ok") {
        assert!(Instant::now() < deadline, "echo never arrived: {out:?}");
        match next(&mut ws, 30).await {
            Seen::Json(v) if v["type"] == "error" => {
                assert_eq!(v["code"], "rate_limited");
                errors += 1;
            }
            Seen::Bin(b) => out.push_str(&String::from_utf8_lossy(&b)),
            Seen::Json(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(errors, 1, "rate_limited is sent once per burst");
}

#[tokio::test]
async fn stdin_that_keeps_the_budget_exhausted_is_closed_with_1008() {
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__WS__STDIN_MESSAGES_PER_SEC", "5")
            .env("ATTACHD__WS__STALL_TIMEOUT", "3s"),
    );
    let sid = srv.api(&ALICE).create_session().await;
    let mut ws = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut ws, "hello", 5).await;
    // A client that never stops sending: the server reads it at the budget's pace, then cuts it.
    let (code, _) = send_until_closed(ws, |_| Message::binary(b"#".to_vec())).await;
    assert_eq!(code, Some(1008));
}

#[tokio::test]
async fn slow_observer_is_resynced_not_cut_while_the_driver_keeps_going() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STALL_TIMEOUT", "120s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    // The slow observer: attached, not reading during the flood.
    let mut slow = attach_as(&srv, &OLIVE, &sid, "observer").await;
    // ~24 MB of output: far more than the loopback socket buffers plus the flow window.
    send_bin(
        &mut d,
        b"for i in $(seq 1 300); do head -c 60000 /dev/urandom | base64; sleep 0.01; done; echo flood-$((1+1))-done\n",
    )
    .await;
    let started = Instant::now();
    let flood_out = expect_output(&mut d, "flood-2-done", 120).await;
    let flood_secs = started.elapsed().as_secs_f64();
    eprintln!("driver saw {} bytes in {flood_secs:.2}s", flood_out.len());
    send_bin(&mut d, b"echo ping-$((2*21))\n").await;
    expect_output(&mut d, "ping-42", 10).await;
    // The observer reads at last: a resync snapshot that says what it skipped, then live
    // output up to the driver's last echo; no close.
    let mut resync = None;
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(resync.is_some() && out.contains("ping-42")) {
        assert!(Instant::now() < deadline, "observer never caught up");
        match next(&mut slow, 60).await {
            Seen::Json(v) if v["type"] == "snapshot" && v["reason"] == "join" => {}
            Seen::Json(v) if v["type"] == "snapshot" => {
                assert_eq!(v["reason"], "resync");
                resync = Some(v);
                out.clear();
            }
            Seen::Bin(b) => out.push_str(&String::from_utf8_lossy(&b)),
            Seen::Json(_) => {}
            other => panic!("the slow observer must not be closed: {other:?}"),
        }
    }
    let skipped = resync.unwrap()["skipped_bytes"].as_u64().unwrap();
    assert!(skipped > 1_000_000, "skipped only {skipped} bytes");
    assert!(!srv.audit_text().contains("\"close_code\":4003"));
}

#[tokio::test]
async fn stalled_observer_is_cut_with_4003_after_the_stall_timeout() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STALL_TIMEOUT", "2s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    let mut stalled = attach_as(&srv, &OLIVE, &sid, "observer").await;
    send_bin(
        &mut d,
        b"for i in $(seq 1 200); do head -c 60000 /dev/urandom | base64; done; echo flood-$((1+1))-done\n",
    )
    .await;
    expect_output(&mut d, "flood-2-done", 120).await;
    // The observer made no progress for 2 s while output was queued for it.
    let rec = disconnect_record(&srv, 4003).await;
    assert_eq!(rec["subject"], "olive");
    assert_eq!(rec["reason"], "slow_consumer");
    // The session runs on for the driver.
    send_bin(&mut d, b"echo still-$((40+2))\n").await;
    expect_output(&mut d, "still-42", 10).await;
    assert!(srv.metrics().await.contains("attachd_stall_closes_total 1"));
    let _ = stalled.close(None).await;
}

#[tokio::test]
async fn sigterm_drains_with_shutdown_then_1001_and_exits_in_time() {
    let mut srv = Server::start(Opts::default().env("ATTACHD__SERVER__DRAIN_TIMEOUT", "5s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut d, "hello", 5).await;
    expect_json(&mut o, "hello", 5).await;
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let s = expect_json(&mut o, "shutdown", 10).await;
        let c = expect_close(&mut o, 10).await;
        (s, c)
    });
    let status = tokio::task::spawn_blocking(move || {
        let st = srv.terminate(Duration::from_secs(8));
        (st, srv)
    });
    let (s, c) = reader.await.unwrap();
    assert_eq!(s["type"], "shutdown");
    assert_eq!(c, Some(1001));
    assert_eq!(expect_close(&mut d, 10).await, Some(1001));
    let (st, srv) = status.await.unwrap();
    let st = st.expect("attachd did not exit within the drain timeout");
    assert!(st.success(), "exit status {st}");
    assert!(started.elapsed() < Duration::from_secs(7));
    let recs = srv.audit_records();
    let closes: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "attach.disconnect")
        .map(|r| r["close_code"].clone())
        .collect();
    assert_eq!(
        closes.len(),
        2,
        "both disconnects audited and flushed: {closes:?}"
    );
    assert!(closes.iter().all(|c| c == 1001), "{closes:?}");
}

/// Kept-alive HTTP connections close at the drain instead of holding the process until their
/// keep-alive expires (a browser's idle connection made a restart take 5-10 s more, and requests
/// on it during the drain kept it open).
#[tokio::test]
async fn kept_alive_connections_close_at_the_drain() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut srv = Server::start(Opts::default().env("ATTACHD__SERVER__DRAIN_TIMEOUT", "10s"));
    let get = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr());
    let mut idle = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    let mut busy = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    let mut buf = [0u8; 4096];
    for s in [&mut idle, &mut busy] {
        s.write_all(get.as_bytes()).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let st = srv.terminate(Duration::from_secs(20));
        (st, srv)
    });
    // The idle one is closed by the server; the busy one gets its answer, then is closed.
    let eof = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(
        matches!(eof, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection kept: {eof:?}"
    );
    if busy.write_all(get.as_bytes()).await.is_ok() {
        let mut got = Vec::new();
        let read_all = async {
            while let Ok(n) = busy.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read_all)
            .await
            .expect("a connection used during the drain was kept open");
    }
    let (st, _srv) = status.await.unwrap();
    assert!(st.expect("attachd did not exit").success());
    // Well inside the 5 s keep-alive the connections used to be held for.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "exit took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn control_toggling_is_bounded_and_a_sustained_toggler_is_closed_with_1008() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STALL_TIMEOUT", "3s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    // Release/acquire pairs without pause, for as long as the server keeps reading.
    let started = Instant::now();
    let (code, limited) = send_until_closed(d, |i| {
        let action = if i % 2 == 0 { "release" } else { "acquire" };
        Message::text(json!({"type": "control", "action": action}).to_string())
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(code, Some(1008));
    assert_eq!(limited, 1, "rate_limited once per burst");
    let changes = srv
        .audit_records()
        .iter()
        .filter(|r| {
            r["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("attach.control."))
        })
        .count();
    // 5 requests a second (plus a second's burst) while the toggler was read.
    assert!(
        (changes as f64) <= 10.0 + 6.0 * secs,
        "{changes} control records in {secs:.1}s"
    );
}
