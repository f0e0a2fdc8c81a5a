//! The content store: immutable, verified blobs under `<root>/content/`.
//!
//! ```text
//! content/blobs/sha256/<hex>     committed blobs, never modified
//! content/ingest/<key>/data      a partial write (key = sha256 of the ingest ref)
//! content/ingest/<key>/ref       the ingest ref, for listing and cleanup
//! ```
//!
//! A blob becomes visible only by `rename(2)` of a complete, verified and
//! fsynced file, so a reader never sees half a blob. The ingest's data file
//! is locked (`flock`) while a writer holds it, so two writers of the same
//! ref cannot interleave; writers of the same digest under different refs
//! each write their own file and the second commit finds the blob already
//! there. A partial ingest survives a crash or a broken download and is
//! resumed from its current size.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use berth_errdefs::{ErrorKind, HasKind};
use berth_sys::direct_io::DirectAppender;
use rustix::fs::{flock, renameat_with, FlockOperation, RenameFlags, CWD};

use crate::digest::{Algorithm, Digest, Digester};

/// Why a content store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("blob {digest} not found in the content store")]
    NotFound { digest: Digest },
    #[error("ingest {reference:?} not found in the content store")]
    IngestNotFound { reference: String },
    #[error("ingest {reference:?} is being written by another writer; retry when it finishes")]
    Locked { reference: String },
    #[error("invalid ingest ref {reference:?}: it must be 1 to 1024 printable characters")]
    InvalidRef { reference: String },
    #[error("digest mismatch for ingest {reference:?}: expected {expected}, got {actual}; nothing was stored")]
    Mismatch {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("size mismatch for ingest {reference:?} ({digest}): expected {expected} bytes, got {actual}")]
    SizeMismatch {
        reference: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is {size} bytes, more than the limit of {limit} bytes for this kind of content")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("blob {digest} on disk does not match its digest (got {actual}); it was corrupted after it was stored: remove it and pull again")]
    Corrupt { digest: Digest, actual: Digest },
}

impl HasKind for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::Io { .. } => ErrorKind::Internal,
            ContentError::NotFound { .. } | ContentError::IngestNotFound { .. } => {
                ErrorKind::NotFound
            }
            ContentError::Locked { .. } => ErrorKind::Unavailable,
            ContentError::InvalidRef { .. } | ContentError::TooLarge { .. } => {
                ErrorKind::InvalidArgument
            }
            ContentError::Mismatch { .. }
            | ContentError::SizeMismatch { .. }
            | ContentError::Corrupt { .. } => ErrorKind::DataLoss,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// What the store knows about one committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    /// When the blob was committed (its mtime).
    pub created: SystemTime,
}

/// The state of one partial write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    pub reference: String,
    /// Bytes written so far; a resumed writer continues from here.
    pub offset: u64,
    pub updated: SystemTime,
}

/// The result of a successful commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub digest: Digest,
    pub size: u64,
    /// True if another writer had already stored the same blob; ours was dropped.
    pub already_existed: bool,
}

