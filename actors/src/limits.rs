//! Admission limits of one process: per-IP attempt windows and concurrency slots.
//! The shared (Redis) implementation plugs in behind the same `Limiter` trait.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{ready, BoxFuture};

/// Outcome of a per-IP attempt check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead.
    Allowed,
    /// Over the window; retry after this many seconds.
    Limited {
        /// Seconds until the oldest attempt leaves the window.
        retry_after_secs: u64,
    },
}

/// Which concurrency limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDenied {
    /// `limits.subject_connections`.
    Subject,
    /// `limits.session_participants`.
    Session,
}

/// A limiter backend failure (e.g. Redis unreachable).
#[derive(Debug, thiserror::Error)]
#[error("limiter unavailable: {0}")]
pub struct LimitError(pub String);

/// The identity of one held connection slot. Its strings are shared: the connection's guard
/// and the limiter's set of held slots hold one copy between them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlotKey {
    /// Authenticated subject.
    pub subject: Arc<str>,
    /// Session attached to.
    pub session: Arc<str>,
    /// The connection.
    pub connection_id: Arc<str>,
}

/// Admission decisions: attempt windows and concurrency slots.
pub trait Limiter: Send + Sync + 'static {
    /// Records an attempt from `ip` and says whether it is within `limit` per `window`.
    fn attempt(
        &self,
        ip: &str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'static, Result<Attempt, LimitError>>;
    /// Takes a subject slot and a session slot together, or neither.
    fn acquire(
        &self,
        key: &SlotKey,
        subject_max: u32,
        session_max: u32,
    ) -> BoxFuture<'static, Result<Result<(), SlotDenied>, LimitError>>;
    /// Frees both slots of `key`. Idempotent. (A shared store keeps the slots it holds alive by
    /// itself, and expires those of a replica that stopped.)
    fn release(&self, key: &SlotKey) -> BoxFuture<'static, Result<(), LimitError>>;
}

#[derive(Default)]
struct LocalState {
    windows: HashMap<String, VecDeque<Instant>>,
    subjects: HashMap<Arc<str>, u32>,
    sessions: HashMap<Arc<str>, u32>,
    held: std::collections::HashSet<SlotKey>,
    last_sweep: Option<Instant>,
}

/// Limits kept in this process's memory (the embedded default, and the Redis fallback).
#[derive(Default)]
pub struct LocalLimiter {
    // Handshake path only, never the output path.
    state: Mutex<LocalState>,
}

impl LocalLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut LocalState) -> R) -> R {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// Synchronous attempt check (also used by the Redis fallback).
    pub fn attempt_now(&self, ip: &str, limit: u32, window: Duration) -> Attempt {
        let now = Instant::now();
        self.with(|st| {
            // Sweep idle windows now and then so the map stays bounded by active clients.
            if st.last_sweep.is_none_or(|t| now.duration_since(t) > window) {
                st.windows
                    .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
                st.last_sweep = Some(now);
            }
            let q = st.windows.entry(ip.to_string()).or_default();
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
            // Refused attempts count too, but the log never grows past `limit` entries.
            let allowed = (q.len() as u32) < limit;
            if q.len() as u32 >= limit.max(1) {
                q.pop_front();
            }
            q.push_back(now);
            if allowed {
                Attempt::Allowed
            } else {
                let oldest = q.front().copied().unwrap_or(now);
                let wait = window.saturating_sub(now.duration_since(oldest));
                Attempt::Limited {
                    retry_after_secs: wait.as_secs().max(1),
                }
            }
        })
    }

    /// Synchronous slot acquisition.
    pub fn acquire_now(
        &self,
        key: &SlotKey,
        subject_max: u32,
        session_max: u32,
    ) -> Result<(), SlotDenied> {
        self.with(|st| {
            if st.held.contains(key) {
                return Ok(());
            }
            let subj = st.subjects.get(&key.subject).copied().unwrap_or(0);
            if subj >= subject_max {
                return Err(SlotDenied::Subject);
            }
            let sess = st.sessions.get(&key.session).copied().unwrap_or(0);
            if sess >= session_max {
                return Err(SlotDenied::Session);
            }
            *st.subjects.entry(key.subject.clone()).or_default() += 1;
            *st.sessions.entry(key.session.clone()).or_default() += 1;
            st.held.insert(key.clone());
            Ok(())
        })
    }

