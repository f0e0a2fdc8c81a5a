//! Foreground terminals for `run` and `exec -t` without --console-socket:
//! the runtime makes its own console socket, receives the pty master from
//! the container and copies bytes between it and its own stdio.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::termios::{self, OptionalActions, Termios};

pub struct ConsoleListener {
    path: PathBuf,
    socket: OwnedFd,
}

impl ConsoleListener {
    pub fn bind(path: &Path) -> Result<ConsoleListener> {
        let _ = std::fs::remove_file(path);
        let socket = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )?;
        let addr = rustix::net::SocketAddrUnix::new(path)?;
        rustix::net::bind(&socket, &addr).with_context(|| format!("binding {path:?}"))?;
        rustix::net::listen(&socket, 1)?;
        Ok(ConsoleListener {
            path: path.to_path_buf(),
            socket,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the container's connection and takes the pty master it sends.
    pub fn receive_master(&self) -> Result<OwnedFd> {
        let conn = rustix::net::accept_with(&self.socket, rustix::net::SocketFlags::CLOEXEC)?;
        let mut buf = [0u8; 4096];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                if let Some(fd) = fds.next() {
                    berth_container::console::clear_onlcr(&fd)?;
                    return Ok(fd);
                }
            }
        }
        anyhow::bail!("the container sent no terminal on the console socket")
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Puts our terminal in raw mode while alive; restores it on drop.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, t);
        }
    }
}

/// Copies stdin to the pty and the pty to stdout on background threads.
/// Returns the output copier, which ends when the container side of the pty closes.
pub fn spawn_copiers(master: OwnedFd) -> Result<std::thread::JoinHandle<()>> {
    if let Ok(size) = termios::tcgetwinsize(std::io::stdin().as_fd()) {
        let _ = termios::tcsetwinsize(&master, size);
    }
    let mut reader = std::fs::File::from(master.try_clone()?);
    let mut writer = std::fs::File::from(master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || writer.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    Ok(std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut stdout = std::io::stdout();
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    }))
}