/// A content store rooted at `<root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ContentStore {
    /// Opens (creating if needed) the content store under `<data_root>/content`.
    pub fn open(data_root: &Path) -> Result<ContentStore, ContentError> {
        let root = data_root.join("content");
        for dir in [root.join("blobs").join("sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(ContentStore { root })
    }

    /// The `content` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn info(&self, digest: &Digest) -> Result<BlobInfo, ContentError> {
        let path = self.blob_path(digest);
        let meta = fs::metadata(&path).map_err(|e| self.not_found_or(e, digest, "stat", &path))?;
        Ok(BlobInfo {
            digest: digest.clone(),
            size: meta.len(),
            created: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// Opens a blob for reading. Blobs were verified when committed.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or(e, digest, "open", &path))
    }

    /// Reads a whole blob of at most `limit` bytes into memory and checks
    /// its digest again: small, security-relevant blobs (manifests,
    /// configs) are cheap to re-verify, and a corrupt one must not be used.
    pub fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let path = self.blob_path(digest);
        let file = self.open_blob(digest)?;
        let size = file.metadata().map_err(io_err("stat", &path))?.len();
        if size > limit {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        (&file)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("read", &path))?;
        if buf.len() as u64 > limit {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size: buf.len() as u64,
                limit,
            });
        }
        let mut d = Digester::new(digest.algorithm());
        d.update(&buf);
        let actual = d.finish();
        if &actual != digest {
            return Err(ContentError::Corrupt {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(buf)
    }

    /// Removes a blob. Readers holding it open keep their copy.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| self.not_found_or(e, digest, "remove", &path))
    }

    /// All committed blobs, in digest order.
    pub fn list(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                // Anything that is not a well-formed digest name is not a
                // blob (nothing else is written here, but be strict).
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Ok(digest) = Digest::from_hex(alg, &name) else {
                    continue;
                };
                let meta = entry.metadata().map_err(io_err("stat", &entry.path()))?;
                if !meta.is_file() {
                    continue;
                }
                out.push(BlobInfo {
                    digest,
                    size: meta.len(),
                    created: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Opens (or resumes) the ingest named `reference`. The writer starts at
    /// the ingest's current size; its digest state covers the bytes already
    /// there. Fails with `Locked` while another writer holds the same ref.
    pub fn writer(&self, reference: &str) -> Result<Writer, ContentError> {
        if reference.is_empty()
            || reference.len() > 1024
            || reference.chars().any(|c| c.is_control())
        {
            return Err(ContentError::InvalidRef {
                reference: reference.to_owned(),
            });
        }
        let dir = self.ingest_dir(reference);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data)
            .map_err(io_err("open", &data))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(ContentError::Locked {
                    reference: reference.to_owned(),
                });
            }
            Err(e) => return Err(io_err("lock", &data)(e.into())),
        }
        // The directory may have been removed by a commit, abort or cleanup
        // between our open and our lock; then this file is orphaned.
        if !data.exists() {
            return Err(ContentError::Locked {
                reference: reference.to_owned(),
            });
        }
        let ref_path = dir.join("ref");
        fs::write(&ref_path, reference).map_err(io_err("write", &ref_path))?;

        // Rebuild the hash state over the existing bytes to resume.
        let mut digester = Digester::new(Algorithm::Sha256);
        let mut offset = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &data))?;
            if n == 0 {
                break;
            }
            digester.update(&buf[..n]);
            offset += n as u64;
        }
        let out = DirectAppender::new(file, offset).map_err(io_err("read", &data))?;
        Ok(Writer {
            store: self.clone(),
            reference: reference.to_owned(),
            dir,
            out,
            digester,
            offset,
            limit: None,
            written_back: offset,
        })
    }

    /// Writes `data` as a blob in one go and returns its sha256 digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Committed, ContentError> {
        let expected = Digest::sha256_of(data);
        let mut w = self.writer(&unique_ref("blob"))?;
        let res = w.write_all(data).map_err(io_err("write", &w.dir));
        match res {
            Ok(()) => w.commit(Some(data.len() as u64), Some(&expected)),
            Err(e) => {
                w.abort()?;
                Err(e)
            }
        }
    }

    /// Streams `reader` into a blob, verifying `expected` (and `size`, if
    /// given). The reader is read to the end. On any failure nothing is stored.
    pub fn ingest_from<R: Read>(
        &self,
        reader: R,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<Committed, ContentError> {
        let mut w = self.writer(&unique_ref("stream"))?;
        // Read at most one byte more than declared, so an over-long stream is
        // detected without filling the disk.
        let limit = size.map(|s| s + 1).unwrap_or(u64::MAX);
        let res = copy_in_large_writes(&mut reader.take(limit), &mut w)
            .map_err(io_err("copy into", &w.dir));
        match res {
            Ok(_) => {
                let committed = w.commit(size, Some(expected));
                if let Err(ContentError::SizeMismatch { reference, .. }) = &committed {
                    // A one-shot stream cannot be resumed; drop the partial.
                    let _ = self.abort(reference);
                }
                committed
            }
            Err(e) => {
                w.abort()?;
                Err(e)
            }
        }
    }

    /// Partial writes in progress or left behind.
    pub fn list_ingests(&self) -> Result<Vec<IngestStatus>, ContentError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            let Ok(reference) = fs::read_to_string(path.join("ref")) else {
                continue;
            };
            let Ok(meta) = fs::metadata(path.join("data")) else {
                continue;
            };
            out.push(IngestStatus {
                reference,
                offset: meta.len(),
                updated: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// The status of one ingest.
    pub fn ingest_status(&self, reference: &str) -> Result<IngestStatus, ContentError> {
        let data = self.ingest_dir(reference).join("data");
        let meta = fs::metadata(&data).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::IngestNotFound {
                reference: reference.to_owned(),
            },
            _ => io_err("stat", &data)(e),
        })?;
        Ok(IngestStatus {
            reference: reference.to_owned(),
            offset: meta.len(),
            updated: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// Drops a partial write. Fails with `Locked` while a writer holds it.
    pub fn abort(&self, reference: &str) -> Result<(), ContentError> {
        let dir = self.ingest_dir(reference);
        let data = dir.join("data");
        let file = match File::open(&data) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContentError::IngestNotFound {
                    reference: reference.to_owned(),
                })
            }
            Err(e) => return Err(io_err("open", &data)(e)),
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(ContentError::Locked {
                    reference: reference.to_owned(),
                })
            }
            Err(e) => return Err(io_err("lock", &data)(e.into())),
        }
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    /// Removes ingests not written to for `max_age`, not held by a writer
    /// and not in `keep` (refs that a lease protects). Returns the refs
    /// removed.
    pub fn cleanup_ingests(
        &self,
        max_age: Duration,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>, ContentError> {
        let now = SystemTime::now();
        let mut removed = Vec::new();
        let dir = self.root.join("ingest");
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            let data = path.join("data");
            // A dir without data is debris of a crash between mkdir and open.
            let updated = fs::metadata(&data)
                .and_then(|m| m.modified())
                .or_else(|_| entry.metadata().and_then(|m| m.modified()))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if now.duration_since(updated).unwrap_or_default() < max_age {
                continue;
            }
            if let Ok(f) = File::open(&data) {
                if flock(&f, FlockOperation::NonBlockingLockExclusive).is_err() {
                    continue; // a live writer
                }
            }
            let reference = fs::read_to_string(path.join("ref"))
                .unwrap_or_else(|_| entry.file_name().to_string_lossy().into_owned());
            if keep.contains(&reference) {
                continue;
            }
            match fs::remove_dir_all(&path) {
                Ok(()) => removed.push(reference),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        removed.sort();
        Ok(removed)
    }

    fn ingest_dir(&self, reference: &str) -> PathBuf {
        // Refs are free-form (they often contain ':' and '/'), so the
        // directory is named by their hash: it cannot escape ingest/.
        self.root
            .join("ingest")
            .join(Digest::sha256_of(reference.as_bytes()).hex())
    }

    fn not_found_or(
        &self,
        e: io::Error,
        digest: &Digest,
        op: &'static str,
        path: &Path,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound {
                digest: digest.clone(),
            }
        } else {
            io_err(op, path)(e)
        }
    }
}

/// A unique ingest ref for one-shot writes.
fn unique_ref(kind: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{kind}-{}-{nanos}-{n}", std::process::id())
}

/// An open ingest. Write to it, then `commit`. Dropping it without a
/// commit keeps the partial data for a later resume.
pub struct Writer {
    store: ContentStore,
    reference: String,
    dir: PathBuf,
    /// The data file, written with direct I/O where the file system allows:
    /// a blob is written once and rarely read, and copying it through the
    /// page cache was a pull's largest cost (see berth_sys::direct_io).
    out: DirectAppender,
    digester: Digester,
    offset: u64,
    limit: Option<u64>,
    /// Where the last early writeback ended (see [`WRITEBACK_STEP`]).
    written_back: u64,
}

/// Every this many bytes, a writer without direct I/O queues what it
/// wrote for writeback (berth_sys::writeback), so that the fsync of
/// `commit` waits for the last step only, not for a whole layer written
/// at the end.
const WRITEBACK_STEP: u64 = 8 << 20;

impl Writer {
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Bytes in the ingest so far (where a resumed download continues).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The hash state over the bytes written so far, e.g. to continue
    /// verifying a download that resumes at [`Writer::offset`].
    pub fn digester(&self) -> Digester {
        self.digester.clone()
    }

    /// Refuses writes that would make the ingest longer than `size` bytes.
    pub fn set_size_limit(&mut self, size: u64) {
        self.limit = Some(size);
    }

    /// Discards the partial data and starts over from offset 0.
    pub fn truncate(&mut self) -> Result<(), ContentError> {
        let data = self.dir.join("data");
        self.out.truncate().map_err(io_err("truncate", &data))?;
        self.digester = Digester::new(Algorithm::Sha256);
        self.offset = 0;
        self.written_back = 0;
        Ok(())
    }

    /// Verifies the data against `size` and `expected` and moves it into
    /// place. With no expected digest, the computed one is used.
    ///
    /// On a digest mismatch, or more data than expected, the ingest is
    /// removed: nothing is stored. With less data than expected, the ingest
    /// is kept so the write can be resumed.
    pub fn commit(
        mut self,
        size: Option<u64>,
        expected: Option<&Digest>,
    ) -> Result<Committed, ContentError> {
        let data = self.dir.join("data");
        // Everything staged reaches the file first: a short ingest is kept
        // for resumption, and a complete one is synced below.
        self.out.finish().map_err(io_err("write", &data))?;
        let actual = self.digester.clone().finish();
        let digest = expected.cloned().unwrap_or_else(|| actual.clone());
        if let Some(size) = size {
            if size != self.offset {
                let err = ContentError::SizeMismatch {
                    reference: self.reference.clone(),
                    digest: digest.clone(),
                    expected: size,
                    actual: self.offset,
                };
                if self.offset > size {
                    self.discard()?;
                }
                return Err(err);
            }
        }
        if let Some(expected) = expected {
            let computed = if expected.algorithm() == Algorithm::Sha256 {
                actual.clone()
            } else {
                // Rare: a sha512 blob. Hash the file again with that algorithm.
                rehash(&data, expected.algorithm())?
            };
            if &computed != expected {
                self.discard()?;
                return Err(ContentError::Mismatch {
                    reference: self.reference.clone(),
                    expected: expected.clone(),
                    actual: computed,
                });
            }
        }
        self.out.file().sync_all().map_err(io_err("fsync", &data))?;
        let target = self.store.blob_path(&digest);
        let target_dir = target.parent().map(Path::to_owned).unwrap_or_default();
        fs::create_dir_all(&target_dir).map_err(io_err("create", &target_dir))?;
        // RENAME_NOREPLACE: a blob, once there, is never replaced, even by
        // identical bytes, so readers that opened it see one inode.
        let already_existed = match renameat_with(CWD, &data, CWD, &target, RenameFlags::NOREPLACE)
        {
            Ok(()) => false,
            Err(rustix::io::Errno::EXIST) => true,
            Err(e) => return Err(io_err("rename into place", &target)(e.into())),
        };
        fsync_dir(&target_dir).map_err(io_err("fsync", &target_dir))?;
        let size = self.offset;
        // The data file is gone (or redundant); the lock dies with our fd.
        let dir = self.dir.clone();
        drop(self.out);
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        Ok(Committed {
            digest,
            size,
            already_existed,
        })
    }

    /// Drops the partial data.
    pub fn abort(self) -> Result<(), ContentError> {
        self.discard()
    }

    fn discard(&self) -> Result<(), ContentError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.dir)(e)),
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.limit {
            if self.offset + buf.len() as u64 > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "ingest {:?} would exceed its declared size of {limit} bytes",
                        self.reference
                    ),
                ));
            }
        }
        self.out.write_all(buf)?;
        let n = buf.len();
        self.digester.update(buf);
        self.offset += n as u64;
        if !self.out.is_direct() && self.offset - self.written_back >= WRITEBACK_STEP {
            // A hint: if the kernel refuses it, the fsync still does the work.
            let _ = berth_sys::writeback::start(
                self.out.file().as_fd(),
                self.written_back,
                self.offset - self.written_back,
            );
            self.written_back = self.offset;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.finish()
    }
}

