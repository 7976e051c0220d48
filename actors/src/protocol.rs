//! The attach.v1 wire vocabulary: server JSON frames, client JSON messages and close codes.
//! Pure data and parsing; sockets and framing live elsewhere.

use serde::{Deserialize, Serialize};

/// WebSocket close codes attachd uses (SPEC §4–§5).
pub mod close {
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
}

/// A participant's role, fixed by its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May type and resize while holding control.
    Driver,
    /// Read-only.
    Observer,
}

impl Role {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Observer => "observer",
        }
    }
}

/// Why control changed hands (SPEC §5 `control.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlReason {
    /// A driver took the free seat.
    Acquired,
    /// The holder released it (or its reconnect grace ran out).
    Released,
    /// The holder sent no stdin for `attach.driver_idle_timeout`.
    Expired,
    /// A moderator revoked it.
    Revoked,
    /// The holder disconnected; the seat is kept for its subject during the grace period.
    Disconnected,
    /// The holder granted a driver's request: the seat moved to that driver.
    Granted,
}

impl ControlReason {
    /// The audit record type of this change.
    pub fn audit_type(self) -> &'static str {
        match self {
            ControlReason::Acquired => "attach.control.acquired",
            ControlReason::Released | ControlReason::Disconnected => "attach.control.released",
            ControlReason::Expired => "attach.control.expired",
            ControlReason::Revoked => "attach.control.revoked",
            ControlReason::Granted => "attach.control.granted",
        }
    }

    /// The wire, metric and note name.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlReason::Acquired => "acquired",
            ControlReason::Released => "released",
            ControlReason::Expired => "expired",
            ControlReason::Revoked => "revoked",
            ControlReason::Disconnected => "disconnected",
            ControlReason::Granted => "granted",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ControlReason::Acquired,
            ControlReason::Released,
            ControlReason::Expired,
            ControlReason::Revoked,
            ControlReason::Disconnected,
            ControlReason::Granted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// How a request for control ended (`control_request_ended.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestOutcome {
    /// The holder said no.
    Denied,
    /// Nobody answered within 30 s.
    Expired,
    /// The requester left.
    Withdrawn,
}

impl RequestOutcome {
    /// The audit record type of this outcome.
    pub fn audit_type(self) -> &'static str {
        match self {
            RequestOutcome::Denied => "attach.control.request.denied",
            RequestOutcome::Expired => "attach.control.request.expired",
            RequestOutcome::Withdrawn => "attach.control.request.withdrawn",
        }
    }
}

/// The current control holder as participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderView {
    /// Connection that holds the seat.
    pub connection_id: String,
    /// Its authenticated subject.
    pub subject: String,
    /// Its display name (the token's `name` or `preferred_username`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `hello.control`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloControl {
    /// Connection id of the holder, if any.
    pub holder: Option<String>,
    /// Whether the receiving connection holds control.
    pub you: bool,
    /// The holder's subject, if anyone holds control.
    pub subject: Option<String>,
    /// The holder's display name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl HelloControl {
    /// `hello.control` for a receiver, given the current holder.
    pub fn new(holder: Option<HolderView>, you: bool) -> Self {
        match holder {
            Some(h) => HelloControl {
                holder: Some(h.connection_id),
                you,
                subject: Some(h.subject),
                name: h.name,
            },
            None => HelloControl {
                holder: None,
                you,
                subject: None,
                name: None,
            },
        }
    }
}

/// `hello.limits`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct HelloLimits {
    /// Largest message the server accepts.
    pub max_message_bytes: usize,
    /// How often the server pings.
    pub ping_interval_ms: u64,
}

