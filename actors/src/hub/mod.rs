//! The session hub: one actor per attached session per process. It owns the backend pipe, the
//! output ring, the emulator's handle, the pace and the control seat, and fans output out
//! without ever waiting on a participant.

mod asking;
mod coalesce;
mod config;
mod control;
mod handlers;
mod messages;
mod moderating;
pub mod moderation;
mod output;
mod participant;
pub mod requests;
pub mod seat;
#[cfg(test)]
mod tests;
mod thumb;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::audit::{Audit, AuditEvent};
use crate::backend::{BackendEvent, BackendInput, BackendIo};
use crate::lease::LeaseStore;
use crate::metrics;
use crate::outbound::{OutFrame, PushError};
use crate::pace::{Gated, PaceGate};
use crate::protocol::{close, ControlReason, HolderView, Role, ServerFrame, TermSize};
use crate::recording::RecordTap;
use crate::ring::OutputRing;
use crate::term::worker::TermHandle;
use crate::term::TermState;
use crate::time::rfc3339;

pub use coalesce::MAX_COALESCED;
pub use config::{FlowConfig, HubConfig};
pub use messages::{
    Ack, ControlRequest, Drain, HubSnapshot, Join, JoinError, Leave, OutputOffset, ParticipantView,
    RemoteControl, Resize, Revoke, Snapshot, Stdin, Terminate,
};
pub use moderation::ModerationConfig;
pub use participant::ParticipantStats;
pub use thumb::{Thumb, THUMBNAIL_MAX_AGE};

use moderation::Moderation;
use participant::Participant;
use seat::{SeatMachine, SeatTimes};

/// Mailbox capacity of a hub: stdin, joins and leaves queue here; senders use `try_send`.
pub const HUB_MAILBOX: usize = 1024;
/// How often a hub checks its seat, deadlines, stalls and pacing (on the shared grid).
const HUB_TICK: Duration = Duration::from_secs(1);

/// Joins and leaves within this long are announced in one `participants` frame: a crowd
/// joining or leaving at once costs one frame per participant, not one per pair.
pub const PARTICIPANTS_COALESCE: Duration = Duration::from_millis(50);

