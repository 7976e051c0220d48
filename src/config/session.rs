//! `session.*`: which backend runs sessions, the local PTY command, idle deadline and what a
//! session keeps for joiners and resumes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::base::{at_least, nonzero, ConfigError};

/// Which backend runs sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A PTY on this host.
    #[default]
    Local,
    /// Pods through the Kubernetes API.
    Kube,
}

/// `session.local.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// Default argv of a created session.
    pub command: Vec<String>,
    /// Further argv lists a caller may ask for.
    pub allowed_commands: Vec<Vec<String>>,
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            command: vec!["/bin/sh".into()],
            allowed_commands: Vec::new(),
        }
    }
}

/// `session.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// `local` or `kube`.
    pub backend: BackendKind,
    /// Local PTY settings.
    pub local: LocalSettings,
    /// No stdin and no output for this long → 4000.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Retired (SPEC §8): accepted with a startup warning; see `history_lines`, `replay_bytes`.
    pub scrollback_bytes: Option<usize>,
    /// Lines of history the terminal state keeps above the screen.
    pub history_lines: usize,
    /// Output kept for exact resumes (`resume_from`).
    pub replay_bytes: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            backend: BackendKind::Local,
            local: LocalSettings::default(),
            idle_timeout: Duration::from_secs(30 * 60),
            scrollback_bytes: None,
            history_lines: attachd_actors::term::DEFAULT_HISTORY_LINES,
            replay_bytes: attachd_actors::ring::DEFAULT_REPLAY_BYTES,
        }
    }
}

impl SessionSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.local.command.is_empty() {
            return Err(ConfigError::new(
                "session.local.command",
                "must not be empty",
            ));
        }
        nonzero("session.idle_timeout", self.idle_timeout)?;
        at_least("session.replay_bytes", self.replay_bytes, 64 * 1024)
    }
}
