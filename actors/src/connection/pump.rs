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
                Poll::Ready(None) => {
                    // A frame still held (the peer's close, say) goes if there is room.
                    if let Some(frame) = this.held.take() {
                        let _ = this.tx.try_send(frame);
                    }
                    return Poll::Ready(());
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
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    /// A socket with scripted client frames; it counts pings and the frames taken from it.
    #[derive(Default)]
    struct Script {
        frames: std::collections::VecDeque<Inbound>,
        taken: usize,
        pings: usize,
        /// Polled only to write (no room for a frame).
        write_only_polls: usize,
        ended: bool,
    }

    struct FakeSocket(Rc<RefCell<Script>>);

    impl FrameSocket for FakeSocket {
        fn poll_frame(&mut self, _: &mut Context<'_>, read: bool) -> Poll<Option<Inbound>> {
            let mut s = self.0.borrow_mut();
            if !read {
                s.write_only_polls += 1;
                return Poll::Pending;
            }
            match s.frames.pop_front() {
                Some(f) => {
                    s.taken += 1;
                    Poll::Ready(Some(f))
                }
                None if s.ended => Poll::Ready(None),
                None => Poll::Pending,
            }
        }

        fn ping(&mut self) {
            self.0.borrow_mut().pings += 1;
        }
    }

    fn start(
        script: Script,
        ping: Duration,
        timeout: Duration,
    ) -> (Rc<RefCell<Script>>, mpsc::Receiver<Inbound>) {
        let s = Rc::new(RefCell::new(script));
        let rx = spawn(FakeSocket(s.clone()), Keepalive::new(ping, timeout));
        (s, rx)
    }

    #[actix::test]
    async fn pongs_stay_on_the_socket_task_and_other_frames_arrive_in_order() {
        let mut script = Script::default();
        script.frames.extend([
            Inbound::Pong,
            Inbound::Text("a".into()),
            Inbound::Pong,
            Inbound::Binary(bytes::Bytes::from_static(b"b")),
        ]);
        script.ended = true;
        let (s, rx) = start(script, Duration::from_secs(60), Duration::from_secs(120));
        let got: Vec<_> = tokio::time::timeout(Duration::from_secs(10), rx.collect::<Vec<_>>())
            .await
            .expect("the stream did not end with the socket");
        assert!(
            matches!(&got[..], [Inbound::Text(t), Inbound::Binary(b)] if t == "a" && &b[..] == b"b"),
            "{got:?}"
        );
        assert_eq!(s.borrow().taken, 4);
    }

    #[actix::test]
    async fn a_connection_that_takes_nothing_stops_the_reads_not_the_writes() {
        let mut script = Script::default();
        script
            .frames
            .extend((0..100).map(|i| Inbound::Text(i.to_string())));
        let (s, rx) = start(script, Duration::from_secs(60), Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The channel's frames, one per sender, and the one the pump holds.
        assert_eq!(s.borrow().taken, FRAMES_AHEAD + 2);
        assert!(
            s.borrow().write_only_polls > 0,
            "the socket was not left to write"
        );
        drop(rx);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The pump woke for the dropped receiver (it was parked) and let the socket go.
        assert_eq!(
            Rc::strong_count(&s),
            1,
            "the socket outlived its connection"
        );
    }

    #[actix::test]
    async fn pings_go_to_the_socket_and_silence_to_the_connection_once() {
        let (s, mut rx) = start(
            Script::default(),
            Duration::from_millis(100),
            Duration::from_millis(300),
        );
        let first = tokio::time::timeout(Duration::from_secs(10), rx.next()).await;
        assert!(matches!(first, Ok(Some(Inbound::Silent))), "{first:?}");
        assert!(s.borrow().pings >= 2, "pings: {}", s.borrow().pings);
        let again = tokio::time::timeout(Duration::from_millis(500), rx.next()).await;
        assert!(again.is_err(), "silence told twice: {again:?}");
    }
}
