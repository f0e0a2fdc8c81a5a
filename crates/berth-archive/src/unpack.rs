//! The file system side of [`crate::apply_layer`]: creates one entry at a
//! time inside the layer directory. Runs on its own thread, fed by the
//! thread that decompresses and parses the stream (see `apply.rs`).
//!
//! Confinement: see [`crate::root`]. Every entry's parent is resolved with
//! `RESOLVE_IN_ROOT` and the entry itself is created with an `*at` call that
//! does not follow its last component (`O_CREAT|O_EXCL|O_NOFOLLOW`,
//! `mkdirat`, `symlinkat`, `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`).
//! Metadata is set through the descriptor of the created file where one can
//! be had (regular files, directories) and with `AT_SYMLINK_NOFOLLOW` (or
//! the procfs path of the parent descriptor, for xattrs) otherwise.
//!
//! Layer rules: an entry replaces whatever exists at its path (a directory
//! recursively), except that a directory over a directory merges and takes
//! the new metadata. Directory mtimes are set after everything else, since
//! creating entries in a directory changes its mtime.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{Receiver, Sender};

use berth_sys::direct_io::DirectAppender;
use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, futimens, linkat, makedev, mkdirat, mknodat,
    openat, symlinkat, utimensat, AtFlags, FileType, Gid, Mode, OFlags, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::apply::{ApplyOptions, OpaqueXattr, CHUNK, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::error::{show, Error};
use crate::flusher::EarlyFlush;
use crate::fsops::{current_umask, is_dir_at, lsetxattr_at, open_subdir, remove_any, timestamps};
use crate::idmap::IdMap;
use crate::path::{normalize, split};
use crate::reader::{Entry, Kind, Mtime};
use crate::root::{LayerRoot, S_ISGID};

/// Prefix of aufs metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs`), which
/// old docker layers contain and which are skipped.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

/// Files at least this large are queued for writeback once written (when
/// the layer is to be synced); smaller ones are written back in batches
/// ([`crate::flusher`]): the final syncfs then waits for little more than
/// the last of them and the metadata.
const EARLY_WRITEBACK_SIZE: u64 = 128 << 10;

/// Files at least this large are written with direct I/O when the layer
/// is to be synced: the bytes go to the disk now either way, and skipping
/// the page cache spares a copy into freshly allocated pages, a pull's
/// largest cost on a VM (see berth_sys::direct_io). Smaller files stay
/// buffered: a direct write waits for the disk, once per file.
const DIRECT_IO_SIZE: u64 = 256 << 10;

/// What the parsing thread sends.
pub(crate) enum Msg {
    /// An entry, with the first chunk of its data (regular files) and
    /// whether more chunks follow.
    Entry(Entry, Vec<u8>, bool),
    /// The next chunk of the current file, and whether more follow.
    Chunk(Vec<u8>, bool),
    /// The stream ended cleanly: finish the layer.
    Finish,
}

/// Why the worker stopped early.
pub(crate) enum Stop {
    /// A file system operation (or the entry itself) failed.
    Failed(Error),
    /// The parsing thread went away (its own error explains why).
    Aborted,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// The worker's end of the channel: batches of messages, read one by one.
pub(crate) struct Inbox {
    rx: Receiver<Vec<Msg>>,
    batch: std::vec::IntoIter<Msg>,
}

impl Inbox {
    pub(crate) fn new(rx: Receiver<Vec<Msg>>) -> Self {
        Inbox {
            rx,
            batch: Vec::new().into_iter(),
        }
    }

    /// The next message, or `None` once the sender is gone.
    fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(m) = self.batch.next() {
                return Some(m);
            }
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// The data of the current entry as it arrives.
struct Data<'a> {
    first: Vec<u8>,
    more: bool,
    inbox: &'a mut Inbox,
    pool: &'a Sender<Vec<u8>>,
}

impl Data<'_> {
    /// Hands each chunk to `sink`, returning emptied buffers to the pool.
    fn each(self, mut sink: impl FnMut(&[u8]) -> Result<(), Error>) -> Result<(), Stop> {
        let mut buf = self.first;
        let mut more = self.more;
        loop {
            if !buf.is_empty() {
                sink(&buf)?;
            }
            if buf.capacity() >= CHUNK {
                // The parser may be gone; then the buffer is simply freed.
                let _ = self.pool.send(buf);
            }
            if !more {
                return Ok(());
            }
            match self.inbox.next() {
                Some(Msg::Chunk(next, m)) => {
                    buf = next;
                    more = m;
                }
                Some(_) => {
                    return Err(Stop::Failed(Error::Apply {
                        entry: String::new(),
                        op: "receiving file data",
                        source: io::Error::other(
                            "internal: a new entry arrived inside a file's data",
                        ),
                    }))
                }
                None => return Err(Stop::Aborted),
            }
        }
    }
}

pub(crate) struct Unpacker {
    root: LayerRoot,
    id_map: Option<IdMap>,
    opaque_xattr: OpaqueXattr,
    sync: bool,
    /// [`crate::ApplyOptions::owner`].
    owner: Option<(Uid, Gid)>,
    /// [`crate::ApplyOptions::whiteouts`].
    whiteouts: bool,
    /// Owner new files get without a chown: ours (euid, egid).
    creator: (Uid, Gid),
    /// Known umask, to skip `fchmod` when creation already set the mode.
    umask: Option<u32>,
    /// Directory path -> mtime, applied at the end (last entry wins).
    dir_times: HashMap<Vec<u8>, Mtime>,
    /// When synced: the small files' early writeback.
    early_flush: EarlyFlush,
}

/// Converts a failed file system call into an error naming the entry.
fn ctx<T, E: Into<io::Error>>(
    entry: &Entry,
    op: &'static str,
    r: Result<T, E>,
) -> Result<T, Error> {
    r.map_err(|e| Error::Apply {
        entry: entry.name(),
        op,
        source: e.into(),
    })
}

fn is_errno(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

impl Unpacker {
    pub(crate) fn new(root: LayerRoot, opts: &ApplyOptions) -> Self {
        Unpacker {
            root,
            id_map: opts.id_map.clone(),
            opaque_xattr: opts.opaque_xattr,
            sync: opts.sync,
            owner: opts
                .owner
                .map(|(u, g)| (Uid::from_raw(u), Gid::from_raw(g))),
            whiteouts: opts.whiteouts,
            creator: (rustix::process::geteuid(), rustix::process::getegid()),
            umask: None,
            dir_times: HashMap::new(),
            early_flush: EarlyFlush::default(),
        }
    }

    /// Applies messages until `Finish` (then finishes the layer) or until
    /// the sender goes away.
    pub(crate) fn run(mut self, mut inbox: Inbox, pool: Sender<Vec<u8>>) -> Result<(), Stop> {
        // Read here: this thread's umask is the one its creates see.
        self.umask = current_umask();
        loop {
            match inbox.next() {
                Some(Msg::Entry(entry, first, more)) => {
                    let data = Data {
                        first,
                        more,
                        inbox: &mut inbox,
                        pool: &pool,
                    };
                    self.apply(&entry, data)?;
                }
                Some(Msg::Finish) => return Ok(self.finish()?),
                Some(Msg::Chunk(..)) => {
                    return Err(Stop::Failed(Error::Apply {
                        entry: String::new(),
                        op: "receiving file data",
                        source: io::Error::other("internal: file data arrived outside a file"),
                    }))
                }
                None => return Err(Stop::Aborted),
            }
        }
    }

    fn owner(&self, entry: &Entry) -> Result<(Uid, Gid), Error> {
        if let Some(owner) = self.owner {
            return Ok(owner);
        }
        let unmapped = |which, id| Error::UnmappedId {
            entry: entry.name(),
            which,
            id,
        };
        let (uid, gid) = match &self.id_map {
            Some(map) => (
                map.uid_to_host(entry.uid)
                    .ok_or_else(|| unmapped("uid", entry.uid))?,
                map.gid_to_host(entry.gid)
                    .ok_or_else(|| unmapped("gid", entry.gid))?,
            ),
            None => (
                u32::try_from(entry.uid).map_err(|_| unmapped("uid", entry.uid))?,
                u32::try_from(entry.gid).map_err(|_| unmapped("gid", entry.gid))?,
            ),
        };
        Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
    }

    fn apply(&mut self, entry: &Entry, data: Data<'_>) -> Result<(), Stop> {
        let rel = normalize(&entry.path).map_err(|reason| Error::BadPath {
            entry: entry.name(),
            path: entry.name(),
            reason,
        })?;
        if rel.is_empty() {
            self.apply_root(entry)?;
            return data.each(|_| Ok(()));
        }
        // aufs-era layers keep bookkeeping under top-level `.wh..wh.plnk/`
        // and `.wh..wh.aufs`; docker skips it, and so do we.
        if self.whiteouts && rel.starts_with(WHITEOUT_META_PREFIX) && rel != OPAQUE_MARKER {
            return data.each(|_| Ok(()));
        }
        let (parent, name) = split(&rel);
        // A whiteout is a marker, never a directory: a path beneath one
        // would make us create a `.wh.` directory in the layer.
        if self.whiteouts
            && parent
                .split(|&b| b == b'/')
                .any(|c| c.starts_with(WHITEOUT_PREFIX))
        {
            return Err(Error::BadPath {
                entry: entry.name(),
                path: entry.name(),
                reason: "a directory on its path is a whiteout (.wh.)",
            }
            .into());
        }
        if self.whiteouts && name.starts_with(WHITEOUT_PREFIX) {
            self.whiteout(entry, parent, name)?;
            return data.each(|_| Ok(()));
        }
        let owner = self.owner(entry)?;
        match entry.kind {
            Kind::Regular => self.regular(entry, &rel, parent, name, owner, data)?,
            Kind::Dir => {
                let (pfd, _) = ctx(
                    entry,
                    "opening the parent directory",
                    self.root.parent(parent),
                )?;
                let dir = create_dir(entry, pfd, name)?;
                set_fd_metadata(entry, dir.as_fd(), owner)?;
                self.dir_times.insert(rel.clone(), entry.mtime);
                self.root.invalidate(&rel);
                // The next entries most likely go into this directory.
                self.root.remember(rel, dir, entry.mode & S_ISGID != 0);
            }
            Kind::Symlink => {
                if entry.link.is_empty() || entry.link.contains(&0) {
                    return Err(Error::BadPath {
                        entry: entry.name(),
                        path: show(&entry.link),
                        reason: "a symlink target must be non-empty and without NUL bytes",
                    }
                    .into());
                }
                let (pfd, _) = ctx(
                    entry,
                    "opening the parent directory",
                    self.root.parent(parent),
                )?;
                create_replacing(entry, "creating the symlink", pfd, name, || {
                    symlinkat(entry.link.as_slice(), pfd, name)
                })?;
                set_at_metadata(entry, pfd, name, owner, None)?;
                self.root.invalidate(&rel);
            }
            Kind::Hardlink => {
                self.hardlink(entry, &rel, parent, name)?;
                self.root.invalidate(&rel);
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let ty = match entry.kind {
                    Kind::Char => FileType::CharacterDevice,
                    Kind::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = makedev(entry.dev_major, entry.dev_minor);
                let (pfd, _) = ctx(
                    entry,
                    "opening the parent directory",
                    self.root.parent(parent),
                )?;
                create_replacing(entry, "creating the device node", pfd, name, || {
                    mknodat(pfd, name, ty, Mode::from_raw_mode(entry.mode & 0o777), dev)
                })?;
                set_at_metadata(entry, pfd, name, owner, Some(entry.mode))?;
                self.root.invalidate(&rel);
            }
        }
        Ok(())
    }

    /// A regular file: created with its final permission bits, written, and
    /// given owner, mode and xattrs through its descriptor. chown and chmod
    /// are skipped when creation already produced the right result (most
    /// files of most layers), which saves two system calls per file.
    fn regular(
        &mut self,
        entry: &Entry,
        rel: &[u8],
        parent: &[u8],
        name: &[u8],
        owner: (Uid, Gid),
        data: Data<'_>,
    ) -> Result<(), Stop> {
        let perm = entry.mode & 0o777;
        let creator = self.creator;
        let umask = self.umask;
        let (pfd, parent_setgid) = ctx(
            entry,
            "opening the parent directory",
            self.root.parent(parent),
        )?;
        let fd = create_replacing(entry, "creating the file", pfd, name, || {
            openat(
                pfd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(perm),
            )
        })?;
        let write_err = |source| Error::Apply {
            entry: entry.name(),
            op: "writing file data",
            source,
        };
        let mut file = File::from(fd);
        if self.sync && entry.size >= DIRECT_IO_SIZE {
            let mut out = DirectAppender::new(file, 0).map_err(write_err)?;
            data.each(|chunk| out.write_all(chunk).map_err(write_err))?;
            file = out.into_file().map_err(write_err)?;
        } else {
            data.each(|chunk| file.write_all(chunk).map_err(write_err))?;
        }
        if self.sync && entry.size >= EARLY_WRITEBACK_SIZE {
            // A hint: if the kernel refuses it, the final syncfs still does the work.
            let _ = berth_sys::writeback::start(file.as_fd(), 0, 0);
        } else if self.sync {
            self.early_flush.wrote(self.root.fd(), entry.size);
        }
        if owner != creator || parent_setgid {
            ctx(
                entry,
                "setting the owner",
                fchown(&file, Some(owner.0), Some(owner.1)),
            )?;
        }
        // chown clears setuid/setgid, so special bits are always set last.
        let mode_is_exact = matches!(umask, Some(m) if m & perm == 0) && entry.mode & 0o7000 == 0;
        if !mode_is_exact {
            ctx(
                entry,
                "setting the mode",
                fchmod(&file, Mode::from_raw_mode(entry.mode)),
            )?;
        }
        set_xattrs_fd(entry, file.as_fd())?;
        ctx(
            entry,
            "setting the modification time",
            futimens(&file, &timestamps(entry.mtime)),
        )?;
        self.root.invalidate(rel);
        Ok(())
    }

    /// `./` (or `/`): metadata for the layer directory itself.
    fn apply_root(&mut self, entry: &Entry) -> Result<(), Error> {
        if entry.kind != Kind::Dir {
            return Err(Error::BadPath {
                entry: entry.name(),
                path: entry.name(),
                reason: "it names the layer root, which can only be a directory",
            });
        }
        let owner = self.owner(entry)?;
        set_fd_metadata(entry, self.root.fd(), owner)?;
        // The cached parent may be the root with its old setgid bit.
        self.root.invalidate(b"");
        self.dir_times.insert(Vec::new(), entry.mtime);
        Ok(())
    }

    /// `.wh.NAME` hides NAME of the lower layers; `.wh..wh..opq` hides all of
    /// the directory's lower contents.
    fn whiteout(&mut self, entry: &Entry, parent: &[u8], name: &[u8]) -> Result<(), Error> {
        if name == OPAQUE_MARKER {
            let (pfd, _) = ctx(
                entry,
                "opening the opaque directory",
                self.root.parent(parent),
            )?;
            return ctx(
                entry,
                "marking the directory opaque",
                fsetxattr(pfd, self.opaque_xattr.name(), b"y", XattrFlags::empty()),
            );
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::BadPath {
                entry: entry.name(),
                path: entry.name(),
                reason: "the whiteout names nothing",
            });
        }
        let owner = self.owner(entry)?;
        let (pfd, _) = ctx(
            entry,
            "opening the parent directory",
            self.root.parent(parent),
        )?;
        ctx(
            entry,
            "removing the whited-out path",
            remove_any(pfd, hidden),
        )?;
        ctx(
            entry,
            "creating the overlay whiteout",
            mknodat(
                pfd,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                makedev(0, 0),
            ),
        )?;
        ctx(
            entry,
            "setting the whiteout's owner",
            chownat(
                pfd,
                hidden,
                Some(owner.0),
                Some(owner.1),
                AtFlags::SYMLINK_NOFOLLOW,
            ),
        )?;
        let mut removed = parent.to_vec();
        if !removed.is_empty() {
            removed.push(b'/');
        }
        removed.extend_from_slice(hidden);
        self.root.invalidate(&removed);
        Ok(())
    }

    /// A hard link to a non-directory of this layer. The target's parent is
    /// resolved inside the root and `linkat` does not follow the target's
    /// last component, so a link can only ever point at a file of the layer
    /// directory; a target outside (after confinement: missing) is an error.
    fn hardlink(
        &mut self,
        entry: &Entry,
        rel: &[u8],
        parent: &[u8],
        name: &[u8],
    ) -> Result<(), Error> {
        let bad_target = |source: io::Error| Error::HardlinkTarget {
            entry: entry.name(),
            target: show(&entry.link),
            source,
        };
        let target = normalize(&entry.link).map_err(|reason| Error::BadPath {
            entry: entry.name(),
            path: show(&entry.link),
            reason,
        })?;
        if target.is_empty() {
            return Err(bad_target(io::Error::other("the target is the layer root")));
        }
        if target == rel {
            return Err(bad_target(io::Error::other("the link points at itself")));
        }
        let (tparent, tname) = split(&target);
        let tdir = self.root.resolve_dir(tparent).map_err(bad_target)?;
        let (pfd, _) = ctx(
            entry,
            "opening the parent directory",
            self.root.parent(parent),
        )?;
        let linked = create_replacing(entry, "creating the hard link", pfd, name, || {
            linkat(&tdir, tname, pfd, name, AtFlags::empty())
        });
        match linked {
            Ok(()) => Ok(()),
            Err(Error::Apply { source, .. })
                if [Errno::NOENT, Errno::PERM, Errno::XDEV, Errno::NOTDIR]
                    .iter()
                    .any(|&n| is_errno(&source, n)) =>
            {
                Err(bad_target(source))
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the directory mtimes recorded during the walk, then syncs.
    fn finish(&mut self) -> Result<(), Error> {
        self.early_flush.stop();
        for (path, mtime) in &self.dir_times {
            let fd = match self.root.reopen_dir(path) {
                Ok(fd) => fd,
                // Replaced or removed by a later entry: its time is gone too.
                Err(e)
                    if [Errno::NOENT, Errno::NOTDIR, Errno::LOOP]
                        .iter()
                        .any(|&n| is_errno(&e, n)) =>
                {
                    continue
                }
                Err(source) => {
                    return Err(Error::Apply {
                        entry: show(path),
                        op: "reopening the directory",
                        source,
                    })
                }
            };
            futimens(&fd, &timestamps(*mtime)).map_err(|e| Error::Apply {
                entry: show(path),
                op: "setting the directory's modification time",
                source: e.into(),
            })?;
        }
        if self.sync {
            rustix::fs::syncfs(self.root.fd()).map_err(|e| Error::Apply {
                entry: String::new(),
                op: "syncing the layer's file system",
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

/// Runs `create`; if the name exists, removes what is there (a directory
/// recursively) and runs it again.
fn create_replacing<T>(
    entry: &Entry,
    op: &'static str,
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut create: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, Error> {
    match create() {
        Err(Errno::EXIST) => {
            ctx(entry, "removing the existing path", remove_any(dir, name))?;
            ctx(entry, op, create())
        }
        r => ctx(entry, op, r),
    }
}

/// Creates (or, over an existing directory, reuses) the directory `name`.
fn create_dir(entry: &Entry, dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Error> {
    // Permissions are set exactly (independent of the umask) once the
    // owner is; until then only we may use it.
    match mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            if !ctx(entry, "inspecting the existing path", is_dir_at(dir, name))? {
                ctx(entry, "removing the existing path", remove_any(dir, name))?;
                ctx(
                    entry,
                    "creating the directory",
                    mkdirat(dir, name, Mode::from_raw_mode(0o700)),
                )?;
            }
        }
        Err(e) => return ctx(entry, "creating the directory", Err(e)),
    }
    ctx(entry, "opening the new directory", open_subdir(dir, name))
}

/// Owner, mode and xattrs through the descriptor of a directory. Order
/// matters: chown clears setuid/setgid and security.capability, so the mode
/// and xattrs come after it.
fn set_fd_metadata(entry: &Entry, fd: BorrowedFd<'_>, owner: (Uid, Gid)) -> Result<(), Error> {
    ctx(
        entry,
        "setting the owner",
        fchown(fd, Some(owner.0), Some(owner.1)),
    )?;
    ctx(
        entry,
        "setting the mode",
        fchmod(fd, Mode::from_raw_mode(entry.mode)),
    )?;
    set_xattrs_fd(entry, fd)
}

fn set_xattrs_fd(entry: &Entry, fd: BorrowedFd<'_>) -> Result<(), Error> {
    for (key, value) in &entry.xattrs {
        if !skip_xattr(entry, key) {
            xattr_result(
                entry,
                key,
                fsetxattr(fd, key.as_slice(), value, XattrFlags::empty()).map_err(Into::into),
            )?;
        }
    }
    Ok(())
}

/// Owner, (mode), xattrs and mtime of a symlink or special file, by name in
/// its parent without following it. `mode` is `None` for symlinks, whose
/// mode Linux ignores.
fn set_at_metadata(
    entry: &Entry,
    dir: BorrowedFd<'_>,
    name: &[u8],
    owner: (Uid, Gid),
    mode: Option<u32>,
) -> Result<(), Error> {
    ctx(
        entry,
        "setting the owner",
        chownat(
            dir,
            name,
            Some(owner.0),
            Some(owner.1),
            AtFlags::SYMLINK_NOFOLLOW,
        ),
    )?;
    if let Some(mode) = mode {
        // fchmodat follows symlinks, but `name` was just created by us as a
        // device or FIFO and nothing else writes to the layer directory.
        ctx(
            entry,
            "setting the mode",
            chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty()),
        )?;
    }
    for (key, value) in &entry.xattrs {
        if !skip_xattr(entry, key) {
            xattr_result(entry, key, lsetxattr_at(dir, name, key, value))?;
        }
    }
    ctx(
        entry,
        "setting the modification time",
        utimensat(
            dir,
            name,
            &timestamps(entry.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        ),
    )
}

/// Overlay's own xattrs are never taken from a layer: a forged
/// `trusted.overlay.redirect` or `metacopy` would make the overlay serve
/// another file's contents. Opaqueness comes only from `.wh..wh..opq`.
fn skip_xattr(entry: &Entry, key: &[u8]) -> bool {
    let skip = key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay.");
    if skip {
        tracing::warn!(entry = %entry.name(), xattr = %show(key), "ignoring an overlayfs xattr in a layer");
    }
    skip
}

/// Like docker, a file system that cannot store an xattr (or refuses its
/// namespace) loses it with a warning instead of failing the pull.
fn xattr_result(entry: &Entry, key: &[u8], r: io::Result<()>) -> Result<(), Error> {
    match r {
        Err(e) if is_errno(&e, Errno::NOTSUP) || is_errno(&e, Errno::PERM) => {
            tracing::warn!(entry = %entry.name(), xattr = %show(key), error = %e, "cannot set xattr; dropped");
            Ok(())
        }
        r => ctx(entry, "setting an xattr", r),
    }
}
