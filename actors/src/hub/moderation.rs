//! A moderated session as pure code: who moderates here, how many elsewhere (last counted in
//! the shared registry), and the holder's stdin held while nobody moderates; unit-tested.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::protocol::ModerationState;
use crate::redis::moderators::{Changes, Count};

/// Settings of a moderated session's hub.
#[derive(Debug, Clone)]
pub struct ModerationConfig {
    /// stdin held while frozen, at most (`ws.stdin_bytes_per_sec`: one second of budget).
    pub hold_bytes: usize,
    /// stdin messages held while frozen, at most (`ws.stdin_messages_per_sec`).
    pub hold_messages: u32,
    /// Moderators on every replica (with Redis); `None` counts this replica's only.
    pub registry: Option<crate::redis::moderators::ModeratorRegistry>,
}

/// What becomes of one stdin message from the holder.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Write it now.
    Forward(Bytes),
    /// Kept until a moderator joins.
    Held,
    /// Over the hold: dropped. `first` marks the first refusal of this freeze (answer it).
    Refused {
        /// Whether `moderation_required` is still to be sent during this freeze.
        first: bool,
    },
}

/// The state or the moderator count changed (tell everyone; a state change is audited), or
/// input held during a lapse is to be written.
#[derive(Debug, PartialEq, Eq)]
pub struct Change {
    /// The state now.
    pub state: ModerationState,
    /// Moderators attached now, on every replica as last counted.
    pub moderators: usize,
    /// Whether the state itself changed (not only the count).
    pub flipped: bool,
    /// Whether the state or the count changed (participants are told).
    pub announce: bool,
    /// Held input to write now, with the connection that typed it (on going live).
    pub release: Option<(String, Bytes)>,
}

/// The moderation of one session on one replica.
#[derive(Debug)]
pub struct Moderation {
    cfg: ModerationConfig,
    /// How long a count from the registry stays good without a newer one.
    ttl: Duration,
    here: BTreeSet<String>,
    /// Moderators on other replicas at the last count, and when it was taken.
    elsewhere: usize,
    counted_at: Option<Instant>,
    /// Counts are applied in the order they were asked for.
    asked: u64,
    applied: u64,
    /// The registry lost some of ours (expired during an outage): the next count adds them.
    readd: bool,
    held: BytesMut,
    held_messages: u32,
    held_by: Option<String>,
    refused: bool,
    /// What participants were last told.
    announced: (ModerationState, usize),
}

impl Moderation {
    /// A frozen session with no moderator; counts from the registry last `ttl`.
    pub fn new(cfg: ModerationConfig, ttl: Duration) -> Self {
        Moderation {
            cfg,
            ttl,
            here: BTreeSet::new(),
            elsewhere: 0,
            counted_at: None,
            asked: 0,
            applied: 0,
            readd: false,
            held: BytesMut::new(),
            held_messages: 0,
            held_by: None,
            refused: false,
            announced: (ModerationState::Frozen, 0),
        }
    }

    /// The shared registry, if moderators are counted across replicas.
    pub fn registry(&self) -> Option<&crate::redis::moderators::ModeratorRegistry> {
        self.cfg.registry.as_ref()
    }

    /// This replica's moderators, as the next count refreshes them.
    pub fn refresh(&mut self) -> Changes {
        let here: Vec<String> = self.here.iter().cloned().collect();
        if std::mem::take(&mut self.readd) {
            Changes {
                joined: here,
                ..Changes::default()
            }
        } else {
            Changes {
                refresh: here,
                ..Changes::default()
            }
        }
    }

