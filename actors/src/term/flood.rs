//! Floods of plain text (printable ASCII, CR and LF) on the bottom row: every line they scroll
//! off pushes an older one out of the history, so only their tail decides what is left.
//!
//! Starting on the bottom row of a full-screen scroll region, with autowrap on and insert and
//! new-line modes off, such text only prints, wraps and scrolls. Once it has scrolled more
//! lines than the screen and the history hold, no cell from before it is left, and each cell
//! left was written by the text at a column fixed by the cursor's column before it. So a head
//! of the text that brings the cursor back to the column it started from, and is followed by
//! enough scrolling, leaves exactly the state it would have left unread: it is not emulated.

use avt::parser::{AnsiMode, DecMode, Function, State};
use avt::{Charset, ScreenKind};

use super::TermState;

/// A byte that plain text consists of.
fn plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\r' | b'\n')
}

/// How many bytes at the start of `text` are plain.
pub(super) fn plain_len(text: &[u8]) -> usize {
    text.iter().position(|&b| !plain(b)).unwrap_or(text.len())
}

/// The first run of plain bytes in `text` at least `min` long, as a range.
pub(super) fn long_run(text: &[u8], min: usize) -> Option<std::ops::Range<usize>> {
    let mut start = 0;
    while text.len() - start >= min {
        match text[start..].iter().position(|&b| !plain(b)) {
            None => return Some(start..text.len()),
            Some(n) if n >= min => return Some(start..start + n),
            Some(n) => start += n + 1,
        }
    }
    None
}

/// The cursor's column after one plain byte, counting the lines it scrolls (bottom row).
fn step(col: &mut usize, scrolls: &mut usize, b: u8, cols: usize) {
    match b {
        b'\r' => *col = 0,
        b'\n' => *scrolls += 1,
        _ if *col >= cols => {
            // Wrap: scroll, print at the line start.
            *scrolls += 1;
            *col = 1;
        }
        _ => *col += 1,
    }
}

/// The longest head of the plain `run` that returns the cursor to column `col0` and is
/// followed by at least `need` scrolled lines (its length, or `None` when there is none).
fn skippable_head(run: &[u8], col0: usize, cols: usize, need: usize) -> Option<usize> {
    let (mut col, mut total) = (col0, 0);
    for &b in run {
        step(&mut col, &mut total, b, cols);
    }
    if total < need {
        return None;
    }
    let (mut col, mut scrolls, mut cut) = (col0, 0, 0);
    for (i, &b) in run.iter().enumerate() {
        if total - scrolls < need {
            break;
        }
        if col == col0 {
            cut = i;
        }
        step(&mut col, &mut scrolls, b, cols);
    }
    (cut > 0).then_some(cut)
}

impl TermState {
    /// The shortest plain run worth looking at: one that can scroll the history away.
    pub(super) fn flood_min(&self) -> usize {
        (self.history_lines + usize::from(self.rows) + 2) * usize::from(self.cols)
    }

    /// Emulates the plain `run`, leaving out the head that cannot change the outcome.
    pub(super) fn emulate_plain(&mut self, mut run: &str) {
        // The end of a sequence begun before the run (all of the run is ASCII).
        while self.parser.state != State::Ground && !run.is_empty() {
            self.emulate_chars(&run[..1]);
            run = &run[1..];
        }
        if run.is_empty() {
            return;
        }
        // What the run's first character would do anyway: it prints or is executed.
        self.release_held();
        if let Some(cut) = self.skippable(run.as_bytes()) {
            self.skipped += cut as u64;
            run = &run[cut..];
        }
        self.emulate_chars(run);
    }

    fn skippable(&self, run: &[u8]) -> Option<usize> {
        let (cols, rows) = self.vt.size();
        let cursor = self.vt.cursor();
        let history = match self.vt.active_screen_kind() {
            ScreenKind::Primary => self.history_lines,
            ScreenKind::Alternate => 0,
        };
        // Lines to scroll after the head: the old bottom row must leave the history too.
        let need = history + rows + 1;
        if cursor.row + 1 != rows || run.len() < need || !self.scrolls_plainly() {
            return None;
        }
        skippable_head(run, cursor.col, cols, need)
    }

