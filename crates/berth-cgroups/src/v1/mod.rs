//! The cgroup v1 backend: one directory per mounted hierarchy, plus (on a
//! hybrid host) a directory in the cgroup2 mount for the controllers that
//! live there.
//!
//! The container joins every mounted hierarchy, named ones (name=systemd)
//! included, as a forked process would: leaving one out would leave the
//! container in the runtime's own cgroup there.

pub(crate) mod resources;
mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::error::Error;
use crate::fsutil;
use crate::layout::V1Hierarchy;
use crate::stats::Stats;
use crate::v2::{resources::Target, V2Cgroup};
use crate::{CgroupManager, FreezerState};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct V1Manager {
    pub dirs: Vec<(V1Hierarchy, PathBuf)>,
    /// Hybrid only: the cgroup2 part and the controllers its mount offers.
    pub unified: Option<(V2Cgroup, Vec<String>)>,
    /// For error messages: what this host has.
    pub layout: String,
}

impl V1Manager {
    pub(crate) fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.has(controller))
            .map(|(_, d)| d.as_path())
    }

    /// The directory of `controller`, or an error naming `field`.
    pub(crate) fn need(&self, controller: &str, field: &str) -> Result<&Path, Error> {
        self.dir(controller).ok_or_else(|| {
            Error::unavailable(
                field,
                format!(
                    "the {controller} controller is not mounted on this host ({})",
                    self.layout
                ),
            )
        })
    }

    /// The cgroup2 part as a planning target (hybrid only).
    pub(crate) fn unified_target(&self) -> Result<Option<Target>, Error> {
        match &self.unified {
            Some((cg, _)) => Target::read(&cg.dir, &cg.mount_point).map(Some),
            None => Ok(None),
        }
    }

    fn unified_has(&self, controller: &str) -> bool {
        self.unified
            .as_ref()
            .is_some_and(|(_, ctrls)| ctrls.iter().any(|c| c == controller))
    }

    fn check_created(&self) -> Result<(), Error> {
        for (_, dir) in &self.dirs {
            if !dir.is_dir() {
                return Err(Error::NotCreated { path: dir.clone() });
            }
        }
        Ok(())
    }

    fn set_frozen(&self, dir: &Path, frozen: bool) -> Result<(), Error> {
        let file = dir.join("freezer.state");
        let (value, want) = if frozen {
            ("FROZEN", FreezerState::Frozen)
        } else {
            ("THAWED", FreezerState::Thawed)
        };
        let start = Instant::now();
        let mut delay = Duration::from_micros(200);
        let mut round = 0u32;
        loop {
            // Re-writing FROZEN nudges the kernel to retry tasks that were
            // not freezable on the previous pass (e.g. in vfork).
            if round == 0 {
                fsutil::write(&file, value).map_err(|e| Error::io("writing", &file, e))?;
            }
            round = (round + 1) % 10;
            let state = read_v1_state(&file)?;
            if state == want {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                if frozen {
                    let _ = fsutil::write(&file, "THAWED");
                }
                return Err(Error::FreezeTimeout {
                    op: if frozen { "freezing" } else { "thawing" },
                    path: dir.to_path_buf(),
                    state: format!("{state:?}"),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }
}

fn read_v1_state(file: &Path) -> Result<FreezerState, Error> {
    let text = fsutil::read_string(file)?;
    match text.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::BadContent {
            path: file.to_path_buf(),
            content: other.chars().take(80).collect(),
            reason: "expected THAWED, FREEZING or FROZEN".into(),
        }),
    }
}

/// mkdir -p below the mount point. In the cpuset hierarchy a new cgroup
/// starts with no CPUs and no memory nodes, and the kernel refuses to put a
/// process there, so each level inherits its parent's lists when empty.
fn create_v1(h: &V1Hierarchy, dir: &Path) -> Result<(), Error> {
    let rel = dir
        .strip_prefix(&h.mount_point)
        .map_err(|_| Error::InvalidPath {
            path: dir.display().to_string(),
            reason: format!("not under the hierarchy mount {}", h.mount_point.display()),
        })?;
    let cpuset = h.has("cpuset");
    let mut current = h.mount_point.clone();
    for comp in rel.components() {
        let parent = current.clone();
        current.push(comp);
        match std::fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("creating cgroup", &current, e)),
        }
        if cpuset {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let mine = current.join(file);
                if fsutil::read_string(&mine)?.trim().is_empty() {
                    let theirs = fsutil::read_string(&parent.join(file))?;
                    fsutil::write(&mine, theirs.trim())
                        .map_err(|e| Error::io("initialising", &mine, e))?;
                }
            }
        }
    }
    Ok(())
}

