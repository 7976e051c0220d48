//! Moderated sessions: stdin is written only while a moderator (an observer with
//! `attach:moderate`) is attached; meanwhile it is held, over the hold refused; across replicas.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::redis_procs::Redis;
use crate::support::*;

/// Everything a client receives for `dur`: output as text, and the JSON frames.
async fn gather(ws: &mut Ws, dur: Duration) -> (String, Vec<Value>) {
    let deadline = Instant::now() + dur;
    let (mut out, mut frames) = (Vec::new(), Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&out).into_owned(), frames);
        }
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
            Ok(Some(Ok(Message::Text(t)))) => {
                frames.push(serde_json::from_str(t.as_str()).expect("json frame"))
            }
            Ok(Some(Ok(Message::Close(c)))) => panic!("closed ({c:?}) while gathering"),
            Ok(None) | Ok(Some(Err(_))) => panic!("connection lost while gathering"),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Waits for a `moderation` frame in `state`; returns it.
async fn expect_moderation(ws: &mut Ws, state: &str, secs: u64) -> Value {
    expect_json_where(ws, "moderation", secs, |m| m["state"] == state)
        .await
        .0
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

async fn create_moderated(srv: &Server, tok: &Tok) -> Resp {
    srv.api(tok)
        .call(
            "POST",
            "/api/v1/sessions",
            Some(json!({"policy": {"moderated": true}})),
        )
        .await
}

#[tokio::test]
async fn a_moderated_session_needs_attach_moderate_and_others_are_unaffected() {
    let srv = Server::start(Opts::default());
    let r = create_moderated(&srv, &DREW).await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"), "{}", r.text);
    let r = srv
        .api(&ALICE)
        .call(
            "POST",
            "/api/v1/sessions",
            Some(json!({"policy": {"moderated": true, "later": 1}})),
        )
        .await;
    assert_eq!(r.status, 400, "unknown policy field: {}", r.text);

    // Drew's plain session runs input without any moderator, and says nothing of moderation.
    let sid = srv.api(&DREW).create_session().await;
    let detail = srv
        .api(&DREW)
        .call("GET", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(detail.body["policy"]["moderated"], false, "{}", detail.text);
    let mut d = attach_as(&srv, &DREW, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    send_bin(&mut d, b"echo free-$((2*3))\r").await;
    let (out, frames) = gather(&mut d, Duration::from_secs(2)).await;
    assert!(out.contains("free-6"), "{out:?}");
    assert!(
        frames.iter().all(|f| f["type"] != "moderation"),
        "{frames:?}"
    );

    let r = create_moderated(&srv, &ALICE).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["policy"]["moderated"], true);
    let created = srv
        .wait_audit("moderated session created", |r| {
            r["type"] == "session.created" && r["policy"] == "moderated"
        })
        .await;
    assert_eq!(created["session_id"], r.body["id"]);

    // The OpenAPI document names the policy, its scope, the frame and the error code.
    let doc = srv
        .api(&ALICE)
        .call("GET", "/openapi.json", None)
        .await
        .body;
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["CreateSession"]["properties"]["policy"].is_object(),
        "{schemas}"
    );
    assert!(
        schemas["SessionPolicy"]["properties"]["moderated"].is_object(),
        "{schemas}"
    );
    let create = doc["paths"]["/api/v1/sessions"]["post"].to_string();
    assert!(create.contains("attach:moderate"), "{create}");
    let attach = doc["paths"]["/api/v1/sessions/{id}/attach"]["get"].to_string();
    for word in [
        "moderation {state: frozen|live, moderators}",
        "moderation_required",
    ] {
        assert!(attach.contains(word), "{word} is not documented: {attach}");
    }
}

#[tokio::test]
async fn input_is_held_until_a_moderator_joins_and_refused_past_the_hold() {
    // The hold is one second of the stdin budget: 256 bytes here.
    let srv = Server::start(Opts::default().env("ATTACHD__WS__STDIN_BYTES_PER_SEC", "256"));
    let sid = create_moderated(&srv, &ALICE).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut d = attach_as(&srv, &BOB, &sid, "driver").await;
    expect_json(&mut d, "hello", 5).await;
    let m = expect_json(&mut d, "moderation", 5).await;
    assert_eq!(
        (m["state"].as_str(), m["moderators"].as_u64()),
        (Some("frozen"), Some(0))
    );

    // An observer without attach:moderate does not moderate.
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut o, "hello", 5).await;
    assert_eq!(
        expect_json(&mut o, "moderation", 5).await["state"],
        "frozen"
    );

    // Typed while frozen: the PTY gets nothing (not even the echo of the keys).
    send_bin(&mut d, b"echo one-$((1+1))\r").await;
    send_bin(&mut d, b"echo two-$((2+2))\r").await;
    let (out, frames) = gather(&mut d, Duration::from_millis(1500)).await;
    assert!(!out.contains("one-"), "held input reached the PTY: {out:?}");
    assert!(frames.iter().all(|f| f["type"] != "error"), "{frames:?}");

    // Alice observes with attach:moderate: live for everyone, the held lines run once, in order.
    let mut a = attach_as(&srv, &ALICE, &sid, "observer").await;
    let ah = expect_json(&mut a, "hello", 5).await;
    let am = expect_json(&mut a, "moderation", 5).await;
    assert_eq!(
        (am["state"].as_str(), am["moderators"].as_u64()),
        (Some("live"), Some(1))
    );
    assert_eq!(expect_moderation(&mut o, "live", 5).await["moderators"], 1);
    let out = expect_output(&mut d, "two-4", 10).await;
    let (one, two) = (
        out.find("one-2").expect("one ran"),
        out.find("two-4").unwrap(),
    );
    assert!(one < two, "out of order: {out:?}");
    let (rest, _) = gather(&mut d, Duration::from_millis(500)).await;
    let all = format!("{out}{rest}");
    assert_eq!(
        (count(&all, "one-2"), count(&all, "two-4")),
        (1, 1),
        "{all:?}"
    );
    let live = srv
        .wait_audit("live", |r| r["type"] == "session.moderation.live")
        .await;
    assert_eq!(
        (live["session_id"].as_str(), live["moderators"].as_u64()),
        (Some(sid.as_str()), Some(1))
    );
    assert_eq!(live["reason"], "moderator_joined");

    // The moderator leaves: frozen again, for everyone, audited.
    drop(a);
    let m = expect_moderation(&mut d, "frozen", 10).await;
    assert_eq!(m["moderators"], 0);
    expect_moderation(&mut o, "frozen", 5).await;
    let frozen = srv
        .wait_audit("frozen", |r| r["type"] == "session.moderation.frozen")
        .await;
    assert_eq!(frozen["reason"], "moderator_left");
    srv.wait_audit("the moderator's disconnect", |r| {
        r["type"] == "attach.disconnect" && r["connection_id"] == ah["connection_id"]
    })
    .await;

    // Held again; past the hold, refused with moderation_required once per freeze.
    send_bin(&mut d, b"echo three-$((3*3))\r").await;
    let mut big = b"echo over-$((4*4))".to_vec();
    big.resize(300, b' ');
    big.push(b'\r');
    send_bin(&mut d, &big).await;
    send_bin(&mut d, &big[..250]).await;
    let (out, frames) = gather(&mut d, Duration::from_millis(1500)).await;
    assert!(!out.contains("three-"), "{out:?}");
    let refusals = frames
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "moderation_required")
        .count();
    assert_eq!(refusals, 1, "{frames:?}");

    // A moderator back: what was held runs, what was refused never does.
    let mut a = attach_as(&srv, &ALICE, &sid, "observer").await;
    expect_moderation(&mut a, "live", 5).await;
    let out = expect_output(&mut d, "three-9", 10).await;
    let (rest, _) = gather(&mut d, Duration::from_millis(800)).await;
    assert!(
        !format!("{out}{rest}").contains("over-16"),
        "{out:?}{rest:?}"
    );
}

