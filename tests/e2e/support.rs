//! Test support: real attachd processes on loopback ports they pick, known API tokens, an HTTP
//! client and WebSocket clients (a library client and a raw-socket one for framing cases).
//!
//! Over 500 lines: the harness every e2e file shares (processes, tokens, HTTP, a library and a raw
//! WebSocket client); a new kind of client goes into a module of its own.

#![allow(dead_code)]

use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream as TokioTcp;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every scope.
pub const ALL_SCOPES: &[&str] = &[
    "sessions:read",
    "sessions:write",
    "attach:observe",
    "attach:drive",
    "attach:moderate",
    "audit:read",
];

/// A test principal: secret, subject, tenant, scopes.
pub struct Tok {
    pub secret: &'static str,
    pub subject: &'static str,
    pub tenant: &'static str,
    pub scopes: &'static [&'static str],
    /// Display name configured for the token, if any.
    pub name: Option<&'static str>,
}

pub const ALICE: Tok = Tok {
    secret: "tok-alice-0123456789",
    subject: "alice",
    tenant: "acme",
    scopes: ALL_SCOPES,
    name: None,
};
pub const BOB: Tok = Tok {
    secret: "tok-bob-0123456789",
    subject: "bob",
    tenant: "acme",
    scopes: ALL_SCOPES,
    name: Some("Bob Builder"),
};
/// Read-only observer of acme.
pub const OLIVE: Tok = Tok {
    secret: "tok-olive-0123456789",
    subject: "olive",
    tenant: "acme",
    scopes: &["sessions:read", "attach:observe"],
    name: None,
};
/// Another tenant with every scope.
pub const MALLORY: Tok = Tok {
    secret: "tok-mallory-0123456789",
    subject: "mallory",
    tenant: "evil",
    scopes: ALL_SCOPES,
    name: None,
};
/// A driver of acme who may create sessions but not moderate them.
pub const DREW: Tok = Tok {
    secret: "tok-drew-0123456789",
    subject: "drew",
    tenant: "acme",
    scopes: &[
        "sessions:read",
        "sessions:write",
        "attach:observe",
        "attach:drive",
    ],
    name: None,
};
/// A moderator of acme.
pub const MOD: Tok = Tok {
    secret: "tok-mod-0123456789",
    subject: "moderator",
    tenant: "acme",
    scopes: &["sessions:read", "attach:moderate"],
    name: None,
};

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// The API and admin ports in attachd's "attachd listening" line (JSON or plain text: the
/// first loopback address of the `listen` and of the `admin` field).
pub fn listening_ports(logs: &str) -> Option<(u16, u16)> {
    let line = logs.lines().find(|l| l.contains("attachd listening"))?;
    let port_after = |key: &str| -> Option<u16> {
        let at = line
            .find(&format!("\"{key}\":"))
            .or_else(|| line.find(&format!(" {key}=")))?;
        let rest = &line[at..];
        let rest = &rest[rest.find("127.0.0.1:")? + "127.0.0.1:".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((port_after("listen")?, port_after("admin")?))
}

/// `attachd audit verify AUDIT [--recordings DIR]`: whether it succeeded, and its JSON report.
pub fn cli_verify(audit: &Path, recordings: Option<&Path>) -> (bool, Value) {
    let mut cmd = Command::new(bin());
    cmd.args(["audit", "verify"]).arg(audit);
    if let Some(d) = recordings {
        cmd.arg("--recordings").arg(d);
    }
    let out = cmd.output().expect("attachd audit verify");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.success(), report)
}

/// The attachd binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_attachd"))
}

pub fn tokens_toml() -> String {
    let mut s = String::new();
    for t in [&ALICE, &BOB, &OLIVE, &MALLORY, &MOD, &DREW] {
        let scopes: Vec<String> = t.scopes.iter().map(|s| format!("\"{s}\"")).collect();
        let name = t
            .name
            .map(|n| format!("name = \"{n}\"\n"))
            .unwrap_or_default();
        s.push_str(&format!(
            "[[auth.static_tokens]]\nsubject = \"{}\"\n{name}tenant = \"{}\"\nscopes = [{}]\nsha256 = \"{}\"\n\n",
            t.subject,
            t.tenant,
            scopes.join(", "),
            sha256_hex(t.secret)
        ));
    }
    s
}

