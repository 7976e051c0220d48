//! Per-thread alarms on grid points: every alarm of a worker thread set for the same instant
//! rings from one runtime timer, by a walk over a list, instead of one timer-wheel entry each.
//!
//! Thousands of idle connections on a thread re-arm for their next ping every interval; on
//! tokio's wheel each one is an entry cascaded through its levels and a boxed timer future
//! allocated per re-arm (the largest user-space cost of an idle connection in profiles). Here a
//! thread keeps its alarms in buckets keyed by instant, and one driver task per thread sleeps
//! until the earliest bucket. Alarms are meant for instants on a shared grid (`crate::grid`),
//! so buckets are few. A re-armed alarm leaves its old entry behind; the entry is skipped when
//! its bucket rings (each entry is 8 bytes and lives until its bucket's instant).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::time::Sleep;

/// One ring of an [`Alarm`], as its [`Rings`] stream yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring;

/// Sets (and re-sets) the instant a [`Rings`] stream next yields. Used on the thread that made it.
pub struct Alarm {
    slot: Rc<Slot>,
}

/// The stream of an alarm's rings; it never ends (drop it, or the alarm, to stop).
pub struct Rings {
    slot: Rc<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The instant the alarm is set for, if it is set.
    at: Cell<Option<Instant>>,
    rang: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// A thread's alarms, by the instant they are set for.
#[derive(Default)]
struct Clock {
    buckets: BTreeMap<Instant, Vec<Weak<Slot>>>,
    /// Whether this thread's runtime runs a driver now.
    driving: bool,
    /// The driver's waker, and the instant it sleeps until (`None`: no bucket when it slept).
    driver: Option<(Waker, Option<Instant>)>,
}

thread_local! {
    static CLOCK: RefCell<Clock> = RefCell::default();
}

/// A new alarm, not set, and the stream it rings on. Must be called inside a tokio `LocalSet`
/// (an actix arbiter): the thread's driver task is spawned there on first use.
pub fn alarm() -> (Alarm, Rings) {
    let slot = Rc::new(Slot::default());
    let start = CLOCK.with(|c| !std::mem::replace(&mut c.borrow_mut().driving, true));
    if start {
        tokio::task::spawn_local(Driver { sleep: None });
    }
    (Alarm { slot: slot.clone() }, Rings { slot })
}

/// Rings at every point of the grid of `step` (`crate::grid`), from the first one at or after
/// now; a point missed (the thread was busy) is skipped, not rung late twice.
pub fn every(step: Duration) -> Every {
    let (alarm, rings) = alarm();
    let next = crate::grid::on_grid(Instant::now(), step);
    alarm.set(next);
    Every {
        alarm,
        rings,
        step,
        next,
    }
}

/// The stream of [`every`]'s rings; it never ends.
pub struct Every {
    alarm: Alarm,
    rings: Rings,
    step: Duration,
    /// The grid point the alarm is set for.
    next: Instant,
}

impl Stream for Every {
    type Item = Ring;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Ring>> {
        let ring = ready!(Pin::new(&mut self.rings).poll_next(cx));
        let after = (self.next + self.step).max(Instant::now());
        self.next = crate::grid::on_grid(after, self.step);
        self.alarm.set(self.next);
        Poll::Ready(ring)
    }
}

impl Alarm {
    /// Rings at `at` (at once if it has passed) instead of any instant set before.
    pub fn set(&self, at: Instant) {
        if self.slot.at.get() == Some(at) {
            return;
        }
        self.slot.at.set(Some(at));
        let wake = CLOCK.with(|c| {
            let mut c = c.borrow_mut();
            c.buckets
                .entry(at)
                .or_default()
                .push(Rc::downgrade(&self.slot));
            match &c.driver {
                // The driver sleeps past `at`, or with nothing to wait for: it must look again.
                Some((_, sleeping_until)) if sleeping_until.is_none_or(|t| at < t) => {
                    c.driver.take().map(|(w, _)| w)
                }
                _ => None,
            }
        });
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl Stream for Rings {
    type Item = Ring;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Ring>> {
        if self.slot.rang.replace(false) {
            return Poll::Ready(Some(Ring));
        }
        let mut w = self.slot.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Polls a reusable runtime timer for `at`: made on first use, moved when `at` changes.
fn poll_until(timer: &mut Option<Pin<Box<Sleep>>>, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
    let deadline = tokio::time::Instant::from_std(at);
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if sleep.deadline() != deadline {
        sleep.as_mut().reset(deadline);
    }
    sleep.as_mut().poll(cx)
}

/// The one task per thread that rings due buckets.
struct Driver {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Driver {
    /// Rings every alarm set for an instant at or before `now`.
    fn ring_due(now: Instant) {
        loop {
            let due = CLOCK.with(|c| {
                let mut c = c.borrow_mut();
                match c.buckets.first_key_value() {
                    Some((at, _)) if *at <= now => c.buckets.pop_first(),
                    _ => None,
                }
            });
            let Some((at, entries)) = due else { return };
            for slot in entries.iter().filter_map(Weak::upgrade) {
                // An entry left behind by a re-armed alarm is not its alarm's instant any more.
                if slot.at.get() != Some(at) {
                    continue;
                }
                slot.at.set(None);
                slot.rang.set(true);
                let waker = slot.waker.borrow_mut().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            Self::ring_due(Instant::now());
            let next = CLOCK.with(|c| c.borrow().buckets.first_key_value().map(|(at, _)| *at));
            let Some(next) = next else {
                CLOCK.with(|c| c.borrow_mut().driver = Some((cx.waker().clone(), None)));
                return Poll::Pending;
            };
            if poll_until(&mut self.sleep, next, cx).is_pending() {
                CLOCK.with(|c| c.borrow_mut().driver = Some((cx.waker().clone(), Some(next))));
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Driver {
    /// The runtime is going away (its `LocalSet` drops its tasks): the next one on this thread
    /// starts a driver of its own.
    fn drop(&mut self) {
        let _ = CLOCK.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                c.driving = false;
                c.driver = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::Duration;

    fn rang(r: &mut Rings) -> bool {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        Pin::new(r).poll_next(&mut cx).is_ready()
    }

    #[actix::test]
    async fn alarms_set_for_one_instant_ring_once_each() {
        let at = Instant::now() + Duration::from_millis(30);
        let mut all: Vec<_> = (0..100).map(|_| alarm()).collect();
        for (a, _) in &all {
            a.set(at);
            a.set(at);
        }
        for (_, r) in &mut all {
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(5), r.next()).await,
                Ok(Some(Ring))
            );
            assert!(Instant::now() >= at, "rang early");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(all.iter_mut().all(|(_, r)| !rang(r)), "an alarm rang twice");
    }

    #[actix::test]
    async fn a_reset_alarm_rings_at_its_new_instant_only() {
        let (a, mut r) = alarm();
        let late = Instant::now() + Duration::from_millis(300);
        a.set(late);
        // Set earlier than the driver sleeps: the driver wakes for it.
        let early = Instant::now() + Duration::from_millis(20);
        a.set(early);
        assert_eq!(r.next().await, Some(Ring));
        assert!(Instant::now() < late, "the earlier instant did not ring");
        tokio::time::sleep_until(tokio::time::Instant::from_std(late) + Duration::from_millis(50))
            .await;
        assert!(!rang(&mut r), "the replaced instant rang");
        // Moved later: the old, earlier entry is skipped.
        a.set(Instant::now() + Duration::from_millis(20));
        let moved = Instant::now() + Duration::from_millis(120);
        a.set(moved);
        assert_eq!(r.next().await, Some(Ring));
        assert!(Instant::now() >= moved, "the replaced earlier instant rang");
    }

    #[actix::test]
    async fn every_rings_once_per_grid_point() {
        let step = Duration::from_millis(20);
        let mut ticks = every(step);
        let mut points = Vec::new();
        for _ in 0..5 {
            assert_eq!(ticks.next().await, Some(Ring));
            points.push(crate::grid::on_grid(Instant::now(), step));
        }
        for w in points.windows(2) {
            assert!(w[1] > w[0], "two rings in one grid step: {points:?}");
        }
    }

    #[actix::test]
    async fn dropped_alarms_leave_nothing_that_rings() {
        let at = Instant::now() + Duration::from_millis(20);
        for _ in 0..10 {
            let (a, r) = alarm();
            a.set(at);
            drop((a, r));
        }
        let (a, mut r) = alarm();
        a.set(at);
        assert_eq!(r.next().await, Some(Ring));
        assert!(CLOCK.with(|c| c.borrow().buckets.is_empty()));
        // A passed instant rings at once.
        a.set(Instant::now() - Duration::from_millis(1));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), r.next()).await,
            Ok(Some(Ring))
        );
    }
}
