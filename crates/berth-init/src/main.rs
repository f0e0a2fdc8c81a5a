#![forbid(unsafe_code)]
//! berth-init: the init of `docker run --init`, bind-mounted by berthd at
//! `/sbin/docker-init` and started as `/sbin/docker-init -- CMD ARGS...`.
//!
//! A container's PID 1 gets no default signal actions (the kernel drops a
//! signal PID 1 has no handler for) and inherits every orphan. Most
//! programs are written for neither: a shell as PID 1 ignores `docker
//! stop`'s SIGTERM, and a program that never waits for grandchildren fills
//! the process table with zombies. berth-init runs the program as its
//! child, in a process group of its own that owns the terminal if there is
//! one, forwards every signal it can catch to it (to its whole group with
//! `-g`), reaps every child that dies, and exits with the program's exit
//! code, or 128 + the signal that killed it, as a shell reports it.
//!
//! Single-threaded and synchronous: every catchable signal is blocked and
//! read from a signalfd; SIGCHLD means "reap". Not PID 1 (run by hand, or
//! in a shared PID namespace) it makes itself a child subreaper, so
//! orphaned descendants still come to it. Linked statically (`build.rs`):
//! it runs in images without a libc.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::process::{Command, ExitCode};

use berth_sys::signalfd::{self, SignalFd};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions, WaitStatus};

const USAGE: &str = "usage: berth-init [-g] [--] PROGRAM [ARGS...]

Runs PROGRAM as its child, forwards the signals it receives to it, reaps
every zombie, and exits with PROGRAM's exit status (128+N if signal N
killed it).

  -g         forward signals to PROGRAM's process group, not only PROGRAM
  --version  print the version and exit
  -h         print this help and exit";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Invocation {
    Run {
        /// Forward to the child's process group (`kill(-pid)`).
        group: bool,
        program: Vec<OsString>,
    },
    Version,
    Help,
}

/// tini's command line, the part docker uses: options, then `--` or the
/// first non-option, then the program and its arguments untouched.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, String> {
    let mut args = args.into_iter().peekable();
    let mut group = false;
    while let Some(arg) = args.peek() {
        match arg.to_str() {
            Some("--") => {
                args.next();
                break;
            }
            Some("-g") => group = true,
            Some("--version") => return Ok(Invocation::Version),
            Some("-h" | "--help") => return Ok(Invocation::Help),
            Some(flag) if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option {flag:?}"));
            }
            _ => break,
        }
        args.next();
    }
    let program: Vec<OsString> = args.collect();
    if program.is_empty() {
        return Err("no program to run".to_string());
    }
    Ok(Invocation::Run { group, program })
}

/// The signals berth-init takes and forwards: all of them but SIGKILL and
/// SIGSTOP (which cannot be caught) and the synchronous faults, which are
/// only ever the init's own bug and must be allowed to kill it. glibc's
/// two internal real-time signals (32, 33) cannot be blocked and are left
/// out by the set itself.
fn forwarded_signals() -> Vec<i32> {
    const NOT_FORWARDED: &[i32] = &[
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGSYS,
    ];
    (1..=libc::SIGRTMAX())
        .filter(|s| !NOT_FORWARDED.contains(s))
        .collect()
}

/// A shell's exit code for a wait status: the exit code, or 128 + the
/// signal that killed the process.
fn exit_code(status: WaitStatus) -> u8 {
    if let Some(code) = status.exit_status() {
        code as u8
    } else if let Some(sig) = status.terminating_signal() {
        (128 + sig) as u8
    } else {
        // Stopped or continued: not an end; callers only pass ends.
        1
    }
}

fn main() -> ExitCode {
    match parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Run { group, program }) => match run(group, &program) {
            Ok(code) => ExitCode::from(code),
            Err((code, message)) => {
                eprintln!("berth-init: {message}");
                ExitCode::from(code)
            }
        },
        Ok(Invocation::Version) => {
            println!("berth-init version {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth-init: {e}\n{USAGE}");
            ExitCode::from(1)
        }
    }
}

