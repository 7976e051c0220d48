//! `recording.*`: whether sessions are recorded (asciicast v2, SPEC §9), where, how large a
//! file grows, how long recordings are kept, and what a failing recording refuses.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::audit::AuditOnFailure;
use super::base::{nonzero, ConfigError, Env};

/// `recording.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RecordingModeSetting {
    /// Nothing is recorded.
    #[serde(rename = "off")]
    Off,
    /// Output, sizes and markers.
    #[serde(rename = "output")]
    Output,
    /// Output and input.
    #[serde(rename = "output+input")]
    OutputInput,
}

/// `recording.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// `off`, `output` (the default) or `output+input`.
    pub mode: RecordingModeSetting,
    /// Where recordings live: `<dir>/<tenant>/<session>/<file>.cast`.
    pub dir: PathBuf,
    /// A file that reaches this size is closed and the next one begun.
    pub max_file_bytes: ByteSize,
    /// Recordings older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Failure policy (`deny` or `log`); default `deny` in prod and `log` in dev.
    pub on_failure: Option<AuditOnFailure>,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            mode: RecordingModeSetting::Output,
            dir: PathBuf::from("./data/recordings/"),
            max_file_bytes: ByteSize::mib(64),
            retention: Duration::from_secs(30 * 24 * 3600),
            on_failure: None,
        }
    }
}

impl RecordingSettings {
    /// The effective failure policy.
    pub fn policy(&self, env: Env) -> AuditOnFailure {
        self.on_failure.unwrap_or(match env {
            Env::Prod => AuditOnFailure::Deny,
            Env::Dev => AuditOnFailure::Log,
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::new("recording.dir", "must not be empty"));
        }
        if self.max_file_bytes.as_u64() < 1024 {
            return Err(ConfigError::new(
                "recording.max_file_bytes",
                "must be at least 1 KiB",
            ));
        }
        nonzero("recording.retention", self.retention)
    }
}
