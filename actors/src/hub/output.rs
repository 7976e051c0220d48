//! The hub's output path (SPEC §8): every chunk goes to the output ring and the emulator, to
//! the control holder at once, and to everyone else on a short flush tick; joiners, resumes and
//! resyncs are served from emulator snapshots plus the ring.
//!
//! Each participant has `sent`, the output offset pushed to it so far, so a flush, a snapshot
//! catch-up and a resume are all "push the ring from `sent` to the end".

use std::sync::atomic::Ordering;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};

use super::participant::Phase;
use super::SessionHub;
use crate::metrics;
use crate::outbound::OutFrame;
use crate::protocol::{HelloControl, ServerFrame, SnapshotReason, TermSize};
use crate::term::worker::Snap;
use crate::time::rfc3339;

/// Observers' pending output beyond which a flush does not wait for its tick.
const FLUSH_BYTES: u64 = 64 * 1024;

impl SessionHub {
    /// The session's output offset (bytes produced so far).
    pub(super) fn offset(&self) -> u64 {
        self.ring.end()
    }

    /// One chunk of backend output: to the holder first (its echo is what a typist feels),
    /// then into the ring and the emulator, then to everyone else on the flush tick.
    pub(super) fn on_output(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        let len = bytes.len() as u64;
        let end = self.offset() + len;
        let failed = self.push_to_holder(&bytes, end);
        self.ring.push(&bytes);
        if let Some(r) = &self.rec {
            r.output(&bytes);
        }
        self.term.output(bytes);
        if let Some(f) = failed {
            self.drop_failed(vec![f]);
        }
        self.schedule_flush(ctx);
    }

    /// Pushes a chunk ending at `end` to the pacing holder if it is live and up to date.
    fn push_to_holder(
        &mut self,
        bytes: &Bytes,
        end: u64,
    ) -> Option<(String, crate::outbound::PushError)> {
        let h = self.paced.as_deref()?;
        let p = self.participants.get_mut(h)?;
        let len = bytes.len() as u64;
        if p.phase != Phase::Live || p.sent + len != end {
            return None;
        }
        if let Err(e) = p.out.push(OutFrame::Binary(bytes.clone())) {
            return Some((h.to_owned(), e));
        }
        p.sent = end;
        p.stats
            .bytes_out
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        metrics::BYTES_OUT.inc_by(len);
        let window = self.cfg.flow.window_bytes;
        if p.out.over(window) {
            self.gate.set_holder_queue_full(true);
            // The writer may have drained the queue before the flag was set: it reopens the
            // gate only when it takes a frame, so look once more.
            if p.out.drained_below(window / 2) {
                self.gate.set_holder_queue_full(false);
            }
        }
        if p.acks && end.saturating_sub(p.acked) > window as u64 {
            self.gate.set_holder_unacked_full(true);
        }
        None
    }

