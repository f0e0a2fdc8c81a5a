//! Writing a directory tree as a layer tar: a whole tree (export, `docker
//! save`) or an overlay upper directory (commit, build), where overlay
//! whiteouts become OCI whiteouts.
//!
//! The walk is by descriptor (`openat` with `O_NOFOLLOW` from the root
//! down), never following a symlink, so a container's upper directory
//! cannot make the walk read host files. Names are sorted bytewise and no
//! field depends on the walk itself, so output is deterministic: the same
//! tree gives the same diff ID. Sockets have no tar form and are skipped,
//! as docker does.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{major, minor, openat, readlinkat, statat, AtFlags, FileType, Mode, OFlags, Stat};

use crate::apply::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::error::{show, Error};
use crate::fsops::{fxattrs, list_dir, lxattrs_at, open_subdir};
use crate::idmap::IdMap;
use crate::reader::Kind;
use crate::root::open_dir;
use crate::tarwrite::{OutEntry, TarWriter};

/// What a written tar contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarStats {
    /// Entries written (whiteouts included).
    pub entries: u64,
    /// Size of the uncompressed tar.
    pub tar_bytes: u64,
    /// `sha256:<hex>` of the uncompressed tar (the layer's diff ID).
    pub diff_id: String,
}

/// Options for [`write_tree_with`] and [`write_diff_with`].
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Map host owners back to container ids (the inverse of
    /// [`crate::ApplyOptions::id_map`]); an unmapped owner is an error.
    pub id_map: Option<IdMap>,
    /// Paths relative to the root (`etc/hosts`, no leading `/`) left out,
    /// with everything under them: a container's mount points, which are
    /// not its content (`docker commit` leaves them to the init layer).
    pub exclude: Vec<String>,
}

/// Writes everything under `root` (not `root` itself) as a tar.
pub fn write_tree(root: &Path, w: impl Write) -> Result<TarStats, Error> {
    write_tree_with(root, w, &WriteOptions::default())
}

/// [`write_tree`] with options.
pub fn write_tree_with(root: &Path, w: impl Write, opts: &WriteOptions) -> Result<TarStats, Error> {
    walk(root, w, Source::Tree, opts)
}

/// Writes an overlayfs upper directory as an OCI layer tar: 0/0 character
/// devices become `.wh.NAME` files and opaque directories get a
/// `.wh..wh..opq` entry. Upper directories that use `redirect_dir` or
/// `metacopy` are refused (a renamed directory or a metadata-only copy has
/// no tar form); mount the overlay with `redirect_dir=off,metacopy=off`.
pub fn write_diff(upper: &Path, w: impl Write) -> Result<TarStats, Error> {
    write_diff_with(upper, w, &WriteOptions::default())
}

/// [`write_diff`] with options.
pub fn write_diff_with(
    upper: &Path,
    w: impl Write,
    opts: &WriteOptions,
) -> Result<TarStats, Error> {
    walk(upper, w, Source::Upper, opts)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A plain directory.
    Tree,
    /// An overlay upper directory.
    Upper,
}

fn walk(
    root: &Path,
    w: impl Write,
    source: Source,
    opts: &WriteOptions,
) -> Result<TarStats, Error> {
    let fd = open_dir(root).map_err(|source| Error::OpenRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let mut walker = Walker {
        tw: TarWriter::new(w),
        source,
        id_map: opts.id_map.as_ref(),
        exclude: &opts.exclude,
        links: HashMap::new(),
        entries: 0,
    };
    walker.walk_dir(fd.as_fd(), b"", 0)?;
    let (diff_id, tar_bytes, _) = walker.tw.finish().map_err(|source| Error::Write {
        entry: "end-of-archive marker".into(),
        source,
    })?;
    Ok(TarStats {
        entries: walker.entries,
        tar_bytes,
        diff_id,
    })
}

/// Deepest directory we descend into (one open descriptor per level).
const MAX_WALK_DEPTH: usize = 1024;

struct Walker<'o, W: Write> {
    tw: TarWriter<W>,
    source: Source,
    id_map: Option<&'o IdMap>,
    exclude: &'o [String],
    /// (device, inode) of multiply-linked files already written -> path.
    links: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        p.extend_from_slice(parent);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn walk_err<'a>(path: &'a [u8], op: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Walk {
        path: show(path),
        op,
        source,
    }
}

