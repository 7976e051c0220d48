//! The `/api/v1` session handlers: sessions, attach tickets and control revocation.
//! Order of checks: authenticate (401), tenant visibility (404), scope (403), then the work.

use std::time::Duration;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpResponse};
use attachd_actors::audit::AuditEvent;
use attachd_actors::hub::{HubSnapshot, Revoke, Snapshot, Terminate};
use attachd_actors::protocol::{ControlReason, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::backend::local;
use crate::config::BackendKind;
use crate::error::{ApiError, ErrorBody};
use crate::http::extract::{Auth, JsonObject};
use crate::scope::Scope;
use crate::sessions::{lifecycle_event, new_session_id, now_rfc3339, SessionPolicy, SessionView};
use crate::state::AppState;
use crate::tickets::{now_ms, TicketClaims};

type State = web::Data<AppState>;

/// Longest accepted session name.
pub const MAX_NAME_CHARS: usize = 64;

/// `POST /api/v1/sessions` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// argv; must equal `session.local.command` or one of `session.local.allowed_commands`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Display name, 1–64 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `{"moderated": true}` needs `attach:moderate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<SessionPolicy>,
}

/// `GET /api/v1/sessions` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// Sessions of the caller's tenant.
    pub sessions: Vec<SessionView>,
}

/// `GET /api/v1/sessions/{id}` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    /// The session.
    #[serde(flatten)]
    pub session: SessionView,
    /// Connected participants on this replica.
    #[schema(value_type = Vec<Object>)]
    pub participants: Vec<attachd_actors::hub::ParticipantView>,
    /// The control holder (`connection_id`, `subject`), if any.
    #[schema(value_type = Option<Object>)]
    pub control: Option<attachd_actors::protocol::HolderView>,
}

/// `POST .../attach-tickets` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// `driver` or `observer`.
    #[schema(schema_with = role_schema)]
    pub role: Role,
    /// `body` (default) or `cookie`.
    #[serde(default)]
    pub delivery: Delivery,
    /// Output offset the client has rendered; the attach then resumes from there (SPEC §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<u64>,
}

/// OpenAPI schema of a `Role`: the string enum the API accepts and returns.
fn role_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["driver", "observer"]))
        .build()
}

/// How the ticket reaches the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// In the response body.
    #[default]
    Body,
    /// As an HttpOnly cookie scoped to the attach path.
    Cookie,
}

/// `POST .../attach-tickets` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketResponse {
    /// The secret (absent for cookie delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// RFC 3339 expiry.
    pub expires_at: String,
    /// Granted role.
    #[schema(schema_with = role_schema)]
    pub role: Role,
    /// Session it opens.
    pub session_id: String,
    /// How it was delivered.
    pub delivery: Delivery,
}

/// Normalizes a caller-supplied name: trimmed, printable, bounded.
pub fn normalize_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(n) = name else { return Ok(None) };
    let n = n.trim().to_string();
    if n.is_empty() {
        return Ok(None);
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if n.chars()
        .any(|c| c.is_control() || is_format_or_separator(c))
    {
        return Err(ApiError::BadRequest(
            "name must not contain control, format (bidi, zero-width) or line/paragraph \
             separator characters"
                .into(),
        ));
    }
    Ok(Some(n))
}

/// Unicode format characters (general category Cf: bidi controls, zero-width characters,
/// soft hyphen, tags...) and the line and paragraph separators (Zl, Zp).
fn is_format_or_separator(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{0600}'..='\u{0605}' | '\u{061c}' | '\u{06dd}' | '\u{070f}'
        | '\u{0890}'..='\u{0891}' | '\u{08e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Validates a session id from the path before any lookup.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Looks a session up for `p`: 404 when absent, malformed or of another tenant.
pub async fn visible(
    st: &AppState,
    p: &Principal,
    id: &str,
) -> Result<
    (
        SessionView,
        Option<actix::Addr<attachd_actors::hub::SessionHub>>,
    ),
    ApiError,
> {
    if !valid_session_id(id) {
        return Err(ApiError::NotFound);
    }
    st.catalog.find(&p.tenant, id).await
}

/// Lists the caller's sessions.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions",
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_sessions(st: State, Auth(p): Auth) -> Result<HttpResponse, ApiError> {
    p.require(Scope::SessionsRead)?;
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: st.catalog.list(&p.tenant).await?,
    }))
}

