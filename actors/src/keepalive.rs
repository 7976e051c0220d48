//! The heartbeat of one attached socket: a ping every `ws.ping_interval`, and silence (nothing
//! heard for `ws.heartbeat_timeout`) reported, on the thread's alarm grid.
//!
//! It runs on the socket's own task, next to the reads and writes it is about: an idle
//! connection's ping and pong never wake its connection actor (two actor polls per ping were
//! most of the user-space cost of an idle connection). Deadlines land on a shared grid (see
//! [`on_grid`]) so the pings of a thread's idle connections ring together.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;

use crate::alarm::{self, Alarm, Rings};

/// What the heartbeat asks of its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Send a ping now.
    Ping,
    /// Nothing was heard for the heartbeat timeout: the connection closes with 4001.
    Silent,
}

/// One socket's heartbeat (made and polled on one worker thread).
pub struct Keepalive {
    alarm: Alarm,
    rings: Rings,
    ping_interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    last_heard: Instant,
    silent: bool,
}

impl Keepalive {
    /// A heartbeat whose first ping is due `ping_interval` from now. Must be made inside the
    /// worker's `LocalSet` (its alarm belongs to the thread).
    pub fn new(ping_interval: Duration, timeout: Duration) -> Self {
        let (alarm, rings) = alarm::alarm();
        let now = Instant::now();
        let k = Keepalive {
            alarm,
            rings,
            ping_interval,
            timeout,
            next_ping: now + ping_interval,
            last_heard: now,
            silent: false,
        };
        k.arm();
        k
    }

    /// A frame (any frame, a pong included) arrived from the peer.
    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// The next beat due; `Pending` registers for the nearest deadline. Silence is told once.
    pub fn poll_beat(&mut self, cx: &mut Context<'_>) -> Poll<Beat> {
        loop {
            if self.silent || Pin::new(&mut self.rings).poll_next(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if now.saturating_duration_since(self.last_heard) >= self.timeout {
                self.silent = true;
                return Poll::Ready(Beat::Silent);
            }
            let ping = now >= self.next_ping;
            if ping {
                self.next_ping = now + self.ping_interval;
            }
            self.arm();
            if ping {
                return Poll::Ready(Beat::Ping);
            }
            // Rang for a silence deadline that a later frame moved: wait for the next one.
        }
    }

    fn arm(&self) {
        let silence = self.last_heard + self.timeout;
        self.alarm
            .set(on_grid(self.next_ping.min(silence), self.ping_interval));
    }
}

/// Connection timers fire on a shared grid, a little late rather than early: the pings of
/// thousands of idle connections then wake a worker once per grid point, together, instead of
/// once each (wake-ups and context switches were most of the idle CPU). The step is a
/// fifteenth of `ws.ping_interval` (1 s at the default 15 s), within these bounds.
pub const TIMER_GRID_MIN: Duration = Duration::from_millis(10);
/// The coarsest step: no deadline is more than this late.
pub const TIMER_GRID_MAX: Duration = Duration::from_secs(1);

/// The grid step for connections pinging every `ping_interval`.
pub fn grid_step(ping_interval: Duration) -> Duration {
    (ping_interval / 15).clamp(TIMER_GRID_MIN, TIMER_GRID_MAX)
}

/// The first grid point at or after `t`, for connections pinging every `ping_interval`.
pub fn on_grid(t: Instant, ping_interval: Duration) -> Instant {
    crate::grid::on_grid(t, grid_step(ping_interval))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::poll_fn;

    async fn beat(k: &mut Keepalive) -> Beat {
        tokio::time::timeout(Duration::from_secs(10), poll_fn(|cx| k.poll_beat(cx)))
            .await
            .expect("no beat within 10 s")
    }

    #[test]
    fn the_grid_is_a_fifteenth_of_the_ping_interval_within_bounds() {
        let ping = Duration::from_secs(15);
        assert_eq!(grid_step(ping), Duration::from_secs(1));
        let t = Instant::now() + Duration::from_millis(1234);
        assert_eq!(on_grid(t, ping), crate::grid::on_grid(t, grid_step(ping)));
        // Short intervals (tests, tight deployments) get a finer grid, never below the floor.
        assert_eq!(
            grid_step(Duration::from_millis(300)),
            Duration::from_millis(20)
        );
        assert_eq!(grid_step(Duration::from_millis(1)), TIMER_GRID_MIN);
        assert_eq!(grid_step(Duration::from_secs(3600)), TIMER_GRID_MAX);
    }

    #[actix::test]
    async fn pings_every_interval_while_heard_and_never_early() {
        let interval = Duration::from_millis(150);
        let start = Instant::now();
        let mut k = Keepalive::new(interval, Duration::from_secs(5));
        for n in 1..=3u32 {
            assert_eq!(beat(&mut k).await, Beat::Ping);
            assert!(start.elapsed() >= interval * n, "ping {n} came early");
            k.heard();
        }
    }

    #[actix::test]
    async fn silence_is_told_once_and_a_frame_puts_it_off() {
        let timeout = Duration::from_millis(400);
        let start = Instant::now();
        let mut k = Keepalive::new(Duration::from_millis(150), timeout);
        // Heard at every ping for a while: no silence, though the timeout passes meanwhile.
        while start.elapsed() < timeout * 2 {
            assert_eq!(beat(&mut k).await, Beat::Ping);
            k.heard();
        }
        let heard = Instant::now();
        while beat(&mut k).await == Beat::Ping {}
        assert!(heard.elapsed() >= timeout, "silence told early");
        let again =
            tokio::time::timeout(Duration::from_millis(500), poll_fn(|cx| k.poll_beat(cx))).await;
        assert!(again.is_err(), "silence told twice: {again:?}");
    }
}
