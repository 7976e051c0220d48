//! The attach handshake (SPEC §4): every check runs before the upgrade, in the SPEC's order,
//! and every attempt is audited. On success a connection actor takes over the socket.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use attachd_actors::audit::AuditEvent;
use attachd_actors::connection::{ConnConfig, ConnIdentity, Connection};
use attachd_actors::limits::{Attempt, SlotDenied, SlotGuard, SlotKey};
use attachd_actors::metrics;
use attachd_actors::outbound;
use attachd_actors::protocol::Role;
use base64::Engine;

use crate::client_ip;
use crate::error::{ApiError, ErrorBody};
use crate::http::api::valid_session_id;
use crate::state::AppState;
use crate::tickets::TicketClaims;
use crate::ws::socket::WsSocket;
use crate::ws::upgrade::{self, Accept, Upgraded};

/// The subprotocol of this contract.
pub const PROTOCOL: &str = "attach.v1";
/// Prefix of the subprotocol entry that carries a ticket.
pub const BEARER_PREFIX: &str = "attach.v1.bearer.";
/// Query parameters that must never carry credentials.
pub const URL_CREDENTIAL_PARAMS: &[&str] = &["token", "ticket", "access_token", "auth"];

/// Where the ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `Authorization: Bearer`.
    Header,
    /// `attach.v1.bearer.<b64>` subprotocol entry.
    Subprotocol,
    /// `attach_ticket` cookie.
    Cookie,
}

/// What the client offered in `Sec-WebSocket-Protocol`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// Whether any entry was offered.
    pub any: bool,
    /// Whether `attach.v1` was offered.
    pub v1: bool,
    /// A ticket carried in a bearer entry.
    pub bearer: Option<String>,
}

/// Parses the offered subprotocols (all header lines, comma-separated).
pub fn parse_offer<'a>(values: impl Iterator<Item = &'a str>) -> Result<Offer, ApiError> {
    let mut offer = Offer::default();
    for v in values {
        for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            offer.any = true;
            if entry == PROTOCOL {
                offer.v1 = true;
            } else if let Some(b64) = entry.strip_prefix(BEARER_PREFIX) {
                if offer.bearer.is_some() {
                    // Two credentials: which one the request means is ambiguous.
                    return Err(ApiError::UnsupportedProtocol);
                }
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64)?;
                let t = String::from_utf8(raw)?;
                offer.bearer = Some(t);
            }
        }
    }
    if offer.any && !offer.v1 {
        return Err(ApiError::UnsupportedProtocol);
    }
    Ok(offer)
}

/// Whether the query string carries a credential parameter (names compared case-insensitively).
pub fn query_has_credential(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        let name = percent_decode_lossy(name);
        URL_CREDENTIAL_PARAMS
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p))
    })
}

fn percent_decode_lossy(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ticket from a `Cookie` header.
pub fn cookie_ticket(req: &HttpRequest) -> Option<String> {
    req.cookie("attach_ticket").map(|c| c.value().to_string())
}

/// Exports `attachd_handshakes_total` at zero for every refusal reason.
pub fn init_metrics() {
    for e in ApiError::handshake_refusals() {
        metrics::HANDSHAKES.with_label_values(&[e.code()]);
    }
}

struct Attempted<'a> {
    st: &'a AppState,
    session_id: &'a str,
    remote_ip: String,
    transport: Option<Transport>,
    claims: Option<TicketClaims>,
}

impl Attempted<'_> {
    fn event(&self, outcome: &str) -> AuditEvent {
        let mut ev = AuditEvent::new("attach.connect", outcome)
            .session_id(self.session_id)
            .remote_ip(&self.remote_ip);
        if let Some(t) = self.transport {
            ev = ev.field_str(
                "transport",
                match t {
                    Transport::Header => "header",
                    Transport::Subprotocol => "subprotocol",
                    Transport::Cookie => "cookie",
                },
            );
        }
        if let Some(c) = &self.claims {
            ev = ev
                .subject(&c.subject)
                .tenant(&c.tenant)
                .role(c.role.as_str());
        }
        ev
    }

    fn refuse(&self, e: ApiError) -> ApiError {
        metrics::HANDSHAKES.with_label_values(&[e.code()]).inc();
        self.st
            .audit
            .record_detached(self.event("refused").reason(e.code()));
        e
    }
}

