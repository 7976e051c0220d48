//! Every refusal of the attach handshake (SPEC §4), subprotocol negotiation, and the audit of
//! each attempt. Refusals are checked with a raw HTTP upgrade so nothing hides the status.
//!
//! Over 500 lines: one test per SPEC §4 refusal, in SPEC order.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::support::*;

fn attach_path(sid: &str) -> String {
    format!("/api/v1/sessions/{sid}/attach")
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn credential_in_url_is_refused_even_when_valid() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for param in ["ticket", "token", "access_token", "auth", "TOKEN"] {
        let t = api.ticket(&sid, "driver").await;
        let (st, _, body) = raw_upgrade(
            srv.addr(),
            &format!("{}?{param}={t}", attach_path(&sid)),
            &[("Authorization", &bearer(&t))],
        )
        .await;
        assert_eq!((st, code(&body).as_str()), (400, "token_in_url"), "{param}");
        assert!(!srv.logs().contains(&t), "ticket leaked into logs");
        assert!(!srv.audit_text().contains(&t), "ticket leaked into audit");
    }
    srv.wait_audit("token_in_url audited", |r| {
        r["type"] == "attach.connect" && r["outcome"] == "refused" && r["reason"] == "token_in_url"
    })
    .await;
}

/// Two `Origin` headers (allowed + evil) are ambiguous: 403, whatever their order; two bearer
/// subprotocol entries (two credentials) are refused as well.
#[tokio::test]
async fn ambiguous_origins_and_bearer_entries_are_refused() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let t = api.ticket(&sid, "observer").await;
    for (first, second) in [
        ("https://app.example.com", "https://evil.example.com"),
        ("https://evil.example.com", "https://app.example.com"),
    ] {
        let (st, _, body) = raw_upgrade(
            srv.addr(),
            &attach_path(&sid),
            &[
                ("Authorization", &bearer(&t)),
                ("Origin", first),
                ("Origin", second),
            ],
        )
        .await;
        assert_eq!((st, code(&body).as_str()), (403, "origin_not_allowed"));
    }
    let entry = |t: &str| {
        format!(
            "attach.v1.bearer.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t)
        )
    };
    let other = api.ticket(&sid, "observer").await;
    let offer = format!("attach.v1, {}, {}", entry(&t), entry(&other));
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Sec-WebSocket-Protocol", &offer)],
    )
    .await;
    assert_eq!((st, code(&body).as_str()), (400, "unsupported_protocol"));
    // Neither refusal consumed the ticket.
    let (st, _, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Authorization", &bearer(&t))],
    )
    .await;
    assert_eq!(st, 101);
}

#[tokio::test]
async fn foreign_origin_is_refused_for_header_credentials_too() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let t = api.ticket(&sid, "driver").await;
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.com",
        "https://APP.example.com",
        "http://app.example.com",
        "null",
    ] {
        let (st, _, body) = raw_upgrade(
            srv.addr(),
            &attach_path(&sid),
            &[("Authorization", &bearer(&t)), ("Origin", origin)],
        )
        .await;
        assert_eq!(
            (st, code(&body).as_str()),
            (403, "origin_not_allowed"),
            "{origin}"
        );
    }
    // The refused attempts did not consume the ticket; the allowed origin works.
    let (st, head, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[
            ("Authorization", &bearer(&t)),
            ("Origin", "https://app.example.com"),
        ],
    )
    .await;
    assert_eq!(st, 101, "{head}");
}

#[tokio::test]
async fn cookie_tickets_need_an_allowed_origin_cswsh() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let r = api
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "observer", "delivery": "cookie"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        r.body.get("ticket").is_none(),
        "cookie delivery must not put the secret in the body"
    );
    let set_cookie = r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.starts_with("attach_ticket=atk_"), "{set_cookie}");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path=/api/v1/sessions/{sid}/attach"),
        "Max-Age=30",
        "Secure",
    ] {
        assert!(set_cookie.contains(attr), "missing {attr} in {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // No Origin at all: refused.
    let (st, _, body) = raw_upgrade(srv.addr(), &attach_path(&sid), &[("Cookie", &cookie)]).await;
    assert_eq!((st, code(&body).as_str()), (403, "origin_not_allowed"));
    // Cross-site WebSocket hijacking: the victim's cookie from a foreign page.
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Cookie", &cookie), ("Origin", "https://evil.example.com")],
    )
    .await;
    assert_eq!((st, code(&body).as_str()), (403, "origin_not_allowed"));
    // The real page.
    let (st, head, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Cookie", &cookie), ("Origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(st, 101, "{head}");
    let rec = srv
        .wait_audit("cookie attach", |r| {
            r["type"] == "attach.connect" && r["outcome"] == "ok"
        })
        .await;
    assert_eq!(rec["transport"], "cookie");
}

#[tokio::test]
async fn dev_cookies_are_not_secure_and_dev_allows_only_localhost_origins() {
    let srv = Server::start(Opts {
        dev: true,
        ..Opts::default()
    });
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let r = api
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "driver", "delivery": "cookie"})),
        )
        .await;
    let set_cookie = r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let (st, _, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Cookie", &cookie), ("Origin", "http://localhost:1")],
    )
    .await;
    assert_eq!(st, 403, "another localhost port is another origin");
    let (st, head, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[
            ("Cookie", &cookie),
            ("Origin", &format!("http://127.0.0.1:{}", srv.port)),
        ],
    )
    .await;
    assert_eq!(st, 101, "{head}");
}

