//! Signalling every process of a cgroup, for kill_all when the kernel has
//! no cgroup.kill (before Linux 5.14, or a v1-only host).

use crate::error::Error;

/// SIGKILL to each pid; a process that already exited is not an error.
pub(crate) fn signal_each(pids: &[i32]) -> Result<(), Error> {
    for &pid in pids {
        let Some(p) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::kill_process(p, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(Error::io(
                    "sending SIGKILL to",
                    format!("/proc/{pid}"),
                    e.into(),
                ))
            }
        }
    }
    Ok(())
}

/// Freezes (when possible) so nothing forks while we signal, signals every
/// process, and thaws so the kills are delivered.
pub(crate) fn freeze_signal_thaw(
    freeze: impl Fn(bool) -> Result<(), Error>,
    pids: impl Fn() -> Result<Vec<i32>, Error>,
) -> Result<(), Error> {
    let frozen = freeze(true).is_ok();
    let signalled = pids().and_then(|p| signal_each(&p));
    if frozen {
        freeze(false)?;
    }
    signalled?;
    if !frozen {
        // Without a freezer a fork may have slipped past the first round.
        for _ in 0..3 {
            let left = pids()?;
            if left.is_empty() {
                break;
            }
            signal_each(&left)?;
        }
    }
    Ok(())
}
