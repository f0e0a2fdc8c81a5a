//! One server per config directory: the pid file and its flock (the
//! server's side), and [`notify`] (berthd's side).
//!
//! The rules that make "never two, never none" hold without a lock of
//! berthd's own:
//! - The server holds an exclusive flock on `berth-dns.pid` for as long as
//!   it serves; a live holder is the server, whatever else the file says.
//! - The server that finds no config left closes its sockets, unlinks the
//!   pid file (still locked), then lists the directory once more: a config
//!   written meanwhile makes it take a new pid file and serve on.
//! - [`notify`] runs after its config is in place: it signals the holder
//!   of the pid file it opened and then checks that this file is still the
//!   one at the path; if not, the server was leaving, and it looks again.
//!   With no holder and configs present it starts a server; a server that
//!   lost the race for the lock says so (exit code [`EXIT_BUSY`]) and
//!   notify signals the winner instead.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use crate::config::config_files;
use crate::Error;

/// The server's pid file (and lock) in the config directory.
pub const PID_FILE: &str = "berth-dns.pid";
/// Where the detached server's stdout and stderr go, in the config directory.
pub const LOG_FILE: &str = "berth-dns.log";
/// The exit code of a `berth-dns` that found another serving its directory.
pub const EXIT_BUSY: i32 = 3;

/// How long a starting server retries the lock: notify's probe holds it
/// for an instant, which must not look like a live server.
const LOCK_TRIES: u32 = 100;
const LOCK_RETRY: Duration = Duration::from_millis(10);
/// How long notify waits for a started server to report.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times notify looks again after a race.
const NOTIFY_TRIES: u32 = 5;

/// The running server's hold on its directory.
#[derive(Debug)]
pub struct PidLock {
    file: File,
    path: PathBuf,
}

