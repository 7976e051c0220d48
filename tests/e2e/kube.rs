//! The kube backend through kube-rs against the in-repo Kubernetes API emulation (kube-emu):
//! pods as sessions, attach and exec modes, a pod shared by two replicas, resize, exit, delete.

use std::time::Duration;

use serde_json::json;

use crate::redis_procs::Redis;
use crate::support::*;

#[tokio::test]
async fn pods_are_sessions_of_their_tenant() {
    let emu = KubeEmu::start(&[("alpha", "acme"), ("beta", "evil")]);
    let srv = Server::start(emu.opts("attach"));
    let r = srv.api(&ALICE).call("GET", "/api/v1/sessions", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["alpha"]);
    let r = srv
        .api(&ALICE)
        .call("GET", "/api/v1/sessions/beta", None)
        .await;
    assert_eq!(r.status, 404, "another tenant's pod");
    let r = srv
        .api(&ALICE)
        .call("GET", "/api/v1/sessions/alpha", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["backend"], "kube");
    let r = srv
        .api(&ALICE)
        .call("POST", "/api/v1/sessions", Some(json!({})))
        .await;
    assert_eq!(r.status, 400, "pods are not created through attachd");
}

#[tokio::test]
async fn attach_mode_shares_the_container_tty_and_resize_reaches_it() {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let srv = Server::start(emu.opts("attach"));
    let mut d = attach_as(&srv, &ALICE, "alpha", "driver").await;
    assert_eq!(
        expect_json(&mut d, "hello", 30).await["control"]["you"],
        true
    );
    let mut o = attach_as(&srv, &OLIVE, "alpha", "observer").await;
    expect_json(&mut o, "hello", 30).await;
    send_text(&mut d, json!({"type": "resize", "cols": 101, "rows": 33})).await;
    // The resize travels on its own exec channel, as in Kubernetes: it is not ordered with
    // stdin, so ask until the container's tty reports it (a few tries at most).
    let mut seen = Vec::new();
    for i in 0..20 {
        send_bin(
            &mut d,
            format!("stty size; echo pod-{i}-$((20+1))\n").as_bytes(),
        )
        .await;
        let out = expect_output(&mut d, &format!("pod-{i}-21"), 30).await;
        if out.contains("33 101") {
            expect_output(&mut o, &format!("pod-{i}-21"), 30).await;
            return;
        }
        seen.push(out);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("resize did not reach the pod: {seen:?}");
}

#[tokio::test]
async fn exec_mode_runs_the_command_and_the_exit_code_propagates() {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let srv = Server::start(emu.opts("exec"));
    let mut d = attach_as(&srv, &ALICE, "alpha", "driver").await;
    expect_json(&mut d, "hello", 30).await;
    send_bin(&mut d, b"echo in-exec; exit 5\n").await;
    expect_output(&mut d, "in-exec", 30).await;
    assert_eq!(expect_json(&mut d, "exit", 15).await["code"], 5);
    assert_eq!(expect_close(&mut d, 10).await, Some(1000));
}

#[tokio::test]
async fn deleting_the_pod_closes_participants_with_4005() {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let srv = Server::start(emu.opts("attach"));
    let mut o = attach_as(&srv, &OLIVE, "alpha", "observer").await;
    expect_json(&mut o, "hello", 30).await;
    emu.delete_pod("alpha").await;
    assert_eq!(expect_close(&mut o, 20).await, Some(4005));
}

#[tokio::test]
async fn an_unreachable_api_server_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("t");
    std::fs::write(&token, "x").unwrap();
    let port = free_port();
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__SESSION__BACKEND", "kube")
            .env(
                "ATTACHD__KUBE__API_URL",
                &format!("http://127.0.0.1:{port}"),
            )
            .env("ATTACHD__KUBE__TOKEN_FILE", token.to_str().unwrap()),
    );
    let started = std::time::Instant::now();
    let r = srv.api(&ALICE).call("GET", "/api/v1/sessions", None).await;
    assert_eq!(
        (r.status, r.error_code()),
        (502, "backend_unavailable"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains(&port.to_string()),
        "internal address leaked: {}",
        r.text
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

fn kube_replica(emu: &KubeEmu, redis: &Redis) -> Server {
    Server::start(
        emu.opts("attach")
            .env("ATTACHD__REDIS__URL", &redis.url())
            .env("ATTACHD__ATTACH__LEASE_TTL", "3s"),
    )
}

/// Pod `alpha` of acme behind replicas A and B sharing Redis; alice drives through A.
async fn two_replicas_alice_drives_on_a() -> (KubeEmu, Redis, Server, Server, Ws) {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let redis = Redis::start();
    let a = kube_replica(&emu, &redis);
    let b = kube_replica(&emu, &redis);
    let mut da = attach_as(&a, &ALICE, "alpha", "driver").await;
    assert_eq!(
        expect_json(&mut da, "hello", 30).await["control"]["you"],
        true
    );
    (emu, redis, a, b, da)
}

#[tokio::test]
async fn two_replicas_share_a_pod_one_driver_and_handover_crosses_replicas() {
    let (_emu, _redis, _a, b, mut da) = two_replicas_alice_drives_on_a().await;
    let mut db = attach_as(&b, &BOB, "alpha", "driver").await;
    let hb = expect_json(&mut db, "hello", 30).await;
    assert_eq!(
        hb["control"]["you"], false,
        "only one driver across replicas: {hb}"
    );
    let b_id = hb["connection_id"].as_str().unwrap().to_string();

    // Output is seen on both; only the holder's stdin arrives.
    send_bin(&mut db, b"echo from-bob\n").await;
    assert_eq!(
        expect_json(&mut db, "error", 30).await["code"],
        "not_driver"
    );
    send_text(&mut db, json!({"type": "control", "action": "acquire"})).await;
    assert_eq!(
        expect_json(&mut db, "error", 30).await["code"],
        "control_denied"
    );
    send_bin(&mut da, b"echo from-alice-$((3*3))\n").await;
    let out_b = expect_output(&mut db, "from-alice-9", 30).await;
    assert!(!out_b.contains("from-bob\r\n"), "{out_b:?}");

    // Handover across replicas: release on A, acquire on B; A's participants hear of it.
    send_text(&mut da, json!({"type": "control", "action": "release"})).await;
    expect_control(&mut db, "released", 30).await;
    send_text(&mut db, json!({"type": "control", "action": "acquire"})).await;
    let mut c = expect_control(&mut da, "acquired", 30).await;
    if c["holder"]["subject"] == "alice" {
        c = expect_control(&mut da, "acquired", 30).await;
    }
    assert_eq!(c["holder"]["connection_id"], b_id.as_str());
    send_bin(&mut db, b"echo bob-drives-$((4*4))\n").await;
    expect_output(&mut da, "bob-drives-16", 30).await;
    send_bin(&mut da, b"x").await;
    assert_eq!(
        expect_json(&mut da, "error", 30).await["code"],
        "not_driver"
    );
}

#[tokio::test]
async fn a_holder_partitioned_from_redis_is_fenced_out() {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let redis = Redis::start();
    let proxy = CutProxy::start(redis.port).await;
    let a = Server::start(
        emu.opts("attach")
            .env("ATTACHD__REDIS__URL", &proxy.url())
            .env("ATTACHD__ATTACH__LEASE_TTL", "3s"),
    );
    let b = kube_replica(&emu, &redis);
    let mut da = attach_as(&a, &ALICE, "alpha", "driver").await;
    assert_eq!(
        expect_json(&mut da, "hello", 30).await["control"]["you"],
        true
    );
    let mut db = attach_as(&b, &BOB, "alpha", "driver").await;
    expect_json(&mut db, "hello", 30).await;

    proxy.cut();
    // A cannot renew: after one lease lifetime it stops writing on its own.
    expect_control(&mut da, "revoked", 30).await;
    send_bin(&mut da, b"echo stale-writer\n").await;
    assert_eq!(
        expect_json(&mut da, "error", 30).await["code"],
        "not_driver"
    );
    // The lease expired in Redis too, so B can take the seat.
    let mut seated = false;
    for _ in 0..40 {
        send_text(&mut db, json!({"type": "control", "action": "acquire"})).await;
        loop {
            match next(&mut db, 5).await {
                Seen::Json(v) if v["type"] == "control" && v["holder"]["subject"] == "bob" => {
                    seated = true;
                    break;
                }
                Seen::Json(v) if v["type"] == "error" => break,
                Seen::Closed(c) => panic!("closed {c:?}"),
                _ => {}
            }
        }
        if seated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seated, "B never got the seat after A's lease expired");
    send_bin(&mut db, b"echo bob-$((7*6))\n").await;
    let out = expect_output(&mut db, "bob-42", 30).await;
    assert!(
        !out.contains("stale-writer"),
        "a fenced holder's input reached the pod: {out:?}"
    );
}

#[tokio::test]
async fn a_moderator_revokes_a_driver_attached_through_another_replica() {
    let (_emu, _redis, _a, b, mut da) = two_replicas_alice_drives_on_a().await;
    // Nobody is attached through B: it has no hub for the pod, only the shared lease.
    let r = b
        .api(&MOD)
        .call("DELETE", "/api/v1/sessions/alpha/control", None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let c = expect_control(&mut da, "revoked", 30).await;
    assert!(c["holder"].is_null(), "{c}");
    send_bin(&mut da, b"x").await;
    assert_eq!(
        expect_json(&mut da, "error", 30).await["code"],
        "not_driver"
    );
    b.wait_audit("revoked by the moderator", |r| {
        r["type"] == "attach.control.revoked" && r["subject"] == "moderator"
    })
    .await;
}

/// Each replica keeps the terminal state of its own stream from the pod, counted from when it
/// attached: a late joiner on replica B gets B's snapshot, with B's offsets, and live output.
#[tokio::test]
async fn a_late_joiner_on_another_replica_gets_that_replicas_snapshot() {
    let (_emu, _redis, _a, b, mut da) = two_replicas_alice_drives_on_a().await;
    let mut ob = attach_as(&b, &OLIVE, "alpha", "observer").await;
    let hb = expect_json(&mut ob, "hello", 30).await;
    let first = expect_json(&mut ob, "snapshot", 30).await;
    assert_eq!(first["reason"], "join");
    assert_eq!(first["offset"], hb["output_offset"]);
    send_bin(&mut da, b"echo across-$((6*7))\n").await;
    expect_output(&mut ob, "across-42", 30).await;

    let mut late = attach_as(&b, &OLIVE, "alpha", "observer").await;
    let hello = expect_json(&mut late, "hello", 30).await;
    let snap = expect_json(&mut late, "snapshot", 30).await;
    assert_eq!(snap["reason"], "join");
    assert_eq!(snap["offset"], hello["output_offset"]);
    assert!(snap["offset"].as_u64().unwrap() > 0);
    match next(&mut late, 30).await {
        Seen::Bin(b) => assert!(
            String::from_utf8_lossy(&b).contains("across-42"),
            "replica B's screen: {:?}",
            String::from_utf8_lossy(&b)
        ),
        other => panic!("snapshot payload expected, got {other:?}"),
    }
    // Live output continues after the snapshot on B.
    send_bin(&mut da, b"echo after-$((7*6))\n").await;
    expect_output(&mut late, "after-42", 30).await;
}

/// Each replica records the pod sessions it carries, from its own stream: after both carried
/// `alpha`, each replica's recordings API lists its own file, and both hold the output.
#[tokio::test]
async fn each_replica_that_carries_a_pod_records_it() {
    let (_emu, _redis, a, b, mut da) = two_replicas_alice_drives_on_a().await;
    let mut ob = attach_as(&b, &OLIVE, "alpha", "observer").await;
    expect_json(&mut ob, "snapshot", 30).await;
    send_bin(&mut da, b"echo recorded-$((6*7))\n").await;
    expect_output(&mut ob, "recorded-42", 30).await;
    for (name, srv) in [("A", &a), ("B", &b)] {
        let api = srv.api(&ALICE);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let list = api
                .call("GET", "/api/v1/sessions/alpha/recordings", None)
                .await;
            assert_eq!(list.status, 200, "replica {name}: {}", list.text);
            let files = list.body.as_array().cloned().unwrap_or_default();
            assert_eq!(
                files.len(),
                1,
                "replica {name} records alpha once: {}",
                list.text
            );
            let file = files[0]["file"].as_str().unwrap().to_owned();
            let cast = api
                .call(
                    "GET",
                    &format!("/api/v1/sessions/alpha/recordings/{file}"),
                    None,
                )
                .await;
            if cast.text.contains("recorded-42") && files[0]["verified"] == true {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replica {name}'s recording never held the output: {}",
                cast.text
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// A restarted replica begins a new recording of the pod it carries again; the chain and
/// both files still verify.
#[tokio::test]
async fn a_restarted_replica_continues_a_pods_recording_in_a_new_file() {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let redis = Redis::start();
    let mut a = kube_replica(&emu, &redis);
    for round in ["before", "after"] {
        let mut d = attach_as(&a, &ALICE, "alpha", "driver").await;
        expect_json(&mut d, "snapshot", 30).await;
        send_bin(&mut d, format!("echo {round}-$((6*7))\n").as_bytes()).await;
        expect_output(&mut d, &format!("{round}-42"), 30).await;
        drop(d);
        a.restart_graceful();
    }
    let dir = a.recordings_dir().join("acme").join("alpha");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "one file per start: {files:?}");
    let second = std::fs::read_to_string(&files[1]).unwrap();
    assert!(second.contains("after-42") && !second.contains("before-42"));
    let (ok, report) = cli_verify(&a.audit_path(), None);
    assert!(ok, "{report}");
    assert_eq!(report["recordings"]["files"], 2, "{report}");
}
