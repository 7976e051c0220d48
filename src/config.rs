//! Layered configuration: built-in defaults < `--config` file < `ATTACHD__SECTION__KEY`
//! environment. Validation refuses unsafe prod settings and names the offending key.
//!
//! Over 500 lines on purpose: each section's struct, its defaults and its `validate()` sit in
//! this one file, so a key is declared, defaulted and checked in one place (SPEC §1's table).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::scope::Scope;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The dotted key at fault (e.g. `server.tls_cert`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    /// Strict defaults.
    #[default]
    Prod,
    /// Relaxed, for a developer's machine.
    Dev,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `prod` or `dev`.
    pub env: Env,
    /// Listeners, origins, TLS, timeouts.
    pub server: ServerSettings,
    /// Optional shared state.
    pub redis: RedisSettings,
    /// API credentials.
    pub auth: AuthSettings,
    /// Tickets and control.
    pub attach: AttachSettings,
    /// Admission limits.
    pub limits: LimitSettings,
    /// WebSocket limits and timers.
    pub ws: WsSettings,
    /// Sessions and backends.
    pub session: SessionSettings,
    /// The Kubernetes backend.
    pub kube: KubeSettings,
    /// The audit log.
    pub audit: AuditSettings,
    /// Flow control (SPEC §8).
    pub flow: FlowSettings,
    /// Session recording (SPEC §9).
    pub recording: RecordingSettings,
}

/// `flow.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowSettings {
    /// The holder's unacknowledged output beyond which the backend is not read; an observer's
    /// backlog beyond which it is resynced.
    pub window_bytes: usize,
    /// How long observers' output is gathered before it is sent (the holder's is sent at once).
    #[serde(with = "humantime_serde")]
    pub observer_flush: Duration,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            window_bytes: 1_048_576,
            observer_flush: Duration::from_millis(16),
        }
    }
}

/// `server.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// API and attach listener (`:0` picks a free port, named in the "listening" log line).
    pub listen: SocketAddr,
    /// Metrics listener.
    pub admin_listen: SocketAddr,
    /// Exact browser origins allowed to attach.
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is honoured: CIDRs, or bare addresses (one host each).
    #[serde(deserialize_with = "nets_or_hosts")]
    pub trusted_proxies: Vec<IpNet>,
    /// PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// TLS is terminated by a proxy in front (explicit opt-out of TLS in prod).
    pub tls_terminated_upstream: bool,
    /// Deadline for a complete request head.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Deadline for draining on SIGTERM.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Directory of the built browser client.
    pub web_root: PathBuf,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Mounts `/__conformance/echo` for frame-level tests; refused in prod.
    pub conformance_echo: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080),
            admin_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_terminated_upstream: false,
            handshake_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            web_root: PathBuf::from("web/dist"),
            max_body_bytes: 64 * 1024,
            conformance_echo: false,
        }
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare address, which means that single host.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR"))
}

fn nets_or_hosts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_net(s).map_err(serde::de::Error::custom))
        .collect()
}

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedisOnError {
    /// Fall back to per-replica limits.
    #[default]
    Local,
    /// Refuse attaches.
    Deny,
    /// Admit without limits.
    Allow,
}

/// `redis.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; none = per-process state.
    pub url: Option<String>,
    /// Outage policy.
    pub on_error: RedisOnError,
    /// Prefix of every key.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            on_error: RedisOnError::Local,
            key_prefix: "attachd:".into(),
        }
    }
}

/// One static API token: only the SHA-256 of its secret is configured.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    /// Principal subject.
    pub subject: String,
    /// Display name shown to other participants (optional).
    #[serde(default)]
    pub name: Option<String>,
    /// Principal tenant.
    pub tenant: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Lowercase hex SHA-256 of the secret.
    pub sha256: String,
}

/// `auth.jwt`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// HS256 shared secret file.
    pub hs256_secret_file: Option<PathBuf>,
    /// RS256 or EdDSA public key (PEM) file.
    pub public_key_file: Option<PathBuf>,
}

/// `auth.*`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Static hashed tokens.
    pub static_tokens: Vec<StaticToken>,
    /// JWT verification.
    pub jwt: Option<JwtSettings>,
}

/// `attach.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachSettings {
    /// Ticket lifetime.
    #[serde(with = "humantime_serde")]
    pub ticket_ttl: Duration,
    /// How long a disconnected driver's seat is kept for its subject.
    #[serde(with = "humantime_serde")]
    pub control_grace: Duration,
    /// Control expires after this long without stdin.
    #[serde(with = "humantime_serde")]
    pub driver_idle_timeout: Duration,
    /// A control lease not renewed for this long is lost (a partitioned holder stops writing).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How long a driver's request for control waits for the holder's answer.
    #[serde(with = "humantime_serde")]
    pub control_request_ttl: Duration,
}

