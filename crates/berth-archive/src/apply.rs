//! Applying a layer tar to a layer directory: the public entry point and
//! the pipeline.
//!
//! The result is an overlayfs layer: OCI whiteouts (`.wh.NAME`) become
//! overlay whiteouts (a 0/0 character device named NAME) and opaque markers
//! (`.wh..wh..opq`) become the `trusted.overlay.opaque=y` xattr (or
//! `user.overlay.opaque` for `userxattr` mounts) on their directory.
//!
//! Two threads share the work: the calling thread reads, decompresses,
//! hashes and parses the stream and enforces the limits; a worker thread
//! does the file system calls ([`crate::unpack`]). File data travels in
//! recycled buffers over a bounded channel, in batches (one wake-up of the
//! worker per batch, not per file), so decompression and hashing overlap
//! with the kernel's work and memory stays bounded (about `QUEUE` x 2 x
//! `CHUNK`).

use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};

use rustix::fs::{Gid, Uid};

use crate::digest::HashingReader;
use crate::error::Error;
use crate::idmap::IdMap;
use crate::reader::{Entry, Kind, TarReader};
use crate::root::LayerRoot;
use crate::unpack::{Inbox, Msg, Stop, Unpacker};

/// OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// OCI opaque-directory marker.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Read buffer over the (decompressed) stream.
const READ_BUF: usize = 1 << 20;
/// Largest chunk of file data per message (and per write(2)).
pub(crate) const CHUNK: usize = 1 << 20;
/// Batches in flight between the threads.
const QUEUE: usize = 8;
/// A batch is sent once it holds this many messages or `CHUNK` bytes: one
/// wake-up of the worker per batch instead of per file.
const BATCH: usize = 256;

/// Which xattr marks an opaque directory, i.e. how the overlay that will use
/// this layer is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpaqueXattr {
    /// `trusted.overlay.opaque`: a normal (root) overlay mount.
    #[default]
    Trusted,
    /// `user.overlay.opaque`: an overlay mounted with `userxattr` (rootless).
    User,
}

impl OpaqueXattr {
    pub fn name(self) -> &'static str {
        match self {
            OpaqueXattr::Trusted => "trusted.overlay.opaque",
            OpaqueXattr::User => "user.overlay.opaque",
        }
    }
}

/// Limits and options for [`apply_layer`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Largest data size of a single file.
    pub max_entry_size: u64,
    /// Largest sum of file data in the layer.
    pub max_total_size: u64,
    /// Most entries (files, directories, links, whiteouts) in the layer.
    pub max_entries: u64,
    /// Map the layer's owners to host ids (user-namespace remapping). Without
    /// it ids are stored as they are.
    pub id_map: Option<IdMap>,
    /// Which opaque xattr to write.
    pub opaque_xattr: OpaqueXattr,
    /// `syncfs` the destination before returning, so a rename that commits
    /// the layer cannot survive a crash that loses its contents. Large
    /// files are then queued for writeback as soon as they are written, so
    /// the disk works while the rest of the layer is unpacked.
    pub sync: bool,
    /// Every entry (and every directory created implicitly) owned by these
    /// ids instead of the archive's: what is created is never chowned to
    /// anyone else (docker cp's `NoLchown`; `id_map` is not consulted).
    pub owner: Option<(u32, u32)>,
    /// OCI whiteouts and opaque markers are layer bookkeeping (the
    /// default). `false` for an archive that is not a layer (files copied
    /// out of a container): `.wh.` names are ordinary files.
    pub whiteouts: bool,
}

impl Default for ApplyOptions {
    /// Limits no real image reaches (the largest public layers are tens of
    /// GiB with a few hundred thousand files) but which stop a decompression
    /// bomb from filling the disk or the inode table.
    fn default() -> Self {
        ApplyOptions {
            max_entry_size: 64 << 30,
            max_total_size: 256 << 30,
            max_entries: 5_000_000,
            id_map: None,
            opaque_xattr: OpaqueXattr::Trusted,
            sync: false,
            owner: None,
            whiteouts: true,
        }
    }
}

/// What [`apply_layer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries applied (whiteouts and directories included; PAX and GNU
    /// extension records not).
    pub entries: u64,
    /// Bytes of file data written (docker's layer "size").
    pub bytes: u64,
    /// Bytes of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// `sha256:<hex>` of the uncompressed tar stream: compare it with the
    /// image config's `rootfs.diff_ids`.
    pub diff_id: String,
}

