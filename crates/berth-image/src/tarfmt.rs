//! A minimal, bounded tar reader and writer for image archives
//! (`save`/`load`), which only carry regular files, directories and links.
//!
//! Layer tars are not handled here (berth-archive applies those). This
//! reader never writes to disk: it hands out entry names and data streams,
//! and the caller stores blobs by digest. Names and PAX records are bounded
//! so that a hostile archive cannot make it allocate without limit.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;
/// Longest entry name or link target accepted (PAX or GNU long names).
const MAX_NAME: u64 = 4096;
/// Largest PAX extended header accepted.
const MAX_PAX: u64 = 1 << 20;

/// The kinds of entry an image archive contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Devices, fifos and the like: skipped.
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    pub link: String,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads entries one after the other.
pub(crate) struct TarReader<R> {
    r: R,
    /// Unread data of the current entry plus its padding.
    skip: u64,
    done: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(r: R) -> Self {
        TarReader {
            r,
            skip: 0,
            done: false,
        }
    }

    /// The next entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax_path: Option<String> = None;
        let mut pax_link: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            self.discard()?;
            if self.done {
                return Ok(None);
            }
            let mut h = [0u8; BLOCK];
            if !read_block(&mut self.r, &mut h)? {
                // EOF without the end-of-archive blocks: tolerated, as GNU tar does.
                self.done = true;
                return Ok(None);
            }
            if h.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            verify_checksum(&h)?;
            let size = parse_size(&h[124..136])?;
            let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
            match h[156] {
                b'L' | b'K' => {
                    let text = self.read_meta(size, MAX_NAME, "GNU long name")?;
                    let text =
                        String::from_utf8_lossy(text.split(|&b| b == 0).next().unwrap_or(&[]))
                            .into_owned();
                    if h[156] == b'L' {
                        long_name = Some(text)
                    } else {
                        long_link = Some(text)
                    }
                    self.skip = padded - size;
                    continue;
                }
                b'x' => {
                    let data = self.read_meta(size, MAX_PAX, "PAX header")?;
                    self.skip = padded - size;
                    for (k, v) in parse_pax(&data)? {
                        match k.as_str() {
                            "path" => pax_path = Some(v),
                            "linkpath" => pax_link = Some(v),
                            "size" => {
                                pax_size = Some(
                                    v.parse()
                                        .map_err(|_| invalid(format!("bad PAX size {v:?}")))?,
                                )
                            }
                            _ => {}
                        }
                    }
                    continue;
                }
                b'g' => {
                    // Global PAX headers carry nothing an image archive needs.
                    self.read_meta(size, MAX_PAX, "global PAX header")?;
                    self.skip = padded - size;
                    continue;
                }
                _ => {}
            }
            let size = pax_size.unwrap_or(size);
            let kind = match h[156] {
                b'0' | 0 | b'7' => Kind::File,
                b'5' => Kind::Dir,
                b'2' => Kind::Symlink,
                b'1' => Kind::Hardlink,
                _ => Kind::Other,
            };
            let path = pax_path
                .take()
                .or(long_name.take())
                .unwrap_or_else(|| header_name(&h));
            let link = pax_link
                .take()
                .or(long_link.take())
                .unwrap_or_else(|| cstr(&h[157..257]));
            // Links and directories carry no data, whatever the size field says.
            let size = if kind == Kind::File || kind == Kind::Other {
                size
            } else {
                0
            };
            self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
            return Ok(Some(Entry {
                path,
                kind,
                size,
                link,
            }));
        }
    }

    /// The data of the entry just returned (exactly `entry.size` bytes).
    pub fn data(&mut self, entry: &Entry) -> EntryData<'_, R> {
        EntryData {
            reader: self,
            left: entry.size,
        }
    }

    fn read_meta(&mut self, size: u64, limit: u64, what: &str) -> io::Result<Vec<u8>> {
        if size > limit {
            return Err(invalid(format!(
                "{what} of {size} bytes is larger than the limit of {limit}"
            )));
        }
        let mut buf = vec![0u8; size as usize];
        self.r.read_exact(&mut buf).map_err(truncated)?;
        Ok(buf)
    }

    fn discard(&mut self) -> io::Result<()> {
        if self.skip > 0 {
            let n = io::copy(&mut (&mut self.r).take(self.skip), &mut io::sink())?;
            if n < self.skip {
                return Err(invalid("archive is truncated inside an entry".to_owned()));
            }
            self.skip = 0;
        }
        Ok(())
    }
}

/// Reads one entry's data; what is left unread is skipped by the next
/// `next_entry`.
pub(crate) struct EntryData<'a, R> {
    reader: &'a mut TarReader<R>,
    left: u64,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.reader.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("archive is truncated inside an entry".to_owned()));
        }
        self.left -= n as u64;
        self.reader.skip -= n as u64;
        Ok(n)
    }
}

fn truncated(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        invalid("archive is truncated inside a header".to_owned())
    } else {
        e
    }
}

