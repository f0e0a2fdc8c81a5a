//! Helpers shared by the integration tests: raw tar building (hostile
//! entries the tar crate's path checks would refuse), a sandbox with a
//! canary outside the destination, and a tree snapshot for comparisons.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod tree;
use tar::{EntryType, Header};

/// Builds a tar stream entry by entry with raw header fields.
pub struct RawTar {
    pub out: Vec<u8>,
}

impl RawTar {
    pub fn new() -> Self {
        RawTar { out: Vec::new() }
    }

    fn header(path: &[u8], ty: EntryType, size: u64, link: &[u8]) -> Header {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..path.len()].copy_from_slice(path);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(ty);
        h.set_mode(if ty == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(size);
        h.set_cksum();
        h
    }

    fn pad(&mut self) {
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
    }

    /// Any entry, with `data` appended after the header.
    pub fn entry(&mut self, path: &str, ty: EntryType, link: &str, data: &[u8]) -> &mut Self {
        let h = Self::header(path.as_bytes(), ty, data.len() as u64, link.as_bytes());
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(path, EntryType::Regular, "", data)
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.entry(path, EntryType::Directory, "", b"")
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, EntryType::Symlink, target, b"")
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, EntryType::Link, target, b"")
    }

    /// A header that declares `size` bytes, followed by nothing.
    pub fn header_only(&mut self, path: &str, ty: EntryType, size: u64) -> &mut Self {
        let h = Self::header(path.as_bytes(), ty, size, b"");
        self.out.extend_from_slice(h.as_bytes());
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// A temporary parent directory holding a canary file and the destination
/// `dest`, so tests can check nothing was written beside `dest`.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub dest: PathBuf,
}

pub const CANARY: &[u8] = b"canary: must never change\n";

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("canary"), CANARY).unwrap();
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        Sandbox { tmp, dest }
    }

    pub fn parent(&self) -> &Path {
        self.tmp.path()
    }

    /// Nothing besides `canary` and `dest` exists in the parent, the canary
    /// is intact, and the host's /etc/passwd was not linked or changed.
    pub fn assert_contained(&self, passwd_before: &fs::Metadata) {
        let mut names: Vec<_> = fs::read_dir(self.parent())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["canary", "dest"],
            "something was written beside dest"
        );
        assert_eq!(fs::read(self.parent().join("canary")).unwrap(), CANARY);
        let now = fs::metadata("/etc/passwd").unwrap();
        assert_eq!(
            now.nlink(),
            passwd_before.nlink(),
            "/etc/passwd gained a link"
        );
        assert_eq!(now.len(), passwd_before.len());
        assert_eq!(now.mtime(), passwd_before.mtime());
    }
}

/// Everything we compare about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: String,
    pub link: Option<PathBuf>,
    pub rdev: u64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// For files with several links: the first path (in sorted order) of
    /// their inode, so hard link structure is compared too.
    pub inode_group: Option<PathBuf>,
}

/// xattrs of a path without following it, sorted.
pub fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(e) => panic!("llistxattr {path:?}: {e}"),
    };
    let mut out = Vec::new();
    for key in names[..n].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(path, key, &mut value[..]).unwrap();
        out.push((key.to_vec(), value[..len].to_vec()));
    }
    out.sort();
    out
}

/// Snapshot of everything under `root` (not `root` itself), keyed by
/// relative path.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut paths = Vec::new();
    collect(root, root, &mut paths);
    paths.sort();
    let mut first_of_inode: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for rel in paths {
        let full = root.join(&rel);
        let md = fs::symlink_metadata(&full).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let content = if ft.is_file() {
            hex::encode(Sha256::digest(fs::read(&full).unwrap()))
        } else {
            String::new()
        };
        let inode_group = (!ft.is_dir() && md.nlink() > 1).then(|| {
            first_of_inode
                .entry(md.ino())
                .or_insert_with(|| rel.clone())
                .clone()
        });
        out.insert(
            rel.clone(),
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                content,
                link: ft.is_symlink().then(|| fs::read_link(&full).unwrap()),
                rdev: if ft.is_char_device() || ft.is_block_device() {
                    md.rdev()
                } else {
                    0
                },
                xattrs: xattrs(&full),
                inode_group,
            },
        );
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        out.push(p.strip_prefix(root).unwrap().to_path_buf());
        if e.file_type().unwrap().is_dir() {
            collect(root, &p, out);
        }
    }
}

/// A path from raw bytes.
pub fn bpath(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

/// Metadata of /etc/passwd, to prove it was not touched.
pub fn passwd() -> fs::Metadata {
    fs::metadata("/etc/passwd").unwrap()
}
