//! Who may type and why control changed hands: `Role`, `ControlReason`, `RequestOutcome` and
//! `HolderView`, the holder as participants see it.

use serde::{Deserialize, Serialize};

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