impl Default for AttachSettings {
    fn default() -> Self {
        AttachSettings {
            ticket_ttl: Duration::from_secs(30),
            control_grace: Duration::from_secs(10),
            driver_idle_timeout: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(15),
            control_request_ttl: Duration::from_secs(30),
        }
    }
}

/// `limits.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Attach attempts per client IP per window.
    pub ip_attempts: u32,
    /// The sliding window.
    #[serde(with = "humantime_serde")]
    pub ip_window: Duration,
    /// Concurrent connections per subject.
    pub subject_connections: u32,
    /// Concurrent participants per session.
    pub session_participants: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            ip_attempts: 10,
            ip_window: Duration::from_secs(60),
            subject_connections: 5,
            session_participants: 50,
        }
    }
}

/// `ws.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsSettings {
    /// Largest inbound message (after reassembly).
    pub max_message_bytes: usize,
    /// Largest outbound backlog before 4003.
    pub max_outbound_bytes: usize,
    /// Server ping period.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// Silence before 4001.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Age before 4002.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    /// Malformed/forbidden messages before 1008.
    pub max_invalid_messages: u32,
    /// stdin messages per second.
    pub stdin_messages_per_sec: u32,
    /// stdin bytes per second.
    pub stdin_bytes_per_sec: u64,
    /// No progress (no ack and no socket write) for this long → 4003 (SPEC §8).
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            max_message_bytes: 1_048_576,
            max_outbound_bytes: 1_048_576,
            ping_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(8 * 3600),
            max_invalid_messages: 10,
            stdin_messages_per_sec: 500,
            stdin_bytes_per_sec: 1_048_576,
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// Which backend runs sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A PTY on this host.
    #[default]
    Local,
    /// Pods through the Kubernetes API.
    Kube,
}

/// `session.local.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// Default argv of a created session.
    pub command: Vec<String>,
    /// Further argv lists a caller may ask for.
    pub allowed_commands: Vec<Vec<String>>,
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            command: vec!["/bin/sh".into()],
            allowed_commands: Vec::new(),
        }
    }
}

/// `session.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// `local` or `kube`.
    pub backend: BackendKind,
    /// Local PTY settings.
    pub local: LocalSettings,
    /// No stdin and no output for this long → 4000.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Retired (SPEC §8): accepted with a startup warning; see `history_lines`, `replay_bytes`.
    pub scrollback_bytes: Option<usize>,
    /// Lines of history the terminal state keeps above the screen.
    pub history_lines: usize,
    /// Output kept for exact resumes (`resume_from`).
    pub replay_bytes: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            backend: BackendKind::Local,
            local: LocalSettings::default(),
            idle_timeout: Duration::from_secs(30 * 60),
            scrollback_bytes: None,
            history_lines: attachd_actors::term::DEFAULT_HISTORY_LINES,
            replay_bytes: attachd_actors::ring::DEFAULT_REPLAY_BYTES,
        }
    }
}

/// `kube.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KubeModeSetting {
    /// Share the container's TTY.
    #[default]
    Attach,
    /// Run `kube.command` in the container.
    Exec,
}

/// `kube.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// Namespace of the sandbox pods.
    pub namespace: String,
    /// Which pods are sessions.
    pub label_selector: String,
    /// Container to attach to (default: the pod's first).
    pub container: Option<String>,
    /// argv for `exec` mode.
    pub command: Vec<String>,
    /// `attach` or `exec`.
    pub mode: KubeModeSetting,
    /// Pod label that carries the tenant.
    pub tenant_label: String,
    /// API server URL; none = in-cluster config or kubeconfig.
    pub api_url: Option<String>,
    /// File holding the bearer token for `api_url`.
    pub token_file: Option<PathBuf>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            namespace: "sandboxes".into(),
            label_selector: "app.kubernetes.io/part-of=sandbox".into(),
            container: None,
            command: vec!["/bin/sh".into()],
            mode: KubeModeSetting::Attach,
            tenant_label: "attachd.dev/tenant".into(),
            api_url: None,
            token_file: None,
        }
    }
}

/// `audit.on_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOnFailure {
    /// Refuse tickets and attaches while the log cannot be written.
    Deny,
    /// Keep serving; the failure is still surfaced.
    Log,
}

