//! Content digests (`sha256:<hex>`) and streaming verification.
//!
//! berth writes only sha256 digests, but it parses sha512 ones too because
//! OCI manifests may name them. Parsing is strict (lowercase hex of exactly
//! the algorithm's length) so that one blob can never have two spellings
//! on disk or in the database.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use berth_errdefs::{ErrorKind, HasKind};
use sha2::{Digest as _, Sha256, Sha512};

/// Why a digest string or a verification was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {input:?}: expected <algorithm>:<hex>, e.g. sha256:<64 hex digits>")]
    Format { input: String },
    #[error(
        "unsupported digest algorithm {algorithm:?} in {input:?}: berth supports sha256 and sha512"
    )]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("invalid digest {input:?}: {algorithm} needs {expected} lowercase hex digits")]
    BadHex {
        input: String,
        algorithm: &'static str,
        expected: usize,
    },
    #[error("digest mismatch: expected {expected}, got {actual}; the data is corrupt or was changed in transit")]
    Mismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}; the data is truncated or too long")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
}

impl HasKind for DigestError {
    fn kind(&self) -> ErrorKind {
        match self {
            DigestError::Format { .. } | DigestError::BadHex { .. } => ErrorKind::InvalidArgument,
            DigestError::UnsupportedAlgorithm { .. } => ErrorKind::NotImplemented,
            DigestError::Mismatch { .. } | DigestError::SizeMismatch { .. } => ErrorKind::DataLoss,
        }
    }
}

/// A digest algorithm berth understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex digits in an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated content digest such as `sha256:9f86d0...`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `<algorithm>:<hex>`, accepting sha256 and sha512 only.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = input.split_once(':').ok_or_else(|| DigestError::Format {
            input: input.to_owned(),
        })?;
        if alg.is_empty() || hex.is_empty() {
            return Err(DigestError::Format {
                input: input.to_owned(),
            });
        }
        let algorithm =
            Algorithm::from_name(alg).ok_or_else(|| DigestError::UnsupportedAlgorithm {
                input: input.to_owned(),
                algorithm: alg.to_owned(),
            })?;
        Self::from_hex(algorithm, hex).map_err(|_| DigestError::BadHex {
            input: input.to_owned(),
            algorithm: algorithm.name(),
            expected: algorithm.hex_len(),
        })
    }

    /// Builds a digest from an algorithm and its encoded (hex) part.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::BadHex {
                input: format!("{algorithm}:{hex}"),
                algorithm: algorithm.name(),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut d = Digester::new(Algorithm::Sha256);
        d.update(data);
        d.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker shows image ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Checks `data` against this digest.
    pub fn verify(&self, data: &[u8]) -> Result<(), DigestError> {
        let mut d = Digester::new(self.algorithm);
        d.update(data);
        let actual = d.finish();
        if &actual != self {
            return Err(DigestError::Mismatch {
                expected: self.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for one algorithm.
#[derive(Clone)]
pub enum Digester {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Digester {
    pub fn new(algorithm: Algorithm) -> Digester {
        match algorithm {
            Algorithm::Sha256 => Digester::Sha256(Sha256::new()),
            Algorithm::Sha512 => Digester::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed in so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Digester::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Digester::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A `Write` adapter that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    digester: Digester,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            digester: Digester::new(algorithm),
            written: 0,
        }
    }

    /// Continues hashing from a digester that already saw `written` bytes
    /// (resuming an ingest).
    pub fn resume(inner: W, digester: Digester, written: u64) -> Self {
        HashingWriter {
            inner,
            digester,
            written,
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.digester.finish(), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A `Read` adapter that hashes what passes through and, at end of stream,
/// fails with `InvalidData` unless the size and digest match the expected
/// ones. A reader that stops early never sees the check, so callers must
/// read to EOF (e.g. `io::copy`) before trusting the data.
pub struct VerifyingReader<R> {
    inner: R,
    digester: Option<Digester>,
    expected: Digest,
    expected_size: Option<u64>,
    read: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        VerifyingReader {
            digester: Some(Digester::new(expected.algorithm())),
            inner,
            expected,
            expected_size,
            read: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn check(&mut self) -> Result<(), DigestError> {
        let Some(d) = self.digester.take() else {
            return Ok(());
        };
        if let Some(size) = self.expected_size {
            if size != self.read {
                return Err(DigestError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected: size,
                    actual: self.read,
                });
            }
        }
        let actual = d.finish();
        if actual != self.expected {
            return Err(DigestError::Mismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(size) = self.expected_size {
            // Refuse to read past the declared size: a longer stream is
            // wrong, and bounding it keeps a hostile peer from filling disk.
            if self.read > size {
                let err = DigestError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected: size,
                    actual: self.read,
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
        if self.digester.is_none() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.check()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return Ok(0);
        }
        self.read += n as u64;
        if let Some(d) = self.digester.as_mut() {
            d.update(&buf[..n]);
        }
        if let Some(size) = self.expected_size {
            if self.read > size {
                let err = DigestError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected: size,
                    actual: self.read,
                };
                self.digester = None;
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn parses_and_prints() {
        let d = Digest::parse(HELLO).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), HELLO);
        assert_eq!(d.short(), "2cf24dba5fb0");
        assert_eq!(Digest::sha256_of(b"hello"), d);
        let s512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(Digest::parse(&s512).unwrap().algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:abc",
            &HELLO.to_uppercase(),
            &format!("{HELLO}0"),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let upper_hex = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(
            Digest::parse(&upper_hex),
            Err(DigestError::BadHex { .. })
        ));
        let md5 = "md5:d41d8cd98f00b204e9800998ecf8427e";
        let err = Digest::parse(md5).unwrap_err();
        assert!(matches!(err, DigestError::UnsupportedAlgorithm { .. }));
        assert_eq!(err.kind(), ErrorKind::NotImplemented);
    }

    #[test]
    fn serde_round_trip() {
        let d = Digest::parse(HELLO).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{HELLO}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn verifying_reader_accepts_good_data() {
        let d = Digest::sha256_of(b"hello");
        let mut r = VerifyingReader::new(&b"hello"[..], d, Some(5));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn verifying_reader_rejects_wrong_digest_truncation_and_excess() {
        let d = Digest::sha256_of(b"hello");
        let mut out = Vec::new();
        let err = VerifyingReader::new(&b"hellp"[..], d.clone(), None)
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let err = VerifyingReader::new(&b"hell"[..], d.clone(), Some(5))
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(err.to_string().contains("expected 5 bytes, got 4"), "{err}");
        let err = VerifyingReader::new(&b"hello!"[..], d, Some(5))
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
    }

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(b"hel").unwrap();
        w.write_all(b"lo").unwrap();
        let (buf, digest, n) = w.finish();
        assert_eq!(buf, b"hello");
        assert_eq!(n, 5);
        assert_eq!(digest.to_string(), HELLO);
    }
}
