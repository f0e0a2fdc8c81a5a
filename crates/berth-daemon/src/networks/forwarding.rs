//! IP forwarding, set while berth needs it and restored after.
//!
//! docker turns `net.ipv4.ip_forward` on and never off. berth restores
//! what it changed once nothing of berth's needs it any more: several
//! daemons may share a host (each with its own exec root), and containers
//! outlive their daemon, so the record is host-wide, under /run (which,
//! like the sysctls, starts fresh at boot):
//!
//! - `turned-on` lists the switches (`ipv4`, `ipv6`) that were off when a
//!   berth daemon turned them on;
//! - `users/<hash of the exec root>` marks a daemon that relies on them.
//!
//! A daemon registers when it turns forwarding on (or finds it on) and
//! unregisters at shutdown unless one of its containers still runs; the
//! last one to leave turns off what `turned-on` lists. A daemon killed
//! with SIGKILL stays registered: forwarding then stays on, the safe side.
//! Forwarding that was on before berth is never touched. All of it happens
//! under an exclusive lock on the directory.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where the host-wide record lives.
pub(crate) const RECORD_DIR: &str = "/run/berth/forwarding";

/// The record in `dir`, locked for as long as this value lives.
pub(crate) struct Record {
    dir: PathBuf,
    _lock: std::fs::File,
}

impl Record {
    pub(crate) fn lock(dir: &Path) -> io::Result<Record> {
        std::fs::create_dir_all(dir.join("users"))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Record {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The switches berth turned on.
    pub(crate) fn turned_on(&self) -> BTreeSet<String> {
        std::fs::read_to_string(self.dir.join("turned-on"))
            .unwrap_or_default()
            .lines()
            .filter(|l| matches!(*l, "ipv4" | "ipv6"))
            .map(str::to_string)
            .collect()
    }

    /// Adds the switches just turned on (they were off) and registers the
    /// daemon of `exec_root` as a user.
    pub(crate) fn acquire(&self, exec_root: &Path, turned: &[&str]) -> io::Result<()> {
        let mut all = self.turned_on();
        let before = all.len();
        all.extend(turned.iter().map(|t| t.to_string()));
        if all.len() != before {
            let body: String = all.iter().map(|t| format!("{t}\n")).collect();
            write_atomic(&self.dir.join("turned-on"), body.as_bytes())?;
        }
        let user = self.user_file(exec_root);
        if !user.exists() {
            write_atomic(&user, exec_root.as_os_str().as_encoded_bytes())?;
        }
        Ok(())
    }

    /// Unregisters the daemon of `exec_root`. When it was the last user,
    /// returns the switches to turn off and forgets them.
    pub(crate) fn release(&self, exec_root: &Path) -> io::Result<BTreeSet<String>> {
        match std::fs::remove_file(self.user_file(exec_root)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if std::fs::read_dir(self.dir.join("users"))?.next().is_some() {
            return Ok(BTreeSet::new());
        }
        let turned = self.turned_on();
        match std::fs::remove_file(self.dir.join("turned-on")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(turned)
    }

    fn user_file(&self, exec_root: &Path) -> PathBuf {
        let hash = Sha256::digest(exec_root.as_os_str().as_encoded_bytes());
        let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join("users").join(name)
    }
}

/// Small files under /run: a reader sees the old content or the new,
/// never a torn one. No fsync: /run does not survive a crash anyway.
fn write_atomic(path: &Path, body: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_daemon_to_leave_restores_what_berth_turned_on() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Path::new("/run/a"), Path::new("/run/b"));
        {
            let r = Record::lock(dir.path()).unwrap();
            r.acquire(a, &["ipv4"]).unwrap();
        }
        {
            // B found IPv4 on (berth's doing) and turned IPv6 on.
            let r = Record::lock(dir.path()).unwrap();
            r.acquire(b, &["ipv6"]).unwrap();
            r.acquire(b, &[]).unwrap();
        }
        let r = Record::lock(dir.path()).unwrap();
        assert!(r.release(a).unwrap().is_empty(), "B still relies on it");
        let restored = r.release(b).unwrap();
        assert_eq!(
            restored.into_iter().collect::<Vec<_>>(),
            ["ipv4", "ipv6"],
            "B was the last"
        );
        assert!(r.turned_on().is_empty(), "forgotten once restored");
        assert!(
            r.release(b).unwrap().is_empty(),
            "a second release is a no-op"
        );
    }

    #[test]
    fn forwarding_that_was_on_before_berth_is_never_restored() {
        let dir = tempfile::tempdir().unwrap();
        let r = Record::lock(dir.path()).unwrap();
        r.acquire(Path::new("/run/a"), &[]).unwrap();
        assert!(r.release(Path::new("/run/a")).unwrap().is_empty());
    }
}
