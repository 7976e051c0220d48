//! `summarize`: results file (JSON lines) → `latest.json` and `latest.md`: every run, the
//! comparison with peers (measured here and quoted), and each target with pass/fail.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::cli::SummarizeArgs;
use crate::report::table_row;

/// Peer figures measured on this kind of machine with a Python websockets client (quoted).
const QUOTED: &[(&str, &str, &str)] = &[
    ("ttyd 1.7.7", "echo K=0 p50/p99 µs", "296 / 1110"),
    ("ttyd 1.7.7", "RSS per idle connection", "14.9 KiB"),
    ("terminado", "echo K=0 p50/p99 µs", "1294 / 4454"),
    ("terminado", "RSS per idle connection", "16.0 KiB"),
    ("terminado", "fan-out, 10 observers, each", "4.5–4.9 MB/s"),
    ("wetty", "echo K=0 p50/p99 µs", "3083 / 5602"),
    ("wetty", "RSS per idle connection", "66 KiB"),
    ("raw PTY", "echo p50/p99 µs", "48 / 163"),
    ("raw PTY", "one PTY carries", "15–22 MB/s"),
];

fn find<'a>(
    recs: &'a [Value],
    label: &str,
    scenario: &str,
    key: &str,
    val: u64,
) -> Option<&'a Value> {
    recs.iter().rev().find(|r| {
        r["label"] == label
            && r["scenario"] == scenario
            && (key.is_empty() || r["params"][key] == val)
    })
}

fn soak_of<'a>(recs: &'a [Value], label: &str) -> Option<&'a Value> {
    recs.iter()
        .filter(|r| r["label"] == label && r["scenario"] == "soak")
        .max_by_key(|r| r["params"]["connections"].as_u64().unwrap_or(0))
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// One target: name, goal, measured text, verdict.
fn target(name: &str, goal: &str, measured: String, pass: Option<bool>) -> Value {
    let verdict = match pass {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    json!({"target": name, "goal": goal, "measured": measured, "verdict": verdict})
}

fn targets(recs: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let soak = soak_of(recs, "attachd");
    out.push(match soak {
        Some(r) => {
            let x = &r["results"];
            let n = r["params"]["connections"].as_u64().unwrap_or(0);
            let kib = f(&x["rss_kib_per_conn"]);
            let cpu = f(&x["idle_cpu_percent"]);
            let ok = x["connected"].as_u64() == Some(n) && n >= 10_000;
            let pass = match (kib, cpu) {
                (Some(k), Some(c)) => Some(ok && k <= 12.0 && c <= 5.0),
                _ => None,
            };
            target(
                "concurrent connections",
                "10,000 held, ≤ 12 KiB server RSS each, ≤ 5% CPU idle",
                format!(
                    "{} of {n} held; {} KiB/conn; idle CPU {}%",
                    x["connected"], x["rss_kib_per_conn"], x["idle_cpu_percent"]
                ),
                pass,
            )
        }
        None => target(
            "concurrent connections",
            "10,000 at ≤ 12 KiB, ≤ 5% CPU",
            "-".into(),
            None,
        ),
    });
    let echo = find(recs, "attachd", "echo", "observers", 100);
    out.push(match echo {
        Some(r) => {
            let x = &r["results"]["rtt_us"];
            let pass = match (f(&x["p50"]), f(&x["p99"])) {
                (Some(p50), Some(p99)) => Some(p50 <= 150.0 && p99 <= 600.0),
                _ => None,
            };
            target(
                "echo with 100 observers",
                "p50 ≤ 150 µs, p99 ≤ 600 µs",
                format!("p50 {} µs, p99 {} µs", x["p50"], x["p99"]),
                pass,
            )
        }
        None => target(
            "echo with 100 observers",
            "p50 ≤ 150 µs, p99 ≤ 600 µs",
            "-".into(),
            None,
        ),
    });
    out.push(fan50_target(recs, "attachd", "fan-out to 50 observers"));
    if recs.iter().any(|r| r["label"] == "attachd-8mib") {
        out.push(fan50_target(
            recs,
            "attachd-8mib",
            "fan-out to 50 observers, 8 MiB queues",
        ));
    }
    out.push(match find(recs, "attachd", "connect-storm", "", 0) {
        Some(r) => {
            let x = &r["results"];
            target(
                "attach rate",
                "≥ 2,000 complete attaches/s",
                format!(
                    "{} attaches/s (failed {})",
                    x["attaches_per_sec"], x["failed"]
                ),
                f(&x["attaches_per_sec"]).map(|v| v >= 2000.0 && x["failed"] == 0),
            )
        }
        None => target("attach rate", "≥ 2,000 attaches/s", "-".into(), None),
    });
    out
}

/// The 50-observer fan-out target for the runs of one label, against that label's own
/// single-stream rate.
fn fan50_target(recs: &[Value], label: &str, name: &str) -> Value {
    let single = find(recs, label, "fanout", "observers", 0)
        .and_then(|r| f(&r["results"]["single_stream_mb_per_s"]));
    let fan50: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            r["label"] == label && r["scenario"] == "fanout" && r["params"]["observers"] == 50
        })
        .collect();
    if fan50.is_empty() {
        return target(name, "≥ 50% of PTY rate, exact", "-".into(), None);
    }
    let base = single.unwrap_or(0.0);
    let mut runs = Vec::new();
    let mut all_pass = true;
    for r in &fan50 {
        let x = &r["results"];
        let min = f(&x["observer_mb_per_s"]["min"]).unwrap_or(0.0);
        let exact = x["observers_exact"].as_u64() == Some(50)
            && x["lost_bytes"] == 0
            && x["driver_complete"] == true;
        all_pass &= exact && base > 0.0 && min >= base / 2.0;
        runs.push(format!(
            "min {min} MB/s ({:.0}%), exact {}/50, cut {}",
            if base > 0.0 { min / base * 100.0 } else { 0.0 },
            x["observers_exact"],
            x["observers_closed_early"].as_array().map_or(0, Vec::len)
                + usize::from(x["driver_complete"] != true)
        ));
    }
    target(
        name,
        "each ≥ 50% of the single-stream PTY rate, byte-exact",
        format!("single stream {base} MB/s; runs: {}", runs.join("; ")),
        Some(all_pass),
    )
}

