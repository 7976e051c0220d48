//! The rate-limit actor: per-IP sliding windows and concurrency slots decided in Redis, with
//! the `redis.on_error` fallback (per-replica limits, refuse, or admit) while Redis is down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::BoxFuture;

use super::refresh::{self, HeldSlots, REFRESH_FLUSH};
use super::scripts;
use super::{OnError, RedisShared};
use crate::limits::{Attempt, LimitError, Limiter, LocalLimiter, SlotDenied, SlotKey};
use crate::metrics;

/// Mailbox of the limiter: handshakes wait here when it is full (backpressure, not loss).
pub const LIMITER_MAILBOX: usize = 4096;

/// Owns the shared limits of this replica.
pub struct RateLimiter {
    redis: RedisShared,
    local: Arc<LocalLimiter>,
    slot_ttl: Duration,
    /// The slots this replica holds (taken here and not yet released). The replica keeps them
    /// alive itself, a third of `slot_ttl` apart; a replica that stops lets them expire.
    held: HeldSlots,
    /// When the last refresh pass over the held slots started.
    last_refresh: Instant,
    /// A refresh pass is on its way (the next one waits for it).
    flushing: bool,
}

impl RateLimiter {
    /// A limiter whose slots expire after `slot_ttl` unless this replica refreshes them.
    pub fn new(redis: RedisShared, slot_ttl: Duration) -> Self {
        RateLimiter {
            redis,
            local: Arc::new(LocalLimiter::new()),
            slot_ttl,
            held: HeldSlots::default(),
            last_refresh: Instant::now(),
            flushing: false,
        }
    }

    /// Refreshes every held slot once a third of `slot_ttl` has passed since the last pass:
    /// one script call per slot key, instead of a message from every connection's heartbeat.
    /// A pass still on its way postpones the next (checked again each `REFRESH_FLUSH`).
    fn refresh_held(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.last_refresh.elapsed() < self.slot_ttl / 3 {
            return;
        }
        self.last_refresh = Instant::now();
        if self.held.is_empty() {
            return;
        }
        self.flushing = true;
        let calls = self
            .held
            .calls(|kind, tag| refresh::slot_key(&self.redis, kind, tag));
        let redis = self.redis.clone();
        let ttl = self.slot_ttl;
        ctx.spawn(
            async move { (calls.len(), refresh::send(&redis, calls, ttl).await) }
                .into_actor(self)
                .map(|(calls, failed), me, _| {
                    me.flushing = false;
                    if failed > 0 {
                        tracing::warn!(
                            failed,
                            calls,
                            "slot refresh failed; those slots expire unless refreshed in time"
                        );
                    }
                }),
        );
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(LIMITER_MAILBOX);
        ctx.run_interval(REFRESH_FLUSH, Self::refresh_held);
        // Probe so readiness and the policy notice an outage (and recovery) without traffic.
        ctx.run_interval(Duration::from_secs(1), |me, ctx| {
            let redis = me.redis.clone();
            ctx.spawn(
                async move {
                    let _ = redis.ping().await;
                }
                .into_actor(me),
            );
        });
    }
}

fn decided(limit: &str, allowed: bool, source: &str) {
    metrics::RATE_LIMIT_DECISIONS
        .with_label_values(&[limit, if allowed { "allow" } else { "deny" }, source])
        .inc();
}

/// Check one attempt from an IP.
#[derive(Message)]
#[rtype(result = "Result<Attempt, LimitError>")]
pub struct CheckAttempt {
    ip: String,
    limit: u32,
    window: Duration,
}

impl Handler<CheckAttempt> for RateLimiter {
    type Result = ResponseFuture<Result<Attempt, LimitError>>;

    fn handle(&mut self, m: CheckAttempt, _: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        let local = self.local.clone();
        Box::pin(async move {
            let key = redis.key(&format!("ip:{}", m.ip), ":attempts");
            let nonce: u64 = rand_nonce();
            let res = redis
                .run(|mut c| async move {
                    scripts::ATTEMPT
                        .key(key)
                        .arg(m.limit)
                        .arg(m.window.as_micros() as u64)
                        .arg(nonce)
                        .invoke_async::<(i64, i64)>(&mut c)
                        .await
                })
                .await;
            match res {
                Ok((1, _)) => {
                    decided("ip_attempts", true, "redis");
                    Ok(Attempt::Allowed)
                }
                Ok((_, retry_us)) => {
                    decided("ip_attempts", false, "redis");
                    Ok(Attempt::Limited {
                        retry_after_secs: (retry_us.max(0) as u64).div_ceil(1_000_000).max(1),
                    })
                }
                Err(e) => match redis.policy() {
                    OnError::Local => {
                        redis.health().degraded();
                        let a = local.attempt_now(&m.ip, m.limit, m.window);
                        decided("ip_attempts", a == Attempt::Allowed, "local");
                        Ok(a)
                    }
                    OnError::Allow => {
                        redis.health().degraded();
                        decided("ip_attempts", true, "allow");
                        Ok(Attempt::Allowed)
                    }
                    OnError::Deny => Err(LimitError(e.to_string())),
                },
            }
        })
    }
}

fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let pid = u64::from(std::process::id());
    (pid << 40) ^ N.fetch_add(1, Ordering::Relaxed)
}

/// Take a subject slot and a session slot.
#[derive(Message)]
#[rtype(result = "Result<Result<(), SlotDenied>, LimitError>")]
pub struct AcquireSlots {
    key: SlotKey,
    subject_max: u32,
    session_max: u32,
}

impl RateLimiter {
    fn slot_keys(redis: &RedisShared, key: &SlotKey) -> (String, String) {
        (
            refresh::slot_key(redis, "subj", &key.subject),
            refresh::slot_key(redis, "sess", &key.session),
        )
    }
}

