//! One recording file being written: events are encoded into a buffer that is appended and
//! `fdatasync`ed as one chunk; each chunk's digest chains to the one before it in the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::cast;
use super::names;

/// The digest that precedes a file's first chunk.
pub const GENESIS_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A sealed chunk: what its `recording.chunk` audit record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file name.
    pub file: String,
    /// Chunk number within the file (from 0).
    pub index: u64,
    /// Byte offset of the chunk in the file.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// The previous chunk's digest ([`GENESIS_SHA`] for the first).
    pub prev_sha256: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// An open recording file.
pub struct CastFile {
    name: String,
    path: PathBuf,
    file: File,
    t0: Instant,
    last: std::time::Duration,
    /// Bytes durable in the file (the end of the last sealed chunk).
    written: u64,
    buf: Vec<u8>,
    first_pending: Option<Instant>,
    index: u64,
    prev_sha: String,
}

impl CastFile {
    /// Creates a new file in `session_dir`, started at `now`, whose header describes a
    /// `cols`×`rows` terminal.
    pub fn create(
        session_dir: &Path,
        session_id: &str,
        (cols, rows): (u16, u16),
        now: SystemTime,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(session_dir)?;
        let name = names::new_file_name(now);
        let path = session_dir.join(&name);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        let ts = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = cast::header_line(cols, rows, ts, session_id);
        Ok(CastFile {
            name,
            path,
            file,
            t0: Instant::now(),
            last: std::time::Duration::ZERO,
            written: 0,
            buf: header.into_bytes(),
            first_pending: Some(Instant::now()),
            index: 0,
            prev_sha: GENESIS_SHA.to_owned(),
        })
    }

    /// The file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends one event that happened at `at` (times never go back within a file).
    pub fn push(&mut self, at: Instant, code: &str, data: &str) {
        let t = at.saturating_duration_since(self.t0).max(self.last);
        self.last = t;
        self.buf
            .extend_from_slice(cast::event_line(t, code, data).as_bytes());
        self.first_pending.get_or_insert_with(Instant::now);
    }

    /// Bytes buffered and not yet sealed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Size of the file once the pending bytes are sealed.
    pub fn size(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Whether the pending bytes should be sealed now (enough bytes, or old enough).
    pub fn due(&self, chunk_bytes: usize, interval: std::time::Duration) -> bool {
        self.buf.len() >= chunk_bytes
            || self
                .first_pending
                .is_some_and(|t| !self.buf.is_empty() && t.elapsed() >= interval)
    }

    /// Writes and syncs the pending bytes as one chunk. On error the file is cut back to its
    /// last sealed chunk (best effort) and the pending bytes are kept.
    pub fn seal(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let res = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = res {
            let _ = self.file.set_len(self.written);
            return Err(e);
        }
        let sha = sha256_hex(&self.buf);
        let chunk = Chunk {
            file: self.name.clone(),
            index: self.index,
            offset: self.written,
            bytes: self.buf.len() as u64,
            sha256: sha.clone(),
            prev_sha256: std::mem::replace(&mut self.prev_sha, sha),
        };
        self.index += 1;
        self.written += chunk.bytes;
        self.buf.clear();
        self.first_pending = None;
        Ok(Some(chunk))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_chain_and_cover_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CastFile::create(dir.path(), "s-1", (80, 24), SystemTime::now()).unwrap();
        f.push(Instant::now(), "o", "hello");
        let a = f.seal().unwrap().unwrap();
        f.push(Instant::now(), "o", "world");
        let b = f.seal().unwrap().unwrap();
        assert_eq!(f.seal().unwrap(), None);
        assert_eq!(
            (a.index, a.offset, a.prev_sha256.as_str()),
            (0, 0, GENESIS_SHA)
        );
        assert_eq!((b.index, b.offset), (1, a.bytes));
        assert_eq!(b.prev_sha256, a.sha256);
        let data = std::fs::read(f.path()).unwrap();
        assert_eq!(data.len() as u64, a.bytes + b.bytes);
        assert_eq!(sha256_hex(&data[b.offset as usize..]), b.sha256);
        let (h, ev) = cast::parse(std::str::from_utf8(&data).unwrap()).unwrap();
        assert_eq!(h.title, "s-1");
        assert_eq!(ev.len(), 2);
    }
}
