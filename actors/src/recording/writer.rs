//! One session's recording writer, a task on the recorder thread: it takes the tap's events,
//! encodes them as asciicast, seals chunks (by size or age), chains each into the audit log as
//! `recording.chunk`, rotates files by size and marks every gap it was told about.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::file::{CastFile, Chunk};
use super::health::{SessionHealth, WRITE_ERRORS, WRITTEN_BYTES};
use super::{Active, RecorderConfig};
use crate::audit::{Audit, AuditEvent};
use crate::term::utf8::Utf8Stream;

/// The audit record type of a sealed chunk.
pub const CHUNK_RECORD: &str = "recording.chunk";

/// How often pending bytes are checked for age, and a failed file is retried.
const TICK: Duration = Duration::from_millis(250);
/// How long the tap's messages gather before a woken writer takes them (see `run`).
const GATHER: Duration = Duration::from_millis(10);
/// How long after a failure a new file is tried.
const RETRY: Duration = Duration::from_secs(1);

/// What the tap sends.
pub(crate) enum RecMsg {
    Output(Bytes, Instant),
    Input(Bytes, Instant),
    Resize(u16, u16, Instant),
    Marker(String, Instant),
    /// Seal what is pending now, then answer (drain).
    Seal(oneshot::Sender<()>),
}

impl RecMsg {
    /// Bytes this message counts against the tap's queue bound.
    pub(crate) fn weight(&self) -> usize {
        match self {
            RecMsg::Output(b, _) | RecMsg::Input(b, _) => b.len(),
            RecMsg::Marker(s, _) => s.len(),
            RecMsg::Resize(..) | RecMsg::Seal(_) => 16,
        }
    }
}

/// The writer of one session's recording.
pub(crate) struct SessionWriter {
    pub(crate) session_id: String,
    pub(crate) tenant: String,
    pub(crate) dir: PathBuf,
    pub(crate) cfg: Arc<RecorderConfig>,
    pub(crate) size: (u16, u16),
    pub(crate) file: Option<CastFile>,
    pub(crate) health: Arc<SessionHealth>,
    pub(crate) audit: Audit,
    pub(crate) active: Active,
    pub(crate) retry_at: Option<Instant>,
    pub(crate) last_start: SystemTime,
    pub(crate) out_utf8: Utf8Stream,
    pub(crate) in_utf8: Utf8Stream,
    /// Drains waiting for the next seal.
    pub(crate) seal_waiters: Vec<oneshot::Sender<()>>,
}

