//! Attaching a crowd of observers: a bounded number of attaches in flight, spread over source
//! addresses; each attached connection goes to a task of its own, attach outcomes are counted.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::api::Target;
use crate::cli::Proto;
use crate::client::{self, Conn, Role};

/// What attaching a crowd gave.
pub struct Ramp<T> {
    /// One task per observer: `None` if it did not attach, else what its body returned.
    pub tasks: Vec<JoinHandle<Option<T>>>,
    /// Observers attached.
    pub connected: usize,
    /// Attach errors, in the order they came.
    pub errors: Vec<String>,
    /// From the first attach to the last outcome.
    pub secs: f64,
}

/// How many observers, where from, how many attaches at once.
pub struct Plan<'a> {
    /// Observers to attach.
    pub n: usize,
    /// Attaches in flight.
    pub concurrency: usize,
    /// Source addresses (at least one), used in turn.
    pub sources: &'a [Option<IpAddr>],
}

/// Attaches `plan.n` observers, observer `i` to `session(i)`, and runs `body` on each attached
/// connection. Returns once every attach has succeeded or failed, or at `end_at`.
pub async fn observers<T, F, Fut>(
    target: &Target,
    proto: Proto,
    plan: Plan<'_>,
    session: impl Fn(usize) -> String,
    end_at: Instant,
    body: F,
) -> Ramp<T>
where
    T: Send + 'static,
    F: Fn(Conn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (att_tx, mut att_rx) = mpsc::channel::<Option<String>>(256);
    let gate = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(plan.n);
    for i in 0..plan.n {
        let (target, gate, att, body) =
            (target.clone(), gate.clone(), att_tx.clone(), body.clone());
        let (sid, src) = (session(i), plan.sources[i % plan.sources.len()]);
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let conn = client::attach(&target, proto, &sid, Role::Observer, src).await;
            drop(permit);
            match conn {
                Ok(c) => {
                    let _ = att.send(None).await;
                    drop(att);
                    Some(body(c).await)
                }
                Err(e) => {
                    let _ = att.send(Some(format!("{e:#}"))).await;
                    None
                }
            }
        }));
    }
    drop(att_tx);
    let (mut connected, mut errors) = (0usize, Vec::new());
    while connected + errors.len() < plan.n {
        let left = end_at.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, att_rx.recv()).await {
            Ok(Some(None)) => connected += 1,
            Ok(Some(Some(e))) => errors.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    Ramp {
        tasks,
        connected,
        errors,
        secs: start.elapsed().as_secs_f64(),
    }
}
