//! API authentication: static hashed tokens and JWTs become a `Principal` with a tenant and
//! scopes, compared by SHA-256 digest (`secret.rs`). The extractor is in `http::extract`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{AuthSettings, ConfigError, JwtIssuers};
use crate::error::ApiError;
use crate::jwt::{Issuers, Refusal};
use crate::scope::Scope;
use crate::secret::sha256_hex;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who.
    pub subject: String,
    /// A display name for people (JWT `name` or `preferred_username`, or a static token's
    /// `name`), bounded and free of control characters.
    pub name: Option<String>,
    /// Whose sessions it may see.
    pub tenant: String,
    /// Granted scopes (every one only for the dev bootstrap token).
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the principal holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// `Ok` when the principal holds `scope`, else 403.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// Longest display name kept, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A display name fit to show: trimmed, control characters removed, at most
/// `MAX_NAME_CHARS`; `None` when nothing is left.
pub fn display_name(raw: Option<&str>) -> Option<String> {
    let cleaned: String = raw?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Verifies API bearer tokens.
pub struct Authenticator {
    by_digest: HashMap<String, Principal>,
    jwt: Issuers,
}

impl Authenticator {
    /// Builds the verifier from configuration; a dev bootstrap principal may be added.
    pub fn new(
        cfg: &AuthSettings,
        dev_bootstrap: Option<(&str, Principal)>,
    ) -> Result<Self, ConfigError> {
        let mut by_digest = HashMap::new();
        for t in &cfg.static_tokens {
            by_digest.insert(
                t.sha256.to_ascii_lowercase(),
                Principal {
                    subject: t.subject.clone(),
                    name: display_name(t.name.as_deref()),
                    tenant: t.tenant.clone(),
                    // Validated: every name is a scope (`Settings::validate`).
                    scopes: t.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                },
            );
        }
        if let Some((secret, p)) = dev_bootstrap {
            by_digest.insert(sha256_hex(secret), p);
        }
        let jwt = Issuers::new(cfg.jwt.as_ref().map(JwtIssuers::list).unwrap_or_default())?;
        Ok(Authenticator { by_digest, jwt })
    }

    /// Resolves a bearer secret to a principal: a static token, or a JWT of a configured
    /// issuer. A refused JWT is logged with its reason (never the token).
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        if token.is_empty() || token.len() > 8192 {
            return Err(ApiError::Unauthorized);
        }
        if let Some(p) = self.by_digest.get(&sha256_hex(token)) {
            return Ok(p.clone());
        }
        if self.jwt.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        let c = match self.jwt.verify(token).await {
            Ok(c) => c,
            Err((reason, issuer)) => {
                tracing::info!(
                    reason = reason.as_str(),
                    issuer = issuer.as_deref().unwrap_or("-"),
                    "bearer token refused"
                );
                return Err(if reason == Refusal::KeysUnavailable {
                    ApiError::JwksUnavailable
                } else {
                    ApiError::Unauthorized
                });
            }
        };
        let scopes = match (c.scopes, c.scope) {
            (Some(v), _) => v,
            (None, Some(s)) => s.split_whitespace().map(str::to_string).collect(),
            (None, None) => Vec::new(),
        };
        if c.sub.is_empty() || c.tenant.is_empty() || scopes.iter().any(|s| s == "*") {
            tracing::info!(reason = "claims", "bearer token refused");
            return Err(ApiError::Unauthorized);
        }
        let name =
            display_name(c.name.as_deref()).or(display_name(c.preferred_username.as_deref()));
        Ok(Principal {
            subject: c.sub,
            name,
            tenant: c.tenant,
            // A name that is no scope grants nothing.
            scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        })
    }
}

/// Shared handle type.
pub type SharedAuth = Arc<Authenticator>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticToken;

    #[tokio::test]
    async fn static_tokens_match_by_digest() {
        let cfg = AuthSettings {
            static_tokens: vec![StaticToken {
                subject: "alice".into(),
                name: Some("Alice\u{7}  ".into()),
                tenant: "acme".into(),
                scopes: vec!["sessions:read".into()],
                sha256: sha256_hex("s3cret"),
            }],
            jwt: None,
        };
        let a = Authenticator::new(&cfg, None).unwrap();
        let p = a.verify("s3cret").await.unwrap();
        assert_eq!(p.subject, "alice");
        assert_eq!(
            p.name.as_deref(),
            Some("Alice"),
            "control characters are removed"
        );
        assert!(p.require(Scope::SessionsRead).is_ok());
        assert!(p.require(Scope::SessionsWrite).is_err());
        assert!(a.verify("nope").await.is_err());
    }
}
