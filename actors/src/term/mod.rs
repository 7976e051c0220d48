//! A session's terminal state: the screen emulator fed with every output byte in order, and the
//! snapshot that reproduces its screen, modes and history in a freshly reset terminal.
//!
//! The screen (both buffers, cursor, pen, margins, charsets, saved cursors, pending wrap) is
//! `avt`'s, the asciinema terminal, whose `dump` is built for exactly this; [`emulate`] parses
//! the output and hands it the functions. What `avt` does not keep (input modes, title) is
//! tracked beside it by [`modes`]; history lines are written first so that they land in the
//! client's scrollback.

mod cluster;
mod emulate;
mod flood;
pub mod modes;
mod portable;
mod sgr;
pub mod thumb;
pub mod utf8;
pub mod worker;

use cluster::Clusters;
use modes::ModeTracker;
use utf8::Utf8Stream;

/// Default `session.history_lines`.
pub const DEFAULT_HISTORY_LINES: usize = 1000;

/// The emulated terminal of one session.
pub struct TermState {
    vt: avt::Terminal,
    /// The parser in front of `vt` (whose own parser is only used to replay dumps).
    parser: avt::Parser,
    /// The text of an unfinished sequence (bounded): a snapshot ends with it.
    pending: String,
    modes: ModeTracker,
    utf8: Utf8Stream,
    clusters: Clusters,
    /// Output bytes of floods left out of emulation (they could not change the state).
    skipped: u64,
    cols: u16,
    rows: u16,
    history_lines: usize,
}

impl std::fmt::Debug for TermState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TermState")
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("history_lines", &self.history_lines)
            .finish_non_exhaustive()
    }
}

impl TermState {
    /// A blank terminal of `cols`×`rows` (each at least 1) keeping `history_lines` of history.
    pub fn new(cols: u16, rows: u16, history_lines: usize) -> Self {
        let (cols, rows) = (cols.max(1), rows.max(1));
        let vt = avt::Terminal::with_scrollback(
            usize::from(cols),
            usize::from(rows),
            Some(history_lines),
        )
        .expect("size is at least 1x1");
        TermState {
            vt,
            parser: avt::Parser::new(),
            pending: String::new(),
            modes: ModeTracker::default(),
            utf8: Utf8Stream::default(),
            clusters: Clusters::default(),
            skipped: 0,
            cols,
            rows,
            history_lines,
        }
    }

    /// Processes output bytes (any bytes: invalid UTF-8 becomes U+FFFD, as terminals show it).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut utf8 = std::mem::take(&mut self.utf8);
        utf8.decode(bytes, |text| {
            self.modes.feed(text.as_bytes());
            self.emulate(text);
        });
        self.utf8 = utf8;
    }

    /// Drops the history: a fresh emulator rebuilt from this one's dump, which leaves it out.
    fn clear_history(&mut self) {
        self.release_held();
        let dump = self.vt.dump();
        self.vt = avt::Terminal::with_scrollback(
            usize::from(self.cols),
            usize::from(self.rows),
            Some(self.history_lines),
        )
        .expect("size is at least 1x1");
        self.vt.feed(dump.as_str());
    }

    /// Changes the size (each at least 1); the primary screen reflows as in xterm.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = (cols.max(1), rows.max(1));
        if (cols, rows) != (self.cols, self.rows) {
            self.release_held();
            self.cols = cols;
            self.rows = rows;
            self.vt.resize(usize::from(cols), usize::from(rows));
        }
    }

    /// Columns and rows.
    pub fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    /// `session.history_lines`.
    pub fn history_limit(&self) -> usize {
        self.history_lines
    }

    /// Bytes that, written into a freshly reset terminal of this size, reproduce this state:
    /// title and input modes, then history (scrolled into the scrollback), then the screen.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        self.modes.state().write_to(&mut out);
        self.write_history(&mut out);
        let screen = portable::rewrite(&self.vt.dump());
        out.extend_from_slice(self.clusters.restore(&screen).as_bytes());
        // The last character, held back in case a combining mark follows it.
        out.extend_from_slice(self.clusters.held().as_bytes());
        // An unfinished sequence, then an incomplete character: the live bytes complete them.
        out.extend_from_slice(self.pending.as_bytes());
        out.extend_from_slice(self.utf8.pending());
        out
    }

    /// The visible rows as text (tests and diagnostics).
    pub fn screen_text(&self) -> Vec<String> {
        // Without the character held back for a possible combining mark.
        self.vt
            .screen()
            .visible_lines()
            .map(|l| self.clusters.restore(&l.text()))
            .collect()
    }

    /// Lines of history above the primary screen.
    pub fn history_len(&self) -> usize {
        self.vt.primary_screen().all_lines().count() - usize::from(self.rows)
    }

    fn write_history(&self, out: &mut Vec<u8>) {
        let n = self.history_len();
        if n == 0 {
            return;
        }
        let mut pen = avt::Pen::default();
        let mut last_wrapped = false;
        for line in self.vt.primary_screen().all_lines().take(n) {
            for cells in line.chunks(|a, b| a.pen() != b.pen()) {
                let p = *cells[0].pen();
                if p != pen {
                    sgr::write(&p, out);
                    pen = p;
                }
                let text: String = cells.iter().map(|c| c.char()).collect();
                out.extend_from_slice(self.clusters.restore(&text).as_bytes());
            }
            last_wrapped = line.is_wrapped();
            if !last_wrapped {
                trim_trailing_blanks(out, pen.is_default());
                out.extend_from_slice(b"\r\n");
            }
        }
        if last_wrapped {
            // The last history line continues on the screen's first row: end it here, so the
            // scroll below moves all of it into the scrollback.
            out.extend_from_slice(b"\r\n");
        }
        // Scroll the history off the screen, leaving it blank for the screen's dump.
        out.extend_from_slice(b"\x1b[0m");
        out.resize(out.len() + usize::from(self.rows) - 1, b'\n');
        out.extend_from_slice(b"\r\x1b[H");
    }
}

/// Drops trailing spaces written with the default pen (a line's unused cells).
fn trim_trailing_blanks(out: &mut Vec<u8>, default_pen: bool) {
    if default_pen {
        while out.last() == Some(&b' ') {
            out.pop();
        }
    }
}

#[cfg(test)]
mod tests;
