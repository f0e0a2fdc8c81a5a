//! Encoding entries as ustar headers with PAX extensions.
//!
//! Output follows what Go's `archive/tar` (docker, BuildKit) writes: ustar
//! headers, the ustar prefix field for paths up to 256 bytes, and a PAX
//! record block only for what ustar cannot hold (long paths and link
//! targets, ids or sizes over the octal limits, negative times, xattrs as
//! `SCHILY.xattr.*`). Owner names are left empty: layers are numeric.
//! Nothing in the output depends on when or where it was written, so the
//! same tree always gives the same bytes (and diff ID).

use std::io::{self, BufWriter, Read, Write};

use tar::{EntryType, Header};

use crate::digest::HashingWriter;
use crate::reader::{Kind, BLOCK};

/// Write buffer: big, so the hash and the sink see large writes.
const WRITE_BUF: usize = 1 << 20;
/// Largest value the 8-byte octal fields (mode, uid, gid) hold.
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value the 12-byte octal fields (size, mtime) hold.
const MAX_OCTAL_12: u64 = 0o77777777777;
/// Name of the PAX record entries (bsdtar's convention).
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// One entry to encode. `path` is relative, without a trailing slash.
pub(crate) struct OutEntry<'a> {
    pub path: &'a [u8],
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub link: &'a [u8],
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

pub(crate) struct TarWriter<W: Write> {
    w: BufWriter<HashingWriter<W>>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(w: W) -> Self {
        TarWriter {
            w: BufWriter::with_capacity(WRITE_BUF, HashingWriter::new(w)),
        }
    }

    /// Writes the header (and PAX block, if needed) of `e`. For regular
    /// files, `e.size` bytes of data must follow through [`Self::append_data`].
    pub(crate) fn append_header(&mut self, e: &OutEntry<'_>) -> io::Result<()> {
        let mut path = e.path.to_vec();
        if e.kind == Kind::Dir {
            path.push(b'/');
        }
        let mut pax: Vec<(&[u8], Vec<u8>)> = Vec::new();
        let mut header = Header::new_ustar();

        let fields = header
            .as_ustar_mut()
            .ok_or_else(|| io::Error::other("a new ustar header is not ustar"))?;
        match ustar_split(&path) {
            Some((prefix, name)) => {
                fields.prefix[..prefix.len()].copy_from_slice(prefix);
                fields.name[..name.len()].copy_from_slice(name);
            }
            None => {
                pax.push((b"path", path.clone()));
                let cut = path.len().min(fields.name.len());
                fields.name[..cut].copy_from_slice(&path[..cut]);
            }
        }
        if e.link.len() <= fields.linkname.len() {
            fields.linkname[..e.link.len()].copy_from_slice(e.link);
        } else {
            pax.push((b"linkpath", e.link.to_vec()));
        }

        header.set_entry_type(match e.kind {
            Kind::Regular => EntryType::Regular,
            Kind::Dir => EntryType::Directory,
            Kind::Symlink => EntryType::Symlink,
            Kind::Hardlink => EntryType::Link,
            Kind::Char => EntryType::Char,
            Kind::Block => EntryType::Block,
            Kind::Fifo => EntryType::Fifo,
        });
        header.set_mode(e.mode & 0o7777);
        if e.uid > MAX_OCTAL_8 {
            pax.push((b"uid", e.uid.to_string().into_bytes()));
            header.set_uid(0);
        } else {
            header.set_uid(e.uid);
        }
        if e.gid > MAX_OCTAL_8 {
            pax.push((b"gid", e.gid.to_string().into_bytes()));
            header.set_gid(0);
        } else {
            header.set_gid(e.gid);
        }
        if e.size > MAX_OCTAL_12 {
            pax.push((b"size", e.size.to_string().into_bytes()));
        }
        header.set_size(e.size);
        match u64::try_from(e.mtime) {
            Ok(t) if t <= MAX_OCTAL_12 => header.set_mtime(t),
            _ => {
                pax.push((b"mtime", e.mtime.to_string().into_bytes()));
                header.set_mtime(0);
            }
        }
        if matches!(e.kind, Kind::Char | Kind::Block) {
            header.set_device_major(e.dev_major)?;
            header.set_device_minor(e.dev_minor)?;
        }
        header.set_cksum();

        let mut xattr_keys = Vec::new();
        for (k, v) in e.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            xattr_keys.push((key, v));
        }
        if !pax.is_empty() || !xattr_keys.is_empty() {
            let mut records = Vec::new();
            for (k, v) in &pax {
                pax_record(&mut records, k, v);
            }
            for (k, v) in &xattr_keys {
                pax_record(&mut records, k, v);
            }
            let mut ph = Header::new_ustar();
            let fields = ph
                .as_ustar_mut()
                .ok_or_else(|| io::Error::other("a new ustar header is not ustar"))?;
            fields.name[..PAX_NAME.len()].copy_from_slice(PAX_NAME);
            ph.set_entry_type(EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_uid(0);
            ph.set_gid(0);
            ph.set_mtime(0);
            ph.set_size(records.len() as u64);
            ph.set_cksum();
            self.w.write_all(ph.as_bytes())?;
            self.w.write_all(&records)?;
            self.pad(records.len() as u64)?;
        }
        self.w.write_all(header.as_bytes())
    }

