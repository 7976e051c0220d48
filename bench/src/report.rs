//! Output of one scenario: the JSON record on stdout, optionally appended to a results file,
//! and a one-line markdown summary (`headline`) appended to a table file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::Cli;
use crate::stats::round1;

/// Prints the record and appends it where asked.
pub fn emit(cli: &Cli, record: &Value) -> Result<()> {
    let line = serde_json::to_string(record)?;
    println!("{line}");
    if let Some(p) = &cli.out {
        append(p, &format!("{line}\n"))?;
    }
    if let Some(p) = &cli.md {
        append(p, &format!("{}\n", table_row(record)))?;
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// `| scenario | label | params | headline |`.
pub fn table_row(r: &Value) -> String {
    format!(
        "| {} | {} | {} | {} |",
        r["scenario"].as_str().unwrap_or("?"),
        r["label"].as_str().unwrap_or("?"),
        params(&r["params"]),
        headline(r)
    )
}

fn params(p: &Value) -> String {
    p.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The figures that matter for a record, in one line.
pub fn headline(r: &Value) -> String {
    let x = &r["results"];
    match r["scenario"].as_str().unwrap_or("") {
        "connect-storm" => format!(
            "{} attaches/s; p50 {} µs, p99 {} µs; failed {}",
            x["attaches_per_sec"], x["latency_us"]["p50"], x["latency_us"]["p99"], x["failed"]
        ),
        "echo" => format!(
            "p50 {} µs, p99 {} µs, p99.9 {} µs; lost {}; observers short {}",
            x["rtt_us"]["p50"],
            x["rtt_us"]["p99"],
            x["rtt_us"]["p999"],
            x["lost_samples"],
            x["observers_missing_output"]
        ),
        "pty-echo" => format!(
            "p50 {} µs, p99 {} µs, p99.9 {} µs; lost {}",
            x["rtt_us"]["p50"],
            x["rtt_us"]["p99"],
            x["rtt_us"]["p999"],
            x["lost_samples"]
        ),
        "fanout" => format!(
            "single stream {} MB/s; per observer min {} / p50 {} MB/s; exact {}/{}; lost {} B; completion p99 {} ms",
            x["single_stream_mb_per_s"],
            x["observer_mb_per_s"]["min"],
            x["observer_mb_per_s"]["p50"],
            x["observers_exact"],
            r["params"]["observers"],
            x["lost_bytes"],
            x["completion_ms"]["p99"]
        ),
        "soak" => format!(
            "{} held ({} failed); {} KiB/conn; idle CPU {}%",
            x["connected"], x["failed"], x["rss_kib_per_conn"], x["idle_cpu_percent"]
        ),
        "crowd-flood" => format!(
            "{} of {} observers on the final screen (judged against the {}); {} resyncs; {} MB delivered; last on it {} ms after the flood started; server alive {}",
            x["on_final_screen"],
            x["observers_attached"],
            x["judged_against"],
            x["resyncs"]["total"],
            round1(x["bytes_delivered"].as_f64().unwrap_or(0.0) / 1e6),
            x["driver"]["observers_final_ms"]["last"],
            x["server_alive"]
        ),
        _ => String::new(),
    }
}
