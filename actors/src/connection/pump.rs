//! The socket's own task: it writes the outbound queue, keeps the heartbeat (pings, pongs,
//! silence) and hands every other client frame to the connection actor, a few at a time.
//!
//! An idle connection's ping and pong are handled here and never poll the actor; output wakes
//! only this task. When the actor takes no frames (it is paused, or busy), reads stop and writes
//! go on; when the socket ends, the actor's frame stream ends; when the actor is gone, the
//! socket is dropped at the next frame or once its queue ends.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_channel::mpsc;

use super::Inbound;
use crate::keepalive::{Beat, Keepalive};

/// A client socket as the pump drives it (the edge crate's WebSocket).
pub trait FrameSocket: Unpin + 'static {
    /// Writes what is queued and, if `read`, yields the next client frame; without `read` it
    /// only writes. `Ready(None)`: the socket is finished.
    fn poll_frame(&mut self, cx: &mut Context<'_>, read: bool) -> Poll<Option<Inbound>>;
    /// Asks for a heartbeat ping, written on the next poll ahead of anything queued.
    fn ping(&mut self);
}

/// Client frames the channel holds ahead of the actor (the pump holds one more, and the
/// channel one per sender): reads stop beyond them.
pub const FRAMES_AHEAD: usize = 2;

/// Runs `socket` on a task of the current thread; the connection takes its frames from the
/// returned stream.
pub fn spawn<S: FrameSocket>(socket: S, keepalive: Keepalive) -> mpsc::Receiver<Inbound> {
    let (tx, rx) = mpsc::channel(FRAMES_AHEAD);
    tokio::task::spawn_local(Pump {
        socket,
        keepalive,
        tx,
        held: None,
        silence_due: false,
    });
    rx
}

struct Pump<S> {
    socket: S,
    keepalive: Keepalive,
    tx: mpsc::Sender<Inbound>,
    /// A frame read and not yet handed over (the channel was full).
    held: Option<Inbound>,
    /// Silence was noticed and is not yet handed over.
    silence_due: bool,
}

impl<S: FrameSocket> Pump<S> {
    /// Hands over what is held, if the connection has room. The channel is touched only when
    /// there is something to hand over: a ping, a pong or output never does.
    fn hand_over(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), mpsc::SendError>> {
        while self.silence_due || self.held.is_some() {
            ready!(self.tx.poll_ready(cx))?;
            let frame = match self.held.take() {
                Some(f) => f,
                None => {
                    self.silence_due = false;
                    Inbound::Silent
                }
            };
            self.tx.start_send(frame)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: FrameSocket> Future for Pump<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            while let Poll::Ready(beat) = this.keepalive.poll_beat(cx) {
                match beat {
                    Beat::Ping => this.socket.ping(),
                    Beat::Silent => this.silence_due = true,
                }
            }
            // The connection is gone: so is its socket.
            let room = match this.hand_over(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => false,
            };
            match this.socket.poll_frame(cx, room) {
                Poll::Ready(Some(frame)) => {
                    this.keepalive.heard();
                    if !matches!(frame, Inbound::Pong) {
                        this.held = Some(frame);
                    }
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
