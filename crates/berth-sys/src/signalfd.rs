//! signalfd(2) and the signal mask, for a single-threaded event loop (the
//! shim) that takes signals as readable events instead of handlers.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::Result;

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset only writes into it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn set_mask(how: libc::c_int, signals: &[i32]) -> Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Blocks `signals` for the calling thread, so they are delivered only
/// through a signalfd. The mask is inherited across fork and exec: unblock
/// before forking anything that does not reset it.
pub fn block(signals: &[i32]) -> Result<()> {
    set_mask(libc::SIG_BLOCK, signals)
}

/// Unblocks `signals` for the calling thread.
pub fn unblock(signals: &[i32]) -> Result<()> {
    set_mask(libc::SIG_UNBLOCK, signals)
}

/// A non-blocking, close-on-exec signalfd for a set of (blocked) signals.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    pub fn new(signals: &[i32]) -> Result<SignalFd> {
        let set = sigset(signals);
        // SAFETY: -1 asks for a new descriptor; `set` is initialised.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Reads one pending signal's number, `None` when none is pending.
    pub fn read(&self) -> Result<Option<i32>> {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        match rustix::io::read(&self.fd, &mut info) {
            Ok(n) if n == info.len() => {
                // ssi_signo is the first field, a u32 in native byte order.
                Ok(Some(
                    u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32,
                ))
            }
            Ok(_) => Ok(None),
            Err(rustix::io::Errno::AGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_signal_arrives_on_the_fd() {
        // SIGUSR2 on this thread only: other tests run on other threads.
        block(&[libc::SIGUSR2]).unwrap();
        let sfd = SignalFd::new(&[libc::SIGUSR2]).unwrap();
        assert_eq!(sfd.read().unwrap(), None);
        // SAFETY: raising a blocked signal at our own thread only queues it.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        let pid = std::process::id() as libc::pid_t;
        // SAFETY: tgkill to our own thread with a blocked signal.
        assert_eq!(
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR2) },
            0
        );
        assert_eq!(sfd.read().unwrap(), Some(libc::SIGUSR2));
        unblock(&[libc::SIGUSR2]).unwrap();
    }
}
