//! `fanout`: the driver's shell writes B random bytes (base64) between two markers; every
//! observer hashes what it got between them. Rate per observer, lag and lost bytes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::api::Target;
use crate::cli::{FanoutArgs, Proto};
use crate::client::{self, Conn, Event, Role};
use crate::marker::{Phase, Section};
use crate::stats::{percentile, rate, round1, round_to};

/// Printed by the shell, never typed: the command line holds `$((40+1))` instead.
const START: &[u8] = b"FANOUT-START-41";
const END: &[u8] = b"FANOUT-END-42";

/// One reader's view of the section.
#[derive(Debug, Clone)]
struct Seen {
    bytes: u64,
    /// Output frames received while inside the section.
    frames: u64,
    hash: u64,
    phase: Phase,
    /// Since the command was sent: first section byte, last section byte.
    start: Option<Duration>,
    end: Option<Duration>,
    closed: Option<Option<u16>>,
}

/// Reads `conn` into a section until the end marker, a close or `stop`.
async fn read_section(
    conn: &mut Conn,
    base: watch::Receiver<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut sec = Section::new(START, END);
    let (mut start, mut end, mut closed) = (None, None, None);
    let mut frames = 0u64;
    let since = |base: &watch::Receiver<Option<Instant>>| {
        base.borrow()
            .map(|b| Instant::now().saturating_duration_since(b))
            .unwrap_or_default()
    };
    while sec.phase != Phase::Done {
        tokio::select! {
            _ = stop.changed() => break,
            ev = conn.recv() => match ev {
                Event::Output(b) => {
                    let before = sec.phase;
                    let after = sec.feed(&b);
                    if after != Phase::Before {
                        frames += 1;
                    }
                    if before == Phase::Before && after != Phase::Before {
                        start = Some(since(&base));
                    }
                    if after == Phase::Done {
                        end = Some(since(&base));
                    }
                }
                Event::Closed(code) => {
                    closed = Some(code);
                    break;
                }
            },
        }
    }
    Seen {
        bytes: sec.bytes,
        frames,
        hash: sec.digest(),
        phase: sec.phase,
        start,
        end,
        closed,
    }
}

/// Runs the fan-out test.
pub async fn run(
    target: &Target,
    proto: Proto,
    a: &FanoutArgs,
    pid: Option<u32>,
    deadline: Duration,
) -> Result<Value> {
    if a.observers > 0 && !proto.shares_terminals() {
        bail!(
            "{} gives each connection its own terminal: no fan-out",
            proto.name()
        );
    }
    let end_at = Instant::now() + deadline;
    let sid = super::new_session(target, proto).await?;
    let mut drv = client::attach(target, proto, &sid, Role::Driver, None)
        .await
        .context("driver attach")?;
    drv.drain(Duration::from_millis(300), Duration::from_secs(3))
        .await;

    let (base_tx, base_rx) = watch::channel(None::<Instant>);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (att_tx, mut att_rx) = mpsc::channel(a.observers.max(1));
    let mut readers = Vec::new();
    for _ in 0..a.observers {
        let (target, sid, base, stop, att) = (
            target.clone(),
            sid.clone(),
            base_rx.clone(),
            stop_rx.clone(),
            att_tx.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut conn = match client::attach(&target, proto, &sid, Role::Observer, None).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = att.send(Some(format!("{e:#}"))).await;
                    return None;
                }
            };
            let _ = att.send(None).await;
            drop(att);
            let seen = read_section(&mut conn, base, stop).await;
            conn.close().await;
            Some(seen)
        }));
    }
    drop(att_tx);
    let mut attach_errors = Vec::new();
    while let Some(r) = att_rx.recv().await {
        attach_errors.extend(r);
    }
    drv.drain(Duration::from_millis(300), Duration::from_secs(3))
        .await;

    let cmd = format!(
        "echo FANOUT-START-$((40+1)); head -c {} /dev/urandom | base64 -w 0; echo FANOUT-END-$((40+2))\n",
        a.bytes
    );
    let window = crate::sys::Window::start(pid);
    let t0 = Instant::now();
    let _ = base_tx.send(Some(t0));
    drv.send_input(cmd.as_bytes()).await?;
    let (dstop_tx, dstop_rx) = watch::channel(false);
    let left = end_at.saturating_duration_since(Instant::now());
    let driver =
        tokio::time::timeout(left, read_section(&mut drv, base_rx.clone(), dstop_rx)).await;
    drop(dstop_tx);
    let driver = match driver {
        Ok(s) => s,
        Err(_) => bail!("driver did not see the end marker within the deadline"),
    };
    // Observers may trail the driver; give them as long again (bounded by the deadline).
    let wall = t0.elapsed();
    let grace = (wall * 2).max(Duration::from_secs(10));
    let stop_at = (Instant::now() + grace).min(end_at.max(Instant::now()));
    let mut seen = Vec::new();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep_until(stop_at.into()).await;
        let _ = stop_tx.send(true);
    });
    for r in readers {
        if let Some(s) = r.await? {
            seen.push(s);
        }
    }
    stopper.abort();
    let cpu = window.finish();
    drv.close().await;
    super::end_sessions(target, proto, &[sid]).await;
    let mut r = report(&driver, &seen, a.observers, attach_errors);
    r["cpu_during_transfer"] = cpu;
    Ok(r)
}

