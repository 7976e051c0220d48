//! Names on screen and asking for control: `hello` and `control` name their holder, a driver
//! asks the holder for control, the holder grants or denies, and requests expire.

use serde_json::json;

use crate::redis_procs::Redis;
use crate::support::*;

#[tokio::test]
async fn hello_and_control_frames_name_the_holder() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    let ah = expect_json(&mut a, "hello", 5).await;
    assert_eq!(ah["subject"], "alice");
    assert!(ah.get("name").is_none(), "no display name configured: {ah}");
    assert_eq!(ah["control"]["subject"], "alice");

    let mut b = attach_as(&srv, &BOB, &sid, "driver").await;
    let bh = expect_json(&mut b, "hello", 5).await;
    assert_eq!(bh["subject"], "bob");
    assert_eq!(bh["name"], "Bob Builder");
    assert_eq!(bh["control"]["you"], false);
    assert_eq!(bh["control"]["holder"], ah["connection_id"]);
    assert_eq!(bh["control"]["subject"], "alice");

    send_text(&mut a, json!({"type": "control", "action": "release"})).await;
    expect_control(&mut b, "released", 5).await;
    send_text(&mut b, json!({"type": "control", "action": "acquire"})).await;
    let c = expect_control(&mut a, "acquired", 5).await;
    assert_eq!(c["holder"]["connection_id"], bh["connection_id"]);
    assert_eq!(c["holder"]["subject"], "bob");
    assert_eq!(c["holder"]["name"], "Bob Builder");

    // An observer's hello names the holder too, with its display name.
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    let oh = expect_json(&mut o, "hello", 5).await;
    assert_eq!(oh["subject"], "olive");
    assert_eq!(oh["control"]["subject"], "bob");
    assert_eq!(oh["control"]["name"], "Bob Builder");
}

/// The connection id in a `hello`.
fn conn_id(hello: &serde_json::Value) -> String {
    hello["connection_id"].as_str().unwrap().to_string()
}

async fn control(ws: &mut Ws, action: &str, to: Option<&str>) {
    let mut m = json!({"type": "control", "action": action});
    if let Some(to) = to {
        m["to"] = json!(to);
    }
    send_text(ws, m).await;
}

/// Waits for a `control_request_ended` with `outcome`, from `from`.
async fn expect_ended(ws: &mut Ws, from: &str, outcome: &str, secs: u64) {
    let e = expect_json(ws, "control_request_ended", secs).await;
    assert_eq!(
        (e["from"]["connection_id"].as_str(), e["outcome"].as_str()),
        (Some(from), Some(outcome)),
        "{e}"
    );
}

fn has(srv: &Server, ty: &str, conn: &str) -> bool {
    srv.audit_records()
        .iter()
        .any(|r| r["type"] == ty && r["connection_id"] == conn)
}

