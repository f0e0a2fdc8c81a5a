//! `cp CONTAINER:PATH HOSTPATH`: docker's copy out of a container
//! (cli/command/container/cp.go and pkg/archive/copy.go, rule for rule).
//!
//! - The destination is made absolute, keeping a trailing `/` or `/.`; its
//!   directory must exist. A symlink at the destination is followed (up to
//!   10 times), the source's `-L` is resolved with a HEAD stat first.
//! - An existing directory receives the archive as it is (so `SRC/.` copies
//!   the contents); otherwise the archive's top entry is renamed to the
//!   destination's last component in its parent. A directory onto an
//!   existing file is "cannot copy directory", a file onto a path that asks
//!   for a directory (`new/`, `new/.`) "no such directory".
//! - Files are owned by the caller, with or without `-a`, as docker's
//!   client untars with `NoLchown`.
//!
//! The archive is untrusted. berth-archive unpacks it into a staging
//! directory made inside the destination's directory (`openat2` with
//! `RESOLVE_IN_ROOT`: `..`, absolute names and symlinks planted by earlier
//! entries all stay inside it), then what it made is renamed into place
//! one entry at a time by directory descriptor, never following a symlink
//! (a directory merges into an existing one; anything else replaces a
//! non-directory; directory vs non-directory is docker's
//! `NoOverwriteDirNonDir` error). The staging directory is removed however
//! the copy ends.

use std::ffi::{CStr, CString};
use std::io::IsTerminal;
use std::path::Path;

use berth_client::query::escape_path;
use berth_client::{Body, Query};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::{Ctx, StatusError};

/// Go's `os.ModeDir` and `os.ModeSymlink` in the path stat's `mode`.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;

fn fail(msg: impl Into<String>) -> anyhow::Error {
    StatusError {
        code: 1,
        msg: msg.into(),
    }
    .into()
}

/// An OS error as Go prints it: `no such file or directory`.
pub(crate) fn go_errno(e: &std::io::Error) -> String {
    berth_errdefs::go_os_errors(&e.to_string())
}

/// Go's `path.Clean`.
pub(crate) fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&l) if l != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base`.
fn base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { ".".into() } else { "/".into() };
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `filepath.Dir`.
fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean(&p[..=i]),
        None => ".".into(),
    }
}

fn specifies_current_dir(p: &str) -> bool {
    base(p) == "."
}

/// docker's `assertsDirectory`: `x/` or `x/.`.
fn asserts_directory(p: &str) -> bool {
    p.ends_with('/') || specifies_current_dir(p)
}

/// docker's `SplitPathDirEntry`: `/a/b/` -> (`/a`, `b`), `/a/.` -> (`/a`, `.`).
fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// docker's `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(mut cleaned: String, original: &str) -> String {
    if !specifies_current_dir(&cleaned) && specifies_current_dir(original) {
        if !cleaned.ends_with('/') {
            cleaned.push('/');
        }
        cleaned.push('.');
    }
    if !cleaned.ends_with('/') && original.ends_with('/') {
        cleaned.push('/');
    }
    cleaned
}

/// docker's `GetRebaseName`: the resolved path (keeping what the asked
/// path ends with) and the name its entries take when the last component
/// changed.
fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if path.ends_with('/') && !resolved.ends_with('/') {
        resolved.push('/');
    }
    let rebase = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, rebase)
}

/// `filepath.Abs`, keeping a trailing `/` or `/.`.
fn resolve_local_path(p: &str) -> anyhow::Result<String> {
    Ok(preserve_trailing(abs_path(p)?, p))
}

/// Go's `filepath.Abs`: cleaned, from the current directory.
pub(crate) fn abs_path(p: &str) -> anyhow::Result<String> {
    if p.starts_with('/') {
        return Ok(clean(p));
    }
    let cwd = std::env::current_dir()?;
    Ok(clean(&format!("{}/{p}", cwd.to_string_lossy())))
}

