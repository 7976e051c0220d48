//! Canonical JSON of SPEC section 6: exactly the bytes of Python's `json.dumps(r, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=False)`, which is what the chain hashes.
//!
//! Keys are sorted by code point (UTF-8 byte order equals code point order, so plain `str`
//! ordering is right; this does not depend on serde_json's map type or its `preserve_order`
//! feature). Strings are escaped by serde_json, whose rules match Python's with
//! `ensure_ascii=False`: `"` `\` and the C0 controls only (`\b \t \n \f \r` short, the rest as
//! lowercase `\u00XX`); DEL, U+2028/U+2029 and all non-ASCII stay literal. A unit test checks
//! this against `python3` itself. Numbers must be integers: floats print differently in the two
//! languages, and SPEC allows integers only.

use serde_json::{Map, Number, Value};

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// A non-integer number (SPEC: integers only).
    #[error("non-integer number {0} (audit records carry integers only)")]
    NonInteger(String),
    /// serde_json refused to escape a string (cannot happen for valid UTF-8).
    #[error("string escaping failed: {0}")]
    Escape(String),
}

/// Appends the canonical JSON of `v` to `out`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_str(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object_except(out, map, None)?,
    }
    Ok(())
}

/// Appends the canonical JSON of `map`, leaving out the key `except` (used to hash a record
/// without its `hash` field without copying it).
pub fn write_object_except(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    except: Option<&str>,
) -> Result<(), CanonicalError> {
    let mut entries: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != except)
        .collect();
    entries.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k)?;
        out.push(b':');
        write_value(out, v)?;
    }
    out.push(b'}');
    Ok(())
}

/// The canonical JSON of `v` as bytes.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v)?;
    Ok(out)
}

/// The canonical JSON of `v` as a string.
pub fn to_string(v: &Value) -> Result<String, CanonicalError> {
    let bytes = to_vec(v)?;
    // Only valid UTF-8 was written (serde_json escapes from &str).
    String::from_utf8(bytes).map_err(|e| CanonicalError::Escape(e.to_string()))
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        return Err(CanonicalError::NonInteger(n.to_string()));
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), CanonicalError> {
    serde_json::to_writer(&mut *out, s).map_err(|e| CanonicalError::Escape(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn tricky_strings() -> Vec<String> {
        let mut v: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        v.extend(
            [
                "",
                "\"",
                "\\",
                "\\\"",
                "/",
                "</script>",
                "\u{7f}",
                "\u{80}",
                "\u{9f}",
                "\u{a0}",
                "\u{ad}",
                "\u{2028}",
                "\u{2029}",
                "\u{feff}",
                "\u{fffd}",
                "\u{ffff}",
                "\u{10000}",
                "\u{1f600}",
                "\u{10ffff}",
                "é",
                "e\u{301}",
                "日本語",
                "עברית",
                "\r\n\t\u{8}\u{c}\u{0}\u{1f}",
                "mixed \u{1b}[31mred\u{1b}[0m",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v
    }

    fn python_canonical(values: &[Value]) -> Vec<String> {
        let input = serde_json::to_string(values).unwrap();
        let script = "import json,sys\nfor r in json.loads(sys.stdin.read()):\n    \
                      print(json.dumps(r, sort_keys=True, separators=(',', ':'), ensure_ascii=False))";
        let mut child = match Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .env("PYTHONIOENCODING", "utf-8")
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!(
                "python3 is required for this test (install python3, e.g. `apt-get install \
                 python3`): {e}"
            ),
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python3 failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .split('\n')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn matches_python_for_tricky_strings_and_keys() {
        let mut values: Vec<Value> = tricky_strings()
            .into_iter()
            .map(|s| json!({ "v": s, s.clone(): 1, "z": [s, -5, 0, u64::MAX, i64::MIN] }))
            .collect();
        values.push(json!({
            "b": 1, "a": 2, "B": 3, "_": 4, "aa": 5, "a\u{0}": 6, "é": 7, "\u{1f600}": 8,
            "\u{ffff}": 9, "nested": {"y": null, "x": true, "w": false}, "seq": 1,
            "ts": 1_700_000_000_000u64, "prev": "0".repeat(64)
        }));
        let py = python_canonical(&values);
        assert_eq!(py.len(), values.len());
        for (v, p) in values.iter().zip(py) {
            assert_eq!(to_string(v).unwrap(), p, "for value {v}");
        }
    }

    #[test]
    fn keys_sort_by_code_point_not_utf16() {
        // U+FFFF sorts before U+1F600 by code point, but after it in UTF-16 order.
        let v = json!({"\u{1f600}": 1, "\u{ffff}": 2});
        assert_eq!(to_string(&v).unwrap(), "{\"\u{ffff}\":2,\"\u{1f600}\":1}");
    }

    #[test]
    fn floats_are_refused() {
        assert!(matches!(
            to_string(&json!({"x": 1.5})),
            Err(CanonicalError::NonInteger(_))
        ));
    }

    #[test]
    fn except_leaves_out_one_key() {
        let v = json!({"hash": "h", "a": 1});
        let mut out = Vec::new();
        write_object_except(&mut out, v.as_object().unwrap(), Some("hash")).unwrap();
        assert_eq!(out, b"{\"a\":1}");
    }
}
