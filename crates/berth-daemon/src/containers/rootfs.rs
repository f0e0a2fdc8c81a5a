//! A container's root filesystem: the overlay of its image's layers with
//! the container's own upper and work dirs, mounted on
//! `<data-root>/containers/<id>/rootfs` while the container runs.
//!
//! The mount lives in the host's mount namespace, so it outlives the
//! daemon with the container; restore unmounts it for containers whose
//! shim is gone.

use std::path::{Path, PathBuf};

use berth_image::{ChainId, LayerStore, Mount};

/// overlayfs's `statfs` magic number.
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("preparing the container's root filesystem: {0}")]
    Layers(#[from] berth_image::LayerError),
    #[error("preparing the container's root filesystem: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl berth_errdefs::HasKind for RootfsError {
    fn kind(&self) -> berth_errdefs::ErrorKind {
        match self {
            RootfsError::Layers(e) => e.kind(),
            RootfsError::Io { .. } => berth_errdefs::ErrorKind::Internal,
        }
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Creates the upper, work and mount-point dirs under `dir` (the
/// container's directory) and mounts the overlay, unless it is mounted
/// already. Returns the rootfs path.
pub fn mount(layers: &LayerStore, chain: &[ChainId], dir: &Path) -> Result<PathBuf, RootfsError> {
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    mark_as_container(&upper)?;
    if is_mounted(&rootfs) {
        return Ok(rootfs);
    }
    let m = layers.container_mounts(chain, &upper, &work)?;
    perform(&m, &rootfs).map_err(io("mounting the overlay on", &rootfs))?;
    Ok(rootfs)
}

/// docker's marker, an empty `/.dockerenv` (mode 0755): programs look for
/// it to know they run in a container. Like docker's init layer, it is no
/// change of the container's own (diff and commit leave it out:
/// `archive::INIT_PATHS`).
fn mark_as_container(upper: &Path) -> Result<(), RootfsError> {
    let path = upper.join(".dockerenv");
    match rustix::fs::open(
        &path,
        rustix::fs::OFlags::WRONLY
            | rustix::fs::OFlags::CREATE
            | rustix::fs::OFlags::EXCL
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o755),
    ) {
        // Whatever berthd's umask.
        Ok(fd) => rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o755))
            .map_err(|e| io("setting the mode of", &path)(e.into())),
        Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(io("creating", &path)(e.into())),
    }
}

/// Unmounts the rootfs under `dir` if it is mounted. A busy mount (a
/// process outside the container still holds it) is detached lazily.
pub fn unmount(dir: &Path) -> Result<(), RootfsError> {
    let rootfs = dir.join("rootfs");
    if !is_mounted(&rootfs) {
        return Ok(());
    }
    match rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH)
                .map_err(|e| io("detaching", &rootfs)(e.into()))
        }
        Err(e) => Err(io("unmounting", &rootfs)(e.into())),
    }
}

/// Whether an overlay is mounted on `path`.
pub fn is_mounted(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == OVERLAYFS_SUPER_MAGIC)
}

/// Performs a mount description. The short form of a long layer list
/// names lower dirs relative to a working directory: that mount runs on a
/// thread with its own filesystem context (`unshare(CLONE_FS)`), so no
/// other thread's working directory moves.
fn perform(m: &Mount, target: &Path) -> std::io::Result<()> {
    let m = m.clone();
    let target = target.to_owned();
    std::thread::spawn(move || -> std::io::Result<()> {
        if let Some(dir) = &m.chdir {
            berth_sys::process::unshare(libc::CLONE_FS)?;
            std::env::set_current_dir(dir)?;
        }
        let data = std::ffi::CString::new(m.data()).map_err(std::io::Error::other)?;
        rustix::mount::mount(
            m.source.as_str(),
            &target,
            m.fstype.as_str(),
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )?;
        Ok(())
    })
    .join()
    .map_err(|_| std::io::Error::other("the mount thread panicked"))?
}