#[tokio::test]
async fn per_ip_attempts_are_limited_and_refusals_count() {
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__LIMITS__IP_ATTEMPTS", "3")
            .env("ATTACHD__LIMITS__IP_WINDOW", "60s"),
    );
    let sid = srv.api(&ALICE).create_session().await;
    // Three refused attempts (no ticket) use up the window.
    for _ in 0..3 {
        let (st, _, body) = raw_upgrade(srv.addr(), &attach_path(&sid), &[]).await;
        assert_eq!((st, code(&body).as_str()), (401, "unauthorized"));
    }
    let t = srv.api(&ALICE).ticket(&sid, "driver").await;
    let (st, head, body) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Authorization", &bearer(&t))],
    )
    .await;
    assert_eq!((st, code(&body).as_str()), (429, "rate_limited"));
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("Retry-After header");
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_does_not_evade_the_limit() {
    let srv = Server::start(Opts::default().env("ATTACHD__LIMITS__IP_ATTEMPTS", "2"));
    let sid = srv.api(&ALICE).create_session().await;
    for i in 0..2 {
        let (st, _, _) = raw_upgrade(
            srv.addr(),
            &attach_path(&sid),
            &[("X-Forwarded-For", &format!("198.51.100.{i}"))],
        )
        .await;
        assert_eq!(st, 401);
    }
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("X-Forwarded-For", "198.51.100.77")],
    )
    .await;
    assert_eq!((st, code(&body).as_str()), (429, "rate_limited"));
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_is_the_client_ip() {
    forwarded_for_from("127.0.0.1/32").await;
}

/// SPEC §1: peer addresses or CIDRs; a bare address (v4 or v6) is that single host.
#[tokio::test]
async fn trusted_proxies_accept_bare_v4_and_v6_addresses() {
    forwarded_for_from("127.0.0.1,::1").await;
}

async fn forwarded_for_from(trusted: &str) {
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__LIMITS__IP_ATTEMPTS", "1")
            .env("ATTACHD__SERVER__TRUSTED_PROXIES", trusted),
    );
    let sid = srv.api(&ALICE).create_session().await;
    // Each forwarded client has its own window behind the trusted proxy.
    for i in 0..3 {
        let (st, _, _) = raw_upgrade(
            srv.addr(),
            &attach_path(&sid),
            &[("X-Forwarded-For", &format!("6.6.6.6, 198.51.100.{i}"))],
        )
        .await;
        assert_eq!(st, 401, "client {i} should have its own window");
    }
    let (st, _, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("X-Forwarded-For", "198.51.100.1")],
    )
    .await;
    assert_eq!(st, 429);
    let rec = srv
        .wait_audit("forwarded ip", |r| r["remote_ip"] == "198.51.100.2")
        .await;
    assert_eq!(rec["type"], "attach.connect");
}

