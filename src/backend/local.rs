//! The local backend: a process on a PTY of this host (portable-pty). The PTY master is
//! non-blocking and driven by one task on the runtime (`AsyncFd`): no thread per session.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use attachd_actors::backend::{BackendEvent, BackendInput, BackendIo};
use bytes::Bytes;
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// Most bytes one output event carries (what the hub would merge anyway).
const READ_CHUNK: usize = attachd_actors::hub::MAX_COALESCED;
/// How long output is still read after the process was told to end.
const EXIT_DRAIN: Duration = Duration::from_secs(5);

/// Why a local session could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The PTY or the process could not be created.
    #[error("cannot start {program}: {reason}")]
    Spawn {
        /// argv[0].
        program: String,
        /// The OS error.
        reason: String,
    },
}

/// Starts `argv` on a new 80x24 PTY and returns the hub's end of the pipe. Must be called
/// on the runtime that will drive the PTY.
pub fn spawn(argv: &[String]) -> Result<BackendIo, LocalError> {
    let program = argv.first().cloned().unwrap_or_default();
    let err = |e: &dyn std::fmt::Display| LocalError::Spawn {
        program: program.clone(),
        reason: e.to_string(),
    };
    let pty = native_pty_system();
    let pair = pty
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| err(&e))?;
    let mut cmd = CommandBuilder::new(&program);
    cmd.args(&argv[1..]);
    cmd.env("TERM", "xterm-256color");
    if let Ok(home) = std::env::var("HOME") {
        cmd.cwd(home);
    }
    let child = pair.slave.spawn_command(cmd).map_err(|e| err(&e))?;
    drop(pair.slave);
    let master = pair.master;
    let fd = nonblocking_dup(master.as_ref()).map_err(|e| err(&e))?;
    // SAFETY: the `File` owns the descriptor for as long as the `AsyncFd` holds it.
    let fd = unsafe { AsyncFd::register(File::from(fd)) }.map_err(|e| err(&e.into_parts().1))?;
    let (io, events, input) = BackendIo::channels();
    actix_web::rt::spawn(run(fd, master, child, events, input));
    Ok(io)
}

/// A non-blocking duplicate of the master's descriptor (the flag is shared with the master).
fn nonblocking_dup(master: &dyn MasterPty) -> std::io::Result<OwnedFd> {
    let raw = master
        .as_raw_fd()
        .ok_or_else(|| std::io::Error::other("PTY master has no file descriptor"))?;
    // SAFETY: `raw` belongs to `master`, which outlives this call; it is duplicated at once.
    let fd = unsafe { BorrowedFd::borrow_raw(raw) }.try_clone_to_owned()?;
    let flags = rustix::fs::fcntl_getfl(fd.as_fd())?;
    rustix::fs::fcntl_setfl(fd.as_fd(), flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(fd)
}

/// Pumps output to the hub and input to the PTY until the process ends or the hub lets go,
/// then reports the exit code.
async fn run(
    fd: AsyncFd<File>,
    master: Box<dyn MasterPty + Send>,
    mut child: Box<dyn Child + Send + Sync>,
    events: mpsc::Sender<BackendEvent>,
    mut input: mpsc::Receiver<BackendInput>,
) {
    let mut killer = child.clone_killer();
    {
        let output = pump_output(&fd, &events);
        tokio::pin!(output);
        tokio::select! {
            () = &mut output => {}
            () = pump_input(&fd, master.as_ref(), &mut input) => {
                // The hub is gone or asked us to stop: end the process, keep its last output.
                let _ = killer.kill();
                let _ = tokio::time::timeout(EXIT_DRAIN, output).await;
            }
        }
    }
    drop(fd);
    drop(master);
    let code = tokio::task::spawn_blocking(move || match child.wait() {
        Ok(status) => status.exit_code() as i32,
        Err(_) => -1,
    })
    .await
    .unwrap_or(-1);
    let _ = events.send(BackendEvent::Exited(code)).await;
}

/// PTY output → hub. A slot in the channel is taken before reading, so a hub that is behind
/// leaves the output in the PTY (the process blocks on its writes: that is the backpressure).
/// Each event carries everything the PTY had ready, up to `READ_CHUNK`: under bulk output the
/// hub fans out fewer, larger chunks.
async fn pump_output(fd: &AsyncFd<File>, events: &mpsc::Sender<BackendEvent>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let Ok(permit) = events.reserve().await else {
            return;
        };
        let Ok(mut ready) = fd.readable().await else {
            return;
        };
        let mut filled = 0;
        let mut ended = false;
        while filled < buf.len() {
            match ready.try_io(|f| f.get_ref().read(&mut buf[filled..])) {
                Ok(Ok(0)) => {
                    ended = true;
                    break;
                }
                Ok(Ok(n)) => filled += n,
                Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                // EIO once the slave side is closed: the process is gone.
                Ok(Err(_)) => {
                    ended = true;
                    break;
                }
                Err(_would_block) if filled > 0 => break,
                Err(_would_block) => match fd.readable().await {
                    Ok(r) => ready = r,
                    Err(_) => return,
                },
            }
        }
        if filled > 0 {
            permit.send(BackendEvent::Output(Bytes::copy_from_slice(&buf[..filled])));
        }
        if ended {
            return;
        }
        // Let the hub and the connections on this thread send it on before reading more:
        // otherwise a fast process fills every queue before any socket is written.
        tokio::task::yield_now().await;
    }
}

/// Hub → PTY: stdin bytes and resizes, until `Terminate` or the hub drops its end.
async fn pump_input(
    fd: &AsyncFd<File>,
    master: &dyn MasterPty,
    input: &mut mpsc::Receiver<BackendInput>,
) {
    while let Some(msg) = input.recv().await {
        match msg {
            BackendInput::Stdin(data) => {
                let mut off = 0;
                while off < data.len() {
                    let Ok(mut ready) = fd.writable().await else {
                        return;
                    };
                    match ready.try_io(|f| f.get_ref().write(&data[off..])) {
                        Ok(Ok(n)) => off += n,
                        Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                        Ok(Err(_)) => return,
                        Err(_would_block) => {}
                    }
                }
            }
            BackendInput::Resize { cols, rows } => {
                let _ = master.resize(PtySize {
                    rows,
                    cols,
                    pixel_width: 0,
                    pixel_height: 0,
                });
            }
            BackendInput::Terminate => return,
        }
    }
}
