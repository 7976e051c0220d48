//! The control lease: which connection holds a session's driver seat, with a fencing epoch.
//! A trait so one process can keep it in memory and many can share it (Redis) unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::{ready, BoxFuture};

/// Who asks for, or holds, a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Connection holding the seat.
    pub connection_id: String,
    /// Its subject (a reconnect by the same subject may reclaim the seat).
    pub subject: String,
}

/// A granted lease; `epoch` is the fencing token and only grows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder.
    pub holder: Holder,
    /// Fencing token: stdin is written only while this is the current epoch.
    pub epoch: u64,
}

/// A lease store failure (e.g. Redis unreachable).
#[derive(Debug, thiserror::Error)]
#[error("lease store unavailable: {0}")]
pub struct LeaseError(pub String);

/// Storage of control leases, one per session.
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the seat if it is free or already held by `holder`'s subject; `None` if taken.
    fn acquire(
        &self,
        session: &str,
        holder: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>>;
    /// Extends a lease still held at `epoch`; `false` if it was lost (fenced out).
    fn renew(
        &self,
        session: &str,
        epoch: u64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, LeaseError>>;
    /// Hands the seat held at `epoch` to `to` with a new epoch (a holder's grant), in one step;
    /// `None` if `epoch` is no longer current.
    fn transfer(
        &self,
        session: &str,
        epoch: u64,
        to: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>>;
    /// Who holds the seat now, if anyone (a replica that has not heard of it yet asks).
    fn holder(&self, session: &str) -> BoxFuture<'static, Result<Option<Holder>, LeaseError>>;
    /// Gives the seat up if still held at `epoch`.
    fn release(&self, session: &str, epoch: u64) -> BoxFuture<'static, Result<bool, LeaseError>>;
    /// Takes the seat from whoever holds it (a moderator's revoke); `true` if someone did. The
    /// holder's replica finds out at its next renewal and drops the seat as revoked.
    fn revoke(&self, session: &str) -> BoxFuture<'static, Result<bool, LeaseError>>;
}

#[derive(Debug)]
struct Entry {
    lease: Lease,
    expires: Instant,
}

/// In-process leases, for a single replica.
#[derive(Debug, Default)]
pub struct LocalLeases {
    // Control changes only; never on the output path.
    entries: Mutex<HashMap<String, Entry>>,
    epoch: AtomicU64,
}

impl LocalLeases {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> R) -> R {
        let mut guard = match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

impl LeaseStore for LocalLeases {
    fn acquire(
        &self,
        session: &str,
        holder: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>> {
        let now = Instant::now();
        let result = self.with(|m| {
            if let Some(e) = m.get(session) {
                if e.expires > now && e.lease.holder.subject != holder.subject {
                    return None;
                }
            }
            let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            let lease = Lease {
                holder: holder.clone(),
                epoch,
            };
            m.insert(
                session.to_string(),
                Entry {
                    lease: lease.clone(),
                    expires: now + ttl,
                },
            );
            Some(lease)
        });
        Box::pin(ready(Ok(result)))
    }

    fn renew(
        &self,
        session: &str,
        epoch: u64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let now = Instant::now();
        let ok = self.with(|m| match m.get_mut(session) {
            Some(e) if e.lease.epoch == epoch && e.expires > now => {
                e.expires = now + ttl;
                true
            }
            _ => false,
        });
        Box::pin(ready(Ok(ok)))
    }

    fn transfer(
        &self,
        session: &str,
        epoch: u64,
        to: &Holder,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, LeaseError>> {
        let now = Instant::now();
        let result = self.with(|m| match m.get_mut(session) {
            Some(e) if e.lease.epoch == epoch && e.expires > now => {
                e.lease = Lease {
                    holder: to.clone(),
                    epoch: self.epoch.fetch_add(1, Ordering::AcqRel) + 1,
                };
                e.expires = now + ttl;
                Some(e.lease.clone())
            }
            _ => None,
        });
        Box::pin(ready(Ok(result)))
    }

    fn holder(&self, session: &str) -> BoxFuture<'static, Result<Option<Holder>, LeaseError>> {
        let now = Instant::now();
        let holder = self.with(|m| {
            m.get(session)
                .filter(|e| e.expires > now)
                .map(|e| e.lease.holder.clone())
        });
        Box::pin(ready(Ok(holder)))
    }

    fn release(&self, session: &str, epoch: u64) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let ok = self.with(|m| match m.get(session) {
            Some(e) if e.lease.epoch == epoch => {
                m.remove(session);
                true
            }
            _ => false,
        });
        Box::pin(ready(Ok(ok)))
    }

    fn revoke(&self, session: &str) -> BoxFuture<'static, Result<bool, LeaseError>> {
        let ok = self.with(|m| m.remove(session).is_some());
        Box::pin(ready(Ok(ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: &str, s: &str) -> Holder {
        Holder {
            connection_id: c.into(),
            subject: s.into(),
        }
    }

    #[tokio::test]
    async fn one_holder_and_fencing() {
        let s = LocalLeases::new();
        let ttl = Duration::from_secs(10);
        let a = s
            .acquire("s1", &h("c1", "alice"), ttl)
            .await
            .unwrap()
            .unwrap();
        assert!(s
            .acquire("s1", &h("c2", "bob"), ttl)
            .await
            .unwrap()
            .is_none());
        // Same subject reclaims with a newer epoch; the old epoch is fenced out.
        let a2 = s
            .acquire("s1", &h("c3", "alice"), ttl)
            .await
            .unwrap()
            .unwrap();
        assert!(a2.epoch > a.epoch);
        assert!(!s.renew("s1", a.epoch, ttl).await.unwrap());
        assert!(!s.release("s1", a.epoch).await.unwrap());
        // A grant hands the seat over with a newer epoch; the granting epoch is fenced out.
        assert!(s
            .transfer("s1", a.epoch, &h("c2", "bob"), ttl)
            .await
            .unwrap()
            .is_none());
        let b = s
            .transfer("s1", a2.epoch, &h("c2", "bob"), ttl)
            .await
            .unwrap()
            .unwrap();
        assert!(b.epoch > a2.epoch);
        assert_eq!(s.holder("s1").await.unwrap(), Some(h("c2", "bob")));
        assert_eq!(b.holder, h("c2", "bob"));
        assert!(!s.renew("s1", a2.epoch, ttl).await.unwrap());
        assert!(s.renew("s1", b.epoch, ttl).await.unwrap());
        assert!(s.revoke("s1").await.unwrap());
        assert!(!s.renew("s1", b.epoch, ttl).await.unwrap());
        assert!(!s.revoke("s1").await.unwrap());
        assert!(s
            .acquire("s1", &h("c2", "bob"), ttl)
            .await
            .unwrap()
            .is_some());
    }
}
