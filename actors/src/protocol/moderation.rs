//! `moderation.state`: whether a moderated session takes stdin (a moderator is attached) or
//! holds it, with the audit record of entering each state.

use serde::{Deserialize, Serialize};

/// `moderation.state` of a moderated session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModerationState {
    /// No moderator is attached: stdin is held.
    Frozen,
    /// At least one moderator is attached: stdin flows.
    Live,
}

impl ModerationState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationState::Frozen => "frozen",
            ModerationState::Live => "live",
        }
    }

    /// The audit record type of entering this state.
    pub fn audit_type(self) -> &'static str {
        match self {
            ModerationState::Frozen => "session.moderation.frozen",
            ModerationState::Live => "session.moderation.live",
        }
    }
}
