//! Connection capacity: how many client connections the API listener holds open
//! (`server.max_connections`, by default the open-file limit less a reserve) and their count.
//!
//! Every accepted connection takes a [`Permit`] that lives as long as its socket: it moves with
//! an upgraded socket into its WebSocket and is given back when the socket closes. With more
//! than `max` open, an attach is answered 503 `at_capacity` (the handshake's early check);
//! other requests (tickets, probes) are still answered until [`HEADROOM`] more are open, and
//! a connection accepted past that is closed at once. Accepting so never meets `EMFILE` while
//! the reserve holds (actix-server would then stop accepting on that listener for 500 ms).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use attachd_actors::metrics;

/// Open files kept for the process itself: stdio, the listeners, the runtimes' pollers and
/// wake-ups, the audit log and its head file, Redis, Kubernetes and JWKS clients, and the admin
/// listener's [`ADMIN_CONNECTIONS`].
pub const RESERVE_BASE: u64 = 128;

/// Connections past `max` that are still served (everything but attaches).
pub const HEADROOM: usize = 64;

/// One open file in this many is kept for what sessions open (a local session holds three: two
/// handles on its PTY and its recording file; a pod its exec/attach stream) and TLS handshakes
/// not yet counted.
pub const SESSION_SHARE: u64 = 10;

/// Connections the admin listener (`/metrics`, `/healthz`, `/readyz`) serves at once; more wait
/// in its backlog.
pub const ADMIN_CONNECTIONS: usize = 16;

/// The default `server.max_connections` for an open-file limit of `nofile`:
/// `nofile − (RESERVE_BASE + HEADROOM + nofile / SESSION_SHARE)` (at least 1).
pub fn default_max(nofile: u64) -> usize {
    let reserve = RESERVE_BASE + HEADROOM as u64 + nofile / SESSION_SHARE;
    usize::try_from(nofile.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX)
}

/// Raises the soft open-file limit to the hard one (a gateway's connections are its open
/// files) and returns the limit in force; `None` when it is unlimited.
pub fn open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (lim.current, lim.maximum) else {
        return lim.current;
    };
    if soft < hard {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return Some(hard),
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "the open-file limit could not be raised")
            }
        }
    }
    Some(soft)
}

/// What an unlimited open-file limit counts as (Linux's default `fs.nr_open`).
const UNLIMITED: u64 = 1 << 20;

/// `server.max_connections` in force: `configured`, or the open-file limit (raised to the hard
/// limit first) less the reserve. Logged once at start; a configured value above the default
/// is warned about.
pub fn max_connections(configured: Option<usize>) -> usize {
    let nofile = open_file_limit();
    let derived = default_max(nofile.unwrap_or(UNLIMITED));
    let max = configured.unwrap_or(derived);
    if max > derived {
        tracing::warn!(
            max_connections = max,
            open_file_limit = ?nofile,
            "server.max_connections leaves less than the reserve of open files: past the limit \
             accepting fails (EMFILE) and pauses for 500 ms at a time"
        );
    }
    tracing::info!(max_connections = max, open_file_limit = ?nofile, "connection capacity");
    max
}

/// The open connections of the API listener against `max`.
#[derive(Debug)]
pub struct Capacity {
    open: AtomicUsize,
    max: usize,
}

/// One open connection; dropping it gives its place back.
#[derive(Debug)]
pub struct Permit(Arc<Capacity>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Capacity {
    /// Room for `max` connections (plus [`HEADROOM`] for everything but attaches).
    pub fn new(max: usize) -> Arc<Capacity> {
        metrics::API_CONNECTIONS_MAX.set(i64::try_from(max).unwrap_or(i64::MAX));
        Arc::new(Capacity {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// `server.max_connections` in force.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A place for a connection just accepted, or `None` (counted) when `max + HEADROOM` are
    /// open: the caller closes it unanswered.
    pub fn admit(self: &Arc<Self>) -> Option<Permit> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max.saturating_add(HEADROOM) {
            self.open.fetch_sub(1, Ordering::AcqRel);
            metrics::CAPACITY_REFUSALS
                .with_label_values(&["closed"])
                .inc();
            return None;
        }
        Some(Permit(Arc::clone(self)))
    }

    /// Whether more than `max` connections are open, the asking one included: an attach on
    /// it is refused (and counted).
    pub fn refuses_attach(&self) -> bool {
        let full = self.open() > self.max;
        if full {
            metrics::CAPACITY_REFUSALS
                .with_label_values(&["answered"])
                .inc();
        }
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_the_reserve() {
        // 20,000: 128 + 64 + 2,000 kept.
        assert_eq!(default_max(20_000), 17_808);
        assert_eq!(default_max(1024), 730);
        assert_eq!(default_max(400), 168);
        assert_eq!(default_max(100), 1);
    }

    #[test]
    fn attaches_stop_at_max_and_connections_past_the_headroom() {
        let cap = Capacity::new(3);
        let mut held: Vec<Permit> = (0..3).map(|_| cap.admit().expect("within max")).collect();
        assert!(!cap.refuses_attach(), "three open of three");
        held.push(cap.admit().expect("a fourth is served"));
        assert!(cap.refuses_attach(), "but not as an attach");
        while held.len() < 3 + HEADROOM {
            held.push(cap.admit().expect("within the headroom"));
        }
        assert!(cap.admit().is_none(), "past the headroom: closed");
        assert_eq!(cap.open(), 3 + HEADROOM, "a refused one holds no place");
        held.truncate(2);
        assert_eq!(cap.open(), 2);
        let _third = cap.admit().expect("room again");
        assert!(!cap.refuses_attach());
    }
}
