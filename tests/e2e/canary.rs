//! Secrets never leak: unique canaries in every credential position (header, cookie, bearer
//! subprotocol, query string), on success and refusal paths, must not reach logs, audit or errors.
//!
//! Over 500 lines: one case per credential position, each checked on success and refusal paths.

use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::SinkExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

const HS256_SECRET: &str = "canary-test-hs256-secret-at-least-32-bytes";

fn canary() -> String {
    format!("CANARY-{}", uuid::Uuid::new_v4().simple())
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(exp: u64, key: &[u8]) -> String {
    let n = now();
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "jwt-canary", "tenant": "acme", "scope": "sessions:read sessions:write attach:drive",
                "iss": "https://idp.example.com", "aud": "attachd", "exp": exp, "nbf": n - 10, "iat": n}),
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

/// A refused upgrade: label, path, headers, expected status.
type UpgradeCase = (&'static str, String, Vec<(&'static str, String)>, u16);

/// What the scenario planted and what it received.
#[derive(Default)]
struct Run {
    /// Every planted secret (canaries and the real secrets used on success paths).
    secrets: Vec<String>,
    /// Every error body, refusal head and WebSocket text frame received.
    received: Vec<(String, String)>,
    /// Attach attempts made (each must be audited).
    attempts: usize,
}

impl Run {
    fn plant(&mut self, s: &str) -> String {
        self.secrets.push(s.to_string());
        s.to_string()
    }

    fn saw(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.received.push((what.into(), text.into()));
    }

    /// A raw attach upgrade; records the answer and returns the status.
    async fn upgrade(
        &mut self,
        srv: &Server,
        what: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> u16 {
        self.attempts += 1;
        let (st, head, body) = raw_upgrade(srv.addr(), path, headers).await;
        self.saw(format!("{what}: head"), head.clone());
        self.saw(format!("{what}: body"), body);
        assert_ne!(st, 0, "{what}: no answer");
        st
    }

    /// An API request with raw headers; records the body unless it legitimately carries a secret.
    async fn http(
        &mut self,
        srv: &Server,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, String) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = reqwest::Client::new().request(m, srv.url(path));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let st = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        self.saw(format!("{method} {path} ({st})"), text.clone());
        (st, text)
    }
}

/// The strings whose presence means a leak: the secret, its base64url form and a middle slice.
fn needles(secret: &str) -> Vec<String> {
    let mut v = vec![secret.to_string(), b64(secret)];
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 20 {
        let mid = chars.len() / 2;
        v.push(chars[mid - 6..mid + 6].iter().collect());
    }
    v
}

fn find_leaks(run: &Run, place: &str, text: &str, out: &mut Vec<String>) {
    for s in &run.secrets {
        for n in needles(s) {
            if let Some(i) = text.find(&n) {
                let from = text[..i].char_indices().rev().nth(80).map_or(0, |(j, _)| j);
                let ctx: String = text[from..]
                    .chars()
                    .take(200)
                    .map(|c| if c == '\n' { '⏎' } else { c })
                    .collect();
                out.push(format!("{place}: contains {n:?} (of {s:?}): …{ctx}…"));
            }
        }
    }
}

