//! attachd's kube backend (`src/backend/kube.rs`, compiled here verbatim) against the emulator:
//! session listing by label and tenant, attach/exec bridged to the hub pipe, exit codes, loss, timeouts.

mod common;
#[path = "../../src/backend/kube.rs"]
#[allow(dead_code)]
mod kube_backend;

use std::time::Duration;

use attachd_actors::backend::{BackendEvent, BackendInput, BackendIo};
use bytes::Bytes;
use common::{Emu, NS, TOKEN, WAIT};
use kube_backend::{KubeError, KubeMode, KubeSettings};

fn settings() -> KubeSettings {
    KubeSettings {
        namespace: NS.into(),
        api_timeout: Duration::from_secs(5),
        ..KubeSettings::default()
    }
}

fn emu() -> Emu {
    Emu::start(&[
        "--pod",
        "name=p1,tenant=acme",
        "--pod",
        "name=p2,tenant=globex",
        "--pod",
        "name=p3,tenant=acme",
        // Not a session: outside the selector, and without a tenant.
        "--pod",
        "name=outsider,tenant=acme,label=app.kubernetes.io/part-of=other",
        "--pod",
        "name=untenanted",
    ])
}

fn client(emu: &Emu) -> kube::Client {
    kube_backend::client_for(&emu.url, TOKEN).expect("client")
}