/// Creates a local session.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = CreateSession,
    description = "Creates a local session. `policy: {\"moderated\": true}` makes it moderated \
        (stdin is written only while a moderator is attached) and needs the scope \
        `attach:moderate` besides `sessions:write` (403 `forbidden` otherwise). Pods of the kube \
        backend are moderated by their label `kube.moderated_label` (default \
        `attachd.dev/moderated`) set to `true`.",
    responses((status = 201, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_session(
    st: State,
    Auth(p): Auth,
    JsonObject(body): JsonObject<CreateSession>,
) -> Result<HttpResponse, ApiError> {
    p.require(Scope::SessionsWrite)?;
    let policy = body.policy.unwrap_or_default();
    if policy.moderated {
        p.require(Scope::AttachModerate)?;
    }
    if st.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    let s = &st.settings;
    if s.session.backend != BackendKind::Local {
        return Err(ApiError::BadRequest(
            "sessions are pods with the kube backend; they cannot be created here".into(),
        ));
    }
    let command = match body.command {
        None => s.session.local.command.clone(),
        Some(c) if c == s.session.local.command => c,
        Some(c) if s.session.local.allowed_commands.contains(&c) => c,
        Some(_) => return Err(ApiError::CommandNotAllowed),
    };
    let name = normalize_name(body.name)?;
    st.audit_gate()?;
    let io = local::spawn(&command)?;
    let view = SessionView {
        id: new_session_id(),
        name,
        tenant: p.tenant.clone(),
        created_by: p.subject.clone(),
        created_at: now_rfc3339(),
        backend: "local".into(),
        command,
        policy,
    };
    st.catalog.start(view.clone(), io);
    st.audit
        .record_detached(lifecycle_event("session.created", &view, &p.subject));
    Ok(HttpResponse::Created().json(view))
}

/// One session with its participants and control holder.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_session(
    st: State,
    Auth(p): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (view, hub) = visible(&st, &p, &id).await?;
    p.require(Scope::SessionsRead)?;
    let snap: HubSnapshot = match hub {
        Some(h) => h.send(Snapshot).await?,
        None => HubSnapshot {
            participants: Vec::new(),
            control: None,
            output_offset: 0,
            size: attachd_actors::protocol::TermSize { cols: 80, rows: 24 },
            idle_deadline: String::new(),
        },
    };
    Ok(HttpResponse::Ok().json(SessionDetail {
        session: view,
        participants: snap.participants,
        control: snap.control,
    }))
}

/// Terminates a session; its participants are closed with 4005.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_session(
    st: State,
    Auth(p): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (view, hub) = visible(&st, &p, &id).await?;
    p.require(Scope::SessionsWrite)?;
    st.catalog.sessions.remove(&view.id);
    // A pod is not deleted (the Role cannot); its participants here are closed with 4005.
    if let Some(hub) = hub {
        let _ = hub.send(Terminate).await;
    }
    st.audit
        .record_detached(lifecycle_event("session.deleted", &view, &p.subject));
    Ok(HttpResponse::NoContent().finish())
}

/// Issues a single-use attach ticket.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/attach-tickets", tag = "attach",
    params(("id" = String, Path, description = "session id")), request_body = TicketRequest,
    responses((status = 201, body = TicketResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn issue_ticket(
    st: State,
    Auth(p): Auth,
    id: web::Path<String>,
    JsonObject(req): JsonObject<TicketRequest>,
) -> Result<HttpResponse, ApiError> {
    let (view, hub) = visible(&st, &p, &id).await?;
    p.require(match req.role {
        Role::Driver => Scope::AttachDrive,
        Role::Observer => Scope::AttachObserve,
    })?;
    st.audit_gate()?;
    if let (Some(from), Some(hub)) = (req.resume_from, &hub) {
        let at = hub.send(attachd_actors::hub::OutputOffset).await?;
        if from > at {
            return Err(ApiError::BadRequest(format!(
                "resume_from {from} is beyond the session's output offset {at}"
            )));
        }
    }
    let ttl: Duration = st.settings.attach.ticket_ttl;
    let expires_at_ms = now_ms() + ttl.as_millis() as u64;
    let claims = TicketClaims {
        session_id: view.id.clone(),
        role: req.role,
        subject: p.subject.clone(),
        name: p.name.clone(),
        tenant: p.tenant.clone(),
        expires_at_ms,
        resume_from: req.resume_from,
        moderator: req.role == Role::Observer && p.has(Scope::AttachModerate),
    };
    let secret = st.tickets.issue(claims, ttl).await?;
    // Queued, not awaited: the ticket grants nothing until its connect record is durable.
    st.audit.record_detached(
        AuditEvent::new("attach.ticket.issued", "ok")
            .subject(&p.subject)
            .tenant(&p.tenant)
            .session_id(&view.id)
            .role(req.role.as_str())
            .field_str("delivery", delivery_name(req.delivery)),
    );
    let expires_at =
        attachd_actors::time::rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(expires_at_ms));
    let mut resp = HttpResponse::Created();
    resp.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    let ticket = match req.delivery {
        Delivery::Body => Some(secret),
        Delivery::Cookie => {
            let cookie = Cookie::build("attach_ticket", secret)
                .http_only(true)
                .same_site(SameSite::Strict)
                .path(format!("/api/v1/sessions/{}/attach", view.id))
                .max_age(CookieDuration::seconds(ttl.as_secs() as i64))
                .secure(!st.settings.is_dev())
                .finish();
            resp.cookie(cookie);
            None
        }
    };
    Ok(resp.json(TicketResponse {
        ticket,
        expires_at,
        role: req.role,
        session_id: view.id,
        delivery: req.delivery,
    }))
}

fn delivery_name(d: Delivery) -> &'static str {
    match d {
        Delivery::Body => "body",
        Delivery::Cookie => "cookie",
    }
}

/// Revokes the current driver's control.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}/control", tag = "attach",
    params(("id" = String, Path, description = "session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_control(
    st: State,
    Auth(p): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, hub) = visible(&st, &p, &id).await?;
    p.require(Scope::AttachModerate)?;
    let revoked_here = match hub {
        Some(hub) => {
            hub.send(Revoke {
                by: p.subject.clone(),
            })
            .await?
        }
        None => false,
    };
    if !revoked_here {
        // The driver may be attached through another replica: take the lease from it there.
        let taken = st.leases.revoke(&id).await?;
        if taken {
            st.audit.record_detached(
                AuditEvent::new(ControlReason::Revoked.audit_type(), "ok")
                    .session_id(id.as_str())
                    .tenant(&p.tenant)
                    .subject(&p.subject)
                    .reason("revoked"),
            );
        }
    }
    Ok(HttpResponse::NoContent().finish())
}
