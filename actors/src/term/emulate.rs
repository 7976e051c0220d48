//! How output reaches the screen emulator: `avt`'s parser turns text into functions, which are
//! executed one by one, so that what is printed, erased or cleared is seen as it happens.
//!
//! Printed characters go through the cluster rules; erases keep only the pen's background
//! (xterm's rule, where `avt` erases with the whole pen); ED 2 leaves the history alone and
//! ED 3 drops it, as in xterm.

use avt::parser::{EdScope, ElScope, Function, SgrOp, SgrOps, State};
use avt::Pen;

use super::{flood, TermState};

/// Longest unfinished sequence kept for a snapshot (bytes); the rest of a longer string is
/// left out, the client is still inside it when the live bytes arrive.
const MAX_PENDING: usize = 4096;

impl TermState {
    /// Parses `text` and executes what it says.
    pub(super) fn emulate(&mut self, mut text: &str) {
        let min = self.flood_min();
        while let Some(run) = flood::long_run(text.as_bytes(), min) {
            self.emulate_chars(&text[..run.start]);
            self.emulate_plain(&text[run.clone()]);
            text = &text[run.end..];
        }
        self.emulate_chars(text);
    }

    /// Parses `text` character by character and executes what it says; plain text met in
    /// the ground state goes to the emulator in one piece (its own parser reads it alike).
    pub(super) fn emulate_chars(&mut self, text: &str) {
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if self.parser.state == State::Ground {
                let n = flood::plain_len(rest.as_bytes());
                if n > 1 {
                    self.feed_plain(&rest[..n]);
                    rest = &rest[n..];
                    continue;
                }
            }
            let f = self.parser.feed(c);
            self.track_pending(c);
            if let Some(f) = f {
                self.apply(f);
            }
            rest = &rest[c.len_utf8()..];
        }
    }

    /// Plain text (printable ASCII, CR, LF) in the ground state, the last printed character
    /// held back as any is.
    fn feed_plain(&mut self, text: &str) {
        self.release_held();
        match text.as_bytes().last() {
            Some(&b) if b != b'\r' && b != b'\n' => {
                self.vt.feed(&text[..text.len() - 1]);
                let vt = &mut self.vt;
                self.clusters
                    .print(char::from(b), &mut |ch| vt.execute(Function::Print(ch)));
            }
            _ => self.vt.feed(text),
        }
    }

    /// Keeps the text of the sequence the parser is in, from its introducer.
    fn track_pending(&mut self, c: char) {
        if self.parser.state == State::Ground {
            if !self.pending.is_empty() {
                self.pending.clear();
            }
            return;
        }
        if c == '\u{1b}' || ('\u{80}'..='\u{9f}').contains(&c) {
            self.pending.clear();
        }
        if self.pending.len() + c.len_utf8() <= MAX_PENDING {
            self.pending.push(c);
        }
    }

    fn apply(&mut self, f: Function) {
        if let Function::Print(c) = f {
            let vt = &mut self.vt;
            self.clusters
                .print(c, &mut |ch| vt.execute(Function::Print(ch)));
            return;
        }
        self.release_held();
        match f {
            // `avt` ignores ED 3 (erase the scrollback, what `clear` sends after ED 2); xterm
            // and xterm.js drop their history there, and so must a snapshot.
            Function::Ed(EdScope::SavedLines) => self.clear_history(),
            Function::Ed(_) | Function::El(_) | Function::Ech(_) => self.erase(f),
            f => self.vt.execute(f),
        }
    }

    /// Gives the emulator the character held back for a possible combining mark.
    pub(super) fn release_held(&mut self) {
        let vt = &mut self.vt;
        self.clusters
            .release(&mut |ch| vt.execute(Function::Print(ch)));
    }

    /// An erase, leaving cells with the pen's background only: `avt` erases with the whole
    /// pen, so when that pen has more than a background the erase is done again with a pen
    /// of its background alone, and the pen is put back.
    fn erase(&mut self, f: Function) {
        let probe = self.erased_cell(&f);
        // ED 2 as above and below the cursor: `avt`'s ED 2 also pushes the screen into the
        // history, which xterm and xterm.js do not do.
        let parts = match f {
            Function::Ed(EdScope::All) => {
                vec![Function::Ed(EdScope::Above), Function::Ed(EdScope::Below)]
            }
            f => vec![f],
        };
        for part in &parts {
            self.vt.execute(part.clone());
        }
        let Some(pen) = probe.and_then(|(col, row)| {
            let line = self.vt.screen().line(row)?;
            line.cells().get(col).map(|c| *c.pen())
        }) else {
            return;
        };
        if background_only(&pen) {
            return;
        }
        let mut blank = vec![SgrOp::Reset];
        blank.extend(pen.background().map(SgrOp::SetBackgroundColor));
        self.vt.execute(Function::Sgr(SgrOps::from(blank)));
        self.vt.execute(parts);
        self.vt.execute(Function::Sgr(SgrOps::from(pen_ops(&pen))));
    }

    /// A cell the erase `f` is sure to clear, if it clears any (the cursor does not move).
    fn erased_cell(&self, f: &Function) -> Option<(usize, usize)> {
        let cursor = self.vt.cursor();
        let (cols, rows) = self.vt.size();
        let (col, row) = (cursor.col, cursor.row);
        match f {
            // At the right margin with a wrap pending, nothing to the right is left.
            Function::El(ElScope::ToRight) | Function::Ech(_) => (col < cols).then_some((col, row)),
            Function::El(_) => Some((0, row)),
            Function::Ed(EdScope::Below) if col < cols => Some((col, row)),
            Function::Ed(EdScope::Below) => (row + 1 < rows).then_some((0, row + 1)),
            Function::Ed(_) => Some((0, 0)),
            _ => None,
        }
    }
}

/// A pen that sets nothing but (possibly) a background colour.
fn background_only(p: &Pen) -> bool {
    p.foreground().is_none()
        && !(p.is_bold()
            || p.is_faint()
            || p.is_italic()
            || p.is_underline()
            || p.is_blink()
            || p.is_inverse()
            || p.is_strikethrough())
}

/// SGR operations that set exactly `p`, from a reset.
fn pen_ops(p: &Pen) -> Vec<SgrOp> {
    let mut ops = vec![SgrOp::Reset];
    ops.extend(p.foreground().map(SgrOp::SetForegroundColor));
    ops.extend(p.background().map(SgrOp::SetBackgroundColor));
    let flags = [
        (p.is_bold(), SgrOp::SetBoldIntensity),
        (p.is_faint(), SgrOp::SetFaintIntensity),
        (p.is_italic(), SgrOp::SetItalic),
        (p.is_underline(), SgrOp::SetUnderline),
        (p.is_blink(), SgrOp::SetBlink),
        (p.is_inverse(), SgrOp::SetInverse),
        (p.is_strikethrough(), SgrOp::SetStrikethrough),
    ];
    ops.extend(flags.into_iter().filter(|(on, _)| *on).map(|(_, op)| op));
    ops
}
