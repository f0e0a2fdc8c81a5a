#![forbid(unsafe_code)]
//! `berth-shim`: one supervisor per container.
//!
//! berthd runs `berth-shim --id ... --socket ...`; the process forks, the
//! parent waits until the child has created the container and bound the
//! socket (or failed), prints the shim's pid and exits 0 (or prints the
//! error and exits 1). The child has left the daemon's session and is
//! reparented away from it, so the container outlives the daemon. It is a
//! child subreaper, holds the container's stdio or pty, writes its log,
//! reaps it, and serves `berth-shim-proto` until `delete`.
//!
//! No async runtime: one thread, epoll, signalfd (see `server`).

mod backend;
mod config;
mod error;
mod logger;
mod server;
mod stdio;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};

use config::Config;
use error::{Error, Result};

fn main() {
    let cfg = match Config::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            std::process::exit(2);
        }
    };
    match launch(cfg) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("berth-shim: {e}");
            std::process::exit(1);
        }
    }
}

/// Readiness bytes on the launch pipe.
const READY: u8 = b'O';
const FAILED: u8 = b'E';

/// Forks the supervisor and reports how its start went.
fn launch(cfg: Config) -> Result<()> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(Error::path("creating", &cfg.state_dir))?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("creating a pipe")(e.into()))?;
    match berth_sys::process::clone3(berth_sys::process::CloneArgs::default())
        .map_err(Error::sys("forking the shim"))?
    {
        berth_sys::process::Forked::Child => {
            drop(r);
            let code = supervise(cfg, w);
            std::process::exit(code);
        }
        berth_sys::process::Forked::Parent { child } => {
            drop(w);
            // The first byte says how it went: the container's init, cloned
            // from the supervisor, holds a copy of the pipe until it execs,
            // so end of file cannot be the signal.
            let mut r = std::fs::File::from(r);
            let mut status = [0u8; 1];
            let n = r.read(&mut status).unwrap_or(0);
            if n == 1 && status[0] == READY {
                println!("{child}");
                return Ok(());
            }
            let mut msg = String::new();
            let _ = r.read_to_string(&mut msg);
            // The child failed: collect it, it is ours until we exit.
            if let Some(pid) = rustix::process::Pid::from_raw(child) {
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            }
            if msg.is_empty() {
                msg = "the shim exited before it was ready (see shim.log in its state dir)".into();
            }
            Err(Error::State(msg))
        }
    }
}

/// The supervisor: detaches, creates the container, serves. Returns the
/// process's exit code.
fn supervise(cfg: Config, ready: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    let socket = cfg.socket.clone();
    let mut shim = match prepare(cfg) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.write_all(format!("{}{e}", FAILED as char).as_bytes());
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
    let _ = std::env::set_current_dir("/");
    // The container init (and, with an external runtime, whatever it
    // leaves behind) is reaped here, not by pid 1.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::sys("becoming a child subreaper")(e.into()))?;
    berth_sys::signalfd::block(&[libc::SIGCHLD]).map_err(Error::sys("blocking SIGCHLD"))?;
    let listener = bind(&cfg.socket)?;
    let socket = cfg.socket.clone();
    server::Shim::new(cfg, listener).inspect_err(|_| {
        let _ = std::fs::remove_file(&socket);
    })
}

/// Binds the protocol socket; a live shim on it is an error, a stale
/// socket file is replaced.
fn bind(path: &std::path::Path) -> Result<UnixListener> {
    if UnixStream::connect(path).is_ok() {
        return Err(Error::State(format!(
            "a shim already serves {path:?}; delete that container first"
        )));
    }
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::path("creating", dir))?;
    }
    let l = UnixListener::bind(path).map_err(Error::path("binding the shim socket", path))?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))
        .map_err(|e| Error::path("restricting", path)(e.into()))?;
    Ok(l)
}
