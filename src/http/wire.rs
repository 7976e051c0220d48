//! The connection under actix-http's dispatcher: request heads are checked here first, so a
//! head that is too large, malformed or too slow gets SPEC's JSON error, not an empty answer.
//!
//! actix-http answers those itself (431, 400, 408) with empty bodies and offers no hook to
//! change them. [`Guarded`] reads for the dispatcher and runs the same parser (actix-http's
//! `h1::Codec`) over the same bytes, one read ahead of it. When the parser fails, the dispatcher
//! never sees the failing bytes: it reads end of input instead, answers what it already has, and
//! shuts the connection down; `Guarded` writes the JSON answer just before that shutdown. The
//! head deadline (`server.handshake_timeout`) is kept here too, for every request head of the
//! connection, not only the first as actix-http's own timer does. After a WebSocket upgrade
//! the parser is dropped and bytes pass straight through.
//!
//! On drain ([`Draining`]) a connection between requests reads end of input: kept-alive
//! connections close after their answer instead of holding the process past its drain.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_codec::{AsyncRead, AsyncWrite, Decoder, ReadBuf};
use actix_http::error::ParseError;
use actix_http::h1::{Codec, Message, MessageType};
use actix_http::StatusCode;
use bytes::BytesMut;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::{sleep, Sleep};

use crate::capacity::Permit;
use crate::error::ApiError;
use crate::ws::upgrade::Transport;

/// Tells every HTTP connection that the server drains: each closes once it is between requests.
#[derive(Clone, Default)]
pub struct Draining(Arc<DrainingInner>);

#[derive(Default)]
struct DrainingInner {
    started: AtomicBool,
    wake: Arc<Notify>,
}

impl Draining {
    /// Starts the drain: idle connections close now, busy ones after their answer.
    pub fn start(&self) {
        self.0.started.store(true, Ordering::Release);
        self.0.wake.notify_waiters();
    }

    fn started(&self) -> bool {
        self.0.started.load(Ordering::Acquire)
    }
}

/// The parser running one read ahead of the dispatcher.
struct Shadow {
    codec: Codec,
    /// Bytes read but not yet consumed by the parser (a partial head or chunk).
    buf: BytesMut,
    /// Inside a request body (between a head with a payload and its end).
    in_body: bool,
    /// When the head being received must be complete; `None` between requests.
    deadline: Option<Pin<Box<Sleep>>>,
}

/// An error answer waiting for the dispatcher's shutdown.
struct Answer {
    bytes: Vec<u8>,
    written: usize,
}

/// A connection whose request heads are checked before actix-http's dispatcher reads them.
pub struct Guarded<T> {
    io: T,
    /// `None` once the connection was upgraded (or gave up parsing): plain pass-through.
    shadow: Option<Shadow>,
    /// Set when the dispatcher was cut off: it reads end of input from then on.
    cut: bool,
    answer: Option<Answer>,
    head_timeout: Duration,
    drain: Draining,
    /// Registered while a read waits, so the drain wakes it.
    drain_wait: Option<Pin<Box<OwnedNotified>>>,
    /// The connection's place in `server.max_connections`; an upgraded socket takes it along.
    permit: Option<Permit>,
}

impl<T> Guarded<T> {
    /// Wraps a fresh connection; its first head must be complete within `head_timeout`.
    pub fn new(io: T, head_timeout: Duration, drain: Draining, permit: Permit) -> Self {
        Guarded {
            io,
            shadow: Some(Shadow {
                codec: Codec::new(actix_http::ServiceConfig::default()),
                buf: BytesMut::new(),
                in_body: false,
                deadline: Some(Box::pin(sleep(head_timeout))),
            }),
            cut: false,
            answer: None,
            head_timeout,
            drain,
            drain_wait: None,
            permit: Some(permit),
        }
    }

