//! The driver seat as one hub sees it (`Free`, `Held`, `Grace`) and its transitions, as pure
//! code: each takes `now` and returns what the hub must do (announce, release, renew, hand over).
//! Over 500 lines: the transition tests sit beside the transitions they pin down.

use std::time::{Duration, Instant};

use super::requests::{Pending, Refused, Requests};
use crate::lease::{Holder, Lease};
use crate::protocol::{ControlReason, HolderView};

/// The seat's timers, from the hub's configuration.
#[derive(Debug, Clone, Copy)]
pub struct SeatTimes {
    /// `attach.control_grace`: how long a disconnected holder's subject may reclaim the seat.
    pub control_grace: Duration,
    /// `attach.driver_idle_timeout`: a holder silent this long loses the seat.
    pub driver_idle_timeout: Duration,
    /// A lease unconfirmed this long may belong to another replica now (fencing).
    pub lease_ttl: Duration,
    /// `attach.control_request_ttl`: how long a request for control waits for an answer.
    pub request_ttl: Duration,
}

/// The driver seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seat {
    /// Nobody on this replica holds it.
    Free,
    /// A connected driver holds the lease.
    Held {
        /// The lease.
        lease: Lease,
        /// Its last stdin (driver idle timeout).
        last_stdin: Instant,
    },
    /// The holder disconnected; only its subject may take the seat until `until`.
    Grace {
        /// The lease, still held in the store.
        lease: Lease,
        /// End of the grace period.
        until: Instant,
    },
}

/// What the 1 s tick asks the hub to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// Nothing to do.
    Nothing,
    /// The seat was freed: announce `reason` for `lease`'s holder and release the lease.
    Freed {
        /// The lease given up.
        lease: Lease,
        /// `expired` (driver idle) or `released` (grace over).
        reason: ControlReason,
    },
    /// Renew the lease held at `epoch`.
    Renew {
        /// The fencing epoch to renew.
        epoch: u64,
    },
}

/// How a renewal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The store extended the lease.
    Confirmed,
    /// The store says the epoch is no longer current (someone else took the seat).
    Fenced,
    /// The store did not answer.
    Failed,
}

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

/// The seat machine: the seat, its timers, when the store last confirmed the lease, and the
/// requests addressed to its holder.
#[derive(Debug)]
pub struct SeatMachine {
    seat: Seat,
    times: SeatTimes,
    confirmed: Instant,
    requests: Requests,
}

impl SeatMachine {
    /// A free seat.
    pub fn new(times: SeatTimes, now: Instant) -> Self {
        SeatMachine {
            seat: Seat::Free,
            times,
            confirmed: now,
            requests: Requests::default(),
        }
    }

    /// The current state.
    pub fn seat(&self) -> &Seat {
        &self.seat
    }

    /// The lease's timers.
    pub fn times(&self) -> SeatTimes {
        self.times
    }

    /// The connected holder, if any (not one in grace).
    pub fn holder(&self) -> Option<&Holder> {
        match &self.seat {
            Seat::Held { lease, .. } => Some(&lease.holder),
            _ => None,
        }
    }

    /// The connected holder's connection id.
    pub fn holder_conn(&self) -> Option<&str> {
        self.holder().map(|h| h.connection_id.as_str())
    }

    /// The lease this replica holds in the store (held or in grace).
    pub fn lease(&self) -> Option<&Lease> {
        match &self.seat {
            Seat::Held { lease, .. } | Seat::Grace { lease, .. } => Some(lease),
            Seat::Free => None,
        }
    }

    /// Whether `subject` may ask the store for the seat: it is free, or in grace for it.
    pub fn may_seat(&self, subject: &str) -> bool {
        match &self.seat {
            Seat::Free => true,
            Seat::Grace { lease, .. } => lease.holder.subject == subject,
            Seat::Held { .. } => false,
        }
    }