/// A running attachd.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub extra_toml: String,
    pub tls: bool,
    /// The open-file limit (soft and hard) attachd runs under, when set.
    pub nofile: Option<u64>,
}

/// How to start a server.
#[derive(Default, Clone)]
pub struct Opts {
    /// `ATTACHD__...` overrides.
    pub env: Vec<(String, String)>,
    /// TOML appended to the generated config (top-level keys must come first: use sections).
    pub toml: String,
    /// Run with `--dev`.
    pub dev: bool,
    /// The listener speaks TLS (health is probed with openssl).
    pub tls: bool,
    /// Runs attachd with this open-file limit (soft and hard, so it cannot raise it).
    pub nofile: Option<u64>,
}

impl Opts {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
    /// The listener speaks TLS with this PEM certificate and key.
    pub fn tls_files(self, cert: &Path, key: &Path) -> Self {
        self.env("ATTACHD__SERVER__TLS_TERMINATED_UPSTREAM", "false")
            .env("ATTACHD__SERVER__TLS_CERT", cert.to_str().unwrap())
            .env("ATTACHD__SERVER__TLS_KEY", key.to_str().unwrap())
            .tls()
    }
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }
    pub fn toml(mut self, t: &str) -> Self {
        self.toml.push_str(t);
        self.toml.push('\n');
        self
    }
}

impl Server {
    /// Starts attachd (prod rules, TLS terminated upstream, test tokens) and waits for /healthz.
    pub fn start(opts: Opts) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        // Port 0: attachd binds free ports itself and names them in its "listening" line.
        let mut srv = Server {
            child: None,
            port: 0,
            admin_port: 0,
            dir,
            env: opts.env.clone(),
            extra_toml: opts.toml.clone(),
            tls: opts.tls,
            nofile: opts.nofile,
        };
        srv.spawn(opts.dev);
        srv
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("attachd.toml")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// `recording.dir`: `recordings/` beside the audit log, where `audit verify` looks.
    pub fn recordings_dir(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("attachd.log")
    }

    fn spawn(&mut self, dev: bool) {
        if let Err(logs) = self.try_spawn(dev) {
            panic!("{logs}");
        }
    }

