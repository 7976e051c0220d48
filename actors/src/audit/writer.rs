//! The audit actor, the only writer of the audit file, and [`Audit`], the cloneable handle every
//! other actor uses to send it events (records are group-committed: one `fdatasync` per batch).
//!
//! # Threading
//!
//! [`Audit::start`] runs the actor on its own actix `Arbiter` (a dedicated thread of the current
//! System), so the blocking `write` + `fdatasync` never stalls HTTP workers or other actors.
//! While a batch is being synced, new events wait in the bounded mailbox
//! ([`MAILBOX_CAPACITY`]); the next batch takes everything that arrived meanwhile. That is the
//! group commit: under load, one `fdatasync` covers many records.
//!
//! # Batching
//!
//! Each `Append` message is parked in a pending list and a `Commit` is scheduled with
//! `ctx.notify`; actix runs it after draining every message already in the mailbox, so one batch
//! holds everything that arrived together (capped at [`MAX_BATCH`], which commits inline).
//!
//! # `record_detached` (for `Drop`, `stopping` and other non-async contexts)
//!
//! It never uses an unbounded queue and never drops silently: it `try_send`s; when the mailbox
//! is full it takes one of [`DETACHED_OVERFLOW`] permits and spawns a task that awaits the
//! bounded `send` (so at most that many detached records wait outside the mailbox); when no
//! permit is left or no Tokio runtime is running, the record is dropped, counted in
//! `attachd_audit_records_lost_total{reason="overflow"}` and logged at error level with its type
//! and ids. A detached record whose write fails is counted and logged the
//! same way (`reason="write_failed"`). [`Audit::flush`] waits for the overflow tasks too.
//!
//! An event that never reaches a batch (the writer stopped with it in the mailbox, or an
//! [`Audit::record`] future was dropped while waiting for mailbox space) is counted as
//! `reason="dropped"` and logged: the message reports itself when dropped. Code that may be
//! cancelled at an awkward moment should prefer `record_detached`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::dev::SendError;
use actix::{
    Actor, ActorContext, Addr, Arbiter, AsyncContext, Context, Handler, Message, Running, System,
};
use tokio::sync::{oneshot, watch, Semaphore};

use super::anchor::Anchor;

use super::health::{self, lost, AuditHealth};
use super::record::AuditEvent;
use super::sink::Sink;
use super::{AuditError, Seq};

/// Mailbox capacity of the audit actor (events waiting for the next batch).
pub const MAILBOX_CAPACITY: usize = 1024;
/// Largest batch; a fuller pending list is committed at once.
pub const MAX_BATCH: usize = 1024;
/// Detached records that may wait for mailbox space outside the mailbox.
pub const DETACHED_OVERFLOW: usize = 1024;
/// Smallest accepted `max_file_bytes`.
pub const MIN_FILE_BYTES: u64 = 256;

/// Where and how the audit log is written (`audit.path`, `audit.max_file_bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The current log file, e.g. `./data/audit.log`; rotated files go next to it.
    pub path: PathBuf,
    /// Rotation size: a record that would push the file past this starts a new file.
    pub max_file_bytes: u64,
}

/// The handle to the audit writer: cheap to clone, `Send`, usable from any thread.
#[derive(Debug, Clone)]
pub struct Audit {
    addr: Addr<AuditWriter>,
    health: AuditHealth,
    overflow: Arc<Semaphore>,
    path: PathBuf,
    head: watch::Receiver<Option<Anchor>>,
}

type Reply = oneshot::Sender<Result<Seq, AuditError>>;

/// One event for the next batch; `reply` is `None` for detached records.
///
/// An `Append` dropped before the writer took it (the writer stopped with it in the mailbox, a
/// send failed, or a cancelled `record` future held it) is counted and logged as lost.
struct Append {
    ev: Option<AuditEvent>,
    reply: Option<Reply>,
}

