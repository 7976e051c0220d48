//! One attached client across its connections: the loop of one connection (frames to the
//! terminal, keystrokes, escapes and resizes to the server, acks), and the waits between them.

use std::time::{Duration, Instant};

use attachd_actors::protocol::{
    ClientMessage, ControlAction, ErrorCode, ModerationState, Role, ServerFrame, SnapshotReason,
    TermSize,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::asking::{who, Asking, Step};
use crate::cli::escape::{Escape, HELP};
use crate::cli::local::{Local, LocalEvent};
use crate::cli::offset::{AckThrottle, OutputOffset};
use crate::cli::socket::Socket;
use crate::cli::terminal::{self, notice};
use crate::cli::throttle::ResizeThrottle;

/// How a connection (or the wait for the next one) ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The remote process exited with this status.
    Exit(i32),
    /// `~.`.
    Detached,
    /// A signal that ends the client.
    Signal(i32),
    /// The socket closed (1006: dropped) without an `exit` frame.
    Closed(u16),
    /// Nothing more can be done; the line says why.
    Lost(String),
}

/// Silence beyond which a connection is taken for dead, before `hello` names the ping interval.
const DEFAULT_SILENCE: Duration = Duration::from_secs(35);

/// State of one connection.
struct Conn {
    id: String,
    you: bool,
    exit: Option<i32>,
    silence: Duration,
    last_rx: Instant,
    /// Told the person that their input is not sent (once per loss of control).
    told_no_control: bool,
    told_rate: bool,
    /// Our own `acquire` is in flight: its `control_denied` is expected.
    acquiring: bool,
    /// The moderated session's state, as last told.
    moderation: Option<ModerationState>,
    /// Who holds control, as a person is told (`None`: nobody, or not yet known).
    holder: Option<String>,
    /// Requests for control: ours, and those addressed to us as the holder.
    asking: Asking,
}

/// The attached client: what survives from one connection to the next.
pub struct Client {
    role: Role,
    local: Local,
    offset: OutputOffset,
    acks: AckThrottle,
    resize: ResizeThrottle,
    out: tokio::io::Stdout,
    told_observer: bool,
}

enum Event {
    Ws(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Local(LocalEvent),
    AckDue,
    ResizeDue,
    Silent,
}

impl Client {
    /// A client in `role`, reading `local`.
    pub fn new(role: Role, local: Local) -> Client {
        Client {
            role,
            local,
            offset: OutputOffset::default(),
            acks: AckThrottle::default(),
            resize: ResizeThrottle::default(),
            out: tokio::io::stdout(),
            told_observer: false,
        }
    }

    /// The output offset rendered so far, for `resume_from`.
    pub fn rendered(&self) -> Option<u64> {
        self.offset.value()
    }

    /// Serves one connection until it ends. `reconnected`: say so when `hello` arrives.
    pub async fn serve(&mut self, ws: Socket, reconnected: bool) -> End {
        let (mut tx, mut rx) = ws.split();
        let mut c = Conn {
            id: String::new(),
            you: false,
            exit: None,
            silence: DEFAULT_SILENCE,
            last_rx: Instant::now(),
            told_no_control: false,
            told_rate: false,
            acquiring: false,
            moderation: None,
            holder: None,
            asking: Asking::default(),
        };
        self.local.set_answering(false);
        self.resize.reset();
        let end = loop {
            let ack_due = self.acks.due();
            let resize_due = self.resize.due();
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            let at = |t: Option<Instant>| t.map_or(far, tokio::time::Instant::from_std);
            let ev = tokio::select! {
                m = rx.next() => Event::Ws(m),
                // Keystrokes wait for `hello` (typed-ahead or piped input needs to know control).
                l = self.local.next(), if !c.id.is_empty() => Event::Local(l),
                _ = sleep_until(at(ack_due)), if ack_due.is_some() => Event::AckDue,
                _ = sleep_until(at(resize_due)), if resize_due.is_some() => Event::ResizeDue,
                _ = sleep_until(at(Some(c.last_rx + c.silence))) => Event::Silent,
            };
            let now = Instant::now();
            let sent = match self.handle(ev, &mut c, reconnected, now).await {
                Ok(msgs) => msgs,
                Err(end) => break end,
            };
            let mut delivered = true;
            for m in sent {
                if tx.send(m).await.is_err() {
                    delivered = false;
                    break;
                }
            }
            if !delivered {
                break End::Closed(1006);
            }
        };
        let _ = tx.close().await;
        self.offset.interrupted();
        match (end, c.exit) {
            (End::Closed(_), Some(code)) => End::Exit(code),
            (end, _) => end,
        }
    }

