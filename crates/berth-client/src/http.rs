//! HTTP/1.1 on one connection: write a request, read the status line and
//! headers, then the body with the framing the headers announce.
//!
//! Every request gets its own connection (`Connection: close` semantics):
//! the CLI makes few requests, and a fresh unix socket costs microseconds.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::host::Conn;

/// Most bytes of a status line plus headers we accept.
const MAX_HEAD: usize = 64 * 1024;

/// A request body.
pub enum Body<'a> {
    Empty,
    /// `application/json` bytes.
    Json(Vec<u8>),
    /// A stream of unknown length (a tarball), sent chunked.
    Stream {
        content_type: &'static str,
        reader: &'a mut dyn Read,
    },
}

/// A response whose body has not been read yet.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: BodyReader,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a reader, with chunked framing removed.
    pub fn body(self) -> BodyReader {
        self.body
    }

    /// The whole body, at most `limit` bytes (more is an error).
    pub fn read_to_vec(self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response body larger than {limit} bytes"),
            ));
        }
        Ok(out)
    }

    /// The connection itself, for a hijacked (upgraded) stream: anything
    /// the daemon already sent past the headers stays in the reader's buffer.
    pub fn into_conn(self) -> BufReader<Conn> {
        self.body.inner
    }
}

enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `None` before the first size line.
    Chunked {
        left: u64,
        done: bool,
    },
    Eof,
}

/// The body of a response.
pub struct BodyReader {
    inner: BufReader<Conn>,
    framing: Framing,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Eof => self.inner.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.inner.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let size = read_chunk_size(&mut self.inner)?;
                    if size == 0 {
                        // Trailers until the empty line.
                        loop {
                            let line = read_line(&mut self.inner)?;
                            if line.is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.inner.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                if *left == 0 {
                    let crlf = read_line(&mut self.inner)?;
                    if !crlf.is_empty() {
                        return Err(bad("chunk not followed by CRLF"));
                    }
                }
                Ok(n)
            }
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// One CRLF- (or LF-) terminated line, without its terminator, bounded.
fn read_line(r: &mut BufReader<Conn>) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_HEAD as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if line.last() != Some(&b'\n') {
        return Err(bad("line too long or cut"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad("line is not UTF-8"))
}

fn read_chunk_size(r: &mut BufReader<Conn>) -> io::Result<u64> {
    let line = read_line(r)?;
    let hex = line.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))
}

/// Writes the request and reads the response head.
pub(crate) fn roundtrip(
    mut conn: Conn,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Body<'_>,
) -> io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-cli\r\n");
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &body {
        Body::Empty => {
            if matches!(method, "POST" | "PUT") {
                head.push_str("Content-Length: 0\r\n");
            }
        }
        Body::Json(b) => {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        Body::Stream { content_type, .. } => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
            ));
        }
    }
    head.push_str("\r\n");
    let reader = conn.try_clone()?;
    match write_request(&mut conn, &head, body) {
        Ok(()) => {}
        // The daemon may answer (an error, a 501) and close before it read
        // the body: its answer says more than our EPIPE.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            return read_head(BufReader::with_capacity(64 * 1024, reader), method).map_err(|_| e);
        }
        Err(e) => return Err(e),
    }
    read_head(BufReader::with_capacity(64 * 1024, conn), method)
}

fn write_request(conn: &mut Conn, head: &str, body: Body<'_>) -> io::Result<()> {
    conn.write_all(head.as_bytes())?;
    match body {
        Body::Empty => {}
        Body::Json(b) => conn.write_all(&b)?,
        Body::Stream { reader, .. } => {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                conn.write_all(format!("{n:x}\r\n").as_bytes())?;
                conn.write_all(&buf[..n])?;
                conn.write_all(b"\r\n")?;
            }
            conn.write_all(b"0\r\n\r\n")?;
        }
    }
    conn.flush()
}

fn read_head(mut r: BufReader<Conn>, method: &str) -> io::Result<Response> {
    let status_line = read_line(&mut r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status code"))?;
    let mut headers = Vec::new();
    let mut total = status_line.len();
    loop {
        let line = read_line(&mut r)?;
        if line.is_empty() {
            break;
        }
        total += line.len();
        if total > MAX_HEAD {
            return Err(bad("response headers too large"));
        }
        let (k, v) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let framing = if method == "HEAD" || status == 204 || status == 304 {
        Framing::Length(0)
    } else if status == 101 {
        Framing::Eof
    } else if get("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        Framing::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(len) = get("Content-Length") {
        Framing::Length(len.parse().map_err(|_| bad("bad Content-Length"))?)
    } else {
        Framing::Eof
    };
    Ok(Response {
        status,
        headers,
        body: BodyReader { inner: r, framing },
    })
}
