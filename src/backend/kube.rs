//! The kube backend: sandbox pods selected by label are sessions, and a session's terminal is the
//! pod's `attach` (or `exec`) stream through kube-rs, bridged to the hub's bounded backend pipe.
//!
//! Over 500 lines: the client setup, pod lookup and the stream bridge share the pod model and
//! `KubeError`; a split along those three lines is the next step when one of them grows.

use std::time::{Duration, SystemTime};

use ::kube::{
    api::{Api, AttachParams, AttachedProcess, ListParams, TerminalSize},
    Client, Config,
};
use attachd_actors::backend::{BackendEvent, BackendInput, BackendIo};
use bytes::Bytes;
use futures_util::SinkExt;
use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Status};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, ReadHalf, SimplexStream, WriteHalf},
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::timeout,
};

/// Pod label naming the tenant a session belongs to.
pub const DEFAULT_TENANT_LABEL: &str = "attachd.dev/tenant";
/// Pod label that makes a session moderated when its value is `true`.
pub const DEFAULT_MODERATED_LABEL: &str = "attachd.dev/moderated";
/// Label selector of sandbox pods unless configured otherwise.
pub const DEFAULT_LABEL_SELECTOR: &str = "app.kubernetes.io/part-of=sandbox";
// Every request to the API server is bounded by `KubeSettings::api_timeout`. The long-lived
// stream itself is not (a terminal may idle for hours): kube-rs pings it every 60 s, and the
// client's read timeout (`STREAM_READ_TIMEOUT`) cuts a connection that stops answering.

/// Bound on each API request (list, get, stream upgrade) and on a stalled stdin write.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on establishing the TCP/TLS connection to the API server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A stream connection that reads nothing (not even the pong to kube-rs's 60 s ping) for this
/// long is dead; kube-rs then ends the stream and the session reports `Gone`.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(150);
/// Bound on one write to the API server connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After `Terminate`, how long the stream may take to deliver the close signal before it is cut.
const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// After the stream ends, how long remaining output and the status may take to arrive.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from the stream per `Output` event.
const READ_CHUNK: usize = 16 * 1024;
/// kube-rs's in-memory pipe sizes (its default of 1 KiB would split output into tiny events).
const PIPE_BYTES: usize = 64 * 1024;

/// Whether a session joins the container's TTY or runs its own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeMode {
    /// `pods/attach`: share the container's main process and TTY.
    #[default]
    Attach,
    /// `pods/exec`: run `KubeSettings::command` with a fresh TTY.
    Exec,
}

/// `kube.*`: which pods are sessions and how to reach their terminal. The one type for the
/// configuration section and the backend (this file also compiles alone in kube-emu's tests).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// Namespace of the sandbox pods (the only namespace attachd's Role covers).
    pub namespace: String,
    /// Label selector choosing the pods that are sessions; must not be empty.
    pub label_selector: String,
    /// Container to attach to or exec in; `None` = the pod's only/default container.
    pub container: Option<String>,
    /// argv for `exec` mode.
    pub command: Vec<String>,
    /// `attach` or `exec`.
    pub mode: KubeMode,
    /// Pod label carrying the tenant; pods without it are never sessions.
    pub tenant_label: String,
    /// Pod label whose value `true` makes the session moderated (input only while a
    /// moderator is attached); whoever creates the pod decides.
    pub moderated_label: String,
    /// API server URL; none = in-cluster config or kubeconfig.
    pub api_url: Option<String>,
    /// File holding the bearer token for `api_url`.
    pub token_file: Option<std::path::PathBuf>,
    /// Bound on every API request (not a configuration key).
    #[serde(skip, default = "default_api_timeout")]
    pub api_timeout: Duration,
}

fn default_api_timeout() -> Duration {
    DEFAULT_API_TIMEOUT
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            namespace: "sandboxes".into(),
            label_selector: DEFAULT_LABEL_SELECTOR.into(),
            container: None,
            command: vec!["/bin/sh".into()],
            mode: KubeMode::Attach,
            tenant_label: DEFAULT_TENANT_LABEL.into(),
            moderated_label: DEFAULT_MODERATED_LABEL.into(),
            api_url: None,
            token_file: None,
            api_timeout: DEFAULT_API_TIMEOUT,
        }
    }
}

