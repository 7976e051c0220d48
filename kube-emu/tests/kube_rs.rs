//! The emulator driven by kube-rs itself: pod list/get/delete, `exec` and `attach` with TTY,
//! resize, exit statuses, shared attach TTYs, and both channel subprotocols (v5 and forced v4).

mod common;

use common::{read_to_end, read_until, Emu, NS, WAIT};
use futures_util::SinkExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, TerminalSize};
use tokio::io::AsyncWriteExt;

type Status = k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

fn pods(emu: &Emu) -> Api<Pod> {
    Api::namespaced(emu.client(), NS)
}

fn standard(extra: &[&str]) -> Emu {
    let mut args = vec![
        "--pod",
        "name=p1,tenant=acme",
        "--pod",
        "name=p2,tenant=globex,label=tier=gold",
        "--pod",
        "name=other,tenant=acme,label=app.kubernetes.io/part-of=elsewhere",
    ];
    args.extend_from_slice(extra);
    Emu::start(&args)
}

async fn status_of(process: &mut kube::api::AttachedProcess) -> Option<Status> {
    let fut = process.take_status().expect("status future");
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("status in time")
}

fn exit_code_of(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_ref()?
        .parse()
        .ok()
}

fn api_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn list_get_and_label_selectors() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let names = |list: kube::api::ObjectList<Pod>| {
        let mut v: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        v.sort();
        v
    };

    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(all), ["other", "p1", "p2"]);
    let sandbox = api
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=sandbox"))
        .await
        .unwrap();
    assert_eq!(names(sandbox), ["p1", "p2"]);
    let acme = api
        .list(
            &ListParams::default()
                .labels("app.kubernetes.io/part-of=sandbox,attachd.dev/tenant=acme"),
        )
        .await
        .unwrap();
    assert_eq!(names(acme), ["p1"]);
    let by_name = api
        .list(
            &ListParams::default()
                .labels("app.kubernetes.io/part-of=sandbox")
                .fields("metadata.name=p2"),
        )
        .await
        .unwrap();
    assert_eq!(names(by_name), ["p2"]);

    let p1 = api.get("p1").await.unwrap();
    let status = p1.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let labels = p1.metadata.labels.unwrap();
    assert_eq!(labels["attachd.dev/tenant"], "acme");
    assert!(p1.metadata.creation_timestamp.is_some());

    assert_eq!(api_code(api.get("missing").await.unwrap_err()), 404);
    let elsewhere: Api<Pod> = Api::namespaced(emu.client(), "default");
    assert_eq!(api_code(elsewhere.get("p1").await.unwrap_err()), 404);
    assert!(elsewhere
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn wrong_or_missing_token_is_unauthorized() {
    let emu = standard(&[]);
    let api: Api<Pod> = Api::namespaced(emu.client_with("wrong"), NS);
    assert_eq!(api_code(api.get("p1").await.unwrap_err()), 401);
    let err = api
        .exec("p1", ["true"], &AttachParams::interactive_tty())
        .await
        .err()
        .expect("exec must be refused");
    assert_eq!(api_code(err), 401);
}

#[tokio::test]
async fn exec_tty_reports_success_and_exit_codes() {
    let emu = standard(&[]);
    let api = pods(&emu);

    let mut ok = api
        .exec(
            "p1",
            ["sh", "-c", "printf hello-ok"],
            &AttachParams::interactive_tty(),
        )
        .await
        .unwrap();
    let mut out = ok.stdout().unwrap();
    assert!(read_to_end(&mut out).await.contains("hello-ok"));
    let status = status_of(&mut ok).await.expect("status");
    assert_eq!(exit_code_of(&status), Some(0));

    let mut bad = api
        .exec(
            "p1",
            ["sh", "-c", "printf failing; exit 3"],
            &AttachParams::interactive_tty(),
        )
        .await
        .unwrap();
    let mut out = bad.stdout().unwrap();
    assert!(read_to_end(&mut out).await.contains("failing"));
    let status = status_of(&mut bad).await.expect("status");
    assert_eq!(exit_code_of(&status), Some(3));

    let mut missing = api
        .exec(
            "p1",
            ["no-such-binary-kube-emu"],
            &AttachParams::interactive_tty(),
        )
        .await
        .unwrap();
    let status = status_of(&mut missing).await.expect("status");
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("InternalError"));
    assert!(status
        .message
        .unwrap()
        .contains("executable file not found"));
}

#[tokio::test]
async fn exec_tty_stdin_and_resize() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let mut proc = api
        .exec("p1", ["/bin/sh"], &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut stdin = proc.stdin().unwrap();
    let mut stdout = proc.stdout().unwrap();
    let mut resize = proc.terminal_size().unwrap();

    resize
        .send(TerminalSize {
            width: 123,
            height: 45,
        })
        .await
        .unwrap();
    // kube-rs may reorder the resize and stdin channels in its send loop; let the resize land.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stdin.write_all(b"stty size\n").await.unwrap();
    read_until(&mut stdout, "45 123").await;

    stdin.write_all(b"exit 0\n").await.unwrap();
    let status = status_of(&mut proc).await.expect("status");
    assert_eq!(exit_code_of(&status), Some(0));
}

