//! A container's record on disk under the runtime root, and its status.
//!
//! `<root>/<id>/state.json` is written once by `create` (atomically:
//! temp file, fsync, rename) and read by every later command. The status is
//! not stored: it is derived from the kernel each time (is the init process
//! alive, is it still the same process, has `start` consumed the exec fifo,
//! is the cgroup frozen), so a crashed runtime can never leave a stale one.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// The init's start time in clock ticks (from /proc/<pid>/stat), so a
    /// recycled pid is never mistaken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    /// The cgroup path the container was placed in (OCI cgroupsPath, resolved).
    pub cgroups_path: String,
    /// The config the container was created from; exec and update start from it.
    pub spec: Spec,
}

/// The OCI state as `runc state` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

/// The OCI runtime spec version berth reports.
pub const OCI_VERSION: &str = "1.2.0";

/// Rejects ids that could escape the state directory or confuse tools.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId { id: id.to_string() })
    }
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Record {
    pub fn load(root: &Path, id: &str) -> Result<Record> {
        check_id(id)?;
        let path = container_dir(root, id).join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.to_string() })
            }
            Err(e) => return Err(Error::io(format!("reading {path:?}"), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::io(
                format!("reading {path:?}"),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// Writes the record atomically: temp file, fsync, rename, fsync dir.
    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = container_dir(root, &self.id);
        let bytes = serde_json::to_vec(self).expect("a record always serializes");
        write_atomic(&dir.join(STATE_FILE), &bytes, 0o600)
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        container_dir(root, &self.id)
    }

    /// Is the recorded init process still alive (and not a zombie)?
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && matches!(proc_stat(self.pid), Some(s) if s.start_time == self.pid_start_time && s.state != 'Z' && s.state != 'X')
    }

    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.spec.annotations().clone(),
        }
    }
}

/// The fields of /proc/<pid>/stat that berth needs.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces and ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Writes `bytes` to `path` so that readers see the old or the new content,
/// never a mix: a temp file renamed into place. No fsync: runtime state
/// describes live processes and lives in /run, so it has no meaning after
/// a power loss, and an fsync costs milliseconds on the start path.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("an atomic write target has a parent");
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .ctx(|| format!("writing {path:?}"))
}

/// The current time as RFC 3339 with nanoseconds (UTC), as runc prints `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    // Civil-from-days (Howard Hinnant's algorithm), valid for all i64 days we meet.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "test_busybox", "x.y-z+1"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_700_000_000, 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn own_stat_parses() {
        let s = proc_stat(std::process::id() as i32).unwrap();
        assert!(matches!(s.state, 'R' | 'S'), "{}", s.state);
        assert!(s.start_time > 0);
    }
}
