//! Server side of the Kubernetes remote-command channel protocols (`v4.channel.k8s.io`,
//! `v5.channel.k8s.io`): a channel byte per binary frame, a JSON `Status` on channel 3, `[255, ch]` close in v5.

use std::{process::Stdio, sync::Arc};

use actix_http::ws::Message;
use actix_web::HttpRequest;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    process::{Child, ChildStdin, Command},
    sync::{broadcast, mpsc, watch},
};

use crate::{
    cli::MaxProtocol,
    pods::{Pod, PodState, PtyProcess, Sink, TtyEvent, TtyInput},
    ws::{Inbound, InboundStream, Outbound},
};

/// Channel of the process's stdin (client to server).
pub const STDIN: u8 = 0;
/// Channel of stdout (server to client).
pub const STDOUT: u8 = 1;
/// Channel of stderr (server to client).
pub const STDERR: u8 = 2;
/// Channel of the final `Status` (server to client).
pub const ERROR: u8 = 3;
/// Channel of terminal resizes, JSON `{"Width":c,"Height":r}` (client to server).
pub const RESIZE: u8 = 4;
/// v5 only: `[255, channel]` says the sender closed that channel.
pub const CLOSE: u8 = 255;

/// Output frames queued per exec stream before its PTY reader waits.
const EXEC_OUTPUT_CAPACITY: usize = 64;

/// A negotiated channel subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `v4.channel.k8s.io`: JSON `Status` on the error channel.
    V4,
    /// `v5.channel.k8s.io`: v4 plus the close signal.
    V5,
}

impl Protocol {
    /// The subprotocol token.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }
}

/// Picks the first subprotocol the client offers that the server allows (the API server's rule).
pub fn negotiate(req: &HttpRequest, max: MaxProtocol) -> Option<Protocol> {
    req.headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|offered| match offered {
            "v5.channel.k8s.io" if max == MaxProtocol::V5 => Some(Protocol::V5),
            "v4.channel.k8s.io" => Some(Protocol::V4),
            _ => None,
        })
}

/// Which streams the client asked for.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    /// Client sends stdin.
    pub stdin: bool,
    /// Client wants stdout.
    pub stdout: bool,
    /// Client wants stderr (always off with a TTY, as in the kubelet).
    pub stderr: bool,
    /// Allocate (exec) or use (attach) a TTY.
    pub tty: bool,
}

/// `Status` JSON for a process that exited with `code` (kubelet `ServeExec` wording).
pub fn exit_status(code: i32, argv: &[String]) -> serde_json::Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command {argv:?}, exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// `Status` JSON for a failure that is not an exit code (e.g. the command does not exist).
pub fn internal_error(message: &str) -> serde_json::Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TerminalSize {
    width: u16,
    height: u16,
}

/// A client frame, classified.
enum Client {
    Stdin(Bytes),
    Resize {
        cols: u16,
        rows: u16,
    },
    CloseStdin,
    Ping(Bytes),
    /// The client sent a close frame.
    Close,
    /// The connection is gone.
    Gone,
    Ignore,
}

fn classify(msg: Option<Inbound>, proto: Protocol) -> Client {
    let data = match msg {
        None => return Client::Gone,
        Some(Inbound::Close) => return Client::Close,
        Some(Inbound::Ping(p)) => return Client::Ping(p),
        // The channel protocols are binary-only; the kubelet ignores anything else.
        Some(Inbound::Text) => return Client::Ignore,
        Some(Inbound::Binary(data)) => data,
    };
    match (data.first().copied(), data.get(1).copied()) {
        (Some(STDIN), Some(_)) => Client::Stdin(data.slice(1..)),
        (Some(RESIZE), Some(_)) => match serde_json::from_slice::<TerminalSize>(&data[1..]) {
            Ok(size) => Client::Resize {
                cols: size.width,
                rows: size.height,
            },
            Err(err) => {
                tracing::debug!(%err, "ignoring an unparsable resize");
                Client::Ignore
            }
        },
        (Some(CLOSE), Some(STDIN)) if proto == Protocol::V5 => Client::CloseStdin,
        _ => Client::Ignore,
    }
}

