//! The messages a hub accepts (from connections, the API, drain and the control bus) and the
//! snapshot it answers with. Their handlers live in `handlers.rs`.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;

use super::participant::ParticipantStats;
use crate::outbound::OutboundTx;
use crate::protocol::{ControlAction, HelloLimits, HolderView, Role, TermSize};

/// A connection joins; the hub queues `hello` and a snapshot (or the exact bytes a resume
/// asks for) before any live output.
#[derive(Message)]
#[rtype(result = "Result<(), JoinError>")]
pub struct Join {
    /// Server-generated connection id.
    pub connection_id: String,
    /// Authenticated subject.
    pub subject: String,
    /// Display name from the token, if any.
    pub name: Option<String>,
    /// Ticket role.
    pub role: Role,
    /// The connection's outbound queue.
    pub out: OutboundTx,
    /// Shared counters.
    pub stats: Arc<ParticipantStats>,
    /// Limits announced in `hello`.
    pub limits: HelloLimits,
    /// `ws.max_invalid_messages`.
    pub max_invalid: u32,
    /// The ticket's `resume_from`.
    pub resume_from: Option<u64>,
    /// Its principal may moderate (`attach:moderate`): as an observer of a moderated session
    /// it is a moderator.
    pub moderator: bool,
}

/// Output up to `offset` was rendered by a connection (SPEC §8 `ack`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ack {
    /// The sender.
    pub connection_id: String,
    /// Output offset.
    pub offset: u64,
}

/// Asks for the session's output offset (to validate a ticket's `resume_from`).
#[derive(Message)]
#[rtype(result = "u64")]
pub struct OutputOffset;

/// Why a join failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The session's process has ended.
    #[error("session ended")]
    Ended,
}

/// A connection left (any reason). Idempotent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    /// The connection.
    pub connection_id: String,
}

/// stdin bytes from a connection; written only if it holds the seat at the current epoch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stdin {
    /// The sender.
    pub connection_id: String,
    /// The bytes.
    pub data: Bytes,
}

/// A resize request from a connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resize {
    /// The sender.
    pub connection_id: String,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// A `control` message from a connection: acquire, release, request, grant or deny.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ControlRequest {
    /// The sender.
    pub connection_id: String,
    /// What it asks.
    pub action: ControlAction,
    /// The requester answered (`grant`, `deny`).
    pub to: Option<String>,
}

/// A moderator revokes the current driver's control.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Revoke {
    /// The moderator's subject, for the audit record.
    pub by: String,
}

/// Ends the session: participants get 4005, the process is terminated.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Terminate;

/// Server drain: `shutdown`, then close 1001 to every participant.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// A snapshot for `GET /api/v1/sessions/{id}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HubSnapshot {
    /// Connected participants.
    pub participants: Vec<ParticipantView>,
    /// The control holder, if any.
    pub control: Option<HolderView>,
    /// Output bytes produced so far.
    pub output_offset: u64,
    /// The terminal's size.
    pub size: TermSize,
    /// When the session closes for idleness (RFC 3339).
    pub idle_deadline: String,
}

/// One participant in a snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParticipantView {
    /// Connection id.
    pub connection_id: String,
    /// Subject.
    pub subject: String,
    /// Display name, when the token has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role.
    pub role: Role,
}

/// Asks for a snapshot.
#[derive(Message)]
#[rtype(result = "HubSnapshot")]
pub struct Snapshot;

/// A control change announced by another replica.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteControl(pub crate::redis::bus::ControlNote);
