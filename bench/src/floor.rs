//! `floor-server`: the least a WebSocket terminal gateway can do, as a latency floor for this
//! machine. One thread, one poll loop, a shell per connection, no auth, sharing or limits.
//!
//! It has ttyd's shape (libwebsockets: one thread, each connection its own PTY), so its echo on
//! the same machine and client is what the quoted ttyd figures stand for here. It speaks
//! attachd's frames: a text `{"type":"hello"}` once attached, then binary stdin and output.
//! Never a product: it exists so `make bench` can show how far attachd is from the floor.

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::FloorArgs;
use crate::pty::Pty;

/// Runs the server on the calling thread until it is killed.
pub fn serve(args: &FloorArgs) -> Result<()> {
    let addr: std::net::SocketAddr = args.listen.parse().context("--listen")?;
    if !addr.ip().is_loopback() {
        bail!("refusing to listen on {addr}: the floor server stays on 127.0.0.0/8");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // One thread: every connection is a local task.
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let listener = TcpListener::bind(addr).await?;
        // The bench script waits for this line.
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let shell = args.shell.clone();
            tokio::task::spawn_local(async move {
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
    let pty = Pty::spawn(shell)?;
    ws.send(Message::text(r#"{"type":"hello"}"#)).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => pty.write_all(&b).await?,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            n = pty.read(&mut buf) => match n? {
                0 => break,
                n => ws.send(Message::binary(buf[..n].to_vec())).await?,
            },
        }
    }
    pty.end().await
}
