//! WebSocket close codes attachd sends (SPEC §4–§5), with their audit labels and the
//! short reasons written in close frames.

/// Normal closure: the process exited.
pub const NORMAL: u16 = 1000;
/// The server is draining.
pub const GOING_AWAY: u16 = 1001;
/// Reserved bits, unknown opcode or another framing violation.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text frame that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// Too many invalid messages, or a sustained stdin flood.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message over `ws.max_message_bytes`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// Internal error.
pub const INTERNAL_ERROR: u16 = 1011;
/// The session was idle for `session.idle_timeout`.
pub const SESSION_IDLE: u16 = 4000;
/// No frame from the client for `ws.heartbeat_timeout`.
pub const HEARTBEAT_TIMEOUT: u16 = 4001;
/// The connection reached `ws.max_lifetime`.
pub const MAX_LIFETIME: u16 = 4002;
/// The outbound queue went over `ws.max_outbound_bytes`.
pub const SLOW_CONSUMER: u16 = 4003;
/// Revoked by a moderator, or the session was deleted.
pub const REVOKED: u16 = 4005;

/// Every close code the server sends.
pub const ALL: [u16; 12] = [
    NORMAL,
    GOING_AWAY,
    PROTOCOL_ERROR,
    INVALID_PAYLOAD,
    POLICY_VIOLATION,
    MESSAGE_TOO_BIG,
    INTERNAL_ERROR,
    SESSION_IDLE,
    HEARTBEAT_TIMEOUT,
    MAX_LIFETIME,
    SLOW_CONSUMER,
    REVOKED,
];

/// A stable snake_case name for audit records and metrics.
pub fn label(code: u16) -> &'static str {
    match code {
        NORMAL => "normal",
        GOING_AWAY => "shutdown",
        PROTOCOL_ERROR => "protocol_error",
        INVALID_PAYLOAD => "invalid_utf8",
        POLICY_VIOLATION => "policy_violation",
        MESSAGE_TOO_BIG => "message_too_big",
        INTERNAL_ERROR => "internal_error",
        SESSION_IDLE => "session_idle",
        HEARTBEAT_TIMEOUT => "heartbeat_timeout",
        MAX_LIFETIME => "max_lifetime",
        SLOW_CONSUMER => "slow_consumer",
        REVOKED => "revoked",
        1005 => "client_closed",
        1006 => "connection_lost",
        _ => "closed",
    }
}

/// Short human reason sent in the close frame.
pub fn reason(code: u16) -> &'static str {
    match code {
        NORMAL => "normal closure",
        GOING_AWAY => "server shutting down",
        PROTOCOL_ERROR => "protocol error",
        INVALID_PAYLOAD => "invalid utf-8",
        POLICY_VIOLATION => "policy violation",
        MESSAGE_TOO_BIG => "message too big",
        SESSION_IDLE => "session idle",
        HEARTBEAT_TIMEOUT => "heartbeat timeout",
        MAX_LIFETIME => "max lifetime reached",
        SLOW_CONSUMER => "slow consumer",
        REVOKED => "revoked",
        _ => "closed",
    }
}
