//! The connection actor: one per attached WebSocket. It owns the lifetime and invalid-message
//! budgets and the stdin token bucket, and never waits on anything shared.
//!
//! The heartbeat runs on the socket's own task (`crate::keepalive`): pings and pongs of an idle
//! connection never wake this actor; silence reaches it as [`Inbound::Silent`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;

use crate::alarm::{self, Alarm, Ring};
use crate::audit::Audit;
use crate::hub::{Ack, ControlRequest, Join, ParticipantStats, Resize, SessionHub, Stdin};
use crate::keepalive::{on_grid, Keepalive};
use crate::limits::SlotGuard;
use crate::metrics;
use crate::outbound::{OutFrame, OutboundTx};
use crate::protocol::{close, ClientMessage, ErrorCode, HelloLimits, Role, ServerFrame};
use crate::stdin_rate::{StdinBucket, Verdict};

mod config;
mod exit;
pub mod pump;
#[cfg(test)]
mod tests;

pub use config::{ConnConfig, ConnIdentity};
use exit::ExitGuard;
pub use pump::FrameSocket;

/// A decoded client frame, as the socket reader hands it over.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Inbound {
    /// A complete, valid UTF-8 text message.
    Text(String),
    /// A complete binary message (stdin).
    Binary(Bytes),
    /// A ping to answer.
    Ping(Bytes),
    /// A pong (heartbeat).
    Pong,
    /// Nothing was heard from the client for `ws.heartbeat_timeout`: close with 4001.
    Silent,
    /// The client closed, with its code if it sent one.
    Close(Option<u16>),
    /// The frame layer rejected the stream; close with this code.
    Violation(u16),
}

/// The connection actor.
pub struct Connection {
    /// Shared with the exit guard (one copy of the identity's strings per connection).
    id: Arc<ConnIdentity>,
    cfg: ConnConfig,
    hub: Addr<SessionHub>,
    out: OutboundTx,
    stats: Arc<ParticipantStats>,
    guard: ExitGuard,
    bucket: StdinBucket,
    /// The budget of control requests (`CONTROL_REQUESTS_PER_SEC`).
    control_bucket: StdinBucket,
    closing: bool,
    /// When `ws.max_lifetime` ends the connection.
    lifetime_end: Instant,
    /// When the next `attach.stdin` summary is due (drivers only).
    next_summary: Option<Instant>,
    /// The connection's one timer (set once the actor runs on its thread).
    alarm: Option<Alarm>,
}

impl Connection {
    /// A connection that has passed every handshake check and holds its slots.
    pub fn new(
        id: ConnIdentity,
        cfg: ConnConfig,
        hub: Addr<SessionHub>,
        out: OutboundTx,
        slots: SlotGuard,
        audit: Audit,
    ) -> Self {
        let id = Arc::new(id);
        let stats = Arc::new(ParticipantStats::default());
        metrics::CONNECTIONS
            .with_label_values(&[id.role.as_str()])
            .inc();
        let bucket = StdinBucket::new(
            cfg.stdin_messages_per_sec,
            cfg.stdin_bytes_per_sec,
            cfg.flood_after,
        );
        let control_bucket = StdinBucket::new(CONTROL_REQUESTS_PER_SEC, u64::MAX, cfg.flood_after);
        let now = Instant::now();
        let lifetime_end = now + cfg.max_lifetime;
        let next_summary = (id.role == Role::Driver).then(|| now + cfg.stdin_summary_interval);
        Connection {
            guard: ExitGuard {
                id: id.clone(),
                hub: hub.clone(),
                audit,
                slots: Some(slots),
                started: Instant::now(),
                stats: stats.clone(),
                close_code: None,
                bytes_in: 0,
                stdin_messages: 0,
                stdin_bytes: 0,
            },
            id,
            cfg,
            hub,
            out,
            stats,
            bucket,
            control_bucket,
            closing: false,
            lifetime_end,
            next_summary,
            alarm: None,
        }
    }

    /// Starts the connection on the current thread, with `socket` on a task of its own (see
    /// [`pump`]): the socket keeps the heartbeat and hands the actor every other frame.
    pub fn attach<S: FrameSocket>(self, socket: S) -> Addr<Self> {
        let keepalive = Keepalive::new(self.cfg.ping_interval, self.cfg.heartbeat_timeout);
        let frames = pump::spawn(socket, keepalive);
        Connection::create(move |ctx| {
            ctx.add_stream(frames);
            self
        })
    }

