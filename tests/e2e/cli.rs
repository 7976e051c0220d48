//! The command-line client (`attachd attach`, `attachd sessions`) driven inside real PTYs
//! against a real attachd: typing, resizes, `~.`, exit codes, reconnects, refusals, TLS.
//!
//! Over 500 lines: each case drives the client in its own PTY, and reads top to bottom beside the
//! PTY harness it uses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use serde_json::{json, Value};

use crate::support::*;

/// The client running on the slave side of a PTY the test holds the master of.
struct CliPty {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    out: Arc<Mutex<Vec<u8>>>,
    /// `stty -a` of the terminal before the client started.
    before: String,
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl CliPty {
    /// Runs `program args` on a fresh `cols`x`rows` PTY with `env`, in `dir`.
    fn spawn(program: &str, args: &[&str], env: &[(&str, &str)], dir: &Path) -> CliPty {
        let pair = native_pty_system()
            .openpty(pty_size(80, 24))
            .expect("openpty");
        let before = stty(pair.master.as_ref());
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.cwd(dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn in the PTY");
        drop(pair.slave);
        let out = collect(vec![pair.master.try_clone_reader().expect("reader")]);
        let writer = pair.master.take_writer().expect("writer");
        CliPty {
            master: pair.master,
            writer,
            child,
            out,
            before,
        }
    }

    /// `attachd attach <sid> extra…` as `tok` against `srv`.
    fn attach(srv: &Server, tok: &Tok, sid: &str, extra: &[&str]) -> CliPty {
        CliPty::attach_at(&srv.url(""), srv, tok, sid, extra)
    }

    /// The same through `server` (a proxy, or `https://`).
    fn attach_at(server: &str, srv: &Server, tok: &Tok, sid: &str, extra: &[&str]) -> CliPty {
        let bin = bin();
        let mut args = vec!["attach", sid];
        args.extend_from_slice(extra);
        CliPty::spawn(
            bin.to_str().unwrap(),
            &args,
            &[("ATTACHD_TOKEN", tok.secret), ("ATTACHD_SERVER", server)],
            srv.dir.path(),
        )
    }

    /// Runs a command in the session, then `exit <code>`: the client exits with it.
    fn run_then_exit(&mut self, code: u32) {
        self.shell_until("$((6*7))", "42", 10);
        self.type_keys(&format!("exit {code}\r"));
        assert_eq!(self.wait(10), code, "{:?}", self.text());
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until the output (from the start) contains `needle`; returns all of it.
    fn expect(&self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {secs} s; the terminal shows:\n{t:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Types `echo "[<expr>]"` until its output shows `[<want>]` (a resize travels on its own).
    fn shell_until(&mut self, expr: &str, want: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let needle = format!("[{want}]");
        loop {
            self.type_keys(&format!("echo \"[{expr}]\"\r"));
            let seen = Instant::now() + Duration::from_millis(700);
            while Instant::now() < seen {
                if self.text().contains(&needle) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?}; the terminal shows:\n{:?}",
                self.text()
            );
        }
    }

    /// The client's exit status, within `secs`.
    fn wait(&mut self, secs: u64) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.exit_code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the client did not exit; the terminal shows:\n{:?}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `stty -a` of the PTY now.
    fn stty(&self) -> String {
        stty(self.master.as_ref())
    }
}

/// `stty -a` of a PTY, read from outside whatever runs on it.
fn stty(master: &(dyn MasterPty + Send)) -> String {
    let tty: PathBuf = master.tty_name().expect("tty name");
    let out = Command::new("stty")
        .arg("-F")
        .arg(&tty)
        .arg("-a")
        .output()
        .expect("stty (coreutils) is required");
    assert!(
        out.status.success(),
        "stty: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for CliPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The client has its `hello` and the session's snapshot (the reset before it).
fn attached(cli: &CliPty) {
    cli.expect("\x1bc", 10);
}

/// Runs a non-interactive client command; (status, stdout, stderr).
fn run_cli(srv: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("ATTACHD_SERVER", srv.url(""))
        .env("ATTACHD_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run attachd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
        let deadline = Instant::now() + Duration::from_secs(10);
        while cli.text().matches("reconnecting").count() == before {
            assert!(Instant::now() < deadline, "{:?}", cli.text());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(cli.wait(40), 255);
        cli.expect("no such session in your tenant", 5);
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
