//! Opening the audit file: the lock, the head file, recovering the chain from disk (or
//! refusing to continue one that does not reach its head), and reopening after a failure.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::*;

impl Sink {
    /// Makes sure the file is open, reopening (and recovering) if a failure closed it. While
    /// backing off, fails fast with the last error.
    pub(super) fn ensure_open(&mut self) -> Result<(), AuditError> {
        if let Some(why) = &self.refused {
            return Err(AuditError::ChainBroken(why.clone()));
        }
        if self.open.is_some() {
            return Ok(());
        }
        if let (Some(at), Some(e)) = (self.retry_at, &self.last_error) {
            if Instant::now() < at {
                return Err(e.clone());
            }
        }
        match self.reopen() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// Fails when the path no longer names the open file (moved, replaced, deleted): records
    /// written there would be invisible to readers and verifiers of the path.
    pub(super) fn check_identity(&self) -> Result<(), AuditError> {
        let (Some(open), Some(d)) = (&self.open, &self.durable) else {
            return Ok(());
        };
        if !open.regular {
            return Ok(());
        }
        let meta = fs::metadata(&self.path).map_err(|e| AuditError::io(&self.path, e))?;
        if file_id(&meta) != d.id {
            return Err(AuditError::io(
                &self.path,
                io::Error::other("the audit file was moved or replaced while open"),
            ));
        }
        Ok(())
    }

    /// Retry from the actor's timer while failing: reopen if needed and probe with a real write
    /// next to the file. Returns true when the sink is known writable again.
    pub(crate) fn retry(&mut self) -> bool {
        self.retry_at = None;
        if self.ensure_open().is_err() {
            return false;
        }
        if let Err(e) = self.check_identity() {
            self.fail(e);
            return false;
        }
        match self.probe_write() {
            Ok(true) => {
                self.succeeded();
                true
            }
            // Not a regular file: only a real record can show it works again.
            Ok(false) => false,
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// Writes, syncs and removes a small probe file next to the audit file. `Ok(false)` when the
    /// sink is not a regular file (nothing to probe).
    pub(super) fn probe_write(&self) -> Result<bool, AuditError> {
        if !self.open.as_ref().is_some_and(|o| o.regular) {
            return Ok(false);
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let probe = self.path.with_file_name(format!(".{name}.probe"));
        let res = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&probe)
            .and_then(|mut f| {
                f.write_all(&[0u8; PROBE_BYTES])?;
                f.sync_data()
            });
        let removed = fs::remove_file(&probe);
        res.map_err(|e| AuditError::io(&probe, e))?;
        removed.map_err(|e| AuditError::io(&probe, e))?;
        Ok(true)
    }

    fn acquire_lock(&mut self) -> Result<(), AuditError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lock_path = self.path.with_file_name(format!("{name}.lock"));
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| AuditError::io(&lock_path, e))?;
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                self.lock = Some(f);
                Ok(())
            }
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                Err(AuditError::Locked(self.path.clone()))
            }
            Err(e) => Err(AuditError::io(&lock_path, io::Error::from(e))),
        }
    }

    /// Opens the path again after a failure or a rotation.
    pub(super) fn reopen(&mut self) -> Result<(), AuditError> {
        let existed = match fs::metadata(&self.path) {
            Ok(m) if !m.is_file() => return self.open_special(),
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(AuditError::io(&self.path, e)),
        };
        if !existed {
            if let (Some(d), Some(head)) = (self.durable, &self.head) {
                // Creating a fresh file here would start a second chain at this path.
                return Err(AuditError::ChainBroken(format!(
                    "{} disappeared while this writer held it ({} bytes, last durable seq {}); \
                     put it back or restart after investigating",
                    self.path.display(),
                    d.len,
                    head.next_seq - 1
                )));
            }
        }
        self.acquire_lock()?;
        self.open_head_file()?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| AuditError::io(&self.path, e))?;
        let meta = file.metadata().map_err(|e| AuditError::io(&self.path, e))?;
        if !existed {
            sync_dir(dir_of(&self.path))?;
        }
        let id = file_id(&meta);
        match (&self.head, self.durable) {
            (Some(_), Some(d)) if d.id == id => {
                let len = meta.len();
                if len < d.len {
                    return Err(AuditError::ChainBroken(format!(
                        "{} shrank from {} to {len} bytes while this writer held it",
                        self.path.display(),
                        d.len
                    )));
                }
                if len > d.len {
                    file.set_len(d.len)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| AuditError::io(&self.path, e))?;
                    tracing::warn!(
                        path = %self.path.display(),
                        bytes = len - d.len,
                        "cut unacknowledged bytes after a failed audit write"
                    );
                }
                self.open = Some(OpenFile {
                    file,
                    regular: true,
                });
                Ok(())
            }
            _ => {
                let head = head_path(&self.path);
                let anchor = read_anchor(&head).map_err(AuditError::ChainBroken)?;
                let rec = recover(&self.path, &file, anchor.as_ref().map(|a| a.seq))?;
                let last_seq = rec.head.next_seq - 1;
                let last_hash = rec.head.prev.clone();
                if let Some(a) = &anchor {
                    if let Some(why) = anchor::mismatch(a, last_seq, rec.hash_at.as_deref()) {
                        return Err(AuditError::ChainBroken(format!(
                            "{} against {}: {why}; refusing to continue this chain",
                            self.path.display(),
                            head.display()
                        )));
                    }
                } else if last_seq > 0 {
                    tracing::warn!(
                        path = %self.path.display(),
                        last_seq,
                        "the audit log has no head file; anchoring its chain at its last record"
                    );
                }
                if let Some(n) = rec.torn_bytes {
                    file.set_len(rec.len)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| AuditError::io(&self.path, e))?;
                    tracing::warn!(
                        path = %self.path.display(),
                        bytes = n,
                        "cut a torn (never acknowledged) partial last line from the audit file"
                    );
                }
                if let Some(mine) = &self.head {
                    if mine.next_seq != rec.head.next_seq || mine.prev != rec.head.prev {
                        return Err(AuditError::ChainBroken(format!(
                            "the chain on disk at {} continues at seq {} but this writer's last \
                             durable record is seq {}: the file was replaced or modified externally",
                            self.path.display(),
                            rec.head.next_seq,
                            mine.next_seq - 1
                        )));
                    }
                }
                self.head = Some(rec.head);
                self.durable = Some(Durable {
                    id,
                    len: rec.len,
                    user_records: rec.user_records,
                });
                self.open = Some(OpenFile {
                    file,
                    regular: true,
                });
                if let Some(rotated_name) = rec.needs_marker {
                    self.write_marker(&rotated_name)?;
                } else if last_seq > 0 {
                    let at = Anchor {
                        seq: last_seq,
                        hash: last_hash,
                    };
                    if anchor.is_none_or(|a| a.seq != last_seq) {
                        if let Some(h) = self.head_file.as_mut() {
                            h.write(&at).map_err(|e| AuditError::io(&head, e))?;
                        }
                    }
                    self.published.send_replace(Some(at));
                }
                Ok(())
            }
        }
    }

    /// Opens the head file beside the log (once), making its creation durable.
    fn open_head_file(&mut self) -> Result<(), AuditError> {
        if self.head_file.is_some() {
            return Ok(());
        }
        let head = head_path(&self.path);
        let existed = head.exists();
        self.head_file = Some(HeadFile::open(&head).map_err(|e| AuditError::io(&head, e))?);
        if !existed {
            sync_dir(dir_of(&self.path))?;
        }
        Ok(())
    }

    /// Opens a path that is not a regular file (a device): no recovery, lock or sync.
    fn open_special(&mut self) -> Result<(), AuditError> {
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| AuditError::io(&self.path, e))?;
        if self.head.is_none() {
            self.head = Some(Head::genesis());
        }
        self.durable = None;
        self.open = Some(OpenFile {
            file,
            regular: false,
        });
        Ok(())
    }
}