/// Applies the uncompressed layer tar read from `r` to the directory `dest`.
///
/// `dest` is an empty (or partially built) layer directory that nothing else
/// writes to while this runs; nothing outside it is ever created, changed or
/// removed. On error `dest` is left partially written; the caller unpacks
/// into a temporary directory and discards it. The whole stream is read, so
/// the returned diff ID covers every byte.
pub fn apply_layer(r: impl Read, dest: &Path, opts: &ApplyOptions) -> Result<ApplyStats, Error> {
    let mut tar = TarReader::new(BufReader::with_capacity(READ_BUF, HashingReader::new(r)));
    let root_owner = match (&opts.id_map, opts.owner) {
        (_, Some(owner)) => owner,
        (Some(map), None) => (
            map.uid_to_host(0).ok_or(Error::UnmappedId {
                entry: "/".into(),
                which: "uid",
                id: 0,
            })?,
            map.gid_to_host(0).ok_or(Error::UnmappedId {
                entry: "/".into(),
                which: "gid",
                id: 0,
            })?,
        ),
        (None, None) => (0, 0),
    };
    let root = LayerRoot::open(
        dest,
        (Uid::from_raw(root_owner.0), Gid::from_raw(root_owner.1)),
    )
    .map_err(|source| Error::OpenRoot {
        path: dest.to_path_buf(),
        source,
    })?;
    let unpacker = Unpacker::new(root, opts);
    let mut counts = Counts::default();

    let (fed, unpacked) = std::thread::scope(|s| {
        let (tx, rx) = sync_channel(QUEUE);
        let (pool_tx, pool_rx) = channel();
        let worker = std::thread::Builder::new()
            .name("berth-unpack".into())
            .spawn_scoped(s, move || unpacker.run(Inbox::new(rx), pool_tx));
        let worker = match worker {
            Ok(w) => w,
            Err(source) => {
                let e = Error::Apply {
                    entry: String::new(),
                    op: "starting the unpack thread",
                    source,
                };
                return (Err(e), Err(Stop::Aborted));
            }
        };
        let fed = feed(&mut tar, &tx, &pool_rx, opts, &mut counts);
        drop(tx);
        let unpacked = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (fed, unpacked)
    });
    match (fed, unpacked) {
        // The worker's failure is the cause; the feeder only saw it leave.
        (_, Err(Stop::Failed(e))) => return Err(e),
        (Err(e), _) => return Err(e),
        (Ok(()), Err(Stop::Aborted)) => {
            return Err(Error::Apply {
                entry: String::new(),
                op: "unpacking",
                source: io::Error::other("internal: the unpack thread stopped without an error"),
            })
        }
        (Ok(()), Ok(())) => {}
    }
    let (diff_id, tar_bytes) =
        tar.into_inner()
            .into_inner()
            .finish()
            .map_err(|source| Error::Apply {
                entry: String::new(),
                op: "hashing the layer",
                source,
            })?;
    Ok(ApplyStats {
        entries: counts.entries,
        bytes: counts.bytes,
        tar_bytes,
        diff_id,
    })
}

#[derive(Default)]
struct Counts {
    entries: u64,
    bytes: u64,
}

/// The feeding end of the channel: collects messages into batches.
struct Outbox<'a> {
    tx: &'a SyncSender<Vec<Msg>>,
    batch: Vec<Msg>,
    bytes: usize,
}

impl Outbox<'_> {
    /// Queues `m`; false if the worker is gone.
    fn push(&mut self, m: Msg, bytes: usize) -> bool {
        self.batch.push(m);
        self.bytes += bytes;
        if self.batch.len() >= BATCH || self.bytes >= CHUNK {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        self.bytes = 0;
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        batch.is_empty() || self.tx.send(batch).is_ok()
    }
}

/// Parses the stream and sends entries and data to the worker. Returns
/// early (and fine) if the worker went away: its result says why.
fn feed<R: io::BufRead>(
    tar: &mut TarReader<R>,
    tx: &SyncSender<Vec<Msg>>,
    pool: &Receiver<Vec<u8>>,
    opts: &ApplyOptions,
    counts: &mut Counts,
) -> Result<(), Error> {
    // Big files travel in recycled CHUNK-sized buffers; small ones in
    // buffers of their own size, so a small file never pins a recycled
    // megabyte while it waits in the queue.
    let buffer = |size: u64| {
        if size < CHUNK as u64 {
            return Vec::with_capacity(size as usize);
        }
        let mut b = pool.try_recv().unwrap_or_default();
        b.clear();
        b.reserve(CHUNK);
        b
    };
    let mut out = Outbox {
        tx,
        batch: Vec::with_capacity(BATCH),
        bytes: 0,
    };
    while let Some(entry) = tar.next_entry()? {
        check_limits(&entry, opts, counts)?;
        let mut first = Vec::new();
        let mut more = false;
        if entry.kind == Kind::Regular && entry.size > 0 {
            first = buffer(entry.size);
            more = tar.read_chunk(&mut first, CHUNK)?;
        }
        let len = first.len();
        if !out.push(Msg::Entry(entry, first, more), len) {
            return Ok(());
        }
        while more {
            let mut chunk = buffer(CHUNK as u64);
            more = tar.read_chunk(&mut chunk, CHUNK)?;
            let len = chunk.len();
            if !out.push(Msg::Chunk(chunk, more), len) {
                return Ok(());
            }
        }
    }
    if out.push(Msg::Finish, 0) {
        out.flush();
    }
    Ok(())
}

fn check_limits(entry: &Entry, opts: &ApplyOptions, counts: &mut Counts) -> Result<(), Error> {
    counts.entries += 1;
    if counts.entries > opts.max_entries {
        return Err(Error::TooManyEntries {
            entry: entry.name(),
            limit: opts.max_entries,
        });
    }
    if entry.size > opts.max_entry_size {
        return Err(Error::EntryTooLarge {
            entry: entry.name(),
            size: entry.size,
            limit: opts.max_entry_size,
        });
    }
    counts.bytes = counts.bytes.saturating_add(entry.size);
    if counts.bytes > opts.max_total_size {
        return Err(Error::TotalTooLarge {
            entry: entry.name(),
            limit: opts.max_total_size,
        });
    }
    Ok(())
}
