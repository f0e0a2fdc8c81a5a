//! The container side of a process's stdio: pipes, or a pty whose master
//! arrives over a console socket (runc's convention, which both the
//! embedded runtime and external runtimes follow).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::{Error, Result};

/// The shim's ends of a process's stdio.
#[derive(Debug, Default)]
pub struct ShimEnds {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master, for a process with a terminal.
    pub pty: Option<OwnedFd>,
}

/// The process's ends, handed to the runtime as fds 0, 1 and 2.
#[derive(Debug)]
pub struct ChildEnds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Pipes for a process without a terminal. Without `stdin` the process
/// reads /dev/null. The shim's output ends are non-blocking for its event
/// loop.
pub fn pipes(stdin: bool) -> Result<(ShimEnds, ChildEnds)> {
    let pipe =
        || pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("creating a pipe")(e.into()));
    let (in_r, in_w) = if stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (dev_null()?, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // All non-blocking: the event loop must never wait on the container.
    // Input the process does not take yet waits in the shim, and the
    // client that sent it is not read meanwhile (see `server`).
    if let Some(w) = &in_w {
        set_nonblocking(w)?;
    }
    set_nonblocking(&out_r)?;
    set_nonblocking(&err_r)?;
    Ok((
        ShimEnds {
            stdin: in_w,
            stdout: Some(out_r),
            stderr: Some(err_r),
            pty: None,
        },
        ChildEnds {
            stdin: in_r,
            stdout: out_w,
            stderr: err_w,
        },
    ))
}

/// /dev/null three times: a process with a terminal gets its stdio from
/// the pty, but the runtime still wants something at 0, 1 and 2.
pub fn null_ends() -> Result<ChildEnds> {
    Ok(ChildEnds {
        stdin: dev_null()?,
        stdout: dev_null()?,
        stderr: dev_null()?,
    })
}

pub fn dev_null() -> Result<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys("opening /dev/null")(e.into()))
}

pub fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd).map_err(|e| Error::sys("fcntl")(e.into()))?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| Error::sys("fcntl")(e.into()))
}

/// A listening console socket at `path` (removed first if stale).
pub fn console_listener(path: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(Error::path("binding the console socket", path))
}

/// Takes the pty master the runtime sent to the console socket. Called
/// after the runtime returned, so the message is already queued.
pub fn receive_pty(listener: &UnixListener) -> Result<OwnedFd> {
    listener
        .set_nonblocking(true)
        .map_err(Error::sys("console socket"))?;
    let (conn, _) = listener.accept().map_err(Error::sys(
        "the runtime did not connect to the console socket",
    ))?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 256];
    rustix::net::recvmsg(
        conn.as_fd(),
        &mut [std::io::IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receiving the pty from the console socket")(e.into()))?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                set_nonblocking(&fd)?;
                return Ok(fd);
            }
        }
    }
    Err(Error::State(
        "the runtime connected to the console socket but sent no pty".into(),
    ))
}
