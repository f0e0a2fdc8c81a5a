//! Heavy work in a forked child, so the supervisor stays small.
//!
//! The embedded runtime parses the container's config, computes its plan,
//! clones its processes and walks cgroupfs: megabytes of code and heap
//! that a supervisor idling for weeks should not keep mapped. Each such
//! operation runs in a child forked for it (the shim is single-threaded,
//! so forking without exec is safe): its page faults and allocations are
//! its own and vanish when it exits; only the answer comes back, as JSON
//! over a pipe. The processes it starts (the container's init, an exec)
//! are reparented to the supervisor, a child subreaper, when it exits.

use std::os::fd::{AsFd, OwnedFd};

use berth_shim_proto::ErrorCode;
use rustix::event::{poll, PollFd, PollFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
enum Reply<T> {
    Ok(T),
    Err {
        code: ErrorCode,
        message: String,
        /// An [`Error::CannotStart`], which keeps its meaning across.
        cannot_start: bool,
    },
}

/// Runs `f` in a forked child and returns its result.
pub fn run<T: Serialize + DeserializeOwned>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("creating a pipe")(e.into()))?;
    match berth_sys::process::clone3(berth_sys::process::CloneArgs::default())
        .map_err(Error::sys("forking a helper"))?
    {
        berth_sys::process::Forked::Child => {
            drop(r);
            // The supervisor takes SIGCHLD from a signalfd; what the
            // runtime starts from here must not inherit that mask.
            let _ = berth_sys::signalfd::unblock(&[libc::SIGCHLD]);
            let reply = match f() {
                Ok(v) => Reply::Ok(v),
                Err(e) => Reply::Err {
                    code: e.code(),
                    message: e.to_string(),
                    cannot_start: matches!(e, Error::CannotStart { .. }),
                },
            };
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            let mut msg = (body.len() as u32).to_be_bytes().to_vec();
            msg.extend_from_slice(&body);
            let _ = write_all(&w, &msg);
            berth_sys::process::exit_now(0)
        }
        berth_sys::process::Forked::Parent { child } => {
            drop(w);
            let pid = rustix::process::Pid::from_raw(child).expect("a child's pid is positive");
            let msg = read_reply(&r, pid);
            // Once it has answered, the helper's exit (unmapping the
            // runtime's heap, most of a millisecond) need not hold the
            // supervisor: the SIGCHLD sweep reaps it, as an unknown child.
            // One that failed to answer is gone or going: wait for it.
            let wait = match msg {
                Ok(_) => rustix::process::WaitOptions::NOHANG,
                Err(_) => rustix::process::WaitOptions::empty(),
            };
            let _ = rustix::process::waitpid(Some(pid), wait);
            let msg = msg?;
            match serde_json::from_slice::<Reply<T>>(&msg) {
                Ok(Reply::Ok(v)) => Ok(v),
                Ok(Reply::Err {
                    code,
                    message,
                    cannot_start,
                }) if cannot_start => Err(Error::CannotStart {
                    kind: code.kind(),
                    message,
                }),
                Ok(Reply::Err { code, message, .. }) => Err(Error::Remote { code, message }),
                Err(e) => Err(Error::State(format!(
                    "unreadable answer from a helper: {e}"
                ))),
            }
        }
    }
}

/// Reads one length-prefixed answer. Not to end of file: a container init
/// the helper cloned holds a copy of the pipe until it execs. A helper
/// that dies without answering is noticed through its pidfd.
fn read_reply(r: &OwnedFd, pid: rustix::process::Pid) -> Result<Vec<u8>> {
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| Error::sys("opening a helper's pidfd")(e.into()))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut exited = false;
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= 4 + len {
                buf.drain(..4);
                buf.truncate(len);
                return Ok(buf);
            }
        }
        let mut fds = [
            PollFd::new(r, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        // Once the helper is gone, take what is in the pipe and no more.
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, exited.then_some(&zero)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("waiting for a helper")(e.into())),
        }
        let readable = !fds[0].revents().is_empty();
        if !fds[1].revents().is_empty() {
            exited = true;
        }
        if readable {
            match rustix::io::read(r.as_fd(), &mut chunk) {
                Ok(0) => return Err(helper_died()),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::sys("reading a helper's answer")(e.into())),
            }
        }
        if exited {
            return Err(helper_died());
        }
    }
}

fn helper_died() -> Error {
    Error::State("a shim helper process died without answering (see shim.log)".into())
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
