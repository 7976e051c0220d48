//! `crowd-flood`: N observers of one session (shared by several client processes) through a
//! flood; each must end on the driver's final screen, as the client's own emulator sees it.
//!
//! One process drives (`--drive`, or no `--session`): it holds the seat, waits until the
//! session has every process's observers, types the flood and the final drawing, and waits
//! for the observers to leave. Observers that fall behind get `snapshot` (reason `resync`,
//! SPEC §8): counted, not an error. An observer is judged by its screen, cell text and
//! cursor, against the driver's screen in the driving process and against the drawing
//! elsewhere (both carry the screen's digest, so a report can check they are the same).

mod command;
mod driver;
mod watch;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch as stop_channel};

use self::driver::{Driven, Schedule};
use self::watch::Watched;
use super::ramp::{self, Plan};
use crate::api::Target;
use crate::cli::{CrowdFloodArgs, Proto};
use crate::client::{self, Role};
use crate::screen::{text_digest, ScreenView};
use crate::stats::{percentile, round1};
use crate::sys::{self, Peak};

/// Runs the scenario.
pub async fn run(
    target: &Target,
    proto: Proto,
    a: &CrowdFloodArgs,
    pid: Option<u32>,
    deadline: Duration,
) -> Result<Value> {
    if proto != Proto::Attachd {
        bail!("crowd-flood follows attachd's snapshots (SPEC §8): attachd only");
    }
    let end_at = Instant::now() + deadline;
    let (sid, created) = match &a.session {
        Some(s) => (s.clone(), false),
        None => (
            target.create_session().await.context("create session")?,
            true,
        ),
    };
    let peak = Peak::start(pid);
    let client_start = sys::sample(std::process::id());
    // The driver first: it takes the seat, and every observer joins a quiet screen.
    let (expect_tx, expect_rx) = oneshot::channel();
    let driver = if a.drive || created {
        let conn = client::attach(target, proto, &sid, Role::Driver, None)
            .await
            .context("driver attach")?;
        let s = Schedule {
            expect: expect_rx,
            wait: Duration::from_secs(a.wait_secs),
            bytes: a.bytes,
            end_at,
        };
        Some(tokio::spawn(driver::drive(conn, s)))
    } else {
        None
    };

    let (stop_tx, stop_rx) = stop_channel::channel(false);
    let sources = a.sources.addrs(a.observers);
    let plan = Plan {
        n: a.observers,
        concurrency: a.concurrency,
        sources: &sources,
    };
    let ramp = ramp::observers(
        target,
        proto,
        plan,
        |_| sid.clone(),
        end_at,
        move |conn| watch::observer(conn, stop_rx.clone()),
    )
    .await;
    let client_attached = sys::sample(std::process::id());
    let _ = expect_tx.send(a.expect_observers.unwrap_or(ramp.connected));
    let window = sys::Window::start(pid);

    let stopper = tokio::spawn(async move {
        tokio::time::sleep_until(end_at.into()).await;
        let _ = stop_tx.send(true);
    });
    let mut seen = Vec::with_capacity(ramp.connected);
    for t in ramp.tasks {
        if let Ok(Some(w)) = t.await {
            seen.push(w);
        }
    }
    let driven = match driver {
        Some(d) => Some(d.await.context("driver task")?),
        None => None,
    };
    stopper.abort();
    let cpu = window.finish();
    if created {
        target.delete_session(&sid).await;
    }
    let ramp_info = json!({
        "attached": ramp.connected,
        "failed": ramp.errors.len(),
        "errors": ramp.errors.iter().take(5).collect::<Vec<_>>(),
        "seconds": round1(ramp.secs),
        "attaches_per_sec": round1(ramp.connected as f64 / ramp.secs.max(1e-9)),
    });
    let mut r = judge(&seen, driven.as_ref());
    r["session"] = json!(sid);
    r["observers_wanted"] = json!(a.observers);
    r["ramp"] = ramp_info;
    r["cpu_after_ramp"] = cpu;
    r["server_alive"] = json!(pid.map(sys::running));
    let (server_peak, client_peak) = peak.finish();
    r["server_rss_kib_peak"] = json!(server_peak);
    let per_observer = match (client_start, client_attached) {
        (Some(s), Some(e)) if ramp.connected > 0 => {
            json!(round1(
                (e.rss_kib as f64 - s.rss_kib as f64) / ramp.connected as f64
            ))
        }
        _ => Value::Null,
    };
    r["client_rss_kib"] = json!({
        "start": client_start.map(|s| s.rss_kib),
        "attached": client_attached.map(|s| s.rss_kib),
        "peak": client_peak,
        "per_observer_attached": per_observer,
    });
    Ok(r)
}

/// Milliseconds from `from` to `to`.
fn ms_between(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_millis() as u64
}

