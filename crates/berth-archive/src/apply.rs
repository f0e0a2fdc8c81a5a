//! Applying a layer tar to a layer directory.
//!
//! The result is an overlayfs layer: OCI whiteouts (`.wh.NAME`) become
//! overlay whiteouts (a 0/0 character device named NAME) and opaque markers
//! (`.wh..wh..opq`) become the `trusted.overlay.opaque=y` xattr (or
//! `user.overlay.opaque` for `userxattr` mounts) on their directory.
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
use std::io::{self, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, futimens, linkat, makedev, mkdirat, mknodat, openat,
    symlinkat, utimensat, AtFlags, FileType, Gid, Mode, OFlags, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::digest::HashingReader;
use crate::error::{show, Error};
use crate::fsops::{is_dir_at, lsetxattr_at, open_subdir, remove_any, timestamps};
use crate::idmap::IdMap;
use crate::path::{normalize, split};
use crate::reader::{Entry, Kind, Mtime, TarReader};
use crate::root::LayerRoot;

/// OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// OCI opaque-directory marker.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Prefix of aufs metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs`), which
/// old docker layers contain and which are skipped.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

/// Read buffer over the (decompressed) stream: large, so small files are
/// copied straight out of it and large ones are written in big chunks.
const READ_BUF: usize = 1 << 20;

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
    /// the layer cannot survive a crash that loses its contents.
    pub sync: bool,
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
    let root_owner = match &opts.id_map {
        Some(map) => (
            map.uid_to_host(0).ok_or(Error::UnmappedId { entry: "/".into(), which: "uid", id: 0 })?,
            map.gid_to_host(0).ok_or(Error::UnmappedId { entry: "/".into(), which: "gid", id: 0 })?,
        ),
        None => (0, 0),
    };
    let root = LayerRoot::open(dest, (Uid::from_raw(root_owner.0), Gid::from_raw(root_owner.1)))
        .map_err(|source| Error::OpenRoot { path: dest.to_path_buf(), source })?;
    let mut applier = Applier { root, opts, dir_times: HashMap::new(), entries: 0, bytes: 0 };

    while let Some(entry) = tar.next_entry()? {
        applier.check_limits(&entry)?;
        applier.apply(&mut tar, &entry)?;
    }
    applier.finish()?;
    let (diff_id, tar_bytes) = tar.into_inner().into_inner().finish();
    Ok(ApplyStats { entries: applier.entries, bytes: applier.bytes, tar_bytes, diff_id })
}

struct Applier<'o> {
    root: LayerRoot,
    opts: &'o ApplyOptions,
    /// Directory path -> mtime, applied at the end (last entry wins).
    dir_times: HashMap<Vec<u8>, Mtime>,
    entries: u64,
    bytes: u64,
}

/// Converts a failed file system call into an error naming the entry.
fn ctx<T, E: Into<io::Error>>(entry: &Entry, op: &'static str, r: Result<T, E>) -> Result<T, Error> {
    r.map_err(|e| Error::Apply { entry: entry.name(), op, source: e.into() })
}

