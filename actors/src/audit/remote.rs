//! The chain's head anchored in Redis too (when `redis.url` is set): checked against the log at
//! start, then rewritten after every durable batch, so a log cut together with its head file shows.
//!
//! The key is `<prefix>{audit}head:<chain id>`, the chain id being the hash of the chain's first
//! record: unique per chain, the same across restarts and rotations. Only the latest head is
//! written (the writer's `watch` channel coalesces bursts into one value). Redis being down
//! at start skips the check with a warning; a log removed whole, with its head file, starts a
//! new chain, and the old chain's key stays in Redis as evidence.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::anchor::{self, Anchor};
use super::files::chain_files;
use super::verify::{first_record_hash, verify_walk};
use super::writer::Audit;
use crate::redis::RedisShared;

fn key(redis: &RedisShared, chain: &str) -> String {
    redis.key("audit", &format!("head:{chain}"))
}

/// The chain id of the log at `path` (the hash of its first record), if it has one.
async fn chain_id(path: PathBuf) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let files = chain_files(&path).ok()?;
        first_record_hash(files.first()?)
    })
    .await
    .ok()
    .flatten()
}

async fn remote_head(redis: &RedisShared, key: String) -> Result<Option<Anchor>, String> {
    let text: Option<String> = redis
        .run(|mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
        .await
        .map_err(|e| e.to_string())?;
    let Some(text) = text else { return Ok(None) };
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    match (v["seq"].as_u64(), v["hash"].as_str()) {
        (Some(seq), Some(hash)) => Ok(Some(Anchor {
            seq,
            hash: hash.to_owned(),
        })),
        _ => Err(format!("malformed head in Redis: {text}")),
    }
}

/// Why the log at `path` does not reach `remote`, if it does not.
async fn check(path: &Path, remote: Anchor) -> Option<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let files = chain_files(&path).ok()?;
        let (report, hash_at) = verify_walk(&files, Some(remote.seq));
        // A chain broken in itself is refused by the writer already.
        if !report.ok {
            return None;
        }
        anchor::mismatch(&remote, report.records, hash_at.as_deref())
    })
    .await
    .ok()
    .flatten()
}

/// Checks the log against the head Redis holds for its chain (refusing the chain when it does
/// not reach it), then keeps that head current. Call once at start, before the first record.
pub async fn anchor_in_redis(audit: &Audit, redis: RedisShared) {
    let path = audit.path().to_path_buf();
    let mut chain = chain_id(path.clone()).await;
    if let Some(c) = &chain {
        match remote_head(&redis, key(&redis, c)).await {
            Ok(Some(remote)) => {
                if let Some(why) = check(&path, remote).await {
                    let why = format!(
                        "{} against the head anchored in Redis: {why}; refusing to continue this chain",
                        path.display()
                    );
                    tracing::error!(error = %why, "audit chain cut");
                    let _ = audit.refuse(why).await;
                    // Never overwrite the evidence with the shorter local head.
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit head from Redis; not checked")
            }
        }
    }
    let mut updates = audit.head_updates();
    actix::spawn(async move {
        loop {
            let head = updates.borrow_and_update().clone();
            if let Some(a) = head {
                if chain.is_none() {
                    chain = chain_id(path.clone()).await;
                }
                if let Some(c) = &chain {
                    let k = key(&redis, c);
                    let v = format!("{{\"hash\":\"{}\",\"seq\":{}}}", a.hash, a.seq);
                    let _ = redis
                        .run(|mut c| async move {
                            redis::cmd("SET")
                                .arg(&k)
                                .arg(&v)
                                .query_async::<()>(&mut c)
                                .await
                        })
                        .await;
                }
            }
            if updates.changed().await.is_err() {
                return;
            }
        }
    });
}
