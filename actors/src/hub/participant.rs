//! One participant of a hub: its outbound queue, role and the counters it shares with its
//! connection actor. Per-participant output state (offsets, credit) belongs here.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::outbound::{OutFrame, OutboundTx};
use crate::protocol::{HelloLimits, Role, SnapshotReason};

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

impl ParticipantStats {
    /// Remembers `code` for the disconnect record unless a code was already chosen.
    pub(super) fn set_close_code(&self, code: u16) {
        let _ = self.close_code.compare_exchange(
            0,
            u32::from(code),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// Where a participant is in receiving output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for a snapshot (after joining, a resume gap, or a resync).
    AwaitSnapshot(SnapshotReason),
    /// Gets live output.
    Live,
    /// Fell behind: its queued output is being dropped; a snapshot follows once it drained.
    Resyncing,
}

pub(super) struct Participant {
    pub(super) subject: String,
    /// Display name from the token, if any.
    pub(super) name: Option<String>,
    pub(super) role: Role,
    /// Set once `hello` is queued; until then broadcasts skip it (what it missed is in the
    /// snapshot or the resume that follows its `hello`).
    pub(super) greeted: bool,
    pub(super) out: OutboundTx,
    pub(super) stats: Arc<ParticipantStats>,
    pub(super) max_invalid: u32,
    pub(super) limits: HelloLimits,
    pub(super) phase: Phase,
    /// Output offset pushed to this participant so far.
    pub(super) sent: u64,
    /// Output offset it acknowledged (`ack`), and whether it acknowledges at all.
    pub(super) acked: u64,
    pub(super) acks: bool,
    /// The ticket's `resume_from` (for `skipped_bytes` of a resume gap).
    pub(super) resume_from: Option<u64>,
    /// The queue's discarded-bytes count when the current resync began.
    pub(super) discarded_at_resync: u64,
}

impl Participant {
    /// Closes after what is already queued, remembering the code for the disconnect record.
    pub(super) fn close(&self, code: u16) {
        self.stats.set_close_code(code);
        if self.out.push(OutFrame::Close(code)).is_err() {
            self.out.close_urgently(code);
        }
    }

    /// Closes ahead of anything queued.
    pub(super) fn close_urgently(&self, code: u16) {
        self.stats.set_close_code(code);
        self.out.close_urgently(code);
    }
}