/// Server → client JSON frames; `type` is serialized first. Clients parse them with
/// [`ServerFrame::parse`]; unknown fields are ignored (additive versions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// Always the first frame of a connection.
    Hello {
        /// The session attached to.
        session_id: String,
        /// This connection's server-generated id.
        connection_id: String,
        /// The role granted by the ticket.
        role: Role,
        /// The receiving connection's subject.
        subject: String,
        /// The receiving connection's display name, when its token has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Who holds control.
        control: HelloControl,
        /// RFC 3339 time at which the session idles out.
        idle_deadline: String,
        /// Limits the client must respect.
        limits: HelloLimits,
        /// Offset of the first output byte that follows (SPEC §8).
        output_offset: u64,
        /// The PTY's size.
        size: TermSize,
        /// Whether this attach resumed exactly from the ticket's `resume_from`.
        resumed: bool,
    },
    /// The session's screen at `offset`; exactly one binary frame with its bytes follows.
    Snapshot {
        /// Output offset the snapshot reproduces; live output continues from here.
        offset: u64,
        /// Columns of the terminal to reset to.
        cols: u16,
        /// Rows of the terminal to reset to.
        rows: u16,
        /// Why it is sent.
        reason: SnapshotReason,
        /// Output bytes the receiver did not get (0 for a join).
        skipped_bytes: u64,
    },
    /// The PTY size changed.
    Size {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Control changed hands.
    Control {
        /// The new holder, if any.
        holder: Option<HolderView>,
        /// Why.
        reason: ControlReason,
    },
    /// A driver asks for control: sent to the holder (who answers with `grant` or `deny`) and
    /// to the requester (its request is queued).
    #[serde(rename = "control_request")]
    ControlRequest {
        /// Who asks.
        from: HolderView,
        /// RFC 3339 time at which the request expires unanswered.
        expires_at: String,
    },
    /// A request ended without moving control (a grant is a `control` frame, reason
    /// `granted`): to the holder and the requester.
    #[serde(rename = "control_request_ended")]
    ControlRequestEnded {
        /// Who asked.
        from: HolderView,
        /// How it ended.
        outcome: RequestOutcome,
    },
    /// Participant counts after a join or leave.
    Participants {
        /// Connected driver-role participants.
        drivers: usize,
        /// Connected observers.
        observers: usize,
    },
    /// The session's idle deadline moved.
    Idle {
        /// RFC 3339 time at which the session idles out.
        deadline: String,
    },
    /// A refused client message; the connection stays open.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human text.
        message: String,
    },
    /// The process ended; close 1000 follows.
    Exit {
        /// Exit status.
        code: i32,
    },
    /// The server drains; close 1001 follows.
    Shutdown {},
}

impl ServerFrame {
    /// Serializes the frame to its JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parses a server text frame (a client's view); `None` for anything else, such as a frame
    /// type a newer server added.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// Builds an `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
        }
    }
}

/// A terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// `snapshot.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// A participant joined.
    Join,
    /// An observer fell more than `flow.window_bytes` behind.
    Resync,
    /// A resume asked for output the ring no longer holds.
    ResumeGap,
}

impl SnapshotReason {
    /// The wire and metric name.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotReason::Join => "join",
            SnapshotReason::Resync => "resync",
            SnapshotReason::ResumeGap => "resume_gap",
        }
    }
}

/// Codes of the in-band `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// stdin or resize from a connection without control.
    NotDriver,
    /// Malformed or unknown message.
    InvalidMessage,
    /// stdin over the per-connection rate.
    RateLimited,
    /// Control cannot be acquired now, or not by this role.
    ControlDenied,
}

/// Client → server JSON messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    /// New terminal size (holder only).
    Resize {
        /// Columns, 1..=1000.
        cols: u32,
        /// Rows, 1..=1000.
        rows: u32,
    },
    /// Acquire, release, request, grant or deny control (driver role only).
    Control {
        /// What to do.
        action: ControlAction,
        /// The requester's connection id (`grant` and `deny` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Output up to `offset` has been rendered (SPEC §8 flow control).
    Ack {
        /// Output offset.
        offset: u64,
    },
}

/// `control.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlAction {
    /// Take the free seat.
    Acquire,
    /// Give the seat up.
    Release,
    /// Ask the holder for the seat (acquires it when free).
    Request,
    /// The holder hands the seat to the requester `to`.
    Grant,
    /// The holder refuses `to`'s request.
    Deny,
}

/// Longest accepted connection id in `control.to`.
pub const MAX_CONNECTION_ID: usize = 64;

/// Largest accepted terminal dimension.
pub const MAX_TERMINAL_DIM: u32 = 1000;

