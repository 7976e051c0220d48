//! What a connection starts with: who is connected to what (`ConnIdentity`) and its limits and
//! timers (`ConnConfig`, from the `ws` section).

use std::time::Duration;

use crate::protocol::Role;

/// Per-connection limits and timers (SPEC §5).
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// `ws.ping_interval`.
    pub ping_interval: Duration,
    /// `ws.heartbeat_timeout`.
    pub heartbeat_timeout: Duration,
    /// `ws.max_lifetime`.
    pub max_lifetime: Duration,
    /// `ws.max_invalid_messages`.
    pub max_invalid: u32,
    /// `ws.stdin_messages_per_sec`.
    pub stdin_messages_per_sec: u32,
    /// `ws.stdin_bytes_per_sec`.
    pub stdin_bytes_per_sec: u64,
    /// How long stdin or control requests may keep their budget exhausted before 1008
    /// (`ws.stall_timeout`).
    pub flood_after: Duration,
    /// `ws.max_message_bytes`.
    pub max_message_bytes: usize,
    /// How often an `attach.stdin` summary is audited while typing goes on.
    pub stdin_summary_interval: Duration,
    /// How long a closing connection waits for its peer before it is dropped.
    pub close_linger: Duration,
}

/// Who is connected, to what.
#[derive(Debug, Clone)]
pub struct ConnIdentity {
    /// Server-generated connection id.
    pub connection_id: String,
    /// Session attached to.
    pub session_id: String,
    /// Authenticated subject.
    pub subject: String,
    /// Display name from the token (`name` or `preferred_username`), if any.
    pub name: Option<String>,
    /// Its tenant.
    pub tenant: String,
    /// Ticket role.
    pub role: Role,
    /// Client address (after trusted-proxy resolution).
    pub remote_ip: String,
    /// The ticket's `resume_from`: the output offset the client has rendered.
    pub resume_from: Option<u64>,
    /// The ticket's principal has `attach:moderate` (a moderator when it observes a moderated
    /// session).
    pub moderator: bool,
}
