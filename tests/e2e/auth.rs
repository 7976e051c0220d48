//! Authentication and authorization: static tokens, JWTs (HS256 and EdDSA), tenancy (404,
//! never 403, across tenants), scopes (403), and the prod configuration rules at startup.
//!
//! Over 500 lines: each credential kind (static, HS256, EdDSA, JWKS) brings its own keys and
//! server configuration, and its cases sit beside them.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn other_tenants_get_404_and_missing_scopes_403() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let evil = srv.api(&MALLORY);
    for (m, p, body) in [
        ("GET", format!("/api/v1/sessions/{sid}"), None),
        ("DELETE", format!("/api/v1/sessions/{sid}"), None),
        ("DELETE", format!("/api/v1/sessions/{sid}/control"), None),
        (
            "POST",
            format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "observer"})),
        ),
    ] {
        let r = evil.call(m, &p, body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, "not_found"),
            "{m} {p}: {}",
            r.text
        );
    }
    let r = evil.call("GET", "/api/v1/sessions", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["sessions"].as_array().unwrap().len(),
        0,
        "tenant list leaked"
    );

    let olive = srv.api(&OLIVE);
    let r = olive
        .call("POST", "/api/v1/sessions", Some(json!({})))
        .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    let r = olive
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "driver"})),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    let r = olive
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/attach-tickets"),
            Some(json!({"role": "observer"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = olive
        .call("DELETE", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    let r = olive.call("GET", "/api/v1/audit", None).await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));
}

#[tokio::test]
async fn missing_and_malformed_credentials_are_401_with_json_bodies() {
    let srv = Server::start(Opts::default());
    let http = reqwest::Client::new();
    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer nope"),
        Some("Basic YWxpY2U6eA=="),
        Some("Bearer a.b.c"),
    ] {
        let mut rb = http.get(srv.url("/api/v1/sessions"));
        if let Some(a) = auth {
            rb = rb.header("Authorization", a);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "unauthorized");
        assert!(v["message"].is_string());
    }
}

