//! `term`: the session terminal state on its own (no network): emulator feed rate, snapshot
//! build time and size, and memory per session with full history, for two screen sizes.
//!
//! The feed rate is measured twice: in 64 KiB pieces (one PTY read each, what the emulator
//! gets while it keeps up) and in 512 KiB batches (what it gets when it lags: the output
//! queued behind it, fed at once, where a flood's head can be left out).

use std::time::Instant;

use anyhow::Result;
use attachd_actors::term::TermState;
use serde_json::{json, Value};

use crate::cli::TermArgs;

/// Runs the measurements and prints one JSON record.
pub fn run(a: &TermArgs) -> Result<()> {
    let mut rows = Vec::new();
    for (name, input) in inputs(a.mbytes * 1_000_000) {
        let rate = |piece: usize| {
            let mut t = TermState::new(80, 24, a.history);
            let start = Instant::now();
            for chunk in input.chunks(piece) {
                t.feed(chunk);
            }
            input.len() as f64 / start.elapsed().as_secs_f64() / 1e6
        };
        rows.push(json!({
            "input": name,
            "mb_per_s": rate(64 * 1024),
            "mb_per_s_batched": rate(512 * 1024),
        }));
    }
    let mut sizes = Vec::new();
    for (cols, rows_) in [(80u16, 24u16), (250, 80)] {
        let t = filled(cols, rows_, a.history);
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..a.iterations {
            let s = Instant::now();
            bytes = t.snapshot().len();
            times.push(s.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        let before = rss_kib();
        let many: Vec<TermState> = (0..a.sessions)
            .map(|_| filled(cols, rows_, a.history))
            .collect();
        let per_session_kib = (rss_kib() - before) as f64 / a.sessions as f64;
        drop(many);
        sizes.push(json!({
            "cols": cols, "rows": rows_, "history_lines": a.history,
            "snapshot_bytes": bytes,
            "snapshot_us_p50": times[times.len() / 2],
            "snapshot_us_max": times[times.len() - 1],
            "memory_per_session_kib": per_session_kib,
        }));
    }
    let record: Value = json!({"scenario": "term", "feed": rows, "snapshots": sizes});
    println!("{record}");
    Ok(())
}

/// A terminal whose history and screen are full of coloured text.
fn filled(cols: u16, rows: u16, history: usize) -> TermState {
    let mut t = TermState::new(cols, rows, history);
    let line: String = (0..usize::from(cols) - 1)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for i in 0..history + usize::from(rows) {
        t.feed(format!("\x1b[3{}m{}\x1b[0m\r\n", i % 8, &line).as_bytes());
    }
    t
}

fn inputs(n: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut seq = Vec::with_capacity(n);
    let mut i = 0u64;
    while seq.len() < n {
        seq.extend_from_slice(format!("{i}\r\n").as_bytes());
        i += 1;
    }
    let mut b64 = Vec::with_capacity(n);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = 0x2545F4914F6CDD1Du64;
    while b64.len() < n {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b64.push(alphabet[(x % 64) as usize]);
        }
        b64.extend_from_slice(b"\r\n");
    }
    // What `base64 -w 0` prints (the bench's single stream): one line, wrapped by the terminal.
    let wrapped: Vec<u8> = b64
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut sgr = Vec::with_capacity(n);
    while sgr.len() < n {
        sgr.extend_from_slice(
            b"\x1b[1;31merror\x1b[0m: \x1b[38;5;208mwarning\x1b[m text and more text\r\n",
        );
    }
    vec![
        ("seq", seq),
        ("base64", b64),
        ("base64 -w 0", wrapped),
        ("sgr", sgr),
    ]
}

fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