impl KubeSettings {
    /// The first unsafe setting, as (key, what is wrong); `None` when they are usable.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.label_selector.trim().is_empty() {
            // An empty selector would make every pod of the namespace (attachd's own helpers
            // included) an attachable session.
            return Some(("kube.label_selector", "must not be empty"));
        }
        if self.tenant_label.trim().is_empty() {
            return Some(("kube.tenant_label", "must not be empty"));
        }
        if self.mode == KubeMode::Exec && self.command.is_empty() {
            return Some(("kube.command", "must not be empty in exec mode"));
        }
        None
    }
}

/// A pod seen as a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSession {
    /// Pod name (the session id).
    pub name: String,
    /// Value of the tenant label.
    pub tenant: String,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: String,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<SystemTime>,
    /// Its `moderated_label` is `true`.
    pub moderated: bool,
}

/// Why a kube operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable client configuration (no in-cluster service account, no kubeconfig, bad URL).
    #[error("kubernetes client configuration: {0}")]
    Config(String),
    /// The settings cannot work (empty selector, exec mode without a command, ...).
    #[error("kube settings: {0}")]
    Settings(String),
    /// The API server did not answer in time.
    #[error("kubernetes API did not answer {op} within {timeout:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The bound that expired.
        timeout: Duration,
    },
    /// The pod does not exist or is not a session (wrong labels, no tenant, invalid name).
    #[error("pod {0:?} is not a session")]
    NotFound(String),
    /// The pod exists but its terminal cannot be reached now.
    #[error("pod {name:?} is not running (phase {phase})")]
    NotRunning {
        /// Pod name.
        name: String,
        /// Its phase.
        phase: String,
    },
    /// The API server refused the request (401/403/404/400/5xx with a `Status`).
    #[error("kubernetes API refused {op}: {code} {reason}: {message}")]
    Api {
        /// The operation.
        op: &'static str,
        /// HTTP status code.
        code: u16,
        /// `Status.reason`.
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// Transport or protocol failure talking to the API server.
    #[error("kubernetes API {op} failed: {source}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// The kube-rs error.
        #[source]
        source: ::kube::Error,
    },
}

impl KubeError {
    fn from_kube(op: &'static str, err: ::kube::Error) -> Self {
        match err {
            ::kube::Error::Api(status) => KubeError::Api {
                op,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            source => KubeError::Transport { op, source },
        }
    }
}

/// Awaits an API call with the configured bound.
async fn bounded<T>(
    op: &'static str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, ::kube::Error>>,
) -> Result<T, KubeError> {
    match timeout(limit, fut).await {
        Ok(result) => result.map_err(|e| KubeError::from_kube(op, e)),
        Err(_) => Err(KubeError::Timeout { op, timeout: limit }),
    }
}

/// Timeouts that keep a dead API server from hanging anything.
fn harden(config: &mut Config) {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(STREAM_READ_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
}

/// The client `kube.api_url` + `kube.token_file` describe, else [`client_from_env`].
/// Like every constructor here it must run inside a Tokio runtime (kube-rs spawns a worker);
/// build it once at startup and clone it.
pub async fn client_from_settings(
    api_url: Option<&str>,
    token_file: Option<&std::path::Path>,
) -> Result<Client, KubeError> {
    let Some(url) = api_url else {
        return client_from_env().await;
    };
    let path = token_file.ok_or_else(|| {
        KubeError::Config("kube.api_url needs kube.token_file (the bearer token)".into())
    })?;
    let token = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| KubeError::Config(format!("kube.token_file {}: {e}", path.display())))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(KubeError::Config("kube.token_file is empty".into()));
    }
    client_for(url, token)
}

