//! docker's `local` volume driver: a directory `<data-root>/volumes/<name>/_data`,
//! or, with the options `type`/`device`/`o`, a file system (`mount -t
//! <type> -o <o> <device>`) mounted on that directory while a container
//! uses it, as docker's local driver does (it mounts on a container's
//! start and unmounts when the last user stops: a tmpfs volume's content
//! lives as long as some container runs with it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

/// The only driver berth has.
pub const DRIVER: &str = "local";

/// docker's volume name rule (RestrictedNamePattern).
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// docker's wording for a name the local driver refuses.
pub fn invalid_name(name: &str) -> String {
    format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )
}

/// The local driver's options, checked as docker checks them at create.
pub fn check_options(name: &str, opts: &BTreeMap<String, String>) -> Result<(), String> {
    for key in opts.keys() {
        if !matches!(key.as_str(), "type" | "device" | "o") {
            return Err(format!("create {name}: invalid option: {key:?}"));
        }
    }
    if opts.get("type").is_some_and(|t| !t.is_empty()) && !opts.contains_key("device") {
        return Err(format!(
            "create {name}: missing required option: \"device\""
        ));
    }
    if opts.get("device").is_some_and(|d| !d.is_empty())
        && opts.get("type").is_none_or(|t| t.is_empty())
    {
        return Err(format!("create {name}: missing required option: \"type\""));
    }
    Ok(())
}

/// Whether the options ask for a file system to be mounted.
pub fn has_device(opts: &BTreeMap<String, String>) -> bool {
    opts.get("type").is_some_and(|t| !t.is_empty())
}

/// `<volumes>/<name>` and its `_data`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
    pub data: PathBuf,
}

impl Paths {
    pub fn new(volumes: &Path, name: &str) -> Paths {
        let dir = volumes.join(name);
        Paths {
            data: dir.join("_data"),
            dir,
        }
    }
}

/// Makes `<volumes>` (0701, as docker: others may reach a volume's files
/// by path, not list the volumes) and the volume's directories.
pub fn make_dirs(volumes: &Path, p: &Paths) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !volumes.exists() {
        std::fs::create_dir_all(volumes)?;
        std::fs::set_permissions(volumes, std::fs::Permissions::from_mode(0o701))?;
    }
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o701);
    match b.create(&p.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    b.mode(0o755);
    match b.create(&p.data) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether something is mounted on `path` (its mount differs from its
/// parent's).
pub fn is_mount_point(path: &Path) -> bool {
    let id = |p: &Path| {
        rustix::fs::statx(
            rustix::fs::CWD,
            p,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            rustix::fs::StatxFlags::MNT_ID,
        )
        .ok()
        .map(|s| s.stx_mnt_id)
    };
    match (id(path), path.parent().and_then(id)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// `mount(8)`'s flag words; everything else in `o` is file system data.
fn split_options(o: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for word in o.split(',').filter(|w| !w.is_empty()) {
        let (set, clear) = match word {
            "ro" => (MountFlags::RDONLY, MountFlags::empty()),
            "rw" => (MountFlags::empty(), MountFlags::RDONLY),
            "nosuid" => (MountFlags::NOSUID, MountFlags::empty()),
            "suid" => (MountFlags::empty(), MountFlags::NOSUID),
            "nodev" => (MountFlags::NODEV, MountFlags::empty()),
            "dev" => (MountFlags::empty(), MountFlags::NODEV),
            "noexec" => (MountFlags::NOEXEC, MountFlags::empty()),
            "exec" => (MountFlags::empty(), MountFlags::NOEXEC),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::empty()),
            "async" => (MountFlags::empty(), MountFlags::SYNCHRONOUS),
            "noatime" => (MountFlags::NOATIME, MountFlags::empty()),
            "nodiratime" => (MountFlags::NODIRATIME, MountFlags::empty()),
            "relatime" => (MountFlags::RELATIME, MountFlags::empty()),
            "strictatime" => (MountFlags::STRICTATIME, MountFlags::empty()),
            "dirsync" => (MountFlags::DIRSYNC, MountFlags::empty()),
            "bind" => (MountFlags::BIND, MountFlags::empty()),
            "rbind" => (MountFlags::BIND | MountFlags::REC, MountFlags::empty()),
            "defaults" => (MountFlags::empty(), MountFlags::empty()),
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) - clear;
    }
    (flags, data.join(","))
}

/// Mounts the volume's file system on its `_data` (`mount -t type -o o
/// device`). A bind (`o=bind`) whose read-only flag needs a remount gets it.
pub fn mount(p: &Paths, opts: &BTreeMap<String, String>) -> std::io::Result<()> {
    let typ = opts.get("type").map(String::as_str).unwrap_or("");
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    let (flags, data) = split_options(opts.get("o").map(String::as_str).unwrap_or(""));
    let data = std::ffi::CString::new(data).map_err(std::io::Error::other)?;
    let fstype = if flags.contains(MountFlags::BIND) {
        ""
    } else {
        typ
    };
    rustix::mount::mount(device, &p.data, fstype, flags, data.as_c_str())?;
    if flags.contains(MountFlags::BIND) && flags.contains(MountFlags::RDONLY) {
        rustix::mount::mount_remount(&p.data, flags, c"")?;
    }
    Ok(())
}

/// Unmounts the volume's file system if one is mounted (lazily when busy:
/// a file operation's private view may still hold it).
pub fn unmount(p: &Paths) -> std::io::Result<()> {
    if !is_mount_point(&p.data) {
        return Ok(());
    }
    match rustix::mount::unmount(&p.data, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(&p.data, UnmountFlags::DETACH).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}

/// Bytes used under `path` (files counted once per inode), as `du` does.
pub fn size(path: &Path) -> u64 {
    crate::containers::inspect::dir_size(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "data", "my_vol.1-x", "0a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["a", "", "_a", "a/b", "bad name", ".x", "a:b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn options_follow_docker() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        check_options("v", &m(&[])).unwrap();
        check_options(
            "v",
            &m(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
        )
        .unwrap();
        assert_eq!(
            check_options("x1", &m(&[("type", "foo")])).unwrap_err(),
            "create x1: missing required option: \"device\""
        );
        assert_eq!(
            check_options("x2", &m(&[("bogus", "1")])).unwrap_err(),
            "create x2: invalid option: \"bogus\""
        );
        let (flags, data) = split_options("size=1m,ro,uid=5,nosuid");
        assert_eq!(flags, MountFlags::RDONLY | MountFlags::NOSUID);
        assert_eq!(data, "size=1m,uid=5");
        let (flags, _) = split_options("bind,ro,rw");
        assert_eq!(flags, MountFlags::BIND);
    }
}
