//! Typed API errors and their one mapping to SPEC status codes and `{"error","message"}` bodies.
//! Every refusal the gateway gives over HTTP goes through `ApiError`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// Every refusal of the HTTP API and the attach handshake.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed or unknown credential; invalid or expired ticket.
    #[error("authentication required")]
    Unauthorized,
    /// The ticket was already redeemed.
    #[error("this ticket was already used")]
    TicketReplayed,
    /// Visible resource, missing scope.
    #[error("missing scope {0}")]
    Forbidden(&'static str),
    /// Unknown, or another tenant's.
    #[error("not found")]
    NotFound,
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// `command` not in `session.local.allowed_commands`.
    #[error("this command is not allowed")]
    CommandNotAllowed,
    /// Body over the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body did not arrive within `server.handshake_timeout`.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// A credential in the query string.
    #[error("credentials must not be sent in the URL")]
    TokenInUrl,
    /// Origin not in the allowlist (or a cookie credential without an allowed Origin).
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// Per-IP attempt window exceeded.
    #[error("too many attempts, retry later")]
    RateLimited {
        /// Seconds for `Retry-After`.
        retry_after_secs: u64,
    },
    /// Per-subject concurrent connections exceeded.
    #[error("too many concurrent connections for this subject")]
    TooManyConnections,
    /// The session participant cap.
    #[error("session is full")]
    SessionFull,
    /// The audit log cannot be written and the policy is `deny`.
    #[error("audit log unavailable")]
    AuditUnavailable,
    /// The session's recording cannot be written and `recording.on_failure` is `deny`.
    #[error("session recording unavailable")]
    RecordingUnavailable,
    /// Redis is down and the policy is `deny`.
    #[error("shared state unavailable")]
    RedisUnavailable,
    /// A JWT's issuer publishes its keys at a JWKS URL that cannot be fetched, and no keys of
    /// it are cached yet.
    #[error("the token issuer's signing keys cannot be fetched now")]
    JwksUnavailable,
    /// Only unknown subprotocols offered.
    #[error("unsupported subprotocol; offer attach.v1")]
    UnsupportedProtocol,
    /// Not a valid WebSocket upgrade.
    #[error("a WebSocket upgrade is required")]
    UpgradeRequired,
    /// The method is not supported on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The backend could not be reached or refused.
    #[error("backend unavailable")]
    BackendUnavailable(String),
    /// The server is draining.
    #[error("server is shutting down")]
    ShuttingDown,
    /// This replica holds `server.max_connections` connections.
    #[error("this server holds all the connections it can; retry, or another replica")]
    AtCapacity,
    /// A bug or unexpected condition; details go to the log, never to the client.
    #[error("internal error")]
    Internal(String),
}

impl From<crate::tickets::TicketError> for ApiError {
    fn from(e: crate::tickets::TicketError) -> Self {
        use crate::tickets::TicketError;
        match e {
            TicketError::Invalid => ApiError::Unauthorized,
            TicketError::Replayed => ApiError::TicketReplayed,
            TicketError::Unavailable => ApiError::RedisUnavailable,
            // Outstanding tickets expire within `attach.ticket_ttl`; expired ones are swept
            // every second.
            TicketError::Full => ApiError::RateLimited {
                retry_after_secs: 1,
            },
        }
    }
}

/// A hub that no longer answers belongs to a session that ended: the session is gone (404).
impl From<actix::MailboxError> for ApiError {
    fn from(_: actix::MailboxError) -> Self {
        ApiError::NotFound
    }
}

/// The lease store is Redis's (the in-process one cannot fail): 503 `redis_unavailable`.
impl From<attachd_actors::lease::LeaseError> for ApiError {
    fn from(e: attachd_actors::lease::LeaseError) -> Self {
        tracing::warn!(error = %e.0, "lease store unavailable");
        ApiError::RedisUnavailable
    }
}

/// A local session whose PTY or process could not start.
impl From<crate::backend::local::LocalError> for ApiError {
    fn from(e: crate::backend::local::LocalError) -> Self {
        ApiError::BackendUnavailable(e.to_string())
    }
}

