//! `auth.*`: API credentials, static tokens kept by their SHA-256 and JWT verification keys;
//! scopes are checked against the closed `Scope` set.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::base::ConfigError;
use crate::scope::Scope;

/// One static API token: only the SHA-256 of its secret is configured.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    /// Principal subject.
    pub subject: String,
    /// Display name shown to other participants (optional).
    #[serde(default)]
    pub name: Option<String>,
    /// Principal tenant.
    pub tenant: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Lowercase hex SHA-256 of the secret.
    pub sha256: String,
}

/// `auth.jwt`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// HS256 shared secret file.
    pub hs256_secret_file: Option<PathBuf>,
    /// RS256 or EdDSA public key (PEM) file.
    pub public_key_file: Option<PathBuf>,
    /// The issuer's JWKS (RS256, ES256, EdDSA keys). With no key source at all, it is found by
    /// OIDC discovery at `issuer` + `/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// An unknown `kid` (or an expired key set) refetches the JWKS at most this often.
    #[serde(default = "default_jwks_min_refresh", with = "humantime_serde")]
    pub jwks_min_refresh: Duration,
}

fn default_jwks_min_refresh() -> Duration {
    Duration::from_secs(30)
}

impl JwtSettings {
    /// Where the issuer's keys come from when no key file is configured.
    pub fn uses_jwks(&self) -> bool {
        self.hs256_secret_file.is_none() && self.public_key_file.is_none()
    }
}

/// `auth.jwt`: one issuer (a table) or several (an array of tables).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum JwtIssuers {
    /// `[auth.jwt]`.
    One(JwtSettings),
    /// `[[auth.jwt]]`.
    Many(Vec<JwtSettings>),
}

impl JwtIssuers {
    /// Every configured issuer.
    pub fn list(&self) -> &[JwtSettings] {
        match self {
            JwtIssuers::One(j) => std::slice::from_ref(j),
            JwtIssuers::Many(v) => v,
        }
    }
}

/// `auth.*`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Static hashed tokens.
    pub static_tokens: Vec<StaticToken>,
    /// JWT verification, per issuer.
    pub jwt: Option<JwtIssuers>,
}

impl AuthSettings {
    /// Static tokens are digests with known scopes (never the wildcard); JWT has one key; prod
    /// has credentials at all.
    pub(super) fn validate(&self, prod: bool) -> Result<(), ConfigError> {
        for (i, t) in self.static_tokens.iter().enumerate() {
            let key = format!("auth.static_tokens[{i}]");
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new(
                    &format!("{key}.sha256"),
                    "must be the 64-character hex SHA-256 of the secret (see `attachd token new`)",
                ));
            }
            if t.subject.trim().is_empty() || t.tenant.trim().is_empty() {
                return Err(ConfigError::new(
                    &key,
                    "subject and tenant must not be empty",
                ));
            }
            for s in &t.scopes {
                if s == "*" {
                    return Err(ConfigError::new(
                        &format!("{key}.scopes"),
                        "the wildcard scope exists only for the dev bootstrap token",
                    ));
                }
                if Scope::parse(s).is_none() {
                    return Err(ConfigError::new(
                        &format!("{key}.scopes"),
                        format!("unknown scope {s:?}; known scopes: {}", Scope::names()),
                    ));
                }
            }
        }
        let issuers = self.jwt.as_ref().map(JwtIssuers::list).unwrap_or_default();
        for (i, j) in issuers.iter().enumerate() {
            let key = if issuers.len() == 1 {
                "auth.jwt".to_owned()
            } else {
                format!("auth.jwt[{i}]")
            };
            let sources = [
                j.hs256_secret_file.is_some(),
                j.public_key_file.is_some(),
                j.jwks_url.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() > 1 {
                return Err(ConfigError::new(
                    &key,
                    "set at most one of hs256_secret_file, public_key_file and jwks_url \
                     (none: OIDC discovery from issuer)",
                ));
            }
            let url = j.jwks_url.as_deref().unwrap_or(&j.issuer);
            if j.uses_jwks() && !(url.starts_with("https://") || url.starts_with("http://")) {
                let what = if j.jwks_url.is_some() {
                    "jwks_url"
                } else {
                    "issuer"
                };
                return Err(ConfigError::new(
                    &format!("{key}.{what}"),
                    "must be an http(s) URL to fetch keys from",
                ));
            }
            if issuers[..i].iter().any(|o| o.issuer == j.issuer) {
                return Err(ConfigError::new(
                    &format!("{key}.issuer"),
                    "each issuer may be configured once",
                ));
            }
        }
        if prod && self.static_tokens.is_empty() && self.jwt.is_none() {
            return Err(ConfigError::new(
                "auth.static_tokens",
                "prod needs API credentials: configure auth.static_tokens or auth.jwt",
            ));
        }
        Ok(())
    }
}