async fn scenario(srv: &Server, run: &mut Run) {
    let alice = srv.api(&ALICE);
    let sid = alice.create_session().await;
    let attach = format!("/api/v1/sessions/{sid}/attach");
    let origin = ("Origin", "https://app.example.com");

    // --- API tokens: success paths with the real secrets as canaries.
    let alice_secret = run.plant(ALICE.secret);
    let good_jwt = run.plant(&jwt(now() + 600, HS256_SECRET.as_bytes()));
    for tok in [&alice_secret, &good_jwt] {
        let (st, _) = run
            .http(
                srv,
                "GET",
                "/api/v1/sessions",
                &[("Authorization", &format!("Bearer {tok}"))],
                None,
            )
            .await;
        assert_eq!(st, 200);
    }
    // Refusal paths: unknown, forged, expired, wrong scheme, and in a cookie.
    let unknown = run.plant(&canary());
    let forged = run.plant(&jwt(now() + 600, b"not-the-key-not-the-key-not-the-key!"));
    let expired = run.plant(&jwt(now() - 600, HS256_SECRET.as_bytes()));
    let basic = run.plant(&canary());
    for auth in [
        format!("Bearer {unknown}"),
        format!("Bearer {forged}"),
        format!("Bearer {expired}"),
        format!("Basic {}", b64(&format!("alice:{basic}"))),
        format!("Bearer {unknown} {basic}"),
    ] {
        let (st, _) = run
            .http(
                srv,
                "GET",
                "/api/v1/sessions",
                &[("Authorization", &auth)],
                None,
            )
            .await;
        assert_eq!(st, 401);
    }
    let cookie = run.plant(&canary());
    let (st, _) = run
        .http(
            srv,
            "GET",
            "/api/v1/sessions",
            &[("Cookie", &format!("attach_ticket={cookie}; other=1"))],
            None,
        )
        .await;
    assert_eq!(st, 401);

    // --- Credentials in API URLs (accepted or refused, never logged or echoed).
    let q: Vec<String> = (0..8).map(|_| run.plant(&canary())).collect();
    let bearer = format!("Bearer {}", ALICE.secret);
    for (method, path, auth) in [
        ("GET", format!("/api/v1/sessions?token={}", q[0]), true),
        (
            "GET",
            format!("/api/v1/sessions?access_token={}", q[1]),
            false,
        ),
        ("GET", format!("/api/v1/audit?ticket={}", q[2]), true),
        ("GET", format!("/api/v1/audit?since={}", q[3]), true),
        ("GET", format!("/api/v1/sessions/{sid}?auth={}", q[4]), true),
        ("GET", format!("/healthz?token={}", q[5]), false),
        (
            "GET",
            format!("/no/such/route?access_token={}", q[6]),
            false,
        ),
        ("POST", format!("/api/v1/sessions?token={}", q[7]), true),
    ] {
        let headers: Vec<(&str, &str)> = if auth {
            vec![("Authorization", &bearer)]
        } else {
            vec![]
        };
        let body = (method == "POST").then(|| json!({}));
        run.http(srv, method, &path, &headers, body).await;
    }

    // --- Tickets: success through each transport.
    let t_header = run.plant(&alice.ticket(&sid, "observer").await);
    let st = run
        .upgrade(
            srv,
            "header ticket",
            &attach,
            &[("Authorization", &format!("Bearer {t_header}"))],
        )
        .await;
    assert_eq!(st, 101);
    let t_sub = run.plant(&alice.ticket(&sid, "observer").await);
    let st = run
        .upgrade(
            srv,
            "subprotocol ticket",
            &attach,
            &[(
                "Sec-WebSocket-Protocol",
                &format!("attach.v1, attach.v1.bearer.{}", b64(&t_sub)),
            )],
        )
        .await;
    assert_eq!(st, 101);
    let r = alice
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "observer", "delivery": "cookie"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let set_cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    let cookie_pair = set_cookie.split(';').next().unwrap().to_string();
    let t_cookie = run.plant(cookie_pair.trim_start_matches("attach_ticket="));
    let st = run
        .upgrade(
            srv,
            "cookie ticket",
            &attach,
            &[("Cookie", &cookie_pair), origin],
        )
        .await;
    assert_eq!(st, 101);

    // A full WebSocket session over the subprotocol transport, with an in-band error frame.
    let t_ws = run.plant(&alice.ticket(&sid, "driver").await);
    run.attempts += 1;
    let (mut ws, resp) = ws_connect(
        &srv.ws_url(&attach),
        &[(
            "Sec-WebSocket-Protocol",
            &format!("attach.v1, attach.v1.bearer.{}", b64(&t_ws)),
        )],
    )
    .await
    .expect("attach over the subprotocol transport");
    run.saw("ws 101 head", format!("{:?}", resp.headers()));
    let hello = expect_json(&mut ws, "hello", 10).await;
    run.saw("ws hello", hello.to_string());
    ws.send(Message::text(r#"{"type":"steal-control"}"#))
        .await
        .unwrap();
    let err = expect_json(&mut ws, "error", 10).await;
    run.saw("ws error frame", err.to_string());
    let _ = ws.close(None).await;

    // --- Ticket refusal paths.
    let c = [(); 10].map(|_| run.plant(&format!("atk_{}", canary())));
    let cases: Vec<UpgradeCase> = vec![
        (
            "canary header ticket",
            attach.clone(),
            vec![("Authorization", format!("Bearer {}", c[0]))],
            401,
        ),
        (
            "canary subprotocol ticket",
            attach.clone(),
            vec![(
                "Sec-WebSocket-Protocol",
                format!("attach.v1, attach.v1.bearer.{}", b64(&c[1])),
            )],
            401,
        ),
        (
            "canary subprotocol, not base64",
            attach.clone(),
            vec![(
                "Sec-WebSocket-Protocol",
                format!("attach.v1, attach.v1.bearer.{}!", c[2]),
            )],
            401,
        ),
        (
            "canary bearer entry without attach.v1",
            attach.clone(),
            vec![(
                "Sec-WebSocket-Protocol",
                format!("chat, attach.v1.bearer.{}", b64(&c[3])),
            )],
            400,
        ),
        (
            "canary cookie, allowed origin",
            attach.clone(),
            vec![
                ("Cookie", format!("attach_ticket={}", c[4])),
                ("Origin", "https://app.example.com".into()),
            ],
            401,
        ),
        (
            "canary cookie, no origin",
            attach.clone(),
            vec![("Cookie", format!("attach_ticket={}", c[5]))],
            403,
        ),
        (
            "canary cookie, foreign origin",
            attach.clone(),
            vec![
                ("Cookie", format!("attach_ticket={}", c[6])),
                ("Origin", "https://evil.example.com".into()),
            ],
            403,
        ),
        (
            "replayed real ticket",
            attach.clone(),
            vec![("Authorization", format!("Bearer {t_header}"))],
            401,
        ),
        (
            "API token as ticket",
            attach.clone(),
            vec![("Authorization", format!("Bearer {}", ALICE.secret))],
            401,
        ),
        (
            "real ticket, foreign origin",
            attach.clone(),
            vec![
                ("Authorization", format!("Bearer {t_ws}")),
                ("Origin", "https://evil.example.com".into()),
            ],
            403,
        ),
        (
            "canary ticket for another session",
            "/api/v1/sessions/s-unknown/attach".into(),
            vec![("Authorization", format!("Bearer {}", c[7]))],
            401,
        ),
    ];
    for (what, path, headers, want) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let st = run.upgrade(srv, what, &path, &h).await;
        assert_eq!(st, want, "{what}");
    }

    // --- Secrets placed in the path (refused): the request log names the route, never them.
    let t_path = run.plant(&alice.ticket(&sid, "observer").await);
    let unmatched = run.plant(&canary());
    for path in [
        format!("{attach};ticket={t_path}"),
        format!("/api/v1/sessions/{alice_secret}"),
        format!("/api/v1/sessions/{good_jwt}/attach"),
        format!("/{unmatched}"),
        format!("/api/v1/{unmatched}"),
    ] {
        let (st, _) = run
            .http(srv, "GET", &path, &[("Authorization", &bearer)], None)
            .await;
        assert!((400..500).contains(&st), "{path}: {st}");
    }

    // --- Tickets in the attach URL: refused with 400 token_in_url, valid or not.
    let t_url = run.plant(&alice.ticket(&sid, "observer").await);
    for (param, value) in [
        ("ticket", t_url.clone()),
        ("token", c[8].clone()),
        ("access_token", c[9].clone()),
        ("auth", unknown.clone()),
        ("Ticket", t_url.clone()),
    ] {
        let path = format!("{attach}?cols=80&{param}={value}");
        let st = run
            .upgrade(
                srv,
                &format!("?{param}="),
                &path,
                &[("Authorization", &format!("Bearer {t_url}"))],
            )
            .await;
        assert_eq!(st, 400, "?{param}=");
    }
    // The refused URL attempts did not consume the ticket, and the cookie ticket stays unused.
    let _ = (t_cookie, t_sub);
}

/// Waits until every attach attempt is audited, stops the server, then looks for leaks.
async fn assert_no_leaks(mut srv: Server, run: Run, json_logs: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = srv
            .audit_records()
            .iter()
            .filter(|r| r["type"] == "attach.connect")
            .count();
        if n >= run.attempts {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {} attach attempts were audited:\n{}",
            run.attempts,
            srv.audit_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A drained shutdown flushes everything the process would ever write.
    srv.terminate(Duration::from_secs(15));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = srv.logs();
    let audit = srv.audit_text();
    assert!(
        logs.contains("/api/v1/sessions"),
        "the request log is empty; the check would be vacuous:\n{logs}"
    );
    if json_logs {
        assert!(
            logs.lines()
                .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["route"].is_string())),
            "prod logs are not JSON lines:\n{logs}"
        );
    }
    for reason in [
        "token_in_url",
        "unauthorized",
        "ticket_replayed",
        "origin_not_allowed",
    ] {
        assert!(
            audit.contains(&format!("\"reason\":\"{reason}\"")),
            "no refused attach with reason {reason} in the audit"
        );
    }
    let mut leaks = Vec::new();
    find_leaks(&run, "log", &logs, &mut leaks);
    find_leaks(&run, "audit", &audit, &mut leaks);
    for (what, text) in &run.received {
        find_leaks(&run, &format!("response to {what}"), text, &mut leaks);
    }
    assert!(
        leaks.is_empty(),
        "{} secrets leaked ({} planted):\n{}",
        leaks.len(),
        run.secrets.len(),
        leaks.join("\n")
    );
}

fn canary_server(dev: bool) -> (Server, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("hs256.key");
    std::fs::write(&key, HS256_SECRET).unwrap();
    let opts = Opts {
        dev,
        ..Opts::default().toml(&format!(
            "[auth.jwt]\nissuer = \"https://idp.example.com\"\naudience = \"attachd\"\nhs256_secret_file = \"{}\"\n",
            key.display()
        ))
    };
    (Server::start(opts), keys)
}

#[tokio::test]
async fn no_secret_reaches_json_logs_audit_or_errors_in_prod() {
    let (srv, _keys) = canary_server(false);
    let mut run = Run::default();
    scenario(&srv, &mut run).await;
    assert_no_leaks(srv, run, true).await;
}

#[tokio::test]
async fn no_secret_reaches_logs_audit_or_errors_in_dev() {
    let (srv, _keys) = canary_server(true);
    let mut run = Run::default();
    scenario(&srv, &mut run).await;
    assert_no_leaks(srv, run, false).await;
}
