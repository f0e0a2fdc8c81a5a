//! `linux.cgroupsPath` resolution, with runc's (non-systemd) meaning:
//! an absolute path is taken from the root of each hierarchy, a relative
//! path from the runtime's own cgroup, and no path means `/berth/<id>`.
//!
//! The path comes from an untrusted config.json, so `..` is refused outright
//! rather than cleaned: a container's cgroup must stay inside the hierarchy
//! and below the place the user named.

use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::layout::{UnifiedHierarchy, V1Hierarchy};

/// Where the default cgroup of a container lives, under each hierarchy root.
pub const DEFAULT_PARENT: &str = "/berth";

/// The longest name a cgroupfs directory entry can have.
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupsPath {
    /// Relative to each hierarchy's root ("/berth/abc" -> "berth/abc").
    Absolute(PathBuf),
    /// Relative to the runtime's own cgroup.
    Relative(PathBuf),
}

fn check_name(raw: &str, name: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidPath {
        path: raw.to_string(),
        reason: reason.to_string(),
    };
    if name == ".." {
        return Err(bad(
            "\"..\" is not allowed: the cgroup must stay inside its hierarchy",
        ));
    }
    if name.len() > NAME_MAX {
        return Err(bad("a path component is longer than 255 bytes"));
    }
    if name.contains('\n') {
        return Err(bad("a path component contains a newline"));
    }
    Ok(())
}

pub(crate) fn parse(cgroups_path: Option<&str>, container_id: &str) -> Result<CgroupsPath, Error> {
    let raw = match cgroups_path {
        Some(p) if !p.is_empty() => p,
        _ => {
            let bad_id = |reason: &str| Error::InvalidPath {
                path: format!("{DEFAULT_PARENT}/{container_id}"),
                reason: format!("container id {container_id:?} {reason}"),
            };
            if container_id.is_empty() || container_id == "." {
                return Err(bad_id("cannot name a cgroup"));
            }
            if container_id.contains('/') || container_id.contains('\0') {
                return Err(bad_id("contains '/' or NUL"));
            }
            check_name(container_id, container_id)?;
            let rel = Path::new(&DEFAULT_PARENT[1..]).join(container_id);
            return Ok(CgroupsPath::Absolute(rel));
        }
    };
    if raw.contains('\0') {
        return Err(Error::InvalidPath {
            path: raw.escape_default().to_string(),
            reason: "contains a NUL byte".into(),
        });
    }
    // runc's systemd driver takes "slice:prefix:name"; berth only has cgroupfs.
    if !raw.contains('/') && raw.split(':').count() == 3 {
        return Err(Error::Systemd {
            path: raw.to_string(),
        });
    }
    let mut rel = PathBuf::new();
    for comp in raw.split('/').filter(|c| !c.is_empty() && *c != ".") {
        check_name(raw, comp)?;
        rel.push(comp);
    }
    // Belt and braces: the loop above already refused "..".
    debug_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))));
    if rel.as_os_str().is_empty() {
        return Err(Error::InvalidPath {
            path: raw.to_string(),
            reason: "names the runtime's own or the root cgroup; give the container its own cgroup"
                .into(),
        });
    }
    if raw.starts_with('/') {
        Ok(CgroupsPath::Absolute(rel))
    } else {
        Ok(CgroupsPath::Relative(rel))
    }
}

/// `own` (a path in the hierarchy) as a directory under `mount_point`, given
/// that the hierarchy directory `mount_root` is what is mounted there.
pub(crate) fn own_dir(mount_point: &Path, mount_root: &Path, own: &Path) -> Result<PathBuf, Error> {
    let inner = own
        .strip_prefix(mount_root)
        .map_err(|_| Error::InvalidPath {
            path: own.display().to_string(),
            reason: format!(
            "the runtime's own cgroup is outside {} (mounted at {}); use an absolute cgroupsPath",
            mount_root.display(),
            mount_point.display()
        ),
        })?;
    Ok(mount_point.join(inner))
}

impl CgroupsPath {
    pub(crate) fn v1_dir(&self, h: &V1Hierarchy) -> Result<PathBuf, Error> {
        match self {
            CgroupsPath::Absolute(p) => Ok(h.mount_point.join(p)),
            CgroupsPath::Relative(p) => {
                Ok(own_dir(&h.mount_point, &h.mount_root, &h.own_path)?.join(p))
            }
        }
    }