fn is_errno(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

impl Applier<'_> {
    fn check_limits(&mut self, entry: &Entry) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.opts.max_entries {
            return Err(Error::TooManyEntries { entry: entry.name(), limit: self.opts.max_entries });
        }
        if entry.size > self.opts.max_entry_size {
            return Err(Error::EntryTooLarge { entry: entry.name(), size: entry.size, limit: self.opts.max_entry_size });
        }
        self.bytes = self.bytes.saturating_add(entry.size);
        if self.bytes > self.opts.max_total_size {
            return Err(Error::TotalTooLarge { entry: entry.name(), limit: self.opts.max_total_size });
        }
        Ok(())
    }

    fn owner(&self, entry: &Entry) -> Result<(Uid, Gid), Error> {
        let unmapped = |which, id| Error::UnmappedId { entry: entry.name(), which, id };
        let (uid, gid) = match &self.opts.id_map {
            Some(map) => (
                map.uid_to_host(entry.uid).ok_or_else(|| unmapped("uid", entry.uid))?,
                map.gid_to_host(entry.gid).ok_or_else(|| unmapped("gid", entry.gid))?,
            ),
            None => (
                u32::try_from(entry.uid).map_err(|_| unmapped("uid", entry.uid))?,
                u32::try_from(entry.gid).map_err(|_| unmapped("gid", entry.gid))?,
            ),
        };
        Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
    }

    fn apply<R: io::BufRead>(&mut self, tar: &mut TarReader<R>, entry: &Entry) -> Result<(), Error> {
        let rel = normalize(&entry.path)
            .map_err(|reason| Error::BadPath { entry: entry.name(), path: entry.name(), reason })?;
        if rel.is_empty() {
            return self.apply_root(entry);
        }
        let (parent, name) = split(&rel);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(entry, parent, name);
        }
        let owner = self.owner(entry)?;
        match entry.kind {
            Kind::Regular => {
                let pfd = ctx(entry, "opening the parent directory", self.root.parent(parent))?;
                let file = create_replacing(entry, pfd, name, || {
                    openat(
                        pfd,
                        name,
                        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                })?;
                let mut file = File::from(file);
                tar.copy_data(&mut file)?;
                set_fd_metadata(entry, file.as_fd(), owner)?;
                ctx(entry, "setting the modification time", futimens(&file, &timestamps(entry.mtime)))?;
                self.root.invalidate(&rel);
            }
            Kind::Dir => {
                let pfd = ctx(entry, "opening the parent directory", self.root.parent(parent))?;
                let dir = create_dir(entry, pfd, name)?;
                set_fd_metadata(entry, dir.as_fd(), owner)?;
                self.dir_times.insert(rel.clone(), entry.mtime);
                self.root.invalidate(&rel);
                // The next entries most likely go into this directory.
                self.root.remember(rel, dir);
            }
            Kind::Symlink => {
                if entry.link.is_empty() || entry.link.contains(&0) {
                    return Err(Error::BadPath {
                        entry: entry.name(),
                        path: show(&entry.link),
                        reason: "a symlink target must be non-empty and without NUL bytes",
                    });
                }
                let pfd = ctx(entry, "opening the parent directory", self.root.parent(parent))?;
                create_replacing(entry, pfd, name, || symlinkat(entry.link.as_slice(), pfd, name))?;
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
                let pfd = ctx(entry, "opening the parent directory", self.root.parent(parent))?;
                create_replacing(entry, pfd, name, || {
                    mknodat(pfd, name, ty, Mode::from_raw_mode(entry.mode & 0o777), dev)
                })?;
                set_at_metadata(entry, pfd, name, owner, Some(entry.mode))?;
                self.root.invalidate(&rel);
            }
        }
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
        self.dir_times.insert(Vec::new(), entry.mtime);
        Ok(())
    }

    /// `.wh.NAME` hides NAME of the lower layers; `.wh..wh..opq` hides all of
    /// the directory's lower contents.
    fn whiteout(&mut self, entry: &Entry, parent: &[u8], name: &[u8]) -> Result<(), Error> {
        if name == OPAQUE_MARKER {
            let pfd = ctx(entry, "opening the opaque directory", self.root.parent(parent))?;
            return ctx(
                entry,
                "marking the directory opaque",
                fsetxattr(pfd, self.opts.opaque_xattr.name(), b"y", XattrFlags::empty()),
            );
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::BadPath { entry: entry.name(), path: entry.name(), reason: "the whiteout names nothing" });
        }
        let owner = self.owner(entry)?;
        let pfd = ctx(entry, "opening the parent directory", self.root.parent(parent))?;
        ctx(entry, "removing the whited-out path", remove_any(pfd, hidden))?;
        ctx(
            entry,
            "creating the overlay whiteout",
            mknodat(pfd, hidden, FileType::CharacterDevice, Mode::empty(), makedev(0, 0)),
        )?;
        ctx(
            entry,
            "setting the whiteout's owner",
            chownat(pfd, hidden, Some(owner.0), Some(owner.1), AtFlags::SYMLINK_NOFOLLOW),
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
    /// last component, so a link can only ever point at a file of `dest`; a
    /// target outside (after confinement: missing) is an error.
    fn hardlink(&mut self, entry: &Entry, rel: &[u8], parent: &[u8], name: &[u8]) -> Result<(), Error> {
        let bad_target = |source: io::Error| Error::HardlinkTarget {
            entry: entry.name(),
            target: show(&entry.link),
            source,
        };
        let target = normalize(&entry.link)
            .map_err(|reason| Error::BadPath { entry: entry.name(), path: show(&entry.link), reason })?;
        if target.is_empty() {
            return Err(bad_target(io::Error::other("the target is the layer root")));
        }
        if target == rel {
            return Err(bad_target(io::Error::other("the link points at itself")));
        }
        let (tparent, tname) = split(&target);
        let tdir = self.root.resolve_dir(tparent).map_err(bad_target)?;
        let pfd = ctx(entry, "opening the parent directory", self.root.parent(parent))?;
        let linked = create_replacing(entry, pfd, name, || linkat(&tdir, tname, pfd, name, AtFlags::empty()));
        match linked {
            Ok(()) => Ok(()),
            Err(Error::Apply { source, .. })
                if is_errno(&source, Errno::NOENT) || is_errno(&source, Errno::PERM) || is_errno(&source, Errno::XDEV) =>
            {
                Err(bad_target(source))
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the directory mtimes recorded during the walk, then syncs.
    fn finish(&mut self) -> Result<(), Error> {
        for (path, mtime) in &self.dir_times {
            let fd = match self.root.reopen_dir(path) {
                Ok(fd) => fd,
                // Replaced or removed by a later entry: its time is gone too.
                Err(e) if [Errno::NOENT, Errno::NOTDIR, Errno::LOOP].iter().any(|&n| is_errno(&e, n)) => continue,
                Err(source) => return Err(Error::Apply { entry: show(path), op: "reopening the directory", source }),
            };
            futimens(&fd, &timestamps(*mtime)).map_err(|e| Error::Apply {
                entry: show(path),
                op: "setting the directory's modification time",
                source: e.into(),
            })?;
        }
        if self.opts.sync {
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
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut create: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, Error> {
    match create() {
        Err(Errno::EXIST) => {
            ctx(entry, "removing the existing path", remove_any(dir, name))?;
            ctx(entry, "creating", create())
        }
        r => ctx(entry, "creating", r),
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
                ctx(entry, "creating the directory", mkdirat(dir, name, Mode::from_raw_mode(0o700)))?;
            }
        }
        Err(e) => return ctx(entry, "creating the directory", Err(e)),
    }
    ctx(entry, "opening the new directory", open_subdir(dir, name))
}

/// Owner, mode and xattrs through the descriptor of a file or directory.
/// Order matters: chown clears setuid/setgid and security.capability, so
/// the mode and xattrs come after it.
fn set_fd_metadata(entry: &Entry, fd: BorrowedFd<'_>, owner: (Uid, Gid)) -> Result<(), Error> {
    ctx(entry, "setting the owner", fchown(fd, Some(owner.0), Some(owner.1)))?;
    ctx(entry, "setting the mode", fchmod(fd, Mode::from_raw_mode(entry.mode)))?;
    for (key, value) in &entry.xattrs {
        if skip_xattr(entry, key) {
            continue;
        }
        xattr_result(entry, key, fsetxattr(fd, key.as_slice(), value, XattrFlags::empty()).map_err(Into::into))?;
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
    ctx(entry, "setting the owner", chownat(dir, name, Some(owner.0), Some(owner.1), AtFlags::SYMLINK_NOFOLLOW))?;
    if let Some(mode) = mode {
        // fchmodat follows symlinks, but `name` was just created by us as a
        // device or FIFO and nothing else writes to the layer directory.
        ctx(entry, "setting the mode", chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty()))?;
    }
    for (key, value) in &entry.xattrs {
        if skip_xattr(entry, key) {
            continue;
        }
        xattr_result(entry, key, lsetxattr_at(dir, name, key, value))?;
    }
    ctx(
        entry,
        "setting the modification time",
        utimensat(dir, name, &timestamps(entry.mtime), AtFlags::SYMLINK_NOFOLLOW),
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
