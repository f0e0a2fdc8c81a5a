//! Which cgroup hierarchies this host has, detected once.
//!
//! Hosts come in three shapes and berth must never assume one:
//! - pure v1: one mount per controller (or per group, "cpu,cpuacct"), plus
//!   named hierarchies such as name=systemd;
//! - pure v2: a single cgroup2 mount holding every controller;
//! - hybrid: v1 controllers plus a cgroup2 mount (often
//!   /sys/fs/cgroup/unified) that holds whatever controllers no v1
//!   hierarchy claimed (a controller lives in exactly one hierarchy).
//!
//! The layout is computed from /proc/self/mountinfo (where hierarchies are
//! mounted) and /proc/self/cgroup (which hierarchies exist and where this
//! process sits in each), matched by controller names.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fsutil;
use crate::procfs::{self, CgroupMembership, CgroupMount};

/// A mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers bound to this hierarchy as /proc/self/cgroup names them:
    /// `["cpu", "cpuacct"]`, `["memory"]`, or `["name=systemd"]`.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The hierarchy directory that is mounted at `mount_point` ("/" unless
    /// we are in a cgroup namespace or under a bind mount of a sub-cgroup).
    pub mount_root: PathBuf,
    /// This process's own cgroup in the hierarchy.
    pub own_path: PathBuf,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedHierarchy {
    pub mount_point: PathBuf,
    pub mount_root: PathBuf,
    pub own_path: PathBuf,
    /// Controllers available at the mount's root (its cgroup.controllers).
    pub controllers: Vec<String>,
}

impl UnifiedHierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1 { hierarchies: Vec<V1Hierarchy> },
    /// Only the unified hierarchy.
    V2 { unified: UnifiedHierarchy },
    /// v1 hierarchies plus a cgroup2 mount; controllers attached to the
    /// cgroup2 mount are driven through the v2 code.
    Hybrid {
        hierarchies: Vec<V1Hierarchy>,
        unified: UnifiedHierarchy,
    },
}

impl Layout {
    /// Builds the layout from the text of /proc/self/mountinfo and
    /// /proc/self/cgroup; `unified_controllers` returns the content of
    /// cgroup.controllers for a cgroup2 mount point.
    pub fn from_proc(
        mountinfo: &str,
        proc_cgroup: &str,
        unified_controllers: impl Fn(&Path) -> Result<String, Error>,
    ) -> Result<Layout, Error> {
        let mounts = procfs::parse_mountinfo(mountinfo)?;
        Layout::from_mounts(&mounts, proc_cgroup, unified_controllers)
    }

