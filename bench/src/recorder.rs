//! `recorder`: the session recorder on its own (no network, no PTY): base64 output pushed
//! through a `RecordTap` in PTY-sized pieces, for each chunk size; CPU per MB and bytes written.
//!
//! The tap never waits, so the output goes in batches of 4 MiB (under the tap's 16 MiB bound),
//! each followed by `seal_all`, which returns once the writer has taken everything before it.
//! CPU is the whole process's (`getrusage`): the pushing side, the recorder thread and the
//! audit thread that chains every chunk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use attachd_actors::audit::{Audit, AuditConfig};
use attachd_actors::recording::{
    Recorder, RecorderConfig, RecordingMode, DROPPED_BYTES, WRITTEN_BYTES,
};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::cli::RecorderArgs;

/// Output pushed between two `seal_all`s.
const BATCH: usize = 4 << 20;

/// User + system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Base64 text with a line break every 76 columns, like `base64` prints.
fn output(bytes: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::with_capacity(bytes);
    while out.len() < bytes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.push(ALPHABET[(seed % 64) as usize]);
        if out.len() % 77 == 76 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.truncate(bytes);
    out
}

/// One run with chunks of `chunk_kib` KiB.
fn run_one(a: &RecorderArgs, chunk_kib: usize, data: &Bytes) -> Result<Value> {
    let dir = std::env::temp_dir().join(format!(
        "attachd-bench-recorder-{}-{chunk_kib}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let res = actix::System::new().block_on(measure(a, chunk_kib, data, dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    res
}

async fn measure(a: &RecorderArgs, chunk_kib: usize, data: &Bytes, dir: PathBuf) -> Result<Value> {
    let audit = Audit::start(AuditConfig {
        path: dir.join("audit.log"),
        max_file_bytes: 1 << 30,
    })
    .map_err(|e| anyhow!("audit: {e}"))?;
    let mut cfg = RecorderConfig::new(
        dir.join("recordings"),
        RecordingMode::Output,
        1 << 40,
        Duration::from_secs(3600),
    );
    cfg.chunk_bytes = chunk_kib * 1024;
    let rec = Recorder::start(cfg, audit.clone()).map_err(|e| anyhow!("recorder: {e}"))?;
    let tap = rec.open("bench-1", "bench", 80, 24);
    let (written0, dropped0) = (WRITTEN_BYTES.get(), DROPPED_BYTES.get());
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    for batch in 0..data.len().div_ceil(BATCH) {
        let end = ((batch + 1) * BATCH).min(data.len());
        let mut at = batch * BATCH;
        while at < end {
            let n = a.piece.min(end - at);
            tap.output(&data.slice(at..at + n));
            at += n;
        }
        rec.seal_all(Duration::from_secs(60)).await;
    }
    drop(tap);
    audit
        .flush()
        .await
        .map_err(|e| anyhow!("audit flush: {e}"))?;
    let (cpu, wall) = (cpu_secs() - cpu0, wall0.elapsed().as_secs_f64());
    let mb = data.len() as f64 / 1e6;
    let written = WRITTEN_BYTES.get() - written0;
    Ok(json!({
        "chunk_kib": chunk_kib,
        "mb_per_s": mb / wall,
        "cpu_ms_per_mb": cpu * 1e3 / mb,
        "written_bytes_per_mb": written as f64 / mb,
        "dropped_bytes": DROPPED_BYTES.get() - dropped0,
    }))
}

/// Runs every chunk size and prints one JSON record.
pub fn run(a: &RecorderArgs) -> Result<()> {
    let data = Bytes::from(output(a.mbytes * 1_000_000));
    let mut rows = Vec::new();
    for &kib in &a.chunk_kib {
        rows.push(run_one(a, kib, &data)?);
    }
    let record = json!({
        "scenario": "recorder",
        "params": {"mbytes": a.mbytes, "piece": a.piece},
        "results": rows,
    });
    println!("{record}");
    Ok(())
}
