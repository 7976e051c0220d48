//! `attachd record text`: a recording replayed through the session's own terminal state, so
//! its final screen and the text typed in it can be read and searched as plain text.

use super::cast;
use crate::term::TermState;

/// The final screen (right-trimmed, without trailing blank rows) and the typed text of an
/// asciicast file's contents.
pub fn render(text: &str) -> Result<String, String> {
    let (header, events) = cast::parse(text)?;
    let mut term = TermState::new(header.width, header.height, 0);
    let mut typed = String::new();
    for ev in &events {
        match ev.code.as_str() {
            "o" => term.feed(ev.data.as_bytes()),
            "r" => {
                if let Some((c, r)) = cast::parse_size(&ev.data) {
                    term.resize(c, r);
                }
            }
            "i" => typed.push_str(&visible(&ev.data)),
            _ => {}
        }
    }
    let (cols, rows) = term.size();
    let mut screen: Vec<String> = term
        .screen_text()
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .collect();
    while screen.last().is_some_and(String::is_empty) {
        screen.pop();
    }
    let mut out = format!("--- final screen ({cols}x{rows}) of {} ---\n", header.title);
    for l in screen {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("--- typed ---\n");
    if events.iter().any(|e| e.code == "i") {
        out.push_str(&typed);
        if !typed.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str(
            "(no input in this recording: it was made with recording.mode = \"output\")\n",
        );
    }
    Ok(out)
}

/// Typed text with Enter as a line break and other control characters as `^X`.
fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' | '\n' => out.push('\n'),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn final_screen_and_typed_text() {
        let mut f = cast::header_line(20, 3, 0, "s-1");
        f += &cast::event_line(Duration::ZERO, "i", "ls\r");
        f += &cast::event_line(Duration::from_millis(1), "o", "$ ls\r\nfile\r\n$ ");
        f += &cast::event_line(Duration::from_millis(2), "i", "\u{3}");
        let out = render(&f).unwrap();
        assert!(out.contains("$ ls\nfile\n$\n"), "{out}");
        assert!(out.contains("--- typed ---\nls\n^C\n"), "{out}");
    }
}