    /// As [`Layout::from_proc`], from mountinfo's cgroup mounts, parsed.
    fn from_mounts(
        mounts: &[CgroupMount],
        proc_cgroup: &str,
        unified_controllers: impl Fn(&Path) -> Result<String, Error>,
    ) -> Result<Layout, Error> {
        let memberships = procfs::parse_proc_cgroup(proc_cgroup)?;

        let mut hierarchies = Vec::new();
        for m in memberships
            .iter()
            .filter(|m| m.hierarchy_id != 0 && !m.controllers.is_empty())
        {
            let candidates: Vec<&CgroupMount> = mounts
                .iter()
                .filter(|mnt| {
                    !mnt.unified && m.controllers.iter().all(|c| mnt.super_options.contains(c))
                })
                .collect();
            // A hierarchy can be mounted more than once; prefer the mount that
            // shows our own cgroup, so relative paths resolve under it.
            let Some(mount) = candidates
                .iter()
                .find(|mnt| m.path.starts_with(&mnt.root))
                .or(candidates.first())
            else {
                continue; // exists in the kernel but not mounted: unusable
            };
            hierarchies.push(V1Hierarchy {
                controllers: m.controllers.clone(),
                mount_point: mount.mount_point.clone(),
                mount_root: mount.root.clone(),
                own_path: m.path.clone(),
            });
        }

        let unified_membership: Option<&CgroupMembership> = memberships
            .iter()
            .find(|m| m.hierarchy_id == 0 && m.controllers.is_empty());
        let own_v2 = unified_membership
            .map(|m| m.path.clone())
            .unwrap_or_else(|| "/".into());
        let unified_mounts: Vec<&CgroupMount> = mounts.iter().filter(|m| m.unified).collect();
        let unified = match unified_mounts
            .iter()
            .find(|m| own_v2.starts_with(&m.root))
            .or(unified_mounts.first())
        {
            Some(mount) => {
                let text = unified_controllers(&mount.mount_point)?;
                Some(UnifiedHierarchy {
                    mount_point: mount.mount_point.clone(),
                    mount_root: mount.root.clone(),
                    own_path: own_v2,
                    controllers: text.split_whitespace().map(str::to_string).collect(),
                })
            }
            None => None,
        };

        // Named hierarchies alone (name=systemd) carry no resource control;
        // next to a cgroup2 mount they do not make the host "v1".
        let has_v1_controllers = hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (unified, has_v1_controllers) {
            (Some(unified), true) => Ok(Layout::Hybrid {
                hierarchies,
                unified,
            }),
            (Some(unified), false) => Ok(Layout::V2 { unified }),
            (None, _) if !hierarchies.is_empty() => Ok(Layout::V1 { hierarchies }),
            (None, _) => Err(Error::NoCgroups),
        }
    }

    /// The v1 hierarchies (empty for pure v2).
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        match self {
            Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. } => hierarchies,
            Layout::V2 { .. } => &[],
        }
    }

    /// The cgroup2 hierarchy, if mounted.
    pub fn unified(&self) -> Option<&UnifiedHierarchy> {
        match self {
            Layout::V2 { unified } | Layout::Hybrid { unified, .. } => Some(unified),
            Layout::V1 { .. } => None,
        }
    }

    /// The v1 hierarchy that holds `controller`.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1_hierarchies().iter().find(|h| h.has(controller))
    }

    /// The hybrid's cgroup2 part seen as a pure v2 host. Only the cgroup2
    /// controllers are usable through it; the conformance tests use it to
    /// run the v2 backend for real on a hybrid machine.
    pub fn unified_only(&self) -> Option<Layout> {
        self.unified().map(|u| Layout::V2 { unified: u.clone() })
    }

    /// The hybrid's v1 part seen as a pure v1 host.
    pub fn v1_only(&self) -> Option<Layout> {
        match self {
            Layout::V1 { .. } => Some(self.clone()),
            Layout::Hybrid { hierarchies, .. } => Some(Layout::V1 {
                hierarchies: hierarchies.clone(),
            }),
            Layout::V2 { .. } => None,
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v1 = |hs: &[V1Hierarchy]| {
            hs.iter()
                .map(|h| h.controllers.join(","))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Layout::V1 { hierarchies } => write!(f, "cgroup v1: {}", v1(hierarchies)),
            Layout::V2 { unified } => write!(
                f,
                "cgroup v2 at {} with controllers [{}]",
                unified.mount_point.display(),
                unified.controllers.join(" ")
            ),
            Layout::Hybrid {
                hierarchies,
                unified,
            } => write!(
                f,
                "hybrid: cgroup v1 {}; cgroup2 at {} with controllers [{}]",
                v1(hierarchies),
                unified.mount_point.display(),
                unified.controllers.join(" ")
            ),
        }
    }
}

