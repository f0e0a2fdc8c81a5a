//! Parts of the new mount API that rustix does not wrap: mount_setattr
//! for id-mapped mounts, and open_tree/move_mount to attach them.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, Result};

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const AT_RECURSIVE: u32 = 0x8000;
const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Clones the mount tree at `path` into a detached mount (`open_tree(OPEN_TREE_CLONE)`).
pub fn open_tree_clone(path: &std::ffi::CStr, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: path is a valid C string; the returned fd is owned by us.
    let fd =
        check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })?;
    // SAFETY: the kernel returned a new fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Applies the id mapping of the user namespace `userns` to a detached mount.
pub fn set_idmap(mount: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(mount, &attr, recursive)
}

/// mount_setattr(2) on the mount behind `mount` (and every mount below it
/// with `recursive`).
fn mount_setattr(mount: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> Result<()> {
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: attr lives for the call and has the size we pass.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// Attaches a detached mount on the directory (or file) behind `target`.
pub fn move_mount_to(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: valid fds and empty C strings.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Mount attributes for [`set_attributes`] (MOUNT_ATTR_*).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The three-valued access-time setting; clear it to set one of the next.
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// Sets and clears mount attributes on the mount behind `mount` (and, with
/// `recursive`, every mount below it): the recursive read-only etc. that
/// mount(2) cannot do.
pub fn set_attributes(mount: BorrowedFd<'_>, set: u64, clear: u64, recursive: bool) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(mount, &attr, recursive)
}
