//! The HTTP side of attachd's API (create/delete sessions, issue attach tickets) and the
//! loopback-only guard every scenario passes through before it sends anything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::Url;
use serde_json::{json, Value};

use crate::cli::SourceArgs;

/// The server under test: its base URL, resolved loopback address and API client.
#[derive(Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// The resolved socket address (always loopback).
    pub addr: SocketAddr,
    /// `host:port` for the `Host` header.
    pub authority: String,
    token: String,
    http: reqwest::Client,
}

/// Refuses anything but loopback: benchmarks here never leave the machine.
pub fn loopback_addr(url: &Url) -> Result<SocketAddr> {
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("target has no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| anyhow!("target has no port"))?;
    let addrs: Vec<SocketAddr> = (host.trim_matches(|c| c == '[' || c == ']'), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .collect();
    let addr = addrs
        .iter()
        .copied()
        .find(|a| a.ip().is_ipv4())
        .or_else(|| addrs.first().copied())
        .ok_or_else(|| anyhow!("{host} does not resolve"))?;
    if !addr.ip().is_loopback() {
        bail!("refusing non-loopback target {addr}: benchmarks stay on 127.0.0.0/8");
    }
    Ok(addr)
}

impl Target {
    /// Parses and checks `--target`.
    pub fn new(base: &str, token: &str, pool: usize) -> Result<Self> {
        let url = Url::parse(base).with_context(|| format!("bad --target {base}"))?;
        if url.scheme() != "http" {
            bail!("--target must be plain http:// on loopback");
        }
        let addr = loopback_addr(&url)?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool.max(1))
            // Under the server's 5 s keep-alive: a pooled connection is never reused just as
            // the server closes it (that race reset one ticket request in a 10,000-observer ramp).
            .pool_idle_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        Ok(Target {
            base: base.trim_end_matches('/').to_string(),
            addr,
            authority: format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), addr.port()),
            token: token.to_string(),
            http,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.with_context(|| path.to_string())?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{path}: HTTP {} {}", status.as_u16(), error_code(&text));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /api/v1/sessions` → the new session id.
    pub async fn create_session(&self) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/api/v1/sessions",
                Some(json!({"name": "bench"})),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("session response without id"))
    }

    /// Opens the dashboard's event stream (with thumbnails), as an open dashboard page does.
    /// Its own client: the stream outlives the API client's request timeout.
    pub async fn dashboard_stream(&self) -> Result<reqwest::Response> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        let resp = http
            .get(format!(
                "{}/api/v1/dashboard/events?thumbnails=true",
                self.base
            ))
            .bearer_auth(&self.token)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .context("dashboard stream")?;
        if !resp.status().is_success() {
            bail!("dashboard stream: HTTP {}", resp.status().as_u16());
        }
        Ok(resp)
    }

    /// `DELETE /api/v1/sessions/{id}` (best effort).
    pub async fn delete_session(&self, id: &str) {
        let _ = self
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/sessions/{id}"),
                None,
            )
            .await;
    }

    /// `POST /api/v1/sessions/{id}/attach-tickets` → the ticket secret.
    pub async fn ticket(&self, session: &str, role: &str) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/sessions/{session}/attach-tickets"),
                Some(json!({"role": role, "delivery": "body"})),
            )
            .await?;
        v["ticket"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("ticket response without ticket"))
    }
}

/// The `error` code of a JSON error body, or the start of the body.
fn error_code(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(80).collect())
}

/// Connections per source address when `--sources 0`.
const PER_SOURCE: usize = 4000;

impl SourceArgs {
    /// The source addresses for `connections` connections (`--sources 0`: one per 4000).
    pub fn addrs(&self, connections: usize) -> Vec<Option<IpAddr>> {
        match self.sources {
            0 => source_addrs(self.source_base, connections.div_ceil(PER_SOURCE)),
            n => source_addrs(self.source_base, n),
        }
    }
}

/// Source addresses `127.0.0.2 ..` for spreading many connections (none = kernel's choice).
fn source_addrs(first: usize, n: usize) -> Vec<Option<IpAddr>> {
    if n == 0 {
        return vec![None];
    }
    (first..first + n)
        .map(|i| {
            Some(IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                (i / 250) as u8,
                2 + (i % 250) as u8,
            )))
        })
        .collect()
}
