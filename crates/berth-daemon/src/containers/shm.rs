//! docker's shareable IPC: a container started with `--ipc shareable` gets
//! its /dev/shm from a tmpfs that berthd mounts on the host, at
//! `<container dir>/shm`, so that a container started with `--ipc
//! container:<it>` can bind the same one (and join its IPC namespace).
//! A /dev/shm private to the container's mount namespace could not be
//! shared: the kernel refuses a bind from another mount namespace. The
//! tmpfs lives as long as the container's run: it is unmounted with the
//! rootfs, when the run ends (a joiner's bind keeps it alive while it runs).

use std::path::{Path, PathBuf};

use crate::error::ApiError;

/// Where a shareable container's /dev/shm is mounted on the host.
pub(crate) fn dir(container_dir: &Path) -> PathBuf {
    container_dir.join("shm")
}

/// Mounts the container's shareable /dev/shm (docker's options: mode 1777,
/// nosuid, nodev, noexec, `size` bytes), or finds it mounted (a start
/// after a daemon restart).
pub(crate) fn mount(container_dir: &Path, size: i64) -> Result<PathBuf, ApiError> {
    let shm = dir(container_dir);
    let err = |op: &str, e: std::io::Error| {
        ApiError::internal(format!(
            "{op} {} for a shareable /dev/shm: {e}",
            shm.display()
        ))
    };
    std::fs::create_dir_all(&shm).map_err(|e| err("creating", e))?;
    if is_mounted(container_dir) {
        return Ok(shm);
    }
    use rustix::mount::MountFlags;
    rustix::mount::mount(
        "shm",
        &shm,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        std::ffi::CString::new(format!("mode=1777,size={size}"))
            .expect("no NUL in the options")
            .as_c_str(),
    )
    .map_err(|e| err("mounting a tmpfs on", e.into()))?;
    Ok(shm)
}

/// Unmounts the container's shareable /dev/shm, if it has one.
pub(crate) fn unmount(container_dir: &Path) {
    if !is_mounted(container_dir) {
        return;
    }
    let shm = dir(container_dir);
    let flags = rustix::mount::UnmountFlags::DETACH;
    if let Err(e) = rustix::mount::unmount(&shm, flags) {
        tracing::warn!(path = %shm.display(), error = %e, "unmounting a shareable /dev/shm");
    }
}

/// Whether something is mounted on the shm dir: another device than the
/// container dir's (which may itself be on a tmpfs).
fn is_mounted(container_dir: &Path) -> bool {
    match (
        rustix::fs::stat(container_dir),
        rustix::fs::stat(dir(container_dir)),
    ) {
        (Ok(parent), Ok(shm)) => parent.st_dev != shm.st_dev,
        _ => false,
    }
}