/// `audit.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// The current log file.
    pub path: PathBuf,
    /// Rotation size.
    pub max_file_bytes: ByteSize,
    /// Failure policy; default `deny` in prod and `log` in dev.
    pub on_failure: Option<AuditOnFailure>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            path: PathBuf::from("./data/audit.log"),
            max_file_bytes: ByteSize::mib(64),
            on_failure: None,
        }
    }
}

impl AuditSettings {
    /// The effective failure policy.
    pub fn policy(&self, env: Env) -> AuditOnFailure {
        self.on_failure.unwrap_or(match env {
            Env::Prod => AuditOnFailure::Deny,
            Env::Dev => AuditOnFailure::Log,
        })
    }
}

/// `recording.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RecordingModeSetting {
    /// Nothing is recorded.
    #[serde(rename = "off")]
    Off,
    /// Output, sizes and markers.
    #[serde(rename = "output")]
    Output,
    /// Output and input.
    #[serde(rename = "output+input")]
    OutputInput,
}

/// `recording.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// `off`, `output` (the default) or `output+input`.
    pub mode: RecordingModeSetting,
    /// Where recordings live: `<dir>/<tenant>/<session>/<file>.cast`.
    pub dir: PathBuf,
    /// A file that reaches this size is closed and the next one begun.
    pub max_file_bytes: ByteSize,
    /// Recordings older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Failure policy (`deny` or `log`); default `deny` in prod and `log` in dev.
    pub on_failure: Option<AuditOnFailure>,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            mode: RecordingModeSetting::Output,
            dir: PathBuf::from("./data/recordings/"),
            max_file_bytes: ByteSize::mib(64),
            retention: Duration::from_secs(30 * 24 * 3600),
            on_failure: None,
        }
    }
}

impl RecordingSettings {
    /// The effective failure policy.
    pub fn policy(&self, env: Env) -> AuditOnFailure {
        self.on_failure.unwrap_or(match env {
            Env::Prod => AuditOnFailure::Deny,
            Env::Dev => AuditOnFailure::Log,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::new("recording.dir", "must not be empty"));
        }
        if self.max_file_bytes.as_u64() < 1024 {
            return Err(ConfigError::new(
                "recording.max_file_bytes",
                "must be at least 1 KiB",
            ));
        }
        nonzero("recording.retention", self.retention)
    }
}

const LIST_KEYS: &[&str] = &[
    "server.allowed_origins",
    "server.trusted_proxies",
    "session.local.command",
    "kube.command",
];

/// Where dev mode listens unless `server.listen` is set.
pub const DEV_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Loads defaults, then `file`, then the environment. `dev` makes the embedded default the base.
pub fn load(file: Option<&Path>, dev: bool) -> Result<Settings, ConfigError> {
    let mut b = config::Config::builder();
    if dev {
        b = b
            .set_default("env", "dev")
            .map_err(|e| ConfigError::new("env", e.to_string()))?;
    }
    if let Some(f) = file {
        if !f.exists() {
            return Err(ConfigError::new(
                "--config",
                format!("{} does not exist", f.display()),
            ));
        }
        b = b.add_source(config::File::from(f.to_path_buf()).format(config::FileFormat::Toml));
    }
    let mut envsrc = config::Environment::with_prefix("ATTACHD")
        .prefix_separator("__")
        .separator("__")
        .list_separator(",")
        .try_parsing(true);
    for k in LIST_KEYS {
        envsrc = envsrc.with_list_parse_key(k);
    }
    b = b.add_source(envsrc);
    let cfg = b.build().map_err(from_config_error)?;
    let explicit_listen = cfg.get_string("server.listen").is_ok();
    let mut settings: Settings = cfg.try_deserialize().map_err(from_config_error)?;
    // Dev (by `--dev` or `env = "dev"`) binds loopback unless the listener is set explicitly.
    if settings.is_dev() && !explicit_listen {
        settings.server.listen = DEV_LISTEN;
    }
    Ok(settings)
}

fn from_config_error(e: config::ConfigError) -> ConfigError {
    let text = e.to_string();
    // The config crate names the key in its message ("... for key `server.listen`").
    let key = text
        .split("key `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap_or("config")
        .to_string();
    ConfigError::new(&key, text)
}

/// Checks an origin is exact: `scheme://host[:port]`, nothing more.
pub fn is_exact_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    if scheme != "https" && scheme != "http" {
        return false;
    }
    !rest.is_empty()
        && !rest.contains(['/', '*', '?', '#', '@', ' '])
        && rest == rest.to_ascii_lowercase()
}

impl Settings {
    /// Whether this is a dev configuration.
    pub fn is_dev(&self) -> bool {
        self.env == Env::Dev
    }