    /// Synchronous release.
    pub fn release_now(&self, key: &SlotKey) {
        self.with(|st| {
            if !st.held.remove(key) {
                return;
            }
            for (map, k) in [
                (&mut st.subjects, &key.subject),
                (&mut st.sessions, &key.session),
            ] {
                if let Some(n) = map.get_mut(k) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        map.remove(k);
                    }
                }
            }
        })
    }

    /// Connections currently held by `subject`.
    pub fn subject_count(&self, subject: &str) -> u32 {
        self.with(|st| st.subjects.get(subject).copied().unwrap_or(0))
    }
}

impl Limiter for LocalLimiter {
    fn attempt(
        &self,
        ip: &str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'static, Result<Attempt, LimitError>> {
        Box::pin(ready(Ok(self.attempt_now(ip, limit, window))))
    }

    fn acquire(
        &self,
        key: &SlotKey,
        subject_max: u32,
        session_max: u32,
    ) -> BoxFuture<'static, Result<Result<(), SlotDenied>, LimitError>> {
        Box::pin(ready(Ok(self.acquire_now(key, subject_max, session_max))))
    }

    fn release(&self, key: &SlotKey) -> BoxFuture<'static, Result<(), LimitError>> {
        self.release_now(key);
        Box::pin(ready(Ok(())))
    }
}

/// Owns a connection's slots; dropping it frees them, whatever way the connection ended.
pub struct SlotGuard {
    limiter: Arc<dyn Limiter>,
    key: Option<SlotKey>,
}

impl SlotGuard {
    /// Wraps slots already acquired for `key`.
    pub fn new(limiter: Arc<dyn Limiter>, key: SlotKey) -> Self {
        SlotGuard {
            limiter,
            key: Some(key),
        }
    }

    /// The held key.
    pub fn key(&self) -> Option<&SlotKey> {
        self.key.as_ref()
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let fut = self.limiter.release(&key);
            // Local release already happened synchronously; a shared store finishes in the
            // background (bounded: one future per closing connection, with the store's timeout).
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::warn!(error = %e, "slot release failed; it will expire");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_counts_refusals() {
        let l = LocalLimiter::new();
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.attempt_now("1.2.3.4", 3, w), Attempt::Allowed);
        }
        assert!(matches!(
            l.attempt_now("1.2.3.4", 3, w),
            Attempt::Limited { .. }
        ));
        assert_eq!(l.attempt_now("5.6.7.8", 3, w), Attempt::Allowed);
    }

    #[test]
    fn slots_are_all_or_nothing_and_idempotent() {
        let l = LocalLimiter::new();
        let k = |c: &str, s: &str| SlotKey {
            subject: "alice".into(),
            session: s.into(),
            connection_id: c.into(),
        };
        assert_eq!(l.acquire_now(&k("c1", "s1"), 2, 1), Ok(()));
        assert_eq!(
            l.acquire_now(&k("c2", "s1"), 2, 1),
            Err(SlotDenied::Session)
        );
        assert_eq!(l.subject_count("alice"), 1);
        assert_eq!(l.acquire_now(&k("c2", "s2"), 2, 1), Ok(()));
        assert_eq!(
            l.acquire_now(&k("c3", "s3"), 2, 1),
            Err(SlotDenied::Subject)
        );
        l.release_now(&k("c1", "s1"));
        l.release_now(&k("c1", "s1"));
        assert_eq!(l.subject_count("alice"), 1);
        assert_eq!(l.acquire_now(&k("c3", "s1"), 2, 1), Ok(()));
    }
}