#[tokio::test]
async fn tickets_missing_invalid_expired_and_replayed() {
    let srv = Server::start(Opts::default().env("ATTACHD__ATTACH__TICKET_TTL", "1s"));
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let (st, _, body) = raw_upgrade(srv.addr(), &attach_path(&sid), &[]).await;
    assert_eq!((st, code(&body).as_str()), (401, "unauthorized"));
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[(
            "Authorization",
            "Bearer atk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    )
    .await;
    assert_eq!((st, code(&body).as_str()), (401, "unauthorized"));
    // An API token is not a ticket.
    let (st, _, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Authorization", &bearer(ALICE.secret))],
    )
    .await;
    assert_eq!(st, 401);

    let t = api.ticket(&sid, "driver").await;
    let (st, _) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!(st, 101);
    let (st, body) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!((st, code(&body).as_str()), (401, "ticket_replayed"));

    let t = api.ticket(&sid, "driver").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (st, body) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!((st, code(&body).as_str()), (401, "unauthorized"));

    // A ticket is bound to its session.
    let other = api.create_session().await;
    let t = api.ticket(&sid, "driver").await;
    let (st, _) = ticket_upgrade(&srv, &other, &t).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn unknown_session_is_404() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let t = api.ticket(&sid, "observer").await;
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/sessions/{sid}"), None)
            .await
            .status,
        204
    );
    let (st, body) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!((st, code(&body).as_str()), (404, "not_found"));
}

#[tokio::test]
async fn subject_connection_cap_and_its_slot_is_freed_on_close() {
    let srv = Server::start(Opts::default().env("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "2"));
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let a = attach_as(&srv, &ALICE, &sid, "observer").await;
    let _b = attach_as(&srv, &ALICE, &sid, "observer").await;
    let t = api.ticket(&sid, "observer").await;
    let (st, body) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!((st, code(&body).as_str()), (429, "too_many_connections"));
    // Another subject is not affected.
    let _o = attach_as(&srv, &OLIVE, &sid, "observer").await;
    drop(a);
    // The slot comes back once the close is processed.
    let mut ok = false;
    for _ in 0..100 {
        let t = api.ticket(&sid, "observer").await;
        let (st, _) = ticket_upgrade(&srv, &sid, &t).await;
        if st == 101 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "slot was not freed after close");
}

#[tokio::test]
async fn session_participant_cap() {
    let srv = Server::start(Opts::default().env("ATTACHD__LIMITS__SESSION_PARTICIPANTS", "1"));
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let _a = attach_as(&srv, &ALICE, &sid, "observer").await;
    let t = srv.api(&BOB).ticket(&sid, "observer").await;
    let (st, body) = ticket_upgrade(&srv, &sid, &t).await;
    assert_eq!((st, code(&body).as_str()), (429, "session_full"));
}

#[tokio::test]
async fn subprotocols_are_negotiated_and_the_bearer_entry_never_echoed() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;

    let t = api.ticket(&sid, "driver").await;
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[
            ("Authorization", &bearer(&t)),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
        ],
    )
    .await;
    assert_eq!((st, code(&body).as_str()), (400, "unsupported_protocol"));

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.as_bytes());
    let (st, head, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[
            (
                "Sec-WebSocket-Protocol",
                &format!("attach.v1, attach.v1.bearer.{b64}"),
            ),
            (
                "Sec-WebSocket-Extensions",
                "permessage-deflate; client_max_window_bits",
            ),
        ],
    )
    .await;
    assert_eq!(st, 101, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("sec-websocket-protocol: attach.v1\r\n")
            || lower.ends_with("sec-websocket-protocol: attach.v1"),
        "{head}"
    );
    assert!(!head.contains(&b64), "bearer entry echoed: {head}");
    assert!(
        !lower.contains("sec-websocket-extensions"),
        "an extension was negotiated: {head}"
    );
    let rec = srv
        .wait_audit("subprotocol attach", |r| r["transport"] == "subprotocol")
        .await;
    assert_eq!(rec["outcome"], "ok");

    // No subprotocol offered: v1 without the header.
    let t = api.ticket(&sid, "observer").await;
    let (st, head, _) = raw_upgrade(
        srv.addr(),
        &attach_path(&sid),
        &[("Authorization", &bearer(&t))],
    )
    .await;
    assert_eq!(st, 101);
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
}

/// An audit log that cannot be written (`/dev/full`), under `deny`.
fn unwritable_audit_deny() -> Opts {
    Opts::default()
        .env("ATTACHD__AUDIT__PATH", "/dev/full")
        .env("ATTACHD__AUDIT__ON_FAILURE", "deny")
}

/// The sink is probed at start (a durable `server.started` record): an unwritable audit log
/// makes the replica unready before any ticket or attach has tried to write.
#[tokio::test]
async fn an_unwritable_audit_log_is_unready_from_the_start() {
    let srv = Server::start(unwritable_audit_deny());
    let r = srv.api(&ALICE).call("GET", "/readyz", None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["checks"]["audit"], "failing", "{}", r.text);
}

