//! The client against a scripted HTTP server on a real unix socket:
//! negotiation, framing, error bodies, chunked uploads, hijacking.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use berth_client::{Body, Client, Error, Host};
use berth_errdefs::{ErrorKind, HasKind};
use serde_json::json;

/// One request as the server saw it.
#[derive(Debug)]
struct Seen {
    line: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<UnixStream>) -> Seen {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" {
            break;
        }
        headers.push(h.trim_end().to_string());
    }
    let header = |name: &str| {
        headers
            .iter()
            .find_map(|h| h.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    let mut body = Vec::new();
    if let Some(n) = header("Content-Length") {
        body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else if header("Transfer-Encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Seen {
        line: line.trim_end().to_string(),
        headers,
        body,
    }
}

/// Serves `answers` in order, one connection each; reports what it saw.
fn server(
    answers: Vec<Vec<u8>>,
) -> (
    tempfile::TempDir,
    PathBuf,
    mpsc::Receiver<Seen>,
    JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        for answer in answers {
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let seen = read_request(&mut r);
            let upgrade = seen.headers.iter().any(|h| h == "Upgrade: tcp");
            tx.send(seen).unwrap();
            let mut w = conn;
            w.write_all(&answer).unwrap();
            if upgrade {
                // Echo what the client sends as stdout frames until it half-closes.
                let mut buf = [0u8; 64];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    let mut frame = vec![1, 0, 0, 0];
                    frame.extend_from_slice(&(n as u32).to_be_bytes());
                    frame.extend_from_slice(&buf[..n]);
                    w.write_all(&frame).unwrap();
                }
            }
        }
    });
    (dir, path, rx, t)
}

fn ping(version: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nAPI-Version: {version}\r\nContent-Length: 2\r\n\r\nOK").into_bytes()
}

#[test]
fn negotiates_and_decodes_chunked_json() {
    let body = r#"{"Version":"x","N":[1,2,3]}"#;
    let (a, b) = body.split_at(10);
    let resp = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (_d, path, rx, t) = server(vec![ping("1.40"), resp.into_bytes()]);
    let c = Client::new(Host::Unix(path));
    let v = c.get_json("/version").unwrap();
    assert_eq!(v, json!({"Version": "x", "N": [1, 2, 3]}));
    assert_eq!(rx.recv().unwrap().line, "GET /_ping HTTP/1.1");
    assert_eq!(rx.recv().unwrap().line, "GET /v1.40/version HTTP/1.1");
    t.join().unwrap();
}

#[test]
fn a_newer_daemon_gets_our_version() {
    let (_d, path, _rx, t) = server(vec![ping("1.99")]);
    let c = Client::new(Host::Unix(path));
    assert_eq!(c.api_version().unwrap(), berth_client::MAX_API_VERSION);
    t.join().unwrap();
}

#[test]
fn error_bodies_become_daemon_errors() {
    let msg = r#"{"message":"No such container: x"}"#;
    let resp = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{msg}",
        msg.len()
    );
    let (_d, path, _rx, t) = server(vec![resp.into_bytes()]);
    let c = Client::with_version(Host::Unix(path), "1.41");
    let e = c.get_json("/containers/x/json").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Error response from daemon: No such container: x"
    );
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.status(), Some(404));
    t.join().unwrap();
}

#[test]
fn uploads_stream_chunked_and_posts_json() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    let (_d, path, rx, t) = server(vec![ok.clone(), ok]);
    let c = Client::with_version(Host::Unix(path), "1.41");
    let data: Vec<u8> = (0..700_000u32).map(|i| i as u8).collect();
    let resp = c
        .request(
            "POST",
            "/images/load",
            &[],
            Body::Stream {
                content_type: "application/x-tar",
                reader: &mut &data[..],
            },
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    let seen = rx.recv().unwrap();
    assert_eq!(seen.body, data);
    assert!(seen
        .headers
        .contains(&"Content-Type: application/x-tar".to_string()));
    assert_eq!(
        c.post_json("/x", Some(&json!({"a": 1}))).unwrap(),
        serde_json::Value::Null
    );
    assert_eq!(rx.recv().unwrap().body, br#"{"a":1}"#);
    t.join().unwrap();
}

#[test]
fn hijack_keeps_early_bytes_and_half_closes() {
    // The daemon's first frame arrives in the same write as the 101.
    let mut answer =
        b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".to_vec();
    answer.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 6]);
    answer.extend_from_slice(b"early\n");
    let (_d, path, _rx, t) = server(vec![answer]);
    let c = Client::with_version(Host::Unix(path), "1.41");
    let mut h = c.hijack("/containers/x/attach?stream=1", None).unwrap();
    h.writer.write_all(b"typed\n").unwrap();
    h.writer.close_write().unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    berth_client::stream::demux(&mut h.reader, &mut out, &mut err).unwrap();
    assert_eq!(err, b"early\n");
    assert_eq!(out, b"typed\n");
    t.join().unwrap();
}

#[test]
fn no_daemon_names_the_socket_and_berthd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.sock");
    let c = Client::new(Host::Unix(path.clone()));
    let e = c.get_json("/version").unwrap_err();
    assert!(matches!(e, Error::Connect { .. }));
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("berthd"), "{msg}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[test]
fn a_cut_body_is_an_error() {
    let (_d, path, _rx, t) = server(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\"".to_vec(),
    ]);
    let c = Client::with_version(Host::Unix(path), "1.41");
    assert!(c.get_json("/x").is_err());
    t.join().unwrap();
}
