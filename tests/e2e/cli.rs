//! The command-line client (`attachd attach`, `attachd sessions`) driven inside real PTYs
//! against a real attachd: typing, resizes, `~.`, exit codes, reconnects, refusals, TLS.
//!
//! Over 500 lines: each case drives the client in its own PTY, and reads top to bottom beside the
//! PTY harness it uses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli_pty::*;
use crate::prefix_proxy::PrefixProxy;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_types_resizes_and_exits_with_the_remote_code() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut cli = tokio::task::block_in_place(|| CliPty::attach(&srv, &ALICE, &sid, &[]));
    tokio::task::block_in_place(|| {
        attached(&cli);
        cli.shell_until("$(stty size)", "24 80", 10);
        cli.master.resize(pty_size(100, 30)).unwrap();
        cli.shell_until("$(stty size)", "30 100", 10);
        cli.run_then_exit(7);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tilde_dot_detaches_and_restores_the_terminal() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    tokio::task::block_in_place(|| {
        let mut cli = CliPty::attach(&srv, &ALICE, &sid, &[]);
        let before = cli.before.clone();
        assert!(
            before.contains(" icanon") && before.contains(" echo "),
            "{before}"
        );
        attached(&cli);
        let during = cli.stty();
        assert!(
            during.contains("-icanon") && during.contains("-echo "),
            "not raw: {during}"
        );
        // At the start of a line `~~` sends one `~` (so `~~.` is not a detach) ...
        cli.type_keys("~~.; echo \"[$((2+3))]\"\r");
        let seen = cli.expect("[5]", 10);
        assert!(
            seen.contains("~.; echo") && !seen.contains("~~."),
            "{seen:?}"
        );
        // ... and `~.` is.
        cli.type_keys("~.");
        assert_eq!(cli.wait(10), 0);
        cli.expect("detached", 5);
        let after = cli.stty();
        assert_eq!(before, after, "the terminal's mode was not restored");
    });
    // The session keeps running.
    let r = srv
        .api(&ALICE)
        .call("GET", &format!("/api/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_restore_the_terminal() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    tokio::task::block_in_place(|| {
        for (name, number) in [("TERM", 15), ("HUP", 1), ("INT", 2)] {
            let mut cli = CliPty::attach(&srv, &ALICE, &sid, &[]);
            let before = cli.before.clone();
            attached(&cli);
            assert!(cli.stty().contains("-icanon"));
            let pid = cli.child.process_id().expect("pid");
            let st = Command::new("kill")
                .args([format!("-{name}"), pid.to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            assert_eq!(cli.wait(10), 128 + number, "SIG{name}");
            cli.expect(&format!("ended by signal {number}"), 5);
            assert_eq!(before, cli.stty(), "SIG{name} left the terminal raw");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_and_a_lost_session_exits_255() {
    let mut srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let proxy = CutProxy::start(srv.port).await;
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let mut cli = CliPty::attach_at(&via, &srv, &ALICE, &sid, &[]);
    tokio::task::block_in_place(|| {
        attached(&cli);
        cli.shell_until("$((6*7))", "42", 10);
    });
    // Dropped: the client comes back with a fresh ticket and `resume_from`, nothing missed.
    proxy.drop_connections();
    tokio::task::block_in_place(|| {
        cli.expect("the connection was lost (close 1006); reconnecting", 10);
        cli.expect("reconnected; output resumes where it stopped", 15);
        cli.shell_until("$((7*7))", "49", 10);
        // The two notices take a line each, and nothing more: the next line is the session's.
        let screen = crate::judge::screen_rows(80, 24, &cli.bytes());
        let lost = screen
            .iter()
            .position(|r| r.starts_with("attachd: the connection was lost"))
            .unwrap_or_else(|| panic!("no notice on the screen: {screen:#?}"));
        assert_eq!(
            screen[lost + 1],
            "attachd: reconnected; output resumes where it stopped",
            "{screen:#?}"
        );
        // (A seat still held by the dropped connection is one more notice, never a blank.)
        let next = screen[lost + 2..]
            .iter()
            .find(|r| !r.starts_with("attachd: "))
            .expect("the session's output after the notices");
        assert!(
            next.starts_with("echo \"[$((7*7))]\""),
            "a line between the resume and the session's output: {screen:#?}"
        );
    });
    let tickets: Vec<Value> = srv
        .audit_records()
        .into_iter()
        .filter(|r| r["type"] == "attach.ticket.issued")
        .collect();
    assert!(tickets.len() >= 2, "{tickets:?}");
    // A restart forgets the (local) session: one notice, then 255.
    tokio::task::block_in_place(|| {
        let before = cli.text().matches("reconnecting").count();
        srv.restart();
        cli.expect_times("reconnecting", before + 1, 10);
        assert_eq!(cli.wait(40), 255);
        cli.expect("no such session in your tenant", 5);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_url_with_a_path_prefix_keeps_it() {
    let srv = Server::start(Opts::default());
    let proxy = PrefixProxy::start(srv.port, "/attachd").await;
    let base = format!("http://127.0.0.1:{}", proxy.port);
    let (with_slash, without) = (format!("{base}/attachd/"), format!("{base}/attachd"));
    let (code, out, err) = run_cli(
        &srv,
        ALICE.secret,
        &["sessions", "create", "-q", "--server", &with_slash],
    );
    assert_eq!(code, 0, "{err}");
    let sid = out.trim().to_string();
    let (code, out, err) = run_cli(
        &srv,
        ALICE.secret,
        &["sessions", "list", "--server", &without],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&sid), "{out}");
    for server in [&with_slash, &without] {
        let mut cli =
            tokio::task::block_in_place(|| CliPty::attach_at(server, &srv, &ALICE, &sid, &[]));
        tokio::task::block_in_place(|| {
            attached(&cli);
            cli.shell_until("$((6*7))", "42", 10);
            cli.type_keys("~.");
            assert_eq!(cli.wait(10), 0, "{:?}", cli.text());
        });
    }
    assert_eq!(
        proxy.stray(),
        Vec::<String>::new(),
        "requests outside the prefix"
    );
    let forwarded = proxy.forwarded();
    for path in [
        "/api/v1/sessions".to_string(),
        format!("/api/v1/sessions/{sid}/attach-tickets"),
        format!("/api/v1/sessions/{sid}/attach"),
    ] {
        assert_eq!(
            forwarded.iter().filter(|p| **p == path).count(),
            2,
            "{path}: {forwarded:?}"
        );
    }
    // The proxy serves nothing outside its prefix: a client that dropped it would be refused.
    let (code, _, err) = run_cli(&srv, ALICE.secret, &["sessions", "list", "--server", &base]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    assert_eq!(proxy.stray(), vec!["/api/v1/sessions".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_gives_the_terminal_back() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let url = srv.url("");
    tokio::task::block_in_place(|| {
        // Debug builds panic when the keys typed contain this word (release builds cannot).
        let mut cli = CliPty::attach_env(
            &url,
            &srv,
            &ALICE,
            &sid,
            &[],
            &[
                ("ATTACHD_CLI_PANIC_TEST", "PANIC_NOW"),
                ("RUST_BACKTRACE", "0"),
            ],
        );
        attached(&cli);
        cli.shell_until("$((6*7))", "42", 10);
        // The remote program takes the alternate screen, hides the cursor, asks for the mouse.
        cli.type_keys("printf '\\033[?1049h\\033[?25l\\033[?1000h[ALT_%s]' $((2+2))\r");
        cli.expect("[ALT_4]", 10);
        let during = crate::judge::render(80, 24, &cli.bytes());
        assert_eq!(during["alternate_screen"], true, "{during}");
        assert!(cli.stty().contains("-icanon"));
        cli.type_keys("PANIC_NOW");
        assert_eq!(
            cli.wait(10),
            101,
            "a panic exits with 101: {:?}",
            cli.text()
        );
        cli.expect("ATTACHD_CLI_PANIC_TEST was typed", 5);
        assert_eq!(cli.before, cli.stty(), "the panic left the terminal raw");
        let after = crate::judge::render(80, 24, &cli.bytes());
        assert_eq!(after["alternate_screen"], false, "{after}");
        assert_eq!(after["cursor"]["hidden"], false, "{after}");
        assert!(
            !after["modes"].as_array().unwrap().contains(&"?1000".into()),
            "{after}"
        );
        let rows: Vec<&str> = after["display"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            rows.iter().any(|r| r.starts_with("[42]"))
                && !rows.iter().any(|r| r.contains("[ALT_4]")),
            "the normal screen is shown again: {rows:#?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_cannot_type_and_sees_size_changes() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut driver = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut driver, "hello", 5).await;
    let mut cli =
        tokio::task::block_in_place(|| CliPty::attach(&srv, &OLIVE, &sid, &["--observe"]));
    tokio::task::block_in_place(|| {
        attached(&cli);
        cli.expect("observing (input is not sent", 5);
        cli.type_keys("echo \"[OBS_$((1+1))]\"\r");
        cli.expect("observing: your input is not sent", 5);
    });
    send_text(
        &mut driver,
        json!({"type": "resize", "cols": 101, "rows": 31}),
    )
    .await;
    send_bin(&mut driver, b"echo \"[DRV_$((5*5))]\"\r").await;
    expect_output(&mut driver, "[DRV_25]", 10).await;
    tokio::task::block_in_place(|| {
        let seen = cli.expect("[DRV_25]", 10);
        assert!(
            !seen.contains("[OBS_2]"),
            "the observer's input arrived: {seen:?}"
        );
        cli.expect("the session was resized: the session is 101x31", 5);
        cli.type_keys("~.");
        assert_eq!(cli.wait(10), 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_driver_is_told_who_holds_control() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut holder = attach_as(&srv, &ALICE, &sid, "driver").await;
    expect_json(&mut holder, "hello", 5).await;
    let mut cli = tokio::task::block_in_place(|| CliPty::attach(&srv, &BOB, &sid, &[]));
    tokio::task::block_in_place(|| {
        attached(&cli);
        cli.expect(
            "alice holds control: your input is not sent until it is released",
            5,
        );
        cli.type_keys("echo \"[BOB_$((2+2))]\"\r");
    });
    send_bin(&mut holder, b"echo \"[ALICE_$((3+3))]\"\r").await;
    tokio::task::block_in_place(|| {
        let seen = cli.expect("[ALICE_6]", 10);
        assert!(
            !seen.contains("[BOB_4]"),
            "input without control arrived: {seen:?}"
        );
        cli.type_keys("~.");
        assert_eq!(cli.wait(10), 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_session_ends_the_client_with_its_close_code() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let mut cli = tokio::task::block_in_place(|| CliPty::attach(&srv, &ALICE, &sid, &[]));
    tokio::task::block_in_place(|| attached(&cli));
    let (code, _, _) = run_cli(&srv, ALICE.secret, &["sessions", "delete", &sid]);
    assert_eq!(code, 0);
    tokio::task::block_in_place(|| {
        assert_eq!(cli.wait(10), 255);
        cli.expect("(close 4005)", 5);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_one_clear_line_on_stderr() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let cases: [(&str, Vec<&str>, i32, &str); 5] = [
        (
            "tok-wrong",
            vec!["attach", &sid],
            255,
            "check the API token (HTTP 401 unauthorized",
        ),
        (
            "tok-wrong",
            vec!["sessions", "list"],
            1,
            "(HTTP 401 unauthorized",
        ),
        (
            OLIVE.secret,
            vec!["attach", &sid],
            255,
            "lacks the scope for this (HTTP 403",
        ),
        (
            ALICE.secret,
            vec!["attach", "s-none"],
            255,
            "no such session in your tenant, or it has ended (HTTP 404 not_found",
        ),
        (
            MALLORY.secret,
            vec!["attach", &sid],
            255,
            "(HTTP 404 not_found",
        ),
    ];
    for (token, args, want_code, want) in cases {
        let (code, stdout, stderr) = run_cli(&srv, token, &args);
        assert_eq!(code, want_code, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} wrote to stdout: {stdout:?}");
        assert!(
            stderr.starts_with("attachd: ") && stderr.contains(want),
            "{args:?}: {stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(!stderr.contains(token), "the token was echoed: {stderr:?}");
    }
    let out = Command::new(bin())
        .args(["sessions", "list"])
        .env_remove("ATTACHD_TOKEN")
        .env("ATTACHD_SERVER", srv.url(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ATTACHD_TOKEN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_an_unavailable_server_are_one_clear_line() {
    // One attach attempt per window: the test's own attach spends it.
    let srv = Server::start(Opts::default().env("ATTACHD__LIMITS__IP_ATTEMPTS", "1"));
    let sid = srv.api(&ALICE).create_session().await;
    let _first = attach_as(&srv, &ALICE, &sid, "driver").await;
    let (code, stdout, stderr) = run_cli(&srv, ALICE.secret, &["attach", &sid]);
    assert_eq!(code, 255, "{stderr}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert!(
        stderr.starts_with("attachd: too many attempts (HTTP 429 rate_limited")
            && stderr.contains("; retry after ")
            && stderr.lines().count() == 1,
        "{stderr:?}"
    );

    let srv = Server::start(
        Opts::default()
            .env("ATTACHD__AUDIT__PATH", "/dev/full")
            .env("ATTACHD__AUDIT__ON_FAILURE", "deny"),
    );
    let mut last = String::new();
    for _ in 0..50 {
        let (code, _, stderr) = run_cli(&srv, ALICE.secret, &["sessions", "create"]);
        if code == 1 && stderr.contains("HTTP 503") {
            assert!(
                stderr
                    .starts_with("attachd: the server is unavailable (HTTP 503 audit_unavailable")
                    && stderr.lines().count() == 1,
                "{stderr:?}"
            );
            return;
        }
        last = stderr;
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no 503 from a server whose audit log cannot be written: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_create_delete_as_tables_and_json() {
    let srv = Server::start(Opts::default());
    let tok = ALICE.secret;
    let (code, out, err) = run_cli(
        &srv,
        tok,
        &["sessions", "create", "--name", "build box", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).expect("create --json parses");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["name"], "build box");
    let (_, quiet, _) = run_cli(&srv, tok, &["sessions", "create", "-q"]);
    let second = quiet.trim().to_string();
    assert!(
        second.starts_with("s-") && !second.contains(' '),
        "{quiet:?}"
    );

    let (code, out, _) = run_cli(&srv, tok, &["sessions", "list", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).expect("list --json parses");
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&second.as_str()),
        "{list}"
    );

    let (_, table, _) = run_cli(&srv, tok, &["sessions", "list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{table}");
    assert!(
        table.contains(&id) && table.contains("build box") && table.contains("/bin/sh"),
        "{table}"
    );

    let (code, out, _) = run_cli(&srv, tok, &["sessions", "delete", &id, "--json"]);
    assert_eq!(code, 0);
    let gone: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(gone, json!({"id": id, "deleted": true}));
    let (_, out, _) = run_cli(&srv, tok, &["sessions", "list", "--json"]);
    assert!(!out.contains(&id), "{out}");
    let (code, _, err) = run_cli(&srv, tok, &["sessions", "delete", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 404"), "{err}");
}

/// A private CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is required for this test (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=attachd test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "cert.csr"]);
    openssl(&csr);
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    let srv = Server::start(Opts::default().tls_files(&cert, &key));
    let https = format!("https://127.0.0.1:{}", srv.port);
    let ca = ca.to_str().unwrap();
    let (code, _, err) = run_cli(
        &srv,
        ALICE.secret,
        &["sessions", "list", "--server", &https],
    );
    assert_eq!(code, 1, "the system roots must not trust a private CA");
    assert!(
        err.contains("cannot reach the server") && err.contains("certificate"),
        "{err}"
    );
    let (code, out, err) = run_cli(
        &srv,
        ALICE.secret,
        &[
            "sessions", "create", "-q", "--server", &https, "--cacert", ca,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let sid = out.trim().to_string();
    tokio::task::block_in_place(|| {
        let mut cli = CliPty::attach_at(&https, &srv, &ALICE, &sid, &["--cacert", ca]);
        attached(&cli);
        cli.run_then_exit(3);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_input_drives_a_session_without_a_terminal() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let url = srv.url("");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(bin())
            .args(["attach", &sid])
            .env("ATTACHD_SERVER", url)
            .env("ATTACHD_TOKEN", ALICE.secret)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Typed ahead of the connection: held until `hello` says this client holds control.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"echo \"[$((8*8))]\"; exit 5\n").unwrap();
        let waited = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                drop(stdin);
                let out = child.wait_with_output().unwrap();
                return (st.code(), out.stdout, out.stderr);
            }
            if waited.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("the client did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    let (code, stdout, stderr) = out;
    let stdout = String::from_utf8_lossy(&stdout);
    assert_eq!(
        code,
        Some(5),
        "{stdout:?} {:?}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(stdout.contains("[64]"), "{stdout:?}");
    assert!(stderr.is_empty(), "{:?}", String::from_utf8_lossy(&stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tilde_dot_while_reconnecting_detaches_and_restores() {
    let srv = Server::start(Opts::default());
    let sid = srv.api(&ALICE).create_session().await;
    let proxy = CutProxy::start(srv.port).await;
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let mut cli = CliPty::attach_at(&via, &srv, &ALICE, &sid, &[]);
    tokio::task::block_in_place(|| attached(&cli));
    proxy.cut();
    tokio::task::block_in_place(|| {
        cli.expect("reconnecting", 10);
        cli.type_keys("~.");
        assert_eq!(cli.wait(10), 0);
        cli.expect("detached", 5);
        assert_eq!(
            cli.before,
            cli.stty(),
            "the terminal's mode was not restored"
        );
    });
}
