//! A connection's exit duties, run exactly once from `Drop` however the connection ends:
//! leave the hub (releasing control), free the slots, count the close and audit the disconnect.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::ConnIdentity;
use crate::audit::{Audit, AuditEvent};
use crate::hub::{Leave, ParticipantStats, SessionHub};
use crate::limits::SlotGuard;
use crate::metrics;
use crate::protocol::close;

/// Runs the exit duties exactly once, however the connection ends (close, error, timer,
/// panic unwinding, drain): leave the hub (releasing control), free the slots, audit.
pub(super) struct ExitGuard {
    pub(super) id: Arc<ConnIdentity>,
    pub(super) hub: Addr<SessionHub>,
    pub(super) audit: Audit,
    pub(super) slots: Option<SlotGuard>,
    pub(super) started: Instant,
    pub(super) stats: Arc<ParticipantStats>,
    pub(super) close_code: Option<u16>,
    pub(super) bytes_in: u64,
    pub(super) stdin_messages: u64,
    pub(super) stdin_bytes: u64,
}

impl ExitGuard {
    pub(super) fn stdin_summary(&mut self) {
        if self.stdin_messages == 0 {
            return;
        }
        self.audit.record_detached(
            AuditEvent::new("attach.stdin", "ok")
                .subject(&self.id.subject)
                .tenant(&self.id.tenant)
                .session_id(&self.id.session_id)
                .connection_id(&self.id.connection_id)
                .role(self.id.role.as_str())
                .field_u64("messages", self.stdin_messages)
                .field_u64("bytes", self.stdin_bytes),
        );
        self.stdin_messages = 0;
        self.stdin_bytes = 0;
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let leave = Leave {
            connection_id: self.id.connection_id.clone(),
        };
        if let Err(SendError::Full(leave)) = self.hub.try_send(leave) {
            let hub = self.hub.clone();
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = hub.send(leave).await;
                });
            }
        }
        self.slots.take();
        self.stdin_summary();
        let code = self.close_code.unwrap_or(1006);
        metrics::CLOSES
            .with_label_values(&[&code.to_string()])
            .inc();
        self.audit.record_detached(
            AuditEvent::new("attach.disconnect", "ok")
                .reason(close::label(code))
                .subject(&self.id.subject)
                .tenant(&self.id.tenant)
                .session_id(&self.id.session_id)
                .connection_id(&self.id.connection_id)
                .role(self.id.role.as_str())
                .remote_ip(&self.id.remote_ip)
                .field_u64("duration_ms", self.started.elapsed().as_millis() as u64)
                .field_u64("bytes_in", self.bytes_in)
                .field_u64("bytes_out", self.stats.bytes_out.load(Ordering::Relaxed))
                .field_u64("close_code", u64::from(code)),
        );
        // Last: a drain that sees no open connection may flush the audit log right away.
        metrics::CONNECTIONS
            .with_label_values(&[self.id.role.as_str()])
            .dec();
    }
}