    async fn handle(
        &mut self,
        ev: Event,
        c: &mut Conn,
        reconnected: bool,
        now: Instant,
    ) -> Result<Vec<Message>, End> {
        match ev {
            Event::Ws(Some(Ok(m))) => {
                c.last_rx = now;
                match m {
                    Message::Binary(b) => self.output(&b, now).await,
                    Message::Text(t) => match ServerFrame::parse(&t) {
                        Some(f) => self.frame(f, c, reconnected, now).await,
                        None => Ok(vec![]),
                    },
                    Message::Close(f) => Err(End::Closed(f.map_or(1005, |f| f.code.into()))),
                    _ => Ok(vec![]),
                }
            }
            Event::Ws(_) => Err(End::Closed(1006)),
            Event::Local(l) => self.local_event(l, c, now),
            Event::AckDue => Ok(self.acks.fire(now).map(ack).into_iter().collect()),
            Event::ResizeDue => Ok(self.resize.fire(now).map(resize).into_iter().collect()),
            Event::Silent => Err(End::Closed(1006)),
        }
    }

    async fn output(&mut self, bytes: &[u8], now: Instant) -> Result<Vec<Message>, End> {
        // A snapshot's payload is acknowledged too: it renders the screen at its offset.
        self.offset.binary(bytes.len());
        self.write(bytes).await?;
        let due = self.offset.value().and_then(|o| self.acks.rendered(o, now));
        Ok(due.map(ack).into_iter().collect())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        let written = async {
            self.out.write_all(bytes).await?;
            self.out.flush().await
        };
        written
            .await
            .map_err(|e| End::Lost(format!("cannot write to the terminal: {e}")))?;
        terminal::wrote(bytes);
        Ok(())
    }

    async fn frame(
        &mut self,
        f: ServerFrame,
        c: &mut Conn,
        reconnected: bool,
        now: Instant,
    ) -> Result<Vec<Message>, End> {
        let mut send = vec![];
        match f {
            ServerFrame::Hello {
                connection_id,
                control,
                limits,
                output_offset,
                size,
                resumed,
                ..
            } => {
                c.id = connection_id;
                c.you = control.you;
                c.holder = control
                    .subject
                    .as_deref()
                    .map(|s| who(control.name.as_deref(), Some(s)));
                c.silence =
                    Duration::from_millis(limits.ping_interval_ms) * 2 + Duration::from_secs(5);
                self.offset.hello(output_offset);
                self.acks.start(output_offset);
                if reconnected {
                    notice(if resumed {
                        "reconnected; output resumes where it stopped"
                    } else {
                        "reconnected"
                    });
                }
                match self.role {
                    Role::Observer => notice(&format!(
                        "observing (input is not sent; ~. detaches): {}",
                        size_note(size)
                    )),
                    Role::Driver if c.you => send.extend(self.push_local_size(now)),
                    Role::Driver => {
                        let who = who(control.name.as_deref(), control.subject.as_deref());
                        notice(&format!(
                            "{who} holds control: your input is not sent until it is released \
                             (~r asks for it)"
                        ));
                        c.told_no_control = true;
                    }
                }
            }
            ServerFrame::Snapshot {
                offset,
                reason,
                skipped_bytes,
                ..
            } => {
                self.offset.snapshot(offset);
                self.write(terminal::RESET).await?;
                match reason {
                    SnapshotReason::Join => {}
                    SnapshotReason::Resync => notice(&format!(
                        "output was faster than this terminal: skipped {skipped_bytes} bytes to catch up"
                    )),
                    SnapshotReason::ResumeGap => notice(&format!(
                        "{skipped_bytes} bytes of output were no longer held: the screen was redrawn"
                    )),
                }
            }
            ServerFrame::Size { cols, rows } => {
                if self.role == Role::Observer {
                    notice(&format!(
                        "the session was resized: {}",
                        size_note(TermSize { cols, rows })
                    ));
                }
            }
            ServerFrame::Control { holder, reason } => {
                let you = holder.as_ref().is_some_and(|h| h.connection_id == c.id);
                let named = holder
                    .as_ref()
                    .map(|h| who(h.name.as_deref(), Some(&h.subject)));
                if you && !c.you {
                    self.resize.reset();
                    send.extend(self.push_local_size(now));
                    if c.told_no_control {
                        notice("you hold control: your input is sent");
                    }
                    c.told_no_control = false;
                } else if !you && self.role == Role::Driver {
                    let other = named.clone();
                    if c.you {
                        let now_held =
                            other.map_or_else(String::new, |o| format!("; {o} holds it"));
                        notice(&format!(
                            "you no longer hold control ({}{now_held}): your input is not sent",
                            reason.as_str()
                        ));
                        c.told_no_control = true;
                    } else if let Some(o) = other {
                        notice(&format!("{o} holds control: your input is not sent"));
                        c.told_no_control = true;
                    }
                }
                c.you = you;
                c.acquiring = false;
                c.holder = named;
                c.asking.control_changed();
                self.local.set_answering(false);
                if holder.is_none() && self.role == Role::Driver {
                    c.acquiring = true;
                    send.push(control(ControlAction::Acquire));
                }
            }
            ServerFrame::Error { code, message } => match code {
                ErrorCode::ControlDenied if c.acquiring => c.acquiring = false,
                ErrorCode::RateLimited if c.told_rate => {}
                ErrorCode::RateLimited => {
                    c.told_rate = true;
                    notice("input is faster than the server accepts: it is delayed");
                }
                _ => notice(&format!("the server refused a message: {message}")),
            },
            ServerFrame::Moderation { state, .. } if c.moderation != Some(state) => {
                c.moderation = Some(state);
                notice(match state {
                    ModerationState::Frozen => {
                        "moderated session: waiting for a moderator; typing is held"
                    }
                    ModerationState::Live => "moderated session: a moderator is attached; live",
                });
            }
            ServerFrame::Exit { code } => c.exit = Some(code),
            ServerFrame::Shutdown {} => notice("the server is shutting down"),
            ServerFrame::ControlRequest { from, .. } => {
                let step = c.asking.requested(from, &c.id, c.you, c.holder.as_deref());
                send.extend(self.take(step, c));
            }
            ServerFrame::ControlRequestEnded { from, outcome } => {
                let step = c.asking.ended(&from, outcome, &c.id);
                send.extend(self.take(step, c));
            }
            ServerFrame::Participants { .. }
            | ServerFrame::Moderation { .. }
            | ServerFrame::Idle { .. } => {}
        }
        Ok(send)
    }

