//! Following one connection's screen: `snapshot` frames reset the view, output feeds it, until
//! the final drawing is on it, the server closes, or the run stops.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use attachd_actors::protocol::{ServerFrame, SnapshotReason};
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
}

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
                    cols, rows, reason, ..
                } => {
                    self.view.reset(cols, rows);
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
    }
    conn.close_fast().await;
    w
}
