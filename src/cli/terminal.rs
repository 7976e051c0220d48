//! The local terminal: raw mode entered once and restored on every exit path (a guard, the
//! panic hook and explicit calls share one idempotent `restore`), its size, and notices.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use attachd_actors::protocol::TermSize;
use rustix::termios::{self, OptionalActions, Termios};

/// The terminal's settings before raw mode.
static SAVED: OnceLock<Termios> = OnceLock::new();
/// Raw mode is on and not yet restored.
static RAW: AtomicBool = AtomicBool::new(false);
/// The session's output written since the last notice may have left the cursor mid-line.
static MID_LINE: AtomicBool = AtomicBool::new(false);

/// Leaves modes a remote program may have switched on in the local terminal: mouse reporting,
/// focus events, bracketed paste, application cursor keys and keypad, hidden cursor, colours,
/// the alternate screen (`?1047l` switches back only when it is active).
pub const MODES_OFF: &[u8] = b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\
\x1b[?1015l\x1b[?1004l\x1b[?2004l\x1b[?1l\x1b>\x1b[?25h\x1b[0m\x1b[?1047l";

/// Resets a terminal before a snapshot's payload is written into it (RIS, SPEC §8).
pub const RESET: &[u8] = b"\x1bc";

/// Whether standard input is a terminal (raw mode and sizes apply only then).
pub fn stdin_is_tty() -> bool {
    termios::isatty(std::io::stdin())
}

/// Raw mode on standard input until the guard drops (or `restore` runs first).
pub struct RawGuard(());

impl RawGuard {
    /// Puts the terminal in raw mode and installs the panic hook that restores it.
    pub fn enter() -> std::io::Result<RawGuard> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = SAVED.set(saved);
        install_panic_hook();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        RAW.store(true, Ordering::SeqCst);
        Ok(RawGuard(()))
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts back the settings saved by [`RawGuard::enter`] and switches remote modes off; runs
/// at most once however many exit paths call it.
pub fn restore() {
    if !RAW.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = std::io::stdout().flush();
    if termios::isatty(std::io::stdout()) {
        let _ = rustix::io::write(std::io::stdout(), MODES_OFF);
    }
    if let Some(saved) = SAVED.get() {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// The local terminal's size, when standard input or output is a terminal.
pub fn size() -> Option<TermSize> {
    let ws = termios::tcgetwinsize(std::io::stdin())
        .or_else(|_| termios::tcgetwinsize(std::io::stdout()))
        .ok()?;
    let clamp = |n: u16| n.clamp(1, attachd_actors::protocol::MAX_TERMINAL_DIM as u16);
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| TermSize {
        cols: clamp(ws.ws_col),
        rows: clamp(ws.ws_row),
    })
}

/// The session's output `bytes` were written to the terminal: whether they end at the start
/// of a line (a line feed, or the reset before a snapshot) decides how the next notice begins.
pub fn wrote(bytes: &[u8]) {
    if !bytes.is_empty() {
        MID_LINE.store(
            !(bytes.ends_with(b"\n") || bytes.ends_with(RESET)),
            Ordering::Relaxed,
        );
    }
}

/// One line on standard error, `attachd: <msg>`, on a line of its own even in raw mode and
/// even when the remote cursor was mid-line. Never on standard output.
pub fn notice(msg: &str) {
    let tty = termios::isatty(std::io::stderr());
    let mid_line = MID_LINE.swap(false, Ordering::Relaxed);
    let line = notice_line(msg, tty, SAVED.get().is_some(), mid_line);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

/// A notice on a terminal that was put in raw mode starts a new line only when the output
/// left the cursor mid-line: two notices in a row, or a notice after a line feed, add no
/// empty line.
fn notice_line(msg: &str, tty: bool, was_raw: bool, mid_line: bool) -> String {
    let lead = match (tty && was_raw, mid_line) {
        (false, _) => "",
        (true, true) => "\r\n",
        (true, false) => "\r",
    };
    let end = if tty { "\r\n" } else { "\n" };
    format!("{lead}attachd: {msg}{end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_keep_to_their_own_line() {
        assert_eq!(notice_line("x", false, true, true), "attachd: x\n");
        assert_eq!(notice_line("x", true, false, true), "attachd: x\r\n");
        assert_eq!(notice_line("x", true, true, true), "\r\nattachd: x\r\n");
        assert_eq!(notice_line("x", true, true, false), "\rattachd: x\r\n");
    }

    #[test]
    fn output_decides_whether_the_next_notice_needs_a_new_line() {
        wrote(b"$ ");
        assert!(MID_LINE.load(Ordering::Relaxed));
        wrote(b"");
        assert!(
            MID_LINE.load(Ordering::Relaxed),
            "nothing written changes nothing"
        );
        wrote(b"done\r\n");
        assert!(!MID_LINE.load(Ordering::Relaxed));
        wrote(b"x");
        wrote(RESET);
        assert!(!MID_LINE.load(Ordering::Relaxed));
    }

    #[test]
    fn restore_without_raw_mode_does_nothing() {
        restore();
        restore();
        assert!(!RAW.load(Ordering::SeqCst));
    }
}