    /// Rejects unsafe or inconsistent settings, naming the key: each section checks itself.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let prod = self.env == Env::Prod;
        self.server.validate(prod)?;
        self.auth.validate(prod)?;
        self.redis.validate()?;
        self.session.validate()?;
        self.ws.validate()?;
        self.flow.validate()?;
        self.kube.validate()?;
        self.recording.validate()?;
        nonzero("attach.ticket_ttl", self.attach.ticket_ttl)?;
        nonzero("attach.lease_ttl", self.attach.lease_ttl)?;
        nonzero("limits.ip_window", self.limits.ip_window)
    }

    /// Effective browser origins: the allowlist, plus localhost of the API's bound port in dev.
    pub fn effective_origins(&self, api_port: u16) -> Vec<String> {
        let mut v = self.server.allowed_origins.clone();
        if self.is_dev() {
            for host in ["127.0.0.1", "localhost"] {
                for scheme in ["http", "https"] {
                    v.push(format!("{scheme}://{host}:{api_port}"));
                }
            }
        }
        v
    }

    /// Whether a peer address is a trusted proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.server.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

fn nonzero(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::new(key, "must be greater than zero"));
    }
    Ok(())
}

fn at_least(key: &str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(key, format!("must be at least {min}")));
    }
    Ok(())
}

impl ServerSettings {
    /// Origins are exact, TLS is complete (and required in prod), test-only endpoints stay out
    /// of prod.
    fn validate(&self, prod: bool) -> Result<(), ConfigError> {
        for o in &self.allowed_origins {
            if !is_exact_origin(o) {
                return Err(ConfigError::new(
                    "server.allowed_origins",
                    format!("{o:?} is not an exact origin like https://app.example.com (no wildcards, paths or upper case)"),
                ));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "server.tls_key",
                    "server.tls_cert is set but server.tls_key is not",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "server.tls_cert",
                    "server.tls_key is set but server.tls_cert is not",
                ))
            }
            _ => {}
        }
        if prod && self.tls_cert.is_none() && !self.tls_terminated_upstream {
            return Err(ConfigError::new(
                "server.tls_cert",
                "TLS is required in prod: set server.tls_cert and server.tls_key, or set server.tls_terminated_upstream = true when a proxy terminates TLS",
            ));
        }
        if prod && self.conformance_echo {
            return Err(ConfigError::new(
                "server.conformance_echo",
                "the conformance echo endpoint is for tests only and cannot run in prod",
            ));
        }
        nonzero("server.handshake_timeout", self.handshake_timeout)
    }
}

impl AuthSettings {
    /// Static tokens are digests with known scopes (never the wildcard); JWT has one key; prod
    /// has credentials at all.
    fn validate(&self, prod: bool) -> Result<(), ConfigError> {
        for (i, t) in self.static_tokens.iter().enumerate() {
            let key = format!("auth.static_tokens[{i}]");
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new(
                    &format!("{key}.sha256"),
                    "must be the 64-character hex SHA-256 of the secret (see `attachd token new`)",
                ));
            }
            if t.subject.trim().is_empty() || t.tenant.trim().is_empty() {
                return Err(ConfigError::new(
                    &key,
                    "subject and tenant must not be empty",
                ));
            }
            for s in &t.scopes {
                if s == "*" {
                    return Err(ConfigError::new(
                        &format!("{key}.scopes"),
                        "the wildcard scope exists only for the dev bootstrap token",
                    ));
                }
                if Scope::parse(s).is_none() {
                    return Err(ConfigError::new(
                        &format!("{key}.scopes"),
                        format!("unknown scope {s:?}; known scopes: {}", Scope::names()),
                    ));
                }
            }
        }
        if let Some(j) = &self.jwt {
            match (&j.hs256_secret_file, &j.public_key_file) {
                (None, None) | (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        "auth.jwt",
                        "set exactly one of hs256_secret_file and public_key_file",
                    ))
                }
                _ => {}
            }
        }
        if prod && self.static_tokens.is_empty() && self.jwt.is_none() {
            return Err(ConfigError::new(
                "auth.static_tokens",
                "prod needs API credentials: configure auth.static_tokens or auth.jwt",
            ));
        }
        Ok(())
    }
}

impl RedisSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "redis.url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        Ok(())
    }
}

impl SessionSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.local.command.is_empty() {
            return Err(ConfigError::new(
                "session.local.command",
                "must not be empty",
            ));
        }
        nonzero("session.idle_timeout", self.idle_timeout)?;
        at_least("session.replay_bytes", self.replay_bytes, 64 * 1024)
    }
}