/// docker's `ValidateOutputPath`.
fn validate_output_path(p: &str) -> anyhow::Result<()> {
    let d = dir(&clean(p));
    if d != "." {
        if let Err(e) = std::fs::metadata(&d) {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Err(fail(format!(
                    "invalid output path: directory {d:?} does not exist"
                )));
            }
        }
    }
    match std::fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(format!("stat {p}: {}", go_errno(&e)))),
        Ok(_) => Ok(()),
    }
}

/// The destination after docker's `CopyInfoDestinationPath`: the path
/// (symlinks followed), whether it exists and is a directory.
fn destination_info(path: &str) -> anyhow::Result<(String, bool, bool)> {
    let original = path;
    let mut path = path.to_string();
    let mut st = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &st {
        if !m.file_type().is_symlink() {
            return Ok((path, true, m.is_dir()));
        }
        if n > 10 {
            return Err(fail(format!("too many symlinks in {original}")));
        }
        n += 1;
        let target = std::fs::read_link(&path)
            .map_err(|e| fail(format!("readlink {path}: {}", go_errno(&e))))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            clean(&format!("{}/{target}", split_dir_entry(&path).0))
        };
        st = std::fs::symlink_metadata(&path);
    }
    let e = st.expect_err("the loop ends on an error");
    if e.kind() != std::io::ErrorKind::NotFound {
        return Err(fail(format!("lstat {path}: {}", go_errno(&e))));
    }
    let parent = split_dir_entry(&path).0;
    match std::fs::metadata(&parent) {
        Err(e) => Err(fail(format!("stat {parent}: {}", go_errno(&e)))),
        Ok(m) if !m.is_dir() => Err(fail("not a directory")),
        Ok(_) => Ok((path, false, false)),
    }
}

/// What `X-Docker-Container-Path-Stat` says: the mode and link target.
fn path_stat(header: Option<&str>) -> Option<(u64, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header?.trim())
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    Some((
        v["mode"].as_u64()?,
        v["linkTarget"].as_str().unwrap_or("").to_string(),
    ))
}

/// `cp -L`: when `src` in the container is a symlink, the path of its
/// target, and the name the copy keeps (docker's rebase); as docker, a
/// failed stat leaves the path as it is (the GET then says why).
pub fn follow_symlink(
    ctx: &Ctx,
    container: &str,
    src: &str,
) -> anyhow::Result<(String, Option<String>)> {
    let full = format!(
        "/v{}/containers/{}/archive{}",
        ctx.client.api_version()?,
        escape_path(container),
        Query::new().push("path", src).encode()
    );
    let stat = ctx
        .client
        .raw("HEAD", &full, &[], Body::Empty)
        .ok()
        .filter(|r| r.status < 300)
        .and_then(|r| path_stat(r.header("X-Docker-Container-Path-Stat")));
    if let Some((mode, mut target)) = stat {
        if mode & MODE_SYMLINK != 0 {
            if !target.starts_with('/') {
                target = clean(&format!("{}/{target}", split_dir_entry(src).0));
            }
            return Ok(rebase_name(src, &target));
        }
    }
    Ok((src.to_string(), None))
}