/// A client from the environment: in-cluster service account, else `KUBECONFIG`/`~/.kube/config`.
pub async fn client_from_env() -> Result<Client, KubeError> {
    let mut config = timeout(DEFAULT_API_TIMEOUT, Config::infer())
        .await
        .map_err(|_| KubeError::Timeout {
            op: "config inference",
            timeout: DEFAULT_API_TIMEOUT,
        })?
        .map_err(|e| KubeError::Config(e.to_string()))?;
    harden(&mut config);
    Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))
}

/// A client for `url` authenticating with bearer `token` (dev setups and the emulator in tests).
pub fn client_for(url: &str, token: &str) -> Result<Client, KubeError> {
    let uri = url
        .parse()
        .map_err(|_| KubeError::Config("kube.api_url is not a valid URL".into()))?;
    let mut config = Config::new(uri);
    config.auth_info.token = Some(token.to_owned().into());
    harden(&mut config);
    Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))
}

fn check_settings(settings: &KubeSettings) -> Result<(), KubeError> {
    match settings.problem() {
        Some((key, problem)) => Err(KubeError::Settings(format!("{key} {problem}"))),
        None => Ok(()),
    }
}

/// True for a valid object name (DNS-1123 subdomain). Anything else never reaches a URL path.
pub fn is_valid_pod_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// True for a valid label value, so a tenant can be put into a selector without injection.
pub fn is_valid_label_value(value: &str) -> bool {
    let b = value.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

fn to_session(pod: Pod, settings: &KubeSettings) -> Option<PodSession> {
    let name = pod.metadata.name?;
    let mut labels = pod.metadata.labels?;
    let moderated = labels
        .get(&settings.moderated_label)
        .is_some_and(|v| v == "true");
    let tenant = labels.remove(&settings.tenant_label)?;
    if tenant.is_empty() {
        return None;
    }
    Some(PodSession {
        name,
        tenant,
        phase: pod
            .status
            .and_then(|s| s.phase)
            .unwrap_or_else(|| "Unknown".into()),
        created_at: pod.metadata.creation_timestamp.and_then(|t| {
            let secs = u64::try_from(t.0.as_second()).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
        }),
        moderated,
    })
}

async fn list_matching(
    client: &Client,
    settings: &KubeSettings,
    extra_labels: Option<String>,
    fields: Option<String>,
) -> Result<Vec<PodSession>, KubeError> {
    check_settings(settings)?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &settings.namespace);
    let mut selector = settings.label_selector.clone();
    if let Some(extra) = extra_labels {
        selector.push(',');
        selector.push_str(&extra);
    }
    let mut params = ListParams::default().labels(&selector);
    if let Some(fields) = &fields {
        params = params.fields(fields);
    }
    let list = bounded("list pods", settings.api_timeout, api.list(&params)).await?;
    let mut sessions: Vec<PodSession> = list
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| to_session(pod, settings))
        .collect();
    sessions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sessions)
}

/// Every session pod (all tenants); pods without the tenant label are left out.
pub async fn list_sessions(
    client: &Client,
    settings: &KubeSettings,
) -> Result<Vec<PodSession>, KubeError> {
    list_matching(client, settings, None, None).await
}

/// Session pods of one tenant, filtered by the API server. An invalid tenant value matches nothing.
pub async fn list_tenant_sessions(
    client: &Client,
    settings: &KubeSettings,
    tenant: &str,
) -> Result<Vec<PodSession>, KubeError> {
    if tenant.is_empty() || !is_valid_label_value(tenant) {
        return Ok(Vec::new());
    }
    let extra = format!("{}={tenant}", settings.tenant_label);
    list_matching(client, settings, Some(extra), None).await
}

/// The session pod `name`: `NotFound` unless it exists, matches the selector and has a tenant.
pub async fn get_session(
    client: &Client,
    settings: &KubeSettings,
    name: &str,
) -> Result<PodSession, KubeError> {
    if !is_valid_pod_name(name) {
        return Err(KubeError::NotFound(name.to_owned()));
    }
    // A list with a name field selector lets the API server apply the label selector too, so a
    // pod outside the selector is never reachable by guessing its name.
    let fields = format!("metadata.name={name}");
    list_matching(client, settings, None, Some(fields))
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| KubeError::NotFound(name.to_owned()))
}

