//! Control leases in Redis: acquisition with a monotonically increasing epoch as the fencing
//! token, compare-and-renew and compare-and-release scripts. No fallback: without Redis nobody
//! can prove the seat is free, so it is not handed out (a held seat lasts its lease lifetime).

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;

use super::scripts;
use super::RedisShared;
use crate::lease::{Holder, Lease, LeaseError, LeaseStore};

/// Leases shared by every replica.
pub struct RedisLeases {
    redis: RedisShared,
}

impl RedisLeases {
    /// Leases over the shared Redis connection.
    pub fn new(redis: RedisShared) -> Self {
        RedisLeases { redis }
    }

    fn keys(&self, session: &str) -> (String, String) {
        let tag = format!("lease:{session}");
        (self.redis.key(&tag, ""), self.redis.key(&tag, ":epoch"))
    }

    /// Runs a script that seats `holder` (KEYS lease hash and epoch counter, then `args`) and
    /// answers the new epoch, 0 when refused.
    fn seat_script(
        &self,
        script: &'static Script,
        session: &str,
        args: Vec<String>,
        holder: &Holder,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>> {
        let (k, e) = self.keys(session);
        let redis = self.redis.clone();
        let holder = holder.clone();
        Box::pin(async move {
            let epoch = redis
                .run(|mut c| async move {
                    let mut call = script.prepare_invoke();
                    call.key(k).key(e);
                    for a in args {
                        call.arg(a);
                    }
                    call.invoke_async::<u64>(&mut c).await
                })
                .await
                .map_err(|e| LeaseError(e.to_string()))?;
            Ok((epoch != 0).then_some(Lease { holder, epoch }))
        })
    }
}

impl LeaseStore for RedisLeases {
    fn acquire(
        &self,
        session: &str,
        holder: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>> {
        let args = vec![
            holder.connection_id.clone(),
            holder.subject.clone(),
            ttl.as_millis().to_string(),
        ];
        self.seat_script(&scripts::LEASE_ACQUIRE, session, args, holder)
    }

    fn renew(
        &self,
        session: &str,
        epoch: u64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let (k, _) = self.keys(session);
        let redis = self.redis.clone();
        Box::pin(async move {
            redis
                .run(|mut c| async move {
                    scripts::LEASE_RENEW
                        .key(k)
                        .arg(epoch)
                        .arg(ttl.as_millis() as u64)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await
                .map(|n| n == 1)
                .map_err(|e| LeaseError(e.to_string()))
        })
    }

    fn transfer(
        &self,
        session: &str,
        epoch: u64,
        to: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>> {
        let args = vec![
            epoch.to_string(),
            to.connection_id.clone(),
            to.subject.clone(),
            ttl.as_millis().to_string(),
        ];
        self.seat_script(&scripts::LEASE_TRANSFER, session, args, to)
    }

    fn holder(&self, session: &str) -> BoxFuture<'static, Result<Option<Holder>, LeaseError>> {
        let (k, _) = self.keys(session);
        let redis = self.redis.clone();
        Box::pin(async move {
            let (conn, subject) = redis
                .run(|mut c| async move {
                    redis::cmd("HMGET")
                        .arg(k)
                        .arg("conn")
                        .arg("subject")
                        .query_async::<(Option<String>, Option<String>)>(&mut c)
                        .await
                })
                .await
                .map_err(|e| LeaseError(e.to_string()))?;
            Ok(conn.zip(subject).map(|(connection_id, subject)| Holder {
                connection_id,
                subject,
            }))
        })
    }

    fn release(&self, session: &str, epoch: u64) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let (k, _) = self.keys(session);
        let redis = self.redis.clone();
        Box::pin(async move {
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

    fn revoke(&self, session: &str) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let (k, _) = self.keys(session);
        let redis = self.redis.clone();
        Box::pin(async move {
            redis
                .run(|mut c| async move { redis::cmd("DEL").arg(k).query_async::<i64>(&mut c).await })
                .await
                .map(|n| n == 1)
                .map_err(|e| LeaseError(e.to_string()))
        })
    }
}
