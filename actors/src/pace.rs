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
    /// The holder's outbound queue is over the window (set by the hub, cleared by its writer).
    holder_queue_full: AtomicBool,
    /// The holder's unacknowledged output is over the window (set and cleared by the hub).
    holder_unacked_full: AtomicBool,
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
            holder_queue_full: AtomicBool::new(false),
            holder_unacked_full: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            paused_ns: AtomicU64::new(0),
        })
    }

    /// Whether the hub must stop reading the backend now.
    pub fn closed(&self) -> bool {
        self.term_bytes.load(Ordering::Acquire) >= self.term_high_bytes
            || self.term_chunks.load(Ordering::Acquire) >= self.term_high_chunks
            || self.holder_queue_full.load(Ordering::Acquire)
            || self.holder_unacked_full.load(Ordering::Acquire)
    }

    /// A chunk of `len` bytes went to the emulator.
    pub fn term_sent(&self, len: usize) {
        self.term_bytes.fetch_add(len, Ordering::AcqRel);
        self.term_chunks.fetch_add(1, Ordering::AcqRel);
    }

    /// The emulator processed `chunks` chunks of `len` bytes in all.
    pub fn term_done(&self, len: usize, chunks: usize) {
        self.term_bytes.fetch_sub(len, Ordering::AcqRel);
        self.term_chunks.fetch_sub(chunks, Ordering::AcqRel);
        self.wake_if_open();
    }

    /// Bytes the emulator has not processed yet.
    pub fn term_lag(&self) -> usize {
        self.term_bytes.load(Ordering::Acquire)
    }

    /// The holder's queue went over the window (hub) or drained below its low mark (writer).
    pub fn set_holder_queue_full(&self, full: bool) {
        self.holder_queue_full.store(full, Ordering::Release);
        if !full {
            self.wake_if_open();
        }
    }

    /// The holder's unacknowledged output went over the window, or came back under it.
    pub fn set_holder_unacked_full(&self, full: bool) {
        self.holder_unacked_full.store(full, Ordering::Release);
        if !full {
            self.wake_if_open();
        }
    }

    /// Nobody paces the session any more (no holder, or the holder stalled).
    pub fn unpace(&self) {
        self.holder_queue_full.store(false, Ordering::Release);
        self.set_holder_unacked_full(false);
    }

    /// Whether a holder paces the session right now.
    pub fn paced_by_holder(&self) -> bool {
        self.holder_queue_full.load(Ordering::Acquire)
            || self.holder_unacked_full.load(Ordering::Acquire)
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
        g.term_done(60, 1);
        assert!(!g.closed());
    }

    #[test]
    fn a_holder_paces_until_its_queue_drains_and_its_acks_catch_up() {
        let g = PaceGate::new(1 << 20);
        g.set_holder_queue_full(true);
        assert!(g.closed() && g.paced_by_holder());
        g.set_holder_unacked_full(true);
        g.set_holder_queue_full(false);
        assert!(g.closed());
        g.set_holder_unacked_full(false);
        assert!(!g.closed());
        g.set_holder_queue_full(true);
        g.unpace();
        assert!(!g.closed());
    }
}
