//! Where sessions come from: the local registry, or pods through the Kubernetes API, and the
//! one place hubs are configured. Lookups enforce tenancy for either backend.

use std::sync::Arc;

use actix::Addr;
use attachd_actors::audit::Audit;
use attachd_actors::backend::BackendIo;
use attachd_actors::hub::{HubConfig, ModerationConfig, SessionHub};
use attachd_actors::lease::LeaseStore;
use attachd_actors::recording::Recorder;
use attachd_actors::redis::bus::ControlBus;

use crate::backend::kube::{self as kb, KubeError, PodSession};
use crate::config::Settings;
use crate::error::ApiError;
use crate::sessions::{SessionRegistry, SessionView};

/// This process's sessions and where more come from; starts their hubs, all configured alike.
pub struct Catalog {
    /// Sessions with a hub in this process.
    pub sessions: Arc<SessionRegistry>,
    /// The Kubernetes API, when `session.backend = "kube"`.
    pub kube: Option<KubeCatalog>,
    hub: HubConfig,
    /// What a moderated session's hub is given.
    moderation: ModerationConfig,
    leases: Arc<dyn LeaseStore>,
    audit: Audit,
}

/// A Kubernetes API client with the pod-session settings.
#[derive(Clone)]
pub struct KubeCatalog {
    /// The API client.
    pub client: ::kube::Client,
    /// Which pods are sessions, and how to reach them.
    pub settings: Arc<kb::KubeSettings>,
}

impl KubeCatalog {
    /// Connects as configured (`kube.api_url` + `kube.token_file`, in-cluster, or kubeconfig).
    pub async fn connect(s: &Settings) -> Result<Self, KubeError> {
        let k = &s.kube;
        let client =
            kb::client_from_settings(k.api_url.as_deref(), k.token_file.as_deref()).await?;
        let settings = k.clone();
        Ok(KubeCatalog {
            client,
            settings: Arc::new(settings),
        })
    }
}

/// Maps a kube failure to the API: not found stays 404; anything else is 503 without details.
pub fn kube_error(e: KubeError) -> ApiError {
    match e {
        KubeError::NotFound(_) => ApiError::NotFound,
        other => {
            tracing::error!(error = %other, "kubernetes API request failed");
            ApiError::BackendUnavailable("kubernetes API unavailable".into())
        }
    }
}

/// The API view of a pod session.
pub fn pod_view(p: &PodSession, s: &kb::KubeSettings) -> SessionView {
    SessionView {
        id: p.name.clone(),
        name: Some(p.name.clone()),
        tenant: p.tenant.clone(),
        created_by: "kubernetes".into(),
        created_at: p
            .created_at
            .map(attachd_actors::time::rfc3339)
            .unwrap_or_default(),
        backend: "kube".into(),
        command: match s.mode {
            kb::KubeMode::Exec => s.command.clone(),
            kb::KubeMode::Attach => Vec::new(),
        },
        policy: crate::sessions::SessionPolicy {
            moderated: p.moderated,
        },
    }
}

impl Catalog {
    /// A catalog whose hubs take their settings from `s` and announce control on `bus`.
    pub fn new(
        s: &Settings,
        kube: Option<KubeCatalog>,
        leases: Arc<dyn LeaseStore>,
        audit: Audit,
        bus: Option<ControlBus>,
        recorder: Option<Recorder>,
    ) -> Self {
        let hub = HubConfig {
            history_lines: s.session.history_lines,
            replay_bytes: s.session.replay_bytes,
            initial_size: attachd_actors::protocol::TermSize { cols: 80, rows: 24 },
            flow: attachd_actors::hub::FlowConfig {
                window_bytes: s.flow.window_bytes,
                observer_flush: s.flow.observer_flush,
                stall_timeout: s.ws.stall_timeout,
            },
            idle_timeout: s.session.idle_timeout,
            driver_idle_timeout: s.attach.driver_idle_timeout,
            control_grace: s.attach.control_grace,
            lease_ttl: s.attach.lease_ttl,
            control_request_ttl: s.attach.control_request_ttl,
            moderated: None,
            bus: bus.clone(),
            recorder,
        };
        // Input held while nobody moderates is bounded by one second of the stdin budget.
        let moderation = ModerationConfig {
            hold_bytes: usize::try_from(s.ws.stdin_bytes_per_sec).unwrap_or(usize::MAX),
            hold_messages: s.ws.stdin_messages_per_sec,
            registry: bus.as_ref().map(ControlBus::moderators),
        };
        Catalog {
            sessions: SessionRegistry::new(),
            kube,
            hub,
            moderation,
            leases,
            audit,
        }
    }

    /// Starts the hub of a new session over its running backend.
    pub fn start(&self, view: SessionView, io: BackendIo) -> Addr<SessionHub> {
        let mut hub = self.hub.clone();
        hub.moderated = view.policy.moderated.then(|| self.moderation.clone());
        self.sessions
            .start(view, io, hub, self.leases.clone(), self.audit.clone())
    }

    /// Sessions of `tenant`.
    pub async fn list(&self, tenant: &str) -> Result<Vec<SessionView>, ApiError> {
        match &self.kube {
            None => Ok(self.sessions.list(tenant)),
            Some(k) => {
                let pods = kb::list_tenant_sessions(&k.client, &k.settings, tenant)
                    .await
                    .map_err(kube_error)?;
                Ok(pods.iter().map(|p| pod_view(p, &k.settings)).collect())
            }
        }
    }

    /// One session of `tenant`, with its hub on this replica if one runs.
    pub async fn find(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<(SessionView, Option<Addr<SessionHub>>), ApiError> {
        if let Some((view, hub)) = self.sessions.get(id, tenant) {
            return Ok((view, Some(hub)));
        }
        let Some(k) = &self.kube else {
            return Err(ApiError::NotFound);
        };
        if !kb::is_valid_pod_name(id) {
            return Err(ApiError::NotFound);
        }
        let pod = kb::get_session(&k.client, &k.settings, id)
            .await
            .map_err(kube_error)?;
        if pod.tenant != tenant {
            return Err(ApiError::NotFound);
        }
        Ok((pod_view(&pod, &k.settings), None))
    }

    /// The hub of a session on this replica, starting one (opening the pod stream) if needed.
    pub async fn hub_for(&self, tenant: &str, id: &str) -> Result<Addr<SessionHub>, ApiError> {
        let (view, hub) = self.find(tenant, id).await?;
        if let Some(h) = hub {
            return Ok(h);
        }
        let Some(k) = &self.kube else {
            return Err(ApiError::NotFound);
        };
        let io = kb::open(&k.client, &k.settings, id)
            .await
            .map_err(kube_error)?;
        // Two attaches may have raced to open the pod: keep the first hub, detach the other.
        if let Some((_, existing)) = self.sessions.get(id, tenant) {
            let _ = io
                .input
                .try_send(attachd_actors::backend::BackendInput::Terminate);
            return Ok(existing);
        }
        Ok(self.start(view, io))
    }
}
