//! Keystrokes: a thread reads standard input (blocking reads, as terminals want) into a
//! bounded channel; a full channel stops the reads, so typing ahead is bounded too.

use std::io::Read;

use tokio::sync::mpsc;

/// Chunks waiting between the reader thread and the session loop.
const QUEUE: usize = 16;
/// Largest chunk read at once.
const CHUNK: usize = 4096;

/// Starts the reader; the channel closes at end of input. The thread ends with the process.
pub fn spawn() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; CHUNK];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                }
            }
        });
    if spawned.is_err() {
        crate::cli::terminal::notice("cannot read the keyboard: input is not sent");
    }
    rx
}
