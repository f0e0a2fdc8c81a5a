//! A container's files from outside: `docker cp` both ways (`GET`, `HEAD`
//! and `PUT /containers/{id}/archive`), `docker export` and `docker diff`
//! (`GET /containers/{id}/changes`).
//!
//! Every path is resolved inside the container's root filesystem, as if it
//! were `/`: `openat2(RESOLVE_IN_ROOT)` from a descriptor of the rootfs, so
//! no symlink or `..` in the request or in a container's files reaches the
//! host. Tars are read and written by berth-archive (confined extraction,
//! descriptor walks); this module only decides where.
//!
//! Each operation runs on a thread of its own that first unshares its
//! mount namespace (`unshare(CLONE_FS | CLONE_NEWNS)`, then everything
//! private), so what it mounts is seen by nobody else and disappears with
//! the thread, whatever happens to the daemon:
//! - a running container's overlay is already mounted on
//!   `<data-root>/containers/<id>/rootfs` and is used as it is;
//! - a stopped one's is mounted in the thread's namespace (`rootfs::mount`)
//!   while the container's lifecycle lock is held, so it cannot start (and
//!   mount the same upper directory) meanwhile, and unmounted after;
//! - `GET` names the tar's entries after the requested path (docker's
//!   rebase: `/etc/` gives `etc/...`) by bind-mounting the resolved file or
//!   directory, by descriptor, into a scratch tmpfs and writing that.
//!
//! `PUT` extracts into a fresh staging directory beside the files (inside
//! the requested directory) and then moves the entries into place, so the
//! `noOverwriteDirNonDir` check sees the whole archive before anything is
//! replaced, `copyUIDGID` can own exactly what was extracted, and a refused
//! archive (a `..` that climbs out, a hard link to a host file) changes
//! nothing; the staging directory is always removed.
//!
//! `changes` compares the container's upper directory with the image's
//! layers directly (no mount): overlay whiteouts are deletions, an opaque
//! directory deletes what the layers had under it, and a path is added or
//! modified depending on whether the layers below have it (looked up with
//! overlay's own rules: whiteouts, opaque directories, a non-directory
//! hiding everything under its name).

use std::collections::{BTreeSet, HashSet};
use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use berth_errdefs::{ErrorKind, HasKind};
use rustix::fs::{
    fstat, mkdirat, openat, openat2, readlinkat, renameat, statat, symlinkat, unlinkat, AtFlags,
    FileType, Mode, OFlags, ResolveFlags, Stat,
};
use rustix::io::Errno;
use serde::Serialize;

use super::{rootfs, Loaded};
use crate::engine::Engine;
use crate::error::ApiError;
use crate::streams::{drain_rest, ChannelWriter};

/// Largest (compressed) tar body `PUT` reads.
pub const MAX_PUT_BODY: u64 = 64 << 30;
/// Limits on what one `PUT` may extract (decompression bombs).
const MAX_PUT_DATA: u64 = 64 << 30;
const MAX_PUT_ENTRIES: u64 = 1_000_000;
/// Deepest directory tree `PUT` merges or removes (one descriptor a level).
const MAX_DEPTH: usize = 1024;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Internal, msg)
}

fn errno_io(e: Errno) -> std::io::Error {
    e.into()
}

/// What `X-Docker-Container-Path-Stat` carries (docker's
/// `ContainerPathStat`; `mode` is Go's `os.FileMode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header's value: base64 of the JSON.
    pub fn header_value(&self) -> String {
        let json = serde_json::to_vec(self).expect("a path stat serialises");
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    pub fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0
    }
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;

/// A Unix `st_mode` as Go's `os.FileMode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => GO_MODE_DIR,
        FileType::Symlink => GO_MODE_SYMLINK,
        FileType::BlockDevice => GO_MODE_DEVICE,
        FileType::CharacterDevice => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        FileType::Fifo => GO_MODE_NAMED_PIPE,
        FileType::Socket => GO_MODE_SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= GO_MODE_SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= GO_MODE_SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= GO_MODE_STICKY;
    }
    m
}

/// `PUT` options (docker's query flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

/// A requested container path, cleaned as docker does (`filepath.Join("/",
/// p)` keeping a trailing `/` or `/.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Absolute and lexically clean: `/`, `/etc`, `/etc/passwd`.
    pub clean: String,
    /// Follow a symlink in the last element (the request ended in `/` or
    /// `/.`); else the last element itself is what is meant.
    pub follow: bool,
    /// docker's `filepath.Base` of the path: the stat's `name` and the
    /// name the archive's entries get.
    pub name: String,
}

/// Go's `filepath.Clean` of an absolute path.
pub(crate) fn clean_abs(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

pub(crate) fn parse_target(path: &str) -> Result<Target, ApiError> {
    if path.is_empty() {
        return Err(ApiError::bad_request(
            "bad parameter: 'path' cannot be empty",
        ));
    }
    if path.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "invalid path {path:?}: it contains a NUL byte"
        )));
    }
    let clean = clean_abs(path);
    let dot = path == "." || path.ends_with("/.");
    let sep = path.ends_with('/');
    let name = if dot {
        ".".to_string()
    } else if clean == "/" {
        "/".to_string()
    } else {
        clean.rsplit('/').next().unwrap_or_default().to_string()
    };
    Ok(Target {
        follow: dot || sep,
        clean,
        name,
    })
}

/// `rel` for `*at` calls: the clean path without its leading `/` (`.` for
/// the root).
fn rel(clean: &str) -> &str {
    let r = clean.trim_start_matches('/');
    if r.is_empty() {
        "."
    } else {
        r
    }
}

/// `openat2` with `RESOLVE_IN_ROOT`, retried on `EAGAIN` (a rename raced
/// the lookup).
fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/thread-self/fd/{}", fd.as_raw_fd()))
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

fn mtime(st: &Stat) -> String {
    let t = std::time::UNIX_EPOCH
        + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
    berth_image::time::rfc3339(t)
}

/// One operation's view of a container's mounted root filesystem, on the
/// operation's own thread and mount namespace.
pub(crate) struct View<'a> {
    pub c: &'a Loaded,
    /// The rootfs directory.
    pub root: OwnedFd,
    /// Its path (in this thread's namespace).
    pub rootfs: PathBuf,
    /// A tmpfs private to this thread.
    scratch: PathBuf,
}

/// Where an operation's early answer goes; the rest of its work (a stream)
/// may go on after it is sent.
pub(crate) type Answer<T> = Option<tokio::sync::oneshot::Sender<Result<T, ApiError>>>;

