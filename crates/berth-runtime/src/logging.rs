//! runc-style logging: `--log FILE` and `--log-format text|json`.
//!
//! containerd and docker read the last error line of the log file (json)
//! to report why the runtime failed, so errors are always written there
//! when a log file is given, and always printed to stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Log {
    pub file: Option<PathBuf>,
    pub json: bool,
    pub debug: bool,
}

impl Log {
    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        self.write("error", msg);
    }

    pub fn warn(&self, msg: &str) {
        eprintln!("berth-runtime: warning: {msg}");
        self.write("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let time = berth_container::state::now_rfc3339();
        let Some(path) = &self.file else {
            // runc: with --debug and no --log, debug lines go to stderr.
            if level == "debug" {
                eprintln!("time={time:?} level={level} msg={msg:?}");
            }
            return;
        };
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}
