#![forbid(unsafe_code)]
//! berth's cgroup library for the OCI runtime: our own thin cgroupfs code
//! for cgroup v1, v2 and hybrid hosts. Synchronous on purpose: the runtime
//! forks and clones, and must not link an async runtime.
//!
//! ```no_run
//! # fn main() -> Result<(), berth_cgroups::Error> {
//! let layout = berth_cgroups::detect()?;
//! let cg = berth_cgroups::manager(&layout, None, "my-container")?; // /berth/my-container
//! cg.create()?;
//! cg.add_process(1234)?;
//! # Ok(()) }
//! ```
//!
//! `apply` turns the whole `LinuxResources` into a plan of file writes
//! (and, on cgroup v2, a loaded device eBPF program) before it changes
//! anything, so an invalid value leaves the cgroup as it was; every resource
//! error starts with the spec field, e.g. `linux.resources.memory.limit: ...`.

mod cgpath;
pub mod convert;
mod devices;
mod entry;
mod error;
mod fsutil;
mod hugetlb;
mod kill;
mod layout;
mod plan;
mod procfs;
pub mod stats;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub use cgpath::DEFAULT_PARENT;
pub use entry::{Entry, JoinError};
pub use error::Error;
pub use layout::{detect, mounts_env, Layout, UnifiedHierarchy, V1Hierarchy, MOUNTS_ENV};
pub use stats::Stats;

/// What the freezer reports for a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FreezerState {
    Thawed,
    /// Freezing has been requested and not all tasks are frozen yet.
    Freezing,
    Frozen,
}

/// One container's cgroup, on whatever layout the host has.
pub trait CgroupManager: Send + Sync {
    /// Creates every directory the container needs; idempotent.
    fn create(&self) -> Result<(), Error>;
    /// Moves a process (the container's init, or an `exec`ed process) in.
    fn add_process(&self, pid: i32) -> Result<(), Error>;
    /// Validates all of `r`, then writes it. An invalid or unsupported value
    /// is an error naming the field and nothing is written.
    fn apply(&self, r: &LinuxResources) -> Result<(), Error>;
    /// Freezes every process and waits until the kernel reports frozen.
    fn freeze(&self) -> Result<(), Error>;
    fn thaw(&self) -> Result<(), Error>;
    fn freezer_state(&self) -> Result<FreezerState, Error>;
    /// Every process in the cgroup and in cgroups below it, sorted.
    fn pids(&self) -> Result<Vec<i32>, Error>;
    fn stats(&self) -> Result<Stats, Error>;
    /// Removes the cgroup (and any below it); Ok if already gone. Fails with
    /// [`Error::Busy`] while processes remain.
    fn destroy(&self) -> Result<(), Error>;
    /// Sends SIGKILL to every process in the cgroup and below, so that no
    /// fork in flight escapes: cgroup.kill where the kernel has it (v2 and
    /// the cgroup2 part of a hybrid host), else freeze, signal, thaw.
    /// Returns once signalled; poll `pids()` before `destroy()`.
    fn kill_all(&self) -> Result<(), Error>;
    /// How many times the kernel's OOM killer killed a process in here.
    fn oom_kill_count(&self) -> Result<u64, Error>;
    /// The file [`read_oom_kill_count`] reads for this cgroup, for a
    /// supervisor that asks once per exit and should not build a manager
    /// for it; `None` without a memory controller.
    fn oom_kill_file(&self) -> Option<PathBuf>;
    /// The created cgroup, opened for a process the caller is about to
    /// fork to enter by itself, without the kernel's global migration lock
    /// (see [`Entry`]).
    fn entry(&self) -> Result<Entry, Error>;
    /// Every directory this cgroup occupies (for diagnostics and leak checks).
    fn paths(&self) -> Vec<PathBuf>;
}

/// The OOM-kill count in `file` (a cgroup's memory.oom_control on v1,
/// memory.events on v2: see [`CgroupManager::oom_kill_file`]).
pub fn read_oom_kill_count(file: &Path) -> Result<u64, Error> {
    Ok(fsutil::read_flat_keyed(file)?
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

/// The manager for a container's cgroup. `cgroups_path` is the spec's
/// `linux.cgroupsPath`: absolute from each hierarchy's root, relative from
/// the runtime's own cgroup, `None` for `/berth/<container_id>`.
pub fn manager(
    layout: &Layout,
    cgroups_path: Option<&str>,
    container_id: &str,
) -> Result<Box<dyn CgroupManager>, Error> {
    let path = cgpath::parse(cgroups_path, container_id)?;
    match layout {
        Layout::V2 { unified } => Ok(Box::new(v2::V2Manager {
            cg: v2::V2Cgroup {
                mount_point: unified.mount_point.clone(),
                dir: path.v2_dir(unified)?,
            },
        })),
        Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. } => {
            let dirs = hierarchies
                .iter()
                .map(|h| Ok((h.clone(), path.v1_dir(h)?)))
                .collect::<Result<Vec<_>, Error>>()?;
            let unified = match layout.unified() {
                Some(u) => Some((
                    v2::V2Cgroup {
                        mount_point: u.mount_point.clone(),
                        dir: path.v2_dir(u)?,
                    },
                    u.controllers.clone(),
                )),
                None => None,
            };
            Ok(Box::new(v1::V1Manager {
                dirs,
                unified,
                layout: layout.to_string(),
            }))
        }
    }
}

/// Settings in `r` that berth accepts and deliberately does not apply, for
/// the runtime to warn about. As runc 1.2+: `memory.kernel` and
/// `memory.kernelTCP` (kernel memory limits are deprecated since Linux 5.4,
/// absent in cgroup v2, and could wedge a cgroup), and `memory.useHierarchy`
/// (always on in current kernels).
pub fn ignored_settings(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() {
            out.push("linux.resources.memory.kernel");
        }
        if m.kernel_tcp().is_some() {
            out.push("linux.resources.memory.kernelTCP");
        }
        if m.use_hierarchy().is_some() {
            out.push("linux.resources.memory.useHierarchy");
        }
    }
    out
}

pub(crate) fn check_pid(pid: i32) -> Result<(), Error> {
    if pid <= 0 {
        return Err(Error::InvalidPid { pid });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_memory_is_reported_as_ignored() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":1048576,"kernel":1,"kernelTCP":2}}"#)
                .unwrap();
        assert_eq!(
            ignored_settings(&r),
            vec![
                "linux.resources.memory.kernel",
                "linux.resources.memory.kernelTCP"
            ]
        );
        assert!(ignored_settings(&LinuxResources::default()).is_empty());
    }

    #[test]
    fn manager_rejects_bad_paths_before_touching_anything() {
        let layout = Layout::V2 {
            unified: UnifiedHierarchy {
                mount_point: "/nonexistent/cgroup".into(),
                mount_root: "/".into(),
                own_path: "/".into(),
                controllers: vec![],
            },
        };
        assert!(matches!(
            manager(&layout, Some("a:b:c"), "x"),
            Err(Error::Systemd { .. })
        ));
        assert!(manager(&layout, Some("/a/../../b"), "x").is_err());
        let m = manager(&layout, None, "x").unwrap();
        assert_eq!(
            m.paths(),
            vec![PathBuf::from("/nonexistent/cgroup/berth/x")]
        );
        assert!(matches!(m.entry(), Err(Error::NotCreated { .. })));
        assert!(matches!(m.add_process(0), Err(Error::InvalidPid { .. })));
    }
}