/// Echo p50/p99 of a label at K observers, as text.
fn echo_cell(recs: &[Value], label: &str, k: u64) -> (String, Option<f64>) {
    match find(recs, label, "echo", "observers", k) {
        Some(r) => {
            let x = &r["results"]["rtt_us"];
            (format!("{} / {}", x["p50"], x["p99"]), f(&x["p50"]))
        }
        None => ("-".into(), None),
    }
}

fn peers_table(recs: &[Value]) -> String {
    let labels = ["attachd", "terminado", "wetty"];
    let mut md = String::from(
        "| metric | attachd | terminado | wetty | terminado ÷ attachd | wetty ÷ attachd |\n|---|---|---|---|---|---|\n",
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
        _ => "-".into(),
    };
    for k in [0u64, 10] {
        let cells: Vec<(String, Option<f64>)> =
            labels.iter().map(|l| echo_cell(recs, l, k)).collect();
        md.push_str(&format!(
            "| echo K={k} p50 / p99 µs | {} | {} | {} | {} | {} |\n",
            cells[0].0,
            cells[1].0,
            cells[2].0,
            ratio(cells[0].1, cells[1].1),
            ratio(cells[0].1, cells[2].1)
        ));
    }
    // Compare idle figures at the same connection count where the runs allow it.
    let peer_c = soak_of(recs, "terminado").and_then(|r| r["params"]["connections"].as_u64());
    let soak: Vec<Option<&Value>> = labels
        .iter()
        .map(|l| {
            peer_c
                .and_then(|c| find(recs, l, "soak", "connections", c))
                .or_else(|| soak_of(recs, l))
        })
        .collect();
    let same_c = |i: usize| {
        soak[0].map(|r| &r["params"]["connections"]) == soak[i].map(|r| &r["params"]["connections"])
    };
    let paired = |i: usize, a: Option<f64>, b: Option<f64>| {
        if same_c(i) {
            ratio(a, b)
        } else {
            "n/a (C differs)".to_string()
        }
    };
    for (name, key) in [
        ("RSS KiB per idle connection", "rss_kib_per_conn"),
        ("idle CPU %", "idle_cpu_percent"),
    ] {
        let vals: Vec<Option<f64>> = soak
            .iter()
            .map(|s| s.and_then(|r| f(&r["results"][key])))
            .collect();
        let cell = |i: usize| match (vals[i], soak[i]) {
            (Some(v), Some(r)) => format!("{v} (C={})", r["params"]["connections"]),
            _ => "-".into(),
        };
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            cell(0),
            cell(1),
            cell(2),
            paired(1, vals[0], vals[1]),
            paired(2, vals[0], vals[2])
        ));
    }
    let fan: Vec<Option<f64>> = labels
        .iter()
        .map(|l| {
            find(recs, l, "fanout", "observers", 10)
                .and_then(|r| f(&r["results"]["observer_mb_per_s"]["min"]))
        })
        .collect();
    let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    md.push_str(&format!(
        "| fan-out 10 observers, min MB/s each | {} | {} | {} | {} | {} |\n",
        cell(fan[0]),
        cell(fan[1]),
        cell(fan[2]),
        ratio(fan[1], fan[0]),
        ratio(fan[2], fan[0])
    ));
    md
}

