//! Reading and creating files inside a container's rootfs without ever
//! leaving it: every path is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from a descriptor of
//! the rootfs, so `..` and absolute symlinks stay inside the root.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::SpecError;

/// A descriptor of a rootfs.
pub(crate) struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl RootDir {
    pub fn open(path: &Path) -> Result<RootDir, SpecError> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SpecError::io(format!("opening the rootfs {path:?}"), e.into()))?;
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    fn openat2(&self, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        // openat2 refuses O_NOCTTY beside O_PATH.
        let flags = if flags.contains(OFlags::PATH) {
            flags | OFlags::CLOEXEC
        } else {
            flags | OFlags::CLOEXEC | OFlags::NOCTTY
        };
        // The kernel answers EAGAIN when a rename raced the lookup.
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(self.fd.as_fd(), path, flags, Mode::empty(), RESOLVE) {
                Err(Errno::AGAIN | Errno::INTR) if tries < 16 => tries += 1,
                other => return other,
            }
        }
    }

    /// The content of the regular file at `path` inside the root, at most
    /// `limit` bytes; None when it (or a parent) does not exist.
    pub fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, SpecError> {
        let context = || format!("reading {path} in the rootfs {:?}", self.path);
        // NONBLOCK: opening a FIFO planted at the path must not hang.
        let fd = match self.openat2(path, OFlags::RDONLY | OFlags::NONBLOCK) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(SpecError::io(context(), e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| SpecError::io(context(), e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(SpecError::invalid(format!(
                "{path} in the container is not a regular file"
            )));
        }
        let mut out = Vec::new();
        std::fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| SpecError::io(context(), e))?;
        if out.len() as u64 > limit {
            return Err(SpecError::invalid(format!(
                "{path} in the container is larger than {limit} bytes"
            )));
        }
        Ok(Some(out))
    }

    /// Creates the absolute, clean directory `path` inside the root with
    /// its missing parents (0755, owned by whoever runs this, as docker's
    /// root-owned working directories). An existing non-directory is an
    /// error, as in docker ("Cannot mkdir: ... is not a directory").
    pub fn mkdir_all(&self, path: &str) -> Result<(), SpecError> {
        let context = || format!("creating the working directory {path} in {:?}", self.path);
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY;
        let mut parent = self
            .fd
            .try_clone()
            .map_err(|e| SpecError::io(context(), e))?;
        let mut prefix = String::new();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if component == "." || component == ".." {
                return Err(SpecError::invalid(format!(
                    "the working directory '{path}' must not contain '{component}'"
                )));
            }
            prefix.push('/');
            prefix.push_str(component);
            parent = match self.openat2(&prefix, dir_flags) {
                Ok(fd) => fd,
                Err(Errno::NOTDIR) => return Err(not_a_directory(path)),
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&parent, component, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            // The umask may have taken bits away.
                            let _ = rustix::fs::chmodat(
                                &parent,
                                component,
                                Mode::from_raw_mode(0o755),
                                rustix::fs::AtFlags::empty(),
                            );
                        }
                        // A dangling symlink, or a file made meanwhile.
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(SpecError::io(context(), e.into())),
                    }
                    match self.openat2(&prefix, dir_flags) {
                        Ok(fd) => fd,
                        Err(Errno::NOTDIR) => return Err(not_a_directory(path)),
                        Err(Errno::NOENT) => {
                            return Err(SpecError::invalid(format!(
                                "Cannot mkdir: {prefix} is a symbolic link to a missing directory"
                            )))
                        }
                        Err(e) => return Err(SpecError::io(context(), e.into())),
                    }
                }
                Err(e) => return Err(SpecError::io(context(), e.into())),
            };
        }
        Ok(())
    }
}

fn not_a_directory(path: &str) -> SpecError {
    SpecError::invalid(format!("Cannot mkdir: {path} is not a directory"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn reads_stay_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("secret"), "inside").unwrap();
        // Absolute and relative escapes both land inside the root.
        symlink(outside.path().join("secret"), root.path().join("etc/abs")).unwrap();
        symlink("../../../../../../secret", root.path().join("etc/rel")).unwrap();
        let r = RootDir::open(root.path()).unwrap();
        assert_eq!(r.read_file("/etc/rel", 100).unwrap().unwrap(), b"inside");
        // The absolute target does not exist inside the root.
        assert_eq!(r.read_file("/etc/abs", 100).unwrap(), None);
        assert_eq!(r.read_file("/nope/x", 100).unwrap(), None);
        assert_eq!(r.read_file("/secret/x", 100).unwrap(), None);
        let err = r.read_file("/secret", 3).unwrap_err().to_string();
        assert!(err.contains("larger than 3 bytes"), "{err}");
        let err = r.read_file("/etc", 3).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn mkdir_all_creates_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("escape")).unwrap();
        std::fs::write(root.path().join("file"), "").unwrap();
        let r = RootDir::open(root.path()).unwrap();
        r.mkdir_all("/a/b/c").unwrap();
        let meta = std::fs::metadata(root.path().join("a/b/c")).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        r.mkdir_all("/a/b/c").unwrap();
        // Through the symlink: created as <root><outside>/x, not on the host.
        let err = r.mkdir_all("/escape/x").unwrap_err().to_string();
        assert!(
            err.contains("symbolic link to a missing directory"),
            "{err}"
        );
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        let err = r.mkdir_all("/file/x").unwrap_err().to_string();
        assert_eq!(err, "Cannot mkdir: /file/x is not a directory");
        let err = r.mkdir_all("/file").unwrap_err().to_string();
        assert_eq!(err, "Cannot mkdir: /file is not a directory");
    }
}
