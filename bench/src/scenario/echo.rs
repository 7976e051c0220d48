//! `echo`: keystroke round trip driver → PTY (`stty raw -echo; cat`) → driver, one byte at a
//! time, while K observers of the same terminal read everything continuously. The observers
//! run on a runtime of their own, so the driver's reads never queue behind theirs in the client.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::Target;
use crate::cli::{EchoArgs, Proto};
use crate::client::{self, micros, Conn, Event, Role};
use crate::stats::summary_us;

/// Longest wait for one echo before the sample counts as lost.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Lost samples after which the run stops.
const MAX_LOST: usize = 10;

/// What an observer saw.
struct ObserverOutcome {
    bytes: u64,
    closed: Option<Option<u16>>,
}

/// Attaches an observer (on `rt`) that reads until told to stop; reports when attached.
pub fn spawn_reader(
    rt: &tokio::runtime::Handle,
    target: &Target,
    proto: Proto,
    sid: &str,
    mut stop: watch::Receiver<bool>,
    mut read_from: Option<watch::Receiver<bool>>,
    attached: tokio::sync::mpsc::Sender<Result<(), String>>,
) -> JoinHandle<(u64, Option<Option<u16>>)> {
    let (target, sid) = (target.clone(), sid.to_string());
    rt.spawn(async move {
        let mut conn = match client::attach(&target, proto, &sid, Role::Observer, None).await {
            Ok(c) => {
                let _ = attached.send(Ok(())).await;
                c
            }
            Err(e) => {
                let _ = attached.send(Err(format!("{e:#}"))).await;
                return (0, Some(None));
            }
        };
        drop(attached);
        if let Some(go) = read_from.as_mut() {
            let _ = go.wait_for(|&go| go).await;
        }
        let mut bytes = 0u64;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                ev = conn.recv() => match ev {
                    Event::Output(b) => bytes += b.len() as u64,
                    Event::Closed(code) => return (bytes, Some(code)),
                },
            }
        }
        conn.close().await;
        (bytes, None)
    })
}

/// Puts the driver's shell into `stty raw -echo; cat` and waits until a probe echoes once.
pub async fn enter_raw_cat(drv: &mut Conn) -> Result<()> {
    drv.drain(Duration::from_millis(300), Duration::from_secs(3))
        .await;
    drv.send_input(b"stty raw -echo; cat\n").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drv.drain(Duration::from_millis(200), Duration::from_secs(3))
        .await;
    for _ in 0..5 {
        drv.send_input(b"#").await?;
        if super::read_until(drv, b"#", Duration::from_secs(2)).await {
            drv.drain(Duration::from_millis(100), Duration::from_secs(1))
                .await;
            return Ok(());
        }
    }
    bail!("the terminal never echoed through cat")
}

