//! docker's json-file log driver: one JSON object per line,
//! `{"log":"...\n","stream":"stdout","time":"<RFC 3339, ns>"}`, with
//! `max-size` / `max-file` rotation (`json.log` -> `json.log.1` -> ...).
//!
//! Output is split at newlines; a partial line is kept until its newline
//! arrives or it reaches 16 KiB (docker's limit), then written without one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const MAX_PARTIAL: usize = 16 * 1024;

pub struct Logger {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Unterminated output per stream (index 1 = stdout, 2 = stderr).
    partial: [Vec<u8>; 3],
}

impl Logger {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<Logger> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(Error::path("reading the size of", path))?
            .len();
        Ok(Logger {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: Default::default(),
        })
    }

    /// Logs output of `stream` (1 stdout, 2 stderr).
    pub fn write(&mut self, stream: u8, data: &[u8]) -> Result<()> {
        let s = stream as usize;
        let mut pending = std::mem::take(&mut self.partial[s]);
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            self.entry(stream, &pending[start..end])?;
            start = end;
        }
        while pending.len() - start >= MAX_PARTIAL {
            self.entry(stream, &pending[start..start + MAX_PARTIAL])?;
            start += MAX_PARTIAL;
        }
        pending.drain(..start);
        self.partial[s] = pending;
        Ok(())
    }

    /// Writes out unterminated output (at the stream's end).
    pub fn flush(&mut self, stream: u8) -> Result<()> {
        let pending = std::mem::take(&mut self.partial[stream as usize]);
        if !pending.is_empty() {
            self.entry(stream, &pending)?;
        }
        Ok(())
    }

    fn entry(&mut self, stream: u8, line: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 80);
        buf.extend_from_slice(b"{\"log\":");
        // Invalid UTF-8 becomes U+FFFD, as Go's encoding/json does.
        serde_json::to_writer(&mut buf, &String::from_utf8_lossy(line)).expect("a string encodes");
        buf.extend_from_slice(if stream == 2 {
            b",\"stream\":\"stderr\",\"time\":\""
        } else {
            b",\"stream\":\"stdout\",\"time\":\""
        });
        buf.extend_from_slice(now_rfc3339_nano().as_bytes());
        buf.extend_from_slice(b"\"}\n");
        if self.max_size > 0 && self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(&buf)
            .map_err(Error::path("writing the log", &self.path))?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        if self.max_files > 1 {
            for n in (1..self.max_files).rev() {
                let from = numbered(&self.path, n - 1);
                let to = numbered(&self.path, n);
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::path("rotating the log", &from)(e)),
                }
            }
            self.file = open_append(&self.path)?;
        } else {
            // One file only: start it over, as docker does.
            self.file
                .set_len(0)
                .map_err(Error::path("truncating the log", &self.path))?;
        }
        self.size = 0;
        Ok(())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::path("opening the log", path))
}

/// Now in RFC 3339 with nanoseconds and `Z`, as Go's `time.RFC3339Nano`
/// formats UTC (trailing zeros of the fraction trimmed).
pub fn now_rfc3339_nano() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = berth_container::state::format_rfc3339(now.as_secs() as i64, 0);
    let base = s.trim_end_matches('Z');
    let base = base.split('.').next().unwrap_or(base);
    let frac = format!("{:09}", now.subsec_nanos());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{base}Z")
    } else {
        format!("{base}.{frac}Z")
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("json.log");
        let mut l = Logger::open(&p, 0, 1).unwrap();
        l.write(1, b"one\ntw").unwrap();
        l.write(2, b"err\n").unwrap();
        l.write(1, b"o\nthree").unwrap();
        l.flush(1).unwrap();
        let got: Vec<(String, String)> = lines(&p)
            .iter()
            .map(|v| {
                (
                    v["log"].as_str().unwrap().to_string(),
                    v["stream"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("one\n", "stdout"),
                ("err\n", "stderr"),
                ("two\n", "stdout"),
                ("three", "stdout")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let t = lines(&p)[0]["time"].as_str().unwrap().to_string();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }

    #[test]
    fn rotates_within_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("json.log");
        let mut l = Logger::open(&p, 200, 3).unwrap();
        for i in 0..20 {
            l.write(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(p.exists() && numbered(&p, 1).exists() && numbered(&p, 2).exists());
        assert!(!numbered(&p, 3).exists());
        for n in 0..3 {
            assert!(std::fs::metadata(numbered(&p, n)).unwrap().len() <= 200);
        }
        let last = lines(&p);
        assert_eq!(last.last().unwrap()["log"], "line 19\n");
    }

    #[test]
    fn one_file_is_truncated_not_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("json.log");
        let mut l = Logger::open(&p, 150, 1).unwrap();
        for i in 0..10 {
            l.write(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(!numbered(&p, 1).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 150);
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("json.log");
        let mut l = Logger::open(&p, 0, 1).unwrap();
        l.write(1, &vec![b'x'; MAX_PARTIAL + 10]).unwrap();
        assert_eq!(lines(&p).len(), 1);
        l.flush(1).unwrap();
        assert_eq!(lines(&p)[1]["log"].as_str().unwrap().len(), 10);
    }
}
