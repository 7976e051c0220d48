//! The edge's side of session recording: the recorder built from `recording.*`, and where
//! `attachd audit verify` looks for recordings when `--recordings` is not given.

use std::path::{Path, PathBuf};

use attachd_actors::audit::Audit;
use attachd_actors::recording::{Recorder, RecorderConfig, RecordingMode};

use crate::config::{RecordingModeSetting, RecordingSettings};

/// Starts the recorder, or `None` when `recording.mode = "off"`.
pub fn start(s: &RecordingSettings, audit: Audit) -> Result<Option<Recorder>, String> {
    let mode = match s.mode {
        RecordingModeSetting::Off => return Ok(None),
        RecordingModeSetting::Output => RecordingMode::Output,
        RecordingModeSetting::OutputInput => RecordingMode::OutputInput,
    };
    let cfg = RecorderConfig::new(s.dir.clone(), mode, s.max_file_bytes.as_u64(), s.retention);
    Recorder::start(cfg, audit).map(Some)
}

/// `recordings/` beside the audit file.
pub fn beside(audit_path: &Path) -> PathBuf {
    match audit_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("recordings"),
        _ => PathBuf::from("recordings"),
    }
}

/// `attachd record text FILE`.
pub fn text(file: &Path) -> Result<String, String> {
    let data = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    attachd_actors::recording::text::render(&data)
}
