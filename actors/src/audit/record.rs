//! One audit event as the rest of attachd describes it, before the writer sequences it.
//! A small builder; the writer adds `seq`, `ts`, `prev` and `hash` (SPEC section 6).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Record types named by SPEC section 6.
pub mod types {
    /// An attach ticket was issued.
    pub const ATTACH_TICKET_ISSUED: &str = "attach.ticket.issued";
    /// An attach attempt, accepted or refused (`outcome`, `reason`).
    pub const ATTACH_CONNECT: &str = "attach.connect";
    /// A connection ended (`duration_ms`, `bytes_in`, `bytes_out`, `close_code`).
    pub const ATTACH_DISCONNECT: &str = "attach.disconnect";
    /// A driver took control.
    pub const ATTACH_CONTROL_ACQUIRED: &str = "attach.control.acquired";
    /// A driver gave control back.
    pub const ATTACH_CONTROL_RELEASED: &str = "attach.control.released";
    /// Control lapsed after the driver idle timeout.
    pub const ATTACH_CONTROL_EXPIRED: &str = "attach.control.expired";
    /// A moderator revoked control.
    pub const ATTACH_CONTROL_REVOKED: &str = "attach.control.revoked";
    /// A control request was refused.
    pub const ATTACH_CONTROL_DENIED: &str = "attach.control.denied";
    /// Periodic stdin summary (`messages`, `bytes`); never the content.
    pub const ATTACH_STDIN: &str = "attach.stdin";
    /// A session was created.
    pub const SESSION_CREATED: &str = "session.created";
    /// A session was deleted.
    pub const SESSION_DELETED: &str = "session.deleted";
    /// A session's process ended.
    pub const SESSION_EXITED: &str = "session.exited";
    /// A replica started (its first record: the probe that the sink can be written).
    pub const SERVER_STARTED: &str = "server.started";
    /// First record of a file after rotation (written by the audit writer itself).
    pub const AUDIT_ROTATED: &str = "audit.rotated";
}

/// Common `outcome` values.
pub mod outcomes {
    /// The action happened.
    pub const OK: &str = "ok";
    /// The action was refused by policy (`reason` says why).
    pub const REFUSED: &str = "refused";
    /// The action failed.
    pub const ERROR: &str = "error";
}

/// Keys the writer owns or that have a dedicated setter; `field_*` may not use them.
pub const RESERVED_KEYS: [&str; 13] = [
    "seq",
    "ts",
    "type",
    "outcome",
    "reason",
    "subject",
    "tenant",
    "session_id",
    "connection_id",
    "role",
    "remote_ip",
    "prev",
    "hash",
];

/// Longest string value kept, in bytes; longer values are cut at a character boundary.
pub const MAX_STRING_BYTES: usize = 1024;
/// Longest extra field name, in bytes.
pub const MAX_KEY_BYTES: usize = 64;

/// An extra field's value: integers only for numbers (SPEC: durations in ms), or a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A non-negative integer (counters, durations, close codes).
    U64(u64),
    /// A signed integer (exit codes).
    I64(i64),
    /// A string (never a secret, never stdin content).
    Str(String),
}

impl FieldValue {
    fn to_json(&self) -> Value {
        match self {
            FieldValue::U64(n) => Value::from(*n),
            FieldValue::I64(n) => Value::from(*n),
            FieldValue::Str(s) => Value::from(s.as_str()),
        }
    }
}

/// An audit event before sequencing: `AuditEvent::new("attach.connect", "ok").subject("alice")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    kind: String,
    outcome: String,
    reason: Option<String>,
    subject: Option<String>,
    tenant: Option<String>,
    session_id: Option<String>,
    connection_id: Option<String>,
    role: Option<String>,
    remote_ip: Option<String>,
    extra: BTreeMap<String, FieldValue>,
    invalid: Option<String>,
}

