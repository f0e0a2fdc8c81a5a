#![forbid(unsafe_code)]
//! `berth-shim`: one supervisor per container.
//!
//! berthd runs `berth-shim --id ... --socket ...`; the process forks, the
//! parent (the launcher) waits until the child has created the container
//! and bound the socket (or failed), prints the shim's pid and exits 0.
//! On failure it prints `berth-shim: <the runtime's error>` on stderr and
//! exits 1, or docker's 127 / 126 when the container's program does not
//! exist / cannot be executed (so the daemon can answer `docker run` as
//! dockerd does without reading the message); 2 is a usage error. The
//! child has left the daemon's session and is reparented away from it, so
//! the container outlives the daemon. It is a child subreaper, holds the
//! container's stdio or pty, writes its log, reaps it, and serves
//! `berth-shim-proto` until `delete`, then removes what it made (the
//! socket, `exit.json`, everything in its state dir) and exits.
//!
//! No async runtime: one thread, epoll, signalfd (see `server`); the
//! embedded runtime's work runs in short-lived forked helpers (`helper`).

mod backend;
mod config;
mod error;
mod helper;
mod logger;
mod server;
mod stdio;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use config::Config;
use error::{Error, Result};

fn main() {
    // Whatever fds the caller leaked to us are not ours to keep open (and
    // would otherwise live as long as the container).
    let _ = berth_sys::process::close_range(3, false);
    let cfg = match Config::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            std::process::exit(2);
        }
    };
    match launch(cfg) {
        Ok(()) => {}
        Err((code, e)) => {
            eprintln!("berth-shim: {e}");
            std::process::exit(code);
        }
    }
}

/// Readiness bytes on the launch pipe: `READY`, or `FAILED`, the exit
/// code, a big-endian `u32` length and the message.
const READY: u8 = b'O';
const FAILED: u8 = b'E';

/// Forks the supervisor and reports how its start went: `Err` carries the
/// launcher's exit code (see [`Error::launch_exit_code`]).
fn launch(cfg: Config) -> std::result::Result<(), (i32, String)> {
    let fail = |e: Error| (1, e.to_string());
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(Error::path("creating", &cfg.state_dir))
        .map_err(fail)?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| fail(Error::sys("creating a pipe")(e.into())))?;
    match berth_sys::process::clone3(berth_sys::process::CloneArgs::default())
        .map_err(|e| fail(Error::sys("forking the shim")(e)))?
    {
        berth_sys::process::Forked::Child => {
            drop(r);
            let code = supervise(cfg, w);
            std::process::exit(code);
        }
        berth_sys::process::Forked::Parent { child } => {
            drop(w);
            let pid = rustix::process::Pid::from_raw(child).expect("a child's pid is positive");
            let status = read_status(&r, pid);
            if status == Ok(None) {
                println!("{child}");
                return Ok(());
            }
            // The child failed: collect it, it is ours until we exit.
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            Err(match status {
                Ok(Some(failure)) => failure,
                Ok(None) => unreachable!(),
                Err(()) => (
                    1,
                    "the shim exited before it was ready (see shim.log in its state dir)".into(),
                ),
            })
        }
    }
}

/// What the supervisor reported: `Ok(None)` when ready, `Ok(Some((exit
/// code, message)))` when it failed, `Err` when it died without a word.
/// Not read to end of file: the container's init, cloned while the pipe
/// was open, holds a copy until it execs; the supervisor's pidfd tells
/// when it is gone.
fn read_status(
    r: &OwnedFd,
    pid: rustix::process::Pid,
) -> std::result::Result<Option<(i32, String)>, ()> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut exited = false;
    loop {
        match buf.first() {
            Some(&READY) => return Ok(None),
            Some(&FAILED) if buf.len() >= 6 => {
                let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
                if buf.len() >= 6 + len {
                    let msg = String::from_utf8_lossy(&buf[6..6 + len]).into_owned();
                    return Ok(Some((buf[1].into(), msg)));
                }
            }
            Some(&FAILED) | None => {}
            Some(_) => return Err(()),
        }
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let ready = match &pidfd {
            Some(p) => {
                let mut fds = [PollFd::new(r, PollFlags::IN), PollFd::new(p, PollFlags::IN)];
                match poll(&mut fds, exited.then_some(&zero)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return Err(()),
                }
                if !fds[1].revents().is_empty() {
                    exited = true;
                }
                !fds[0].revents().is_empty()
            }
            None => true,
        };
        if ready {
            match rustix::io::read(r.as_fd(), &mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return Err(()),
            }
        } else if exited {
            return Err(());
        }
    }
}

/// The supervisor: detaches, creates the container, serves. Returns the
/// process's exit code.
fn supervise(cfg: Config, ready: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    let socket = cfg.socket.clone();
    let state_dir = cfg.state_dir.clone();
    let mut shim = match prepare(cfg) {
        Ok(s) => s,
        Err(e) => {
            // Leave nothing behind: what the runtime made is already gone.
            let _ = std::fs::remove_dir(state_dir.join("runtime"));
            let _ = std::fs::remove_file(state_dir.join("console.sock"));
            let log = state_dir.join("shim.log");
            if std::fs::metadata(&log).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&log);
            }
            let msg = e.to_string();
            let mut report = vec![FAILED, e.launch_exit_code() as u8];
            report.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            report.extend_from_slice(msg.as_bytes());
            let _ = ready.write_all(&report);
            return 1;
        }
    };
    let _ = ready.write_all(&[READY]);
    drop(ready);
    match shim.run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            let _ = std::fs::remove_file(&socket);
            1
        }
    }
}

fn prepare(cfg: Config) -> Result<server::Shim> {
    // Leave the daemon's session and process group: its signals and its
    // terminal are not ours.
    berth_sys::process::setsid().map_err(Error::sys("setsid"))?;
    let null = stdio::dev_null()?;
    let log_path = cfg.state_dir.join("shim.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(Error::path("opening", &log_path))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| Error::sys("redirecting stdin")(e.into()))?;
    rustix::stdio::dup2_stdout(&null).map_err(|e| Error::sys("redirecting stdout")(e.into()))?;
    rustix::stdio::dup2_stderr(&log).map_err(|e| Error::sys("redirecting stderr")(e.into()))?;
    drop((null, log));
    let _ = std::env::set_current_dir("/");
    // The container init (and, with an external runtime, whatever it
    // leaves behind) is reaped here, not by pid 1.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::sys("becoming a child subreaper")(e.into()))?;
    berth_sys::signalfd::block(&[libc::SIGCHLD]).map_err(Error::sys("blocking SIGCHLD"))?;
    check_socket_free(&cfg.socket)?;
    server::Shim::new(cfg)
}

/// A live shim on the socket is an error (checked before the container
/// is created; the socket is bound after, see `server::Shim::new`).
fn check_socket_free(path: &std::path::Path) -> Result<()> {
    if UnixStream::connect(path).is_ok() {
        return Err(Error::State(format!(
            "a shim already serves {path:?}; delete that container first"
        )));
    }
    Ok(())
}

/// Binds the protocol socket, owner only; a stale socket file is replaced.
pub fn bind(path: &std::path::Path) -> Result<UnixListener> {
    check_socket_free(path)?;
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::path("creating", dir))?;
    }
    // Owner only from the start, not just after a chmod.
    let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let l = UnixListener::bind(path);
    rustix::process::umask(umask);
    let l = l.map_err(Error::path("binding the shim socket", path))?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))
        .map_err(|e| Error::path("restricting", path)(e.into()))?;
    Ok(l)
}
