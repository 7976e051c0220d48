//! Requests for control as seat transitions: a driver asks, the connected holder answers, a
//! grant hands the lease over, and every seat change drops what was addressed to the old holder.

use std::time::Instant;

use super::machine::{Seat, SeatMachine};
use crate::hub::requests::{Pending, Refused};
use crate::lease::Lease;
use crate::protocol::HolderView;

/// What a driver's `request` for control leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Nobody holds the seat: acquire it instead.
    Acquire,
    /// It already holds the seat.
    Holding,
    /// Queued for the holder's answer until then.
    Queued(Instant),
    /// Not queued.
    Refused(Refused),
}

/// Why an answer to a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// Only the connected holder answers requests.
    NotHolder,
    /// No request from that connection is pending.
    NoRequest,
}

impl SeatMachine {
    /// The driver `from` asks for control; `held_elsewhere` says another replica's driver holds
    /// the seat. Queued only while someone holds it; a free seat is acquired instead.
    pub fn request(&mut self, from: HolderView, held_elsewhere: bool, now: Instant) -> Ask {
        if self.holder_conn() == Some(from.connection_id.as_str()) {
            return Ask::Holding;
        }
        let held = match self.seat {
            Seat::Held { .. } => true,
            Seat::Free => held_elsewhere,
            // Nobody is there to answer; its subject may reclaim, anyone else is denied.
            Seat::Grace { .. } => false,
        };
        if !held {
            return Ask::Acquire;
        }
        match self.requests.add(from, now, self.times.request_ttl) {
            Ok(until) => Ask::Queued(until),
            Err(why) => Ask::Refused(why),
        }
    }

    /// A request queued on another replica; `false` if this one is at its cap.
    pub fn remote_request(&mut self, from: HolderView, now: Instant) -> bool {
        self.requests.add(from, now, self.times.request_ttl).is_ok()
    }

    /// The holder `conn` answers `to`'s request: the request, and the lease a grant hands over.
    pub fn answer(&mut self, conn: &str, to: &str) -> Result<(Pending, Lease), AnswerError> {
        let lease = match &self.seat {
            Seat::Held { lease, .. } if lease.holder.connection_id == conn => lease.clone(),
            _ => return Err(AnswerError::NotHolder),
        };
        let pending = self.requests.take(to).ok_or(AnswerError::NoRequest)?;
        Ok((pending, lease))
    }

    /// A grant went through the store: the new lease seats its holder here when it is connected
    /// here (`Some`), otherwise the seat is another replica's now.
    pub fn handed_over(&mut self, here: Option<Lease>, now: Instant) {
        match here {
            Some(lease) => self.seated(lease, now),
            None => {
                self.vacate();
            }
        }
    }

    /// `conn` withdraws its request (it left, or an answer came from elsewhere).
    pub fn withdraw(&mut self, conn: &str) -> Option<Pending> {
        self.requests.take(conn)
    }

    /// Removes and returns the requests expired at `now`.
    pub fn expire_requests(&mut self, now: Instant) -> Vec<Pending> {
        self.requests.expire(now)
    }

    /// Control changed hands elsewhere: pending requests were addressed to the old holder.
    pub fn clear_requests(&mut self) {
        self.requests.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::*;
    use super::*;

    /// A driver asking for control.
    fn who(conn: &str, subject: &str) -> HolderView {
        HolderView {
            connection_id: conn.into(),
            subject: subject.into(),
            name: None,
        }
    }

    #[test]
    fn requests_a_free_seat_is_acquired_a_held_one_is_queued() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        assert_eq!(m.request(who("c2", "bob"), false, t0), Ask::Acquire);
        assert_eq!(
            m.request(who("c2", "bob"), true, t0),
            Ask::Queued(t0 + REQUEST_TTL),
            "held on another replica"
        );
        let mut m = held(t0);
        assert_eq!(m.request(who("c1", "alice"), false, t0), Ask::Holding);
        assert!(matches!(
            m.request(who("c2", "bob"), false, t0),
            Ask::Queued(_)
        ));
        assert_eq!(
            m.request(who("c2", "bob"), false, t0),
            Ask::Refused(Refused::AlreadyPending)
        );
        let mut m = in_grace(t0);
        assert_eq!(
            m.request(who("c2", "bob"), false, t0),
            Ask::Acquire,
            "nobody connected to answer"
        );
    }

    #[test]
    fn requests_only_the_holder_answers_a_pending_request() {
        let t0 = Instant::now();
        let mut m = held(t0);
        m.request(who("c2", "bob"), false, t0);
        assert_eq!(m.answer("c2", "c2"), Err(AnswerError::NotHolder));
        assert_eq!(m.answer("c1", "c9"), Err(AnswerError::NoRequest));
        let (p, granted) = m.answer("c1", "c2").unwrap();
        assert_eq!(p.from, who("c2", "bob"));
        assert_eq!(granted, lease("c1", "alice", 7));
        assert_eq!(
            m.answer("c1", "c2"),
            Err(AnswerError::NoRequest),
            "answered once"
        );
    }

    #[test]
    fn requests_a_grant_seats_the_requester_here_or_frees_the_seat_for_elsewhere() {
        let t0 = Instant::now();
        let mut m = held(t0);
        m.request(who("c2", "bob"), false, t0);
        m.request(who("c3", "carol"), false, t0);
        m.answer("c1", "c2").unwrap();
        m.handed_over(Some(lease("c2", "bob", 8)), t0);
        assert_eq!(m.holder_conn(), Some("c2"));
        assert!(!m.stdin("c1", t0), "the old holder stops writing at once");
        assert!(m.stdin("c2", t0));
        assert_eq!(
            m.withdraw("c3"),
            None,
            "requests to the old holder are dropped"
        );
        let mut m = held(t0);
        m.request(who("c2", "bob"), false, t0);
        m.answer("c1", "c2").unwrap();
        m.handed_over(None, t0);
        assert_eq!(m.seat(), &Seat::Free);
        assert!(!m.stdin("c1", t0));
    }

    #[test]
    fn requests_expire_are_withdrawn_and_end_with_the_holder() {
        let t0 = Instant::now();
        let mut m = held(t0);
        m.request(who("c2", "bob"), false, t0);
        m.request(who("c3", "carol"), false, t0 + Duration::from_secs(5));
        let gone = m.expire_requests(t0 + REQUEST_TTL);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].from.connection_id, "c2");
        assert_eq!(m.withdraw("c3").map(|p| p.from), Some(who("c3", "carol")));
        m.request(who("c2", "bob"), false, t0);
        m.disconnected("c1", t0);
        assert_eq!(
            m.withdraw("c2"),
            None,
            "the holder left: its requests are gone"
        );
        let mut m = held(t0);
        assert!(m.remote_request(who("c4", "dan"), t0));
        m.clear_requests();
        assert_eq!(m.answer("c1", "c4"), Err(AnswerError::NoRequest));
    }
}
