//! The audit file itself, owned by the writer actor: recovering the chain head on open, appending
//! a batch with one `fdatasync`, rotating by size, and cutting back to the last durable byte.
//!
//! Recovery on open reads the whole current file (bounded by `max_file_bytes`) through the chain
//! checker, and only the last record of the newest rotated file (its own hash is checked and the
//! current file must continue it); verifying the full history is `verify_path`'s job. A partial
//! last line (a write torn by a crash; never acknowledged, since acknowledgement follows the
//! `fdatasync`) is cut off with a warning. Anything else that does not verify makes the sink
//! refuse to append (`ChainBroken`) rather than fork the chain.
//!
//! After a failed write the sink drops the file handle. The next attempt reopens the path: if it
//! is still the same file (device + inode), everything past the last durable byte is cut off, so
//! records reported as failed never appear later; if it is another file, the chain is recovered
//! from disk and must end exactly where this writer's last durable record did.
//!
//! Paths that are not regular files (e.g. `/dev/full`, used to test failures) are written to
//! without recovery, locking, `fdatasync` or rotation.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::anchor::{self, head_path, read_anchor, Anchor, HeadFile};
use super::chain::{seal, FIRST_SEQ, GENESIS_PREV};
use super::files::{read_last_line, rotated_files, rotated_path, Line, LineReader, MAX_LINE_BYTES};
use super::health::{self, AuditHealth};
use super::record::{outcomes, types, AuditEvent};
use super::verify::{check_record_alone, ChainChecker};
use super::{AuditError, Seq};

mod open;

/// First wait before reopening after a failure; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reopen attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Size of the write probe used to test a directory while failing.
const PROBE_BYTES: usize = 4096;

/// Where the chain continues.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    next_seq: u64,
    prev: String,
    last_ts: u64,
}

impl Head {
    fn genesis() -> Self {
        Head {
            next_seq: FIRST_SEQ,
            prev: GENESIS_PREV.to_owned(),
            last_ts: 0,
        }
    }
}

/// The open current file.
#[derive(Debug)]
struct OpenFile {
    file: File,
    /// False for character devices and the like: no fdatasync, no rotation, no identity check.
    regular: bool,
}

/// The durable state of the current regular file, kept across failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Durable {
    /// (device, inode) of the file.
    id: (u64, u64),
    /// Bytes known to be written and synced.
    len: u64,
    /// Records other than the opening `audit.rotated` marker.
    user_records: u64,
}

/// What a full recovery found on disk.
struct Recovered {
    head: Head,
    len: u64,
    user_records: u64,
    torn_bytes: Option<usize>,
    /// The name of the rotated file the current (empty) file must announce.
    needs_marker: Option<String>,
    /// The hash of the record the head file names, if recovery read it.
    hash_at: Option<String>,
}

