//! Docker's multiplexed stream framing, used on attach connections of
//! containers and execs without a tty: each chunk is preceded by an 8-byte
//! header `[stream, 0, 0, 0, len (u32, big-endian)]`.

use std::io::Read;

/// Stream ids of the header's first byte.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// The largest chunk a header announces; longer writes are split.
pub const MAX_CHUNK: usize = 32 * 1024;

/// The header for a chunk of `len` bytes on `stream`.
pub fn header(stream: u8, len: usize) -> [u8; 8] {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream, 0, 0, 0, len[0], len[1], len[2], len[3]]
}

/// Appends `data` to `out` as one or more framed chunks on `stream`.
pub fn frame_into(out: &mut Vec<u8>, stream: u8, data: &[u8]) {
    for chunk in data.chunks(MAX_CHUNK) {
        out.extend_from_slice(&header(stream, chunk.len()));
        out.extend_from_slice(chunk);
    }
}

/// Reads one chunk from a multiplexed stream: `Ok(None)` at a clean end of
/// stream, else the stream id and its bytes. Chunks longer than
/// `max_chunk` are refused (the peer is broken).
pub fn read_chunk<R: Read>(r: &mut R, max_chunk: usize) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < h.len() {
        let n = match r.read(&mut h[got..]) {
            Ok(n) => n,
            // A signal is not the stream's fault (read_exact retries too).
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len > max_chunk || h[0] > STDERR {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad multiplexed stream header {h:?}"),
        ));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((h[0], data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_reads_back() {
        let mut out = Vec::new();
        frame_into(&mut out, STDOUT, b"hello");
        frame_into(&mut out, STDERR, &vec![b'x'; MAX_CHUNK + 3]);
        assert_eq!(&out[..8], &[1, 0, 0, 0, 0, 0, 0, 5]);
        let mut r = &out[..];
        assert_eq!(
            read_chunk(&mut r, MAX_CHUNK).unwrap(),
            Some((STDOUT, b"hello".to_vec()))
        );
        let (s, a) = read_chunk(&mut r, MAX_CHUNK).unwrap().unwrap();
        assert_eq!((s, a.len()), (STDERR, MAX_CHUNK));
        let (_, b) = read_chunk(&mut r, MAX_CHUNK).unwrap().unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(read_chunk(&mut r, MAX_CHUNK).unwrap(), None);
    }

    /// Hands out one byte per read, after an EINTR each time.
    struct Jittery<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Jittery<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = self.data.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn signals_and_short_reads_are_retried() {
        let mut out = Vec::new();
        frame_into(&mut out, STDERR, b"abc");
        let mut r = Jittery {
            data: &out,
            interrupt: false,
        };
        assert_eq!(
            read_chunk(&mut r, MAX_CHUNK).unwrap(),
            Some((STDERR, b"abc".to_vec()))
        );
        assert_eq!(read_chunk(&mut r, MAX_CHUNK).unwrap(), None);
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut r = &[9u8, 0, 0, 0, 0, 0, 0, 1, b'a'][..];
        assert!(read_chunk(&mut r, MAX_CHUNK).is_err());
        let mut r = &[1u8, 0, 0][..];
        assert!(read_chunk(&mut r, MAX_CHUNK).is_err());
    }
}
