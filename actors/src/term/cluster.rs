//! Characters with combining marks, for an emulator that keeps one `char` per cell: a
//! base-plus-marks cluster is stood in for by a private-use character while it is emulated,
//! and written back as the cluster whenever cells are turned into bytes (snapshots).
//!
//! The last printed character is held back, since a mark may follow it (in the next chunk,
//! too); it is given to the emulator before anything else is, and a snapshot writes it after
//! the screen. What is printed, and not part of a sequence, is what the parser says it is.

use std::collections::HashMap;

use unicode_width::UnicodeWidthChar;

/// The private-use code points that stand for clusters (plane 15).
const FIRST: u32 = 0xF_0000;
const LAST: u32 = 0xF_FFFD;

/// Clusters seen so far, each with the private-use character that stands for it.
#[derive(Debug, Default)]
pub struct Clusters {
    ids: HashMap<String, char>,
    strings: Vec<String>,
    /// The last printed character, not yet given to the emulator.
    held: Option<char>,
    /// Marks that followed the held character.
    marks: String,
}

/// A zero-width character that combines with the one before it (marks, joiners, selectors).
fn combining(c: char) -> bool {
    c >= '\u{300}' && c.width() == Some(0)
}

fn stand_in_range(c: char) -> bool {
    (FIRST..=LAST).contains(&u32::from(c))
}

impl Clusters {
    /// A printed character: a mark joins the held character (one with nothing printed before
    /// it is dropped, as terminals do); anything else releases the held one and is held.
    pub fn print(&mut self, c: char, emit: &mut dyn FnMut(char)) {
        if combining(c) {
            if self.held.is_some() {
                self.marks.push(c);
            }
            return;
        }
        self.release(emit);
        self.held = Some(c);
    }

    /// Gives the held character (or the stand-in of its cluster) to the emulator.
    pub fn release(&mut self, emit: &mut dyn FnMut(char)) {
        let Some(base) = self.held.take() else {
            return;
        };
        if self.marks.is_empty() && !stand_in_range(base) {
            emit(base);
        } else if base.width() == Some(2) {
            // No stand-in is two cells wide: a wide base keeps its width, its marks are dropped.
            self.marks.clear();
            emit(base);
        } else {
            let mut cluster = String::with_capacity(4 + self.marks.len());
            cluster.push(base);
            cluster.push_str(&self.marks);
            self.marks.clear();
            emit(self.stand_in(cluster).unwrap_or(base));
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

    /// The character held back (with its marks), as it must still be written.
    pub fn held(&self) -> String {
        let mut s: String = self.held.into_iter().collect();
        s.push_str(&self.marks);
        s
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

    /// Prints every character of `parts` (as a parser would report them), then the output.
    fn run(parts: &[&str]) -> (String, Clusters) {
        let mut c = Clusters::default();
        let mut out = String::new();
        for p in parts {
            for ch in p.chars() {
                c.print(ch, &mut |s| out.push(s));
            }
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
        assert_eq!(c.restore(&out) + &c.held(), "cafe\u{301} ok");
    }

    #[test]
    fn a_mark_with_no_base_is_dropped() {
        let (out, c) = run(&["\u{301}x"]);
        assert_eq!((out.as_str(), c.held().as_str()), ("", "x"));
    }

    #[test]
    fn wide_bases_and_private_use_input() {
        let (out, c) = run(&["中\u{301}x"]);
        assert_eq!(c.restore(&out) + &c.held(), "中x");
        let (out, c) = run(&["\u{F0000}y", "z"]);
        assert_eq!(c.restore(&out) + &c.held(), "\u{F0000}yz");
    }
}