pub fn copy_from_container(
    ctx: &Ctx,
    container: &str,
    src_path: &str,
    dest: &str,
    follow_link: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let dest = resolve_local_path(dest)?;
    validate_output_path(&dest)?;
    let archive_path = |p: &str| {
        format!(
            "/containers/{}/archive{}",
            escape_path(container),
            Query::new().push("path", p).encode()
        )
    };
    let (src, rebase) = if follow_link {
        follow_symlink(ctx, container, src_path)?
    } else {
        (src_path.to_string(), None)
    };
    let path = archive_path(&src);
    let resp = ctx.client.request("GET", &path, &[], Body::Empty)?;
    let src_is_dir = path_stat(resp.header("X-Docker-Container-Path-Stat"))
        .is_some_and(|(mode, _)| mode & MODE_DIR != 0);
    let (_, src_base) = split_dir_entry(&src);

    // docker's PrepareArchiveCopy: where to extract, and the top entry's
    // new name there.
    let (dst_path, exists, is_dir) = destination_info(&dest)?;
    let (dst_dir, dst_base) = split_dir_entry(&dst_path);
    let (extract_dir, rename) = if exists && is_dir {
        (dst_path.clone(), rebase.map(|r| (src_base.clone(), r)))
    } else if exists && src_is_dir {
        return Err(fail("cannot copy directory"));
    } else if !exists && !src_is_dir && asserts_directory(&dst_path) {
        return Err(fail("no such directory"));
    } else {
        (dst_dir, Some((src_base.clone(), dst_base)))
    };
    let mut counted = Counted {
        inner: resp.body(),
        n: 0,
    };
    extract(&mut counted, &extract_dir, rename)?;
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dest}",
            crate::units::human_size(counted.n as f64)
        );
    }
    Ok(())
}

/// Counts the archive's bytes for docker's closing line.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

