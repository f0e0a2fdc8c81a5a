//! The typed protocol between the runtime (parent) and the container's
//! init while it sets itself up.
//!
//! One SOCK_SEQPACKET socketpair: each message is one packet, so there is no
//! framing to get wrong, and a dead peer shows as end-of-file at once.

use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Parent -> child: the child is in its cgroup (and mapped); go on.
    Go,
    /// Child -> parent: I unshared a user namespace; write my id maps.
    MapsRequest,
    /// Parent -> child: the maps are written.
    MapsDone,
    /// Child -> parent: the container's init is this pid (after a fork into a pid namespace).
    InitPid(i32),
    /// Child -> parent: the environment exists; run prestart/createRuntime hooks now.
    RunCreateRuntimeHooks,
    /// Parent -> child: those hooks ran.
    HooksDone,
    /// Child -> parent: set up and waiting for `start`.
    Ready,
    /// Either way: setup failed with this message.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end).
pub fn channel() -> Result<(Channel, Channel)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "creating the sync socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = serde_json::to_vec(msg).expect("messages always serialize");
        rustix::net::send(self.fd.as_fd(), &bytes, SendFlags::NOSIGNAL)
            .ctx(|| "sending to the container init")?;
        Ok(())
    }

    /// The next message, or None when the peer closed its end (died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match rustix::net::recv(self.fd.as_fd(), &mut buf, RecvFlags::empty()) {
                Ok((n, _)) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io("reading from the container init", e.into())),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init(format!("malformed sync message: {e}")))
    }

    /// Waits for `want`; an Error message or a closed peer becomes an error.
    pub fn expect(&self, want: &Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Init(e)),
            Some(other) => Err(Error::Init(format!("expected {want:?}, got {other:?}"))),
            None => Err(Error::Init("the other side exited during setup".into())),
        }
    }
}
