//! The WebSocket variant of attach (`GET /containers/{id}/attach/ws`, what
//! browser consoles such as Portainer's use), through a real berthd: the
//! log replayed and the live output as raw bytes (no stream frames),
//! stdin from the client's messages, binary messages since API 1.28 and
//! text ones before, the server's close when the container's output ends,
//! and a clear error for a request that is not a WebSocket upgrade.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::{require_root, text};
use tungstenite::{Message, WebSocket};

/// Opens the WebSocket at `path` over berthd's unix socket.
fn connect(d: &Berthd, path: &str) -> WebSocket<UnixStream> {
    let s = UnixStream::connect(&d.socket).expect("connecting to berthd");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (ws, resp) = tungstenite::client(format!("ws://berth{path}"), s)
        .unwrap_or_else(|e| panic!("{path}: the WebSocket handshake failed: {e}"));
    assert_eq!(resp.status(), 101);
    ws
}

/// What the server sends until `want` has arrived in it (or the socket
/// closes): the bytes, and whether every message was of the kind asked.
fn read_until(ws: &mut WebSocket<UnixStream>, want: &str, binary: bool) -> (String, bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut kinds_ok = true;
    while !text(&got).contains(want) && Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Binary(b)) => {
                kinds_ok &= binary;
                got.extend_from_slice(&b);
            }
            Ok(Message::Text(t)) => {
                kinds_ok &= !binary;
                got.extend_from_slice(t.as_bytes());
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (text(&got).to_string(), kinds_ok)
}

#[test]
fn attach_over_a_websocket_carries_raw_output_and_stdin() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "bb:1",
        "sh",
        "-c",
        "echo ready; while read l; do echo \"got $l\"; echo \"err $l\" >&2; done",
    ]);
    let mut ws = connect(
        &d,
        "/v1.41/containers/echoer/attach/ws?logs=1&stream=1&stdin=1&stdout=1&stderr=1",
    );
    // The log first, raw: no 8-byte stream headers before "ready".
    let (out, binary) = read_until(&mut ws, "ready\n", true);
    assert!(out.starts_with("ready\n"), "{out:?}");
    assert!(binary, "API 1.41 gets binary messages");
    ws.send(Message::binary(b"hello\n".to_vec())).unwrap();
    let (out, _) = read_until(&mut ws, "err hello\n", true);
    assert!(
        out.contains("got hello\n") && out.contains("err hello\n"),
        "{out:?}"
    );
    // The client's close ends the session, not the container.
    ws.close(None).unwrap();
    let _ = ws.read();
    assert_eq!(d.inspect("echoer")["State"]["Running"], true);

    // Output that ends closes the socket; before API 1.28 as text.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "brief",
        "bb:1",
        "sh",
        "-c",
        "sleep 1; echo bye",
    ]);
    let mut ws = connect(&d, "/v1.27/containers/brief/attach/ws?stream=1&stdout=1");
    let (out, text_only) = read_until(&mut ws, "bye\n", false);
    assert_eq!(out, "bye\n");
    assert!(text_only, "API 1.27 gets text messages");
    // A normal closure (1000), as dockerd's.
    let close = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("after the output's end: {other:?}"),
        }
    };
    assert_eq!(
        close.map(|f| f.code),
        Some(tungstenite::protocol::frame::coding::CloseCode::Normal)
    );

    // A plain GET is not an upgrade.
    let (status, body) = d.api("GET", "/containers/brief/attach/ws?stream=1", None);
    assert_eq!(status, 400, "{}", text(&body));
    assert!(text(&body).contains("WebSocket"), "{}", text(&body));

    d.docker_ok(&["rm", "-f", "echoer", "brief"]);
    d.stop();
}