/// `GET /api/v1/sessions/{id}/attach`.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/attach", tag = "attach",
    description = "WebSocket upgrade to a session (SPEC §4). Offer the subprotocol `attach.v1` \
        (it is selected; without any offer v1 is used and no header is sent back; only unknown \
        subprotocols: 400 `unsupported_protocol`). The attach ticket travels in \
        `Authorization: Bearer <ticket>`, or in a subprotocol entry \
        `attach.v1.bearer.<base64url ticket, no padding>` beside `attach.v1` (never echoed; at \
        most one), or in the `attach_ticket` cookie (which needs an allowed `Origin`). A \
        credential in the query string is 400 `token_in_url`; a present `Origin` must be in \
        `server.allowed_origins` (exactly one). `permessage-deflate` is never negotiated. \
        Every refusal is plain HTTP with a JSON `{error, message}` body, and every attempt is \
        audited. Frames beyond SPEC §5 (additive): `hello` carries `subject`, `name?` and \
        `control.subject`, `control.name?`; `control.holder` carries `name?` and `reason` may be \
        `granted`; client `{\"type\":\"control\",\"action\":\"request\"}` and, from the holder, \
        `{\"type\":\"control\",\"action\":\"grant\"|\"deny\",\"to\":connection_id}`; server \
        `control_request {from: {connection_id, subject, name?}, expires_at}` and \
        `control_request_ended {from, outcome: denied|expired|withdrawn}`. A moderated session \
        (`policy.moderated`) sends `moderation {state: frozen|live, moderators}` right after \
        `hello` and on every change; while `frozen` the holder's stdin is held (up to one second \
        of the stdin budget) and written in order once a moderator (an observer whose ticket's \
        subject has `attach:moderate`) attaches; past the hold it is refused with `error \
        moderation_required`, once per freeze.",
    params(
        ("id" = String, Path, description = "session id"),
        ("Sec-WebSocket-Protocol" = Option<String>, Header,
            description = "`attach.v1`, optionally with one `attach.v1.bearer.<b64url ticket>`"),
        ("Origin" = Option<String>, Header, description = "checked against server.allowed_origins"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the attach.v1 stream (SPEC §5)"),
        (status = 400, body = ErrorBody,
            description = "`token_in_url`, `unsupported_protocol`, or `upgrade_required` (not a WebSocket upgrade)"),
        (status = 401, body = ErrorBody, description = "`unauthorized` (no, invalid or expired ticket) or `ticket_replayed`"),
        (status = 403, body = ErrorBody, description = "`origin_not_allowed`"),
        (status = 404, body = ErrorBody, description = "`not_found`: unknown session or another tenant's"),
        (status = 429, body = ErrorBody,
            description = "`rate_limited` (with Retry-After), `too_many_connections` or `session_full`"),
        (status = 502, body = ErrorBody, description = "`backend_unavailable`"),
        (status = 503, body = ErrorBody,
            description = "`audit_unavailable`, `recording_unavailable`, `redis_unavailable`, `shutting_down`, or `at_capacity` (with Retry-After: the replica holds `server.max_connections` connections; the ticket is not used up)"),
    ),
    security(("bearer" = [])))]
