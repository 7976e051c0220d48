//! `connect-storm`: N complete attaches (ticket POST + upgrade + first `hello`) by C workers;
//! attaches per second and latency percentiles, with the time split by step.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::api::Target;
use crate::cli::{Proto, StormArgs};
use crate::client::{self, micros, Role};
use crate::stats::{round1, round_to, summary_us};

#[derive(Default)]
struct WorkerResult {
    total: Vec<u64>,
    ticket: Vec<u64>,
    upgrade: Vec<u64>,
    ready: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

/// Runs the storm.
pub async fn run(
    targets: &[Target],
    proto: Proto,
    a: &StormArgs,
    pid: Option<u32>,
    deadline: Duration,
) -> Result<Value> {
    // Sessions live on the replica that created them: attach where the session is.
    let mut sessions: Vec<(Target, String)> = Vec::new();
    let reuse = !a.existing.is_empty();
    for target in targets {
        for sid in &a.existing {
            sessions.push((target.clone(), sid.clone()));
        }
        for _ in 0..if reuse { 0 } else { a.sessions.max(1) } {
            let sid = if proto.shares_terminals() {
                super::new_session(target, proto).await?
            } else {
                String::new()
            };
            sessions.push((target.clone(), sid));
        }
    }
    let sessions = Arc::new(sessions);
    let next = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + deadline;
    let window = crate::sys::Window::start(pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (sessions, next, n) = (sessions.clone(), next.clone(), a.n);
        tasks.push(tokio::spawn(async move {
            let mut r = WorkerResult::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= end {
                    break;
                }
                let (target, sid) = &sessions[i % sessions.len()];
                let t0 = Instant::now();
                match client::attach(target, proto, sid, Role::Observer, None).await {
                    Ok(conn) => {
                        r.total.push(micros(t0.elapsed()));
                        r.ticket.push(conn.timing.ticket_us);
                        r.upgrade.push(conn.timing.upgrade_us);
                        r.ready.push(conn.timing.ready_us);
                        conn.close_fast().await;
                    }
                    Err(e) => {
                        let key: String = format!("{e:#}").chars().take(120).collect();
                        *r.errors.entry(key).or_default() += 1;
                    }
                }
            }
            r
        }));
    }
    let mut all = WorkerResult::default();
    for t in tasks {
        let r = t.await?;
        all.total.extend(r.total);
        all.ticket.extend(r.ticket);
        all.upgrade.extend(r.upgrade);
        all.ready.extend(r.ready);
        for (k, v) in r.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = window.finish();
    // Let the server finish the closes before the sessions go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (target, sid) in sessions.iter().filter(|_| !reuse) {
        super::end_sessions(target, proto, std::slice::from_ref(sid)).await;
    }
    let ok = all.total.len();
    Ok(json!({
        "completed": ok,
        "failed": all.errors.values().sum::<u64>(),
        "errors": all.errors,
        "seconds": round_to(secs, 3),
        "attaches_per_sec": round1(ok as f64 / secs),
        "latency_us": summary_us(&all.total),
        "ticket_us": summary_us(&all.ticket),
        "upgrade_us": summary_us(&all.upgrade),
        "hello_us": summary_us(&all.ready),
        "cpu": cpu,
    }))
}
