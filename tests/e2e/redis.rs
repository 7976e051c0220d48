//! Several replicas on one real redis-server: shared per-IP windows, shared connection slots
//! (reclaimed after kill -9), single-use tickets across replicas, and Redis outages.

use std::time::{Duration, Instant};

use crate::redis_procs::Redis;
use crate::support::*;

fn replica(redis: &Redis, extra: &[(&str, &str)]) -> Server {
    let mut o = Opts::default()
        .env("ATTACHD__REDIS__URL", &redis.url())
        .env("ATTACHD__WS__PING_INTERVAL", "1s")
        .env("ATTACHD__WS__HEARTBEAT_TIMEOUT", "5s");
    for (k, v) in extra {
        o = o.env(k, v);
    }
    Server::start(o)
}

fn attach_path(sid: &str) -> String {
    format!("/api/v1/sessions/{sid}/attach")
}

async fn try_attach(srv: &Server, tok: &Tok, sid: &str) -> (u16, String) {
    let t = srv.api(tok).ticket(sid, "observer").await;
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &attach_path(sid),
        &[("Authorization", &format!("Bearer {t}"))],
    )
    .await;
    (st, body)
}

/// Whether an attach succeeds within 5 s of tries (a slot freed by a close is released in
/// the background).
async fn attaches_within_5s(srv: &Server, tok: &Tok, sid: &str) -> bool {
    for _ in 0..100 {
        if try_attach(srv, tok, sid).await.0 == 101 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn per_ip_window_is_shared_by_replicas() {
    let redis = Redis::start();
    let a = replica(&redis, &[("ATTACHD__LIMITS__IP_ATTEMPTS", "3")]);
    let b = replica(&redis, &[("ATTACHD__LIMITS__IP_ATTEMPTS", "3")]);
    let sa = a.api(&ALICE).create_session().await;
    let sb = b.api(&ALICE).create_session().await;
    for (srv, sid) in [(&a, &sa), (&a, &sa), (&b, &sb)] {
        let (st, _, _) = raw_upgrade(srv.addr(), &attach_path(sid), &[]).await;
        assert_eq!(st, 401);
    }
    for (srv, sid) in [(&a, &sa), (&b, &sb)] {
        let (st, _, body) = raw_upgrade(srv.addr(), &attach_path(sid), &[]).await;
        assert_eq!(st, 429, "{body}");
    }
    let (st, body) = a.ready_status().await;
    assert_eq!(st, 200);
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn subject_slots_span_replicas_and_a_killed_replica_frees_them() {
    let redis = Redis::start();
    let env = [("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "5")];
    let mut a = replica(&redis, &env);
    let b = replica(&redis, &env);
    let sa = a.api(&ALICE).create_session().await;
    let sb = b.api(&ALICE).create_session().await;
    let mut held_a = Vec::new();
    for _ in 0..3 {
        held_a.push(attach_as(&a, &ALICE, &sa, "observer").await);
    }
    let mut held_b = Vec::new();
    for _ in 0..2 {
        held_b.push(attach_as(&b, &ALICE, &sb, "observer").await);
    }
    let (st, body) = try_attach(&b, &ALICE, &sb).await;
    assert_eq!(st, 429, "6th connection across replicas: {body}");
    assert!(body.contains("too_many_connections"));
    // Closing one frees its slot for everyone.
    drop(held_b.pop());
    assert!(
        attaches_within_5s(&b, &ALICE, &sb).await,
        "slot not freed after close"
    );
    // kill -9 replica A: its three slots expire within 3 × ping_interval (3 s here).
    a.kill9();
    drop(held_a);
    let started = Instant::now();
    let mut freed = 0;
    while started.elapsed() < Duration::from_secs(15) && freed < 3 {
        if try_attach(&b, &ALICE, &sb).await.0 == 101 {
            freed += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(freed, 3, "slots of the killed replica were not reclaimed");
    eprintln!(
        "killed replica's slots reclaimed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn live_connections_keep_their_slots_past_the_slot_ttl() {
    // Slots expire 3 × ping_interval (3 s) after their last refresh; heartbeats refresh them
    // in batches. Five live connections held for 7 s still fill the subject's five slots.
    let redis = Redis::start();
    let env = [
        ("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "5"),
        ("ATTACHD__WS__HEARTBEAT_TIMEOUT", "60s"),
    ];
    let a = replica(&redis, &env);
    let b = replica(&redis, &env);
    let sa = a.api(&ALICE).create_session().await;
    let sb = b.api(&ALICE).create_session().await;
    let mut held = Vec::new();
    for (srv, sid) in [(&a, &sa), (&a, &sa), (&a, &sa), (&b, &sb), (&b, &sb)] {
        held.push(attach_as(srv, &ALICE, sid, "observer").await);
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    for (srv, sid) in [(&a, &sa), (&b, &sb)] {
        let (st, body) = try_attach(srv, &ALICE, sid).await;
        assert_eq!(st, 429, "a 6th connection after the slot TTL: {body}");
        assert!(body.contains("too_many_connections"), "{body}");
    }
    // The held connections are still attached, and closing them gives their slots back.
    drop(held);
    assert!(
        attaches_within_5s(&b, &ALICE, &sb).await,
        "slots not freed after close"
    );
}

#[tokio::test]
async fn a_ticket_is_single_use_across_replicas() {
    let redis = Redis::start();
    let a = replica(&redis, &[]);
    let b = replica(&redis, &[]);
    let sid = a.api(&ALICE).create_session().await;
    let t = a.api(&ALICE).ticket(&sid, "observer").await;
    // Redeemed on B (which does not host this local session): consumed there.
    let (st, body) = ticket_upgrade(&b, &sid, &t).await;
    assert_eq!(st, 404, "{body}");
    // ... so it cannot be replayed anywhere.
    for srv in [&a, &b] {
        let (st, body) = ticket_upgrade(srv, &sid, &t).await;
        assert_eq!(st, 401);
        assert!(body.contains("ticket_replayed"), "{body}");
    }
    // A fresh ticket from B works on A: tickets are shared.
    let t2 = b
        .api(&ALICE)
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(serde_json::json!({"role":"observer"})),
        )
        .await;
    assert_eq!(t2.status, 404, "B does not know A's local session");
    let t3 = a.api(&ALICE).ticket(&sid, "observer").await;
    let (st, _) = ticket_upgrade(&a, &sid, &t3).await;
    assert_eq!(st, 101);
}

#[tokio::test]
async fn redis_outage_local_policy_keeps_serving_and_recovers() {
    let mut redis = Redis::start();
    let a = replica(&redis, &[("ATTACHD__REDIS__ON_ERROR", "local")]);
    let sid = a.api(&ALICE).create_session().await;
    assert_eq!(try_attach(&a, &ALICE, &sid).await.0, 101);
    redis.kill();
    // Degraded, still serving.
    let mut degraded = false;
    for _ in 0..50 {
        let (st, body) = a.ready_status().await;
        assert_eq!(st, 200, "{body}");
        if body["checks"]["redis"] == "degraded" {
            degraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(degraded, "readiness never reported redis degraded");
    assert_eq!(try_attach(&a, &ALICE, &sid).await.0, 101);
    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        let (_, body) = a.ready_status().await;
        if body["checks"]["redis"] == "ok" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "did not recover when redis returned");
    assert_eq!(try_attach(&a, &ALICE, &sid).await.0, 101);
}

#[tokio::test]
async fn redis_outage_deny_policy_refuses_then_recovers() {
    let mut redis = Redis::start();
    let a = replica(&redis, &[("ATTACHD__REDIS__ON_ERROR", "deny")]);
    let sid = a.api(&ALICE).create_session().await;
    let t = a.api(&ALICE).ticket(&sid, "observer").await;
    redis.kill();
    let (st, body) = ticket_upgrade(&a, &sid, &t).await;
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("redis_unavailable"));
    let r = a
        .api(&ALICE)
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(serde_json::json!({"role":"observer"})),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (503, "redis_unavailable"));
    let (st, _) = a.ready_status().await;
    assert_eq!(st, 503);
    redis.restart();
    let mut ok = false;
    for _ in 0..50 {
        if a.ready_status().await.0 == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "readiness did not recover");
    assert_eq!(try_attach(&a, &ALICE, &sid).await.0, 101);
}

/// The head anchored in Redis: what `redis-cli GET` says for the one chain of this server.
fn redis_head(redis: &Redis) -> Option<serde_json::Value> {
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli is required (apt-get install redis-tools): {e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let key = cli(&["--scan", "--pattern", "attachd:{audit}head:*"]);
    if key.is_empty() {
        return None;
    }
    serde_json::from_str(&cli(&["GET", &key])).ok()
}

/// With Redis the chain's head is anchored there as well: the log's tail cut *and* its head
/// file rewritten to match is still refused on restart (readyz 503, nothing appended).
#[tokio::test]
async fn a_cut_tail_with_a_forged_head_file_is_refused_against_redis() {
    let redis = Redis::start();
    let mut srv = replica(&redis, &[("ATTACHD__AUDIT__ON_FAILURE", "deny")]);
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for _ in 0..4 {
        api.ticket(&sid, "observer").await;
    }
    // Wait until Redis holds the head of everything written, then stop without a drain.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = srv.audit_records().last().cloned().unwrap();
        if redis_head(&redis)
            .is_some_and(|h| h["seq"] == last["seq"] && last["seq"].as_u64() >= Some(6))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the head never reached Redis: {:?}",
            redis_head(&redis)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.kill();
    let text = std::fs::read_to_string(srv.audit_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 3].join("\n") + "\n";
    std::fs::write(srv.audit_path(), &kept).unwrap();
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 4]).unwrap();
    let head = srv.dir.path().join("audit.log.head");
    std::fs::write(
        &head,
        format!(
            "{{\"hash\":\"{}\",\"seq\":{}}}\n",
            last["hash"].as_str().unwrap(),
            last["seq"]
        ),
    )
    .unwrap();

    srv.restart();
    let r = srv.api(&ALICE).call("GET", "/readyz", None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(srv.logs().contains("anchored in Redis"), "{}", srv.logs());
    assert_eq!(std::fs::read_to_string(srv.audit_path()).unwrap(), kept);
}
