//! The session hub: one actor per attached session per process. It owns the backend pipe, the
//! scrollback and the control seat, and fans output out without ever waiting on a participant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::audit::{Audit, AuditEvent};
use crate::backend::{BackendEvent, BackendInput, BackendIo};
use crate::lease::{Holder, Lease, LeaseStore};
use crate::metrics;
use crate::outbound::{OutFrame, OutboundTx, PushError};
use crate::protocol::{
    close, ControlReason, ErrorCode, HelloControl, HelloLimits, HolderView, Role, ServerFrame,
};
use crate::scrollback::Scrollback;

/// Mailbox capacity of a hub: stdin, joins and leaves queue here; senders use `try_send`.
pub const HUB_MAILBOX: usize = 1024;

/// Per-session timing and size settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `session.scrollback_bytes`.
    pub scrollback_bytes: usize,
    /// `session.idle_timeout`.
    pub idle_timeout: Duration,
    /// `attach.driver_idle_timeout`.
    pub driver_idle_timeout: Duration,
    /// `attach.control_grace`.
    pub control_grace: Duration,
    /// Lifetime of a control lease without renewal; a holder that cannot renew for this long
    /// stops writing (fencing).
    pub lease_ttl: Duration,
    /// Publishes seat changes to other replicas (with Redis).
    pub bus: Option<crate::redis::bus::ControlBus>,
}

/// Counters a participant shares between its connection actor and the hub (atomics, no locks).
#[derive(Debug, Default)]
pub struct ParticipantStats {
    /// Malformed or forbidden messages so far (`ws.max_invalid_messages`).
    pub invalid: AtomicU32,
    /// Bytes of output queued to this participant.
    pub bytes_out: AtomicU64,
    /// Close code chosen by the hub for this participant (0 = none).
    pub close_code: AtomicU32,
}

