//! Requests for the driver seat: who asked the holder for control and until when, as pure
//! code (one per requester, a small cap per session, each until its deadline); unit-tested.

use std::time::{Duration, Instant};

use crate::protocol::HolderView;

/// Most requests pending at once per session.
pub const MAX_PENDING: usize = 8;

/// A request waiting for the holder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Who asks.
    pub from: HolderView,
    /// When it expires.
    pub until: Instant,
}

/// Why a request is not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The requester already has one pending.
    AlreadyPending,
    /// `MAX_PENDING` requests are pending.
    Full,
}

/// The pending requests of one session, oldest first.
#[derive(Debug, Default)]
pub struct Requests {
    pending: Vec<Pending>,
}

impl Requests {
    /// Queues a request from `from` until `now + ttl`.
    pub fn add(
        &mut self,
        from: HolderView,
        now: Instant,
        ttl: Duration,
    ) -> Result<Instant, Refused> {
        if self.contains(&from.connection_id) {
            return Err(Refused::AlreadyPending);
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(Refused::Full);
        }
        let until = now + ttl;
        self.pending.push(Pending { from, until });
        Ok(until)
    }

    /// Whether `conn` has a request pending.
    pub fn contains(&self, conn: &str) -> bool {
        self.pending.iter().any(|p| p.from.connection_id == conn)
    }

    /// Removes and returns `conn`'s request (answered or withdrawn).
    pub fn take(&mut self, conn: &str) -> Option<Pending> {
        let i = self
            .pending
            .iter()
            .position(|p| p.from.connection_id == conn)?;
        Some(self.pending.remove(i))
    }

    /// Removes and returns the requests expired at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Pending> {
        let (gone, kept) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.until <= now);
        self.pending = kept;
        gone
    }

    /// Forgets every request (control changed hands: they were addressed to the old holder).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST_TTL: Duration = Duration::from_secs(30);

    fn who(conn: &str) -> HolderView {
        HolderView {
            connection_id: conn.into(),
            subject: format!("s-{conn}"),
            name: None,
        }
    }

    #[test]
    fn one_pending_request_per_requester() {
        let t0 = Instant::now();
        let mut r = Requests::default();
        assert_eq!(r.add(who("c2"), t0, REQUEST_TTL), Ok(t0 + REQUEST_TTL));
        assert_eq!(
            r.add(who("c2"), t0, REQUEST_TTL),
            Err(Refused::AlreadyPending)
        );
        assert!(r.contains("c2"));
        assert_eq!(r.take("c2").map(|p| p.from), Some(who("c2")));
        assert_eq!(r.take("c2"), None, "answered once");
        assert!(
            r.add(who("c2"), t0, REQUEST_TTL).is_ok(),
            "asks again after an answer"
        );
    }

    #[test]
    fn the_session_holds_at_most_max_pending() {
        let t0 = Instant::now();
        let mut r = Requests::default();
        for i in 0..MAX_PENDING {
            r.add(who(&format!("c{i}")), t0, REQUEST_TTL).unwrap();
        }
        assert_eq!(r.add(who("late"), t0, REQUEST_TTL), Err(Refused::Full));
        assert_eq!(r.len(), MAX_PENDING);
    }

    #[test]
    fn requests_expire_after_their_ttl() {
        let t0 = Instant::now();
        let mut r = Requests::default();
        r.add(who("c2"), t0, REQUEST_TTL).unwrap();
        r.add(who("c3"), t0 + Duration::from_secs(10), REQUEST_TTL)
            .unwrap();
        assert!(r
            .expire(t0 + REQUEST_TTL - Duration::from_millis(1))
            .is_empty());
        let gone = r.expire(t0 + REQUEST_TTL);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].from, who("c2"));
        assert!(r.contains("c3") && !r.contains("c2"));
        r.clear();
        assert!(r.is_empty());
    }
}
