//! Core attach behaviour: roles, control handover, grace, expiry, revoke, scrollback, exit.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn driver_types_and_both_see_output_observer_is_read_only() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;

    let mut d = attach_as(&srv, &ALICE, &sid, "driver").await;
    let hello = expect_json(&mut d, "hello", 5).await;
    assert_eq!(hello["role"], "driver");
    assert_eq!(hello["control"]["you"], true);
    assert_eq!(hello["session_id"], sid.as_str());
    let my_id = hello["connection_id"].as_str().unwrap().to_string();
    assert_eq!(hello["control"]["holder"], my_id.as_str());
    assert!(hello["limits"]["max_message_bytes"].as_u64().unwrap() > 0);
    assert!(hello["idle_deadline"].as_str().unwrap().ends_with('Z'));

    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    let oh = expect_json(&mut o, "hello", 5).await;
    assert_eq!(oh["role"], "observer");
    assert_eq!(oh["control"]["you"], false);
    assert_eq!(oh["control"]["holder"], my_id.as_str());
    let p = expect_json(&mut d, "participants", 5).await;
    assert!(p["drivers"].as_u64().unwrap() >= 1);

    send_bin(&mut d, b"echo out-$((6*7))\n").await;
    expect_output(&mut d, "out-42", 10).await;
    expect_output(&mut o, "out-42", 10).await;

    // Observer stdin is dropped and answered; the terminal never sees it.
    send_bin(&mut o, b"echo observer-was-here\n").await;
    let e = expect_json(&mut o, "error", 5).await;
    assert_eq!(e["code"], "not_driver");
    // Observer acquire is denied.
    send_text(&mut o, json!({"type": "control", "action": "acquire"})).await;
    let e = expect_json(&mut o, "error", 5).await;
    assert_eq!(e["code"], "control_denied");
    send_bin(&mut d, b"echo after\n").await;
    let out = expect_output(&mut d, "after\r\n", 10).await;
    assert!(
        !out.contains("observer-was-here"),
        "observer input reached the pty: {out}"
    );
}

#[tokio::test]
async fn handover_release_then_acquire_by_another_driver() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    assert_eq!(
        expect_json(&mut a, "hello", 5).await["control"]["you"],
        true
    );
    let mut b = attach_as(&srv, &BOB, &sid, "driver").await;
    let bh = expect_json(&mut b, "hello", 5).await;
    assert_eq!(bh["control"]["you"], false);
    let b_id = bh["connection_id"].as_str().unwrap().to_string();

    // Bob cannot take it while Alice holds it, nor type.
    send_text(&mut b, json!({"type": "control", "action": "acquire"})).await;
    assert_eq!(
        expect_json(&mut b, "error", 5).await["code"],
        "control_denied"
    );
    send_bin(&mut b, b"x").await;
    assert_eq!(expect_json(&mut b, "error", 5).await["code"], "not_driver");

    send_text(&mut a, json!({"type": "control", "action": "release"})).await;
    let c = expect_control(&mut b, "released", 5).await;
    assert!(c["holder"].is_null());

    send_text(&mut b, json!({"type": "control", "action": "acquire"})).await;
    let mut c = expect_control(&mut a, "acquired", 5).await;
    if c["holder"]["subject"] == "alice" {
        // Alice's own seat-on-join announcement comes first.
        c = expect_control(&mut a, "acquired", 5).await;
    }
    assert_eq!(c["holder"]["connection_id"], b_id.as_str());
    assert_eq!(c["holder"]["subject"], "bob");
    send_bin(&mut b, b"echo bob-$((1+1))\n").await;
    expect_output(&mut a, "bob-2", 10).await;
    srv.wait_audit("control acquired by bob", |r| {
        r["type"] == "attach.control.acquired" && r["subject"] == "bob"
    })
    .await;
    srv.wait_audit("control released", |r| {
        r["type"] == "attach.control.released"
    })
    .await;
}

