//! JWTs verified against issuers' published keys (a test IdP on loopback): OIDC discovery and
//! `jwks_url`, rotation, the unknown-`kid` refetch limit, pinned algorithms, claim checks, an
//! IdP outage with and without cached keys, and two issuers whose `kid`s collide.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::idp::{Key, TestIdp};
use crate::support::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "aud": "attachd", "sub": "carol", "tenant": "acme",
           "scope": "sessions:read", "exp": now() + 300, "name": "Carol C."})
}

/// `GET /api/v1/sessions` with `token`: status and `error` code.
async fn call(srv: &Server, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(srv.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let r = read_resp(r).await;
    (r.status, r.body["error"].as_str().unwrap_or("").to_owned())
}

/// Waits until the server's log mentions `needle` (log lines are written a moment after the
/// answer), and returns the log.
async fn wait_log(srv: &Server, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logs = srv.logs();
        if logs.contains(needle) {
            return logs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle} in the log:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn issuers_toml(discovered: &TestIdp, listed: &TestIdp, listed_url: &str) -> String {
    format!(
        "[[auth.jwt]]\nissuer = \"{}\"\naudience = \"attachd\"\njwks_min_refresh = \"3s\"\n\n\
         [[auth.jwt]]\nissuer = \"{}\"\naudience = \"attachd\"\njwks_url = \"{listed_url}\"\njwks_min_refresh = \"3s\"\n",
        discovered.issuer, listed.issuer
    )
}

#[tokio::test]
async fn tokens_verify_against_published_keys_with_pinned_algorithms() {
    let rsa = Key::new(Algorithm::RS256, "k1");
    let ec = Key::new(Algorithm::ES256, "k2");
    let ed = Key::new(Algorithm::EdDSA, "k1"); // the same kid as `rsa`, at another issuer
    let one = TestIdp::start(&[&rsa, &ec]).await;
    let two = TestIdp::start(&[&ed]).await;
    let two_url = format!("{}/jwks", two.issuer);
    let srv = Server::start(Opts::default().toml(&issuers_toml(&one, &two, &two_url)));

    // Valid tokens of each key type: discovery for `one`, jwks_url for `two`.
    assert_eq!(call(&srv, &rsa.sign(&claims(&one.issuer))).await.0, 200);
    assert_eq!(call(&srv, &ec.sign(&claims(&one.issuer))).await.0, 200);
    assert_eq!(call(&srv, &ed.sign(&claims(&two.issuer))).await.0, 200);
    assert_eq!(one.discovery_fetches(), 1);
    assert_eq!(
        (one.jwks_fetches(), two.jwks_fetches()),
        (1, 1),
        "keys are cached"
    );
    assert_eq!(two.discovery_fetches(), 0);

    // The colliding kids stay apart: each issuer's k1 verifies only its own tokens.
    let unauthorized = (401, "unauthorized".to_owned());
    assert_eq!(
        call(&srv, &ed.sign(&claims(&one.issuer))).await,
        unauthorized
    );
    assert_eq!(
        call(&srv, &rsa.sign(&claims(&two.issuer))).await,
        unauthorized
    );

    // Claims: expired, not yet valid, another audience, an unknown issuer.
    let mut c = claims(&one.issuer);
    c["exp"] = json!(now() - 60);
    assert_eq!(call(&srv, &rsa.sign(&c)).await, unauthorized);
    let mut c = claims(&one.issuer);
    c["nbf"] = json!(now() + 120);
    assert_eq!(call(&srv, &rsa.sign(&c)).await, unauthorized);
    let mut c = claims(&one.issuer);
    c["aud"] = json!("someone-else");
    assert_eq!(call(&srv, &rsa.sign(&c)).await, unauthorized);
    let c = claims("http://127.0.0.1:1/not-configured");
    assert_eq!(call(&srv, &rsa.sign(&c)).await, unauthorized);

    // Algorithm confusion: HS256 "signed" with the RSA public key; and `none`.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &h,
        &claims(&one.issuer),
        &EncodingKey::from_secret(&rsa.public_pem),
    )
    .unwrap();
    assert_eq!(call(&srv, &confused).await, unauthorized);
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&claims(&one.issuer))
    );
    assert_eq!(call(&srv, &none).await, unauthorized);

    // The log says why, never the token.
    let logs = wait_log(&srv, "reason\":\"malformed").await;
    for reason in [
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "unknown_issuer",
        "algorithm_not_allowed",
        "malformed",
    ] {
        assert!(logs.contains(reason), "no {reason} in the log:\n{logs}");
    }
    assert!(
        !logs.contains(&confused) && !logs.contains(&none),
        "a token reached the log"
    );

    // Rotation: a new kid is fetched once; unknown kids right after refetch nothing more.
    let rotated = Key::new(Algorithm::RS256, "k3");
    one.rotate(&[&rotated, &ec]);
    tokio::time::sleep(Duration::from_secs(3)).await; // past jwks_min_refresh since the first fetch
    assert_eq!(call(&srv, &rotated.sign(&claims(&one.issuer))).await.0, 200);
    assert_eq!(one.jwks_fetches(), 2, "the rotated key was fetched");
    let stranger = Key::new(Algorithm::RS256, "unknown");
    for _ in 0..5 {
        assert_eq!(
            call(&srv, &stranger.sign(&claims(&one.issuer))).await,
            unauthorized
        );
    }
    assert_eq!(
        one.jwks_fetches(),
        2,
        "unknown kids within jwks_min_refresh fetch nothing"
    );
    wait_log(&srv, "unknown_kid").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        call(&srv, &stranger.sign(&claims(&one.issuer))).await,
        unauthorized
    );
    assert_eq!(one.jwks_fetches(), 3, "one refetch per jwks_min_refresh");

    // The IdP goes down: cached keys keep working; a refetch attempt fails quietly.
    one.down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        call(&srv, &stranger.sign(&claims(&one.issuer))).await,
        unauthorized
    );
    assert_eq!(call(&srv, &rotated.sign(&claims(&one.issuer))).await.0, 200);
    assert_eq!(call(&srv, &ec.sign(&claims(&one.issuer))).await.0, 200);
}

#[tokio::test]
async fn without_cached_keys_an_unreachable_idp_is_503() {
    let key = Key::new(Algorithm::ES256, "k1");
    let idp = TestIdp::start(&[&key]).await;
    idp.down();
    let toml = format!(
        "[auth.jwt]\nissuer = \"{}\"\naudience = \"attachd\"\n",
        idp.issuer
    );
    let srv = Server::start(Opts::default().toml(&toml));
    let (status, code) = call(&srv, &key.sign(&claims(&idp.issuer))).await;
    assert_eq!((status, code.as_str()), (503, "jwks_unavailable"));
    wait_log(&srv, "keys_unavailable").await;
    // Static tokens are unaffected.
    assert_eq!(
        srv.api(&ALICE)
            .call("GET", "/api/v1/sessions", None)
            .await
            .status,
        200
    );

    // Every route that takes an API token documents that 503; the attach route (a ticket)
    // does not.
    let doc = srv
        .api(&ALICE)
        .call("GET", "/openapi.json", None)
        .await
        .body;
    let mut documented = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            if op.get("security").is_none() {
                continue;
            }
            let answer = op["responses"]["503"]["description"].as_str().unwrap_or("");
            let expected = !path.ends_with("/attach");
            assert_eq!(
                answer.contains("jwks_unavailable"),
                expected,
                "{method} {path}: {answer:?}"
            );
            documented += usize::from(expected);
        }
    }
    assert!(documented >= 10, "{documented} routes");
}