/// The single writer's view of the audit file.
#[derive(Debug)]
pub(crate) struct Sink {
    path: PathBuf,
    max_file_bytes: u64,
    health: AuditHealth,
    head: Option<Head>,
    open: Option<OpenFile>,
    durable: Option<Durable>,
    lock: Option<File>,
    /// The head file (regular files only), rewritten after every durable batch.
    head_file: Option<HeadFile>,
    /// The head after every durable batch, for anchoring it outside this host too.
    published: tokio::sync::watch::Sender<Option<Anchor>>,
    /// Set when the chain must not be continued (its head elsewhere does not match).
    refused: Option<String>,
    last_error: Option<AuditError>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn file_id(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a directory entry change (create, rename) durable.
fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

impl Sink {
    /// A sink for `path`; nothing is opened until [`Sink::start`].
    pub(crate) fn new(
        path: PathBuf,
        max_file_bytes: u64,
        health: AuditHealth,
        published: tokio::sync::watch::Sender<Option<Anchor>>,
    ) -> Self {
        Sink {
            path,
            max_file_bytes,
            health,
            head: None,
            open: None,
            durable: None,
            lock: None,
            head_file: None,
            published,
            refused: None,
            last_error: None,
            retry_at: None,
            backoff: INITIAL_BACKOFF,
        }
    }

    /// Opens (creating the directory if needed), recovers the chain and probes that the
    /// directory is writable; failures show in the health value and are retried later.
    pub(crate) fn start(&mut self) {
        let dir = dir_of(&self.path).to_path_buf();
        if let Err(e) = fs::create_dir_all(&dir) {
            self.fail(AuditError::io(&dir, e));
            return;
        }
        if self.ensure_open().is_err() {
            return;
        }
        match self.probe_write() {
            Ok(_) => self.succeeded(),
            Err(e) => self.fail(e),
        }
    }

    /// The last durable seq (0 before the first record).
    pub(crate) fn last_seq(&self) -> u64 {
        self.head.as_ref().map_or(0, |h| h.next_seq - 1)
    }

    /// Drops the file and the writer lock.
    pub(crate) fn close(&mut self) {
        self.open = None;
        self.head_file = None;
        self.lock = None;
    }

    /// Marks the health failing for good: the writer has stopped.
    pub(crate) fn mark_stopped(&self) {
        self.health.set_failing("the audit writer has stopped");
    }

    /// True while the last attempt failed.
    pub(crate) fn is_failing(&self) -> bool {
        !self.health.is_ok()
    }

    /// How long to wait before the next retry (backoff of 100 ms doubling up to 5 s).
    pub(crate) fn retry_delay(&self) -> Duration {
        match self.retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => self.backoff,
        }
    }

    /// Appends `events` in order as one batch: one write and one fdatasync (two more around a
    /// rotation). Returns one result per event.
    pub(crate) fn append_batch(&mut self, events: &[&AuditEvent]) -> Vec<Result<Seq, AuditError>> {
        let mut results: Vec<Option<Result<Seq, AuditError>>> = vec![None; events.len()];
        for (i, ev) in events.iter().enumerate() {
            if let Err(why) = ev.validate() {
                results[i] = Some(Err(AuditError::InvalidEvent(why)));
            }
        }
        let failure = self.append_valid(events, &mut results).err();
        results
            .into_iter()
            .map(|r| match r {
                Some(r) => r,
                None => Err(failure.clone().unwrap_or(AuditError::Closed)),
            })
            .collect()
    }

    fn append_valid(
        &mut self,
        events: &[&AuditEvent],
        results: &mut [Option<Result<Seq, AuditError>>],
    ) -> Result<(), AuditError> {
        if results.iter().all(Option::is_some) {
            return Ok(());
        }
        self.ensure_open()?;
        if let Err(e) = self.check_identity() {
            self.fail(e.clone());
            return Err(e);
        }
        let mut head = self.head.clone().unwrap_or_else(Head::genesis);
        let mut buf: Vec<u8> = Vec::with_capacity(events.len() * 320);
        let mut in_buf: Vec<(usize, Seq)> = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let mut sealed = match self.seal_next(ev, &head) {
                Ok(s) => s,
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            if self.should_rotate(buf.len(), in_buf.len(), sealed.0.line.len()) {
                let step = self
                    .commit(&buf, in_buf.len() as u64, &head)
                    .and_then(|()| {
                        for (j, seq) in in_buf.drain(..) {
                            results[j] = Some(Ok(seq));
                        }
                        buf.clear();
                        self.rotate()
                    });
                if let Err(e) = step {
                    self.fail(e.clone());
                    return Err(e);
                }
                head = self.head.clone().unwrap_or_else(Head::genesis);
                sealed = match self.seal_next(ev, &head) {
                    Ok(s) => s,
                    Err(e) => {
                        results[i] = Some(Err(e));
                        continue;
                    }
                };
            }
            let (s, ts) = sealed;
            buf.extend_from_slice(&s.line);
            in_buf.push((i, s.seq));
            head = Head {
                next_seq: s.seq + 1,
                prev: s.hash,
                last_ts: ts,
            };
        }
        if !buf.is_empty() {
            if let Err(e) = self.commit(&buf, in_buf.len() as u64, &head) {
                self.fail(e.clone());
                return Err(e);
            }
            for (j, seq) in in_buf {
                results[j] = Some(Ok(seq));
            }
            self.succeeded();
        }
        Ok(())
    }

    fn seal_next(
        &self,
        ev: &AuditEvent,
        head: &Head,
    ) -> Result<(super::chain::Sealed, u64), AuditError> {
        let ts = now_ms().max(head.last_ts);
        let sealed = seal(ev, head.next_seq, ts, &head.prev)
            .map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
        if sealed.line.len() > MAX_LINE_BYTES {
            return Err(AuditError::InvalidEvent(format!(
                "record of {} bytes exceeds {MAX_LINE_BYTES}",
                sealed.line.len()
            )));
        }
        Ok((sealed, ts))
    }

    fn should_rotate(&self, buffered: usize, buffered_records: usize, line: usize) -> bool {
        let (Some(open), Some(d)) = (&self.open, &self.durable) else {
            return false;
        };
        open.regular
            && d.user_records + buffered_records as u64 > 0
            && d.len + (buffered + line) as u64 > self.max_file_bytes
    }

    /// Writes and syncs `buf`; on success the chain head becomes `head`.
    fn commit(&mut self, buf: &[u8], user_records: u64, head: &Head) -> Result<(), AuditError> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(open) = self.open.as_mut() else {
            return Err(AuditError::io(
                &self.path,
                io::Error::other("audit file is not open"),
            ));
        };
        let anchor = Anchor {
            seq: head.next_seq - 1,
            hash: head.prev.clone(),
        };
        let regular = open.regular;
        let head_file = self.head_file.as_mut();
        let written = open.file.write_all(buf).and_then(|()| {
            if !open.regular {
                return Ok(());
            }
            open.file.sync_data()?;
            // Acknowledged records are never past the head: it is written before they are.
            match head_file {
                Some(h) => h.write(&anchor),
                None => Err(io::Error::other("the head file is not open")),
            }
        });
        if let Err(e) = written {
            // Cut a partial batch off at once, so readers never see a torn line; if even that
            // fails, the reopen after the failure does it.
            if let (true, Some(d)) = (open.regular, self.durable.as_ref()) {
                let _ = open.file.set_len(d.len);
            }
            return Err(AuditError::io(&self.path, e));
        }
        if let Some(d) = self.durable.as_mut() {
            d.len += buf.len() as u64;
            d.user_records += user_records;
        }
        self.head = Some(head.clone());
        if regular {
            self.published.send_replace(Some(anchor));
        }
        Ok(())
    }

