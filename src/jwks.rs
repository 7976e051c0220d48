//! An issuer's signing keys from its JWKS (at `jwks_url`, or found by OIDC discovery), cached by
//! `kid` and refreshed on expiry or an unknown `kid` at most once per `jwks_min_refresh`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How long a fetched key set is fresh when the response does not say (`Cache-Control`).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest a key set counts as fresh, whatever the response says.
pub const LONGEST_MAX_AGE: Duration = Duration::from_secs(3600);
/// Largest discovery document or JWKS read.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// A whole fetch (connect, headers, body) must finish within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A verification key and the one algorithm it may verify (pinned by its key type).
#[derive(Clone)]
pub struct PinnedKey {
    /// The key.
    pub key: DecodingKey,
    /// RS256 for RSA, ES256 for P-256, EdDSA for Ed25519; HS256 only for a configured secret.
    pub alg: Algorithm,
}

/// Why no key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The key set (fetched and still current) has no such `kid`.
    UnknownKid,
    /// No key set could be fetched yet.
    Unavailable,
}

/// Where the key set is published.
#[derive(Debug, Clone)]
enum Source {
    Jwks(String),
    Discovery,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, PinnedKey>,
    loaded: bool,
    fresh_until: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// One issuer's cached key set.
pub struct JwksCache {
    issuer: String,
    source: Source,
    min_refresh: Duration,
    client: reqwest::Client,
    // Auth path only (never the output path); held for map reads and swaps, never across I/O.
    keys: RwLock<KeySet>,
    // Single flight: one fetch at a time; waiters find the result when they get their turn.
    refresh: tokio::sync::Mutex<()>,
}

impl JwksCache {
    /// A cache for `issuer`'s keys at `jwks_url`, or by discovery when `None`.
    pub fn new(
        issuer: &str,
        jwks_url: Option<&str>,
        min_refresh: Duration,
        client: reqwest::Client,
    ) -> Arc<Self> {
        Arc::new(JwksCache {
            issuer: issuer.to_owned(),
            source: jwks_url.map_or(Source::Discovery, |u| Source::Jwks(u.to_owned())),
            min_refresh,
            client,
            keys: RwLock::new(KeySet::default()),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// The HTTP client every cache shares: bounded time, no redirects.
    pub fn client() -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())
    }

    /// The key named `kid` (a token without `kid` matches a key set of exactly one key).
    /// An unknown `kid` or an expired set refetches, at most once per `jwks_min_refresh`;
    /// when the issuer cannot be reached, the keys already cached keep working.
    pub async fn key(&self, kid: Option<&str>) -> Result<PinnedKey, KeyError> {
        let (found, fresh) = self.lookup(kid);
        if let (Some(k), true) = (&found, fresh) {
            return Ok(k.clone());
        }
        self.refresh_if_due().await;
        match self.lookup(kid) {
            (Some(k), _) => Ok(k),
            (None, _) if self.read().loaded => Err(KeyError::UnknownKid),
            (None, _) => Err(KeyError::Unavailable),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lookup(&self, kid: Option<&str>) -> (Option<PinnedKey>, bool) {
        let set = self.read();
        let fresh = set.fresh_until.is_some_and(|t| Instant::now() < t);
        let key = match kid {
            Some(kid) => set.keys.get(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.values().next().cloned(),
            None => None,
        };
        (key, fresh)
    }

    async fn refresh_if_due(&self) {
        let asked = Instant::now();
        let _turn = self.refresh.lock().await;
        let due = match self.read().last_attempt {
            // Someone fetched while this caller waited: use that result.
            Some(t) if t >= asked => false,
            Some(t) => t.elapsed() >= self.min_refresh,
            None => true,
        };
        if !due {
            return;
        }
        let started = Instant::now();
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .last_attempt = Some(started);
        match self.fetch().await {
            Ok((keys, max_age)) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the issuer's signing keys");
                let mut set = self.keys.write().unwrap_or_else(|p| p.into_inner());
                set.keys = keys;
                set.loaded = true;
                set.fresh_until = Some(started + max_age);
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch the issuer's signing keys; cached keys stay in use");
            }
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, PinnedKey>, Duration), String> {
        let url = match &self.source {
            Source::Jwks(u) => u.clone(),
            Source::Discovery => self.discover().await?,
        };
        let (body, max_age) = self.get(&url).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if let Some(k) = pin(jwk) {
                keys.insert(kid, k);
            }
        }
        Ok((keys, max_age))
    }

    async fn discover(&self) -> Result<String, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let (body, _) = self.get(&url).await?;
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|e| format!("discovery document: {e}"))?;
        if doc.issuer != self.issuer {
            return Err("the discovery document names another issuer".into());
        }
        Ok(doc.jwks_uri)
    }

    async fn get(&self, url: &str) -> Result<(Vec<u8>, Duration), String> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status().as_u16()));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(self.min_refresh, LONGEST_MAX_AGE.max(self.min_refresh));
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("body: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err("document too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// `max-age` of a `Cache-Control` value.
fn max_age(v: &str) -> Option<Duration> {
    v.split(',').find_map(|d| {
        let (k, n) = d.trim().split_once('=')?;
        k.eq_ignore_ascii_case("max-age")
            .then(|| n.trim().parse().ok().map(Duration::from_secs))?
    })
}

/// The key and its one algorithm, by key type: RSA → RS256, P-256 → ES256, Ed25519 → EdDSA.
/// A symmetric key, another curve, or a key whose own `alg` says otherwise is not used.
fn pin(jwk: &Jwk) -> Option<PinnedKey> {
    let (alg, own) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|a| a != own) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(PinnedKey { key, alg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), None);
    }

    #[test]
    fn symmetric_and_mislabelled_keys_are_never_pinned() {
        let oct: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}))
                .unwrap();
        assert!(pin(&oct).is_none());
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "e",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(
            pin(&serde_json::from_value(ed.clone()).unwrap())
                .unwrap()
                .alg,
            Algorithm::EdDSA
        );
        let mut wrong = ed;
        wrong["alg"] = serde_json::json!("RS256");
        assert!(pin(&serde_json::from_value(wrong).unwrap()).is_none());
    }
}
