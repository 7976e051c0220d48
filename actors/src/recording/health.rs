//! Whether recordings are being written, per session and for the replica (`/readyz`, the
//! `deny` gate), and the recording metrics. Atomics only: the hub's tap reads and sets them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use prometheus::{register_int_counter, register_int_gauge, IntCounter, IntGauge};

use crate::register::must;

/// Failed writes, syncs and file creations of recordings.
pub static WRITE_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_recording_write_errors_total",
            "Recording files that could not be created, written or synced"
        ),
        "attachd_recording_write_errors_total",
    )
});

/// Recorded bytes that never reached a file (the recorder fell behind or could not write).
pub static DROPPED_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_recording_dropped_bytes_total",
            "Session bytes that could not be recorded (each gap is marked in the file)"
        ),
        "attachd_recording_dropped_bytes_total",
    )
});

/// Bytes written to recording files.
pub static WRITTEN_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_recording_written_bytes_total",
            "Bytes appended to recording files (asciicast, after encoding)"
        ),
        "attachd_recording_written_bytes_total",
    )
});

/// Sessions whose recording is failing now.
pub static FAILING: LazyLock<IntGauge> = LazyLock::new(|| {
    must(
        register_int_gauge!(
            "attachd_recordings_failing",
            "Sessions whose recording is failing now"
        ),
        "attachd_recordings_failing",
    )
});

/// Exports the recording metrics at zero (when the recorder starts).
pub(crate) fn init_metrics() {
    LazyLock::force(&WRITE_ERRORS);
    LazyLock::force(&DROPPED_BYTES);
    LazyLock::force(&WRITTEN_BYTES);
    LazyLock::force(&FAILING);
}

/// The replica's recording health: the directory probe and how many sessions are failing.
#[derive(Debug, Default)]
pub struct Health {
    dir_failing: AtomicBool,
    failing: AtomicUsize,
}

impl Health {
    /// True when the directory can be written and no session's recording is failing.
    pub fn is_ok(&self) -> bool {
        !self.dir_failing.load(Ordering::Acquire) && self.failing.load(Ordering::Acquire) == 0
    }

    /// Records the outcome of a directory probe.
    pub(crate) fn set_dir_ok(&self, ok: bool) {
        self.dir_failing.store(!ok, Ordering::Release);
    }
}

/// One session's recording state, shared by its tap (on the hub) and its writer.
#[derive(Debug)]
pub struct SessionHealth {
    replica: Arc<Health>,
    failing: AtomicBool,
    /// Bytes dropped and not yet marked in the file as a gap.
    dropped: AtomicU64,
    /// Bytes handed to the writer and not yet taken by it.
    pub(crate) queued: AtomicUsize,
}

impl SessionHealth {
    pub(crate) fn new(replica: Arc<Health>) -> Self {
        SessionHealth {
            replica,
            failing: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        }
    }

    /// True while this session's recording is complete.
    pub fn is_ok(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    /// Marks the recording failing; true when it was not already (log once per failure).
    pub(crate) fn set_failing(&self) -> bool {
        let first = !self.failing.swap(true, Ordering::AcqRel);
        if first {
            self.replica.failing.fetch_add(1, Ordering::AcqRel);
            FAILING.inc();
        }
        first
    }

    /// The recording is complete again.
    pub(crate) fn set_ok(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            self.replica.failing.fetch_sub(1, Ordering::AcqRel);
            FAILING.dec();
        }
    }

    /// `n` bytes could not be recorded: counted, and marked in the file later.
    pub(crate) fn dropped(&self, n: u64) -> bool {
        self.dropped.fetch_add(n, Ordering::AcqRel);
        DROPPED_BYTES.inc_by(n);
        self.set_failing()
    }

    /// Takes the count of dropped bytes not yet marked.
    pub(crate) fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::AcqRel)
    }

    /// Whether bytes were dropped and not yet marked.
    pub(crate) fn has_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire) > 0
    }
}

impl Drop for SessionHealth {
    fn drop(&mut self) {
        self.set_ok();
    }
}
