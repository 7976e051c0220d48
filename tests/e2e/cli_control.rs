//! Asking for control from the command line: the holder's client prompts on stderr and
//! answers with `~y`/`~n`; a client without control asks with `~r`. Real PTY, real attachd.

use serde_json::json;

use crate::cli_pty::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_denies_and_grants_requests_and_asks_back() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut cli = tokio::task::block_in_place(|| CliPty::attach(&srv, &ALICE, &sid, &[]));
    tokio::task::block_in_place(|| {
        attached(&cli);
        cli.shell_until("$((6*7))", "42", 10);
    });
    let mut bob = attach_as(&srv, &BOB, &sid, "driver").await;
    let hello = expect_json(&mut bob, "hello", 5).await;
    assert_eq!(hello["control"]["subject"], "alice", "{hello}");
    let request = json!({"type": "control", "action": "request"});

    // Asked: one line on the holder's terminal; `~n` in the middle of a line denies.
    send_text(&mut bob, request.clone()).await;
    expect_json(&mut bob, "control_request", 5).await;
    tokio::task::block_in_place(|| {
        cli.expect(
            "attachd: Bob Builder asks for control: ~y gives it, ~n denies",
            5,
        );
        cli.type_keys("echo \"[NO_~n$((1+1))]\"\r");
    });
    let ended = expect_json(&mut bob, "control_request_ended", 5).await;
    assert_eq!(ended["outcome"], "denied", "{ended}");
    tokio::task::block_in_place(|| {
        // The escape was not typed into the session; the rest of the line was.
        cli.expect("[NO_2]", 5);
        cli.expect("Bob Builder's request for control ended: denied", 5);
    });

    // Asked again: `~y` hands control over.
    send_text(&mut bob, request.clone()).await;
    expect_json(&mut bob, "control_request", 5).await;
    tokio::task::block_in_place(|| {
        cli.expect_times("Bob Builder asks for control: ~y", 2, 5);
        cli.type_keys("~y");
        cli.expect(
            "you no longer hold control (granted; Bob Builder holds it)",
            5,
        );
    });
    let control = expect_control(&mut bob, "granted", 5).await;
    assert_eq!(control["holder"]["subject"], "bob", "{control}");
    send_bin(&mut bob, b"echo \"[BOB_$((3+4))]\"\r").await;
    expect_output(&mut bob, "[BOB_7]", 10).await;

    // Now without control, the command-line client asks with `~r`; bob grants it back.
    tokio::task::block_in_place(|| {
        cli.type_keys("~r");
        cli.expect("asked Bob Builder for control", 5);
    });
    let asked = expect_json(&mut bob, "control_request", 5).await;
    assert_eq!(asked["from"]["subject"], "alice", "{asked}");
    let alice = asked["from"]["connection_id"].as_str().unwrap().to_string();
    send_text(
        &mut bob,
        json!({"type": "control", "action": "grant", "to": alice}),
    )
    .await;
    expect_control(&mut bob, "granted", 5).await;
    tokio::task::block_in_place(|| {
        cli.expect("you hold control: your input is sent", 5);
        cli.shell_until("$((8*8))", "64", 10);
        cli.type_keys("~.");
        assert_eq!(cli.wait(10), 0);
    });
    let types: Vec<String> = srv
        .audit_records()
        .into_iter()
        .filter_map(|r| r["type"].as_str().map(String::from))
        .filter(|t| t.starts_with("attach.control."))
        .collect();
    for t in [
        "attach.control.requested",
        "attach.control.request.denied",
        "attach.control.granted",
    ] {
        assert!(types.iter().any(|x| x == t), "{t}: {types:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_from_the_command_line_expires() {
    let srv = Server::start(Opts::default().env("ATTACHD__ATTACH__CONTROL_REQUEST_TTL", "2s"));
    let sid = srv.api(&ALICE).create_session().await;
    let mut alice = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut alice, "hello", 5).await;
    let mut cli = tokio::task::block_in_place(|| CliPty::attach(&srv, &BOB, &sid, &[]));
    tokio::task::block_in_place(|| {
        attached(&cli);
        cli.expect("alice holds control", 5);
        cli.type_keys("~?");
        cli.expect("~r ask for control", 5);
        cli.type_keys("~r");
        cli.expect("asked alice for control", 5);
        cli.type_keys("~r");
        cli.expect("your request for control is still waiting", 5);
    });
    let asked = expect_json(&mut alice, "control_request", 5).await;
    assert_eq!(asked["from"]["subject"], "bob", "{asked}");
    tokio::task::block_in_place(|| {
        cli.expect("your request for control was not answered in time", 10);
        cli.type_keys("~.");
        assert_eq!(cli.wait(10), 0);
    });
    // An observer cannot ask.
    let mut obs =
        tokio::task::block_in_place(|| CliPty::attach(&srv, &OLIVE, &sid, &["--observe"]));
    tokio::task::block_in_place(|| {
        attached(&obs);
        obs.type_keys("~r");
        obs.expect("observers cannot ask for control", 5);
        obs.type_keys("~.");
        assert_eq!(obs.wait(10), 0);
    });
}