/// Judges every observer's screen and sums up what they received.
fn judge(seen: &[Watched], driven: Option<&Driven>) -> Value {
    let size = driven
        .and_then(|d| d.seen.view.size())
        .or_else(|| seen.iter().find_map(|w| w.view.size()))
        .unwrap_or((80, 24));
    let drawn = command::drawn_screen(size.0, size.1);
    let drawn_text = drawn.text();
    let driver_view: Option<&ScreenView> = driven
        .filter(|d| d.seen.at_end.is_some())
        .map(|d| &d.seen.view);
    let (reference, ref_name) = match driver_view {
        Some(v) => (v, "driver"),
        None => (&drawn, "drawing"),
    };
    let (ref_text, ref_attrs) = (reference.text(), reference.attrs_digest());
    let mut on_final = 0usize;
    let mut same_attrs = 0usize;
    let mut hashes = BTreeMap::<String, usize>::new();
    let mut closed = BTreeMap::<String, usize>::new();
    let mut mismatch: Option<String> = None;
    let (mut bytes, mut snap_bytes, mut resyncs, mut unframed) = (0u64, 0u64, 0u64, 0u64);
    let (mut resynced, mut max_resyncs) = (0usize, 0u32);
    let mut ends: Vec<u64> = Vec::new();
    let mut per_obs: Vec<u64> = Vec::new();
    for w in seen {
        bytes += w.bytes;
        snap_bytes += w.snapshot_bytes;
        resyncs += u64::from(w.resyncs);
        unframed += w.unframed_bytes;
        resynced += usize::from(w.resyncs > 0);
        max_resyncs = max_resyncs.max(w.resyncs);
        per_obs.push(w.bytes);
        if let Some(c) = w.closed {
            let key = c.map_or_else(|| "no close frame".to_string(), |c| c.to_string());
            *closed.entry(key).or_default() += 1;
        }
        let Some(t) = w.at_end_unix_ms else { continue };
        ends.push(t);
        let text = w.view.text();
        *hashes.entry(text_digest(&text)).or_default() += 1;
        if text == ref_text {
            on_final += 1;
            same_attrs += usize::from(w.view.attrs_digest() == ref_attrs);
        } else if mismatch.is_none() {
            mismatch = Some(text);
        }
    }
    ends.sort_unstable();
    per_obs.sort_unstable();
    let mb = |x: u64| round1(x as f64 / 1e6);
    let mut r = json!({
        "observers_attached": seen.len(),
        "on_final_screen": on_final,
        "not_on_final_screen": seen.len() - on_final,
        "same_attributes": same_attrs,
        "judged_against": ref_name,
        "screen_digests": hashes,
        "drawn_digest": text_digest(&drawn_text),
        "closed_by_server": closed,
        "mismatch_example": mismatch.map(|t| t.lines().map(str::to_string).collect::<Vec<_>>()),
        "resyncs": {"total": resyncs, "observers_resynced": resynced, "max_per_observer": max_resyncs},
        "bytes_delivered": bytes,
        "snapshot_bytes": snap_bytes,
        "bytes_before_any_snapshot": unframed,
        "mb_per_observer": {"p50": mb(percentile(&per_obs, 50.0)), "max": mb(per_obs.last().copied().unwrap_or(0))},
        "final_screen_unix_ms": {"first": ends.first(), "last": ends.last()},
        "size": {"cols": size.0, "rows": size.1},
    });
    if let Some(d) = driven {
        r["driver"] = driver_record(d, &drawn_text, seen);
    }
    r
}

/// The driver's figures: its flood, its own screen, and the observers' times from the flood.
fn driver_record(d: &Driven, drawn_text: &str, seen: &[Watched]) -> Value {
    let text = d.seen.view.text();
    let mut after: Vec<u64> = match d.flood_start {
        Some(t0) => seen
            .iter()
            .filter_map(|w| w.at_end.map(|e| ms_between(t0, e)))
            .collect(),
        None => Vec::new(),
    };
    after.sort_unstable();
    json!({
        "error": d.error,
        "started_with_observers": d.started_with,
        "flood_start_unix_ms": d.flood_start_unix_ms,
        "bytes": d.seen.bytes,
        "final_screen_ms": d.flood_start.zip(d.seen.at_end).map(|(a, b)| ms_between(a, b)),
        "all_observers_left_ms": d.flood_start.zip(d.all_left).map(|(a, b)| ms_between(a, b)),
        "screen_as_drawn": text == drawn_text,
        "screen_digest": text_digest(&text),
        "screen": text.lines().map(str::to_string).collect::<Vec<_>>(),
        "closed": d.seen.closed,
        "observers_final_ms": {
            "p50": percentile(&after, 50.0),
            "p99": percentile(&after, 99.0),
            "last": after.last(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observer(view: ScreenView, resyncs: u32) -> Watched {
        let done = command::at_end(&view);
        Watched {
            view,
            bytes: 100,
            resyncs,
            at_end: done.then(Instant::now),
            at_end_unix_ms: done.then_some(1),
            ..Watched::default()
        }
    }

    #[test]
    fn only_screens_equal_to_the_reference_count() {
        let mut shifted = command::drawn_screen(80, 24);
        // Same marker and cursor, one more cell written elsewhere: not the final screen.
        shifted.feed(b"\x1b[20;1Hx\x1b[14;21H");
        let mut recoloured = ScreenView::sized(80, 24);
        recoloured.feed(b"\x1b[31m");
        recoloured.feed(&command::final_drawing()[4..]);
        let seen = [
            observer(command::drawn_screen(80, 24), 2),
            observer(shifted, 0),
            observer(ScreenView::sized(80, 24), 1),
            observer(recoloured, 0),
        ];
        let r = judge(&seen, None);
        assert_eq!(r["judged_against"], "drawing");
        assert_eq!(r["observers_attached"], 4);
        assert_eq!(r["on_final_screen"], 2, "{r}");
        assert_eq!(r["same_attributes"], 1, "{r}");
        assert_eq!(r["resyncs"]["total"], 3);
        assert_eq!(r["resyncs"]["observers_resynced"], 2);
        assert_eq!(r["bytes_delivered"], 400);
        assert!(r["mismatch_example"][19].as_str().unwrap().starts_with('x'));
    }
}