    /// Sends an orderly close (after queued frames) and stops once the peer is gone.
    fn close(&mut self, ctx: &mut Context<Self>, code: u16) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.guard.close_code.get_or_insert(code);
        if self.out.push(OutFrame::Close(code)).is_err() {
            self.out.close_urgently(code);
        }
        self.linger(ctx);
    }

    /// Stops once the socket ends (our close out and the peer's back, or EOF) or after
    /// `close_linger`, whichever comes first; nothing else is done meanwhile.
    fn linger(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        ctx.run_later(self.cfg.close_linger, |_, ctx| ctx.stop());
    }

    fn send_error(&mut self, ctx: &mut Context<Self>, code: ErrorCode, message: &str) {
        if self
            .out
            .push(OutFrame::text(ServerFrame::error(code, message).to_json()))
            .is_err()
        {
            self.stop_now(ctx);
        }
    }

    /// Counts a malformed or forbidden message; over budget, closes with 1008.
    fn invalid(&mut self, ctx: &mut Context<Self>, code: ErrorCode, message: &str) {
        let n = self.stats.invalid.fetch_add(1, Ordering::AcqRel) + 1;
        self.send_error(ctx, code, message);
        if n >= self.cfg.max_invalid {
            self.close(ctx, close::POLICY_VIOLATION);
        }
    }

    fn stop_now(&mut self, ctx: &mut Context<Self>) {
        if self.guard.close_code.is_none() {
            self.guard.close_code = self
                .out
                .urgent_close_code()
                .or_else(|| code_of(&self.stats));
        }
        ctx.stop();
    }

    /// Arms the connection's one timer for its nearest deadline: lifetime or stdin summary.
    /// It is an [`Alarm`] on the grid: the thread's connections due at one grid point share one
    /// runtime timer.
    fn arm_timer(&self) {
        let mut next = self.lifetime_end;
        if let Some(s) = self.next_summary {
            next = next.min(s);
        }
        if let Some(a) = &self.alarm {
            a.set(on_grid(next, self.cfg.ping_interval));
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        let now = Instant::now();
        if now >= self.lifetime_end {
            self.close(ctx, close::MAX_LIFETIME);
            return;
        }
        if let Some(due) = self.next_summary.filter(|d| now >= *d) {
            self.next_summary = Some(due.max(now) + self.cfg.stdin_summary_interval);
            self.guard.stdin_summary();
        }
        if !self.closing {
            self.arm_timer();
        }
    }

    fn on_stdin(&mut self, ctx: &mut Context<Self>, data: Bytes) {
        if self.id.role != Role::Driver {
            self.invalid(
                ctx,
                ErrorCode::NotDriver,
                "observers cannot write to the terminal",
            );
            return;
        }
        if !self.charge(ctx, Budget::Stdin, data.len()) {
            return;
        }
        self.guard.stdin_messages += 1;
        self.guard.stdin_bytes += data.len() as u64;
        metrics::BYTES_IN.inc_by(data.len() as u64);
        let msg = Stdin {
            connection_id: self.id.connection_id.clone(),
            data,
        };
        match self.hub.try_send(msg) {
            Ok(()) => {}
            Err(SendError::Full(msg)) => {
                // The hub is busy: hold this message, taking no other frame (so the socket
                // reads nothing more), until it has room.
                ctx.wait(self.hub.send(msg).into_actor(self).map(|res, conn, ctx| {
                    if res.is_err() {
                        conn.close(ctx, close::REVOKED);
                    }
                }));
            }
            Err(SendError::Closed(_)) => self.close(ctx, close::REVOKED),
        }
    }

    /// Takes no frame for `wait`: the socket's task, with nowhere to put them, stops reading
    /// once the few frames read ahead are queued.
    fn pause(&mut self, ctx: &mut Context<Self>, wait: Duration) {
        ctx.wait(actix::clock::sleep(wait).into_actor(self));
    }

    /// Charges one message against a budget: over it, reads pause (the message still goes
    /// through) and `rate_limited` is sent once per burst; `false` means it was a flood (1008).
    fn charge(&mut self, ctx: &mut Context<Self>, budget: Budget, len: usize) -> bool {
        let bucket = match budget {
            Budget::Stdin => &mut self.bucket,
            Budget::Control => &mut self.control_bucket,
        };
        match bucket.take(len, Instant::now()) {
            Verdict::Allow => true,
            Verdict::Delay { wait, first } => {
                self.pause(ctx, wait);
                if first {
                    let what = match budget {
                        Budget::Stdin => "stdin rate exceeded: input is delayed",
                        Budget::Control => "control requests are limited: they are delayed",
                    };
                    self.send_error(ctx, ErrorCode::RateLimited, what);
                }
                true
            }
            Verdict::Flood => {
                self.close(ctx, close::POLICY_VIOLATION);
                false
            }
        }
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(why) => {
                self.invalid(ctx, ErrorCode::InvalidMessage, &why);
                return;
            }
        };
        let conn = self.id.connection_id.clone();
        let full = match msg {
            ClientMessage::Resize { cols, rows } => matches!(
                self.hub.try_send(Resize {
                    connection_id: conn,
                    // Bounded to 1..=1000 by `parse`.
                    cols: cols as u16,
                    rows: rows as u16,
                }),
                Err(SendError::Full(_))
            ),
            ClientMessage::Control { action, to } => {
                // Every control change is audited and announced to everyone: a budget bounds
                // them like stdin (delayed beyond it, 1008 if the budget stays exhausted).
                if !self.charge(ctx, Budget::Control, 0) {
                    return;
                }
                matches!(
                    self.hub.try_send(ControlRequest {
                        connection_id: conn,
                        action,
                        to,
                    }),
                    Err(SendError::Full(_))
                )
            }
            ClientMessage::Ack { offset } => {
                // Acks are cumulative: one lost to a full mailbox is covered by the next.
                self.out.note_progress();
                let _ = self.hub.try_send(Ack {
                    connection_id: conn,
                    offset,
                });
                false
            }
        };
        if full {
            self.send_error(ctx, ErrorCode::RateLimited, "session is busy, try again");
        }
    }
}

