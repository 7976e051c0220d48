//! Local events of an attached client: keystrokes (through the `~` escapes), SIGWINCH, and
//! the signals that end it (SIGINT, SIGTERM, SIGHUP), as one stream the loops select on.

use std::collections::VecDeque;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::escape::{Escape, EscapeScanner, Piece};

/// Something that happened on this side.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalEvent {
    /// Keystrokes to send (escapes removed).
    Keys(Vec<u8>),
    /// A `~` escape.
    Escape(Escape),
    /// The local terminal changed size.
    Resized,
    /// A signal that ends the client (its number).
    Signal(i32),
}

/// Keystrokes and signals.
pub struct Local {
    keys: Option<mpsc::Receiver<Vec<u8>>>,
    escape: EscapeScanner,
    /// Events of a chunk already scanned, not yet returned.
    scanned: VecDeque<LocalEvent>,
    winch: Signal,
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Local {
    /// Starts reading keystrokes and listening for signals.
    pub fn start() -> std::io::Result<Local> {
        Ok(Local {
            keys: Some(crate::cli::input::spawn()),
            escape: EscapeScanner::default(),
            scanned: VecDeque::new(),
            winch: signal(SignalKind::window_change())?,
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Whether a request for control waits for our answer (`~y` / `~n`).
    pub fn set_answering(&mut self, answering: bool) {
        self.escape.set_answering(answering);
    }

    /// The next event (end of input just stops the keystrokes).
    pub async fn next(&mut self) -> LocalEvent {
        loop {
            if let Some(ev) = self.scanned.pop_front() {
                return ev;
            }
            let keys = async {
                match self.keys.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                k = keys => match k {
                    Some(bytes) => {
                        #[cfg(debug_assertions)]
                        panic_test(&bytes);
                        self.scanned
                            .extend(self.escape.scan(&bytes).into_iter().map(|p| match p {
                                Piece::Keys(k) => LocalEvent::Keys(k),
                                Piece::Escape(e) => LocalEvent::Escape(e),
                            }));
                    }
                    None => self.keys = None,
                },
                _ = self.winch.recv() => return LocalEvent::Resized,
                _ = self.int.recv() => return LocalEvent::Signal(libc::SIGINT),
                _ = self.term.recv() => return LocalEvent::Signal(libc::SIGTERM),
                _ = self.hup.recv() => return LocalEvent::Signal(libc::SIGHUP),
            }
        }
    }
}

/// Debug builds only: keystrokes that contain the value of `ATTACHD_CLI_PANIC_TEST` panic,
/// so tests can show that a panic gives the terminal back. Release builds have no such switch.
#[cfg(debug_assertions)]
fn panic_test(keys: &[u8]) {
    let Some(word) = std::env::var_os("ATTACHD_CLI_PANIC_TEST") else {
        return;
    };
    let word = word.as_encoded_bytes();
    if !word.is_empty() && keys.windows(word.len()).any(|w| w == word) {
        panic!("ATTACHD_CLI_PANIC_TEST was typed");
    }
}
