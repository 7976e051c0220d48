//! A client's own view of a session's screen, through the `vt100` crate (not the server's
//! `avt`): reset at every `snapshot`, fed live output, read back cell by cell.

use std::num::NonZeroU16;

use xxhash_rust::xxh3::Xxh3;

/// One participant's terminal: none until the first `snapshot` says its size.
#[derive(Default)]
pub struct ScreenView {
    parser: Option<vt100::Parser>,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl ScreenView {
    /// A terminal of `cols`×`rows` with nothing written yet.
    pub fn sized(cols: u16, rows: u16) -> Self {
        let mut v = ScreenView::default();
        v.reset(cols, rows);
        v
    }

    /// A freshly reset terminal of `cols`×`rows` (what a client does on `snapshot`); no
    /// scrollback is kept.
    pub fn reset(&mut self, cols: u16, rows: u16) {
        self.parser = Some(vt100::Parser::new(nz(rows), nz(cols), 0));
    }

    /// The PTY size changed (`size` frame).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        if let Some(p) = &mut self.parser {
            p.set_size(nz(rows), nz(cols));
        }
    }

    /// Writes output into the terminal; false if there is no terminal yet (output before any
    /// snapshot, which SPEC §8 rules out).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        match &mut self.parser {
            Some(p) => {
                p.process(bytes);
                true
            }
            None => false,
        }
    }

    fn screen(&self) -> Option<&vt100::Screen> {
        self.parser.as_ref().map(vt100::Parser::screen)
    }

    /// `(cols, rows)`, once there is a terminal.
    pub fn size(&self) -> Option<(u16, u16)> {
        self.screen().map(|s| {
            let (rows, cols) = s.size();
            (cols.get(), rows.get())
        })
    }

    /// The cursor, `(row, col)` from 0.
    pub fn cursor(&self) -> Option<(u16, u16)> {
        self.screen().map(vt100::Screen::cursor_position)
    }

    /// Whether the cells of `row` from `col` on spell `text` (ASCII).
    pub fn shows_at(&self, row: u16, col: u16, text: &str) -> bool {
        let Some(s) = self.screen() else {
            return false;
        };
        text.chars().zip(col..).all(|(ch, c)| {
            s.cell(row, c).is_some_and(|cell| {
                let mut buf = [0u8; 4];
                cell.contents() == ch.encode_utf8(&mut buf)
            })
        })
    }

    /// Every cell's text (an empty cell is a space), one line per row, then the cursor as
    /// `@row,col`: what two screens must share to be the same screen.
    pub fn text(&self) -> String {
        let Some(s) = self.screen() else {
            return String::new();
        };
        let (rows, cols) = s.size();
        let mut out =
            String::with_capacity(usize::from(rows.get()) * (usize::from(cols.get()) + 1));
        for r in 0..rows.get() {
            for c in 0..cols.get() {
                match s.cell(r, c).map(vt100::Cell::contents) {
                    Some(t) if !t.is_empty() => out.push_str(t),
                    _ => out.push(' '),
                }
            }
            out.push('\n');
        }
        let (r, c) = s.cursor_position();
        out.push_str(&format!("@{r},{c}"));
        out
    }

    /// A digest of every cell's attributes (colours, bold, italic, underline, inverse).
    pub fn attrs_digest(&self) -> u64 {
        let Some(s) = self.screen() else {
            return 0;
        };
        let (rows, cols) = s.size();
        let mut h = Xxh3::new();
        for r in 0..rows.get() {
            for c in 0..cols.get() {
                let Some(cell) = s.cell(r, c) else { continue };
                let flags = [cell.bold(), cell.italic(), cell.underline(), cell.inverse()];
                h.update(&flags.map(u8::from));
                for colour in [cell.fgcolor(), cell.bgcolor()] {
                    h.update(&match colour {
                        vt100::Color::Default => [0, 0, 0, 0],
                        vt100::Color::Idx(i) => [1, i, 0, 0],
                        vt100::Color::Rgb(r, g, b) => [2, r, g, b],
                    });
                }
            }
        }
        h.digest()
    }
}

/// The xxh3 digest of a screen's [`ScreenView::text`], as records carry it.
pub fn text_digest(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_resets_and_text_is_cell_by_cell() {
        let mut v = ScreenView::default();
        assert!(!v.feed(b"before any snapshot"));
        v.reset(10, 3);
        assert!(v.feed(b"ab\x1b[2;4Hcd"));
        assert_eq!(v.text(), "ab        \n   cd     \n          \n@1,5");
        assert!(v.shows_at(1, 3, "cd"));
        assert!(!v.shows_at(1, 3, "ce"));
        v.reset(10, 3);
        assert_eq!(v.text(), format!("{0}\n{0}\n{0}\n@0,0", " ".repeat(10)));
        assert_eq!(v.size(), Some((10, 3)));
    }

    #[test]
    fn attributes_change_the_digest_not_the_text() {
        let (mut plain, mut red) = (ScreenView::sized(8, 2), ScreenView::sized(8, 2));
        plain.feed(b"hi");
        red.feed(b"\x1b[31mhi\x1b[0m");
        assert_eq!(plain.text(), red.text());
        assert_ne!(plain.attrs_digest(), red.attrs_digest());
    }
}
