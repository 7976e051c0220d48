//! Names on screen and asking for control: `hello` and `control` name their holder, a driver
//! asks the holder for control, the holder grants or denies, and requests expire.

use serde_json::json;

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