/// Announces the streams: one empty frame on the lowest writable channel (kubelet behaviour).
async fn announce(out: &Outbound, streams: Streams) -> bool {
    let channel = if streams.stdout {
        STDOUT
    } else if streams.stderr {
        STDERR
    } else {
        ERROR
    };
    out.channel(channel, &[]).await
}

/// Writes the final status and closes the connection.
async fn finish(out: &Outbound, status: serde_json::Value) {
    let body = serde_json::to_vec(&status).unwrap_or_default();
    if out.channel(ERROR, &body).await {
        out.close().await;
    }
}

/// Receivers taken before the upgrade, so nothing that happens after the HTTP checks is missed.
pub struct Subscription {
    output: broadcast::Receiver<TtyEvent>,
    state: watch::Receiver<PodState>,
}

impl Subscription {
    /// Subscribes to `pod`'s shared TTY output and lifecycle.
    pub fn new(pod: &Pod) -> Self {
        let (output, state) = pod.subscribe();
        Self { output, state }
    }
}

/// Serves an `attach` stream: the pod's one TTY, shared with every other attach stream.
pub async fn attach(
    pod: Arc<Pod>,
    sub: Subscription,
    streams: Streams,
    proto: Protocol,
    out: Outbound,
    mut inb: InboundStream,
) {
    let Subscription {
        mut output,
        mut state,
    } = sub;
    if !announce(&out, streams).await {
        return;
    }
    // The pod may have exited or gone between the HTTP checks and now.
    match *state.borrow_and_update() {
        PodState::Exited(code) => {
            finish(&out, exit_status(code, pod.command())).await;
            return;
        }
        PodState::Deleted => {
            out.close().await;
            return;
        }
        PodState::Running => {}
    }
    loop {
        tokio::select! {
            msg = inb.next() => match classify(msg, proto) {
                Client::Stdin(data) => {
                    if streams.stdin && !pod.write(TtyInput::Data(data)).await {
                        return;
                    }
                }
                Client::Resize { cols, rows } => {
                    if streams.tty {
                        pod.write(TtyInput::Resize { cols, rows }).await;
                    }
                }
                Client::CloseStdin => {
                    // containerd ends an attach session whose stdin closed; the container keeps
                    // running and the kubelet reports Success for the session.
                    finish(&out, exit_status(0, &[])).await;
                    return;
                }
                Client::Ping(p) => {
                    out.send(Message::Pong(p)).await;
                }
                Client::Close => {
                    out.close().await;
                    return;
                }
                Client::Gone => return,
                Client::Ignore => {}
            },
            ev = output.recv() => match ev {
                Ok(TtyEvent::Output(data)) => {
                    if streams.stdout && !out.channel(STDOUT, &data).await {
                        return;
                    }
                }
                Ok(TtyEvent::Exited(code)) => {
                    if *state.borrow() == PodState::Deleted {
                        out.close().await;
                    } else {
                        finish(&out, exit_status(code, pod.command())).await;
                    }
                    return;
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(pod = %pod.spec.name, lost = n, "attach stream too slow, output lost");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = state.changed() => {
                if changed.is_err() || *state.borrow_and_update() == PodState::Deleted {
                    out.close().await;
                    return;
                }
            }
        }
    }
}

/// Serves an `exec` stream: `argv` as a new process, on its own PTY when `tty` is set.
pub async fn exec(
    state: watch::Receiver<PodState>,
    argv: Vec<String>,
    streams: Streams,
    proto: Protocol,
    out: Outbound,
    inb: InboundStream,
) {
    if !announce(&out, streams).await {
        return;
    }
    if *state.borrow() == PodState::Deleted {
        out.close().await;
        return;
    }
    if !program_exists(&argv[0]) {
        let message = format!(
            "error executing command in container: exec: {:?}: executable file not found in $PATH",
            argv[0]
        );
        finish(&out, internal_error(&message)).await;
        return;
    }
    if streams.tty {
        exec_tty(state, argv, streams, proto, out, inb).await;
    } else {
        exec_pipes(state, argv, streams, proto, out, inb).await;
    }
}

async fn exec_tty(
    mut state: watch::Receiver<PodState>,
    argv: Vec<String>,
    streams: Streams,
    proto: Protocol,
    out: Outbound,
    mut inb: InboundStream,
) {
    let (tx, mut output) = mpsc::channel(EXEC_OUTPUT_CAPACITY);
    let process = match PtyProcess::spawn(&argv, Sink::Channel(tx), |code, sink| {
        if let Sink::Channel(tx) = sink {
            let _ = tx.blocking_send(TtyEvent::Exited(code));
        }
    }) {
        Ok(p) => p,
        Err(err) => {
            finish(&out, internal_error(&spawn_error(&argv, &err))).await;
            return;
        }
    };
    let mut stdin_open = streams.stdin;
    loop {
        tokio::select! {
            msg = inb.next() => match classify(msg, proto) {
                Client::Stdin(data) => {
                    if stdin_open {
                        process.write(TtyInput::Data(data)).await;
                    }
                }
                Client::Resize { cols, rows } => {
                    process.write(TtyInput::Resize { cols, rows }).await;
                }
                // With a TTY the runtime stops copying stdin; the process keeps its terminal.
                Client::CloseStdin => stdin_open = false,
                Client::Ping(p) => {
                    out.send(Message::Pong(p)).await;
                }
                Client::Close => {
                    out.close().await;
                    break;
                }
                Client::Gone => break,
                Client::Ignore => {}
            },
            ev = output.recv() => match ev {
                Some(TtyEvent::Output(data)) => {
                    if streams.stdout && !out.channel(STDOUT, &data).await {
                        break;
                    }
                }
                Some(TtyEvent::Exited(code)) => {
                    finish(&out, exit_status(code, &argv)).await;
                    break;
                }
                None => break,
            },
            changed = state.changed() => {
                if changed.is_err() || *state.borrow_and_update() == PodState::Deleted {
                    out.close().await;
                    break;
                }
            }
        }
    }
    // Dropping the process kills it if it still runs (the stream that owned it is gone).
    drop(process);
}

async fn exec_pipes(
    mut state: watch::Receiver<PodState>,
    argv: Vec<String>,
    streams: Streams,
    proto: Protocol,
    out: Outbound,
    mut inb: InboundStream,
) {
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut child: Child = match Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(pipe(streams.stdin))
        .stdout(pipe(streams.stdout))
        .stderr(pipe(streams.stderr))
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(err) => {
            finish(&out, internal_error(&spawn_error(&argv, &err))).await;
            return;
        }
    };
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut buf_out = vec![0u8; 16 * 1024];
    let mut buf_err = vec![0u8; 16 * 1024];
    loop {
        if stdout.is_none() && stderr.is_none() {
            let code = match child.wait().await {
                Ok(status) => status.code().unwrap_or(128 + signal_of(&status)),
                Err(_) => 1,
            };
            finish(&out, exit_status(code, &argv)).await;
            return;
        }
        tokio::select! {
            msg = inb.next() => match classify(msg, proto) {
                Client::Stdin(data) => {
                    if let Some(pipe) = stdin.as_mut() {
                        if pipe.write_all(&data).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Client::CloseStdin => stdin = None,
                Client::Ping(p) => {
                    out.send(Message::Pong(p)).await;
                }
                Client::Close => {
                    out.close().await;
                    return;
                }
                Client::Gone => return,
                Client::Resize { .. } | Client::Ignore => {}
            },
            n = read_some(&mut stdout, &mut buf_out) => {
                if n == 0 {
                    stdout = None;
                } else if !out.channel(STDOUT, &buf_out[..n]).await {
                    return;
                }
            },
            n = read_some(&mut stderr, &mut buf_err) => {
                if n == 0 {
                    stderr = None;
                } else if !out.channel(STDERR, &buf_err[..n]).await {
                    return;
                }
            },
            changed = state.changed() => {
                if changed.is_err() || *state.borrow_and_update() == PodState::Deleted {
                    out.close().await;
                    return;
                }
            }
        }
    }
}

/// Reads from an optional pipe; pends forever when it is already closed. 0 means EOF.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> usize {
    match pipe.as_mut() {
        Some(r) => r.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

fn signal_of(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().unwrap_or(0)
}

fn spawn_error(argv: &[String], err: &std::io::Error) -> String {
    format!("error executing command in container: {:?}: {err}", argv[0])
}

/// `exec.LookPath`: a path must exist, a bare name must be found on `$PATH`.
fn program_exists(program: &str) -> bool {
    use std::path::Path;
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
