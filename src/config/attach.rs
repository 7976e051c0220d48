//! `attach.*` and `limits.*`: ticket and control-lease lifetimes, and the admission limits
//! (per-IP attempts, per-subject and per-session slots).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::base::{nonzero, ConfigError};

/// `attach.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachSettings {
    /// Ticket lifetime.
    #[serde(with = "humantime_serde")]
    pub ticket_ttl: Duration,
    /// How long a disconnected driver's seat is kept for its subject.
    #[serde(with = "humantime_serde")]
    pub control_grace: Duration,
    /// Control expires after this long without stdin.
    #[serde(with = "humantime_serde")]
    pub driver_idle_timeout: Duration,
    /// A control lease not renewed for this long is lost (a partitioned holder stops writing).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How long a driver's request for control waits for the holder's answer.
    #[serde(with = "humantime_serde")]
    pub control_request_ttl: Duration,
}

impl Default for AttachSettings {
    fn default() -> Self {
        AttachSettings {
            ticket_ttl: Duration::from_secs(30),
            control_grace: Duration::from_secs(10),
            driver_idle_timeout: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(15),
            control_request_ttl: Duration::from_secs(30),
        }
    }
}

/// `limits.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Attach attempts per client IP per window.
    pub ip_attempts: u32,
    /// The sliding window.
    #[serde(with = "humantime_serde")]
    pub ip_window: Duration,
    /// Concurrent connections per subject.
    pub subject_connections: u32,
    /// Concurrent participants per session.
    pub session_participants: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            ip_attempts: 10,
            ip_window: Duration::from_secs(60),
            subject_connections: 5,
            session_participants: 50,
        }
    }
}

impl AttachSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        nonzero("attach.ticket_ttl", self.ticket_ttl)?;
        nonzero("attach.lease_ttl", self.lease_ttl)
    }
}

impl LimitSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        nonzero("limits.ip_window", self.ip_window)
    }
}
