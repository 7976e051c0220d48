//! JWT verification per configured issuer: the token's `iss` picks the issuer, its `kid` the key
//! (a configured key file or the issuer's JWKS), and the key's type the one algorithm allowed.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{ConfigError, JwtSettings};
use crate::jwks::{JwksCache, KeyError, PinnedKey};

/// The claims attachd reads.
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// Subject.
    pub sub: String,
    /// Tenant.
    pub tenant: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Scopes as a list.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Display name when `name` is absent.
    #[serde(default)]
    pub preferred_username: Option<String>,
}

/// Why a token was refused: logged (never the token); the caller sees 401, or 503 for
/// `KeysUnavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT, or an algorithm attachd never accepts (`none` among them).
    Malformed,
    /// `iss` names no configured issuer.
    UnknownIssuer,
    /// No key with the token's `kid` (after the refetch the rate limit allows).
    UnknownKid,
    /// The header's algorithm is not the one pinned to the key.
    Algorithm,
    /// `exp` passed.
    Expired,
    /// `nbf` not reached.
    NotYetValid,
    /// `aud` is not the configured audience.
    Audience,
    /// `iss` mismatch.
    Issuer,
    /// The signature does not verify.
    Signature,
    /// A required claim is missing or malformed.
    Claims,
    /// The issuer's keys cannot be fetched and none are cached.
    KeysUnavailable,
}

impl Refusal {
    /// The log's reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::UnknownIssuer => "unknown_issuer",
            Refusal::UnknownKid => "unknown_kid",
            Refusal::Algorithm => "algorithm_not_allowed",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Audience => "wrong_audience",
            Refusal::Issuer => "wrong_issuer",
            Refusal::Signature => "bad_signature",
            Refusal::Claims => "claims",
            Refusal::KeysUnavailable => "keys_unavailable",
        }
    }
}

enum Keys {
    File(PinnedKey),
    Jwks(Arc<JwksCache>),
}

struct Issuer {
    iss: String,
    audience: String,
    keys: Keys,
}

/// Every configured issuer.
pub struct Issuers {
    list: Vec<Issuer>,
}

impl Issuers {
    /// Builds the issuers; key files are read now, JWKS are fetched on first use.
    pub fn new(cfg: &[JwtSettings]) -> Result<Self, ConfigError> {
        let mut client = None;
        let mut list = Vec::new();
        for j in cfg {
            let keys = if j.uses_jwks() {
                let c = match &client {
                    Some(c) => c,
                    None => client.insert(JwksCache::client().map_err(|e| ConfigError {
                        key: "auth.jwt".into(),
                        message: format!("HTTP client: {e}"),
                    })?),
                };
                Keys::Jwks(JwksCache::new(
                    &j.issuer,
                    j.jwks_url.as_deref(),
                    j.jwks_min_refresh,
                    c.clone(),
                ))
            } else {
                Keys::File(key_file(j)?)
            };
            list.push(Issuer {
                iss: j.issuer.clone(),
                audience: j.audience.clone(),
                keys,
            });
        }
        Ok(Issuers { list })
    }

    /// Whether no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Verifies `token` against its issuer's key and claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, (Refusal, Option<String>)> {
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| (Refusal::Malformed, None))?;
        // Only to pick the issuer; everything is verified below with that issuer's key.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Iss>(token)
            .map_err(|_| (Refusal::Malformed, None))?;
        let iss = unverified.claims.iss.unwrap_or_default();
        let Some(issuer) = self.list.iter().find(|i| i.iss == iss) else {
            return Err((Refusal::UnknownIssuer, None));
        };
        let who = Some(issuer.iss.clone());
        let key = match &issuer.keys {
            Keys::File(k) => k.clone(),
            Keys::Jwks(cache) => cache
                .key(header.kid.as_deref())
                .await
                .map_err(|e| match e {
                    KeyError::UnknownKid => (Refusal::UnknownKid, who.clone()),
                    KeyError::Unavailable => (Refusal::KeysUnavailable, who.clone()),
                })?,
        };
        if header.alg != key.alg {
            return Err((Refusal::Algorithm, who));
        }
        let mut v = Validation::new(key.alg);
        v.set_issuer(&[&issuer.iss]);
        v.set_audience(&[&issuer.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &key.key, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                let r = match e.kind() {
                    ErrorKind::ExpiredSignature => Refusal::Expired,
                    ErrorKind::ImmatureSignature => Refusal::NotYetValid,
                    ErrorKind::InvalidAudience => Refusal::Audience,
                    ErrorKind::InvalidIssuer => Refusal::Issuer,
                    ErrorKind::InvalidSignature => Refusal::Signature,
                    ErrorKind::InvalidAlgorithm => Refusal::Algorithm,
                    ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => Refusal::Claims,
                    _ => Refusal::Malformed,
                };
                (r, who)
            })
    }
}

/// A configured key file: an HS256 secret (at least 32 bytes), or an RSA or Ed25519 public key.
fn key_file(j: &JwtSettings) -> Result<PinnedKey, ConfigError> {
    if let Some(f) = &j.hs256_secret_file {
        let secret = std::fs::read(f).map_err(|e| ConfigError {
            key: "auth.jwt.hs256_secret_file".into(),
            message: format!("{}: {e}", f.display()),
        })?;
        let secret = secret.trim_ascii();
        if secret.len() < 32 {
            return Err(ConfigError {
                key: "auth.jwt.hs256_secret_file".into(),
                message: "the HS256 secret must be at least 32 bytes".into(),
            });
        }
        return Ok(PinnedKey {
            key: DecodingKey::from_secret(secret),
            alg: Algorithm::HS256,
        });
    }
    let Some(f) = &j.public_key_file else {
        return Err(ConfigError {
            key: "auth.jwt".into(),
            message: "set hs256_secret_file, public_key_file or jwks_url".into(),
        });
    };
    let pem = std::fs::read(f).map_err(|e| ConfigError {
        key: "auth.jwt.public_key_file".into(),
        message: format!("{}: {e}", f.display()),
    })?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        Ok(PinnedKey {
            key,
            alg: Algorithm::RS256,
        })
    } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        Ok(PinnedKey {
            key,
            alg: Algorithm::EdDSA,
        })
    } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        Ok(PinnedKey {
            key,
            alg: Algorithm::ES256,
        })
    } else {
        Err(ConfigError {
            key: "auth.jwt.public_key_file".into(),
            message: "not an RSA, P-256 or Ed25519 public key in PEM".into(),
        })
    }
}
