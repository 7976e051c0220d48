//! The `/api/v1/audit` handlers: filtered reads of the caller's tenant and chain verification.
//! Both need `audit:read`; the file work runs on the blocking pool.

use actix_web::{web, HttpResponse};
use attachd_actors::audit::{AuditQuery, MAX_QUERY_LIMIT};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::http::extract::Auth;
use crate::scope::Scope;
use crate::state::AppState;

type State = web::Data<AppState>;

/// Query of `GET /api/v1/audit`; list filters are comma-separated.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Record types, comma-separated (≤ 50).
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// Session ids, comma-separated (≤ 50).
    pub session_id: Option<String>,
    /// Subjects, comma-separated (≤ 50).
    pub subject: Option<String>,
    /// Only records at or after this time (RFC 3339 or unix ms).
    pub since: Option<String>,
    /// At most this many records (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Most values one list filter may carry.
pub const MAX_FILTER_VALUES: usize = 50;

fn split_filter(name: &str, v: &Option<String>) -> Result<Vec<String>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let vals: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if vals.len() > MAX_FILTER_VALUES {
        return Err(ApiError::BadRequest(format!(
            "{name}: at most {MAX_FILTER_VALUES} values"
        )));
    }
    if vals.iter().any(|s| s.len() > 256) {
        return Err(ApiError::BadRequest(format!("{name}: value too long")));
    }
    Ok(vals)
}

fn parse_since(v: &Option<String>) -> Result<Option<u64>, ApiError> {
    // Empty is absent, like the empty list filters.
    let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(Some(ms));
    }
    humantime::parse_rfc3339_weak(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Some(d.as_millis() as u64))
        .ok_or_else(|| ApiError::BadRequest("since: expected RFC 3339 or unix milliseconds".into()))
}

/// Audit records of the caller's tenant, filtered.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit_query(
    st: State,
    Auth(p): Auth,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    p.require(Scope::AuditRead)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit as usize > MAX_QUERY_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1..={MAX_QUERY_LIMIT}"
        )));
    }
    let query = AuditQuery {
        types: split_filter("type", &q.ty)?,
        session_ids: split_filter("session_id", &q.session_id)?,
        subjects: split_filter("subject", &q.subject)?,
        // A tenant sees only its own records, filtered before the limit applies.
        tenant: Some(p.tenant.clone()),
        since_ms: parse_since(&q.since)?,
        limit: limit as usize,
    };
    let path = st.settings.audit.path.clone();
    let events = web::block(move || attachd_actors::audit::read_events(&path, &query)).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": events })))
}

/// `GET /api/v1/audit/verify` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether the whole chain verifies.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// First seq that fails, if any.
    pub first_bad_seq: Option<u64>,
}

/// Verifies the whole audit chain.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit_verify(st: State, Auth(p): Auth) -> Result<HttpResponse, ApiError> {
    p.require(Scope::AuditRead)?;
    let path = st.settings.audit.path.clone();
    let report = web::block(move || attachd_actors::audit::verify_path(&path)).await?;
    Ok(HttpResponse::Ok().json(VerifyResponse {
        ok: report.ok,
        records: report.records,
        first_bad_seq: report.first_bad_seq,
    }))
}
