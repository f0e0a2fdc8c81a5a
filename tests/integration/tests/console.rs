//! process.terminal: the console socket receives the pty master, and the
//! container's stdio is the pty slave.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::OwnedFd;

use berth_integration::require_root;
use berth_integration::runtime::TestEnv;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde_json::json;

fn receive_fd(listener: &std::os::unix::net::UnixListener) -> OwnedFd {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let fd = control.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    fd.expect("the console socket received an fd")
}

#[test]
fn the_console_socket_receives_a_pty() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("console");
    let sock_path = env.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut b = env.bundle(&["sh", "-c", "tty; stty size; read line; echo got:$line"]);
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    let id = env.id();
    env.rt_ok(&[
        "create",
        "--bundle",
        b.path(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ]);
    let master = receive_fd(&listener);
    env.rt_ok(&["start", &id]);
    let mut pty = std::fs::File::from(master);
    pty.write_all(b"hello\n").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Read until the container is done (EIO once the slave side closes).
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("got:hello\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("33 101"), "{text}");
    // The kernel's default ONLCR stays for the console socket's owner, as
    // with runc (docker's logs of a tty container end lines with CRLF).
    assert!(text.contains("got:hello\r\n"), "{text}");
    env.wait_status(&id, "stopped");
    env.rt_ok(&["delete", &id]);
    env.finish();
}

#[test]
fn a_terminal_without_a_console_socket_is_refused() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("noconsole");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let id = env.id();
    let out = env.rt(&["create", "--bundle", b.path(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-socket"));
    env.finish();
}

#[test]
fn the_pidfd_socket_receives_a_pidfd_of_the_init() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("pidfd");
    let sock_path = env.dir.path().join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&[
        "run",
        "--detach",
        "--pidfd-socket",
        sock_path.to_str().unwrap(),
        "--bundle",
        b.path(),
        &id,
    ]);
    let pidfd = receive_fd(&listener);
    rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL).unwrap();
    env.wait_status(&id, "stopped");
    env.rt_ok(&["delete", &id]);
    env.finish();
}
