//! Socket hand-over after a WebSocket handshake. Requests with `Upgrade: websocket` still run
//! through the app (routing, middleware, handlers); a 101 carrying `Accept` gets the bare socket.
//!
//! Everything else is written back as a plain response and the connection is closed. Taking
//! the socket from actix-http's dispatcher frees its two 8 KiB buffers for the connection's
//! whole life; see ARCHITECTURE.md.

use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix::ArbiterHandle;
use actix_codec::{AsyncRead, AsyncWrite, Framed, ReadBuf};
use actix_http::body::{self, BodySize, BoxBody, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_service::{Service, ServiceFactory};
use actix_web::dev::ServiceResponse;
use actix_web::rt::net::TcpStream;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use futures_util::SinkExt;

use crate::capacity::Permit;
use crate::ws::socket::WsIo;

/// How long writing a handshake answer may take before the socket is given up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Marks a request whose socket can be taken over (set by [`UpgradeService`]).
#[derive(Clone, Copy)]
struct Upgradable;

/// Whether this request arrived through the upgrade path, so a 101 can take its socket.
pub fn can_take_socket(req: &HttpRequest) -> bool {
    req.extensions().contains::<Upgradable>()
}

/// The socket after the 101 was written, with any bytes the client sent right behind it.
pub struct Upgraded {
    /// The connection.
    pub io: Box<dyn WsIo>,
    /// Bytes already read past the handshake.
    pub early: BytesMut,
    /// The connection's place in `server.max_connections`, held as long as the socket.
    pub permit: Option<Permit>,
}

/// Put into a 101 response's extensions: runs once the 101 is on the wire (or failed to get
/// there, in which case the socket reports the error to its owner, who cleans up as usual).
pub struct Accept {
    take: Box<dyn FnOnce(Upgraded) + Send>,
    interactive: bool,
    home: Option<ArbiterHandle>,
}

impl Accept {
    /// What to do with the socket.
    pub fn new(f: impl FnOnce(Upgraded) + Send + 'static) -> Self {
        Accept {
            take: Box::new(f),
            interactive: false,
            home: None,
        }
    }

    /// Runs `f` (and so the connection) on `home`, moving a plain TCP socket to that thread's
    /// reactor. A TLS socket stays on the thread that accepted it.
    pub fn run_on(mut self, home: Option<ArbiterHandle>) -> Self {
        self.home = home;
        self
    }

    /// Small writes go out at once (`TCP_NODELAY`): for a driver, whose keystrokes and echo
    /// must not wait for an ACK. Observers keep Nagle: fewer packets when output fans out.
    pub fn interactive(mut self, on: bool) -> Self {
        self.interactive = on;
        self
    }
}

/// A connection the upgrade service can run on: bytes, plus the TCP socket underneath.
pub trait Transport: WsIo + Sized {
    /// Sets `TCP_NODELAY` on the underlying socket (best effort).
    fn set_nodelay(&self, on: bool);
    /// Takes the socket off this thread's reactor, to be registered on another one; `Err`
    /// gives it back when it cannot move.
    fn detach(self) -> Result<std::io::Result<std::net::TcpStream>, Self>;
    /// The connection's capacity permit, to travel with the upgraded socket.
    fn take_permit(&mut self) -> Option<Permit> {
        None
    }
}

impl Transport for TcpStream {
    fn set_nodelay(&self, on: bool) {
        let _ = TcpStream::set_nodelay(self, on);
    }

    fn detach(self) -> Result<std::io::Result<std::net::TcpStream>, Self> {
        Ok(self.into_std())
    }
}

impl Transport for actix_tls::accept::rustls_0_23::TlsStream<TcpStream> {
    fn set_nodelay(&self, on: bool) {
        let _ = self.get_ref().0.set_nodelay(on);
    }

    fn detach(self) -> Result<std::io::Result<std::net::TcpStream>, Self> {
        Err(self)
    }
}

/// A socket that could not be moved: every read and write fails, so its connection ends at
/// once and runs its exit duties (slots, control, disconnect record) like any other.
struct Broken;

impl AsyncRead for Broken {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }
}

