//! Leases and machines shared by the seat machine's transition tests: alice (`c1`)
//! seated at epoch 7, the same holder in grace, and the timers they run on.

use std::time::{Duration, Instant};

use super::machine::{SeatMachine, SeatTimes};
use crate::lease::{Holder, Lease};

/// `attach.control_grace`.
pub(super) const GRACE: Duration = Duration::from_secs(30);
/// `attach.driver_idle_timeout`.
pub(super) const DRIVER_IDLE: Duration = Duration::from_secs(600);
/// `attach.lease_ttl`.
pub(super) const TTL: Duration = Duration::from_secs(15);
/// `attach.control_request_ttl`.
pub(super) const REQUEST_TTL: Duration = Duration::from_secs(30);

/// The lease of `conn` (of `subject`) at `epoch`.
pub(super) fn lease(conn: &str, subject: &str, epoch: u64) -> Lease {
    Lease {
        holder: Holder {
            connection_id: conn.into(),
            subject: subject.into(),
        },
        epoch,
    }
}

/// A free seat at `t0` on the timers above.
pub(super) fn machine(t0: Instant) -> SeatMachine {
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
pub(super) fn held(t0: Instant) -> SeatMachine {
    let mut m = machine(t0);
    m.seated(lease("c1", "alice", 7), t0);
    m
}

/// `held(t0)` after its holder disconnected at `t0`.
pub(super) fn in_grace(t0: Instant) -> SeatMachine {
    let mut m = held(t0);
    m.disconnected("c1", t0);
    m
}
