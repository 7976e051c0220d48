//! Session recording (SPEC §9): each session's output (and input, in `output+input`) as
//! asciicast v2 files, chunked, with every chunk's digest chained into the audit log.
//!
//! # Shape
//!
//! - [`Recorder`]: the replica's recording service (config, the recorder thread, health,
//!   retention). [`Recorder::open`] gives a hub its [`RecordTap`].
//! - [`RecordTap`]: what the hub holds. Every call is a `try_send` on a bounded channel,
//!   charged against a byte bound; what does not fit is counted, logged and marked as a gap in
//!   the file, and the session's recording is failing until the writer has caught up. The hub
//!   never waits and takes no lock.
//! - `writer`: the per-session task on the recorder thread (encoding, chunks, rotation).
//! - [`file`], [`cast`], [`names`]: one file, the asciicast format, where files live.
//! - [`verify`]: checks files against their `recording.chunk` records; [`retention`]: sweeps.

pub mod cast;
pub mod file;
mod health;
pub mod names;
pub mod retention;
pub mod text;
pub mod verify;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use actix::{Arbiter, ArbiterHandle, System};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::audit::Audit;

use health::init_metrics;
pub use health::{Health, SessionHealth, DROPPED_BYTES, FAILING, WRITE_ERRORS, WRITTEN_BYTES};
pub use writer::CHUNK_RECORD;
use writer::{RecMsg, SessionWriter};

/// Most bytes a session's tap may have in flight to its writer.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// Most messages a session's tap may have in flight to its writer.
const QUEUE_MESSAGES: usize = 8192;
/// A chunk is sealed once this many bytes are pending (or [`CHUNK_INTERVAL`] passed), or a
/// quarter of `recording.max_file_bytes` when that is less. Each chunk costs an `fdatasync` of
/// the file and a durable audit record: at 64 KiB those were most of the recorder's cost.
pub const CHUNK_BYTES: usize = 1 << 20;
/// A chunk is sealed once its first byte is this old.
pub const CHUNK_INTERVAL: Duration = Duration::from_secs(1);
/// How often the directory is probed.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How often the retention sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// `recording.mode` (without `off`, which runs no recorder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingMode {
    /// Output, resizes and markers.
    Output,
    /// Output and input.
    OutputInput,
}

/// How recordings are written.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// `recording.dir`.
    pub dir: PathBuf,
    /// `recording.mode`.
    pub mode: RecordingMode,
    /// `recording.max_file_bytes`: a file that reaches it is closed and the next one begun.
    pub max_file_bytes: u64,
    /// `recording.retention`.
    pub retention: Duration,
    /// Seal a chunk at this many pending bytes.
    pub chunk_bytes: usize,
    /// Seal a chunk when its first byte is this old.
    pub chunk_interval: Duration,
}

impl RecorderConfig {
    /// A config with the default chunking.
    pub fn new(
        dir: PathBuf,
        mode: RecordingMode,
        max_file_bytes: u64,
        retention: Duration,
    ) -> Self {
        RecorderConfig {
            dir,
            mode,
            max_file_bytes,
            retention,
            chunk_bytes: CHUNK_BYTES
                .min(usize::try_from(max_file_bytes / 4).unwrap_or(usize::MAX))
                .max(1),
            chunk_interval: CHUNK_INTERVAL,
        }
    }
}

/// Files being written now (the retention sweep leaves them alone).
#[derive(Debug, Clone, Default)]
pub(crate) struct Active(Arc<Mutex<HashSet<PathBuf>>>);

impl Active {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn add(&self, p: PathBuf) {
        self.lock().insert(p);
    }
    pub(crate) fn remove(&self, p: &Path) {
        self.lock().remove(p);
    }
    pub(crate) fn contains(&self, p: &Path) -> bool {
        self.lock().contains(p)
    }
}

struct Entry {
    health: Weak<SessionHealth>,
    tx: mpsc::WeakSender<RecMsg>,
}

struct Inner {
    cfg: Arc<RecorderConfig>,
    audit: Audit,
    thread: ArbiterHandle,
    health: Arc<Health>,
    active: Active,
    // Touched when a session opens or ends, by the handshake's gate and by draining; never on
    // the output path.
    sessions: Mutex<HashMap<String, Entry>>,
}

