//! Resolving container paths without ever leaving the container's root.
//!
//! Every path that comes from a config or from inside the container is
//! resolved with openat2(RESOLVE_IN_ROOT) against a directory fd of the
//! root, so `..` and symlinks (absolute or relative) stay inside it. Mounts
//! then target the resolved fd through /proc/self/fd/N, which the kernel
//! follows to exactly that dentry: a symlink swapped in later cannot
//! redirect the mount (CVE-2021-30465).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens `path` (taken as relative to `root`) inside `root` with `flags`.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    let rel = relative(path);
    loop {
        match rustix::fs::openat2(root, &rel, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// `path` without its leading `/` (and `.` for the root itself).
pub fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// What to create at the end of a path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Resolves `path` inside `root`, creating missing directories (and the
/// leaf as a dir or an empty file) one component at a time, each creation
/// relative to an fd that was itself resolved inside the root. A dangling
/// symlink on the way is followed by creating its target, also inside the
/// root. Returns an O_PATH fd to the leaf.
pub fn mkdir_all_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    leaf: Leaf,
) -> rustix::io::Result<OwnedFd> {
    mkdir_all_depth(root, path, leaf, 0)
}

/// As many symlinks as the kernel follows in one lookup.
const MAX_SYMLINKS: u32 = 40;

fn mkdir_all_depth(
    root: BorrowedFd<'_>,
    path: &Path,
    leaf: Leaf,
    depth: u32,
) -> rustix::io::Result<OwnedFd> {
    if depth > MAX_SYMLINKS {
        return Err(Errno::LOOP);
    }
    let rel = relative(path);
    if let Ok(fd) = open_in_root(root, &rel, OFlags::PATH) {
        return Ok(fd);
    }
    // Mostly only the leaf is missing (a mount point the image lacks):
    // one lookup of its parent instead of one per component.
    if let (Some(parent), Some(Component::Normal(name))) =
        (rel.parent(), rel.components().next_back())
    {
        match open_in_root(root, parent, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(dir) => {
                create_missing(root, &dir, parent, name, leaf, depth)?;
                return open_in_root(root, &rel, OFlags::PATH);
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
    }
    let comps: Vec<Component> = rel.components().collect();
    let mut parent_path = PathBuf::new();
    for (i, comp) in comps.iter().enumerate() {
        let so_far = parent_path.join(comp);
        let is_leaf = i + 1 == comps.len();
        match open_in_root(root, &so_far, OFlags::PATH) {
            Ok(_) => {
                parent_path = so_far;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let Component::Normal(name) = comp else {
            // `..` that leads nowhere: RESOLVE_IN_ROOT already clamps it.
            parent_path = so_far;
            continue;
        };
        let dir = open_in_root(root, &parent_path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let what = if is_leaf { leaf } else { Leaf::Dir };
        create_missing(root, &dir, &parent_path, name, what, depth)?;
        parent_path = so_far;
    }
    open_in_root(root, &rel, OFlags::PATH)
}

/// Creates `name`, missing from `dir` (which is `dir_path` inside `root`),
/// as `what`; a dangling symlink there is followed by creating its target,
/// also inside the root.
fn create_missing(
    root: BorrowedFd<'_>,
    dir: &OwnedFd,
    dir_path: &Path,
    name: &std::ffi::OsStr,
    what: Leaf,
    depth: u32,
) -> rustix::io::Result<()> {
    if let Ok(target) = rustix::fs::readlinkat(dir, name, Vec::new()) {
        let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
        let target = if target.is_absolute() {
            target
        } else {
            dir_path.join(target)
        };
        return mkdir_all_depth(root, &target, what, depth + 1).map(drop);
    }
    let created = match what {
        Leaf::File => rustix::fs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
        Leaf::Dir => rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)),
    };
    match created {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Is the last component of `path` (inside `root`) a symlink?
pub fn is_symlink_in_root(root: BorrowedFd<'_>, path: &Path) -> bool {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let Ok(dir) = open_in_root(root, parent, OFlags::PATH | OFlags::DIRECTORY) else {
        return false;
    };
    rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
    })
}

/// Turns an O_PATH directory fd into one usable as a dirfd for *at calls.
pub fn reopen_dir(fd: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The magic-link path that names exactly what `fd` refers to.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_cannot_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        std::fs::create_dir(&root_dir).unwrap();
        symlink("/", root_dir.join("escape")).unwrap();
        symlink("../../../..", root_dir.join("up")).unwrap();
        let root =
            rustix::fs::open(&root_dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        mkdir_all_in_root(
            root.as_fd(),
            Path::new("/escape/tmp/berth-escape-test"),
            Leaf::Dir,
        )
        .unwrap();
        mkdir_all_in_root(
            root.as_fd(),
            Path::new("up/etc/berth-escape-file"),
            Leaf::File,
        )
        .unwrap();
        assert!(root_dir.join("tmp/berth-escape-test").is_dir());
        assert!(root_dir.join("etc/berth-escape-file").is_file());
        assert!(!Path::new("/tmp/berth-escape-test").exists());
        assert!(!Path::new("/etc/berth-escape-file").exists());
    }

    /// A missing leaf whose parent exists (the short path): a dangling
    /// symlink there is followed inside the root, absolute or relative.
    #[test]
    fn dangling_leaf_symlinks_are_created_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        std::fs::create_dir_all(root_dir.join("dev")).unwrap();
        std::fs::create_dir_all(root_dir.join("a")).unwrap();
        symlink("/run/berth-dangling-test", root_dir.join("dev/shm")).unwrap();
        symlink("../../../../berth-dangling-file", root_dir.join("a/file")).unwrap();
        let root =
            rustix::fs::open(&root_dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/dev/shm"), Leaf::Dir).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/a/file"), Leaf::File).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/a/new"), Leaf::Dir).unwrap();
        assert!(root_dir.join("run/berth-dangling-test").is_dir());
        assert!(root_dir.join("berth-dangling-file").is_file());
        assert!(root_dir.join("a/new").is_dir());
        assert!(!Path::new("/run/berth-dangling-test").exists());
        assert!(!tmp.path().join("berth-dangling-file").exists());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
    }
}
