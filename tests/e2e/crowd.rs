//! Thousands of participants of one session joining at once, leaving at once, and drained by
//! SIGTERM: the replica survives, every slot is freed and every disconnect is audited.

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};

use crate::support::*;

/// Participants per test: above the 3,000 that once overflowed a worker's stack on leaving.
const CROWD: usize = 3000;

fn crowd_server() -> Server {
    Server::start(
        Opts::default()
            .env("ATTACHD__LIMITS__SESSION_PARTICIPANTS", "5000")
            .env("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "10000")
            .env("ATTACHD__SERVER__DRAIN_TIMEOUT", "20s")
            // The crowd reads nothing while it gathers: no heartbeat close meanwhile.
            .env("ATTACHD__WS__PING_INTERVAL", "120s")
            .env("ATTACHD__WS__HEARTBEAT_TIMEOUT", "300s"),
    )
}

/// `n` observers attached to `sid` at once (64 in flight), each past its `hello`.
async fn join_crowd(srv: &Server, sid: &str, n: usize) -> Vec<Ws> {
    let started = Instant::now();
    let crowd: Vec<Ws> = stream::iter(0..n)
        .map(|_| async {
            let mut ws = attach_as(srv, &OLIVE, sid, "observer").await;
            expect_json(&mut ws, "hello", 60).await;
            ws
        })
        .buffer_unordered(64)
        .collect()
        .await;
    eprintln!("{n} observers joined in {:?}", started.elapsed());
    crowd
}

/// Reads `ws` until a `participants` frame counts `observers`; returns how many such frames
/// it read.
async fn until_observers(ws: &mut Ws, observers: usize, secs: u64) -> usize {
    expect_json_where(ws, "participants", secs, |v| v["observers"] == observers)
        .await
        .1
}

async fn disconnects(srv: &Server, n: usize, secs: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let recs: Vec<_> = srv
            .audit_records()
            .into_iter()
            .filter(|r| r["type"] == "attach.disconnect")
            .collect();
        if recs.len() >= n || Instant::now() >= deadline {
            return recs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn thousands_join_one_session_at_once_then_leave_at_once() {
    let srv = crowd_server();
    let sid = srv.api(&ALICE).create_session().await;
    let mut watcher = attach_as(&srv, &BOB, &sid, "observer").await;
    expect_json(&mut watcher, "hello", 10).await;

    let crowd = join_crowd(&srv, &sid, CROWD).await;
    let frames = until_observers(&mut watcher, CROWD + 1, 60).await;
    eprintln!("the watcher read {frames} participants frames for {CROWD} joins");
    assert!(
        frames < CROWD / 2,
        "joins at once are announced together, not one frame each: {frames}"
    );

    // Every socket closes at once (the client process going away).
    drop(crowd);
    until_observers(&mut watcher, 1, 60).await;
    let recs = disconnects(&srv, CROWD, 60).await;
    assert_eq!(recs.len(), CROWD, "every leave audited");

    // The replica is still whole: the session, its slots, new attaches.
    let r = srv
        .api(&ALICE)
        .call("GET", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut d, "hello", 10).await;
    send_bin(&mut d, b"echo still-$((20+22))\r").await;
    expect_output(&mut watcher, "still-42", 10).await;
}

#[tokio::test]
async fn thousands_attached_to_one_session_are_drained_by_sigterm() {
    let mut srv = crowd_server();
    let sid = srv.api(&ALICE).create_session().await;
    let crowd = join_crowd(&srv, &sid, CROWD).await;
    // Each participant reads its `shutdown` and the close that follows.
    let readers: Vec<_> = crowd
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let s = expect_json(&mut ws, "shutdown", 60).await;
                assert_eq!(s["type"], "shutdown");
                expect_close(&mut ws, 60).await
            })
        })
        .collect();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let st = srv.terminate(Duration::from_secs(60));
        (st, srv)
    });
    let mut codes = std::collections::BTreeMap::new();
    for r in readers {
        *codes.entry(r.await.unwrap()).or_insert(0) += 1;
    }
    let (st, srv) = status.await.unwrap();
    let st = st.expect("attachd did not exit after the drain");
    eprintln!("{CROWD} participants drained in {:?}", started.elapsed());
    assert!(st.success(), "exit status {st}");
    assert_eq!(codes.get(&Some(1001)), Some(&CROWD), "{codes:?}");
    let recs = disconnects(&srv, CROWD, 5).await;
    assert_eq!(recs.len(), CROWD, "every disconnect audited and flushed");
    assert!(recs.iter().all(|r| r["close_code"] == 1001));
}
