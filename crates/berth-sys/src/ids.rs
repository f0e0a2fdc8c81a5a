//! Identity changes: uid, gid and supplementary groups.
//!
//! These go through glibc so that every thread of the process changes
//! identity together (glibc broadcasts set*id to all threads).

use crate::{check, Result};

pub fn setresuid(uid: u32) -> Result<()> {
    // SAFETY: plain syscall wrapper.
    check(unsafe { libc::setresuid(uid, uid, uid) } as libc::c_long).map(drop)
}

pub fn setresgid(gid: u32) -> Result<()> {
    // SAFETY: plain syscall wrapper.
    check(unsafe { libc::setresgid(gid, gid, gid) } as libc::c_long).map(drop)
}

pub fn setgroups(groups: &[u32]) -> Result<()> {
    // SAFETY: the slice is valid for its length during the call.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } as libc::c_long).map(drop)
}
