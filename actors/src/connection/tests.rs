//! The connection actor against a real hub and audit log: exit duties on every path
//! (close, panic, drain), budgets and timers.

use super::*;
use crate::audit::AuditConfig;
use crate::backend::BackendIo;
use crate::hub::{HubConfig, Snapshot};
use crate::lease::LocalLeases;
use crate::limits::{LocalLimiter, SlotKey};

/// A handler that panics, standing in for any bug in message handling.
#[derive(Message)]
#[rtype(result = "()")]
struct Boom;

impl Handler<Boom> for Connection {
    type Result = ();
    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("handler bug");
    }
}

#[actix::test]
async fn a_panicking_handler_still_leaves_frees_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let audit = Audit::start(AuditConfig {
        path: path.clone(),
        max_file_bytes: 1 << 20,
    })
    .unwrap();
    let (io, _events_tx, _input_rx) = BackendIo::channels();
    let hub = SessionHub::new(
        "s1".into(),
        "t".into(),
        HubConfig {
            history_lines: 100,
            replay_bytes: 1 << 20,
            initial_size: crate::protocol::TermSize { cols: 80, rows: 24 },
            flow: crate::hub::FlowConfig::default(),
            idle_timeout: Duration::from_secs(60),
            driver_idle_timeout: Duration::from_secs(60),
            control_grace: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(15),
            control_request_ttl: Duration::from_secs(30),
            bus: None,
            recorder: None,
            moderated: None,
        },
        io,
        Arc::new(LocalLeases::new()),
        audit.clone(),
        Box::new(|_| {}),
    )
    .start();
    let limiter = Arc::new(LocalLimiter::new());
    let key = SlotKey {
        subject: "alice".into(),
        session: "s1".into(),
        connection_id: "c1".into(),
    };
    limiter.acquire_now(&key, 5, 5).unwrap();
    let (out, _rx) = crate::outbound::channel(1 << 20);
    let (hub2, audit2, slots) = (
        hub.clone(),
        audit.clone(),
        SlotGuard::new(limiter.clone(), key),
    );
    // On its own arbiter, so the panic takes down only that thread's event loop (made there: a
    // connection's timer belongs to its thread).
    let arbiter = actix::Arbiter::new();
    let addr = Connection::start_in_arbiter(&arbiter.handle(), move |_| {
        Connection::new(
            ConnIdentity {
                connection_id: "c1".into(),
                session_id: "s1".into(),
                subject: "alice".into(),
                name: None,
                tenant: "t".into(),
                role: Role::Driver,
                remote_ip: "127.0.0.1".into(),
                resume_from: None,
                moderator: false,
            },
            ConnConfig {
                ping_interval: Duration::from_secs(15),
                heartbeat_timeout: Duration::from_secs(30),
                max_lifetime: Duration::from_secs(3600),
                max_invalid: 10,
                stdin_messages_per_sec: 100,
                stdin_bytes_per_sec: 1 << 20,
                flood_after: Duration::from_secs(30),
                max_message_bytes: 1 << 20,
                stdin_summary_interval: Duration::from_secs(30),
                close_linger: Duration::from_secs(1),
            },
            hub2,
            out,
            slots,
            audit2,
        )
    });
    let mut joined = false;
    for _ in 0..100 {
        if hub.send(Snapshot).await.unwrap().control.is_some() {
            joined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(joined, "driver never took the seat");
    let _ = addr.try_send(Boom);
    let mut left = false;
    for _ in 0..200 {
        let snap = hub.send(Snapshot).await.unwrap();
        if snap.participants.is_empty() && limiter.subject_count("alice") == 0 {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        left,
        "the panicked connection did not leave the hub or free its slot"
    );
    audit.flush().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"attach.disconnect\"") && l.contains("\"c1\"")),
        "no disconnect record: {text}"
    );
}