/// Cuts `s` to at most [`MAX_STRING_BYTES`] bytes without splitting a character.
fn clip(s: impl Into<String>) -> String {
    let mut s = s.into();
    if s.len() > MAX_STRING_BYTES {
        let mut end = MAX_STRING_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl AuditEvent {
    /// A new event of `kind` (e.g. `attach.connect`) with `outcome` (`ok`, `refused`, `error`).
    pub fn new(kind: impl Into<String>, outcome: impl Into<String>) -> Self {
        AuditEvent {
            kind: clip(kind),
            outcome: clip(outcome),
            reason: None,
            subject: None,
            tenant: None,
            session_id: None,
            connection_id: None,
            role: None,
            remote_ip: None,
            extra: BTreeMap::new(),
            invalid: None,
        }
    }

    /// Sets `reason` (a SPEC error code such as `rate_limited`).
    pub fn reason(mut self, v: impl Into<String>) -> Self {
        self.reason = Some(clip(v));
        self
    }

    /// Sets `subject` (the principal).
    pub fn subject(mut self, v: impl Into<String>) -> Self {
        self.subject = Some(clip(v));
        self
    }

    /// Sets `tenant`.
    pub fn tenant(mut self, v: impl Into<String>) -> Self {
        self.tenant = Some(clip(v));
        self
    }

    /// Sets `session_id`.
    pub fn session_id(mut self, v: impl Into<String>) -> Self {
        self.session_id = Some(clip(v));
        self
    }

    /// Sets `connection_id`.
    pub fn connection_id(mut self, v: impl Into<String>) -> Self {
        self.connection_id = Some(clip(v));
        self
    }

    /// Sets `role` (`driver` or `observer`).
    pub fn role(mut self, v: impl Into<String>) -> Self {
        self.role = Some(clip(v));
        self
    }

    /// Sets `remote_ip` (the client address after trusted-proxy resolution).
    pub fn remote_ip(mut self, v: impl Into<String>) -> Self {
        self.remote_ip = Some(clip(v));
        self
    }

    /// Adds an unsigned integer field (`duration_ms`, `bytes_in`, `close_code`, ...).
    pub fn field_u64(self, key: impl Into<String>, v: u64) -> Self {
        self.field(key, FieldValue::U64(v))
    }

    /// Adds a signed integer field (`exit_code`).
    pub fn field_i64(self, key: impl Into<String>, v: i64) -> Self {
        self.field(key, FieldValue::I64(v))
    }

    /// Adds a string field.
    pub fn field_str(self, key: impl Into<String>, v: impl Into<String>) -> Self {
        self.field(key, FieldValue::Str(clip(v)))
    }

    /// Adds an extra field; a reserved or malformed key makes the event invalid (the writer
    /// then refuses it with [`crate::audit::AuditError::InvalidEvent`]).
    pub fn field(mut self, key: impl Into<String>, v: FieldValue) -> Self {
        let key = key.into();
        if let Some(problem) = key_problem(&key) {
            if self.invalid.is_none() {
                self.invalid = Some(problem);
            }
            return self;
        }
        self.extra.insert(key, v);
        self
    }

    /// The record type (`type`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The outcome.
    pub fn outcome(&self) -> &str {
        &self.outcome
    }

    /// The reason, if set.
    pub fn reason_str(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The subject, if set.
    pub fn subject_str(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The session id, if set.
    pub fn session_id_str(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The connection id, if set.
    pub fn connection_id_str(&self) -> Option<&str> {
        self.connection_id.as_deref()
    }

    /// An extra field, if set.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.extra.get(key)
    }

    /// Why the writer would refuse this event, if it would.
    pub fn validate(&self) -> Result<(), String> {
        if self.kind.is_empty() {
            return Err("empty type".to_owned());
        }
        if self.outcome.is_empty() {
            return Err("empty outcome".to_owned());
        }
        match &self.invalid {
            Some(p) => Err(p.clone()),
            None => Ok(()),
        }
    }

    /// The record as a JSON object without `hash`: what the chain hashes.
    pub fn to_object(&self, seq: u64, ts_ms: u64, prev: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("seq".into(), Value::from(seq));
        m.insert("ts".into(), Value::from(ts_ms));
        m.insert("type".into(), Value::from(self.kind.as_str()));
        m.insert("outcome".into(), Value::from(self.outcome.as_str()));
        let optional = [
            ("reason", &self.reason),
            ("subject", &self.subject),
            ("tenant", &self.tenant),
            ("session_id", &self.session_id),
            ("connection_id", &self.connection_id),
            ("role", &self.role),
            ("remote_ip", &self.remote_ip),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.as_str()));
            }
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.to_json());
        }
        m.insert("prev".into(), Value::from(prev));
        m
    }
}

/// Why `key` cannot be an extra field name, if it cannot.
fn key_problem(key: &str) -> Option<String> {
    if RESERVED_KEYS.contains(&key) {
        return Some(format!("field name {key:?} is reserved"));
    }
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Some(format!(
            "field name must be 1..={MAX_KEY_BYTES} bytes, got {}",
            key.len()
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        return Some(format!("field name {key:?} must match [a-z0-9_.]+"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_produces_spec_fields() {
        let ev = AuditEvent::new(types::ATTACH_DISCONNECT, outcomes::OK)
            .subject("alice")
            .tenant("acme")
            .session_id("s1")
            .connection_id("c1")
            .role("driver")
            .remote_ip("10.0.0.1")
            .reason("normal")
            .field_u64("duration_ms", 1500)
            .field_u64("bytes_in", 3)
            .field_u64("bytes_out", 4)
            .field_u64("close_code", 1000)
            .field_i64("exit_code", -1)
            .field_str("note", "x");
        assert!(ev.validate().is_ok());
        let obj = ev.to_object(7, 1234, &"0".repeat(64));
        for k in [
            "seq",
            "ts",
            "type",
            "outcome",
            "reason",
            "subject",
            "tenant",
            "session_id",
            "connection_id",
            "role",
            "remote_ip",
            "prev",
            "duration_ms",
            "bytes_in",
            "bytes_out",
            "close_code",
            "exit_code",
            "note",
        ] {
            assert!(obj.contains_key(k), "missing {k}");
        }
        assert!(!obj.contains_key("hash"));
        assert_eq!(obj["exit_code"], Value::from(-1));
        assert_eq!(obj["type"], Value::from("attach.disconnect"));
    }

    #[test]
    fn reserved_and_malformed_keys_make_the_event_invalid() {
        assert!(AuditEvent::new("t", "ok")
            .field_u64("seq", 1)
            .validate()
            .is_err());
        assert!(AuditEvent::new("t", "ok")
            .field_str("hash", "x")
            .validate()
            .is_err());
        assert!(AuditEvent::new("t", "ok")
            .field_u64("Bad Key", 1)
            .validate()
            .is_err());
        assert!(AuditEvent::new("", "ok").validate().is_err());
        assert!(AuditEvent::new("t", "ok")
            .field_u64("messages", 1)
            .validate()
            .is_ok());
    }

    #[test]
    fn long_strings_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_STRING_BYTES); // 2 bytes each
        let ev = AuditEvent::new("t", "ok").subject(long);
        let s = ev.subject_str().unwrap_or_default();
        assert!(s.len() <= MAX_STRING_BYTES);
        assert!(s.chars().all(|c| c == 'é'));
    }
}
