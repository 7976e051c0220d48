//! Local events of an attached client: keystrokes (through the `~` escape), SIGWINCH, and
//! the signals that end it (SIGINT, SIGTERM, SIGHUP), as one stream the loops select on.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::escape::EscapeScanner;

/// Something that happened on this side.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalEvent {
    /// Keystrokes to send (escapes removed; may be empty).
    Keys(Vec<u8>),
    /// `~.` at the start of a line.
    Detach,
    /// The local terminal changed size.
    Resized,
    /// A signal that ends the client (its number).
    Signal(i32),
}

/// Keystrokes and signals.
pub struct Local {
    keys: Option<mpsc::Receiver<Vec<u8>>>,
    escape: EscapeScanner,
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
            winch: signal(SignalKind::window_change())?,
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next event (end of input just stops the keystrokes).
    pub async fn next(&mut self) -> LocalEvent {
        loop {
            let keys = async {
                match self.keys.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                k = keys => match k {
                    Some(bytes) => {
                        let scanned = self.escape.scan(&bytes);
                        return if scanned.detach {
                            LocalEvent::Detach
                        } else {
                            LocalEvent::Keys(scanned.send)
                        };
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
