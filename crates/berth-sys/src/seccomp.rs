//! seccomp(2): attaching a BPF filter to the calling thread, and asking the
//! kernel which filter flags and return actions it knows.
//!
//! The filter itself is compiled elsewhere (berth-seccomp, in the parent);
//! these wrappers only hand ready instructions to the kernel, so they can
//! run in a forked child without allocating.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::{check, Result};

/// `SECCOMP_FILTER_FLAG_TSYNC`: synchronize every thread of the process to the new filter.
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action except `SECCOMP_RET_ALLOW`.
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: keep Speculative Store Bypass mitigation off.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a user-notification fd.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`: with TSYNC, fail with ESRCH instead of returning a thread id.
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: notified tasks wait killably once the agent received the request.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

/// Attaches `filter` to the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`).
///
/// Needs `no_new_privs` or `CAP_SYS_ADMIN` in the caller's user namespace.
/// Returns the notification listener when `flags` holds
/// [`FLAG_NEW_LISTENER`]. Allocates nothing, so it is safe between fork and exec.
pub fn set_mode_filter(flags: u32, filter: &[SockFilter]) -> Result<Option<OwnedFd>> {
    let Ok(len) = libc::c_ushort::try_from(filter.len()) else {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    };
    let prog = SockFprog {
        len,
        filter: filter.as_ptr(),
    };
    // SAFETY: `prog` points at `len` initialized instructions that outlive the
    // call; the kernel copies them and keeps no pointer into our memory.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const SockFprog,
        )
    })?;
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER a successful call returns a new fd that nobody else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    if ret != 0 {
        // TSYNC without TSYNC_ESRCH: `ret` is the id of a thread that could
        // not be synchronized, and the filter was not attached.
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(None)
}

/// Whether the running kernel accepts this combination of filter flags.
///
/// Probes like libseccomp does: the kernel checks the flags before it reads
/// the program, so a null program fails with EFAULT for known flags and with
/// EINVAL for unknown ones, and nothing is ever attached.
pub fn filter_flags_supported(flags: u32) -> bool {
    // SAFETY: a null program pointer is never dereferenced by us; the kernel
    // validates it with copy_from_user and returns EFAULT.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<SockFprog>(),
        )
    };
    ret == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// Whether the running kernel knows the filter return action `action`
/// (a `SECCOMP_RET_*` value, data bits ignored).
pub fn action_available(action: u32) -> bool {
    // SAFETY: the kernel reads one u32 from a live local.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0 as libc::c_ulong,
            &action as *const u32,
        )
    };
    ret == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_know_old_flags_and_reject_nonsense() {
        // LOG exists since Linux 4.14; bit 31 is not a flag in any kernel.
        assert!(filter_flags_supported(FLAG_LOG));
        assert!(!filter_flags_supported(1 << 31));
        // SECCOMP_RET_ALLOW is always there; 0x7ff80000 is no action.
        assert!(action_available(0x7fff_0000));
        assert!(!action_available(0x7ff8_0000));
    }

    #[test]
    fn oversized_program_is_refused_before_the_syscall() {
        let huge = vec![SockFilter::default(); usize::from(u16::MAX) + 1];
        let err = set_mode_filter(0, &huge).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }
}