/// An overlay whiteout: a character device with device number 0/0.
fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// xattrs that are not part of a layer's content: overlay's bookkeeping,
/// and SELinux labels, which belong to the host's policy (the runtime
/// labels a container's files itself; docker and containerd leave them
/// out too).
fn is_excluded_xattr(key: &[u8]) -> bool {
    key.starts_with(b"trusted.overlay.")
        || key.starts_with(b"user.overlay.")
        || key == b"security.selinux"
}

fn has_xattr<'a>(xattrs: &'a [(Vec<u8>, Vec<u8>)], suffix: &[u8]) -> Option<&'a [u8]> {
    xattrs.iter().find_map(|(k, v)| {
        let rest = k
            .strip_prefix(b"trusted.overlay.")
            .or_else(|| k.strip_prefix(b"user.overlay."))?;
        (rest == suffix).then_some(v.as_slice())
    })
}

impl<W: Write> Walker<'_, W> {
    fn walk_dir(&mut self, dir: BorrowedFd<'_>, rel: &[u8], depth: usize) -> Result<(), Error> {
        if depth >= MAX_WALK_DEPTH {
            return Err(Error::Walk {
                path: show(rel),
                op: "descending into",
                source: std::io::Error::other(format!(
                    "directory tree deeper than {MAX_WALK_DEPTH} levels"
                )),
            });
        }
        let names = list_dir(dir).map_err(walk_err(rel, "listing"))?;
        let mut children = Vec::with_capacity(names.len());
        for name in names {
            let st = statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| walk_err(&join(rel, &name), "stat")(e.into()))?;
            // The OCI spec asks for whiteouts before their siblings, so a
            // reader never sees a path it must then delete.
            let later = !(self.source == Source::Upper && is_whiteout(&st));
            children.push((later, name, st));
        }
        children.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, name, st) in children {
            let path = join(rel, &name);
            self.entry(dir, &name, &path, &st, depth)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        st: &Stat,
        depth: usize,
    ) -> Result<(), Error> {
        if self.exclude.iter().any(|e| e.as_bytes() == path) {
            return Ok(());
        }
        let ty = FileType::from_raw_mode(st.st_mode);
        let mut out = OutEntry {
            path,
            kind: Kind::Regular,
            mode: st.st_mode & 0o7777,
            uid: self.owner_id(path, "uid", st.st_uid)?,
            gid: self.owner_id(path, "gid", st.st_gid)?,
            mtime: st.st_mtime,
            size: 0,
            link: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
        };

        if self.source == Source::Upper && is_whiteout(st) {
            // An overlay whiteout (overlayfs may hard-link them to one inode,
            // so this comes before the hard link check).
            let wh_name = [WHITEOUT_PREFIX, name].concat();
            let wh_path = match path.len() - name.len() {
                0 => wh_name,
                n => [&path[..n], &wh_name[..]].concat(),
            };
            out.path = &wh_path;
            out.mode = 0o600;
            return self.emit(&out, None);
        }

        if ty != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                out.kind = Kind::Hardlink;
                out.link = &first;
                return self.emit(&out, None);
            }
            self.links.insert(key, path.to_vec());
        }

        match ty {
            FileType::Directory => {
                let fd = open_subdir(dir, name).map_err(walk_err(path, "opening directory"))?;
                let xattrs = fxattrs(fd.as_fd()).map_err(walk_err(path, "reading xattrs of"))?;
                let opaque = self.check_overlay(path, &xattrs)?;
                let kept: Vec<_> = xattrs
                    .into_iter()
                    .filter(|(k, _)| !is_excluded_xattr(k))
                    .collect();
                out.kind = Kind::Dir;
                out.xattrs = &kept;
                self.emit(&out, None)?;
                if opaque {
                    let marker = join(path, OPAQUE_MARKER);
                    let m = OutEntry {
                        path: &marker,
                        kind: Kind::Regular,
                        mode: 0o600,
                        xattrs: &[],
                        ..out
                    };
                    self.emit(&m, None)?;
                }
                self.walk_dir(fd.as_fd(), path, depth + 1)
            }
            FileType::RegularFile => {
                let fd = openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| walk_err(path, "opening")(e.into()))?;
                let xattrs = fxattrs(fd.as_fd()).map_err(walk_err(path, "reading xattrs of"))?;
                self.check_overlay(path, &xattrs)?;
                let kept: Vec<_> = xattrs
                    .into_iter()
                    .filter(|(k, _)| !is_excluded_xattr(k))
                    .collect();
                out.xattrs = &kept;
                out.size = st.st_size as u64;
                let mut file = File::from(fd);
                self.emit(&out, Some(&mut file))
            }
            FileType::Symlink => {
                let target = readlinkat(dir, name, Vec::new())
                    .map_err(|e| walk_err(path, "reading link")(e.into()))?;
                let xattrs = lxattrs_at(dir, name).map_err(walk_err(path, "reading xattrs of"))?;
                let kept: Vec<_> = xattrs
                    .into_iter()
                    .filter(|(k, _)| !is_excluded_xattr(k))
                    .collect();
                out.kind = Kind::Symlink;
                out.mode = 0o777;
                out.link = target.as_bytes();
                out.xattrs = &kept;
                self.emit(&out, None)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let xattrs = lxattrs_at(dir, name).map_err(walk_err(path, "reading xattrs of"))?;
                let kept: Vec<_> = xattrs
                    .into_iter()
                    .filter(|(k, _)| !is_excluded_xattr(k))
                    .collect();
                out.kind = match ty {
                    FileType::CharacterDevice => Kind::Char,
                    FileType::BlockDevice => Kind::Block,
                    _ => Kind::Fifo,
                };
                if ty != FileType::Fifo {
                    out.dev_major = major(st.st_rdev);
                    out.dev_minor = minor(st.st_rdev);
                }
                out.xattrs = &kept;
                self.emit(&out, None)
            }
            // Sockets (and anything unknown) cannot be archived.
            _ => Ok(()),
        }
    }

    /// The id to record for a host owner id.
    fn owner_id(&self, path: &[u8], which: &'static str, id: u32) -> Result<u64, Error> {
        let Some(map) = self.id_map else {
            return Ok(u64::from(id));
        };
        let mapped = if which == "uid" {
            map.uid_to_container(id)
        } else {
            map.gid_to_container(id)
        };
        mapped.map(u64::from).ok_or(Error::UnmappedId {
            entry: show(path),
            which,
            id: u64::from(id),
        })
    }

    /// In an upper directory, refuses overlay features without a tar form
    /// and reports whether the directory is opaque.
    fn check_overlay(&self, path: &[u8], xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<bool, Error> {
        if self.source != Source::Upper {
            return Ok(false);
        }
        if has_xattr(xattrs, b"redirect").is_some() {
            return Err(Error::UnsupportedUpper {
                path: show(path),
                what: "redirect_dir (a renamed directory)",
            });
        }
        if has_xattr(xattrs, b"metacopy").is_some() {
            return Err(Error::UnsupportedUpper {
                path: show(path),
                what: "metacopy (a metadata-only copy-up)",
            });
        }
        // "y" is an opaque directory; "x" (Linux 6.7+) only flags a directory
        // holding xattr whiteouts, which overlay does not create in upper dirs.
        Ok(has_xattr(xattrs, b"opaque") == Some(b"y"))
    }

    fn emit(&mut self, out: &OutEntry<'_>, data: Option<&mut File>) -> Result<(), Error> {
        let werr = |source| Error::Write {
            entry: show(out.path),
            source,
        };
        self.tw.append_header(out).map_err(werr)?;
        if let Some(file) = data {
            self.tw
                .append_data(file, out.size)
                .map_err(|source| Error::Walk {
                    path: show(out.path),
                    op: "copying into the tar",
                    source,
                })?;
        }
        self.entries += 1;
        Ok(())
    }
}
