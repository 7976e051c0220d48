//! A connection's outbound queue: bounded in frames and in bytes, never awaited by a sender.
//! A full queue marks the connection a slow consumer (4003) instead of slowing anyone else.
//!
//! The queue also reports what flow control needs (SPEC §8): when the writer last made
//! progress (stall detection), queued output can be discarded for a resync, and the control
//! holder's writer reopens the session's [`PaceGate`] once its queue has drained.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::task::AtomicWaker;
use futures_util::Stream;

use crate::pace::PaceGate;
use crate::protocol::close;

/// Most frames one connection may have queued, whatever their size.
pub const MAX_QUEUED_FRAMES: usize = 1024;

/// One frame for the client. Payloads are shared `Bytes`, so fan-out copies no data.
#[derive(Debug, Clone)]
pub enum OutFrame {
    /// Terminal output.
    Binary(Bytes),
    /// A JSON control frame (UTF-8).
    Text(Bytes),
    /// Server heartbeat.
    Ping(Bytes),
    /// Answer to a client ping.
    Pong(Bytes),
    /// An orderly close, delivered after everything queued before it.
    Close(u16),
}

impl OutFrame {
    /// Bytes this frame counts against `ws.max_outbound_bytes`.
    pub fn cost(&self) -> usize {
        match self {
            OutFrame::Binary(b) | OutFrame::Text(b) | OutFrame::Ping(b) | OutFrame::Pong(b) => {
                b.len() + 14
            }
            OutFrame::Close(_) => 32,
        }
    }

    /// A text frame from a JSON string.
    pub fn text(json: String) -> Self {
        OutFrame::Text(Bytes::from(json))
    }
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue was over its byte or frame budget; the connection is now closing with 4003.
    #[error("slow consumer")]
    Overflow,
    /// The connection is closing or gone.
    #[error("connection closed")]
    Closed,
}

struct Shared {
    queued: AtomicUsize,
    frames: AtomicUsize,
    max_bytes: usize,
    /// 0 while open; otherwise the close code of an urgent close (sent before anything queued).
    urgent_close: AtomicU32,
    waker: AtomicWaker,
    /// Sequence number of the next pushed frame.
    pushed: AtomicU64,
    /// Output frames pushed before this sequence number are dropped unsent (resync).
    discard_below: AtomicU64,
    /// When the writer last took a frame (or one was queued behind none), in ms since creation.
    progress_ms: AtomicU64,
    created: Instant,
    /// The session's gate, once this queue belongs to a participant of a hub.
    gate: OnceLock<Arc<PaceGate>>,
    /// Whether this queue paces its session (it belongs to the control holder).
    pacing: AtomicBool,
    /// Below this many queued bytes a pacing queue reopens the gate.
    pace_low_bytes: AtomicUsize,
    /// Output bytes dropped unsent by `discard_output`.
    discarded: AtomicU64,
}

/// Below this many queued frames a pacing queue reopens the gate.
pub const PACE_LOW_FRAMES: usize = MAX_QUEUED_FRAMES / 4;
/// Above this many queued frames a pacing queue closes the gate (well before the hard cap).
pub const PACE_HIGH_FRAMES: usize = MAX_QUEUED_FRAMES / 2;

/// The sending half; cheap to clone, shared by the hub and the connection (each copy is used
/// by one thread: it is `Send`, not `Sync`).
///
/// The channel underneath is bounded (`MAX_QUEUED_FRAMES`) and a linked list: it allocates per
/// queued frame and holds nothing while idle (a block-based channel keeps ~2 KiB per connection
/// even when empty). [`push`](Self::push) also counts each frame and its bytes before sending
/// it, refusing it beyond `MAX_QUEUED_FRAMES` or `max_bytes`; the writer uncounts what it takes.
pub struct OutboundTx {
    /// A bounded sender needs `&mut` to send (it keeps its own parking state); the cell gives
    /// each copy its own sender without a lock.
    tx: RefCell<mpsc::Sender<(u64, OutFrame)>>,
    shared: Arc<Shared>,
    /// Set on every frame pushed through this copy (the hub's: see `noting_pushes`).
    pushed: Option<Arc<AtomicBool>>,
}

