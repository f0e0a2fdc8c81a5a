//! docker's multiplexed stdout/stderr stream (logs and attach without a tty).
//!
//! Each frame is an 8-byte header `[kind, 0, 0, 0, len(u32 big-endian)]`
//! followed by `len` bytes of payload.

use berth_errdefs::{ErrorKind, HasKind};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// Errors from the daemon itself, written into the stream (API >= 1.41).
    System = 3,
}

pub const HEADER_LEN: usize = 8;
/// The largest frame the decoder accepts. docker writes at most 32 KiB per
/// frame; a peer announcing more than this is broken or hostile.
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("multiplexed stream: unknown stream kind {kind} in frame header {header:02x?}; is the container using a tty (raw stream)?")]
    UnknownKind { kind: u8, header: [u8; HEADER_LEN] },
    #[error("multiplexed stream: frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    FrameTooLarge { len: u32 },
    #[error("multiplexed stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
}

impl HasKind for StreamError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::DataLoss
    }
}

impl StreamKind {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            3 => Some(StreamKind::System),
            _ => None,
        }
    }
}

/// The header of a frame carrying `len` bytes.
pub fn encode_header(kind: StreamKind, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [kind as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Whole frames for `payload`, split so that none exceeds `MAX_FRAME_LEN`.
pub fn encode_frames(kind: StreamKind, payload: &[u8], out: &mut Vec<u8>) {
    for chunk in payload.chunks(MAX_FRAME_LEN as usize) {
        out.extend_from_slice(&encode_header(kind, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
}

/// Parses a header into its stream kind and payload length.
pub fn decode_header(header: &[u8; HEADER_LEN]) -> Result<(StreamKind, u32), StreamError> {
    let kind = StreamKind::from_byte(header[0]).ok_or(StreamError::UnknownKind {
        kind: header[0],
        header: *header,
    })?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME_LEN {
        return Err(StreamError::FrameTooLarge { len });
    }
    Ok((kind, len))
}

/// Incremental decoder: feed bytes as they arrive, take frames out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<(StreamKind, Vec<u8>)>, StreamError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let header: [u8; HEADER_LEN] = header.try_into().expect("slice of HEADER_LEN");
        let (kind, len) = decode_header(&header)?;
        let end = HEADER_LEN + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..end].to_vec();
        self.buf.drain(..end);
        Ok(Some((kind, payload)))
    }

    /// Call at end of input: an error if a partial frame is left over.
    pub fn finish(&self) -> Result<(), StreamError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(StreamError::Truncated {
                buffered: self.buf.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_docker() {
        assert_eq!(
            encode_header(StreamKind::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let mut wire = Vec::new();
        encode_frames(StreamKind::Stdout, b"hello\n", &mut wire);
        encode_frames(StreamKind::Stderr, b"oops", &mut wire);
        // No frame for an empty payload, but a peer's empty frame decodes.
        encode_frames(StreamKind::Stdout, b"", &mut wire);
        wire.extend_from_slice(&encode_header(StreamKind::Stdout, 0));
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        for b in &wire {
            dec.push(std::slice::from_ref(b));
            while let Some(f) = dec.next_frame().unwrap() {
                frames.push(f);
            }
        }
        dec.finish().unwrap();
        assert_eq!(
            frames,
            [
                (StreamKind::Stdout, b"hello\n".to_vec()),
                (StreamKind::Stderr, b"oops".to_vec()),
                (StreamKind::Stdout, Vec::new()),
            ]
        );
    }

    #[test]
    fn refuses_garbage() {
        let mut dec = FrameDecoder::new();
        dec.push(b"hello wo");
        assert!(matches!(
            dec.next_frame(),
            Err(StreamError::UnknownKind { kind: b'h', .. })
        ));
        let mut dec = FrameDecoder::new();
        dec.push(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            dec.next_frame(),
            Err(StreamError::FrameTooLarge { .. })
        ));
        let mut dec = FrameDecoder::new();
        dec.push(&[1, 0, 0, 0, 0, 0, 0, 5, b'a']);
        assert!(dec.next_frame().unwrap().is_none());
        assert!(dec.finish().is_err());
    }
}