/// Reading or verifying the audit files failed: logged, never shown to the client.
impl From<attachd_actors::audit::AuditError> for ApiError {
    fn from(e: attachd_actors::audit::AuditError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A file that is gone (a recording removed since it was listed) is not found; any other I/O
/// failure is logged and shown as internal.
impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::NotFound,
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// The blocking pool refused or lost a job.
impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A malformed credential (bad base64, not UTF-8, a JWT that does not verify) is no credential.
impl From<base64::DecodeError> for ApiError {
    fn from(_: base64::DecodeError) -> Self {
        ApiError::Unauthorized
    }
}

impl From<std::string::FromUtf8Error> for ApiError {
    fn from(_: std::string::FromUtf8Error) -> Self {
        ApiError::Unauthorized
    }
}

impl From<jsonwebtoken::errors::Error> for ApiError {
    fn from(_: jsonwebtoken::errors::Error) -> Self {
        ApiError::Unauthorized
    }
}

impl ApiError {
    /// The SPEC `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::TicketReplayed => "ticket_replayed",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::CommandNotAllowed => "command_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::TokenInUrl => "token_in_url",
            ApiError::OriginNotAllowed => "origin_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyConnections => "too_many_connections",
            ApiError::SessionFull => "session_full",
            ApiError::AuditUnavailable => "audit_unavailable",
            ApiError::RecordingUnavailable => "recording_unavailable",
            ApiError::RedisUnavailable => "redis_unavailable",
            ApiError::JwksUnavailable => "jwks_unavailable",
            ApiError::UnsupportedProtocol => "unsupported_protocol",
            ApiError::UpgradeRequired => "upgrade_required",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BackendUnavailable(_) => "backend_unavailable",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::AtCapacity => "at_capacity",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The error for a status some other layer answered without a JSON body (static files,
    /// method mismatches), so that every error answer carries SPEC's `{error, message}`.
    pub fn for_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            s if s.is_client_error() => ApiError::BadRequest(
                s.canonical_reason()
                    .unwrap_or("invalid request")
                    .to_lowercase(),
            ),
            s => ApiError::Internal(format!("status {s} without a body")),
        }
    }

    /// The refusals of the attach handshake (SPEC §4, plus malformed upgrades and draining),
    /// for exporting their metrics at zero.
    pub fn handshake_refusals() -> [ApiError; 17] {
        [
            ApiError::TokenInUrl,
            ApiError::OriginNotAllowed,
            ApiError::RateLimited {
                retry_after_secs: 0,
            },
            ApiError::Unauthorized,
            ApiError::TicketReplayed,
            ApiError::NotFound,
            ApiError::TooManyConnections,
            ApiError::SessionFull,
            ApiError::AuditUnavailable,
            ApiError::RecordingUnavailable,
            ApiError::RedisUnavailable,
            ApiError::UnsupportedProtocol,
            ApiError::UpgradeRequired,
            ApiError::BackendUnavailable(String::new()),
            ApiError::ShuttingDown,
            ApiError::AtCapacity,
            ApiError::Internal(String::new()),
        ]
    }

    /// SPEC's `{error, message}` body of this error.
    pub fn body_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
        })
        .expect("two strings serialize")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::TicketReplayed => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_)
            | ApiError::CommandNotAllowed
            | ApiError::TokenInUrl
            | ApiError::UnsupportedProtocol
            | ApiError::UpgradeRequired => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited { .. } | ApiError::TooManyConnections | ApiError::SessionFull => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AuditUnavailable
            | ApiError::RecordingUnavailable
            | ApiError::RedisUnavailable
            | ApiError::JwksUnavailable
            | ApiError::ShuttingDown
            | ApiError::AtCapacity => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BackendUnavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON error body (clients read it too).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub error: String,
    /// Human text.
    pub message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(detail) | ApiError::BackendUnavailable(detail) => {
                tracing::error!(code = self.code(), detail = %detail, "request failed");
            }
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status());
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            // Connections close all the time: a second is a fair wait (or try another replica).
            ApiError::AtCapacity => {
                resp.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        resp.content_type("application/json").body(self.body_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant; the match below fails to compile when a variant is added.
    fn every_error() -> Vec<ApiError> {
        let mut all = Vec::from(ApiError::handshake_refusals());
        all.extend([
            ApiError::Forbidden("x"),
            ApiError::BadRequest(String::new()),
            ApiError::CommandNotAllowed,
            ApiError::PayloadTooLarge,
            ApiError::RequestTimeout,
            ApiError::MethodNotAllowed,
            ApiError::JwksUnavailable,
        ]);
        for e in &all {
            match e {
                ApiError::Unauthorized
                | ApiError::TicketReplayed
                | ApiError::Forbidden(_)
                | ApiError::NotFound
                | ApiError::BadRequest(_)
                | ApiError::CommandNotAllowed
                | ApiError::PayloadTooLarge
                | ApiError::RequestTimeout
                | ApiError::TokenInUrl
                | ApiError::OriginNotAllowed
                | ApiError::RateLimited { .. }
                | ApiError::TooManyConnections
                | ApiError::SessionFull
                | ApiError::AuditUnavailable
                | ApiError::RecordingUnavailable
                | ApiError::RedisUnavailable
                | ApiError::JwksUnavailable
                | ApiError::UnsupportedProtocol
                | ApiError::UpgradeRequired
                | ApiError::MethodNotAllowed
                | ApiError::BackendUnavailable(_)
                | ApiError::ShuttingDown
                | ApiError::AtCapacity
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    /// A file of this repository from the first `marker` on.
    fn file_from(rel: &str, marker: &str) -> String {
        let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let start = text
            .find(marker)
            .unwrap_or_else(|| panic!("{rel} has no {marker:?}"));
        text[start..].to_owned()
    }

    #[test]
    fn the_web_client_knows_every_error_code() {
        let ts = file_from("web/src/api.ts", "export const API_ERROR = {");
        let body = &ts[..ts.find("} as const;").expect("API_ERROR is closed")];
        let web: std::collections::BTreeSet<String> = body
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().trim_end_matches(',').trim_matches('\'').to_owned())
            .collect();
        let rust: std::collections::BTreeSet<String> =
            every_error().iter().map(|e| e.code().to_owned()).collect();
        assert_eq!(
            web, rust,
            "web/src/api.ts API_ERROR differs from ApiError::code"
        );
    }

    #[test]
    fn the_readme_lists_every_error_code_with_its_status() {
        let documented: std::collections::BTreeSet<(u16, String)> =
            file_from("README.md", "### Error codes")
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut cells = l.split('|').map(str::trim).skip(1);
                    let status = cells.next()?.parse().ok()?;
                    Some((status, cells.next()?.trim_matches('`').to_owned()))
                })
                .collect();
        let rust: std::collections::BTreeSet<(u16, String)> = every_error()
            .iter()
            .map(|e| (e.status().as_u16(), e.code().to_owned()))
            .collect();
        assert_eq!(
            documented, rust,
            "README.md's error table differs from ApiError::{{status, code}}"
        );
    }

    #[test]
    fn io_errors_are_not_found_when_the_file_is_gone_and_internal_otherwise() {
        use std::io::{Error, ErrorKind};
        let gone = ApiError::from(Error::new(ErrorKind::NotFound, "recording removed"));
        assert!(matches!(gone, ApiError::NotFound), "{gone:?}");
        let denied = ApiError::from(Error::new(ErrorKind::PermissionDenied, "/data: denied"));
        match &denied {
            ApiError::Internal(detail) => assert!(detail.contains("denied"), "{detail}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(denied.status().as_u16(), 500);
        assert!(
            !String::from_utf8(denied.body_json())
                .unwrap()
                .contains("/data"),
            "the detail goes to the log, never to the client"
        );
    }

    #[test]
    fn codes_and_statuses_follow_the_spec() {
        let cases: &[(ApiError, u16, &str)] = &[
            (ApiError::TokenInUrl, 400, "token_in_url"),
            (ApiError::OriginNotAllowed, 403, "origin_not_allowed"),
            (
                ApiError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "rate_limited",
            ),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::TicketReplayed, 401, "ticket_replayed"),
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::TooManyConnections, 429, "too_many_connections"),
            (ApiError::SessionFull, 429, "session_full"),
            (ApiError::AuditUnavailable, 503, "audit_unavailable"),
            (ApiError::RedisUnavailable, 503, "redis_unavailable"),
            (ApiError::RecordingUnavailable, 503, "recording_unavailable"),
            (ApiError::JwksUnavailable, 503, "jwks_unavailable"),
            (ApiError::AtCapacity, 503, "at_capacity"),
            (ApiError::UnsupportedProtocol, 400, "unsupported_protocol"),
            (ApiError::CommandNotAllowed, 400, "command_not_allowed"),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), *status, "{code}");
            assert_eq!(e.code(), *code);
        }
    }
}
