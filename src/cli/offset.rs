//! Output offset and acks (SPEC §8), as the web client keeps them (`web/src/offset.ts`,
//! `ack.ts`): what the terminal has rendered, and cumulative acks at most every 16 ms.

use std::time::{Duration, Instant};

/// What a binary frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// The payload right after a `snapshot` frame: it does not advance the offset.
    Snapshot,
    /// Terminal output.
    Output,
}

/// The offset of the next output byte the terminal will render.
#[derive(Debug, Default)]
pub struct OutputOffset {
    offset: Option<u64>,
    awaiting_payload: bool,
}

impl OutputOffset {
    /// The offset after everything written to the terminal (`None`: unknown).
    pub fn value(&self) -> Option<u64> {
        self.offset
    }

    /// A `hello`: output continues from its `output_offset`.
    pub fn hello(&mut self, output_offset: u64) {
        self.offset = Some(output_offset);
        self.awaiting_payload = false;
    }

    /// A `snapshot`: the next binary frame is its payload, then output continues from `offset`.
    pub fn snapshot(&mut self, offset: u64) {
        self.offset = Some(offset);
        self.awaiting_payload = true;
    }

    /// Classifies one binary frame and advances past it when it is output.
    pub fn binary(&mut self, len: usize) -> BinaryKind {
        if std::mem::take(&mut self.awaiting_payload) {
            return BinaryKind::Snapshot;
        }
        if let Some(o) = &mut self.offset {
            *o += len as u64;
        }
        BinaryKind::Output
    }

    /// The connection ended. Between a snapshot frame and its payload the screen does not
    /// show `offset`: forget it, so the next attach starts afresh instead of resuming.
    pub fn interrupted(&mut self) {
        if self.awaiting_payload {
            *self = OutputOffset::default();
        }
    }
}

/// At most one ack per this interval.
pub const ACK_INTERVAL: Duration = Duration::from_millis(16);
/// Or at once when this much output is unacknowledged.
pub const ACK_MAX_UNACKED: u64 = 64 * 1024;

/// Cumulative acks: at most one per [`ACK_INTERVAL`], or at once past [`ACK_MAX_UNACKED`].
#[derive(Debug, Default)]
pub struct AckThrottle {
    sent: u64,
    rendered: u64,
    due: Option<Instant>,
}

impl AckThrottle {
    /// A connection starts at `offset`: the server knows everything before it is rendered.
    pub fn start(&mut self, offset: u64) {
        *self = AckThrottle {
            sent: offset,
            rendered: offset,
            due: None,
        };
    }

    /// Output up to `offset` is rendered: the ack to send now, if one is due now.
    pub fn rendered(&mut self, offset: u64, now: Instant) -> Option<u64> {
        if offset <= self.rendered {
            return None;
        }
        self.rendered = offset;
        if self.rendered - self.sent >= ACK_MAX_UNACKED {
            return self.flush();
        }
        self.due.get_or_insert(now + ACK_INTERVAL);
        None
    }

    /// When the pending ack is due.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// The pending ack, once its time has come.
    pub fn fire(&mut self, now: Instant) -> Option<u64> {
        match self.due {
            Some(at) if at <= now => self.flush(),
            _ => None,
        }
    }

    fn flush(&mut self) -> Option<u64> {
        self.due = None;
        (self.rendered > self.sent).then(|| {
            self.sent = self.rendered;
            self.sent
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_hello_snapshot_and_output() {
        let mut o = OutputOffset::default();
        assert_eq!(o.value(), None);
        o.hello(100);
        assert_eq!(o.binary(10), BinaryKind::Output);
        assert_eq!(o.value(), Some(110));
        o.snapshot(500);
        assert_eq!(o.binary(4000), BinaryKind::Snapshot);
        assert_eq!(o.value(), Some(500));
        o.binary(5);
        assert_eq!(o.value(), Some(505));
        o.interrupted();
        assert_eq!(o.value(), Some(505));
        o.snapshot(900);
        o.interrupted();
        assert_eq!(
            o.value(),
            None,
            "a snapshot without its payload is not on screen"
        );
    }

    #[test]
    fn acks_are_cumulative_and_throttled() {
        let t0 = Instant::now();
        let mut a = AckThrottle::default();
        a.start(1000);
        assert_eq!(a.rendered(900, t0), None);
        assert_eq!(a.due(), None);
        assert_eq!(a.rendered(1010, t0), None);
        assert_eq!(a.rendered(1020, t0 + Duration::from_millis(5)), None);
        assert_eq!(a.due(), Some(t0 + ACK_INTERVAL));
        assert_eq!(a.fire(t0 + Duration::from_millis(10)), None);
        assert_eq!(a.fire(t0 + ACK_INTERVAL), Some(1020));
        assert_eq!(a.due(), None);
        assert_eq!(
            a.rendered(1020 + ACK_MAX_UNACKED, t0),
            Some(1020 + ACK_MAX_UNACKED)
        );
        assert_eq!(a.fire(t0 + Duration::from_secs(1)), None);
    }
}