/// Opens the terminal of session pod `pod_name` (attach or exec, with a TTY) as a backend pipe.
pub async fn open(
    client: &Client,
    settings: &KubeSettings,
    pod_name: &str,
) -> Result<BackendIo, KubeError> {
    let session = get_session(client, settings, pod_name).await?;
    if session.phase != "Running" {
        return Err(KubeError::NotRunning {
            name: session.name,
            phase: session.phase,
        });
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &settings.namespace);
    let mut params = AttachParams::interactive_tty()
        .max_stdin_buf_size(PIPE_BYTES)
        .max_stdout_buf_size(PIPE_BYTES);
    if let Some(container) = &settings.container {
        params = params.container(container.clone());
    }
    let mut process = match settings.mode {
        KubeMode::Attach => {
            bounded(
                "attach",
                settings.api_timeout,
                api.attach(pod_name, &params),
            )
            .await?
        }
        KubeMode::Exec => {
            bounded(
                "exec",
                settings.api_timeout,
                api.exec(pod_name, settings.command.clone(), &params),
            )
            .await?
        }
    };
    let (Some(stdin), Some(stdout), Some(resize), Some(status)) = (
        process.stdin(),
        process.stdout(),
        process.terminal_size(),
        process.take_status(),
    ) else {
        return Err(KubeError::Settings(
            "attach parameters lack stdin, stdout or tty".into(),
        ));
    };

    let (io, events, input) = BackendIo::channels();
    let (stop_tx, stop_rx) = oneshot::channel();
    let input_task = tokio::spawn(forward_input(
        input,
        stdin,
        resize,
        settings.api_timeout,
        stop_tx,
    ));
    let ctx = Ending {
        client: client.clone(),
        settings: settings.clone(),
        pod: pod_name.to_owned(),
    };
    tokio::spawn(pump_output(
        process,
        stdout,
        Box::pin(status),
        events,
        stop_rx,
        input_task,
        ctx,
    ));
    Ok(io)
}

/// Why the input side stopped.
#[derive(Debug)]
enum InputEnd {
    /// `Terminate`, or the hub dropped its sender.
    Terminated,
    /// Writing to the stream failed or stalled.
    Failed(String),
}

/// Hub → pod: stdin bytes and resizes; `Terminate` closes stdin (the v5 close signal).
async fn forward_input(
    mut input: mpsc::Receiver<BackendInput>,
    mut stdin: WriteHalf<SimplexStream>,
    mut resize: impl futures_util::Sink<TerminalSize> + Unpin,
    limit: Duration,
    stop: oneshot::Sender<InputEnd>,
) {
    let end = loop {
        let Some(msg) = input.recv().await else {
            break InputEnd::Terminated;
        };
        match msg {
            BackendInput::Stdin(data) => match timeout(limit, stdin.write_all(&data)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break InputEnd::Failed(format!("stdin to the pod failed: {e}")),
                Err(_) => break InputEnd::Failed("stdin to the pod stalled".into()),
            },
            BackendInput::Resize { cols, rows } => {
                let size = TerminalSize {
                    width: cols,
                    height: rows,
                };
                match timeout(limit, resize.send(size)).await {
                    Ok(Ok(())) => {}
                    // The stream is ending; the output side reports why.
                    Ok(Err(_)) => {}
                    Err(_) => break InputEnd::Failed("resize to the pod stalled".into()),
                }
            }
            BackendInput::Terminate => break InputEnd::Terminated,
        }
    };
    if matches!(end, InputEnd::Terminated) {
        // Shutting the pipe down (not merely dropping it) makes kube-rs send the v5 close signal
        // for stdin (or close the WebSocket on v4).
        let _ = timeout(limit, stdin.shutdown()).await;
    }
    let _ = stop.send(end);
}

/// What the output side needs to explain a lost stream.
struct Ending {
    client: Client,
    settings: KubeSettings,
    pod: String,
}

type StatusFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Status>> + Send>>;