    /// Copies exactly `size` bytes of data from `r`, then the padding. A
    /// source that ends early (a file truncated while being read) is an error.
    pub(crate) fn append_data(&mut self, r: &mut dyn Read, size: u64) -> io::Result<()> {
        let copied = io::copy(&mut r.take(size), &mut self.w)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file shrank from {size} to {copied} bytes while it was being read"),
            ));
        }
        self.pad(size)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let pad = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        self.w.write_all(&[0u8; BLOCK][..pad as usize])
    }

    /// Writes the end-of-archive marker and flushes. Returns the diff ID,
    /// the tar's size and the sink.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64, W)> {
        self.w.write_all(&[0u8; 2 * BLOCK])?;
        let inner = self.w.into_inner().map_err(|e| e.into_error())?;
        let (digest, count, mut w) = inner.finish();
        w.flush()?;
        Ok((digest, count, w))
    }
}

/// Splits `path` into ustar prefix (≤155 bytes) and name (≤100 bytes) at a
/// slash, or returns it whole as the name if it fits; `None` if neither works.
fn ustar_split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    // Trailing slash of a directory stays in the name part.
    let body = path.strip_suffix(b"/").unwrap_or(path);
    (0..body.len().min(156))
        .rev()
        .filter(|&i| body[i] == b'/')
        .map(|i| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && !name.is_empty() && name.len() <= 100)
}

/// Appends one `"<len> <key>=<value>\n"` record; `len` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"a");
        assert_eq!(out, b"9 path=a\n");
        out.clear();
        let long = vec![b'x'; 95];
        pax_record(&mut out, b"path", &long);
        assert_eq!(out.len(), 105);
        assert!(out.starts_with(b"105 path="));
    }

    #[test]
    fn ustar_split_uses_the_prefix_field() {
        assert_eq!(ustar_split(b"a/b"), Some((&b""[..], &b"a/b"[..])));
        let p = [vec![b'd'; 120], b"/".to_vec(), vec![b'f'; 50]].concat();
        let (prefix, name) = ustar_split(&p).unwrap();
        assert_eq!((prefix.len(), name.len()), (120, 50));
        let dir = [
            vec![b'd'; 120],
            b"/".to_vec(),
            vec![b'f'; 50],
            b"/".to_vec(),
        ]
        .concat();
        let (prefix, name) = ustar_split(&dir).unwrap();
        assert_eq!((prefix.len(), name), (120, &dir[121..]));
        assert_eq!(ustar_split(&[b'x'; 101]), None);
        assert_eq!(
            ustar_split(&[vec![b'd'; 200], b"/f".to_vec()].concat()),
            None
        );
    }
}
