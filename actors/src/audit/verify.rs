//! Verification of the audit chain across rotated files (`attachd audit verify`,
//! `GET /api/v1/audit/verify`), against the head file that anchors its end.
//!
//! All functions here do blocking file I/O: call them from `web::block` / `spawn_blocking`.
//!
//! # What `first_bad_seq` means
//!
//! Verification walks the files in order and stops at the first line that fails. With
//! `expected` = the seq after the last verified record (1 at the start):
//! - a line that is not a complete JSON object with `seq`, `prev` and `hash` (garbage, or the
//!   partial last line of a truncated file) fails at `expected`;
//! - a record whose own content does not hash to its `hash` (a tampered field) fails at
//!   `expected`;
//! - an intact record that does not continue the chain (`seq` != `expected` or `prev` != the
//!   previous hash) fails at its own `seq` when that is greater than `expected` (deleted lines:
//!   the first seq after the gap; reordered lines: the first record found out of place) and at
//!   `expected` otherwise (duplicates, replays);
//! - the first record of every file after the first must be `audit.rotated`, else it fails at
//!   `expected`.
//!
//! The chain must start at seq 1 with `prev` = 64 zeros, so deleting the oldest files is reported
//! too, and a chain without any record (a missing or empty file) fails at seq 1. What a hash
//! chain alone cannot see, lines cut off at a line boundary at the very end, the head file
//! ([`super::anchor`]) shows: [`verify_anchored`] reports a chain that ends before its head at
//! the first missing seq. A rewrite of every hash after an edit stays invisible to both; a
//! record rewritten with a recomputed hash is reported at the record after it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::anchor::{self, head_path, read_anchor};
use super::chain::{is_hash_hex, record_hash, FIRST_SEQ, GENESIS_PREV};
use super::files::{chain_files, Line, LineReader, MAX_LINE_BYTES};
use super::record::types;

/// The result of verifying a chain: SPEC's `{"ok", "records", "first_bad_seq"}` plus a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when every record verified and the files end cleanly.
    pub ok: bool,
    /// Records verified before the first failure (all of them when `ok`).
    pub records: u64,
    /// The seq at which the chain first fails (see the module docs), `None` when `ok`.
    pub first_bad_seq: Option<u64>,
    /// Human-readable detail (file, line, what failed); for logs and the CLI.
    pub message: String,
}

/// A record that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoodRecord {
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) ts: u64,
    pub(crate) rotated: bool,
}

/// Where and why the chain failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRecord {
    pub(crate) seq: u64,
    pub(crate) reason: String,
}

/// Incremental chain verification: feed it lines in chain order.
#[derive(Debug, Clone)]
pub(crate) struct ChainChecker {
    pub(crate) expected_seq: u64,
    pub(crate) prev: String,
    pub(crate) last_ts: u64,
    pub(crate) records: u64,
    must_be_rotated: bool,
}

impl ChainChecker {
    /// A checker expecting the very first record (seq 1, prev 64 zeros).
    pub(crate) fn genesis() -> Self {
        ChainChecker {
            expected_seq: FIRST_SEQ,
            prev: GENESIS_PREV.to_owned(),
            last_ts: 0,
            records: 0,
            must_be_rotated: false,
        }
    }

    /// A checker continuing after `last` (the last record of an earlier file).
    pub(crate) fn after(last: &GoodRecord) -> Self {
        ChainChecker {
            expected_seq: last.seq + 1,
            prev: last.hash.clone(),
            last_ts: last.ts,
            records: 0,
            must_be_rotated: false,
        }
    }

    /// Marks the start of a new file; a file continuing an earlier one must open with
    /// `audit.rotated`.
    pub(crate) fn begin_file(&mut self, continuation: bool) {
        self.must_be_rotated = continuation && self.expected_seq > FIRST_SEQ;
    }