    /// Flushes observers now when enough is pending, or arms the flush tick.
    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        let lag = self.max_lag();
        if lag == 0 {
            return;
        }
        if lag >= FLUSH_BYTES || self.cfg.flow.observer_flush.is_zero() {
            self.flush();
            return;
        }
        if !self.flush_armed {
            self.flush_armed = true;
            ctx.run_later(self.cfg.flow.observer_flush, |hub, _| {
                hub.flush_armed = false;
                hub.flush();
            });
        }
    }

    /// The most output any live participant has not been sent yet (one pass).
    fn max_lag(&self) -> u64 {
        let end = self.offset();
        self.participants
            .values()
            .filter(|p| p.phase == Phase::Live)
            .map(|p| end.saturating_sub(p.sent))
            .max()
            .unwrap_or(0)
    }

    /// Pushes to every live participant the output it has not been sent; resyncs those whose
    /// backlog is over the window (observers only: the holder paces instead).
    pub(super) fn flush(&mut self) {
        let end = self.offset();
        let window = self.cfg.flow.window_bytes;
        let mut cache: Option<(u64, Bytes)> = None;
        let mut failed = Vec::new();
        let mut resync = Vec::new();
        for (id, p) in self.participants.iter_mut() {
            if p.phase != Phase::Live || p.sent >= end {
                continue;
            }
            if Some(id.as_str()) != self.paced.as_deref() && p.out.over(window) {
                resync.push(id.clone());
                continue;
            }
            let data = match &cache {
                Some((from, b)) if *from == p.sent => b.clone(),
                _ => match self.ring.since(p.sent) {
                    Some(chunks) => {
                        let b = concat(chunks);
                        cache = Some((p.sent, b.clone()));
                        b
                    }
                    None => {
                        resync.push(id.clone());
                        continue;
                    }
                },
            };
            let n = data.len() as u64;
            match p.out.push(OutFrame::Binary(data)) {
                Ok(()) => {
                    p.sent = end;
                    p.stats
                        .bytes_out
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    metrics::BYTES_OUT.inc_by(n);
                }
                Err(e) => failed.push((id.clone(), e)),
            }
        }
        for id in resync {
            self.start_resync(&id);
        }
        self.drop_failed(failed);
    }

    /// An observer fell too far behind: its queued output is dropped and, once its queue has
    /// drained, it gets a `snapshot` (reason `resync`) and live output again.
    fn start_resync(&mut self, conn: &str) {
        if let Some(p) = self.participants.get_mut(conn) {
            p.out.discard_output();
            p.phase = Phase::Resyncing;
            self.resyncs = true;
            p.discarded_at_resync = p.out.discarded_bytes();
            if let Some(r) = &self.rec {
                r.marker(format!("resync {}", p.role.as_str()));
            }
            tracing::debug!(session = %self.session_id, "observer resyncing");
        }
    }

    /// Resyncing participants whose queues have drained get their snapshot (tick and flush).
    pub(super) fn poll_resyncs(&mut self, ctx: &mut Context<Self>) {
        if !self.resyncs {
            return;
        }
        let low = self.cfg.flow.window_bytes / 4;
        let mut ready = Vec::new();
        let mut waiting = false;
        for (id, p) in self.participants.iter() {
            if p.phase == Phase::Resyncing {
                if p.out.queued_bytes() <= low {
                    ready.push(id.clone());
                } else {
                    waiting = true;
                }
            }
        }
        self.resyncs = waiting;
        for id in ready {
            if let Some(p) = self.participants.get_mut(&id) {
                p.phase = Phase::AwaitSnapshot(SnapshotReason::Resync);
            }
            self.request_snapshot(ctx);
        }
    }

    /// Greets a participant: `hello`, then either the exact missing bytes (a resume the ring
    /// still covers) or a `snapshot` once the emulator answers.
    pub(super) fn greet_output(
        &mut self,
        conn: &str,
        resume_from: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let exact = resume_from.and_then(|r| self.ring.since(r).map(|c| (r, c)));
        match exact {
            Some((from, chunks)) => {
                metrics::RESUMES.with_label_values(&["exact"]).inc();
                self.send_hello(conn, from, true);
                let end = self.offset();
                let mut failed = None;
                if let Some(p) = self.participants.get_mut(conn) {
                    for c in chunks {
                        if let Err(e) = p.out.push(OutFrame::Binary(c)) {
                            failed = Some(e);
                            break;
                        }
                    }
                    p.sent = end;
                    p.phase = Phase::Live;
                }
                if let Some(e) = failed {
                    self.drop_failed(vec![(conn.to_owned(), e)]);
                }
                self.repace();
            }
            None => {
                let reason = if resume_from.is_some() {
                    metrics::RESUMES.with_label_values(&["gap"]).inc();
                    SnapshotReason::ResumeGap
                } else {
                    SnapshotReason::Join
                };
                if let Some(p) = self.participants.get_mut(conn) {
                    p.phase = Phase::AwaitSnapshot(reason);
                    p.resume_from = resume_from;
                }
                self.request_snapshot(ctx);
            }
        }
    }

    /// Asks the emulator for a snapshot unless one is already on its way (every participant
    /// waiting then shares the same one).
    fn request_snapshot(&mut self, ctx: &mut Context<Self>) {
        if self.snapshot_inflight {
            return;
        }
        self.snapshot_inflight = true;
        let fut = self.term.snapshot();
        ctx.spawn(fut.into_actor(self).map(|snap, hub, ctx| {
            hub.snapshot_inflight = false;
            hub.on_snapshot(snap, ctx);
        }));
    }

    fn on_snapshot(&mut self, snap: Option<Snap>, ctx: &mut Context<Self>) {
        let waiting: Vec<(String, SnapshotReason)> = self
            .participants
            .iter()
            .filter_map(|(id, p)| match p.phase {
                Phase::AwaitSnapshot(r) => Some((id.clone(), r)),
                _ => None,
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        let Some(snap) = snap else {
            tracing::error!(session = %self.session_id, "emulator gone: greeting without a snapshot");
            let end = self.offset();
            for (id, reason) in waiting {
                if reason != SnapshotReason::Resync {
                    self.send_hello(&id, end, false);
                }
                if let Some(p) = self.participants.get_mut(&id) {
                    p.sent = end;
                    p.phase = Phase::Live;
                }
                self.repace();
            }
            return;
        };
        let Some(catch_up) = self.ring.since(snap.offset) else {
            // The ring no longer reaches back to the snapshot (cannot happen while the gate
            // bounds the emulator's lag below the ring): ask again.
            self.request_snapshot(ctx);
            return;
        };
        let end = self.offset();
        let mut failed = Vec::new();
        for (id, reason) in waiting {
            if reason != SnapshotReason::Resync {
                self.send_hello(&id, snap.offset, false);
            }
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            let skipped = match reason {
                SnapshotReason::Join => 0,
                SnapshotReason::ResumeGap => snap.offset.saturating_sub(p.resume_from.unwrap_or(0)),
                SnapshotReason::Resync => {
                    let dropped = p.out.discarded_bytes() - p.discarded_at_resync;
                    (dropped + snap.offset.saturating_sub(p.sent))
                        .saturating_sub(p.sent.saturating_sub(snap.offset).min(dropped))
                }
            };
            if reason == SnapshotReason::Resync {
                metrics::SKIPPED_BYTES.inc_by(skipped);
            }
            metrics::SNAPSHOTS
                .with_label_values(&[reason.as_str()])
                .inc();
            let head = ServerFrame::Snapshot {
                offset: snap.offset,
                cols: snap.cols,
                rows: snap.rows,
                reason,
                skipped_bytes: skipped,
            };
            let mut res = p
                .out
                .push(OutFrame::text(head.to_json()))
                .and_then(|()| p.out.push(OutFrame::Binary(snap.data.clone())));
            for c in &catch_up {
                res = res.and_then(|()| p.out.push(OutFrame::Binary(c.clone())));
            }
            match res {
                Ok(()) => {
                    p.sent = end;
                    p.phase = Phase::Live;
                }
                Err(e) => failed.push((id.clone(), e)),
            }
            self.repace();
        }
        self.drop_failed(failed);
    }

    /// Queues `hello` (and, right behind it, the participant counts it joined into).
    fn send_hello(&mut self, conn: &str, output_offset: u64, resumed: bool) {
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        p.greeted = true;
        let (role, limits) = (p.role, p.limits);
        let (subject, name) = (p.subject.clone(), p.name.clone());
        let you = self.seat.holder_conn() == Some(conn);
        let hello = ServerFrame::Hello {
            session_id: self.session_id.clone(),
            connection_id: conn.to_owned(),
            role,
            subject,
            name,
            control: HelloControl::new(self.holder_view(), you),
            idle_deadline: rfc3339(self.idle_deadline()),
            limits,
            output_offset,
            size: self.size,
            resumed,
        };
        self.send_to(conn, OutFrame::text(hello.to_json()));
        let counts = self.participants_frame();
        self.send_to(conn, OutFrame::text(counts.to_json()));
        if let Some(m) = self.moderation_frame() {
            self.send_to(conn, OutFrame::text(m.to_json()));
        }
    }

    /// Whoever holds the seat paces the session; called after every seat change.
    pub(super) fn repace(&mut self) {
        let holder = self
            .seat
            .holder_conn()
            .filter(|h| {
                self.participants
                    .get(*h)
                    .is_some_and(|p| p.phase == Phase::Live)
            })
            .map(str::to_owned);
        if holder == self.paced {
            return;
        }
        if let Some(old) = self.paced.take() {
            if let Some(p) = self.participants.get(&old) {
                p.out.set_pacing(false, 0);
            }
        }
        self.gate.unpace();
        if let Some(h) = &holder {
            if let Some(p) = self.participants.get_mut(h) {
                let window = self.cfg.flow.window_bytes;
                p.out.attach_gate(self.gate.clone());
                p.out.set_pacing(true, window / 2);
                p.acked = p.sent;
            }
        }
        self.paced = holder;
    }

    /// An acknowledgement from a participant: the holder's unacknowledged window shrinks.
    pub(super) fn on_ack(&mut self, conn: &str, offset: u64) {
        let window = self.cfg.flow.window_bytes as u64;
        let end = self.offset();
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        p.acks = true;
        p.acked = p.acked.max(offset.min(p.sent));
        if self.paced.as_deref() == Some(conn) {
            let unacked = end.saturating_sub(p.acked);
            if unacked > window {
                self.gate.set_holder_unacked_full(true);
            } else if unacked <= window / 2 {
                self.gate.set_holder_unacked_full(false);
            }
        }
    }

    /// Participants that made no progress for `ws.stall_timeout` are cut with 4003 (tick).
    /// Idle sessions skip the scan: nothing was queued since one found every queue empty.
    pub(super) fn cut_stalled(&mut self) {
        if !self.pushed.swap(false, Ordering::Relaxed) && !self.maybe_queued {
            return;
        }
        let stall = self.cfg.flow.stall_timeout;
        let mut stalled = Vec::new();
        let mut queued = false;
        for (id, p) in self.participants.iter() {
            if p.out.queued_frames() > 0 {
                queued = true;
                if p.out.stalled_for() >= stall {
                    stalled.push(id.clone());
                }
            }
        }
        self.maybe_queued = queued;
        for id in stalled {
            if let Some(p) = self.participants.get(&id) {
                metrics::STALL_CLOSES.inc();
                tracing::info!(session = %self.session_id, role = p.role.as_str(), "stalled participant closed with 4003");
                p.close_urgently(crate::protocol::close::SLOW_CONSUMER);
            }
            self.remove_participants([(id, None)]);
        }
        self.repace();
    }

    /// The holder resized the terminal.
    pub(super) fn resized(&mut self, cols: u16, rows: u16) {
        let size = TermSize { cols, rows };
        if size == self.size {
            return;
        }
        self.size = size;
        self.term.resize(cols, rows);
        if let Some(r) = &self.rec {
            r.resize(cols, rows);
        }
        self.broadcast(&ServerFrame::Size { cols, rows });
    }
}

fn concat(chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().unwrap_or_default();
    }
    let mut b = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for c in chunks {
        b.extend_from_slice(&c);
    }
    b.freeze()
}
