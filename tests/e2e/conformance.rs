//! RFC 6455 frame-level conformance (SPEC §4–§5), modeled on the Autobahn TestSuite groups
//! 1–7 and 9. Each test is named after its Autobahn case; cases marked `x` are attachd
//! additions to a group (e.g. limit ± 1, early close on a declared oversize length).
//!
//! A raw-socket client does the HTTP upgrade itself, sends masked frames with arbitrary
//! FIN/RSV/opcode/length and parses the unmasked server frames, so violations can be sent on
//! purpose. Most cases run against the dev-only conformance echo endpoint
//! (`GET /__conformance/echo`, same decoder, limits and outbound queue as attach); the
//! `attach_case_*` tests repeat the essential ones against the real attach endpoint.
//!
//! Over 500 lines: one test per Autobahn case, so a failure names its case; they share the
//! raw-socket client at the top and nothing else.
//!
//! Limits: `ws.max_message_bytes = 65536`, so Autobahn's 9.x sizes above 64 KiB must close
//! with 1009. Every read has a timeout and every case a global deadline: a hang fails.
//!
//! Over 500 lines: one test per Autobahn case in the suite's order, so a case is found by its number.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::support::*;

/// `ws.max_message_bytes` of every server in this file.
const LIMIT: usize = 65536;
/// One read.
const READ: Duration = Duration::from_secs(5);
/// One whole case.
const CASE: Duration = Duration::from_secs(40);

const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// "No status received": stands for a close frame without a code.
const NO_STATUS: u16 = 1005;

// ---------------------------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------------------------

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    fin: bool,
    op: u8,
    payload: Vec<u8>,
}

impl Frame {
    /// Close code (or [`NO_STATUS`]) and reason of a close frame.
    fn close_code(&self) -> (u16, String) {
        match self.payload.len() {
            0 => (NO_STATUS, String::new()),
            1 => panic!("server sent a close frame with a 1-byte payload"),
            _ => {
                let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
                let reason = std::str::from_utf8(&self.payload[2..])
                    .unwrap_or_else(|_| panic!("server close reason is not UTF-8"))
                    .to_string();
                (code, reason)
            }
        }
    }
}

/// What the socket delivered next.
#[derive(Debug)]
enum Ev {
    Frame(Frame),
    /// The TCP connection ended (FIN or RST).
    Eof(String),
}

fn op_name(op: u8) -> String {
    match op {
        CONT => "cont".into(),
        TEXT => "text".into(),
        BINARY => "binary".into(),
        CLOSE => "close".into(),
        PING => "ping".into(),
        PONG => "pong".into(),
        o => format!("op{o:#x}"),
    }
}

fn show(payload: &[u8]) -> String {
    if payload.len() <= 48 {
        format!("{:?}", String::from_utf8_lossy(payload))
    } else {
        format!(
            "{} bytes {:?}…",
            payload.len(),
            String::from_utf8_lossy(&payload[..32])
        )
    }
}