/// Control requests (acquire/release) a connection may make per second before they are delayed.
pub const CONTROL_REQUESTS_PER_SEC: u32 = 5;

/// Which budget a message is charged to.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Stdin,
    Control,
}

fn code_of(stats: &ParticipantStats) -> Option<u16> {
    match stats.close_code.load(Ordering::Acquire) {
        0 => None,
        c => u16::try_from(c).ok(),
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let join = Join {
            connection_id: self.id.connection_id.clone(),
            subject: self.id.subject.clone(),
            name: self.id.name.clone(),
            role: self.id.role,
            out: self.out.clone(),
            stats: self.stats.clone(),
            limits: HelloLimits {
                max_message_bytes: self.cfg.max_message_bytes,
                ping_interval_ms: self.cfg.ping_interval.as_millis() as u64,
            },
            max_invalid: self.cfg.max_invalid,
            resume_from: self.id.resume_from,
            moderator: self.id.moderator,
        };
        ctx.wait(
            self.hub
                .send(join)
                .into_actor(self)
                .map(|res, conn, ctx| match res {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => conn.close(ctx, close::REVOKED),
                }),
        );
        let (alarm, rings) = alarm::alarm();
        ctx.add_stream(rings);
        self.alarm = Some(alarm);
        self.arm_timer();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if self.guard.close_code.is_none() {
            self.guard.close_code = self
                .out
                .urgent_close_code()
                .or_else(|| code_of(&self.stats));
        }
    }
}

impl StreamHandler<Ring> for Connection {
    fn handle(&mut self, _: Ring, ctx: &mut Context<Self>) {
        self.on_timer(ctx);
    }
}

impl StreamHandler<Inbound> for Connection {
    fn handle(&mut self, frame: Inbound, ctx: &mut Context<Self>) {
        if self.closing {
            if let Inbound::Close(_) = frame {
                ctx.stop();
            }
            return;
        }
        match frame {
            Inbound::Binary(data) => {
                self.guard.bytes_in += data.len() as u64;
                self.on_stdin(ctx, data);
            }
            Inbound::Text(text) => {
                self.guard.bytes_in += text.len() as u64;
                self.on_text(ctx, &text);
            }
            Inbound::Ping(payload) => {
                if self.out.push(OutFrame::Pong(payload)).is_err() {
                    self.stop_now(ctx);
                }
            }
            Inbound::Pong => {}
            Inbound::Silent => self.close(ctx, close::HEARTBEAT_TIMEOUT),
            Inbound::Close(code) => {
                self.guard.close_code.get_or_insert(code.unwrap_or(1005));
                // Echo the close as RFC 6455 asks; the peer then drops the socket.
                let _ = self.out.push(OutFrame::Close(close::NORMAL));
                self.linger(ctx);
            }
            Inbound::Violation(code) => self.close(ctx, code),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.guard.close_code.is_none() {
            self.guard.close_code = self
                .out
                .urgent_close_code()
                .or_else(|| code_of(&self.stats))
                .or(Some(1006));
        }
        ctx.stop();
    }
}
