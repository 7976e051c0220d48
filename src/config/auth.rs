//! `auth.*`: API credentials, static tokens kept by their SHA-256 and JWT verification keys;
//! scopes are checked against the closed `Scope` set.

use std::path::PathBuf;

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
}

/// `auth.*`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Static hashed tokens.
    pub static_tokens: Vec<StaticToken>,
    /// JWT verification.
    pub jwt: Option<JwtSettings>,
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
        if let Some(j) = &self.jwt {
            match (&j.hs256_secret_file, &j.public_key_file) {
                (None, None) | (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        "auth.jwt",
                        "set exactly one of hs256_secret_file and public_key_file",
                    ))
                }
                _ => {}
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
