//! Bridges between HTTP bodies and the synchronous image libraries.

use std::io::{self, Read, Write};

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// A request body as a blocking `Read`, for a `spawn_blocking` task.
/// Must be created inside the runtime.
pub fn body_reader(body: Body) -> impl Read + Send + 'static {
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(|e| io::Error::other(format!("reading the request body: {e}"))));
    SyncIoBridge::new(StreamReader::new(stream))
}

/// The most trailing bytes `drain_rest` reads after a consumer is done.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads what a consumer left of a request body (a tar reader stops at
/// the end-of-archive blocks, before the record padding), so that the
/// client finishes writing and reads the answer instead of hitting a
/// broken pipe. Bounded: a client that keeps sending is cut off.
pub fn drain_rest(reader: &mut impl Read) {
    if let Err(e) = io::copy(&mut reader.take(DRAIN_LIMIT), &mut io::sink()) {
        tracing::debug!(error = %e, "draining the rest of a request body");
    }
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, crate::ApiError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(crate::ApiError::bad_request(
            format!("request body is larger than the {limit}-byte limit for this endpoint"),
        )),
        Err(e) => Err(crate::ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// A blocking writer whose bytes become a streamed response body.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    /// The writer and the response body it feeds. A few chunks are
    /// buffered, so a slow client slows the writer instead of filling memory.
    pub fn new() -> (ChannelWriter, Body) {
        let (tx, rx) = mpsc::channel(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (
            ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            },
            Body::from_stream(stream),
        )
    }

    /// A handle that can end the body with an error after the writer was
    /// handed away, so the client sees a broken transfer instead of a short
    /// archive that looks complete.
    pub fn failer(&self) -> Failer {
        Failer {
            tx: self.tx.clone(),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

pub struct Failer {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl Failer {
    pub fn fail(self, message: String) {
        let _ = self.tx.blocking_send(Err(io::Error::other(message)));
    }
}

/// A response body of JSON lines fed from an async task.
pub fn line_channel() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, io::Error>(b), rx))
    });
    (tx, Body::from_stream(stream))
}