#[tokio::test]
async fn audit_failure_refuses_tickets_with_503_under_deny() {
    let srv = Server::start(unwritable_audit_deny());
    let api = srv.api(&ALICE);
    // The first write (this session's record) fails and flips the gate.
    let (st, _) = api.create_session_status().await;
    assert!(st == 201 || st == 503, "{st}");
    let mut ready = 200;
    for _ in 0..100 {
        ready = api.call("GET", "/readyz", None).await.status;
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready, 503, "readyz must report the failing audit sink");
    let r = api.call("GET", "/readyz", None).await;
    assert!(
        r.body["checks"]["audit"]
            .as_str()
            .unwrap()
            .starts_with("failing"),
        "{}",
        r.text
    );
    let (st, text) = api.create_session_status().await;
    assert_eq!(st, 503, "{text}");
    assert!(text.contains("audit_unavailable"));
    let metrics = srv.metrics().await;
    let errors: f64 = metrics
        .lines()
        .find(|l| l.starts_with("attachd_audit_write_errors_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("attachd_audit_write_errors_total exported");
    assert!(errors >= 1.0);
}

#[tokio::test]
async fn audit_failure_mid_run_refuses_attaches_with_503() {
    // A file-size limit on the process makes appends past 24 blocks fail (EFBIG): the disk
    // "fills" while attachd runs. The writer keeps probing for recovery, so the gate may
    // reopen briefly; what must hold is that no attach or ticket is accepted while its
    // record cannot be written.
    let srv = Server::start(
        Opts::default()
            .env("ATTACHD_TEST_FSIZE_KB", "24")
            .env("ATTACHD__AUDIT__ON_FAILURE", "deny")
            // The limit holds for every file of the process; a recording cut by it would be
            // reported by `verify` too. Recordings on a full disk: tests/e2e/recording.rs.
            .env("ATTACHD__RECORDING__MODE", "off"),
    );
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let mut tickets = Vec::new();
    for _ in 0..15 {
        tickets.push(api.ticket(&sid, "observer").await);
    }
    // Refused attempts are audited too: they fill the log up to the limit.
    let mut saw_unready = false;
    for _ in 0..400 {
        let (st, _, _) = raw_upgrade(srv.addr(), &attach_path(&sid), &[]).await;
        assert!(st == 401 || st == 503, "{st}");
        if srv.ready_status().await.0 == 503 {
            saw_unready = true;
            break;
        }
    }
    let mut attach_refused = false;
    for t in &tickets {
        let (st, _, body) = raw_upgrade(
            srv.addr(),
            &attach_path(&sid),
            &[("Authorization", &bearer(t))],
        )
        .await;
        match (st, code(&body).as_str()) {
            (101, _) => {}
            (503, "audit_unavailable") => attach_refused = true,
            other => panic!("unexpected attach answer {other:?}"),
        }
    }
    let mut ticket_refused = false;
    for _ in 0..20 {
        let r = api
            .call(
                "POST",
                &format!("/api/v1/sessions/{sid}/attach-tickets"),
                Some(json!({"role": "observer"})),
            )
            .await;
        if (r.status, r.error_code()) == (503, "audit_unavailable") {
            ticket_refused = true;
            break;
        }
    }
    assert!(
        attach_refused,
        "no attach was refused with audit_unavailable"
    );
    assert!(
        ticket_refused,
        "no ticket was refused with audit_unavailable"
    );
    assert!(
        saw_unready,
        "readiness never reported the failing audit sink"
    );
    assert!(srv.logs().contains("audit"), "the failure must be logged");
    // Whatever was written is still a valid chain.
    let (ok, report) = cli_verify(&srv.audit_path(), None);
    assert!(ok, "{report}");
}

#[tokio::test]
async fn slow_request_heads_are_cut() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = Server::start(Opts::default().env("ATTACHD__SERVER__HANDSHAKE_TIMEOUT", "1s"));
    let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    s.write_all(b"GET /api/v1/sessions/x/attach HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let started = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the server kept a slow request head open")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert_json_error(&text, "request_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The last answer in `text` (one or more HTTP/1.1 responses) is SPEC's JSON error `code`.
fn assert_json_error(text: &str, code: &str) {
    let last = &text[text.rfind("HTTP/1.1 ").expect("an HTTP answer")..];
    let (head, body) = last.split_once("\r\n\r\n").expect("a complete head");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "not JSON: {last:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {last:?}"));
    assert_eq!(v["error"], code, "{last:?}");
    assert!(v["message"].is_string(), "{last:?}");
}

/// What actix-http's dispatcher answered by itself (empty 431, 400 and 408) is SPEC's JSON
/// error too: heads too large or malformed, a slow head on a kept-alive connection, and a
/// malformed request behind a good one (which is still answered first).
#[tokio::test]
async fn dispatcher_level_errors_are_json() {
    let srv = Server::start(Opts::default().env("ATTACHD__SERVER__HANDSHAKE_TIMEOUT", "1s"));
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    // Exactly the parser's head limit, never ended: read whole, so the answer is not reset.
    let mut huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.resize(131_072, b'a');
    let cases: Vec<(Vec<u8>, &str, &str, usize)> = vec![
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            "HTTP/1.1 431",
            "invalid_request",
            1,
        ),
        (huge, "HTTP/1.1 431", "invalid_request", 1),
        (
            b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
            "invalid_request",
            1,
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
            "invalid_request",
            1,
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n".to_vec(),
            "HTTP/1.1 200",
            "invalid_request",
            2,
        ),
        // The second head never completes: cut at the deadline, the first still answered.
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n".to_vec(),
            "HTTP/1.1 200",
            "request_timeout",
            2,
        ),
        // A malformed chunk inside a body the app reads: its JSON 400 is the only answer.
        (
            format!(
                "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n",
                ALICE.secret
            )
            .into_bytes(),
            "HTTP/1.1 400",
            "invalid_request",
            1,
        ),
    ];
    for (request, first, code, answers) in cases {
        let label = String::from_utf8_lossy(&request[..request.len().min(80)]).into_owned();
        let text = answer_then_close(&srv, &request, Duration::from_secs(10)).await;
        assert!(text.starts_with(first), "{label:?}: {text:?}");
        assert_eq!(
            text.matches("HTTP/1.1 ").count(),
            answers,
            "{label:?}: {text:?}"
        );
        assert_json_error(&text, code);
    }
    let r = srv.api(&ALICE).call("GET", "/healthz", None).await;
    assert_eq!(r.status, 200);
}

