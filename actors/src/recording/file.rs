//! One recording file being written: events are encoded into a buffer that is appended and
//! `fdatasync`ed as one chunk; each chunk's digest chains to the one before it in the file.
//! Output that follows output within [`COALESCE`] joins the same `o` event.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::cast;
use super::names;

/// Output within this long of an `o` event's time is appended to that event (one event per
/// burst instead of one per read; the screen it draws is the same).
pub const COALESCE: Duration = Duration::from_millis(10);
/// Largest text an `o` event collects before it is written (and the next one begun).
pub const COALESCE_BYTES: usize = 64 * 1024;
/// Buffer capacity kept while nothing is pending (a burst's larger buffer is given back).
const IDLE_CAPACITY: usize = 64 * 1024;

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
    last: Duration,
    /// Bytes durable in the file (the end of the last sealed chunk).
    written: u64,
    buf: Vec<u8>,
    /// The `o` event being collected: its time and its text (not yet in `buf`).
    out_at: Option<Duration>,
    out_text: String,
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
            last: Duration::ZERO,
            written: 0,
            buf: header.into_bytes(),
            out_at: None,
            out_text: String::new(),
            first_pending: Some(Instant::now()),
            index: 0,
            prev_sha: GENESIS_SHA.to_owned(),
        })
    }

    /// The file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file time of something that happened at `at` (times never go back within a file).
    fn time(&mut self, at: Instant) -> Duration {
        let t = at.saturating_duration_since(self.t0).max(self.last);
        self.last = t;
        self.first_pending.get_or_insert_with(Instant::now);
        t
    }

    /// Appends one event that happened at `at` (after the output collected before it).
    pub fn push(&mut self, at: Instant, code: &str, data: &str) {
        self.end_output();
        let t = self.time(at);
        cast::write_event(&mut self.buf, t, code, data);
    }

    /// Output text that appeared at `at`: it joins the `o` event being collected when that
    /// began less than [`COALESCE`] before and holds under [`COALESCE_BYTES`].
    pub fn push_output(&mut self, at: Instant, text: &str) {
        if text.is_empty() {
            return;
        }
        let t = self.time(at);
        if self.out_at.is_some_and(|o| {
            t.saturating_sub(o) >= COALESCE || self.out_text.len() >= COALESCE_BYTES
        }) {
            self.end_output();
        }
        self.out_at.get_or_insert(t);
        self.out_text.push_str(text);
    }

    /// Writes the `o` event being collected into the buffer.
    fn end_output(&mut self) {
        if let Some(t) = self.out_at.take() {
            cast::write_event(&mut self.buf, t, "o", &self.out_text);
            self.out_text.clear();
        }
    }

    /// Bytes not yet sealed (collected output counted before escaping).
    pub fn pending(&self) -> usize {
        self.buf.len() + self.out_text.len()
    }

    /// Size of the file once the pending bytes are sealed (before escaping collected output).
    pub fn size(&self) -> u64 {
        self.written + self.pending() as u64
    }

    /// Whether the pending bytes should be sealed now (enough bytes, or old enough).
    pub fn due(&self, chunk_bytes: usize, interval: Duration) -> bool {
        let pending = self.pending();
        pending >= chunk_bytes
            || self
                .first_pending
                .is_some_and(|t| pending > 0 && t.elapsed() >= interval)
    }

    /// Gives back a burst's buffer once nothing is pending.
    pub fn trim(&mut self) {
        if self.pending() == 0 {
            self.buf.shrink_to(IDLE_CAPACITY);
            self.out_text.shrink_to(IDLE_CAPACITY);
        }
    }

    /// Whether a burst left more buffer than [`IDLE_CAPACITY`] for [`Self::trim`] to give back.
    pub fn holds_burst_capacity(&self) -> bool {
        self.buf.capacity() > IDLE_CAPACITY || self.out_text.capacity() > IDLE_CAPACITY
    }

    /// Writes and syncs the pending bytes as one chunk. On error the file is cut back to its
    /// last sealed chunk (best effort) and the pending bytes are kept.
    pub fn seal(&mut self) -> std::io::Result<Option<Chunk>> {
        self.end_output();
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
    fn output_within_the_coalescing_window_is_one_event_and_other_events_end_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CastFile::create(dir.path(), "s-1", (80, 24), SystemTime::now()).unwrap();
        let t0 = Instant::now();
        f.push_output(t0, "a");
        f.push_output(t0 + Duration::from_millis(1), "b");
        f.push(t0 + Duration::from_millis(2), "m", "join driver alice");
        f.push_output(t0 + Duration::from_millis(3), "c");
        f.push_output(t0 + Duration::from_millis(3) + COALESCE, "d");
        f.push_output(t0 + Duration::from_millis(4) + COALESCE, "");
        f.seal().unwrap().unwrap();
        let data = std::fs::read_to_string(f.path()).unwrap();
        let (_, ev) = cast::parse(&data).unwrap();
        let got: Vec<(&str, &str)> = ev
            .iter()
            .map(|e| (e.code.as_str(), e.data.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("o", "ab"),
                ("m", "join driver alice"),
                ("o", "c"),
                ("o", "d")
            ]
        );
        assert!(ev.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn collected_output_counts_as_pending_and_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CastFile::create(dir.path(), "s-1", (80, 24), SystemTime::now()).unwrap();
        f.seal().unwrap().unwrap();
        f.push_output(Instant::now(), &"x".repeat(100));
        assert_eq!(f.pending(), 100);
        assert!(f.due(100, Duration::from_secs(60)));
        let c = f.seal().unwrap().unwrap();
        assert!(c.bytes > 100, "the event line holds the text: {c:?}");
        assert_eq!(f.pending(), 0);
        f.trim();
    }

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