fn ms(d: Duration) -> f64 {
    round1(d.as_secs_f64() * 1000.0)
}

fn report(driver: &Seen, seen: &[Seen], wanted: usize, attach_errors: Vec<String>) -> Value {
    let d_secs = match (driver.start, driver.end) {
        (Some(s), Some(e)) => (e - s).as_secs_f64(),
        _ => 0.0,
    };
    // The reference stream: the driver's, or a complete observer's if the driver was cut.
    let reference = std::iter::once(driver)
        .chain(seen)
        .find(|s| s.phase == Phase::Done)
        .cloned();
    let (ref_bytes, ref_hash) = reference
        .as_ref()
        .map(|r| (r.bytes, r.hash))
        .unwrap_or((0, 0));
    let exact = |s: &Seen| s.phase == Phase::Done && s.bytes == ref_bytes && s.hash == ref_hash;
    let mut rates: Vec<u64> = Vec::new();
    let mut completion: Vec<u64> = Vec::new();
    let mut tail: Vec<u64> = Vec::new();
    let mut lost = 0u64;
    let mut closed = Vec::new();
    for s in seen {
        if let (Some(st), Some(en)) = (s.start, s.end) {
            rates.push(rate(s.bytes, (en - st).as_secs_f64()) as u64);
        }
        if let (Some(en), Some(ds)) = (s.end, driver.start) {
            completion.push(en.saturating_sub(ds).as_micros() as u64);
        }
        if let (Some(en), Some(de)) = (s.end, driver.end) {
            tail.push(en.saturating_sub(de).as_micros() as u64);
        }
        if !exact(s) {
            lost += ref_bytes.saturating_sub(s.bytes).max(1);
        }
        if let Some(c) = s.closed {
            closed.push(json!(c));
        }
    }
    // Observers that never attached lost everything.
    lost += ref_bytes * (wanted - seen.len()) as u64;
    let frames: u64 = seen
        .iter()
        .chain(std::iter::once(driver))
        .map(|s| s.frames)
        .sum();
    let bytes: u64 = seen
        .iter()
        .chain(std::iter::once(driver))
        .map(|s| s.bytes)
        .sum();
    rates.sort_unstable();
    completion.sort_unstable();
    tail.sort_unstable();
    let mb = |x: u64| round_to(x as f64 / 1e6, 2);
    json!({
        "reference_bytes": ref_bytes,
        "driver_bytes": driver.bytes,
        "driver_lost_bytes": ref_bytes.saturating_sub(driver.bytes),
        "mean_frame_bytes": bytes.checked_div(frames).unwrap_or(0),
        "driver_complete": driver.phase == Phase::Done,
        "driver_closed": driver.closed,
        "single_stream_mb_per_s": mb(rate(driver.bytes, d_secs) as u64),
        "observers_attached": seen.len(),
        "observer_attach_errors": attach_errors.into_iter().take(5).collect::<Vec<_>>(),
        "observers_exact": seen.iter().filter(|s| exact(s)).count(),
        "observers_closed_early": closed,
        "lost_bytes": lost,
        "observer_mb_per_s": {
            "min": mb(rates.first().copied().unwrap_or(0)),
            "p50": mb(percentile(&rates, 50.0)),
            "max": mb(rates.last().copied().unwrap_or(0)),
        },
        "aggregate_mb_per_s": mb(rates.iter().sum::<u64>()),
        "completion_ms": {
            "p50": ms(Duration::from_micros(percentile(&completion, 50.0))),
            "p99": ms(Duration::from_micros(percentile(&completion, 99.0))),
            "max": ms(Duration::from_micros(completion.last().copied().unwrap_or(0))),
        },
        "tail_lag_ms": {
            "p50": ms(Duration::from_micros(percentile(&tail, 50.0))),
            "p99": ms(Duration::from_micros(percentile(&tail, 99.0))),
            "max": ms(Duration::from_micros(tail.last().copied().unwrap_or(0))),
        },
        "driver_seconds": round_to(d_secs, 3),
    })
}