#[tokio::test]
async fn same_subject_reclaims_within_grace_others_cannot() {
    let srv = Server::start(Opts::default().env("ATTACHD__ATTACH__CONTROL_GRACE", "30s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    assert_eq!(
        expect_json(&mut a, "hello", 5).await["control"]["you"],
        true
    );
    let mut b = attach_as(&srv, &BOB, &sid, "driver").await;
    expect_json(&mut b, "hello", 5).await;
    drop(a);
    expect_control(&mut b, "disconnected", 10).await;
    send_text(&mut b, json!({"type": "control", "action": "acquire"})).await;
    assert_eq!(
        expect_json(&mut b, "error", 5).await["code"],
        "control_denied"
    );

    let mut a2 = attach_as(&srv, &ALICE, &sid, "driver").await;
    let h = expect_json(&mut a2, "hello", 5).await;
    assert_eq!(
        h["control"]["you"], true,
        "alice should reclaim her seat: {h}"
    );
    let c = expect_control(&mut b, "acquired", 5).await;
    assert_eq!(c["holder"]["subject"], "alice");
}

#[tokio::test]
async fn grace_runs_out_then_seat_is_free() {
    let srv = Server::start(Opts::default().env("ATTACHD__ATTACH__CONTROL_GRACE", "1s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut a, "hello", 5).await;
    let mut b = attach_as(&srv, &BOB, &sid, "driver").await;
    expect_json(&mut b, "hello", 5).await;
    drop(a);
    expect_control(&mut b, "disconnected", 10).await;
    expect_control(&mut b, "released", 10).await;
    send_text(&mut b, json!({"type": "control", "action": "acquire"})).await;
    let c = expect_control(&mut b, "acquired", 5).await;
    assert_eq!(c["holder"]["subject"], "bob");
}

#[tokio::test]
async fn idle_driver_loses_control_with_expired() {
    let srv = Server::start(Opts::default().env("ATTACHD__ATTACH__DRIVER_IDLE_TIMEOUT", "2s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    assert_eq!(
        expect_json(&mut a, "hello", 5).await["control"]["you"],
        true
    );
    let c = expect_control(&mut a, "expired", 10).await;
    assert!(c["holder"].is_null());
    send_bin(&mut a, b"x").await;
    assert_eq!(expect_json(&mut a, "error", 5).await["code"], "not_driver");
    srv.wait_audit("control expired", |r| r["type"] == "attach.control.expired")
        .await;
}

#[tokio::test]
async fn moderator_revokes_control() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    assert_eq!(
        expect_json(&mut a, "hello", 5).await["control"]["you"],
        true
    );

    // Without attach:moderate: 403. Another tenant: 404.
    let r = srv
        .api(&OLIVE)
        .call("DELETE", &format!("/api/v1/sessions/{sid}/control"), None)
        .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    let r = srv
        .api(&MALLORY)
        .call("DELETE", &format!("/api/v1/sessions/{sid}/control"), None)
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));

    let r = srv
        .api(&MOD)
        .call("DELETE", &format!("/api/v1/sessions/{sid}/control"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let c = expect_control(&mut a, "revoked", 5).await;
    assert!(c["holder"].is_null());
    send_bin(&mut a, b"x").await;
    assert_eq!(expect_json(&mut a, "error", 5).await["code"], "not_driver");
    srv.wait_audit("revoked", |r| {
        r["type"] == "attach.control.revoked" && r["subject"] == "moderator"
    })
    .await;
}

#[tokio::test]
async fn late_joiner_gets_hello_then_a_snapshot_of_the_screen() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut a, "hello", 5).await;
    send_bin(&mut a, b"echo scroll-$((100+23))\n").await;
    expect_output(&mut a, "scroll-123", 10).await;

    let mut late = attach_as(&srv, &OLIVE, &sid, "observer").await;
    let hello = match next(&mut late, 5).await {
        Seen::Json(v) if v["type"] == "hello" => v,
        other => panic!("first frame must be hello, got {other:?}"),
    };
    assert_eq!(hello["resumed"], false);
    assert_eq!(hello["size"]["cols"], 80);
    assert_eq!(hello["size"]["rows"], 24);
    let snap = expect_json(&mut late, "snapshot", 5).await;
    assert_eq!(snap["reason"], "join");
    assert_eq!(snap["skipped_bytes"], 0);
    assert_eq!(snap["offset"], hello["output_offset"]);
    assert_eq!(
        (snap["cols"].as_u64(), snap["rows"].as_u64()),
        (Some(80), Some(24))
    );
    match next(&mut late, 5).await {
        Seen::Bin(b) => assert!(
            String::from_utf8_lossy(&b).contains("scroll-123"),
            "snapshot: {:?}",
            String::from_utf8_lossy(&b)
        ),
        other => panic!("a binary snapshot payload must follow, got {other:?}"),
    }
}

#[tokio::test]
async fn exit_code_arrives_then_close_1000_and_session_is_gone() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut a, "hello", 5).await;
    send_bin(&mut a, b"exit 7\n").await;
    let e = expect_json(&mut o, "exit", 10).await;
    assert_eq!(e["code"], 7);
    assert_eq!(expect_close(&mut o, 10).await, Some(1000));
    assert_eq!(expect_json(&mut a, "exit", 10).await["code"], 7);
    assert_eq!(expect_close(&mut a, 10).await, Some(1000));
    srv.wait_audit("session.exited", |r| r["type"] == "session.exited")
        .await;
    let r = api
        .call("GET", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn deleting_a_session_closes_participants_with_4005() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut o, "hello", 5).await;
    let r = api
        .call("DELETE", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(expect_close(&mut o, 10).await, Some(4005));
    srv.wait_audit("session.deleted", |r| r["type"] == "session.deleted")
        .await;
    srv.wait_audit("disconnect 4005", |r| {
        r["type"] == "attach.disconnect" && r["close_code"] == 4005
    })
    .await;
}

