//! The close codes and `error` frame codes of attach.v1 have one source, `protocol/`; the
//! browser client's copies in `web/src/protocol.ts` must match it name for name and value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use attachd_actors::protocol::{close, ErrorCode};

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between `open` and the next line that is exactly `close` (trimmed).
fn block<'a>(text: &'a str, open: &str, close: &str, file: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("{file} has no `{open}`"))
        + open.len();
    let rest = &text[start..];
    let mut end = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim() == close {
            return &rest[..end];
        }
        end += line.len();
    }
    panic!("{file}: `{open}` is not closed by `{close}`");
}

/// `NAME: value,` entries of a TypeScript object literal.
fn ts_entries(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("/*"))
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = v.trim().trim_end_matches(',').trim().trim_matches('\'');
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn web_object(name: &str) -> BTreeMap<String, String> {
    let ts = read("../web/src/protocol.ts");
    ts_entries(block(
        &ts,
        &format!("export const {name} = {{"),
        "} as const;",
        "web/src/protocol.ts",
    ))
}

/// `pub const NAME: u16 = N;` in the `protocol::close` module.
fn rust_close_codes() -> BTreeMap<String, u16> {
    read("src/protocol/close.rs")
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(": u16 = ")?;
            Some((name.to_string(), rest.trim_end_matches(';').parse().ok()?))
        })
        .collect()
}

/// The variants of `ErrorCode` as they go on the wire (snake_case).
fn rust_error_codes() -> Vec<String> {
    let rs = read("src/protocol/server.rs");
    let variants = block(&rs, "pub enum ErrorCode {", "}", "protocol/server.rs");
    variants
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.is_empty())
        .map(|l| {
            let ident = l.trim_end_matches(',');
            let mut snake = String::new();
            for (i, c) in ident.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            snake
        })
        .collect()
}

#[test]
fn web_close_codes_match_the_server_s() {
    let rust = rust_close_codes();
    let mut sent: Vec<u16> = rust.values().copied().collect();
    sent.sort_unstable();
    let mut all = close::ALL.to_vec();
    all.sort_unstable();
    assert_eq!(sent, all, "protocol/close.rs's constants are close::ALL");

    let web = web_object("CLOSE");
    for (name, code) in &rust {
        assert_eq!(
            web.get(name).map(String::as_str),
            Some(code.to_string().as_str()),
            "web/src/protocol.ts CLOSE.{name} must be {code} as in actors/src/protocol/close.rs"
        );
    }
    for (name, value) in &web {
        if !rust.contains_key(name) {
            // RFC 6455 codes a client sees locally but no server ever sends.
            assert!(
                value == "1005" || value == "1006",
                "web/src/protocol.ts CLOSE.{name} = {value} is not a server close code"
            );
        }
    }
}

#[test]
fn web_error_frame_codes_match_the_server_s() {
    let rust = rust_error_codes();
    assert_eq!(
        serde_json::to_value(ErrorCode::NotDriver).unwrap(),
        "not_driver",
        "ErrorCode goes on the wire in snake_case"
    );
    assert!(rust.contains(&"not_driver".to_string()), "{rust:?}");
    let web = web_object("FRAME_ERROR");
    let mut web_codes: Vec<&String> = web.values().collect();
    web_codes.sort();
    let mut rust_codes: Vec<&String> = rust.iter().collect();
    rust_codes.sort();
    assert_eq!(
        web_codes, rust_codes,
        "web/src/protocol.ts FRAME_ERROR and actors/src/protocol/server.rs ErrorCode differ"
    );
    for (name, code) in &web {
        assert_eq!(
            *name,
            code.to_uppercase(),
            "FRAME_ERROR.{name} names {code:?}"
        );
    }
}