    /// Starts attachd and waits until it is healthy; `Err` carries why not, with its logs.
    fn try_spawn(&mut self, dev: bool) -> Result<(), String> {
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"127.0.0.1:{}\"\ntls_terminated_upstream = true\nallowed_origins = [\"https://app.example.com\"]\n\n[audit]\npath = \"{}\"\n\n[recording]\ndir = \"{}\"\n\n{}\n{}",
            self.port,
            self.admin_port,
            self.audit_path().display(),
            self.recordings_dir().display(),
            tokens_toml(),
            self.extra_toml
        );
        std::fs::write(self.config_path(), toml).expect("write config");
        // This start's lines follow what earlier starts wrote to the same log.
        let log_start = std::fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let fsize = self
            .env
            .iter()
            .find(|(k, _)| k == "ATTACHD_TEST_FSIZE_KB")
            .map(|(_, v)| v.clone());
        let mut cmd = match fsize {
            // Ignore SIGXFSZ (inherited through exec) so writes past the limit fail with EFBIG.
            Some(kb) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("trap '' XFSZ; ulimit -f {kb}; exec \"$0\" \"$@\""))
                    .arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.arg("serve").arg("--config").arg(self.config_path());
        if dev {
            cmd.arg("--dev");
        }
        cmd.current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Tests attach often from one IP; the rate-limit tests set their own limit.
        cmd.env("ATTACHD__LIMITS__IP_ATTEMPTS", "100000");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            let lim = rustix::process::Rlimit {
                current: Some(n),
                maximum: Some(n),
            };
            // SAFETY: only setrlimit (a system call, async-signal-safe) runs in the child.
            unsafe {
                cmd.pre_exec(move || {
                    rustix::process::setrlimit(rustix::process::Resource::Nofile, lim)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn attachd");
        // Copy output from the test process, so limits set on attachd never apply to its log.
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let mut out = log.try_clone().expect("log");
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let _ = std::io::copy(&mut pipe, &mut out);
            });
        }
        self.child = Some(child);
        self.wait_healthy(log_start)
    }

    /// `Err` with the logs if attachd has exited.
    fn exited(&mut self) -> Result<(), String> {
        let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        else {
            return Ok(());
        };
        self.child = None;
        // The output threads may still be copying the last lines.
        std::thread::sleep(Duration::from_millis(100));
        Err(format!(
            "attachd exited early with {status}:\n{}",
            self.logs()
        ))
    }

    /// Waits for this start's "attachd listening" line (from `log_start` on) and takes the
    /// ports it names, then for /healthz.
    fn wait_healthy(&mut self, log_start: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.port == 0 || self.admin_port == 0 {
            self.exited()?;
            let logs = self.logs();
            if let Some((api, admin)) = logs.get(log_start..).and_then(listening_ports) {
                (self.port, self.admin_port) = (api, admin);
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("attachd never said where it listens:\n{logs}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        while Instant::now() < deadline {
            self.exited()?;
            if self.tls {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return Ok(());
                }
            } else if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ =
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("attachd did not become healthy:\n{}", self.logs()))
    }

    /// Restarts on the same ports and files.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(false);
    }

    /// Restarts after a SIGTERM drain (queued audit records are flushed first).
    pub fn restart_graceful(&mut self) {
        let st = self.terminate(Duration::from_secs(15));
        assert!(
            st.is_some_and(|s| s.success()),
            "attachd did not drain cleanly: {st:?}"
        );
        self.spawn(false);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn audit_text(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("audit.log"))
                })
                .collect();
            files.sort();
            for f in files {
                s.push_str(&std::fs::read_to_string(f).unwrap_or_default());
            }
        }
        s
    }

    /// Parsed audit records of the current file.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until an audit record matches.
    pub async fn wait_audit(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(r) = self.audit_records().into_iter().find(|r| pred(r)) {
                return r;
            }
            if Instant::now() > deadline {
                panic!("no audit record {what}; audit:\n{}", self.audit_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (90 s at most) until the metric `name` reaches `at_least`; returns its value.
    pub async fn wait_metric(&self, name: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let v = metric(&self.metrics().await, name);
            if v >= at_least {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stayed at {v} (< {at_least}) for 90 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Prometheus exposition of the admin listener.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.admin_port))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn api(&self, tok: &Tok) -> Api {
        Api {
            base: self.url(""),
            token: tok.secret.to_string(),
            http: reqwest::Client::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP API client with a bearer token.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

/// Reads a response into a `Resp`.
pub async fn read_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// An upgrade of `/api/v1/sessions/{sid}/attach` with a header ticket: status and body.
pub async fn ticket_upgrade(srv: &Server, sid: &str, ticket: &str) -> (u16, String) {
    let (st, _, body) = raw_upgrade(
        srv.addr(),
        &format!("/api/v1/sessions/{sid}/attach"),
        &[("Authorization", &format!("Bearer {ticket}"))],
    )
    .await;
    (st, body)
}

/// Status, headers and JSON body of a response.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn error_code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl Api {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        read_resp(rb.send().await.expect("request")).await
    }

    pub async fn create_session(&self) -> String {
        let r = self.call("POST", "/api/v1/sessions", Some(json!({}))).await;
        assert_eq!(r.status, 201, "create session: {}", r.text);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Status and text of a session creation.
    pub async fn create_session_status(&self) -> (u16, String) {
        let r = self.call("POST", "/api/v1/sessions", Some(json!({}))).await;
        (r.status, r.text)
    }

    pub async fn ticket(&self, sid: &str, role: &str) -> String {
        let r = self
            .call(
                "POST",
                &format!("/api/v1/sessions/{sid}/attach-tickets"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(r.status, 201, "ticket: {}", r.text);
        r.body["ticket"].as_str().expect("ticket").to_string()
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TokioTcp>>;

/// A WebSocket request with optional extra headers.
pub async fn ws_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().append(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                .expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("connect timed out")
}

/// Attaches with a header ticket and `attach.v1`.
pub async fn attach(srv: &Server, sid: &str, ticket: &str) -> Ws {
    let (ws, resp) = ws_connect(
        &srv.ws_url(&format!("/api/v1/sessions/{sid}/attach")),
        &[
            ("Authorization", &format!("Bearer {ticket}")),
            ("Sec-WebSocket-Protocol", "attach.v1"),
        ],
    )
    .await
    .expect("attach");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("attach.v1")
    );
    ws
}

/// Issues a ticket as `tok` and attaches with it.
pub async fn attach_as(srv: &Server, tok: &Tok, sid: &str, role: &str) -> Ws {
    let t = srv.api(tok).ticket(sid, role).await;
    attach(srv, sid, &t).await
}

/// What a client saw.
#[derive(Debug)]
pub enum Seen {
    Json(Value),
    Bin(Vec<u8>),
    Closed(Option<u16>),
}

/// Next frame within `secs`, passing over pings and pongs.
pub async fn next(ws: &mut Ws, secs: u64) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("no frame within {secs}s"),
            Ok(None) => return Seen::Closed(None),
            Ok(Some(Err(_))) => return Seen::Closed(None),
            Ok(Some(Ok(m))) => match m {
                Message::Text(t) => {
                    return Seen::Json(serde_json::from_str(t.as_str()).expect("json frame"))
                }
                Message::Binary(b) => return Seen::Bin(b.to_vec()),
                Message::Close(c) => return Seen::Closed(c.map(|c| u16::from(c.code))),
                _ => continue,
            },
        }
    }
}

/// Waits for a JSON frame of `ty`, collecting output meanwhile; returns it.
pub async fn expect_json(ws: &mut Ws, ty: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        match next(ws, left).await {
            Seen::Json(v) if v["type"] == ty => return v,
            Seen::Closed(c) => panic!("closed ({c:?}) while waiting for {ty}"),
            _ => {}
        }
        if Instant::now() > deadline {
            panic!("no {ty} frame within {secs}s");
        }
    }
}

/// Reads frames of type `ty` until one satisfies `want`, within `secs`; returns it and how
/// many frames of that type were read.
pub async fn expect_json_where(
    ws: &mut Ws,
    ty: &str,
    secs: u64,
    mut want: impl FnMut(&Value) -> bool,
) -> (Value, usize) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut frames = 0;
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        let v = expect_json(ws, ty, left).await;
        frames += 1;
        if want(&v) {
            return (v, frames);
        }
        assert!(
            Instant::now() <= deadline,
            "no matching {ty} frame within {secs}s"
        );
    }
}

/// Waits for a `control` frame with `reason`, passing over other control changes.
pub async fn expect_control(ws: &mut Ws, reason: &str, secs: u64) -> Value {
    expect_json_where(ws, "control", secs, |c| c["reason"] == reason)
        .await
        .0
}

/// Reads until the accumulated output contains `needle`; returns all output seen.
pub async fn expect_output(ws: &mut Ws, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "output never contained {needle:?}; got {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        match next(ws, left.as_secs().max(1)).await {
            Seen::Bin(b) => {
                let from = out.len().saturating_sub(needle.len());
                out.extend_from_slice(&b);
                // Search only the new bytes (plus an overlap): large outputs stay linear.
                if String::from_utf8_lossy(&out[from..]).contains(needle) {
                    return String::from_utf8_lossy(&out).into_owned();
                }
            }
            Seen::Closed(c) => panic!(
                "closed ({c:?}) before output {needle:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
            Seen::Json(_) => {}
        }
    }
}

