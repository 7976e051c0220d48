//! Control changes across replicas: each hub publishes its seat changes on a Redis channel,
//! and one subscriber per process hands other replicas' changes to the local hub.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::RedisShared;
use crate::protocol::{HolderView, RequestOutcome};

/// One control change (or request for control) as published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlNote {
    /// The publishing process.
    pub replica: String,
    /// The session.
    pub session_id: String,
    /// The new holder, if any.
    pub holder: Option<HolderView>,
    /// `acquired`, `released`, `expired`, `revoked`, `disconnected`, `granted`; `request` for a
    /// note about a request (see `request`); `moderation` when moderators joined or left.
    pub reason: String,
    /// The new holder's lease epoch after a grant: its replica seats it with this lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// A request for control was queued (`outcome` none) or ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestNote>,
}

/// A request for control, as other replicas learn of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestNote {
    /// Who asks.
    pub from: HolderView,
    /// How it ended; `None` when it was just queued.
    pub outcome: Option<RequestOutcome>,
}

/// What a published note says.
#[derive(Debug, Clone)]
pub enum NoteBody {
    /// Who holds the seat now; `epoch` only after a grant.
    Control {
        /// The holder, if any.
        holder: Option<HolderView>,
        /// The reason's wire name.
        reason: &'static str,
        /// The new lease's epoch after a grant.
        epoch: Option<u64>,
    },
    /// A request queued or ended.
    Request(RequestNote),
    /// A moderator joined or left here: other replicas count the session's moderators again.
    Moderation,
}

/// `ControlNote.reason` of a moderation note.
pub const MODERATION_NOTE: &str = "moderation";

/// Publishes this replica's control changes.
#[derive(Clone)]
pub struct ControlBus {
    redis: RedisShared,
    replica: Arc<str>,
    channel_prefix: String,
}

impl std::fmt::Debug for ControlBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlBus")
            .field("replica", &self.replica)
            .finish()
    }
}

impl ControlBus {
    /// A bus for this replica.
    pub fn new(redis: RedisShared, replica: &str) -> Self {
        let channel_prefix = redis.key("bus", ":control:");
        ControlBus {
            redis,
            replica: Arc::from(replica),
            channel_prefix,
        }
    }

    /// The registry of moderators on the same Redis.
    pub fn moderators(&self) -> super::moderators::ModeratorRegistry {
        super::moderators::ModeratorRegistry::new(self.redis.clone())
    }

    /// This process's replica id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Publishes a change (best effort: a lost note only delays other replicas' view until the
    /// next change; the lease itself stays authoritative).
    pub fn publish(&self, session_id: &str, body: NoteBody) {
        let (holder, reason, epoch, request) = match body {
            NoteBody::Control {
                holder,
                reason,
                epoch,
            } => (holder, reason, epoch, None),
            NoteBody::Request(r) => (None, "request", None, Some(r)),
            NoteBody::Moderation => (None, MODERATION_NOTE, None, None),
        };
        let note = ControlNote {
            replica: self.replica.to_string(),
            session_id: session_id.to_string(),
            holder,
            reason: reason.to_string(),
            epoch,
            request,
        };
        let Ok(payload) = serde_json::to_string(&note) else {
            return;
        };
        let channel = format!("{}{}", self.channel_prefix, session_id);
        let redis = self.redis.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let _ = redis
                    .run(|mut c| async move {
                        redis::cmd("PUBLISH")
                            .arg(channel)
                            .arg(payload)
                            .query_async::<i64>(&mut c)
                            .await
                    })
                    .await;
            });
        }
    }

    /// Runs forever: subscribes to every session's channel and calls `deliver` for notes of
    /// other replicas; reconnects with backoff.
    pub async fn subscribe(self, deliver: impl Fn(ControlNote) + Send + Sync + 'static) {
        let pattern = format!("{}*", self.channel_prefix);
        let mut backoff = Duration::from_millis(200);
        loop {
            let attempt = async {
                let mut ps = self.redis.pubsub().await?;
                ps.psubscribe(&pattern)
                    .await
                    .map_err(|e| super::RedisError::Unavailable(e.to_string()))?;
                Ok::<_, super::RedisError>(ps)
            };
            if let Ok(Ok(mut ps)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                {
                    backoff = Duration::from_millis(200);
                    let mut stream = ps.on_message();
                    while let Some(msg) = stream.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        let Ok(note) = serde_json::from_str::<ControlNote>(&payload) else {
                            continue;
                        };
                        if note.replica != *self.replica {
                            deliver(note);
                        }
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
