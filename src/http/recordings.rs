//! The recordings API (SPEC §9): a session's recording files with whether each verifies
//! against its audit records, and one file as `application/x-asciicast`. Scope `audit:read`.

use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use attachd_actors::audit::chain_files;
use attachd_actors::recording::names;
use attachd_actors::recording::verify::{verify_file, ChunkIndex};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::http::api::visible;
use crate::http::extract::Auth;
use crate::scope::Scope;
use crate::state::AppState;

/// The media type of an asciicast file.
pub const ASCIICAST: &str = "application/x-asciicast";

/// One recording file of a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// File name (pass it to `GET .../recordings/{file}`).
    pub file: String,
    /// RFC 3339 start of the file.
    pub started_at: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Whether every byte is covered by its `recording.chunk` audit records.
    pub verified: bool,
}

/// The caller's view of a session's recordings: 404 unless the session is live in the
/// caller's tenant or has recordings there (so ended sessions stay listable), then 403
/// without `audit:read`.
async fn files_of(st: &AppState, p: &Principal, id: &str) -> Result<Vec<(String, u64)>, ApiError> {
    let (dir, tenant, sid) = (
        st.settings.recording.dir.clone(),
        p.tenant.clone(),
        id.to_owned(),
    );
    let files = web::block(move || names::list_files(&dir, &tenant, &sid)).await??;
    if files.is_empty() {
        visible(st, p, id).await?;
    }
    p.require(Scope::AuditRead)?;
    Ok(files)
}

/// A session's recordings, oldest first.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/recordings", tag = "recordings",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = Vec<RecordingView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_recordings(
    st: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let files = files_of(&st, &p, &id).await?;
    let audit_path = st.settings.audit.path.clone();
    let dir = st.settings.recording.dir.clone();
    let (tenant, sid) = (p.tenant.clone(), id.into_inner());
    let views = web::block(move || -> Result<Vec<RecordingView>, ApiError> {
        let idx = ChunkIndex::load(&chain_files(&audit_path)?)?;
        Ok(files
            .into_iter()
            .map(|(file, bytes)| {
                let verified = match (
                    names::file_path(&dir, &tenant, &sid, &file),
                    idx.chunks(&tenant, &sid, &file),
                ) {
                    (Some(path), Some(chunks)) => verify_file(&path, &sid, chunks).is_ok(),
                    _ => false,
                };
                RecordingView {
                    started_at: names::started_at(&file).unwrap_or_default(),
                    file,
                    bytes,
                    verified,
                }
            })
            .collect())
    })
    .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(views))
}

/// One recording as asciicast v2.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/recordings/{file}", tag = "recordings",
    params(("id" = String, Path, description = "session id"), ("file" = String, Path, description = "recording file name")),
    responses((status = 200, description = "asciicast v2", content_type = "application/x-asciicast", body = String), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_recording(
    st: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, file) = path.into_inner();
    let files = files_of(&st, &p, &id).await?;
    // Only a name the listing shows is ever opened: no caller-built path reaches the disk.
    if !names::is_valid_file_name(&file) || !files.iter().any(|(f, _)| *f == file) {
        return Err(ApiError::NotFound);
    }
    let path: PathBuf = names::file_path(&st.settings.recording.dir, &p.tenant, &id, &file)
        .ok_or(ApiError::NotFound)?;
    // A file removed since the listing (retention) is a 404, through `From<io::Error>`.
    let data = web::block(move || std::fs::read(path)).await??;
    Ok(HttpResponse::Ok()
        .content_type(ASCIICAST)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .body(data))
}