impl View<'_> {
    fn not_found(&self, path: &str, name: &str) -> ApiError {
        ApiError::not_found(format!(
            "Could not find the file {path} in container {name}"
        ))
    }

    fn lookup_error(&self, e: Errno, path: &str, name: &str) -> ApiError {
        match e {
            Errno::NOENT | Errno::NOTDIR => self.not_found(path, name),
            Errno::LOOP => ApiError::bad_request(format!(
                "invalid path {path:?}: too many levels of symbolic links"
            )),
            Errno::NAMETOOLONG => ApiError::bad_request(format!("invalid path {path:?}: too long")),
            e => internal(format!(
                "looking up {path} in container {name}: {}",
                errno_io(e)
            )),
        }
    }

    /// The entry the target names: an `O_PATH` descriptor and its stat.
    fn lookup(&self, t: &Target, path: &str, name: &str) -> Result<(OwnedFd, Stat), ApiError> {
        let fd = if t.clean == "/" || t.follow {
            open_in_root(self.root.as_fd(), rel(&t.clean), OFlags::PATH)
        } else {
            let (dir, base) = t.clean.rsplit_once('/').unwrap_or(("", &t.clean));
            let dir = if dir.is_empty() { "/" } else { dir };
            open_in_root(
                self.root.as_fd(),
                rel(dir),
                OFlags::PATH | OFlags::DIRECTORY,
            )
            .and_then(|d| {
                openat(
                    &d,
                    base,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            })
        }
        .map_err(|e| self.lookup_error(e, path, name))?;
        let st = fstat(&fd).map_err(|e| internal(format!("stat {path}: {}", errno_io(e))))?;
        Ok((fd, st))
    }

    /// Where a symlink at `clean` leads, as an absolute container path
    /// (docker's `linkTarget`): resolved in the root when it resolves,
    /// else its target joined lexically.
    fn link_target(&self, clean: &str, fd: BorrowedFd<'_>) -> String {
        if let Ok(resolved) = open_in_root(self.root.as_fd(), rel(clean), OFlags::PATH) {
            if let Ok(host) = std::fs::read_link(proc_fd(resolved.as_fd())) {
                if let Ok(inside) = host.strip_prefix(&self.rootfs) {
                    return clean_abs(&format!("/{}", inside.display()));
                }
            }
        }
        let target = readlinkat(fd, "", Vec::new())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        if target.starts_with('/') {
            clean_abs(&target)
        } else {
            let dir = clean.rsplit_once('/').map_or("", |(d, _)| d);
            clean_abs(&format!("{dir}/{target}"))
        }
    }

    fn path_stat(&self, t: &Target, fd: BorrowedFd<'_>, st: &Stat) -> PathStat {
        let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            self.link_target(&t.clean, fd)
        } else {
            String::new()
        };
        PathStat {
            name: t.name.clone(),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: mtime(st),
            link_target,
        }
    }

    /// Writes the entry as a tar whose names start with the target's name:
    /// the entry is bind-mounted (by descriptor) under that name into the
    /// scratch tmpfs, and the scratch directory is written. `.` and `/`
    /// cannot be names: their contents are written unprefixed.
    fn write_entry(
        &self,
        t: &Target,
        fd: OwnedFd,
        st: &Stat,
        out: impl std::io::Write,
    ) -> Result<(), ApiError> {
        let tar_error = |e: berth_archive::Error| internal(format!("writing the archive: {e}"));
        if t.name == "." || t.name == "/" {
            // docker names a directory's contents `./x` (`dir/.`) or `/x`
            // (the root); no file can have those names, so the tree's
            // entries are prefixed on their way out.
            let dir = reopen_dir(fd.as_fd())?;
            let prefix: &[u8] = if t.name == "." { b"./" } else { b"/" };
            let mut w = PrefixNames::new(out, prefix);
            berth_archive::write_tree(&proc_fd(dir.as_fd()), &mut w).map_err(tar_error)?;
            w.finish()
                .map_err(|e| internal(format!("writing the archive: {e}")))?;
            return Ok(());
        }
        let scratch = rustix::fs::open(&self.scratch, DIR_FLAGS, Mode::empty())
            .map_err(|e| internal(format!("opening the scratch directory: {}", errno_io(e))))?;
        let name = t.name.as_str();
        let target = self.scratch.join(name);
        let io = |what: &str, e: Errno| {
            internal(format!("{what} {}: {}", target.display(), errno_io(e)))
        };
        let mut bound = false;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                // A bind mount cannot be a symlink: make its twin.
                let link =
                    readlinkat(&fd, "", Vec::new()).map_err(|e| io("reading the link", e))?;
                symlinkat(link.as_c_str(), &scratch, name).map_err(|e| io("creating", e))?;
                rustix::fs::chownat(
                    &scratch,
                    name,
                    Some(rustix::fs::Uid::from_raw(st.st_uid)),
                    Some(rustix::fs::Gid::from_raw(st.st_gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io("chown", e))?;
                let ts = rustix::fs::Timestamps {
                    last_access: rustix::fs::Timespec {
                        tv_sec: st.st_atime,
                        tv_nsec: st.st_atime_nsec as _,
                    },
                    last_modification: rustix::fs::Timespec {
                        tv_sec: st.st_mtime,
                        tv_nsec: st.st_mtime_nsec as _,
                    },
                };
                rustix::fs::utimensat(&scratch, name, &ts, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io("setting the times of", e))?;
            }
            FileType::Directory => {
                mkdirat(&scratch, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| io("creating", e))?;
                rustix::mount::mount_bind(proc_fd(fd.as_fd()), &target)
                    .map_err(|e| io("bind-mounting onto", e))?;
                bound = true;
            }
            _ => {
                drop(
                    openat(
                        &scratch,
                        name,
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(|e| io("creating", e))?,
                );
                rustix::mount::mount_bind(proc_fd(fd.as_fd()), &target)
                    .map_err(|e| io("bind-mounting onto", e))?;
                bound = true;
            }
        }
        drop(fd);
        let written = berth_archive::write_tree(&self.scratch, out).map_err(tar_error);
        if bound {
            if let Err(e) = rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH) {
                tracing::warn!(path = %target.display(), error = %errno_io(e), "unmounting a scratch bind mount");
            }
        }
        written.map(drop)
    }

    /// The directory a `PUT` extracts into: the path with every symlink
    /// followed (in the root), which must be a directory.
    fn extraction_dir(&self, t: &Target, path: &str, name: &str) -> Result<OwnedFd, ApiError> {
        let fd = open_in_root(self.root.as_fd(), rel(&t.clean), OFlags::PATH)
            .map_err(|e| self.lookup_error(e, path, name))?;
        let st = fstat(&fd).map_err(|e| internal(format!("stat {path}: {}", errno_io(e))))?;
        if !is_dir(&st) {
            return Err(ApiError::bad_request("extraction point is not a directory"));
        }
        reopen_dir(fd.as_fd())
    }

    /// A directory at `clean`, every symlink followed inside the root.
    fn open_dir_in_root(&self, clean: &str) -> Option<OwnedFd> {
        open_in_root(self.root.as_fd(), rel(clean), DIR_FLAGS).ok()
    }
}