impl Participant {
    /// Closes after what is already queued, remembering the code for the disconnect record.
    fn close(&self, code: u16) {
        let _ = self.stats.close_code.compare_exchange(
            0,
            u32::from(code),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if self.out.push(OutFrame::Close(code)).is_err() {
            self.out.close_urgently(code);
        }
    }

    /// Closes ahead of anything queued.
    fn close_urgently(&self, code: u16) {
        let _ = self.stats.close_code.compare_exchange(
            0,
            u32::from(code),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.out.close_urgently(code);
    }
}

struct Participant {
    subject: String,
    role: Role,
    /// Set once `hello` and the scrollback are queued; until then broadcasts skip it (the
    /// scrollback it gets already holds that output).
    greeted: bool,
    out: OutboundTx,
    stats: Arc<ParticipantStats>,
    max_invalid: u32,
}

/// The driver seat as this hub sees it.
#[derive(Debug, Clone)]
enum Seat {
    Free,
    Held {
        lease: Lease,
        last_stdin: Instant,
    },
    /// The holder disconnected; only its subject may take the seat until `until`.
    Grace {
        lease: Lease,
        until: Instant,
    },
}

/// The hub actor.
pub struct SessionHub {
    session_id: String,
    tenant: String,
    cfg: HubConfig,
    input: mpsc::Sender<BackendInput>,
    events: Option<mpsc::Receiver<BackendEvent>>,
    scrollback: Scrollback,
    participants: HashMap<String, Participant>,
    seat: Seat,
    leases: Arc<dyn LeaseStore>,
    audit: Audit,
    last_activity: Instant,
    announced_deadline: SystemTime,
    exited: bool,
    /// The holder on another replica, as last announced there.
    remote_holder: Option<HolderView>,
    /// When the store last confirmed our lease.
    lease_confirmed: Instant,
    on_end: Option<OnEnd>,
}

/// Runs once when a hub stops, with its session id (unregisters the session).
pub type OnEnd = Box<dyn FnOnce(&str) + Send>;

impl SessionHub {
    /// A hub for `session_id` over a running backend. `on_end` runs once when it stops.
    pub fn new(
        session_id: String,
        tenant: String,
        cfg: HubConfig,
        io: BackendIo,
        leases: Arc<dyn LeaseStore>,
        audit: Audit,
        on_end: OnEnd,
    ) -> Self {
        let scrollback = Scrollback::new(cfg.scrollback_bytes);
        let deadline = SystemTime::now() + cfg.idle_timeout;
        SessionHub {
            session_id,
            tenant,
            cfg,
            input: io.input,
            events: Some(io.events),
            scrollback,
            participants: HashMap::new(),
            seat: Seat::Free,
            leases,
            audit,
            last_activity: Instant::now(),
            announced_deadline: deadline,
            exited: false,
            remote_holder: None,
            lease_confirmed: Instant::now(),
            on_end: Some(on_end),
        }
    }

    fn idle_deadline(&self) -> SystemTime {
        let left = self
            .cfg
            .idle_timeout
            .saturating_sub(self.last_activity.elapsed());
        SystemTime::now() + left
    }

    fn holder_conn(&self) -> Option<&str> {
        match &self.seat {
            Seat::Held { lease, .. } => Some(lease.holder.connection_id.as_str()),
            _ => None,
        }
    }

    fn event(&self, ty: &str, outcome: &str) -> AuditEvent {
        AuditEvent::new(ty, outcome)
            .session_id(&self.session_id)
            .tenant(&self.tenant)
    }

    /// Queues a frame to one participant; a full queue drops that participant (4003).
    fn send_to(&mut self, conn: &str, frame: OutFrame) {
        let failed = self
            .participants
            .get(conn)
            .and_then(|p| p.out.push(frame).err());
        if let Some(e) = failed {
            self.drop_participant(conn, e);
        }
    }

    fn broadcast(&mut self, frame: &ServerFrame) {
        let bytes = Bytes::from(frame.to_json());
        self.broadcast_frame(OutFrame::Text(bytes));
    }

    fn broadcast_frame(&mut self, frame: OutFrame) {
        let mut failed = Vec::new();
        // The driver's own echo goes out first: its latency is what a typist feels.
        let holder = self.holder_conn();
        let first = holder.and_then(|h| self.participants.get_key_value(h));
        let rest = self
            .participants
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != holder);
        for (id, p) in first.into_iter().chain(rest).filter(|(_, p)| p.greeted) {
            if let OutFrame::Binary(b) = &frame {
                p.stats
                    .bytes_out
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            if let Err(e) = p.out.push(frame.clone()) {
                failed.push((id.clone(), e));
            }
        }
        for (id, e) in failed {
            self.drop_participant(&id, e);
        }
    }

    /// Removes a participant whose queue refused a frame. Its connection closes on its own.
    fn drop_participant(&mut self, conn: &str, err: PushError) {
        if let Some(p) = self.participants.remove(conn) {
            if err == PushError::Overflow {
                // Audited by the connection's disconnect record (close_code 4003).
                metrics::SLOW_CONSUMER_CLOSES.inc();
                tracing::info!(
                    session = %self.session_id,
                    role = p.role.as_str(),
                    queued_bytes = p.out.queued_bytes(),
                    "slow consumer closed with 4003"
                );
                let _ = p.stats.close_code.compare_exchange(
                    0,
                    u32::from(close::SLOW_CONSUMER),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            self.after_leave(conn);
        }
    }

    fn participants_frame(&self) -> ServerFrame {
        let drivers = self
            .participants
            .values()
            .filter(|p| p.role == Role::Driver)
            .count();
        ServerFrame::Participants {
            drivers,
            observers: self.participants.len() - drivers,
        }
    }

    fn holder_view(&self) -> Option<HolderView> {
        match &self.seat {
            Seat::Held { lease, .. } => Some(HolderView {
                connection_id: lease.holder.connection_id.clone(),
                subject: lease.holder.subject.clone(),
            }),
            _ => self.remote_holder.clone(),
        }
    }

    fn control_frame(&self, reason: ControlReason) -> ServerFrame {
        ServerFrame::Control {
            holder: self.holder_view(),
            reason,
        }
    }

    /// Announces a control change to everyone and audits it.
    fn control_changed(&mut self, reason: ControlReason, subject: &str, conn: &str) {
        self.announce_locally(reason, subject, conn);
        self.publish(reason);
    }

    /// Audits a seat change and tells this replica's participants.
    fn announce_locally(&mut self, reason: ControlReason, subject: &str, conn: &str) {
        metrics::CONTROL_CHANGES
            .with_label_values(&[reason_label(reason)])
            .inc();
        self.audit.record_detached(
            self.event(reason.audit_type(), "ok")
                .reason(reason_label(reason))
                .subject(subject)
                .connection_id(conn),
        );
        if matches!(self.seat, Seat::Held { .. }) {
            self.remote_holder = None;
        }
        let frame = self.control_frame(reason);
        self.broadcast(&frame);
    }

    /// Tells other replicas (through the bus) who holds the seat now.
    fn publish(&self, reason: ControlReason) {
        if let Some(bus) = &self.cfg.bus {
            let holder = match &self.seat {
                Seat::Held { .. } => self.holder_view(),
                _ => None,
            };
            bus.publish(&self.session_id, holder, reason_label(reason));
        }
    }

    /// Frees a held seat: audits and tells local participants at once, and other replicas only
    /// once the lease is released, so a driver there that hears "released" can acquire it.
    fn free_seat(
        &mut self,
        ctx: &mut Context<Self>,
        lease: &Lease,
        reason: ControlReason,
        subject: &str,
    ) {
        self.seat = Seat::Free;
        self.announce_locally(reason, subject, &lease.holder.connection_id);
        let fut = self.leases.release(&self.session_id, lease.epoch);
        ctx.spawn(
            async move {
                if let Err(e) = fut.await {
                    tracing::warn!(error = %e, "control release failed; the lease will expire");
                }
            }
            .into_actor(self)
            .map(move |(), hub, _| {
                // A newer local holder publishes its own note.
                if matches!(hub.seat, Seat::Free) {
                    hub.publish(reason);
                }
            }),
        );
    }

    /// Frees the seat if anyone holds it (or keeps it in grace): releases the lease, audits,
    /// tells local participants and other replicas. `by` names who did it when not the holder.
    fn vacate(&mut self, ctx: &mut Context<Self>, reason: ControlReason, by: Option<&str>) -> bool {
        let (Seat::Held { lease, .. } | Seat::Grace { lease, .. }) = self.seat.clone() else {
            return false;
        };
        let subject = by.unwrap_or(&lease.holder.subject);
        self.free_seat(ctx, &lease, reason, subject);
        true
    }

    fn after_leave(&mut self, conn: &str) {
        if let Seat::Held { lease, .. } = &self.seat {
            if lease.holder.connection_id == conn {
                let lease = lease.clone();
                self.seat = Seat::Grace {
                    until: Instant::now() + self.cfg.control_grace,
                    lease: lease.clone(),
                };
                self.control_changed(
                    ControlReason::Disconnected,
                    &lease.holder.subject,
                    &lease.holder.connection_id,
                );
            }
        }
        let frame = self.participants_frame();
        self.broadcast(&frame);
    }

    fn lease_ttl(&self) -> Duration {
        self.cfg.lease_ttl
    }

    /// Seat bookkeeping, idle deadlines and lease renewal; runs every second.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        match self.seat.clone() {
            Seat::Held { lease, last_stdin }
                if now.duration_since(last_stdin) >= self.cfg.driver_idle_timeout =>
            {
                self.free_seat(ctx, &lease, ControlReason::Expired, &lease.holder.subject);
            }
            Seat::Grace { lease, until } if now >= until => {
                self.free_seat(ctx, &lease, ControlReason::Released, &lease.holder.subject);
            }
            Seat::Held { lease, .. } | Seat::Grace { lease, .. } => {
                let fut = self
                    .leases
                    .renew(&self.session_id, lease.epoch, self.lease_ttl());
                ctx.spawn(fut.into_actor(self).map(move |res, hub, ctx| match res {
                    Ok(true) => hub.lease_confirmed = Instant::now(),
                    // Fenced out (another replica took the seat): stop writing stdin at once.
                    Ok(false) => hub.lose_seat(ctx, lease.epoch),
                    // Unconfirmed for a whole lease lifetime: another replica may hold it now.
                    Err(_) if hub.lease_confirmed.elapsed() >= hub.cfg.lease_ttl => {
                        hub.lose_seat(ctx, lease.epoch)
                    }
                    Err(_) => {}
                }));
            }
            Seat::Free => {}
        }

        if self.participants.is_empty() {
            return;
        }
        if self.last_activity.elapsed() >= self.cfg.idle_timeout {
            for p in self.participants.values() {
                p.close(close::SESSION_IDLE);
            }
            self.participants.clear();
            self.vacate(ctx, ControlReason::Released, None);
            return;
        }
        let deadline = self.idle_deadline();
        let threshold = (self.cfg.idle_timeout / 10).min(Duration::from_secs(60));
        let moved = deadline
            .duration_since(self.announced_deadline)
            .unwrap_or_default();
        if moved > threshold {
            self.announced_deadline = deadline;
            self.broadcast(&ServerFrame::Idle {
                deadline: rfc3339(deadline),
            });
        }
    }

    fn lose_seat(&mut self, _ctx: &mut Context<Self>, epoch: u64) {
        let lost = match &self.seat {
            Seat::Held { lease, .. } | Seat::Grace { lease, .. } if lease.epoch == epoch => {
                Some(lease.clone())
            }
            _ => None,
        };
        if let Some(lease) = lost {
            self.seat = Seat::Free;
            self.control_changed(
                ControlReason::Revoked,
                &lease.holder.subject,
                &lease.holder.connection_id,
            );
        }
    }

    /// Tries to seat `conn`, then runs `then(hub, seated)`; on success everyone is told.
    fn try_seat(
        &mut self,
        ctx: &mut Context<Self>,
        conn: String,
        subject: String,
        then: impl FnOnce(&mut Self, bool) + 'static,
    ) {
        let free_for_subject = match &self.seat {
            Seat::Free => true,
            Seat::Grace { lease, .. } => lease.holder.subject == subject,
            Seat::Held { .. } => false,
        };
        if !free_for_subject {
            then(self, false);
            return;
        }
        let holder = Holder {
            connection_id: conn.clone(),
            subject: subject.clone(),
        };
        let fut = self
            .leases
            .acquire(&self.session_id, &holder, self.lease_ttl());
        // Waiting here keeps the hub's view consistent: nothing else is handled until the
        // store answers (immediately in memory; one round trip with Redis).
        ctx.wait(fut.into_actor(self).map(move |res, hub, _ctx| {
            let seated = match res {
                Ok(Some(lease)) if hub.participants.contains_key(&conn) => {
                    hub.seat = Seat::Held {
                        lease,
                        last_stdin: Instant::now(),
                    };
                    hub.lease_confirmed = Instant::now();
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "control lease store failed");
                    false
                }
            };
            then(hub, seated);
        }));
    }
}

fn reason_label(r: ControlReason) -> &'static str {
    match r {
        ControlReason::Acquired => "acquired",
        ControlReason::Released => "released",
        ControlReason::Expired => "expired",
        ControlReason::Revoked => "revoked",
        ControlReason::Disconnected => "disconnected",
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Actor for SessionHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(HUB_MAILBOX);
        if let Some(rx) = self.events.take() {
            ctx.add_stream(coalesced(rx));
        }
        ctx.run_interval(Duration::from_secs(1), |hub, ctx| hub.tick(ctx));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.input.try_send(BackendInput::Terminate);
        // A session that ends (exit, delete, pod gone) gives its seat back at once instead of
        // leaving the lease to expire.
        if let Seat::Held { lease, .. } | Seat::Grace { lease, .. } = &self.seat {
            let fut = self.leases.release(&self.session_id, lease.epoch);
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = fut.await;
                });
            }
        }
        if let Some(f) = self.on_end.take() {
            f(&self.session_id);
        }
    }
}

