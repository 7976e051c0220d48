//! The HTTP surface: route table, request limits and JSON error mapping for bodies.
//! Handlers live in `api` (REST), `dashboard` (the operator's view), `attach` (the WebSocket
//! handshake) and `ops`.

pub mod api;
pub mod attach;
pub mod audit;
pub mod dashboard;
pub mod deadline;
pub mod echo;
pub mod extract;
pub mod ops;
pub mod recordings;
pub mod web;
pub mod wire;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{self as aw, ServiceConfig};
use actix_web::HttpResponse;

use crate::error::ApiError;
use crate::scope::Scope;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential.
    Open,
    /// A single-use attach ticket (the WebSocket upgrade).
    Ticket,
    /// A principal holding at least one of these scopes.
    AnyOf(&'static [Scope]),
}

impl Access {
    /// `none`, `ticket`, or the scopes' SPEC names joined by `|`.
    pub fn label(&self) -> String {
        match self {
            Access::Open => "none".into(),
            Access::Ticket => "ticket".into(),
            Access::AnyOf(s) => s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("|"),
        }
    }
}

/// Every API route: (method, path template, who may call it). The authorization matrix test
/// walks this table, so a new route without a row there fails.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Open),
    ("GET", "/readyz", Access::Open),
    ("GET", "/openapi.json", Access::Open),
    (
        "GET",
        "/api/v1/sessions",
        Access::AnyOf(&[Scope::SessionsRead]),
    ),
    (
        "POST",
        "/api/v1/sessions",
        Access::AnyOf(&[Scope::SessionsWrite]),
    ),
    (
        "GET",
        "/api/v1/sessions/{id}",
        Access::AnyOf(&[Scope::SessionsRead]),
    ),
    (
        "DELETE",
        "/api/v1/sessions/{id}",
        Access::AnyOf(&[Scope::SessionsWrite]),
    ),
    (
        "POST",
        "/api/v1/sessions/{id}/attach-tickets",
        Access::AnyOf(&[Scope::AttachDrive, Scope::AttachObserve]),
    ),
    (
        "DELETE",
        "/api/v1/sessions/{id}/control",
        Access::AnyOf(&[Scope::AttachModerate]),
    ),
    ("GET", "/api/v1/audit", Access::AnyOf(&[Scope::AuditRead])),
    (
        "GET",
        "/api/v1/audit/verify",
        Access::AnyOf(&[Scope::AuditRead]),
    ),
    ("GET", "/api/v1/sessions/{id}/attach", Access::Ticket),
    (
        "GET",
        "/api/v1/sessions/{id}/recordings",
        Access::AnyOf(&[Scope::AuditRead]),
    ),
    (
        "GET",
        "/api/v1/sessions/{id}/recordings/{file}",
        Access::AnyOf(&[Scope::AuditRead]),
    ),
    (
        "GET",
        "/api/v1/sessions/{id}/thumbnail",
        Access::AnyOf(&[Scope::SessionsRead]),
    ),
    (
        "GET",
        "/api/v1/dashboard",
        Access::AnyOf(&[Scope::SessionsRead]),
    ),
    (
        "GET",
        "/api/v1/dashboard/events",
        Access::AnyOf(&[Scope::SessionsRead]),
    ),
];

fn json_error(e: JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    match e {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge.into()
        }
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("expected Content-Type: application/json".into()).into()
        }
        JsonPayloadError::Deserialize(d) => {
            ApiError::BadRequest(format!("invalid JSON body: {d}")).into()
        }
        JsonPayloadError::Payload(p) if deadline::is_timeout(&p) => ApiError::RequestTimeout.into(),
        _ => ApiError::BadRequest("invalid JSON body".into()).into(),
    }
}

fn query_error(e: QueryPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query: {e}")).into()
}