    /// The store granted `lease`: its holder is seated and the lease counts as confirmed.
    pub fn seated(&mut self, lease: Lease, now: Instant) {
        self.seat = Seat::Held {
            lease,
            last_stdin: now,
        };
        self.confirmed = now;
        self.requests.clear();
    }

    /// stdin from `conn`: `true` (and the idle clock restarts) only if it holds the seat.
    pub fn stdin(&mut self, conn: &str, now: Instant) -> bool {
        match &mut self.seat {
            Seat::Held { lease, last_stdin } if lease.holder.connection_id == conn => {
                *last_stdin = now;
                true
            }
            _ => false,
        }
    }

    /// `conn` left: if it held the seat, the seat enters its grace period; returns that lease.
    pub fn disconnected(&mut self, conn: &str, now: Instant) -> Option<Lease> {
        let Seat::Held { lease, .. } = &self.seat else {
            return None;
        };
        if lease.holder.connection_id != conn {
            return None;
        }
        let lease = lease.clone();
        self.seat = Seat::Grace {
            lease: lease.clone(),
            until: now + self.times.control_grace,
        };
        self.requests.clear();
        Some(lease)
    }

    /// The holder `conn` releases: frees the seat; returns the lease to release.
    pub fn release(&mut self, conn: &str) -> Option<Lease> {
        match &self.seat {
            Seat::Held { lease, .. } if lease.holder.connection_id == conn => self.vacate(),
            _ => None,
        }
    }

    /// Frees the seat whoever holds it (revoke, drain, idle session); returns the lease.
    pub fn vacate(&mut self) -> Option<Lease> {
        let lease = self.lease().cloned();
        if lease.is_some() {
            self.seat = Seat::Free;
            self.requests.clear();
        }
        lease
    }