impl StreamHandler<BackendEvent> for SessionHub {
    fn handle(&mut self, ev: BackendEvent, ctx: &mut Context<Self>) {
        match ev {
            BackendEvent::Output(bytes) => {
                self.last_activity = Instant::now();
                self.scrollback.push(&bytes);
                metrics::BYTES_OUT.inc_by(bytes.len() as u64 * self.participants.len() as u64);
                self.broadcast_frame(OutFrame::Binary(bytes));
            }
            BackendEvent::Exited(code) => {
                self.exited = true;
                self.audit.record_detached(
                    self.event("session.exited", "ok")
                        .field_i64("exit_code", i64::from(code)),
                );
                self.broadcast(&ServerFrame::Exit { code });
                for p in self.participants.values() {
                    p.close(close::NORMAL);
                }
                self.participants.clear();
                ctx.stop();
            }
            BackendEvent::Gone(reason) => {
                self.exited = true;
                self.audit.record_detached(
                    self.event("session.exited", "error")
                        .reason(truncate(&reason, 200)),
                );
                for p in self.participants.values() {
                    p.close_urgently(close::REVOKED);
                }
                self.participants.clear();
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if !self.exited {
            for p in self.participants.values() {
                p.close(close::INTERNAL_ERROR);
            }
            self.participants.clear();
            ctx.stop();
        }
    }
}

/// Largest output chunk the hub builds by merging chunks that are already waiting.
pub const MAX_COALESCED: usize = 64 * 1024;

/// Backend events, with output chunks that are already queued merged into one (up to
/// `MAX_COALESCED`): fewer, larger sends under bulk output, and no added latency.
fn coalesced(
    mut rx: mpsc::Receiver<BackendEvent>,
) -> impl futures_util::Stream<Item = BackendEvent> {
    use std::task::Poll;
    let mut pending: Option<BackendEvent> = None;
    futures_util::stream::poll_fn(move |cx| {
        let first = match pending.take() {
            Some(ev) => ev,
            None => match rx.poll_recv(cx) {
                Poll::Ready(Some(ev)) => ev,
                other => return other,
            },
        };
        let BackendEvent::Output(head) = first else {
            return Poll::Ready(Some(first));
        };
        let mut merged: Option<bytes::BytesMut> = None;
        let mut len = head.len();
        while len < MAX_COALESCED {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(BackendEvent::Output(more))) => {
                    len += more.len();
                    merged
                        .get_or_insert_with(|| bytes::BytesMut::from(&head[..]))
                        .extend_from_slice(&more);
                }
                Poll::Ready(Some(other)) => {
                    pending = Some(other);
                    break;
                }
                _ => break,
            }
        }
        Poll::Ready(Some(BackendEvent::Output(
            merged.map_or(head, bytes::BytesMut::freeze),
        )))
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A connection joins; the hub queues `hello` and the scrollback before any live output.
#[derive(Message)]
#[rtype(result = "Result<(), JoinError>")]
pub struct Join {
    /// Server-generated connection id.
    pub connection_id: String,
    /// Authenticated subject.
    pub subject: String,
    /// Ticket role.
    pub role: Role,
    /// The connection's outbound queue.
    pub out: OutboundTx,
    /// Shared counters.
    pub stats: Arc<ParticipantStats>,
    /// Limits announced in `hello`.
    pub limits: HelloLimits,
    /// `ws.max_invalid_messages`.
    pub max_invalid: u32,
}

/// Why a join failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The session's process has ended.
    #[error("session ended")]
    Ended,
}

impl Handler<Join> for SessionHub {
    type Result = Result<(), JoinError>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        if self.exited {
            return Err(JoinError::Ended);
        }
        let conn = msg.connection_id.clone();
        self.participants.insert(
            conn.clone(),
            Participant {
                subject: msg.subject.clone(),
                role: msg.role,
                greeted: false,
                out: msg.out,
                stats: msg.stats,
                max_invalid: msg.max_invalid,
            },
        );
        let role = msg.role;
        let limits = msg.limits;
        let subject = msg.subject;
        if role == Role::Driver {
            let (c, s) = (conn.clone(), subject.clone());
            self.try_seat(ctx, conn, subject, move |hub, _| {
                hub.greet(c, s, role, limits)
            });
        } else {
            self.greet(conn, subject, role, limits);
        }
        Ok(())
    }
}

impl SessionHub {
    fn greet(&mut self, conn: String, subject: String, role: Role, limits: HelloLimits) {
        match self.participants.get_mut(&conn) {
            Some(p) => p.greeted = true,
            None => return,
        }
        let you = self.holder_conn() == Some(conn.as_str());
        let hello = ServerFrame::Hello {
            session_id: self.session_id.clone(),
            connection_id: conn.clone(),
            role,
            control: HelloControl {
                holder: self.holder_view().map(|h| h.connection_id),
                you,
            },
            idle_deadline: rfc3339(self.idle_deadline()),
            limits,
        };
        self.send_to(&conn, OutFrame::text(hello.to_json()));
        if !self.scrollback.is_empty() {
            let replay = self.scrollback.snapshot();
            self.send_to(&conn, OutFrame::Binary(replay));
        }
        if you {
            self.control_changed(ControlReason::Acquired, &subject, &conn);
        }
        let frame = self.participants_frame();
        self.broadcast(&frame);
    }

