//! Shared state in Redis (one server, Sentinel or Cluster): one multiplexed connection, bounded
//! timeouts, health tracking and the outage policy.
//! Every decision is one Lua script using Redis `TIME`, so replicas agree on the clock.

pub mod bus;
pub mod conn;
pub mod lease;
pub mod limiter;
pub mod moderators;
pub mod refresh;
pub mod scripts;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use conn::{Conn, Topology};

use crate::metrics;

/// Deadline of one Redis decision, including (re)connecting.
pub const OP_TIMEOUT: Duration = Duration::from_millis(500);

/// What to do when Redis cannot answer (`redis.on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Per-replica fallback; readiness stays 200 with `redis: degraded`.
    Local,
    /// Refuse attaches with 503 `redis_unavailable`.
    Deny,
    /// Admit without limits.
    Allow,
}

/// A Redis failure.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The pool could not be built from the URL.
    #[error("invalid redis configuration: {0}")]
    Config(String),
    /// No answer within the deadline, or a connection/command error.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

/// Whether Redis answered lately; read by readiness and the outage policy.
#[derive(Debug, Default)]
pub struct RedisHealth {
    up: AtomicBool,
    degraded_decisions: AtomicU64,
}

impl RedisHealth {
    /// Whether the last operation succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    fn set(&self, up: bool) {
        let was = self.up.swap(up, Ordering::AcqRel);
        if was != up {
            if up {
                tracing::info!("redis reachable again");
            } else {
                tracing::error!("redis unreachable; applying redis.on_error");
            }
        }
    }

    /// Counts a decision taken without Redis.
    pub fn degraded(&self) {
        self.degraded_decisions.fetch_add(1, Ordering::Relaxed);
        metrics::REDIS_DEGRADED.inc();
    }
}

/// The Redis connection with its key prefix and health. One multiplexed connection carries
/// every replica-local caller's commands (pipelined, no checkout round trip); it reconnects on
/// its own after an outage, and follows a Sentinel or Cluster failover.
#[derive(Clone)]
pub struct RedisShared {
    conn: Conn,
    prefix: Arc<str>,
    health: Arc<RedisHealth>,
    policy: OnError,
}

impl RedisShared {
    /// Prepares the connection (made lazily, on first use) with bounded connect and response
    /// timeouts.
    pub fn new(topology: &Topology, prefix: &str, policy: OnError) -> Result<Self, RedisError> {
        let conn = Conn::open(topology, OP_TIMEOUT)?;
        Ok(RedisShared {
            conn,
            prefix: Arc::from(prefix),
            health: Arc::new(RedisHealth::default()),
            policy,
        })
    }

    /// Health shared with readiness.
    pub fn health(&self) -> Arc<RedisHealth> {
        self.health.clone()
    }

    /// The outage policy.
    pub fn policy(&self) -> OnError {
        self.policy
    }

    /// A key under the prefix with a Cluster hash tag: `<prefix>{<tag>}<rest>`.
    pub fn key(&self, tag: &str, rest: &str) -> String {
        // Braces inside the tag would change the hash slot; they cannot come from our ids,
        // but subjects are caller-visible strings, so neutralize them.
        let tag: String = tag
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        format!("{}{{{tag}}}{rest}", self.prefix)
    }

    /// Runs `op` on the shared connection within `OP_TIMEOUT`, recording latency and health.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let started = Instant::now();
        let res = tokio::time::timeout(OP_TIMEOUT, async {
            op(self.conn.clone())
                .await
                .map_err(|e| RedisError::Unavailable(e.to_string()))
        })
        .await
        .unwrap_or_else(|_| Err(RedisError::Unavailable("timed out".into())));
        metrics::REDIS_LATENCY.observe(started.elapsed().as_secs_f64());
        match &res {
            Ok(_) => self.health.set(true),
            Err(e) => {
                metrics::REDIS_ERRORS.inc();
                tracing::debug!(error = %e, "redis operation failed");
                self.health.set(false);
            }
        }
        res
    }

    /// A new pub/sub connection (not shared: its stream ends when that connection does).
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, RedisError> {
        self.conn
            .pubsub()
            .await
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }

    /// `PING`, for start-up and recovery probes.
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.run(|mut c| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map(|_| ())
        })
        .await
    }
}
