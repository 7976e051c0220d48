//! Control leases in Redis: SET-like acquisition with a monotonically increasing epoch as the
//! fencing token, compare-and-renew and compare-and-release scripts, per-process fallback.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::scripts;
use super::{OnError, RedisShared};
use crate::lease::{Holder, Lease, LeaseError, LeaseStore, LocalLeases};

/// Leases shared by every replica.
pub struct RedisLeases {
    redis: RedisShared,
    local: Arc<LocalLeases>,
}

impl RedisLeases {
    /// Leases over a shared pool.
    pub fn new(redis: RedisShared) -> Self {
        RedisLeases {
            redis,
            local: Arc::new(LocalLeases::new()),
        }
    }

    fn keys(&self, session: &str) -> (String, String) {
        let tag = format!("lease:{session}");
        (self.redis.key(&tag, ""), self.redis.key(&tag, ":epoch"))
    }
}

impl LeaseStore for RedisLeases {
    fn acquire(
        &self,
        session: &str,
        holder: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>> {
        let (k, e) = self.keys(session);
        let redis = self.redis.clone();
        let holder = holder.clone();
        let local = self.local.clone();
        let policy = self.redis.policy();
        let session = session.to_string();
        Box::pin(async move {
            let (conn, subj) = (holder.connection_id.clone(), holder.subject.clone());
            let r = redis
                .run(|mut c| async move {
                    scripts::LEASE_ACQUIRE
                        .key(k)
                        .key(e)
                        .arg(conn)
                        .arg(subj)
                        .arg(ttl.as_millis() as u64)
                        .invoke_async::<u64>(&mut c)
                        .await
                })
                .await;
            match r {
                Ok(0) => Ok(None),
                Ok(epoch) => Ok(Some(Lease { holder, epoch })),
                Err(err) => match policy {
                    OnError::Deny => Err(LeaseError(err.to_string())),
                    _ => {
                        redis.health().degraded();
                        local.acquire(&session, &holder, ttl).await
                    }
                },
            }
        })
    }

    fn renew(
        &self,
        session: &str,
        epoch: u64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let (k, _) = self.keys(session);
        let redis = self.redis.clone();
        let local_fut = self.local.renew(session, epoch, ttl);
        let this_policy = self.redis.policy();
        Box::pin(async move {
            let r = redis
                .run(|mut c| async move {
                    scripts::LEASE_RENEW
                        .key(k)
                        .arg(epoch)
                        .arg(ttl.as_millis() as u64)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await;
            match r {
                Ok(n) => Ok(n == 1 || local_fut.await.unwrap_or(false)),
                Err(e) if this_policy == OnError::Deny => Err(LeaseError(e.to_string())),
                // Cannot confirm: keep the seat locally rather than flap; the epoch check
                // fences it once Redis answers again.
                Err(_) => Ok(true),
            }
        })
    }

    fn release(&self, session: &str, epoch: u64) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let (k, _) = self.keys(session);
        let redis = self.redis.clone();
        let local_fut = self.local.release(session, epoch);
        Box::pin(async move {
            let _ = local_fut.await;
            redis
                .run(|mut c| async move {
                    scripts::LEASE_RELEASE
                        .key(k)
                        .arg(epoch)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await
                .map(|n| n == 1)
                .map_err(|e| LeaseError(e.to_string()))
        })
    }
}
