//! Audit writer throughput: many concurrent `Audit::record` callers, each waiting for durability,
//! against one caller at a time (no group commit possible) as the baseline.
//!
//! `cargo run --release -p attachd-actors --example audit_throughput -- [callers] [per_caller] [dir]`

use std::path::PathBuf;
use std::time::Instant;

use attachd_actors::audit::{verify_path, Audit, AuditConfig, AuditEvent};

fn event(i: u64) -> AuditEvent {
    AuditEvent::new("attach.disconnect", "ok")
        .subject("bench-user")
        .tenant("bench")
        .session_id(format!("s{}", i % 16))
        .connection_id(format!("c{i}"))
        .role("driver")
        .remote_ip("192.0.2.1")
        .field_u64("duration_ms", i)
        .field_u64("bytes_in", 4096)
        .field_u64("bytes_out", 65536)
        .field_u64("close_code", 1000)
}

async fn run(path: PathBuf, callers: u64, per_caller: u64) -> Result<f64, String> {
    let audit = Audit::start(AuditConfig {
        path: path.clone(),
        max_file_bytes: 64 * 1024 * 1024,
    })
    .map_err(|e| e.to_string())?;
    if !audit.health().is_ok() {
        return Err(format!("audit unhealthy: {:?}", audit.health().snapshot()));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let a = audit.clone();
        tasks.push(actix::spawn(async move {
            for i in 0..per_caller {
                a.record(event(c * per_caller + i))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = start.elapsed().as_secs_f64();
    audit.close().await.map_err(|e| e.to_string())?;
    let report = verify_path(&path);
    if !report.ok {
        return Err(format!("chain does not verify: {report:?}"));
    }
    Ok((callers * per_caller) as f64 / secs)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let callers: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let per_caller: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let base = args.get(3).map(PathBuf::from);
    let dir = match base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    };
    let dir = match dir {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            std::process::exit(1);
        }
    };
    let sys = actix::System::new();
    let result = sys.block_on(async {
        let one = run(dir.path().join("one/audit.log"), 1, 500).await?;
        let many = run(dir.path().join("many/audit.log"), callers, per_caller).await?;
        Ok::<_, String>((one, many))
    });
    match result {
        Ok((one, many)) => {
            println!("1 caller, sequential (one fdatasync per record): {one:.0} events/s");
            println!(
                "{callers} concurrent callers x {per_caller} (group commit): {many:.0} events/s"
            );
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
