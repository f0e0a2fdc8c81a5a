//! Handing the notification listener to a seccomp agent (OCI `listenerPath`).
//!
//! The runtime connects to the agent's AF_UNIX stream socket and sends one
//! "container process state" JSON document, with the listener fd attached
//! by SCM_RIGHTS to the first sendmsg, then closes the connection.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::Error;

/// How long the runtime waits on a slow agent before failing the container start.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the container process state and the listener `fd` to the agent
/// listening on `listener_path`.
///
/// `state` is the container's OCI state (`ociVersion`, `id`, `status`,
/// `pid`, `bundle`, ...), e.g. `oci_spec::runtime::State` or a JSON value;
/// its `pid` and `ociVersion` are repeated at the top level as the spec asks.
pub fn send_listener<S: Serialize>(
    listener_path: &Path,
    listener_metadata: Option<&str>,
    state: &S,
    fd: BorrowedFd<'_>,
) -> Result<(), Error> {
    let payload = process_state(listener_path, listener_metadata, state)?;
    let io = |op: &'static str| {
        move |e: rustix::io::Errno| Error::Listener {
            path: listener_path.to_path_buf(),
            op,
            source: e.into(),
        }
    };

    let addr = SocketAddrUnix::new(listener_path)
        .map_err(io("building the socket address (path too long?)"))?;
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io("creating a socket"))?;
    rustix::net::sockopt::set_socket_timeout(
        &sock,
        rustix::net::sockopt::Timeout::Send,
        Some(SEND_TIMEOUT),
    )
    .map_err(io("setting the send timeout"))?;
    rustix::net::connect(&sock, &addr).map_err(io("connecting"))?;

    // The spec allows several sendmsg calls, with the fds in the first only.
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io("attaching the listener fd")(rustix::io::Errno::NOBUFS));
    }
    let mut sent = loop {
        match rustix::net::sendmsg(
            &sock,
            &[IoSlice::new(&payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.map_err(io("sending the state and the listener fd"))?,
        }
    };
    while sent < payload.len() {
        match rustix::net::send(&sock, &payload[sent..], SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(0) => return Err(io("sending the rest of the state")(rustix::io::Errno::PIPE)),
            Ok(n) => sent += n,
            Err(e) => return Err(io("sending the rest of the state")(e)),
        }
    }
    // Dropping `sock` closes the connection: exactly one state per connection.
    Ok(())
}

/// The OCI "container process state" document, serialized.
fn process_state<S: Serialize>(
    path: &Path,
    metadata: Option<&str>,
    state: &S,
) -> Result<Vec<u8>, Error> {
    let bad = |reason: String| Error::State {
        path: path.to_path_buf(),
        reason,
    };
    let state =
        serde_json::to_value(state).map_err(|e| bad(format!("cannot be serialized: {e}")))?;
    let pid = state
        .get("pid")
        .and_then(Value::as_i64)
        .filter(|&p| p > 0)
        .ok_or_else(|| bad("it has no positive \"pid\": send the listener only once the container process exists".into()))?;
    let oci_version = state
        .get("ociVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("it has no \"ociVersion\" string".into()))?
        .to_string();
    let mut doc = json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata {
        doc["metadata"] = Value::String(m.to_string());
    }
    serde_json::to_vec(&doc).map_err(|e| bad(format!("cannot be serialized: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_without_pid_is_refused() {
        let err = process_state(
            Path::new("/x"),
            None,
            &json!({"ociVersion": "1.2.0", "id": "c"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("pid"), "{err}");
    }

    #[test]
    fn document_has_the_spec_fields() {
        let state = json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"});
        let doc: Value =
            serde_json::from_slice(&process_state(Path::new("/x"), Some("meta"), &state).unwrap())
                .unwrap();
        assert_eq!(doc["ociVersion"], "1.2.0");
        assert_eq!(doc["fds"], json!(["seccompFd"]));
        assert_eq!(doc["pid"], 42);
        assert_eq!(doc["metadata"], "meta");
        assert_eq!(doc["state"]["id"], "c1");
    }
}
