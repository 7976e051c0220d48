//! The audit subsystem (SPEC section 6): a hash-chained JSON-lines log with exactly one writer,
//! group-committed with one `fdatasync` per batch, rotated by size, and verifiable offline.
//!
//! # Shape
//!
//! - [`record`]: [`AuditEvent`], what the rest of attachd describes (type, outcome, ids, counters).
//! - [`canonical`]: the canonical JSON of SPEC section 6 (Python's `json.dumps(sort_keys=True,
//!   separators=(",", ":"), ensure_ascii=False)`), byte for byte.
//! - [`chain`]: `hash = sha256_hex(prev ++ canonical(record without "hash"))`, sealing of records.
//! - [`writer`]: the audit actor (the single writer) and its handle [`Audit`].
//! - [`verify`]: [`verify_files`] and [`verify_path`] for the CLI and the HTTP API.
//! - [`files`]: the chain's files in order ([`chain_files`]) and capped line reading.
//! - [`query`]: [`read_events`], the filtered reads of `GET /api/v1/audit`.
//!
//! # Files and rotation
//!
//! The current file is `audit.path` (e.g. `data/audit.log`). When appending a record would push it
//! past `max_file_bytes`, it is renamed to `<name>.<N>` with `N` zero-padded to six digits
//! (`audit.log.000001`, `audit.log.000002`, ...; N = highest existing + 1, so numbers increase in
//! chain order; [`chain_files`] sorts numerically, so more than 999999 rotations still sort right).
//! The new current file starts with an `audit.rotated` record (field `rotated_file` = the name
//! the old file got) whose `prev` is the old file's last hash; `seq` keeps increasing.
//! `<name>.lock` (an `flock`ed lock file that keeps a second writer away), `<name>.head` (the
//! chain's head, see [`anchor`]) and `.<name>.probe` (a short-lived write probe used while
//! recovering) live next to it and are not part of the chain.
//!
//! # Durability and failure policy
//!
//! [`Audit::record`] resolves `Ok(seq)` only after the record's bytes were written and
//! `fdatasync`ed together with the rest of its batch. A failed batch is never retried behind the
//! caller's back: every record of it resolves `Err`, the file is cut back to the last durable
//! byte (so a record reported as failed never shows up later), and the records are reported as
//! lost (`attachd_audit_records_lost_total{reason="write_failed"}` plus an error log with their
//! types and ids). Each failed I/O attempt increments `attachd_audit_write_errors_total`, logs
//! with `tracing::error!` and flips [`AuditHealth`] to failing; the writer reopens the file on a
//! later batch (with a short backoff) and probes it periodically, and health returns to ok after
//! the next successful write.

mod anchor;
pub mod canonical;
pub mod chain;
pub mod files;
mod health;
pub mod query;
pub mod record;
pub mod remote;
mod sink;
pub mod verify;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;

pub use anchor::{head_path, Anchor};
pub use files::chain_files;
pub(crate) use health::init_metrics;
pub use health::{records_lost_total, write_errors_total, AuditHealth, HealthSnapshot};
pub use query::{for_each_record, read_events, AuditQuery, MAX_QUERY_LIMIT};
pub use record::{AuditEvent, FieldValue};
pub use verify::{verify_anchored, verify_files, verify_path, VerifyReport};
pub use writer::{Audit, AuditConfig, DETACHED_OVERFLOW, MAILBOX_CAPACITY, MAX_BATCH};

/// Sequence number of a record in the chain (1-based, gapless across rotations).
pub type Seq = u64;

/// Everything that can go wrong in the audit subsystem.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// Reading, writing, syncing, renaming or opening an audit file failed.
    #[error("audit I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The operating system's error (shared, so the error can go to many waiters).
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The chain on disk does not verify (or changed under the writer); appending would fork it.
    #[error("audit chain is broken, refusing to append: {0}")]
    ChainBroken(String),
    /// Another writer holds the lock of this audit file.
    #[error("audit file {0} is locked by another writer")]
    Locked(PathBuf),
    /// The event cannot be recorded as given (reserved or malformed field name).
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// The configuration cannot work (zero rotation size, empty path).
    #[error("invalid audit configuration: {0}")]
    Config(String),
    /// [`Audit::start`] was called outside an actix System.
    #[error("no actix System is running on this thread")]
    NoSystem,
    /// The audit writer has stopped (closed, or its System is gone).
    #[error("the audit writer has stopped")]
    Closed,
}

impl AuditError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}
