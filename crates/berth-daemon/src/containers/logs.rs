//! `GET /containers/{id}/logs`: the json-file log the shim writes
//! (`<id>-json.log` and its rotated `.1`, `.2`, ... older files), filtered
//! and framed as docker does; with `follow`, new lines as they come until
//! the container stops.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::engine::Engine;

/// How often `follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// The longest log line accepted when reading (the shim cuts at 16 KiB of
/// payload; JSON escaping can grow it).
const MAX_LINE: usize = 256 * 1024;

/// The query of a logs request.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// Nanoseconds since the epoch.
    pub since: Option<i128>,
    pub until: Option<i128>,
    /// The last `n` lines only.
    pub tail: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// One parsed line.
struct Line {
    stream: u8,
    time_ns: i128,
    time: String,
    log: String,
}

fn parse(raw: &[u8]) -> Option<Line> {
    let e: Entry = serde_json::from_slice(raw).ok()?;
    let stream = match e.stream.as_str() {
        "stdout" => 1,
        "stderr" => 2,
        _ => return None,
    };
    Some(Line {
        stream,
        time_ns: crate::events::parse_time(&e.time).unwrap_or(0),
        time: e.time,
        log: e.log,
    })
}

/// The log files, oldest first.
fn files(log: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1.. {
        let p = PathBuf::from(format!("{}.{n}", log.display()));
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    rotated.push(log.to_owned());
    rotated
}

impl Engine {
    /// Writes the container's logs to `out`; `tty` output is raw, else
    /// docker's multiplexed frames. Returns when the log is exhausted (or
    /// with `follow`, when the container has stopped and the log is read).
    pub fn write_logs<W: Write>(
        self: &Arc<Self>,
        id: &str,
        tty: bool,
        opts: &LogOptions,
        out: &mut W,
    ) -> std::io::Result<()> {
        let log = self.container_paths(id).log(id);
        let wanted = |l: &Line| {
            (l.stream == 1 && opts.stdout || l.stream == 2 && opts.stderr)
                && opts.since.is_none_or(|s| l.time_ns >= s)
                && opts.until.is_none_or(|u| l.time_ns <= u)
        };
        let emit = |out: &mut W, l: &Line| -> std::io::Result<()> {
            let mut payload = Vec::with_capacity(l.log.len() + 40);
            if opts.timestamps {
                payload.extend_from_slice(l.time.as_bytes());
                payload.push(b' ');
            }
            payload.extend_from_slice(l.log.as_bytes());
            if tty {
                return out.write_all(&payload);
            }
            let kind = if l.stream == 2 {
                berth_api::StreamKind::Stderr
            } else {
                berth_api::StreamKind::Stdout
            };
            let mut framed = Vec::with_capacity(payload.len() + 8);
            berth_api::stream::encode_frames(kind, &payload, &mut framed);
            out.write_all(&framed)
        };
        // The past: every file, oldest first, keeping the last `tail`.
        let mut past: std::collections::VecDeque<Line> = std::collections::VecDeque::new();
        let mut position = None;
        let paths = files(&log);
        let last = paths.len() - 1;
        for (i, p) in paths.iter().enumerate() {
            let Ok(f) = File::open(p) else { continue };
            let inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
            let mut r = BufReader::new(f);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = read_line(&mut r, &mut buf)?;
                if n == 0 || !buf.ends_with(b"\n") {
                    // A partial last line is read again when complete.
                    if i == last {
                        let pos = r.stream_position()? - n as u64;
                        position = Some((inode, pos));
                    }
                    break;
                }
                if let Some(l) = parse(&buf).filter(|l| wanted(l)) {
                    past.push_back(l);
                    if opts.tail.is_some_and(|t| past.len() > t) {
                        past.pop_front();
                    }
                }
            }
        }
        if opts.tail != Some(0) {
            for l in &past {
                emit(out, l)?;
            }
        }
        out.flush()?;
        if !opts.follow {
            return Ok(());
        }
        // The future: poll the live file until the container stops.
        let Some(handle) = self.containers.handles().get(id).cloned() else {
            return Ok(());
        };
        let (mut inode, mut pos) = position.unwrap_or((0, 0));
        let mut buf = Vec::new();
        loop {
            let live = handle.state().status.is_live()
                || handle.state().status == super::Status::Restarting;
            let mut progressed = false;
            if let Ok(mut f) = File::open(&log) {
                let meta = f.metadata()?;
                if meta.ino() != inode || meta.len() < pos {
                    // Rotated or truncated: start the new file from the top.
                    inode = meta.ino();
                    pos = 0;
                }
                f.seek(SeekFrom::Start(pos))?;
                let mut r = BufReader::new(f);
                loop {
                    buf.clear();
                    let n = read_line(&mut r, &mut buf)?;
                    if n == 0 || !buf.ends_with(b"\n") {
                        break;
                    }
                    pos += n as u64;
                    progressed = true;
                    if let Some(l) = parse(&buf).filter(|l| wanted(l)) {
                        if opts.until.is_some_and(|u| l.time_ns > u) {
                            return out.flush();
                        }
                        emit(out, &l)?;
                    }
                }
            }
            out.flush()?;
            if !live && !progressed {
                return Ok(());
            }
            if handle.removed.borrow().to_owned() {
                return Ok(());
            }
            if !progressed {
                std::thread::sleep(FOLLOW_POLL);
            }
        }
    }
}

/// Reads one line, at most [`MAX_LINE`] bytes.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    r.take(MAX_LINE as u64).read_until(b'\n', buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_come_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x-json.log");
        for p in ["x-json.log", "x-json.log.1", "x-json.log.2"] {
            std::fs::write(dir.path().join(p), "").unwrap();
        }
        let names: Vec<String> = files(&log)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x-json.log.2", "x-json.log.1", "x-json.log"]);
        let l =
            parse(br#"{"log":"hi\n","stream":"stderr","time":"2024-01-02T03:04:05.123456789Z"}"#)
                .unwrap();
        assert_eq!(l.stream, 2);
        assert_eq!(l.log, "hi\n");
        assert!(l.time_ns > 0);
        assert!(parse(b"{}").is_none());
    }
}
