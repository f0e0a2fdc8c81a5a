//! A container's volumes and bind mounts in a file operation's private
//! view of its root (`docker cp` reaches a volume's content, running or
//! not, as docker's does).
//!
//! Runs on the file operation's thread, after it made its mount namespace
//! private: every mount here is seen by that thread alone. Each
//! destination is resolved inside the root (`openat2(RESOLVE_IN_ROOT)`,
//! parents first, so a destination under another mount lands in it) and
//! mounted on by descriptor (`/proc/self/fd/N`), so a symlink in the
//! container cannot put a mount, or a copy, on a host path. A missing
//! destination is made in the root, as docker makes mount points. A
//! volume whose device is not mounted (its containers are stopped) has it
//! mounted here.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

use super::{local, mounts::MountPoint};
use crate::containers::Loaded;
use crate::engine::Engine;

/// One mount of the view.
#[derive(Debug, Clone)]
pub struct ViewMount {
    pub destination: String,
    pub source: PathBuf,
    pub readonly: bool,
    /// A volume's device to mount on `source` first (its `_data`), when
    /// no running container holds it.
    pub device: Option<(local::Paths, std::collections::BTreeMap<String, String>)>,
}

impl Engine {
    /// The container's binds and volumes, parents first.
    pub(crate) fn view_mounts(&self, c: &Loaded) -> Vec<ViewMount> {
        let mut out = Vec::new();
        if let Ok(config) = self
            .store
            .image(&c.image_id)
            .map_err(crate::error::ApiError::from)
            .and_then(|i| crate::images::parse_image_config(&i).map_err(Into::into))
        {
            if let Ok(req) = crate::spec::mount_requests(&c.config.create, &config) {
                for b in req.binds {
                    out.push(ViewMount {
                        destination: b.destination,
                        source: PathBuf::from(b.source),
                        readonly: b.readonly,
                        device: None,
                    });
                }
            }
        }
        for mp in &c.config.mount_points {
            out.push(self.view_mount(mp));
        }
        out.sort_by_key(|m| m.destination.matches('/').count());
        out
    }

    fn view_mount(&self, mp: &MountPoint) -> ViewMount {
        if mp.typ != "volume" {
            return ViewMount {
                destination: mp.destination.clone(),
                source: PathBuf::from(&mp.source),
                readonly: !mp.rw,
                device: None,
            };
        }
        let p = self.volume_paths(&mp.name);
        let device = self
            .store
            .volume(&mp.name)
            .ok()
            .filter(|v| local::has_device(&v.options) && !local::is_mount_point(&p.data))
            .map(|v| (p.clone(), v.options));
        ViewMount {
            destination: mp.destination.clone(),
            source: p.data,
            readonly: !mp.rw,
            device,
        }
    }
}

/// Gives this thread a mount namespace of its own where every mount is
/// private: what it mounts afterwards is seen by it alone and goes with it.
pub fn private_mounts() -> Result<(), String> {
    berth_sys::process::unshare(libc::CLONE_FS | libc::CLONE_NEWNS)
        .map_err(|e| format!("unsharing the mount namespace: {e}"))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| format!("making mounts private: {}", std::io::Error::from(e)))
}

fn open_in_root(root: BorrowedFd<'_>, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = if rel.is_empty() { "." } else { rel };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN | Errno::INTR) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// The mount point at `dest` in the root, made when missing (directories
/// for a directory source, an empty file for a file), every component
/// resolved inside the root.
fn mount_point(root: BorrowedFd<'_>, dest: &str, dir: bool) -> Result<OwnedFd, Errno> {
    let rel = dest.trim_start_matches('/');
    match open_in_root(root, rel, OFlags::PATH) {
        Err(Errno::NOENT) => {}
        other => return other,
    }
    let mut parent = open_in_root(root, ".", OFlags::PATH | OFlags::DIRECTORY)?;
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    let mut done = String::new();
    for (i, name) in parts.iter().enumerate() {
        if !done.is_empty() {
            done.push('/');
        }
        done.push_str(name);
        let last = i + 1 == parts.len();
        match open_in_root(root, &done, OFlags::PATH) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        // `parent` was resolved inside the root; `name` has no slash.
        let parent_dir = rustix::fs::openat(
            &parent,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if last && !dir {
            let created = rustix::fs::openat(
                &parent_dir,
                *name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            );
            match created {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
        } else {
            match rustix::fs::mkdirat(&parent_dir, *name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
        }
        parent = open_in_root(root, &done, OFlags::PATH)?;
    }
    Ok(parent)
}

fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Mounts `mounts` (parents first) into the root at `rootfs` (opened as
/// `root`) on this thread's private namespace. Returns the host paths
/// mounted on, innermost last, for [`unmount`]. A mount that cannot be
/// made is left out with a warning: the copy then sees the container's
/// own directory, as a stopped container's missing bind source would.
pub fn mount(root: BorrowedFd<'_>, rootfs: &Path, mounts: &[ViewMount]) -> Vec<PathBuf> {
    let mut done = Vec::new();
    for m in mounts {
        if let Some((p, opts)) = &m.device {
            if !local::is_mount_point(&p.data) {
                if let Err(e) = local::mount(p, opts) {
                    tracing::warn!(volume = %p.data.display(), error = %e, "mounting a volume's device for a file operation");
                    continue;
                }
            }
        }
        let Ok(st) = rustix::fs::stat(&m.source) else {
            tracing::debug!(source = %m.source.display(), "a mount source is missing; left out of the file view");
            continue;
        };
        let dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let target = match mount_point(root, &m.destination, dir) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(destination = %m.destination, error = %e, "no mount point for a file operation");
                continue;
            }
        };
        if let Err(e) = rustix::mount::mount_bind_recursive(&m.source, proc_fd(target.as_fd())) {
            tracing::warn!(destination = %m.destination, error = %e, "bind-mounting for a file operation");
            continue;
        }
        // Where it landed, as this namespace sees it, for the unmount.
        let landed = std::fs::read_link(proc_fd(target.as_fd()))
            .unwrap_or_else(|_| rootfs.join(m.destination.trim_start_matches('/')));
        if m.readonly {
            let ro = MountFlags::BIND | MountFlags::RDONLY;
            let reopened = open_in_root(root, m.destination.trim_start_matches('/'), OFlags::PATH);
            let remounted =
                reopened.and_then(|fd| rustix::mount::mount_remount(proc_fd(fd.as_fd()), ro, c""));
            if let Err(e) = remounted {
                tracing::warn!(destination = %m.destination, error = %e, "making a file operation's mount read-only; leaving it out");
                let _ = rustix::mount::unmount(&landed, UnmountFlags::DETACH);
                continue;
            }
        }
        done.push(landed);
    }
    done
}

/// Undoes [`mount`] (innermost first).
pub fn unmount(mounted: &[PathBuf]) {
    for p in mounted.iter().rev() {
        let _ = rustix::mount::unmount(p, UnmountFlags::DETACH);
    }
}

/// Whether `fd` lies on the same mount as `root` (not in a volume or a
/// bind mounted into the view).
pub fn on_root_mount(root: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> bool {
    let id = |f: BorrowedFd<'_>| {
        rustix::fs::statx(
            f,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::MNT_ID,
        )
        .ok()
        .map(|s| s.stx_mnt_id)
    };
    id(root) == id(fd)
}