    /// Whether the drain has begun (registering for its start while a read waits).
    fn draining(&mut self, cx: &mut Context<'_>) -> bool {
        if self.drain.started() {
            return true;
        }
        let wake = self.drain.0.wake.clone();
        let wait = self
            .drain_wait
            .get_or_insert_with(|| Box::pin(wake.notified_owned()));
        // Registered first, checked again: a drain starting in between is not missed.
        wait.as_mut().poll(cx).is_ready() || self.drain.started()
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Stops handing bytes to the dispatcher; `status` (if any) is answered at its shutdown.
    fn cut(&mut self, status: Option<StatusCode>) {
        self.cut = true;
        self.shadow = None;
        self.answer = status.map(|s| Answer {
            bytes: error_answer(s),
            written: 0,
        });
    }
}

/// A complete HTTP/1.1 error answer with SPEC's `{error, message}` body; the connection closes.
fn error_answer(status: StatusCode) -> Vec<u8> {
    let body = ApiError::for_status(status).body_json();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The status actix-http would have answered a parse failure with.
fn status_of(e: &ParseError) -> StatusCode {
    match e {
        ParseError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What parsing the bytes read so far decided.
enum Verdict {
    /// All bytes may go to the dispatcher.
    Pass,
    /// A WebSocket upgrade (or CONNECT): everything after its head is not HTTP any more.
    Upgraded,
    /// The parser failed; the last `bad` bytes read belong to the failing request or chunk.
    Failed {
        bad: usize,
        answer: Option<StatusCode>,
    },
}

impl Shadow {
    fn feed(&mut self, new: &[u8], head_timeout: Duration) -> Verdict {
        self.buf.extend_from_slice(new);
        loop {
            // The decoder may consume a head before refusing it: what failed starts here.
            let unconsumed = self.buf.len();
            match self.codec.decode(&mut self.buf) {
                Ok(Some(Message::Item(_))) => {
                    self.deadline = None;
                    match self.codec.message_type() {
                        MessageType::Stream => return Verdict::Upgraded,
                        MessageType::Payload => self.in_body = true,
                        MessageType::None => {}
                    }
                }
                Ok(Some(Message::Chunk(Some(_)))) => {}
                Ok(Some(Message::Chunk(None))) => self.in_body = false,
                Ok(None) => break,
                Err(e) => {
                    return Verdict::Failed {
                        bad: unconsumed,
                        // A failing body belongs to a request the app already has: it answers
                        // (its body ends early) with its own JSON error.
                        answer: (!self.in_body).then(|| status_of(&e)),
                    };
                }
            }
        }
        if !self.in_body && !self.buf.is_empty() && self.deadline.is_none() {
            // The next request's head has begun: it too must be complete in time.
            self.deadline = Some(Box::pin(sleep(head_timeout)));
        }
        Verdict::Pass
    }

    /// Between requests: no partial head or body read so far.
    fn idle(&self) -> bool {
        !self.in_body && self.buf.is_empty()
    }

    /// True once the head being received is overdue (else the deadline wakes the task).
    fn overdue(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.deadline {
            Some(d) => d.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Ok(()));
        }
        let Some(shadow) = this.shadow.as_mut() else {
            return Pin::new(&mut this.io).poll_read(cx, out);
        };
        // The deadline is checked only once nothing more can be read: bytes that arrived in
        // time but were read late (a busy worker) still count, and no 408 is written to a
        // client whose request is already here.
        if shadow.idle() && this.drain.started() {
            this.cut(None);
            return Poll::Ready(Ok(()));
        }
        let before = out.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, out) {
            Poll::Pending => {
                // A head dripping in slower than its deadline: cut off like a silent one.
                if shadow.overdue(cx) {
                    this.cut(Some(StatusCode::REQUEST_TIMEOUT));
                    return Poll::Ready(Ok(()));
                }
                let idle = shadow.idle();
                if idle && this.draining(cx) {
                    this.cut(None);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Pending;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
        }
        let read = out.filled().len() - before;
        if read == 0 {
            return Poll::Ready(Ok(()));
        }
        match shadow.feed(&out.filled()[before..], this.head_timeout) {
            Verdict::Pass => {}
            Verdict::Upgraded => this.shadow = None,
            Verdict::Failed { bad, answer } => {
                // Only what precedes the failing request reaches the dispatcher; if nothing of
                // this read does, it reads end of input right away.
                out.set_filled(before + read.saturating_sub(bad));
                this.cut(answer);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// Writes the pending error answer (after everything the dispatcher wrote), then shuts down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(a) = this.answer.as_mut() {
            while a.written < a.bytes.len() {
                let n = ready!(Pin::new(&mut this.io).poll_write(cx, &a.bytes[a.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                a.written += n;
            }
            ready!(Pin::new(&mut this.io).poll_flush(cx))?;
            this.answer = None;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: Transport> Transport for Guarded<T> {
    fn set_nodelay(&self, on: bool) {
        self.io.set_nodelay(on);
    }

    fn detach(self) -> Result<io::Result<std::net::TcpStream>, Self> {
        let Guarded {
            io,
            head_timeout,
            cut,
            drain,
            permit,
            ..
        } = self;
        io.detach().map_err(|io| Guarded {
            io,
            shadow: None,
            cut,
            answer: None,
            head_timeout,
            drain,
            drain_wait: None,
            permit,
        })
    }

    fn take_permit(&mut self) -> Option<Permit> {
        self.permit.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    fn guarded<T>(io: T) -> Guarded<T> {
        let permit = crate::capacity::Capacity::new(1).admit().expect("room");
        Guarded::new(io, Duration::from_millis(100), Draining::default(), permit)
    }

    #[actix_web::test]
    async fn a_head_that_arrived_in_time_is_served_even_when_read_late() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut g = guarded(server);
        client.write_all(HEAD).await.unwrap();
        // The worker gets to the connection only after the deadline.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut buf = vec![0u8; 256];
        let n = g.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], HEAD);
        assert!(!g.cut && g.answer.is_none());
    }

    #[actix_web::test]
    async fn a_head_still_incomplete_at_its_deadline_is_cut_with_408() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut g = guarded(server);
        client.write_all(&HEAD[..20]).await.unwrap();
        let mut buf = vec![0u8; 256];
        assert_eq!(g.read(&mut buf).await.unwrap(), 20);
        // Nothing more arrives: the next read waits for the deadline, then reads end of input.
        assert_eq!(g.read(&mut buf).await.unwrap(), 0);
        let answer = g.answer.as_ref().expect("an answer for the cut head");
        assert!(String::from_utf8_lossy(&answer.bytes).starts_with("HTTP/1.1 408"));
    }
}
