//! `pty-echo`: the keystroke round trip through a bare PTY (`stty raw -echo; cat`), no
//! network, blocking reads on a thread of its own: this machine beside the quoted 48 / 163 µs.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::cli::PtyEchoArgs;
use crate::client::micros;
use crate::stats::summary_us;

/// Longest wait for the shell to echo the first probe.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the raw PTY echo.
pub async fn run(a: &PtyEchoArgs, deadline: Duration) -> Result<Value> {
    let a = a.clone();
    tokio::task::spawn_blocking(move || measure(&a, deadline)).await?
}

fn measure(a: &PtyEchoArgs, deadline: Duration) -> Result<Value> {
    let (master, mut child) = crate::pty::open(&a.shell)?;
    let mut writer = master.take_writer()?;
    // Blocking reads on their own thread, chunks to the measuring loop.
    let mut reader = master.try_clone_reader()?;
    let (tx, rx) = mpsc::sync_channel::<u8>(4096);
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            for &b in &buf[..n] {
                if tx.send(b).is_err() {
                    return;
                }
            }
        }
    });
    let wait_for = |key: u8, timeout: Duration| {
        let end = Instant::now() + timeout;
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(b) if b == key => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    };
    writer.write_all(b"stty raw -echo; cat\n")?;
    std::thread::sleep(Duration::from_millis(300));
    while rx.try_recv().is_ok() {}
    writer.write_all(b"#")?;
    if !wait_for(b'#', READY_TIMEOUT) {
        bail!("the terminal never echoed through cat");
    }
    let end = Instant::now() + deadline;
    let mut rtts = Vec::with_capacity(a.keys.samples);
    let mut lost = 0usize;
    for i in 0..a.keys.warmup + a.keys.samples {
        if Instant::now() >= end || lost >= 10 {
            break;
        }
        let key = b'a' + (i % 26) as u8;
        let t0 = Instant::now();
        writer.write_all(&[key])?;
        if wait_for(key, Duration::from_secs(2)) {
            if i >= a.keys.warmup {
                rtts.push(micros(t0.elapsed()));
            }
        } else {
            lost += 1;
        }
        std::thread::sleep(Duration::from_micros(a.keys.gap_us));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop((writer, master));
    let _ = pump.join();
    Ok(json!({"rtt_us": summary_us(&rtts), "lost_samples": lost}))
}