    /// Refuses every further append with `why` (a chain whose head elsewhere does not match).
    pub(crate) fn refuse(&mut self, why: String) {
        self.refused = Some(why.clone());
        self.fail(AuditError::ChainBroken(why));
    }

    /// Notes a durable write: health back to ok, backoff reset.
    fn succeeded(&mut self) {
        self.retry_at = None;
        self.backoff = INITIAL_BACKOFF;
        if self.health.set_ok(self.last_seq()) {
            tracing::info!(path = %self.path.display(), last_seq = self.last_seq(), "audit log writable again");
        }
    }

    /// Notes a failed I/O attempt: counter, error log, health failing, handle dropped, backoff.
    fn fail(&mut self, e: AuditError) {
        health::count_write_error();
        tracing::error!(path = %self.path.display(), error = %e, "audit log write failed");
        self.health.set_failing(&e.to_string());
        self.open = None;
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.last_error = Some(e);
    }

    /// Writes the `audit.rotated` record that opens a new file.
    fn write_marker(&mut self, rotated_name: &str) -> Result<(), AuditError> {
        let head = self.head.clone().unwrap_or_else(Head::genesis);
        let ev = AuditEvent::new(types::AUDIT_ROTATED, outcomes::OK)
            .field_str("rotated_file", rotated_name);
        let (s, ts) = self.seal_next(&ev, &head)?;
        let next = Head {
            next_seq: s.seq + 1,
            prev: s.hash,
            last_ts: ts,
        };
        self.commit(&s.line, 0, &next)
    }

    /// Renames the full current file to the next number and starts a new one.
    fn rotate(&mut self) -> Result<(), AuditError> {
        let n = rotated_files(&self.path)?
            .last()
            .map_or(1, |(n, _)| n.saturating_add(1));
        let target = rotated_path(&self.path, n);
        if fs::symlink_metadata(&target).is_ok() {
            return Err(AuditError::ChainBroken(format!(
                "rotation target {} already exists",
                target.display()
            )));
        }
        fs::rename(&self.path, &target).map_err(|e| AuditError::io(&self.path, e))?;
        sync_dir(dir_of(&self.path))?;
        tracing::info!(from = %self.path.display(), to = %target.display(), "audit log rotated");
        self.open = None;
        self.durable = None;
        // A fresh open finds the current file missing, continues from `target`'s last record and
        // writes the `audit.rotated` marker.
        self.reopen()
    }
}
