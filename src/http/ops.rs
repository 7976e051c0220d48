//! Operational endpoints: liveness, readiness with its checks, the OpenAPI document and the
//! Prometheus exposition on the admin listener.

use actix_web::{web, HttpResponse};
use attachd_actors::metrics;
use prometheus::Encoder;
use serde_json::json;
use utoipa::OpenApi;

use crate::config::{AuditOnFailure, RedisOnError};
use crate::state::AppState;

/// `GET /healthz`: the process serves.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Object)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 503 with the failing checks when the audit sink, required Redis or (under
/// `recording.on_failure = "deny"`) a recording fails.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Object), (status = 503, body = Object)))]
pub async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    let (ready, body) = readiness(&st);
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether this replica is ready, and the checks `/readyz` reports.
fn readiness(st: &AppState) -> (bool, serde_json::Value) {
    let mut ready = true;
    let health = st.audit.health().snapshot();
    let audit = if health.ok {
        json!("ok")
    } else {
        ready = false;
        // The reason (it names paths) goes to the log and metrics, not to this open endpoint.
        json!("failing")
    };
    let policy = st.settings.audit.policy(st.settings.env);
    let redis = match crate::redis_state::status(st) {
        crate::redis_state::RedisStatus::Disabled => json!("disabled"),
        crate::redis_state::RedisStatus::Ok => json!("ok"),
        crate::redis_state::RedisStatus::Down => {
            if st.settings.redis.on_error == RedisOnError::Deny {
                ready = false;
                json!("failing")
            } else {
                json!("degraded")
            }
        }
    };
    let recording = match &st.recorder {
        None => json!("off"),
        Some(r) if r.health().is_ok() => json!("ok"),
        Some(_) => {
            if st.settings.recording.policy(st.settings.env) == AuditOnFailure::Deny {
                ready = false;
                json!("failing")
            } else {
                json!("degraded")
            }
        }
    };
    if st.is_draining() {
        ready = false;
    }
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "audit": audit,
            "audit_policy": if policy == AuditOnFailure::Deny { "deny" } else { "log" },
            "redis": redis,
            "recording": recording,
            "draining": st.is_draining(),
        }
    });
    (ready, body)
}

/// `GET /metrics` (admin listener). Readiness, Redis health and open API connections are
/// sampled into their gauges first, so alerts see them even where nothing polls `/readyz`.
pub async fn metrics(st: web::Data<AppState>) -> HttpResponse {
    let (ready, _) = readiness(&st);
    metrics::READY.set(i64::from(ready));
    let down = crate::redis_state::status(&st) == crate::redis_state::RedisStatus::Down;
    metrics::REDIS_DOWN.set(i64::from(down));
    metrics::API_CONNECTIONS.set(i64::try_from(st.capacity.open()).unwrap_or(i64::MAX));
    let families = prometheus::gather();
    let mut buf = Vec::new();
    if prometheus::TextEncoder::new()
        .encode(&families, &mut buf)
        .is_err()
    {
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(buf)
}

/// The OpenAPI document of the HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(title = "attachd", description = "Hardened WebSocket attach gateway"),
    paths(
        healthz,
        readyz,
        crate::http::api::list_sessions,
        crate::http::api::create_session,
        crate::http::api::get_session,
        crate::http::api::delete_session,
        crate::http::api::issue_ticket,
        crate::http::api::revoke_control,
        crate::http::audit::audit_query,
        crate::http::audit::audit_verify,
        crate::http::dashboard::dashboard,
        crate::http::dashboard::events,
        crate::http::dashboard::thumbnail,
        crate::http::attach::attach,
        crate::http::recordings::list_recordings,
        crate::http::recordings::get_recording,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::sessions::SessionView,
        crate::sessions::SessionPolicy,
        crate::http::api::CreateSession,
        crate::http::api::SessionList,
        crate::http::api::SessionDetail,
        crate::http::api::TicketRequest,
        crate::http::api::TicketResponse,
        crate::http::api::Delivery,
        crate::http::audit::VerifyResponse,
        crate::http::recordings::RecordingView,
        crate::http::dashboard::Dashboard,
        crate::http::dashboard::SessionSummary,
        crate::http::dashboard::Viewer,
        crate::http::dashboard::HolderSchema,
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        jwks_unavailable(openapi);
    }
}

/// What a 503 of a route that verifies API tokens may also mean.
const JWKS_UNAVAILABLE: &str =
    "`jwks_unavailable`: the token names a JWKS issuer whose keys cannot be fetched and none \
     are cached";

/// Every route that takes an API token may answer 503 `jwks_unavailable` (a JWT whose issuer's
/// keys cannot be had); the attach route takes a ticket instead.
fn jwks_unavailable(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Content, Ref, RefOr, Response};
    for (path, item) in openapi.paths.paths.iter_mut() {
        if path.ends_with("/attach") {
            continue;
        }
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            if op.security.is_none() {
                continue;
            }
            let answer = op
                .responses
                .responses
                .entry("503".into())
                .or_insert_with(|| {
                    let mut r = Response::new("");
                    r.content.insert(
                        "application/json".into(),
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    );
                    RefOr::T(r)
                });
            if let RefOr::T(r) = answer {
                r.description = if r.description.is_empty() {
                    JWKS_UNAVAILABLE.to_owned()
                } else {
                    format!("{}; or {JWKS_UNAVAILABLE}", r.description)
                };
            }
        }
    }
}

/// `GET /openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
