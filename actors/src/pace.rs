//! The session's pace: whether the hub may read the next chunk of backend output. Reading stops
//! while the terminal emulator lags too far behind or the control holder's window is full.
//!
//! Everything here is atomics and one `AtomicWaker`: whoever drains a counter below its low
//! watermark wakes the hub's output stream. No lock sits on the output path.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use futures_util::Stream;

/// Shared pace state of one session.
#[derive(Debug)]
pub struct PaceGate {
    /// Output bytes handed to the emulator and not yet processed.
    term_bytes: AtomicUsize,
    /// Output chunks handed to the emulator and not yet processed.
    term_chunks: AtomicUsize,
    term_high_bytes: usize,
    term_high_chunks: usize,
    /// The control holder's flow window, in bytes (`flow.window_bytes`); 0 = not paced.
    window: AtomicUsize,
    /// Output offset sent to the holder's queue.
    holder_sent: AtomicU64,
    /// Output offset the holder has acknowledged or written to its socket, whichever is larger.
    holder_done: AtomicU64,
    /// Whether a holder currently paces the session.
    holder_pacing: AtomicBool,
    /// Set while the hub's stream waits on this gate.
    parked: AtomicBool,
    waker: AtomicWaker,
    paused_ns: AtomicU64,
}

impl PaceGate {
    /// A gate that lets the emulator lag at most `term_high_bytes` (and 1,024 chunks).
    pub fn new(term_high_bytes: usize) -> Arc<Self> {
        Arc::new(PaceGate {
            term_bytes: AtomicUsize::new(0),
            term_chunks: AtomicUsize::new(0),
            term_high_bytes: term_high_bytes.max(1),
            term_high_chunks: 1024,
            window: AtomicUsize::new(0),
            holder_sent: AtomicU64::new(0),
            holder_done: AtomicU64::new(0),
            holder_pacing: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            paused_ns: AtomicU64::new(0),
        })
    }

    /// Whether the hub must stop reading the backend now.
    pub fn closed(&self) -> bool {
        if self.term_bytes.load(Ordering::Acquire) >= self.term_high_bytes
            || self.term_chunks.load(Ordering::Acquire) >= self.term_high_chunks
        {
            return true;
        }
        if self.holder_pacing.load(Ordering::Acquire) {
            let window = self.window.load(Ordering::Acquire) as u64;
            let sent = self.holder_sent.load(Ordering::Acquire);
            let done = self.holder_done.load(Ordering::Acquire);
            return sent.saturating_sub(done) > window;
        }
        false
    }

    /// A chunk of `len` bytes went to the emulator.
    pub fn term_sent(&self, len: usize) {
        self.term_bytes.fetch_add(len, Ordering::AcqRel);
        self.term_chunks.fetch_add(1, Ordering::AcqRel);
    }

    /// The emulator processed a chunk of `len` bytes.
    pub fn term_done(&self, len: usize) {
        self.term_bytes.fetch_sub(len, Ordering::AcqRel);
        self.term_chunks.fetch_sub(1, Ordering::AcqRel);
        self.wake_if_open();
    }

    /// Bytes the emulator has not processed yet.
    pub fn term_lag(&self) -> usize {
        self.term_bytes.load(Ordering::Acquire)
    }

    /// A holder starts pacing the session with a window of `window` bytes, from `offset`.
    pub fn pace_by_holder(&self, window: usize, offset: u64) {
        self.window.store(window, Ordering::Release);
        self.holder_sent.store(offset, Ordering::Release);
        self.holder_done.store(offset, Ordering::Release);
        self.holder_pacing.store(window > 0, Ordering::Release);
        self.wake_if_open();
    }

    /// Nobody paces the session (no holder, or the holder stalled).
    pub fn unpace(&self) {
        self.holder_pacing.store(false, Ordering::Release);
        self.wake_if_open();
    }

    /// Output up to `offset` was queued to the holder.
    pub fn holder_queued(&self, offset: u64) {
        self.holder_sent.store(offset, Ordering::Release);
    }

    /// The holder rendered (ack) or its socket took (write) output up to `offset`.
    pub fn holder_progress(&self, offset: u64) {
        self.holder_done.fetch_max(offset, Ordering::AcqRel);
        self.wake_if_open();
    }

    /// Output offset the holder has not yet taken, as (sent, done).
    pub fn holder_window(&self) -> (u64, u64) {
        (
            self.holder_sent.load(Ordering::Acquire),
            self.holder_done.load(Ordering::Acquire),
        )
    }

    /// Total time the backend was not read because of this gate.
    pub fn paused(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.paused_ns.load(Ordering::Relaxed))
    }

    fn wake_if_open(&self) {
        if self.parked.load(Ordering::Acquire) && !self.closed() {
            self.waker.wake();
        }
    }
}

/// Wraps the hub's backend stream: it is not polled while the gate is closed, so the backend's
/// bounded channel fills and the backend stops reading the program (which blocks on write).
pub struct Gated<S> {
    inner: S,
    gate: Arc<PaceGate>,
    since: Option<std::time::Instant>,
}

impl<S> Gated<S> {
    /// `inner`, read only while `gate` is open.
    pub fn new(inner: S, gate: Arc<PaceGate>) -> Self {
        Gated {
            inner,
            gate,
            since: None,
        }
    }
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.gate.closed() {
            self.gate.waker.register(cx.waker());
            self.gate.parked.store(true, Ordering::Release);
            // Re-check after registering: progress may have happened in between.
            if self.gate.closed() {
                if self.since.is_none() {
                    self.since = Some(std::time::Instant::now());
                    crate::metrics::PACED_WAITS.inc();
                }
                return Poll::Pending;
            }
        }
        self.gate.parked.store(false, Ordering::Release);
        if let Some(t) = self.since.take() {
            let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.gate.paused_ns.fetch_add(ns, Ordering::Relaxed);
            crate::metrics::PACED_SECONDS.inc_by(ns as f64 / 1e9);
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_lag_closes_and_reopens_the_gate() {
        let g = PaceGate::new(100);
        assert!(!g.closed());
        g.term_sent(60);
        assert!(!g.closed());
        g.term_sent(60);
        assert!(g.closed());
        g.term_done(60);
        assert!(!g.closed());
    }

    #[test]
    fn a_holder_window_paces_until_progress() {
        let g = PaceGate::new(1 << 20);
        g.pace_by_holder(1000, 500);
        g.holder_queued(1400);
        assert!(!g.closed());
        g.holder_queued(1600);
        assert!(g.closed());
        g.holder_progress(700);
        assert!(!g.closed());
        g.holder_queued(5000);
        assert!(g.closed());
        g.unpace();
        assert!(!g.closed());
    }
}
