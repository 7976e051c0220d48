//! The socket of an accepted WebSocket, owned by its connection: yields client frames, writes
//! the outbound queue (header and shared payload side by side, several frames per syscall).
//!
//! An idle socket holds no buffer: reads land in a stack buffer first, and the decoder drops
//! its buffer whenever it is empty. After the close frame is written the write half is shut
//! down and the socket is read until the peer's close or EOF, for at most `CLOSE_LINGER`; a
//! close that cannot be written (the peer reads nothing) ends the socket `CLOSE_LINGER` after
//! it was taken from the queue.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_codec::{AsyncRead, AsyncWrite, ReadBuf};
use attachd_actors::connection::{FrameSocket, Inbound};
use attachd_actors::outbound::{OutFrame, OutboundRx};
use bytes::Bytes;
use futures_util::{Future, Stream};
use smallvec::SmallVec;
use tokio::time::Sleep;

use crate::capacity::Permit;
use crate::ws::decode::FrameDecoder;
use crate::ws::frame::{self, MAX_HEADER};

/// Any byte stream a WebSocket can run on (TCP, TLS).
pub trait WsIo: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> WsIo for T {}

/// Frames taken from the queue per write.
const BATCH: usize = 4;
/// Bytes read per `read` call (on the stack).
const READ_CHUNK: usize = 8 * 1024;
/// How long the peer has to answer our close frame before the socket is dropped.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A frame being written: its header, its payload, and how much of both is out.
struct Pending {
    head: [u8; MAX_HEADER],
    head_len: u8,
    body: Bytes,
    sent: usize,
}

impl Pending {
    fn new(frame: OutFrame) -> Self {
        let (opcode, body) = frame::parts(frame);
        let (head, n) = frame::header(opcode, body.len());
        Pending {
            head,
            head_len: n as u8,
            body,
            sent: 0,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.head_len) + self.body.len()
    }

    /// The unwritten rest, as up to two slices.
    fn rest(&self) -> (&[u8], &[u8]) {
        let h = usize::from(self.head_len);
        if self.sent < h {
            (&self.head[self.sent..h], &self.body[..])
        } else {
            (&[], &self.body[self.sent - h..])
        }
    }
}

/// An accepted WebSocket: a `Stream` of client frames that also drives the writes.
pub struct WsSocket {
    io: Box<dyn WsIo>,
    decoder: FrameDecoder,
    out: OutboundRx,
    batch: SmallVec<[Pending; BATCH]>,
    unflushed: bool,
    /// A close frame is in `batch`; nothing is taken from the queue after it.
    close_queued: bool,
    /// The close frame is written and the write half shut down.
    close_sent: bool,
    /// The queue ended without a close frame (its owner is gone).
    out_ended: bool,
    /// The peer's close frame arrived.
    peer_closed: bool,
    /// Runs from the moment our close frame is taken from the queue, and again once it is out:
    /// the socket ends when it rings.
    linger: Option<Pin<Box<Sleep>>>,
    ended: bool,
    /// The socket's place in `server.max_connections`, given back when it is dropped.
    _permit: Option<Permit>,
}

impl WsSocket {
    /// Takes over `io`; `early` holds bytes the client sent right behind its handshake, and
    /// `permit` the socket's place in `server.max_connections` while it is open.
    pub fn new(
        io: Box<dyn WsIo>,
        early: &[u8],
        permit: Option<Permit>,
        out: OutboundRx,
        max_message: usize,
    ) -> Self {
        let mut decoder = FrameDecoder::new(max_message);
        decoder.feed(early);
        WsSocket {
            io,
            decoder,
            out,
            batch: SmallVec::new(),
            unflushed: false,
            close_queued: false,
            close_sent: false,
            out_ended: false,
            peer_closed: false,
            linger: None,
            ended: false,
            _permit: permit,
        }
    }