fn proc_fd(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Unpacks the archive read from `r` into `dir` (confined in a staging
/// directory, then moved into place); `rename` renames the top entry.
fn extract(
    r: &mut dyn std::io::Read,
    dir: &str,
    rename: Option<(String, String)>,
) -> anyhow::Result<()> {
    let io = |what: &str, e: Errno| fail(format!("{what}: {}", go_errno(&e.into())));
    let dest = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(&format!("open {dir}"), e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let stage_name = format!(".berth-cp-{}-{nanos:08x}", std::process::id());
    rustix::fs::mkdirat(&dest, stage_name.as_str(), Mode::from_raw_mode(0o700))
        .map_err(|e| io(&format!("mkdir {dir}/{stage_name}"), e))?;
    let result = (|| -> anyhow::Result<()> {
        let stage = rustix::fs::openat(&dest, stage_name.as_str(), DIR_FLAGS, Mode::empty())
            .map_err(|e| io("opening the staging directory", e))?;
        let opts = berth_archive::ApplyOptions {
            owner: Some((
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            )),
            whiteouts: false,
            ..Default::default()
        };
        berth_archive::apply_layer(r, Path::new(&proc_fd(stage.as_fd())), &opts)
            .map_err(|e| fail(format!("extracting the archive: {e}")))?;
        let mover = Mover { dest_dir: dir };
        match rename {
            // `SRC/.`: the staging directory is the copied directory.
            Some((from, to)) if from == "." => {
                mover.place(&dest, stage_name.as_str(), &dest, to.as_str(), &to)
            }
            rename => {
                for name in names(&stage)? {
                    let new = match &rename {
                        Some((from, to)) if name.to_bytes() == from.as_bytes() => to.clone(),
                        _ => String::from_utf8_lossy(name.to_bytes()).into_owned(),
                    };
                    mover.place(&stage, name.as_c_str(), &dest, new.as_str(), &new)?;
                }
                Ok(())
            }
        }
    })();
    let stage_path = format!("{}/{stage_name}", proc_fd(dest.as_fd()));
    match std::fs::remove_dir_all(&stage_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound && result.is_ok() => {
            return Err(fail(format!(
                "removing the staging directory {dir}/{stage_name}: {}",
                go_errno(&e)
            )));
        }
        _ => {}
    }
    result
}

/// The names in a directory, `.` and `..` left out, sorted as the
/// daemon's archive is (what an error leaves behind is docker's too).
fn names(d: &OwnedFd) -> anyhow::Result<Vec<CString>> {
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(d).map_err(std::io::Error::from)? {
        let e = e.map_err(std::io::Error::from)?;
        let n = e.file_name();
        if n != c"." && n != c".." {
            out.push(n.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

struct Mover<'a> {
    /// The extraction directory, for docker's messages.
    dest_dir: &'a str,
}

impl Mover<'_> {
    /// Moves `src_dir/src` to `dst_dir/dst` (`rel` is its path below the
    /// extraction directory): renamed when nothing is there, merged into
    /// a directory, replacing a non-directory.
    fn place<S: rustix::path::Arg + Copy, D: rustix::path::Arg + Copy>(
        &self,
        src_dir: &OwnedFd,
        src: S,
        dst_dir: &OwnedFd,
        dst: D,
        rel: &str,
    ) -> anyhow::Result<()> {
        let shown = clean(&format!("{}/{rel}", self.dest_dir));
        let io = |what: &str, e: Errno| fail(format!("{what} {shown}: {}", go_errno(&e.into())));
        let new = rustix::fs::statat(src_dir, src, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io("lstat", e))?;
        let new_is_dir = FileType::from_raw_mode(new.st_mode) == FileType::Directory;
        let old = match rustix::fs::statat(dst_dir, dst, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {
                return rustix::fs::renameat(src_dir, src, dst_dir, dst)
                    .map_err(|e| io("rename", e))
            }
            Err(e) => return Err(io("lstat", e)),
            Ok(s) => s,
        };
        let old_is_dir = FileType::from_raw_mode(old.st_mode) == FileType::Directory;
        match (old_is_dir, new_is_dir) {
            (true, false) => Err(fail(format!(
                "cannot overwrite directory {shown:?} with non-directory {:?}",
                self.dest_dir
            ))),
            (false, true) => Err(fail(format!(
                "cannot overwrite non-directory {shown:?} with directory {:?}",
                self.dest_dir
            ))),
            (false, false) => {
                rustix::fs::renameat(src_dir, src, dst_dir, dst).map_err(|e| io("rename", e))
            }
            (true, true) => {
                let from = rustix::fs::openat(src_dir, src, DIR_FLAGS, Mode::empty())
                    .map_err(|e| io("open", e))?;
                let into = rustix::fs::openat(dst_dir, dst, DIR_FLAGS, Mode::empty())
                    .map_err(|e| io("open", e))?;
                for name in names(&from)? {
                    let child = format!("{rel}/{}", String::from_utf8_lossy(name.to_bytes()));
                    let n: &CStr = name.as_c_str();
                    self.place(&from, n, &into, n, &child)?;
                }
                // The directory's mode and times come from the archive, as
                // docker's.
                rustix::fs::fchmod(&into, Mode::from_raw_mode(new.st_mode & 0o7777))
                    .map_err(|e| io("chmod", e))?;
                let ts = |sec: i64, nsec: u64| rustix::fs::Timespec {
                    tv_sec: sec,
                    tv_nsec: nsec as _,
                };
                let times = rustix::fs::Timestamps {
                    last_access: ts(new.st_atime as i64, new.st_atime_nsec as u64),
                    last_modification: ts(new.st_mtime as i64, new.st_mtime_nsec as u64),
                };
                rustix::fs::futimens(&into, &times).map_err(|e| io("chtimes", e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_paths() {
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(clean("../x/.."), "..");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean(""), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/a/."), ".");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("a"), ".");
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "/".into()));
        assert_eq!(preserve_trailing("/x/y".into(), "y/."), "/x/y/.");
        assert_eq!(preserve_trailing("/x/y".into(), "y/"), "/x/y/");
        assert_eq!(preserve_trailing("/x".into(), "."), "/x/.");
        assert!(asserts_directory("/x/") && asserts_directory("/x/.") && !asserts_directory("/x"));
    }

    #[test]
    fn rebase_names() {
        assert_eq!(rebase_name("/dl", "/d"), ("/d".into(), Some("dl".into())));
        assert_eq!(rebase_name("/dl/.", "/d"), ("/d/.".into(), None));
        assert_eq!(rebase_name("/x/d", "/d"), ("/d".into(), None));
    }

    #[test]
    fn go_error_strings() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(go_errno(&e), "no such file or directory");
    }
}
