//! What the client tells a person, in one place: refused calls (401/403/404/429/503...) and
//! every close code of SPEC §5, each as one line, with whether reconnecting can help.

use std::time::Duration;

use attachd_actors::protocol::close;

use crate::cli::api::Failure;

/// What a refused or unanswered call means, as one line (no trailing newline).
pub fn failure(f: &Failure) -> String {
    match f {
        Failure::Refused {
            status,
            code,
            message,
            retry_after,
        } => {
            let what = match (*status, code.as_deref()) {
                (401, Some("ticket_replayed")) => "the attach ticket was already used",
                (401, _) => "the server did not accept the credential: check the API token",
                (403, Some("origin_not_allowed")) => "the server refused this client's origin",
                (403, _) => "the API token lacks the scope for this",
                (404, _) => "no such session in your tenant, or it has ended",
                (429, Some("too_many_connections")) => "too many connections for this token",
                (429, Some("session_full")) => "the session is full",
                (429, _) => "too many attempts",
                (503, Some("at_capacity")) => "the server holds all the connections it can",
                (503, _) => "the server is unavailable",
                (400, Some("token_in_url")) => "a credential was sent in the URL",
                (400, _) => "the server refused the request",
                (s, _) if s >= 500 => "the server failed",
                _ => "the server refused the request",
            };
            let mut line = format!("{what} (HTTP {status}");
            if let Some(c) = code {
                line.push(' ');
                line.push_str(c);
            }
            if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                line.push_str(": ");
                line.push_str(m);
            }
            line.push(')');
            if let Some(wait) = retry_after {
                line.push_str(&format!("; retry after {}", seconds(*wait)));
            }
            line
        }
        Failure::Unreachable(why) => format!("cannot reach the server: {why}"),
        Failure::Local(why) => why.clone(),
    }
}

/// Whether trying again can help: a lost connection, 408, 429, 5xx. Bad tokens, missing
/// scopes and unknown sessions cannot.
pub fn retriable(f: &Failure) -> bool {
    match f {
        Failure::Refused { status, .. } => matches!(*status, 408 | 425 | 429) || *status >= 500,
        Failure::Unreachable(_) => true,
        Failure::Local(_) => false,
    }
}

/// What a close means and whether reconnecting (with `resume_from`) can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// One line for a person.
    pub message: String,
    /// Reconnecting can continue the session.
    pub reconnect: bool,
}

/// The close code `code` (1005: none given, 1006: the connection dropped).
pub fn close(code: u16) -> CloseInfo {
    let (message, reconnect) = match code {
        close::NORMAL => ("the session ended", false),
        close::GOING_AWAY => ("the server is shutting down", true),
        close::PROTOCOL_ERROR => ("protocol error: the server refused a malformed frame", true),
        close::INVALID_PAYLOAD => ("the server refused a text frame that was not UTF-8", true),
        close::POLICY_VIOLATION => (
            "closed for a policy violation (too many invalid messages, or input too fast)",
            false,
        ),
        close::MESSAGE_TOO_BIG => ("a message was too big for the server", true),
        close::INTERNAL_ERROR => ("the server hit an internal error", true),
        close::SESSION_IDLE => ("the session was closed after being idle too long", false),
        close::HEARTBEAT_TIMEOUT => ("heartbeat timeout: the server heard nothing in time", true),
        close::MAX_LIFETIME => ("the connection reached its maximum lifetime", true),
        close::SLOW_CONSUMER => ("this connection made no progress for too long", true),
        close::REVOKED => (
            "access was revoked by a moderator, or the session was deleted",
            false,
        ),
        1005 | 1006 => ("the connection was lost", true),
        _ => ("the connection closed", true),
    };
    CloseInfo {
        message: format!("{message} (close {code})"),
        reconnect,
    }
}

/// `1.5 s`, `30 s`.
pub fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str) -> Failure {
        Failure::Refused {
            status,
            code: Some(code.into()),
            message: Some("text".into()),
            retry_after: None,
        }
    }

    #[test]
    fn every_close_code_has_its_own_line() {
        let mut seen = std::collections::HashSet::new();
        for code in close::ALL.into_iter().chain([1005, 1006, 4999]) {
            let info = close(code);
            assert!(info.message.contains(&code.to_string()), "{info:?}");
            assert!(!info.message.contains('\n'));
            seen.insert(info.message);
        }
        assert_eq!(seen.len(), close::ALL.len() + 3);
        for final_code in [
            close::NORMAL,
            close::POLICY_VIOLATION,
            close::SESSION_IDLE,
            close::REVOKED,
        ] {
            assert!(!close(final_code).reconnect, "{final_code}");
        }
        assert!(close(1006).reconnect && close(close::GOING_AWAY).reconnect);
    }

    #[test]
    fn refusals_name_status_code_and_wait() {
        let line = failure(&refused(401, "unauthorized"));
        assert!(
            line.contains("API token") && line.contains("HTTP 401 unauthorized"),
            "{line}"
        );
        let limited = Failure::Refused {
            status: 429,
            code: Some("rate_limited".into()),
            message: None,
            retry_after: Some(Duration::from_secs(12)),
        };
        assert_eq!(
            failure(&limited),
            "too many attempts (HTTP 429 rate_limited); retry after 12 s"
        );
        assert!(failure(&refused(503, "audit_unavailable")).contains("unavailable"));
        assert!(failure(&refused(503, "at_capacity")).contains("all the connections it can"));
        assert!(failure(&refused(404, "not_found")).contains("no such session"));
        assert!(failure(&refused(403, "forbidden")).contains("scope"));
        for (f, again) in [
            (refused(401, "unauthorized"), false),
            (refused(403, "forbidden"), false),
            (refused(404, "not_found"), false),
            (refused(429, "rate_limited"), true),
            (refused(503, "audit_unavailable"), true),
            (refused(503, "at_capacity"), true),
            (Failure::Unreachable("refused".into()), true),
        ] {
            assert_eq!(retriable(&f), again, "{f:?}");
        }
    }
}
