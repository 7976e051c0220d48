//! The asciicast v2 format: one JSON header line, then one `[time, code, data]` line per event
//! (`o` output, `i` input, `r` resize as `"COLSxROWS"`, `m` marker). Writing and reading.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

/// The header line of a file (with its newline).
pub fn header_line(width: u16, height: u16, timestamp_secs: u64, title: &str) -> String {
    let h = json!({
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": timestamp_secs,
        "title": title,
    });
    format!("{h}\n")
}

/// Appends one event line (with its newline) to `out`; `at` is the time since the file's
/// start. The data is escaped straight into `out` (no intermediate string), byte for byte as
/// serde_json escapes it, by SIMD: escaping was a quarter of the recorder's CPU.
pub fn write_event(out: &mut Vec<u8>, at: Duration, code: &str, data: &str) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "[{}.{:06}, \"{code}\", ",
        at.as_secs(),
        at.subsec_micros()
    );
    json_escape_simd::escape_into(data, out);
    out.extend_from_slice(b"]\n");
}

/// One event line (with its newline), as [`write_event`] appends it.
pub fn event_line(at: Duration, code: &str, data: &str) -> String {
    let mut out = Vec::with_capacity(data.len() + 32);
    write_event(&mut out, at, code, data);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The data of a resize event.
pub fn resize_data(cols: u16, rows: u16) -> String {
    format!("{cols}x{rows}")
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Columns at the start.
    pub width: u16,
    /// Rows at the start.
    pub height: u16,
    /// Unix seconds of the start.
    pub timestamp: u64,
    /// The session id.
    pub title: String,
}

/// A parsed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start.
    pub time: f64,
    /// `o`, `i`, `r` or `m`.
    pub code: String,
    /// The payload.
    pub data: String,
}

/// Parses the header line.
pub fn parse_header(line: &str) -> Result<Header, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("header: {e}"))?;
    if v.get("version").and_then(Value::as_u64) != Some(2) {
        return Err("header: not asciicast version 2".into());
    }
    let dim = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("header: bad {k}"))
    };
    Ok(Header {
        width: dim("width")?,
        height: dim("height")?,
        timestamp: v.get("timestamp").and_then(Value::as_u64).unwrap_or(0),
        title: v
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Parses a whole file: header and events, checking that times never decrease.
pub fn parse(text: &str) -> Result<(Header, Vec<Event>), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = parse_header(lines.next().ok_or("empty recording")?)?;
    let mut events = Vec::new();
    let mut last = 0.0f64;
    for (i, line) in lines.enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("event {i}: {e}"))?;
        let (Some(time), Some(code), Some(data)) = (
            v.get(0).and_then(Value::as_f64),
            v.get(1).and_then(Value::as_str),
            v.get(2).and_then(Value::as_str),
        ) else {
            return Err(format!("event {i}: not [time, code, data]"));
        };
        if time < last {
            return Err(format!("event {i}: time goes back ({time} < {last})"));
        }
        last = time;
        events.push(Event {
            time,
            code: code.to_owned(),
            data: data.to_owned(),
        });
    }
    Ok((header, events))
}

/// Parses `"COLSxROWS"`.
pub fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (c, r) = data.split_once('x')?;
    Some((c.parse().ok()?, r.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let mut text = header_line(80, 24, 1_700_000_000, "s-1");
        text += &event_line(Duration::from_micros(1_500_000), "o", "a\"b\u{1b}[0m\n");
        text += &event_line(Duration::from_micros(2_000_001), "r", &resize_data(100, 30));
        let (h, ev) = parse(&text).unwrap();
        assert_eq!((h.width, h.height, h.title.as_str()), (80, 24, "s-1"));
        assert_eq!(ev[0].data, "a\"b\u{1b}[0m\n");
        assert!((ev[0].time - 1.5).abs() < 1e-9);
        assert_eq!(parse_size(&ev[1].data), Some((100, 30)));
    }

    #[test]
    fn event_data_is_escaped_exactly_as_serde_json_escapes_it() {
        // Random bytes (control characters, quotes, invalid UTF-8) through the lossy decoding
        // the writer uses.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        // Every length from 0 to 299 (across the SIMD kernels' register widths and tails).
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len).map(|_| next()).collect();
            let mut text = String::new();
            crate::term::utf8::Utf8Stream::default().decode(&bytes, |s| text.push_str(s));
            let line = event_line(Duration::from_micros(1_234_567), "o", &text);
            let expected = serde_json::to_string(&text).unwrap();
            assert_eq!(line, format!("[1.234567, \"o\", {expected}]\n"));
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v[2], text.as_str());
        }
    }

    #[test]
    fn time_going_back_is_refused() {
        let mut text = header_line(80, 24, 0, "s");
        text += &event_line(Duration::from_secs(2), "o", "x");
        text += &event_line(Duration::from_secs(1), "o", "y");
        assert!(parse(&text).is_err());
    }
}
