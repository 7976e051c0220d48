//! Where recordings live and what their files are called: `<dir>/<tenant>/<session>/<file>`,
//! file = `<UTC start, compact>-<8 hex>.cast`. Every name is checked before a path is built.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file suffix of a recording.
pub const SUFFIX: &str = ".cast";

/// Whether `s` may be used as one path component as it is: `[A-Za-z0-9._-]{1,128}`, not dots.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The directory name of a tenant: the tenant itself when plain, else `~` and its hex bytes
/// (`~` is never plain, so the two forms cannot collide).
pub fn tenant_dir(tenant: &str) -> String {
    if is_plain(tenant) {
        tenant.to_owned()
    } else {
        format!("~{}", hex::encode(tenant.as_bytes()))
    }
}

/// The tenant a directory name stands for (the inverse of [`tenant_dir`]).
pub fn tenant_from_dir(d: &str) -> Option<String> {
    match d.strip_prefix('~') {
        Some(h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        None => is_plain(d).then(|| d.to_owned()),
    }
}

/// Whether `id` can name a session's directory (session ids and pod names always can).
pub fn is_valid_session_id(id: &str) -> bool {
    is_plain(id)
}

/// A fresh file name for a recording that starts at `started`:
/// `20261202T022700.123Z-1a2b3c4d.cast` (names sort by start time).
pub fn new_file_name(started: SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_millis(started)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{stamp}-{tag}{SUFFIX}")
}

/// Whether `name` is a recording file name as [`new_file_name`] makes them (nothing else is
/// ever read or served, so a caller's `..` or `/` never reaches the file system).
pub fn is_valid_file_name(name: &str) -> bool {
    let b = name.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 34
        && digits(0..8)
        && b[8] == b'T'
        && digits(9..15)
        && b[15] == b'.'
        && digits(16..19)
        && b[19] == b'Z'
        && b[20] == b'-'
        && b[21..29]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && name.ends_with(SUFFIX)
}

/// The RFC 3339 start time a valid file name carries (`2026-12-02T02:27:00.123Z`).
pub fn started_at(name: &str) -> Option<String> {
    if !is_valid_file_name(name) {
        return None;
    }
    let s = &name[..20];
    Some(format!(
        "{}-{}-{}T{}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..20]
    ))
}

/// The directory of one session's recordings.
pub fn session_dir(dir: &Path, tenant: &str, session_id: &str) -> Option<PathBuf> {
    is_valid_session_id(session_id).then(|| dir.join(tenant_dir(tenant)).join(session_id))
}

/// The path of one recording, if both names are valid.
pub fn file_path(dir: &Path, tenant: &str, session_id: &str, file: &str) -> Option<PathBuf> {
    let d = session_dir(dir, tenant, session_id)?;
    is_valid_file_name(file).then(|| d.join(file))
}

/// The recording files of a session, oldest first, with their sizes.
pub fn list_files(
    dir: &Path,
    tenant: &str,
    session_id: &str,
) -> std::io::Result<Vec<(String, u64)>> {
    let Some(d) = session_dir(dir, tenant, session_id) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries_of(&d)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if is_valid_file_name(&name) {
            out.push((name, entry.metadata()?.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// One recording found on disk: `(tenant directory, session id, file name, path)`.
pub type Found = (String, String, String, PathBuf);

/// Every recording file under `dir` (any tenant, any session), in name order.
pub fn walk(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut out = Vec::new();
    for tenant in read_dirs(dir)? {
        for session in read_dirs(&dir.join(&tenant))? {
            let sdir = dir.join(&tenant).join(&session);
            for entry in std::fs::read_dir(&sdir)? {
                let entry = entry?;
                if let Some(name) = entry.file_name().to_str() {
                    if name.ends_with(SUFFIX) {
                        out.push((
                            tenant.clone(),
                            session.clone(),
                            name.to_owned(),
                            entry.path(),
                        ));
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The entries of `dir`; none if it does not exist.
fn entries_of(dir: &Path) -> std::io::Result<Vec<std::io::Result<std::fs::DirEntry>>> {
    match std::fs::read_dir(dir) {
        Ok(e) => Ok(e.collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Names of the subdirectories of `dir` (none if it does not exist).
fn read_dirs(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in entries_of(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Some(n) = entry.file_name().to_str() {
                out.push(n.to_owned());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_refuse_traversal() {
        let n = new_file_name(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        );
        assert!(is_valid_file_name(&n), "{n}");
        assert_eq!(started_at(&n).as_deref(), Some("2023-11-14T22:13:20.123Z"));
        for bad in [
            "../../etc/passwd",
            "..",
            "20231114T221320.123Z-1a2b3c4d.cast/..",
            "20231114T221320.123Z-1A2B3C4D.cast",
            "20231114T221320.123Z-1a2b3c4d.txt",
            "x0231114T221320.123Z-1a2b3c4d.cast",
            "",
        ] {
            assert!(!is_valid_file_name(bad), "{bad}");
        }
        assert!(file_path(Path::new("/r"), "t", "..", &n).is_none());
        assert!(file_path(Path::new("/r"), "t", "s-1", "../x").is_none());
    }

    #[test]
    fn tenant_directories_never_collide_or_escape() {
        assert_eq!(tenant_dir("acme"), "acme");
        assert_eq!(tenant_dir(".."), "~2e2e");
        assert_eq!(tenant_dir("a/b"), "~612f62");
        assert_ne!(tenant_dir("~2e2e"), tenant_dir(".."));
        assert_eq!(tenant_from_dir(&tenant_dir("a/b")).as_deref(), Some("a/b"));
        assert_eq!(tenant_from_dir("acme").as_deref(), Some("acme"));
    }
}
