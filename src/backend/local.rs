//! The local backend: a process on a PTY of this host (portable-pty), bridged to the hub's
//! bounded channels by two threads (blocking reads and writes stay off the async runtime).

use std::io::{Read, Write};
use std::thread;

use attachd_actors::backend::{BackendEvent, BackendInput, BackendIo};
use bytes::Bytes;
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

/// Bytes read from the PTY per chunk.
const READ_CHUNK: usize = 16 * 1024;

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

/// Starts `argv` on a new 80x24 PTY and returns the hub's end of the pipe.
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
    let mut child = pair.slave.spawn_command(cmd).map_err(|e| err(&e))?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().map_err(|e| err(&e))?;
    let mut writer = pair.master.take_writer().map_err(|e| err(&e))?;
    let mut killer = child.clone_killer();
    let master = pair.master;

    let (io, events, mut input) = BackendIo::channels();

    thread::Builder::new()
        .name("pty-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&buf[..n]);
                        // Blocks while the hub is behind: the PTY itself is the backpressure.
                        if events.blocking_send(BackendEvent::Output(chunk)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // EIO once the slave side is closed: the process is gone.
                    Err(_) => break,
                }
            }
            let code = match child.wait() {
                Ok(status) => status.exit_code() as i32,
                Err(_) => -1,
            };
            let _ = events.blocking_send(BackendEvent::Exited(code));
        })
        .map_err(|e| err(&e))?;

    thread::Builder::new()
        .name("pty-write".into())
        .spawn(move || {
            while let Some(msg) = input.blocking_recv() {
                match msg {
                    BackendInput::Stdin(data) => {
                        if writer
                            .write_all(&data)
                            .and_then(|()| writer.flush())
                            .is_err()
                        {
                            break;
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
                    BackendInput::Terminate => break,
                }
            }
            // The hub is gone or asked us to stop: end the process.
            let _ = killer.kill();
        })
        .map_err(|e| err(&e))?;

    Ok(io)
}
