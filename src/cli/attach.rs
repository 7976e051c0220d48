//! `attachd attach`: the first connection (refusals print plainly, before raw mode), raw
//! mode, then connections resumed with `resume_from` under a capped backoff until the end.

use std::sync::Arc;
use std::time::Duration;

use attachd_actors::protocol::{close, Role};
use backon::BackoffBuilder;

use crate::cli::api::{parse_server, ApiClient, Failure};
use crate::cli::args::AttachArgs;
use crate::cli::client::{Client, End};
use crate::cli::local::Local;
use crate::cli::socket::{self, Socket};
use crate::cli::terminal::{self, notice, RawGuard};
use crate::cli::token::ApiToken;
use crate::cli::{explain, tls, EXIT_LOST};

/// Exit status for a command line or local setup that cannot work.
const EXIT_USAGE: u8 = 2;

/// Reconnect delays: 200 ms doubling to 5 s (plus jitter), at most 10 attempts or 30 s.
fn reconnect_delays() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(10)
        .with_total_delay(Some(Duration::from_secs(30)))
        .with_jitter()
        .build()
}

/// Runs the client; the exit status (the remote process's, or see `AttachArgs`).
pub async fn run(args: AttachArgs) -> u8 {
    let (api, tls) = match setup(&args) {
        Ok(v) => v,
        Err(msg) => {
            notice(&msg);
            return EXIT_USAGE;
        }
    };
    let role = if args.observe {
        Role::Observer
    } else {
        Role::Driver
    };
    let sid = args.session_id.as_str();
    let target = Target {
        api: &api,
        tls: &tls,
        sid,
        role,
    };
    let first = match target.connect(None).await {
        Ok(ws) => ws,
        Err(f) => {
            notice(&explain::failure(&f));
            return EXIT_LOST;
        }
    };
    let raw = if terminal::stdin_is_tty() {
        match RawGuard::enter() {
            Ok(g) => Some(g),
            Err(e) => {
                notice(&format!("cannot put the terminal in raw mode: {e}"));
                return EXIT_USAGE;
            }
        }
    } else {
        None
    };
    let local = match Local::start() {
        Ok(l) => l,
        Err(e) => {
            drop(raw);
            notice(&format!("cannot listen for signals: {e}"));
            return EXIT_USAGE;
        }
    };
    let mut client = Client::new(role, local);
    let end = target.follow(&mut client, first).await;
    drop(raw);
    let (code, line) = conclude(end);
    if let Some(line) = line {
        notice(&line);
    }
    code
}

fn setup(args: &AttachArgs) -> Result<(ApiClient, Arc<rustls::ClientConfig>), String> {
    let base = parse_server(&args.server.server)?;
    let token = ApiToken::load(args.server.token_file.as_deref())?;
    let tls = tls::client_config(args.server.cacert.as_deref())?;
    let api = ApiClient::new(&base, token, tls.clone()).map_err(|f| explain::failure(&f))?;
    Ok((api, tls))
}

/// The session attached to, and how.
struct Target<'a> {
    api: &'a ApiClient,
    tls: &'a Arc<rustls::ClientConfig>,
    sid: &'a str,
    role: Role,
}

impl Target<'_> {
    /// A fresh ticket, then the socket.
    async fn connect(&self, resume_from: Option<u64>) -> Result<Socket, Failure> {
        let ticket = self.api.ticket(self.sid, self.role, resume_from).await?;
        let secret = ticket
            .ticket
            .ok_or_else(|| Failure::Local("the ticket answer carries no ticket".into()))?;
        socket::connect(&self.api.attach_url(self.sid)?, &secret, self.tls).await
    }

    /// Serves connections until one ends for good.
    async fn follow(&self, client: &mut Client, first: Socket) -> End {
        let mut ws = first;
        let mut reconnected = false;
        loop {
            let code = match client.serve(ws, reconnected).await {
                End::Closed(code) => code,
                end => return end,
            };
            let info = explain::close(code);
            if !info.reconnect {
                return End::Closed(code);
            }
            notice(&format!("{}; reconnecting", info.message));
            ws = match self.reconnect(client).await {
                Ok(ws) => ws,
                Err(end) => return end,
            };
            reconnected = true;
        }
    }

    async fn reconnect(&self, client: &mut Client) -> Result<Socket, End> {
        let mut delays = reconnect_delays();
        let mut wait_at_least = Duration::ZERO;
        let mut last = None;
        loop {
            let Some(delay) = delays.next() else {
                let why = last.map_or_else(String::new, |f| format!(": {}", explain::failure(&f)));
                return Err(End::Lost(format!("gave up reconnecting{why}")));
            };
            if let Some(end) = client.pause(delay.max(wait_at_least)).await {
                return Err(end);
            }
            match self.connect(client.rendered()).await {
                Ok(ws) => return Ok(ws),
                Err(f) if explain::retriable(&f) => {
                    wait_at_least = match &f {
                        Failure::Refused {
                            retry_after: Some(d),
                            ..
                        } => {
                            notice(&explain::failure(&f));
                            *d
                        }
                        _ => Duration::ZERO,
                    };
                    last = Some(f);
                }
                Err(f) => return Err(End::Lost(explain::failure(&f))),
            }
        }
    }
}

/// The exit status and the last line for how the client ended.
pub fn conclude(end: End) -> (u8, Option<String>) {
    match end {
        End::Exit(code) => (u8::try_from(code).unwrap_or(EXIT_LOST), None),
        End::Detached => (0, Some("detached; the session keeps running".into())),
        End::Signal(n) => (
            u8::try_from(128 + n).unwrap_or(EXIT_LOST),
            Some(format!("ended by signal {n}")),
        ),
        End::Closed(close::NORMAL) => (0, None),
        End::Closed(code) => (EXIT_LOST, Some(explain::close(code).message)),
        End::Lost(why) => (EXIT_LOST, Some(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        assert_eq!(conclude(End::Exit(7)), (7, None));
        assert_eq!(conclude(End::Exit(300)).0, EXIT_LOST);
        assert_eq!(conclude(End::Exit(-1)).0, EXIT_LOST);
        assert_eq!(conclude(End::Detached).0, 0);
        assert_eq!(conclude(End::Signal(15)).0, 143);
        assert_eq!(conclude(End::Closed(close::NORMAL)), (0, None));
        let (code, line) = conclude(End::Closed(close::REVOKED));
        assert_eq!(code, EXIT_LOST);
        assert!(line.unwrap().contains("revoked"));
        assert_eq!(
            conclude(End::Lost("gone".into())),
            (EXIT_LOST, Some("gone".into()))
        );
    }

    #[test]
    fn reconnecting_is_capped() {
        let delays: Vec<Duration> = reconnect_delays().collect();
        assert!(!delays.is_empty() && delays.len() <= 10, "{delays:?}");
        assert!(delays.iter().sum::<Duration>() <= Duration::from_secs(30));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
    }
}
