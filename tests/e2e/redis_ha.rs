//! Redis failover with two replicas sharing a pod: on Sentinel (master, replica, three
//! sentinels) and on Cluster (three masters with a replica each), the master killed under load.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::redis_procs::{ClusterSet, SentinelSet, MASTER_NAME};
use crate::support::*;

/// The Redis part of a replica's options.
type RedisEnv = Vec<(&'static str, String)>;

/// Answers counted by status and error code.
type Answers = BTreeMap<(u16, String), u32>;

fn replica(emu: &KubeEmu, redis: &RedisEnv) -> Server {
    let mut o = emu
        .opts("attach")
        .env("ATTACHD__ATTACH__LEASE_TTL", "3s")
        .env("ATTACHD__WS__PING_INTERVAL", "1s")
        // The drivers' sockets are not read while the failover runs: no heartbeat close.
        .env("ATTACHD__WS__HEARTBEAT_TIMEOUT", "120s")
        .env("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "3");
    for (k, v) in redis {
        o = o.env(k, v);
    }
    Server::start(o)
}

/// Attaches as olive to `alpha` on A and B in turn, and closes, until stopped; counts the
/// answers by status and, for refusals, error code. Every attempt must get an answer (no hang,
/// no reset).
fn load(a: &Server, b: &Server) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Answers>) {
    let stop = Arc::new(AtomicBool::new(false));
    let targets = [(a.addr(), a.api(&OLIVE)), (b.addr(), b.api(&OLIVE))];
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut seen = BTreeMap::new();
        let mut i = 0usize;
        while !flag.load(Ordering::Relaxed) {
            let (addr, api) = &targets[i % 2];
            i += 1;
            let r = api
                .call(
                    "POST",
                    "/api/v1/sessions/alpha/attach-tickets",
                    Some(json!({"role": "observer"})),
                )
                .await;
            let st = if r.status == 201 || r.status == 200 {
                let t = serde_json::from_str::<serde_json::Value>(&r.text).unwrap()["ticket"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let (st, _, body) = tokio::time::timeout(
                    Duration::from_secs(10),
                    raw_upgrade(
                        *addr,
                        "/api/v1/sessions/alpha/attach",
                        &[("Authorization", &format!("Bearer {t}"))],
                    ),
                )
                .await
                .expect("an attach under failover got no answer within 10 s");
                (st, body)
            } else {
                (r.status, r.text)
            };
            *seen.entry(answer(st.0, &st.1)).or_insert(0) += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    });
    (stop, task)
}

/// A status with the error code of its body (none for 101).
fn answer(status: u16, body: &str) -> (u16, String) {
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

/// Whether an answer seen during a failover is one the README allows: an attach, a limit,
/// Redis unavailable, or a ticket that the failover lost (minted or redeemed on the old master
/// in its last moments and not replicated; README "Several replicas").
fn allowed_during_failover((status, code): &(u16, String)) -> bool {
    match status {
        101 | 429 | 503 => true,
        401 => code == "unauthorized" || code == "ticket_replayed",
        _ => false,
    }
}

/// Both replicas say Redis is `ok` again (each decision after the failover reaches the new
/// master).
async fn wait_redis_ok(servers: &[&Server]) {
    for _ in 0..200 {
        let mut ok = true;
        for s in servers {
            ok &= s.ready_status().await.1["checks"]["redis"] == "ok";
        }
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a replica never reported redis ok after the failover");
}

/// Bob takes the seat on B once it is free (released by alice, or lost with her lease).
async fn bob_takes_the_seat(db: &mut Ws) {
    for _ in 0..40 {
        send_text(db, json!({"type": "control", "action": "acquire"})).await;
        loop {
            match next(db, 5).await {
                Seen::Json(v) if v["type"] == "control" && v["holder"]["subject"] == "bob" => {
                    return;
                }
                Seen::Json(v) if v["type"] == "error" => break,
                Seen::Closed(c) => panic!("bob's connection closed: {c:?}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("bob never got the seat after the failover");
}

/// The checks before and after `kill`, which kills a master, waits for its replacement and
/// hands back the deployment (kept until the end). Replica A is configured with `redis[0]`,
/// B with `redis[1]`.
async fn failover_keeps_limits_tickets_and_the_lease<T: Send + 'static>(
    redis: [RedisEnv; 2],
    kill: impl FnOnce() -> (Duration, T) + Send + 'static,
) {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let a = replica(&emu, &redis[0]);
    let b = replica(&emu, &redis[1]);
    for s in [&a, &b] {
        let (st, body) = s.ready_status().await;
        assert_eq!(
            (st, &body["checks"]["redis"]),
            (200, &json!("ok")),
            "{body}"
        );
    }
    let mut da = attach_as(&a, &ALICE, "alpha", "driver").await;
    assert_eq!(
        expect_json(&mut da, "hello", 30).await["control"]["you"],
        true
    );
    let mut db = attach_as(&b, &BOB, "alpha", "driver").await;
    assert_eq!(
        expect_json(&mut db, "hello", 30).await["control"]["you"],
        false,
        "one driver across replicas before the failover"
    );

    let (stop, task) = load(&a, &b);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (took, _deployment) = tokio::task::spawn_blocking(kill).await.unwrap();
    eprintln!("failover took {took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = task.await.unwrap();
    eprintln!("attach answers during the failover: {seen:?}");
    assert!(
        seen.keys().all(allowed_during_failover),
        "only attaches, limits, redis_unavailable or lost tickets: {seen:?}"
    );
    let lost: u32 = seen
        .iter()
        .filter(|((st, _), _)| *st == 401)
        .map(|(_, n)| n)
        .sum();
    let attached = seen.get(&(101, String::new())).copied().unwrap_or(0);
    assert!(
        lost <= 3 && attached > 10,
        "tickets lost in one failover are the last moments' few: {seen:?}"
    );
    wait_redis_ok(&[&a, &b]).await;

    // Tickets: minted on A, single use across both replicas.
    let t = a.api(&OLIVE).ticket("alpha", "observer").await;
    let (st, body) = ticket_upgrade(&b, "alpha", &t).await;
    assert_eq!(st, 101, "{body}");
    let (st, body) = ticket_upgrade(&a, "alpha", &t).await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("ticket_replayed"), "{body}");

    // Limits: olive's connection slots (3) are counted across replicas. The load's slots that
    // were lost or left behind in the failover expire with their TTL (3 × ping_interval).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut held = Vec::new();
    for srv in [&a, &a, &b] {
        held.push(attach_as(srv, &OLIVE, "alpha", "observer").await);
    }
    let t = b.api(&OLIVE).ticket("alpha", "observer").await;
    let (st, body) = ticket_upgrade(&b, "alpha", &t).await;
    assert_eq!(
        st, 429,
        "a 4th connection across replicas after the failover: {body}"
    );
    assert!(body.contains("too_many_connections"), "{body}");
    drop(held);

    // The control lease: the seat crosses replicas, and only its holder types.
    send_text(&mut da, json!({"type": "control", "action": "release"})).await;
    bob_takes_the_seat(&mut db).await;
    send_text(&mut da, json!({"type": "control", "action": "acquire"})).await;
    loop {
        match next(&mut da, 10).await {
            Seen::Json(v) if v["type"] == "error" => {
                assert_eq!(v["code"], "control_denied", "{v}");
                break;
            }
            Seen::Json(v) if v["type"] == "control" && v["holder"]["subject"] == "alice" => {
                panic!("alice took a seat bob holds: {v}")
            }
            Seen::Closed(c) => panic!("alice's connection closed: {c:?}"),
            _ => {}
        }
    }
    send_bin(&mut db, b"echo bob-after-failover-$((6*7))\n").await;
    expect_output(&mut da, "bob-after-failover-42", 30).await;
}

#[tokio::test]
async fn sentinel_failover_keeps_limits_tickets_and_the_lease() {
    let mut set = SentinelSet::start();
    // A names the sentinels in one URL, B in the list form: the same deployment either way.
    let url = format!("redis+sentinel://{}/{MASTER_NAME}", set.sentinels_env());
    let redis = [
        vec![("ATTACHD__REDIS__URL", url)],
        vec![
            ("ATTACHD__REDIS__SENTINELS", set.sentinels_env()),
            ("ATTACHD__REDIS__SENTINEL_MASTER", MASTER_NAME.to_string()),
        ],
    ];
    let old = set.master_port();
    failover_keeps_limits_tickets_and_the_lease(redis, move || {
        let took = set.kill_master_and_wait_failover();
        assert_ne!(set.master_port(), old);
        (took, set)
    })
    .await;
}

#[tokio::test]
async fn cluster_failover_keeps_limits_tickets_and_the_lease() {
    let mut set = ClusterSet::start();
    let nodes = vec![("ATTACHD__REDIS__CLUSTER_NODES", set.nodes_env())];
    let redis = [nodes.clone(), nodes];
    // The master that holds pod alpha's control lease dies.
    let key = "attachd:{lease:alpha}";
    failover_keeps_limits_tickets_and_the_lease(redis, move || {
        let i = set.master_of(key);
        (set.kill_and_wait_failover(i, key), set)
    })
    .await;
}