impl WsSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_timeout < self.ping_interval {
            return Err(ConfigError::new(
                "ws.heartbeat_timeout",
                "must be at least ws.ping_interval",
            ));
        }
        nonzero("ws.ping_interval", self.ping_interval)?;
        nonzero("ws.max_lifetime", self.max_lifetime)?;
        nonzero("ws.stall_timeout", self.stall_timeout)?;
        at_least("ws.max_message_bytes", self.max_message_bytes, 1024)?;
        at_least("ws.max_outbound_bytes", self.max_outbound_bytes, 16 * 1024)
    }
}

impl FlowSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        at_least("flow.window_bytes", self.window_bytes, 16 * 1024)?;
        if self.observer_flush > Duration::from_secs(1) {
            return Err(ConfigError::new(
                "flow.observer_flush",
                "must be at most 1s",
            ));
        }
        Ok(())
    }
}

impl KubeSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == KubeModeSetting::Exec && self.command.is_empty() {
            return Err(ConfigError::new(
                "kube.command",
                "exec mode needs a command",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_only() {
        assert!(is_exact_origin("https://app.example.com"));
        assert!(is_exact_origin("http://127.0.0.1:8080"));
        assert!(!is_exact_origin("https://*.example.com"));
        assert!(!is_exact_origin("https://app.example.com/"));
        assert!(!is_exact_origin("app.example.com"));
        assert!(!is_exact_origin("*"));
    }

    #[test]
    fn bare_addresses_are_single_hosts() {
        assert_eq!(parse_net("127.0.0.1"), Ok("127.0.0.1/32".parse().unwrap()));
        assert_eq!(parse_net("::1"), Ok("::1/128".parse().unwrap()));
        assert_eq!(parse_net("10.0.0.0/8"), Ok("10.0.0.0/8".parse().unwrap()));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.com").is_err());
    }

    #[test]
    fn listeners_are_socket_addresses_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("attachd.toml");
        std::fs::write(&file, "[server]\nlisten = \"localhost:8080\"\n").unwrap();
        assert_eq!(load(Some(&file), false).unwrap_err().key, "server.listen");
        std::fs::write(&file, "[server]\nadmin_listen = \"127.0.0.1:0\"\n").unwrap();
        let s = load(Some(&file), true).unwrap();
        assert_eq!(s.server.admin_listen.port(), 0);
        assert_eq!(
            s.server.listen, DEV_LISTEN,
            "dev binds loopback unless listen is set"
        );
    }

    #[test]
    fn each_section_names_its_own_key() {
        let mut s = Settings {
            env: Env::Dev,
            ..Settings::default()
        };
        s.validate().unwrap();
        s.ws.heartbeat_timeout = s.ws.ping_interval / 2;
        assert_eq!(s.validate().unwrap_err().key, "ws.heartbeat_timeout");
        let mut s = Settings {
            env: Env::Dev,
            ..Settings::default()
        };
        s.flow.window_bytes = 1;
        assert_eq!(s.validate().unwrap_err().key, "flow.window_bytes");
        s.flow.window_bytes = 1 << 20;
        s.attach.lease_ttl = Duration::ZERO;
        assert_eq!(s.validate().unwrap_err().key, "attach.lease_ttl");
        s.attach.lease_ttl = Duration::from_secs(1);
        s.recording.max_file_bytes = ByteSize::b(10);
        assert_eq!(s.validate().unwrap_err().key, "recording.max_file_bytes");
        s.recording.max_file_bytes = ByteSize::mib(1);
        s.recording.retention = Duration::ZERO;
        assert_eq!(s.validate().unwrap_err().key, "recording.retention");
    }

    #[test]
    fn recording_mode_and_policy_parse_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("attachd.toml");
        std::fs::write(
            &file,
            "[recording]\nmode = \"output+input\"\nmax_file_bytes = \"2 MiB\"\nretention = \"7d\"\n",
        )
        .unwrap();
        let s = load(Some(&file), true).unwrap();
        assert_eq!(s.recording.mode, RecordingModeSetting::OutputInput);
        assert_eq!(s.recording.max_file_bytes, ByteSize::mib(2));
        assert_eq!(s.recording.policy(Env::Dev), AuditOnFailure::Log);
        assert_eq!(
            Settings::default().recording.policy(Env::Prod),
            AuditOnFailure::Deny
        );
        std::fs::write(&file, "[recording]\nmode = \"all\"\n").unwrap();
        assert!(load(Some(&file), true).is_err());
    }

    #[test]
    fn prod_without_tls_names_the_key() {
        let s = Settings::default();
        let e = s.validate().unwrap_err();
        assert_eq!(e.key, "server.tls_cert");
    }
}