    /// Checks one line (without its `\n`) and advances the chain on success.
    pub(crate) fn check_line(&mut self, line: &[u8]) -> Result<GoodRecord, BadRecord> {
        let expected = self.expected_seq;
        let (good, prev) = check_self(line).map_err(|reason| BadRecord {
            seq: expected,
            reason,
        })?;
        if good.seq != expected || prev != self.prev {
            let reason = if good.seq > expected {
                format!(
                    "found seq {} where seq {expected} was expected: records missing or out of order",
                    good.seq
                )
            } else if good.seq < expected {
                format!(
                    "found seq {} where seq {expected} was expected: record duplicated or out of order",
                    good.seq
                )
            } else {
                format!(
                    "seq {expected}: prev does not match the hash of seq {} (the record before it \
                     was replaced, or files are out of order)",
                    expected.saturating_sub(1)
                )
            };
            return Err(BadRecord {
                seq: good.seq.max(expected),
                reason,
            });
        }
        if self.must_be_rotated && !good.rotated {
            return Err(BadRecord {
                seq: expected,
                reason: format!(
                    "seq {expected}: the first record of a continuation file is not {}",
                    types::AUDIT_ROTATED
                ),
            });
        }
        self.expected_seq = expected + 1;
        self.prev.clone_from(&good.hash);
        self.last_ts = good.ts;
        self.records += 1;
        self.must_be_rotated = false;
        Ok(good)
    }
}

/// Parses a line and checks that its content hashes to its `hash` (no link check).
fn check_self(line: &[u8]) -> Result<(GoodRecord, String), String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("not a JSON object".to_owned());
    };
    let hash = match obj.get("hash").and_then(Value::as_str) {
        Some(h) if is_hash_hex(h) => h.to_owned(),
        _ => return Err("missing or malformed hash".to_owned()),
    };
    let prev = match obj.get("prev").and_then(Value::as_str) {
        Some(p) if is_hash_hex(p) => p.to_owned(),
        _ => return Err("missing or malformed prev".to_owned()),
    };
    let Some(seq) = obj.get("seq").and_then(Value::as_u64) else {
        return Err("missing or malformed seq".to_owned());
    };
    match record_hash(&obj) {
        Ok(Some(computed)) if computed == hash => {}
        Ok(_) => {
            return Err(format!(
                "hash mismatch on the record claiming seq {seq}: its content was modified"
            ))
        }
        Err(e) => return Err(format!("record claiming seq {seq}: {e}")),
    }
    let ts = obj.get("ts").and_then(Value::as_u64).unwrap_or(0);
    let rotated = obj.get("type").and_then(Value::as_str) == Some(types::AUDIT_ROTATED);
    Ok((
        GoodRecord {
            seq,
            hash,
            ts,
            rotated,
        },
        prev,
    ))
}

/// Verifies a self-standing record line (parse + own hash), for resuming after a rotated file.
pub(crate) fn check_record_alone(line: &[u8]) -> Result<GoodRecord, String> {
    check_self(line).map(|(good, _)| good)
}

fn bad_report(records: u64, seq: u64, message: String) -> VerifyReport {
    VerifyReport {
        ok: false,
        records,
        first_bad_seq: Some(seq),
        message,
    }
}

/// Recomputes the chain across `paths` (oldest first, as [`chain_files`] lists them). A chain
/// without records (no file, or only empty ones) does not verify: a log always holds some.
pub fn verify_files(paths: &[PathBuf]) -> VerifyReport {
    verify_walk(paths, None).0
}

