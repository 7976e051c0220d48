//! A small identity provider for tests: plain HTTP on loopback serving an OIDC discovery
//! document and a JWKS, with keys made by `openssl`; it signs tokens, rotates keys, counts
//! fetches and can go down.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key in PEM (for the alg-confusion case).
    pub public_pem: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is needed for the JWKS tests: apt-get install openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Key {
    /// A fresh key of `alg` (RS256, ES256 or EdDSA) named `kid`.
    pub fn new(alg: Algorithm, kid: &str) -> Key {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let gen: &[&str] = match alg {
            Algorithm::RS256 => &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            Algorithm::ES256 => &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            Algorithm::EdDSA => &["genpkey", "-algorithm", "ed25519"],
            other => panic!("no test keys for {other:?}"),
        };
        let pem = openssl(d, gen);
        std::fs::write(d.join("k.pem"), &pem).unwrap();
        let public_pem = openssl(d, &["pkey", "-in", "k.pem", "-pubout"]);
        let (encoding, mut jwk) = match alg {
            Algorithm::RS256 => {
                let e = EncodingKey::from_rsa_pem(&pem).unwrap();
                let j = serde_json::to_value(Jwk::from_encoding_key(&e, alg).unwrap()).unwrap();
                (e, j)
            }
            Algorithm::ES256 => {
                let e = EncodingKey::from_ec_pem(&pem).unwrap();
                let j = serde_json::to_value(Jwk::from_encoding_key(&e, alg).unwrap()).unwrap();
                (e, j)
            }
            _ => {
                let der = openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-outform", "DER"]);
                let x =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
                let e = EncodingKey::from_ed_pem(&pem).unwrap();
                (
                    e,
                    json!({"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"}),
                )
            }
        };
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Key {
            kid: kid.into(),
            alg,
            encoding,
            jwk,
            public_pem,
        }
    }

    /// A token signed with this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.encoding).unwrap()
    }
}

#[derive(Default)]
struct State {
    keys: Vec<Value>,
    jwks_fetches: usize,
    discovery_fetches: usize,
}

/// The running provider.
pub struct TestIdp {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestIdp {
    /// Serves `keys` at `<issuer>/jwks` and discovery at `<issuer>/.well-known/openid-configuration`.
    pub async fn start(keys: &[&Key]) -> TestIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
            ..State::default()
        }));
        let (st, iss) = (state.clone(), issuer.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let (st, iss) = (st.clone(), iss.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 2048];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let (status, body) = {
                        let mut s = st.lock().unwrap();
                        match path.as_str() {
                            "/.well-known/openid-configuration" => {
                                s.discovery_fetches += 1;
                                (
                                    "200 OK",
                                    json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")}),
                                )
                            }
                            "/jwks" => {
                                s.jwks_fetches += 1;
                                ("200 OK", json!({"keys": s.keys}))
                            }
                            _ => ("404 Not Found", json!({})),
                        }
                    };
                    let body = body.to_string();
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        TestIdp {
            issuer,
            state,
            task,
        }
    }

    /// Publishes `keys` instead of the current ones (a key rotation).
    pub fn rotate(&self, keys: &[&Key]) {
        self.state.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    /// How often the discovery document was fetched.
    pub fn discovery_fetches(&self) -> usize {
        self.state.lock().unwrap().discovery_fetches
    }

    /// Stops serving: connections are refused from now on.
    pub fn down(&self) {
        self.task.abort();
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
