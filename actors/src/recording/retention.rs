//! The retention sweep: recordings last modified longer ago than `recording.retention` are
//! deleted (never one being written), each deletion audited as `recording.deleted`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{names, Active};
use crate::audit::{Audit, AuditEvent};

/// The audit record type of a recording removed by retention.
pub const DELETED_RECORD: &str = "recording.deleted";

/// Files under `dir` older than `retention` (by modification time), except active ones.
pub(crate) fn expired(dir: &Path, retention: Duration, active: &Active) -> Vec<names::Found> {
    let Ok(found) = names::walk(dir) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    found
        .into_iter()
        .filter(|(_, _, file, path)| {
            names::is_valid_file_name(file)
                && !active.contains(path)
                && std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > retention)
        })
        .collect()
}

/// Deletes expired recordings and audits each deletion; returns how many were deleted.
pub(crate) async fn sweep(
    dir: &Path,
    retention: Duration,
    active: &Active,
    audit: &Audit,
) -> usize {
    let mut n = 0;
    for (tenant_dir, session, file, path) in expired(dir, retention, active) {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::error!(path = %path.display(), error = %e, "cannot delete an expired recording");
            continue;
        }
        n += 1;
        let mut ev = AuditEvent::new(DELETED_RECORD, "ok")
            .reason("retention")
            .session_id(&session)
            .field_str("file", &file);
        if let Some(t) = names::tenant_from_dir(&tenant_dir) {
            ev = ev.tenant(t);
        }
        if let Err(e) = audit.record(ev).await {
            tracing::error!(error = %e, "recording deletion not audited");
        }
        if let Some(parent) = path.parent() {
            // Only succeeds once the session's directory is empty.
            let _ = std::fs::remove_dir(parent);
        }
    }
    if n > 0 {
        tracing::info!(deleted = n, "recording retention sweep");
    }
    n
}
