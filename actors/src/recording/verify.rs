//! Checking recordings against their `recording.chunk` records (`attachd audit verify
//! --recordings`, the API's `verified`): every chunk's range, digest and link, the header's
//! session, nothing after the last chunk, and no file without records (an empty file, one
//! whose first chunk is not sealed yet, holds nothing to verify).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::file::GENESIS_SHA;
use super::retention::DELETED_RECORD;
use super::{cast, names, CHUNK_RECORD};
use crate::audit::{for_each_record, AuditError};

/// One `recording.chunk` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRec {
    /// Chunk number within the file.
    pub index: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Length.
    pub bytes: u64,
    /// Digest of the chunk.
    pub sha256: String,
    /// Digest of the chunk before it.
    pub prev_sha256: String,
}

/// Which recording a record is about: `(tenant, session_id, file)`.
pub type Key = (String, String, String);

/// The chunk records of an audit chain, by file, in the order the files first appear.
#[derive(Debug, Default)]
pub struct ChunkIndex {
    order: Vec<Key>,
    chunks: HashMap<Key, Vec<ChunkRec>>,
    deleted: HashSet<Key>,
}

fn str_field(o: &Map<String, Value>, k: &str) -> String {
    o.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn u64_field(o: &Map<String, Value>, k: &str) -> u64 {
    o.get(k).and_then(Value::as_u64).unwrap_or(u64::MAX)
}

impl ChunkIndex {
    /// Reads the chunk and deletion records of the audit files `paths` (chain order).
    pub fn load(paths: &[PathBuf]) -> Result<Self, AuditError> {
        let mut idx = ChunkIndex::default();
        for_each_record(paths, &[CHUNK_RECORD, DELETED_RECORD], |o| {
            let key = (
                str_field(o, "tenant"),
                str_field(o, "session_id"),
                str_field(o, "file"),
            );
            if o.get("type").and_then(Value::as_str) == Some(DELETED_RECORD) {
                idx.deleted.insert(key);
                return;
            }
            let rec = ChunkRec {
                index: u64_field(o, "index"),
                offset: u64_field(o, "offset"),
                bytes: u64_field(o, "bytes"),
                sha256: str_field(o, "sha256"),
                prev_sha256: str_field(o, "prev_sha256"),
            };
            if !idx.chunks.contains_key(&key) {
                idx.order.push(key.clone());
            }
            idx.chunks.entry(key).or_default().push(rec);
        })?;
        Ok(idx)
    }

    /// The chunk records of one file.
    pub fn chunks(&self, tenant: &str, session_id: &str, file: &str) -> Option<&[ChunkRec]> {
        self.chunks
            .get(&(tenant.to_owned(), session_id.to_owned(), file.to_owned()))
            .map(Vec::as_slice)
    }
}

/// The first problem found in one recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadChunk {
    /// The session the file belongs to (by where it lies, or by its records).
    pub session_id: String,
    /// The file name.
    pub file: String,
    /// The first chunk that does not verify.
    pub chunk: u64,
    /// What is wrong.
    pub reason: String,
}

/// The result of checking every recording under a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingReport {
    /// True when every file and chunk verified.
    pub ok: bool,
    /// Files checked.
    pub files: u64,
    /// Chunks verified.
    pub chunks: u64,
    /// The first bad file and chunk.
    pub first_bad: Option<BadChunk>,
}

/// Checks one file against its chunk records; `Ok(chunks)` or `Err((chunk, reason))`.
pub fn verify_file(
    path: &Path,
    session_id: &str,
    chunks: &[ChunkRec],
) -> Result<u64, (u64, String)> {
    let mut f = File::open(path).map_err(|e| (0, format!("cannot open the file: {e}")))?;
    let len = f
        .metadata()
        .map_err(|e| (0, format!("cannot stat the file: {e}")))?
        .len();
    let (mut offset, mut prev) = (0u64, GENESIS_SHA.to_owned());
    let mut buf = vec![0u8; 64 * 1024];
    for (i, c) in chunks.iter().enumerate() {
        let i = i as u64;
        if c.index != i {
            return Err((
                i,
                format!(
                    "the record of chunk {i} is missing (found chunk {})",
                    c.index
                ),
            ));
        }
        if c.offset != offset || c.prev_sha256 != prev {
            return Err((i, "the chunk records do not link up".into()));
        }
        let end = offset.saturating_add(c.bytes);
        if end > len {
            return Err((
                i,
                format!("the file is cut short: chunk {i} ends at byte {end}, the file has {len}"),
            ));
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| (i, e.to_string()))?;
        let mut h = Sha256::new();
        let mut left = c.bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n])
                .map_err(|e| (i, e.to_string()))?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        let sha = hex::encode(h.finalize());
        if sha != c.sha256 {
            return Err((
                i,
                "the bytes differ from what was recorded (edited, missing or moved)".into(),
            ));
        }
        offset = end;
        prev = sha;
    }
    if chunks.is_empty() {
        // A file just begun holds nothing until its first chunk is sealed.
        if len == 0 {
            return Ok(0);
        }
        return Err((0, "no recording.chunk record names this file".into()));
    }
    if len > offset {
        // Appended bytes, or a chunk written and synced whose record never followed (the
        // replica stopped between the two): the bytes cannot be told apart, so neither verifies.
        return Err((
            chunks.len() as u64,
            format!(
                "{} bytes after the last chunk are not covered by any record (appended later, \
                 or written by a replica that stopped before chaining them)",
                len - offset
            ),
        ));
    }
    let mut first = String::new();
    f.seek(SeekFrom::Start(0)).map_err(|e| (0, e.to_string()))?;
    BufReader::new(f.take(64 * 1024))
        .read_line(&mut first)
        .map_err(|e| (0, e.to_string()))?;
    match cast::parse_header(&first) {
        Ok(h) if h.title == session_id => Ok(chunks.len() as u64),
        Ok(h) => Err((0, format!("the header names session {:?}", h.title))),
        Err(e) => Err((0, e)),
    }
}

