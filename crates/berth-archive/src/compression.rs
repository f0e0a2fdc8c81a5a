//! Layer compression: detection by magic number, streaming decompression and
//! compression.
//!
//! gzip goes through flate2 with the zlib-rs backend (pure Rust, about as fast
//! as zlib-ng); zstd through the reference C library. Both sides stream: no
//! layer is ever held in memory.

use std::io::{self, Read, Write};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (`application/vnd.oci.image.layer.v1.tar+gzip`, docker's default).
    Gzip,
    /// zstd (`application/vnd.oci.image.layer.v1.tar+zstd`).
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How many leading bytes [`detect_compression`] needs to decide.
pub const MAGIC_LEN: usize = 4;

/// Guesses the compression of a blob from its first bytes.
///
/// Anything that is neither gzip nor zstd (including a too-short prefix) is
/// reported as [`Compression::None`]; the tar reader then rejects it if it is
/// not a tar either.
pub fn detect_compression(first_bytes: &[u8]) -> Compression {
    if first_bytes.starts_with(&GZIP_MAGIC) {
        return Compression::Gzip;
    }
    if first_bytes.starts_with(&ZSTD_MAGIC) {
        return Compression::Zstd;
    }
    // zstd skippable frames (0x184D2A50..=0x184D2A5F, little endian) may
    // precede the first data frame.
    if first_bytes.len() >= 4
        && first_bytes[0] & 0xf0 == 0x50
        && first_bytes[1..4] == [0x2a, 0x4d, 0x18]
    {
        return Compression::Zstd;
    }
    Compression::None
}

/// Wraps `r` in the streaming decompressor for `c`.
///
/// gzip streams may hold several members (pigz, concatenated layers); all are
/// read. If the zstd context cannot be created the error surfaces on the
/// first read, so this constructor itself cannot fail.
pub fn decompressor<'a>(r: impl Read + 'a, c: Compression) -> Box<dyn Read + 'a> {
    match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => match zstd::stream::read::Decoder::new(r) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(FailedReader(Some(e))),
        },
    }
}

/// Detects the compression of `r` from its first bytes and returns the
/// matching decompressor (those bytes are not lost).
pub fn auto_decompressor<'a>(
    mut r: impl Read + 'a,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut prefix = [0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        match r.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let c = detect_compression(&prefix[..filled]);
    let whole = io::Cursor::new(prefix[..filled].to_vec()).chain(r);
    Ok((c, decompressor(whole, c)))
}

/// A reader that reports a construction error on its first read.
struct FailedReader(Option<io::Error>);

impl Read for FailedReader {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("zstd decoder could not be created")))
    }
}

/// A streaming compressor; call [`Compressor::finish`] to write the trailer.
pub enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// Wraps `w` in a compressor for `c` at the usual default levels (gzip 6,
/// zstd 3), which is what registries and docker produce.
pub fn compressor<W: Write>(w: W, c: Compression) -> io::Result<Compressor<W>> {
    Ok(match c {
        Compression::None => Compressor::None(w),
        Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
            w,
            flate2::Compression::default(),
        )),
        Compression::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
    })
}

impl<W: Write> Compressor<W> {
    /// Finishes the compressed stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Compression) {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut enc = compressor(Vec::new(), c).unwrap();
        enc.write_all(&data).unwrap();
        let blob = enc.finish().unwrap();
        assert_eq!(detect_compression(&blob), c);
        let mut out = Vec::new();
        decompressor(&blob[..], c).read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let (found, mut r) = auto_decompressor(&blob[..]).unwrap();
        assert_eq!(found, c);
        out.clear();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn none_gzip_zstd_round_trip() {
        roundtrip(Compression::None);
        roundtrip(Compression::Gzip);
        roundtrip(Compression::Zstd);
    }

    #[test]
    fn detection_by_magic() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(
            detect_compression(&[0x5e, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"etc/"), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
        assert_eq!(detect_compression(&[]), Compression::None);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut enc = compressor(Vec::new(), Compression::Gzip).unwrap();
        enc.write_all(&vec![7u8; 100_000]).unwrap();
        let blob = enc.finish().unwrap();
        let mut out = Vec::new();
        let err = decompressor(&blob[..blob.len() / 2], Compression::Gzip)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
