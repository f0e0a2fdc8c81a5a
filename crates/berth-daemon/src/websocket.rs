//! A WebSocket as a plain byte stream, for the WebSocket variant of attach.
//!
//! The attach machinery copies bytes between a hijacked connection and a
//! container's stdio. [`bytestream`] gives it one end of an in-memory pipe
//! and pumps the other end to and from the socket: each client message's
//! payload becomes stdin bytes, each chunk of output one message. A
//! WebSocket has no half-close, so the client's close (or a dropped
//! connection) ends the session: stdin gets its EOF and output stops. When
//! the output ends (the container exits), the server closes the socket.

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};

/// How much output one message carries at most.
const MESSAGE_SIZE: usize = 32 << 10;

/// How long the server waits for the client's answer to its close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The byte-stream end of `socket`; output goes out as binary messages,
/// or as text ones (`text`, for clients of API versions before 1.28),
/// invalid UTF-8 replaced.
pub(crate) fn bytestream(socket: WebSocket, text: bool) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(2 * MESSAGE_SIZE);
    tokio::spawn(pump(socket, theirs, text));
    ours
}

async fn pump(socket: WebSocket, stream: DuplexStream, text: bool) {
    let (mut tx, mut rx) = socket.split();
    let (mut output, mut input) = tokio::io::split(stream);
    // Input and output run side by side: a container that does not read
    // its stdin must not hold up its output.
    let inbound = async {
        let mut stdin_open = true;
        while let Some(Ok(msg)) = rx.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => Bytes::copy_from_slice(t.as_str().as_bytes()),
                // Pings are answered by the protocol layer.
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(_) => break,
            };
            // Without stdin attached the attachment reads and drops it; once
            // the container's stdin is closed, input is dropped here, and
            // the session goes on until the client closes or output ends.
            if stdin_open && input.write_all(&data).await.is_err() {
                stdin_open = false;
            }
        }
        // stdin's EOF for the container (a StdinOnce container then ends).
        let _ = input.shutdown().await;
    };
    tokio::pin!(inbound);
    let output_ended = tokio::select! {
        () = &mut inbound => false,
        () = copy_output(&mut output, &mut tx, text) => true,
    };
    drop(output);
    if output_ended {
        // The closing handshake: the client answers with its own close.
        let normal = CloseFrame {
            code: close_code::NORMAL,
            reason: "".into(),
        };
        if tx.send(Message::Close(Some(normal))).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut inbound).await;
        }
    } else {
        // Sends the answer to the client's close, queued by the protocol.
        let _ = tx.close().await;
    }
}

/// Sends each chunk of output as one message until the output ends.
async fn copy_output(
    output: &mut (impl AsyncRead + Unpin),
    tx: &mut (impl Sink<Message> + Unpin),
    text: bool,
) {
    let mut buf = vec![0u8; MESSAGE_SIZE];
    loop {
        let n = match output.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let msg = if text {
            Message::Text(String::from_utf8_lossy(&buf[..n]).into_owned().into())
        } else {
            Message::Binary(Bytes::copy_from_slice(&buf[..n]))
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}
