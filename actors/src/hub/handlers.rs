//! How the hub handles each message in `messages.rs`: joins and leaves, stdin and resize from
//! the holder, control requests, revoke, terminate, drain, snapshots and remote control notes.

use std::sync::atomic::Ordering;
use std::time::Instant;

use actix::prelude::*;

use super::messages::*;
use super::participant::{Participant, Phase};
use super::SessionHub;
use crate::backend::BackendInput;
use crate::lease::{Holder, Lease};
use crate::outbound::OutFrame;
use crate::protocol::{
    close, ControlAction, ControlReason, ErrorCode, Role, ServerFrame, SnapshotReason,
};

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
                name: msg.name,
                role: msg.role,
                greeted: false,
                out: msg.out.noting_pushes(self.pushed.clone()),
                stats: msg.stats,
                max_invalid: msg.max_invalid,
                limits: msg.limits,
                phase: Phase::AwaitSnapshot(SnapshotReason::Join),
                sent: 0,
                acked: 0,
                acks: false,
                resume_from: msg.resume_from,
                discarded_at_resync: 0,
            },
        );
        if msg.moderator && msg.role == Role::Observer {
            self.moderator_joined(&conn);
        }
        // A joiner on another replica's moderated session learns its moderators at once.
        self.count_moderators(ctx);
        let subject = msg.subject;
        let resume_from = msg.resume_from;
        if msg.role == Role::Driver {
            let (c, s) = (conn.clone(), subject.clone());
            self.try_seat(ctx, conn, subject, move |hub, _, ctx| {
                hub.greet(c, s, resume_from, ctx)
            });
        } else {
            self.greet(conn, subject, resume_from, ctx);
        }
        Ok(())
    }
}

impl SessionHub {
    /// Answers a refused message with an error frame; past `ws.max_invalid_messages` the
    /// participant is closed with 1008.
    fn refuse(&mut self, conn: &str, code: ErrorCode, message: &str) {
        let over = match self.participants.get(conn) {
            Some(p) => {
                let n = p.stats.invalid.fetch_add(1, Ordering::AcqRel) + 1;
                n >= p.max_invalid
            }
            None => return,
        };
        self.send_error(conn, code, message);
        if over {
            if let Some(p) = self.participants.get(conn) {
                p.close(close::POLICY_VIOLATION);
            }
            self.remove_participants([(conn.to_owned(), None)]);
        }
    }

    pub(super) fn send_error(&mut self, conn: &str, code: ErrorCode, message: &str) {
        self.send_to(
            conn,
            OutFrame::text(ServerFrame::error(code, message).to_json()),
        );
    }
}

impl Handler<Leave> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) {
        self.remove_participants([(msg.connection_id, None)]);
        if self.participants_dirty {
            self.announce_participants(ctx);
        }
        self.repace();
    }
}

impl Handler<Stdin> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Stdin, _ctx: &mut Context<Self>) {
        let now = Instant::now();
        if !self.seat.stdin(&msg.connection_id, now) {
            self.refuse(
                &msg.connection_id,
                ErrorCode::NotDriver,
                "stdin is accepted only from the connection holding control",
            );
            return;
        }
        self.last_activity = now;
        if let Some(data) = self.moderate_stdin(&msg.connection_id, msg.data, now) {
            self.write_stdin(&msg.connection_id, data);
        }
    }
}

impl Handler<Resize> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Resize, _ctx: &mut Context<Self>) {
        let observer = self
            .participants
            .get(&msg.connection_id)
            .is_none_or(|p| p.role == Role::Observer);
        if observer {
            // SPEC §8: observers render at the session's size; their resizes are ignored.
            return;
        }
        if self.seat.holder_conn() != Some(msg.connection_id.as_str()) {
            self.refuse(
                &msg.connection_id,
                ErrorCode::NotDriver,
                "resize is accepted only from the connection holding control",
            );
            return;
        }
        if self
            .input
            .try_send(BackendInput::Resize {
                cols: msg.cols,
                rows: msg.rows,
            })
            .is_ok()
        {
            self.resized(msg.cols, msg.rows);
        }
    }
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
        let conn = msg.connection_id;
        match msg.action {
            ControlAction::Release => self.release(ctx, &conn, &subject),
            ControlAction::Acquire => self.acquire(ctx, conn, subject),
            ControlAction::Request => self.request_control(ctx, conn),
            ControlAction::Grant | ControlAction::Deny => {
                let to = msg.to.unwrap_or_default();
                let grant = msg.action == ControlAction::Grant;
                self.answer_request(ctx, &conn, &to, grant);
            }
        }
    }
}

