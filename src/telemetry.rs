//! Logging setup and the single redaction point for request logs: only method, route pattern
//! (never the raw path or query string), status and timing are logged; headers never are.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: JSON lines in prod, human-readable in dev (coloured only
/// when stderr is a terminal).
pub fn init(json: bool) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Logs one line per request: the matched route pattern (`/api/v1/sessions/{id}/attach`), the
/// session id only when it is well-formed and named a session the caller could see, and for a
/// path no route matched only a short prefix. Never the raw path: a secret put in a path (a
/// ticket after `;`, a token in place of an id) would otherwise reach the log.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    let r = res.request();
    let route = r
        .match_pattern()
        .unwrap_or_else(|| unmatched_prefix(r.path()));
    // A 400, 401 or 404 says nothing about the id: it may be anything the caller put there.
    let session_id = r
        .match_info()
        .get("id")
        .filter(|id| crate::http::api::valid_session_id(id) && ![400, 401, 404].contains(&status))
        .unwrap_or("-");
    tracing::info!(
        target: "attachd::http",
        method = %method,
        route = %route,
        session_id = %session_id,
        status,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "request"
    );
    Ok(res)
}

/// Longest first path segment logged for a path no route matched.
const PREFIX_CHARS: usize = 16;

/// The first segment of an unmatched path when it is short and plain (`/assets/…`), else `/…`.
fn unmatched_prefix(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let first = segments.next().unwrap_or("");
    let more = segments.next().is_some_and(|rest| !rest.is_empty());
    let plain = first.len() <= PREFIX_CHARS
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    match (plain, more) {
        (true, false) => format!("/{first}"),
        (true, true) => format!("/{first}/…"),
        (false, _) => "/…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::unmatched_prefix;

    #[test]
    fn unmatched_paths_keep_only_a_short_plain_prefix() {
        assert_eq!(unmatched_prefix("/"), "/");
        assert_eq!(unmatched_prefix("/favicon.ico"), "/favicon.ico");
        assert_eq!(unmatched_prefix("/assets/index-abc.js"), "/assets/…");
        assert_eq!(unmatched_prefix("/adt_0123456789abcdef0123"), "/…");
        assert_eq!(unmatched_prefix("/x;ticket=abc"), "/…");
    }
}