/// Sends `head` (and a partial body) and returns what the server answered before it closed the
/// connection; panics when the connection is still open after `within`.
async fn answer_then_close(srv: &Server, request: &[u8], within: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(within, read_all).await.is_ok();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(closed, "the server kept the connection open: {text:?}");
    text
}

/// A stalled request body: the deadline covers the whole request, body included, and a request
/// refused before its body was read does not wait for it (it held sockets for minutes).
#[tokio::test]
async fn stalled_request_bodies_are_cut() {
    let srv = Server::start(Opts::default().env("ATTACHD__SERVER__HANDSHAKE_TIMEOUT", "1s"));
    let addr = srv.addr();
    let cases = [
        // Unauthenticated, chunked, the first chunk never completed.
        (
            format!("POST /api/v1/sessions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{{"),
            "HTTP/1.1 401",
        ),
        // Unauthenticated, Content-Length larger than what is sent.
        (
            format!("POST /api/v1/sessions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"),
            "HTTP/1.1 401",
        ),
        // Authenticated: the handler reads the body, which stalls: 408 at the deadline.
        (
            format!("POST /api/v1/sessions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{", ALICE.secret),
            "HTTP/1.1 408",
        ),
        (
            format!("POST /api/v1/sessions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{{", ALICE.secret),
            "HTTP/1.1 408",
        ),
    ];
    for (request, status) in cases {
        let started = std::time::Instant::now();
        let text = answer_then_close(&srv, request.as_bytes(), Duration::from_secs(10)).await;
        assert!(text.starts_with(status), "{request:?}: {text:?}");
        assert!(text.contains("\"error\""), "not a JSON error: {text:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{request:?}");
    }
    // The server still answers.
    let r = srv.api(&ALICE).call("GET", "/healthz", None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn request_bodies_are_capped_at_64k() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let big = "x".repeat(70 * 1024);
    let r = api
        .call("POST", "/api/v1/sessions", Some(json!({"name": big})))
        .await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
}

/// Metrics that alerts are written against are exported at 0 from the start, with their
/// known label values, before anything has happened.
#[tokio::test]
async fn alerting_metrics_are_exported_at_zero_from_the_start() {
    let srv = Server::start(Opts::default());
    let metrics = srv.metrics().await;
    for series in [
        "attachd_audit_write_errors_total",
        "attachd_audit_records_lost_total{reason=\"write_failed\"}",
        "attachd_handshakes_total{outcome=\"ok\"}",
        "attachd_handshakes_total{outcome=\"rate_limited\"}",
        "attachd_handshakes_total{outcome=\"audit_unavailable\"}",
        "attachd_handshakes_total{outcome=\"origin_not_allowed\"}",
        "attachd_slow_consumer_closes_total",
        "attachd_closes_total{code=\"4003\"}",
    ] {
        assert!(
            metrics.lines().any(|l| l == format!("{series} 0")),
            "{series} is not exported at 0:\n{metrics}"
        );
    }
}
