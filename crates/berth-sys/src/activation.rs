//! systemd socket activation (sd_listen_fds(3)): the listening sockets a
//! service manager passed in, as owned descriptors.

use std::os::fd::{FromRawFd, OwnedFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;
/// More than any socket unit would pass; a larger count is a broken
/// environment, not a reason to claim every descriptor.
const MAX_LISTEN_FDS: i32 = 1024;

/// Takes the descriptors named by `LISTEN_FDS` when `LISTEN_PID` is this
/// process, marks them close-on-exec (shims and runtimes must not inherit
/// the API socket) and removes both variables, so the descriptors are
/// claimed once. Empty when the process was not socket-activated.
///
/// Call it once, early, before anything else may own descriptors 3 and up.
pub fn take_listen_fds() -> std::io::Result<Vec<OwnedFd>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok());
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let count = match (for_us, count) {
        (true, Some(n)) if (0..=MAX_LISTEN_FDS).contains(&n) => n,
        (true, Some(n)) => {
            return Err(std::io::Error::other(format!(
                "LISTEN_FDS={n} is out of range"
            )))
        }
        _ => return Ok(Vec::new()),
    };
    let mut fds = Vec::with_capacity(count as usize);
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + count {
        // Refuse a number that is not an open descriptor rather than own it.
        // SAFETY: F_GETFD only reads the descriptor flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(std::io::Error::other(format!(
                "LISTEN_FDS names descriptor {fd}, which is not open"
            )));
        }
        // SAFETY: sd_listen_fds(3)'s contract: with LISTEN_PID naming this
        // process, descriptors 3..3+LISTEN_FDS were passed to it and are
        // used by nothing else (the variables are removed above, so no
        // second call claims them again).
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: F_SETFD on a descriptor we now own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        fds.push(owned);
    }
    Ok(fds)
}