/// The JSON 404 of every unknown path.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Gives every error answer of the app SPEC's JSON `{error, message}` body: an error response
/// produced without one (the static files' 405 and 400, a bare status) is replaced by the
/// `ApiError` of its status, keeping the status and the other headers (`Allow`).
pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return Ok(res.map_into_left_body());
    }
    let (req, old) = res.into_parts();
    let mut new = actix_web::ResponseError::error_response(&ApiError::for_status(status));
    *new.status_mut() = status;
    for (k, v) in old.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            new.headers_mut().insert(k.clone(), v.clone());
        }
    }
    Ok(ServiceResponse::new(req, new).map_into_right_body())
}

/// A resource answering each of `routes` on its method and anything else with a 405 whose
/// `Allow` header lists exactly those methods.
fn resource(path: &str, routes: Vec<(Method, actix_web::Route)>) -> actix_web::Resource {
    let allow = routes
        .iter()
        .map(|(m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let allow = HeaderValue::from_str(&allow).expect("method names are valid header text");
    routes
        .into_iter()
        .fold(aw::resource(path), |r, (m, route)| r.route(route.method(m)))
        .default_service(aw::to(move || {
            let allow = allow.clone();
            async move {
                let mut resp =
                    actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
                resp.headers_mut().insert(header::ALLOW, allow);
                resp
            }
        }))
}

/// Registers the API and attach routes.
pub fn configure(cfg: &mut ServiceConfig, max_body: usize, conformance_echo: bool) {
    if conformance_echo {
        cfg.route("/__conformance/echo", aw::get().to(echo::echo));
    }
    cfg.app_data(
        aw::JsonConfig::default()
            .limit(max_body)
            .error_handler(json_error),
    )
    .app_data(aw::PayloadConfig::default().limit(max_body))
    .app_data(aw::QueryConfig::default().error_handler(query_error))
    .service(resource(
        "/healthz",
        vec![(Method::GET, aw::to(ops::healthz))],
    ))
    .service(resource(
        "/readyz",
        vec![(Method::GET, aw::to(ops::readyz))],
    ))
    .service(resource(
        "/openapi.json",
        vec![(Method::GET, aw::to(ops::openapi))],
    ))
    .service(
        aw::scope("/api/v1")
            .service(resource(
                "/sessions",
                vec![
                    (Method::GET, aw::to(api::list_sessions)),
                    (Method::POST, aw::to(api::create_session)),
                ],
            ))
            // One scope for the session's routes: its `{id}` pattern runs once per request and
            // the routes inside are static, instead of one pattern per route tried in turn.
            .service(
                aw::scope("/sessions/{id}")
                    .service(resource(
                        "",
                        vec![
                            (Method::GET, aw::to(api::get_session)),
                            (Method::DELETE, aw::to(api::delete_session)),
                        ],
                    ))
                    .service(resource(
                        "/attach",
                        vec![(Method::GET, aw::to(attach::attach))],
                    ))
                    .service(resource(
                        "/attach-tickets",
                        vec![(Method::POST, aw::to(api::issue_ticket))],
                    ))
                    .service(resource(
                        "/control",
                        vec![(Method::DELETE, aw::to(api::revoke_control))],
                    ))
                    .service(resource(
                        "/recordings",
                        vec![(Method::GET, aw::to(recordings::list_recordings))],
                    ))
                    .service(resource(
                        "/recordings/{file}",
                        vec![(Method::GET, aw::to(recordings::get_recording))],
                    ))
                    .service(resource(
                        "/thumbnail",
                        vec![(Method::GET, aw::to(dashboard::thumbnail))],
                    ))
                    .default_service(aw::to(not_found)),
            )
            .service(resource(
                "/dashboard",
                vec![(Method::GET, aw::to(dashboard::dashboard))],
            ))
            .service(resource(
                "/dashboard/events",
                vec![(Method::GET, aw::to(dashboard::events))],
            ))
            .service(resource(
                "/audit",
                vec![(Method::GET, aw::to(audit::audit_query))],
            ))
            .service(resource(
                "/audit/verify",
                vec![(Method::GET, aw::to(audit::audit_verify))],
            ))
            .default_service(aw::to(not_found)),
    );
}
