//! What a hub is configured with: the session's sizes and timers (`HubConfig`), flow control
//! (`FlowConfig`), and the replica's control bus and recorder.

use std::time::Duration;

use super::ModerationConfig;
use crate::protocol::TermSize;

/// Per-session timing and size settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `session.history_lines`.
    pub history_lines: usize,
    /// `session.replay_bytes`.
    pub replay_bytes: usize,
    /// The terminal's size when the session starts.
    pub initial_size: TermSize,
    /// Flow control (SPEC §8).
    pub flow: FlowConfig,
    /// `session.idle_timeout`.
    pub idle_timeout: Duration,
    /// `attach.driver_idle_timeout`.
    pub driver_idle_timeout: Duration,
    /// `attach.control_grace`.
    pub control_grace: Duration,
    /// Lifetime of a control lease without renewal; a holder that cannot renew for this long
    /// stops writing (fencing).
    pub lease_ttl: Duration,
    /// `attach.control_request_ttl`: how long a request for control waits for an answer.
    pub control_request_ttl: Duration,
    /// Publishes seat changes to other replicas (with Redis).
    pub bus: Option<crate::redis::bus::ControlBus>,
    /// Records the session (SPEC §9); `None` when `recording.mode = "off"`.
    pub recorder: Option<crate::recording::Recorder>,
    /// A moderated session's settings; `None` for a session that is not moderated.
    pub moderated: Option<ModerationConfig>,
}

/// Flow-control settings of a hub.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// `flow.window_bytes`.
    pub window_bytes: usize,
    /// `flow.observer_flush`.
    pub observer_flush: Duration,
    /// `ws.stall_timeout`.
    pub stall_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            window_bytes: 1 << 20,
            observer_flush: Duration::from_millis(16),
            stall_timeout: Duration::from_secs(30),
        }
    }
}
