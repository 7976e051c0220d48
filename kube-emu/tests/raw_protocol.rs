//! Wire-level checks kube-rs hides: subprotocol selection and refusal, the initial empty frame,
//! ping/pong, the v5 close signal, and the exact `Status` bytes on channel 3.

mod common;

use common::{Emu, NS, TOKEN, WAIT};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    client_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    WebSocketStream,
};

type Ws = WebSocketStream<TcpStream>;

async fn open(
    emu: &Emu,
    path_and_query: &str,
    protocols: &str,
    token: Option<&str>,
) -> Result<(Ws, String), (u16, String)> {
    let url = format!("ws://{}{path_and_query}", emu.authority());
    let mut req = url.into_client_request().unwrap();
    if !protocols.is_empty() {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    if let Some(token) = token {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    let tcp = TcpStream::connect(emu.authority()).await.unwrap();
    match client_async(req, tcp).await {
        Ok((ws, res)) => {
            let proto = res
                .headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            Ok((ws, proto))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((res.status().as_u16(), body))
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Collects channel-1 output until the channel-3 status; returns (stdout, status JSON).
async fn run_to_status(ws: &mut Ws) -> (String, serde_json::Value) {
    let mut stdout = Vec::new();
    loop {
        let frame = next_binary(ws).await.expect("stream ended before a status");
        match frame[0] {
            1 => stdout.extend_from_slice(&frame[1..]),
            3 => {
                return (
                    String::from_utf8_lossy(&stdout).into_owned(),
                    serde_json::from_slice(&frame[1..]).unwrap(),
                )
            }
            _ => {}
        }
    }
}

fn exec_path(cmd: &[&str], extra: &str) -> String {
    let mut q = String::from("?stdout=true");
    for c in cmd {
        q.push_str("&command=");
        q.extend(form_urlencoded::byte_serialize(c.as_bytes()));
    }
    format!("/api/v1/namespaces/{NS}/pods/p1/exec{q}{extra}")
}

#[tokio::test]
async fn subprotocol_follows_the_client_offer_order_within_what_the_server_allows() {
    let emu = Emu::start(&["--pod", "name=p1,tenant=acme"]);
    let path = exec_path(&["true"], "");
    let (_, p) = open(
        &emu,
        &path,
        "v5.channel.k8s.io, v4.channel.k8s.io",
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(p, "v5.channel.k8s.io");
    let (_, p) = open(
        &emu,
        &path,
        "v4.channel.k8s.io,v5.channel.k8s.io",
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(p, "v4.channel.k8s.io");
    let (_, p) = open(
        &emu,
        &path,
        "base64.channel.k8s.io, v4.channel.k8s.io",
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(p, "v4.channel.k8s.io");

    let (code, body) = open(&emu, &path, "channel.k8s.io", Some(TOKEN))
        .await
        .err()
        .unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("\"kind\":\"Status\""), "{body}");
    let (code, _) = open(&emu, &path, "", Some(TOKEN)).await.err().unwrap();
    assert_eq!(code, 400);

    let v4_only = Emu::start(&["--pod", "name=p1,tenant=acme", "--max-protocol", "v4"]);
    let (_, p) = open(
        &v4_only,
        &path,
        "v5.channel.k8s.io, v4.channel.k8s.io",
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(p, "v4.channel.k8s.io");
    let (code, _) = open(&v4_only, &path, "v5.channel.k8s.io", Some(TOKEN))
        .await
        .err()
        .unwrap();
    assert_eq!(code, 400);
}

#[tokio::test]
async fn bearer_token_is_required_for_upgrades() {
    let emu = Emu::start(&["--pod", "name=p1,tenant=acme"]);
    let path = exec_path(&["true"], "");
    let (code, body) = open(&emu, &path, "v5.channel.k8s.io", None)
        .await
        .err()
        .unwrap();
    assert_eq!(code, 401);
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    let (code, _) = open(&emu, &path, "v5.channel.k8s.io", Some("nope"))
        .await
        .err()
        .unwrap();
    assert_eq!(code, 401);
}

#[tokio::test]
async fn first_frame_is_empty_on_the_lowest_writable_channel_and_statuses_are_exact() {
    let emu = Emu::start(&["--pod", "name=p1,tenant=acme"]);
    let (mut ws, _) = open(
        &emu,
        &exec_path(&["sh", "-c", "printf hi"], ""),
        "v5.channel.k8s.io",
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![1u8]);
    let (out, status) = run_to_status(&mut ws).await;
    assert_eq!(out, "hi");
    assert_eq!(
        status,
        serde_json::json!({"metadata": {}, "status": "Success"})
    );

    let (mut ws, _) = open(
        &emu,
        &exec_path(&["sh", "-c", "exit 7"], "&tty=true"),
        "v4.channel.k8s.io",
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![1u8]);
    let (_, status) = run_to_status(&mut ws).await;
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "7");
    // After the status the server closes: a close frame, then the TCP connection ends.
    assert!(next_binary(&mut ws).await.is_none());
    let t0 = std::time::Instant::now();
    let end =
        tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
    assert!(
        end.is_ok(),
        "the connection stayed open after the close handshake"
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_millis(500),
        "TCP close lingered {:?}",
        t0.elapsed()
    );

    // stdin only: the error channel is the lowest writable one.
    let path = format!("/api/v1/namespaces/{NS}/pods/p1/exec?stdin=true&command=true");
    let (mut ws, _) = open(&emu, &path, "v5.channel.k8s.io", Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![3u8]);
}

#[tokio::test]
async fn ping_is_answered_and_v5_close_ends_stdin() {
    let emu = Emu::start(&["--pod", "name=p1,tenant=acme"]);
    let path = exec_path(&["cat"], "&stdin=true");
    let (mut ws, _) = open(&emu, &path, "v5.channel.k8s.io", Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![1u8]);

    ws.send(Message::Ping(b"are-you-there".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(&p[..], b"are-you-there");
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("no pong: {other:?}"),
        }
    }

    ws.send(Message::Binary(b"\x00piped".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![255u8, 0].into()))
        .await
        .unwrap();
    let (out, status) = run_to_status(&mut ws).await;
    assert_eq!(out, "piped");
    assert_eq!(status["status"], "Success");
}

#[tokio::test]
async fn invalid_requests_get_status_errors() {
    let emu = Emu::start(&["--pod", "name=p1,tenant=acme"]);
    let bad = [
        (
            format!("/api/v1/namespaces/{NS}/pods/p1/exec?command=true"),
            400,
        ),
        (
            format!("/api/v1/namespaces/{NS}/pods/p1/exec?stdout=true"),
            400,
        ),
        (
            format!("/api/v1/namespaces/{NS}/pods/p1/attach?stdout=true&container=nope"),
            400,
        ),
        (
            format!("/api/v1/namespaces/{NS}/pods/ghost/attach?stdout=true"),
            404,
        ),
        (
            "/api/v1/namespaces/other/pods/p1/attach?stdout=true".to_string(),
            404,
        ),
    ];
    for (path, want) in bad {
        let (code, body) = open(&emu, &path, "v5.channel.k8s.io", Some(TOKEN))
            .await
            .err()
            .unwrap();
        assert_eq!(code, want, "{path}: {body}");
        assert!(body.contains("\"kind\":\"Status\""), "{body}");
    }
}
