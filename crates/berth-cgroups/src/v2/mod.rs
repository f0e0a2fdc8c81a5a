//! The cgroup v2 backend: one directory in the unified hierarchy.
//!
//! Used as the whole manager on a pure v2 host, and inside the v1 manager
//! on a hybrid host for the controllers attached to the cgroup2 mount.

pub(crate) mod device_prog;
pub(crate) mod resources;
mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::error::Error;
use crate::fsutil;
use crate::stats::Stats;
use crate::{CgroupManager, FreezerState};

/// How long freeze/thaw wait for the kernel before giving up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct V2Cgroup {
    pub mount_point: PathBuf,
    pub dir: PathBuf,
}

impl V2Cgroup {
    /// mkdir the directory and every missing parent, enabling in each
    /// parent every controller it offers, so the leaf has them all.
    pub(crate) fn create(&self) -> Result<(), Error> {
        let rel = self
            .dir
            .strip_prefix(&self.mount_point)
            .map_err(|_| Error::InvalidPath {
                path: self.dir.display().to_string(),
                reason: format!("not under the cgroup2 mount {}", self.mount_point.display()),
            })?;
        let mut current = self.mount_point.clone();
        for comp in rel.components() {
            enable_all_controllers(&current)?;
            current.push(comp);
            match std::fs::create_dir(&current) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("creating cgroup", &current, e)),
            }
        }
        Ok(())
    }

    pub(crate) fn add_process(&self, pid: i32) -> Result<(), Error> {
        let path = self.dir.join("cgroup.procs");
        if !self.dir.exists() {
            return Err(Error::NotCreated {
                path: self.dir.clone(),
            });
        }
        fsutil::write(&path, &pid.to_string())
            .map_err(|e| Error::io("adding a process to", path, e))
    }

    pub(crate) fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        let target = resources::Target::read(&self.dir, &self.mount_point)?;
        resources::plan(&target, r)?.execute()
    }

    fn freeze_file(&self) -> Result<PathBuf, Error> {
        let f = self.dir.join("cgroup.freeze");
        if f.exists() {
            Ok(f)
        } else if !self.dir.exists() {
            Err(Error::NotCreated {
                path: self.dir.clone(),
            })
        } else {
            Err(Error::MissingController {
                op: "freezing",
                controller: "freezer",
                layout: "this kernel has no cgroup.freeze (needs Linux 5.2)".into(),
            })
        }
    }

    pub(crate) fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let file = self.freeze_file()?;
        let value = if frozen { "1" } else { "0" };
        fsutil::write(&file, value).map_err(|e| Error::io("writing", &file, e))?;
        let want = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        let start = Instant::now();
        let mut delay = Duration::from_micros(200);
        loop {
            let state = self.freezer_state()?;
            if state == want {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                if frozen {
                    // Do not leave a half-frozen container behind.
                    let _ = fsutil::write(&file, "0");
                }
                return Err(Error::FreezeTimeout {
                    op: if frozen { "freezing" } else { "thawing" },
                    path: self.dir.clone(),
                    state: format!("{state:?}"),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }

    pub(crate) fn freezer_state(&self) -> Result<FreezerState, Error> {
        let file = self.freeze_file()?;
        let requested = fsutil::read_string(&file)?;
        let events = fsutil::read_flat_keyed(&self.dir.join("cgroup.events"))?;
        let frozen = events.get("frozen").copied().unwrap_or(0) == 1;
        Ok(match (requested.trim(), frozen) {
            ("0", false) => FreezerState::Thawed,
            ("1", true) => FreezerState::Frozen,
            // Frozen by an ancestor while thaw was asked for, or still freezing.
            ("0", true) => FreezerState::Frozen,
            _ => FreezerState::Freezing,
        })
    }

    pub(crate) fn pids(&self) -> Result<Vec<i32>, Error> {
        fsutil::pids_recursive(&self.dir)
    }

    pub(crate) fn destroy(&self) -> Result<(), Error> {
        fsutil::remove_tree(&self.dir)
    }

    /// true when the kernel has cgroup.kill (Linux 5.14+).
    pub(crate) fn has_kill_file(&self) -> bool {
        self.dir.join("cgroup.kill").exists()
    }

    pub(crate) fn kill_all(&self) -> Result<(), Error> {
        if !self.dir.exists() {
            return Err(Error::NotCreated {
                path: self.dir.clone(),
            });
        }
        if self.has_kill_file() {
            let file = self.dir.join("cgroup.kill");
            return fsutil::write(&file, "1").map_err(|e| Error::io("writing", file, e));
        }
        crate::kill::freeze_signal_thaw(|f| self.set_frozen(f), || self.pids())
    }

    pub(crate) fn oom_kill_count(&self) -> Result<u64, Error> {
        let path = self.dir.join("memory.events");
        match fsutil::read_optional(&path)? {
            Some(text) => Ok(fsutil::parse_flat_keyed(&path, &text)?
                .get("oom_kill")
                .copied()
                .unwrap_or(0)),
            None if !self.dir.exists() => Err(Error::NotCreated {
                path: self.dir.clone(),
            }),
            None => Err(Error::MissingController {
                op: "reading the OOM kill count",
                controller: "memory",
                layout: format!("not enabled for {}", self.dir.display()),
            }),
        }
    }

    pub(crate) fn stats(&self, into: &mut Stats) -> Result<(), Error> {
        stats::read(&self.dir, into)
    }
}

/// Writes "+ctrl" for each controller `dir` offers but has not enabled for
/// its children. Controllers are enabled one at a time and failures are
/// ignored: a cgroup with processes cannot enable domain controllers (the
/// "no internal processes" rule), and apply() reports a missing controller
/// precisely, naming the spec field that needed it.
fn enable_all_controllers(dir: &Path) -> Result<(), Error> {
    let offered = fsutil::read_string(&dir.join("cgroup.controllers"))?;
    let enabled = fsutil::read_string(&dir.join("cgroup.subtree_control"))?;
    let control = dir.join("cgroup.subtree_control");
    for c in offered.split_whitespace() {
        if !enabled.split_whitespace().any(|e| e == c) {
            let _ = fsutil::write(&control, &format!("+{c}"));
        }
    }
    Ok(())
}

/// The manager for a pure cgroup v2 host.
pub(crate) struct V2Manager {
    pub cg: V2Cgroup,
}

impl CgroupManager for V2Manager {
    fn create(&self) -> Result<(), Error> {
        self.cg.create()
    }
    fn add_process(&self, pid: i32) -> Result<(), Error> {
        crate::check_pid(pid)?;
        self.cg.add_process(pid)
    }
    fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        self.cg.apply(r)
    }
    fn freeze(&self) -> Result<(), Error> {
        self.cg.set_frozen(true)
    }
    fn thaw(&self) -> Result<(), Error> {
        self.cg.set_frozen(false)
    }
    fn freezer_state(&self) -> Result<FreezerState, Error> {
        self.cg.freezer_state()
    }
    fn pids(&self) -> Result<Vec<i32>, Error> {
        self.cg.pids()
    }
    fn stats(&self) -> Result<Stats, Error> {
        if !self.cg.dir.exists() {
            return Err(Error::NotCreated {
                path: self.cg.dir.clone(),
            });
        }
        let mut s = Stats::default();
        self.cg.stats(&mut s)?;
        Ok(s)
    }
    fn destroy(&self) -> Result<(), Error> {
        self.cg.destroy()
    }
    fn kill_all(&self) -> Result<(), Error> {
        self.cg.kill_all()
    }
    fn oom_kill_count(&self) -> Result<u64, Error> {
        self.cg.oom_kill_count()
    }
    fn entry(&self) -> Result<crate::Entry, Error> {
        crate::Entry::open(&[], Some(&self.cg))
    }
    fn paths(&self) -> Vec<PathBuf> {
        vec![self.cg.dir.clone()]
    }

    fn oom_kill_file(&self) -> Option<PathBuf> {
        Some(self.cg.dir.join("memory.events"))
    }
}
