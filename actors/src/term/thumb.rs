//! A session's visible screen as text and attributes (the dashboard's thumbnail): one row per
//! line, each a list of runs of equal attributes, for a client to paint. Never the raw stream.
//!
//! Built on the emulator's task only when someone asks (the hub caches it for a second).

use serde::Serialize;

use super::TermState;

/// The visible screen at an output offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thumbnail {
    /// Output offset the screen reflects.
    pub offset: u64,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// The cursor (column, row from the top), absent while it is hidden.
    pub cursor: Option<CursorAt>,
    /// `rows` rows, top to bottom; trailing blanks of the default pen are left out.
    pub lines: Vec<Vec<Run>>,
}

/// Where the cursor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CursorAt {
    /// Column, from 0.
    pub col: u16,
    /// Row, from 0.
    pub row: u16,
}

/// Consecutive cells with the same attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The cells' characters (a wide character once, combining marks with their base).
    pub text: String,
    /// Foreground: a palette index (0–255) or `#rrggbb`; absent for the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fg: Option<Color>,
    /// Background, as `fg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bg: Option<Color>,
    /// Bold, faint, italic, underline, strikethrough, blink, inverse: the set ones only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<&'static str>,
}

/// A color of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Color {
    /// A palette index.
    Indexed(u8),
    /// `#rrggbb`.
    Rgb(String),
}

fn color(c: Option<avt::Color>) -> Option<Color> {
    c.map(|c| match c {
        avt::Color::Indexed(i) => Color::Indexed(i),
        avt::Color::RGB(rgb) => Color::Rgb(format!("#{:02x}{:02x}{:02x}", rgb.r, rgb.g, rgb.b)),
    })
}

fn attrs(p: &avt::Pen) -> Vec<&'static str> {
    [
        (p.is_bold(), "bold"),
        (p.is_faint(), "faint"),
        (p.is_italic(), "italic"),
        (p.is_underline(), "underline"),
        (p.is_strikethrough(), "strikethrough"),
        (p.is_blink(), "blink"),
        (p.is_inverse(), "inverse"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

impl TermState {
    /// The visible screen, with the character held back for a combining mark shown at the
    /// cursor (where the terminal shows it).
    pub fn thumbnail(&self, offset: u64) -> Thumbnail {
        let cursor = self.vt.cursor();
        let held = self.clusters.held();
        let lines = self
            .vt
            .screen()
            .visible_lines()
            .enumerate()
            .map(|(row, line)| {
                // One entry per column; the right half of a wide character is empty text.
                let mut cells: Vec<(String, avt::Pen)> = line
                    .cells()
                    .iter()
                    .map(|c| match c.width() {
                        0 => (String::new(), *c.pen()),
                        _ => (self.clusters.restore(&c.char().to_string()), *c.pen()),
                    })
                    .collect();
                if !held.is_empty() && row == cursor.row && cursor.col < cells.len() {
                    cells[cursor.col].0 = held.to_string();
                }
                while cells
                    .last()
                    .is_some_and(|(t, p)| t == " " && p.is_default())
                {
                    cells.pop();
                }
                runs(cells)
            })
            .collect();
        let at = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
        Thumbnail {
            offset,
            cols: self.cols,
            rows: self.rows,
            cursor: cursor.visible.then(|| CursorAt {
                col: at(cursor.col + usize::from(!held.is_empty())).min(self.cols - 1),
                row: at(cursor.row),
            }),
            lines,
        }
    }
}

fn runs(cells: Vec<(String, avt::Pen)>) -> Vec<Run> {
    let mut out: Vec<(avt::Pen, String)> = Vec::new();
    for (text, pen) in cells {
        match out.last_mut() {
            Some((p, t)) if *p == pen => t.push_str(&text),
            _ => out.push((pen, text)),
        }
    }
    out.into_iter()
        .map(|(pen, text)| Run {
            text,
            fg: color(pen.foreground()),
            bg: color(pen.background()),
            attrs: attrs(&pen),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_text(t: &Thumbnail, row: usize) -> String {
        t.lines[row].iter().map(|r| r.text.as_str()).collect()
    }

    #[test]
    fn rows_carry_text_and_attributes() {
        let mut term = TermState::new(20, 3, 10);
        term.feed(b"plain \x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m\r\nsecond");
        let t = term.thumbnail(42);
        assert_eq!((t.offset, t.cols, t.rows, t.lines.len()), (42, 20, 3, 3));
        assert_eq!(row_text(&t, 0), "plain red rgb");
        assert_eq!(
            row_text(&t, 1),
            "second",
            "the held-back last character is shown"
        );
        assert!(t.lines[2].is_empty());
        let red = &t.lines[0][1];
        assert_eq!(
            (red.text.as_str(), &red.fg, &red.attrs),
            ("red", &Some(Color::Indexed(1)), &vec!["bold"])
        );
        assert_eq!(t.lines[0][3].fg, Some(Color::Rgb("#010203".into())));
        assert_eq!(t.cursor, Some(CursorAt { col: 6, row: 1 }));
    }

    #[test]
    fn wide_and_combined_characters_are_one_run_entry() {
        let mut term = TermState::new(10, 2, 0);
        term.feed("界e\u{301}x".as_bytes());
        let t = term.thumbnail(0);
        assert_eq!(row_text(&t, 0), "界e\u{301}x");
    }

    #[test]
    fn the_alternate_screen_is_what_shows() {
        let mut term = TermState::new(10, 2, 0);
        term.feed(b"main\x1b[?1049h\x1b[Halt");
        assert_eq!(row_text(&term.thumbnail(0), 0), "alt");
        term.feed(b"\x1b[?1049l");
        assert_eq!(row_text(&term.thumbnail(0), 0), "main");
    }
}
