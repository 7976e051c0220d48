//! The shared application state handed to every handler: settings, verifiers, stores and the
//! audit handle. Built once at start; nothing in it is locked on the output path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use attachd_actors::audit::Audit;
use attachd_actors::lease::LeaseStore;
use attachd_actors::limits::Limiter;

use crate::auth::Authenticator;
use crate::catalog::Catalog;
use crate::config::{AuditOnFailure, Settings};
use crate::error::ApiError;
use crate::tickets::TicketStore;

/// Everything handlers share.
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// API token verification.
    pub auth: Authenticator,
    /// Attach tickets.
    pub tickets: Arc<dyn TicketStore>,
    /// Admission limits.
    pub limiter: Arc<dyn Limiter>,
    /// Control leases.
    pub leases: Arc<dyn LeaseStore>,
    /// The audit writer.
    pub audit: Audit,
    /// The recorder (`None` when `recording.mode = "off"`).
    pub recorder: Option<attachd_actors::recording::Recorder>,
    /// Sessions: this process's hubs, pods, and how hubs start.
    pub catalog: Catalog,
    /// Effective browser origins.
    pub origins: Vec<String>,
    /// Set once SIGTERM arrives.
    pub draining: AtomicBool,
    /// Redis health, when `redis.url` is set.
    pub redis: Option<Arc<attachd_actors::redis::RedisHealth>>,
    /// Open API connections against `server.max_connections`.
    pub capacity: Arc<crate::capacity::Capacity>,
}

impl AppState {
    /// Refuses when the audit log is failing and the policy is `deny` (SPEC §6).
    pub fn audit_gate(&self) -> Result<(), ApiError> {
        let policy = self.settings.audit.policy(self.settings.env);
        if policy == AuditOnFailure::Deny && !self.audit.health().is_ok() {
            return Err(ApiError::AuditUnavailable);
        }
        Ok(())
    }

    /// Refuses attaches to a session whose recording is failing when the policy is `deny`
    /// (SPEC §9).
    pub fn recording_gate(&self, session_id: &str) -> Result<(), ApiError> {
        let Some(r) = &self.recorder else {
            return Ok(());
        };
        let deny = self.settings.recording.policy(self.settings.env) == AuditOnFailure::Deny;
        if deny && !(r.health().is_ok() && r.session_ok(session_id)) {
            return Err(ApiError::RecordingUnavailable);
        }
        Ok(())
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether an Origin is in the effective allowlist (exact match only).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}