/// The hub actor.
pub struct SessionHub {
    session_id: String,
    tenant: String,
    cfg: HubConfig,
    input: mpsc::Sender<BackendInput>,
    events: Option<mpsc::Receiver<BackendEvent>>,
    ring: OutputRing,
    term: TermHandle,
    gate: Arc<PaceGate>,
    size: TermSize,
    /// The participant whose window paces the session (the live control holder).
    paced: Option<String>,
    flush_armed: bool,
    snapshot_inflight: bool,
    participants: HashMap<String, Participant>,
    seat: SeatMachine,
    leases: Arc<dyn LeaseStore>,
    audit: Audit,
    last_activity: Instant,
    announced_deadline: SystemTime,
    exited: bool,
    /// The holder on another replica, as last announced there.
    remote_holder: Option<HolderView>,
    /// Participants gone or refusing frames, not yet removed (see `remove_participants`).
    leaving: Vec<(String, Option<PushError>)>,
    /// Set while `remove_participants` works through `leaving`.
    removing: bool,
    /// The last thumbnail (built only when asked, kept `THUMBNAIL_MAX_AGE`).
    thumb: thumb::ThumbCache,
    /// The participant counts changed since they were last announced.
    participants_dirty: bool,
    /// An announcement is scheduled (`announce_participants`).
    announce_armed: bool,
    on_end: Option<OnEnd>,
    /// The session's recording (output, input, sizes and markers), fed off the output path.
    rec: Option<RecordTap>,
    /// Set by the participants' queues (this hub's copies) whenever a frame is queued.
    pushed: Arc<AtomicBool>,
    /// The last stall scan found a queue with frames: the next one must look again.
    maybe_queued: bool,
    /// Someone may be resyncing: the tick looks for drained queues to snapshot.
    resyncs: bool,
    /// Who moderates and the input held meanwhile, for a moderated session.
    moderation: Option<Moderation>,
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
        let ring = OutputRing::new(cfg.replay_bytes, 0);
        // The emulator may lag at most half the ring, so a joiner's snapshot can always be
        // caught up to the live stream from the ring. What it lags is held by the ring too.
        let gate = PaceGate::new((cfg.replay_bytes / 2).clamp(1, crate::term::worker::MAX_BATCH));
        let size = cfg.initial_size;
        let term = TermHandle::spawn(
            TermState::new(size.cols, size.rows, cfg.history_lines),
            0,
            gate.clone(),
        );
        let deadline = SystemTime::now() + cfg.idle_timeout;
        let rec = cfg
            .recorder
            .as_ref()
            .map(|r| r.open(&session_id, &tenant, size.cols, size.rows));
        let times = SeatTimes {
            control_grace: cfg.control_grace,
            driver_idle_timeout: cfg.driver_idle_timeout,
            lease_ttl: cfg.lease_ttl,
            request_ttl: cfg.control_request_ttl,
        };
        let moderation = cfg
            .moderated
            .clone()
            .map(|m| Moderation::new(m, cfg.lease_ttl));
        SessionHub {
            session_id,
            tenant,
            cfg,
            input: io.input,
            events: Some(io.events),
            ring,
            term,
            gate,
            size,
            paced: None,
            flush_armed: false,
            snapshot_inflight: false,
            participants: HashMap::new(),
            seat: SeatMachine::new(times, Instant::now()),
            leases,
            audit,
            last_activity: Instant::now(),
            announced_deadline: deadline,
            exited: false,
            pushed: Arc::new(AtomicBool::new(false)),
            maybe_queued: false,
            resyncs: false,
            remote_holder: None,
            leaving: Vec::new(),
            removing: false,
            thumb: Default::default(),
            participants_dirty: false,
            announce_armed: false,
            on_end: Some(on_end),
            rec,
            moderation,
        }
    }

    fn idle_deadline(&self) -> SystemTime {
        let left = self
            .cfg
            .idle_timeout
            .saturating_sub(self.last_activity.elapsed());
        SystemTime::now() + left
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
            self.drop_failed(vec![(conn.to_owned(), e)]);
        }
    }

    fn broadcast(&mut self, frame: &ServerFrame) {
        // Output produced before this frame reaches everyone before it.
        self.flush();
        let bytes = Bytes::from(frame.to_json());
        self.broadcast_frame(OutFrame::Text(bytes));
    }

    fn broadcast_frame(&mut self, frame: OutFrame) {
        let failed = self.fan_out(&frame);
        self.drop_failed(failed);
    }

    /// The fan-out: pushes `frame` to every greeted participant, the driver first, without
    /// waiting on any. Returns those whose queues refused it.
    fn fan_out(&self, frame: &OutFrame) -> Vec<(String, PushError)> {
        let mut failed = Vec::new();
        // The driver's own echo goes out first: its latency is what a typist feels.
        let holder = self.seat.holder_conn();
        let first = holder.and_then(|h| self.participants.get_key_value(h));
        let rest = self
            .participants
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != holder);
        for (id, p) in first.into_iter().chain(rest).filter(|(_, p)| p.greeted) {
            if let OutFrame::Binary(b) = frame {
                p.stats
                    .bytes_out
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            if let Err(e) = p.out.push(frame.clone()) {
                failed.push((id.clone(), e));
            }
        }
        failed
    }

    /// Removes participants whose queues refused a frame (their connections close on their
    /// own).
    fn drop_failed(&mut self, failed: Vec<(String, PushError)>) {
        self.remove_participants(failed.into_iter().map(|(c, e)| (c, Some(e))));
    }

    /// Removes participants that left (`None`) or whose queues refused a frame and hands a
    /// departed holder's seat to its grace period; the new counts are announced later, once for
    /// the whole wave (`announce_participants`, or the next tick). Iterative: frames sent
    /// meanwhile may be refused too; those participants join the `leaving` list worked through
    /// by the same loop, so thousands leaving at once never recurse.
    fn remove_participants(&mut self, gone: impl IntoIterator<Item = (String, Option<PushError>)>) {
        self.leaving.extend(gone);
        if self.removing {
            return;
        }
        self.removing = true;
        while !self.leaving.is_empty() {
            for (conn, err) in std::mem::take(&mut self.leaving) {
                self.participants_dirty |= self.remove_one(&conn, err);
            }
        }
        self.removing = false;
    }

    /// Announces the participant counts within `PARTICIPANTS_COALESCE`, with whatever else
    /// joins or leaves meanwhile.
    fn announce_participants(&mut self, ctx: &mut Context<Self>) {
        self.participants_dirty = true;
        if self.announce_armed {
            return;
        }
        self.announce_armed = true;
        ctx.run_later(PARTICIPANTS_COALESCE, |hub, _| {
            hub.announce_armed = false;
            hub.send_participants();
        });
    }

    /// Sends the counts to everyone if they changed since the last announcement.
    fn send_participants(&mut self) {
        if std::mem::take(&mut self.participants_dirty) {
            let frame = self.participants_frame();
            self.broadcast(&frame);
        }
    }

    /// Removes one participant; `true` if it was there. Announces a departed holder.
    fn remove_one(&mut self, conn: &str, err: Option<PushError>) -> bool {
        let Some(p) = self.participants.remove(conn) else {
            return false;
        };
        if err == Some(PushError::Overflow) {
            self.note_slow_consumer(&p);
        }
        if let Some(lease) = self.seat.disconnected(conn, Instant::now()) {
            self.control_changed(
                ControlReason::Disconnected,
                &lease.holder.subject,
                &lease.holder.connection_id,
            );
        }
        self.withdraw_request(conn);
        self.moderator_left(conn);
        true
    }

    fn note_slow_consumer(&self, p: &Participant) {
        // Audited by the connection's disconnect record (close_code 4003).
        metrics::SLOW_CONSUMER_CLOSES.inc();
        tracing::info!(
            session = %self.session_id,
            role = p.role.as_str(),
            queued_bytes = p.out.queued_bytes(),
            "slow consumer closed with 4003"
        );
        p.stats.set_close_code(close::SLOW_CONSUMER);
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

    /// Closes every participant with `code` and forgets them (the session or replica ends).
    fn close_all(&mut self, code: u16) {
        for p in self.participants.values() {
            p.close(code);
        }
        let gone: Vec<String> = self.participants.drain().map(|(id, _)| id).collect();
        // Their moderation ends here too (other replicas would otherwise wait out the ttl).
        for conn in gone {
            self.moderator_left(&conn);
        }
    }

    /// Seat bookkeeping, idle deadlines and lease renewal; runs every second.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        // Removals outside a handler with a context (refused frames) are announced here.
        self.send_participants();
        self.tick_seat(ctx);
        self.tick_moderation(ctx);
        self.expire_requests();
        self.cut_stalled();
        self.poll_resyncs(ctx);
        self.repace();
        if self.participants.is_empty() {
            return;
        }
        if self.last_activity.elapsed() >= self.cfg.idle_timeout {
            self.close_all(close::SESSION_IDLE);
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

    fn greet(
        &mut self,
        conn: String,
        subject: String,
        resume_from: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        if !self.participants.contains_key(&conn) {
            return;
        }
        if let (Some(r), Some(p)) = (&self.rec, self.participants.get(&conn)) {
            r.marker(format!("join {} {subject}", p.role.as_str()));
        }
        self.greet_output(&conn, resume_from, ctx);
        if self.seat.holder_conn() == Some(conn.as_str()) {
            self.control_changed(ControlReason::Acquired, &subject, &conn);
        }
        self.announce_participants(ctx);
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl StreamHandler<crate::alarm::Ring> for SessionHub {
    fn handle(&mut self, _: crate::alarm::Ring, ctx: &mut Context<Self>) {
        self.tick(ctx);
    }
}

impl Actor for SessionHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(HUB_MAILBOX);
        if let Some(rx) = self.events.take() {
            ctx.add_stream(Gated::new(
                Box::pin(coalesce::coalesced(rx)),
                self.gate.clone(),
            ));
        }
        // Every hub ticks on the same 1 s grid: a replica with hundreds of idle sessions wakes
        // once a second for all of them, not once per session at scattered times.
        // An alarm, not a runtime timer per hub: a thread's hubs share one timer per point.
        ctx.add_stream(crate::alarm::every(HUB_TICK));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.input.try_send(BackendInput::Terminate);
        // A session that ends (exit, delete, pod gone) gives its seat back at once instead of
        // leaving the lease to expire.
        if let Some(lease) = self.seat.lease() {
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
                self.on_output(bytes, ctx);
            }
            BackendEvent::Exited(code) => {
                self.exited = true;
                self.audit.record_detached(
                    self.event("session.exited", "ok")
                        .field_i64("exit_code", i64::from(code)),
                );
                self.broadcast(&ServerFrame::Exit { code });
                self.close_all(close::NORMAL);
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
            self.close_all(close::INTERNAL_ERROR);
            ctx.stop();
        }
    }
}