/// [`verify_files`], then checks that the chain reaches the head recorded in `head` (the head
/// file, see [`head_path`]; none there is not an error): a chain cut short of its head is
/// reported at the first missing seq, a different record at the head's seq at that seq.
pub fn verify_anchored(paths: &[PathBuf], head: &Path) -> VerifyReport {
    // The head first: it is written after the log, so the log read next reaches it.
    let anchor = match read_anchor(head) {
        Ok(a) => a,
        Err(e) => return bad_report(0, FIRST_SEQ, e),
    };
    let (report, hash_at) = verify_walk(paths, anchor.as_ref().map(|a| a.seq));
    let Some(a) = anchor.filter(|_| report.ok) else {
        return report;
    };
    let last = report.records;
    match anchor::mismatch(&a, last, hash_at.as_deref()) {
        None => report,
        Some(why) => {
            let seq = if a.seq > last { last + 1 } else { a.seq };
            bad_report(last.min(seq - 1), seq, format!("{}: {why}", head.display()))
        }
    }
}

/// Walks the chain across `paths`; also returns the hash of record `want`, if it was seen.
pub(crate) fn verify_walk(paths: &[PathBuf], want: Option<u64>) -> (VerifyReport, Option<String>) {
    let mut hash_at = None;
    let report = walk(paths, |good| {
        if Some(good.seq) == want {
            hash_at = Some(good.hash.clone());
        }
    });
    (report, hash_at)
}

fn walk(paths: &[PathBuf], mut seen: impl FnMut(&GoodRecord)) -> VerifyReport {
    let mut ck = ChainChecker::genesis();
    for (i, path) in paths.iter().enumerate() {
        ck.begin_file(i > 0);
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                return bad_report(
                    ck.records,
                    ck.expected_seq,
                    format!("cannot open {}: {e}", path.display()),
                )
            }
        };
        let mut reader = LineReader::new(file);
        let mut lineno = 0u64;
        loop {
            let line = match reader.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    return bad_report(
                        ck.records,
                        ck.expected_seq,
                        format!("cannot read {}: {e}", path.display()),
                    )
                }
            };
            lineno += 1;
            let at = format!("{}:{lineno}", path.display());
            match line {
                Line::Complete(bytes) => match ck.check_line(&bytes) {
                    Ok(good) => seen(&good),
                    Err(b) => return bad_report(ck.records, b.seq, format!("{at}: {}", b.reason)),
                },
                Line::Partial(n) => {
                    return bad_report(
                        ck.records,
                        ck.expected_seq,
                        format!("{at}: partial last line of {n} bytes (file truncated)"),
                    )
                }
                Line::TooLong => {
                    return bad_report(
                        ck.records,
                        ck.expected_seq,
                        format!("{at}: line longer than {MAX_LINE_BYTES} bytes"),
                    )
                }
            }
        }
    }
    if ck.records == 0 {
        return bad_report(
            0,
            FIRST_SEQ,
            format!(
                "no audit records in {} files: the log is missing or empty",
                paths.len()
            ),
        );
    }
    VerifyReport {
        ok: true,
        records: ck.records,
        first_bad_seq: None,
        message: format!("{} records verified in {} files", ck.records, paths.len()),
    }
}

/// Verifies the whole chain of the audit log at `path` (rotated files, then the current one)
/// against its head file.
///
/// Meant for a live log: a failure is re-checked once after 100 ms, so a record being appended
/// (a partial last line) or a rotation in progress is not reported as corruption.
pub fn verify_path(path: &Path) -> VerifyReport {
    let mut report = verify_once(path);
    if !report.ok {
        std::thread::sleep(Duration::from_millis(100));
        report = verify_once(path);
    }
    report
}

fn verify_once(path: &Path) -> VerifyReport {
    match chain_files(path) {
        Ok(files) => verify_anchored(&files, &head_path(path)),
        Err(e) => bad_report(0, FIRST_SEQ, format!("cannot list the audit files: {e}")),
    }
}

/// The hash of the first record of `file` (the chain id when `file` is the oldest of a chain).
pub(crate) fn first_record_hash(file: &Path) -> Option<String> {
    let mut reader = LineReader::new(File::open(file).ok()?);
    match reader.next_line().ok()?? {
        Line::Complete(bytes) => check_record_alone(&bytes).ok().map(|g| g.hash),
        _ => None,
    }
}