    /// Moderators on every replica at `now` (a count older than the ttl is not trusted).
    pub fn moderators(&self, now: Instant) -> usize {
        let fresh = self
            .counted_at
            .is_some_and(|t| now.saturating_duration_since(t) < self.ttl);
        self.here.len() + if fresh { self.elsewhere } else { 0 }
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> ModerationState {
        if self.moderators(now) > 0 {
            ModerationState::Live
        } else {
            ModerationState::Frozen
        }
    }

    /// A moderator attached here.
    pub fn join(&mut self, conn: &str) {
        self.here.insert(conn.to_owned());
    }

    /// `conn` left; `true` if it was a moderator here.
    pub fn leave(&mut self, conn: &str) -> bool {
        self.here.remove(conn)
    }

    /// A count is about to be asked of the registry, with `here` refreshed: its ticket.
    pub fn asking(&mut self) -> u64 {
        self.asked += 1;
        self.asked
    }

    /// The registry counted `count` with `mine` of this replica's moderators in it, for ticket
    /// `seq` asked at `at`. An answer older than one already applied is ignored.
    pub fn counted(&mut self, seq: u64, count: Count, mine: usize, at: Instant) {
        if seq <= self.applied {
            return;
        }
        self.applied = seq;
        self.readd |= count.missing > 0;
        let counted_mine = mine.saturating_sub(count.missing);
        self.elsewhere = count.attached.saturating_sub(counted_mine);
        self.counted_at = Some(at);
    }

    /// stdin from the holder `conn` at `now`.
    pub fn stdin(&mut self, conn: &str, data: Bytes, now: Instant) -> Input {
        if self.held_by.as_deref() != Some(conn) {
            // Held input of a former holder is not written for the new one.
            self.held.clear();
            self.held_messages = 0;
            self.held_by = Some(conn.to_owned());
        }
        if self.state(now) == ModerationState::Live {
            if self.held.is_empty() {
                return Input::Forward(data);
            }
            // Live again before the change was announced: what was held goes first.
            self.held.extend_from_slice(&data);
            self.held_messages = 0;
            return Input::Forward(self.held.split().freeze());
        }
        let fits = self.held.len() + data.len() <= self.cfg.hold_bytes
            && self.held_messages < self.cfg.hold_messages;
        if !fits {
            let first = !self.refused;
            self.refused = true;
            return Input::Refused { first };
        }
        self.held.extend_from_slice(&data);
        self.held_messages += 1;
        Input::Held
    }

    /// What changed since participants were last told, at `now`: the state, the count, and
    /// while live the input held before (in the order it was typed).
    pub fn update(&mut self, now: Instant) -> Option<Change> {
        let now_is = (self.state(now), self.moderators(now));
        let flipped = now_is.0 != self.announced.0;
        let announce = now_is != self.announced;
        let mut release = None;
        if now_is.0 == ModerationState::Live && !self.held.is_empty() {
            self.held_messages = 0;
            let by = self.held_by.clone().unwrap_or_default();
            release = Some((by, self.held.split().freeze()));
        }
        if !announce && release.is_none() {
            return None;
        }
        if flipped {
            self.refused = false;
        }
        self.announced = now_is;
        Some(Change {
            state: now_is.0,
            moderators: now_is.1,
            flipped,
            announce,
            release,
        })
    }

    /// What participants were last told: (state, moderators).
    pub fn announced(&self) -> (ModerationState, usize) {
        self.announced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(attached: usize, missing: usize) -> Count {
        Count { attached, missing }
    }

    fn moderation(bytes: usize, messages: u32) -> Moderation {
        Moderation::new(
            ModerationConfig {
                hold_bytes: bytes,
                hold_messages: messages,
                registry: None,
            },
            Duration::from_secs(3),
        )
    }

    #[test]
    fn input_is_held_while_frozen_and_released_in_order_when_a_moderator_joins() {
        let mut m = moderation(100, 10);
        let now = Instant::now();
        assert_eq!(m.state(now), ModerationState::Frozen);
        assert_eq!(m.stdin("d", Bytes::from_static(b"ls"), now), Input::Held);
        assert_eq!(m.stdin("d", Bytes::from_static(b"\r"), now), Input::Held);
        assert_eq!(m.update(now), None, "nothing changed yet");
        m.join("m1");
        let c = m.update(now).expect("live");
        assert_eq!(c.state, ModerationState::Live);
        assert_eq!(c.moderators, 1);
        assert!(c.flipped);
        assert_eq!(c.release, Some(("d".into(), Bytes::from_static(b"ls\r"))));
        assert_eq!(
            m.stdin("d", Bytes::from_static(b"x"), now),
            Input::Forward(Bytes::from_static(b"x"))
        );
    }

    #[test]
    fn over_the_hold_input_is_refused_once_per_freeze() {
        let mut m = moderation(4, 10);
        let now = Instant::now();
        assert_eq!(m.stdin("d", Bytes::from_static(b"abc"), now), Input::Held);
        assert_eq!(
            m.stdin("d", Bytes::from_static(b"de"), now),
            Input::Refused { first: true }
        );
        assert_eq!(
            m.stdin("d", Bytes::from_static(b"fg"), now),
            Input::Refused { first: false }
        );
        // What fits is still held.
        assert_eq!(m.stdin("d", Bytes::from_static(b"h"), now), Input::Held);
        m.join("m");
        let c = m.update(now).unwrap();
        assert_eq!(c.release.unwrap().1, Bytes::from_static(b"abch"));
        // A new freeze refuses (and says so) again.
        m.leave("m");
        let c = m.update(now).unwrap();
        assert_eq!((c.state, c.flipped), (ModerationState::Frozen, true));
        assert_eq!(m.stdin("d", Bytes::from_static(b"1234"), now), Input::Held);
        assert_eq!(
            m.stdin("d", Bytes::from_static(b"5"), now),
            Input::Refused { first: true }
        );
    }

    #[test]
    fn the_message_count_bounds_the_hold_too() {
        let mut m = moderation(100, 2);
        let now = Instant::now();
        assert_eq!(m.stdin("d", Bytes::from_static(b"a"), now), Input::Held);
        assert_eq!(m.stdin("d", Bytes::from_static(b"b"), now), Input::Held);
        assert_eq!(
            m.stdin("d", Bytes::from_static(b"c"), now),
            Input::Refused { first: true }
        );
    }

    #[test]
    fn a_new_holder_does_not_inherit_held_input() {
        let mut m = moderation(100, 10);
        let now = Instant::now();
        assert_eq!(m.stdin("a", Bytes::from_static(b"rm"), now), Input::Held);
        assert_eq!(m.stdin("b", Bytes::from_static(b"ls"), now), Input::Held);
        m.join("m");
        let c = m.update(now).unwrap();
        assert_eq!(c.release, Some(("b".into(), Bytes::from_static(b"ls"))));
    }

    #[test]
    fn moderators_elsewhere_count_until_their_count_is_stale() {
        let mut m = moderation(100, 10);
        let t0 = Instant::now();
        m.join("here");
        let seq = m.asking();
        m.counted(seq, count(3, 0), 1, t0);
        assert_eq!(m.moderators(t0), 3);
        let c = m.update(t0).unwrap();
        assert_eq!((c.state, c.moderators), (ModerationState::Live, 3));
        // The local moderator leaves: the two elsewhere keep the session live.
        m.leave("here");
        let c = m.update(t0).unwrap();
        assert_eq!(
            (c.state, c.moderators, c.flipped),
            (ModerationState::Live, 2, false)
        );
        // No newer count within the ttl (the registry is unreachable): frozen.
        let later = t0 + Duration::from_secs(3);
        let c = m.update(later).unwrap();
        assert_eq!(
            (c.state, c.moderators, c.flipped),
            (ModerationState::Frozen, 0, true)
        );
    }

    #[test]
    fn input_held_during_an_unannounced_lapse_is_written_first_once_live_again() {
        let mut m = moderation(100, 10);
        let t0 = Instant::now();
        let seq = m.asking();
        m.counted(seq, count(1, 0), 0, t0);
        assert_eq!(m.update(t0).unwrap().state, ModerationState::Live);
        // The count lapses before anyone announced it: input is held meanwhile.
        let t1 = t0 + Duration::from_secs(4);
        assert_eq!(m.stdin("d", Bytes::from_static(b"a"), t1), Input::Held);
        let seq = m.asking();
        m.counted(seq, count(1, 0), 0, t1);
        // Live again with the same count: nothing to announce, but the held input goes out.
        let c = m.update(t1).unwrap();
        assert!(!c.announce && !c.flipped);
        assert_eq!(c.release, Some(("d".into(), Bytes::from_static(b"a"))));
        // Or, if the next keystroke comes first, it follows what was held.
        let t2 = t1 + Duration::from_secs(4);
        assert_eq!(m.stdin("d", Bytes::from_static(b"b"), t2), Input::Held);
        let seq = m.asking();
        m.counted(seq, count(1, 0), 0, t2);
        assert_eq!(
            m.stdin("d", Bytes::from_static(b"c"), t2),
            Input::Forward(Bytes::from_static(b"bc"))
        );
    }

    #[test]
    fn an_older_count_answered_late_is_ignored() {
        let mut m = moderation(100, 10);
        let now = Instant::now();
        let first = m.asking();
        let second = m.asking();
        m.counted(second, count(0, 0), 0, now);
        m.counted(first, count(2, 0), 0, now);
        assert_eq!(m.moderators(now), 0);
    }

    #[test]
    fn moderators_the_registry_lost_are_added_again() {
        let mut m = moderation(100, 10);
        let now = Instant::now();
        m.join("a");
        m.join("b");
        assert_eq!(m.refresh().refresh, vec!["a".to_string(), "b".to_string()]);
        let seq = m.asking();
        // The registry expired both of ours (an outage) and knows one elsewhere.
        m.counted(seq, count(1, 2), 2, now);
        assert_eq!(m.moderators(now), 3);
        let next = m.refresh();
        assert_eq!(next.joined, vec!["a".to_string(), "b".to_string()]);
        assert!(next.refresh.is_empty());
        assert_eq!(
            m.refresh().refresh.len(),
            2,
            "added once, then refreshed again"
        );
    }
}
