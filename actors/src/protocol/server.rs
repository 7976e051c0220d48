//! Server → client JSON frames (`ServerFrame`) and the values they carry (`hello`'s parts,
//! `TermSize`, `SnapshotReason`, the in-band `ErrorCode`).

use serde::{Deserialize, Serialize};

use super::control::{ControlReason, HolderView, RequestOutcome, Role};
use super::moderation::ModerationState;

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
    /// A moderated session froze (no moderator attached: stdin is held) or went live; also
    /// right after `hello`.
    Moderation {
        /// `frozen` or `live`.
        state: ModerationState,
        /// Moderators attached, on every replica as last counted.
        moderators: usize,
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
    /// stdin of a moderated session while no moderator is attached, past what is held.
    ModerationRequired,
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
    }
}
