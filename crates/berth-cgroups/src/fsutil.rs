//! Reading and writing cgroupfs files, with the path in every error.
//!
//! cgroupfs files are small and synthesized by the kernel on read, so each
//! read is a single bounded `read`; the size cap keeps a bind-mounted regular
//! file in place of a cgroup from making us allocate without bound.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Larger than any cgroup control file we read (memory.stat is ~2 KiB,
/// cgroup.procs of a busy cgroup can be large: 4 MiB is ~500k pids).
const MAX_FILE: u64 = 4 << 20;

pub(crate) fn read_string(path: &Path) -> Result<String, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut out = String::new();
    file.take(MAX_FILE)
        .read_to_string(&mut out)
        .map_err(|e| Error::io("reading", path, e))?;
    Ok(out)
}

/// Like [`read_string`], but a missing file is `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match read_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), std::io::Error> {
    // cgroupfs parses each write(2) on its own; one write per value, no
    // truncation semantics, and the file must already exist.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// A single unsigned number; "max" (v2) reads as `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, content: &str) -> Result<u64, Error> {
    let t = content.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| Error::BadContent {
        path: path.to_path_buf(),
        content: t.chars().take(80).collect(),
        reason: "expected an unsigned number".into(),
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, Error> {
    let s = read_string(path)?;
    parse_u64(path, &s)
}

pub(crate) fn read_u64_optional(path: &Path) -> Result<Option<u64>, Error> {
    match read_optional(path)? {
        Some(s) => parse_u64(path, &s).map(Some),
        None => Ok(None),
    }
}

/// Flat keyed files ("key value" per line: memory.stat, cpu.stat, memory.events).
pub(crate) fn parse_flat_keyed(path: &Path, content: &str) -> Result<BTreeMap<String, u64>, Error> {
    let mut out = BTreeMap::new();
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else {
            return Err(Error::BadContent {
                path: path.to_path_buf(),
                content: line.chars().take(80).collect(),
                reason: "expected \"key value\"".into(),
            });
        };
        out.insert(k.to_string(), parse_u64(path, v)?);
    }
    Ok(out)
}

pub(crate) fn read_flat_keyed(path: &Path) -> Result<BTreeMap<String, u64>, Error> {
    let s = read_string(path)?;
    parse_flat_keyed(path, &s)
}

/// Process ids in a `cgroup.procs` file.
pub(crate) fn parse_pids(path: &Path, content: &str) -> Result<Vec<i32>, Error> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| Error::BadContent {
                path: path.to_path_buf(),
                content: l.chars().take(80).collect(),
                reason: "expected a pid".into(),
            })
        })
        .collect()
}

/// Every process in `dir` and in the cgroups below it.
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let procs = d.join("cgroup.procs");
        match read_optional(&procs)? {
            Some(s) => out.extend(parse_pids(&procs, &s)?),
            // The cgroup vanished between listing and reading: it had no one left.
            None if d != dir => continue,
            None => {
                return Err(Error::NotCreated {
                    path: dir.to_path_buf(),
                })
            }
        }
        stack.extend(subdirs(&d)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Child cgroups of `dir` (cgroupfs has no symlinks, only dirs and files).
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| Error::io("stat", entry.path(), e))?
            .is_dir();
        if is_dir {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Removes `dir` and every cgroup below it, deepest first. A cgroup still
/// holding processes makes rmdir fail with EBUSY; processes that are exiting
/// leave it a moment later, so we retry briefly before giving up.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), Error> {
    // A container's cgroup rarely has children: try the directory first
    // and list it only when the kernel refuses, sparing cgroupfs a listing
    // of every hierarchy's directory on each delete.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in subdirs(dir)? {
        remove_tree(&child)?;
    }
    const ATTEMPTS: u32 = 8;
    let mut delay = std::time::Duration::from_millis(5);
    for attempt in 1..=ATTEMPTS {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                if attempt == ATTEMPTS {
                    return Err(Error::Busy {
                        path: dir.to_path_buf(),
                        attempts: ATTEMPTS,
                    });
                }
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(Error::io("removing", dir, e)),
        }
    }
    unreachable!("the loop returns on its last attempt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_parses_and_rejects() {
        let p = Path::new("/x/cpu.stat");
        let m = parse_flat_keyed(p, "usage_usec 10\nuser_usec 4\n\n").unwrap();
        assert_eq!(m["usage_usec"], 10);
        assert_eq!(m["user_usec"], 4);
        let err = parse_flat_keyed(p, "usage_usec 10 extra\n").unwrap_err();
        assert!(err.to_string().contains("/x/cpu.stat"), "{err}");
        assert!(parse_flat_keyed(p, "usage_usec ten\n").is_err());
    }

    #[test]
    fn max_reads_as_u64_max() {
        let p = Path::new("/x/pids.max");
        assert_eq!(parse_u64(p, "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, " 42\n").unwrap(), 42);
        assert!(parse_u64(p, "-1").is_err());
    }

    #[test]
    fn pids_parse() {
        let p = Path::new("/x/cgroup.procs");
        assert_eq!(parse_pids(p, "1\n22\n").unwrap(), vec![1, 22]);
        assert!(parse_pids(p, "1\nabc\n").is_err());
    }
}
