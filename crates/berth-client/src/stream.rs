//! Streams in response bodies: docker's multiplexed stdout/stderr frames
//! (logs and attach without a tty) and JSON message lines (pull, push, load,
//! events).

use std::io::{self, Read, Write};

use serde_json::Value;

/// Most bytes one multiplexed frame may announce: a corrupt header must not
/// make us allocate gigabytes.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Copies a multiplexed stream (8-byte headers: stream id, 3 zero bytes,
/// big-endian length) to `stdout` and `stderr` until EOF. Stream 0 (stdin)
/// is written to stdout, as docker does.
pub fn demux(r: &mut dyn Read, stdout: &mut dyn Write, stderr: &mut dyn Write) -> io::Result<()> {
    let mut header = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        // EOF exactly between frames is the normal end.
        let mut got = 0;
        while got < 8 {
            match r.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(()),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("multiplexed frame of {len} bytes exceeds {MAX_FRAME}"),
            ));
        }
        buf.resize(len, 0);
        r.read_exact(&mut buf)?;
        let out: &mut dyn Write = match header[0] {
            0 | 1 => stdout,
            2 => stderr,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown stream id {other} in a multiplexed stream"),
                ))
            }
        };
        out.write_all(&buf)?;
        out.flush()?;
    }
}

/// Calls `each` with every JSON value of a stream of concatenated or
/// newline-separated JSON messages, until EOF.
pub fn json_messages(
    r: &mut dyn Read,
    mut each: impl FnMut(Value) -> io::Result<()>,
) -> io::Result<()> {
    let stream = serde_json::Deserializer::from_reader(r).into_iter::<Value>();
    for v in stream {
        let v = v.map_err(io::Error::from)?;
        each(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![id, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demuxes_frames() {
        let mut input = frame(1, b"out1\n");
        input.extend(frame(2, b"err\n"));
        input.extend(frame(1, b"out2\n"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(&mut &input[..], &mut o, &mut e).unwrap();
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err\n");
    }

    #[test]
    fn rejects_cut_and_bad_frames() {
        let input = frame(1, b"abc");
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert!(demux(&mut &input[..5], &mut o, &mut e).is_err());
        assert!(demux(&mut &input[..10], &mut o, &mut e).is_err());
        let bad = frame(7, b"x");
        assert!(demux(&mut &bad[..], &mut o, &mut e).is_err());
        let huge = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(demux(&mut &huge[..], &mut o, &mut e).is_err());
    }

    #[test]
    fn reads_json_lines() {
        let input = b"{\"status\":\"a\"}\r\n{\"status\":\"b\"}{\"id\":1}";
        let mut seen = Vec::new();
        json_messages(&mut &input[..], |v| {
            seen.push(v);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1]["status"], "b");
    }
}
