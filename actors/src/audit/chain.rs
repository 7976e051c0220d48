//! The hash chain of SPEC section 6: `hash = sha256_hex(prev ++ canonical(record without hash))`,
//! `prev` of the very first record is 64 zeros, `seq` starts at 1.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical::{self, CanonicalError};
use super::record::AuditEvent;

/// `prev` of the very first record (seq 1).
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `seq` of the very first record.
pub const FIRST_SEQ: u64 = 1;

/// Lowercase hex SHA-256 of `prev` followed by `canonical` (a record's canonical JSON without
/// `hash`).
pub fn chain_hash(prev: &str, canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical);
    hex::encode(h.finalize())
}

/// Recomputes the hash a record should carry from its own `prev` field and content (its `hash`
/// field, if any, is ignored). `None` when `prev` is missing or not a string.
pub fn record_hash(record: &Map<String, Value>) -> Result<Option<String>, CanonicalError> {
    let Some(prev) = record.get("prev").and_then(Value::as_str) else {
        return Ok(None);
    };
    let mut buf = Vec::with_capacity(256);
    canonical::write_object_except(&mut buf, record, Some("hash"))?;
    Ok(Some(chain_hash(prev, &buf)))
}

/// True when `s` is 64 lowercase hex characters (the shape of `hash` and `prev`).
pub fn is_hash_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A record ready to append: its `seq`, its `hash` and its line (canonical JSON with `hash`, then
/// `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The record's sequence number.
    pub seq: u64,
    /// The record's hash (the next record's `prev`).
    pub hash: String,
    /// The bytes to append to the file.
    pub line: Vec<u8>,
}

/// Seals `ev` as record `seq` at `ts_ms`, chained to `prev`.
pub fn seal(ev: &AuditEvent, seq: u64, ts_ms: u64, prev: &str) -> Result<Sealed, CanonicalError> {
    let mut obj = ev.to_object(seq, ts_ms, prev);
    let mut buf = Vec::with_capacity(320);
    canonical::write_object_except(&mut buf, &obj, None)?;
    let hash = chain_hash(prev, &buf);
    obj.insert("hash".into(), Value::from(hash.as_str()));
    buf.clear();
    canonical::write_object_except(&mut buf, &obj, None)?;
    buf.push(b'\n');
    Ok(Sealed {
        seq,
        hash,
        line: buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_matches_the_definition() {
        let ev = AuditEvent::new("attach.connect", "ok").subject("alice");
        let s = seal(&ev, 1, 1000, GENESIS_PREV).unwrap();
        let line = std::str::from_utf8(&s.line).unwrap();
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj["hash"], Value::from(s.hash.as_str()));
        let expected_body = format!(
            "{{\"outcome\":\"ok\",\"prev\":\"{GENESIS_PREV}\",\"seq\":1,\"subject\":\"alice\",\
             \"ts\":1000,\"type\":\"attach.connect\"}}"
        );
        assert_eq!(s.hash, chain_hash(GENESIS_PREV, expected_body.as_bytes()));
        assert_eq!(record_hash(obj).unwrap(), Some(s.hash.clone()));
        assert!(is_hash_hex(&s.hash));
        // The line itself is canonical.
        assert_eq!(canonical::to_string(&v).unwrap(), line.trim_end());
    }

    #[test]
    fn known_answer() {
        // python3 -c "import hashlib; print(hashlib.sha256(('0'*64+'{}').encode()).hexdigest())"
        assert_eq!(
            chain_hash(GENESIS_PREV, b"{}"),
            "5508d2b710e64bc470079e1b211d9c58e21011e59d0559e422345dc19d659a75"
        );
    }
}