/// The reading half: parses unmasked server frames and checks what RFC 6455 §5.1–5.2 asks of
/// a server (no mask, no reserved bits, no fragmented control frame, control payload ≤ 125).
struct Reader {
    r: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Reader {
    fn parse(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let fin = b[0] & 0x80 != 0;
        let rsv = (b[0] >> 4) & 0x7;
        let op = b[0] & 0x0F;
        assert!(b[1] & 0x80 == 0, "server sent a masked frame");
        assert_eq!(rsv, 0, "server frame with reserved bits set");
        let (len, mut idx) = match b[1] & 0x7F {
            126 => {
                if b.len() < 4 {
                    return None;
                }
                (usize::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                if b.len() < 10 {
                    return None;
                }
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                (usize::try_from(u64::from_be_bytes(l)).expect("length"), 10)
            }
            n => (usize::from(n), 2),
        };
        if b.len() < idx + len {
            return None;
        }
        let payload = b[idx..idx + len].to_vec();
        idx += len;
        self.buf.drain(..idx);
        if op >= 0x8 {
            assert!(fin, "server sent a fragmented control frame");
            assert!(len <= 125, "server control frame of {len} bytes");
        }
        Some(Frame { fin, op, payload })
    }

    /// The next frame or the end of the connection; `None` when nothing came within `t`.
    async fn next(&mut self, t: Duration) -> Option<Ev> {
        let deadline = tokio::time::Instant::now() + t;
        let mut tmp = vec![0u8; 65536];
        loop {
            if let Some(f) = self.parse() {
                return Some(Ev::Frame(f));
            }
            match tokio::time::timeout_at(deadline, self.r.read(&mut tmp)).await {
                Err(_) => return None,
                Ok(Ok(0)) => {
                    return Some(Ev::Eof(if self.buf.is_empty() {
                        "eof".into()
                    } else {
                        format!("eof with {} stray bytes", self.buf.len())
                    }))
                }
                Ok(Err(e)) => return Some(Ev::Eof(format!("read error: {e}"))),
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }
}

/// A raw WebSocket client connection with a transcript for failure messages.
struct Raw {
    rd: Reader,
    wr: OwnedWriteHalf,
    log: String,
}

/// Masks and encodes one client frame. `rsv` is the 3-bit RSV field as Autobahn numbers it
/// (4 = RSV1, 2 = RSV2, 1 = RSV3).
fn fr(fin: bool, rsv: u8, op: u8, payload: &[u8]) -> Vec<u8> {
    fr_len(fin, rsv, op, payload.len() as u64, payload)
}

/// Like [`fr`] but with a declared length that may differ from the bytes that follow.
fn fr_len(fin: bool, rsv: u8, op: u8, declared: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (rsv & 7) << 4 | (op & 0x0F));
    if declared < 126 {
        out.push(0x80 | declared as u8);
    } else if declared <= u64::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(declared as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&declared.to_be_bytes());
    }
    let mut mask: [u8; 4] = rand::random();
    if mask == [0; 4] {
        mask = [0x37, 0xfa, 0x21, 0x3d];
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A close frame payload: code and reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Several frames in one write ("one chop").
fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// A deterministic ASCII payload.
fn ascii(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A deterministic binary payload covering every byte value.
fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// SHA-1 (for `Sec-WebSocket-Accept` only).
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (o, v) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn accept_for(key: &str) -> String {
    let digest = sha1(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

impl Raw {
    /// Upgrades `path` with extra headers; checks the 101, the accept key and that no
    /// extension (permessage-deflate is offered) was negotiated.
    async fn connect(srv: &Server, path: &str, headers: &[(&str, &str)]) -> Raw {
        Raw::connect_with(srv, path, headers, &[]).await
    }

    /// Like [`Raw::connect`], with `early` bytes sent in the same write as the request (a
    /// client that does not wait for the 101).
    async fn connect_with(srv: &Server, path: &str, headers: &[(&str, &str)], early: &[u8]) -> Raw {
        let s = tokio::time::timeout(READ, TcpStream::connect(srv.addr()))
            .await
            .expect("connect timed out")
            .expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let (r, mut wr) = s.into_split();
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
            srv.port
        );
        for (k, v) in headers {
            let _ = write!(req, "{k}: {v}\r\n");
        }
        req.push_str("\r\n");
        let mut first = req.into_bytes();
        first.extend_from_slice(early);
        wr.write_all(&first).await.expect("write upgrade");
        let mut rd = Reader { r, buf: Vec::new() };
        let mut tmp = [0u8; 4096];
        let end = loop {
            if let Some(i) = rd.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match tokio::time::timeout(READ, rd.r.read(&mut tmp)).await {
                Err(_) => panic!("no upgrade response within {READ:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => panic!(
                    "connection ended during upgrade: {:?}",
                    String::from_utf8_lossy(&rd.buf)
                ),
                Ok(Ok(n)) => rd.buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&rd.buf[..end]).into_owned();
        rd.buf.drain(..end + 4);
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused:\n{head}");
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        assert_eq!(
            header("sec-websocket-accept").as_deref(),
            Some(accept_for(&key).as_str()),
            "bad Sec-WebSocket-Accept:\n{head}"
        );
        assert!(
            header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "no Upgrade: websocket:\n{head}"
        );
        assert_eq!(
            header("sec-websocket-extensions"),
            None,
            "an extension was negotiated:\n{head}"
        );
        Raw {
            rd,
            wr,
            log: String::new(),
        }
    }

    async fn send(&mut self, data: &[u8]) {
        let _ = writeln!(self.log, "→ {} bytes", data.len());
        if let Err(e) = self.wr.write_all(data).await {
            // The server may already have failed the connection; reads tell the outcome.
            let _ = writeln!(self.log, "  write error: {e}");
        }
    }

    /// Writes `data` in chunks of `n` bytes, each flushed on its own (TCP_NODELAY is on).
    async fn send_chunked(&mut self, data: &[u8], n: usize) {
        let _ = writeln!(self.log, "→ {} bytes in chunks of {n}", data.len());
        for c in data.chunks(n) {
            if let Err(e) = self.wr.write_all(c).await {
                let _ = writeln!(self.log, "  write error: {e}");
                return;
            }
            let _ = self.wr.flush().await;
            tokio::task::yield_now().await;
        }
    }

    /// The next event; panics when nothing came within `t`.
    async fn next(&mut self, t: Duration, want: &str) -> Ev {
        match self.rd.next(t).await {
            Some(ev) => {
                self.note(&ev);
                ev
            }
            None => self.fail(&format!("nothing within {t:?} while waiting for {want}")),
        }
    }

    fn note(&mut self, ev: &Ev) {
        let _ = match ev {
            Ev::Frame(f) => writeln!(
                self.log,
                "← {}{} {}",
                op_name(f.op),
                if f.fin { "" } else { " (FIN=0)" },
                show(&f.payload)
            ),
            Ev::Eof(how) => writeln!(self.log, "← {how}"),
        };
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\ntranscript:\n{}", self.log)
    }

    /// The next frame, passing over server data frames when `skip_data` (the attach endpoint sends
    /// terminal output and JSON frames on its own) and server pings.
    async fn next_frame(&mut self, skip_data: bool, want: &str) -> Frame {
        loop {
            match self.next(READ, want).await {
                Ev::Frame(f) if f.op == PING => continue,
                Ev::Frame(f) if skip_data && matches!(f.op, TEXT | BINARY | CONT) => continue,
                Ev::Frame(f) => return f,
                Ev::Eof(how) => self.fail(&format!(
                    "connection ended ({how}) while waiting for {want}"
                )),
            }
        }
    }

    /// Checks a close frame from the server against `codes` and answers it when `reply` (the
    /// server initiated the close). Returns the code.
    async fn accept_close(&mut self, f: Frame, codes: &[u16], reply: bool) -> u16 {
        if f.op != CLOSE {
            self.fail(&format!(
                "expected close {codes:?}, got {} {}",
                op_name(f.op),
                show(&f.payload)
            ));
        }
        let (code, _reason) = f.close_code();
        if !codes.contains(&code) {
            self.fail(&format!("expected close {codes:?}, got close {code}"));
        }
        if reply {
            // Complete the closing handshake as a client does (the server may be gone).
            let echo = if code == NO_STATUS {
                Vec::new()
            } else {
                close_payload(code, b"")
            };
            let _ = writeln!(self.log, "→ close reply");
            let _ = self.wr.write_all(&fr(true, 0, CLOSE, &echo)).await;
        }
        code
    }

    /// The next frame is a close with one of `codes` (answered when `reply`).
    async fn expect_close_frame(&mut self, codes: &[u16], skip_data: bool, reply: bool) -> u16 {
        let f = self
            .next_frame(skip_data, &format!("close {codes:?}"))
            .await;
        self.accept_close(f, codes, reply).await
    }

    /// A close with one of `codes` (answered when `reply`), then nothing but the end of TCP.
    /// Once both closes are exchanged the client ends its side too (RFC 6455 §5.5.1 allows it),
    /// so cases do not wait out the server's drop delay; the `7.1.7x`/`7.1.8x` cases check
    /// that the server drops TCP on its own.
    async fn expect_close(&mut self, codes: &[u16], skip_data: bool, reply: bool) -> u16 {
        let code = self.expect_close_frame(codes, skip_data, reply).await;
        let _ = self.wr.shutdown().await;
        self.expect_eof(skip_data, READ).await;
        code
    }

    /// Nothing but the end of the connection may follow, within `t`; returns how long it took.
    async fn expect_eof(&mut self, skip_data: bool, t: Duration) -> Duration {
        let started = tokio::time::Instant::now();
        loop {
            let left = t.saturating_sub(started.elapsed());
            match self.rd.next(left).await {
                None => self.fail(&format!(
                    "server did not close the TCP connection within {t:?} after the close"
                )),
                Some(ev) => {
                    self.note(&ev);
                    match ev {
                        Ev::Eof(_) => return started.elapsed(),
                        Ev::Frame(f) if skip_data && f.op != CLOSE => continue,
                        Ev::Frame(f) => self.fail(&format!(
                            "frame after the close: {} {}",
                            op_name(f.op),
                            show(&f.payload)
                        )),
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Case table machinery
// ---------------------------------------------------------------------------------------------

/// One step of a case.
enum Step {
    /// Write bytes (one or more encoded frames) at once.
    Send(Vec<u8>),
    /// Write bytes in TCP chunks of the given size.
    Chunked(Vec<u8>, usize),
    /// Pause.
    Sleep(u64),
    /// The next server frame is this (opcode, payload), FIN set.
    Expect(u8, Vec<u8>),
    /// The next server frame is a close with one of these codes, then TCP ends.
    Close(&'static [u16]),
    /// Client-initiated closing handshake with 1000: close 1000 back, then TCP ends.
    Handshake,
}

fn send(b: Vec<u8>) -> Step {
    Step::Send(b)
}
fn text(p: &[u8]) -> Step {
    Step::Send(fr(true, 0, TEXT, p))
}
fn binary(p: &[u8]) -> Step {
    Step::Send(fr(true, 0, BINARY, p))
}
fn ping(p: &[u8]) -> Step {
    Step::Send(fr(true, 0, PING, p))
}
fn pong(p: &[u8]) -> Step {
    Step::Send(fr(true, 0, PONG, p))
}
fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    fr(true, 0, CLOSE, &close_payload(code, reason))
}
fn echo_text(p: &[u8]) -> Step {
    Step::Expect(TEXT, p.to_vec())
}
fn echo_bin(p: &[u8]) -> Step {
    Step::Expect(BINARY, p.to_vec())
}
fn expect_pong(p: &[u8]) -> Step {
    Step::Expect(PONG, p.to_vec())
}

async fn run(c: &mut Raw, steps: Vec<Step>, skip_data: bool) {
    for step in steps {
        match step {
            Step::Send(b) => c.send(&b).await,
            Step::Chunked(b, n) => c.send_chunked(&b, n).await,
            Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Step::Expect(op, payload) => {
                let want = format!("{} {}", op_name(op), show(&payload));
                let f = c.next_frame(skip_data, &want).await;
                if f.op != op || f.payload != payload || !f.fin {
                    c.fail(&format!(
                        "expected {want}, got {}{} {}",
                        op_name(f.op),
                        if f.fin { "" } else { " (FIN=0)" },
                        show(&f.payload)
                    ));
                }
            }
            Step::Close(codes) => {
                c.expect_close(codes, skip_data, true).await;
            }
            Step::Handshake => {
                c.send(&close_frame(1000, b"bye")).await;
                c.expect_close(&[1000], skip_data, false).await;
            }
        }
    }
}

/// A server shared by the cases running at the same time: started on first use, killed (by
/// `Server`'s `Drop`) when the last case using it ends, so no process outlives the tests (a
/// static `OnceLock` would never drop it). Cases only share the process, never a connection.
fn shared(slot: &Mutex<Weak<Server>>, start: fn() -> Server) -> Arc<Server> {
    let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(srv) = held.upgrade() {
        return srv;
    }
    let srv = Arc::new(start());
    *held = Arc::downgrade(&srv);
    srv
}

static ECHO: Mutex<Weak<Server>> = Mutex::new(Weak::new());
static ATTACH: Mutex<Weak<Server>> = Mutex::new(Weak::new());

/// A dev server with the conformance echo endpoint and a 64 KiB message limit.
fn echo_server() -> Arc<Server> {
    shared(&ECHO, || {
        Server::start(
            Opts {
                dev: true,
                ..Opts::default()
            }
            .env("ATTACHD__SERVER__CONFORMANCE_ECHO", "true")
            .env("ATTACHD__WS__MAX_MESSAGE_BYTES", &LIMIT.to_string()),
        )
    })
}

/// Frames a client sends right behind its handshake, before the 101, reach the connection
/// that takes over the socket (they sit in the HTTP layer's buffer at hand-over).
#[tokio::test]
async fn frames_sent_with_the_handshake_are_not_lost() {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let early = cat(&[
            fr(true, 0, TEXT, b"early-1"),
            fr(true, 0, BINARY, b"early-2"),
        ]);
        let mut c = Raw::connect_with(&srv, "/__conformance/echo", &[], &early).await;
        run(
            &mut c,
            vec![echo_text(b"early-1"), echo_bin(b"early-2")],
            false,
        )
        .await;
    })
    .await
    .expect("case timed out");
}

/// A WebSocket upgrade aimed anywhere but a WebSocket endpoint gets that route's ordinary
/// answer, and the connection is closed after it.
#[tokio::test]
async fn upgrade_requests_elsewhere_get_the_routes_answer() {
    let srv = echo_server();
    let (st, _, body) = raw_upgrade(srv.addr(), "/api/v1/sessions", &[]).await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    let (st, _, body) = raw_upgrade(srv.addr(), "/healthz", &[]).await;
    assert_eq!(st, 200, "{body}");
    let (st, _, body) = raw_upgrade(srv.addr(), "/no/such/route", &[]).await;
    assert_eq!(st, 404, "{body}");
}

async fn echo_connect(srv: &Server) -> Raw {
    Raw::connect(srv, "/__conformance/echo", &[]).await
}

/// Runs one case against a fresh echo server.
async fn echo_case(steps: Vec<Step>) {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let mut c = echo_connect(&srv).await;
        run(&mut c, steps, false).await;
    })
    .await
    .expect("case exceeded its deadline");
}

macro_rules! echo_cases {
    ($($(#[$m:meta])* $name:ident => [$($step:expr),* $(,)?];)*) => {
        $(
            $(#[$m])*
            #[tokio::test]
            async fn $name() {
                echo_case(vec![$($step),*]).await
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// 1. Framing
// ---------------------------------------------------------------------------------------------

echo_cases! {
    case_1_1_1_text_empty => [text(b""), echo_text(b""), Step::Handshake];
    case_1_1_2_text_125 => [text(&ascii(125)), echo_text(&ascii(125)), Step::Handshake];
    case_1_1_3_text_126 => [text(&ascii(126)), echo_text(&ascii(126)), Step::Handshake];
    case_1_1_4_text_127 => [text(&ascii(127)), echo_text(&ascii(127)), Step::Handshake];
    case_1_1_5_text_128 => [text(&ascii(128)), echo_text(&ascii(128)), Step::Handshake];
    case_1_1_6_text_65535 => [text(&ascii(65535)), echo_text(&ascii(65535)), Step::Handshake];
    case_1_1_7_text_65536 => [text(&ascii(65536)), echo_text(&ascii(65536)), Step::Handshake];
    /// 65536 bytes written in TCP chunks of 997 octets.
    case_1_1_8_text_65536_chunked_997 => [
        Step::Chunked(fr(true, 0, TEXT, &ascii(65536)), 997),
        echo_text(&ascii(65536)),
        Step::Handshake,
    ];
    case_1_2_1_binary_empty => [binary(b""), echo_bin(b""), Step::Handshake];
    case_1_2_2_binary_125 => [binary(&bytes(125)), echo_bin(&bytes(125)), Step::Handshake];
    case_1_2_3_binary_126 => [binary(&bytes(126)), echo_bin(&bytes(126)), Step::Handshake];
    case_1_2_4_binary_127 => [binary(&bytes(127)), echo_bin(&bytes(127)), Step::Handshake];
    case_1_2_5_binary_128 => [binary(&bytes(128)), echo_bin(&bytes(128)), Step::Handshake];
    case_1_2_6_binary_65535 => [binary(&bytes(65535)), echo_bin(&bytes(65535)), Step::Handshake];
    case_1_2_7_binary_65536 => [binary(&bytes(65536)), echo_bin(&bytes(65536)), Step::Handshake];
    case_1_2_8_binary_65536_chunked_997 => [
        Step::Chunked(fr(true, 0, BINARY, &bytes(65536)), 997),
        echo_bin(&bytes(65536)),
        Step::Handshake,
    ];
}

// ---------------------------------------------------------------------------------------------
// 2. Pings / pongs
// ---------------------------------------------------------------------------------------------

const PING_BIN: &[u8] = &[0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];

echo_cases! {
    case_2_1_ping_empty => [ping(b""), expect_pong(b""), Step::Handshake];
    case_2_2_ping_text_payload => [
        ping(b"Hello, world!"),
        expect_pong(b"Hello, world!"),
        Step::Handshake,
    ];
    case_2_3_ping_binary_payload => [ping(PING_BIN), expect_pong(PING_BIN), Step::Handshake];
    case_2_4_ping_125 => [ping(&[0xfe; 125]), expect_pong(&[0xfe; 125]), Step::Handshake];
    /// A control frame over 125 bytes is a protocol error (RFC 6455 §5.5).
    case_2_5_ping_126_too_long => [ping(&[0xfe; 126]), Step::Close(&[1002])];
    case_2_6_ping_125_chunked_1 => [
        Step::Chunked(fr(true, 0, PING, &[0xfe; 125]), 1),
        expect_pong(&[0xfe; 125]),
        Step::Handshake,
    ];
    /// An unsolicited pong is ignored: the next thing seen is the close reply.
    case_2_7_unsolicited_pong_empty => [pong(b""), Step::Handshake];
    case_2_8_unsolicited_pong_payload => [pong(b"unsolicited pong payload"), Step::Handshake];
    case_2_9_unsolicited_pong_then_ping => [
        pong(b"unsolicited pong payload"),
        ping(b"ping payload"),
        expect_pong(b"ping payload"),
        Step::Handshake,
    ];
}

fn ten_pings() -> Vec<u8> {
    (0..10)
        .flat_map(|i| fr(true, 0, PING, format!("payload-{i}").as_bytes()))
        .collect()
}

fn ten_pongs() -> Vec<Step> {
    (0..10)
        .map(|i| expect_pong(format!("payload-{i}").as_bytes()))
        .collect()
}

#[tokio::test]
async fn case_2_10_ten_pings_answered_in_order() {
    let mut steps = vec![send(ten_pings())];
    steps.extend(ten_pongs());
    steps.push(Step::Handshake);
    echo_case(steps).await;
}

#[tokio::test]
async fn case_2_11_ten_pings_chunked_1_answered_in_order() {
    let mut steps = vec![Step::Chunked(ten_pings(), 1)];
    steps.extend(ten_pongs());
    steps.push(Step::Handshake);
    echo_case(steps).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Reserved bits (RSV field value as Autobahn numbers it: 4 = RSV1, 2 = RSV2, 1 = RSV3)
// ---------------------------------------------------------------------------------------------

echo_cases! {
    /// RSV3.
    case_3_1_text_rsv_1 => [
        send(fr(true, 1, TEXT, b"Hello, world!")),
        Step::Close(&[1002]),
    ];
    /// RSV2, after a valid text and before a ping: the text is echoed, then 1002, no pong.
    case_3_2_text_rsv_2_between_text_and_ping => [
        text(b"Hello, world!"),
        echo_text(b"Hello, world!"),
        send(fr(true, 2, TEXT, b"Hello, world!")),
        ping(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    /// RSV2+RSV3, everything in one write.
    case_3_3_text_rsv_3_one_chop => [
        send(cat(&[
            fr(true, 0, TEXT, b"Hello, world!"),
            fr(true, 3, TEXT, b"Hello, world!"),
            fr(true, 0, PING, b"Hello, world!"),
        ])),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    /// RSV1 (the permessage-deflate bit, never negotiated), written octet by octet.
    case_3_4_text_rsv_4_octetwise => [
        Step::Chunked(cat(&[
            fr(true, 0, TEXT, b"Hello, world!"),
            fr(true, 4, TEXT, b"Hello, world!"),
            fr(true, 0, PING, b"Hello, world!"),
        ]), 1),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_3_5_binary_rsv_5 => [send(fr(true, 5, BINARY, PING_BIN)), Step::Close(&[1002])];
    case_3_6_ping_rsv_6 => [send(fr(true, 6, PING, b"Hello, world!")), Step::Close(&[1002])];
    case_3_7_close_rsv_7 => [send(fr(true, 7, CLOSE, &close_payload(1000, b""))), Step::Close(&[1002])];
    /// RSV1 alone on a binary frame, followed by valid data that must not be echoed.
    case_3_8x_binary_rsv1_then_data_not_echoed => [
        send(cat(&[
            fr(true, 4, BINARY, PING_BIN),
            fr(true, 0, TEXT, b"after"),
            fr(true, 0, BINARY, b"after"),
        ])),
        Step::Close(&[1002]),
    ];
}

// ---------------------------------------------------------------------------------------------
// 4. Opcodes
// ---------------------------------------------------------------------------------------------

fn text_bad_op_ping(op: u8, payload: &[u8]) -> Vec<u8> {
    cat(&[
        fr(true, 0, TEXT, b"Hello, world!"),
        fr(true, 0, op, payload),
        fr(true, 0, PING, b"Hello, world!"),
    ])
}

echo_cases! {
    case_4_1_1_opcode_3 => [send(fr(true, 0, 3, b"")), Step::Close(&[1002])];
    case_4_1_2_opcode_4_payload => [
        send(fr(true, 0, 4, b"reserved opcode payload")),
        Step::Close(&[1002]),
    ];
    case_4_1_3_text_opcode_5_ping => [
        send(text_bad_op_ping(5, b"")),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_4_1_4_text_opcode_6_payload_ping => [
        send(text_bad_op_ping(6, b"reserved opcode payload")),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_4_1_5_text_opcode_7_payload_ping_octetwise => [
        Step::Chunked(text_bad_op_ping(7, b"reserved opcode payload"), 1),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_4_2_1_opcode_11 => [send(fr(true, 0, 11, b"")), Step::Close(&[1002])];
    case_4_2_2_opcode_12_payload => [
        send(fr(true, 0, 12, b"reserved opcode payload")),
        Step::Close(&[1002]),
    ];
    case_4_2_3_text_opcode_13_ping => [
        send(text_bad_op_ping(13, b"")),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_4_2_4_text_opcode_14_payload_ping => [
        send(text_bad_op_ping(14, b"reserved opcode payload")),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_4_2_5_text_opcode_15_payload_ping_octetwise => [
        Step::Chunked(text_bad_op_ping(15, b"reserved opcode payload"), 1),
        echo_text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
}

// ---------------------------------------------------------------------------------------------
// 5. Fragmentation
// ---------------------------------------------------------------------------------------------

fn two_fragments() -> Vec<u8> {
    cat(&[
        fr(false, 0, TEXT, b"fragment1"),
        fr(true, 0, CONT, b"fragment2"),
    ])
}

fn two_fragments_with_ping() -> Vec<u8> {
    cat(&[
        fr(false, 0, TEXT, b"fragment1"),
        fr(true, 0, PING, b"pongme 2!"),
        fr(true, 0, CONT, b"fragment2"),
    ])
}

fn cont_then_text(cont_fin: bool) -> Vec<u8> {
    cat(&[
        fr(cont_fin, 0, CONT, b"non-continuation payload"),
        fr(true, 0, TEXT, b"Hello, world!"),
    ])
}

echo_cases! {
    case_5_1_ping_fragmented => [
        send(cat(&[fr(false, 0, PING, b"fragment1"), fr(true, 0, CONT, b"fragment2")])),
        Step::Close(&[1002]),
    ];
    case_5_2_pong_fragmented => [
        send(cat(&[fr(false, 0, PONG, b"fragment1"), fr(true, 0, CONT, b"fragment2")])),
        Step::Close(&[1002]),
    ];
    case_5_3_text_2_fragments => [
        send(two_fragments()),
        echo_text(b"fragment1fragment2"),
        Step::Handshake,
    ];
    /// Each frame in its own write.
    case_5_4_text_2_fragments_sync => [
        send(fr(false, 0, TEXT, b"fragment1")),
        Step::Sleep(50),
        send(fr(true, 0, CONT, b"fragment2")),
        echo_text(b"fragment1fragment2"),
        Step::Handshake,
    ];
    case_5_5_text_2_fragments_octetwise => [
        Step::Chunked(two_fragments(), 1),
        echo_text(b"fragment1fragment2"),
        Step::Handshake,
    ];
    /// A ping inside a fragmented message is answered at once; the message still arrives whole.
    case_5_6_text_2_fragments_ping_interleaved => [
        send(two_fragments_with_ping()),
        expect_pong(b"pongme 2!"),
        echo_text(b"fragment1fragment2"),
        Step::Handshake,
    ];
    case_5_7_text_2_fragments_ping_interleaved_sync => [
        send(fr(false, 0, TEXT, b"fragment1")),
        send(fr(true, 0, PING, b"pongme 2!")),
        expect_pong(b"pongme 2!"),
        send(fr(true, 0, CONT, b"fragment2")),
        echo_text(b"fragment1fragment2"),
        Step::Handshake,
    ];
    case_5_8_text_2_fragments_ping_interleaved_octetwise => [
        Step::Chunked(two_fragments_with_ping(), 1),
        expect_pong(b"pongme 2!"),
        echo_text(b"fragment1fragment2"),
        Step::Handshake,
    ];
    /// A continuation (FIN=1) with nothing to continue.
    case_5_9_continuation_fin_without_start => [send(cont_then_text(true)), Step::Close(&[1002])];
    case_5_10_continuation_fin_without_start_per_frame => [
        send(fr(true, 0, CONT, b"non-continuation payload")),
        text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_5_11_continuation_fin_without_start_octetwise => [
        Step::Chunked(cont_then_text(true), 1),
        Step::Close(&[1002]),
    ];
    /// A continuation (FIN=0) with nothing to continue.
    case_5_12_continuation_nofin_without_start => [
        send(cont_then_text(false)),
        Step::Close(&[1002]),
    ];
    case_5_13_continuation_nofin_without_start_per_frame => [
        send(fr(false, 0, CONT, b"non-continuation payload")),
        text(b"Hello, world!"),
        Step::Close(&[1002]),
    ];
    case_5_14_continuation_nofin_without_start_octetwise => [
        Step::Chunked(cont_then_text(false), 1),
        Step::Close(&[1002]),
    ];
    /// A complete fragmented message is echoed, then a stray continuation fails.
    case_5_15_fragments_then_stray_continuation => [
        send(cat(&[
            two_fragments(),
            fr(false, 0, CONT, b"fragment3"),
            fr(true, 0, TEXT, b"fragment4"),
        ])),
        echo_text(b"fragment1fragment2"),
        Step::Close(&[1002]),
    ];
    case_5_16_stray_continuation_nofin_then_fragments_twice => [
        send(cat(&[
            fr(false, 0, CONT, b"fragment1"),
            fr(false, 0, TEXT, b"fragment2"),
            fr(true, 0, CONT, b"fragment3"),
            fr(false, 0, CONT, b"fragment1"),
            fr(false, 0, TEXT, b"fragment2"),
            fr(true, 0, CONT, b"fragment3"),
        ])),
        Step::Close(&[1002]),
    ];
    case_5_17_stray_continuation_fin_then_fragments_twice => [
        send(cat(&[
            fr(true, 0, CONT, b"fragment1"),
            fr(false, 0, TEXT, b"fragment2"),
            fr(true, 0, CONT, b"fragment3"),
            fr(true, 0, CONT, b"fragment1"),
            fr(false, 0, TEXT, b"fragment2"),
            fr(true, 0, CONT, b"fragment3"),
        ])),
        Step::Close(&[1002]),
    ];
    /// A new text frame while a fragmented message is open.
    case_5_18_text_while_fragmented_open => [
        send(cat(&[fr(false, 0, TEXT, b"fragment1"), fr(true, 0, TEXT, b"fragment2")])),
        Step::Close(&[1002]),
    ];
    /// A binary frame while a fragmented text message is open.
    case_5_18x_binary_while_fragmented_open => [
        send(cat(&[fr(false, 0, TEXT, b"fragment1"), fr(true, 0, BINARY, b"fragment2")])),
        Step::Close(&[1002]),
    ];
    /// Five fragments with two pings interleaved and a pause: all legal.
    case_5_19_fragments_with_pings_and_pause => [
        send(cat(&[
            fr(false, 0, TEXT, b"fragment1"),
            fr(false, 0, CONT, b"fragment2"),
            fr(true, 0, PING, b"pongme 1!"),
        ])),
        expect_pong(b"pongme 1!"),
        Step::Sleep(300),
        send(cat(&[
            fr(false, 0, CONT, b"fragment3"),
            fr(false, 0, CONT, b"fragment4"),
            fr(true, 0, PING, b"pongme 2!"),
            fr(true, 0, CONT, b"fragment5"),
        ])),
        expect_pong(b"pongme 2!"),
        echo_text(b"fragment1fragment2fragment3fragment4fragment5"),
        Step::Handshake,
    ];
    case_5_20_fragments_with_pings_and_pause_sync => [
        send(fr(false, 0, TEXT, b"fragment1")),
        send(fr(false, 0, CONT, b"fragment2")),
        send(fr(true, 0, PING, b"pongme 1!")),
        expect_pong(b"pongme 1!"),
        Step::Sleep(300),
        send(fr(false, 0, CONT, b"fragment3")),
        send(fr(false, 0, CONT, b"fragment4")),
        send(fr(true, 0, PING, b"pongme 2!")),
        expect_pong(b"pongme 2!"),
        send(fr(true, 0, CONT, b"fragment5")),
        echo_text(b"fragment1fragment2fragment3fragment4fragment5"),
        Step::Handshake,
    ];
}

/// A text message in 100 one-byte fragments arrives as one message.
#[tokio::test]
async fn case_5_3x_text_in_100_fragments() {
    let msg = ascii(100);
    let frames: Vec<Vec<u8>> = msg
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let op = if i == 0 { TEXT } else { CONT };
            fr(i == msg.len() - 1, 0, op, &[*b])
        })
        .collect();
    echo_case(vec![send(cat(&frames)), echo_text(&msg), Step::Handshake]).await;
}

// ---------------------------------------------------------------------------------------------
// 6. UTF-8 handling
// ---------------------------------------------------------------------------------------------

const HELLO_UTF8: &str = "Hello-µ@ßöäüàá-UTF-8!!";
const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
const KOSME_INVALID: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

/// `payload` as a text message of one-byte fragments (splits inside code points).
fn octet_fragments(payload: &[u8]) -> Vec<u8> {
    let frames: Vec<Vec<u8>> = payload
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let op = if i == 0 { TEXT } else { CONT };
            fr(i == payload.len() - 1, 0, op, &[*b])
        })
        .collect();
    cat(&frames)
}

/// `payload` as a text message in fragments split at the given offsets.
fn split_text(payload: &[u8], at: &[usize]) -> Vec<u8> {
    let mut cuts = vec![0];
    cuts.extend_from_slice(at);
    cuts.push(payload.len());
    let frames: Vec<Vec<u8>> = cuts
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let op = if i == 0 { TEXT } else { CONT };
            fr(w[1] == payload.len(), 0, op, &payload[w[0]..w[1]])
        })
        .collect();
    cat(&frames)
}

/// Valid text in one frame: echoed exactly.
async fn valid_utf8(p: &[u8]) {
    std::str::from_utf8(p).expect("case payload must be valid UTF-8");
    echo_case(vec![text(p), echo_text(p), Step::Handshake]).await;
}

/// Invalid text in one frame: 1007, nothing echoed.
async fn invalid_utf8(p: &[u8]) {
    assert!(
        std::str::from_utf8(p).is_err(),
        "case payload must be invalid"
    );
    echo_case(vec![text(p), Step::Close(&[1007])]).await;
}

macro_rules! utf8_cases {
    ($f:ident: $($(#[$m:meta])* $name:ident => $p:expr;)*) => {
        $(
            $(#[$m])*
            #[tokio::test]
            async fn $name() {
                $f($p).await
            }
        )*
    };
}

echo_cases! {
    case_6_1_1_text_empty => [text(b""), echo_text(b""), Step::Handshake];
    case_6_1_2_text_empty_3_fragments => [
        send(cat(&[fr(false, 0, TEXT, b""), fr(false, 0, CONT, b""), fr(true, 0, CONT, b"")])),
        echo_text(b""),
        Step::Handshake,
    ];
    case_6_1_3_text_empty_fragments_payload_in_middle => [
        send(cat(&[
            fr(false, 0, TEXT, b""),
            fr(false, 0, CONT, b"middle frame payload"),
            fr(true, 0, CONT, b""),
        ])),
        echo_text(b"middle frame payload"),
        Step::Handshake,
    ];
    case_6_2_1_valid_utf8_one_frame => [
        text(HELLO_UTF8.as_bytes()),
        echo_text(HELLO_UTF8.as_bytes()),
        Step::Handshake,
    ];
    /// Split at a code point boundary.
    case_6_2_2_valid_utf8_two_fragments => [
        send(split_text(HELLO_UTF8.as_bytes(), &[14])),
        echo_text(HELLO_UTF8.as_bytes()),
        Step::Handshake,
    ];
    /// One byte per fragment: every multi-byte code point is split across fragments.
    case_6_2_3_valid_utf8_octet_fragments => [
        send(octet_fragments(HELLO_UTF8.as_bytes())),
        echo_text(HELLO_UTF8.as_bytes()),
        Step::Handshake,
    ];
    case_6_2_4_valid_kosme_octet_fragments => [
        send(octet_fragments(KOSME)),
        echo_text(KOSME),
        Step::Handshake,
    ];
    /// U+1D11E (4 bytes) split 1+3 and 2+2 across fragments.
    case_6_2_5x_four_byte_code_point_split => [
        send(split_text("a𝄞b𝄞c".as_bytes(), &[2, 7, 8])),
        echo_text("a𝄞b𝄞c".as_bytes()),
        Step::Handshake,
    ];
    case_6_3_1_invalid_utf8_one_frame => [text(KOSME_INVALID), Step::Close(&[1007])];
    case_6_3_2_invalid_utf8_octet_fragments => [
        send(octet_fragments(KOSME_INVALID)),
        Step::Close(&[1007]),
    ];
    /// A surrogate (ED A0 80) split across the fragment boundary.
    case_6_3_3x_invalid_utf8_split_surrogate => [
        send(split_text(b"ab\xed\xa0\x80cd", &[3])),
        Step::Close(&[1007]),
    ];
    /// A multi-byte sequence truncated by the end of the message, split across fragments.
    case_6_3_4x_truncated_sequence_at_message_end => [
        send(split_text(b"abc\xe2\x82", &[4])),
        Step::Close(&[1007]),
    ];
}

utf8_cases! { valid_utf8:
    case_6_5_1_kosme => KOSME;
    case_6_6_2_kosme_prefix_2 => b"\xce\xba";
    case_6_6_5_kosme_prefix_5 => b"\xce\xba\xe1\xbd\xb9";
    case_6_7_1_first_1_byte_u0000 => b"\x00";
    case_6_7_2_first_2_byte_u0080 => b"\xc2\x80";
    case_6_7_3_first_3_byte_u0800 => b"\xe0\xa0\x80";
    case_6_7_4_first_4_byte_u10000 => b"\xf0\x90\x80\x80";
    case_6_9_1_last_1_byte_u007f => b"\x7f";
    case_6_9_2_last_2_byte_u07ff => b"\xdf\xbf";
    case_6_9_3_last_3_byte_uffff => b"\xef\xbf\xbf";
    case_6_9_4_last_4_byte_u10ffff => b"\xf4\x8f\xbf\xbf";
    case_6_11_1_ud7ff => b"\xed\x9f\xbf";
    case_6_11_2_ue000 => b"\xee\x80\x80";
    case_6_11_3_ufffd => b"\xef\xbf\xbd";
    case_6_11_4_u10ffff => b"\xf4\x8f\xbf\xbf";
    case_6_22_1_noncharacter_ufffe => b"\xef\xbf\xbe";
    case_6_22_34_noncharacter_u10fffe => b"\xf4\x8f\xbf\xbe";
    case_6_23_1_replacement_char => b"\xef\xbf\xbd";
}

utf8_cases! { invalid_utf8:
    case_6_6_1_kosme_prefix_1_truncated => b"\xce";
    case_6_6_3_kosme_prefix_3_truncated => b"\xce\xba\xe1";
    case_6_6_4_kosme_prefix_4_truncated => b"\xce\xba\xe1\xbd";
    case_6_8_1_five_byte_sequence => b"\xf8\x88\x80\x80\x80";
    case_6_8_2_six_byte_sequence => b"\xfc\x84\x80\x80\x80\x80";
    case_6_10_1_last_4_byte_f7 => b"\xf7\xbf\xbf\xbf";
    case_6_10_2_last_5_byte => b"\xfb\xbf\xbf\xbf\xbf";
    case_6_10_3_last_6_byte => b"\xfd\xbf\xbf\xbf\xbf\xbf";
    case_6_11_5_u110000 => b"\xf4\x90\x80\x80";
    case_6_12_1_lone_continuation_80 => b"\x80";
    case_6_12_2_lone_continuation_bf => b"\xbf";
    case_6_13_1_lonely_2_byte_starts => &lonely_starts();
    case_6_14_6_truncated_2_byte => b"\xdf";
    case_6_14_7_truncated_3_byte => b"\xef\xbf";
    case_6_14_8_truncated_4_byte => b"\xf7\xbf\xbf";
    case_6_15_1_concatenated_truncated => b"\xc0\xe0\x80\xf0\x80\x80\xf8\x88\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf";
    case_6_16_1_byte_fe => b"\xfe";
    case_6_16_2_byte_ff => b"\xff";
    case_6_16_3_bytes_fe_fe_ff_ff => b"\xfe\xfe\xff\xff";
    case_6_17_1_overlong_slash_2_byte => b"\xc0\xaf";
    case_6_17_2_overlong_slash_3_byte => b"\xe0\x80\xaf";
    case_6_17_3_overlong_slash_4_byte => b"\xf0\x80\x80\xaf";
    case_6_18_1_max_overlong_2_byte => b"\xc1\xbf";
    case_6_18_2_max_overlong_3_byte => b"\xe0\x9f\xbf";
    case_6_18_3_max_overlong_4_byte => b"\xf0\x8f\xbf\xbf";
    case_6_19_1_overlong_nul_2_byte => b"\xc0\x80";
    case_6_19_2_overlong_nul_3_byte => b"\xe0\x80\x80";
    case_6_20_1_surrogate_ud800 => b"\xed\xa0\x80";
    case_6_20_7_surrogate_udfff => b"\xed\xbf\xbf";
    case_6_21_1_surrogate_pair => b"\xed\xa0\x80\xed\xb0\x80";
}

fn lonely_starts() -> Vec<u8> {
    (0xc0u8..=0xdf).flat_map(|b| [b, b' ']).collect()
}

/// Autobahn 6.4.x: the invalid part arrives in the middle of a message, then a pause, then
/// the rest. Failing right after the invalid part is "strict" (fail-fast); failing only
/// after the final part is Autobahn's "non-strict" — both conform to RFC 6455 §8.1, and
/// the outcome is printed. Returns whether it failed fast.
async fn fail_fast_case(parts: [Step; 3]) -> bool {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let mut c = echo_connect(&srv).await;
        let [p1, p2, p3] = parts;
        run(&mut c, vec![p1, p2], false).await;
        let strict = match c.rd.next(Duration::from_millis(700)).await {
            None => false,
            Some(ev) => {
                c.note(&ev);
                match ev {
                    Ev::Frame(f) if f.op == CLOSE => {
                        c.accept_close(f, &[1007], true).await;
                        let _ = c.wr.shutdown().await;
                        c.expect_eof(false, READ).await;
                        true
                    }
                    _ => c.fail("unexpected event after the invalid fragment"),
                }
            }
        };
        if !strict {
            run(&mut c, vec![p3, Step::Close(&[1007])], false).await;
        }
        println!(
            "autobahn 6.4.x: {}",
            if strict {
                "STRICT (failed fast, before the final fragment)"
            } else {
                "NON-STRICT (failed after the final fragment)"
            }
        );
        strict
    })
    .await
    .expect("case exceeded its deadline")
}

#[tokio::test]
async fn case_6_4_1_invalid_middle_fragment_fail_fast() {
    fail_fast_case([
        send(fr(false, 0, TEXT, KOSME)),
        send(fr(false, 0, CONT, b"\xf4\x90\x80\x80")),
        send(fr(true, 0, CONT, b"edited")),
    ])
    .await;
}

#[tokio::test]
async fn case_6_4_2_invalid_split_sequence_fail_fast() {
    let mut p1 = KOSME.to_vec();
    p1.push(0xf4);
    fail_fast_case([
        send(fr(false, 0, TEXT, &p1)),
        send(fr(false, 0, CONT, b"\x90")),
        send(fr(true, 0, CONT, b"\x80\x80edited")),
    ])
    .await;
}

/// One frame whose invalid bytes arrive in a separate TCP chunk.
#[tokio::test]
async fn case_6_4_3_invalid_in_tcp_chunks_of_one_frame() {
    let mut payload = KOSME.to_vec();
    payload.extend_from_slice(b"\xf4\x90\x80\x80edited");
    let f = fr(true, 0, TEXT, &payload);
    let head = 6 + KOSME.len();
    fail_fast_case([
        send(f[..head].to_vec()),
        send(f[head..head + 4].to_vec()),
        send(f[head + 4..].to_vec()),
    ])
    .await;
}

// ---------------------------------------------------------------------------------------------
// 7. Close handling
// ---------------------------------------------------------------------------------------------

echo_cases! {
    case_7_1_1_text_then_close => [
        text(b"Hello World!"),
        echo_text(b"Hello World!"),
        Step::Handshake,
    ];
    /// A second close is ignored.
    case_7_1_2_two_closes => [
        send(cat(&[close_frame(1000, b""), close_frame(1000, b"")])),
        Step::Close(&[1000]),
    ];
    /// A ping after the close is not answered.
    case_7_1_3_ping_after_close => [
        send(cat(&[close_frame(1000, b""), fr(true, 0, PING, b"Hello World!")])),
        Step::Close(&[1000]),
    ];
    /// Data after the close is ignored.
    case_7_1_4_text_after_close => [
        send(cat(&[close_frame(1000, b""), fr(true, 0, TEXT, b"Hello World!")])),
        Step::Close(&[1000]),
    ];
    /// A close inside an open fragmented message: the message is never delivered.
    case_7_1_5_close_between_fragments => [
        send(cat(&[
            fr(false, 0, TEXT, b"fragment1"),
            close_frame(1000, b""),
            fr(true, 0, CONT, b"fragment2"),
        ])),
        Step::Close(&[1000]),
    ];
    /// A large text, the close, then a ping: the text is echoed, the ping is not answered.
    case_7_1_6_large_text_close_ping => [
        send(cat(&[
            fr(true, 0, TEXT, &ascii(60_000)),
            close_frame(1000, b""),
            fr(true, 0, PING, b"Hello World!"),
        ])),
        echo_text(&ascii(60_000)),
        Step::Close(&[1000]),
    ];
    /// An empty close payload: the server answers with a close (1000 or no status).
    case_7_3_1_close_empty => [send(fr(true, 0, CLOSE, b"")), Step::Close(&[1000, NO_STATUS])];
    case_7_3_2_close_1_byte_payload => [send(fr(true, 0, CLOSE, b"\x03")), Step::Close(&[1002])];
    case_7_3_3_close_1000_no_reason => [send(close_frame(1000, b"")), Step::Close(&[1000])];
    case_7_3_4_close_1000_reason => [send(close_frame(1000, b"Hello World!")), Step::Close(&[1000])];
    case_7_3_5_close_1000_reason_123 => [send(close_frame(1000, &ascii(123))), Step::Close(&[1000])];
    /// 2 + 124 = 126 bytes: a control frame over 125.
    case_7_3_6_close_reason_124_too_long => [send(close_frame(1000, &ascii(124))), Step::Close(&[1002])];
}

/// How soon the server must drop TCP once it has sent and received a close. RFC 6455 §5.5.1:
/// "The server MUST close the underlying TCP connection immediately"; the margin is for a
/// loaded machine.
const DROP: Duration = Duration::from_millis(250);

/// The client waits for the server to drop TCP without closing its own side (what RFC 6455
/// §5.5.1 says a client SHOULD do) and the server must do so within [`DROP`].
async fn expect_prompt_drop(c: &mut Raw, skip_data: bool) {
    let took = c.expect_eof(skip_data, READ).await;
    if took > DROP {
        c.fail(&format!(
            "server dropped TCP {took:?} after the closing handshake (must be immediate, < {DROP:?})"
        ));
    }
}

/// Client-initiated close: once the server has answered it, it drops TCP at once.
#[tokio::test]
async fn case_7_1_7x_server_drops_tcp_after_client_close() {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let mut c = echo_connect(&srv).await;
        c.send(&close_frame(1000, b"bye")).await;
        c.expect_close_frame(&[1000], false, false).await;
        expect_prompt_drop(&mut c, false).await;
    })
    .await
    .expect("case exceeded its deadline");
}

/// Server-initiated close (a violation): once the client has answered the close, the server
/// drops TCP at once.
#[tokio::test]
async fn case_7_1_8x_server_drops_tcp_after_failing_connection() {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let mut c = echo_connect(&srv).await;
        c.send(&fr(true, 4, TEXT, b"Hello, world!")).await;
        c.expect_close_frame(&[1002], false, true).await;
        expect_prompt_drop(&mut c, false).await;
    })
    .await
    .expect("case exceeded its deadline");
}

/// Close with an invalid UTF-8 reason: RFC 6455 §8.1 fails the connection; Autobahn accepts
/// 1002 or 1007. The code the server chose is printed.
#[tokio::test]
async fn case_7_5_1_close_reason_invalid_utf8() {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let mut c = echo_connect(&srv).await;
        c.send(&close_frame(1000, KOSME_INVALID)).await;
        let code = c.expect_close(&[1002, 1007], false, true).await;
        println!("autobahn 7.5.1: close with invalid UTF-8 reason answered with {code}");
    })
    .await
    .expect("case exceeded its deadline");
}

/// A valid close code is answered with a close (1000, or the same code).
async fn valid_close_code(code: u16) {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let mut c = echo_connect(&srv).await;
        c.send(&close_frame(code, b"")).await;
        c.expect_close(&[1000, code], false, false).await;
    })
    .await
    .expect("case exceeded its deadline");
}

/// An invalid close code fails the connection with 1002.
async fn invalid_close_code(code: u16) {
    echo_case(vec![send(close_frame(code, b"")), Step::Close(&[1002])]).await;
}

macro_rules! close_code_cases {
    ($f:ident: $($(#[$m:meta])* $name:ident => $code:expr;)*) => {
        $(
            $(#[$m])*
            #[tokio::test]
            async fn $name() {
                $f($code).await
            }
        )*
    };
}

close_code_cases! { valid_close_code:
    case_7_7_1_code_1000 => 1000;
    case_7_7_2_code_1001 => 1001;
    case_7_7_3_code_1002 => 1002;
    case_7_7_4_code_1003 => 1003;
    case_7_7_5_code_1007 => 1007;
    case_7_7_6_code_1008 => 1008;
    case_7_7_7_code_1009 => 1009;
    case_7_7_8_code_1010 => 1010;
    case_7_7_9_code_1011 => 1011;
    case_7_7_10_code_3000 => 3000;
    case_7_7_11_code_3999 => 3999;
    case_7_7_12_code_4000 => 4000;
    case_7_7_13_code_4999 => 4999;
}

close_code_cases! { invalid_close_code:
    case_7_9_1_code_0 => 0;
    case_7_9_2_code_999 => 999;
    case_7_9_3_code_1004 => 1004;
    case_7_9_4_code_1005 => 1005;
    case_7_9_5_code_1006 => 1006;
    case_7_9_6_code_1016 => 1016;
    case_7_9_7_code_1100 => 1100;
    case_7_9_8_code_2000 => 2000;
    case_7_9_9_code_2999 => 2999;
    /// 1015 (TLS failure) must never be sent in a close frame (RFC 6455 §7.4.1).
    case_7_9_10x_code_1015 => 1015;
    case_7_13_1_code_5000 => 5000;
    case_7_13_2_code_65535 => 65535;
}

// ---------------------------------------------------------------------------------------------
// 9. Limits and performance (ws.max_message_bytes = 64 KiB)
// ---------------------------------------------------------------------------------------------

/// A message in fragments of `frag` bytes, `total` bytes in all; `fin` on the last or not.
fn fragmented(op: u8, payload: &[u8], frag: usize, last_fin: bool) -> Vec<u8> {
    let n = payload.len().div_ceil(frag);
    let frames: Vec<Vec<u8>> = payload
        .chunks(frag)
        .enumerate()
        .map(|(i, c)| fr(last_fin && i == n - 1, 0, if i == 0 { op } else { CONT }, c))
        .collect();
    cat(&frames)
}

echo_cases! {
    /// 64 KiB, exactly the limit: echoed.
    case_9_1_1_text_64k => [text(&ascii(LIMIT)), echo_text(&ascii(LIMIT)), Step::Handshake];
    /// Limit + 1: 1009.
    case_9_1_1x_text_limit_plus_1 => [text(&ascii(LIMIT + 1)), Step::Close(&[1009])];
    case_9_1_2_text_256k => [text(&ascii(256 * 1024)), Step::Close(&[1009])];
    case_9_1_3_text_1m => [text(&ascii(1024 * 1024)), Step::Close(&[1009])];
    case_9_2_1_binary_64k => [binary(&bytes(LIMIT)), echo_bin(&bytes(LIMIT)), Step::Handshake];
    case_9_2_1x_binary_limit_plus_1 => [binary(&bytes(LIMIT + 1)), Step::Close(&[1009])];
    case_9_2_2_binary_256k => [binary(&bytes(256 * 1024)), Step::Close(&[1009])];
    /// 64-byte text fragments totalling exactly the limit: echoed as one message.
    case_9_3_1x_fragmented_text_64_at_limit => [
        send(fragmented(TEXT, &ascii(LIMIT), 64, true)),
        echo_text(&ascii(LIMIT)),
        Step::Handshake,
    ];
    /// 64-byte fragments past the limit, the message never finished: the server must fail
    /// as soon as the total passes the limit, without waiting for the last fragment.
    case_9_3_1_fragmented_text_64_over_limit => [
        send(fragmented(TEXT, &ascii(LIMIT + 64), 64, false)),
        Step::Close(&[1009]),
    ];
    case_9_3_5_fragmented_text_4k_over_limit => [
        send(fragmented(TEXT, &ascii(LIMIT + 4096), 4096, false)),
        Step::Close(&[1009]),
    ];
    case_9_4_1x_fragmented_binary_64_at_limit => [
        send(fragmented(BINARY, &bytes(LIMIT), 64, true)),
        echo_bin(&bytes(LIMIT)),
        Step::Handshake,
    ];
    case_9_4_1_fragmented_binary_64_over_limit => [
        send(fragmented(BINARY, &bytes(LIMIT + 64), 64, false)),
        Step::Close(&[1009]),
    ];
    case_9_4_5_fragmented_binary_4k_over_limit => [
        send(fragmented(BINARY, &bytes(LIMIT + 4096), 4096, false)),
        Step::Close(&[1009]),
    ];
    /// A limit-sized text written in TCP chunks of 64 octets.
    case_9_5_1_text_64k_chunks_64 => [
        Step::Chunked(fr(true, 0, TEXT, &ascii(LIMIT)), 64),
        echo_text(&ascii(LIMIT)),
        Step::Handshake,
    ];
    case_9_5_6_text_64k_chunks_2048 => [
        Step::Chunked(fr(true, 0, TEXT, &ascii(LIMIT)), 2048),
        echo_text(&ascii(LIMIT)),
        Step::Handshake,
    ];
    case_9_6_1_binary_64k_chunks_64 => [
        Step::Chunked(fr(true, 0, BINARY, &bytes(LIMIT)), 64),
        echo_bin(&bytes(LIMIT)),
        Step::Handshake,
    ];
    /// Memory bound: a header declaring 2^62 bytes. Waiting for the payload would let a
    /// client make the server buffer without bound.
    case_9_9_1x_declared_length_2_pow_62_fails_early => [
        send({
            let mut f = fr_len(true, 0, TEXT, 1 << 62, &[]);
            f.extend_from_slice(&[b'a'; 1024]);
            f
        }),
        Step::Close(&[1009]),
    ];
}

/// Autobahn 9.7/9.8: `count` messages of `size` bytes sent in a burst while reading; every
/// one echoed, in order.
async fn burst(op: u8, count: usize, size: usize) {
    let srv = echo_server();
    tokio::time::timeout(CASE, async {
        let c = echo_connect(&srv).await;
        let Raw { mut rd, mut wr, .. } = c;
        let msgs: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let mut m = if op == TEXT { ascii(size) } else { bytes(size) };
                // Number each message so order is checked, not only content.
                let tag = format!("{i:06}");
                if size >= tag.len() {
                    m[..tag.len()].copy_from_slice(tag.as_bytes());
                }
                m
            })
            .collect();
        let to_send = msgs.clone();
        let writer = tokio::spawn(async move {
            for m in &to_send {
                wr.write_all(&fr(true, 0, op, m)).await.expect("write");
            }
            wr
        });
        for (i, want) in msgs.iter().enumerate() {
            match rd.next(READ).await {
                Some(Ev::Frame(f)) => {
                    assert_eq!(f.op, op, "message {i}: wrong opcode {}", op_name(f.op));
                    assert!(f.payload == *want, "message {i} out of order or corrupted");
                }
                other => panic!("message {i} of {count}: got {other:?}"),
            }
        }
        let wr = writer.await.expect("writer");
        let mut c = Raw {
            rd,
            wr,
            log: String::new(),
        };
        run(&mut c, vec![Step::Handshake], false).await;
    })
    .await
    .expect("case exceeded its deadline");
}

#[tokio::test]
async fn case_9_7_1_burst_1000_text_0() {
    burst(TEXT, 1000, 0).await;
}

#[tokio::test]
async fn case_9_7_3_burst_1000_text_64() {
    burst(TEXT, 1000, 64).await;
}

#[tokio::test]
async fn case_9_7_6_burst_1000_text_4096() {
    burst(TEXT, 1000, 4096).await;
}

#[tokio::test]
async fn case_9_8_1_burst_1000_binary_0() {
    burst(BINARY, 1000, 0).await;
}

#[tokio::test]
async fn case_9_8_6_burst_1000_binary_4096() {
    burst(BINARY, 1000, 4096).await;
}

// ---------------------------------------------------------------------------------------------
// The real attach endpoint
// ---------------------------------------------------------------------------------------------

/// A prod server with a 64 KiB message limit, a session, and a raw driver connection that
/// has read its `hello`.
async fn attach_raw() -> (Arc<Server>, Raw) {
    // Prod rules; parallel cases attach as the same subject, so its connection cap is lifted.
    let srv = shared(&ATTACH, || {
        Server::start(
            Opts::default()
                .env("ATTACHD__WS__MAX_MESSAGE_BYTES", &LIMIT.to_string())
                .env("ATTACHD__LIMITS__SUBJECT_CONNECTIONS", "1000"),
        )
    });
    let api = srv.api(&ALICE);
    let sid = api.create_session().await;
    let ticket = api.ticket(&sid, "driver").await;
    let auth = format!("Bearer {ticket}");
    let mut c = Raw::connect(
        &srv,
        &format!("/api/v1/sessions/{sid}/attach"),
        &[
            ("Authorization", &auth),
            ("Sec-WebSocket-Protocol", "attach.v1"),
        ],
    )
    .await;
    // `hello` must be the first frame (SPEC §5); a race can put terminal output first, which
    // `attach_case_x_hello_is_first_frame_while_output_flows` asserts on its own. Here output
    // before `hello` is only skipped, so the frame-layer cases below test the frame layer.
    loop {
        match c.next(READ, "hello").await {
            Ev::Frame(f) if f.op == BINARY => continue,
            Ev::Frame(f) if f.op == TEXT => {
                let v: Value = serde_json::from_slice(&f.payload).expect("hello is JSON");
                assert_eq!(v["type"], "hello", "first text frame: {v}");
                assert_eq!(v["limits"]["max_message_bytes"], LIMIT as u64, "hello: {v}");
                break;
            }
            other => c.fail(&format!("no hello: {other:?}")),
        }
    }
    (srv, c)
}

/// SPEC §5: `hello` is always the first frame. A driver joining while the seat is free waits
/// for the control lease; terminal output flowing meanwhile must not reach it before its
/// `hello` (nor before the scrollback replay that follows it).
#[tokio::test]
async fn attach_case_x_hello_is_first_frame_while_output_flows() {
    // Own server: the output loop below must not load the shared one.
    let srv = Server::start(Opts::default());
    tokio::time::timeout(CASE, async {
        let sid = srv.api(&ALICE).create_session().await;
        let mut a = attach_as(&srv, &ALICE, &sid, "driver").await;
        expect_json(&mut a, "hello", 5).await;
        send_bin(&mut a, b"for i in $(seq 1 400000); do echo tick-$i; done\n").await;
        expect_output(&mut a, "tick-1000", 10).await;
        // Free the seat so every join below goes through the lease wait.
        send_text(
            &mut a,
            serde_json::json!({"type": "control", "action": "release"}),
        )
        .await;
        expect_control(&mut a, "released", 5).await;
        let mut firsts = Vec::new();
        for _ in 0..20 {
            let ticket = srv.api(&BOB).ticket(&sid, "driver").await;
            let auth = format!("Bearer {ticket}");
            let mut b = Raw::connect(
                &srv,
                &format!("/api/v1/sessions/{sid}/attach"),
                &[("Authorization", &auth)],
            )
            .await;
            let first = match b.next(READ, "first frame").await {
                Ev::Frame(f) if f.op == TEXT => {
                    let v: Value = serde_json::from_slice(&f.payload).expect("JSON");
                    format!("text {}", v["type"])
                }
                Ev::Frame(f) => format!("{} {}", op_name(f.op), show(&f.payload)),
                Ev::Eof(how) => how,
            };
            firsts.push(first);
            b.send(&close_frame(1000, b"")).await;
            let _ = b.wr.shutdown().await;
            // Let the disconnect free the seat (grace for the same subject) before rejoining.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            firsts.iter().all(|f| f == "text \"hello\""),
            "first frame of each join must be hello; got {firsts:#?}"
        );
    })
    .await
    .expect("case exceeded its deadline");
}

/// Runs steps on the attach endpoint, passing over the terminal output and JSON frames it sends.
async fn attach_case(steps: Vec<Step>) {
    tokio::time::timeout(CASE, async {
        let (_srv, mut c) = attach_raw().await;
        run(&mut c, steps, true).await;
    })
    .await
    .expect("case exceeded its deadline");
}

#[tokio::test]
async fn attach_case_2_4_ping_125_pong_same_payload() {
    attach_case(vec![
        ping(&bytes(125)),
        expect_pong(&bytes(125)),
        ping(b""),
        expect_pong(b""),
        Step::Handshake,
    ])
    .await;
}

#[tokio::test]
async fn attach_case_2_5_ping_126_too_long() {
    attach_case(vec![ping(&[0xfe; 126]), Step::Close(&[1002])]).await;
}

#[tokio::test]
async fn attach_case_3_4_rsv1_set() {
    attach_case(vec![
        send(fr(true, 4, BINARY, b"echo should-not-run\n")),
        Step::Close(&[1002]),
    ])
    .await;
}

#[tokio::test]
async fn attach_case_3_1_rsv3_on_text() {
    attach_case(vec![
        send(fr(
            true,
            1,
            TEXT,
            br#"{"type":"control","action":"release"}"#,
        )),
        Step::Close(&[1002]),
    ])
    .await;
}

#[tokio::test]
async fn attach_case_4_1_1_opcode_3() {
    attach_case(vec![send(fr(true, 0, 3, b"")), Step::Close(&[1002])]).await;
}

#[tokio::test]
async fn attach_case_4_2_1_opcode_11() {
    attach_case(vec![send(fr(true, 0, 11, b"")), Step::Close(&[1002])]).await;
}

#[tokio::test]
async fn attach_case_5_1_ping_fragmented() {
    attach_case(vec![
        send(cat(&[
            fr(false, 0, PING, b"fragment1"),
            fr(true, 0, CONT, b"fragment2"),
        ])),
        Step::Close(&[1002]),
    ])
    .await;
}

#[tokio::test]
async fn attach_case_5_18_text_while_fragmented_open() {
    attach_case(vec![
        send(cat(&[
            fr(false, 0, TEXT, b"{\"type\":"),
            fr(true, 0, TEXT, b"\"resize\"}"),
        ])),
        Step::Close(&[1002]),
    ])
    .await;
}

#[tokio::test]
async fn attach_case_6_3_1_invalid_utf8_text() {
    attach_case(vec![text(KOSME_INVALID), Step::Close(&[1007])]).await;
}

/// Invalid UTF-8 split across fragments (a surrogate, first byte in the first fragment).
#[tokio::test]
async fn attach_case_6_3_3x_invalid_utf8_split_across_fragments() {
    attach_case(vec![
        send(split_text(b"{\"type\":\"\xed\xa0\x80\"}", &[10])),
        Step::Close(&[1007]),
    ])
    .await;
}

#[tokio::test]
async fn attach_case_7_3_4_close_1000_reason() {
    attach_case(vec![Step::Handshake]).await;
}

/// The attach endpoint drops TCP at once after a client-initiated closing handshake.
#[tokio::test]
async fn attach_case_7_1_7x_server_drops_tcp_after_client_close() {
    tokio::time::timeout(CASE, async {
        let (_srv, mut c) = attach_raw().await;
        c.send(&close_frame(1000, b"bye")).await;
        c.expect_close_frame(&[1000], true, false).await;
        expect_prompt_drop(&mut c, true).await;
    })
    .await
    .expect("case exceeded its deadline");
}

#[tokio::test]
async fn attach_case_7_9_1_close_code_0() {
    attach_case(vec![send(close_frame(0, b"")), Step::Close(&[1002])]).await;
}

#[tokio::test]
async fn attach_case_9_1_1x_text_limit_plus_1() {
    attach_case(vec![text(&ascii(LIMIT + 1)), Step::Close(&[1009])]).await;
}

#[tokio::test]
async fn attach_case_9_4_1_fragmented_over_limit() {
    attach_case(vec![
        send(fragmented(BINARY, &bytes(LIMIT + 64), 64, false)),
        Step::Close(&[1009]),
    ])
    .await;
}

#[tokio::test]
async fn attach_case_9_9_1x_declared_length_2_pow_62_fails_early() {
    attach_case(vec![
        send({
            let mut f = fr_len(true, 0, BINARY, 1 << 62, &[]);
            f.extend_from_slice(&[0x55; 1024]);
            f
        }),
        Step::Close(&[1009]),
    ])
    .await;
}

/// The client's SHA-1 and accept key against RFC 6455 §1.3's example.
#[test]
fn raw_client_accept_key_matches_rfc_example() {
    assert_eq!(
        accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}
