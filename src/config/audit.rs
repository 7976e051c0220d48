//! `audit.*`: where the hash-chained log lives, its rotation size, and whether a failing log
//! refuses work (`deny`, the prod default) or lets it through.

use std::path::PathBuf;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::base::Env;

/// `audit.on_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOnFailure {
    /// Refuse tickets and attaches while the log cannot be written.
    Deny,
    /// Keep serving; the failure is still surfaced.
    Log,
}

/// `audit.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// The current log file.
    pub path: PathBuf,
    /// Rotation size.
    pub max_file_bytes: ByteSize,
    /// Failure policy; default `deny` in prod and `log` in dev.
    pub on_failure: Option<AuditOnFailure>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            path: PathBuf::from("./data/audit.log"),
            max_file_bytes: ByteSize::mib(64),
            on_failure: None,
        }
    }
}

impl AuditSettings {
    /// The effective failure policy.
    pub fn policy(&self, env: Env) -> AuditOnFailure {
        self.on_failure.unwrap_or(match env {
            Env::Prod => AuditOnFailure::Deny,
            Env::Dev => AuditOnFailure::Log,
        })
    }
}
