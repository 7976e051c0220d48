//! The per-connection stdin token bucket (`ws.stdin_messages_per_sec`, `ws.stdin_bytes_per_sec`).
//! Refusals beyond the limit are answered; a flood far beyond it is a policy violation.

use std::time::{Duration, Instant};

/// What to do with one stdin message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it.
    Allow,
    /// Drop it and answer `error rate_limited`.
    Limited,
    /// The flood is sustained: close with 1008.
    Flood,
}

/// Two token buckets (messages and bytes), each holding one second of budget.
#[derive(Debug, Clone)]
pub struct StdinBucket {
    msg_rate: f64,
    byte_rate: f64,
    msgs: f64,
    bytes: f64,
    last: Option<Instant>,
    refused_since: Option<Instant>,
    refused: u32,
}

/// How long refusals may go on, without one accepted message between them, before 1008.
pub const FLOOD_AFTER: Duration = Duration::from_secs(2);

impl StdinBucket {
    /// A full bucket.
    pub fn new(msgs_per_sec: u32, bytes_per_sec: u64) -> Self {
        StdinBucket {
            msg_rate: f64::from(msgs_per_sec.max(1)),
            byte_rate: (bytes_per_sec.max(1)) as f64,
            msgs: f64::from(msgs_per_sec.max(1)),
            bytes: (bytes_per_sec.max(1)) as f64,
            last: None,
            refused_since: None,
            refused: 0,
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
        let len = len as f64;
        // A single message larger than a second of budget can never pass; let it through
        // once the bucket is full rather than refuse it forever (message size is capped
        // separately by ws.max_message_bytes).
        let need_bytes = len.min(self.byte_rate);
        if self.msgs >= 1.0 && self.bytes >= need_bytes {
            self.msgs -= 1.0;
            self.bytes -= need_bytes;
            self.refused_since = None;
            self.refused = 0;
            return Verdict::Allow;
        }
        self.refused += 1;
        let since = *self.refused_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= FLOOD_AFTER
            || f64::from(self.refused) > 2.0 * self.msg_rate
        {
            Verdict::Flood
        } else {
            Verdict::Limited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_then_floods() {
        let t0 = Instant::now();
        let mut b = StdinBucket::new(10, 1_000_000);
        for _ in 0..10 {
            assert_eq!(b.take(1, t0), Verdict::Allow);
        }
        assert_eq!(b.take(1, t0), Verdict::Limited);
        // Refill after 100 ms gives one more message.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(1, t1), Verdict::Allow);
        for _ in 0..20 {
            assert_eq!(b.take(1, t1), Verdict::Limited);
        }
        assert_eq!(b.take(1, t1), Verdict::Flood);
    }

    #[test]
    fn byte_budget_applies() {
        let t0 = Instant::now();
        let mut b = StdinBucket::new(1000, 100);
        assert_eq!(b.take(60, t0), Verdict::Allow);
        assert_eq!(b.take(60, t0), Verdict::Limited);
        assert_eq!(b.take(60, t0 + Duration::from_secs(1)), Verdict::Allow);
    }
}