    fn refuse(&mut self, conn: &str, code: ErrorCode, message: &str) {
        let over = match self.participants.get(conn) {
            Some(p) => {
                let n = p.stats.invalid.fetch_add(1, Ordering::AcqRel) + 1;
                n >= p.max_invalid
            }
            None => return,
        };
        self.send_to(
            conn,
            OutFrame::text(ServerFrame::error(code, message).to_json()),
        );
        if over {
            if let Some(p) = self.participants.remove(conn) {
                p.close(close::POLICY_VIOLATION);
            }
            self.after_leave(conn);
        }
    }
}

/// A connection left (any reason). Idempotent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    /// The connection.
    pub connection_id: String,
}

impl Handler<Leave> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Leave, _ctx: &mut Context<Self>) {
        if self.participants.remove(&msg.connection_id).is_some() {
            self.after_leave(&msg.connection_id);
        }
    }
}

/// stdin bytes from a connection; written only if it holds the seat at the current epoch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stdin {
    /// The sender.
    pub connection_id: String,
    /// The bytes.
    pub data: Bytes,
}

impl Handler<Stdin> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Stdin, _ctx: &mut Context<Self>) {
        let is_holder = match &mut self.seat {
            Seat::Held { lease, last_stdin } if lease.holder.connection_id == msg.connection_id => {
                *last_stdin = Instant::now();
                true
            }
            _ => false,
        };
        if !is_holder {
            self.refuse(
                &msg.connection_id,
                ErrorCode::NotDriver,
                "stdin is accepted only from the connection holding control",
            );
            return;
        }
        self.last_activity = Instant::now();
        if self.input.try_send(BackendInput::Stdin(msg.data)).is_err() {
            self.send_to(
                &msg.connection_id,
                OutFrame::text(
                    ServerFrame::error(ErrorCode::RateLimited, "terminal input is backed up")
                        .to_json(),
                ),
            );
        }
    }
}

