//! Attach tickets: short-lived, single-use secrets bound to session, role, subject and tenant.
//! Only a digest of each ticket is stored; redemption consumes it, a second one is a replay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use attachd_actors::protocol::Role;
use futures_util::future::{ready, BoxFuture};
use serde::{Deserialize, Serialize};

use crate::secret::{new_secret, sha256_hex};

/// What a ticket grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// Session it opens.
    pub session_id: String,
    /// Role granted.
    pub role: Role,
    /// Subject it was issued to.
    pub subject: String,
    /// That subject's display name, when its token has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tenant of that subject.
    pub tenant: String,
    /// Expiry, unix milliseconds.
    pub expires_at_ms: u64,
    /// Output offset the client has rendered and wants to resume from (SPEC §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<u64>,
    /// The subject had `attach:moderate`: observing a moderated session, it moderates.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
}

/// Why a ticket was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Unknown, malformed or expired.
    #[error("invalid or expired ticket")]
    Invalid,
    /// Already redeemed.
    #[error("ticket already used")]
    Replayed,
    /// The store cannot be reached.
    #[error("ticket store unavailable")]
    Unavailable,
    /// This process holds `MAX_LOCAL_TICKETS` outstanding tickets; room frees as they expire.
    #[error("too many outstanding tickets")]
    Full,
}

/// Prefix of every ticket secret.
pub const TICKET_PREFIX: &str = "atk_";

/// Storage of outstanding and redeemed tickets.
pub trait TicketStore: Send + Sync + 'static {
    /// Stores `claims` under the digest of a new secret and returns the secret.
    fn issue(
        &self,
        claims: TicketClaims,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<String, TicketError>>;
    /// Consumes a ticket; a second redemption is `Replayed`.
    fn redeem(&self, secret: &str) -> BoxFuture<'static, Result<TicketClaims, TicketError>>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether a string has the shape of a ticket (used to refuse junk early).
pub fn well_formed(secret: &str) -> bool {
    secret.len() == TICKET_PREFIX.len() + 43
        && secret.starts_with(TICKET_PREFIX)
        && secret[TICKET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

struct Entry {
    claims: TicketClaims,
    used: bool,
    forget_at: Instant,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    swept: Option<Instant>,
}

/// Tickets of one process.
#[derive(Default)]
pub struct LocalTickets {
    // Handshake path only.
    map: Mutex<Table>,
}

/// Most outstanding tickets one process keeps; beyond it issuance waits for expiry.
pub const MAX_LOCAL_TICKETS: usize = 100_000;

impl LocalTickets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tickets held (outstanding, or redeemed and not yet forgotten).
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |t| t.entries.len())
    }

    /// Whether no ticket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TicketStore for LocalTickets {
    fn issue(
        &self,
        claims: TicketClaims,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<String, TicketError>> {
        let secret = new_secret(TICKET_PREFIX);
        let now = Instant::now();
        let res = match self.map.lock() {
            Ok(mut t) => {
                // Expired entries are swept at most once a second, not on every issue.
                if t.swept
                    .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
                {
                    t.entries.retain(|_, e| e.forget_at > now);
                    t.swept = Some(now);
                }
                let m = &mut t.entries;
                if m.len() >= MAX_LOCAL_TICKETS {
                    Err(TicketError::Full)
                } else {
                    // Remember a redeemed ticket as long as it could otherwise still be valid.
                    m.insert(
                        sha256_hex(&secret),
                        Entry {
                            claims,
                            used: false,
                            forget_at: now + ttl,
                        },
                    );
                    Ok(secret)
                }
            }
            Err(_) => Err(TicketError::Unavailable),
        };
        Box::pin(ready(res))
    }

    fn redeem(&self, secret: &str) -> BoxFuture<'static, Result<TicketClaims, TicketError>> {
        let res = if !well_formed(secret) {
            Err(TicketError::Invalid)
        } else {
            match self.map.lock() {
                Ok(mut t) => match t.entries.get_mut(&sha256_hex(secret)) {
                    None => Err(TicketError::Invalid),
                    Some(e) if e.used => Err(TicketError::Replayed),
                    Some(e) => {
                        e.used = true;
                        if e.claims.expires_at_ms <= now_ms() {
                            Err(TicketError::Invalid)
                        } else {
                            Ok(e.claims.clone())
                        }
                    }
                },
                Err(_) => Err(TicketError::Unavailable),
            }
        };
        Box::pin(ready(res))
    }
}

/// Tickets shared by every replica through Redis (single use across all of them), with the
/// `redis.on_error` fallback to this process's store.
pub struct RedisTickets {
    redis: attachd_actors::redis::RedisShared,
    /// Used only while Redis is down (and the policy allows it).
    local: Arc<LocalTickets>,
}

impl RedisTickets {
    /// Tickets over the shared Redis connection.
    pub fn new(redis: attachd_actors::redis::RedisShared) -> Self {
        RedisTickets {
            redis,
            local: Arc::new(LocalTickets::new()),
        }
    }

    fn keys(&self, secret: &str) -> (String, String) {
        let tag = format!("t:{}", sha256_hex(secret));
        (
            self.redis.key(&tag, ":claims"),
            self.redis.key(&tag, ":used"),
        )
    }
}

