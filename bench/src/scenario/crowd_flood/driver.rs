//! The driver: holds the seat, waits for the crowd, types the flood and the final drawing,
//! follows its own screen to the end, then waits for every observer to leave.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::command;
use super::watch::{unix_ms, Watched};
use crate::client::Conn;

/// The driver's side of the run.
#[derive(Default)]
pub struct Driven {
    /// The driver's own connection and screen.
    pub seen: Watched,
    /// Observers the session had when the flood started.
    pub started_with: Option<usize>,
    /// When the command was sent.
    pub flood_start: Option<Instant>,
    /// The same, as Unix milliseconds.
    pub flood_start_unix_ms: Option<u64>,
    /// When the session's last observer (of any process) had left.
    pub all_left: Option<Instant>,
    /// Why the driver stopped early, if it did.
    pub error: Option<String>,
}

/// What the driver waits for and how long.
pub struct Schedule {
    /// The number of observers to wait for, once this process has attached its own.
    pub expect: oneshot::Receiver<usize>,
    /// Longest wait for them.
    pub wait: Duration,
    /// Flood size.
    pub bytes: u64,
    /// The run's deadline.
    pub end_at: Instant,
}

/// Reads frames into `w` until `until(w)` holds (true), the connection ends or `by` passes.
async fn read_until(
    conn: &mut Conn,
    w: &mut Watched,
    by: Instant,
    mut until: impl FnMut(&Watched) -> bool,
) -> bool {
    while !until(w) {
        match tokio::time::timeout_at(by.into(), conn.recv_frame()).await {
            Ok(f) => {
                if !w.apply(f) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Runs the driver on its attached connection.
pub async fn drive(mut conn: Conn, s: Schedule) -> Driven {
    let mut d = Driven::default();
    let mut expect = s.expect;
    let mut expected = None;
    // Keep reading (participant counts) while this process's observers attach.
    while expected.is_none() && Instant::now() < s.end_at {
        let tick = Instant::now() + Duration::from_millis(100);
        read_until(&mut conn, &mut d.seen, tick.min(s.end_at), |_| false).await;
        if d.seen.closed.is_some() {
            break;
        }
        match expect.try_recv() {
            Ok(n) => expected = Some(n),
            Err(oneshot::error::TryRecvError::Empty) => {}
            Err(oneshot::error::TryRecvError::Closed) => break,
        }
    }
    let Some(expected) = expected else {
        d.error = Some("stopped before the observers attached".into());
        return d;
    };
    let wait_end = (Instant::now() + s.wait).min(s.end_at);
    read_until(&mut conn, &mut d.seen, wait_end, |w| {
        w.observers_seen.unwrap_or(0) >= expected
    })
    .await;
    d.started_with = d.seen.observers_seen;
    if d.seen.closed.is_some() {
        d.error = Some(format!("closed before the flood ({:?})", d.seen.closed));
        return d;
    }
    let (min_cols, min_rows) = command::MIN_SIZE;
    if let Some((cols, rows)) = d
        .seen
        .view
        .size()
        .filter(|&(c, r)| c < min_cols || r < min_rows)
    {
        d.error = Some(format!(
            "a {cols}x{rows} terminal is too small for the final drawing"
        ));
        return d;
    }
    d.flood_start = Some(Instant::now());
    d.flood_start_unix_ms = Some(unix_ms());
    if let Err(e) = conn.send_input(command::command(s.bytes).as_bytes()).await {
        d.error = Some(format!("{e:#}"));
        return d;
    }
    if !read_until(&mut conn, &mut d.seen, s.end_at, |w| w.at_end.is_some()).await {
        d.error = Some("the driver's screen never showed the final drawing".into());
        return d;
    }
    if read_until(&mut conn, &mut d.seen, s.end_at, |w| {
        w.observers_seen == Some(0)
    })
    .await
    {
        d.all_left = Some(Instant::now());
    }
    conn.close().await;
    d
}
