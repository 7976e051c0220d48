//! `ws.*` and `flow.*`: WebSocket limits and timers (SPEC §5), and flow control between the
//! holder's window and observers' flushes (SPEC §8).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::base::{at_least, nonzero, ConfigError};

/// `ws.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsSettings {
    /// Largest inbound message (after reassembly).
    pub max_message_bytes: usize,
    /// Largest outbound backlog before 4003.
    pub max_outbound_bytes: usize,
    /// Server ping period.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// Silence before 4001.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Age before 4002.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    /// Malformed/forbidden messages before 1008.
    pub max_invalid_messages: u32,
    /// stdin messages per second.
    pub stdin_messages_per_sec: u32,
    /// stdin bytes per second.
    pub stdin_bytes_per_sec: u64,
    /// No progress (no ack and no socket write) for this long → 4003 (SPEC §8).
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            max_message_bytes: 1_048_576,
            max_outbound_bytes: 1_048_576,
            ping_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(8 * 3600),
            max_invalid_messages: 10,
            stdin_messages_per_sec: 500,
            stdin_bytes_per_sec: 1_048_576,
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// `flow.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowSettings {
    /// The holder's unacknowledged output beyond which the backend is not read; an observer's
    /// backlog beyond which it is resynced.
    pub window_bytes: usize,
    /// How long observers' output is gathered before it is sent (the holder's is sent at once).
    #[serde(with = "humantime_serde")]
    pub observer_flush: Duration,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            window_bytes: 1_048_576,
            observer_flush: Duration::from_millis(16),
        }
    }
}

impl WsSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_timeout < self.ping_interval {
            return Err(ConfigError::new(
                "ws.heartbeat_timeout",
                "must be at least ws.ping_interval",
            ));
        }
        nonzero("ws.ping_interval", self.ping_interval)?;
        nonzero("ws.max_lifetime", self.max_lifetime)?;
        nonzero("ws.stall_timeout", self.stall_timeout)?;
        at_least("ws.max_message_bytes", self.max_message_bytes, 1024)?;
        at_least("ws.max_outbound_bytes", self.max_outbound_bytes, 16 * 1024)
    }
}

impl FlowSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least("flow.window_bytes", self.window_bytes, 16 * 1024)?;
        if self.observer_flush > Duration::from_secs(1) {
            return Err(ConfigError::new(
                "flow.observer_flush",
                "must be at most 1s",
            ));
        }
        Ok(())
    }
}
