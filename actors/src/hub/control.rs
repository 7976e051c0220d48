//! The hub carrying out its seat machine's decisions: lease store calls (acquire, renew,
//! release), audit records, `control` frames to local participants and notes to other replicas.

use std::time::Instant;

use actix::prelude::*;

use super::seat::{Renewal, Tick};
use super::SessionHub;
use crate::lease::{Holder, Lease};
use crate::metrics;
use crate::protocol::{ControlReason, HolderView, ServerFrame};
use crate::redis::bus::NoteBody;

impl SessionHub {
    pub(super) fn holder_view(&self) -> Option<HolderView> {
        match self.seat.holder() {
            Some(h) => Some(HolderView {
                connection_id: h.connection_id.clone(),
                subject: h.subject.clone(),
                name: self
                    .participants
                    .get(&h.connection_id)
                    .and_then(|p| p.name.clone()),
            }),
            None => self.remote_holder.clone(),
        }
    }

    pub(super) fn control_frame(&self, reason: ControlReason) -> ServerFrame {
        ServerFrame::Control {
            holder: self.holder_view(),
            reason,
        }
    }

    /// Announces a control change to everyone and audits it.
    pub(super) fn control_changed(&mut self, reason: ControlReason, subject: &str, conn: &str) {
        self.announce_locally(reason, subject, conn, None);
        self.publish(reason);
    }

    /// Audits a seat change and tells this replica's participants: the one place a seat change
    /// made here is recorded. `by` names the granting holder of a `granted` change.
    pub(super) fn announce_locally(
        &mut self,
        reason: ControlReason,
        subject: &str,
        conn: &str,
        by: Option<&str>,
    ) {
        metrics::CONTROL_CHANGES
            .with_label_values(&[reason.as_str()])
            .inc();
        let mut event = self
            .event(reason.audit_type(), "ok")
            .reason(reason.as_str())
            .subject(subject)
            .connection_id(conn);
        if let Some(by) = by {
            event = event.field_str("granted_by", by);
        }
        self.audit.record_detached(event);
        if let Some(r) = &self.rec {
            r.marker(format!("control {} {subject}", reason.as_str()));
        }
        if self.seat.holder().is_some() {
            self.remote_holder = None;
        }
        let frame = self.control_frame(reason);
        self.broadcast(&frame);
        self.repace();
    }

    /// Tells other replicas (through the bus) who holds the seat now.
    fn publish(&self, reason: ControlReason) {
        let holder = self.seat.holder().and(self.holder_view());
        self.publish_note(NoteBody::Control {
            holder,
            reason: reason.as_str(),
            epoch: None,
        });
    }

    /// Publishes a note to other replicas, when there are any.
    pub(super) fn publish_note(&self, body: NoteBody) {
        if let Some(bus) = &self.cfg.bus {
            bus.publish(&self.session_id, body);
        }
    }

    /// Carries out a freed seat: audits and tells local participants at once, and other
    /// replicas only once the lease is released, so a driver there that hears "released" can
    /// acquire it.
    fn seat_freed(
        &mut self,
        ctx: &mut Context<Self>,
        lease: &Lease,
        reason: ControlReason,
        subject: &str,
    ) {
        self.announce_locally(reason, subject, &lease.holder.connection_id, None);
        let fut = self.leases.release(&self.session_id, lease.epoch);
        ctx.spawn(
            async move {
                if let Err(e) = fut.await {
                    tracing::warn!(error = %e, "control release failed; the lease will expire");
                }
            }
            .into_actor(self)
            .map(move |(), hub, _| {
                if hub.seat.publish_after_release() {
                    hub.publish(reason);
                }
            }),
        );
    }

    /// The holder `conn` (of `subject`) gives the seat up.
    pub(super) fn release(&mut self, ctx: &mut Context<Self>, conn: &str, subject: &str) {
        if let Some(lease) = self.seat.release(conn) {
            self.seat_freed(ctx, &lease, ControlReason::Released, subject);
        }
    }

