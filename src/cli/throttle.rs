//! The resize throttle: at most one `resize` per 100 ms (SPEC §8); the first of a quiet
//! spell goes at once, the last of a burst goes when the interval ends. Pure, unit-tested.

use std::time::{Duration, Instant};

use attachd_actors::protocol::TermSize;

/// At most one resize per this interval.
pub const RESIZE_INTERVAL: Duration = Duration::from_millis(100);

/// Leading-and-trailing throttle of terminal sizes; an unchanged size is not sent again.
#[derive(Debug, Default)]
pub struct ResizeThrottle {
    last_sent_at: Option<Instant>,
    last_sent: Option<TermSize>,
    pending: Option<TermSize>,
}

impl ResizeThrottle {
    /// Forget what was sent (a new connection: the PTY may have any size).
    pub fn reset(&mut self) {
        *self = ResizeThrottle::default();
    }

    /// A new local size: the size to send now, or `None` (it waits for [`Self::due`]).
    pub fn push(&mut self, size: TermSize, now: Instant) -> Option<TermSize> {
        self.pending = Some(size);
        match self.last_sent_at {
            Some(at) if now < at + RESIZE_INTERVAL => None,
            _ => self.take(now),
        }
    }

    /// When a waiting size may be sent.
    pub fn due(&self) -> Option<Instant> {
        self.pending?;
        Some(self.last_sent_at? + RESIZE_INTERVAL)
    }

    /// The waiting size, once the interval is over.
    pub fn fire(&mut self, now: Instant) -> Option<TermSize> {
        match self.due() {
            Some(at) if at <= now => self.take(now),
            _ => None,
        }
    }

    fn take(&mut self, now: Instant) -> Option<TermSize> {
        let size = self.pending.take()?;
        if self.last_sent == Some(size) {
            return None;
        }
        self.last_sent = Some(size);
        self.last_sent_at = Some(now);
        Some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sz(cols: u16, rows: u16) -> TermSize {
        TermSize { cols, rows }
    }

    #[test]
    fn first_at_once_burst_trails_duplicates_dropped() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = ResizeThrottle::default();
        assert_eq!(t.push(sz(80, 24), t0), Some(sz(80, 24)));
        assert_eq!(t.push(sz(81, 24), t0 + ms(10)), None);
        assert_eq!(t.push(sz(82, 24), t0 + ms(20)), None);
        assert_eq!(t.due(), Some(t0 + RESIZE_INTERVAL));
        assert_eq!(t.fire(t0 + ms(50)), None);
        assert_eq!(t.fire(t0 + ms(100)), Some(sz(82, 24)));
        assert_eq!(t.due(), None);
        assert_eq!(t.push(sz(82, 24), t0 + ms(300)), None, "unchanged");
        assert_eq!(t.push(sz(90, 30), t0 + ms(301)), Some(sz(90, 30)));
        t.reset();
        assert_eq!(t.push(sz(90, 30), t0 + ms(302)), Some(sz(90, 30)));
    }
}
