//! Which namespaces a container creates and which it joins, and in what
//! order the child enters them.
//!
//! The fast path (nothing to join) creates every namespace in the clone3
//! call itself, so the child is born as pid 1 of its pid namespace with no
//! extra fork. Joining any namespace by path takes the general path: a plain
//! fork, setns (the user namespace first, because it owns the others),
//! unshare, and a second fork when a pid namespace must take effect.

use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

pub struct NsPlan {
    /// Namespaces created by clone3 itself.
    pub clone_flags: u64,
    /// Namespaces the child creates with unshare after joining.
    pub unshare_flags: i32,
    /// Namespaces to join, user namespace first.
    pub joins: Vec<(OwnedFd, LinuxNamespaceType)>,
    pub new_userns: bool,
    pub has_userns: bool,
    pub new_cgroupns: bool,
    pub has_mountns: bool,
    pub has_utsns: bool,
    /// A pid namespace only takes effect for children: fork once more.
    pub needs_fork: bool,
}

pub fn flag(t: LinuxNamespaceType) -> i32 {
    t as i32
}

fn proc_name(t: LinuxNamespaceType) -> &'static str {
    use LinuxNamespaceType as T;
    match t {
        T::Mount => "mnt",
        T::Cgroup => "cgroup",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::User => "user",
        T::Pid => "pid",
        T::Network => "net",
        T::Time => "time",
    }
}

impl NsPlan {
    /// `time_offsets`: whether the new time namespace gets clock offsets,
    /// which must be written before any process enters it (so not in clone3).
    pub fn new(namespaces: &[LinuxNamespace], time_offsets: bool) -> Result<NsPlan> {
        let mut joins = Vec::new();
        let mut new = 0i32;
        for ns in namespaces {
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let fd =
                        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                            .map_err(|e| {
                                Error::InvalidArgument(format!(
                                    "linux.namespaces: cannot open {} namespace {path:?}: {}",
                                    ns.typ(),
                                    std::io::Error::from(e)
                                ))
                            })?;
                    joins.push((fd, ns.typ()));
                }
                _ => new |= flag(ns.typ()),
            }
        }
        Ok(Self::from_parts(joins, new, time_offsets))
    }

    /// Joining every namespace of a running process (for exec).
    pub fn join_process(pid: i32, types: &[LinuxNamespaceType]) -> Result<NsPlan> {
        let mut joins = Vec::new();
        for t in types {
            let path = format!("/proc/{pid}/ns/{}", proc_name(*t));
            // Joining our own namespace is an error for user namespaces; skip ones we share.
            let ours = std::fs::read_link(format!("/proc/self/ns/{}", proc_name(*t))).ok();
            let theirs = std::fs::read_link(&path).ok();
            if ours.is_some() && ours == theirs {
                continue;
            }
            let fd = rustix::fs::open(
                path.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io(format!("opening {path}"), e.into()))?;
            joins.push((fd, *t));
        }
        let mut plan = Self::from_parts(joins, 0, false);
        plan.has_mountns = types.contains(&LinuxNamespaceType::Mount);
        plan.has_utsns = types.contains(&LinuxNamespaceType::Uts);
        plan.has_userns = types.contains(&LinuxNamespaceType::User);
        Ok(plan)
    }

    fn from_parts(
        mut joins: Vec<(OwnedFd, LinuxNamespaceType)>,
        new: i32,
        time_offsets: bool,
    ) -> NsPlan {
        joins.sort_by_key(|(_, t)| *t != LinuxNamespaceType::User);
        let joined = |t| joins.iter().any(|(_, j)| *j == t);
        let new_has = |t| new & flag(t) != 0;
        let new_userns = new_has(LinuxNamespaceType::User);
        // The cgroup namespace root is the cgroup at creation time, so it is
        // created after the parent has moved the child into its cgroup.
        let cgroup = flag(LinuxNamespaceType::Cgroup);
        // A time namespace with offsets is unshared, given its offsets, and
        // entered by a fork, since offsets are fixed once a process is in it.
        // The pid namespace then goes the same way: the entering fork uses
        // CLONE_PARENT, which the init of a pid namespace may not.
        let late = cgroup
            | if time_offsets {
                flag(LinuxNamespaceType::Time) | flag(LinuxNamespaceType::Pid)
            } else {
                0
            };
        let (clone_flags, unshare_flags) = if joins.is_empty() {
            ((new & !late) as u32 as u64, new & late)
        } else {
            (0, new)
        };
        let pid_new_by_unshare = unshare_flags & flag(LinuxNamespaceType::Pid) != 0;
        let time_new_by_unshare = unshare_flags & flag(LinuxNamespaceType::Time) != 0;
        NsPlan {
            clone_flags,
            unshare_flags,
            new_userns,
            has_userns: new_userns || joined(LinuxNamespaceType::User),
            new_cgroupns: new_has(LinuxNamespaceType::Cgroup),
            has_mountns: new_has(LinuxNamespaceType::Mount) || joined(LinuxNamespaceType::Mount),
            has_utsns: new_has(LinuxNamespaceType::Uts) || joined(LinuxNamespaceType::Uts),
            needs_fork: pid_new_by_unshare
                || time_new_by_unshare
                || joined(LinuxNamespaceType::Pid),
            joins,
        }
    }

    /// Was the user namespace created by clone3 (so the parent maps it before `Go`)?
    pub fn userns_in_clone(&self) -> bool {
        self.clone_flags & flag(LinuxNamespaceType::User) as u32 as u64 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType as T;

    fn ns(t: T) -> LinuxNamespace {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n
    }

    #[test]
    fn fast_path_creates_everything_in_clone_but_cgroup() {
        let p = NsPlan::new(
            &[ns(T::Pid), ns(T::Mount), ns(T::Cgroup), ns(T::User)],
            false,
        )
        .unwrap();
        assert!(p.joins.is_empty());
        assert!(p.userns_in_clone());
        assert_eq!(p.unshare_flags, flag(T::Cgroup));
        assert!(!p.needs_fork);
        assert!(p.new_cgroupns && p.has_mountns);
    }

    #[test]
    fn joining_takes_the_general_path() {
        let mut net = ns(T::Network);
        net.set_path(Some("/proc/self/ns/net".into()));
        let p = NsPlan::new(&[ns(T::Pid), net, ns(T::Mount)], false).unwrap();
        assert_eq!(p.clone_flags, 0);
        assert_eq!(p.joins.len(), 1);
        assert!(p.needs_fork, "a pid namespace made by unshare needs a fork");
    }

    #[test]
    fn time_offsets_move_the_time_namespace_out_of_clone() {
        let p = NsPlan::new(&[ns(T::Pid), ns(T::Time)], true).unwrap();
        assert_eq!(p.unshare_flags, flag(T::Time) | flag(T::Pid));
        assert!(p.needs_fork);
        let p = NsPlan::new(&[ns(T::Pid), ns(T::Time)], false).unwrap();
        assert_eq!(p.unshare_flags, 0);
        assert!(!p.needs_fork);
    }

    #[test]
    fn a_missing_namespace_path_is_a_clear_error() {
        let mut net = ns(T::Network);
        net.set_path(Some("/nonexistent/ns".into()));
        let err = NsPlan::new(&[net], false).err().unwrap().to_string();
        assert!(err.contains("cannot open net namespace"), "{err}");
    }
}
