//! A shell on a new PTY whose master is non-blocking and registered with tokio: what the
//! floor server gives each connection and what the raw PTY echo measures.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use tokio::io::unix::AsyncFd;

/// A running shell and the master side of its terminal.
pub struct Pty {
    fd: AsyncFd<File>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

/// Starts `shell` on a new 80x24 PTY; returns the (blocking) master and the shell.
pub fn open(shell: &str) -> Result<(Box<dyn MasterPty + Send>, Box<dyn Child + Send + Sync>)> {
    let pair = native_pty_system().openpty(PtySize {
        rows: 24,
        cols: 80,
        pixel_width: 0,
        pixel_height: 0,
    })?;
    let child = pair.slave.spawn_command(CommandBuilder::new(shell))?;
    Ok((pair.master, child))
}

impl Pty {
    /// Starts `shell` on a new PTY driven by tokio (call inside a tokio runtime).
    pub fn spawn(shell: &str) -> Result<Pty> {
        let (master, child) = open(shell)?;
        let file = File::from(nonblocking_dup(master.as_ref())?);
        // SAFETY: the `File` owns the descriptor for as long as the `AsyncFd` holds it.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
        Ok(Pty {
            fd,
            child,
            _master: master,
        })
    }

    /// Writes all of `data` to the terminal.
    pub async fn write_all(&self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|f| f.get_ref().write(data)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Reads what the terminal has (waiting for something); 0 once the shell is gone.
    pub async fn read(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|f| f.get_ref().read(buf)) {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                // EIO once the slave side is closed: the shell is gone.
                Ok(Err(_)) => return Ok(0),
                Err(_would_block) => {}
            }
        }
    }

    /// Kills the shell and reaps it.
    pub async fn end(mut self) -> Result<()> {
        let _ = self.child.kill();
        let mut child = self.child;
        tokio::task::spawn_blocking(move || child.wait()).await??;
        Ok(())
    }
}

/// A non-blocking duplicate of the PTY master's descriptor.
fn nonblocking_dup(master: &dyn MasterPty) -> Result<OwnedFd> {
    let raw = master.as_raw_fd().context("PTY master has no descriptor")?;
    // SAFETY: `raw` belongs to `master`, alive for this call; it is duplicated at once.
    let fd = unsafe { BorrowedFd::borrow_raw(raw) }.try_clone_to_owned()?;
    // SAFETY: plain fcntl calls on a descriptor this function owns.
    let ok = unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if !ok {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(fd)
}
