//! Slot refreshes gathered between flushes: the limiter puts every slot it holds in once a third
//! of the TTL, and each flush sends one script call per slot key (a subject's or a session's).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{scripts, RedisShared};

/// How often gathered refreshes are sent. Far below the slot TTL (3 × `ws.ping_interval`).
pub const REFRESH_FLUSH: Duration = Duration::from_secs(1);

/// Members per script call (Lua's `unpack` and one reply stay small).
const MEMBERS_PER_CALL: usize = 500;

/// Pending members at most; more are dropped until the next pass over the held slots (the TTL
/// spans three of them).
pub const MAX_PENDING: usize = 1 << 20;

/// Refreshes waiting for the next flush: slot key → members (connection ids).
#[derive(Default)]
pub struct RefreshBatch {
    keys: HashMap<String, HashSet<String>>,
    members: usize,
}

impl RefreshBatch {
    /// Adds `member` of `key`; false when the batch is full (the refresh is dropped).
    pub fn add(&mut self, key: String, member: &str) -> bool {
        if self.members >= MAX_PENDING {
            return false;
        }
        if self.keys.entry(key).or_default().insert(member.to_owned()) {
            self.members += 1;
        }
        true
    }

    /// Members waiting.
    pub fn len(&self) -> usize {
        self.members
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// Takes everything gathered so far, as (key, members) calls of bounded size.
    pub fn take_calls(&mut self) -> Vec<(String, Vec<String>)> {
        self.members = 0;
        let mut calls = Vec::new();
        for (key, members) in self.keys.drain() {
            let members: Vec<String> = members.into_iter().collect();
            for chunk in members.chunks(MEMBERS_PER_CALL) {
                calls.push((key.clone(), chunk.to_vec()));
            }
        }
        calls
    }
}

/// Sends `calls`, one script call each; returns how many calls failed (slots whose refresh
/// failed expire unless a later flush reaches Redis).
pub async fn send(redis: &RedisShared, calls: Vec<(String, Vec<String>)>, ttl: Duration) -> usize {
    let ttl = ttl.as_millis() as u64;
    let mut failed = 0;
    for (key, members) in calls {
        let res = redis
            .run(|mut c| async move {
                let mut inv = scripts::SLOT_REFRESH.key(key);
                inv.arg(ttl);
                for m in members {
                    inv.arg(m);
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

    #[test]
    fn members_are_gathered_once_per_key_and_taken_in_bounded_calls() {
        let mut b = RefreshBatch::default();
        for i in 0..1_200 {
            assert!(b.add("subj".into(), &format!("c{i}")));
            assert!(b.add("sess".into(), &format!("c{i}")));
        }
        // A second heartbeat before the flush adds nothing.
        assert!(b.add("subj".into(), "c0"));
        assert_eq!(b.len(), 2_400);
        let calls = b.take_calls();
        assert!(b.is_empty());
        assert!(calls.iter().all(|(_, m)| m.len() <= MEMBERS_PER_CALL));
        for key in ["subj", "sess"] {
            let mut all: Vec<&String> = calls
                .iter()
                .filter(|(k, _)| k == key)
                .flat_map(|(_, m)| m)
                .collect();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 1_200, "{key}");
        }
        assert_eq!(calls.len(), 6);
    }

    #[test]
    fn a_full_batch_drops_new_refreshes_until_taken() {
        let mut b = RefreshBatch {
            members: MAX_PENDING,
            ..RefreshBatch::default()
        };
        assert!(!b.add("k".into(), "late"));
        b.take_calls();
        assert!(b.add("k".into(), "late"));
    }
}