/// An exit code and what to print before exiting with it.
type Failure = (u8, String);

fn run(group: bool, program: &[OsString]) -> Result<u8, Failure> {
    let fail = |what: &str, e: std::io::Error| (1, format!("{what}: {e}"));
    let signals = forwarded_signals();
    // Blocked before the child exists, so that no signal (SIGCHLD above
    // all) can arrive before the signalfd is there to take it.
    signalfd::block(&signals).map_err(|e| fail("blocking signals", e))?;
    let sfd = SignalFd::new(&signals).map_err(|e| fail("creating a signalfd", e))?;
    let me = rustix::process::getpid();
    if !me.is_init() {
        rustix::process::set_child_subreaper(Some(me))
            .map_err(|e| fail("becoming a child subreaper", e.into()))?;
    }

    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..]);
    // Its own group, the terminal, an empty signal mask; std resets SIGPIPE.
    berth_sys::process::isolate_child(&mut cmd);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            // A shell's codes: 127 not found, 126 found but not runnable.
            let code = match e.kind() {
                ErrorKind::NotFound => 127,
                ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
            return Err((code, format!("cannot run {:?}: {e}", program[0])));
        }
    };
    let child_pid = child.id() as i32;
    // The std handle would only wait for the child; reaping is done below.
    drop(child);

    loop {
        while let Some(sig) = sfd.read().map_err(|e| fail("reading the signalfd", e))? {
            if sig == libc::SIGCHLD {
                continue;
            }
            let target = if group { -child_pid } else { child_pid };
            // ESRCH: the child is already gone; its exit is reaped below.
            let _ = berth_sys::process::kill(target, sig);
        }
        if let Some(status) = reap(child_pid).map_err(|e| fail("waiting for children", e))? {
            return Ok(exit_code(status));
        }
        let mut fds = [PollFd::new(&sfd, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(fail("waiting for signals", e.into())),
        }
    }
}

/// Reaps every child that has ended; returns the program's status once it
/// is among them. The remaining processes die with the PID namespace when
/// PID 1 exits.
fn reap(child_pid: i32) -> std::io::Result<Option<WaitStatus>> {
    let mut found = None;
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if Pid::as_raw(Some(pid)) == child_pid && (status.exited() || status.signaled()) {
                    found = Some(status);
                }
            }
            Ok(None) | Err(rustix::io::Errno::CHILD) => return Ok(found),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_dockers_invocation_and_tinis_options() {
        let run = |group, program: &[&str]| Invocation::Run {
            group,
            program: os(program),
        };
        assert_eq!(
            parse(os(&["--", "sh", "-c", "x"])),
            Ok(run(false, &["sh", "-c", "x"]))
        );
        assert_eq!(
            parse(os(&["-g", "--", "ps", "-ef"])),
            Ok(run(true, &["ps", "-ef"]))
        );
        assert_eq!(
            parse(os(&["sleep", "-1"])),
            Ok(run(false, &["sleep", "-1"]))
        );
        assert_eq!(parse(os(&["--", "--", "x"])), Ok(run(false, &["--", "x"])));
        assert_eq!(parse(os(&["--version"])), Ok(Invocation::Version));
        assert_eq!(parse(os(&["-h"])), Ok(Invocation::Help));
        assert!(parse(os(&["--"])).is_err());
        assert!(parse(os(&[])).is_err());
        assert!(parse(os(&["-x", "--", "sh"])).unwrap_err().contains("-x"));
    }

    #[test]
    fn forwards_what_can_be_caught_but_faults() {
        let s = forwarded_signals();
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGCHLD,
        ] {
            assert!(s.contains(&sig), "{sig}");
        }
        assert!(s.contains(&libc::SIGRTMAX()));
        for sig in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGABRT] {
            assert!(!s.contains(&sig), "{sig}");
        }
    }
}
