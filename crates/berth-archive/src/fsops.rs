//! Small file system helpers on directory descriptors.
//!
//! Every helper takes a directory descriptor and a single path component, so
//! no helper ever walks a path: callers obtain the descriptor with
//! `openat2(RESOLVE_IN_ROOT)` (see [`crate::root`]) and the component is a
//! normalised name (never `.`, `..` or containing `/`). Operations on the
//! final component never follow a symlink.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    lgetxattr, llistxattr, lsetxattr, openat, statat, unlinkat, AtFlags, Dir, FileType, Mode,
    OFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use crate::reader::Mtime;

/// Open flags for a directory we read or set metadata on.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Deepest directory tree [`remove_any`] descends into; far more than
/// anything [`crate::apply_layer`] can create, which bounds the open
/// descriptors (one per level) of the recursion.
const MAX_REMOVE_DEPTH: usize = 1024;

/// Opens the subdirectory `name` of `dir` without following a symlink.
pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        DIR_FLAGS | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Removes `name` from `dir` whatever it is (directories recursively),
/// never following symlinks. A missing name is not an error.
pub(crate) fn remove_any(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    remove_at_depth(dir, name, 0)
}

fn remove_at_depth(dir: BorrowedFd<'_>, name: &[u8], depth: usize) -> io::Result<()> {
    match unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        // Linux reports EISDIR for unlink(2) on a directory.
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    if depth >= MAX_REMOVE_DEPTH {
        return Err(io::Error::other(format!(
            "directory tree deeper than {MAX_REMOVE_DEPTH} levels"
        )));
    }
    let sub = open_subdir(dir, name)?;
    // Collect first: unlinking while getdents is iterating may skip entries.
    let names = list_dir(sub.as_fd())?;
    for child in names {
        remove_at_depth(sub.as_fd(), &child, depth + 1)?;
    }
    drop(sub);
    match unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The names in a directory, without `.` and `..`, in the order the file
/// system returns them.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut reader = Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// A path that reaches `name` in `dir` through the directory's procfs magic
/// link. `l*xattr` calls on it resolve the magic link (the directory we
/// already hold, inside the root) and do not follow `name` itself: the only
/// way to set or read xattrs of a symlink or device node by descriptor
/// before `setxattrat(2)` (Linux 6.13). `thread-self`, not `self`: a caller
/// that unshared its file table has descriptors `self` (the main thread)
/// does not.
fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/thread-self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    p
}

/// Sets an xattr on `name` in `dir` without following it.
pub(crate) fn lsetxattr_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    Ok(lsetxattr(
        proc_path(dir, name),
        key,
        value,
        XattrFlags::empty(),
    )?)
}

/// Reads all xattrs of `name` in `dir` without following it, sorted by key.
pub(crate) fn lxattrs_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let path = proc_path(dir, name);
    read_xattrs(
        |buf| llistxattr(path.as_slice(), buf),
        |key, buf| lgetxattr(path.as_slice(), key, buf),
    )
}

/// Reads all xattrs of an open file, sorted by key.
pub(crate) fn fxattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    read_xattrs(
        |buf| rustix::fs::flistxattr(fd, buf),
        |key, buf| rustix::fs::fgetxattr(fd, key, buf),
    )
}

/// Lists then reads xattrs, growing the buffers on ERANGE (the set can
/// change between the calls).
fn read_xattrs(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&CStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match list(&mut names) {
            Ok(n) => break n,
            Err(Errno::RANGE) if names.len() < (1 << 20) => names.resize(names.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 4096];
    for key in names[..len].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let ckey = std::ffi::CString::new(key).map_err(io::Error::other)?;
        let n = loop {
            match get(&ckey, &mut value) {
                Ok(n) => break Some(n),
                Err(Errno::RANGE) if value.len() < (1 << 20) => value.resize(value.len() * 4, 0),
                // Removed between list and get.
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(n) = n {
            out.push((key.to_vec(), value[..n].to_vec()));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `name` in `dir` is a directory (not following symlinks).
pub(crate) fn is_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// Access and modification time both set to the entry's mtime.
pub(crate) fn timestamps(m: Mtime) -> Timestamps {
    let t = Timespec {
        tv_sec: m.sec,
        tv_nsec: i64::from(m.nsec),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// The calling thread's umask, read from /proc/thread-self/status (reading
/// it with umask(2) would change it for every thread sharing it for a
/// moment; and a thread that did `unshare(CLONE_FS)` has its own). `None`
/// if unknown, in which case modes are always set explicitly.
pub(crate) fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_is_readable() {
        // Whatever it is, it is a permission mask.
        let m = current_umask().expect("umask from /proc/thread-self/status");
        assert_eq!(m & !0o777, 0);
    }
}