    /// Whether plain text only prints, wraps and scrolls the whole screen: read from the
    /// emulator's own dump, which sets every mode that differs from a fresh terminal.
    fn scrolls_plainly(&self) -> bool {
        let mut parser = avt::Parser::new();
        !self
            .vt
            .dump()
            .chars()
            .filter_map(|c| parser.feed(c))
            .any(|f| match f {
                Function::Decstbm(..) | Function::So => true,
                Function::Gzd4(c) | Function::G1d4(c) => c != Charset::Ascii,
                Function::Sm(m) => m
                    .as_slice()
                    .iter()
                    .any(|m| matches!(m, AnsiMode::Insert | AnsiMode::NewLine)),
                Function::Decrst(m) => m.as_slice().contains(&DecMode::AutoWrap),
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_are_found_between_other_bytes() {
        assert_eq!(long_run(b"abc\x1b[mdefgh\r\n\x07ij", 4), Some(4..13));
        assert_eq!(long_run(b"abc\x1bdef", 4), None);
        assert_eq!(long_run(b"abcd", 4), Some(0..4));
    }

    #[test]
    fn the_head_returns_to_the_starting_column() {
        // 4 columns, no newlines: every 4 characters the cursor is back where it started.
        let run = [b'x'; 40];
        let cut = skippable_head(&run, 2, 4, 3).unwrap();
        assert_eq!(cut % 4, 0);
        assert!(
            cut >= 24,
            "only the last 3 lines' worth (and a bit) is left: {cut}"
        );
        assert_eq!(skippable_head(&run, 2, 4, 11), None);
        assert_eq!(
            skippable_head(b"ab\r\ncd\r\nef\r\ngh\r\n", 0, 80, 2),
            Some(11)
        );
    }

    /// A small xorshift generator: the same streams every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Random output: plain floods (with and without newlines) between sequences that change
    /// what plain text does (margins, autowrap, insert and new-line modes, charsets, the
    /// alternate screen, cursor moves), colours, wide and combining characters.
    fn stream(rng: &mut Rng, cols: usize) -> Vec<u8> {
        const SEQS: &[&str] = &[
            "\x1b[2;3r",
            "\x1b[r",
            "\x1b[?7l",
            "\x1b[?7h",
            "\x1b[4h",
            "\x1b[4l",
            "\x1b[20h",
            "\x1b[20l",
            "\x1b(0",
            "\x1b(B",
            "\x0e",
            "\x0f",
            "\x1b[?1049h",
            "\x1b[?1049l",
            "\x1b[H",
            "\x1b[99;1H",
            "\x1b[31;44m",
            "\x1b[0m",
            "\x1b[7m",
            "\x1b[2J",
            "\x1b[3J",
            "\x1b[K",
            "\x1b7",
            "\x1b8",
            "\x1bM",
            "\x1b[?6h",
            "\x1b[?6l",
            "\u{4e2d}",
            "e\u{301}",
            "\t",
            "\x1b]2;t",
            "\x07",
            "\x1b[3",
            "m",
        ];
        let mut out = Vec::new();
        for _ in 0..40 {
            if rng.next(3) == 0 {
                out.extend_from_slice(SEQS[rng.next(SEQS.len())].as_bytes());
                continue;
            }
            let len = rng.next(cols * 40);
            let newline_every = [0, 1 + rng.next(cols * 2), 3][rng.next(3)];
            for i in 0..len {
                if newline_every > 0 && i % newline_every == newline_every - 1 {
                    out.extend_from_slice(if rng.next(4) == 0 { b"\n" } else { b"\r\n" });
                } else {
                    out.push(b'!' + rng.next(94) as u8);
                }
            }
        }
        out
    }

    fn lines(t: &TermState) -> Vec<(String, bool, Vec<avt::Pen>)> {
        t.vt.primary_screen()
            .all_lines()
            .map(|l| {
                (
                    l.text(),
                    l.is_wrapped(),
                    l.cells().iter().map(|c| *c.pen()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_flood_read_whole_leaves_the_state_it_leaves_read_in_small_pieces() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut skipped = 0;
        for case in 0..300 {
            let (cols, rows, history) = (1 + rng.next(12), 1 + rng.next(5), rng.next(8));
            let bytes = stream(&mut rng, cols);
            let mut whole = TermState::new(cols as u16, rows as u16, history);
            let mut pieces = TermState::new(cols as u16, rows as u16, history);
            for part in bytes.chunks(1 + rng.next(bytes.len().max(1))) {
                whole.feed(part);
            }
            // Pieces shorter than any flood that can be left out.
            for part in bytes.chunks(whole.flood_min().min(64) - 1) {
                pieces.feed(part);
            }
            assert_eq!(
                whole.vt.dump(),
                pieces.vt.dump(),
                "case {case}: {cols}x{rows}, {history} lines"
            );
            assert_eq!(lines(&whole), lines(&pieces), "case {case}: history");
            assert_eq!(whole.snapshot(), pieces.snapshot(), "case {case}: snapshot");
            skipped += usize::from(whole.skipped > 0);
        }
        assert!(
            skipped > 50,
            "floods were left out in {skipped} of 300 cases"
        );
    }
}
