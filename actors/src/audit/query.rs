//! Filtered reads of the audit log (`GET /api/v1/audit`): the newest matching records, newest
//! file first. Integrity is `verify`'s job.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::files::{chain_files, Line, LineReader};
use super::AuditError;

/// Most events [`read_events`] returns (SPEC: `limit` ≤ 1000).
pub const MAX_QUERY_LIMIT: usize = 1000;

/// Filters for [`read_events`]; empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Record types to keep (exact match on `type`).
    pub types: Vec<String>,
    /// Session ids to keep.
    pub session_ids: Vec<String>,
    /// Subjects to keep.
    pub subjects: Vec<String>,
    /// Only records of this tenant (applied before the limit).
    pub tenant: Option<String>,
    /// Keep records with `ts` (Unix ms) at or after this.
    pub since_ms: Option<u64>,
    /// Most records to return, newest ones (clamped to [`MAX_QUERY_LIMIT`]).
    pub limit: usize,
}

fn matches(q: &AuditQuery, obj: &Map<String, Value>) -> bool {
    let field_in = |list: &[String], key: &str| {
        list.is_empty()
            || obj
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| list.iter().any(|x| x == v))
    };
    if let Some(since) = q.since_ms {
        if obj.get("ts").and_then(Value::as_u64).unwrap_or(0) < since {
            return false;
        }
    }
    if let Some(t) = &q.tenant {
        if obj.get("tenant").and_then(Value::as_str) != Some(t.as_str()) {
            return false;
        }
    }
    field_in(&q.types, "type")
        && field_in(&q.session_ids, "session_id")
        && field_in(&q.subjects, "subject")
}

/// Calls `f` with every record of `types` in the files of a chain (oldest first), in chain
/// order. Lines that are not JSON objects are skipped; integrity is `verify_files`'s job.
pub fn for_each_record(
    paths: &[PathBuf],
    types: &[&str],
    mut f: impl FnMut(&Map<String, Value>),
) -> Result<(), AuditError> {
    for path in paths {
        let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
        let mut reader = LineReader::new(file);
        while let Some(line) = reader.next_line().map_err(|e| AuditError::io(path, e))? {
            let Line::Complete(bytes) = line else { break };
            // Cheap pre-filter: most records are of other types.
            if !types
                .iter()
                .any(|t| memchr::memmem::find(&bytes, t.as_bytes()).is_some())
            {
                continue;
            }
            if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&bytes) {
                if obj
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| types.contains(&t))
                {
                    f(&obj);
                }
            }
        }
    }
    Ok(())
}

/// The newest records of the log at `path` that match `q`, oldest first (at most `q.limit`,
/// itself at most [`MAX_QUERY_LIMIT`]). Unparsable lines and a partial last line are skipped;
/// integrity is [`verify_path`]'s job.
pub fn read_events(path: &Path, q: &AuditQuery) -> Result<Vec<Value>, AuditError> {
    match read_events_once(path, q) {
        // A rotation renamed a file between listing and reading: list again.
        Err(AuditError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            read_events_once(path, q)
        }
        other => other,
    }
}

fn read_events_once(path: &Path, q: &AuditQuery) -> Result<Vec<Value>, AuditError> {
    let limit = q.limit.min(MAX_QUERY_LIMIT);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let files = chain_files(path)?;
    let mut out: VecDeque<Value> = VecDeque::with_capacity(limit);
    // Newest file first; ts never decreases along the chain, so older files can stop the scan.
    for file_path in files.iter().rev() {
        let file = File::open(file_path).map_err(|e| AuditError::io(file_path, e))?;
        let mut reader = LineReader::new(file);
        let mut found: VecDeque<Value> = VecDeque::new();
        let mut newest_ts = 0u64;
        while let Some(line) = reader
            .next_line()
            .map_err(|e| AuditError::io(file_path, e))?
        {
            let bytes = match line {
                Line::Complete(bytes) => bytes,
                // A partial line can only be last; past an oversized line the file is corrupt
                // (or not a log at all, like a device), so stop reading it.
                Line::Partial(_) | Line::TooLong => break,
            };
            let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            newest_ts = newest_ts.max(obj.get("ts").and_then(Value::as_u64).unwrap_or(0));
            if matches(q, &obj) {
                found.push_back(Value::Object(obj));
                if found.len() > limit {
                    found.pop_front();
                }
            }
        }
        while let Some(v) = found.pop_back() {
            if out.len() >= limit {
                break;
            }
            out.push_front(v);
        }
        if out.len() >= limit || q.since_ms.is_some_and(|s| newest_ts < s) {
            break;
        }
    }
    Ok(out.into())
}
