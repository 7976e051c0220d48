//! The client side of the HTTP API: one reqwest client with the bearer token, the session
//! calls and the ticket request, and `Failure`, what a refused or unanswered call was.

use std::time::Duration;

use attachd_actors::protocol::Role;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::cli::token::ApiToken;
use crate::error::ErrorBody;
use crate::http::api::{CreateSession, Delivery, SessionList, TicketRequest, TicketResponse};
use crate::sessions::SessionView;

/// Longest wait for any API answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a call (API request or WebSocket handshake) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an error status (its `{error, message}` body when it sent one).
    Refused {
        /// HTTP status.
        status: u16,
        /// SPEC error code (`unauthorized`, `not_found`, ...).
        code: Option<String>,
        /// The server's human text.
        message: Option<String>,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// No answer: refused connection, TLS failure, timeout, reset.
    Unreachable(String),
    /// Something on this side: a bad URL, an unreadable answer.
    Local(String),
}

impl Failure {
    /// A refusal from a status, the response headers and the body.
    pub fn refused(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Failure::Refused {
            status,
            code: parsed.as_ref().map(|b| b.error.clone()),
            message: parsed.map(|b| b.message),
            retry_after,
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one gateway, authenticated by an API token.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: ApiToken,
}

impl ApiClient {
    /// `base` is the gateway's URL (`http://host:port` or `https://…`).
    pub fn new(
        base: &Url,
        token: ApiToken,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::Local(format!("HTTP client: {e}")))?;
        Ok(ApiClient {
            http,
            base: base.clone(),
            token,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &[&str],
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, bytes::Bytes), Failure> {
        let mut bearer = HeaderValue::from_str(&self.token.bearer())
            .map_err(|_| Failure::Local("the API token is not a valid header value".into()))?;
        bearer.set_sensitive(true);
        let mut req = self
            .http
            .request(method, endpoint(&self.base, path))
            .header(AUTHORIZATION, bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(Failure::refused(status.as_u16(), &headers, &bytes));
        }
        Ok((status, bytes))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: Option<serde_json::Value>,
    ) -> Result<(T, serde_json::Value), Failure> {
        let (_, bytes) = self.call(method, path, body).await?;
        let url = endpoint(&self.base, path);
        let path = url.path();
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Local(format!("unreadable answer from {path}: {e}")))?;
        let typed = serde_json::from_value(raw.clone())
            .map_err(|e| Failure::Local(format!("unexpected answer from {path}: {e}")))?;
        Ok((typed, raw))
    }

    /// `GET /api/v1/sessions`: the typed list and the raw JSON (for `--json`).
    pub async fn list_sessions(&self) -> Result<(SessionList, serde_json::Value), Failure> {
        self.json(Method::GET, &SESSIONS, None).await
    }

    /// `POST /api/v1/sessions`.
    pub async fn create_session(
        &self,
        req: &CreateSession,
    ) -> Result<(SessionView, serde_json::Value), Failure> {
        let body = serde_json::to_value(req).map_err(|e| Failure::Local(e.to_string()))?;
        self.json(Method::POST, &SESSIONS, Some(body)).await
    }

    /// `DELETE /api/v1/sessions/{id}`.
    pub async fn delete_session(&self, id: &str) -> Result<(), Failure> {
        self.call(Method::DELETE, &session_path(id, None), None)
            .await
            .map(|_| ())
    }

    /// `POST /api/v1/sessions/{id}/attach-tickets` (body delivery), resuming from `resume_from`.
    pub async fn ticket(
        &self,
        id: &str,
        role: Role,
        resume_from: Option<u64>,
    ) -> Result<TicketResponse, Failure> {
        let req = TicketRequest {
            role,
            delivery: Delivery::Body,
            resume_from,
        };
        let body = serde_json::to_value(&req).map_err(|e| Failure::Local(e.to_string()))?;
        let path = session_path(id, Some("attach-tickets"));
        self.json(Method::POST, &path, Some(body))
            .await
            .map(|(t, _)| t)
    }

    /// The attach URL of a session on this gateway.
    pub fn attach_url(&self, id: &str) -> Result<Url, Failure> {
        attach_url(&self.base, id)
    }
}

/// The attach URL of a session (`ws://` or `wss://`): no credential ever goes in it.
pub fn attach_url(base: &Url, id: &str) -> Result<Url, Failure> {
    let mut url = endpoint(base, &session_path(id, Some("attach")));
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| Failure::Local("cannot make a WebSocket URL".into()))?;
    Ok(url)
}

/// The path of the session collection, as segments.
const SESSIONS: [&str; 3] = ["api", "v1", "sessions"];

/// The segments of `/api/v1/sessions/{id}[/{rest}]`.
fn session_path<'a>(id: &'a str, rest: Option<&'a str>) -> Vec<&'a str> {
    SESSIONS.into_iter().chain([id]).chain(rest).collect()
}

/// `base` with `segments` appended to its path, each percent-encoded as one segment. The
/// base's own path is kept, with or without its trailing slash: behind a reverse proxy at
/// `https://host/attachd/` the sessions are at `https://host/attachd/api/v1/sessions`.
pub fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("parse_server admits only http and https URLs, which have a path")
        .pop_if_empty()
        .extend(segments);
    url
}

