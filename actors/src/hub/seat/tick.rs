//! The seat over time: the 1 s tick (driver idle, end of grace, renewal) and what the lease
//! store answers (confirmed, fenced, silent for a whole lease lifetime), as pure transitions.

use std::time::Instant;

use super::machine::{Seat, SeatMachine};
use crate::lease::Lease;
use crate::protocol::ControlReason;

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

impl SeatMachine {
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

    /// A release finished: other replicas are told only if no newer local holder took the seat
    /// meanwhile (that holder publishes its own note).
    pub fn publish_after_release(&self) -> bool {
        self.seat == Seat::Free
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::*;
    use super::*;

    /// The tick's answer when `held(t0)`'s lease is freed for `reason`.
    fn freed(reason: ControlReason) -> Tick {
        Tick::Freed {
            lease: lease("c1", "alice", 7),
            reason,
        }
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
    fn a_silent_driver_expires() {
        let t0 = Instant::now();
        let mut m = held(t0);
        assert_eq!(m.tick(t0 + DRIVER_IDLE), freed(ControlReason::Expired));
        assert_eq!(m.seat(), &Seat::Free);
        assert!(m.may_seat("bob"));
    }

    #[test]
    fn grace_ends_in_a_release() {
        let t0 = Instant::now();
        let mut m = in_grace(t0);
        assert_eq!(m.tick(t0 + GRACE), freed(ControlReason::Released));
        assert!(m.may_seat("bob"));
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
