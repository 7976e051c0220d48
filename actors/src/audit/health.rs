//! The audit writer's health as a cheap shared value (readiness, the fail-closed gate), and the
//! audit metrics (`attachd_audit_write_errors_total`, `attachd_audit_records_lost_total`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};
use serde::Serialize;

/// Whether the audit log is writable, readable from any thread without locking on the fast path.
#[derive(Debug, Clone)]
pub struct AuditHealth(Arc<HealthInner>);

#[derive(Debug)]
struct HealthInner {
    ok: AtomicBool,
    last_seq: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of the health state (for `/readyz` details and logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSnapshot {
    /// True while writes succeed.
    pub ok: bool,
    /// The last durable seq (0 before the first record).
    pub last_seq: u64,
    /// Why the writer is failing (kept after recovery as the last error seen).
    pub last_error: Option<String>,
}

impl AuditHealth {
    /// A healthy value (the writer flips it as it learns more).
    pub(crate) fn new() -> Self {
        AuditHealth(Arc::new(HealthInner {
            ok: AtomicBool::new(true),
            last_seq: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }))
    }

    /// True while the audit log can be written; the fail-closed gate reads this.
    pub fn is_ok(&self) -> bool {
        self.0.ok.load(Ordering::Acquire)
    }

    /// The last durable seq (0 before the first record).
    pub fn last_seq(&self) -> u64 {
        self.0.last_seq.load(Ordering::Acquire)
    }

    /// The most recent failure, if any was seen (it stays after recovery, for diagnosis).
    pub fn last_error(&self) -> Option<String> {
        self.0
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// All of the above at once.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            ok: self.is_ok(),
            last_seq: self.last_seq(),
            last_error: self.last_error(),
        }
    }

    /// Records a success; returns true when this was a recovery from failing.
    pub(crate) fn set_ok(&self, last_seq: u64) -> bool {
        self.0.last_seq.fetch_max(last_seq, Ordering::AcqRel);
        !self.0.ok.swap(true, Ordering::AcqRel)
    }

    /// Records a failure.
    pub(crate) fn set_failing(&self, why: &str) {
        *self.0.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_owned());
        self.0.ok.store(false, Ordering::Release);
    }
}

/// The audit metrics, registered once in `prometheus::default_registry()`.
pub(crate) struct AuditMetrics {
    /// Failed I/O attempts of the writer (open, recover, write, sync, rotate, probe).
    pub(crate) write_errors: IntCounter,
    /// Records not in the log, by reason.
    pub(crate) records_lost: IntCounterVec,
    /// Time of one group commit (write and `fdatasync` of a batch).
    pub(crate) commit_seconds: Histogram,
}

/// Reasons for `attachd_audit_records_lost_total`.
pub(crate) mod lost {
    /// The batch holding the record could not be written (the caller, if any, got `Err`).
    pub(crate) const WRITE_FAILED: &str = "write_failed";
    /// `record_detached` found the mailbox and the overflow allowance full.
    pub(crate) const OVERFLOW: &str = "overflow";
    /// The event never reached a batch (the writer stopped, or a cancelled `record` held it).
    pub(crate) const DROPPED: &str = "dropped";
    /// The event was malformed (reserved field name, oversized).
    pub(crate) const INVALID: &str = "invalid";
    /// Every reason.
    pub(crate) const ALL: [&str; 4] = [WRITE_FAILED, OVERFLOW, DROPPED, INVALID];
}

/// Builds a metric from constant arguments; failure is a programming error (as in
/// `crate::metrics`). A failed *registration* (a duplicate name) is only logged.
fn built<T>(r: prometheus::Result<T>, name: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("metric {name} cannot be built: {e}"),
    }
}

pub(crate) static METRICS: LazyLock<AuditMetrics> = LazyLock::new(|| {
    let write_errors = built(
        IntCounter::new(
            "attachd_audit_write_errors_total",
            "Failed audit log I/O attempts (open, write, fdatasync, rotate, probe)",
        ),
        "attachd_audit_write_errors_total",
    );
    let records_lost = built(
        IntCounterVec::new(
            Opts::new(
                "attachd_audit_records_lost_total",
                "Audit records that could not be written, by reason",
            ),
            &["reason"],
        ),
        "attachd_audit_records_lost_total",
    );
    let commit_seconds = built(
        Histogram::with_opts(
            HistogramOpts::new(
                "attachd_audit_commit_seconds",
                "Time to write and fdatasync one batch of audit records",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        ),
        "attachd_audit_commit_seconds",
    );
    let registry = prometheus::default_registry();
    for c in [
        Box::new(write_errors.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(records_lost.clone()),
        Box::new(commit_seconds.clone()),
    ] {
        if let Err(e) = registry.register(c) {
            tracing::error!(error = %e, "cannot register an audit metric");
        }
    }
    AuditMetrics {
        write_errors,
        records_lost,
        commit_seconds,
    }
});

/// Registers the audit metrics with every `reason` of the lost-records counter, at zero.
pub(crate) fn init_metrics() {
    for reason in lost::ALL {
        METRICS.records_lost.with_label_values(&[reason]);
    }
}

/// Starts timing one group commit; the time is observed when the timer is dropped.
pub(crate) fn commit_timer() -> prometheus::HistogramTimer {
    METRICS.commit_seconds.start_timer()
}

/// Counts one failed I/O attempt of the writer.
pub(crate) fn count_write_error() {
    METRICS.write_errors.inc();
}

/// Counts `n` records lost for `reason` (one of [`lost`]).
pub(crate) fn count_lost(reason: &str, n: u64) {
    if n > 0 {
        METRICS.records_lost.with_label_values(&[reason]).inc_by(n);
    }
}

/// The current value of `attachd_audit_write_errors_total` in this process.
pub fn write_errors_total() -> u64 {
    METRICS.write_errors.get()
}

/// The current value of `attachd_audit_records_lost_total` summed over reasons.
pub fn records_lost_total() -> u64 {
    lost::ALL
        .iter()
        .map(|r| METRICS.records_lost.with_label_values(&[r]).get())
        .sum()
}