impl Append {
    fn new(ev: AuditEvent, reply: Option<Reply>) -> Self {
        Append {
            ev: Some(ev),
            reply,
        }
    }

    /// Takes the event out; the message is then inert.
    fn take(&mut self) -> Option<(AuditEvent, Option<Reply>)> {
        let ev = self.ev.take()?;
        Some((ev, self.reply.take()))
    }
}

impl Drop for Append {
    fn drop(&mut self) {
        if let Some((ev, reply)) = self.take() {
            report_lost(lost::DROPPED, &ev, &AuditError::Closed);
            if let Some(reply) = reply {
                let _ = reply.send(Err(AuditError::Closed));
            }
        }
    }
}

impl Message for Append {
    type Result = ();
}

/// Commit everything pending now (self-notification).
struct Commit;

impl Message for Commit {
    type Result = ();
}

/// Commit everything pending and answer when it is durable.
struct Flush;

impl Message for Flush {
    type Result = Result<(), AuditError>;
}

/// Flush, release the file and its lock, and stop.
struct Close;

impl Message for Close {
    type Result = Result<(), AuditError>;
}

/// Refuse every further append (the chain's head elsewhere does not match).
struct Refuse(String);

impl Message for Refuse {
    type Result = ();
}

impl Handler<Refuse> for AuditWriter {
    type Result = ();

    fn handle(&mut self, msg: Refuse, ctx: &mut Context<Self>) {
        self.sink.refuse(msg.0);
        self.schedule_retry(ctx);
    }
}

/// Retry the sink while health is failing (self-notification).
struct Retry;

impl Message for Retry {
    type Result = ();
}

/// The audit actor: owns the [`Sink`] and the pending batch.
struct AuditWriter {
    sink: Sink,
    pending: Vec<Append>,
    commit_scheduled: bool,
    retry_scheduled: bool,
    /// The outcome of the last batch written, which [`Flush`] reports even when a scheduled
    /// commit already wrote it.
    last_batch: Result<(), AuditError>,
}

impl Actor for AuditWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.schedule_retry(ctx);
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        // Failures were answered to the waiters and logged.
        let _ = self.commit();
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.commit();
        self.sink.close();
        // Nothing can be written any more: the fail-closed gate must see it.
        self.sink.mark_stopped();
        // The arbiter exists for this actor only.
        Arbiter::current().stop();
    }
}

/// Describes a record for an error log line (type and ids only).
fn describe(ev: &AuditEvent) -> String {
    format!(
        "type={} outcome={} session_id={} connection_id={} subject={}",
        ev.kind(),
        ev.outcome(),
        ev.session_id_str().unwrap_or("-"),
        ev.connection_id_str().unwrap_or("-"),
        ev.subject_str().unwrap_or("-"),
    )
}

/// Counts and logs a record that will not be in the log.
fn report_lost(reason: &str, ev: &AuditEvent, error: &dyn std::fmt::Display) {
    health::count_lost(reason, 1);
    tracing::error!(
        reason,
        error = %error,
        record = %describe(ev),
        "audit record lost"
    );
}

impl AuditWriter {
    /// Writes the pending batch and answers every waiter.
    fn commit(&mut self) -> Result<(), AuditError> {
        self.commit_scheduled = false;
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch: Vec<(AuditEvent, Option<Reply>)> = std::mem::take(&mut self.pending)
            .iter_mut()
            .filter_map(Append::take)
            .collect();
        let events: Vec<&AuditEvent> = batch.iter().map(|(ev, _)| ev).collect();
        let timer = health::commit_timer();
        let results = self.sink.append_batch(&events);
        drop(timer);
        let mut first_err = None;
        for ((ev, reply), result) in batch.into_iter().zip(results) {
            if let Err(e) = &result {
                let reason = if matches!(e, AuditError::InvalidEvent(_)) {
                    lost::INVALID
                } else {
                    lost::WRITE_FAILED
                };
                report_lost(reason, &ev, e);
                if first_err.is_none() {
                    first_err = Some(e.clone());
                }
            }
            if let Some(reply) = reply {
                // The caller may have gone away; the record's fate is logged above either way.
                let _ = reply.send(result);
            }
        }
        self.last_batch = match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        };
        self.last_batch.clone()
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        if self.sink.is_failing() && !self.retry_scheduled {
            self.retry_scheduled = true;
            ctx.notify_later(Retry, self.sink.retry_delay());
        }
    }
}