impl CgroupManager for V1Manager {
    fn create(&self) -> Result<(), Error> {
        for (h, dir) in &self.dirs {
            create_v1(h, dir)?;
        }
        if let Some((cg, _)) = &self.unified {
            cg.create()?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<(), Error> {
        crate::check_pid(pid)?;
        self.check_created()?;
        for (_, dir) in &self.dirs {
            let path = dir.join("cgroup.procs");
            fsutil::write(&path, &pid.to_string())
                .map_err(|e| Error::io("adding a process to", path, e))?;
        }
        if let Some((cg, _)) = &self.unified {
            cg.add_process(pid)?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        self.check_created()?;
        resources::plan(self, r)?.execute()
    }

    fn freeze(&self) -> Result<(), Error> {
        match (self.dir("freezer"), &self.unified) {
            (Some(dir), _) => self.set_frozen(dir, true),
            (None, Some((cg, _))) => cg.set_frozen(true),
            (None, None) => Err(self.missing("freezing", "freezer")),
        }
    }

    fn thaw(&self) -> Result<(), Error> {
        match (self.dir("freezer"), &self.unified) {
            (Some(dir), _) => self.set_frozen(dir, false),
            (None, Some((cg, _))) => cg.set_frozen(false),
            (None, None) => Err(self.missing("thawing", "freezer")),
        }
    }

    fn freezer_state(&self) -> Result<FreezerState, Error> {
        match (self.dir("freezer"), &self.unified) {
            (Some(dir), _) => {
                if !dir.is_dir() {
                    return Err(Error::NotCreated {
                        path: dir.to_path_buf(),
                    });
                }
                read_v1_state(&dir.join("freezer.state"))
            }
            (None, Some((cg, _))) => cg.freezer_state(),
            (None, None) => Err(self.missing("reading the freezer state", "freezer")),
        }
    }

    fn pids(&self) -> Result<Vec<i32>, Error> {
        // Every hierarchy holds the same processes; pick a stable one.
        let dir = ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()));
        match (dir, &self.unified) {
            (Some(dir), _) => fsutil::pids_recursive(dir),
            (None, Some((cg, _))) => cg.pids(),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn stats(&self) -> Result<Stats, Error> {
        self.check_created()?;
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            stats::cpuacct(d, &mut s)?;
        }
        if let Some(d) = self.dir("cpu") {
            stats::cpu(d, &mut s)?;
        }
        if let Some(d) = self.dir("memory") {
            stats::memory(d, &mut s)?;
        }
        if let Some(d) = self.dir("pids") {
            stats::pids(d, &mut s)?;
        }
        if let Some(d) = self.dir("blkio") {
            stats::blkio(d, &mut s)?;
        }
        if let Some(d) = self.dir("hugetlb") {
            stats::hugetlb(d, &mut s)?;
        } else if self.unified_has("hugetlb") {
            if let Some((cg, _)) = &self.unified {
                let mut v2 = Stats::default();
                cg.stats(&mut v2)?;
                s.hugetlb = v2.hugetlb;
            }
        }
        Ok(s)
    }

    fn destroy(&self) -> Result<(), Error> {
        // Try every hierarchy even if one fails, so a retry has less to do.
        let mut first_err = None;
        for (_, dir) in &self.dirs {
            if let Err(e) = fsutil::remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        if let Some((cg, _)) = &self.unified {
            if let Err(e) = cg.destroy() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn kill_all(&self) -> Result<(), Error> {
        self.check_created()?;
        // The container's processes are in the cgroup2 part too, and
        // cgroup.kill there is atomic.
        if let Some((cg, _)) = self.unified.as_ref().filter(|(cg, _)| cg.has_kill_file()) {
            return cg.kill_all();
        }
        match self.dir("freezer") {
            Some(dir) => {
                crate::kill::freeze_signal_thaw(|f| self.set_frozen(dir, f), || self.pids())
            }
            None => crate::kill::freeze_signal_thaw(
                |_| Err(self.missing("freezing", "freezer")),
                || self.pids(),
            ),
        }
    }

    fn oom_kill_count(&self) -> Result<u64, Error> {
        let Some(dir) = self.dir("memory") else {
            return Err(self.missing("reading the OOM kill count", "memory"));
        };
        if !dir.is_dir() {
            return Err(Error::NotCreated {
                path: dir.to_path_buf(),
            });
        }
        crate::read_oom_kill_count(&dir.join("memory.oom_control"))
    }

    fn oom_kill_file(&self) -> Option<PathBuf> {
        self.dir("memory").map(|d| d.join("memory.oom_control"))
    }

    fn entry(&self) -> Result<crate::Entry, Error> {
        let v1_dirs: Vec<&Path> = self.dirs.iter().map(|(_, d)| d.as_path()).collect();
        crate::Entry::open(&v1_dirs, self.unified.as_ref().map(|(cg, _)| cg))
    }

    fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.dirs.iter().map(|(_, d)| d.clone()).collect();
        if let Some((cg, _)) = &self.unified {
            out.push(cg.dir.clone());
        }
        out
    }
}

impl V1Manager {
    fn missing(&self, op: &'static str, controller: &'static str) -> Error {
        Error::MissingController {
            op,
            controller,
            layout: self.layout.clone(),
        }
    }
}