/// Recovers the chain head from disk: the last record of the newest rotated file, then every
/// line of the current file.
/// `want` is the seq whose hash the caller needs (the head file's).
fn recover(path: &Path, file: &File, want: Option<u64>) -> Result<Recovered, AuditError> {
    let rotated = rotated_files(path)?;
    let mut hash_at = None;
    let mut ck = match rotated.last() {
        Some((_, last_path)) => {
            let mut f = File::open(last_path).map_err(|e| AuditError::io(last_path, e))?;
            let line = read_last_line(&mut f, last_path)
                .map_err(AuditError::ChainBroken)?
                .ok_or_else(|| {
                    AuditError::ChainBroken(format!(
                        "rotated file {} is empty",
                        last_path.display()
                    ))
                })?;
            let last = check_record_alone(&line).map_err(|e| {
                AuditError::ChainBroken(format!("last record of {}: {e}", last_path.display()))
            })?;
            if Some(last.seq) == want {
                hash_at = Some(last.hash.clone());
            }
            let mut ck = ChainChecker::after(&last);
            ck.begin_file(true);
            ck
        }
        None => {
            let mut ck = ChainChecker::genesis();
            ck.begin_file(false);
            ck
        }
    };
    let mut reader = LineReader::new(file);
    let mut len = 0u64;
    let mut user_records = 0u64;
    let mut torn_bytes = None;
    let mut lineno = 0u64;
    while let Some(line) = reader.next_line().map_err(|e| AuditError::io(path, e))? {
        lineno += 1;
        match line {
            Line::Complete(bytes) => {
                let good = ck.check_line(&bytes).map_err(|b| {
                    AuditError::ChainBroken(format!(
                        "{}:{lineno}: first bad seq {}: {}",
                        path.display(),
                        b.seq,
                        b.reason
                    ))
                })?;
                len += bytes.len() as u64 + 1;
                if Some(good.seq) == want {
                    hash_at = Some(good.hash);
                }
                if !good.rotated {
                    user_records += 1;
                }
            }
            Line::Partial(n) => {
                torn_bytes = Some(n);
                break;
            }
            Line::TooLong => {
                return Err(AuditError::ChainBroken(format!(
                    "{}:{lineno}: line longer than {MAX_LINE_BYTES} bytes",
                    path.display()
                )))
            }
        }
    }
    let needs_marker = if ck.records == 0 {
        rotated
            .last()
            .and_then(|(_, p)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    } else {
        None
    };
    Ok(Recovered {
        head: Head {
            next_seq: ck.expected_seq,
            prev: ck.prev.clone(),
            last_ts: ck.last_ts,
        },
        len,
        user_records,
        torn_bytes,
        needs_marker,
        hash_at,
    })
}
