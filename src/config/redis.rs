//! `redis.*`: the optional shared state of several replicas, and what to do while Redis
//! cannot be reached.

use serde::{Deserialize, Serialize};

use super::base::ConfigError;

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedisOnError {
    /// Fall back to per-replica limits.
    #[default]
    Local,
    /// Refuse attaches.
    Deny,
    /// Admit without limits.
    Allow,
}

/// `redis.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; none = per-process state.
    pub url: Option<String>,
    /// Outage policy.
    pub on_error: RedisOnError,
    /// Prefix of every key.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            on_error: RedisOnError::Local,
            key_prefix: "attachd:".into(),
        }
    }
}

impl RedisSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "redis.url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        Ok(())
    }
}
