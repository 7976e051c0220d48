//! Moderators of each session across replicas: a Redis sorted set per session whose members
//! (connection ids) each replica refreshes every second and that expire after a ttl unrefreshed.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{scripts, RedisError, RedisShared};

/// The shared count of moderators.
#[derive(Clone)]
pub struct ModeratorRegistry {
    redis: RedisShared,
}

impl std::fmt::Debug for ModeratorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModeratorRegistry")
    }
}

/// One replica's changes to a session's moderators.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Moderators that joined here.
    pub joined: Vec<String>,
    /// Moderators still here (refreshed; one that left meanwhile is not added back).
    pub refresh: Vec<String>,
    /// Moderators that left here.
    pub left: Vec<String>,
}

/// What the registry counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Moderators attached on every replica.
    pub attached: usize,
    /// Refreshed members the registry no longer had (expired during an outage): add them again.
    pub missing: usize,
}

impl ModeratorRegistry {
    /// The registry over the shared Redis connection.
    pub fn new(redis: RedisShared) -> Self {
        ModeratorRegistry { redis }
    }

    /// Applies `changes` to `session`'s moderators (each member kept `ttl`) and counts them.
    pub fn sync(
        &self,
        session: &str,
        changes: Changes,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Count, RedisError>> {
        let key = self.redis.key(&format!("sess:{session}"), ":moderators");
        let redis = self.redis.clone();
        Box::pin(async move {
            let (attached, missing) = redis
                .run(|mut c| async move {
                    let mut call = scripts::MODERATORS.prepare_invoke();
                    call.key(key)
                        .arg(ttl.as_millis().max(1) as u64)
                        .arg(changes.joined.len())
                        .arg(changes.refresh.len());
                    for m in changes
                        .joined
                        .iter()
                        .chain(&changes.refresh)
                        .chain(&changes.left)
                    {
                        call.arg(m);
                    }
                    call.invoke_async::<(usize, usize)>(&mut c).await
                })
                .await?;
            Ok(Count { attached, missing })
        })
    }
}