/// Runs the echo test.
pub async fn run(
    target: &Target,
    proto: Proto,
    a: &EchoArgs,
    pid: Option<u32>,
    deadline: Duration,
) -> Result<Value> {
    if a.observers > 0 && !proto.shares_terminals() {
        bail!(
            "{} gives each connection its own terminal: no observers",
            proto.name()
        );
    }
    let end = Instant::now() + deadline;
    let sid = super::new_session(target, proto).await?;
    let mut drv = client::attach(target, proto, &sid, Role::Driver, None)
        .await
        .context("driver attach")?;
    enter_raw_cat(&mut drv).await?;

    let observer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("observers")
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (read_tx, read_rx) = watch::channel(false);
    let read_from = a.observers_read_after.then_some(read_rx);
    let (att_tx, mut att_rx) = tokio::sync::mpsc::channel(a.observers.max(1));
    let mut readers = Vec::new();
    for _ in 0..a.observers {
        readers.push(spawn_reader(
            observer_rt.handle(),
            target,
            proto,
            &sid,
            stop_rx.clone(),
            read_from.clone(),
            att_tx.clone(),
        ));
    }
    drop(att_tx);
    let mut dashboards = Vec::new();
    for _ in 0..a.dashboards {
        let resp = target.dashboard_stream().await?;
        dashboards.push(observer_rt.spawn(read_dashboard(resp, stop_rx.clone())));
    }
    let mut attach_errors = Vec::new();
    while let Some(r) = att_rx.recv().await {
        if let Err(e) = r {
            attach_errors.push(e);
        }
    }
    // Participant notices and scrollback go out now, not during the measurement.
    drv.drain(Duration::from_millis(200), Duration::from_secs(2))
        .await;

    let window = crate::sys::Window::start(pid);
    let mut rtts = Vec::with_capacity(a.keys.samples);
    let (mut lost, mut extra_bytes) = (0usize, 0u64);
    for i in 0..a.keys.warmup + a.keys.samples {
        if Instant::now() >= end || lost >= MAX_LOST {
            break;
        }
        let key = b'a' + (i % 26) as u8;
        let t0 = Instant::now();
        drv.send_input(&[key]).await?;
        match wait_key(&mut drv, key).await {
            Some(extra) => {
                extra_bytes += extra;
                if i >= a.keys.warmup {
                    rtts.push(micros(t0.elapsed()));
                }
            }
            None => lost += 1,
        }
        if a.keys.gap_us > 0 {
            tokio::time::sleep(Duration::from_micros(a.keys.gap_us)).await;
        }
    }
    let cpu = window.finish();
    let _ = read_tx.send(true);
    // Observers get the last echoes (or, reading after, everything) before they stop.
    let settle = if a.observers_read_after { 1000 } else { 200 };
    tokio::time::sleep(Duration::from_millis(settle)).await;
    let _ = stop_tx.send(true);
    let mut dashboard_events = 0u64;
    for d in dashboards {
        dashboard_events += d.await?;
    }
    let mut outcomes = Vec::new();
    for r in readers {
        let (bytes, closed) = r.await?;
        outcomes.push(ObserverOutcome { bytes, closed });
    }
    drv.close().await;
    observer_rt.shutdown_background();
    super::end_sessions(target, proto, &[sid]).await;

    let sent = (a.keys.warmup + a.keys.samples) as u64;
    let short = outcomes.iter().filter(|o| o.bytes < sent).count();
    let closed: Vec<Value> = outcomes
        .iter()
        .filter_map(|o| o.closed.map(|c| json!(c)))
        .collect();
    Ok(json!({
        "rtt_us": summary_us(&rtts),
        "cpu_during_samples": cpu,
        "lost_samples": lost,
        "unexpected_bytes": extra_bytes,
        "observers_attached": a.observers - attach_errors.len(),
        "observer_attach_errors": attach_errors.into_iter().take(5).collect::<Vec<_>>(),
        "observers_closed_early": closed,
        "observers_missing_output": short,
        "observer_min_bytes": outcomes.iter().map(|o| o.bytes).min().unwrap_or(0),
        "dashboards": a.dashboards,
        "dashboard_events": dashboard_events,
    }))
}

/// Reads one dashboard stream until `stop`; returns how many events it got.
async fn read_dashboard(mut resp: reqwest::Response, mut stop: watch::Receiver<bool>) -> u64 {
    let mut events = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => return events,
            chunk = resp.chunk() => match chunk {
                Ok(Some(c)) => events += memchr::memmem::find_iter(&c, b"event: ").count() as u64,
                _ => return events,
            },
        }
    }
}

/// Waits for `key` to come back; returns how many other bytes arrived meanwhile.
async fn wait_key(drv: &mut Conn, key: u8) -> Option<u64> {
    let end = tokio::time::Instant::now() + SAMPLE_TIMEOUT;
    let mut extra = 0u64;
    loop {
        match tokio::time::timeout_at(end, drv.recv()).await {
            Ok(Event::Output(b)) => match memchr::memchr(key, &b) {
                Some(_) => return Some(extra + b.len() as u64 - 1),
                None => extra += b.len() as u64,
            },
            Ok(Event::Closed(_)) | Err(_) => return None,
        }
    }
}
