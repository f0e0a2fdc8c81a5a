//! Warming the kernel's cgroup migration lock before a container needs it.
//!
//! Every migration into a cgroup v1 hierarchy (and into cgroup2 without
//! CLONE_INTO_CGROUP) takes one global lock, cgroup_threadgroup_rwsem, for
//! writing. That lock is a per-CPU rwsem kept in its fast mode for the
//! forks and exits that read it; a writer first switches it to its slow
//! mode, which waits for an RCU grace period, unless a migration ran
//! within about the last grace period (the kernel's rcu_sync leaves the
//! slow mode one grace period after the last writer). On the 2-CPU test VM
//! that wait is 5-13 ms: the largest single cost of starting a container
//! there (measured: the first of ten writes to cgroup.procs 5-12 ms, the
//! other nine 0.02-0.2 ms each).
//!
//! A migration of this process into the cgroup it is already in takes the
//! same path and changes nothing. Done early, on a thread or a process of
//! its own, it lets the wait run beside other work: the container's real
//! migration then shares or follows it and finds the lock ready. Kernels
//! mounted with `favordynmods` keep the slow mode always; there the primer
//! costs a no-op write.

use std::fs::{File, OpenOptions};
use std::io::Write;

use crate::cgpath::own_dir;
use crate::layout::Layout;

/// This process's own `cgroup.procs` in a v1 hierarchy, open for writing.
#[derive(Debug)]
pub struct MigrationPrimer {
    procs: File,
}

impl MigrationPrimer {
    /// A primer for `layout`, or `None` where it would not help: a pure
    /// cgroup v2 host (berth clones straight into the cgroup there), or no
    /// hierarchy in which this process's own cgroup is visible and
    /// writable (inside a cgroup namespace, without privileges).
    pub fn new(layout: &Layout) -> Option<MigrationPrimer> {
        layout.v1_hierarchies().iter().find_map(|h| {
            let dir = own_dir(&h.mount_point, &h.mount_root, &h.own_path).ok()?;
            let procs = OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .ok()?;
            Some(MigrationPrimer { procs })
        })
    }

    /// Moves the calling process into the cgroup it is in already ("0" is
    /// the writer's own thread group): returns once the migration lock is
    /// in its slow mode, i.e. after the grace period when it was cold.
    /// Allocates nothing, so a process forked from a single-threaded one
    /// may call it.
    pub fn prime(&self) -> std::io::Result<()> {
        (&self.procs).write_all(b"0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::UnifiedHierarchy;

    #[test]
    fn a_pure_v2_host_needs_no_primer() {
        let layout = Layout::V2 {
            unified: UnifiedHierarchy {
                mount_point: "/sys/fs/cgroup".into(),
                mount_root: "/".into(),
                own_path: "/".into(),
                controllers: vec!["memory".into()],
            },
        };
        assert!(MigrationPrimer::new(&layout).is_none());
    }
}