impl Clone for OutboundTx {
    fn clone(&self) -> Self {
        OutboundTx {
            tx: RefCell::new(self.tx.borrow().clone()),
            shared: self.shared.clone(),
            pushed: self.pushed.clone(),
        }
    }
}

/// The receiving half, read by the socket writer.
pub struct OutboundRx {
    rx: mpsc::Receiver<(u64, OutFrame)>,
    shared: Arc<Shared>,
    done: bool,
    /// A heartbeat ping is due: it goes out before the next queued frame.
    ping_due: bool,
}

/// Creates a queue that holds at most `max_bytes` of payload.
pub fn channel(max_bytes: usize) -> (OutboundTx, OutboundRx) {
    // Capacity is `MAX_QUEUED_FRAMES` plus one per sender; `push` refuses at the cap first.
    let (tx, rx) = mpsc::channel(MAX_QUEUED_FRAMES);
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        frames: AtomicUsize::new(0),
        max_bytes,
        urgent_close: AtomicU32::new(0),
        waker: AtomicWaker::new(),
        pushed: AtomicU64::new(0),
        discard_below: AtomicU64::new(0),
        progress_ms: AtomicU64::new(0),
        created: Instant::now(),
        gate: OnceLock::new(),
        pacing: AtomicBool::new(false),
        pace_low_bytes: AtomicUsize::new(0),
        discarded: AtomicU64::new(0),
    });
    (
        OutboundTx {
            tx: RefCell::new(tx),
            shared: shared.clone(),
            pushed: None,
        },
        OutboundRx {
            rx,
            shared,
            done: false,
            ping_due: false,
        },
    )
}

impl OutboundTx {
    /// This copy sets `flag` whenever it queues a frame. The hub marks its own copies with one
    /// flag (read and cleared only on its thread), so its tick can skip the stall scan while
    /// nothing was queued.
    pub fn noting_pushes(mut self, flag: Arc<AtomicBool>) -> Self {
        self.pushed = Some(flag);
        self
    }

