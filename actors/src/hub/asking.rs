//! The hub carrying out requests for control: a driver's request is queued and shown to the
//! holder, who grants (the lease moves in the store, fenced by epoch) or denies; requests expire.

use std::time::{Instant, SystemTime};

use actix::prelude::*;

use super::requests::{Pending, Refused};
use super::seat::{AnswerError, Ask};
use super::SessionHub;
use crate::lease::{Holder, Lease};
use crate::protocol::{ControlReason, ErrorCode, HolderView, RequestOutcome, ServerFrame};
use crate::redis::bus::{NoteBody, RequestNote};
use crate::time::rfc3339;

impl SessionHub {
    /// How participant `conn` appears in frames.
    fn view_of(&self, conn: &str) -> Option<HolderView> {
        self.participants.get(conn).map(|p| HolderView {
            connection_id: conn.to_owned(),
            subject: p.subject.clone(),
            name: p.name.clone(),
        })
    }

    /// The driver `conn` asks for control: queued for the holder, or acquired when free.
    pub(super) fn request_control(&mut self, ctx: &mut Context<Self>, conn: String) {
        let Some(from) = self.view_of(&conn) else {
            return;
        };
        if self.seat.lease().is_none() && self.remote_holder.is_some() {
            // Only heard of a holder elsewhere: the store decides. A lease that expired, or a
            // grant to this very subject whose note never arrived, is taken at once.
            let (c, subject) = (conn.clone(), from.subject);
            self.try_seat(ctx, conn, subject.clone(), move |hub, seated, ctx| {
                if seated {
                    hub.control_changed(ControlReason::Acquired, &subject, &c);
                } else {
                    hub.queue_request(ctx, c);
                }
            });
            return;
        }
        self.queue_request(ctx, conn);
    }

    /// Queues `conn`'s request for the holder (or acquires a free seat).
    fn queue_request(&mut self, ctx: &mut Context<Self>, conn: String) {
        let Some(from) = self.view_of(&conn) else {
            return;
        };
        let now = Instant::now();
        match self
            .seat
            .request(from.clone(), self.remote_holder.is_some(), now)
        {
            Ask::Holding => {}
            Ask::Acquire => {
                let subject = from.subject;
                let c = conn.clone();
                self.try_seat(ctx, conn, subject.clone(), move |hub, seated, ctx| {
                    if seated {
                        hub.control_changed(ControlReason::Acquired, &subject, &c);
                    } else if hub.remote_holder.is_some() {
                        // Held on another replica after all: ask that holder.
                        hub.queue_request(ctx, c);
                    } else {
                        hub.acquire_denied(&subject, &c);
                    }
                });
            }
            Ask::Queued(until) => {
                self.audit.record_detached(
                    self.event("attach.control.requested", "ok")
                        .subject(&from.subject)
                        .connection_id(&conn),
                );
                let frame = ServerFrame::ControlRequest {
                    from: from.clone(),
                    expires_at: rfc3339(SystemTime::now() + until.saturating_duration_since(now)),
                };
                self.tell_parties(&from, &frame);
                self.publish_note(NoteBody::Request(RequestNote {
                    from,
                    outcome: None,
                }));
            }
            Ask::Refused(why) => {
                let (reason, message) = match why {
                    Refused::AlreadyPending => ("request_pending", "your request is pending"),
                    Refused::Full => ("requests_full", "too many requests are pending"),
                };
                self.audit.record_detached(
                    self.event("attach.control.denied", "refused")
                        .reason(reason)
                        .subject(&from.subject)
                        .connection_id(&conn),
                );
                self.send_error(&conn, ErrorCode::ControlDenied, message);
            }
        }
    }

    /// The holder `conn` grants or denies `to`'s request.
    pub(super) fn answer_request(
        &mut self,
        ctx: &mut Context<Self>,
        conn: &str,
        to: &str,
        grant: bool,
    ) {
        let (pending, lease) = match self.seat.answer(conn, to) {
            Ok(answer) => answer,
            Err(e) => {
                let message = match e {
                    AnswerError::NotHolder => "only the holder answers requests for control",
                    AnswerError::NoRequest => "no request from that connection is pending",
                };
                self.send_error(conn, ErrorCode::ControlDenied, message);
                return;
            }
        };
        if grant {
            self.hand_over(ctx, lease, pending.from);
            return;
        }
        self.audit.record_detached(
            self.event(RequestOutcome::Denied.audit_type(), "ok")
                .subject(&lease.holder.subject)
                .connection_id(conn)
                .field_str("requester", &pending.from.connection_id),
        );
        self.request_ended(&pending.from, RequestOutcome::Denied);
        self.publish_note(NoteBody::Request(RequestNote {
            from: pending.from,
            outcome: Some(RequestOutcome::Denied),
        }));
    }

