//! The session registry of this process: which sessions exist, their tenant and their hub.
//! Creation spawns the backend and its hub; a hub removes its session when it stops.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use attachd_actors::audit::{Audit, AuditEvent};
use attachd_actors::backend::BackendIo;
use attachd_actors::hub::{HubConfig, SessionHub};
use attachd_actors::lease::LeaseStore;
use serde::{Deserialize, Serialize};

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// Optional display name.
    pub name: Option<String>,
    /// Owning tenant.
    pub tenant: String,
    /// Subject that created it.
    pub created_by: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// `local` or `kube`.
    pub backend: String,
    /// argv of the process.
    pub command: Vec<String>,
    /// How the session is run (`{"moderated": true}`: input only while a moderator watches).
    #[serde(default)]
    pub policy: SessionPolicy,
}

/// A session's policy (`POST /api/v1/sessions` `policy`; for pods, their labels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPolicy {
    /// stdin is written only while at least one moderator (an observer with
    /// `attach:moderate`) is attached; meanwhile it is held. Creating one needs
    /// `attach:moderate`.
    #[serde(default)]
    pub moderated: bool,
}

#[derive(Clone)]
struct Entry {
    view: SessionView,
    hub: Addr<SessionHub>,
    /// The thread the hub (and, for a local session, its PTY) runs on.
    home: ArbiterHandle,
}

/// All sessions of this process.
#[derive(Default)]
pub struct SessionRegistry {
    // Session create/list/lookup only; never touched on the output path.
    map: RwLock<HashMap<String, Entry>>,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a hub over a running backend and registers the session.
    pub fn start(
        self: &Arc<Self>,
        view: SessionView,
        io: BackendIo,
        cfg: HubConfig,
        leases: Arc<dyn LeaseStore>,
        audit: Audit,
    ) -> Addr<SessionHub> {
        let registry = Arc::downgrade(self);
        let hub = SessionHub::new(
            view.id.clone(),
            view.tenant.clone(),
            cfg,
            io,
            leases,
            audit,
            Box::new(move |id: &str| {
                if let Some(r) = registry.upgrade() {
                    r.write().remove(id);
                }
            }),
        )
        .start();
        self.write().insert(
            view.id.clone(),
            Entry {
                view,
                hub: hub.clone(),
                home: Arbiter::current(),
            },
        );
        hub
    }

    /// The session and its hub, if it exists and belongs to `tenant`.
    pub fn get(&self, id: &str, tenant: &str) -> Option<(SessionView, Addr<SessionHub>)> {
        self.read()
            .get(id)
            .filter(|e| e.view.tenant == tenant)
            .map(|e| (e.view.clone(), e.hub.clone()))
    }

    /// The thread a session's hub runs on: its driver's connection runs there too, so a
    /// keystroke and its echo never cross threads.
    pub fn home(&self, id: &str) -> Option<ArbiterHandle> {
        self.read().get(id).map(|e| e.home.clone())
    }

    /// The hub of a session whatever its tenant (for notes from other replicas).
    pub fn hub(&self, id: &str) -> Option<Addr<SessionHub>> {
        self.read().get(id).map(|e| e.hub.clone())
    }

    /// Sessions of `tenant`, oldest first.
    pub fn list(&self, tenant: &str) -> Vec<SessionView> {
        let mut v: Vec<SessionView> = self
            .read()
            .values()
            .filter(|e| e.view.tenant == tenant)
            .map(|e| e.view.clone())
            .collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    /// Unregisters a session (the hub is told separately).
    pub fn remove(&self, id: &str) -> Option<Addr<SessionHub>> {
        self.write().remove(id).map(|e| e.hub)
    }

    /// Every hub, for draining.
    pub fn hubs(&self) -> Vec<Addr<SessionHub>> {
        self.read().values().map(|e| e.hub.clone()).collect()
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

/// A fresh session id.
pub fn new_session_id() -> String {
    format!("s-{}", uuid::Uuid::new_v4().simple())
}

/// RFC 3339 now.
pub fn now_rfc3339() -> String {
    attachd_actors::time::rfc3339(SystemTime::now())
}

/// The audit record of a session lifecycle event.
pub fn lifecycle_event(ty: &str, view: &SessionView, subject: &str) -> AuditEvent {
    let event = AuditEvent::new(ty, "ok")
        .subject(subject)
        .tenant(&view.tenant)
        .session_id(&view.id);
    if view.policy.moderated {
        event.field_str("policy", "moderated")
    } else {
        event
    }
}