impl AsyncWrite for Broken {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A socket on its way to another thread, with what goes along.
struct Moving {
    socket: std::io::Result<std::net::TcpStream>,
    early: BytesMut,
    permit: Option<Permit>,
    take: Box<dyn FnOnce(Upgraded) + Send>,
}

impl Moving {
    /// Registers the socket on this thread's reactor and hands it to its owner.
    fn arrive(self) {
        let io: Box<dyn WsIo> = match self.socket.and_then(TcpStream::from_std) {
            Ok(tcp) => Box::new(tcp),
            Err(e) => {
                tracing::warn!(error = %e, "socket could not move to its session's thread");
                Box::new(Broken)
            }
        };
        (self.take)(Upgraded {
            io,
            early: self.early,
            permit: self.permit,
        });
    }
}

/// Runs the moving socket's owner on `home`, or here if that thread has stopped.
fn take_on(home: &ArbiterHandle, moving: Moving) {
    // Handed over once: if `home` refuses the task, it comes back and runs here.
    let parcel = Arc::new(Mutex::new(Some(moving)));
    let remote = Arc::clone(&parcel);
    let sent = home.spawn(async move {
        if let Some(m) = remote.lock().unwrap_or_else(|p| p.into_inner()).take() {
            m.arrive();
        }
    });
    if !sent {
        if let Some(m) = parcel.lock().unwrap_or_else(|p| p.into_inner()).take() {
            m.arrive();
        }
    }
}

/// The 101 answer of an accepted handshake: `accept` takes the socket once it is written.
pub fn switching_protocols(
    mut handshake: actix_http::ResponseBuilder,
    accept: Accept,
) -> HttpResponse {
    let mut res = HttpResponse::from(handshake.finish()).map_into_boxed_body();
    res.extensions_mut().insert(accept);
    res
}

/// The upgrade service factory around the app's own factory (one app instance per worker).
pub struct UpgradeFactory<F>(pub F);

impl<T, F, B> ServiceFactory<(Request, Framed<T, h1::Codec>)> for UpgradeFactory<F>
where
    T: Transport,
    F: ServiceFactory<Request, Config = (), Response = ServiceResponse<B>>,
    F::Service: 'static,
    F::Error: Into<Response<BoxBody>>,
    F::InitError: fmt::Debug + 'static,
    F::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Config = ();
    type Service = UpgradeService<F::Service>;
    type InitError = F::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let app = self.0.new_service(());
        Box::pin(async move { Ok(UpgradeService(Rc::new(app.await?))) })
    }
}

/// Runs an upgrade request through the app and hands the socket over on a 101.
pub struct UpgradeService<S>(Rc<S>);

impl<T, S, B> Service<(Request, Framed<T, h1::Codec>)> for UpgradeService<S>
where
    T: Transport,
    S: Service<Request, Response = ServiceResponse<B>> + 'static,
    S::Error: Into<Response<BoxBody>>,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<(), actix_web::Error>>;

    actix_service::always_ready!();

    fn call(&self, (req, framed): (Request, Framed<T, h1::Codec>)) -> Self::Future {
        let app = Rc::clone(&self.0);
        req.extensions_mut().insert(Upgradable);
        Box::pin(async move {
            let res: Response<BoxBody> = match app.call(req).await {
                Ok(sr) => Response::from(sr).map_into_boxed_body(),
                Err(e) => e.into(),
            };
            answer(res, framed).await;
            Ok(())
        })
    }
}

/// Writes the app's answer: a 101 with `Accept` hands the socket over, anything else closes.
async fn answer<T: Transport>(res: Response<BoxBody>, mut framed: Framed<T, h1::Codec>) {
    let (mut head, body) = res.into_parts();
    let accept = if head.status() == StatusCode::SWITCHING_PROTOCOLS {
        head.extensions_mut().remove::<Accept>()
    } else {
        None
    };
    if let Some(Accept {
        take,
        interactive,
        home,
    }) = accept
    {
        if interactive {
            framed.io_ref().set_nodelay(true);
        }
        let sent = tokio::time::timeout(
            ANSWER_TIMEOUT,
            framed.send(Message::Item((head, BodySize::None))),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!("101 not delivered; the connection will see the broken socket");
        }
        let mut parts = framed.into_parts();
        let early = parts.read_buf;
        let permit = parts.io.take_permit();
        match home {
            Some(home) => match parts.io.detach() {
                Ok(socket) => take_on(
                    &home,
                    Moving {
                        socket,
                        early,
                        permit,
                        take,
                    },
                ),
                Err(io) => take(Upgraded {
                    io: Box::new(io),
                    early,
                    permit,
                }),
            },
            None => take(Upgraded {
                io: Box::new(parts.io),
                early,
                permit,
            }),
        }
        return;
    }
    head.head_mut().set_connection_type(ConnectionType::Close);
    let bytes = body::to_bytes(body).await.unwrap_or_default();
    let write = async {
        let len = bytes.len();
        framed
            .feed(Message::Item((head, BodySize::Sized(len as u64))))
            .await?;
        if len > 0 {
            framed.feed(Message::Chunk(Some(bytes))).await?;
        }
        // `send` flushes the buffer; actix-codec's `close` only shuts the socket down.
        framed.send(Message::Chunk(None)).await?;
        framed.close().await
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "handshake answer not delivered"),
        Err(_) => tracing::debug!("handshake answer timed out"),
    }
}
