//! The per-connection stdin budget (`ws.stdin_messages_per_sec`, `ws.stdin_bytes_per_sec`).
//! Over budget, input is delayed, never dropped (SPEC §8): the socket is read no faster.
//!
//! Every message is charged; a bucket that goes into debt stops the connection taking frames
//! until the debt is paid off (its socket, with nowhere to put them, reads nothing meanwhile). `error rate_limited` is sent once per burst, and
//! only a client that keeps the bucket in debt, without a break, for as long as a stall may
//! last (`ws.stall_timeout`) is closed (1008).

use std::time::{Duration, Instant};

/// What to do after charging one stdin message (the message itself is always forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget: read on.
    Allow,
    /// Over budget: read nothing more for this long. `first` marks the start of a burst.
    Delay {
        /// How long to stop reading.
        wait: Duration,
        /// Whether this is the first delay of a burst (answer `error rate_limited` once).
        first: bool,
    },
    /// The bucket has been in debt for the flood limit without a break: close with 1008.
    Flood,
}

/// Two token buckets (messages and bytes), each holding one second of budget; they may go
/// into debt by one message.
#[derive(Debug, Clone)]
pub struct StdinBucket {
    msg_rate: f64,
    byte_rate: f64,
    msgs: f64,
    bytes: f64,
    last: Option<Instant>,
    /// When the current burst (a run of delayed messages) started.
    burst_since: Option<Instant>,
    /// How long a burst may last before it is a flood.
    flood_after: Duration,
}

impl StdinBucket {
    /// A full bucket; a client that keeps it in debt for `flood_after` is a flood.
    pub fn new(msgs_per_sec: u32, bytes_per_sec: u64, flood_after: Duration) -> Self {
        StdinBucket {
            msg_rate: f64::from(msgs_per_sec.max(1)),
            byte_rate: (bytes_per_sec.max(1)) as f64,
            msgs: f64::from(msgs_per_sec.max(1)),
            bytes: (bytes_per_sec.max(1)) as f64,
            last: None,
            burst_since: None,
            flood_after,
        }
    }

    /// Charges one message of `len` bytes at `now`.
    pub fn take(&mut self, len: usize, now: Instant) -> Verdict {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.msgs = (self.msgs + dt * self.msg_rate).min(self.msg_rate);
            self.bytes = (self.bytes + dt * self.byte_rate).min(self.byte_rate);
        }
        self.last = Some(now);
        // A message larger than a second of budget costs one second of it.
        let need = (len as f64).min(self.byte_rate);
        let in_budget = self.msgs >= 1.0 && self.bytes >= need;
        // A burst ends once the client has left half of a second's budget unused.
        let rested = self.msgs >= self.msg_rate / 2.0 && self.bytes >= self.byte_rate / 2.0;
        self.msgs -= 1.0;
        self.bytes -= need;
        if in_budget {
            if rested {
                self.burst_since = None;
            }
            return Verdict::Allow;
        }
        let first = self.burst_since.is_none();
        let since = *self.burst_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= self.flood_after {
            return Verdict::Flood;
        }
        // Read again once both buckets are out of debt and hold one more message.
        let wait_msgs = (1.0 - self.msgs).max(0.0) / self.msg_rate;
        let wait_bytes = (-self.bytes).max(0.0) / self.byte_rate;
        Verdict::Delay {
            wait: Duration::from_secs_f64(wait_msgs.max(wait_bytes)),
            first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOD: Duration = Duration::from_secs(30);

    #[test]
    fn over_budget_delays_once_per_burst_and_never_drops() {
        let t0 = Instant::now();
        let mut b = StdinBucket::new(10, 1_000_000, FLOOD);
        for _ in 0..10 {
            assert_eq!(b.take(1, t0), Verdict::Allow);
        }
        match b.take(1, t0) {
            Verdict::Delay { wait, first } => {
                assert!(first);
                // One message of debt plus one message to come: 0.2 s at 10/s.
                assert!((wait.as_secs_f64() - 0.2).abs() < 1e-6, "{wait:?}");
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(b.take(1, t0), Verdict::Delay { first: false, .. }));
        // Paced at the budget, the burst goes on (no second announcement).
        let t_half = t0 + Duration::from_millis(350);
        assert_eq!(b.take(1, t_half), Verdict::Allow);
        assert!(matches!(
            b.take(1, t_half),
            Verdict::Delay { first: false, .. }
        ));
        // Rested, the bucket allows again and a new burst is announced anew.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(b.take(1, t1), Verdict::Allow);
        for _ in 0..9 {
            b.take(1, t1);
        }
        assert!(matches!(b.take(1, t1), Verdict::Delay { first: true, .. }));
    }

    #[test]
    fn a_client_that_keeps_the_budget_exhausted_is_a_flood() {
        let t0 = Instant::now();
        let mut b = StdinBucket::new(10, 1_000_000, FLOOD);
        let mut t = t0;
        let mut verdict = Verdict::Allow;
        while t < t0 + FLOOD + Duration::from_secs(1) {
            verdict = b.take(1, t);
            if verdict == Verdict::Flood {
                break;
            }
            t += Duration::from_millis(10);
        }
        assert_eq!(verdict, Verdict::Flood);
        assert!(t >= t0 + FLOOD);
    }

    #[test]
    fn the_byte_budget_delays_too() {
        let t0 = Instant::now();
        let mut b = StdinBucket::new(1000, 100, FLOOD);
        assert_eq!(b.take(60, t0), Verdict::Allow);
        match b.take(60, t0) {
            Verdict::Delay { wait, .. } => assert!((wait.as_secs_f64() - 0.2).abs() < 1e-6),
            v => panic!("{v:?}"),
        }
        assert_eq!(b.take(60, t0 + Duration::from_secs(2)), Verdict::Allow);
    }
}