#[tokio::test]
async fn exec_without_tty_separates_stdout_and_stderr() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let mut proc = api
        .exec(
            "p1",
            [
                "sh",
                "-c",
                "read line; echo out:$line; echo err:$line >&2; exit 2",
            ],
            &ap,
        )
        .await
        .unwrap();
    let mut stdin = proc.stdin().unwrap();
    let mut stdout = proc.stdout().unwrap();
    let mut stderr = proc.stderr().unwrap();
    stdin.write_all(b"abc\n").await.unwrap();
    let (out, err) = tokio::join!(read_to_end(&mut stdout), read_to_end(&mut stderr));
    assert_eq!(out, "out:abc\n");
    assert_eq!(err, "err:abc\n");
    let status = status_of(&mut proc).await.expect("status");
    assert_eq!(exit_code_of(&status), Some(2));
}

#[tokio::test]
async fn v5_stdin_close_reaches_a_pipe_process() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut proc = api.exec("p1", ["cat"], &ap).await.unwrap();
    let mut stdin = proc.stdin().unwrap();
    let mut stdout = proc.stdout().unwrap();
    stdin.write_all(b"through-cat").await.unwrap();
    // v5: kube-rs sends [255, 0]; the emulator closes cat's stdin and cat exits 0.
    stdin.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut stdout).await, "through-cat");
    let status = status_of(&mut proc).await.expect("status");
    assert_eq!(exit_code_of(&status), Some(0));
}

#[tokio::test]
async fn attach_streams_share_the_container_tty() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let mut a = api
        .attach("p2", &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut b = api
        .attach("p2", &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut a_in = a.stdin().unwrap();
    let mut a_out = a.stdout().unwrap();
    let mut b_in = b.stdin().unwrap();
    let mut b_out = b.stdout().unwrap();

    a_in.write_all(b"echo from-a-$((6*7))\n").await.unwrap();
    read_until(&mut a_out, "from-a-42").await;
    read_until(&mut b_out, "from-a-42").await;

    b_in.write_all(b"echo from-b-$((7*7))\n").await.unwrap();
    read_until(&mut a_out, "from-b-49").await;
    read_until(&mut b_out, "from-b-49").await;

    // Resize through one stream applies to the one TTY.
    let mut resize = a.terminal_size().unwrap();
    resize
        .send(TerminalSize {
            width: 101,
            height: 33,
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    b_in.write_all(b"stty size\n").await.unwrap();
    read_until(&mut b_out, "33 101").await;

    b_in.write_all(b"exit 5\n").await.unwrap();
    let sa = status_of(&mut a).await.expect("status a");
    let sb = status_of(&mut b).await.expect("status b");
    assert_eq!(exit_code_of(&sa), Some(5));
    assert_eq!(exit_code_of(&sb), Some(5));

    let pod = api.get("p2").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Failed"));
    let err = api
        .attach("p2", &AttachParams::interactive_tty())
        .await
        .err()
        .expect("attach to a completed pod must fail");
    assert_eq!(api_code(err), 400);
}

#[tokio::test]
async fn v5_attach_stdin_close_detaches_without_stopping_the_container() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let mut first = api
        .attach("p1", &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut stdin = first.stdin().unwrap();
    stdin.shutdown().await.unwrap();
    let status = status_of(&mut first).await.expect("status");
    assert_eq!(exit_code_of(&status), Some(0));

    let pod = api.get("p1").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    let mut again = api
        .attach("p1", &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut stdin = again.stdin().unwrap();
    let mut stdout = again.stdout().unwrap();
    stdin.write_all(b"echo still-$((2+3))\n").await.unwrap();
    read_until(&mut stdout, "still-5").await;
}

#[tokio::test]
async fn v4_is_negotiated_when_the_server_offers_only_v4() {
    let emu = standard(&["--max-protocol", "v4"]);
    let api = pods(&emu);

    let mut proc = api
        .exec(
            "p1",
            ["sh", "-c", "printf v4-out; exit 4"],
            &AttachParams::interactive_tty(),
        )
        .await
        .unwrap();
    let mut out = proc.stdout().unwrap();
    assert!(read_to_end(&mut out).await.contains("v4-out"));
    let status = status_of(&mut proc)
        .await
        .expect("v4 carries a JSON Status too");
    assert_eq!(exit_code_of(&status), Some(4));

    // Without v5's close signal kube-rs can only close the whole WebSocket on stdin EOF:
    // the stream ends without a status (that difference proves v4 was negotiated).
    let mut attached = api
        .attach("p1", &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut stdout = attached.stdout().unwrap();
    stdin.write_all(b"echo v4-attach-$((1+1))\n").await.unwrap();
    read_until(&mut stdout, "v4-attach-2").await;
    stdin.shutdown().await.unwrap();
    assert!(status_of(&mut attached).await.is_none());
    let pod = api.get("p1").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
}

#[tokio::test]
async fn deleting_a_pod_closes_its_streams() {
    let emu = standard(&[]);
    let api = pods(&emu);
    let mut attached = api
        .attach("p1", &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut exec = api
        .exec("p1", ["sleep", "30"], &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut a_out = attached.stdout().unwrap();
    let mut e_out = exec.stdout().unwrap();

    api.delete("p1", &DeleteParams::default()).await.unwrap();
    read_to_end(&mut a_out).await;
    read_to_end(&mut e_out).await;
    assert!(
        status_of(&mut attached).await.is_none(),
        "deletion is not an exit"
    );
    assert!(
        status_of(&mut exec).await.is_none(),
        "deletion is not an exit"
    );

    assert_eq!(api_code(api.get("p1").await.unwrap_err()), 404);
    let err = api
        .attach("p1", &AttachParams::interactive_tty())
        .await
        .err()
        .expect("attach to a deleted pod");
    assert_eq!(api_code(err), 404);
    let left = api.list(&ListParams::default()).await.unwrap();
    assert!(left
        .items
        .iter()
        .all(|p| p.metadata.name.as_deref() != Some("p1")));
}