    fn local_event(
        &mut self,
        ev: LocalEvent,
        c: &mut Conn,
        now: Instant,
    ) -> Result<Vec<Message>, End> {
        match ev {
            LocalEvent::Keys(keys) if keys.is_empty() => Ok(vec![]),
            LocalEvent::Keys(keys) => match self.role {
                Role::Observer => {
                    if !std::mem::replace(&mut self.told_observer, true) {
                        notice("observing: your input is not sent (~. detaches)");
                    }
                    Ok(vec![])
                }
                Role::Driver if !c.you => {
                    if !std::mem::replace(&mut c.told_no_control, true) {
                        notice("you do not hold control: your input is not sent (~r asks for it)");
                    }
                    Ok(vec![])
                }
                Role::Driver => Ok(vec![Message::binary(keys)]),
            },
            LocalEvent::Escape(Escape::Detach) => Err(End::Detached),
            LocalEvent::Escape(e) => {
                let step = c.asking.escape(e, self.role, c.you);
                Ok(self.take(step, c).into_iter().collect())
            }
            LocalEvent::Resized if self.role == Role::Driver && c.you => {
                Ok(self.push_local_size(now).into_iter().collect())
            }
            LocalEvent::Resized => Ok(vec![]),
            LocalEvent::Signal(n) => Err(End::Signal(n)),
        }
    }

    /// Shows a step's lines, arms `~y`/`~n` while a request waits for us, and gives its message.
    fn take(&mut self, step: Step, c: &Conn) -> Option<Message> {
        for line in &step.notices {
            notice(line);
        }
        self.local.set_answering(c.asking.answering());
        step.send.map(|m| Message::text(m.to_json()))
    }

    fn push_local_size(&mut self, now: Instant) -> Option<Message> {
        terminal::size()
            .and_then(|s| self.resize.push(s, now))
            .map(resize)
    }

    /// Waits `d` between connections; `~.` and signals still end the client, keystrokes are
    /// dropped (there is no session to type into).
    pub async fn pause(&mut self, d: Duration) -> Option<End> {
        let until = tokio::time::Instant::now() + d;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return None,
                ev = self.local.next() => match ev {
                    LocalEvent::Escape(Escape::Detach) => return Some(End::Detached),
                    LocalEvent::Escape(Escape::Help) => notice(HELP),
                    LocalEvent::Signal(n) => return Some(End::Signal(n)),
                    LocalEvent::Keys(_) | LocalEvent::Escape(_) | LocalEvent::Resized => {}
                },
            }
        }
    }
}

fn size_note(s: TermSize) -> String {
    match terminal::size() {
        Some(local) if local != s => format!(
            "the session is {}x{}, this terminal {}x{}",
            s.cols, s.rows, local.cols, local.rows
        ),
        _ => format!("the session is {}x{}", s.cols, s.rows),
    }
}

fn ack(offset: u64) -> Message {
    Message::text(ClientMessage::Ack { offset }.to_json())
}

fn resize(s: TermSize) -> Message {
    Message::text(
        ClientMessage::Resize {
            cols: u32::from(s.cols),
            rows: u32::from(s.rows),
        }
        .to_json(),
    )
}

fn control(action: ControlAction) -> Message {
    Message::text(ClientMessage::Control { action, to: None }.to_json())
}
