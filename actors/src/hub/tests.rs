//! Actor tests of the hub through its messages, with in-memory leases and a real audit writer.
//! The seat machine's transitions are unit-tested in `seat/`.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt;

use super::*;
use crate::audit::AuditConfig;
use crate::lease::LocalLeases;
use crate::outbound::{self, OutboundRx, OutboundTx};

use crate::protocol::HelloLimits;

fn config() -> HubConfig {
    HubConfig {
        history_lines: 100,
        replay_bytes: 1 << 20,
        initial_size: crate::protocol::TermSize { cols: 80, rows: 24 },
        flow: crate::hub::FlowConfig::default(),
        idle_timeout: Duration::from_secs(600),
        driver_idle_timeout: Duration::from_secs(600),
        control_grace: Duration::from_secs(30),
        lease_ttl: Duration::from_secs(15),
        control_request_ttl: Duration::from_secs(30),
        bus: None,
        recorder: None,
        moderated: None,
    }
}

fn start_hub(dir: &tempfile::TempDir) -> Addr<SessionHub> {
    start_hub_over(dir, Arc::new(LocalLeases::new()))
}

fn start_hub_over(dir: &tempfile::TempDir, leases: Arc<LocalLeases>) -> Addr<SessionHub> {
    let audit = Audit::start(AuditConfig {
        path: dir.path().join("audit.log"),
        max_file_bytes: 1 << 24,
    })
    .unwrap();
    let (io, events, input) = BackendIo::channels();
    // The backend ends are held for the hub's life: a closed event channel ends the session.
    std::mem::forget((events, input));
    SessionHub::new(
        "s1".into(),
        "t".into(),
        config(),
        io,
        leases,
        audit,
        Box::new(|_| {}),
    )
    .start()
}

async fn join(hub: &Addr<SessionHub>, conn: &str, role: Role) -> (OutboundTx, OutboundRx) {
    let (out, rx) = outbound::channel(1 << 20);
    hub.send(Join {
        connection_id: conn.into(),
        subject: format!("subject-{conn}"),
        name: None,
        role,
        out: out.clone(),
        stats: Arc::new(ParticipantStats::default()),
        limits: HelloLimits {
            max_message_bytes: 1 << 20,
            ping_interval_ms: 15_000,
        },
        max_invalid: 10,
        resume_from: None,
        moderator: false,
    })
    .await
    .unwrap()
    .unwrap();
    (out, rx)
}

/// The JSON text frames queued so far (until `participants` shows `observers`).
async fn frames_until_observers(rx: &mut OutboundRx, observers: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let want = format!("\"observers\":{observers}");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), rx.next())
            .await
            .expect("no participants frame within 30 s")
            .expect("queue closed");
        if let OutFrame::Text(b) = frame {
            let text = String::from_utf8(b.to_vec()).unwrap();
            let done = text.contains("\"participants\"") && text.contains(&want);
            seen.push(text);
            if done {
                return seen;
            }
        }
    }
}

/// Thousands of participants whose sockets are gone leave at once (a load client closing its
/// sockets). Every leave announces itself to the others, whose queues refuse it; removing those
/// once recursed per participant and overflowed the thread's stack (the replica aborted).
fn thousands_leave_at_once(n: usize) {
    let system = actix::System::new();
    system.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let hub = start_hub(&dir);
        let mut gone = Vec::with_capacity(n);
        // The holder leaves too: its seat goes to grace in the same pass.
        for i in 0..n {
            let conn = format!("c{i}");
            let role = if i == 0 { Role::Driver } else { Role::Observer };
            let (tx, mut rx) = join(&hub, &conn, role).await;
            // Each socket writer drains its queue until the socket closes.
            let writer = actix::spawn(async move { while rx.next().await.is_some() {} });
            gone.push((conn, tx, writer));
        }
        let (_live_tx, mut live_rx) = join(&hub, "live", Role::Observer).await;
        frames_until_observers(&mut live_rx, n).await;
        // The joins' own announcement (the same counts) may still be on its way.
        tokio::time::sleep(PARTICIPANTS_COALESCE * 3).await;
        while let Some(Some(_)) = futures_util::FutureExt::now_or_never(live_rx.next()) {}
        assert!(hub.send(Snapshot).await.unwrap().control.is_some());

        // All their sockets close, then their leaves arrive.
        let mut leaves = Vec::with_capacity(n);
        for (_, tx, _) in &gone {
            tx.close_urgently(close::GOING_AWAY);
        }
        for (conn, _, writer) in gone {
            writer.await.unwrap();
            leaves.push(hub.send(Leave {
                connection_id: conn,
            }));
        }
        for leave in futures_util::future::join_all(leaves).await {
            leave.unwrap();
        }

        let snap = hub.send(Snapshot).await.unwrap();
        assert_eq!(snap.participants.len(), 1, "only the live observer remains");
        assert!(snap.control.is_none(), "the holder's seat is in grace");
        let after = frames_until_observers(&mut live_rx, 1).await;
        let counts = after
            .iter()
            .filter(|f| f.contains("\"participants\""))
            .count();
        assert_eq!(
            counts, 1,
            "one participants frame for the whole wave: {after:?}"
        );
        assert!(
            after.iter().any(|f| f.contains("\"disconnected\"")),
            "the holder's leave is announced: {after:?}"
        );
    });
}

#[test]
fn thousands_of_participants_leave_at_once_without_recursing() {
    // A small stack makes a per-participant recursion fail here at once.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| thousands_leave_at_once(3000))
        .unwrap()
        .join()
        .unwrap();
}

/// A holder on another replica granted this subject's request, but the grant's note never
/// arrived: the next request takes the seat from the store instead of waiting for the note.
#[actix::test]
async fn a_request_takes_a_seat_granted_elsewhere_whose_note_was_lost() {
    use crate::lease::{Holder, LeaseStore};
    use crate::protocol::ControlAction;
    let dir = tempfile::tempdir().unwrap();
    let leases = Arc::new(LocalLeases::new());
    let ttl = Duration::from_secs(15);
    let far = Holder {
        connection_id: "far".into(),
        subject: "subject-far".into(),
    };
    let lease = leases.acquire("s1", &far, ttl).await.unwrap().unwrap();
    let hub = start_hub_over(&dir, leases.clone());
    let (_tx, _rx) = join(&hub, "b", Role::Driver).await;
    let snap = hub.send(Snapshot).await.unwrap();
    assert_eq!(snap.control.unwrap().connection_id, "far", "held elsewhere");

    let b = Holder {
        connection_id: "b".into(),
        subject: "subject-b".into(),
    };
    leases
        .transfer("s1", lease.epoch, &b, ttl)
        .await
        .unwrap()
        .unwrap();
    hub.send(ControlRequest {
        connection_id: "b".into(),
        action: ControlAction::Request,
        to: None,
    })
    .await
    .unwrap();
    let snap = hub.send(Snapshot).await.unwrap();
    assert_eq!(snap.control.unwrap().connection_id, "b");
}