#[tokio::test]
async fn resize_reaches_the_pty_and_is_bounds_checked() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut a, "hello", 5).await;
    send_text(&mut a, json!({"type": "resize", "cols": 123, "rows": 45})).await;
    send_bin(&mut a, b"stty size\n").await;
    expect_output(&mut a, "45 123", 10).await;
    send_text(&mut a, json!({"type": "resize", "cols": 0, "rows": 45})).await;
    assert_eq!(
        expect_json(&mut a, "error", 5).await["code"],
        "invalid_message"
    );
    send_text(&mut a, json!({"type": "resize", "cols": 1001, "rows": 45})).await;
    assert_eq!(
        expect_json(&mut a, "error", 5).await["code"],
        "invalid_message"
    );
}

/// Every route answers a method it does not have with 405 `method_not_allowed` and an `Allow`
/// header, and an unknown path, inside a session's routes too, with the JSON 404.
#[tokio::test]
async fn wrong_methods_get_405_with_allow_and_unknown_paths_404() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let s = format!("/api/v1/sessions/{sid}");
    for (method, path, allow) in [
        ("PUT", "/api/v1/sessions".to_string(), "GET, POST"),
        ("PUT", s.clone(), "GET, DELETE"),
        ("POST", format!("{s}/attach"), "GET"),
        ("GET", format!("{s}/attach-tickets"), "POST"),
        ("GET", format!("{s}/control"), "DELETE"),
        ("POST", "/api/v1/audit".to_string(), "GET"),
        ("POST", "/api/v1/audit/verify".to_string(), "GET"),
    ] {
        let r = api.call(method, &path, None).await;
        assert_eq!(
            (r.status, r.error_code()),
            (405, "method_not_allowed"),
            "{method} {path}: {}",
            r.text
        );
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }
    for path in [
        format!("{s}/"),
        format!("{s}/nope"),
        format!("{s}/attach/x"),
        "/api/v1/sessions/".to_string(),
        "/api/v1/nope".to_string(),
    ] {
        let r = api.call("GET", &path, None).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, "not_found"),
            "{path}: {}",
            r.text
        );
    }
    // The session's own routes still work through the same table.
    let r = api.call("GET", &s, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
