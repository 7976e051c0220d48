//! The hub carrying out moderation: moderators joining and leaving here, counts from the shared
//! registry, held stdin written on going live, `moderation` frames, audit records and notes.

use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;

use super::moderation::Input;
use super::SessionHub;
use crate::backend::BackendInput;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::bus::NoteBody;
use crate::redis::moderators::Changes;

impl SessionHub {
    /// The `moderation` frame as participants were last told; `None` when not moderated.
    pub(super) fn moderation_frame(&self) -> Option<ServerFrame> {
        let (state, moderators) = self.moderation.as_ref()?.announced();
        Some(ServerFrame::Moderation { state, moderators })
    }

    /// A moderator attached here: the session goes live, other replicas count again.
    pub(super) fn moderator_joined(&mut self, conn: &str) {
        let Some(m) = self.moderation.as_mut() else {
            return;
        };
        m.join(conn);
        self.moderation_changed("moderator_joined");
        self.share_moderators(Changes {
            joined: vec![conn.to_owned()],
            ..Changes::default()
        });
    }

    /// `conn` left; if it moderated here, the session may freeze and other replicas count again.
    pub(super) fn moderator_left(&mut self, conn: &str) {
        if !self.moderation.as_mut().is_some_and(|m| m.leave(conn)) {
            return;
        }
        self.moderation_changed("moderator_left");
        self.share_moderators(Changes {
            left: vec![conn.to_owned()],
            ..Changes::default()
        });
    }

    /// Writes this replica's change to the registry, then tells other replicas to count again.
    /// Not awaited: this replica's own state has changed already.
    fn share_moderators(&self, changes: Changes) {
        let Some(registry) = self.moderation.as_ref().and_then(|m| m.registry()) else {
            return;
        };
        let fut = registry.sync(&self.session_id, changes, self.cfg.lease_ttl);
        let (bus, session) = (self.cfg.bus.clone(), self.session_id.clone());
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                if let Err(e) = fut.await {
                    tracing::warn!(error = %e, "moderator registry update failed");
                }
                if let Some(bus) = bus {
                    bus.publish(&session, NoteBody::Moderation);
                }
            });
        }
    }

    /// Refreshes this replica's moderators in the registry and counts every replica's.
    pub(super) fn count_moderators(&mut self, ctx: &mut Context<Self>) {
        let Some(m) = self.moderation.as_mut() else {
            return;
        };
        let Some(registry) = m.registry().cloned() else {
            return;
        };
        let changes = m.refresh();
        let mine = changes.joined.len() + changes.refresh.len();
        let seq = m.asking();
        let at = Instant::now();
        let fut = registry.sync(&self.session_id, changes, self.cfg.lease_ttl);
        ctx.spawn(fut.into_actor(self).map(move |res, hub, _| match res {
            Ok(count) => {
                if let Some(m) = hub.moderation.as_mut() {
                    m.counted(seq, count, mine, at);
                }
                hub.moderation_changed("counted");
            }
            // An unconfirmed count lapses after its ttl: the session then freezes.
            Err(e) => tracing::debug!(error = %e, "moderators not counted"),
        }));
    }

    /// The moderation's share of the 1 s tick: stale counts lapse, and the count is renewed.
    pub(super) fn tick_moderation(&mut self, ctx: &mut Context<Self>) {
        if self.moderation.is_none() {
            return;
        }
        self.moderation_changed("count_lapsed");
        if !self.participants.is_empty() {
            self.count_moderators(ctx);
        }
    }

    /// stdin from the holder of a moderated session: written, held, or refused over the hold
    /// (`moderation_required` once per freeze). `None` when it is not to be written now.
    pub(super) fn moderate_stdin(
        &mut self,
        conn: &str,
        data: Bytes,
        now: Instant,
    ) -> Option<Bytes> {
        let Some(m) = self.moderation.as_mut() else {
            return Some(data);
        };
        match m.stdin(conn, data, now) {
            Input::Forward(data) => Some(data),
            Input::Held => None,
            Input::Refused { first } => {
                if first {
                    self.send_error(
                        conn,
                        ErrorCode::ModerationRequired,
                        "no moderator is attached: input is held, and the hold is full",
                    );
                }
                None
            }
        }
    }

    /// Tells everyone what changed (audited when the state flips, `why` as the reason) and
    /// writes the input held during a freeze once the session is live.
    pub(super) fn moderation_changed(&mut self, why: &str) {
        let Some(change) = self
            .moderation
            .as_mut()
            .and_then(|m| m.update(Instant::now()))
        else {
            return;
        };
        if change.flipped {
            self.audit.record_detached(
                self.event(change.state.audit_type(), "ok")
                    .reason(why)
                    .field_i64("moderators", change.moderators as i64),
            );
            if let Some(r) = &self.rec {
                r.marker(format!("moderation {}", change.state.as_str()));
            }
        }
        if change.announce {
            self.broadcast(&ServerFrame::Moderation {
                state: change.state,
                moderators: change.moderators,
            });
        }
        if let Some((by, data)) = change.release {
            // Only for the connection that typed it, if it still holds the seat.
            if self.seat.holder_conn() == Some(by.as_str()) {
                self.write_stdin(&by, data);
            }
        }
    }

    /// Writes stdin to the backend (and the recording); a full backend pipe is answered with
    /// `rate_limited`.
    pub(super) fn write_stdin(&mut self, conn: &str, data: Bytes) {
        let copy = data.clone();
        if self.input.try_send(BackendInput::Stdin(data)).is_ok() {
            if let Some(r) = &self.rec {
                r.input(&copy);
            }
        } else {
            self.send_error(conn, ErrorCode::RateLimited, "terminal input is backed up");
        }
    }
}
