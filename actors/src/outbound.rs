//! A connection's outbound queue: bounded in frames and in bytes, never awaited by a sender.
//! A full queue marks the connection a slow consumer (4003) instead of slowing anyone else.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::Stream;
use tokio::sync::mpsc;

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
    max_bytes: usize,
    /// 0 while open; otherwise the close code of an urgent close (sent before anything queued).
    urgent_close: AtomicU32,
    waker: AtomicWaker,
}

/// The sending half; cheap to clone, shared by the hub and the connection.
#[derive(Clone)]
pub struct OutboundTx {
    tx: mpsc::Sender<OutFrame>,
    shared: Arc<Shared>,
}

/// The receiving half, read by the socket writer.
pub struct OutboundRx {
    rx: mpsc::Receiver<OutFrame>,
    shared: Arc<Shared>,
    done: bool,
}

/// Creates a queue that holds at most `max_bytes` of payload.
pub fn channel(max_bytes: usize) -> (OutboundTx, OutboundRx) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_FRAMES);
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        max_bytes,
        urgent_close: AtomicU32::new(0),
        waker: AtomicWaker::new(),
    });
    (
        OutboundTx {
            tx,
            shared: shared.clone(),
        },
        OutboundRx {
            rx,
            shared,
            done: false,
        },
    )
}

impl OutboundTx {
    /// Queues a frame without waiting. Over budget, the connection is closed with 4003.
    pub fn push(&self, frame: OutFrame) -> Result<(), PushError> {
        if self.urgent_close_code().is_some() {
            return Err(PushError::Closed);
        }
        let cost = frame.cost();
        let before = self.shared.queued.fetch_add(cost, Ordering::AcqRel);
        if before + cost > self.shared.max_bytes {
            self.shared.queued.fetch_sub(cost, Ordering::AcqRel);
            self.close_urgently(close::SLOW_CONSUMER);
            return Err(PushError::Overflow);
        }
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.queued.fetch_sub(cost, Ordering::AcqRel);
                self.close_urgently(close::SLOW_CONSUMER);
                Err(PushError::Overflow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.queued.fetch_sub(cost, Ordering::AcqRel);
                Err(PushError::Closed)
            }
        }
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
        self.tx.is_closed()
    }
}

impl OutboundRx {
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
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(frame)) => {
                self.shared.queued.fetch_sub(frame.cost(), Ordering::AcqRel);
                if matches!(frame, OutFrame::Close(_)) {
                    self.done = true;
                    self.rx.close();
                }
                Poll::Ready(Some(frame))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
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