impl SessionHub {
    /// The driver `conn` takes the seat if it is free; otherwise `control_denied`.
    pub(super) fn acquire(&mut self, ctx: &mut Context<Self>, conn: String, subject: String) {
        if self.seat.holder_conn() == Some(conn.as_str()) {
            return;
        }
        let (c, subj) = (conn.clone(), subject.clone());
        self.try_seat(ctx, conn, subject, move |hub, seated, _| {
            if seated {
                hub.control_changed(ControlReason::Acquired, &subj, &c);
            } else {
                hub.acquire_denied(&subj, &c);
            }
        });
    }

    /// An acquire found the seat taken: audited and answered with `control_denied`.
    pub(super) fn acquire_denied(&mut self, subject: &str, conn: &str) {
        self.audit.record_detached(
            self.event("attach.control.denied", "refused")
                .reason("held")
                .subject(subject)
                .connection_id(conn),
        );
        self.send_error(
            conn,
            ErrorCode::ControlDenied,
            "control is held by another driver",
        );
    }
}

impl Handler<Revoke> for SessionHub {
    type Result = bool;

    fn handle(&mut self, msg: Revoke, ctx: &mut Context<Self>) -> bool {
        let done = self.vacate(ctx, ControlReason::Revoked, Some(&msg.by));
        self.repace();
        done
    }
}

impl Handler<Terminate> for SessionHub {
    type Result = ();

    fn handle(&mut self, _msg: Terminate, ctx: &mut Context<Self>) {
        self.exited = true;
        self.close_all(close::REVOKED);
        ctx.stop();
    }
}

impl Handler<Drain> for SessionHub {
    type Result = ();

    fn handle(&mut self, _msg: Drain, ctx: &mut Context<Self>) {
        self.broadcast(&ServerFrame::Shutdown {});
        self.close_all(close::GOING_AWAY);
        self.vacate(ctx, ControlReason::Released, None);
    }
}

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
                name: p.name.clone(),
                role: p.role,
            })
            .collect();
        participants.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        MessageResult(HubSnapshot {
            participants,
            control,
            output_offset: self.offset(),
            size: self.size,
            idle_deadline: crate::time::rfc3339(self.idle_deadline()),
        })
    }
}

impl Handler<RemoteControl> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: RemoteControl, ctx: &mut Context<Self>) {
        let note = msg.0;
        if let Some(request) = note.request {
            self.remote_request(request);
            return;
        }
        if note.reason == crate::redis::bus::MODERATION_NOTE {
            self.count_moderators(ctx);
            return;
        }
        let Some(reason) = ControlReason::parse(&note.reason) else {
            return;
        };
        // Requests were addressed to the old holder.
        self.seat.clear_requests();
        let granted_here = match (&note.holder, note.epoch) {
            (Some(h), Some(epoch)) if self.participants.contains_key(&h.connection_id) => {
                Some(Lease {
                    holder: Holder {
                        connection_id: h.connection_id.clone(),
                        subject: h.subject.clone(),
                    },
                    epoch,
                })
            }
            _ => None,
        };
        if let Some(lease) = granted_here {
            // The holder elsewhere handed the seat to a driver connected here.
            self.seat.seated(lease, Instant::now());
            self.remote_holder = None;
        } else {
            if note.holder.is_some() {
                // Someone elsewhere holds the seat now: if we still thought we did, our lease
                // is gone (the store only grants one), so stop forwarding stdin at once.
                self.seat.taken_elsewhere();
            }
            self.remote_holder = note.holder;
        }
        let frame = self.control_frame(reason);
        self.broadcast(&frame);
        self.repace();
    }
}

impl Handler<Ack> for SessionHub {
    type Result = ();

    fn handle(&mut self, msg: Ack, _ctx: &mut Context<Self>) {
        self.on_ack(&msg.connection_id, msg.offset);
    }
}

impl Handler<OutputOffset> for SessionHub {
    type Result = u64;

    fn handle(&mut self, _msg: OutputOffset, _ctx: &mut Context<Self>) -> u64 {
        self.offset()
    }
}