impl ClientMessage {
    /// Serializes the message to its JSON text (what a client sends).
    pub fn to_json(&self) -> String {
        // Serializing these plain enums cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parses and validates a client text message; the error text is safe to echo.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The error text never repeats the caller's input.
        let msg: ClientMessage = serde_json::from_str(text).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                String::from("message is not valid JSON")
            } else {
                String::from("unknown message type or invalid fields")
            }
        })?;
        if let ClientMessage::Control { action, to } = &msg {
            let answer = matches!(action, ControlAction::Grant | ControlAction::Deny);
            match to {
                None if answer => return Err(String::from("grant and deny need `to`")),
                Some(_) if !answer => {
                    return Err(String::from("`to` belongs to grant and deny only"))
                }
                Some(t) if t.is_empty() || t.len() > MAX_CONNECTION_ID => {
                    return Err(String::from("`to` is not a connection id"))
                }
                _ => {}
            }
        }
        if let ClientMessage::Resize { cols, rows } = msg {
            if !(1..=MAX_TERMINAL_DIM).contains(&cols) || !(1..=MAX_TERMINAL_DIM).contains(&rows) {
                return Err(format!(
                    "resize out of range: cols and rows must be 1..={MAX_TERMINAL_DIM}"
                ));
            }
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_serializes_type_first() {
        let f = ServerFrame::Participants {
            drivers: 1,
            observers: 2,
        };
        assert_eq!(
            f.to_json(),
            r#"{"type":"participants","drivers":1,"observers":2}"#
        );
        assert_eq!(ServerFrame::Shutdown {}.to_json(), r#"{"type":"shutdown"}"#);
        let snap = ServerFrame::Snapshot {
            offset: 7,
            cols: 80,
            rows: 24,
            reason: SnapshotReason::ResumeGap,
            skipped_bytes: 3,
        };
        assert_eq!(
            snap.to_json(),
            r#"{"type":"snapshot","offset":7,"cols":80,"rows":24,"reason":"resume_gap","skipped_bytes":3}"#
        );
    }

    #[test]
    fn frames_round_trip_for_clients() {
        let hello = r#"{"type":"hello","session_id":"s-1","connection_id":"c-1","role":"observer","subject":"olive","control":{"holder":null,"you":false,"subject":null},"idle_deadline":"2026-01-01T00:00:00Z","limits":{"max_message_bytes":1024,"ping_interval_ms":15000},"output_offset":42,"size":{"cols":80,"rows":24},"resumed":true,"later":"ignored"}"#;
        match ServerFrame::parse(hello) {
            Some(ServerFrame::Hello {
                output_offset,
                size,
                resumed,
                role,
                ..
            }) => {
                assert_eq!(output_offset, 42);
                assert_eq!(size, TermSize { cols: 80, rows: 24 });
                assert!(resumed);
                assert_eq!(role, Role::Observer);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ServerFrame::parse(r#"{"type":"exit","code":7}"#),
            Some(ServerFrame::Exit { code: 7 })
        ));
        assert!(ServerFrame::parse(r#"{"type":"from_the_future"}"#).is_none());
        let ack = ClientMessage::Ack { offset: 9 };
        assert_eq!(ack.to_json(), r#"{"type":"ack","offset":9}"#);
        assert_eq!(ClientMessage::parse(&ack.to_json()), Ok(ack));
        let resize = ClientMessage::Resize { cols: 80, rows: 24 };
        assert_eq!(resize.to_json(), r#"{"type":"resize","cols":80,"rows":24}"#);
        let acquire = ClientMessage::Control {
            action: ControlAction::Acquire,
            to: None,
        };
        assert_eq!(
            acquire.to_json(),
            r#"{"type":"control","action":"acquire"}"#
        );
    }

    #[test]
    fn parses_and_bounds_client_messages() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"resize","cols":80,"rows":24}"#),
            Ok(ClientMessage::Resize { cols: 80, rows: 24 })
        );
        assert!(ClientMessage::parse(r#"{"type":"resize","cols":0,"rows":24}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"resize","cols":1001,"rows":24}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"resize","cols":-1,"rows":24}"#).is_err());
        assert_eq!(
            ClientMessage::parse(r#"{"type":"control","action":"acquire"}"#),
            Ok(ClientMessage::Control {
                action: ControlAction::Acquire,
                to: None
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"control","action":"grant","to":"c-1"}"#),
            Ok(ClientMessage::Control {
                action: ControlAction::Grant,
                to: Some("c-1".into())
            })
        );
        assert!(ClientMessage::parse(r#"{"type":"control","action":"deny"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"control","action":"request","to":"c"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"control","action":"grant","to":""}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"control","action":"steal"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"nope"}"#).is_err());
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ack","offset":12345}"#),
            Ok(ClientMessage::Ack { offset: 12345 })
        );
        assert!(ClientMessage::parse(r#"{"type":"ack","offset":-1}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"ack"}"#).is_err());
        assert!(ClientMessage::parse("not json").is_err());
    }
}