/// `io::copy` in writes of up to 1 MiB: its 8 KiB buffer made one write
/// syscall per 8 KiB of every blob stored (27,000 for a 219 MB `load`).
pub fn copy_in_large_writes(r: &mut impl Read, w: &mut impl Write) -> io::Result<u64> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // Fill the buffer (a stream may hand out small pieces) before
        // writing it.
        let mut filled = 0;
        while filled < CHUNK {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        w.write_all(&buf[..filled])?;
        total += filled as u64;
    }
}

fn rehash(path: &Path, algorithm: Algorithm) -> Result<Digest, ContentError> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut d = Digester::new(algorithm);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            return Ok(d.finish());
        }
        d.update(&buf[..n]);
    }
}

/// Makes a rename or unlink in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn commit_makes_a_verified_blob() {
        let (_t, s) = store();
        let c = s.write_blob(b"hello").unwrap();
        assert_eq!(c.digest, Digest::sha256_of(b"hello"));
        assert!(!c.already_existed);
        assert!(s.exists(&c.digest));
        assert_eq!(s.info(&c.digest).unwrap().size, 5);
        assert_eq!(s.read(&c.digest, 100).unwrap(), b"hello");
        assert_eq!(s.list().unwrap().len(), 1);
        assert!(
            s.list_ingests().unwrap().is_empty(),
            "the ingest is cleaned up after commit"
        );
        // Writing the same bytes again succeeds and reports the existing blob.
        assert!(s.write_blob(b"hello").unwrap().already_existed);
        s.delete(&c.digest).unwrap();
        assert!(matches!(
            s.read(&c.digest, 100),
            Err(ContentError::NotFound { .. })
        ));
        assert!(matches!(
            s.delete(&c.digest),
            Err(ContentError::NotFound { .. })
        ));
    }

    #[test]
    fn a_blob_written_in_writeback_steps_and_resumed_reads_back_whole() {
        // Five writeback steps and a tail, and a writer reopened half-way
        // (a resumed download), whose steps go on from its offset.
        let (_t, s) = store();
        let step = WRITEBACK_STEP as usize;
        let data: Vec<u8> = (0..5 * step + 12345).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = s.writer("pull-big").unwrap();
        for chunk in data[..2 * step + 99].chunks(1 << 20) {
            w.write_all(chunk).unwrap();
        }
        drop(w);
        let mut w = s.writer("pull-big").unwrap();
        assert_eq!(w.offset(), 2 * step as u64 + 99);
        for chunk in data[2 * step + 99..].chunks(1 << 20) {
            w.write_all(chunk).unwrap();
        }
        let digest = Digest::sha256_of(&data);
        let c = w.commit(Some(data.len() as u64), Some(&digest)).unwrap();
        assert_eq!(c.digest, digest);
        assert_eq!(std::fs::read(s.blob_path(&digest)).unwrap(), data);
    }

    #[test]
    fn a_digest_mismatch_stores_nothing_and_names_both_digests() {
        let (_t, s) = store();
        let wrong = Digest::sha256_of(b"other");
        let mut w = s.writer("pull-1").unwrap();
        w.write_all(b"hello").unwrap();
        let err = w.commit(Some(5), Some(&wrong)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&wrong.to_string())
                && msg.contains(&Digest::sha256_of(b"hello").to_string()),
            "{msg}"
        );
        assert_eq!(err.kind(), ErrorKind::DataLoss);
        assert!(!s.exists(&wrong));
        assert!(s.list().unwrap().is_empty());
        assert!(s.list_ingests().unwrap().is_empty());
        let err = s.ingest_from(&b"hello"[..], &wrong, Some(5)).unwrap_err();
        assert!(matches!(err, ContentError::Mismatch { .. }), "{err}");
        assert!(s.list().unwrap().is_empty() && s.list_ingests().unwrap().is_empty());
    }

    #[test]
    fn truncated_and_overlong_streams_store_nothing() {
        let (_t, s) = store();
        let d = Digest::sha256_of(b"hello");
        let err = s.ingest_from(&b"hell"[..], &d, Some(5)).unwrap_err();
        assert!(
            matches!(
                err,
                ContentError::SizeMismatch {
                    expected: 5,
                    actual: 4,
                    ..
                }
            ),
            "{err}"
        );
        let err = s.ingest_from(&b"hello world"[..], &d, Some(5)).unwrap_err();
        assert!(
            matches!(
                err,
                ContentError::SizeMismatch {
                    expected: 5,
                    actual: 6,
                    ..
                }
            ),
            "{err}"
        );
        assert!(s.list().unwrap().is_empty() && s.list_ingests().unwrap().is_empty());
        assert_eq!(s.ingest_from(&b"hello"[..], &d, Some(5)).unwrap().digest, d);
    }

    #[test]
    fn a_broken_write_resumes_from_its_offset() {
        let (_t, s) = store();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::sha256_of(&body);
        {
            let mut w = s.writer("layer-x").unwrap();
            w.write_all(&body[..70_000]).unwrap();
            // A short commit keeps the partial data for resumption.
            let err = w.commit(Some(body.len() as u64), Some(&d)).unwrap_err();
            assert!(matches!(err, ContentError::SizeMismatch { .. }));
        }
        assert_eq!(s.ingest_status("layer-x").unwrap().offset, 70_000);
        let mut w = s.writer("layer-x").unwrap();
        assert_eq!(w.offset(), 70_000);
        let mut expected_state = Digester::new(Algorithm::Sha256);
        expected_state.update(&body[..70_000]);
        assert_eq!(w.digester().finish(), expected_state.finish());
        w.write_all(&body[70_000..]).unwrap();
        let c = w.commit(Some(body.len() as u64), Some(&d)).unwrap();
        assert_eq!(c.size, body.len() as u64);
        assert_eq!(s.read(&d, 1 << 20).unwrap(), body);
    }

    #[test]
    fn one_writer_per_ref() {
        let (_t, s) = store();
        let w = s.writer("same").unwrap();
        assert!(matches!(s.writer("same"), Err(ContentError::Locked { .. })));
        assert!(matches!(s.abort("same"), Err(ContentError::Locked { .. })));
        drop(w);
        s.writer("same").unwrap().abort().unwrap();
        assert!(matches!(
            s.abort("same"),
            Err(ContentError::IngestNotFound { .. })
        ));
    }

    #[test]
    fn concurrent_writers_of_one_digest_both_succeed() {
        let (_t, s) = store();
        let body = vec![7u8; 1 << 20];
        let d = Digest::sha256_of(&body);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (s, body, d) = (s.clone(), body.clone(), d.clone());
                std::thread::spawn(move || {
                    let mut w = s.writer(&format!("writer-{i}")).unwrap();
                    for chunk in body.chunks(4096) {
                        w.write_all(chunk).unwrap();
                    }
                    w.commit(Some(body.len() as u64), Some(&d)).unwrap()
                })
            })
            .collect();
        let results: Vec<Committed> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|c| !c.already_existed).count(), 1);
        assert_eq!(s.read(&d, 2 << 20).unwrap(), body);
        assert!(s.list_ingests().unwrap().is_empty());
    }

    #[test]
    fn size_limits_are_enforced() {
        let (_t, s) = store();
        let c = s.write_blob(&[1u8; 100]).unwrap();
        assert!(matches!(
            s.read(&c.digest, 99),
            Err(ContentError::TooLarge {
                size: 100,
                limit: 99,
                ..
            })
        ));
        let mut w = s.writer("limited").unwrap();
        w.set_size_limit(10);
        assert!(w.write_all(&[0u8; 11]).is_err());
    }

    #[test]
    fn corruption_on_disk_is_detected_on_read() {
        let (_t, s) = store();
        let c = s.write_blob(b"{\"a\":1}").unwrap();
        fs::write(s.blob_path(&c.digest), b"{\"a\":2}").unwrap();
        assert!(matches!(
            s.read(&c.digest, 100),
            Err(ContentError::Corrupt { .. })
        ));
    }

    #[test]
    fn stale_ingests_are_cleaned_up_but_live_ones_are_not() {
        let (_t, s) = store();
        let mut old = s.writer("old").unwrap();
        old.write_all(b"abc").unwrap();
        drop(old);
        let live = s.writer("live").unwrap();
        // Everything is "old" with a zero max age, but the live one is locked.
        assert_eq!(
            s.cleanup_ingests(Duration::ZERO, &BTreeSet::new()).unwrap(),
            vec!["old".to_owned()]
        );
        assert_eq!(s.list_ingests().unwrap().len(), 1);
        assert!(s
            .cleanup_ingests(Duration::from_secs(3600), &BTreeSet::new())
            .unwrap()
            .is_empty());
        drop(live);
        // A kept (leased) ingest survives even when stale and unlocked.
        let kept: BTreeSet<String> = ["live".to_owned()].into();
        assert!(s.cleanup_ingests(Duration::ZERO, &kept).unwrap().is_empty());
        assert_eq!(
            s.cleanup_ingests(Duration::ZERO, &BTreeSet::new()).unwrap(),
            vec!["live".to_owned()]
        );
    }

    #[test]
    fn invalid_refs_are_rejected() {
        let (_t, s) = store();
        assert!(matches!(s.writer(""), Err(ContentError::InvalidRef { .. })));
        assert!(matches!(
            s.writer("a\nb"),
            Err(ContentError::InvalidRef { .. })
        ));
        // Path-like refs are fine: they are hashed, never joined.
        s.writer("../../etc/passwd").unwrap().abort().unwrap();
        assert!(!_t.path().join("etc").exists());
    }
}
