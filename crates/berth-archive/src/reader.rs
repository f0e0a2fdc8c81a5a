//! A streaming tar parser with bounded metadata.
//!
//! The `tar` crate decodes single header blocks; the walk over the stream is
//! ours so that every size is bounded before anything is buffered (the tar
//! crate reads GNU long names and PAX records of any declared size into
//! memory), file data can be copied straight out of the read buffer, and every
//! error can name the entry it happened in.
//!
//! Like Go's `archive/tar` (which wrote most layers in existence), header-only
//! types (links, directories, devices, FIFOs) carry no data whatever their
//! size field says, and PAX records override the ustar fields.

use std::io::{self, BufRead};

use tar::{EntryType, Header, PaxExtensions};

use crate::error::{show, Error};

/// Tar block size.
pub(crate) const BLOCK: usize = 512;
/// Largest PAX record block or GNU long name we buffer.
pub(crate) const MAX_META: u64 = 1 << 20;
/// Bytes we accept (and read, so a gzip trailer is verified) after the
/// end-of-archive marker. GNU tar pads to 10 KiB records; 1 MiB is generous.
const MAX_TRAILING: u64 = 1 << 20;

/// What an entry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Regular,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// A modification time as found in the archive (PAX may carry nanoseconds
/// and negative seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mtime {
    pub sec: i64,
    pub nsec: u32,
}

/// One decoded entry header, with PAX and GNU extensions applied.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The path exactly as the archive spells it (not yet normalised).
    pub path: Vec<u8>,
    /// Link target for symlinks and hard links.
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Mtime,
    /// Bytes of data that follow the header (0 for header-only kinds).
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `SCHILY.xattr.*` PAX records, in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    pub(crate) fn name(&self) -> String {
        show(&self.path)
    }
}

