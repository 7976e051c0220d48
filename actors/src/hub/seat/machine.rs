//! The seat machine's state (`Seat::{Free, Held, Grace}`, its timers, the lease's last
//! confirmation, the requests) and holding the seat: taking it, typing, leaving, releasing, revoke.

use std::time::{Duration, Instant};

use crate::hub::requests::Requests;
use crate::lease::{Holder, Lease};

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

/// The seat machine: the seat, its timers, when the store last confirmed the lease, and the
/// requests addressed to its holder.
#[derive(Debug)]
pub struct SeatMachine {
    pub(super) seat: Seat,
    pub(super) times: SeatTimes,
    pub(super) confirmed: Instant,
    pub(super) requests: Requests,
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
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

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
}