    /// The 1 s tick: driver idle and grace expiry free the seat; otherwise a held lease renews.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let (lease, reason) = match &self.seat {
            Seat::Free => return Tick::Nothing,
            Seat::Held { lease, last_stdin }
                if now.duration_since(*last_stdin) >= self.times.driver_idle_timeout =>
            {
                (lease.clone(), ControlReason::Expired)
            }
            Seat::Grace { lease, until } if now >= *until => {
                (lease.clone(), ControlReason::Released)
            }
            Seat::Held { lease, .. } | Seat::Grace { lease, .. } => {
                return Tick::Renew { epoch: lease.epoch }
            }
        };
        self.seat = Seat::Free;
        self.requests.clear();
        Tick::Freed { lease, reason }
    }

    /// A renewal of `epoch` answered. Returns the lease lost (announce it as revoked): fenced
    /// out, or unconfirmed for a whole lease lifetime (another replica may hold it now).
    pub fn renewed(&mut self, epoch: u64, outcome: Renewal, now: Instant) -> Option<Lease> {
        match outcome {
            Renewal::Confirmed => {
                self.confirmed = now;
                None
            }
            Renewal::Fenced => self.lose(epoch),
            Renewal::Failed if now.duration_since(self.confirmed) >= self.times.lease_ttl => {
                self.lose(epoch)
            }
            Renewal::Failed => None,
        }
    }

    /// Drops the seat if this replica still holds it at `epoch`; returns the lease lost.
    pub fn lose(&mut self, epoch: u64) -> Option<Lease> {
        match self.lease() {
            Some(lease) if lease.epoch == epoch => self.vacate(),
            _ => None,
        }
    }

    /// Another replica announced a holder: the store grants one lease, so ours is gone. Returns
    /// whether this replica thought it held the seat.
    pub fn taken_elsewhere(&mut self) -> bool {
        self.vacate().is_some()
    }

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

    /// A release finished: other replicas are told only if no newer local holder took the seat
    /// meanwhile (that holder publishes its own note).
    pub fn publish_after_release(&self) -> bool {
        self.seat == Seat::Free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);
    const DRIVER_IDLE: Duration = Duration::from_secs(600);
    const TTL: Duration = Duration::from_secs(15);
    const REQUEST_TTL: Duration = Duration::from_secs(30);

    fn lease(conn: &str, subject: &str, epoch: u64) -> Lease {
        Lease {
            holder: Holder {
                connection_id: conn.into(),
                subject: subject.into(),
            },
            epoch,
        }
    }

    fn machine(t0: Instant) -> SeatMachine {
        SeatMachine::new(
            SeatTimes {
                control_grace: GRACE,
                driver_idle_timeout: DRIVER_IDLE,
                lease_ttl: TTL,
                request_ttl: REQUEST_TTL,
            },
            t0,
        )
    }

    /// A machine with `c1` (alice) seated at epoch 7 at `t0`.
    fn held(t0: Instant) -> SeatMachine {
        let mut m = machine(t0);
        m.seated(lease("c1", "alice", 7), t0);
        m
    }

    /// The tick's answer when `held(t0)`'s lease is freed for `reason`.
    fn freed(reason: ControlReason) -> Tick {
        Tick::Freed {
            lease: lease("c1", "alice", 7),
            reason,
        }
    }

    /// `held(t0)` after its holder disconnected at `t0`.
    fn in_grace(t0: Instant) -> SeatMachine {
        let mut m = held(t0);
        m.disconnected("c1", t0);
        m
    }

    #[test]
    fn a_free_seat_is_open_to_anyone_and_ticks_to_nothing() {
        let t0 = Instant::now();
        let mut m = machine(t0);
        assert!(m.may_seat("alice") && m.may_seat("bob"));
        assert_eq!(m.tick(t0 + Duration::from_secs(3600)), Tick::Nothing);
        assert_eq!(m.vacate(), None);
        assert!(m.holder().is_none());
    }

    #[test]
    fn a_held_seat_renews_and_refuses_others() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.holder_conn(), Some("c1"));
        assert!(!m.may_seat("alice"), "a held seat is not taken again");
        assert!(!m.may_seat("bob"));
        assert_eq!(
            m.tick(t0 + Duration::from_secs(1)),
            Tick::Renew { epoch: 7 }
        );
    }

    #[test]
    fn only_the_holder_writes_stdin_and_stdin_restarts_the_idle_clock() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert!(!m.stdin("c2", t0));
        let t1 = t0 + DRIVER_IDLE - Duration::from_secs(1);
        assert!(m.stdin("c1", t1));
        assert_eq!(m.tick(t0 + DRIVER_IDLE), Tick::Renew { epoch: 7 });
        assert!(matches!(
            m.tick(t1 + DRIVER_IDLE),
            Tick::Freed {
                reason: ControlReason::Expired,
                ..
            }
        ));
    }

    #[test]
    fn a_silent_driver_expires() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.tick(t0 + DRIVER_IDLE), freed(ControlReason::Expired));
        assert_eq!(m.seat(), &Seat::Free);
        assert!(m.may_seat("bob"));
    }

    #[test]
    fn a_disconnected_holder_goes_to_grace_reclaimable_by_its_subject_only() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.disconnected("c2", t0), None, "not the holder");
        assert_eq!(m.disconnected("c1", t0), Some(lease("c1", "alice", 7)));
        assert!(m.holder().is_none(), "nobody writes during grace");
        assert!(!m.stdin("c1", t0));
        assert!(m.may_seat("alice"));
        assert!(!m.may_seat("bob"));
        // The lease is still ours in the store: it keeps renewing until grace ends.
        assert_eq!(
            m.tick(t0 + GRACE - Duration::from_millis(1)),
            Tick::Renew { epoch: 7 }
        );
        assert_eq!(m.disconnected("c1", t0), None, "only once");
    }

    #[test]
    fn grace_ends_in_a_release() {
        let t0 = Instant::now();
        let mut m = in_grace(t0);
        assert_eq!(m.tick(t0 + GRACE), freed(ControlReason::Released));
        assert!(m.may_seat("bob"));
    }

    #[test]
    fn the_subject_reclaims_in_grace_with_a_new_lease() {
        let t0 = Instant::now();
        let mut m = in_grace(t0);
        let t1 = t0 + Duration::from_secs(5);
        m.seated(lease("c3", "alice", 8), t1);
        assert_eq!(m.holder_conn(), Some("c3"));
        assert_eq!(
            m.tick(t1 + GRACE),
            Tick::Renew { epoch: 8 },
            "grace is over"
        );
    }

    #[test]
    fn release_frees_only_for_the_holder() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.release("c2"), None);
        assert_eq!(m.release("c1"), Some(lease("c1", "alice", 7)));
        assert_eq!(m.seat(), &Seat::Free);
        let mut m = in_grace(t0);
        assert_eq!(
            m.release("c1"),
            None,
            "a holder in grace has no socket to release with"
        );
    }

    #[test]
    fn revoke_vacates_a_held_seat_or_one_in_grace() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.vacate(), Some(lease("c1", "alice", 7)));
        assert_eq!(m.vacate(), None, "nothing left to revoke");
        let mut m = in_grace(t0);
        assert_eq!(m.vacate(), Some(lease("c1", "alice", 7)));
        assert_eq!(m.seat(), &Seat::Free);
    }

    #[test]
    fn fencing_a_renewal_answered_not_current_loses_the_seat() {
        let t0 = Instant::now();
        let mut m = held(t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            m.renewed(7, Renewal::Fenced, t1),
            Some(lease("c1", "alice", 7))
        );
        assert!(!m.stdin("c1", t1), "a fenced holder cannot write");
    }

    #[test]
    fn fencing_an_answer_for_an_older_epoch_keeps_the_new_seat() {
        let t0 = Instant::now();
        let mut m = held(t0);
        m.seated(lease("c3", "alice", 8), t0);
        assert_eq!(m.renewed(7, Renewal::Fenced, t0), None);
        assert_eq!(m.lose(7), None);
        assert_eq!(m.holder_conn(), Some("c3"));
    }

    #[test]
    fn fencing_unconfirmed_for_a_whole_ttl_loses_the_seat() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.renewed(7, Renewal::Failed, t0 + TTL / 2), None);
        assert_eq!(m.holder_conn(), Some("c1"), "a short outage is ridden out");
        assert_eq!(m.renewed(7, Renewal::Confirmed, t0 + TTL / 2), None);
        assert_eq!(
            m.renewed(7, Renewal::Failed, t0 + TTL),
            None,
            "confirmed since"
        );
        assert_eq!(
            m.renewed(7, Renewal::Failed, t0 + TTL / 2 + TTL),
            Some(lease("c1", "alice", 7))
        );
        assert_eq!(m.seat(), &Seat::Free);
    }

    #[test]
    fn fencing_also_ends_a_grace_period() {
        let t0 = Instant::now();
        let mut m = in_grace(t0);
        assert_eq!(
            m.renewed(7, Renewal::Fenced, t0),
            Some(lease("c1", "alice", 7))
        );
        assert!(m.may_seat("bob"));
    }

    #[test]
    fn a_holder_elsewhere_takes_the_seat_from_us() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert!(m.taken_elsewhere());
        assert!(!m.stdin("c1", t0));
        assert!(!m.taken_elsewhere(), "nothing held any more");
    }

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

    #[test]
    fn cross_replica_release_race_publishes_only_while_still_free() {
        let t0 = Instant::now();
        let mut m = held(t0);
        m.release("c1");
        assert!(m.publish_after_release(), "free: tell the other replicas");
        // A local driver took the seat before the store answered the release: it announces
        // itself, and the stale "released" note must not follow it.
        m.seated(lease("c2", "bob", 8), t0);
        assert!(!m.publish_after_release());
    }
}