    /// Writes what is queued until the queue is empty or the socket is full.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            // An urgent close is taken even into a full batch: it goes ahead of what is there.
            while (self.batch.len() < BATCH || self.out.closed_urgently())
                && !self.close_queued
                && !self.out_ended
            {
                match Pin::new(&mut self.out).poll_next(cx) {
                    Poll::Ready(Some(f)) => {
                        if matches!(f, OutFrame::Close(_)) {
                            self.close_queued = true;
                            // A peer that reads nothing never lets the close out: the linger
                            // bounds that too (it starts again once the close is written).
                            self.linger = Some(Box::pin(tokio::time::sleep(CLOSE_LINGER)));
                            if self.out.closed_urgently() {
                                // Ahead of everything: keep only a frame already half out.
                                self.batch.retain(|p| p.sent > 0);
                            }
                        }
                        self.batch.push(Pending::new(f));
                    }
                    Poll::Ready(None) => self.out_ended = true,
                    Poll::Pending => break,
                }
            }
            if self.batch.is_empty() {
                if self.unflushed {
                    ready!(Pin::new(&mut *self.io).poll_flush(cx))?;
                    self.unflushed = false;
                }
                if self.close_queued && !self.close_sent {
                    // A peer that already left makes shutdown fail; the close is out either way.
                    let _ = ready!(Pin::new(&mut *self.io).poll_shutdown(cx));
                    self.close_sent = true;
                    // The linger started when the close was taken; the peer gets it in full now.
                    let again = tokio::time::Instant::now() + CLOSE_LINGER;
                    match &mut self.linger {
                        Some(l) => l.as_mut().reset(again),
                        None => self.linger = Some(Box::pin(tokio::time::sleep_until(again))),
                    }
                }
                return Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); 2 * BATCH];
            let mut n = 0;
            for p in &self.batch {
                let (h, b) = p.rest();
                for s in [h, b] {
                    if !s.is_empty() {
                        slices[n] = IoSlice::new(s);
                        n += 1;
                    }
                }
            }
            let mut written =
                ready!(Pin::new(&mut *self.io).poll_write_vectored(cx, &slices[..n]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unflushed = true;
            let mut done = 0;
            for p in self.batch.iter_mut() {
                let left = p.len() - p.sent;
                if written >= left {
                    written -= left;
                    done += 1;
                } else {
                    p.sent += written;
                    break;
                }
            }
            self.batch.drain(..done);
        }
    }

    /// Reads once into a stack buffer and feeds the decoder; `Ok(0)` is EOF.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut tmp = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut rb = ReadBuf::uninit(&mut tmp);
        ready!(Pin::new(&mut *self.io).poll_read(cx, &mut rb))?;
        let got = rb.filled();
        self.decoder.feed(got);
        Poll::Ready(Ok(got.len()))
    }
}

impl FrameSocket for WsSocket {
    fn ping(&mut self) {
        self.out.ping();
    }

    /// Without `read` (the connection has no room for a frame) nothing is read: the socket
    /// only writes, and ends when its close is done.
    fn poll_frame(&mut self, cx: &mut Context<'_>, read: bool) -> Poll<Option<Inbound>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let wrote = self.poll_write(cx);
        let lingered = self
            .linger
            .as_mut()
            .is_some_and(|l| l.as_mut().poll(cx).is_ready());
        let finished = matches!(wrote, Poll::Ready(Err(_)))
            || lingered
            || (self.close_sent && self.peer_closed)
            || (self.out_ended && self.batch.is_empty() && !self.close_queued);
        if finished {
            self.ended = true;
            return Poll::Ready(None);
        }
        if !read {
            return Poll::Pending;
        }
        loop {
            if let Some(item) = self.decoder.next_message() {
                if matches!(item, Inbound::Close(_)) {
                    self.peer_closed = true;
                }
                return Poll::Ready(Some(item));
            }
            if self.peer_closed {
                // Waiting for our close to go out; the writes above registered for that.
                return Poll::Pending;
            }
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Stream for WsSocket {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        self.poll_frame(cx, true)
    }
}