/// The files the container sees bind-mounted on its /etc (`hosts`,
/// `hostname`, `resolv.conf`, kept in its directory) mounted the same way
/// in this thread's namespace, so a copy shows what the container sees
/// (docker mounts them for `cp` too). A target that is not a regular file
/// in the rootfs is left alone. Returns whether anything was mounted.
fn bind_etc_files(root: BorrowedFd<'_>, dir: &std::path::Path) -> bool {
    let mut any = false;
    for name in ["hosts", "hostname", "resolv.conf"] {
        let source = dir.join(name);
        if !source.is_file() {
            continue;
        }
        let Ok(target) = open_in_root(
            root,
            &format!("etc/{name}"),
            OFlags::PATH | OFlags::NOFOLLOW,
        ) else {
            continue;
        };
        if !fstat(&target)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        {
            continue;
        }
        match rustix::mount::mount_bind(&source, proc_fd(target.as_fd())) {
            Ok(()) => any = true,
            Err(e) => {
                tracing::debug!(file = name, error = %errno_io(e), "binding an /etc file for a file operation")
            }
        }
    }
    any
}

/// Reopens an `O_PATH` directory descriptor for reading.
fn reopen_dir(fd: BorrowedFd<'_>) -> Result<OwnedFd, ApiError> {
    openat(fd, ".", DIR_FLAGS, Mode::empty())
        .map_err(|e| internal(format!("opening a directory: {}", errno_io(e))))
}