fn unreachable(e: reqwest::Error) -> Failure {
    // reqwest's text names the URL but never headers; the chain holds the cause (TLS, refused).
    let e = e.without_url();
    let mut text = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    Failure::Unreachable(text)
}

/// Parses `--server`: an `http` or `https` URL, perhaps with a path prefix (a gateway behind
/// a reverse proxy), without credentials, a query or a fragment.
pub fn parse_server(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("--server {s:?} is not a URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "--server must be an http:// or https:// URL, not {s:?}"
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("--server must not carry credentials, a query or a fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(server: &str, segments: &[&str]) -> String {
        endpoint(&parse_server(server).unwrap(), segments).to_string()
    }

    #[test]
    fn paths_and_urls() {
        let plain = parse_server("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            endpoint(&plain, &session_path("s-1", Some("attach"))).path(),
            "/api/v1/sessions/s-1/attach"
        );
        assert_eq!(
            endpoint(&plain, &session_path("a/b?c", None)).path(),
            "/api/v1/sessions/a%2Fb%3Fc"
        );
        assert!(parse_server("ftp://x").is_err());
        assert!(parse_server("http://u:p@x").is_err());
        assert!(parse_server("http://x/?token=1").is_err());
        assert!(parse_server("http://x/#frag").is_err());
        let base = parse_server("https://gw.example.com:8443").unwrap();
        assert_eq!(
            attach_url(&base, "s-1").unwrap().as_str(),
            "wss://gw.example.com:8443/api/v1/sessions/s-1/attach"
        );
        assert_eq!(
            attach_url(&plain, "s-1").unwrap().as_str(),
            "ws://127.0.0.1:8080/api/v1/sessions/s-1/attach"
        );
    }

    #[test]
    fn a_path_prefix_is_kept_with_or_without_its_slash() {
        for server in ["http://h:1", "http://h:1/"] {
            assert_eq!(at(server, &SESSIONS), "http://h:1/api/v1/sessions");
        }
        for server in ["https://h/attachd", "https://h/attachd/"] {
            assert_eq!(at(server, &SESSIONS), "https://h/attachd/api/v1/sessions");
            assert_eq!(
                at(server, &session_path("s-1", Some("attach-tickets"))),
                "https://h/attachd/api/v1/sessions/s-1/attach-tickets"
            );
            assert_eq!(
                attach_url(&parse_server(server).unwrap(), "s-1")
                    .unwrap()
                    .as_str(),
                "wss://h/attachd/api/v1/sessions/s-1/attach"
            );
        }
        assert_eq!(
            at("http://h/a/b/", &session_path("s 1", None)),
            "http://h/a/b/api/v1/sessions/s%201"
        );
        // Only the base's last empty segment goes; one written twice stays as written.
        assert_eq!(at("http://h/a//", &SESSIONS), "http://h/a//api/v1/sessions");
    }

    #[test]
    fn refusals_carry_code_message_and_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        let f = Failure::refused(
            429,
            &h,
            br#"{"error":"rate_limited","message":"too many attempts, retry later"}"#,
        );
        assert_eq!(
            f,
            Failure::Refused {
                status: 429,
                code: Some("rate_limited".into()),
                message: Some("too many attempts, retry later".into()),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
        assert_eq!(
            Failure::refused(502, &HeaderMap::new(), b"<html>").status(),
            Some(502)
        );
    }
}
