//! Framing: a big-endian `u32` length, then that many bytes of JSON.
//!
//! A length prefix (instead of newline-delimited JSON) lets either side
//! refuse an oversized frame before reading it, and lets the shim read a
//! frame in pieces from a non-blocking socket (see [`FrameBuf`]).

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::MAX_FRAME;

/// Encodes `msg` as one frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T, what: &'static str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg).map_err(|source| Error::Encode { what, source })?;
    let len = buf.len() - 4;
    if len > MAX_FRAME as usize {
        return Err(Error::FrameTooLarge {
            len: len as u64,
            max: MAX_FRAME,
        });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Writes `msg` as one frame.
pub fn write_frame<T: Serialize, W: Write>(w: &mut W, msg: &T, what: &'static str) -> Result<()> {
    let buf = encode(msg, what)?;
    w.write_all(&buf).map_err(|source| Error::Io {
        op: "sending a frame",
        source,
    })?;
    w.flush().map_err(|source| Error::Io {
        op: "sending a frame",
        source,
    })
}

/// Reads one frame and decodes it. A clean end of stream before the first
/// byte is [`Error::Closed`].
pub fn read_frame<T: DeserializeOwned, R: Read>(r: &mut R, what: &'static str) -> Result<T> {
    let mut len = [0u8; 4];
    read_exact(r, &mut len, what)?;
    let len = u32::from_be_bytes(len);
    check_len(len)?;
    let mut body = vec![0u8; len as usize];
    read_exact(r, &mut body, what)?;
    decode(&body, what)
}

/// Decodes a frame's body.
pub fn decode<T: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| Error::Decode { what, source })
}

fn check_len(len: u32) -> Result<()> {
    if len > MAX_FRAME {
        return Err(Error::FrameTooLarge {
            len: len.into(),
            max: MAX_FRAME,
        });
    }
    Ok(())
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<()> {
    r.read_exact(buf).map_err(|source| {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Closed { op: what }
        } else {
            Error::Io {
                op: "reading a frame",
                source,
            }
        }
    })
}

/// Accumulates bytes from a non-blocking reader and yields complete frame
/// bodies; the shim keeps one per connection.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn new() -> FrameBuf {
        FrameBuf::default()
    }

    /// Appends bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete frame body, if one is buffered. An
    /// oversized length is an error as soon as its prefix arrives.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        check_len(len)?;
        let end = 4 + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let body = self.buf[4..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(body))
    }

    /// Bytes received after the last complete frame (for a connection that
    /// switches to raw streaming, these are the first stream bytes).
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Request, Response};

    #[test]
    fn round_trip_through_a_byte_stream() {
        let mut wire = Vec::new();
        write_frame(
            &mut wire,
            &Request::Kill {
                signal: 9,
                all: true,
            },
            "request",
        )
        .unwrap();
        write_frame(&mut wire, &Request::State, "request").unwrap();
        let mut r = &wire[..];
        let a: Request = read_frame(&mut r, "request").unwrap();
        let b: Request = read_frame(&mut r, "request").unwrap();
        assert_eq!(
            a,
            Request::Kill {
                signal: 9,
                all: true
            }
        );
        assert_eq!(b, Request::State);
        assert!(matches!(
            read_frame::<Request, _>(&mut r, "request"),
            Err(Error::Closed { .. })
        ));
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        let mut wire = (MAX_FRAME + 1).to_be_bytes().to_vec();
        wire.extend_from_slice(b"{}");
        let err = read_frame::<Response, _>(&mut &wire[..], "response").unwrap_err();
        assert!(matches!(err, Error::FrameTooLarge { .. }), "{err}");
        let mut fb = FrameBuf::new();
        fb.push(&wire[..4]);
        assert!(matches!(fb.next_frame(), Err(Error::FrameTooLarge { .. })));
    }

    #[test]
    fn truncated_frame_is_closed_not_garbage() {
        let wire = encode(&Request::Start, "request").unwrap();
        let err = read_frame::<Request, _>(&mut &wire[..wire.len() - 1], "request").unwrap_err();
        assert!(matches!(err, Error::Closed { .. }), "{err}");
    }

    #[test]
    fn malformed_json_is_a_decode_error() {
        let mut wire = 5u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"{nope");
        let err = read_frame::<Request, _>(&mut &wire[..], "request").unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err}");
    }

    #[test]
    fn frame_buf_reassembles_split_frames() {
        let mut wire = encode(&Request::Pause, "request").unwrap();
        wire.extend(encode(&Request::Resume, "request").unwrap());
        wire.extend_from_slice(b"raw");
        let mut fb = FrameBuf::new();
        for b in &wire {
            fb.push(std::slice::from_ref(b));
        }
        let a: Request = decode(&fb.next_frame().unwrap().unwrap(), "request").unwrap();
        let b: Request = decode(&fb.next_frame().unwrap().unwrap(), "request").unwrap();
        assert_eq!((a, b), (Request::Pause, Request::Resume));
        assert_eq!(fb.next_frame().unwrap(), None);
        assert_eq!(fb.take_rest(), b"raw");
        assert!(fb.is_empty());
    }
}
