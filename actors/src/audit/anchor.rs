//! The chain's head anchored outside the log: `<name>.head` beside the current file holds the
//! seq and hash of the last durable record, rewritten after every fsync'd batch: a cut tail shows.
//!
//! A hash chain alone cannot see lines removed at its very end; the head file can. The writer
//! refuses to continue a chain that does not reach its head (or reaches it with another hash),
//! and verification reports such a chain as cut. The file is one canonical JSON line,
//! `{"hash":"<64 hex>","seq":<n>}`; it is written after the log's `fdatasync` and before any
//! record of the batch is acknowledged, so it never names a record the log does not hold. It is
//! not synced itself (a second `fdatasync` per batch cost two thirds of the group commit's
//! throughput): it survives a crash of the process, and after a power loss it can only lag
//! behind the log, which narrows what it proves but never makes an intact log look cut.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::chain::is_hash_hex;

/// The last durable record of a chain, as the head file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// The head file of the audit log at `path` (`audit.log` → `audit.log.head`).
pub fn head_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.head"))
}

/// Reads the head file at `head`: `Ok(None)` when there is none (or it is empty: created, not
/// yet written), `Err` when it is unreadable or malformed.
pub(crate) fn read_anchor(head: &Path) -> Result<Option<Anchor>, String> {
    let text = match std::fs::read(head) {
        Ok(t) if t.is_empty() => return Ok(None),
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", head.display())),
    };
    let malformed = || format!("{} is not a head record", head.display());
    let v: Value = serde_json::from_slice(&text).map_err(|_| malformed())?;
    let seq = v.get("seq").and_then(Value::as_u64).ok_or_else(malformed)?;
    let hash = v
        .get("hash")
        .and_then(Value::as_str)
        .filter(|h| is_hash_hex(h))
        .ok_or_else(malformed)?;
    Ok(Some(Anchor {
        seq,
        hash: hash.to_owned(),
    }))
}

/// The open head file, rewritten in place.
#[derive(Debug)]
pub(crate) struct HeadFile {
    file: File,
}

impl HeadFile {
    /// Opens (creating) the head file at `head`.
    pub(crate) fn open(head: &Path) -> io::Result<HeadFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(head)?;
        Ok(HeadFile { file })
    }

    /// Replaces the content with `a`: one write of a fixed-size line at offset 0 (the seq is
    /// padded with spaces, so the file never changes size and no write leaves a shorter line
    /// behind), not synced: see the module docs.
    pub(crate) fn write(&mut self, a: &Anchor) -> io::Result<()> {
        let line = format!("{{\"hash\":\"{}\",\"seq\":{:<20}}}\n", a.hash, a.seq);
        self.file.write_all_at(line.as_bytes(), 0)
    }
}

/// Why a chain ending at `last_seq` does not reach `anchor` (`hash_at` = the chain's hash at
/// `anchor.seq`, if it was seen), or `None` when it does.
pub fn mismatch(anchor: &Anchor, last_seq: u64, hash_at: Option<&str>) -> Option<String> {
    if anchor.seq > last_seq {
        return Some(format!(
            "the chain ends at seq {last_seq} but its head file names seq {}: records were cut \
             off the end",
            anchor.seq
        ));
    }
    match hash_at {
        Some(h) if h == anchor.hash => None,
        Some(_) => Some(format!(
            "the record at seq {} is not the one the head file names: the log was rewritten",
            anchor.seq
        )),
        None => Some(format!(
            "the head file names seq {}, older than the records read: the head file was replaced",
            anchor.seq
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_file_round_trip_and_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let p = head_path(&dir.path().join("audit.log"));
        assert!(p.ends_with("audit.log.head"));
        assert_eq!(read_anchor(&p), Ok(None));
        let a = Anchor {
            seq: 12,
            hash: "ab".repeat(32),
        };
        let mut f = HeadFile::open(&p).unwrap();
        f.write(&Anchor {
            seq: 123_456,
            hash: "cd".repeat(32),
        })
        .unwrap();
        f.write(&a).unwrap();
        assert_eq!(read_anchor(&p), Ok(Some(a.clone())));
        assert_eq!(mismatch(&a, 12, Some(&a.hash)), None);
        assert_eq!(mismatch(&a, 20, Some(&a.hash)), None);
        assert!(mismatch(&a, 11, None).unwrap().contains("cut off"));
        assert!(mismatch(&a, 12, Some(&"00".repeat(32)))
            .unwrap()
            .contains("rewritten"));
        std::fs::write(&p, b"{\"seq\":1}").unwrap();
        assert!(read_anchor(&p).is_err());
    }
}