impl TicketStore for RedisTickets {
    fn issue(
        &self,
        claims: TicketClaims,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<String, TicketError>> {
        let secret = new_secret(TICKET_PREFIX);
        let (key, _) = self.keys(&secret);
        let json = match serde_json::to_string(&claims) {
            Ok(j) => j,
            Err(_) => return Box::pin(ready(Err(TicketError::Unavailable))),
        };
        let redis = self.redis.clone();
        // Issued locally only if Redis fails: the fallback table is for outages.
        let local = self.local.clone();
        let may_degrade = self.redis.policy() != attachd_actors::redis::OnError::Deny;
        let health = self.redis.health();
        Box::pin(async move {
            let s = secret.clone();
            let r = redis
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(json)
                        .arg("PX")
                        .arg(ttl.as_millis() as u64)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
            match r {
                Ok(()) => Ok(s),
                Err(_) if may_degrade => {
                    health.degraded();
                    local.issue(claims, ttl).await
                }
                Err(_) => Err(TicketError::Unavailable),
            }
        })
    }

    fn redeem(&self, secret: &str) -> BoxFuture<'static, Result<TicketClaims, TicketError>> {
        if !well_formed(secret) {
            return Box::pin(ready(Err(TicketError::Invalid)));
        }
        let (claims_key, used_key) = self.keys(secret);
        let redis = self.redis.clone();
        let local = self.local.redeem(secret);
        let degraded = self.degraded_allowed();
        let health = self.redis.health();
        Box::pin(async move {
            let r = redis
                .run(|mut c| async move {
                    crate::tickets::redeem_script()
                        .key(claims_key)
                        .key(used_key)
                        .invoke_async::<Vec<redis::Value>>(&mut c)
                        .await
                })
                .await;
            match r {
                Ok(v) => match v.first() {
                    Some(redis::Value::Int(1)) => {
                        let claims: TicketClaims = match v.get(1) {
                            Some(redis::Value::BulkString(b)) => {
                                serde_json::from_slice(b).map_err(|_| TicketError::Invalid)?
                            }
                            _ => return Err(TicketError::Invalid),
                        };
                        if claims.expires_at_ms <= now_ms() {
                            return Err(TicketError::Invalid);
                        }
                        Ok(claims)
                    }
                    Some(redis::Value::Int(2)) => Err(TicketError::Replayed),
                    // Unknown in Redis: it may have been issued here during an outage.
                    _ => match local.await {
                        Err(TicketError::Invalid) | Err(TicketError::Unavailable) => {
                            Err(TicketError::Invalid)
                        }
                        other => other,
                    },
                },
                Err(_) if degraded => {
                    health.degraded();
                    local.await
                }
                Err(_) => Err(TicketError::Unavailable),
            }
        })
    }
}

impl RedisTickets {
    fn degraded_allowed(&self) -> bool {
        self.redis.policy() != attachd_actors::redis::OnError::Deny
    }
}

/// The redemption script (shared with the actors crate's script set).
pub fn redeem_script() -> &'static redis::Script {
    &attachd_actors::redis::scripts::TICKET_REDEEM
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(ttl_ms: u64) -> TicketClaims {
        TicketClaims {
            session_id: "s".into(),
            role: Role::Driver,
            subject: "a".into(),
            name: None,
            tenant: "t".into(),
            expires_at_ms: now_ms() + ttl_ms,
            resume_from: None,
            moderator: false,
        }
    }

    #[tokio::test]
    async fn single_use() {
        let s = LocalTickets::new();
        let t = s
            .issue(claims(30_000), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(well_formed(&t));
        assert_eq!(s.redeem(&t).await.unwrap().subject, "a");
        assert_eq!(s.redeem(&t).await, Err(TicketError::Replayed));
        assert_eq!(s.redeem("atk_nope").await, Err(TicketError::Invalid));
    }

    #[tokio::test]
    async fn expired_is_invalid() {
        let s = LocalTickets::new();
        let t = s.issue(claims(0), Duration::from_secs(30)).await.unwrap();
        assert_eq!(s.redeem(&t).await, Err(TicketError::Invalid));
    }

    /// A full table says so (429 `rate_limited`), not 503 `redis_unavailable`: there may be
    /// no Redis at all.
    #[tokio::test]
    async fn a_full_local_table_is_full_not_redis_unavailable() {
        let s = LocalTickets::new();
        for _ in 0..MAX_LOCAL_TICKETS {
            s.issue(claims(30_000), Duration::from_secs(30))
                .await
                .unwrap();
        }
        let e = s
            .issue(claims(30_000), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(e, TicketError::Full);
        let api = crate::error::ApiError::from(e);
        assert_eq!(api.code(), "rate_limited");
        assert_eq!(api.status(), actix_web::http::StatusCode::TOO_MANY_REQUESTS);
    }

    /// A real redis-server on a free loopback port, stopped on drop.
    struct RedisServer(std::process::Child, u16);

    impl RedisServer {
        fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server is needed for this test: apt-get install redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            RedisServer(child, port)
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// With Redis up, tickets live in Redis only: the fallback table is for outages (it filled
    /// with every ticket, so above ~3,300 tickets/s it was full before Redis ever went down).
    #[tokio::test]
    async fn redis_tickets_leave_the_fallback_table_empty_while_redis_is_up() {
        let server = RedisServer::start();
        let redis = attachd_actors::redis::RedisShared::new(
            &attachd_actors::redis::Topology::Single(format!("redis://127.0.0.1:{}/", server.1)),
            "test:",
            attachd_actors::redis::OnError::Local,
        )
        .unwrap();
        let store = RedisTickets::new(redis);
        let t = store
            .issue(claims(30_000), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            store.local.is_empty(),
            "a ticket issued in Redis filled the local table"
        );
        assert_eq!(store.redeem(&t).await.unwrap().subject, "a");
        assert_eq!(store.redeem(&t).await, Err(TicketError::Replayed));
        assert!(store.local.is_empty());
    }
}
