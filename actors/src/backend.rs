//! The byte pipe between a session hub and whatever runs the terminal (a local PTY, a pod).
//! Backends live at the edge; the hub only sees these bounded channels.

use bytes::Bytes;
use tokio::sync::mpsc;

/// Capacity of the channel carrying terminal output to the hub (chunks, not bytes).
pub const OUTPUT_CHANNEL_CAPACITY: usize = 64;
/// Capacity of the channel carrying stdin and resizes to the backend.
pub const INPUT_CHANNEL_CAPACITY: usize = 64;

/// What a backend reports to its hub, in order.
#[derive(Debug)]
pub enum BackendEvent {
    /// Terminal output bytes, exactly as produced.
    Output(Bytes),
    /// The process ended with this exit code; no more output follows.
    Exited(i32),
    /// The target vanished (pod deleted, connection to the API lost): participants get 4005.
    Gone(String),
}

/// What the hub asks a backend to do.
#[derive(Debug)]
pub enum BackendInput {
    /// Bytes for the process's stdin.
    Stdin(Bytes),
    /// New terminal size.
    Resize { cols: u16, rows: u16 },
    /// End the process (session deleted).
    Terminate,
}

/// A running terminal: the hub reads `events` and writes `input`. Both channels are bounded.
#[derive(Debug)]
pub struct BackendIo {
    /// Output, exit and loss notifications from the backend.
    pub events: mpsc::Receiver<BackendEvent>,
    /// Stdin, resize and termination requests to the backend.
    pub input: mpsc::Sender<BackendInput>,
}

impl BackendIo {
    /// Creates the two bounded channels; the backend keeps the returned ends.
    pub fn channels() -> (
        Self,
        mpsc::Sender<BackendEvent>,
        mpsc::Receiver<BackendInput>,
    ) {
        let (ev_tx, ev_rx) = mpsc::channel(OUTPUT_CHANNEL_CAPACITY);
        let (in_tx, in_rx) = mpsc::channel(INPUT_CHANNEL_CAPACITY);
        (
            BackendIo {
                events: ev_rx,
                input: in_tx,
            },
            ev_tx,
            in_rx,
        )
    }
}