/// Reads a full block; false at a clean EOF before any byte.
fn read_block<R: Read>(r: &mut R, buf: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(invalid("archive is truncated inside a header".to_owned())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn header_name(h: &[u8; BLOCK]) -> String {
    let name = cstr(&h[..100]);
    let ustar = &h[257..262] == b"ustar";
    let prefix = if ustar {
        cstr(&h[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

fn verify_checksum(h: &[u8; BLOCK]) -> io::Result<()> {
    let stored = parse_octal(&h[148..156])
        .map_err(|_| invalid("tar header checksum is not a number".to_owned()))?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(invalid(format!("tar header checksum mismatch (stored {stored}, computed {sum}): not a tar archive or corrupt")));
    }
    Ok(())
}

fn parse_octal(field: &[u8]) -> Result<u64, ()> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .filter(|&b| b != 0 && b != b' ')
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let mut v: u64 = 0;
    for b in s {
        if !(b'0'..=b'7').contains(&b) {
            return Err(());
        }
        v = v.checked_mul(8).ok_or(())? + u64::from(b - b'0');
    }
    Ok(v)
}

/// Octal, or GNU base-256 when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> io::Result<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .ok_or_else(|| invalid("tar size overflows".to_owned()))?
                + u64::from(b);
        }
        return Ok(v);
    }
    parse_octal(field).map_err(|_| invalid("tar size is not an octal number".to_owned()))
}

/// `"<len> <key>=<value>\n"` records.
fn parse_pax(data: &[u8]) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("malformed PAX record".to_owned()))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= rest.len())
            .ok_or_else(|| invalid("malformed PAX record length".to_owned()))?;
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let key = String::from_utf8_lossy(&record[..eq]).into_owned();
            let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
            out.push((key, value));
        }
        rest = &rest[len..];
    }
    Ok(out)
}

/// Writes ustar entries. Names must fit ustar's 100 bytes (image archive
/// names do: `blobs/sha256/<64 hex>` is 77).
pub(crate) struct TarWriter<W: Write> {
    w: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W) -> Self {
        TarWriter { w }
    }

    pub fn dir(&mut self, name: &str) -> io::Result<()> {
        let h = header(name, 0, b'5', 0o755)?;
        self.w.write_all(&h)
    }

    /// Writes a file of `size` bytes read from `data`.
    pub fn file<R: Read>(&mut self, name: &str, size: u64, data: R) -> io::Result<()> {
        self.w.write_all(&header(name, size, b'0', 0o644)?)?;
        let n = io::copy(&mut data.take(size), &mut self.w)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: expected {size} bytes, read {n}"),
            ));
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.w.write_all(&[0u8; BLOCK][..pad])
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; BLOCK * 2])?;
        self.w.flush()?;
        Ok(self.w)
    }
}

fn header(name: &str, size: u64, kind: u8, mode: u32) -> io::Result<[u8; BLOCK]> {
    if name.len() > 100 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar name {name:?} is longer than 100 bytes"),
        ));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{v:0width$o}", width = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut h[124..136], size);
    } else {
        // GNU base-256 for entries of 8 GiB and more.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = TarWriter::new(Vec::new());
        w.dir("blobs/").unwrap();
        w.file("blobs/a", 5, &b"hello"[..]).unwrap();
        w.file("empty", 0, &b""[..]).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = TarReader::new(&bytes[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_str(), e.kind), ("blobs/", Kind::Dir));
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_str(), e.size), ("blobs/a", 5));
        let mut s = String::new();
        r.data(&e).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        // Unread data is skipped.
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, "empty");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn reads_what_berth_archive_writes_with_pax_and_long_names() {
        let dir = tempfile::tempdir().unwrap();
        let deep = "d".repeat(90) + "/" + &"e".repeat(90) + "/file";
        std::fs::create_dir_all(dir.path().join(&deep).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(&deep), b"deep").unwrap();
        std::os::unix::fs::symlink("../x", dir.path().join("link")).unwrap();
        let mut tar = Vec::new();
        berth_archive::write_tree(dir.path(), &mut tar).unwrap();
        let mut r = TarReader::new(&tar[..]);
        let mut seen = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            if e.kind == Kind::File {
                let mut s = String::new();
                r.data(&e).read_to_string(&mut s).unwrap();
                assert_eq!(s, "deep");
            }
            seen.push((
                e.path
                    .trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_owned(),
                e.kind,
                e.link,
            ));
        }
        assert!(
            seen.iter().any(|(p, k, _)| p == &deep && *k == Kind::File),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|(p, k, l)| p == "link" && *k == Kind::Symlink && l == "../x"),
            "{seen:?}"
        );
    }

    #[test]
    fn hostile_headers_are_bounded_and_checked() {
        // A GNU long name claiming 1 GiB.
        let mut h = header("././@LongLink", 1 << 30, b'L', 0o644).unwrap();
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let err = TarReader::new(&h[..]).next_entry().unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
        // A bad checksum.
        let mut bytes = TarWriter::new(Vec::new());
        bytes.file("a", 1, &b"a"[..]).unwrap();
        let mut bytes = bytes.finish().unwrap();
        bytes[0] = b'b';
        assert!(TarReader::new(&bytes[..])
            .next_entry()
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        // Truncated data.
        let mut w = TarWriter::new(Vec::new());
        w.file("a", 1000, &[7u8; 1000][..]).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = TarReader::new(&bytes[..700]);
        let e = r.next_entry().unwrap().unwrap();
        assert!(io::copy(&mut r.data(&e), &mut io::sink()).is_err());
    }

    #[test]
    fn base256_sizes() {
        let h = header("big", 1 << 40, b'0', 0o644).unwrap();
        assert_eq!(parse_size(&h[124..136]).unwrap(), 1 << 40);
        verify_checksum(&h).unwrap();
    }
}
