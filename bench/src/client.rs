//! One benchmark client connection: ticket (attachd), TCP connect from a chosen loopback
//! source address, WebSocket upgrade, wait until attached; then stdin out and output in.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use attachd_actors::protocol::ServerFrame;

use crate::api::Target;
use crate::cli::Proto;
use crate::proto::{self, Decoded};

/// How long one attach (ticket + upgrade + first frame) may take.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(15);

/// What a client waits for next.
#[derive(Debug)]
pub enum Event {
    /// Terminal output.
    Output(Bytes),
    /// The connection ended (close code if the server sent one).
    Closed(Option<u16>),
}

/// What a client that follows the terminal state waits for next.
#[derive(Debug)]
pub enum Frame {
    /// Terminal output (a snapshot's bytes, after its `snapshot` frame, included).
    Output(Bytes),
    /// An attachd text frame other than `hello`.
    Server(Box<ServerFrame>),
    /// The connection ended (close code if the server sent one).
    Closed(Option<u16>),
}

/// Time spent in each attach step, microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachTiming {
    /// Ticket POST (0 for protocols without tickets).
    pub ticket_us: u64,
    /// TCP connect + HTTP upgrade.
    pub upgrade_us: u64,
    /// Upgrade done → attached signal (`hello`).
    pub ready_us: u64,
}

/// An attached client.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    proto: Proto,
    /// Output not yet acknowledged to wetty's flow control.
    uncommitted: usize,
    /// How long attaching took.
    pub timing: AttachTiming,
}

/// Role of an attachd participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May type (takes control when it is free).
    Driver,
    /// Read-only.
    Observer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Observer => "observer",
        }
    }
}

async fn tcp(target: &Target, src: Option<IpAddr>) -> Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = sock.connect(target.addr).await.context("tcp connect")?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Attaches to `session` and returns once the server says the client is attached.
pub async fn attach(
    target: &Target,
    proto: Proto,
    session: &str,
    role: Role,
    src: Option<IpAddr>,
) -> Result<Conn> {
    tokio::time::timeout(
        ATTACH_TIMEOUT,
        attach_inner(target, proto, session, role, src),
    )
    .await
    .map_err(|_| anyhow!("attach timed out"))?
}

async fn attach_inner(
    target: &Target,
    proto: Proto,
    session: &str,
    role: Role,
    src: Option<IpAddr>,
) -> Result<Conn> {
    let t0 = Instant::now();
    let ticket = match proto {
        Proto::Attachd => Some(target.ticket(session, role.as_str()).await?),
        _ => None,
    };
    let t1 = Instant::now();
    let url = format!(
        "ws://{}{}",
        target.authority,
        proto::ws_path(proto, session)
    );
    let mut req = url.into_client_request()?;
    if let Some(t) = ticket {
        let h = req.headers_mut();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}"))?,
        );
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("attach.v1"),
        );
    }
    let stream = tcp(target, src).await?;
    let (ws, _resp) = tokio_tungstenite::client_async(req, stream)
        .await
        .context("websocket upgrade")?;
    let t2 = Instant::now();
    let mut conn = Conn {
        ws,
        proto,
        uncommitted: 0,
        timing: AttachTiming::default(),
    };
    conn.wait_ready().await?;
    let t3 = Instant::now();
    conn.timing = AttachTiming {
        ticket_us: micros(t1 - t0),
        upgrade_us: micros(t2 - t1),
        ready_us: micros(t3 - t2),
    };
    Ok(conn)
}

/// Whole microseconds.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Conn {
    async fn wait_ready(&mut self) -> Result<()> {
        loop {
            let msg = match self.ws.next().await {
                Some(m) => m.context("reading first frame")?,
                None => bail!("closed before attached"),
            };
            match proto::decode(self.proto, msg) {
                Decoded::Ready => return Ok(()),
                Decoded::Reply(r) => self.ws.send(r).await?,
                Decoded::Closed(code) => bail!("closed before attached ({code:?})"),
                Decoded::Output(_) | Decoded::Frame(_) | Decoded::Other => {}
            }
        }
    }

    /// Sends stdin.
    pub async fn send_input(&mut self, data: &[u8]) -> Result<()> {
        self.ws
            .send(proto::encode_input(self.proto, data))
            .await
            .context("sending stdin")
    }

    /// Sends a text frame (one of attachd's JSON client messages).
    pub async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws
            .send(Message::text(text))
            .await
            .context("sending a text frame")
    }

    /// The next terminal output (or the end of the connection).
    pub async fn recv(&mut self) -> Event {
        loop {
            match self.recv_frame().await {
                Frame::Output(b) => return Event::Output(b),
                Frame::Closed(code) => return Event::Closed(code),
                Frame::Server(_) => {}
            }
        }
    }

    /// The next terminal output, attachd text frame, or the end of the connection.
    pub async fn recv_frame(&mut self) -> Frame {
        loop {
            let msg = match self.ws.next().await {
                Some(Ok(m)) => m,
                Some(Err(_)) | None => return Frame::Closed(None),
            };
            match proto::decode(self.proto, msg) {
                Decoded::Output(b) => {
                    if self.proto == Proto::Wetty && self.commit(b.len()).await.is_err() {
                        return Frame::Closed(None);
                    }
                    return Frame::Output(b);
                }
                Decoded::Frame(f) => return Frame::Server(f),
                Decoded::Closed(code) => return Frame::Closed(code),
                Decoded::Reply(r) => {
                    if self.ws.send(r).await.is_err() {
                        return Frame::Closed(None);
                    }
                }
                Decoded::Ready | Decoded::Other => {}
            }
        }
    }

    /// wetty pauses the PTY after 2 MB unless the client commits what it has processed
    /// (as its xterm.js client does); commit every 128 KiB.
    async fn commit(&mut self, n: usize) -> Result<()> {
        self.uncommitted += n;
        if self.uncommitted >= 128 * 1024 {
            let msg = format!("42[\"commit\",{}]", self.uncommitted);
            self.uncommitted = 0;
            self.ws.send(Message::text(msg)).await?;
        }
        Ok(())
    }

    /// Reads and discards output until none arrives for `quiet` (bounded by `max`).
    pub async fn drain(&mut self, quiet: Duration, max: Duration) -> usize {
        let end = Instant::now() + max;
        let mut n = 0;
        while Instant::now() < end {
            match tokio::time::timeout(quiet, self.recv()).await {
                Ok(Event::Output(b)) => n += b.len(),
                Ok(Event::Closed(_)) | Err(_) => break,
            }
        }
        n
    }

    /// Orderly close: sends a close frame and reads until the server ends the connection
    /// (at most a second).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if self.ws.close(None).await.is_ok() {
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        })
        .await;
    }

    /// Sends a close frame without waiting for the answer.
    pub async fn close_fast(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            self.ws.send(Message::Close(None)),
        )
        .await;
    }
}
