//! Process creation and replacement: clone3, execve, setns, unshare, _exit.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{check, Result};

/// Extra clone3 arguments beyond the namespace flags.
#[derive(Debug, Default, Clone, Copy)]
pub struct CloneArgs<'a> {
    /// `CLONE_NEW*` and other `CLONE_*` flags.
    pub flags: u64,
    /// Place the child directly into this cgroup v2 directory (`CLONE_INTO_CGROUP`).
    pub into_cgroup: Option<BorrowedFd<'a>>,
}

/// Where the calling code now runs after [`clone3`].
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7); libc's constant has the wrong width.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct RawCloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks the calling process with clone3, like `fork()` but with namespace
/// flags and `CLONE_INTO_CGROUP`. Falls back to clone(2) where clone3 is missing.
///
/// The caller must be single-threaded: the child gets a copy of the
/// address space, and any lock held by another thread would stay locked
/// forever in the child. berth's runtime never starts threads before this.
pub fn clone3(args: CloneArgs<'_>) -> Result<Forked> {
    // With CLONE_PARENT the kernel requires exit_signal 0: the child
    // inherits the caller's exit signal instead.
    let exit_signal = if args.flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut raw = RawCloneArgs {
        flags: args.flags,
        exit_signal,
        ..Default::default()
    };
    if let Some(fd) = args.into_cgroup {
        raw.flags |= CLONE_INTO_CGROUP;
        raw.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork:
    // the child continues on a copy of our stack. `raw` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut raw as *mut RawCloneArgs,
            std::mem::size_of::<RawCloneArgs>(),
        )
    };
    let ret = match check(ret) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) && args.into_cgroup.is_none() => {
            // SAFETY: as above; clone(2) with a null stack is fork-like.
            check(unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    args.flags | libc::SIGCHLD as u64,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                )
            })?
        }
        other => other?,
    };
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent { child: ret as i32 }
    })
}

/// Replaces the process image. Returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> std::io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: all pointers come from live CStrs and both arrays are NULL-terminated.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}

/// Leaves the process at once, without running destructors or atexit
/// handlers: the right exit for a forked child that failed.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Runs `handler` when the process exits normally (returns from main or
/// calls `exit`), as C's `atexit`: for state held in statics, which Rust
/// never drops. Fails only when the C library's handler table is full.
pub fn at_exit(handler: extern "C" fn()) -> Result<()> {
    // SAFETY: registers a function pointer; the handler takes no arguments.
    let ret = unsafe { libc::atexit(handler) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::other("atexit: the handler table is full"))
    }
}

/// Joins the namespace behind `fd` (`nstype` is a `CLONE_NEW*` flag or 0).
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> Result<()> {
    // SAFETY: plain syscall on a valid fd.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) } as libc::c_long).map(drop)
}

/// Moves the calling process into new namespaces.
pub fn unshare(flags: libc::c_int) -> Result<()> {
    // SAFETY: plain syscall; the process is single-threaded when berth calls it.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

/// `prctl` with integer arguments.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<libc::c_int> {
    // SAFETY: integer-only prctl options read no memory of ours.
    check(unsafe { libc::prctl(option, arg2, arg3, 0, 0) } as libc::c_long)
        .map(|r| r as libc::c_int)
}

/// Sets an rlimit of the calling process.
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    check(unsafe { libc::setrlimit(resource as _, &lim) } as libc::c_long).map(drop)
}

/// Sets the execution domain (persona) of the calling process; it
/// survives execve, so the container's program sees it (uname's machine).
pub fn personality(persona: libc::c_ulong) -> Result<()> {
    // SAFETY: plain syscall with an integer argument.
    check(unsafe { libc::personality(persona) } as libc::c_long).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio)`: the I/O priority of the
/// calling process, inherited by its children and kept across execve.
pub fn ioprio_set_self(ioprio: i32) -> Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: integer-only syscall.
    check(unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_long,
            ioprio as libc::c_long,
        )
    })
    .map(drop)
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER0, 48 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)`: scheduling policy and parameters of the
/// calling thread, kept across execve.
pub fn sched_setattr_self(attr: &SchedAttr) -> Result<()> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid, sized sched_attr for the duration of the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::c_long,
            &attr as *const SchedAttr,
            0 as libc::c_long,
        )
    })
    .map(drop)
}

