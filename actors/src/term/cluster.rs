//! Characters with combining marks, for an emulator that keeps one `char` per cell: a
//! base-plus-marks cluster is stood in for by a private-use character while it is emulated,
//! and written back as the cluster whenever cells are turned into bytes (snapshots).
//!
//! The last printed character is held back, since a mark may follow it in the next chunk; a
//! snapshot writes it after the screen. Whether a character is printed, and not part of an
//! escape sequence, is what the `vte` mode tracker sees, fed in step with the emulator.

use std::collections::HashMap;

use unicode_width::UnicodeWidthChar;

use super::modes::ModeTracker;

/// The private-use code points that stand for clusters (plane 15).
const FIRST: u32 = 0xF_0000;
const LAST: u32 = 0xF_FFFD;

/// Clusters seen so far, each with the private-use character that stands for it.
#[derive(Debug, Default)]
pub struct Clusters {
    ids: HashMap<String, char>,
    strings: Vec<String>,
    /// The last printed character (with any marks after it), not yet given to the emulator.
    held: Option<String>,
}

/// A zero-width character that combines with the one before it (marks, joiners, selectors).
fn combining(c: char) -> bool {
    c >= '\u{300}' && c.width() == Some(0)
}

fn stand_in_range(c: char) -> bool {
    (FIRST..=LAST).contains(&u32::from(c))
}

impl Clusters {
    /// Runs decoded `text` through the mode tracker and the cluster rules, handing the
    /// emulator what it can take now.
    pub fn feed(&mut self, text: &str, modes: &mut ModeTracker, emit: &mut dyn FnMut(&str)) {
        if text.is_ascii() {
            // No marks inside: only the last character may still get one.
            let Some(last) = text.chars().next_back() else {
                return;
            };
            let body = &text[..text.len() - 1];
            if !body.is_empty() {
                modes.feed(body.as_bytes());
                self.release(emit);
                emit(body);
            }
            let printed = modes.feed_printed(&text.as_bytes()[text.len() - 1..]);
            self.release(emit);
            self.take(last, printed, emit);
            return;
        }
        let mut buf = [0u8; 4];
        for c in text.chars() {
            let printed = modes.feed_printed(c.encode_utf8(&mut buf).as_bytes());
            if printed && combining(c) {
                // A mark with nothing printed before it is dropped, as terminals do.
                if let Some(h) = &mut self.held {
                    h.push(c);
                }
                continue;
            }
            self.release(emit);
            self.take(c, printed, emit);
        }
    }

    fn take(&mut self, c: char, printed: bool, emit: &mut dyn FnMut(&str)) {
        if printed {
            self.held = Some(c.to_string());
        } else {
            let mut b = [0u8; 4];
            emit(c.encode_utf8(&mut b));
        }
    }

    /// Gives the held character (or its stand-in) to the emulator.
    pub fn release(&mut self, emit: &mut dyn FnMut(&str)) {
        let Some(h) = self.held.take() else {
            return;
        };
        let mut chars = h.chars();
        let base = chars.next().unwrap_or(' ');
        let marked = chars.next().is_some();
        let mut b = [0u8; 4];
        if !marked && !stand_in_range(base) {
            emit(&h);
        } else if base.width() == Some(2) {
            // No stand-in is two cells wide: a wide base keeps its width, its marks are dropped.
            emit(base.encode_utf8(&mut b));
        } else {
            let id = self.stand_in(h).unwrap_or(base);
            emit(id.encode_utf8(&mut b));
        }
    }

    fn stand_in(&mut self, cluster: String) -> Option<char> {
        if let Some(&id) = self.ids.get(&cluster) {
            return Some(id);
        }
        let n = u32::try_from(self.strings.len()).ok()?;
        let id = char::from_u32(FIRST + n).filter(|_| FIRST + n <= LAST)?;
        self.ids.insert(cluster.clone(), id);
        self.strings.push(cluster);
        Some(id)
    }

    /// The character held back, as it must still be written.
    pub fn held(&self) -> &str {
        self.held.as_deref().unwrap_or("")
    }

    /// `s` with every stand-in written back as its cluster.
    pub fn restore(&self, s: &str) -> String {
        if self.strings.is_empty() {
            return s.to_owned();
        }
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            let cluster = stand_in_range(c)
                .then(|| self.strings.get((u32::from(c) - FIRST) as usize))
                .flatten();
            match cluster {
                Some(cl) => out.push_str(cl),
                None => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parts: &[&str]) -> (String, Clusters) {
        let mut c = Clusters::default();
        let mut m = ModeTracker::default();
        let mut out = String::new();
        for p in parts {
            c.feed(p, &mut m, &mut |s| out.push_str(s));
        }
        (out, c)
    }

    #[test]
    fn marks_join_their_base_even_across_chunks() {
        let (out, c) = run(&["cafe", "\u{301} ok"]);
        assert_eq!(
            out.chars().count(),
            6,
            "é is one stand-in; the k is held back"
        );
        assert_eq!(c.restore(&out) + c.held(), "cafe\u{301} ok");
    }

    #[test]
    fn sequences_are_never_held_or_joined() {
        let (out, c) = run(&["a\u{308}\r\n\x1b[1m", "\u{301}x"]);
        assert_eq!(c.restore(&out), "a\u{308}\r\n\x1b[1m");
        assert_eq!(
            c.held(),
            "x",
            "a mark after a sequence has no base and is dropped"
        );
        let (out, c) = run(&["\x1b]2;e\u{301}\x07"]);
        assert_eq!(c.restore(&out) + c.held(), "\x1b]2;e\u{301}\x07");
    }

    #[test]
    fn wide_bases_and_private_use_input() {
        let (out, c) = run(&["中\u{301}x"]);
        assert_eq!(c.restore(&out) + c.held(), "中x");
        let (out, c) = run(&["\u{F0000}y", "z"]);
        assert_eq!(c.restore(&out) + c.held(), "\u{F0000}yz");
    }
}
