//! The audit chain's files on disk: rotated files in chain order (`audit.log.000001`, …, then
//! `audit.log`), and reading their lines with a length cap.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::AuditError;

/// Longest line accepted (and written) in bytes; anything longer is treated as corrupt.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line of a file as read by [`LineReader`].
pub(crate) enum Line {
    /// A complete line, without its `\n`.
    Complete(Vec<u8>),
    /// The last bytes of the file, not ended by `\n` (truncated, or being written).
    Partial(usize),
    /// A line longer than [`MAX_LINE_BYTES`].
    TooLong,
}

/// Reads `\n`-terminated lines with a length cap.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
}

impl<R: Read> LineReader<R> {
    pub(crate) fn new(r: R) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, r),
        }
    }

    /// The next line, `None` at end of file.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let n = (&mut self.inner).take(limit).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            return Ok(Some(Line::Complete(buf)));
        }
        if n as u64 >= limit {
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(Line::Partial(n)))
    }
}

/// The file name of `path` as UTF-8, if it has one.
fn base_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

/// The directory holding `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The rotation number of `candidate` if it names a rotated file of `base` (`base.<digits>`).
pub(crate) fn rotation_number(base: &str, candidate: &str) -> Option<u64> {
    let digits = candidate.strip_prefix(base)?.strip_prefix('.')?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path rotated file number `n` of `path` gets (`audit.log` → `audit.log.000042`).
pub(crate) fn rotated_path(path: &Path, n: u64) -> PathBuf {
    let base = base_name(path).unwrap_or("audit.log");
    path.with_file_name(format!("{base}.{n:06}"))
}

/// The rotated files of `path`, ascending by number.
pub(crate) fn rotated_files(path: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let Some(base) = base_name(path) else {
        return Err(AuditError::Config(format!(
            "audit path {} has no UTF-8 file name",
            path.display()
        )));
    };
    let dir = dir_of(path);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if let Some(n) = rotation_number(base, name) {
                found.push((n, path.with_file_name(name)));
            }
        }
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found)
}

/// The files of the chain at `path` in chain order: rotated files by number, then `path` itself
/// (if it exists). A missing directory gives an empty list.
pub fn chain_files(path: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut files: Vec<PathBuf> = rotated_files(path)?.into_iter().map(|(_, p)| p).collect();
    match std::fs::symlink_metadata(path) {
        Ok(_) => files.push(path.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(AuditError::io(path, e)),
    }
    Ok(files)
}

/// The last complete line of `file` (without `\n`): `Ok(None)` for an empty file, `Err` when the
/// file does not end with `\n` or the line is too long.
pub(crate) fn read_last_line(file: &mut File, path: &Path) -> Result<Option<Vec<u8>>, String> {
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    let window = len.min(MAX_LINE_BYTES as u64 + 1);
    let start = len - window;
    let mut buf = vec![0u8; window as usize];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.last() != Some(&b'\n') {
        return Err(format!(
            "{} does not end with a complete line (truncated)",
            path.display()
        ));
    }
    buf.pop();
    match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => Ok(Some(buf.split_off(i + 1))),
        None if start == 0 => Ok(Some(buf)),
        None => Err(format!(
            "the last line of {} is longer than {MAX_LINE_BYTES} bytes",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names_sort_in_chain_order() {
        assert_eq!(rotation_number("audit.log", "audit.log.000001"), Some(1));
        assert_eq!(
            rotation_number("audit.log", "audit.log.1234567"),
            Some(1_234_567)
        );
        assert_eq!(rotation_number("audit.log", "audit.log.lock"), None);
        assert_eq!(rotation_number("audit.log", "audit.log."), None);
        assert_eq!(rotation_number("audit.log", "audit.logx.1"), None);
        assert_eq!(rotation_number("audit.log", ".audit.log.probe"), None);
        assert_eq!(
            rotated_path(Path::new("/d/audit.log"), 7),
            PathBuf::from("/d/audit.log.000007")
        );
    }
}
