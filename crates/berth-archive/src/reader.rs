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

use std::io::{self, BufRead, Write};

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
        TarReader { r, offset: 0, remaining: 0, padding: 0, current: String::new() }
    }

    pub(crate) fn into_inner(self) -> R {
        self.r
    }

    fn truncated(&self, what: &'static str) -> Error {
        Error::Truncated { entry: self.current.clone(), offset: self.offset, what }
    }

    fn malformed(&self, reason: impl Into<String>) -> Error {
        Error::MalformedHeader { offset: self.offset, after: self.current.clone(), reason: reason.into() }
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
                Err(e) => return Err(Error::Read { offset: self.offset, after: self.current.clone(), source: e }),
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

    /// Streams the current entry's data into `w` (then skips its padding).
    pub(crate) fn copy_data(&mut self, w: &mut dyn Write) -> Result<(), Error> {
        while self.remaining > 0 {
            let entry = self.current.clone();
            let got = self.with_chunk(self.remaining, &mut |chunk| {
                w.write_all(chunk)
                    .map_err(|source| Error::Apply { entry: entry.clone(), op: "writing file data", source })
            })?;
            if got == 0 {
                return Err(self.truncated("inside the entry's data"));
            }
            self.remaining -= got as u64;
        }
        let pad = std::mem::take(&mut self.padding);
        self.skip(pad, "inside the padding after the entry's data")
    }

    /// Skips whatever is left of the current entry's data and padding.
    pub(crate) fn skip_data(&mut self) -> Result<(), Error> {
        let n = std::mem::take(&mut self.remaining) + std::mem::take(&mut self.padding);
        self.skip(n, "inside the entry's data")
    }

    /// Reads a whole extension record body (PAX block, GNU long name).
    fn read_meta(&mut self, size: u64, what: &'static str) -> Result<Vec<u8>, Error> {
        if size > MAX_META {
            return Err(Error::MetadataTooLarge { entry: self.current.clone(), what, size, limit: MAX_META });
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
            if !self.read_block(&mut block)? {
                return Err(self.truncated("before the end-of-archive marker"));
            }
            if block.iter().all(|&b| b == 0) {
                if pending.pax.is_some() || pending.long_name.is_some() || pending.long_link.is_some() {
                    return Err(self.malformed("an extended header is not followed by an entry"));
                }
                self.drain_trailer()?;
                return Ok(None);
            }
            let header = Header::from_byte_slice(&block);
            self.verify_checksum(header)?;
            let size = header.entry_size().map_err(|e| self.malformed(format!("bad size field: {e}")))?;
            let ty = header.entry_type();
            match ty.as_byte() {
                b'x' => pending.pax = Some(self.read_meta(size, "PAX header")?),
                b'g' => {
                    // Global PAX headers carry archive-wide defaults that
                    // neither docker nor containerd apply; skip, bounded.
                    self.read_meta(size, "global PAX header")?;
                }
                b'L' => pending.long_name = Some(trim_nul(self.read_meta(size, "GNU long name")?)),
                b'K' => pending.long_link = Some(trim_nul(self.read_meta(size, "GNU long link name")?)),
                b'V' => {
                    // A volume label names the archive, not a file.
                    self.read_meta(size, "volume label")?;
                }
                _ => return self.finish_entry(header, ty, size, pending).map(Some),
            }
        }
    }

    fn verify_checksum(&self, header: &Header) -> Result<(), Error> {
        let stored = header.cksum().map_err(|_| self.malformed("the checksum field is not octal (not a tar stream?)"))?;
        let bytes = header.as_bytes();
        let (mut unsigned, mut signed) = (0u32, 0i32);
        for (i, &b) in bytes.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u32::from(b);
            signed += i32::from(b as i8);
        }
        // Some old writers summed signed chars; Go accepts both.
        if stored == unsigned || i64::from(stored) == i64::from(signed) {
            Ok(())
        } else {
            Err(self.malformed(format!("checksum mismatch (stored {stored}, computed {unsigned}); the stream is corrupt or not a tar")))
        }
    }

    fn finish_entry(&mut self, header: &Header, ty: EntryType, size: u64, pending: Pending) -> Result<Entry, Error> {
        let mut path = pending.long_name.unwrap_or_else(|| header.path_bytes().into_owned());
        let mut link = pending.long_link.unwrap_or_else(|| header.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default());
        self.current = show(&path);

        let kind = match ty.as_byte() {
            b'0' | b'\0' | b'7' => {
                // Pre-POSIX archives mark directories with a trailing slash.
                if ty.as_byte() != b'7' && path.ends_with(b"/") { Kind::Dir } else { Kind::Regular }
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

        let mode = header.mode().map_err(|e| self.malformed(format!("bad mode field: {e}")))? & 0o7777;
        let mut uid = header.uid().map_err(|e| self.malformed(format!("bad uid field: {e}")))?;
        let mut gid = header.gid().map_err(|e| self.malformed(format!("bad gid field: {e}")))?;
        let raw_mtime = header.mtime().map_err(|e| self.malformed(format!("bad mtime field: {e}")))?;
        let mut mtime = Mtime { sec: i64::try_from(raw_mtime).unwrap_or(0), nsec: 0 };
        let (mut dev_major, mut dev_minor) = (0, 0);
        if matches!(kind, Kind::Char | Kind::Block) {
            dev_major = header
                .device_major()
                .map_err(|e| self.malformed(format!("bad device major field: {e}")))?
                .unwrap_or(0);
            dev_minor = header
                .device_minor()
                .map_err(|e| self.malformed(format!("bad device minor field: {e}")))?
                .unwrap_or(0);
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

        Ok(Entry { path, link, kind, mode, uid, gid, mtime, size: data, dev_major, dev_minor, xattrs })
    }

    fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::Unsupported { entry: self.current.clone(), what: what.into() }
    }

    fn pax_number(&self, key: &[u8], value: &[u8]) -> Result<u64, Error> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| self.malformed(format!("PAX record {} is not a number: {:?}", show(key), show(value))))
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
                Ok(Mtime { sec: -sec - 1, nsec: 1_000_000_000 - nsec })
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

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}