impl Handler<AcquireSlots> for RateLimiter {
    type Result = ResponseActFuture<Self, Result<Result<(), SlotDenied>, LimitError>>;

    fn handle(&mut self, m: AcquireSlots, _: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        let local = self.local.clone();
        let ttl = self.slot_ttl.as_millis() as u64;
        // Held from now: a release that arrives before the outcome takes it out again, and a
        // refused or failed acquire takes it out when it ends.
        let key = m.key.clone();
        self.held.insert(&key);
        let decide = async move {
            let (subj_key, sess_key) = Self::slot_keys(&redis, &m.key);
            let member = m.key.connection_id.clone();
            // Two single-slot scripts (the keys live in different hash slots); the subject
            // slot is given back if the session is full.
            let (sk, mem) = (subj_key.clone(), member.clone());
            let subj = redis
                .run(|mut c| async move {
                    scripts::SLOT_ACQUIRE
                        .key(sk)
                        .arg(m.subject_max)
                        .arg(&*mem)
                        .arg(ttl)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await;
            let outcome = match subj {
                Ok(0) => Ok(Err(SlotDenied::Subject)),
                Ok(_) => {
                    let mem = member.clone();
                    let sess = redis
                        .run(|mut c| async move {
                            scripts::SLOT_ACQUIRE
                                .key(sess_key)
                                .arg(m.session_max)
                                .arg(&*mem)
                                .arg(ttl)
                                .invoke_async::<i64>(&mut c)
                                .await
                        })
                        .await;
                    match sess {
                        Ok(0) => {
                            let mem = member.clone();
                            let _ = redis
                                .run(|mut c| async move {
                                    redis::cmd("ZREM")
                                        .arg(subj_key)
                                        .arg(&*mem)
                                        .query_async::<i64>(&mut c)
                                        .await
                                })
                                .await;
                            Ok(Err(SlotDenied::Session))
                        }
                        Ok(_) => Ok(Ok(())),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(r) => {
                    decided("connections", r.is_ok(), "redis");
                    Ok(r)
                }
                Err(e) => match redis.policy() {
                    OnError::Local => {
                        redis.health().degraded();
                        let r = local.acquire_now(&m.key, m.subject_max, m.session_max);
                        decided("connections", r.is_ok(), "local");
                        Ok(r)
                    }
                    OnError::Allow => {
                        redis.health().degraded();
                        decided("connections", true, "allow");
                        Ok(Ok(()))
                    }
                    OnError::Deny => Err(LimitError(e.to_string())),
                },
            }
        };
        Box::pin(decide.into_actor(self).map(move |res, me, _| {
            if !matches!(res, Ok(Ok(()))) {
                me.held.remove(&key);
            }
            res
        }))
    }
}

/// Free both slots of a connection.
#[derive(Message)]
#[rtype(result = "Result<(), LimitError>")]
pub struct ReleaseSlots {
    key: SlotKey,
}

impl Handler<ReleaseSlots> for RateLimiter {
    type Result = ResponseFuture<Result<(), LimitError>>;

    fn handle(&mut self, m: ReleaseSlots, _: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        // A slot taken during an outage lives in the local fallback.
        self.local.release_now(&m.key);
        self.held.remove(&m.key);
        Box::pin(async move {
            let (a, b) = Self::slot_keys(&redis, &m.key);
            let member = m.key.connection_id.clone();
            let mem2 = member.clone();
            let r1 = redis
                .run(|mut c| async move {
                    redis::cmd("ZREM")
                        .arg(a)
                        .arg(&*member)
                        .query_async::<i64>(&mut c)
                        .await
                })
                .await;
            let r2 = redis
                .run(|mut c| async move {
                    redis::cmd("ZREM")
                        .arg(b)
                        .arg(&*mem2)
                        .query_async::<i64>(&mut c)
                        .await
                })
                .await;
            // Unreleased slots expire with their TTL.
            r1.and(r2)
                .map(|_| ())
                .map_err(|e| LimitError(e.to_string()))
        })
    }
}

/// The `Limiter` the handshake uses, backed by the rate-limit actor.
#[derive(Clone)]
pub struct RedisLimiter {
    addr: Addr<RateLimiter>,
}

impl RedisLimiter {
    /// Starts the actor on the current arbiter.
    pub fn start(redis: RedisShared, slot_ttl: Duration) -> Self {
        RedisLimiter {
            addr: RateLimiter::new(redis, slot_ttl).start(),
        }
    }
}

fn mailbox<T>(r: Result<Result<T, LimitError>, MailboxError>) -> Result<T, LimitError> {
    r.unwrap_or_else(|e| Err(LimitError(format!("limiter stopped: {e}"))))
}

impl Limiter for RedisLimiter {
    fn attempt(
        &self,
        ip: &str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'static, Result<Attempt, LimitError>> {
        let fut = self.addr.send(CheckAttempt {
            ip: ip.to_string(),
            limit,
            window,
        });
        Box::pin(async move { mailbox(fut.await) })
    }

    fn acquire(
        &self,
        key: &SlotKey,
        subject_max: u32,
        session_max: u32,
    ) -> BoxFuture<'static, Result<Result<(), SlotDenied>, LimitError>> {
        let fut = self.addr.send(AcquireSlots {
            key: key.clone(),
            subject_max,
            session_max,
        });
        Box::pin(async move { mailbox(fut.await) })
    }

    fn release(&self, key: &SlotKey) -> BoxFuture<'static, Result<(), LimitError>> {
        let fut = self.addr.send(ReleaseSlots { key: key.clone() });
        Box::pin(async move { mailbox(fut.await) })
    }
}