/// Creates a new session; the caller becomes its leader.
pub fn setsid() -> Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() } as libc::c_long).map(drop)
}

/// Makes `fd` (a terminal) the controlling terminal of the calling session leader.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } as libc::c_long).map(drop)
}

/// Sets the size of a terminal.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives for the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } as libc::c_long).map(drop)
}

/// Closes every fd from `first` upwards, or marks them close-on-exec.
pub fn close_range(first: u32, cloexec_only: bool) -> Result<()> {
    let flags = if cloexec_only {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: close_range only affects our fd table; callers own every fd >= first.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) }).map(drop)
}

/// Clears FD_CLOEXEC on a raw fd number that the caller handed us to pass
/// through (runc's `--preserve-fds`). EBADF if it is not open.
pub fn clear_cloexec(fd: i32) -> Result<()> {
    // SAFETY: fcntl on an arbitrary number is harmless; a closed one is EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } as libc::c_long).map(drop)
}

/// Joins a new anonymous session keyring (KEYCTL_JOIN_SESSION_KEYRING).
pub fn join_session_keyring() -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for a new anonymous keyring; no memory is read.
    check(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    })
    .map(drop)
}

/// Replaces the process image with the executable behind `fd` (execveat
/// with AT_EMPTY_PATH). Returns only on failure.
pub fn fexecve(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> std::io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point into live CStrs; fd is valid.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    std::io::Error::last_os_error()
}

/// Gives every signal its default disposition and an empty blocked mask.
/// A process inherits ignored signals and the mask across execve, and a
/// Rust program (the runtime) ignores SIGPIPE: without this, containers
/// would start with SIGPIPE ignored.
pub fn reset_signal_dispositions() -> Result<()> {
    /// The kernel's struct sigaction (not glibc's), for rt_sigaction.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // The raw syscall, not glibc's signal(): glibc refuses its reserved
    // real-time signals (32, 33), which a parent may still have ignored.
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the kernel reads a struct of the size we pass; SIG_DFL runs no code.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let empty: u64 = 0;
    // SAFETY: an 8-byte mask (the kernel's sigset size) that lives for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    })
    .map(drop)
}

/// Sends signal `signal` (any number, real-time ones too, which rustix's
/// safe `Signal` cannot name) to process `pid`, or to process group
/// `-pid` when `pid` is negative.
pub fn kill(pid: i32, signal: i32) -> Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::kill(pid, signal) } as libc::c_long).map(drop)
}

/// Prepares `cmd` for an init's child (tini's "isolate child"): its process
/// is the leader of a new process group and, when its stdin is the
/// controlling terminal, the terminal's foreground group, so a ^C typed on
/// a container's tty goes to the program and not to the init; and it
/// starts with an empty signal mask, whatever the caller blocked (std
/// passes the parent's mask on, and an init blocks every signal).
pub fn isolate_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: the hook runs in the forked child before exec and makes only
    // async-signal-safe calls (sigemptyset/sigaddset on a local set,
    // sigprocmask, getpgrp, ioctl); it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTTOU);
            // A background group taking the terminal gets SIGTTOU (which
            // stops it) unless SIGTTOU is blocked: block it for the call.
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            let rc = libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
            let err = std::io::Error::last_os_error();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            match err.raw_os_error() {
                _ if rc == 0 => Ok(()),
                // No terminal on stdin (a pipe, /dev/null, closed), or not
                // ours: there is no foreground to take.
                Some(libc::ENOTTY | libc::ENXIO | libc::EBADF) => Ok(()),
                _ => Err(err),
            }
        });
    }
}
