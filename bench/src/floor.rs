//! `floor-server`: the least a WebSocket terminal gateway can do, as a latency floor for this
//! machine. One thread, one poll loop, a shell per connection, no auth, sharing or limits.
//!
//! It has ttyd's shape (libwebsockets: one thread, each connection its own PTY), so its echo on
//! the same machine and client is what the quoted ttyd figures stand for here. It speaks
//! attachd's frames: a text `{"type":"hello"}` once attached, then binary stdin and output.
//! Never a product: it exists so `make bench` can show how far attachd is from the floor.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::FloorArgs;

/// Runs the server on the calling thread until it is killed.
pub fn serve(args: &FloorArgs) -> Result<()> {
    let addr: std::net::SocketAddr = args.listen.parse().context("--listen")?;
    if !addr.ip().is_loopback() {
        bail!("refusing to listen on {addr}: the floor server stays on 127.0.0.0/8");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        // The bench script waits for this line.
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let shell = args.shell.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, &shell).await {
                    eprintln!("floor-server: {e:#}");
                }
            });
        }
    })
}

async fn connection(stream: TcpStream, shell: &str) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    let pair = native_pty_system().openpty(PtySize {
        rows: 24,
        cols: 80,
        pixel_width: 0,
        pixel_height: 0,
    })?;
    let mut child = pair.slave.spawn_command(CommandBuilder::new(shell))?;
    drop(pair.slave);
    let file = File::from(nonblocking_dup(pair.master.as_ref())?);
    // SAFETY: the `File` owns the descriptor for as long as the `AsyncFd` holds it.
    let pty = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
    ws.send(Message::text(r#"{"type":"hello"}"#)).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => write_all(&pty, &b).await?,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            ready = pty.readable() => {
                let mut ready = ready?;
                match ready.try_io(|f| f.get_ref().read(&mut buf)) {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => ws.send(Message::binary(buf[..n].to_vec())).await?,
                    Err(_would_block) => {}
                }
            }
        }
    }
    let _ = child.kill();
    tokio::task::spawn_blocking(move || child.wait()).await??;
    Ok(())
}

async fn write_all(pty: &AsyncFd<File>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        let mut ready = pty.writable().await?;
        match ready.try_io(|f| f.get_ref().write(data)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_would_block) => {}
        }
    }
    Ok(())
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