/// A resize request from a connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resize {
    /// The sender.
    pub connection_id: String,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Handler<Resize> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Resize, _ctx: &mut Context<Self>) {
        if self.holder_conn() != Some(msg.connection_id.as_str()) {
            self.refuse(
                &msg.connection_id,
                ErrorCode::NotDriver,
                "resize is accepted only from the connection holding control",
            );
            return;
        }
        let _ = self.input.try_send(BackendInput::Resize {
            cols: msg.cols,
            rows: msg.rows,
        });
    }
}

/// acquire/release from a connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ControlRequest {
    /// The sender.
    pub connection_id: String,
    /// true = acquire, false = release.
    pub acquire: bool,
}

impl Handler<ControlRequest> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: ControlRequest, ctx: &mut Context<Self>) {
        let Some(p) = self.participants.get(&msg.connection_id) else {
            return;
        };
        let subject = p.subject.clone();
        if p.role != Role::Driver {
            self.audit.record_detached(
                self.event("attach.control.denied", "refused")
                    .reason("observer")
                    .subject(&subject)
                    .connection_id(&msg.connection_id),
            );
            self.refuse(
                &msg.connection_id,
                ErrorCode::ControlDenied,
                "observers cannot take control",
            );
            return;
        }
        if msg.acquire {
            if self.holder_conn() == Some(msg.connection_id.as_str()) {
                return;
            }
            let conn = msg.connection_id.clone();
            let subj = subject.clone();
            self.try_seat(ctx, msg.connection_id, subject, move |hub, seated| {
                if seated {
                    hub.control_changed(ControlReason::Acquired, &subj, &conn);
                } else {
                    hub.audit.record_detached(
                        hub.event("attach.control.denied", "refused")
                            .reason("held")
                            .subject(&subj)
                            .connection_id(&conn),
                    );
                    hub.send_to(
                        &conn,
                        OutFrame::text(
                            ServerFrame::error(
                                ErrorCode::ControlDenied,
                                "control is held by another driver",
                            )
                            .to_json(),
                        ),
                    );
                }
            });
        } else if let Seat::Held { lease, .. } = self.seat.clone() {
            if lease.holder.connection_id == msg.connection_id {
                self.free_seat(ctx, &lease, ControlReason::Released, &subject);
            }
        }
    }
}

