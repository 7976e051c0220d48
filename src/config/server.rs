//! `server.*`: listeners, origins, TLS, request deadlines and the web client's directory.
//! Address lists take CIDRs or bare addresses (one host each).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::base::{nonzero, ConfigError};

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
    /// Client connections (HTTP and WebSocket) past which attaches get 503 `at_capacity`;
    /// none = the open-file limit less a reserve (`capacity::default_max`).
    pub max_connections: Option<usize>,
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
            max_connections: None,
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

impl ServerSettings {
    /// Origins are exact, TLS is complete (and required in prod), test-only endpoints stay out
    /// of prod.
    pub(super) fn validate(&self, prod: bool) -> Result<(), ConfigError> {
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
        if self.max_connections == Some(0) {
            return Err(ConfigError::new(
                "server.max_connections",
                "must be at least 1 (leave it out for the open-file limit less a reserve)",
            ));
        }
        nonzero("server.handshake_timeout", self.handshake_timeout)
    }
}