impl SessionWriter {
    /// A writer for `session_id` of `tenant` into `dir`, with no file open yet.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        session_id: &str,
        tenant: &str,
        dir: PathBuf,
        cfg: Arc<RecorderConfig>,
        size: (u16, u16),
        health: Arc<SessionHealth>,
        audit: Audit,
        active: Active,
    ) -> Self {
        SessionWriter {
            session_id: session_id.to_owned(),
            tenant: tenant.to_owned(),
            dir,
            cfg,
            size,
            file: None,
            health,
            audit,
            active,
            retry_at: None,
            last_start: std::time::UNIX_EPOCH,
            out_utf8: Utf8Stream::default(),
            in_utf8: Utf8Stream::default(),
            seal_waiters: Vec::new(),
        }
    }

    /// Opens a new file (the first, after a rotation, or after a failure).
    pub(crate) fn open(&mut self) -> bool {
        if self.file.is_some() {
            return true;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        // Names sort by start: a file begun in the same millisecond as the last one is dated
        // a millisecond later.
        let now = SystemTime::now().max(self.last_start + Duration::from_millis(1));
        match CastFile::create(&self.dir, &self.session_id, self.size, now) {
            Ok(f) => {
                self.last_start = now;
                self.active.add(f.path().to_path_buf());
                self.file = Some(f);
                self.retry_at = None;
                true
            }
            Err(e) => {
                self.failed("cannot create a recording file", &e);
                false
            }
        }
    }

    fn failed(&mut self, what: &str, e: &dyn std::fmt::Display) {
        WRITE_ERRORS.inc();
        self.retry_at = Some(Instant::now() + RETRY);
        if self.health.set_failing() {
            tracing::error!(session = %self.session_id, dir = %self.dir.display(), error = %e, "{what}; the recording is failing");
        }
    }

    fn close_file(&mut self) {
        if let Some(f) = self.file.take() {
            self.active.remove(f.path());
        }
    }

    /// Applies one event; returns whether a chunk is due.
    fn apply(&mut self, msg: RecMsg) -> bool {
        let weight = msg.weight();
        self.health.queued.fetch_sub(weight, Ordering::AcqRel);
        let msg = match msg {
            RecMsg::Seal(reply) => {
                // Answered once the chunk is sealed and chained (see `run`).
                self.seal_waiters.push(reply);
                return true;
            }
            other => other,
        };
        if !self.open() {
            if !matches!(msg, RecMsg::Resize(..)) {
                self.health.dropped(weight as u64);
            }
            if let RecMsg::Resize(c, r, _) = msg {
                self.size = (c, r);
            }
            return false;
        }
        let dropped = self.health.take_dropped();
        let Some(f) = self.file.as_mut() else {
            return false;
        };
        if dropped > 0 {
            self.out_utf8 = Utf8Stream::default();
            f.push(
                Instant::now(),
                "m",
                &format!("gap: {dropped} bytes not recorded"),
            );
        }
        match msg {
            RecMsg::Output(b, at) => self.out_utf8.decode(&b, |s| f.push_output(at, s)),
            RecMsg::Input(b, at) => {
                let mut text = String::new();
                self.in_utf8.decode(&b, |s| text.push_str(s));
                if !text.is_empty() {
                    f.push(at, "i", &text);
                }
            }
            RecMsg::Resize(c, r, at) => {
                self.size = (c, r);
                f.push(at, "r", &super::cast::resize_data(c, r));
            }
            RecMsg::Marker(m, at) => f.push(at, "m", &m),
            RecMsg::Seal(_) => {}
        }
        f.size() >= self.cfg.max_file_bytes || f.due(self.cfg.chunk_bytes, self.cfg.chunk_interval)
    }

    /// Seals the pending bytes (and rotates a full file).
    async fn seal(&mut self) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let pending = f.pending() as u64;
        match f.seal() {
            Ok(None) => {}
            Ok(Some(chunk)) => {
                WRITTEN_BYTES.inc_by(chunk.bytes);
                let full = f.size() >= self.cfg.max_file_bytes;
                if full {
                    self.close_file();
                }
                self.chain(chunk).await;
            }
            Err(e) => {
                self.close_file();
                self.health.dropped(pending);
                self.failed("cannot write a recording chunk", &e);
            }
        }
    }

    /// Appends a sealed chunk's record to the audit chain.
    async fn chain(&mut self, c: Chunk) {
        let ev = AuditEvent::new(CHUNK_RECORD, "ok")
            .session_id(&self.session_id)
            .tenant(&self.tenant)
            .field_str("file", &c.file)
            .field_u64("index", c.index)
            .field_u64("offset", c.offset)
            .field_u64("bytes", c.bytes)
            .field_str("sha256", &c.sha256)
            .field_str("prev_sha256", &c.prev_sha256);
        match self.audit.record(ev).await {
            Ok(_) => {
                if !self.health.has_dropped() && self.retry_at.is_none() {
                    self.health.set_ok();
                }
            }
            // The audit log's own failure policy covers this (its gate, metric and readiness);
            // the file keeps the chunk, which verification reports as not covered.
            Err(e) => {
                tracing::error!(session = %self.session_id, error = %e, "a recording chunk could not be chained into the audit log")
            }
        }
    }

    /// Takes one message: applies it, seals when a chunk is due, answers drains.
    async fn take(&mut self, m: RecMsg) {
        if self.apply(m) {
            self.seal().await;
        }
        for w in self.seal_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// Whether the tick has work: pending bytes to seal when they are old enough, a burst's
    /// buffer to give back, or a failed file to retry.
    pub(crate) fn needs_tick(&self) -> bool {
        match &self.file {
            Some(f) => f.pending() > 0 || f.holds_burst_capacity(),
            None => self.health.has_dropped(),
        }
    }

    /// The tick: seals pending bytes that are old enough, retries a failed file, and gives
    /// back an idle file's burst buffer.
    async fn on_tick(&mut self) {
        let due = self
            .file
            .as_ref()
            .is_some_and(|f| f.due(self.cfg.chunk_bytes, self.cfg.chunk_interval));
        if due {
            self.seal().await;
        } else if self.file.is_none() && self.health.has_dropped() {
            // Retry a failed file without waiting for more output.
            if self.open() {
                let n = self.health.take_dropped();
                if let Some(f) = self.file.as_mut() {
                    f.push(Instant::now(), "m", &format!("gap: {n} bytes not recorded"));
                }
                self.seal().await;
            }
        }
        if let Some(f) = self.file.as_mut() {
            f.trim();
        }
    }

    /// The writer's loop: until the tap is dropped (the session ended), then a last seal.
    ///
    /// A message wakes the writer; it then lets the tap's messages gather for [`GATHER`] and
    /// takes all of them with `try_recv`, which registers no waker: while the session's output
    /// flows, the hub's sends wake this thread about once per [`GATHER`], not once per chunk.
    ///
    /// The tick runs only while [`Self::needs_tick`] says so: an idle session's writer sleeps
    /// until its next message.
    /// One timer lives across the loop: it is re-armed when it fires, not at every wake, so
    /// flowing output neither postpones the tick nor registers a timer per message.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<RecMsg>) {
        let tick = tokio::time::sleep(TICK);
        tokio::pin!(tick);
        'run: loop {
            let ticking = self.needs_tick();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.take(m).await,
                    None => break,
                },
                () = &mut tick, if ticking => {
                    self.on_tick().await;
                    tick.as_mut().reset(tokio::time::Instant::now() + TICK);
                    continue;
                }
            }
            tokio::time::sleep(GATHER).await;
            loop {
                match rx.try_recv() {
                    Ok(m) => self.take(m).await,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'run,
                }
            }
        }
        self.seal().await;
        self.close_file();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditConfig;
    use crate::recording::health::Health;
    use crate::recording::RecordingMode;

    #[test]
    fn an_idle_writer_has_no_tick_and_a_busy_one_ticks_until_it_has_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        actix::System::new().block_on(async {
            let audit = Audit::start(AuditConfig {
                path: dir.path().join("audit.log"),
                max_file_bytes: 1 << 20,
            })
            .unwrap();
            let cfg = Arc::new(RecorderConfig::new(
                dir.path().join("rec"),
                RecordingMode::Output,
                1 << 30,
                Duration::from_secs(3600),
            ));
            let health = Arc::new(SessionHealth::new(Arc::new(Health::default())));
            let mut w = SessionWriter::new(
                "s-1",
                "acme",
                dir.path().join("rec/acme/s-1"),
                cfg,
                (80, 24),
                health,
                audit,
                Active::default(),
            );
            assert!(!w.needs_tick(), "no file, nothing dropped: nothing to do");
            assert!(w.open());
            assert!(w.needs_tick(), "the header is pending until it is sealed");
            w.seal().await;
            assert!(!w.needs_tick(), "sealed and small: the writer sleeps");
            let burst = Bytes::from(vec![b'x'; 300 * 1024]);
            // As the tap counts it before sending.
            w.health.queued.fetch_add(burst.len(), Ordering::AcqRel);
            w.take(RecMsg::Output(burst, Instant::now())).await;
            assert!(
                w.needs_tick(),
                "pending output ages into a chunk on the tick"
            );
            w.seal().await;
            assert!(w.needs_tick(), "the burst's buffer is still held");
            w.on_tick().await;
            assert!(!w.needs_tick(), "given back: the writer sleeps again");
        });
    }
}
