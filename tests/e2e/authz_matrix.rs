//! The authorization matrix: every route of `attachd::http::ROUTES` × every credential case, with
//! the exact status and `error` code SPEC §2–§4 require; a route without a row fails the build.
//!
//! Over 500 lines: the matrix is a table with a row per route; it grows with the API by design.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use attachd::http::ROUTES;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::*;

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "attachd";
const HS256_SECRET: &str = "authz-matrix-hs256-secret-of-32-bytes-or-more";

/// What a route is guarded by, which decides the expectation of every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// No credential needed; none is refused either.
    Open,
    /// `/api/v1/...` without a session in the path: tenancy filters, it never 404s.
    Collection,
    /// `/api/v1/sessions/{id}...`: another tenant's session is 404, never 403.
    Session,
    /// The attach upgrade: its credential is a ticket.
    Ticket,
}

/// One row: the expectation of a route, keyed by (method, path) of `ROUTES`.
struct Row {
    /// Must equal the scope column of `ROUTES` (so a scope change needs a matrix change).
    scope: &'static str,
    target: Target,
    /// Status of the correct case.
    ok: u16,
}

/// The expectation rows. A route in `ROUTES` without a row here panics: add the row.
fn row(method: &str, path: &str) -> Row {
    use Target::*;
    let r = |scope, target, ok| Row { scope, target, ok };
    match (method, path) {
        ("GET", "/healthz") | ("GET", "/readyz") | ("GET", "/openapi.json") => r("none", Open, 200),
        ("GET", "/api/v1/sessions") => r("sessions:read", Collection, 200),
        ("POST", "/api/v1/sessions") => r("sessions:write", Collection, 201),
        ("GET", "/api/v1/sessions/{id}") => r("sessions:read", Session, 200),
        ("DELETE", "/api/v1/sessions/{id}") => r("sessions:write", Session, 204),
        ("POST", "/api/v1/sessions/{id}/attach-tickets") => {
            r("attach:drive|attach:observe", Session, 201)
        }
        ("DELETE", "/api/v1/sessions/{id}/control") => r("attach:moderate", Session, 204),
        ("GET", "/api/v1/sessions/{id}/thumbnail") => r("sessions:read", Session, 200),
        ("GET", "/api/v1/dashboard") => r("sessions:read", Collection, 200),
        ("GET", "/api/v1/dashboard/events") => r("sessions:read", Collection, 200),
        ("GET", "/api/v1/audit") => r("audit:read", Collection, 200),
        ("GET", "/api/v1/audit/verify") => r("audit:read", Collection, 200),
        ("GET", "/api/v1/sessions/{id}/attach") => r("ticket", Ticket, 101),
        ("GET", "/api/v1/sessions/{id}/recordings") => r("audit:read", Session, 200),
        ("GET", "/api/v1/sessions/{id}/recordings/{file}") => r("audit:read", Session, 200),
        (m, p) => panic!(
            "route {m} {p} is in attachd::http::ROUTES but has no row in tests/e2e/authz_matrix.rs: \
             add its expectations to `row()`"
        ),
    }
}

/// The request body a route needs; `scope` picks the attach-ticket role.
fn body_for(method: &str, path: &str, scope: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/sessions") => Some(json!({})),
        ("POST", "/api/v1/sessions/{id}/attach-tickets") => Some(json!({
            "role": if scope == "attach:observe" { "observer" } else { "driver" }
        })),
        _ => None,
    }
}

/// Credential cases of the API routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    None,
    Malformed,
    ExpiredJwt,
    WrongTenant,
    WrongTenantNoScope,
    MissingScope,
    UnknownSession,
    Correct,
}

const CASES: &[Case] = &[
    Case::None,
    Case::Malformed,
    Case::ExpiredJwt,
    Case::WrongTenant,
    Case::WrongTenantNoScope,
    Case::MissingScope,
    Case::UnknownSession,
    Case::Correct,
];

/// Ticket cases of the attach route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TicketCase {
    None,
    Garbage,
    Expired,
    Replayed,
    OtherSession,
    OtherTenant,
    ApiToken,
    Correct,
}

const TICKET_CASES: &[TicketCase] = &[
    TicketCase::None,
    TicketCase::Garbage,
    TicketCase::Expired,
    TicketCase::Replayed,
    TicketCase::OtherSession,
    TicketCase::OtherTenant,
    TicketCase::ApiToken,
    TicketCase::Correct,
];