/// Extension records that apply to the next real entry.
#[derive(Default)]
struct Pending {
    pax: Option<Vec<u8>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// Walks a tar stream entry by entry.
pub(crate) struct TarReader<R> {
    r: R,
    /// Bytes consumed so far, for error messages.
    offset: u64,
    /// Data bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    /// Name of the current (or last) entry, for error messages.
    current: String,
}

fn padding_for(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

impl<R: BufRead> TarReader<R> {
    pub(crate) fn new(r: R) -> Self {
        TarReader {
            r,
            offset: 0,
            remaining: 0,
            padding: 0,
            current: String::new(),
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.r
    }

    fn truncated(&self, what: &'static str) -> Error {
        Error::Truncated {
            entry: self.current.clone(),
            offset: self.offset,
            what,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> Error {
        Error::MalformedHeader {
            offset: self.offset,
            after: self.current.clone(),
            reason: reason.into(),
        }
    }

    /// Hands out up to `max` buffered bytes of the stream to `f`, then
    /// consumes them. Returns 0 only at end of stream.
    fn with_chunk(
        &mut self,
        max: u64,
        f: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let buf = loop {
            match self.r.fill_buf() {
                Ok(b) => break b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Read {
                        offset: self.offset,
                        after: self.current.clone(),
                        source: e,
                    })
                }
            }
        };
        let n = buf.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        f(&buf[..n])?;
        self.r.consume(n);
        self.offset += n as u64;
        Ok(n)
    }

    /// Discards `n` bytes of the stream; `what` describes where an early end
    /// would leave us.
    fn skip(&mut self, mut n: u64, what: &'static str) -> Result<(), Error> {
        while n > 0 {
            let got = self.with_chunk(n, &mut |_| Ok(()))?;
            if got == 0 {
                return Err(self.truncated(what));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended
    /// before the first byte.
    fn read_block(&mut self, buf: &mut [u8; BLOCK]) -> Result<bool, Error> {
        let mut filled = 0;
        while filled < BLOCK {
            let got = self.with_chunk((BLOCK - filled) as u64, &mut |chunk| {
                buf[filled..filled + chunk.len()].copy_from_slice(chunk);
                Ok(())
            })?;
            if got == 0 {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(self.truncated("inside a header block"));
            }
            filled += got;
        }
        Ok(true)
    }

    /// Appends up to `max` bytes of the current entry's data to `buf`
    /// (skipping the padding after the last byte). Returns whether data
    /// remains.
    pub(crate) fn read_chunk(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<bool, Error> {
        let mut want = self.remaining.min(max as u64);
        while want > 0 {
            let got = self.with_chunk(want, &mut |chunk| {
                buf.extend_from_slice(chunk);
                Ok(())
            })?;
            if got == 0 {
                return Err(self.truncated("inside the entry's data"));
            }
            want -= got as u64;
            self.remaining -= got as u64;
        }
        if self.remaining == 0 {
            let pad = std::mem::take(&mut self.padding);
            self.skip(pad, "inside the padding after the entry's data")?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Skips whatever is left of the current entry's data and padding.
    pub(crate) fn skip_data(&mut self) -> Result<(), Error> {
        let n = std::mem::take(&mut self.remaining) + std::mem::take(&mut self.padding);
        self.skip(n, "inside the entry's data")
    }

    /// Reads a whole extension record body (PAX block, GNU long name).
    fn read_meta(&mut self, size: u64, what: &'static str) -> Result<Vec<u8>, Error> {
        if size > MAX_META {
            return Err(Error::MetadataTooLarge {
                entry: self.current.clone(),
                what,
                size,
                limit: MAX_META,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        let mut left = size;
        while left > 0 {
            let got = self.with_chunk(left, &mut |chunk| {
                out.extend_from_slice(chunk);
                Ok(())
            })?;
            if got == 0 {
                return Err(self.truncated("inside an extended header"));
            }
            left -= got as u64;
        }
        self.skip(padding_for(size), "inside an extended header")?;
        Ok(out)
    }

    /// Returns the next entry, or `None` after the end-of-archive marker (the
    /// rest of the stream is read and discarded, bounded).
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        self.skip_data()?;
        let mut pending = Pending::default();
        let mut block = [0u8; BLOCK];
        loop {
            let pending_ext =
                pending.pax.is_some() || pending.long_name.is_some() || pending.long_link.is_some();
            if !self.read_block(&mut block)? {
                if pending_ext {
                    return Err(self.truncated("after an extended header"));
                }
                // Go's archive/tar (docker, containerd) and GNU tar accept a
                // stream that ends cleanly between entries without the
                // marker, and some layer writers omit it; so do we. The
                // blob digest, checked by the caller, is what detects a cut
                // at exactly an entry boundary.
                tracing::warn!(offset = self.offset, after = %self.current, "layer tar has no end-of-archive marker");
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                if pending_ext {
                    return Err(self.malformed("an extended header is not followed by an entry"));
                }
                self.drain_trailer()?;
                return Ok(None);
            }
            let header = Header::from_byte_slice(&block);
            self.verify_checksum(header)?;
            let size = self.field(header, SIZE, "size")?;
            let ty = header.entry_type();
            match ty.as_byte() {
                b'x' => pending.pax = Some(self.read_meta(size, "PAX header")?),
                b'g' => {
                    // Global PAX headers carry archive-wide defaults that
                    // neither docker nor containerd apply; skip, bounded.
                    self.read_meta(size, "global PAX header")?;
                }
                b'L' => pending.long_name = Some(trim_nul(self.read_meta(size, "GNU long name")?)),
                b'K' => {
                    pending.long_link = Some(trim_nul(self.read_meta(size, "GNU long link name")?))
                }
                b'V' => {
                    // A volume label names the archive, not a file.
                    self.read_meta(size, "volume label")?;
                }
                _ => return self.finish_entry(header, ty, size, pending).map(Some),
            }
        }
    }

    fn verify_checksum(&self, header: &Header) -> Result<(), Error> {
        let stored = numeric(&header.as_bytes()[CKSUM])
            .ok_or_else(|| self.malformed("the checksum field is not octal (not a tar stream?)"))?;
        let bytes = header.as_bytes();
        let (mut unsigned, mut signed) = (0u32, 0i32);
        for (i, &b) in bytes.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u32::from(b);
            signed += i32::from(b as i8);
        }
        // Some old writers summed signed chars; Go accepts both.
        if stored == u64::from(unsigned) || stored as i64 == i64::from(signed) {
            Ok(())
        } else {
            Err(self.malformed(format!("checksum mismatch (stored {stored}, computed {unsigned}); the stream is corrupt or not a tar")))
        }
    }

    fn finish_entry(
        &mut self,
        header: &Header,
        ty: EntryType,
        size: u64,
        pending: Pending,
    ) -> Result<Entry, Error> {
        let mut path = pending
            .long_name
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let mut link = pending.long_link.unwrap_or_else(|| {
            header
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default()
        });
        self.current = show(&path);

        let kind = match ty.as_byte() {
            b'0' | b'\0' | b'7' => {
                // Pre-POSIX archives mark directories with a trailing slash.
                if ty.as_byte() != b'7' && path.ends_with(b"/") {
                    Kind::Dir
                } else {
                    Kind::Regular
                }
            }
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'S' => return Err(self.unsupported("GNU sparse file")),
            b'M' => return Err(self.unsupported("multi-volume continuation")),
            b'N' => return Err(self.unsupported("old GNU long name record")),
            other => return Err(self.unsupported(format!("entry type {:?}", other as char))),
        };

        let mode = (self.field(header, MODE, "mode")? & 0o7777) as u32;
        let mut uid = self.field(header, UID, "uid")?;
        let mut gid = self.field(header, GID, "gid")?;
        let raw_mtime = self.field(header, MTIME, "mtime")?;
        let mut mtime = Mtime {
            sec: i64::try_from(raw_mtime).unwrap_or(0),
            nsec: 0,
        };
        let (mut dev_major, mut dev_minor) = (0, 0);
        if matches!(kind, Kind::Char | Kind::Block) {
            // Old (pre-ustar) headers have no device fields.
            if header.as_ustar().is_some() || header.as_gnu().is_some() {
                dev_major = u32::try_from(self.field(header, DEVMAJOR, "device major")?)
                    .map_err(|_| self.malformed("device major number out of range"))?;
                dev_minor = u32::try_from(self.field(header, DEVMINOR, "device minor")?)
                    .map_err(|_| self.malformed("device minor number out of range"))?;
            }
        }
        let mut size = size;
        let mut xattrs = Vec::new();

        if let Some(pax) = pending.pax {
            for ext in PaxExtensions::new(&pax) {
                let ext = ext.map_err(|e| self.malformed(format!("bad PAX record: {e}")))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                match key {
                    b"path" => path = value.to_vec(),
                    b"linkpath" => link = value.to_vec(),
                    b"size" => size = self.pax_number(key, value)?,
                    b"uid" => uid = self.pax_number(key, value)?,
                    b"gid" => gid = self.pax_number(key, value)?,
                    b"mtime" => mtime = self.pax_time(value)?,
                    _ if key.starts_with(b"SCHILY.xattr.") => {
                        xattrs.push((key[b"SCHILY.xattr.".len()..].to_vec(), value.to_vec()));
                    }
                    _ if key.starts_with(b"GNU.sparse.") => {
                        self.current = show(&path);
                        return Err(self.unsupported("PAX sparse file"));
                    }
                    // atime, ctime, uname, gname, comment, charset, ...: not
                    // part of a layer's content.
                    _ => {}
                }
            }
            self.current = show(&path);
        }

        let header_only = !matches!(kind, Kind::Regular);
        let data = if header_only { 0 } else { size };
        // Like Go's reader: nothing follows a header-only entry whatever
        // its size field says, which keeps us in step with the writers that
        // produced the layers.
        self.remaining = data;
        self.padding = padding_for(data);

        Ok(Entry {
            path,
            link,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: data,
            dev_major,
            dev_minor,
            xattrs,
        })
    }

    fn field(
        &self,
        header: &Header,
        range: std::ops::Range<usize>,
        what: &str,
    ) -> Result<u64, Error> {
        numeric(&header.as_bytes()[range])
            .ok_or_else(|| self.malformed(format!("the {what} field is not a number")))
    }

    fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::Unsupported {
            entry: self.current.clone(),
            what: what.into(),
        }
    }

    fn pax_number(&self, key: &[u8], value: &[u8]) -> Result<u64, Error> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                self.malformed(format!(
                    "PAX record {} is not a number: {:?}",
                    show(key),
                    show(value)
                ))
            })
    }

    /// Parses a PAX time, `[-]seconds[.fraction]`.
    fn pax_time(&self, value: &[u8]) -> Result<Mtime, Error> {
        let bad = || self.malformed(format!("PAX mtime is not a time: {:?}", show(value)));
        let s = std::str::from_utf8(value).map_err(|_| bad())?;
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let sec: i64 = whole.parse().map_err(|_| bad())?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let mut nsec: u32 = 0;
        for d in frac.bytes().chain(std::iter::repeat(b'0')).take(9) {
            nsec = nsec * 10 + u32::from(d - b'0');
        }
        if negative {
            if nsec == 0 {
                Ok(Mtime { sec: -sec, nsec: 0 })
            } else {
                Ok(Mtime {
                    sec: -sec - 1,
                    nsec: 1_000_000_000 - nsec,
                })
            }
        } else {
            Ok(Mtime { sec, nsec })
        }
    }

    /// After the first zero block: reads the rest of the stream so that a
    /// compressed stream's trailer (gzip CRC, zstd checksum) is verified and
    /// the caller's digest covers every byte, within a bound.
    fn drain_trailer(&mut self) -> Result<(), Error> {
        let mut trailing = 0u64;
        loop {
            let got = self.with_chunk(u64::MAX, &mut |_| Ok(()))?;
            if got == 0 {
                return Ok(());
            }
            trailing += got as u64;
            if trailing > MAX_TRAILING {
                return Err(self.malformed(format!(
                    "more than {MAX_TRAILING} bytes follow the end-of-archive marker"
                )));
            }
        }
    }
}

// Numeric header fields (offset ranges in the 512-byte block).
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const CKSUM: std::ops::Range<usize> = 148..156;
const DEVMAJOR: std::ops::Range<usize> = 329..337;
const DEVMINOR: std::ops::Range<usize> = 337..345;

/// Decodes a numeric header field as Go's reader does: octal text padded
/// with NULs or spaces (all padding means 0), or GNU base-256 when the high
/// bit of the first byte is set (negative base-256 values are refused).
fn numeric(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first() {
        if first & 0x80 != 0 {
            if first & 0x40 != 0 {
                return None;
            }
            let mut v = u64::from(first & 0x3f);
            for &b in rest {
                v = v.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            return Some(v);
        }
    }
    let text = field
        .iter()
        .position(|&b| b != b' ' && b != 0)
        .map(|start| &field[start..])
        .unwrap_or(&[]);
    let end = text
        .iter()
        .position(|&b| b == b' ' || b == 0)
        .unwrap_or(text.len());
    let (digits, tail) = text.split_at(end);
    if tail.iter().any(|&b| b != b' ' && b != 0) {
        return None;
    }
    digits.iter().try_fold(0u64, |v, &b| {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v.checked_mul(8)?.checked_add(u64::from(b - b'0'))
    })
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_like_go() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"  644 \0"), Some(0o644));
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(numeric(b"        "), Some(0));
        assert_eq!(numeric(b"12 4\0"), None);
        assert_eq!(numeric(b"0009\0"), None);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]), Some(256));
        assert_eq!(
            numeric(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_gnu_long_names_and_skips_unread_data() {
        let long = format!("{}/{}", "d".repeat(150), "f".repeat(120));
        let tar = tar_of(&[("a", b"12345"), (&long, b"xyz")]);
        let mut r = TarReader::new(&tar[..]);
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!(
            (a.path.as_slice(), a.size, a.kind),
            (&b"a"[..], 5, Kind::Regular)
        );
        // Not reading a's data: next_entry skips it.
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!(b.path, long.as_bytes());
        let mut data = Vec::new();
        assert!(r.read_chunk(&mut data, 2).unwrap());
        assert!(!r.read_chunk(&mut data, 2).unwrap());
        assert_eq!(data, b"xyz");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn pax_records_override_the_header() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("path", &b"from/pax"[..]),
            ("uid", b"4000000000"),
            ("mtime", b"-1.25"),
            ("SCHILY.xattr.user.k", b"v\0w"),
        ])
        .unwrap();
        let mut h = Header::new_ustar();
        h.set_path("short").unwrap();
        h.set_size(0);
        h.set_mode(0o4755);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut r = TarReader::new(&tar[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, b"from/pax");
        assert_eq!(e.uid, 4_000_000_000);
        assert_eq!(e.mode, 0o4755);
        assert_eq!(
            e.mtime,
            Mtime {
                sec: -2,
                nsec: 750_000_000
            }
        );
        assert_eq!(e.xattrs, vec![(b"user.k".to_vec(), b"v\0w".to_vec())]);
    }
}