pub async fn attach(
    req: HttpRequest,
    path: web::Path<String>,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let session_id = path.into_inner();
    let s = &st.settings;
    let peer: Option<IpAddr> = req.peer_addr().map(|a| a.ip());
    let ip = client_ip::resolve(
        peer,
        req.headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok()),
        &s.server.trusted_proxies,
    )
    .map(|i| i.to_string())
    .unwrap_or_else(|| "unknown".into());
    let sid_for_audit = if valid_session_id(&session_id) {
        session_id.as_str()
    } else {
        "invalid"
    };
    let mut att = Attempted {
        st: &st,
        session_id: sid_for_audit,
        remote_ip: ip.clone(),
        transport: None,
        claims: None,
    };

    if query_has_credential(req.query_string()) {
        return Err(att.refuse(ApiError::TokenInUrl));
    }
    if st.is_draining() {
        return Err(att.refuse(ApiError::ShuttingDown));
    }
    // Before the ticket is redeemed: a client told `at_capacity` may retry with it elsewhere.
    if st.capacity.refuses_attach() {
        return Err(att.refuse(ApiError::AtCapacity));
    }
    if actix_http::ws::verify_handshake(req.head()).is_err() || !upgrade::can_take_socket(&req) {
        return Err(att.refuse(ApiError::UpgradeRequired));
    }
    let offer = parse_offer(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .filter_map(|v| v.to_str().ok()),
    )
    .map_err(|e| att.refuse(e))?;

    // More than one Origin is ambiguous (a proxy and attachd could read different ones).
    if req.headers().get_all(header::ORIGIN).nth(1).is_some() {
        return Err(att.refuse(ApiError::OriginNotAllowed));
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let origin_ok = origin.is_some_and(|o| st.origin_allowed(o));
    if origin.is_some() && !origin_ok {
        return Err(att.refuse(ApiError::OriginNotAllowed));
    }
    let (transport, secret) = if let Some(t) = crate::http::extract::bearer(&req) {
        (Some(Transport::Header), Some(t.to_string()))
    } else if let Some(t) = offer.bearer.clone() {
        (Some(Transport::Subprotocol), Some(t))
    } else if let Some(t) = cookie_ticket(&req) {
        (Some(Transport::Cookie), Some(t))
    } else {
        (None, None)
    };
    att.transport = transport;
    if transport == Some(Transport::Cookie) && !origin_ok {
        return Err(att.refuse(ApiError::OriginNotAllowed));
    }

    match st
        .limiter
        .attempt(&ip, s.limits.ip_attempts, s.limits.ip_window)
        .await
    {
        Ok(Attempt::Allowed) => {}
        Ok(Attempt::Limited { retry_after_secs }) => {
            return Err(att.refuse(ApiError::RateLimited { retry_after_secs }))
        }
        Err(_) => return Err(att.refuse(ApiError::RedisUnavailable)),
    }

    let Some(secret) = secret else {
        return Err(att.refuse(ApiError::Unauthorized));
    };
    let claims = match st.tickets.redeem(&secret).await {
        Ok(c) => c,
        Err(e) => return Err(att.refuse(e.into())),
    };
    att.claims = Some(claims.clone());
    if claims.session_id != session_id {
        return Err(att.refuse(ApiError::Unauthorized));
    }
    let hub = match st.catalog.hub_for(&claims.tenant, &session_id).await {
        Ok(h) => h,
        Err(e) => return Err(att.refuse(e)),
    };

    let connection_id = format!("c-{}", uuid::Uuid::new_v4().simple());
    let key = SlotKey {
        subject: claims.subject.as_str().into(),
        session: session_id.as_str().into(),
        connection_id: connection_id.as_str().into(),
    };
    match st
        .limiter
        .acquire(
            &key,
            s.limits.subject_connections,
            s.limits.session_participants,
        )
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(SlotDenied::Subject)) => return Err(att.refuse(ApiError::TooManyConnections)),
        Ok(Err(SlotDenied::Session)) => return Err(att.refuse(ApiError::SessionFull)),
        Err(_) => return Err(att.refuse(ApiError::RedisUnavailable)),
    }
    let slots = SlotGuard::new(Arc::clone(&st.limiter), key);
    if let Err(e) = st.audit_gate() {
        return Err(att.refuse(e));
    }
    if let Err(e) = st.recording_gate(&session_id) {
        return Err(att.refuse(e));
    }

    // Durable before accepted: the connect record must be on disk first (under `deny`).
    let accepted = att
        .event("ok")
        .reason("accepted")
        .connection_id(&connection_id);
    if let Err(e) = st.audit.record(accepted).await {
        tracing::error!(error = %e, "connect record not written");
        st.audit_gate().map_err(|e| att.refuse(e))?;
    }
    metrics::HANDSHAKES.with_label_values(&["ok"]).inc();

    let mut resp = actix_http::ws::handshake_response(req.head());
    if offer.v1 {
        resp.insert_header((header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL));
    }
    // The hard cap on a queue: beyond the flow window (pacing and resyncs act there), room
    // for one more coalesced chunk and the control frames; `ws.max_outbound_bytes` may raise it.
    let queue_cap =
        s.ws.max_outbound_bytes
            .max(s.flow.window_bytes * 2 + 256 * 1024);
    let (out_tx, out_rx) = outbound::channel(queue_cap);
    let cfg = ConnConfig {
        ping_interval: s.ws.ping_interval,
        heartbeat_timeout: s.ws.heartbeat_timeout,
        max_lifetime: s.ws.max_lifetime,
        max_invalid: s.ws.max_invalid_messages,
        stdin_messages_per_sec: s.ws.stdin_messages_per_sec,
        stdin_bytes_per_sec: s.ws.stdin_bytes_per_sec,
        flood_after: s.ws.stall_timeout,
        max_message_bytes: s.ws.max_message_bytes,
        stdin_summary_interval: std::time::Duration::from_secs(30),
        close_linger: crate::ws::socket::CLOSE_LINGER,
    };
    let identity = ConnIdentity {
        connection_id,
        session_id,
        subject: claims.subject,
        name: claims.name,
        tenant: claims.tenant,
        role: claims.role,
        remote_ip: ip,
        resume_from: claims.resume_from,
        moderator: claims.moderator,
    };
    let max_message = s.ws.max_message_bytes;
    let audit = st.audit.clone();
    let driver = identity.role == Role::Driver;
    let home = if driver {
        st.catalog.sessions.home(&identity.session_id)
    } else {
        None
    };
    Ok(upgrade::switching_protocols(
        resp,
        Accept::new(move |up: Upgraded| {
            let socket = WsSocket::new(up.io, &up.early, up.permit, out_rx, max_message);
            Connection::new(identity, cfg, hub, out_tx, slots, audit).attach(socket);
        })
        .interactive(driver)
        .run_on(home),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers() {
        assert_eq!(parse_offer([].into_iter()).unwrap(), Offer::default());
        assert!(parse_offer(["attach.v1"].into_iter()).unwrap().v1);
        assert!(matches!(
            parse_offer(["chat, superchat"].into_iter()),
            Err(ApiError::UnsupportedProtocol)
        ));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("atk_x");
        let two = format!("attach.v1, attach.v1.bearer.{b64}, attach.v1.bearer.{b64}");
        assert!(matches!(
            parse_offer([two.as_str()].into_iter()),
            Err(ApiError::UnsupportedProtocol)
        ));
        let o = parse_offer([format!("attach.v1, attach.v1.bearer.{b64}").as_str()].into_iter())
            .unwrap();
        assert_eq!(o.bearer.as_deref(), Some("atk_x"));
    }

    #[test]
    fn credential_params() {
        assert!(query_has_credential("token=abc"));
        assert!(query_has_credential("x=1&Ticket=abc"));
        assert!(query_has_credential("access%5Ftoken=abc"));
        assert!(query_has_credential("auth"));
        assert!(!query_has_credential("cols=80&rows=24"));
        assert!(!query_has_credential(""));
    }
}