/// A moderator revokes the current driver's control.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Revoke {
    /// The moderator's subject, for the audit record.
    pub by: String,
}

impl Handler<Revoke> for SessionHub {
    type Result = bool;

    fn handle(&mut self, msg: Revoke, ctx: &mut Context<Self>) -> bool {
        self.vacate(ctx, ControlReason::Revoked, Some(&msg.by))
    }
}

/// Ends the session: participants get 4005, the process is terminated.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Terminate;

impl Handler<Terminate> for SessionHub {
    type Result = ();

    fn handle(&mut self, _msg: Terminate, ctx: &mut Context<Self>) {
        self.exited = true;
        for p in self.participants.values() {
            p.close(close::REVOKED);
        }
        self.participants.clear();
        ctx.stop();
    }
}

/// Server drain: `shutdown`, then close 1001 to every participant.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for SessionHub {
    type Result = ();

    fn handle(&mut self, _msg: Drain, ctx: &mut Context<Self>) {
        self.broadcast(&ServerFrame::Shutdown {});
        for p in self.participants.values() {
            p.close(close::GOING_AWAY);
        }
        self.participants.clear();
        self.vacate(ctx, ControlReason::Released, None);
    }
}

/// A snapshot for `GET /api/v1/sessions/{id}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HubSnapshot {
    /// Connected participants.
    pub participants: Vec<ParticipantView>,
    /// The control holder, if any.
    pub control: Option<HolderView>,
}

