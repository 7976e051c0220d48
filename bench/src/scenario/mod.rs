//! Scenario dispatch and what scenarios share: sessions (attachd sessions or terminado
//! terminal names), the shell preparation for echo tests, and the common record fields.

mod crowd_flood;
mod echo;
mod fanout;
mod pty_echo;
mod ramp;
mod soak;
mod storm;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::api::Target;
use crate::cli::{Cli, Command, Proto};
use crate::client::{Conn, Event};
use crate::sys;

/// Runs the chosen scenario and returns its record.
pub async fn run(cli: &Cli, nofile: (u64, u64)) -> Result<Value> {
    let targets = cli
        .target
        .split(',')
        .map(|t| Target::new(t.trim(), &cli.token, 256))
        .collect::<Result<Vec<_>>>()?;
    let target = targets[0].clone();
    let before = cli.server_pid.and_then(sys::sample);
    let load_before = sys::loadavg();
    let pid = cli.server_pid;
    let deadline = Duration::from_secs(cli.deadline_secs);
    let (name, params, results) = match &cli.command {
        Command::ConnectStorm(a) => (
            "connect-storm",
            json!({"n": a.n, "concurrency": a.concurrency, "sessions": a.sessions, "replicas": targets.len()}),
            storm::run(&targets, cli.proto, a, pid, deadline).await?,
        ),
        Command::Echo(a) => (
            "echo",
            json!({"observers": a.observers, "samples": a.keys.samples, "warmup": a.keys.warmup, "gap_us": a.keys.gap_us, "observers_read_after": a.observers_read_after}),
            echo::run(&target, cli.proto, a, pid, deadline).await?,
        ),
        Command::Fanout(a) => (
            "fanout",
            json!({"observers": a.observers, "bytes": a.bytes}),
            fanout::run(&target, cli.proto, a, pid, deadline).await?,
        ),
        Command::PtyEcho(a) => (
            "pty-echo",
            json!({"samples": a.keys.samples, "warmup": a.keys.warmup, "gap_us": a.keys.gap_us}),
            pty_echo::run(a, deadline).await?,
        ),
        Command::Soak(a) => (
            "soak",
            json!({"connections": a.connections, "seconds": a.seconds, "per_session": a.per_session}),
            soak::run(&target, cli.proto, a, cli.server_pid, nofile, deadline).await?,
        ),
        Command::CrowdFlood(a) => (
            "crowd-flood",
            json!({"observers": a.observers, "bytes": a.bytes, "drive": a.drive || a.session.is_none(), "expect_observers": a.expect_observers}),
            crowd_flood::run(&target, cli.proto, a, pid, deadline).await?,
        ),
        Command::Summarize(_)
        | Command::FloorServer(_)
        | Command::Term(_)
        | Command::Recorder(_) => {
            unreachable!("handled before the runtime starts")
        }
    };
    let after = cli.server_pid.and_then(sys::sample);
    Ok(json!({
        "scenario": name,
        "label": cli.label.clone().unwrap_or_else(|| cli.proto.name().to_string()),
        "proto": cli.proto.name(),
        "params": params,
        "results": results,
        "server": sys::server_usage(before, after),
        "loadavg_1m": {"before": load_before, "after": sys::loadavg()},
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }))
}

static TERM_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new terminal to attach to: an attachd session, a fresh terminado terminal name, or
/// nothing for wetty (every wetty connection gets its own terminal).
pub async fn new_session(target: &Target, proto: Proto) -> Result<String> {
    match proto {
        Proto::Attachd => target.create_session().await,
        Proto::Terminado => Ok(format!(
            "b{}x{}",
            std::process::id(),
            TERM_SEQ.fetch_add(1, Ordering::Relaxed)
        )),
        Proto::Wetty | Proto::Floor => Ok(String::new()),
    }
}

/// Ends sessions this run created (attachd only; terminado terminals die with the server).
pub async fn end_sessions(target: &Target, proto: Proto, ids: &[String]) {
    if proto == Proto::Attachd {
        for id in ids {
            target.delete_session(id).await;
        }
    }
}

/// Reads output until it contains `needle` (bounded by `max`); returns whether it did.
pub async fn read_until(conn: &mut Conn, needle: &[u8], max: Duration) -> bool {
    let mut scan = crate::marker::Scanner::new(needle);
    let end = tokio::time::Instant::now() + max;
    loop {
        match tokio::time::timeout_at(end, conn.recv()).await {
            Ok(Event::Output(b)) => {
                if scan.feed(&b).is_some() {
                    return true;
                }
            }
            Ok(Event::Closed(_)) | Err(_) => return false,
        }
    }
}
