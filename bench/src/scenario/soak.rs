//! `soak`: C observers (spread over sessions and source addresses) held idle for T seconds;
//! server RSS per connection from VmRSS deltas, idle CPU from utime+stime, optionally a drain.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::ramp::{self, Plan};
use crate::api::Target;
use crate::cli::{Proto, SoakArgs};
use crate::client::{Conn, Event};
use crate::stats::{round1, round_to};
use crate::sys::{self, ProcSample};

fn kib_per(a: Option<ProcSample>, b: Option<ProcSample>, n: usize) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if n > 0 => {
            json!(round1((b.rss_kib as f64 - a.rss_kib as f64) / n as f64))
        }
        _ => Value::Null,
    }
}

/// Runs the soak.
pub async fn run(
    target: &Target,
    proto: Proto,
    a: &SoakArgs,
    pid: Option<u32>,
    nofile: (u64, u64),
    deadline: Duration,
) -> Result<Value> {
    let end_at = Instant::now() + deadline;
    let sample = || pid.and_then(sys::sample);
    let sources = a.sources.addrs(a.connections);
    let rss_start = sample();
    let mut sessions = Vec::new();
    if proto.shares_terminals() {
        for _ in 0..a.connections.div_ceil(a.per_session.max(1)) {
            sessions.push(
                super::new_session(target, proto)
                    .await
                    .context("create session")?,
            );
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_sessions = sample();

    let (stop_tx, stop_rx) = watch::channel(false);
    let per_session = a.per_session.max(1);
    let plan = Plan {
        n: a.connections,
        concurrency: a.concurrency,
        sources: &sources,
    };
    let session = |i: usize| match sessions.len() {
        0 => String::new(),
        n => sessions[i / per_session % n].clone(),
    };
    let ramp = ramp::observers(target, proto, plan, session, end_at, move |conn| {
        idle(conn, stop_rx.clone())
    })
    .await;
    let (readers, connected, errors, ramp_secs) =
        (ramp.tasks, ramp.connected, ramp.errors, ramp.secs);
    // Joins fan out participant notices: let them settle before the idle period.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hold_start = sample();
    let hold = Duration::from_secs(a.seconds).min(end_at.saturating_duration_since(Instant::now()));
    tokio::time::sleep(hold).await;
    let hold_end = sample();

    let mut closed_early = Value::Null;
    let mut drain = Value::Null;
    let mut rss_after = None;
    if a.sigterm {
        drain = drain_by_sigterm(pid, readers).await;
    } else {
        let _ = stop_tx.send(true);
        let mut n = 0usize;
        for r in readers {
            if let Ok(Some(Some(_))) = r.await {
                n += 1;
            }
        }
        closed_early = json!(n);
        super::end_sessions(target, proto, &sessions).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss_after = sample();
    }
    drop(stop_tx);

    let server_nofile = pid.and_then(sys::nofile_of);
    let needed = a.connections as u64 + 2 * sessions.len() as u64 + 1024;
    let idle_cpu = match (hold_start, hold_end) {
        (Some(x), Some(y)) => json!(round_to(sys::cpu_percent(&x, &y), 2)),
        _ => Value::Null,
    };
    let mut err_kinds: Vec<String> = errors.iter().take(5).cloned().collect();
    err_kinds.dedup();
    Ok(json!({
        "connected": connected,
        "failed": errors.len(),
        "errors": err_kinds,
        "closed_during_hold": closed_early,
        "drain": drain,
        "sessions": sessions.len(),
        "source_addrs": sources.len(),
        "ramp_seconds": round1(ramp_secs),
        "ramp_attaches_per_sec": round1(connected as f64 / ramp_secs.max(1e-9)),
        "hold_seconds": hold.as_secs(),
        "rss_kib": {
            "start": rss_start.map(|s| s.rss_kib),
            "with_sessions": rss_sessions.map(|s| s.rss_kib),
            "held": hold_end.map(|s| s.rss_kib),
            "after_close": rss_after.map(|s| s.rss_kib),
        },
        "rss_kib_per_conn": kib_per(rss_sessions, hold_end, connected),
        "rss_kib_per_conn_incl_sessions": kib_per(rss_start, hold_end, connected),
        "idle_cpu_percent": idle_cpu,
        "client_nofile": nofile.0,
        "server_nofile": server_nofile,
        "server_nofile_needed": needed,
    }))
}

/// An idle observer: reads until `stop` (then closes; `None`) or the server closes it
/// (`Some(code)`).
async fn idle(mut conn: Conn, mut stop: watch::Receiver<bool>) -> Option<Option<u16>> {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            ev = conn.recv() => if let Event::Closed(code) = ev {
                return Some(code);
            },
        }
    }
    conn.close_fast().await;
    None
}

/// SIGTERMs the server while every connection is held: how long until each got its close, and
/// until the process exited; the close codes seen.
async fn drain_by_sigterm(
    pid: Option<u32>,
    readers: Vec<tokio::task::JoinHandle<Option<Option<Option<u16>>>>>,
) -> Value {
    let Some(pid) = pid else {
        return json!({"error": "--sigterm needs --server-pid"});
    };
    let t0 = Instant::now();
    // SAFETY: kill(2) with a pid and a signal number has no memory effects.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for r in readers {
        let key = match r.await {
            Ok(Some(Some(Some(c)))) => c.to_string(),
            Ok(Some(Some(None))) => "no close frame".into(),
            Ok(Some(None)) => "closed by the client".into(),
            _ => continue,
        };
        *codes.entry(key).or_default() += 1;
    }
    let all_closed = t0.elapsed();
    while t0.elapsed() < Duration::from_secs(120) && sys::running(pid) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    json!({
        "all_closed_secs": round_to(all_closed.as_secs_f64(), 2),
        "exited_secs": (!sys::running(pid)).then(|| round_to(t0.elapsed().as_secs_f64(), 2)),
        "close_codes": codes,
    })
}