#[tokio::test]
async fn commands_outside_the_allowlist_are_refused() {
    let srv = Server::start(
        Opts::default().toml("[session.local]\nallowed_commands = [[\"/bin/echo\", \"hi\"]]"),
    );
    let api = srv.api(&ALICE);
    let r = api
        .call(
            "POST",
            "/api/v1/sessions",
            Some(json!({"command": ["/bin/bash"]})),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "command_not_allowed"));
    let r = api
        .call(
            "POST",
            "/api/v1/sessions",
            Some(json!({"command": ["/bin/echo", "hi"], "name": "  demo  "})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "demo");
    let r = api
        .call(
            "POST",
            "/api/v1/sessions",
            Some(json!({"name": "bad\u{202e}name"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .call(
            "POST",
            "/api/v1/sessions",
            Some(json!({"name": "x".repeat(65)})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .call("POST", "/api/v1/sessions", Some(json!({"unknown": 1})))
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_request"));
    // Line and paragraph separators and other format characters, like the control characters.
    for bad in [
        "a\u{2028}b",
        "a\u{2029}b",
        "a\u{200b}b",
        "a\u{feff}b",
        "a\u{00ad}b",
    ] {
        let r = api
            .call("POST", "/api/v1/sessions", Some(json!({ "name": bad })))
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "{bad:?}"
        );
    }
}

/// Bodies are JSON objects: serde alone reads a struct from an array, so `[null,null]` made a
/// session. Every such body is 400 `invalid_request`, and makes nothing.
#[tokio::test]
async fn non_object_bodies_are_invalid_requests() {
    let srv = Server::start(Opts::default());
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    for body in [
        json!([null, null]),
        json!([]),
        json!("x"),
        json!(1),
        json!(null),
    ] {
        let r = api
            .call("POST", "/api/v1/sessions", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "{body}"
        );
        let r = api
            .call(
                "POST",
                &format!("/api/v1/sessions/{sid}/attach-tickets"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "{body}"
        );
    }
    let r = api.call("GET", "/api/v1/sessions", None).await;
    assert_eq!(
        r.body["sessions"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
}

/// Every error answer of the app is SPEC's JSON `{error, message}`: the static client's 405s,
/// methods the ops endpoints do not answer (405 with `Allow`, not 404), an empty `since`.
#[tokio::test]
async fn error_answers_are_json_everywhere() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html>").unwrap();
    let srv = Server::start(Opts::default().env(
        "ATTACHD__SERVER__WEB_ROOT",
        &web.path().display().to_string(),
    ));
    let api = srv.api(&ALICE);
    for (method, path, status) in [
        ("POST", "/", 405),
        ("PUT", "/index.html", 405),
        ("TRACE", "/healthz", 405),
        ("TRACE", "/readyz", 405),
        ("DELETE", "/openapi.json", 405),
        ("GET", "/no/such/page", 404),
    ] {
        let r = api.call(method, path, None).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert!(
            r.body["error"].is_string() && r.body["message"].is_string(),
            "{method} {path}: not a JSON error body: {:?}",
            r.text
        );
        if status == 405 && path != "/" && path != "/index.html" {
            assert_eq!(r.headers["allow"], "GET", "{method} {path}");
        }
    }
    let r = api.call("GET", "/api/v1/audit?since=", None).await;
    assert_eq!(r.status, 200, "an empty since is no filter: {}", r.text);
}

fn jwt_server(key_line: &str) -> Server {
    Server::start(Opts::default().toml(&format!(
        "[auth.jwt]\nissuer = \"https://idp.example.com\"\naudience = \"attachd\"\n{key_line}\n"
    )))
}

async fn status_with(srv: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .get(srv.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn claims(iss: &str, aud: &str, exp: u64, nbf: u64) -> serde_json::Value {
    json!({"sub": "jwt-user", "tenant": "acme", "scope": "sessions:read attach:observe",
           "iss": iss, "aud": aud, "exp": exp, "nbf": nbf, "iat": now()})
}

#[tokio::test]
async fn hs256_jwts_check_issuer_audience_expiry_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "an-hs256-secret-of-at-least-32-bytes!!";
    let path = dir.path().join("hs.key");
    std::fs::write(&path, secret).unwrap();
    let srv = jwt_server(&format!("hs256_secret_file = \"{}\"", path.display()));
    let key = EncodingKey::from_secret(secret.as_bytes());
    let t = |c: serde_json::Value| encode(&Header::new(Algorithm::HS256), &c, &key).unwrap();
    let iss = "https://idp.example.com";
    let n = now();
    assert_eq!(
        status_with(&srv, &t(claims(iss, "attachd", n + 300, n - 10))).await,
        200
    );
    assert_eq!(
        status_with(&srv, &t(claims("https://evil", "attachd", n + 300, n - 10))).await,
        401
    );
    assert_eq!(
        status_with(&srv, &t(claims(iss, "other", n + 300, n - 10))).await,
        401
    );
    assert_eq!(
        status_with(&srv, &t(claims(iss, "attachd", n - 300, n - 600))).await,
        401
    );
    assert_eq!(
        status_with(&srv, &t(claims(iss, "attachd", n + 600, n + 300))).await,
        401
    );
    // Signed with another key, or "alg: none": refused.
    let other = EncodingKey::from_secret(b"another-secret-another-secret-another");
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(iss, "attachd", n + 300, n - 10),
        &other,
    )
    .unwrap();
    assert_eq!(status_with(&srv, &forged).await, 401);
    // The JWT's scopes apply: no sessions:write.
    let r = reqwest::Client::new()
        .post(srv.url("/api/v1/sessions"))
        .bearer_auth(t(claims(iss, "attachd", n + 300, n - 10)))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn eddsa_jwts_verify_against_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let priv_pem = dir.path().join("ed.pem");
    let pub_pem = dir.path().join("ed.pub.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&priv_pem)
        .status()
        .expect("openssl is required for this test (apt-get install openssl)")
        .success()
        && Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&priv_pem)
            .arg("-out")
            .arg(&pub_pem)
            .status()
            .unwrap()
            .success();
    assert!(ok, "openssl could not make an ed25519 key");
    let srv = jwt_server(&format!("public_key_file = \"{}\"", pub_pem.display()));
    let key = EncodingKey::from_ed_pem(&std::fs::read(&priv_pem).unwrap()).unwrap();
    let n = now();
    let good = encode(
        &Header::new(Algorithm::EdDSA),
        &claims("https://idp.example.com", "attachd", n + 300, n - 10),
        &key,
    )
    .unwrap();
    assert_eq!(status_with(&srv, &good).await, 200);
    let expired = encode(
        &Header::new(Algorithm::EdDSA),
        &claims("https://idp.example.com", "attachd", n - 300, n - 600),
        &key,
    )
    .unwrap();
    assert_eq!(status_with(&srv, &expired).await, 401);
}

fn start_fails(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attachd.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(&path)
        .current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unsafe_prod_configurations_refuse_to_start_naming_the_key() {
    let token = format!(
        "[[auth.static_tokens]]\nsubject = \"a\"\ntenant = \"t\"\nscopes = [\"sessions:read\"]\nsha256 = \"{}\"\n",
        sha256_hex("x")
    );
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (token.clone(), vec![], "server.tls_cert"),
        ("[server]\ntls_terminated_upstream = true\n".into(), vec![], "auth.static_tokens"),
        (
            format!("[server]\ntls_terminated_upstream = true\nallowed_origins = [\"https://*.example.com\"]\n{token}"),
            vec![],
            "server.allowed_origins",
        ),
        (
            format!("[server]\ntls_terminated_upstream = true\n[[auth.static_tokens]]\nsubject = \"a\"\ntenant = \"t\"\nscopes = [\"*\"]\nsha256 = \"{}\"\n", sha256_hex("x")),
            vec![],
            "auth.static_tokens[0].scopes",
        ),
        (
            format!("[server]\ntls_terminated_upstream = true\nconformance_echo = true\n{token}"),
            vec![],
            "server.conformance_echo",
        ),
        (
            format!("[server]\ntls_terminated_upstream = true\n{token}"),
            vec![("ATTACHD__WS__PING_INTERVAL", "soon")],
            "ws.ping_interval",
        ),
        (
            format!("[server]\ntls_terminated_upstream = true\n{token}"),
            vec![("ATTACHD__REDIS__URL", "http://redis:6379")],
            "redis.url",
        ),
    ];
    for (cfg, env, key) in cases {
        let (code, err) = start_fails(&cfg, &env);
        assert_eq!(code, 2, "should refuse ({key}): {err}");
        assert!(err.contains(key), "error must name {key}: {err}");
    }
}

/// Runs `attachd serve` with `env` in an empty directory until it says it listens (or cannot),
/// and returns what it printed.
fn startup_output(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = collect(vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ]);
    let text = || String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = |t: &str| t.contains("attachd listening") || t.contains("cannot listen");
    while !done(&text()) && std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            std::thread::sleep(std::time::Duration::from_millis(200));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    text()
}

/// `ATTACHD__ENV=dev` without `--dev` is dev mode too, so it binds loopback (it bound
/// 0.0.0.0:8080 with the wildcard dev token). 8080 may be taken on a shared machine: then
/// the bind error names the address attachd tried.
#[test]
fn dev_env_without_the_flag_binds_loopback() {
    let text = startup_output(&[
        ("ATTACHD__ENV", "dev"),
        ("ATTACHD__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
    ]);
    assert!(text.contains("127.0.0.1:8080"), "{text}");
    assert!(!text.contains("0.0.0.0"), "{text}");
}

/// Logs are plain text when stderr is not a terminal (no ANSI colour codes in files and pipes).
#[test]
fn logs_have_no_colour_codes_when_not_a_terminal() {
    let text = startup_output(&[
        ("ATTACHD__ENV", "dev"),
        ("ATTACHD__SERVER__LISTEN", "127.0.0.1:0"),
        ("ATTACHD__SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
        ("RUST_LOG", "info"),
    ]);
    assert!(text.contains("attachd listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape in non-TTY logs: {text:?}"
    );
}

/// The README's command-line path works as written: `token new --append attachd.toml` adds
/// the entry (never the secret) to the file, and a dev server started with it admits the token
/// (the dev token alone would not).
#[tokio::test]
async fn token_new_appends_an_entry_that_a_dev_server_admits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attachd.toml");
    let mut secrets = Vec::new();
    for subject in ["ci", "ops"] {
        let out = Command::new(bin())
            .args(["token", "new", "--subject", subject, "--tenant", "acme"])
            .args([
                "--scopes",
                "sessions:read,sessions:write,attach:drive",
                "--append",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let secret = text
            .lines()
            .find_map(|l| l.strip_prefix("# adt_").map(|s| format!("adt_{s}")))
            .expect("secret line");
        secrets.push(secret);
    }
    let toml = std::fs::read_to_string(&file).unwrap();
    for secret in &secrets {
        assert!(
            !toml.contains(secret.as_str()),
            "the secret was written to the file"
        );
    }
    let srv = Server::start(
        Opts {
            dev: true,
            ..Opts::default()
        }
        .toml(&toml),
    );
    for secret in &secrets {
        let r = reqwest::Client::new()
            .post(srv.url("/api/v1/sessions"))
            .bearer_auth(secret)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
}

#[test]
fn token_new_prints_a_secret_and_a_matching_entry() {
    let out = Command::new(bin())
        .args([
            "token",
            "new",
            "--subject",
            "ci",
            "--tenant",
            "acme",
            "--scopes",
            "sessions:read,attach:observe",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("# adt_").map(|s| format!("adt_{s}")))
        .expect("secret line");
    assert!(
        text.contains(&format!("sha256 = \"{}\"", sha256_hex(&secret))),
        "{text}"
    );
    assert!(text.contains("scopes = [\"sessions:read\", \"attach:observe\"]"));
    let bad = Command::new(bin())
        .args([
            "token",
            "new",
            "--subject",
            "ci",
            "--tenant",
            "acme",
            "--scopes",
            "*",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn tls_listener_serves_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is required for this test (apt-get install openssl)")
        .status
        .success();
    assert!(ok);
    let srv = Server::start(Opts::default().tls_files(&cert, &key));
    let port = srv.port;
    let over_tls = |request: &'static [u8]| {
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new("openssl")
                .args(["s_client", "-quiet", "-ign_eof", "-connect"])
                .arg(format!("127.0.0.1:{port}"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(request).unwrap();
            let out = child.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let out = over_tls(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{out}"
    );
    // Heads are checked over TLS too: a malformed one gets SPEC's JSON error.
    let out = over_tls(b"GET /healthz HTTP/1.1\r\nHost localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains(r#"{"error":"invalid_request""#), "{out}");
    drop(srv);
}

/// `/openapi.json` documents the attach endpoint: GET, 101, every refusal of SPEC §4, and the
/// subprotocol and credential rules.
#[tokio::test]
async fn openapi_documents_the_attach_endpoint() {
    let srv = Server::start(Opts::default());
    let doc = srv
        .api(&ALICE)
        .call("GET", "/openapi.json", None)
        .await
        .body;
    let op = &doc["paths"]["/api/v1/sessions/{id}/attach"]["get"];
    assert!(op.is_object(), "no attach operation: {}", doc["paths"]);
    for status in ["101", "400", "401", "403", "404", "429", "503"] {
        assert!(op["responses"][status].is_object(), "no {status}: {op}");
    }
    let text = op.to_string();
    for rule in [
        "attach.v1",
        "attach.v1.bearer.",
        "token_in_url",
        "origin_not_allowed",
        "ticket_replayed",
        "session_full",
        "audit_unavailable",
        "Sec-WebSocket-Protocol",
    ] {
        assert!(text.contains(rule), "{rule} is not documented: {op}");
    }
}