/// One participant in a snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParticipantView {
    /// Connection id.
    pub connection_id: String,
    /// Subject.
    pub subject: String,
    /// Role.
    pub role: Role,
}

/// Asks for a snapshot.
#[derive(Message)]
#[rtype(result = "HubSnapshot")]
pub struct Snapshot;

impl Handler<Snapshot> for SessionHub {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _msg: Snapshot, _ctx: &mut Context<Self>) -> Self::Result {
        let control = self.holder_view();
        let mut participants: Vec<ParticipantView> = self
            .participants
            .iter()
            .map(|(id, p)| ParticipantView {
                connection_id: id.clone(),
                subject: p.subject.clone(),
                role: p.role,
            })
            .collect();
        participants.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        MessageResult(HubSnapshot {
            participants,
            control,
        })
    }
}

/// A control change announced by another replica.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteControl(pub crate::redis::bus::ControlNote);

impl Handler<RemoteControl> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: RemoteControl, _ctx: &mut Context<Self>) {
        let note = msg.0;
        let reason = match note.reason.as_str() {
            "acquired" => ControlReason::Acquired,
            "released" => ControlReason::Released,
            "expired" => ControlReason::Expired,
            "revoked" => ControlReason::Revoked,
            "disconnected" => ControlReason::Disconnected,
            _ => return,
        };
        if note.holder.is_some() {
            // Someone elsewhere holds the seat now: if we still thought we did, our lease is
            // gone (the store only grants one), so stop forwarding stdin at once.
            if let Seat::Held { .. } | Seat::Grace { .. } = self.seat {
                self.seat = Seat::Free;
            }
        }
        self.remote_holder = note.holder;
        let frame = self.control_frame(reason);
        self.broadcast(&frame);
    }
}
