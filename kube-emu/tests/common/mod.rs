//! Test harness: starts the `kube-emu` binary on a free loopback port and builds kube-rs clients
//! for it; the process is killed when the handle drops.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bearer token every test emulator requires.
pub const TOKEN: &str = "test-token-not-a-secret";
/// Namespace of the declared pods.
pub const NS: &str = "sandbox";
/// Upper bound for anything a test waits on.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running emulator.
pub struct Emu {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Emu {
    /// Starts the emulator with the standard flags plus `extra`.
    pub fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emu"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
                "--namespace",
                NS,
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("KUBE_EMU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kube-emu");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }

    /// A kube-rs client for this emulator with `token`.
    pub fn client_with(&self, token: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("url"));
        config.auth_info.token = Some(token.to_owned().into());
        config.default_namespace = NS.into();
        kube::Client::try_from(config).expect("client")
    }

    /// A kube-rs client with the right token.
    pub fn client(&self) -> kube::Client {
        self.client_with(TOKEN)
    }

    /// `host:port` of the emulator.
    pub fn authority(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads from `reader` until the text seen so far contains `needle` (panics after `WAIT`).
pub async fn read_until<R: AsyncRead + Unpin>(reader: &mut R, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if String::from_utf8_lossy(&seen).contains(needle) {
            return String::from_utf8_lossy(&seen).into_owned();
        }
        let n = tokio::time::timeout_at(deadline, reader.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {needle:?}; got {:?}",
                    String::from_utf8_lossy(&seen)
                )
            })
            .expect("read");
        if n == 0 {
            panic!(
                "EOF before {needle:?}; got {:?}",
                String::from_utf8_lossy(&seen)
            );
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Reads everything until EOF (bounded by `WAIT`).
pub async fn read_to_end<R: AsyncRead + Unpin>(reader: &mut R) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, reader.read_to_end(&mut out))
        .await
        .expect("EOF in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}