    pub(crate) fn v2_dir(&self, u: &UnifiedHierarchy) -> Result<PathBuf, Error> {
        match self {
            CgroupsPath::Absolute(p) => Ok(u.mount_point.join(p)),
            CgroupsPath::Relative(p) => {
                // Our own v2 cgroup holds processes (us), and cgroup v2 does
                // not let a cgroup with processes enable controllers for its
                // children. Like runc, start from its parent instead.
                let parent = u.own_path.parent().unwrap_or(Path::new("/"));
                let parent = if parent.starts_with(&u.mount_root) {
                    parent
                } else {
                    u.own_path.as_path()
                };
                Ok(own_dir(&u.mount_point, &u.mount_root, parent)?.join(p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(own: &str, root: &str) -> V1Hierarchy {
        V1Hierarchy {
            controllers: vec!["memory".into()],
            mount_point: "/sys/fs/cgroup/memory".into(),
            mount_root: root.into(),
            own_path: own.into(),
        }
    }

    fn v2(own: &str) -> UnifiedHierarchy {
        UnifiedHierarchy {
            mount_point: "/sys/fs/cgroup".into(),
            mount_root: "/".into(),
            own_path: own.into(),
            controllers: vec![],
        }
    }

    #[test]
    fn default_is_berth_id() {
        let p = parse(None, "abc").unwrap();
        assert_eq!(p, CgroupsPath::Absolute("berth/abc".into()));
        assert_eq!(
            p.v1_dir(&v1("/x", "/")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/berth/abc")
        );
        assert_eq!(parse(Some(""), "abc").unwrap(), p);
        assert!(parse(None, "a/b").is_err());
        assert!(parse(None, "..").is_err());
        assert!(parse(None, "").is_err());
    }

    #[test]
    fn absolute_is_from_hierarchy_root() {
        let p = parse(Some("/machine//c1/./x"), "id").unwrap();
        assert_eq!(p, CgroupsPath::Absolute("machine/c1/x".into()));
        assert_eq!(
            p.v1_dir(&v1("/process_api/z", "/")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/machine/c1/x")
        );
        assert_eq!(
            p.v2_dir(&v2("/user.slice/s")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/machine/c1/x")
        );
    }

    #[test]
    fn relative_is_from_own_cgroup() {
        let p = parse(Some("ctr/1"), "id").unwrap();
        assert_eq!(
            p.v1_dir(&v1("/process_api/z", "/")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/z/ctr/1")
        );
        // inside a cgroup namespace / bind mount of /docker/abc
        assert_eq!(
            p.v1_dir(&v1("/docker/abc/sub", "/docker/abc")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/sub/ctr/1")
        );
        assert!(p.v1_dir(&v1("/elsewhere", "/docker/abc")).is_err());
        // v2: from the parent of our own cgroup
        assert_eq!(
            p.v2_dir(&v2("/user.slice/session.scope")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/ctr/1")
        );
        assert_eq!(
            p.v2_dir(&v2("/")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/ctr/1")
        );
    }

    #[test]
    fn dotdot_is_refused() {
        for bad in ["/a/../../etc", "../x", "a/..", "/.."] {
            let err = parse(Some(bad), "id").unwrap_err();
            assert!(err.to_string().contains("\"..\""), "{bad}: {err}");
        }
    }

    #[test]
    fn root_and_own_cgroup_are_refused() {
        assert!(parse(Some("/"), "id").is_err());
        assert!(parse(Some("."), "id").is_err());
        assert!(parse(Some("//./"), "id").is_err());
    }

    #[test]
    fn systemd_style_is_a_clear_error() {
        let err = parse(Some("system.slice:berth:abc"), "abc").unwrap_err();
        assert!(matches!(err, Error::Systemd { .. }));
        assert!(err
            .to_string()
            .contains("systemd cgroups are not supported yet"));
        // a plain path that happens to contain colons is a path
        assert!(parse(Some("/a:b:c/d"), "abc").is_ok());
    }

    #[test]
    fn long_and_odd_names() {
        let long = "x".repeat(256);
        assert!(parse(Some(&long), "id").is_err());
        assert!(parse(Some("/a\nb"), "id").is_err());
        assert!(parse(Some("/a\0b"), "id").is_err());
    }
}
