//! The command-line client on the slave side of a real PTY the test holds the master of:
//! spawning, typing, reading what the terminal shows, `stty -a` from outside, exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

use crate::support::*;

/// The client running on the slave side of a PTY the test holds the master of.
pub struct CliPty {
    pub master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    pub child: Box<dyn Child + Send + Sync>,
    out: Arc<Mutex<Vec<u8>>>,
    /// `stty -a` of the terminal before the client started.
    pub before: String,
}

pub fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl CliPty {
    /// Runs `program args` on a fresh `cols`x`rows` PTY with `env`, in `dir`.
    pub fn spawn(program: &str, args: &[&str], env: &[(&str, &str)], dir: &Path) -> CliPty {
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
    pub fn attach(srv: &Server, tok: &Tok, sid: &str, extra: &[&str]) -> CliPty {
        CliPty::attach_at(&srv.url(""), srv, tok, sid, extra)
    }

    /// The same through `server` (a proxy, or `https://`).
    pub fn attach_at(server: &str, srv: &Server, tok: &Tok, sid: &str, extra: &[&str]) -> CliPty {
        CliPty::attach_env(server, srv, tok, sid, extra, &[])
    }

    /// `attach_at` with more environment variables.
    pub fn attach_env(
        server: &str,
        srv: &Server,
        tok: &Tok,
        sid: &str,
        extra: &[&str],
        more_env: &[(&str, &str)],
    ) -> CliPty {
        let bin = bin();
        let mut args = vec!["attach", sid];
        args.extend_from_slice(extra);
        let mut env = vec![("ATTACHD_TOKEN", tok.secret), ("ATTACHD_SERVER", server)];
        env.extend_from_slice(more_env);
        CliPty::spawn(bin.to_str().unwrap(), &args, &env, srv.dir.path())
    }

    /// Runs a command in the session, then `exit <code>`: the client exits with it.
    pub fn run_then_exit(&mut self, code: u32) {
        self.shell_until("$((6*7))", "42", 10);
        self.type_keys(&format!("exit {code}\r"));
        assert_eq!(self.wait(10), code, "{:?}", self.text());
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Everything the terminal received so far, as bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    /// Waits until the output (from the start) contains `needle`; returns all of it.
    pub fn expect(&self, needle: &str, secs: u64) -> String {
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

    /// Waits until the output contains `needle` at least `times` times.
    pub fn expect_times(&self, needle: &str, times: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.text().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not {times} times within {secs} s; the terminal shows:\n{:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Types `echo "[<expr>]"` until its output shows `[<want>]` (a resize travels on its own).
    pub fn shell_until(&mut self, expr: &str, want: &str, secs: u64) {
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
    pub fn wait(&mut self, secs: u64) -> u32 {
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
    pub fn stty(&self) -> String {
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
pub fn attached(cli: &CliPty) {
    cli.expect("\x1bc", 10);
}

/// Runs a non-interactive client command; (status, stdout, stderr).
pub fn run_cli(srv: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
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