/// Reads until the connection closes; returns the close code.
pub async fn expect_close(ws: &mut Ws, secs: u64) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("connection not closed within {secs}s");
        }
        if let Seen::Closed(c) = next(ws, left.as_secs().max(1)).await {
            return c;
        }
    }
}

pub async fn send_text(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

pub async fn send_bin(ws: &mut Ws, b: &[u8]) {
    ws.send(Message::binary(b.to_vec())).await.expect("send");
}

/// A plain-HTTP upgrade attempt; returns the status and body (for refusal cases).
pub async fn raw_upgrade(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TokioTcp::connect(addr).await.expect("connect");
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(idx) = text.find("\r\n\r\n") {
                    let head = &text[..idx];
                    if head.starts_with("HTTP/1.1 101") {
                        break;
                    }
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= idx + 4 + len {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

/// Runs a python3 helper script; fails with install advice when python3 is missing.
pub fn python3(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is required for this test (apt-get install python3): {e}")
        })
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl Server {
    /// SIGKILL: no drain, no cleanup.
    pub fn kill9(&mut self) {
        self.kill();
    }

    pub async fn ready_status(&self) -> (u16, Value) {
        let r = reqwest::get(self.url("/readyz")).await.expect("readyz");
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }
}

/// The Kubernetes API emulation (`kube-emu`): pods backed by real local processes. It emulates
/// the pod API and the exec/attach WebSocket subprotocols for tests; it is not Kubernetes.
pub struct KubeEmu {
    pub url: String,
    pub token: String,
    pub token_file: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl KubeEmu {
    /// Starts the emulator with `pods` as (name, tenant).
    pub fn start(pods: &[(&str, &str)]) -> KubeEmu {
        let specs: Vec<String> = pods
            .iter()
            .map(|(name, tenant)| format!("name={name},tenant={tenant}"))
            .collect();
        Self::start_specs(&specs)
    }

    /// Starts the emulator with pods given as kube-emu `--pod` specs
    /// (`name=N,tenant=T[,label=k=v]...`).
    pub fn start_specs(specs: &[String]) -> KubeEmu {
        let exe = bin().parent().expect("target dir").join("kube-emu");
        assert!(
            exe.exists(),
            "{} is missing: build it with `cargo build -p kube-emu` (make test does)",
            exe.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let token = "kube-emu-test-token".to_string();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, &token).expect("token file");
        let mut cmd = Command::new(exe);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            &token,
            "--namespace",
            "sandboxes",
        ]);
        for spec in specs {
            cmd.arg("--pod").arg(spec);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kube-emu");
        let mut out = child.stdout.take().expect("stdout");
        let mut first = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            first.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&first).into_owned();
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected kube-emu banner: {line:?}"))
            .trim()
            .to_string();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        KubeEmu {
            url,
            token,
            token_file,
            child: Some(child),
            _dir: dir,
        }
    }

    /// Deletes a pod through the emulated API.
    pub async fn delete_pod(&self, name: &str) {
        let r = reqwest::Client::new()
            .delete(format!(
                "{}/api/v1/namespaces/sandboxes/pods/{name}",
                self.url
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("delete pod");
        assert!(r.status().is_success(), "delete pod: {}", r.status());
    }

    /// attachd options for the kube backend against this emulator.
    pub fn opts(&self, mode: &str) -> Opts {
        Opts::default()
            .env("ATTACHD__SESSION__BACKEND", "kube")
            .env("ATTACHD__KUBE__API_URL", &self.url)
            .env(
                "ATTACHD__KUBE__TOKEN_FILE",
                self.token_file.to_str().unwrap(),
            )
            .env("ATTACHD__KUBE__NAMESPACE", "sandboxes")
            .env("ATTACHD__KUBE__MODE", mode)
    }
}

impl Drop for KubeEmu {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads each of `readers` to its end on a thread of its own, into one shared buffer.
pub fn collect(readers: Vec<Box<dyn Read + Send>>) -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for mut r in readers {
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
    out
}

/// A TCP forwarder that can be cut, to partition one replica from Redis.
pub struct CutProxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CutProxy {
    pub async fn start(upstream: u16) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let (c2, t2) = (cut.clone(), tasks.clone());
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if c2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let h = tokio::spawn(async move {
                    if let Ok(mut up) = TokioTcp::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                t2.lock().unwrap().push(h);
            }
        });
        CutProxy { port, cut, tasks }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Drops every forwarded connection; new ones are still forwarded.
    pub fn drop_connections(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Drops every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// The value of `name` (with its labels, if any) in a Prometheus exposition.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics:\n{text}"))
}