/// Pod → hub: output in order, then exactly one `Exited` or `Gone` (nothing after `Terminate`).
async fn pump_output(
    process: AttachedProcess,
    mut stdout: ReadHalf<SimplexStream>,
    mut status: StatusFuture,
    events: mpsc::Sender<BackendEvent>,
    mut stop: oneshot::Receiver<InputEnd>,
    input_task: JoinHandle<()>,
    ctx: Ending,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut final_status: Option<Option<Status>> = None;
    let outcome = loop {
        tokio::select! {
            // Order matters when several are ready: an exit status beats a stdin failure that
            // merely noticed the stream ending, and a stop beats more output.
            biased;
            // kube-rs resolves this when the status arrives or its stream task ends (also on
            // errors, where it does not shut the stdout pipe down). Output still in the pipe
            // is drained below, before the exit is reported.
            st = &mut status => {
                final_status = Some(st);
                break None;
            }
            end = &mut stop => break Some(end.unwrap_or(InputEnd::Terminated)),
            read = stdout.read(&mut buf) => match read {
                Ok(0) | Err(_) => break None,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    if events.send(BackendEvent::Output(chunk)).await.is_err() {
                        // The hub is gone; nobody is left to tell.
                        break Some(InputEnd::Terminated);
                    }
                }
            },
        }
    };

    match outcome {
        Some(InputEnd::Terminated) => {
            // Let the close signal reach the API server, then cut the stream.
            drop(stdout);
            let _ = timeout(TERMINATE_GRACE, process.join()).await;
        }
        Some(InputEnd::Failed(reason)) => {
            let _ = events.send(BackendEvent::Gone(reason)).await;
        }
        None => {
            // Output written before the status is still in the pipe: deliver it first. Without
            // a status the kube-rs task already ended and may not have closed the pipe, so only
            // what is already buffered is read. (Only reads are bounded: the hub is local.)
            let read_limit = match final_status {
                Some(None) => Duration::from_millis(100),
                _ => DRAIN_TIMEOUT,
            };
            let mut hub_listening = true;
            while let Ok(Ok(n)) = timeout(read_limit, stdout.read(&mut buf)).await {
                if n == 0 {
                    break;
                }
                let chunk = Bytes::copy_from_slice(&buf[..n]);
                if events.send(BackendEvent::Output(chunk)).await.is_err() {
                    hub_listening = false;
                    break;
                }
            }
            // A `Terminate` whose close signal ended the stream is a detach, not an exit.
            let terminated = matches!(stop.try_recv(), Ok(InputEnd::Terminated));
            if hub_listening && !terminated {
                let st = match final_status {
                    Some(st) => st,
                    None => timeout(DRAIN_TIMEOUT, status).await.unwrap_or(None),
                };
                let event = match st {
                    Some(st) => exit_event(&st),
                    None => BackendEvent::Gone(lost_reason(&ctx).await),
                };
                let _ = events.send(event).await;
            }
        }
    }
    input_task.abort();
}

/// Maps the stream's final `Status` to an exit code, or to `Gone` when it is not an exit.
fn exit_event(status: &Status) -> BackendEvent {
    if status.status.as_deref() == Some("Success") {
        return BackendEvent::Exited(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|causes| {
                causes
                    .iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
            })
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.trim().parse::<i32>().ok());
        if let Some(code) = code {
            return BackendEvent::Exited(code);
        }
    }
    let reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "Failure".into());
    BackendEvent::Gone(format!("pod stream failed: {reason}"))
}

/// Why a stream ended without a status: the pod is gone, or only the connection is.
async fn lost_reason(ctx: &Ending) -> String {
    match get_session(&ctx.client, &ctx.settings, &ctx.pod).await {
        Err(KubeError::NotFound(_)) => "pod deleted".into(),
        Ok(session) if session.phase != "Running" => {
            format!("pod is no longer running (phase {})", session.phase)
        }
        Ok(_) => "connection to the pod was lost".into(),
        Err(_) => "connection to the kubernetes API was lost".into(),
    }
}
