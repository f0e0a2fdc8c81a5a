//! The way into a container's cgroup for a process the runtime forks (the
//! container's init, or an `exec`ed process), without the kernel's global
//! migration lock.
//!
//! Moving a process into a cgroup by writing its pid to `cgroup.procs`
//! takes cgroup_threadgroup_rwsem for writing. That lock is a per-CPU rwsem
//! kept in its fast mode for the forks and exits that read it, and a writer
//! first switches it to its slow mode, which waits for an RCU grace period
//! unless another migration ran within about the last one: 5-13 ms on the
//! 2-CPU test VM, the largest single cost of a container start there.
//!
//! Two ways in skip that lock, and together they cover every layout:
//! - cgroup2 (a pure v2 host, or the cgroup2 part of a hybrid one):
//!   `clone3(CLONE_INTO_CGROUP)` places the child as it is created; a fork
//!   only reads the lock.
//! - cgroup v1: the child writes "0" (itself) to each hierarchy's `tasks`
//!   file. That moves the writing thread only, and the kernel takes no
//!   threadgroup lock for a thread that moves itself (it cannot exit or
//!   exec meanwhile; cgroup_mutex excludes other migrations). A freshly
//!   forked child has one thread, so the thread is the whole process.
//!
//! The files are opened by the caller before the fork, so the kernel's
//! permission check (made with the opener's credentials) holds even after
//! the child has entered a user namespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::v2::V2Cgroup;

/// A container's cgroup, opened for a child to enter (see the module docs).
#[derive(Debug)]
pub struct Entry {
    /// Each v1 cgroup's `tasks` file, open for writing.
    v1_tasks: Vec<(PathBuf, File)>,
    /// The cgroup2 part, and its directory opened O_PATH for
    /// CLONE_INTO_CGROUP.
    v2: Option<(V2Cgroup, OwnedFd)>,
}

/// A v1 cgroup the child could not enter.
#[derive(Debug)]
pub struct JoinError<'a> {
    pub tasks_file: &'a Path,
    pub source: io::Error,
}

impl std::fmt::Display for JoinError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "joining the cgroup through {}: {}",
            self.tasks_file.display(),
            self.source
        )
    }
}

impl Entry {
    /// Opens the entry to created cgroups: `v1_dirs` (one directory per
    /// mounted v1 hierarchy) and `v2` (the cgroup2 part, if any).
    pub(crate) fn open(v1_dirs: &[&Path], v2: Option<&V2Cgroup>) -> Result<Entry, Error> {
        let not_created = |dir: &Path, e: io::Error, op| match e.kind() {
            io::ErrorKind::NotFound => Error::NotCreated {
                path: dir.to_path_buf(),
            },
            _ => Error::io(op, dir, e),
        };
        let v1_tasks = v1_dirs
            .iter()
            .map(|dir| {
                let path = dir.join("tasks");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(|f| (path, f))
                    .map_err(|e| not_created(dir, e, "opening the tasks file of"))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let v2 = v2
            .map(|cg| {
                rustix::fs::open(
                    &cg.dir,
                    rustix::fs::OFlags::PATH
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map(|fd| (cg.clone(), fd))
                .map_err(|e| not_created(&cg.dir, e.into(), "opening"))
            })
            .transpose()?;
        Ok(Entry { v1_tasks, v2 })
    }

    /// The cgroup2 directory to pass to clone3 as CLONE_INTO_CGROUP's
    /// target, if this cgroup has a cgroup2 part.
    pub fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().map(|(_, fd)| fd.as_fd())
    }

    /// Moves `pid` into the cgroup2 part by pid, the slow way: for a child
    /// cloned without CLONE_INTO_CGROUP because the kernel lacks it (before
    /// Linux 5.7). Does nothing without a cgroup2 part.
    pub fn join_v2_by_pid(&self, pid: i32) -> Result<(), Error> {
        match &self.v2 {
            Some((cg, _)) => cg.add_process(pid),
            None => Ok(()),
        }
    }

    /// Moves the calling thread into every v1 cgroup. Call it in the forked
    /// child, while it has a single thread, before it makes its cgroup
    /// namespace. Allocates nothing, so a child forked from a
    /// multi-threaded process may call it.
    pub fn join_v1(&self) -> Result<(), JoinError<'_>> {
        for (path, file) in &self.v1_tasks {
            rustix::io::write(file, b"0").map_err(|e| JoinError {
                tasks_file: path,
                source: e.into(),
            })?;
        }
        Ok(())
    }
}
