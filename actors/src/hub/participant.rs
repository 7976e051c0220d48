//! One participant of a hub: its outbound queue, role and the counters it shares with its
//! connection actor. Per-participant output state (offsets, credit) belongs here.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::outbound::{OutFrame, OutboundTx};
use crate::protocol::Role;

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

pub(super) struct Participant {
    pub(super) subject: String,
    pub(super) role: Role,
    /// Set once `hello` and the scrollback are queued; until then broadcasts skip it (the
    /// scrollback it gets already holds that output).
    pub(super) greeted: bool,
    pub(super) out: OutboundTx,
    pub(super) stats: Arc<ParticipantStats>,
    pub(super) max_invalid: u32,
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
