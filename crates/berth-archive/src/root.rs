//! The layer directory being written, and path resolution confined to it.
//!
//! Every directory an entry is written into is found with
//! `openat2(root_fd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the
//! kernel resolves `..` and every symlink (absolute ones included) as if the
//! layer directory were `/`, so no path, whatever symlinks earlier entries
//! planted, reaches outside it. The entry's last component is then created
//! with an `*at` call on that directory descriptor, which never follows it.
//!
//! Tars list a directory's files together, so the last parent directory is
//! cached: one `openat2` per directory instead of one per file. The cache
//! is dropped whenever an entry replaces that directory or one of its
//! ancestors, so a later symlink over a directory is honoured.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    chownat, fchmod, fstat, mkdirat, openat2, AtFlags, Gid, Mode, OFlags, ResolveFlags, Uid, CWD,
};
use rustix::io::Errno;

use crate::fsops::{open_subdir, DIR_FLAGS};
use crate::path::is_ancestor_or_self;

/// The setgid mode bit.
pub(crate) const S_ISGID: u32 = 0o2000;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Mode of directories created because an entry's parent was missing (what
/// docker and containerd use).
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// The cached parent directory.
struct Cached {
    path: Vec<u8>,
    fd: OwnedFd,
    /// New files in a setgid directory take its group, not ours.
    setgid: bool,
}

pub(crate) struct LayerRoot {
    root: OwnedFd,
    cache: Option<Cached>,
    /// Owner of implicitly created directories: the layer's root user,
    /// after id mapping.
    implicit_owner: (Uid, Gid),
}

impl LayerRoot {
    /// Opens `dest`, which the caller trusts (symlinks in it are followed).
    pub(crate) fn open(dest: &Path, implicit_owner: (Uid, Gid)) -> io::Result<Self> {
        let root = rustix::fs::open(dest, DIR_FLAGS, Mode::empty())?;
        Ok(LayerRoot {
            root,
            cache: None,
            implicit_owner,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens the directory at the normalised `path` ("" is the root),
    /// resolved inside the root. Follows symlinks, confined.
    pub(crate) fn resolve_dir(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let p: &[u8] = if path.is_empty() { b"." } else { path };
        resolve(self.root.as_fd(), p, DIR_FLAGS)
    }

    /// Like [`Self::resolve_dir`] but does not follow a symlink in the last
    /// component: for revisiting a directory an entry created.
    pub(crate) fn reopen_dir(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let p: &[u8] = if path.is_empty() { b"." } else { path };
        resolve(self.root.as_fd(), p, DIR_FLAGS | OFlags::NOFOLLOW)
    }

    /// The directory entries go into, creating missing directories (inside
    /// the root) on the way, and whether it has the setgid bit.
    pub(crate) fn parent(&mut self, path: &[u8]) -> io::Result<(BorrowedFd<'_>, bool)> {
        let cached = match self.cache.take() {
            Some(c) if c.path.as_slice() == path => c,
            _ => {
                let fd = match self.resolve_dir(path) {
                    Ok(fd) => fd,
                    Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                        self.create_dirs(path)?
                    }
                    Err(e) => return Err(e),
                };
                let setgid = fstat(&fd)?.st_mode & S_ISGID != 0;
                Cached {
                    path: path.to_vec(),
                    fd,
                    setgid,
                }
            }
        };
        let c = &*self.cache.insert(cached);
        Ok((c.fd.as_fd(), c.setgid))
    }

    /// Makes `fd`, the directory at `path`, the cached parent.
    pub(crate) fn remember(&mut self, path: Vec<u8>, fd: OwnedFd, setgid: bool) {
        self.cache = Some(Cached { path, fd, setgid });
    }

    /// Forgets the cached directory if `changed` is it or an ancestor.
    pub(crate) fn invalidate(&mut self, changed: &[u8]) {
        if matches!(&self.cache, Some(c) if is_ancestor_or_self(changed, &c.path)) {
            self.cache = None;
        }
    }

    /// Creates the missing directories of `path` one component at a time.
    /// Each prefix is resolved from the root (so symlinks among existing
    /// components are followed, confined); a missing component is created
    /// with `mkdirat` on the descriptor of its resolved parent.
    fn create_dirs(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let mut cur = self.resolve_dir(b"")?;
        let mut end = 0;
        for comp in path.split(|&b| b == b'/') {
            end += comp.len();
            let prefix = &path[..end];
            end += 1;
            match self.resolve_dir(prefix) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
            match mkdirat(&cur, comp, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    // It exists but does not resolve: a dangling symlink.
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{:?} is a dangling symlink",
                            String::from_utf8_lossy(prefix)
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            let fd = open_subdir(cur.as_fd(), comp)?;
            let (uid, gid) = self.implicit_owner;
            chownat(&cur, comp, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
            // Set after chown and independent of the umask.
            fchmod(&fd, Mode::from_raw_mode(IMPLICIT_DIR_MODE))?;
            cur = fd;
        }
        Ok(cur)
    }
}

/// `openat2` confined to `root`. EAGAIN means a concurrent rename raced the
/// resolution; retry a few times.
fn resolve(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let mut attempts = 0;
    loop {
        match openat2(root, path, flags, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) if attempts < 16 => attempts += 1,
            r => return Ok(r?),
        }
    }
}

/// Opens `path` (trusted, absolute or relative to the working directory)
/// as a directory; used for the sources of `write_*`.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty())?)
}