/// Checks every recording the records in `idx` name, and every file under `dir`.
pub fn verify_dir(idx: &ChunkIndex, dir: &Path) -> RecordingReport {
    let mut report = RecordingReport {
        ok: true,
        files: 0,
        chunks: 0,
        first_bad: None,
    };
    let fail =
        |r: &mut RecordingReport, session_id: &str, file: &str, (chunk, reason): (u64, String)| {
            r.ok = false;
            r.first_bad.get_or_insert(BadChunk {
                session_id: session_id.to_owned(),
                file: file.to_owned(),
                chunk,
                reason,
            });
        };
    let mut seen = HashSet::new();
    for key in &idx.order {
        let (tenant, session_id, file) = key;
        let Some(path) = names::file_path(dir, tenant, session_id, file) else {
            fail(
                &mut report,
                session_id,
                file,
                (0, "the record names an invalid path".into()),
            );
            continue;
        };
        seen.insert(path.clone());
        if idx.deleted.contains(key) {
            continue;
        }
        report.files += 1;
        match verify_file(&path, session_id, &idx.chunks[key]) {
            Ok(n) => report.chunks += n,
            Err(e) => fail(&mut report, session_id, file, e),
        }
    }
    match names::walk(dir) {
        Ok(found) => {
            for (_, session_id, file, path) in found {
                let empty = std::fs::metadata(&path).is_ok_and(|m| m.len() == 0);
                if !seen.contains(&path) && !empty {
                    report.files += 1;
                    fail(
                        &mut report,
                        &session_id,
                        &file,
                        (
                            0,
                            "no recording.chunk record names this file here (moved or forged)"
                                .into(),
                        ),
                    );
                }
            }
        }
        Err(e) => fail(
            &mut report,
            "",
            "",
            (0, format!("cannot list {}: {e}", dir.display())),
        ),
    }
    report
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;
    use crate::recording::file::{CastFile, Chunk};

    fn rec(c: &Chunk) -> ChunkRec {
        ChunkRec {
            index: c.index,
            offset: c.offset,
            bytes: c.bytes,
            sha256: c.sha256.clone(),
            prev_sha256: c.prev_sha256.clone(),
        }
    }

    #[test]
    fn an_empty_file_without_records_verifies_and_an_emptied_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CastFile::create(dir.path(), "s-1", (80, 24), SystemTime::now()).unwrap();
        // Created, nothing sealed yet: no byte to check, no record to check it against.
        assert_eq!(verify_file(f.path(), "s-1", &[]), Ok(0));
        f.push_output(Instant::now(), "hello");
        let c = f.seal().unwrap().unwrap();
        assert_eq!(verify_file(f.path(), "s-1", &[rec(&c)]), Ok(1));
        std::fs::write(f.path(), b"").unwrap();
        let (chunk, reason) = verify_file(f.path(), "s-1", &[rec(&c)]).unwrap_err();
        assert_eq!(chunk, 0);
        assert!(reason.contains("cut short"), "{reason}");
    }

    #[test]
    fn a_chunk_synced_but_never_chained_is_an_uncovered_tail_at_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CastFile::create(dir.path(), "s-1", (80, 24), SystemTime::now()).unwrap();
        f.push_output(Instant::now(), "first");
        let a = f.seal().unwrap().unwrap();
        f.push_output(Instant::now(), "second");
        // The replica stops after this chunk is synced, before its record is written.
        let _unchained = f.seal().unwrap().unwrap();
        let (chunk, reason) = verify_file(f.path(), "s-1", &[rec(&a)]).unwrap_err();
        assert_eq!(
            chunk, 1,
            "the first chunk verified; the second is the one not covered"
        );
        assert!(reason.contains("not covered"), "{reason}");
    }
}