    /// Frees the seat if anyone holds it (or keeps it in grace): releases the lease, audits,
    /// tells local participants and other replicas. `by` names who did it when not the holder.
    pub(super) fn vacate(
        &mut self,
        ctx: &mut Context<Self>,
        reason: ControlReason,
        by: Option<&str>,
    ) -> bool {
        let Some(lease) = self.seat.vacate() else {
            return false;
        };
        let subject = by.unwrap_or(&lease.holder.subject).to_owned();
        self.seat_freed(ctx, &lease, reason, &subject);
        true
    }

    /// The seat's share of the 1 s tick: expiry, grace, and lease renewal (fencing).
    pub(super) fn tick_seat(&mut self, ctx: &mut Context<Self>) {
        match self.seat.tick(Instant::now()) {
            Tick::Nothing => {}
            Tick::Freed { lease, reason } => {
                let subject = lease.holder.subject.clone();
                self.seat_freed(ctx, &lease, reason, &subject);
            }
            Tick::Renew { epoch } => {
                let fut = self
                    .leases
                    .renew(&self.session_id, epoch, self.cfg.lease_ttl);
                ctx.spawn(fut.into_actor(self).map(move |res, hub, _ctx| {
                    let outcome = match res {
                        Ok(true) => Renewal::Confirmed,
                        Ok(false) => Renewal::Fenced,
                        Err(_) => Renewal::Failed,
                    };
                    if let Some(lost) = hub.seat.renewed(epoch, outcome, Instant::now()) {
                        // Fenced out, or unconfirmed too long: stdin stops at once.
                        hub.control_changed(
                            ControlReason::Revoked,
                            &lost.holder.subject,
                            &lost.holder.connection_id,
                        );
                    }
                }));
            }
        }
    }

    /// Tries to seat `conn`, then runs `then(hub, seated, ctx)`; on success everyone is told.
    pub(super) fn try_seat(
        &mut self,
        ctx: &mut Context<Self>,
        conn: String,
        subject: String,
        then: impl FnOnce(&mut Self, bool, &mut Context<Self>) + 'static,
    ) {
        if !self.seat.may_seat(&subject) {
            then(self, false, ctx);
            return;
        }
        let holder = Holder {
            connection_id: conn.clone(),
            subject,
        };
        let fut = self
            .leases
            .acquire(&self.session_id, &holder, self.cfg.lease_ttl);
        // Waiting here keeps the hub's view consistent: nothing else is handled until the
        // store answers (immediately in memory; one round trip with Redis).
        ctx.wait(fut.into_actor(self).map(move |res, hub, ctx| {
            let seated = match res {
                Ok(Some(lease)) if hub.participants.contains_key(&conn) => {
                    hub.seat.seated(lease, Instant::now());
                    true
                }
                Ok(None) if hub.remote_holder.is_none() => {
                    // Held elsewhere by a holder this replica has not heard of (it started
                    // after the change): ask the store who, then carry on.
                    hub.learn_holder(ctx, then);
                    return;
                }
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "control lease store failed");
                    false
                }
            };
            then(hub, seated, ctx);
        }));
    }

    /// Asks the store who holds the seat and remembers it as the holder elsewhere; then runs
    /// `then(hub, false, ctx)`.
    fn learn_holder(
        &mut self,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, bool, &mut Context<Self>) + 'static,
    ) {
        let fut = self.leases.holder(&self.session_id);
        ctx.wait(fut.into_actor(self).map(move |res, hub, ctx| {
            if let Ok(Some(h)) = res {
                if hub.seat.holder().is_none() && hub.remote_holder.is_none() {
                    hub.remote_holder = Some(HolderView {
                        connection_id: h.connection_id,
                        subject: h.subject,
                        name: None,
                    });
                }
            }
            then(hub, false, ctx);
        }));
    }
}
