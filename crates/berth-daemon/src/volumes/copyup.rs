//! Filling an empty volume with what the image has at its destination
//! (docker's copy-up): owners, modes, times, xattrs, hard links, symlinks
//! and devices are kept, and the volume's root takes the owner and mode of
//! the image's directory.
//!
//! The image's directory is resolved inside the container's root with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symlink in the
//! image (say `/data -> /etc`) names the container's `/etc`, never the
//! host's. It is then written as a tar by berth-archive (a walk by
//! descriptor that never follows a symlink) and the tar applied to the
//! volume by berth-archive's confined extraction, through a pipe: no file
//! of the tree is ever opened by a path that could lead elsewhere.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Copies the content of `destination` inside `rootfs` into `data` when
/// `data` is empty and the rootfs has a directory there. Returns whether
/// anything was copied.
pub fn fill(rootfs: &Path, destination: &str, data: &Path) -> Result<bool, String> {
    let empty = std::fs::read_dir(data)
        .map_err(|e| format!("reading {}: {e}", data.display()))?
        .next()
        .is_none();
    if !empty {
        return Ok(false);
    }
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", rootfs.display()))?;
    let rel = destination.trim_start_matches('/');
    let source = match open_in_root(root.as_fd(), rel) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(false),
        Err(e) => return Err(format!("looking up {destination} in the image: {e}")),
    };
    let st = rustix::fs::fstat(&source).map_err(|e| format!("stat {destination}: {e}"))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(false);
    }
    let source_path = Path::new("/proc/self/fd").join(source.as_raw_fd().to_string());
    let (reader, writer) = std::io::pipe().map_err(|e| format!("making a pipe: {e}"))?;
    let applied = std::thread::scope(|s| {
        let writing = s.spawn(move || berth_archive::write_tree(&source_path, writer));
        let applied =
            berth_archive::apply_layer(reader, data, &berth_archive::ApplyOptions::default());
        let written = writing
            .join()
            .map_err(|_| "the copy thread panicked".to_string())?;
        // A failed write shows as a cut tar on the reading side: its own
        // error says more.
        written.map_err(|e| format!("reading the image's files at {destination}: {e}"))?;
        applied.map_err(|e| format!("writing into {}: {e}", data.display()))
    });
    applied?;
    let dir = rustix::fs::open(
        data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", data.display()))?;
    rustix::fs::fchown(
        &dir,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| format!("chown {}: {e}", data.display()))?;
    rustix::fs::fchmod(&dir, Mode::from_raw_mode(st.st_mode & 0o7777))
        .map_err(|e| format!("chmod {}: {e}", data.display()))?;
    Ok(true)
}

fn open_in_root(root: std::os::fd::BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, Errno> {
    let path = if rel.is_empty() { "." } else { rel };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN | Errno::INTR) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copies_the_image_dir_and_never_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let data = dir.path().join("data");
        std::fs::create_dir_all(root.join("srv/sub")).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(root.join("srv/sub/f"), b"hi").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("srv/link")).unwrap();
        std::fs::set_permissions(root.join("srv"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(root.join("srv"), Some(1000), Some(1001)).unwrap();
        assert!(fill(&root, "/srv", &data).unwrap());
        assert_eq!(std::fs::read(data.join("sub/f")).unwrap(), b"hi");
        assert_eq!(
            std::fs::read_link(data.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let m = std::fs::metadata(&data).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1001, 0o750));
        // Not empty any more: nothing happens.
        std::fs::write(root.join("srv/new"), b"x").unwrap();
        assert!(!fill(&root, "/srv", &data).unwrap());
        assert!(!data.join("new").exists());

        // A symlink to a host directory resolves inside the root.
        let host = dir.path().join("host-secret");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(&host, root.join("evil")).unwrap();
        let data2 = dir.path().join("data2");
        std::fs::create_dir_all(&data2).unwrap();
        assert!(!fill(&root, "/evil", &data2).unwrap());
        assert!(!data2.join("secret").exists());
        // Missing in the image: nothing to copy.
        assert!(!fill(&root, "/nope", &data2).unwrap());
    }
}
