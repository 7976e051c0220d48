//! Health of the optional Redis connection, as readiness and the outage policy see it.
//! Without `redis.url` everything is per-process and Redis is reported as disabled.

use crate::state::AppState;

/// Redis as seen by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    /// No `redis.url`: per-process state.
    Disabled,
    /// Reachable.
    Ok,
    /// Unreachable; the outage policy applies.
    Down,
}

/// The current status.
pub fn status(st: &AppState) -> RedisStatus {
    match &st.redis {
        None => RedisStatus::Disabled,
        Some(h) if h.is_up() => RedisStatus::Ok,
        Some(_) => RedisStatus::Down,
    }
}
