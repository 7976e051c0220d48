//! Flow control (SPEC §8): the holder paces the program and loses nothing, a stalled holder is
//! cut while the session runs on, and a fast typist's every keystroke reaches the PTY in order.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

fn sha256_hex_bytes(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Reads output at about `rate` bytes/s until `needle` appears; returns everything read.
async fn read_paced(ws: &mut Ws, needle: &str, rate: f64, secs: u64) -> Vec<u8> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no {needle:?} within {secs}s");
        match next(ws, secs).await {
            Seen::Bin(b) => {
                let from = out.len().saturating_sub(needle.len());
                out.extend_from_slice(&b);
                if String::from_utf8_lossy(&out[from..]).contains(needle) {
                    return out;
                }
                // Behind schedule is fine; ahead of it, wait.
                let due = Duration::from_secs_f64(out.len() as f64 / rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            Seen::Json(_) => {}
            Seen::Closed(c) => panic!("closed ({c:?}) after {} bytes", out.len()),
        }
    }
}

/// The lines of `seq 1 n` as the PTY prints them must all be there, once, in order.
fn assert_seq(out: &[u8], n: u64) {
    let text = String::from_utf8_lossy(out);
    let start = text.find("\r\n1\r\n").expect("seq output starts") + 2;
    let mut want = 1u64;
    for line in text[start..].split("\r\n") {
        if want > n {
            break;
        }
        assert_eq!(line, want.to_string(), "line {want} lost or doubled");
        want += 1;
    }
    assert_eq!(want, n + 1, "only {} of {n} lines arrived", want - 1);
}

#[tokio::test]
async fn a_slow_holder_paces_the_program_and_loses_nothing() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STALL_TIMEOUT", "120s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    // An observer that never reads while the program writes.
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    // About 14.9 MB, more than the socket buffers on both ends and the window together. The
    // holder reads nothing until the program has had to wait for it, then reads at 2 MB/s.
    // (Reading at a pace from the start would depend on this machine outrunning the pace, and
    // on how far the kernel lets the client's receive buffer grow.)
    send_bin(&mut d, b"seq 1 2000000; echo END-$((1+1))\n").await;
    srv.wait_metric("attachd_paced_waits_total", 1.0).await;
    let out = read_paced(&mut d, "END-2", 2_000_000.0, 120).await;
    assert_seq(&out, 2_000_000);
    // Time paused is counted when the gate opens again, which reading has made it do.
    let paced = metric(&srv.metrics().await, "attachd_paced_seconds_total");
    assert!(paced > 0.0, "the backend was paused for {paced}s");
    // The observer is resynced, not closed, and ends on the holder's screen.
    let mut resynced = false;
    let mut tail = String::new();
    while !(resynced && tail.contains("END-2")) {
        match next(&mut o, 60).await {
            Seen::Json(v) if v["type"] == "snapshot" && v["reason"] == "resync" => {
                resynced = true;
                tail.clear();
            }
            Seen::Bin(b) => tail.push_str(&String::from_utf8_lossy(&b)),
            Seen::Json(_) => {}
            Seen::Closed(c) => panic!("observer closed ({c:?})"),
        }
    }
    assert!(!srv.audit_text().contains("\"close_code\":4003"));
}

#[tokio::test]
async fn a_holder_that_stops_reading_is_cut_and_the_session_runs_on() {
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STALL_TIMEOUT", "2s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut o, "hello", 5).await;
    send_bin(&mut d, b"seq 1 3000000; echo END-$((2+2))\n").await;
    // The holder reads nothing from now on; the observer keeps reading and sees the end.
    expect_output(&mut o, "END-4", 120).await;
    // The observer stops reading here, so it may be cut too (after the stall timeout); what
    // must be there is the holder's cut.
    srv.wait_audit("the holder's 4003", |r| {
        r["type"] == "attach.disconnect" && r["close_code"] == 4003 && r["subject"] == "alice"
    })
    .await;
    drop(d);
}

#[tokio::test]
async fn a_thousand_stdin_messages_a_second_all_reach_the_pty_in_order() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    send_bin(&mut d, b"stty -echo; cat > /tmp/attachd-flow-$$.txt; wc -c < /tmp/attachd-flow-$$.txt; sha256sum < /tmp/attachd-flow-$$.txt; rm -f /tmp/attachd-flow-$$.txt\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 3,000 messages in about 3 s (twice the default budget of 500/s), numbered so any loss or
    // reordering changes the digest.
    let mut sent = Vec::new();
    let start = Instant::now();
    for i in 0..3000u32 {
        let msg = format!("{i:05}\n");
        sent.extend_from_slice(msg.as_bytes());
        d.send(Message::binary(msg.into_bytes())).await.unwrap();
        let due = Duration::from_millis(u64::from(i));
        if let Some(w) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(w).await;
        }
    }
    d.send(Message::binary(b"\x04".to_vec())).await.unwrap();
    let digest = sha256_hex_bytes(&sent);
    let out = expect_output(&mut d, &digest, 60).await;
    assert!(out.contains(&sent.len().to_string()), "{out:?}");
    let _ = d.next().await;
}
