//! Following one connection's screen: `snapshot` frames reset the view, output feeds it, until
//! the final drawing is on it, the server closes, or the run stops.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use attachd_actors::protocol::{ClientMessage, ServerFrame, SnapshotReason};
use tokio::sync::watch;

use super::command;
use crate::client::{Conn, Frame};
use crate::screen::ScreenView;

/// One connection's view of the run.
#[derive(Default)]
pub struct Watched {
    /// The screen as it was left.
    pub view: ScreenView,
    /// Output bytes received (snapshots' bytes included).
    pub bytes: u64,
    /// Of those, in snapshots.
    pub snapshot_bytes: u64,
    /// `snapshot` frames with reason `resync`.
    pub resyncs: u32,
    /// Output that came before any snapshot (SPEC §8 says none does).
    pub unframed_bytes: u64,
    /// When the final drawing was first on the screen.
    pub at_end: Option<Instant>,
    /// The same, as Unix milliseconds (comparable across client processes).
    pub at_end_unix_ms: Option<u64>,
    /// The server closed the connection first (its close code, if any).
    pub closed: Option<Option<u16>>,
    /// The latest `participants` count of observers.
    pub observers_seen: Option<usize>,
    /// A `snapshot` frame came and its bytes are the next output.
    pub(super) body_next: bool,
    /// The output offset rendered so far (known from the first snapshot on).
    pub(super) offset: Option<u64>,
    /// Live output rendered since the last `ack`.
    pub(super) unacked: u64,
}

/// Output an observer renders between two `ack` frames (it acknowledges what it has rendered,
/// as the web client does; SPEC §8).
const ACK_EVERY: u64 = 64 * 1024;

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Watched {
    /// Applies one frame; false when the connection ended.
    pub fn apply(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::Output(b) => {
                let n = b.len() as u64;
                self.bytes += n;
                if std::mem::take(&mut self.body_next) {
                    self.snapshot_bytes += n;
                } else if let Some(o) = &mut self.offset {
                    *o += n;
                    self.unacked += n;
                }
                if !self.view.feed(&b) {
                    self.unframed_bytes += n;
                }
                if self.at_end.is_none() && command::at_end(&self.view) {
                    self.at_end = Some(Instant::now());
                    self.at_end_unix_ms = Some(unix_ms());
                }
            }
            Frame::Server(f) => match *f {
                ServerFrame::Snapshot {
                    offset,
                    cols,
                    rows,
                    reason,
                    ..
                } => {
                    self.view.reset(cols, rows);
                    self.offset = Some(offset);
                    self.body_next = true;
                    if reason == SnapshotReason::Resync {
                        self.resyncs += 1;
                    }
                }
                ServerFrame::Size { cols, rows } => self.view.resize(cols, rows),
                ServerFrame::Participants { observers, .. } => {
                    self.observers_seen = Some(observers)
                }
                _ => {}
            },
            Frame::Closed(code) => {
                self.closed = Some(code);
                return false;
            }
        }
        true
    }

    /// The offset to acknowledge now, if enough was rendered since the last `ack` (or the
    /// final drawing is on the screen).
    fn due_ack(&mut self) -> Option<u64> {
        let due = self.unacked >= ACK_EVERY || (self.unacked > 0 && self.at_end.is_some());
        if due {
            self.unacked = 0;
        }
        self.offset.filter(|_| due)
    }
}

/// An observer: follows its screen until the final drawing is on it (then closes), the server
/// closes it, or `stop` changes.
pub async fn observer(mut conn: Conn, mut stop: watch::Receiver<bool>) -> Watched {
    let mut w = Watched::default();
    while w.at_end.is_none() {
        tokio::select! {
            _ = stop.changed() => break,
            f = conn.recv_frame() => if !w.apply(f) {
                return w;
            },
        }
        if let Some(offset) = w.due_ack() {
            let ack = ClientMessage::Ack { offset }.to_json();
            if conn.send_text(ack).await.is_err() {
                return w;
            }
        }
        // One frame per turn: a socket with a backlog would otherwise keep its task running
        // (tokio's budget allows many ready reads), and other observers would stop reading
        // long enough to be cut as stalled (SPEC §8, 4003) or silent (4001).
        tokio::task::yield_now().await;
    }
    conn.close_fast().await;
    w
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn snapshot(offset: u64, reason: SnapshotReason) -> Frame {
        Frame::Server(Box::new(ServerFrame::Snapshot {
            offset,
            cols: 80,
            rows: 24,
            reason,
            skipped_bytes: 0,
        }))
    }

    #[test]
    fn snapshots_reset_the_screen_and_acks_count_live_output_only() {
        let mut w = Watched::default();
        assert!(w.apply(Frame::Output(Bytes::from_static(b"early"))));
        assert_eq!(w.unframed_bytes, 5);
        w.apply(snapshot(1000, SnapshotReason::Join));
        w.apply(Frame::Output(Bytes::from(vec![b'a'; 70_000])));
        assert_eq!(
            w.snapshot_bytes, 70_000,
            "the frame after `snapshot` is its body"
        );
        assert_eq!(
            w.due_ack(),
            None,
            "a snapshot's bytes are not output to acknowledge"
        );
        w.apply(Frame::Output(Bytes::from(vec![b'b'; 70_000])));
        assert_eq!(w.due_ack(), Some(71_000));
        w.apply(Frame::Output(Bytes::from_static(b"c")));
        assert_eq!(w.due_ack(), None);
        w.apply(snapshot(500_000, SnapshotReason::Resync));
        w.apply(Frame::Output(Bytes::from(command::final_drawing())));
        assert_eq!(w.resyncs, 1);
        assert!(w.at_end.is_some() && w.view.text() == command::drawn_screen(80, 24).text());
        assert!(!w.apply(Frame::Closed(Some(4003))));
        assert_eq!(w.closed, Some(Some(4003)));
    }
}
