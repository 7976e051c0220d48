//! Where a session's emulator runs: a task on one of a few emulator threads, fed through a
//! bounded channel, so emulation never sits on the echo's path (the hub only hands it `Bytes`).
//!
//! How far it may lag is bounded by the session's [`PaceGate`](crate::pace::PaceGate): past
//! the bound the hub stops reading the backend until the emulator catches up. A snapshot is
//! answered with the offset the emulator has reached; the hub sends the rest from its ring.

use std::sync::{Arc, Mutex};

use actix::{Arbiter, ArbiterHandle, System};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::thumb::Thumbnail;
use super::TermState;
use crate::metrics;
use crate::pace::PaceGate;

/// Capacity of the feed channel; the gate keeps at most 1,024 output chunks in flight.
const FEED_CAPACITY: usize = 4096;

/// Most output fed to the emulator at once (the gate's lag bound is at most this).
pub const MAX_BATCH: usize = 1 << 20;

/// A batch buffer larger than this is given back after use (an idle session keeps none).
const KEPT_BATCH_CAPACITY: usize = 64 * 1024;

/// A snapshot of the emulator at an output offset.
#[derive(Debug, Clone)]
pub struct Snap {
    /// Output offset the snapshot reproduces.
    pub offset: u64,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// The bytes that reproduce the screen in a freshly reset terminal.
    pub data: Bytes,
}

enum Feed {
    Output(Bytes),
    Resize(u16, u16),
}

/// A question about the emulator's state, answered between output chunks.
enum Ask {
    Snapshot(oneshot::Sender<Snap>),
    Thumbnail(oneshot::Sender<Thumbnail>),
}

/// The hub's handle on its session's emulator.
pub struct TermHandle {
    feed: mpsc::Sender<Feed>,
    ask: mpsc::Sender<Ask>,
    gate: Arc<PaceGate>,
    pending_resize: Option<(u16, u16)>,
}

impl TermHandle {
    /// Starts an emulator for a `cols`×`rows` terminal whose output so far is `offset` bytes.
    pub fn spawn(term: TermState, offset: u64, gate: Arc<PaceGate>) -> Self {
        let (feed_tx, feed_rx) = mpsc::channel(FEED_CAPACITY);
        let (ask_tx, ask_rx) = mpsc::channel(4);
        let task = run(term, offset, feed_rx, ask_rx, gate.clone());
        match pool_arbiter() {
            Some(arbiter) => {
                if !arbiter.spawn(task) {
                    tracing::warn!("emulator thread gone; the session's emulator runs on its hub");
                }
            }
            None => {
                actix::spawn(task);
            }
        }
        TermHandle {
            feed: feed_tx,
            ask: ask_tx,
            gate,
            pending_resize: None,
        }
    }

    /// Hands output to the emulator (counted against the gate's lag bound).
    pub fn output(&mut self, bytes: Bytes) {
        self.flush_resize();
        let len = bytes.len();
        self.gate.term_sent(len);
        if self.feed.try_send(Feed::Output(bytes)).is_err() {
            // Unreachable while the gate bounds the lag below the channel's capacity.
            self.gate.term_done(len, 1);
            tracing::error!("emulator feed refused output; snapshots may be inexact");
        }
    }

    /// Tells the emulator the terminal's new size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.pending_resize = Some((cols, rows));
        self.flush_resize();
    }

    fn flush_resize(&mut self) {
        if let Some((c, r)) = self.pending_resize {
            if self.feed.try_send(Feed::Resize(c, r)).is_ok() {
                self.pending_resize = None;
            }
        }
    }

    /// Asks for a snapshot; `None` if the emulator is gone.
    pub fn snapshot(&self) -> impl std::future::Future<Output = Option<Snap>> + 'static {
        self.ask(Ask::Snapshot)
    }

    /// Asks for the visible screen; `None` if the emulator is gone or has questions queued.
    pub fn thumbnail(&self) -> impl std::future::Future<Output = Option<Thumbnail>> + 'static {
        self.ask(Ask::Thumbnail)
    }

    fn ask<T: Send + 'static>(
        &self,
        question: fn(oneshot::Sender<T>) -> Ask,
    ) -> impl std::future::Future<Output = Option<T>> + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.ask.try_send(question(tx)).is_ok();
        async move {
            if !sent {
                return None;
            }
            rx.await.ok()
        }
    }
}

async fn run(
    mut term: TermState,
    mut offset: u64,
    mut feed: mpsc::Receiver<Feed>,
    mut asks: mpsc::Receiver<Ask>,
    gate: Arc<PaceGate>,
) {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(ask) = asks.recv() => match ask {
                Ask::Snapshot(reply) => {
                    let data = Bytes::from(term.snapshot());
                    metrics::SNAPSHOT_BYTES.observe(data.len() as f64);
                    let (cols, rows) = term.size();
                    let _ = reply.send(Snap { offset, cols, rows, data });
                }
                Ask::Thumbnail(reply) => {
                    let _ = reply.send(term.thumbnail(offset));
                }
            },
            next = feed.recv() => match next {
                Some(Feed::Output(bytes)) => {
                    let (fed, resize) = feed_batch(&mut term, bytes, &mut feed, &mut batch, &gate);
                    offset += fed as u64;
                    if let Some((c, r)) = resize {
                        term.resize(c, r);
                    }
                }
                Some(Feed::Resize(c, r)) => term.resize(c, r),
                None => break,
            },
        }
    }
}

/// Feeds `first` and the output queued behind it as one batch (so that a flood is seen as
/// one, see `term::flood`), up to a resize; returns the bytes fed and that resize.
fn feed_batch(
    term: &mut TermState,
    first: Bytes,
    feed: &mut mpsc::Receiver<Feed>,
    batch: &mut Vec<u8>,
    gate: &PaceGate,
) -> (usize, Option<(u16, u16)>) {
    let mut chunks = 1;
    let mut resize = None;
    while first.len() + batch.len() < MAX_BATCH {
        match feed.try_recv() {
            Ok(Feed::Output(b)) => {
                if batch.is_empty() {
                    batch.extend_from_slice(&first);
                }
                batch.extend_from_slice(&b);
                chunks += 1;
            }
            Ok(Feed::Resize(c, r)) => {
                resize = Some((c, r));
                break;
            }
            Err(_) => break,
        }
    }
    let fed = if batch.is_empty() {
        term.feed(&first);
        first.len()
    } else {
        term.feed(batch);
        batch.len()
    };
    gate.term_done(fed, chunks);
    batch.clear();
    if batch.capacity() > KEPT_BATCH_CAPACITY {
        *batch = Vec::new();
    }
    (fed, resize)
}

/// The emulator threads of this actix system (one per core, at most four), started lazily.
fn pool_arbiter() -> Option<ArbiterHandle> {
    static POOL: Mutex<Option<(usize, Vec<ArbiterHandle>, usize)>> = Mutex::new(None);
    let system = System::try_current()?.id();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = !matches!(&*pool, Some((id, _, _)) if *id == system);
    if fresh {
        let n = std::thread::available_parallelism()
            .map(|n| n.get().clamp(1, 4))
            .unwrap_or(1);
        let arbiters = (0..n).map(|_| Arbiter::new().handle()).collect();
        *pool = Some((system, arbiters, 0));
    }
    let (_, arbiters, next) = pool.as_mut()?;
    let handle = arbiters[*next % arbiters.len()].clone();
    *next = next.wrapping_add(1);
    Some(handle)
}