/// Names in a directory, `.` and `..` left out, sorted bytewise.
fn list(dir: BorrowedFd<'_>) -> std::io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut d = rustix::fs::Dir::read_from(dir)?;
    while let Some(e) = d.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

fn cstr(name: &[u8]) -> std::ffi::CString {
    std::ffi::CString::new(name).expect("directory entries have no NUL")
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn join(parent: &str, name: &[u8]) -> String {
    if parent == "/" {
        format!("/{}", show(name))
    } else {
        format!("{parent}/{}", show(name))
    }
}

/// Removes `name` in `dir`, a directory with everything in it, without
/// following symlinks.
fn remove_all(dir: BorrowedFd<'_>, name: &CStr, depth: usize) -> std::io::Result<()> {
    let st = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if is_dir(&st) {
        if depth >= MAX_DEPTH {
            return Err(std::io::Error::other("directory tree too deep to remove"));
        }
        let sub = openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
        for child in list(sub.as_fd())? {
            remove_all(sub.as_fd(), &cstr(&child), depth + 1)?;
        }
        drop(sub);
        unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// Gives everything under `dir` to `uid:gid` (docker's `copyUIDGID`).
fn chown_tree(dir: BorrowedFd<'_>, uid: u32, gid: u32, depth: usize) -> std::io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(std::io::Error::other("directory tree too deep"));
    }
    for name in list(dir)? {
        let name = cstr(&name);
        rustix::fs::chownat(
            dir,
            name.as_c_str(),
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        let st = statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if is_dir(&st) {
            let sub = openat(
                dir,
                name.as_c_str(),
                DIR_FLAGS | OFlags::NOFOLLOW,
                Mode::empty(),
            )?;
            chown_tree(sub.as_fd(), uid, gid, depth + 1)?;
        }
    }
    Ok(())
}

/// Moving an extracted tree into place.
struct Merge<'v, 'a> {
    view: &'v View<'a>,
    no_overwrite: bool,
    /// The extraction point, for messages.
    dest: String,
}

impl Merge<'_, '_> {
    /// Moves everything in `src` into `dst` (`at` is `dst`'s container
    /// path). With `dry`, only checks that nothing would replace a
    /// directory with a non-directory or the reverse when that is refused.
    fn merge(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        at: &str,
        dry: bool,
        depth: usize,
    ) -> Result<(), ApiError> {
        if depth >= MAX_DEPTH {
            return Err(ApiError::bad_request(format!(
                "the archive's directory tree under {at} is too deep"
            )));
        }
        let io = |what: &str, path: &str, e: std::io::Error| {
            let kind = if e.raw_os_error() == Some(libc::EROFS) {
                ErrorKind::PermissionDenied
            } else {
                ErrorKind::Internal
            };
            ApiError::new(kind, format!("{what} {path}: {e}"))
        };
        for name in list(src).map_err(|e| io("listing the extracted files under", at, e))? {
            let child = join(at, &name);
            let name = cstr(&name);
            let s = statat(src, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io("stat", &child, e.into()))?;
            let d = match statat(dst, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(d) => Some(d),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(io("stat", &child, e.into())),
            };
            let src_dir = is_dir(&s);
            let open_sub = |fd: BorrowedFd<'_>| {
                openat(
                    fd,
                    name.as_c_str(),
                    DIR_FLAGS | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(|e| io("opening", &child, e.into()))
            };
            let place = |replace: bool| -> Result<(), ApiError> {
                if dry {
                    return Ok(());
                }
                if replace {
                    remove_all(dst, name.as_c_str(), 0).map_err(|e| io("removing", &child, e))?;
                }
                renameat(src, name.as_c_str(), dst, name.as_c_str())
                    .map_err(|e| io("moving the extracted file to", &child, e.into()))
            };
            match d {
                None => place(false)?,
                Some(d) if is_dir(&d) && src_dir => {
                    let (s_fd, d_fd) = (open_sub(src)?, open_sub(dst)?);
                    self.merge(s_fd.as_fd(), d_fd.as_fd(), &child, dry, depth + 1)?;
                }
                Some(d) if src_dir && FileType::from_raw_mode(d.st_mode) == FileType::Symlink => {
                    // A directory reached through a symlink in the container
                    // (followed inside the root) is merged into.
                    match self.view.open_dir_in_root(&child) {
                        Some(d_fd) => {
                            let s_fd = open_sub(src)?;
                            self.merge(s_fd.as_fd(), d_fd.as_fd(), &child, dry, depth + 1)?;
                        }
                        None if self.no_overwrite => {
                            return Err(ApiError::bad_request(format!(
                                "cannot overwrite non-directory {child:?} with directory {:?}",
                                self.dest
                            )))
                        }
                        None => place(true)?,
                    }
                }
                Some(d) if is_dir(&d) => {
                    if self.no_overwrite {
                        return Err(ApiError::bad_request(format!(
                            "cannot overwrite directory {child:?} with non-directory {:?}",
                            self.dest
                        )));
                    }
                    place(true)?;
                }
                Some(_) if src_dir => {
                    if self.no_overwrite {
                        return Err(ApiError::bad_request(format!(
                            "cannot overwrite non-directory {child:?} with directory {:?}",
                            self.dest
                        )));
                    }
                    place(true)?;
                }
                // A non-directory over a non-directory: rename replaces it.
                Some(_) => place(false)?,
            }
        }
        Ok(())
    }
}

/// A reader that refuses more than `limit` bytes.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more means the body is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the archive is larger than the {}-byte limit", self.limit),
                )),
            };
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A tar that cannot be extracted: the client's fault (400) unless the
/// file system failed.
fn extract_error(e: berth_archive::Error) -> ApiError {
    let kind = match e.kind() {
        // A parent that is missing or a dangling symlink is the archive's
        // doing too.
        ErrorKind::InvalidArgument
        | ErrorKind::DataLoss
        | ErrorKind::NotImplemented
        | ErrorKind::NotFound => ErrorKind::InvalidArgument,
        k => k,
    };
    ApiError::new(kind, format!("Error processing tar file: {e}"))
}

impl Engine {
    /// Runs `job` on a thread of its own with the container's root
    /// filesystem mounted (see the module docs) and returns its answer.
    /// `job` gets the view (or why there is none) and the answer channel;
    /// its result is the answer unless it answered early (and went on, as
    /// an archive's stream does).
    pub(crate) async fn in_rootfs<T, F>(
        self: &Arc<Self>,
        name: String,
        job: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Result<&View<'_>, ApiError>, &mut Answer<T>) -> Result<T, ApiError>
            + Send
            + 'static,
    {
        self.in_rootfs_as(name, true, job).await
    }

    /// [`Self::in_rootfs`]; `with_mounts`: the container's volumes and
    /// binds are mounted in the view (`cp`), or not (`export`, as docker's
    /// leaves them out).
    pub(crate) async fn in_rootfs_as<T, F>(
        self: &Arc<Self>,
        name: String,
        with_mounts: bool,
        job: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Result<&View<'_>, ApiError>, &mut Answer<T>) -> Result<T, ApiError>
            + Send
            + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let engine = self.clone();
        let spawned = std::thread::Builder::new()
            .name("container-files".into())
            .spawn(move || {
                let mut answer = Some(tx);
                let result =
                    engine.run_in_rootfs(&name, with_mounts, |view| job(view, &mut answer));
                match answer.take() {
                    Some(tx) => {
                        let _ = tx.send(result);
                    }
                    None => {
                        if let Err(e) = result {
                            tracing::warn!(container = %name, error = %e.message, "a container file operation failed after answering");
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            return Err(internal(format!(
                "cannot start a thread for the container's files: {e}"
            )));
        }
        rx.await.unwrap_or_else(|_| {
            Err(internal(
                "the container file thread ended without an answer",
            ))
        })
    }

    fn run_in_rootfs<T>(
        &self,
        name: &str,
        with_mounts: bool,
        job: impl FnOnce(Result<&View<'_>, ApiError>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let c = match self.load_container(name) {
            Ok(c) => c,
            Err(e) => return job(Err(e)),
        };
        let handle = self.container_handle(&c);
        let paths = self.container_paths(&c.id);
        let private = crate::volumes::view::private_mounts().map_err(internal);
        if let Err(e) = private {
            return job(Err(e));
        }
        let mut guard = None;
        let mut mounted_here = false;
        let mut c = c;
        if !rootfs::is_mounted(&paths.rootfs()) {
            // Stopped: hold its lifecycle lock so that it cannot start
            // while its overlay is mounted here.
            guard = Some(handle.lock());
            let mounted = self.load_container(&c.id).and_then(|now| {
                if now.state.status.is_live() {
                    return Err(ApiError::new(
                        ErrorKind::Conflict,
                        format!(
                            "container {} started during the operation; try again",
                            now.id
                        ),
                    ));
                }
                let image = self.store.image(&now.image_id)?;
                let chain: Vec<_> = image.layers.iter().map(|l| l.chain_id.clone()).collect();
                rootfs::mount(&self.layers, &chain, &paths.dir)?;
                Ok(now)
            });
            match mounted {
                Ok(now) => {
                    c = now;
                    mounted_here = true;
                }
                Err(e) => return job(Err(e)),
            }
        }
        let rootfs_path = paths.rootfs();
        let scratch = self.config().exec_root.join("files");
        let view = rustix::fs::open(&rootfs_path, DIR_FLAGS, Mode::empty())
            .map_err(|e| {
                internal(format!(
                    "opening {}: {}",
                    rootfs_path.display(),
                    errno_io(e)
                ))
            })
            .and_then(|root| {
                std::fs::create_dir_all(&scratch)
                    .map_err(|e| internal(format!("creating {}: {e}", scratch.display())))?;
                rustix::mount::mount(
                    "tmpfs",
                    &scratch,
                    "tmpfs",
                    rustix::mount::MountFlags::NOSUID
                        | rustix::mount::MountFlags::NODEV
                        | rustix::mount::MountFlags::NOEXEC,
                    c"mode=0700,size=1m",
                )
                .map_err(|e| {
                    internal(format!(
                        "mounting a tmpfs on {}: {}",
                        scratch.display(),
                        errno_io(e)
                    ))
                })?;
                Ok(View {
                    c: &c,
                    root,
                    rootfs: rootfs_path.clone(),
                    scratch: scratch.clone(),
                })
            });
        let scratch_mounted = view.is_ok();
        let etc_bound = match &view {
            Ok(v) => bind_etc_files(v.root.as_fd(), &paths.dir),
            Err(_) => false,
        };
        let volumes = match &view {
            Ok(v) if with_mounts => {
                crate::volumes::view::mount(v.root.as_fd(), &rootfs_path, &self.view_mounts(&c))
            }
            _ => Vec::new(),
        };
        let result = match &view {
            Ok(v) => job(Ok(v)),
            Err(e) => job(Err(e.clone())),
        };
        crate::volumes::view::unmount(&volumes);
        drop(view);
        if scratch_mounted {
            let _ = rustix::mount::unmount(&scratch, rustix::mount::UnmountFlags::DETACH);
        }
        if etc_bound {
            // Only this thread's copy of the rootfs mount (with the /etc
            // files on it) goes; a running container's own is untouched.
            let _ = rustix::mount::unmount(&rootfs_path, rustix::mount::UnmountFlags::DETACH);
        }
        if mounted_here {
            if let Err(e) = rootfs::unmount(&paths.dir) {
                tracing::warn!(container = %c.id, error = %e, "unmounting the rootfs after a file operation");
            }
        }
        drop(guard);
        result
    }

    /// `HEAD /containers/{id}/archive`: the path's stat.
    pub async fn container_path_stat(
        self: &Arc<Self>,
        name: String,
        path: String,
    ) -> Result<PathStat, ApiError> {
        let target = parse_target(&path)?;
        let n = name.clone();
        self.in_rootfs(name, move |view, _| {
            let v = view?;
            let (fd, st) = v.lookup(&target, &path, &n)?;
            Ok(v.path_stat(&target, fd.as_fd(), &st))
        })
        .await
    }

    /// `GET /containers/{id}/archive`: answers with the stat once the path
    /// is found; the tar then streams into `out`.
    pub async fn container_archive(
        self: &Arc<Self>,
        name: String,
        path: String,
        out: ChannelWriter,
    ) -> Result<PathStat, ApiError> {
        let target = parse_target(&path)?;
        let engine = self.clone();
        let n = name.clone();
        self.in_rootfs(name, move |view, answer| {
            let v = view?;
            let (fd, st) = v.lookup(&target, &path, &n)?;
            let stat = v.path_stat(&target, fd.as_fd(), &st);
            if let Some(tx) = answer.take() {
                if tx.send(Ok(stat.clone())).is_err() {
                    return Ok(stat);
                }
            }
            engine.container_event(v.c, "archive-path", &[]);
            let failer = out.failer();
            let mut out = out;
            let written = v.write_entry(&target, fd, &st, &mut out).and_then(|()| {
                std::io::Write::flush(&mut out)
                    .map_err(|e| internal(format!("sending the archive: {e}")))
            });
            if let Err(e) = written {
                failer.fail(e.message.clone());
                return Err(e);
            }
            Ok(stat)
        })
        .await
    }

    /// `path` of container `name` as docker cp's tar (the path's last
    /// element the top entry), written into `out`: the build's
    /// `COPY --from`, which reads another stage's files this way.
    pub(crate) async fn copy_from_container(
        self: &Arc<Self>,
        name: String,
        path: String,
        mut out: impl std::io::Write + Send + 'static,
    ) -> Result<(), ApiError> {
        let target = parse_target(&path)?;
        let n = name.clone();
        self.in_rootfs(name, move |view, _| {
            let v = view?;
            let (fd, st) = v.lookup(&target, &path, &n)?;
            v.write_entry(&target, fd, &st, &mut out)
        })
        .await
    }

    /// `GET /containers/{id}/export`: the whole root filesystem as a tar,
    /// streamed into `out` once it is mounted.
    pub async fn export_container(
        self: &Arc<Self>,
        name: String,
        out: ChannelWriter,
    ) -> Result<(), ApiError> {
        let engine = self.clone();
        self.in_rootfs_as(name, false, move |view, answer| {
            let v = view?;
            if let Some(tx) = answer.take() {
                if tx.send(Ok(())).is_err() {
                    return Ok(());
                }
            }
            engine.container_event(v.c, "export", &[]);
            let failer = out.failer();
            let mut out = out;
            let written = berth_archive::write_tree(&proc_fd(v.root.as_fd()), &mut out)
                .map_err(|e| internal(format!("writing the archive: {e}")))
                .and_then(|_| {
                    std::io::Write::flush(&mut out)
                        .map_err(|e| internal(format!("sending the archive: {e}")))
                });
            if let Err(e) = written {
                failer.fail(e.message.clone());
                return Err(e);
            }
            Ok(())
        })
        .await
    }

    /// `PUT /containers/{id}/archive`: extracts the tar read from `input`
    /// (gzip and zstd are detected) into the directory at `path`. The
    /// body is read to its end whatever happens, so the client gets the
    /// answer.
    pub async fn extract_to_container(
        self: &Arc<Self>,
        name: String,
        path: String,
        opts: ExtractOptions,
        input: impl Read + Send + 'static,
    ) -> Result<(), ApiError> {
        let engine = self.clone();
        let n = name.clone();
        self.in_rootfs(name, move |view, _| {
            let mut input = Limited {
                inner: input,
                left: MAX_PUT_BODY,
                limit: MAX_PUT_BODY,
            };
            let r = view.and_then(|v| engine.extract(v, &path, &n, opts, &mut input));
            drain_rest(&mut input);
            r
        })
        .await
    }

    fn extract(
        &self,
        v: &View<'_>,
        path: &str,
        name: &str,
        opts: ExtractOptions,
        input: &mut impl Read,
    ) -> Result<(), ApiError> {
        let target = parse_target(path)?;
        let dest = v.extraction_dir(&target, path, name)?;
        let create = &v.c.config.create;
        let readonly = create
            .host_config
            .as_ref()
            .and_then(|h| h.readonly_rootfs)
            .unwrap_or(false);
        // A writable volume or bind of a read-only container takes files:
        // where the path leads (symlinks followed in the root) decides.
        if readonly && crate::volumes::view::on_root_mount(v.root.as_fd(), dest.as_fd()) {
            return Err(ApiError::new(
                ErrorKind::PermissionDenied,
                "container rootfs is marked read-only",
            ));
        }
        let owner = if opts.copy_uid_gid {
            self.container_user_ids(v)?
        } else {
            None
        };
        let stage_name = format!(".berth-cp-{}", &super::names::new_id()[..16]);
        let stage_c = cstr(stage_name.as_bytes());
        mkdirat(&dest, stage_c.as_c_str(), Mode::from_raw_mode(0o700)).map_err(|e| {
            let kind = if e == Errno::ROFS {
                ErrorKind::PermissionDenied
            } else {
                ErrorKind::Internal
            };
            ApiError::new(
                kind,
                format!(
                    "creating a staging directory in {}: {}",
                    target.clean,
                    errno_io(e)
                ),
            )
        })?;
        let result = (|| {
            let stage = openat(
                &dest,
                stage_c.as_c_str(),
                DIR_FLAGS | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|e| internal(format!("opening the staging directory: {}", errno_io(e))))?;
            let (_, reader) = berth_archive::auto_decompressor(&mut *input)
                .map_err(|e| ApiError::bad_request(format!("Error processing tar file: {e}")))?;
            let apply = berth_archive::ApplyOptions {
                max_entry_size: MAX_PUT_DATA,
                max_total_size: MAX_PUT_DATA,
                max_entries: MAX_PUT_ENTRIES,
                ..berth_archive::ApplyOptions::default()
            };
            berth_archive::apply_layer(reader, &proc_fd(stage.as_fd()), &apply)
                .map_err(extract_error)?;
            if let Some((uid, gid)) = owner {
                chown_tree(stage.as_fd(), uid, gid, 0).map_err(|e| {
                    internal(format!("changing the owner of the extracted files: {e}"))
                })?;
            }
            let merge = Merge {
                view: v,
                no_overwrite: opts.no_overwrite_dir_non_dir,
                dest: target.clean.clone(),
            };
            merge.merge(stage.as_fd(), dest.as_fd(), &target.clean, true, 0)?;
            merge.merge(stage.as_fd(), dest.as_fd(), &target.clean, false, 0)
        })();
        if let Err(e) = remove_all(dest.as_fd(), stage_c.as_c_str(), 0) {
            tracing::warn!(container = %v.c.id, error = %e, "removing the staging directory");
        }
        result?;
        self.container_event(v.c, "extract-to-dir", &[]);
        Ok(())
    }

    /// docker's `copyUIDGID`: the container's Config.User as ids from its
    /// own /etc/passwd and /etc/group; `None` when it has no User (the
    /// archive's owners are kept).
    fn container_user_ids(&self, v: &View<'_>) -> Result<Option<(u32, u32)>, ApiError> {
        let image = self.store.image(&v.c.image_id)?;
        let image_config = crate::images::parse_image_config(&image)?;
        let user =
            v.c.config
                .create
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or(image_config.config.and_then(|r| r.user))
                .filter(|u| !u.is_empty());
        let Some(user) = user else { return Ok(None) };
        let exec = berth_api::models::ExecConfig {
            cmd: Some(vec!["true".into()]),
            user: Some(user),
            ..Default::default()
        };
        let p =
            crate::spec::exec_process(&exec, &oci_spec::runtime::Process::default(), &v.rootfs)?;
        Ok(Some((p.user().uid(), p.user().gid())))
    }
}

/// Prefixes the entry names (and hard link targets) of the ustar/PAX
/// stream berth-archive writes, for the two names no file can have (see
/// [`View::write_entry`]). Every entry gets a PAX `path` record (and
/// `linkpath` for a hard link), so no name has to fit the ustar fields;
/// the ustar name field gets the new name when it fits. Entry data passes
/// through untouched. Belongs in berth-archive (`WriteOptions`) one day.
struct PrefixNames<W: std::io::Write> {
    out: W,
    prefix: Vec<u8>,
    buf: Vec<u8>,
    /// PAX records waiting for the header they apply to.
    pax: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Bytes of entry data (with padding) still to pass through.
    data_left: u64,
    /// After the end-of-archive blocks everything passes through.
    ended: bool,
}

const BLOCK: usize = 512;
/// Largest PAX record block accepted from the writer.
const MAX_PAX: u64 = 16 << 20;

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// A numeric header field: octal, or base-256 when its first byte has the
/// high bit set.
fn tar_number(field: &[u8]) -> std::io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(*b)))
                .ok_or_else(|| std::io::Error::other("a tar number overflows"))?;
        }
        return Ok(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| *b != 0 && *b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    // Digits only: from_str_radix would also take a sign.
    if !text.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(std::io::Error::other(format!(
            "a tar number is not octal: {:?}",
            String::from_utf8_lossy(&text)
        )));
    }
    u64::from_str_radix(&String::from_utf8_lossy(&text), 8)
        .map_err(|e| std::io::Error::other(format!("a tar number is not octal: {e}")))
}

fn cstr_field(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

fn pax_records(data: &[u8]) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = || std::io::Error::other("a malformed PAX record");
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && rest[0] != 0 {
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|l| *l > space + 1 && *l <= rest.len())
            .ok_or_else(bad)?;
        let record = &rest[space + 1..len - 1];
        let eq = record.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

fn pax_encode(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let base = k.len() + v.len() + 3;
        let mut len = base + 1;
        while base + len.to_string().len() != len {
            len = base + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

fn set_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
}

impl<W: std::io::Write> PrefixNames<W> {
    fn new(out: W, prefix: &[u8]) -> Self {
        PrefixNames {
            out,
            prefix: prefix.to_vec(),
            buf: Vec::new(),
            pax: None,
            data_left: 0,
            ended: false,
        }
    }

    fn process(&mut self) -> std::io::Result<()> {
        loop {
            if self.ended {
                self.out.write_all(&self.buf)?;
                self.buf.clear();
                return Ok(());
            }
            if self.data_left > 0 {
                let n = (self.data_left.min(self.buf.len() as u64)) as usize;
                if n == 0 {
                    return Ok(());
                }
                self.out.write_all(&self.buf[..n])?;
                self.buf.drain(..n);
                self.data_left -= n as u64;
                continue;
            }
            if self.buf.len() < BLOCK {
                return Ok(());
            }
            let h: Vec<u8> = self.buf[..BLOCK].to_vec();
            if h.iter().all(|b| *b == 0) {
                self.ended = true;
                continue;
            }
            let kind = h[156];
            let size = tar_number(&h[124..136])?;
            if kind == b'x' {
                if size > MAX_PAX {
                    return Err(std::io::Error::other("a PAX record block is too large"));
                }
                let total = BLOCK + padded(size) as usize;
                if self.buf.len() < total {
                    return Ok(());
                }
                let records = pax_records(&self.buf[BLOCK..BLOCK + size as usize])?;
                self.pax.get_or_insert_with(Vec::new).extend(records);
                self.buf.drain(..total);
                continue;
            }
            let mut records = self.pax.take().unwrap_or_default();
            let take = |records: &mut Vec<(Vec<u8>, Vec<u8>)>, key: &[u8]| {
                let i = records.iter().rposition(|(k, _)| k == key)?;
                Some(records.remove(i).1)
            };
            let path = take(&mut records, b"path").unwrap_or_else(|| {
                let name = cstr_field(&h[0..100]);
                let pre = cstr_field(&h[345..500]);
                if pre.is_empty() {
                    name.to_vec()
                } else {
                    [pre, b"/", name].concat()
                }
            });
            let link = take(&mut records, b"linkpath")
                .unwrap_or_else(|| cstr_field(&h[157..257]).to_vec());
            let data_size = records
                .iter()
                .rfind(|(k, _)| k == b"size")
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                .unwrap_or(size);
            let new_path = [&self.prefix[..], &path].concat();
            records.push((b"path".to_vec(), new_path.clone()));
            let hardlink = kind == b'1';
            let new_link = if hardlink {
                [&self.prefix[..], &link].concat()
            } else {
                link
            };
            if new_link.len() > 100 || hardlink {
                records.push((b"linkpath".to_vec(), new_link.clone()));
            }
            let data = pax_encode(&records);
            let mut ph = [0u8; BLOCK];
            let pax_name = b"././@PaxHeader";
            ph[..pax_name.len()].copy_from_slice(pax_name);
            ph[100..108].copy_from_slice(b"0000644\0");
            ph[108..116].copy_from_slice(b"0000000\0");
            ph[116..124].copy_from_slice(b"0000000\0");
            ph[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            ph[136..148].copy_from_slice(b"00000000000\0");
            ph[156] = b'x';
            ph[257..265].copy_from_slice(b"ustar\x0000");
            set_checksum(&mut ph);
            self.out.write_all(&ph)?;
            self.out.write_all(&data)?;
            let pad = padded(data.len() as u64) as usize - data.len();
            self.out.write_all(&vec![0u8; pad])?;
            let mut nh = h;
            nh[0..100].fill(0);
            nh[345..500].fill(0);
            let cut = new_path.len().min(100);
            nh[..cut].copy_from_slice(&new_path[..cut]);
            nh[157..257].fill(0);
            let cut = new_link.len().min(100);
            nh[157..157 + cut].copy_from_slice(&new_link[..cut]);
            set_checksum(&mut nh);
            self.out.write_all(&nh)?;
            self.buf.drain(..BLOCK);
            // Header-only types carry no data, whatever their size says.
            self.data_left = match kind {
                b'0' | 0 | b'7' => padded(data_size),
                _ => 0,
            };
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.process()?;
        if !self.buf.is_empty() || self.data_left > 0 {
            return Err(std::io::Error::other("the archive ended inside an entry"));
        }
        self.out.flush()
    }
}

impl<W: std::io::Write> std::io::Write for PrefixNames<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.process()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// One entry of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    #[serde(rename = "Kind")]
    pub kind: u8,
}

const MODIFIED: u8 = 0;
const ADDED: u8 = 1;
const DELETED: u8 = 2;

/// Paths docker keeps in a container's init layer (mount points and the
/// files it bind-mounts): never a change of the container's own.
pub(super) const INIT_PATHS: &[&str] = &[
    "/.dockerenv",
    "/dev/console",
    "/dev/mqueue",
    "/dev/pts",
    "/dev/shm",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];
/// Their parents, which the init layer has even when the image does not
/// (and whose times the runtime's mount points change).
pub(super) const INIT_DIRS: &[&str] = &["/dev", "/etc"];

/// An overlay whiteout: a character device 0/0.
fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

pub(super) fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8];
    for key in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if let Ok(n) = rustix::fs::fgetxattr(dir, key, &mut buf) {
            if n == 1 && buf[0] == b'y' {
                return true;
            }
        }
    }
    false
}

/// The image's layers, top first, as overlay sees them below the upper
/// directory.
struct Lower {
    layers: Vec<OwnedFd>,
}

impl Lower {
    /// The directories that make up `comps` (a directory path) in each
    /// layer that contributes to it, top first; empty when it is not a
    /// directory below.
    fn dirs(&self, comps: &[&[u8]]) -> Vec<OwnedFd> {
        let mut current: Vec<OwnedFd> = self
            .layers
            .iter()
            .filter_map(|l| l.try_clone().ok())
            .collect();
        for comp in comps {
            let name = cstr(comp);
            let mut next = Vec::new();
            let mut top_is_dir = None;
            for dir in &current {
                let st = match statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(_) => continue,
                };
                if is_whiteout(&st) || !is_dir(&st) {
                    // Hides this name in every layer below.
                    if top_is_dir.is_none() {
                        top_is_dir = Some(false);
                    }
                    break;
                }
                top_is_dir.get_or_insert(true);
                let Ok(sub) = openat(
                    dir,
                    name.as_c_str(),
                    DIR_FLAGS | OFlags::NOFOLLOW,
                    Mode::empty(),
                ) else {
                    break;
                };
                let opaque = is_opaque(sub.as_fd());
                next.push(sub);
                if opaque {
                    break;
                }
            }
            if top_is_dir != Some(true) {
                return Vec::new();
            }
            current = next;
        }
        current
    }

    /// The stat of `comps` as the layers show it, if they have it.
    fn lookup(&self, comps: &[&[u8]]) -> Option<Stat> {
        let (last, parent) = comps.split_last()?;
        let name = cstr(last);
        for dir in self.dirs(parent) {
            match statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if is_whiteout(&st) => return None,
                Ok(st) => return Some(st),
                Err(_) => continue,
            }
        }
        None
    }

    /// The names the layers show in the directory `comps`.
    fn children(&self, comps: &[&[u8]]) -> BTreeSet<Vec<u8>> {
        let mut decided: HashSet<Vec<u8>> = HashSet::new();
        let mut present = BTreeSet::new();
        for dir in self.dirs(comps) {
            for name in list(dir.as_fd()).unwrap_or_default() {
                if !decided.insert(name.clone()) {
                    continue;
                }
                let c = cstr(&name);
                if let Ok(st) = statat(&dir, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    if !is_whiteout(&st) {
                        present.insert(name);
                    }
                }
            }
        }
        present
    }
}