#[tokio::test]
async fn client_from_settings_reads_the_token_file() {
    let emu = emu();
    let dir = std::env::temp_dir().join(format!("kube-emu-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let client = kube_backend::client_from_settings(Some(&emu.url), Some(&file))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let sessions = kube_backend::list_sessions(&client, &settings())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 3);
}

/// Collects output until it contains `needle`; panics on exit/loss or after `WAIT`.
async fn output_until(io: &mut BackendIo, needle: &str) -> String {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if String::from_utf8_lossy(&seen).contains(needle) {
            return String::from_utf8_lossy(&seen).into_owned();
        }
        match tokio::time::timeout_at(deadline, io.events.recv()).await {
            Ok(Some(BackendEvent::Output(b))) => seen.extend_from_slice(&b),
            other => panic!(
                "waiting for {needle:?}: got {other:?} after {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// Skips output until the final event.
async fn final_event(io: &mut BackendIo) -> BackendEvent {
    loop {
        match tokio::time::timeout(WAIT, io.events.recv()).await {
            Ok(Some(BackendEvent::Output(_))) => continue,
            Ok(Some(ev)) => return ev,
            other => panic!("no final event: {other:?}"),
        }
    }
}

async fn stdin(io: &BackendIo, text: &str) {
    io.input
        .send(BackendInput::Stdin(Bytes::copy_from_slice(text.as_bytes())))
        .await
        .expect("backend input open");
}

#[tokio::test]
async fn sessions_are_labelled_pods_with_a_tenant() {
    let emu = emu();
    let client = client(&emu);
    let s = settings();

    let all = kube_backend::list_sessions(&client, &s).await.unwrap();
    let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["p1", "p2", "p3"]);
    assert!(all
        .iter()
        .all(|p| p.phase == "Running" && p.created_at.is_some()));
    assert_eq!(all[1].tenant, "globex");

    let acme = kube_backend::list_tenant_sessions(&client, &s, "acme")
        .await
        .unwrap();
    let names: Vec<_> = acme.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["p1", "p3"]);
    // A tenant that is not a label value cannot widen the selector.
    let injected = kube_backend::list_tenant_sessions(&client, &s, "acme,tier!=x")
        .await
        .unwrap();
    assert!(injected.is_empty());

    let p2 = kube_backend::get_session(&client, &s, "p2").await.unwrap();
    assert_eq!(p2.tenant, "globex");
    for hidden in ["outsider", "untenanted", "missing", "../p1", "p1/exec", ""] {
        match kube_backend::get_session(&client, &s, hidden).await {
            Err(KubeError::NotFound(_)) => {}
            other => panic!("{hidden:?} must not be a session: {other:?}"),
        }
    }
    assert!(matches!(
        kube_backend::open(&client, &s, "outsider").await,
        Err(KubeError::NotFound(_))
    ));
}

#[tokio::test]
async fn attach_bridges_output_stdin_resize_and_exit_code() {
    let emu = emu();
    let client = client(&emu);
    let s = settings();
    let mut io = kube_backend::open(&client, &s, "p1").await.unwrap();

    stdin(&io, "echo bridged-$((20+22))\n").await;
    output_until(&mut io, "bridged-42").await;

    io.input
        .send(BackendInput::Resize {
            cols: 132,
            rows: 43,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stdin(&io, "stty size\n").await;
    output_until(&mut io, "43 132").await;

    stdin(&io, "exit 7\n").await;
    match final_event(&mut io).await {
        BackendEvent::Exited(7) => {}
        other => panic!("expected Exited(7), got {other:?}"),
    }
    assert!(io.events.recv().await.is_none(), "nothing after the exit");

    match kube_backend::open(&client, &s, "p1").await {
        Err(KubeError::NotRunning { phase, .. }) => assert_eq!(phase, "Failed"),
        other => panic!("expected NotRunning, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_mode_runs_the_configured_command() {
    let emu = emu();
    let client = client(&emu);
    let s = KubeSettings {
        mode: KubeMode::Exec,
        command: vec!["sh".into(), "-c".into(), "printf exec-mode; exit 0".into()],
        ..settings()
    };
    let mut io = kube_backend::open(&client, &s, "p2").await.unwrap();
    output_until(&mut io, "exec-mode").await;
    match final_event(&mut io).await {
        BackendEvent::Exited(0) => {}
        other => panic!("expected Exited(0), got {other:?}"),
    }
    // exec does not touch the container's main process.
    let p2 = kube_backend::get_session(&client, &s, "p2").await.unwrap();
    assert_eq!(p2.phase, "Running");
}

#[tokio::test]
async fn deleting_the_pod_reports_gone() {
    let emu = emu();
    let client = client(&emu);
    let s = settings();
    let mut io = kube_backend::open(&client, &s, "p3").await.unwrap();
    stdin(&io, "echo alive\n").await;
    output_until(&mut io, "alive").await;

    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(emu.client(), NS);
    pods.delete("p3", &Default::default()).await.unwrap();
    match final_event(&mut io).await {
        BackendEvent::Gone(reason) => assert_eq!(reason, "pod deleted"),
        other => panic!("expected Gone, got {other:?}"),
    }
}

#[tokio::test]
async fn terminate_detaches_and_leaves_the_pod_running() {
    let emu = emu();
    let client = client(&emu);
    let s = settings();
    let mut io = kube_backend::open(&client, &s, "p1").await.unwrap();
    stdin(&io, "echo before-terminate\n").await;
    output_until(&mut io, "before-terminate").await;
    io.input.send(BackendInput::Terminate).await.unwrap();
    // No exit is reported for a detach; the pipe just closes.
    loop {
        match tokio::time::timeout(WAIT, io.events.recv()).await {
            Ok(Some(BackendEvent::Output(_))) => continue,
            Ok(None) => break,
            other => panic!("expected the pipe to close, got {other:?}"),
        }
    }
    let p1 = kube_backend::get_session(&client, &s, "p1").await.unwrap();
    assert_eq!(p1.phase, "Running");
    // Another session can attach to the same TTY afterwards.
    let mut again = kube_backend::open(&client, &s, "p1").await.unwrap();
    stdin(&again, "echo after-terminate\n").await;
    output_until(&mut again, "after-terminate").await;
}

#[tokio::test]
async fn unreachable_or_silent_api_servers_fail_fast() {
    // Refused connection.
    let dead = kube_backend::client_for("http://127.0.0.1:1", TOKEN).unwrap();
    let started = std::time::Instant::now();
    let err = kube_backend::list_sessions(&dead, &settings())
        .await
        .unwrap_err();
    assert!(matches!(err, KubeError::Transport { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(6));

    // Accepts TCP but never answers: the request bound fires.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let client = kube_backend::client_for(&format!("http://{addr}"), TOKEN).unwrap();
    let s = KubeSettings {
        api_timeout: Duration::from_millis(500),
        ..settings()
    };
    let started = std::time::Instant::now();
    match kube_backend::open(&client, &s, "p1").await {
        Err(KubeError::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();

    // A token file that is missing or empty is a configuration error, not a hang.
    let missing = std::path::Path::new("/nonexistent/kube-token");
    assert!(matches!(
        kube_backend::client_from_settings(Some("http://127.0.0.1:1"), Some(missing)).await,
        Err(KubeError::Config(_))
    ));
    assert!(matches!(
        kube_backend::client_from_settings(Some("http://127.0.0.1:1"), None).await,
        Err(KubeError::Config(_))
    ));

    // Wrong token: a clear API refusal.
    let emu = emu();
    let bad = kube_backend::client_for(&emu.url, "wrong").unwrap();
    match kube_backend::list_sessions(&bad, &settings()).await {
        Err(KubeError::Api { code: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn unsafe_settings_are_refused() {
    let emu = emu();
    let client = client(&emu);
    let empty_selector = KubeSettings {
        label_selector: " ".into(),
        ..settings()
    };
    assert!(matches!(
        kube_backend::list_sessions(&client, &empty_selector).await,
        Err(KubeError::Settings(_))
    ));
    let exec_without_command = KubeSettings {
        mode: KubeMode::Exec,
        command: Vec::new(),
        ..settings()
    };
    assert!(matches!(
        kube_backend::open(&client, &exec_without_command, "p1").await,
        Err(KubeError::Settings(_))
    ));
}