/// Detects this host's layout from /proc/self.
///
/// Where the hierarchies are mounted is read from mountinfo once per
/// process: the kernel formats every mount of the namespace for each read
/// (8 ms with 1,200 mounts here, and a host with 100 containers has 200
/// overlay and namespace mounts more), and cgroup mounts do not move while
/// an engine runs. Where this process sits in them (/proc/self/cgroup) and
/// the cgroup2 controllers are read on every call: both change.
pub fn detect() -> Result<Layout, Error> {
    let (_, mounts) = cgroup_mounts()?;
    let proc_cgroup = fsutil::read_string(Path::new("/proc/self/cgroup"))?;
    Layout::from_mounts(mounts, &proc_cgroup, |mp| {
        fsutil::read_string(&mp.join("cgroup.controllers"))
    })
}

/// The environment variable through which a process hands the cgroup
/// mounts it found to a process it starts in the same mount namespace
/// (berthd to each shim), so that the child reads no mountinfo of its own:
/// one read per container start less, and the dearest, as every running
/// container adds mounts to the table.
pub const MOUNTS_ENV: &str = "BERTH_CGROUP_MOUNTS";

/// The value for [`MOUNTS_ENV`] in a child: the cgroup lines of this
/// process's mountinfo, as read once per process.
pub fn mounts_env() -> Result<String, Error> {
    Ok(cgroup_mounts()?.0.clone())
}

/// This process's cgroup mounts: their mountinfo lines and what they say.
/// From [`MOUNTS_ENV`] when the parent set it, else from mountinfo.
fn cgroup_mounts() -> Result<&'static (String, Vec<CgroupMount>), Error> {
    static MOUNTS: std::sync::OnceLock<(String, Vec<CgroupMount>)> = std::sync::OnceLock::new();
    if let Some(m) = MOUNTS.get() {
        return Ok(m);
    }
    let found = find_cgroup_mounts(std::env::var(MOUNTS_ENV).ok(), || {
        fsutil::read_string(Path::new("/proc/self/mountinfo"))
    })?;
    Ok(MOUNTS.get_or_init(|| found))
}