impl Handler<Append> for AuditWriter {
    type Result = ();

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) {
        self.pending.push(msg);
        if self.pending.len() >= MAX_BATCH {
            // Committed inline; errors went to the waiters.
            let _ = self.commit();
            self.schedule_retry(ctx);
        } else if !self.commit_scheduled {
            self.commit_scheduled = true;
            ctx.notify(Commit);
        }
    }
}

impl Handler<Commit> for AuditWriter {
    type Result = ();

    fn handle(&mut self, _: Commit, ctx: &mut Context<Self>) {
        if self.commit_scheduled {
            // Errors went to the waiters and the log.
            let _ = self.commit();
        }
        self.schedule_retry(ctx);
    }
}

impl Handler<Flush> for AuditWriter {
    type Result = Result<(), AuditError>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        // Errors are in `last_batch` too.
        let _ = self.commit();
        self.schedule_retry(ctx);
        self.last_batch.clone()
    }
}

impl Handler<Close> for AuditWriter {
    type Result = Result<(), AuditError>;

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) -> Self::Result {
        // Errors are in `last_batch` too.
        let _ = self.commit();
        self.sink.close();
        ctx.stop();
        self.last_batch.clone()
    }
}

impl Handler<Retry> for AuditWriter {
    type Result = ();

    fn handle(&mut self, _: Retry, ctx: &mut Context<Self>) {
        self.retry_scheduled = false;
        if !ctx.connected() && self.pending.is_empty() {
            // Every handle is gone: nobody will write again.
            ctx.stop();
            return;
        }
        if self.sink.is_failing() {
            self.sink.retry();
        }
        self.schedule_retry(ctx);
    }
}

impl Audit {
    /// Starts the audit writer on a new arbiter of the current actix System (call it inside
    /// `#[actix_web::main]` / `System::new().block_on` / `#[actix::test]`).
    ///
    /// The existing chain is recovered synchronously before this returns, so
    /// [`Audit::health`] is meaningful at once. I/O problems and a broken chain do not make this
    /// fail: they show as failing health (with the reason) and are retried. Errors are only
    /// [`AuditError::Config`] and [`AuditError::NoSystem`].
    pub fn start(config: AuditConfig) -> Result<Audit, AuditError> {
        if config.path.as_os_str().is_empty() || config.path.file_name().is_none() {
            return Err(AuditError::Config("audit.path must name a file".into()));
        }
        if config.max_file_bytes < MIN_FILE_BYTES {
            return Err(AuditError::Config(format!(
                "audit.max_file_bytes must be at least {MIN_FILE_BYTES}"
            )));
        }
        if System::try_current().is_none() {
            return Err(AuditError::NoSystem);
        }
        let health = AuditHealth::new();
        let (published, head) = watch::channel(None);
        let mut sink = Sink::new(
            config.path.clone(),
            config.max_file_bytes,
            health.clone(),
            published,
        );
        sink.start();
        let writer = AuditWriter {
            sink,
            pending: Vec::new(),
            commit_scheduled: false,
            retry_scheduled: false,
            last_batch: Ok(()),
        };
        // The mailbox gets its capacity before the first send: `set_mailbox_capacity` inside
        // the actor would run later, on the arbiter thread, leaving actix's default of 16 until
        // then.
        let (tx, rx) = actix::dev::channel::channel(MAILBOX_CAPACITY);
        let addr = Addr::new(tx);
        let arbiter = Arbiter::new();
        let spawned = arbiter.spawn_fn(move || {
            Context::with_receiver(rx).run(writer);
        });
        if !spawned {
            return Err(AuditError::NoSystem);
        }
        Ok(Audit {
            addr,
            health,
            overflow: Arc::new(Semaphore::new(DETACHED_OVERFLOW)),
            path: config.path,
            head,
        })
    }

