//! The recorder end to end inside one process: a tap's events become an asciicast file whose
//! chunks verify against the audit records, rotation by size, and the retention sweep.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::verify::{verify_dir, ChunkIndex};
use super::*;
use crate::audit::{chain_files, AuditConfig};

fn start(dir: &Path, max_file_bytes: u64) -> (Audit, Recorder) {
    let audit = Audit::start(AuditConfig {
        path: dir.join("audit.log"),
        max_file_bytes: 1 << 20,
    })
    .unwrap();
    let cfg = RecorderConfig::new(
        dir.join("recordings"),
        RecordingMode::Output,
        max_file_bytes,
        Duration::from_secs(3600),
    );
    let rec = Recorder::start(cfg, audit.clone()).unwrap();
    (audit, rec)
}

#[test]
fn a_tap_becomes_a_verified_asciicast_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let sys = actix::System::new();
    sys.block_on(async {
        let (audit, rec) = start(dir.path(), 4096);
        let tap = rec.open("s-1", "acme", 80, 24);
        tap.marker("join driver alice".into());
        // About 10 KB: output that arrives together is one event, so the files rotate by
        // their content.
        for i in 0..1000 {
            tap.output(&Bytes::from(format!("line {i}\r\n")));
        }
        tap.input(&Bytes::from_static(b"secret input"));
        tap.resize(100, 30);
        rec.seal_all(Duration::from_secs(5)).await;
        drop(tap);
        tokio::time::sleep(Duration::from_millis(300)).await;
        audit.flush().await.unwrap();
        let idx = ChunkIndex::load(&chain_files(&dir.path().join("audit.log")).unwrap()).unwrap();
        let report = verify_dir(&idx, &dir.path().join("recordings"));
        assert!(report.ok, "{report:?}");
        let files = names::list_files(&dir.path().join("recordings"), "acme", "s-1").unwrap();
        assert!(files.len() >= 2, "rotated at 4 KiB: {files:?}");
        let mut all = String::new();
        let mut last_t = 0;
        for (f, _) in &files {
            let text =
                std::fs::read_to_string(dir.path().join("recordings/acme/s-1").join(f)).unwrap();
            let (h, ev) = cast::parse(&text).unwrap();
            assert_eq!(h.title, "s-1");
            assert!(h.timestamp >= last_t, "files sort by start");
            last_t = h.timestamp;
            assert!(
                ev.iter().all(|e| e.code != "i"),
                "output mode records no input"
            );
            for e in ev.iter().filter(|e| e.code == "o") {
                all.push_str(&e.data);
            }
        }
        let expected: String = (0..1000).map(|i| format!("line {i}\r\n")).collect();
        assert_eq!(all, expected, "every byte, in order, across rotations");
        assert!(rec.health().is_ok());
    });
}

#[test]
fn retention_deletes_only_expired_files() {
    let dir = tempfile::tempdir().unwrap();
    let rdir = dir.path().join("r");
    let sdir = rdir.join("acme").join("s-1");
    std::fs::create_dir_all(&sdir).unwrap();
    let old = sdir.join(names::new_file_name(SystemTime::now()));
    let young = sdir.join(names::new_file_name(SystemTime::now()));
    let active_old = sdir.join(names::new_file_name(SystemTime::now()));
    for p in [&old, &young, &active_old] {
        std::fs::write(p, b"{}\n").unwrap();
    }
    let past = SystemTime::now() - Duration::from_secs(7200);
    for p in [&old, &active_old] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    let active = Active::default();
    active.add(active_old.clone());
    let expired: Vec<PathBuf> = retention::expired(&rdir, Duration::from_secs(3600), &active)
        .into_iter()
        .map(|f| f.3)
        .collect();
    assert_eq!(expired, vec![old]);
}