/// Walks an upper directory and collects docker's changes.
struct Diff<'l> {
    lower: &'l Lower,
    changes: Vec<Change>,
    changed_dirs: HashSet<String>,
}

impl Diff<'_> {
    fn record(&mut self, path: String, kind: u8, dir: bool) {
        if dir {
            self.changed_dirs.insert(path.clone());
        }
        if kind != MODIFIED {
            let parent = match path.rsplit_once('/') {
                Some(("", _)) | None => "/".to_string(),
                Some((p, _)) => p.to_string(),
            };
            if parent != "/" && !self.changed_dirs.contains(&parent) {
                self.changed_dirs.insert(parent.clone());
                self.changes.push(Change {
                    path: parent,
                    kind: MODIFIED,
                });
            }
        }
        self.changes.push(Change { path, kind });
    }

    /// `dir` is the upper directory at `comps`; `hidden`: an opaque
    /// directory above hides the layers.
    fn walk(
        &mut self,
        dir: BorrowedFd<'_>,
        comps: &mut Vec<Vec<u8>>,
        hidden: bool,
        depth: usize,
    ) -> Result<(), ApiError> {
        if depth >= MAX_DEPTH {
            return Err(internal(
                "the container's upper directory is too deep to diff",
            ));
        }
        let io = |e: std::io::Error| internal(format!("reading the container's changes: {e}"));
        for name in list(dir).map_err(io)? {
            comps.push(name.clone());
            let path = format!(
                "/{}",
                comps.iter().map(|c| show(c)).collect::<Vec<_>>().join("/")
            );
            let c = cstr(&name);
            let st =
                statat(dir, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io(e.into()))?;
            let r = self.entry(dir, &c, &st, path, comps, hidden, depth);
            comps.pop();
            r?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        st: &Stat,
        path: String,
        comps: &mut Vec<Vec<u8>>,
        hidden: bool,
        depth: usize,
    ) -> Result<(), ApiError> {
        if INIT_PATHS.contains(&path.as_str()) {
            return Ok(());
        }
        let refs: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
        if is_whiteout(st) {
            if !hidden && self.lower.lookup(&refs).is_some() {
                self.record(path, DELETED, false);
            }
            return Ok(());
        }
        let below = if hidden {
            None
        } else {
            self.lower.lookup(&refs)
        };
        if !is_dir(st) {
            let kind = if below.is_some() { MODIFIED } else { ADDED };
            self.record(path, kind, false);
            return Ok(());
        }
        let sub = openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| internal(format!("reading the container's changes: {}", errno_io(e))))?;
        let opaque = is_opaque(sub.as_fd());
        match &below {
            // The runtime creates its mount points in these (changing their
            // times): they count as changed only through their children.
            _ if INIT_DIRS.contains(&path.as_str()) => {}
            Some(b) if is_dir(b) => {
                let same = b.st_mode == st.st_mode
                    && b.st_size == st.st_size
                    && b.st_mtime == st.st_mtime
                    && b.st_mtime_nsec == st.st_mtime_nsec;
                if !same || opaque {
                    self.record(path.clone(), MODIFIED, true);
                }
            }
            Some(_) => self.record(path.clone(), MODIFIED, true),
            None => self.record(path.clone(), ADDED, true),
        }
        if opaque && below.as_ref().is_some_and(is_dir) {
            // Everything the layers had here is gone, unless the upper
            // directory has a name again (then it is walked below).
            let upper: HashSet<Vec<u8>> =
                list(sub.as_fd()).unwrap_or_default().into_iter().collect();
            for gone in self.lower.children(&refs) {
                if !upper.contains(&gone) {
                    self.record(join(&path, &gone), DELETED, false);
                }
            }
        }
        self.walk(sub.as_fd(), comps, hidden || opaque, depth + 1)
    }
}

