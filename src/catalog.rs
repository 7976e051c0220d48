//! Where sessions come from: the local registry, or pods through the Kubernetes API. Lookups
//! enforce tenancy (another tenant's session is simply not found) for either backend.

use std::sync::Arc;

use actix::Addr;
use attachd_actors::hub::SessionHub;

use crate::backend::kube::{self as kb, KubeError, PodSession};
use crate::config::{KubeModeSetting, Settings};
use crate::error::ApiError;
use crate::sessions::SessionView;
use crate::state::AppState;

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
        let settings = kb::KubeSettings {
            namespace: k.namespace.clone(),
            label_selector: k.label_selector.clone(),
            container: k.container.clone(),
            command: k.command.clone(),
            mode: match k.mode {
                KubeModeSetting::Attach => kb::KubeMode::Attach,
                KubeModeSetting::Exec => kb::KubeMode::Exec,
            },
            tenant_label: k.tenant_label.clone(),
            ..kb::KubeSettings::default()
        };
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
    }
}

/// Sessions of `tenant`.
pub async fn list(st: &AppState, tenant: &str) -> Result<Vec<SessionView>, ApiError> {
    match &st.kube {
        None => Ok(st.sessions.list(tenant)),
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
    st: &AppState,
    tenant: &str,
    id: &str,
) -> Result<(SessionView, Option<Addr<SessionHub>>), ApiError> {
    if let Some((view, hub)) = st.sessions.get(id, tenant) {
        return Ok((view, Some(hub)));
    }
    let Some(k) = &st.kube else {
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
pub async fn hub_for(st: &AppState, tenant: &str, id: &str) -> Result<Addr<SessionHub>, ApiError> {
    let (view, hub) = find(st, tenant, id).await?;
    if let Some(h) = hub {
        return Ok(h);
    }
    let Some(k) = &st.kube else {
        return Err(ApiError::NotFound);
    };
    let io = kb::open(&k.client, &k.settings, id)
        .await
        .map_err(kube_error)?;
    // Two attaches may have raced to open the pod: keep the first hub, detach the other stream.
    if let Some((_, existing)) = st.sessions.get(id, tenant) {
        let _ = io
            .input
            .try_send(attachd_actors::backend::BackendInput::Terminate);
        return Ok(existing);
    }
    Ok(st.sessions.start(
        view,
        io,
        crate::http::api::hub_config(st),
        st.leases.clone(),
        st.audit.clone(),
    ))
}
