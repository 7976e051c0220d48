//! Process facts from /proc (RSS and its peak, CPU ticks, open-file limit of the server under
//! test) and raising this generator's own RLIMIT_NOFILE to its hard limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

/// Raises the soft open-file limit to the hard one; returns the resulting (soft, hard).
pub fn raise_nofile_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// Clock ticks per second (for /proc/<pid>/stat times).
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// When it was taken.
    pub at: Instant,
}

/// Reads VmRSS and CPU ticks of `pid`.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(ProcSample {
        rss_kib,
        cpu_ticks: utime + stime,
        at: Instant::now(),
    })
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(a: &ProcSample, b: &ProcSample) -> f64 {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    (b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / clk_tck()) / secs * 100.0
}

/// CPU seconds between two samples.
pub fn cpu_secs(a: &ProcSample, b: &ProcSample) -> f64 {
    b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / clk_tck()
}

/// CPU use of the server and of this generator over a measurement window.
pub struct Window {
    server: Option<(u32, ProcSample)>,
    client: Option<ProcSample>,
}

impl Window {
    /// Starts a window (`pid` = the server, when known).
    pub fn start(pid: Option<u32>) -> Self {
        Window {
            server: pid.and_then(|p| sample(p).map(|s| (p, s))),
            client: sample(std::process::id()),
        }
    }

    /// `{server_cpu_percent, server_cpu_secs, client_cpu_percent}` since `start`.
    pub fn finish(&self) -> Value {
        let server = self.server.and_then(|(p, a)| sample(p).map(|b| (a, b)));
        let client = self
            .client
            .and_then(|a| sample(std::process::id()).map(|b| (a, b)));
        json!({
            "server_cpu_percent": server.map(|(a, b)| crate::stats::round1(cpu_percent(&a, &b))),
            "server_cpu_secs": server.map(|(a, b)| crate::stats::round_to(cpu_secs(&a, &b), 2)),
            "client_cpu_percent": client.map(|(a, b)| crate::stats::round1(cpu_percent(&a, &b))),
        })
    }
}

/// The largest RSS of the server and of this generator, sampled every 250 ms until `finish`.
pub struct Peak {
    server: Arc<AtomicU64>,
    client: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Peak {
    /// Starts sampling (`pid` = the server, when known).
    pub fn start(pid: Option<u32>) -> Self {
        let (server, client) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, c) = (server.clone(), client.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Some(x) = pid.and_then(sample) {
                    s.fetch_max(x.rss_kib, Ordering::Relaxed);
                }
                if let Some(x) = sample(std::process::id()) {
                    c.fetch_max(x.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        });
        Peak {
            server,
            client,
            task,
        }
    }

    /// Stops sampling: the peaks in KiB (server, client), `None` where nothing was read.
    pub fn finish(self) -> (Option<u64>, Option<u64>) {
        self.task.abort();
        let read = |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|&k| k > 0);
        (read(&self.server), read(&self.client))
    }
}

/// The 1-minute load average (other work on the machine skews every figure).
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether `pid` still runs (an exited process waiting for its parent does not).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s.get(i + 2..i + 3))
                .map(|st| st != "Z")
        })
        .unwrap_or(false)
}

/// The soft "Max open files" of `pid`.
pub fn nofile_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

/// Server CPU and RSS over a whole run, for the record.
pub fn server_usage(before: Option<ProcSample>, after: Option<ProcSample>) -> Value {
    match (before, after) {
        (Some(a), Some(b)) => json!({
            "cpu_secs": crate::stats::round_to(cpu_secs(&a, &b), 2),
            "cpu_percent": crate::stats::round1(cpu_percent(&a, &b)),
            "rss_kib_before": a.rss_kib,
            "rss_kib_after": b.rss_kib,
        }),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0);
        assert!(nofile_of(std::process::id()).is_some());
    }
}
