//! Network namespace files: a namespace kept alive by a bind mount of its
//! nsfs file onto a plain file (as `ip netns add` does), so it outlives every
//! process and berthd can set it up before the container exists.
//!
//! No caller's thread ever changes namespace: creating and entering happen
//! on short-lived threads of their own (the network namespace is a
//! per-thread attribute).
//!
//! Mount propagation: the directory holding the files is made a bind mount
//! of itself with shared propagation, in a peer group of its own (as
//! iproute2 does for /run/netns). A mount namespace created later (a
//! systemd service's, a container's before it pivots) copies the namespace
//! mounts too; because they are shared or slave copies, the unmount in
//! [`remove`] propagates to them, so no copy keeps a dead container's
//! namespace alive. Only a namespace that made its copy private on purpose
//! keeps it until that namespace exits. Private (the default on this host's
//! `/`) would leave every such copy behind; unbindable would be no better,
//! since new mount namespaces copy unbindable mounts as private ones.

use std::fs::DirBuilder;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags, StatxFlags};
use rustix::io::Errno;
use rustix::mount::{MountPropagationFlags, UnmountFlags};

use crate::NetError;

/// The nsfs file system's magic number (statfs f_type).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Serialises the check-and-bind of the directory, so two threads of one
/// process cannot stack two bind mounts on it.
static DIR_SETUP: Mutex<()> = Mutex::new(());

/// Creates a network namespace, with `lo` up, and bind-mounts it on `path`
/// (a new file; its parent directory is created 0700 if missing).
/// Fails with [`NetError::NetnsExists`] if `path` already holds a namespace;
/// a leftover plain file (from a crash between creating and mounting) is
/// reused.
pub fn create(path: &Path) -> Result<(), NetError> {
    create_in(path, None)
}

/// [`create`], with the namespace `spare` holds ready if it has one (and
/// the next one made in the background).
pub fn create_from_spare(path: &Path, spare: &Arc<Spare>) -> Result<(), NetError> {
    create_in(path, Some(spare))
}