    /// Appends `ev` and resolves with its seq once it is durable (written and fdatasynced), or
    /// with the error that kept it out of the log.
    pub async fn record(&self, ev: AuditEvent) -> Result<Seq, AuditError> {
        let (tx, rx) = oneshot::channel();
        match self.addr.try_send(Append::new(ev, Some(tx))) {
            Ok(()) => {}
            // Waits for mailbox space (bounded backpressure). A failed or cancelled send drops the
            // message, which counts and logs it as lost.
            Err(SendError::Full(msg)) => {
                if self.addr.send(msg).await.is_err() {
                    return Err(AuditError::Closed);
                }
            }
            Err(SendError::Closed(_dropped_and_counted)) => return Err(AuditError::Closed),
        }
        rx.await.unwrap_or(Err(AuditError::Closed))
    }

    /// Appends `ev` without waiting (for `Drop`, `stopping` and other non-async code). Bounded
    /// and never silent: see the module docs.
    pub fn record_detached(&self, ev: AuditEvent) {
        let mut msg = match self.addr.try_send(Append::new(ev, None)) {
            Ok(()) => return,
            // Dropping the message counts and logs it as lost.
            Err(SendError::Closed(_dropped_and_counted)) => return,
            Err(SendError::Full(msg)) => msg,
        };
        let permit = self.overflow.clone().try_acquire_owned();
        let rt = tokio::runtime::Handle::try_current();
        let (Ok(permit), Ok(rt)) = (permit, rt) else {
            if let Some((ev, _)) = msg.take() {
                report_lost(
                    lost::OVERFLOW,
                    &ev,
                    &"audit mailbox full and no overflow slot (or no runtime) left",
                );
            }
            return;
        };
        let addr = self.addr.clone();
        rt.spawn(async move {
            let _permit = permit;
            // On failure the dropped message counts and logs itself as lost.
            let _ = addr.send(msg).await;
        });
    }

    /// Waits until every record sent before (including detached ones) is durable or failed;
    /// `Err` when the last batch failed or the writer stopped. For graceful shutdown.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.wait_overflow().await;
        self.addr
            .send(Flush)
            .await
            .map_err(|_| AuditError::Closed)?
    }

    /// Flushes, releases the file and its lock, and stops the writer (other clones then get
    /// [`AuditError::Closed`]).
    pub async fn close(&self) -> Result<(), AuditError> {
        self.wait_overflow().await;
        self.addr
            .send(Close)
            .await
            .map_err(|_| AuditError::Closed)?
    }

    async fn wait_overflow(&self) {
        let all = u32::try_from(DETACHED_OVERFLOW).unwrap_or(u32::MAX);
        // The semaphore is never closed; holding every permit means no overflow task is left.
        if let Ok(permits) = self.overflow.acquire_many(all).await {
            drop(permits);
        }
    }

    /// The chain's head after every durable batch (latest value only): what
    /// [`super::remote`] anchors in Redis.
    pub fn head_updates(&self) -> watch::Receiver<Option<Anchor>> {
        self.head.clone()
    }

    /// Refuses every further append with `why`: health fails and records get `ChainBroken`.
    pub async fn refuse(&self, why: String) -> Result<(), AuditError> {
        self.addr
            .send(Refuse(why))
            .await
            .map_err(|_| AuditError::Closed)
    }

    /// The writer's health: cheap to read from any thread (readiness, the fail-closed gate).
    pub fn health(&self) -> &AuditHealth {
        &self.health
    }

    /// The current log file (pass it to [`super::verify_path`] and [`super::read_events`]).
    pub fn path(&self) -> &Path {
        &self.path
    }
}