/// Expected (status, error code); `None` code for success.
type Want = (u16, Option<&'static str>);

const UNAUTHORIZED: Want = (401, Some("unauthorized"));
const FORBIDDEN: Want = (403, Some("forbidden"));
const NOT_FOUND: Want = (404, Some("not_found"));

/// The SPEC's answer for an API case, or `None` when the case does not apply to the route.
fn expect(row: &Row, case: Case) -> Option<Want> {
    let ok = (row.ok, None);
    Some(match (row.target, case) {
        (Target::Open, _) => ok,
        (Target::Ticket, _) => unreachable!("tickets have their own cases"),
        (_, Case::None | Case::Malformed | Case::ExpiredJwt) => UNAUTHORIZED,
        (Target::Collection, Case::WrongTenant) => ok,
        (Target::Collection, Case::WrongTenantNoScope | Case::MissingScope) => FORBIDDEN,
        (Target::Collection, Case::UnknownSession) => return None,
        (Target::Session, Case::WrongTenant | Case::WrongTenantNoScope) => NOT_FOUND,
        (Target::Session, Case::MissingScope) => FORBIDDEN,
        (Target::Session, Case::UnknownSession) => NOT_FOUND,
        (_, Case::Correct) => ok,
    })
}

fn expect_ticket(case: TicketCase) -> Want {
    match case {
        TicketCase::Replayed => (401, Some("ticket_replayed")),
        TicketCase::Correct => (101, None),
        _ => UNAUTHORIZED,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(tenant: &str, scopes: &[&str], exp: u64, nbf: u64) -> String {
    let claims = json!({
        "sub": format!("jwt-{tenant}"), "tenant": tenant, "scope": scopes.join(" "),
        "iss": ISSUER, "aud": AUDIENCE, "exp": exp, "nbf": nbf, "iat": now(),
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(HS256_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Every scope except those of a route's scope column alternative.
fn all_but(scope: &str) -> Vec<&'static str> {
    ALL_SCOPES.iter().copied().filter(|s| *s != scope).collect()
}

/// The `Authorization` header values of one case (several variants for the malformed one).
fn credentials(case: Case, scope: &str) -> Vec<Option<String>> {
    let n = now();
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    match case {
        Case::None => vec![None],
        Case::Malformed => vec![
            Some("Bearer".into()),
            Some("Bearer ".into()),
            bearer("not-a-token"),
            bearer("a.b.c"),
            Some(format!("Basic {}", "YWxpY2U6c2VjcmV0")),
            Some(format!("Token {}", ALICE.secret)),
            bearer(&format!("{}x", ALICE.secret)),
            bearer(&"x".repeat(9000)),
        ],
        Case::ExpiredJwt => vec![
            bearer(&jwt("acme", ALL_SCOPES, n - 600, n - 1200)),
            // Not yet valid: the same answer.
            bearer(&jwt("acme", ALL_SCOPES, n + 1200, n + 600)),
        ],
        Case::WrongTenant => vec![bearer(MALLORY.secret)],
        Case::WrongTenantNoScope => vec![bearer(&jwt("evil", &[], n + 600, n - 10))],
        Case::MissingScope => vec![bearer(&jwt("acme", &all_but(scope), n + 600, n - 10))],
        Case::UnknownSession | Case::Correct => vec![bearer(ALICE.secret)],
    }
}

async fn call(
    srv: &Server,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = reqwest::Client::new().request(m, srv.url(path));
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let resp = rb.send().await.expect("request");
    if path == "/api/v1/dashboard/events" && resp.status().is_success() {
        return first_event(resp).await;
    }
    read_resp(resp).await
}

/// The stream never ends: its answer is the head and the first event, whose data is the body.
async fn first_event(mut r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("the first event within 10 s")
            .expect("stream chunk")
            .expect("the stream ended before its first event");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let body = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

fn code_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
}

/// Compares one answer with the SPEC; returns a line for the failure table, if any.
fn check(label: &str, want: Want, status: u16, body: &str) -> Option<String> {
    let got_code = code_of(body);
    let ok = status == want.0
        && match want.1 {
            Some(c) => {
                got_code.as_deref() == Some(c)
                    && serde_json::from_str::<Value>(body)
                        .map(|v| v["message"].is_string())
                        .unwrap_or(false)
            }
            None => true,
        };
    (!ok).then(|| {
        format!(
            "{label}: want {} {:?}, got {status} {:?} ({})",
            want.0,
            want.1.unwrap_or("-"),
            got_code.as_deref().unwrap_or("-"),
            body.chars().take(160).collect::<String>()
        )
    })
}

/// Extra checks of the wrong-tenant answers of collection routes: tenancy filters the data.
fn check_tenant_filter(method: &str, path: &str, r: &Resp, acme_sids: &[String]) -> Option<String> {
    let leaked = match (method, path) {
        ("GET", "/api/v1/sessions" | "/api/v1/dashboard" | "/api/v1/dashboard/events") => r.body
            ["sessions"]
            .as_array()
            .is_none_or(|s| s.iter().any(|s| s["tenant"] != "evil")),
        ("POST", "/api/v1/sessions") => r.body["tenant"] != "evil",
        ("GET", "/api/v1/audit") => r.body["events"].as_array().is_none_or(|e| {
            e.iter().any(|e| {
                e["tenant"] == "acme"
                    || acme_sids
                        .iter()
                        .any(|s| e["session_id"].as_str() == Some(s.as_str()))
            })
        }),
        _ => false,
    };
    leaked.then(|| {
        format!(
            "{method} {path} as another tenant leaked acme data: {}",
            r.text
        )
    })
}

/// Extra checks of the correct answers.
fn check_correct(method: &str, path: &str, r: &Resp, sid: &str) -> Option<String> {
    let bad = match (method, path) {
        ("GET", "/api/v1/sessions") => !r.body["sessions"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["id"] == sid)),
        ("POST", "/api/v1/sessions") => r.body["tenant"] != "acme",
        ("GET", "/api/v1/sessions/{id}") => r.body["id"] != sid,
        ("GET", "/api/v1/dashboard" | "/api/v1/dashboard/events") => !r.body["sessions"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["id"] == sid)),
        ("GET", "/api/v1/sessions/{id}/thumbnail") => !r.body["lines"].is_array(),
        ("POST", "/api/v1/sessions/{id}/attach-tickets") => !r.body["ticket"]
            .as_str()
            .is_some_and(|t| t.starts_with("atk_")),
        ("GET", "/api/v1/audit") => !r.body["events"].is_array(),
        ("GET", "/api/v1/audit/verify") => r.body["ok"] != true,
        ("GET", "/api/v1/sessions/{id}/recordings") => !r.body[0]["file"].is_string(),
        ("GET", "/api/v1/sessions/{id}/recordings/{file}") => {
            r.headers.get("content-type").and_then(|v| v.to_str().ok())
                != Some("application/x-asciicast")
        }
        ("GET", "/openapi.json") => !r.body["openapi"].is_string(),
        _ => false,
    };
    bad.then(|| format!("{method} {path} correct answer is wrong: {}", r.text))
}

#[test]
fn every_route_has_a_matrix_row() {
    for (method, path, access) in ROUTES {
        let r = row(method, path);
        let scope = access.label();
        assert_eq!(
            r.scope, scope,
            "{method} {path}: ROUTES says scope {scope}, the matrix row says {}",
            r.scope
        );
        assert_eq!(
            path.starts_with("/api/v1/"),
            r.target != Target::Open,
            "{method} {path}: every /api/v1 route requires authentication (SPEC §2)"
        );
    }
}

#[tokio::test]
async fn authorization_matrix_over_every_route_and_credential() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("hs256.key");
    std::fs::write(&key, HS256_SECRET).unwrap();
    let srv = Server::start(Opts::default().toml(&format!(
        "[auth.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\nhs256_secret_file = \"{}\"\n",
        key.display()
    )));
    // Expired tickets need a short TTL: a second server, so the others have time to be used.
    let short = Server::start(Opts::default().env("ATTACHD__ATTACH__TICKET_TTL", "500ms"));

    let alice = srv.api(&ALICE);
    let mallory = srv.api(&MALLORY);
    let evil_sid = mallory.create_session().await;
    let mut acme_sids = vec![alice.create_session().await];
    let mut failures = Vec::new();
    let mut checks = 0usize;
    let (mut api_rows, mut ticket_rows) = (0usize, 0usize);
    let (mut api_cols, mut ticket_cols) = (BTreeSet::new(), BTreeSet::new());

    // Every documented operation is in ROUTES, so it is in this matrix.
    let doc = alice.call("GET", "/openapi.json", None).await.body;
    for (p, ops) in doc["paths"].as_object().expect("openapi paths") {
        for m in ops.as_object().unwrap().keys() {
            let m = m.to_ascii_uppercase();
            assert!(
                ROUTES.iter().any(|(rm, rp, _)| *rm == m && rp == p),
                "{m} {p} is in /openapi.json but not in attachd::http::ROUTES"
            );
        }
    }

    for (method, path, access) in ROUTES {
        let r = row(method, path);
        let scope = access.label();
        if r.target == Target::Ticket {
            ticket_rows += 1;
            for &case in TICKET_CASES {
                ticket_cols.insert(format!("{case:?}"));
                checks += 1;
                let (status, head, body) = ticket_case(&srv, &short, case, &evil_sid).await;
                let label = format!("{method} {path} [{case:?}]");
                if let Some(f) = check(&label, expect_ticket(case), status, &body) {
                    failures.push(format!("{f} {}", head.lines().next().unwrap_or("")));
                }
            }
            continue;
        }
        api_rows += 1;
        for &case in CASES {
            let Some(want) = expect(&r, case) else {
                continue;
            };
            api_cols.insert(format!("{case:?}"));
            // attach-tickets has two scopes (by role): the missing-scope case runs for each.
            let alternatives: Vec<&str> = if case == Case::MissingScope {
                scope.split('|').collect()
            } else {
                vec![scope.split('|').next().unwrap()]
            };
            for alt in alternatives {
                for auth in credentials(case, alt) {
                    checks += 1;
                    let sid = match (r.target, case) {
                        (Target::Session, Case::UnknownSession) => "s-does-not-exist".to_string(),
                        (Target::Session, _) => {
                            // A fresh session per check: DELETE consumes its own.
                            let s = alice.create_session().await;
                            acme_sids.push(s.clone());
                            s
                        }
                        _ => acme_sids[0].clone(),
                    };
                    let mut concrete = path.replace("{id}", &sid);
                    if concrete.contains("{file}") {
                        // The session's first recording (made when it started), as its owner sees it.
                        let list = alice
                            .call("GET", &format!("/api/v1/sessions/{sid}/recordings"), None)
                            .await;
                        let file = list.body[0]["file"]
                            .as_str()
                            .unwrap_or("20260101T000000.000Z-00000000.cast")
                            .to_owned();
                        concrete = concrete.replace("{file}", &file);
                    }
                    let body = body_for(method, path, alt);
                    let resp = call(&srv, method, &concrete, auth.as_deref(), body.as_ref()).await;
                    let shown = auth
                        .as_deref()
                        .map(|a| a.chars().take(24).collect::<String>());
                    let label = format!("{method} {path} [{case:?} {alt} auth={shown:?}]");
                    failures.extend(check(&label, want, resp.status, &resp.text));
                    if resp.status == want.0 {
                        match case {
                            Case::WrongTenant if r.target == Target::Collection => failures
                                .extend(check_tenant_filter(method, path, &resp, &acme_sids)),
                            Case::Correct => {
                                failures.extend(check_correct(method, path, &resp, &sid))
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    let list = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>().join(", ");
    eprintln!(
        "authz matrix: {api_rows} API routes × {} credential cases ({}); {ticket_rows} attach \
         route × {} ticket cases ({}); {checks} requests",
        api_cols.len(),
        list(api_cols),
        ticket_cols.len(),
        list(ticket_cols)
    );
    assert!(
        failures.is_empty(),
        "{} authorization matrix failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs one ticket case against the attach route; returns status, head and body.
async fn ticket_case(
    srv: &Server,
    short: &Server,
    case: TicketCase,
    evil_sid: &str,
) -> (u16, String, String) {
    let alice = srv.api(&ALICE);
    let sid = alice.create_session().await;
    let path = format!("/api/v1/sessions/{sid}/attach");
    let up = |s: &Server, t: Option<String>| {
        let addr = s.addr();
        let path = path.clone();
        async move {
            let auth = t.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("Authorization", a)])
                .unwrap_or_default();
            raw_upgrade(addr, &path, &headers).await
        }
    };
    match case {
        TicketCase::None => up(srv, None).await,
        TicketCase::Garbage => {
            // Well-formed but unknown, then plain junk: both 401.
            let r = up(
                srv,
                Some("atk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
            )
            .await;
            if r.0 != 401 {
                return r;
            }
            up(srv, Some("garbage".into())).await
        }
        TicketCase::Expired => {
            let ssid = short.api(&ALICE).create_session().await;
            let t = short.api(&ALICE).ticket(&ssid, "driver").await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            let addr = short.addr();
            raw_upgrade(
                addr,
                &format!("/api/v1/sessions/{ssid}/attach"),
                &[("Authorization", &format!("Bearer {t}"))],
            )
            .await
        }
        TicketCase::Replayed => {
            let t = alice.ticket(&sid, "driver").await;
            let first = up(srv, Some(t.clone())).await;
            assert_eq!(first.0, 101, "first use of a ticket: {}", first.1);
            up(srv, Some(t)).await
        }
        TicketCase::OtherSession => {
            let other = alice.create_session().await;
            let t = alice.ticket(&other, "driver").await;
            up(srv, Some(t)).await
        }
        TicketCase::OtherTenant => {
            let t = srv.api(&MALLORY).ticket(evil_sid, "driver").await;
            up(srv, Some(t)).await
        }
        TicketCase::ApiToken => up(srv, Some(ALICE.secret.to_string())).await,
        TicketCase::Correct => {
            let t = alice.ticket(&sid, "observer").await;
            up(srv, Some(t)).await
        }
    }
}
