//! Terminals: a pty made inside the container, its master sent to the
//! caller's console socket, its slave made the process's stdio.

use std::io::IoSlice;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

/// Opens a new pty pair through the container's /dev/ptmx: (master, slave).
pub fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let master = rustix::pty::openpt(
        rustix::pty::OpenptFlags::RDWR
            | rustix::pty::OpenptFlags::NOCTTY
            | rustix::pty::OpenptFlags::CLOEXEC,
    )?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        Path::new(std::ffi::OsStr::from_bytes(name.as_bytes())),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master, slave))
}

/// Sends `fd` over a connected unix socket with SCM_RIGHTS, as runc does
/// (the payload is the name of the pty, which callers may ignore).
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &str) -> std::io::Result<()> {
    let fds = [fd];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(name.as_bytes())],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Makes the pty slave the calling process's stdio and controlling terminal.
/// The caller must already be a session leader.
pub fn become_terminal(slave: &OwnedFd, size: Option<(u16, u16)>) -> std::io::Result<()> {
    if let Some((rows, cols)) = size {
        berth_sys::process::set_window_size(slave.as_fd(), rows, cols)?;
    }
    // The pty keeps the kernel's default line discipline (ONLCR: the
    // program's \n reads as \r\n from the master), as runc leaves it for
    // a --console-socket caller: docker's logs and attach show \r\n for
    // a tty container. Only a runtime that relays the terminal itself
    // clears it (see `clear_onlcr`).
    rustix::stdio::dup2_stdin(slave)?;
    rustix::stdio::dup2_stdout(slave)?;
    rustix::stdio::dup2_stderr(slave)?;
    berth_sys::process::set_controlling_terminal(slave.as_fd())
}

/// Turns off the \n -> \r\n translation of a pty (through its master),
/// for a caller that relays the container's terminal to its own: that
/// terminal translates again, as runc does for `run -t` in the foreground.
pub fn clear_onlcr(master: &OwnedFd) -> std::io::Result<()> {
    let mut attrs = rustix::termios::tcgetattr(master)?;
    attrs.output_modes -= rustix::termios::OutputModes::ONLCR;
    rustix::termios::tcsetattr(master, rustix::termios::OptionalActions::Now, &attrs)?;
    Ok(())
}