/// The cgroup mounts in `inherited` (lines a parent found), or else in
/// the mountinfo `read_mountinfo` returns, with their lines.
fn find_cgroup_mounts(
    inherited: Option<String>,
    read_mountinfo: impl FnOnce() -> Result<String, Error>,
) -> Result<(String, Vec<CgroupMount>), Error> {
    let inherited = inherited
        .and_then(|lines| Some((procfs::parse_mountinfo(&lines).ok()?, lines)))
        .filter(|(mounts, _)| !mounts.is_empty());
    if let Some((mounts, lines)) = inherited {
        return Ok((lines, mounts));
    }
    let mountinfo = read_mountinfo()?;
    // Line by line, each parsed once: the cgroup ones are kept, with
    // what they say.
    let mut lines = String::new();
    let mut mounts = Vec::new();
    for (n, line) in mountinfo.lines().enumerate() {
        if let Some(mount) = procfs::parse_mountinfo_line(line, n + 1)? {
            lines.push_str(line);
            lines.push('\n');
            mounts.push(mount);
        }
    }
    Ok((lines, mounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_cgroup_mounts_spare_the_mountinfo_read() {
        let other = "20 1 8:1 / / rw - ext4 /dev/vda rw\n";
        let (lines, mounts) =
            find_cgroup_mounts(None, || Ok(format!("{other}{HYBRID_MOUNTINFO}"))).unwrap();
        assert_eq!(mounts.len(), 5, "{mounts:?}");
        assert!(
            !lines.contains("ext4") && !lines.contains("tmpfs"),
            "{lines}"
        );
        // A child given those lines finds the same mounts without a read.
        let (_, again) = find_cgroup_mounts(Some(lines), || panic!("read mountinfo")).unwrap();
        assert_eq!(again, mounts);
        // Lines that say nothing usable are ignored.
        for bad in ["", "garbage", other] {
            let (_, m) =
                find_cgroup_mounts(Some(bad.into()), || Ok(HYBRID_MOUNTINFO.into())).unwrap();
            assert_eq!(m, mounts, "{bad:?}");
        }
    }

    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
";
    const V1_CGROUP: &str = "\
12:pids:/user.slice
11:rdma:/
4:memory:/user.slice/u
2:cpu,cpuacct:/
1:name=systemd:/user.slice/session-1.scope
";

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    const V2_MOUNTINFO: &str = "\
25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_CGROUP: &str = "0::/user.slice/user-0.slice/session-3.scope\n";

    fn no_unified(_: &Path) -> Result<String, Error> {
        panic!("no cgroup2 mount expected")
    }

    #[test]
    fn pure_v1() {
        let l = Layout::from_proc(V1_MOUNTINFO, V1_CGROUP, no_unified).unwrap();
        let Layout::V1 { hierarchies } = &l else {
            panic!("{l:?}")
        };
        // rdma is in /proc/self/cgroup but not mounted: left out
        assert_eq!(hierarchies.len(), 4);
        let cpu = l.v1_hierarchy("cpuacct").unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(cpu.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            l.v1_hierarchy("memory").unwrap().own_path,
            PathBuf::from("/user.slice/u")
        );
        assert!(l.v1_hierarchy("name=systemd").is_some());
        assert!(l.v1_hierarchy("rdma").is_none());
        assert!(l.unified().is_none());
        assert!(l.unified_only().is_none());
    }

    #[test]
    fn hybrid_reads_unified_controllers() {
        let l = Layout::from_proc(HYBRID_MOUNTINFO, HYBRID_CGROUP, |mp| {
            assert_eq!(mp, Path::new("/sys/fs/cgroup/unified"));
            Ok("hugetlb\n".into())
        })
        .unwrap();
        let Layout::Hybrid {
            hierarchies,
            unified,
        } = &l
        else {
            panic!("{l:?}")
        };
        assert_eq!(hierarchies.len(), 4);
        assert_eq!(unified.controllers, vec!["hugetlb"]);
        assert_eq!(unified.own_path, PathBuf::from("/"));
        assert_eq!(
            l.v1_hierarchy("memory").unwrap().own_path,
            PathBuf::from("/process_api/abc")
        );
        let v2 = l.unified_only().unwrap();
        assert!(matches!(v2, Layout::V2 { .. }));
        assert!(matches!(l.v1_only().unwrap(), Layout::V1 { .. }));
        assert!(l.to_string().starts_with("hybrid"), "{l}");
    }

    #[test]
    fn pure_v2() {
        let l = Layout::from_proc(V2_MOUNTINFO, V2_CGROUP, |_| {
            Ok("cpuset cpu io memory pids\n".into())
        })
        .unwrap();
        let Layout::V2 { unified } = &l else {
            panic!("{l:?}")
        };
        assert_eq!(unified.mount_point, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(
            unified.own_path,
            PathBuf::from("/user.slice/user-0.slice/session-3.scope")
        );
        assert!(unified.has("memory"));
        assert!(l.v1_hierarchies().is_empty());
    }

    #[test]
    fn named_v1_only_next_to_cgroup2_is_v2() {
        let mi = format!(
            "{V2_MOUNTINFO}40 25 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        );
        let l =
            Layout::from_proc(&mi, "1:name=systemd:/\n0::/\n", |_| Ok("memory".into())).unwrap();
        assert!(matches!(l, Layout::V2 { .. }), "{l:?}");
    }

    #[test]
    fn nothing_mounted_is_an_error() {
        let err = Layout::from_proc(
            "22 1 0:21 / /proc rw - proc proc rw\n",
            "0::/\n",
            no_unified,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NoCgroups));
    }

    #[test]
    fn namespaced_mount_root_is_kept() {
        let mi = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let l = Layout::from_proc(mi, "4:memory:/docker/abc/sub\n", no_unified).unwrap();
        let h = l.v1_hierarchy("memory").unwrap();
        assert_eq!(h.mount_root, PathBuf::from("/docker/abc"));
        assert_eq!(h.own_path, PathBuf::from("/docker/abc/sub"));
    }
}