    /// Queues a frame without waiting. Over budget, the connection is closed with 4003.
    pub fn push(&self, frame: OutFrame) -> Result<(), PushError> {
        if self.urgent_close_code().is_some() {
            return Err(PushError::Closed);
        }
        let cost = frame.cost();
        let before = self.shared.queued.fetch_add(cost, Ordering::AcqRel);
        // Counted before the send, so the writer never takes a frame not yet counted. A frame
        // queued behind none starts the stall clock: time spent idle is not a stall.
        let frames_before = self.shared.frames.fetch_add(1, Ordering::AcqRel);
        if before + cost > self.shared.max_bytes || frames_before >= MAX_QUEUED_FRAMES {
            self.uncount(cost);
            self.close_urgently(close::SLOW_CONSUMER);
            return Err(PushError::Overflow);
        }
        if frames_before == 0 {
            let now = self.shared.created.elapsed().as_millis() as u64;
            self.shared.progress_ms.fetch_max(now, Ordering::AcqRel);
        }
        let seq = self.shared.pushed.fetch_add(1, Ordering::AcqRel);
        let sent = self.tx.borrow_mut().try_send((seq, frame));
        match sent {
            Ok(()) => {
                if let Some(f) = &self.pushed {
                    f.store(true, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                self.uncount(cost);
                if e.is_full() {
                    self.close_urgently(close::SLOW_CONSUMER);
                    Err(PushError::Overflow)
                } else {
                    Err(PushError::Closed)
                }
            }
        }
    }

    /// Takes back the count of a frame that was refused.
    fn uncount(&self, cost: usize) {
        self.shared.frames.fetch_sub(1, Ordering::AcqRel);
        self.shared.queued.fetch_sub(cost, Ordering::AcqRel);
    }

    /// Closes ahead of anything still queued (slow consumer, revoke). The first code wins.
    pub fn close_urgently(&self, code: u16) {
        if self
            .shared
            .urgent_close
            .compare_exchange(0, u32::from(code), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.shared.waker.wake();
        }
    }

    /// The urgent close code, once one was requested.
    pub fn urgent_close_code(&self) -> Option<u16> {
        match self.shared.urgent_close.load(Ordering::Acquire) {
            0 => None,
            c => u16::try_from(c).ok(),
        }
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Whether the writer side is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.borrow().is_closed()
    }

    /// Frames queued and not yet taken by the writer.
    pub fn queued_frames(&self) -> usize {
        self.shared.frames.load(Ordering::Acquire)
    }

    /// How long the writer has taken nothing from a non-empty queue (zero when it is empty).
    pub fn stalled_for(&self) -> std::time::Duration {
        if self.queued_frames() == 0 {
            return std::time::Duration::ZERO;
        }
        let last = self.shared.progress_ms.load(Ordering::Acquire);
        let now = self.shared.created.elapsed().as_millis() as u64;
        std::time::Duration::from_millis(now.saturating_sub(last))
    }

    /// Counts as progress now (an acknowledgement arrived).
    pub fn note_progress(&self) {
        let now = self.shared.created.elapsed().as_millis() as u64;
        self.shared.progress_ms.store(now, Ordering::Release);
    }

    /// Drops every output frame queued so far, unsent (text frames still go out).
    pub fn discard_output(&self) {
        let upto = self.shared.pushed.load(Ordering::Acquire);
        self.shared.discard_below.fetch_max(upto, Ordering::AcqRel);
    }

    /// Output bytes dropped unsent so far.
    pub fn discarded_bytes(&self) -> u64 {
        self.shared.discarded.load(Ordering::Acquire)
    }

    /// Ties this queue to its session's gate (once; later calls are ignored).
    pub fn attach_gate(&self, gate: Arc<PaceGate>) {
        let _ = self.shared.gate.set(gate);
    }

    /// Makes this queue pace its session (it holds control) or stop pacing it. While pacing, its
    /// writer reopens the gate once fewer than `low_bytes` and `PACE_LOW_FRAMES` are queued.
    pub fn set_pacing(&self, on: bool, low_bytes: usize) {
        self.shared
            .pace_low_bytes
            .store(low_bytes, Ordering::Release);
        self.shared.pacing.store(on, Ordering::Release);
    }

    /// Whether a pacing queue has drained far enough to reopen the gate.
    pub fn drained_below(&self, low_bytes: usize) -> bool {
        self.queued_bytes() <= low_bytes && self.queued_frames() <= PACE_LOW_FRAMES
    }

    /// Whether this queue is over `window` bytes or `PACE_HIGH_FRAMES` frames.
    pub fn over(&self, window: usize) -> bool {
        self.queued_bytes() > window || self.queued_frames() > PACE_HIGH_FRAMES
    }
}

impl OutboundRx {
    /// Asks for a heartbeat ping, taken ahead of anything queued. It takes no room in the
    /// queue: a ping that finds the queue full of output is no sign of a slow consumer (the
    /// hub's resync and stall checks judge that), and a lagging observer must still be asked
    /// for its pong. Pings asked for before the writer took the last one are one ping; none
    /// follows an urgent close. Called by the writer itself, which polls the queue next: no
    /// wake-up.
    pub fn ping(&mut self) {
        self.ping_due = true;
    }

    /// Whether an urgent close was requested: frames taken but not yet written may be dropped.
    pub fn closed_urgently(&self) -> bool {
        self.shared.urgent_close.load(Ordering::Acquire) != 0
    }
}

impl Stream for OutboundRx {
    type Item = OutFrame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<OutFrame>> {
        if self.done {
            return Poll::Ready(None);
        }
        self.shared.waker.register(cx.waker());
        let urgent = self.shared.urgent_close.load(Ordering::Acquire);
        if urgent != 0 {
            self.done = true;
            self.rx.close();
            return Poll::Ready(Some(OutFrame::Close(
                u16::try_from(urgent).unwrap_or(close::INTERNAL_ERROR),
            )));
        }
        if std::mem::take(&mut self.ping_due) {
            return Poll::Ready(Some(OutFrame::Ping(Bytes::new())));
        }
        loop {
            match Pin::new(&mut self.rx).poll_next(cx) {
                Poll::Ready(Some((seq, frame))) => {
                    let sh = &self.shared;
                    sh.queued.fetch_sub(frame.cost(), Ordering::AcqRel);
                    sh.frames.fetch_sub(1, Ordering::AcqRel);
                    sh.progress_ms
                        .store(sh.created.elapsed().as_millis() as u64, Ordering::Release);
                    if sh.pacing.load(Ordering::Acquire)
                        && sh.queued.load(Ordering::Acquire)
                            <= sh.pace_low_bytes.load(Ordering::Acquire)
                        && sh.frames.load(Ordering::Acquire) <= PACE_LOW_FRAMES
                    {
                        if let Some(g) = sh.gate.get() {
                            g.set_holder_queue_full(false);
                        }
                    }
                    if let OutFrame::Binary(b) = &frame {
                        if seq < sh.discard_below.load(Ordering::Acquire) {
                            sh.discarded.fetch_add(b.len() as u64, Ordering::AcqRel);
                            continue;
                        }
                    }
                    if matches!(frame, OutFrame::Close(_)) {
                        self.done = true;
                        self.rx.close();
                    }
                    return Poll::Ready(Some(frame));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn over_budget_closes_with_4003_ahead_of_queue() {
        let (tx, mut rx) = channel(100);
        tx.push(OutFrame::Binary(Bytes::from_static(&[0; 40])))
            .unwrap();
        assert_eq!(
            tx.push(OutFrame::Binary(Bytes::from_static(&[0; 60]))),
            Err(PushError::Overflow)
        );
        assert_eq!(tx.urgent_close_code(), Some(close::SLOW_CONSUMER));
        assert!(matches!(rx.next().await, Some(OutFrame::Close(4003))));
        assert!(rx.next().await.is_none());
        assert_eq!(
            tx.push(OutFrame::Binary(Bytes::new())),
            Err(PushError::Closed)
        );
    }

    #[tokio::test]
    async fn the_frame_cap_holds_whatever_the_byte_budget() {
        let (tx, mut rx) = channel(1 << 30);
        for _ in 0..MAX_QUEUED_FRAMES {
            tx.push(OutFrame::Binary(Bytes::from_static(b"x"))).unwrap();
        }
        assert_eq!(tx.queued_frames(), MAX_QUEUED_FRAMES);
        assert_eq!(
            tx.push(OutFrame::Binary(Bytes::from_static(b"x"))),
            Err(PushError::Overflow)
        );
        assert_eq!(tx.urgent_close_code(), Some(close::SLOW_CONSUMER));
        // The refused frame was never counted; the close goes out ahead of the queue.
        assert_eq!(tx.queued_frames(), MAX_QUEUED_FRAMES);
        assert!(matches!(rx.next().await, Some(OutFrame::Close(4003))));
        assert!(rx.next().await.is_none());
    }

    #[tokio::test]
    async fn an_idle_queue_gives_its_frames_back_and_refuses_once_the_writer_is_gone() {
        let (tx, mut rx) = channel(1 << 20);
        for _ in 0..3 {
            tx.push(OutFrame::text("{}".into())).unwrap();
        }
        for _ in 0..3 {
            assert!(matches!(rx.next().await, Some(OutFrame::Text(_))));
        }
        assert_eq!((tx.queued_bytes(), tx.queued_frames()), (0, 0));
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.push(OutFrame::text("{}".into())), Err(PushError::Closed));
        assert_eq!((tx.queued_bytes(), tx.queued_frames()), (0, 0));
    }

    #[tokio::test]
    async fn a_ping_goes_out_ahead_of_a_full_queue_without_closing_it() {
        let (tx, mut rx) = channel(100);
        tx.push(OutFrame::Binary(Bytes::from_static(&[0; 80])))
            .unwrap();
        rx.ping();
        rx.ping();
        assert_eq!(tx.urgent_close_code(), None, "a ping is no overflow");
        assert!(matches!(rx.next().await, Some(OutFrame::Ping(_))));
        assert!(matches!(rx.next().await, Some(OutFrame::Binary(_))));
        // Two pings asked for before the writer came round are one.
        tx.push(OutFrame::text("{}".into())).unwrap();
        assert!(matches!(rx.next().await, Some(OutFrame::Text(_))));
        tx.close_urgently(close::SLOW_CONSUMER);
        rx.ping();
        assert!(matches!(
            rx.next().await,
            Some(OutFrame::Close(close::SLOW_CONSUMER))
        ));
        assert!(rx.next().await.is_none(), "a ping after the urgent close");
    }

    #[tokio::test]
    async fn discarded_output_is_dropped_but_text_and_later_output_go_out() {
        let (tx, mut rx) = channel(10_000);
        tx.push(OutFrame::Binary(Bytes::from_static(b"old")))
            .unwrap();
        tx.push(OutFrame::text("{\"type\":\"control\"}".into()))
            .unwrap();
        tx.push(OutFrame::Binary(Bytes::from_static(b"older")))
            .unwrap();
        tx.discard_output();
        tx.push(OutFrame::Binary(Bytes::from_static(b"new")))
            .unwrap();
        assert!(matches!(rx.next().await, Some(OutFrame::Text(_))));
        match rx.next().await {
            Some(OutFrame::Binary(b)) => assert_eq!(&b[..], b"new"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!((tx.queued_bytes(), tx.queued_frames()), (0, 0));
    }

    #[tokio::test]
    async fn a_pacing_queue_reopens_its_gate_once_drained() {
        let gate = PaceGate::new(1 << 20);
        let (tx, mut rx) = channel(1 << 20);
        tx.attach_gate(gate.clone());
        // Each frame costs 114 bytes: the gate reopens with one frame left.
        tx.set_pacing(true, 120);
        for _ in 0..3 {
            tx.push(OutFrame::Binary(Bytes::from(vec![0u8; 100])))
                .unwrap();
        }
        gate.set_holder_queue_full(true);
        assert!(tx.over(200));
        let _ = rx.next().await;
        assert!(gate.closed(), "still 228 bytes queued");
        let _ = rx.next().await;
        assert!(!gate.closed());
    }

    #[tokio::test]
    async fn an_idle_queue_is_not_stalled_when_a_frame_arrives() {
        let (tx, mut rx) = channel(1000);
        tx.push(OutFrame::text("{}".into())).unwrap();
        let _ = rx.next().await;
        // Idle (nothing queued) for longer than the check below: that is no stall.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tx.push(OutFrame::text("{}".into())).unwrap();
        assert!(tx.stalled_for() < std::time::Duration::from_millis(200));
        // Queued and not taken: the clock runs from the push.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(tx.stalled_for() >= std::time::Duration::from_millis(300));
        let _ = rx.next().await;
        assert_eq!(tx.stalled_for(), std::time::Duration::ZERO);
    }

    #[tokio::test]
    async fn orderly_close_follows_queued_frames() {
        let (tx, mut rx) = channel(1000);
        tx.push(OutFrame::text("{}".into())).unwrap();
        tx.push(OutFrame::Close(1000)).unwrap();
        assert!(matches!(rx.next().await, Some(OutFrame::Text(_))));
        assert_eq!(tx.queued_bytes(), 32);
        assert!(matches!(rx.next().await, Some(OutFrame::Close(1000))));
        assert!(rx.next().await.is_none());
        assert_eq!(tx.queued_bytes(), 0);
    }
}
