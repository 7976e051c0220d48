//! A replica offered more connections than its open-file limit allows: attaches past
//! `server.max_connections` get 503 `at_capacity`, connections past the headroom are closed as
//! soon as accepted, the session it holds keeps working, the probes answer, and closing some
//! connections lets new ones in, all without an `EMFILE`.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream as TokioTcp;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::support::*;

/// The open-file limit attachd runs under (soft and hard).
const NOFILE: u64 = 400;
/// Its default `server.max_connections`: 400 − (128 + 64 + 400 / 10), README "Capacity and
/// sizing".
const MAX: usize = 168;
/// Connections past `MAX` still served (everything but attaches).
const HEADROOM: usize = 64;

/// An attach of `sid` with `ticket`: the socket, or the refusal's status, `Retry-After` and
/// body.
async fn try_attach(srv: &Server, sid: &str, ticket: &str) -> Result<Ws, (u16, String, String)> {
    match ws_connect(
        &srv.ws_url(&format!("/api/v1/sessions/{sid}/attach")),
        &[
            ("Authorization", &format!("Bearer {ticket}")),
            ("Sec-WebSocket-Protocol", "attach.v1"),
        ],
    )
    .await
    {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => {
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            Err((resp.status().as_u16(), retry, body.into_owned()))
        }
        Err(e) => panic!("an attach was neither accepted nor refused: {e}"),
    }
}

/// Whether each of `socks` (which sent nothing) was closed by the server within `wait`.
async fn closed_unanswered(socks: &mut [TokioTcp], wait: Duration) -> Vec<bool> {
    join_all(socks.iter_mut().map(|s| async move {
        let mut b = [0u8; 64];
        match tokio::time::timeout(wait, s.read(&mut b)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => panic!(
                "a connection past the headroom was answered: {:?}",
                String::from_utf8_lossy(&b[..n])
            ),
        }
    }))
    .await
}

#[tokio::test]
async fn past_its_open_file_limit_a_replica_refuses_cleanly_and_stays_whole() {
    let mut srv = Server::start(
        Opts::default()
            .nofile(NOFILE)
            .env("ATTACHD__LIMITS__SESSION_PARTICIPANTS", "1000")
            .env("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "1000")
            // Idle sockets stay open through the test (they would get 408 at their deadline).
            .env("ATTACHD__SERVER__HANDSHAKE_TIMEOUT", "120s")
            .env("ATTACHD__WS__PING_INTERVAL", "120s")
            .env("ATTACHD__WS__HEARTBEAT_TIMEOUT", "300s"),
    );
    let m = srv.metrics().await;
    assert_eq!(
        metric(&m, "attachd_api_connections_max"),
        MAX as f64,
        "the default is the open-file limit less the reserve"
    );

    // One client for every ticket: one kept-alive connection besides the attaches.
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let mut driver = try_attach(&srv, &sid, &api.ticket(&sid, "driver").await)
        .await
        .expect("the driver attaches");
    expect_json(&mut driver, "hello", 10).await;

    // Observers until one is refused.
    let mut held: Vec<Ws> = Vec::new();
    let (refused_ticket, (status, retry, body)) = loop {
        let t = api.ticket(&sid, "observer").await;
        match try_attach(&srv, &sid, &t).await {
            Ok(ws) => held.push(ws),
            Err(refusal) => break (t, refusal),
        }
        assert!(
            held.len() < MAX,
            "more attached than server.max_connections"
        );
    };
    eprintln!(
        "{} observers and the driver attached before at_capacity",
        held.len()
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"at_capacity\""), "{body}");
    assert_eq!(retry, "1");
    // What is open besides the attaches is the ticket client's connection or two.
    assert!(
        held.len() + 1 >= MAX - 2,
        "only {} attached of {MAX}",
        held.len() + 1
    );

    // The session still works at capacity.
    send_bin(&mut driver, b"echo full-$((6*7))\r").await;
    expect_output(&mut driver, "full-42", 10).await;

    // Connections past the headroom are closed as soon as they are accepted; those within it
    // stay open (they could still ask for a ticket or a probe).
    let offered = HEADROOM + 16;
    let mut idle = Vec::new();
    for _ in 0..offered {
        idle.push(TokioTcp::connect(srv.addr()).await.expect("connect"));
    }
    let closed = closed_unanswered(&mut idle, Duration::from_secs(2)).await;
    let n_closed = closed.iter().filter(|c| **c).count();
    eprintln!("{n_closed} of {offered} further connections closed at once");
    assert!(
        n_closed >= 1 && offered - n_closed <= HEADROOM,
        "{n_closed} of {offered} closed"
    );

    // The probes answer on the admin listener however full the API listener is.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            reqwest::get(format!("http://127.0.0.1:{}{path}", srv.admin_port)),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} did not answer within 5 s"))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let m = srv.metrics().await;
    assert!(metric(&m, "attachd_capacity_refusals_total{how=\"answered\"}") >= 1.0);
    assert!(metric(&m, "attachd_capacity_refusals_total{how=\"closed\"}") >= n_closed as f64);
    assert!(metric(&m, "attachd_api_connections") >= MAX as f64, "{m}");

    // Closing some lets new ones in, and the refused ticket was not used up.
    drop(idle);
    held.truncate(held.len() - 10);
    let mut open = f64::MAX;
    for _ in 0..100 {
        open = metric(&srv.metrics().await, "attachd_api_connections");
        if open <= (MAX - 5) as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open <= (MAX - 5) as f64, "{open} still open");
    let mut late = try_attach(&srv, &sid, &refused_ticket)
        .await
        .expect("the ticket refused at capacity attaches once there is room");
    expect_json(&mut late, "hello", 10).await;
    let again = try_attach(&srv, &sid, &api.ticket(&sid, "observer").await).await;
    assert!(again.is_ok(), "{:?}", again.err());

    send_bin(&mut driver, b"echo after-$((6*7))\r").await;
    expect_output(&mut late, "after-42", 10).await;
    srv.wait_audit("the at_capacity refusal", |r| {
        r["type"] == "attach.connect" && r["reason"] == "at_capacity"
    })
    .await;
    assert!(
        !srv.logs().contains("Too many open files"),
        "accepting never ran out of files"
    );
    let alive = srv.child.as_mut().map(|c| c.try_wait());
    assert!(
        matches!(alive, Some(Ok(None))),
        "attachd is still running: {alive:?}"
    );
}