fn create_in(path: &Path, spare: Option<&Arc<Spare>>) -> Result<(), NetError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| {
            NetError::invalid("netns path", path.display(), "it needs a parent directory")
        })?;
    share_dir(dir)?;
    let created = match rustix::fs::open(
        path,
        OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::RUSR,
    ) {
        Ok(_) => true,
        Err(Errno::EXIST) if holds_netns(path) => {
            return Err(NetError::NetnsExists {
                path: path.to_path_buf(),
            })
        }
        Err(Errno::EXIST) => false,
        Err(e) => return Err(NetError::netns(path, "creating the file", e.into())),
    };
    let result = match spare.and_then(|s| s.take()) {
        Some(ns) => Ok(ns),
        None => std::thread::scope(|s| {
            s.spawn(|| new_netns(path))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
    .and_then(|ns| {
        let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
        rustix::mount::mount_bind(source.as_str(), path)
            .map_err(|e| NetError::netns(path, "bind-mounting the namespace", e.into()))
    });
    if result.is_err() && created {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Moves the calling thread, which must be one made for it, into a new
/// namespace, sets `lo` up, and returns the namespace. `path` names it in
/// errors.
fn new_netns(path: &Path) -> Result<OwnedFd, NetError> {
    berth_sys::process::unshare(libc::CLONE_NEWNET)
        .map_err(|e| NetError::netns(path, "unshare(CLONE_NEWNET)", e))?;
    crate::link::loopback_up().map_err(|e| match e {
        NetError::Netlink {
            op,
            target,
            source,
            kernel,
            ..
        } => NetError::Netlink {
            op,
            target,
            netns: Some(path.to_path_buf()),
            source,
            kernel,
        },
        other => other,
    })?;
    rustix::fs::open(
        "/proc/thread-self/ns/net",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| NetError::netns(path, "opening the new namespace", e.into()))
}

/// A network namespace made ahead of time. Making one (unshare, `lo` up)
/// costs about 0.6 ms of CPU, on the path of every container start; a
/// daemon's `Spare` hands out the one it holds and makes the next on a
/// thread of its own, while the start goes on. Only a descriptor holds it,
/// so it ends with the process: a crash leaves nothing to clean up.
#[derive(Debug, Default)]
pub struct Spare {
    ready: Mutex<Option<OwnedFd>>,
    making: AtomicBool,
}

impl Spare {
    /// Whether a namespace made ahead is ready to be handed out.
    pub fn is_ready(&self) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The namespace made ahead, if one is ready; starts making the next.
    fn take(self: &Arc<Self>) -> Option<OwnedFd> {
        let ns = self.ready.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.make_next();
        ns
    }

    fn make_next(self: &Arc<Self>) {
        if self.making.swap(true, Ordering::AcqRel) {
            return;
        }
        let spare = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("spare-netns".into())
            .spawn(move || {
                // A failure is left to the next start, which then makes
                // its own namespace and reports what went wrong.
                if let Ok(ns) = new_netns(Path::new("(spare network namespace)")) {
                    *spare.ready.lock().unwrap_or_else(|e| e.into_inner()) = Some(ns);
                }
                spare.making.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.making.store(false, Ordering::Release);
        }
    }
}

/// Makes `dir` (created 0700 if missing) a shared mount of its own.
fn share_dir(dir: &Path) -> Result<(), NetError> {
    let _guard = DIR_SETUP.lock().unwrap_or_else(|e| e.into_inner());
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| NetError::netns(dir, "creating the directory", e))?;
    let share = |flags, what| {
        rustix::mount::mount_change(dir, flags).map_err(|e| NetError::netns(dir, what, e.into()))
    };
    if !is_mount_root(dir).map_err(|e| NetError::netns(dir, "statx", e.into()))? {
        rustix::mount::mount_bind(dir, dir)
            .map_err(|e| NetError::netns(dir, "bind-mounting the directory on itself", e.into()))?;
        // A bind of a dir on a shared mount joins that mount's peer group;
        // private first, so that shared then makes a group of its own.
        share(
            MountPropagationFlags::PRIVATE,
            "making the directory's mount private",
        )?;
    }
    // Already a mount (berthd ran before): shared again is a no-op, and
    // the copies other namespaces made meanwhile stay its peers.
    share(
        MountPropagationFlags::SHARED,
        "making the directory's mount shared",
    )
}

fn is_mount_root(dir: &Path) -> rustix::io::Result<bool> {
    let st = rustix::fs::statx(
        rustix::fs::CWD,
        dir,
        rustix::fs::AtFlags::empty(),
        StatxFlags::BASIC_STATS,
    )?;
    let mount_root = rustix::fs::StatxAttributes::MOUNT_ROOT.bits();
    if st.stx_attributes_mask.bits() & mount_root == 0 {
        return Err(Errno::NOSYS); // kernels before 5.8 do not say
    }
    Ok(st.stx_attributes.bits() & mount_root != 0)
}

/// Whether `path` is a mount of a namespace file (nsfs).
// f_type's width differs between architectures.
#[allow(clippy::unnecessary_cast)]
fn holds_netns(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == NSFS_MAGIC)
}

/// Unmounts (lazily) and deletes a namespace file. Ok when it is absent or
/// not mounted: the daemon calls this on every clean-up path.
pub fn remove(path: &Path) -> Result<(), NetError> {
    // More than one mount would be a bug elsewhere; take them all off.
    for _ in 0..8 {
        match rustix::mount::unmount(path, UnmountFlags::DETACH) {
            Ok(()) => continue,
            Err(Errno::INVAL | Errno::NOENT) => break,
            Err(e) => return Err(NetError::netns(path, "unmounting", e.into())),
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::netns(path, "deleting the file", e)),
    }
}

/// Unmounts the shared directory mount [`create`] made on `dir` once no
/// namespace file is left in it, so a daemon whose containers are all gone
/// leaves no mount behind; the next [`create`] makes it again. Ok when
/// `dir` is absent, not a mount, or still in use.
pub fn release_dir(dir: &Path) -> Result<(), NetError> {
    let _guard = DIR_SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(NetError::netns(dir, "reading the directory", e)),
    };
    if entries.flatten().next().is_some() {
        return Ok(());
    }
    match rustix::mount::unmount(dir, UnmountFlags::DETACH) {
        Ok(()) | Err(Errno::INVAL) => Ok(()),
        Err(e) => Err(NetError::netns(dir, "unmounting the directory", e.into())),
    }
}

/// Runs `f` on a thread that has joined the network namespace at `path`,
/// and returns what it returns. Sockets `f` opens stay in that namespace
/// after the thread ends, which is how the netlink code reaches a
/// container's interfaces.
pub fn in_netns<T, F>(path: &Path, f: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let ns = std::fs::File::open(path).map_err(|e| NetError::netns(path, "opening", e))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            berth_sys::process::setns(ns.as_fd(), libc::CLONE_NEWNET)
                .map_err(|e| NetError::netns(path, "entering (setns)", e))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