/// attachd's echo beside the floor server's (`floor.rs`) and the bare PTY's, same machine.
fn floor_table(recs: &[Value]) -> String {
    let (a, a50) = echo_cell(recs, "attachd", 0);
    let (fl, f50) = echo_cell(recs, "floor", 0);
    let raw = find(recs, "raw-pty", "pty-echo", "", 0)
        .map(|r| {
            format!(
                "{} / {}",
                r["results"]["rtt_us"]["p50"], r["results"]["rtt_us"]["p99"]
            )
        })
        .unwrap_or_else(|| "-".into());
    let ratio = match (a50, f50) {
        (Some(a), Some(f)) if f > 0.0 => format!("{:.2}×", a / f),
        _ => "-".into(),
    };
    format!(
        "\n## Against the floor (same machine, same Rust client)\n\n\
         The floor is `attachd-bench floor-server`: one thread, a shell per connection, no auth\n\
         or sharing (ttyd's shape). The bare PTY row has no network at all; the quoted raw PTY\n\
         figure is 48 / 163 µs.\n\n\
         | metric | attachd | floor | bare PTY | attachd ÷ floor (p50) |\n|---|---|---|---|---|\n\
         | echo K=0 p50 / p99 µs | {a} | {fl} | {raw} | {ratio} |\n"
    )
}

/// Writes the summary files.
pub fn summarize(a: &SummarizeArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let recs: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let tg = targets(&recs);
    let mut md = String::from("# attachd benchmark results\n\n");
    if !a.machine.is_empty() {
        md.push_str(&format!("Machine: {}\n\n", a.machine));
    }
    md.push_str("## Targets\n\n| target | goal | measured | verdict |\n|---|---|---|---|\n");
    for t in &tg {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t["target"].as_str().unwrap_or(""),
            t["goal"].as_str().unwrap_or(""),
            t["measured"].as_str().unwrap_or(""),
            t["verdict"].as_str().unwrap_or("")
        ));
    }
    md.push_str("\n## Against peers (same machine, same Rust client)\n\nRatios > 1× mean the peer is slower / uses more.\n\n");
    md.push_str(&peers_table(&recs));
    md.push_str(&floor_table(&recs));
    md.push_str("\n## Quoted peer figures (not measured here; Python websockets client, same kind of machine)\n\n| server | metric | value |\n|---|---|---|\n");
    for (s, m, v) in QUOTED {
        md.push_str(&format!("| {s} | {m} | {v} |\n"));
    }
    md.push_str("\n## Every run\n\n| scenario | label | params | result |\n|---|---|---|---|\n");
    for r in &recs {
        md.push_str(&table_row(r));
        md.push('\n');
    }
    let quoted: Vec<Value> = QUOTED
        .iter()
        .map(|(s, m, v)| json!({"server": s, "metric": m, "value": v}))
        .collect();
    let out = json!({"machine": a.machine, "targets": tg, "quoted_peers": quoted, "runs": recs});
    std::fs::write(&a.json, serde_json::to_string_pretty(&out)? + "\n")?;
    std::fs::write(&a.md, md)?;
    Ok(())
}