/// The replica's recording service; cheap to clone.
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.0.cfg.dir)
            .field("mode", &self.0.cfg.mode)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the recorder thread, probes the directory and schedules the retention sweep.
    /// Needs a running actix System.
    pub fn start(cfg: RecorderConfig, audit: Audit) -> Result<Recorder, String> {
        System::try_current().ok_or("no actix System is running")?;
        init_metrics();
        let health = Arc::new(Health::default());
        let rec = Recorder(Arc::new(Inner {
            cfg: Arc::new(cfg),
            audit,
            thread: Arbiter::new().handle(),
            health,
            active: Active::default(),
            sessions: Mutex::new(HashMap::new()),
        }));
        rec.probe();
        let weak = Arc::downgrade(&rec.0);
        rec.0.thread.spawn(async move {
            let mut last_sweep: Option<Instant> = None;
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let r = Recorder(inner);
                r.probe();
                if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
                    last_sweep = Some(Instant::now());
                    retention::sweep(&r.0.cfg.dir, r.0.cfg.retention, &r.0.active, &r.0.audit)
                        .await;
                }
                drop(r);
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
        Ok(rec)
    }

    /// The configuration.
    pub fn config(&self) -> &RecorderConfig {
        &self.0.cfg
    }

    /// The replica's recording health.
    pub fn health(&self) -> &Health {
        &self.0.health
    }

    /// Whether `session_id`'s recording is complete (true for a session not recorded here).
    pub fn session_ok(&self, session_id: &str) -> bool {
        let sessions = self.0.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(session_id)
            .and_then(|e| e.health.upgrade())
            .is_none_or(|h| h.is_ok())
    }

    /// Whether the directory can be written (a probe file is created and removed).
    fn probe(&self) {
        let dir = &self.0.cfg.dir;
        let probe = dir.join(".probe");
        let ok = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&probe, b"probe"))
            .and_then(|()| std::fs::remove_file(&probe));
        if let Err(e) = &ok {
            WRITE_ERRORS.inc();
            tracing::error!(dir = %dir.display(), error = %e, "the recording directory cannot be written");
        }
        self.0.health.set_dir_ok(ok.is_ok());
    }

    /// Starts recording a session whose terminal is `cols`×`rows`: the first file is created
    /// now (so a failure shows before anyone attaches), the writer runs on the recorder thread.
    pub fn open(&self, session_id: &str, tenant: &str, cols: u16, rows: u16) -> RecordTap {
        let inner = &self.0;
        let health = Arc::new(SessionHealth::new(inner.health.clone()));
        let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
        let dir = names::session_dir(&inner.cfg.dir, tenant, session_id).unwrap_or_else(|| {
            inner
                .cfg
                .dir
                .join(names::tenant_dir(tenant))
                .join("invalid")
        });
        let mut w = SessionWriter::new(
            session_id,
            tenant,
            dir,
            inner.cfg.clone(),
            (cols, rows),
            health.clone(),
            inner.audit.clone(),
            inner.active.clone(),
        );
        w.open();
        if !inner.thread.spawn(w.run(rx)) {
            health.set_failing();
            tracing::error!(session = %session_id, "the recorder thread is gone; the session is not recorded");
        }
        inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                session_id.to_owned(),
                Entry {
                    health: Arc::downgrade(&health),
                    tx: tx.downgrade(),
                },
            );
        RecordTap {
            tx,
            health,
            input: inner.cfg.mode == RecordingMode::OutputInput,
        }
    }

    /// Seals every recording's pending bytes (before the replica exits); waits at most `limit`.
    pub async fn seal_all(&self, limit: Duration) {
        let senders: Vec<mpsc::Sender<RecMsg>> = {
            let mut sessions = self.0.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.retain(|_, e| e.health.strong_count() > 0);
            sessions.values().filter_map(|e| e.tx.upgrade()).collect()
        };
        let waits = senders.into_iter().map(|tx| async move {
            let (reply, done) = oneshot::channel();
            if tx.send(RecMsg::Seal(reply)).await.is_ok() {
                let _ = done.await;
            }
        });
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(waits)).await;
    }
}

/// A hub's handle on its session's recording. Never waits, never locks.
pub struct RecordTap {
    tx: mpsc::Sender<RecMsg>,
    health: Arc<SessionHealth>,
    input: bool,
}

impl RecordTap {
    fn send(&self, msg: RecMsg) {
        let w = msg.weight();
        let queued = self.health.queued.fetch_add(w, Ordering::AcqRel) + w;
        let refused = if queued > MAX_QUEUED_BYTES {
            true
        } else {
            self.tx.try_send(msg).is_err()
        };
        if refused {
            self.health.queued.fetch_sub(w, Ordering::AcqRel);
            if self.health.dropped(w as u64) {
                tracing::error!("the recorder cannot keep up with this session; output is not recorded until it does");
            }
        }
    }

    /// Output bytes, as they reach the session's participants.
    pub fn output(&self, b: &Bytes) {
        self.send(RecMsg::Output(b.clone(), Instant::now()));
    }

    /// Stdin forwarded to the backend (recorded only in `output+input`).
    pub fn input(&self, b: &Bytes) {
        if self.input {
            self.send(RecMsg::Input(b.clone(), Instant::now()));
        }
    }

    /// The terminal's new size.
    pub fn resize(&self, cols: u16, rows: u16) {
        self.send(RecMsg::Resize(cols, rows, Instant::now()));
    }

    /// A marker (joins, control changes, resyncs).
    pub fn marker(&self, text: String) {
        self.send(RecMsg::Marker(text, Instant::now()));
    }

    /// This session's recording health.
    pub fn health(&self) -> &SessionHealth {
        &self.health
    }
}

#[cfg(test)]
mod tests;