    /// Moves the seat held under `lease` to `to` in one store step. Nothing else is handled
    /// until the store answers, so the old holder's next keystroke already meets the new seat.
    fn hand_over(&mut self, ctx: &mut Context<Self>, lease: Lease, to: HolderView) {
        let holder = Holder {
            connection_id: to.connection_id.clone(),
            subject: to.subject.clone(),
        };
        let fut = self
            .leases
            .transfer(&self.session_id, lease.epoch, &holder, self.cfg.lease_ttl);
        let (by, by_conn) = (lease.holder.subject, lease.holder.connection_id);
        ctx.wait(fut.into_actor(self).map(move |res, hub, _| match res {
            Ok(Some(new)) => {
                let epoch = new.epoch;
                let here = hub.participants.contains_key(&to.connection_id);
                hub.seat.handed_over(here.then_some(new), Instant::now());
                if !here {
                    hub.remote_holder = Some(to.clone());
                }
                hub.announce_locally(
                    ControlReason::Granted,
                    &to.subject,
                    &to.connection_id,
                    Some(&by),
                );
                hub.publish_note(NoteBody::Control {
                    holder: Some(to),
                    reason: ControlReason::Granted.as_str(),
                    epoch: Some(epoch),
                });
            }
            Ok(None) => hub.send_error(
                &by_conn,
                ErrorCode::ControlDenied,
                "control changed hands before the grant",
            ),
            Err(e) => {
                tracing::warn!(error = %e, "control lease store failed");
                hub.send_error(
                    &by_conn,
                    ErrorCode::ControlDenied,
                    "control cannot be handed over now",
                );
            }
        }));
    }

    /// Requests past their 30 s: the parties are told; the requester's replica audits.
    pub(super) fn expire_requests(&mut self) {
        for p in self.seat.expire_requests(Instant::now()) {
            self.request_done(p, RequestOutcome::Expired, false);
        }
    }

    /// `conn` left: its pending request is withdrawn, here and on other replicas.
    pub(super) fn withdraw_request(&mut self, conn: &str) {
        if let Some(p) = self.seat.withdraw(conn) {
            self.request_done(p, RequestOutcome::Withdrawn, true);
        }
    }

    fn request_done(&mut self, p: Pending, outcome: RequestOutcome, publish: bool) {
        // The requester may have just left (withdrawn): its replica is the one that knew it.
        let here = publish || self.participants.contains_key(&p.from.connection_id);
        if here {
            self.audit.record_detached(
                self.event(outcome.audit_type(), "ok")
                    .subject(&p.from.subject)
                    .connection_id(&p.from.connection_id),
            );
        }
        self.request_ended(&p.from, outcome);
        if publish {
            self.publish_note(NoteBody::Request(RequestNote {
                from: p.from,
                outcome: Some(outcome),
            }));
        }
    }

    /// A request queued or ended on another replica.
    pub(super) fn remote_request(&mut self, note: RequestNote) {
        match note.outcome {
            None => {
                let now = Instant::now();
                if self.seat.remote_request(note.from.clone(), now) {
                    if let Some(holder) = self.seat.holder_conn().map(str::to_owned) {
                        let expires = rfc3339(SystemTime::now() + self.cfg.control_request_ttl);
                        let frame = ServerFrame::ControlRequest {
                            from: note.from,
                            expires_at: expires,
                        };
                        self.send_to(&holder, crate::outbound::OutFrame::text(frame.to_json()));
                    }
                }
            }
            Some(outcome) => {
                if let Some(p) = self.seat.withdraw(&note.from.connection_id) {
                    self.request_ended(&p.from, outcome);
                }
            }
        }
    }

    fn request_ended(&mut self, from: &HolderView, outcome: RequestOutcome) {
        let frame = ServerFrame::ControlRequestEnded {
            from: from.clone(),
            outcome,
        };
        self.tell_parties(from, &frame);
    }

    /// Sends `frame` to the requester and the holder, those of them connected here.
    fn tell_parties(&mut self, from: &HolderView, frame: &ServerFrame) {
        let text = frame.to_json();
        let holder = self.seat.holder_conn().map(str::to_owned);
        for conn in std::iter::once(from.connection_id.clone()).chain(holder) {
            self.send_to(&conn, crate::outbound::OutFrame::text(text.clone()));
        }
    }
}
