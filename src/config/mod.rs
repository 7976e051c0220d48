//! Layered configuration: built-in defaults < `--config` file < `ATTACHD__SECTION__KEY`
//! environment. Validation refuses unsafe prod settings and names the offending key.
//!
//! One file per section (`server`, `auth`, ...): each holds the section's struct, its defaults
//! and its `validate()`, so a key is declared, defaulted and checked in one place.

mod attach;
mod audit;
mod auth;
mod base;
mod recording;
mod redis;
mod server;
mod session;
mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::backend::kube::{KubeMode, KubeSettings};
pub use attach::{AttachSettings, LimitSettings};
pub use audit::{AuditOnFailure, AuditSettings};
pub use auth::{AuthSettings, JwtIssuers, JwtSettings, StaticToken};
pub use base::{ConfigError, Env};
pub use recording::{RecordingModeSetting, RecordingSettings};
pub use redis::{RedisOnError, RedisSettings};
pub use server::{is_exact_origin, parse_net, ServerSettings};
pub use session::{BackendKind, LocalSettings, SessionSettings};
pub use ws::{FlowSettings, WsSettings};

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

const LIST_KEYS: &[&str] = &[
    "redis.sentinels",
    "redis.cluster_nodes",
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
        if let Some((key, problem)) = self.kube.problem() {
            return Err(ConfigError::new(key, problem));
        }
        self.recording.validate()?;
        self.attach.validate()?;
        self.limits.validate()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use bytesize::ByteSize;

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
        s.recording.retention = Duration::from_secs(60);
        s.server.max_connections = Some(0);
        assert_eq!(s.validate().unwrap_err().key, "server.max_connections");
        s.server.max_connections = Some(19_000);
        s.validate().unwrap();
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