impl Engine {
    /// `GET /containers/{id}/changes`: docker's diff of the container's
    /// writable layer against its image.
    pub fn container_changes(&self, name: &str) -> Result<Vec<Change>, ApiError> {
        let c = self.load_container(name)?;
        let image = self.store.image(&c.image_id)?;
        let upper = self.container_paths(&c.id).dir.join("upper");
        let Ok(upper_fd) = rustix::fs::open(&upper, DIR_FLAGS, Mode::empty()) else {
            return Ok(Vec::new());
        };
        let mut layers = Vec::new();
        for l in image.layers.iter().rev() {
            let p = self.layers.diff_path(&l.chain_id);
            let fd = rustix::fs::open(&p, DIR_FLAGS, Mode::empty())
                .map_err(|e| internal(format!("opening layer {}: {}", p.display(), errno_io(e))))?;
            layers.push(fd);
        }
        let lower = Lower { layers };
        let mut diff = Diff {
            lower: &lower,
            changes: Vec::new(),
            changed_dirs: HashSet::new(),
        };
        diff.walk(upper_fd.as_fd(), &mut Vec::new(), false, 0)?;
        Ok(diff.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_numbers_are_octal_digits_or_base_256() {
        assert_eq!(tar_number(b"0000644\0").unwrap(), 0o644);
        assert_eq!(tar_number(b"  17 \0").unwrap(), 0o17);
        assert_eq!(tar_number(b"\0\0\0").unwrap(), 0);
        assert_eq!(tar_number(&[0x80, 0, 1, 0]).unwrap(), 256);
        for bad in [&b"+17\0"[..], b"-1\0", b"8\0", b"0x10"] {
            assert!(
                tar_number(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn targets_like_docker() {
        let t = parse_target("/etc/passwd").unwrap();
        assert_eq!(
            (t.clean.as_str(), t.follow, t.name.as_str()),
            ("/etc/passwd", false, "passwd")
        );
        let t = parse_target("etc/").unwrap();
        assert_eq!(
            (t.clean.as_str(), t.follow, t.name.as_str()),
            ("/etc", true, "etc")
        );
        let t = parse_target("/etc/.").unwrap();
        assert_eq!(
            (t.clean.as_str(), t.follow, t.name.as_str()),
            ("/etc", true, ".")
        );
        let t = parse_target("/").unwrap();
        assert_eq!((t.clean.as_str(), t.name.as_str()), ("/", "/"));
        let t = parse_target("/../../x/../etc//hosts").unwrap();
        assert_eq!(t.clean, "/etc/hosts");
        assert_eq!(parse_target("").unwrap_err().status, 400);
        assert_eq!(parse_target("a\0b").unwrap_err().status, 400);
        assert_eq!(rel("/"), ".");
        assert_eq!(rel("/etc"), "etc");
    }

    #[test]
    fn go_file_modes() {
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o040755), GO_MODE_DIR | 0o755);
        assert_eq!(go_file_mode(0o120777), GO_MODE_SYMLINK | 0o777);
        assert_eq!(go_file_mode(0o041777), GO_MODE_DIR | GO_MODE_STICKY | 0o777);
        assert_eq!(go_file_mode(0o104755), GO_MODE_SETUID | 0o755);
        assert_eq!(
            go_file_mode(0o020666),
            GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o666
        );
    }

    #[test]
    fn stat_header_is_base64_json() {
        let s = PathStat {
            name: "passwd".into(),
            size: 10,
            mode: 0o644,
            mtime: "2024-01-01T00:00:00.000000000Z".into(),
            link_target: String::new(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.header_value())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "passwd");
        assert_eq!(v["mode"], 0o644);
        assert_eq!(v["linkTarget"], "");
        assert!(!s.is_dir());
    }

    #[test]
    fn limited_reader_refuses_more() {
        let mut r = Limited {
            inner: &b"abcdef"[..],
            left: 4,
            limit: 4,
        };
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        let mut r = Limited {
            inner: &b"abcd"[..],
            left: 4,
            limit: 4,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn prefixed_names_read_back_with_gnu_tar() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let long = "d".repeat(60);
        std::fs::create_dir_all(src.join(&long).join(&long)).unwrap();
        std::fs::write(src.join("a.txt"), "alpha").unwrap();
        std::fs::write(
            src.join(&long).join(&long).join("deep.txt"),
            vec![7u8; 3000],
        )
        .unwrap();
        std::fs::hard_link(src.join("a.txt"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let tar = t.path().join("out.tar");
        let f = std::fs::File::create(&tar).unwrap();
        let mut w = PrefixNames::new(f, b"./");
        berth_archive::write_tree(&src, &mut w).unwrap();
        w.finish().unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&tar)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let names = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(names.lines().all(|l| l.starts_with("./")), "{names}");
        assert!(
            names.contains(&format!("./{long}/{long}/deep.txt")),
            "{names}"
        );
        let dest = t.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(dest.join("hard")).unwrap(), b"alpha");
        assert_eq!(
            std::fs::read(dest.join(&long).join(&long).join("deep.txt")).unwrap(),
            vec![7u8; 3000]
        );
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        assert_eq!(
            pax_encode(&[(b"path".to_vec(), b"x".to_vec())]),
            b"9 path=x\n"
        );
        let long_value = vec![b'v'; 95];
        let rec = pax_encode(&[(b"path".to_vec(), long_value)]);
        assert_eq!(rec.len(), 105);
        assert!(rec.starts_with(b"105 path="));
        assert_eq!(pax_records(&rec).unwrap()[0].1.len(), 95);
    }

    /// Diffs of hand-made layer and upper directories (plain dirs: the
    /// overlay xattrs need root, so opaque directories are covered by the
    /// integration test).
    #[test]
    fn diff_against_layers() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        let top = t.path().join("top");
        let upper = t.path().join("upper");
        for d in [&base, &top, &upper] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(base.join("etc/passwd"), "root").unwrap();
        std::fs::write(base.join("etc/old"), "x").unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(top.join("etc/group"), "g").unwrap();
        std::fs::create_dir_all(base.join("usr/bin")).unwrap();
        // upper: /etc (copied up), a modified passwd, a new file, and a
        // directory that is new.
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root2").unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        std::fs::create_dir_all(upper.join("data/sub")).unwrap();
        std::fs::write(upper.join("data/sub/f"), "f").unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        let open = |p: &std::path::Path| rustix::fs::open(p, DIR_FLAGS, Mode::empty()).unwrap();
        let lower = Lower {
            layers: vec![open(&top), open(&base)],
        };
        assert!(lower.lookup(&[b"etc", b"group"]).is_some());
        assert!(lower.lookup(&[b"etc", b"passwd"]).is_some());
        assert!(lower.lookup(&[b"etc", b"nope"]).is_none());
        assert!(lower.lookup(&[b"etc", b"passwd", b"x"]).is_none());
        let kids: Vec<_> = lower.children(&[b"etc"]).into_iter().collect();
        assert_eq!(
            kids,
            vec![b"group".to_vec(), b"old".to_vec(), b"passwd".to_vec()]
        );
        let mut diff = Diff {
            lower: &lower,
            changes: Vec::new(),
            changed_dirs: HashSet::new(),
        };
        let up = open(&upper);
        diff.walk(up.as_fd(), &mut Vec::new(), false, 0).unwrap();
        let got: Vec<(String, u8)> = diff.changes.into_iter().map(|c| (c.path, c.kind)).collect();
        let want: Vec<(String, u8)> = [
            ("/data", ADDED),
            ("/data/sub", ADDED),
            ("/data/sub/f", ADDED),
            ("/etc", MODIFIED),
            ("/etc/new", ADDED),
            ("/etc/passwd", MODIFIED),
        ]
        .iter()
        .map(|(p, k)| (p.to_string(), *k))
        .collect();
        // The copied-up /etc has another mtime than the layer's here, so it
        // is reported itself; the order is the walk's.
        assert_eq!(got, want);
    }
}