#[tokio::test]
async fn a_driver_asks_the_holder_who_denies_grants_or_lets_it_expire() {
    let srv = Server::start(Opts::default().env("ATTACHD__ATTACH__CONTROL_REQUEST_TTL", "2s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
    let a_id = conn_id(&expect_json(&mut a, "hello", 5).await);
    let mut b = attach_as(&srv, &BOB, &sid, "driver").await;
    let b_id = conn_id(&expect_json(&mut b, "hello", 5).await);

    // Only the holder answers, and only pending requests.
    control(&mut b, "grant", Some(&a_id)).await;
    assert_eq!(
        expect_json(&mut b, "error", 5).await["code"],
        "control_denied"
    );
    control(&mut a, "deny", Some(&b_id)).await;
    assert_eq!(
        expect_json(&mut a, "error", 5).await["code"],
        "control_denied"
    );

    // Bob asks: both parties see the request; a second one while pending is refused.
    control(&mut b, "request", None).await;
    let r = expect_json(&mut a, "control_request", 5).await;
    assert_eq!(r["from"]["connection_id"], b_id.as_str());
    assert_eq!(r["from"]["subject"], "bob");
    assert_eq!(r["from"]["name"], "Bob Builder");
    assert!(r["expires_at"].as_str().unwrap().ends_with('Z'));
    expect_json(&mut b, "control_request", 5).await;
    control(&mut b, "request", None).await;
    assert_eq!(
        expect_json(&mut b, "error", 5).await["code"],
        "control_denied"
    );

    // Alice denies: both hear it, the seat stays hers.
    control(&mut a, "deny", Some(&b_id)).await;
    expect_ended(&mut a, &b_id, "denied", 5).await;
    expect_ended(&mut b, &b_id, "denied", 5).await;
    send_bin(&mut b, b"echo nope\n").await;
    assert_eq!(expect_json(&mut b, "error", 5).await["code"], "not_driver");

    // Bob asks again and Alice grants: the seat moves at once.
    control(&mut b, "request", None).await;
    expect_json(&mut a, "control_request", 5).await;
    control(&mut a, "grant", Some(&b_id)).await;
    let c = expect_control(&mut a, "granted", 5).await;
    assert_eq!(c["holder"]["connection_id"], b_id.as_str());
    assert_eq!(c["holder"]["name"], "Bob Builder");
    expect_control(&mut b, "granted", 5).await;
    send_bin(&mut a, b"x").await;
    assert_eq!(expect_json(&mut a, "error", 5).await["code"], "not_driver");
    send_bin(&mut b, b"echo bob-$((5*5))\n").await;
    expect_output(&mut a, "bob-25", 10).await;

    // Alice asks back; nobody answers: it expires for both.
    control(&mut a, "request", None).await;
    expect_json(&mut b, "control_request", 5).await;
    expect_ended(&mut b, &a_id, "expired", 10).await;
    expect_ended(&mut a, &a_id, "expired", 10).await;

    // A requester that leaves withdraws its request.
    control(&mut a, "request", None).await;
    expect_json(&mut b, "control_request", 5).await;
    drop(a);
    expect_ended(&mut b, &a_id, "withdrawn", 10).await;

    // Every step is audited.
    srv.wait_audit("withdrawn", |r| {
        r["type"] == "attach.control.request.withdrawn"
    })
    .await;
    assert!(has(&srv, "attach.control.requested", &b_id));
    assert!(has(&srv, "attach.control.requested", &a_id));
    assert!(has(&srv, "attach.control.request.denied", &a_id));
    assert!(has(&srv, "attach.control.request.expired", &a_id));
    let granted = srv
        .audit_records()
        .into_iter()
        .find(|r| r["type"] == "attach.control.granted")
        .expect("granted record");
    assert_eq!(granted["connection_id"], b_id.as_str());
    assert_eq!(granted["subject"], "bob");
    assert_eq!(granted["granted_by"], "alice");
}

#[tokio::test]
async fn an_observer_cannot_ask_and_a_free_seat_is_simply_taken() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    expect_json(&mut o, "hello", 5).await;
    control(&mut o, "request", None).await;
    assert_eq!(
        expect_json(&mut o, "error", 5).await["code"],
        "control_denied"
    );
    // Nobody holds the session: a request acquires it.
    let mut b = attach_as(&srv, &BOB, &sid, "driver").await;
    expect_json(&mut b, "hello", 5).await;
    control(&mut b, "release", None).await;
    expect_control(&mut o, "released", 5).await;
    control(&mut b, "request", None).await;
    let c = expect_control(&mut o, "acquired", 5).await;
    assert_eq!(c["holder"]["subject"], "bob");
}

fn kube_replica(emu: &KubeEmu, redis: &Redis) -> Server {
    Server::start(
        emu.opts("attach")
            .env("ATTACHD__REDIS__URL", &redis.url())
            .env("ATTACHD__ATTACH__LEASE_TTL", "3s")
            .env("ATTACHD__ATTACH__CONTROL_REQUEST_TTL", "2s"),
    )
}

#[tokio::test]
async fn requests_and_grants_cross_replicas() {
    let emu = KubeEmu::start(&[("alpha", "acme")]);
    let redis = Redis::start();
    let ra = kube_replica(&emu, &redis);
    let rb = kube_replica(&emu, &redis);
    let mut a = attach_as(&ra, &ALICE, "alpha", "driver").await;
    let ah = expect_json(&mut a, "hello", 30).await;
    assert_eq!(ah["control"]["you"], true);
    let a_id = conn_id(&ah);
    let mut b = attach_as(&rb, &BOB, "alpha", "driver").await;
    let bh = expect_json(&mut b, "hello", 30).await;
    assert_eq!(bh["control"]["subject"], "alice", "{bh}");
    let b_id = conn_id(&bh);

    // Bob on B asks Alice on A, who grants: the lease moves in Redis, B seats Bob.
    control(&mut b, "request", None).await;
    let r = expect_json(&mut a, "control_request", 30).await;
    assert_eq!(r["from"]["connection_id"], b_id.as_str());
    control(&mut a, "grant", Some(&b_id)).await;
    let c = expect_control(&mut b, "granted", 30).await;
    assert_eq!(c["holder"]["connection_id"], b_id.as_str());
    let c = expect_control(&mut a, "granted", 30).await;
    assert_eq!(c["holder"]["subject"], "bob");
    send_bin(&mut b, b"echo bob-over-b-$((6*6))\n").await;
    expect_output(&mut a, "bob-over-b-36", 30).await;
    send_bin(&mut a, b"x").await;
    assert_eq!(expect_json(&mut a, "error", 30).await["code"], "not_driver");

    // Alice asks back from A; Bob denies on B; then one expires unanswered.
    control(&mut a, "request", None).await;
    expect_json(&mut b, "control_request", 30).await;
    control(&mut b, "deny", Some(&a_id)).await;
    expect_ended(&mut a, &a_id, "denied", 30).await;
    control(&mut a, "request", None).await;
    expect_json(&mut b, "control_request", 30).await;
    expect_ended(&mut a, &a_id, "expired", 30).await;
    expect_ended(&mut b, &a_id, "expired", 30).await;

    // Bob still drives after all that; the seat renews on B at the granted epoch.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    send_bin(&mut b, b"echo still-bob-$((7*7))\n").await;
    expect_output(&mut a, "still-bob-49", 30).await;
    ra.wait_audit("denied on B? no: granted on A", |r| {
        r["type"] == "attach.control.granted" && r["granted_by"] == "alice"
    })
    .await;
    rb.wait_audit("denied on B", |r| {
        r["type"] == "attach.control.request.denied"
    })
    .await;
    ra.wait_audit("expired on A", |r| {
        r["type"] == "attach.control.request.expired"
    })
    .await;
}