impl PidLock {
    /// Takes `dir`'s pid file, locked, with our pid in it.
    /// [`Error::Busy`] when another process holds it.
    pub fn acquire(dir: &Path) -> Result<PidLock, Error> {
        let path = dir.join(PID_FILE);
        let io = |what: &'static str| {
            let path = path.clone();
            move |source| Error::Io { what, path, source }
        };
        for _ in 0..LOCK_TRIES {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .map_err(io("opening"))?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => {
                    std::thread::sleep(LOCK_RETRY);
                    continue;
                }
                Err(e) => return Err(io("locking")(e.into())),
            }
            if !still_linked(&file, &path) {
                // A leaving server unlinked it between our open and lock.
                continue;
            }
            file.set_len(0).map_err(io("truncating"))?;
            (&file)
                .write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io("writing"))?;
            return Ok(PidLock { file, path });
        }
        Err(Error::Busy(dir.to_path_buf()))
    }

    /// Gives the directory up: the pid file goes, the lock stays held
    /// until this value is dropped (or the process exits).
    pub fn unlink(&self) {
        if still_linked(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `file` is still the file at `path`.
fn still_linked(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The live server of `dir`, if any: its pid and the pid file it holds.
fn live_server(dir: &Path) -> Result<Option<(rustix::process::Pid, File)>, Error> {
    let path = dir.join(PID_FILE);
    let io = |what: &'static str| {
        let path = path.clone();
        move |source| Error::Io { what, path, source }
    };
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("opening")(e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        // Nobody holds it: no server (our shared lock goes with `file`).
        Ok(()) => return Ok(None),
        Err(Errno::WOULDBLOCK) => {}
        Err(e) => return Err(io("testing the lock of")(e.into())),
    }
    // Held: the holder writes its pid right after taking the lock.
    for _ in 0..LOCK_TRIES {
        let mut text = String::new();
        use std::io::Seek;
        file.rewind().map_err(io("reading"))?;
        (&mut file)
            .take(32)
            .read_to_string(&mut text)
            .map_err(io("reading"))?;
        if let Some(pid) = text
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            return Ok(Some((pid, file)));
        }
        std::thread::sleep(LOCK_RETRY);
    }
    Err(Error::Start {
        binary: PathBuf::from("berth-dns"),
        dir: dir.to_path_buf(),
        reason: format!("{path:?} is locked but names no process"),
    })
}

/// Makes the server of `dir` serve what `dir` now holds: sends SIGHUP to
/// the live one, or, when none runs and configs exist, starts `binary`
/// (`berth-dns --config-dir DIR`, which detaches itself) and waits until
/// it serves. Never leaves two servers for one directory. Call it after
/// every [`crate::write_network`] or [`crate::remove_network`].
pub fn notify(dir: &Path, binary: &Path) -> Result<(), Error> {
    for _ in 0..NOTIFY_TRIES {
        if let Some((pid, file)) = live_server(dir)? {
            let sent = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
            if sent.is_ok() && still_linked(&file, &dir.join(PID_FILE)) {
                return Ok(());
            }
            // It was leaving (or gone): look again.
            std::thread::sleep(LOCK_RETRY);
            continue;
        }
        if config_files(dir)?.is_empty() {
            return Ok(());
        }
        match start(dir, binary)? {
            Started::Serving => return Ok(()),
            Started::Busy => continue,
        }
    }
    Err(Error::Start {
        binary: binary.to_path_buf(),
        dir: dir.to_path_buf(),
        reason: format!(
            "no server took the directory after {NOTIFY_TRIES} tries; see {:?}",
            dir.join(LOG_FILE)
        ),
    })
}

enum Started {
    /// Serving (or found nothing to serve and left).
    Serving,
    /// Another server won the lock.
    Busy,
}

/// Runs `binary --config-dir dir` and waits for its launcher, which exits
/// once the detached server serves (or failed).
fn start(dir: &Path, binary: &Path) -> Result<Started, Error> {
    let fail = |reason: String| Error::Start {
        binary: binary.to_path_buf(),
        dir: dir.to_path_buf(),
        reason,
    };
    let child = Command::new(binary)
        .arg("--config-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(START_TIMEOUT) {
        Ok(r) => r.map_err(|e| fail(format!("waiting for it: {e}")))?,
        Err(_) => {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            return Err(fail(format!(
                "it did not report within {}s",
                START_TIMEOUT.as_secs()
            )));
        }
    };
    match out.status.code() {
        Some(0) => Ok(Started::Serving),
        Some(EXIT_BUSY) => Ok(Started::Busy),
        _ => {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg.trim().trim_start_matches("berth-dns: ");
            Err(fail(if msg.is_empty() {
                format!("it exited with {}", out.status)
            } else {
                msg.to_string()
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let lock = PidLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // flock belongs to the open file description: a second open in the
        // same process conflicts as another process's would.
        assert!(matches!(PidLock::acquire(dir.path()), Err(Error::Busy(_))));
        let (pid, _) = live_server(dir.path()).unwrap().unwrap();
        assert_eq!(pid.as_raw_nonzero().get() as u32, std::process::id());
        lock.unlink();
        assert!(live_server(dir.path()).unwrap().is_none());
        // The directory is free for a new holder while the old one leaves.
        let again = PidLock::acquire(dir.path()).unwrap();
        drop(lock);
        assert!(live_server(dir.path()).unwrap().is_some());
        drop(again);
        assert!(live_server(dir.path()).unwrap().is_none());
    }

    #[test]
    fn notify_without_configs_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        notify(dir.path(), Path::new("/nonexistent/berth-dns")).unwrap();
        assert!(!dir.path().join(PID_FILE).exists());
    }

    #[test]
    fn notify_reports_a_binary_that_cannot_start() {
        let dir = tempfile::tempdir().unwrap();
        crate::write_network(dir.path(), &crate::config::tests_sample("n1")).unwrap();
        let err = notify(dir.path(), Path::new("/nonexistent/berth-dns")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/berth-dns"), "{text}");
    }
}
