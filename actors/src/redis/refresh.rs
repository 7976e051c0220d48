//! The slots this replica holds, indexed by the Redis key they live in (a subject's or a
//! session's), so one refresh pass sends one script call per key without a lookup per slot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::{scripts, RedisShared};
use crate::limits::SlotKey;

/// How often the limiter looks whether a refresh pass is due. Far below the slot TTL
/// (3 × `ws.ping_interval`); a pass runs once a third of the TTL has passed.
pub const REFRESH_FLUSH: Duration = Duration::from_secs(1);

/// Members per script call (Lua's `unpack` and one reply stay small).
const MEMBERS_PER_CALL: usize = 500;

/// One refresh call: a slot key and members (connection ids) of it.
pub type Call = (String, Vec<Arc<str>>);

/// Held slots by subject and by session; every connection is in one set of each.
#[derive(Default)]
pub struct HeldSlots {
    by_subject: HashMap<Arc<str>, HashSet<Arc<str>>>,
    by_session: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

impl HeldSlots {
    /// Records `key` as held (again: no change).
    pub fn insert(&mut self, key: &SlotKey) {
        for (map, tag) in [
            (&mut self.by_subject, &key.subject),
            (&mut self.by_session, &key.session),
        ] {
            map.entry(tag.clone())
                .or_default()
                .insert(key.connection_id.clone());
        }
    }

    /// Forgets `key` (not held: no change); an emptied subject or session goes with it.
    pub fn remove(&mut self, key: &SlotKey) {
        for (map, tag) in [
            (&mut self.by_subject, &key.subject),
            (&mut self.by_session, &key.session),
        ] {
            if let Some(set) = map.get_mut(tag) {
                set.remove(&key.connection_id);
                if set.is_empty() {
                    map.remove(tag);
                }
            }
        }
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.by_subject.values().map(HashSet::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_subject.is_empty()
    }

    /// Every held slot as refresh calls of bounded size: one key string per subject and per
    /// session (`key_of(kind, tag)`, see [`slot_key`]), the members shared with the held sets.
    pub fn calls(&self, key_of: impl Fn(&str, &str) -> String) -> Vec<Call> {
        let mut calls = Vec::new();
        for (kind, map) in [("subj", &self.by_subject), ("sess", &self.by_session)] {
            for (tag, members) in map {
                let key = key_of(kind, tag);
                let members: Vec<Arc<str>> = members.iter().cloned().collect();
                for chunk in members.chunks(MEMBERS_PER_CALL) {
                    calls.push((key.clone(), chunk.to_vec()));
                }
            }
        }
        calls
    }
}

/// The Redis key of a subject's (`subj`) or a session's (`sess`) slots.
pub fn slot_key(redis: &RedisShared, kind: &str, tag: &str) -> String {
    redis.key(&format!("{kind}:{tag}"), ":conns")
}

/// Sends `calls`, one script call each; returns how many calls failed (slots whose refresh
/// failed expire unless the next pass reaches Redis in time).
pub async fn send(redis: &RedisShared, calls: Vec<Call>, ttl: Duration) -> usize {
    let ttl = ttl.as_millis() as u64;
    let mut failed = 0;
    for (key, members) in calls {
        let res = redis
            .run(|mut c| async move {
                let mut inv = scripts::SLOT_REFRESH.key(key);
                inv.arg(ttl);
                for m in &members {
                    inv.arg(&**m);
                }
                inv.invoke_async::<i64>(&mut c).await
            })
            .await;
        failed += usize::from(res.is_err());
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(kind: &str, tag: &str) -> String {
        format!("{kind}:{tag}")
    }

    fn key(subject: &str, session: &str, conn: &str) -> SlotKey {
        SlotKey {
            subject: subject.into(),
            session: session.into(),
            connection_id: conn.into(),
        }
    }

    #[test]
    fn held_slots_make_one_call_per_key_in_bounded_chunks() {
        let mut held = HeldSlots::default();
        for i in 0..1_200 {
            held.insert(&key("alice", "s-1", &format!("c{i}")));
        }
        held.insert(&key("bob", "s-2", "b0"));
        // Held twice is held once.
        held.insert(&key("bob", "s-2", "b0"));
        assert_eq!(held.len(), 1_201);
        let calls = held.calls(key_of);
        assert!(calls.iter().all(|(_, m)| m.len() <= MEMBERS_PER_CALL));
        // 1,200 members are three calls per key (alice, s-1), bob and s-2 one each.
        assert_eq!(calls.len(), 8);
        for (k, n) in [
            (key_of("subj", "alice"), 1_200),
            (key_of("sess", "s-1"), 1_200),
            (key_of("subj", "bob"), 1),
            (key_of("sess", "s-2"), 1),
        ] {
            let mut all: Vec<&Arc<str>> = calls
                .iter()
                .filter(|(c, _)| *c == k)
                .flat_map(|(_, m)| m)
                .collect();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n, "{k}");
        }
    }

    #[test]
    fn released_slots_leave_no_empty_keys_behind() {
        let mut held = HeldSlots::default();
        held.insert(&key("alice", "s-1", "c1"));
        held.insert(&key("alice", "s-2", "c2"));
        held.remove(&key("alice", "s-1", "c1"));
        // Not held: nothing changes.
        held.remove(&key("alice", "s-1", "c1"));
        held.remove(&key("carol", "s-9", "c9"));
        assert_eq!(held.len(), 1);
        let keys: Vec<String> = held.calls(key_of).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&key_of("sess", "s-2")));
        assert!(!keys.contains(&key_of("sess", "s-1")));
        held.remove(&key("alice", "s-2", "c2"));
        assert!(held.is_empty());
        assert!(held.calls(key_of).is_empty());
    }
}