fn moderated_pod_replica(emu: &KubeEmu, redis: &Redis) -> Server {
    Server::start(
        emu.opts("attach")
            .env("ATTACHD__REDIS__URL", &redis.url())
            .env("ATTACHD__ATTACH__LEASE_TTL", "3s"),
    )
}

#[tokio::test]
async fn a_moderator_on_another_replica_unfreezes_the_driver_until_it_leaves_or_its_replica_dies() {
    let emu = KubeEmu::start_specs(&[
        "name=gamma,tenant=acme,label=attachd.dev/moderated=true".to_string()
    ]);
    let redis = Redis::start();
    let ra = moderated_pod_replica(&emu, &redis);
    let mut rb = moderated_pod_replica(&emu, &redis);
    let listed = ra
        .api(&BOB)
        .call("GET", "/api/v1/sessions/gamma", None)
        .await;
    assert_eq!(listed.body["policy"]["moderated"], true, "{}", listed.text);

    let mut d = attach_as(&ra, &BOB, "gamma", "driver").await;
    expect_json(&mut d, "hello", 30).await;
    expect_moderation(&mut d, "frozen", 10).await;
    send_bin(&mut d, b"echo held-$((6*7))\r").await;
    let (out, _) = gather(&mut d, Duration::from_millis(1500)).await;
    assert!(!out.contains("held-"), "{out:?}");

    // Alice moderates from B: Bob on A goes live and the held line runs once.
    let mut a = attach_as(&rb, &ALICE, "gamma", "observer").await;
    expect_json(&mut a, "hello", 30).await;
    expect_moderation(&mut a, "live", 10).await;
    let m = expect_moderation(&mut d, "live", 10).await;
    assert_eq!(m["moderators"], 1);
    let out = expect_output(&mut d, "held-42", 10).await;
    assert_eq!(count(&out, "held-42"), 1, "{out:?}");
    ra.wait_audit("live on A", |r| r["type"] == "session.moderation.live")
        .await;

    // She closes: A hears of it at once and freezes.
    a.close(None).await.expect("close");
    drop(a);
    expect_moderation(&mut d, "frozen", 10).await;
    ra.wait_audit("frozen on A", |r| r["type"] == "session.moderation.frozen")
        .await;

    // She comes back through B, then B dies: her presence lapses with its ttl, A freezes.
    let mut a = attach_as(&rb, &ALICE, "gamma", "observer").await;
    expect_json(&mut a, "hello", 30).await;
    expect_moderation(&mut d, "live", 10).await;
    send_bin(&mut d, b"echo live-$((8*8))\r").await;
    expect_output(&mut d, "live-64", 10).await;
    rb.kill();
    let started = Instant::now();
    expect_moderation(&mut d, "frozen", 15).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "froze before the dead replica's presence could lapse"
    );
    send_bin(&mut d, b"echo after-$((9*9))\r").await;
    let (out, _) = gather(&mut d, Duration::from_millis(1500)).await;
    assert!(!out.contains("after-"), "{out:?}");
    let frozen: Vec<Value> = ra
        .audit_records()
        .into_iter()
        .filter(|r| r["type"] == "session.moderation.frozen")
        .collect();
    assert_eq!(frozen.len(), 2, "{frozen:?}");
    drop(a);
}
