//! Building the container's filesystem view inside its new mount namespace:
//! propagation, the spec's mounts, devices, pivot_root, masked and
//! read-only paths.
//!
//! Runs in the container's init before pivot_root, as root of the mount
//! namespace. All targets are resolved inside the rootfs (see `paths`).

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use crate::mounts::{propagation_flag, MountOptions};
use crate::paths::{self, Leaf};

/// A host cgroup hierarchy as the container should see it.
#[derive(Debug, Clone)]
pub struct CgroupMount {
    /// Directory name under the cgroup mount (`memory`, `cpu,cpuacct`, `unified`, ...).
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// Mount options that select the hierarchy (`memory`, `none,name=systemd`, ...).
    pub options: String,
    /// The container's own cgroup directory in this hierarchy on the host.
    pub host_dir: PathBuf,
}

/// Everything rootfs setup needs, computed by the parent before cloning.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub in_userns: bool,
    pub new_cgroupns: bool,
    pub cgroup_mounts: Vec<CgroupMount>,
    /// Per mount (config order): its bind source, opened by the parent.
    pub bind_sources: &'a [Option<crate::idmap::BindSource>],
}

type Res<T = ()> = Result<T, String>;

fn errno_ctx(what: impl std::fmt::Display) -> impl FnOnce(Errno) -> String {
    move |e| format!("{what}: {}", std::io::Error::from(e))
}

/// Sets up mounts and devices inside `rootfs` (before pivot_root).
pub fn prepare(plan: &RootfsPlan<'_>) -> Res {
    let linux = plan.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
        .unwrap_or(MountFlags::from_bits_retain(
            (libc::MS_SLAVE | libc::MS_REC) as _,
        ));
    set_propagation(Path::new("/"), prop)
        .map_err(errno_ctx("making / private to the container"))?;
    // After a recursive slave, private or unbindable (the default is
    // rslave) no mount is shared any more: only a shared or non-recursive
    // rootfsPropagation needs the mount table, which the kernel formats in
    // full, every mount copied from the host, for each read.
    let rec = prop.contains(MountFlags::from_bits_retain(libc::MS_REC as _));
    let shared = prop.contains(MountFlags::from_bits_retain(libc::MS_SHARED as _));
    if shared || !rec {
        make_parent_mount_private(plan.rootfs)?;
    }
    rustix::mount::mount_bind_recursive(plan.rootfs, plan.rootfs).map_err(errno_ctx(format!(
        "bind-mounting the rootfs {:?}",
        plan.rootfs
    )))?;

    let root = rustix::fs::open(
        plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_ctx(format!("opening rootfs {:?}", plan.rootfs)))?;
    let mut has_dev_mount = false;
    let mut read_only_later = Vec::new();
    let mut has_devpts = false;
    for (i, m) in plan.spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        if dest == Path::new("/dev") {
            has_dev_mount = true;
        }
        if dest == Path::new("/dev/pts") && m.typ().as_deref() == Some("devpts") {
            has_devpts = true;
        }
        if mount_one(plan, root.as_fd(), i, m)
            .map_err(|e| format!("mounts[{i}] ({}): {e}", dest.display()))?
        {
            read_only_later.push(dest.clone());
        }
    }
    let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    if has_dev_mount || !devices.is_empty() {
        create_devices(root.as_fd(), &devices, has_dev_mount, plan.in_userns)?;
    }
    if has_dev_mount {
        dev_symlinks(root.as_fd(), has_devpts)?;
    }
    for dest in read_only_later {
        let t = paths::open_in_root(root.as_fd(), &dest, OFlags::PATH)
            .map_err(errno_ctx(format!("reopening {}", dest.display())))?;
        remount(&paths::proc_fd_path(t.as_fd()), MountFlags::RDONLY, true)
            .map_err(|e| format!("making {} read-only: {e}", dest.display()))?;
    }
    Ok(())
}

fn set_propagation(target: &Path, flags: MountFlags) -> rustix::io::Result<()> {
    let prop = MountPropagationFlags::from_bits_retain(flags.bits() as _);
    rustix::mount::mount_change(target, prop)
}

/// One line of /proc/self/mountinfo, the fields used here.
struct MountEntry {
    /// The root of the mount within its file system (`/` for a full mount).
    root: String,
    mount_point: String,
    shared: bool,
    fs_type: String,
}

/// This mount namespace's mounts, in mount order.
fn mount_table() -> Res<Vec<MountEntry>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading mountinfo: {e}"))?;
    Ok(info
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            Some(MountEntry {
                root: fields.get(3)?.to_string(),
                mount_point: fields.get(4)?.to_string(),
                shared: fields.get(6..sep)?.iter().any(|f| f.starts_with("shared:")),
                fs_type: fields.get(sep + 1)?.to_string(),
            })
        })
        .collect())
}

/// pivot_root refuses a new root whose parent mount is shared; make it private.
fn make_parent_mount_private(rootfs: &Path) -> Res {
    let Some(parent) = rootfs.parent() else {
        return Ok(());
    };
    let mounts = mount_table()?;
    let mut best: Option<(&str, bool)> = None;
    for m in &mounts {
        let mp = m.mount_point.as_str();
        if parent.starts_with(mp) && best.is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, m.shared));
        }
    }
    if let Some((mp, true)) = best {
        rustix::mount::mount_change(mp, MountPropagationFlags::PRIVATE)
            .map_err(errno_ctx(format!("making {mp} private")))?;
    }
    Ok(())
}

/// Mounts one spec entry. Returns true when the mount is a read-only tmpfs
/// that was mounted read-write and must be made read-only after every
/// other mount and device inside it exists (runc does the same for a
/// read-only /dev).
fn mount_one(plan: &RootfsPlan<'_>, root: BorrowedFd<'_>, index: usize, m: &Mount) -> Res<bool> {
    let mut opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let read_only_later = typ == "tmpfs" && opts.flags.contains(MountFlags::RDONLY);
    if read_only_later {
        opts.flags -= MountFlags::RDONLY;
    }
    let is_bind = opts.bind || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(plan, root, m, &opts).map(|()| false);
    }
    if is_bind {
        let source = plan.bind_sources.get(index).and_then(|u| u.as_ref());
        return mount_bind(plan, root, m, &opts, source).map(|()| false);
    }
    // A /proc or /sys that is a symlink in the image would put the kernel's
    // files somewhere the masked paths do not cover: refuse it, as runc does.
    if (typ == "proc" || typ == "sysfs") && paths::is_symlink_in_root(root, m.destination()) {
        return Err(format!(
            "{} is a symlink in the rootfs: {typ} must be mounted on ordinary directory, not on a link",
            m.destination().display()
        ));
    }
    // A tmpfs without mode= keeps the mode of the directory it covers, if
    // the image has one (runc); on a mount point made for it, the kernel's
    // default, 1777 (docker's `--tmpfs /new/dir` is world-writable).
    let covered_mode = (typ == "tmpfs" && !opts.data.split(',').any(|o| o.starts_with("mode=")))
        .then(|| paths::open_in_root(root, m.destination(), OFlags::PATH).ok())
        .flatten()
        .and_then(|fd| rustix::fs::fstat(&fd).ok())
        .map(|st| st.st_mode & 0o7777);
    let target = paths::mkdir_all_in_root(root, m.destination(), Leaf::Dir)
        .map_err(errno_ctx("creating the mount point"))?;
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let target_path = paths::proc_fd_path(target.as_fd());
    if let Some(mode) = covered_mode {
        let mode = format!("mode={mode:o}");
        opts.data = if opts.data.is_empty() {
            mode
        } else {
            format!("{},{mode}", opts.data)
        };
    }
    if opts.tmpcopyup && typ == "tmpfs" {
        return mount_tmpfs_copyup(&source, &target, &opts).map(|()| read_only_later);
    }
    let flags = opts.flags - MountFlags::from_bits_retain(libc::MS_REMOUNT as _);
    let res = rustix::mount::mount(
        source.as_str(),
        &target_path,
        typ,
        flags,
        data_cstr(&opts.data)?.as_c_str(),
    );
    match res {
        Ok(()) => {}
        // A user namespace that does not own the network namespace may not
        // mount sysfs; runc falls back to a recursive read-only bind, and so do we.
        Err(Errno::PERM) if typ == "sysfs" && plan.in_userns => {
            rustix::mount::mount_bind_recursive("/sys", &target_path)
                .map_err(errno_ctx("binding /sys"))?;
            let t = paths::open_in_root(root, m.destination(), OFlags::PATH)
                .map_err(errno_ctx("reopening"))?;
            remount(
                &paths::proc_fd_path(t.as_fd()),
                opts.flags | MountFlags::RDONLY,
                true,
            )?;
        }
        Err(e) => {
            return Err(format!(
                "mounting {typ} from {source:?}: {}",
                std::io::Error::from(e)
            ))
        }
    }
    apply_propagation(root, m.destination(), &opts)?;
    Ok(read_only_later)
}

fn data_cstr(data: &str) -> Res<CString> {
    CString::new(data).map_err(|_| "mount data contains a NUL byte".to_string())
}

fn mount_bind(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
    prepared: Option<&crate::idmap::BindSource>,
) -> Res {
    let source = m.source().as_ref().ok_or("a bind mount needs a source")?;
    let source = if source.is_absolute() {
        source.clone()
    } else {
        // runc takes relative bind sources relative to the bundle, which is our cwd.
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(source)
    };
    // The parent opened the source (an init in a user namespace may not be
    // able to), or made it a detached idmapped tree (which needs privilege
    // such an init lacks).
    let src: OwnedFd = match prepared {
        Some(p) => p
            .tree
            .try_clone()
            .map_err(|e| format!("duplicating the bind source fd: {e}"))?,
        None => rustix::fs::open(&source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno_ctx(format!("opening bind source {source:?}")))?,
    };
    let is_dir = rustix::fs::fstat(&src)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .map_err(errno_ctx("stat of the bind source"))?;
    let leaf = if is_dir { Leaf::Dir } else { Leaf::File };
    let target = paths::mkdir_all_in_root(root, m.destination(), leaf)
        .map_err(errno_ctx("creating the mount point"))?;
    let target_path = paths::proc_fd_path(target.as_fd());
    let src_path = paths::proc_fd_path(src.as_fd());
    if prepared.is_some() {
        berth_sys::mount::move_mount_to(src.as_fd(), target.as_fd())
            .map_err(|e| format!("attaching the idmapped mount: {e}"))?;
    } else if opts.recursive_bind {
        rustix::mount::mount_bind_recursive(&src_path, &target_path)
            .map_err(errno_ctx(format!("binding {source:?}")))?;
    } else {
        rustix::mount::mount_bind(&src_path, &target_path)
            .map_err(errno_ctx(format!("binding {source:?}")))?;
    }
    let extra = opts.flags - MountFlags::from_bits_retain(libc::MS_REMOUNT as _);
    if !extra.is_empty() {
        let t = paths::open_in_root(root, m.destination(), OFlags::PATH)
            .map_err(errno_ctx("reopening the mount"))?;
        remount(&paths::proc_fd_path(t.as_fd()), extra, plan.in_userns)?;
    }
    if !opts.recursive_attrs.is_empty() {
        let (set, clear) = recursive_attributes(&opts.recursive_attrs);
        let t = paths::open_in_root(root, m.destination(), OFlags::PATH)
            .map_err(errno_ctx("reopening the mount"))?;
        berth_sys::mount::set_attributes(t.as_fd(), set, clear, true)
            .map_err(|e| format!("setting {:?} recursively: {e}", opts.recursive_attrs))?;
    }
    apply_propagation(root, m.destination(), opts)
}

/// MOUNT_ATTR_* bits to set and to clear for runc's `r`-prefixed options.
fn recursive_attributes(words: &[String]) -> (u64, u64) {
    use berth_sys::mount::attr;
    let (mut set, mut clear) = (0u64, 0u64);
    for w in words {
        let (s, c) = match w.as_str() {
            "rro" => (attr::RDONLY, 0),
            "rrw" => (0, attr::RDONLY),
            "rnosuid" => (attr::NOSUID, 0),
            "rsuid" => (0, attr::NOSUID),
            "rnodev" => (attr::NODEV, 0),
            "rdev" => (0, attr::NODEV),
            "rnoexec" => (attr::NOEXEC, 0),
            "rexec" => (0, attr::NOEXEC),
            "rnodiratime" => (attr::NODIRATIME, 0),
            "rdiratime" => (0, attr::NODIRATIME),
            "rrelatime" => (attr::RELATIME, attr::ATIME_MASK),
            "rnorelatime" | "ratime" => (0, attr::ATIME_MASK),
            "rnoatime" => (attr::NOATIME, attr::ATIME_MASK),
            "rstrictatime" => (attr::STRICTATIME, attr::ATIME_MASK),
            "rnostrictatime" => (0, attr::ATIME_MASK),
            "rnosymfollow" => (attr::NOSYMFOLLOW, 0),
            "rsymfollow" => (0, attr::NOSYMFOLLOW),
            _ => (0, 0),
        };
        // A later word wins over an earlier one on the same bits.
        set = (set & !c & !s) | s;
        clear = (clear & !s & !c) | c;
    }
    (set, clear)
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks
/// in a user namespace (nosuid, nodev, noexec, atime) so it does not refuse.
fn remount(target: &Path, flags: MountFlags, keep_locked: bool) -> Res {
    let mut flags = flags | MountFlags::BIND | MountFlags::from_bits_retain(libc::MS_REMOUNT as _);
    if keep_locked {
        let st = rustix::fs::statvfs(target).map_err(errno_ctx("statvfs"))?;
        let locked = libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | libc::MS_NOATIME
            | libc::MS_NODIRATIME
            | libc::MS_RELATIME;
        flags |= MountFlags::from_bits_retain((st.f_flag.bits() as libc::c_ulong & locked) as _);
    }
    rustix::mount::mount_remount(target, flags, c"").map_err(errno_ctx("remounting"))
}

fn apply_propagation(root: BorrowedFd<'_>, dest: &Path, opts: &MountOptions) -> Res {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let t =
        paths::open_in_root(root, dest, OFlags::PATH).map_err(errno_ctx("reopening the mount"))?;
    for p in &opts.propagation {
        set_propagation(&paths::proc_fd_path(t.as_fd()), *p)
            .map_err(errno_ctx("setting propagation"))?;
    }
    Ok(())
}

/// `tmpcopyup`: a tmpfs that starts with the content of the directory it covers.
fn mount_tmpfs_copyup(source: &str, target: &OwnedFd, opts: &MountOptions) -> Res {
    let under =
        paths::reopen_dir(target.as_fd()).map_err(errno_ctx("opening the directory to copy up"))?;
    let flags = opts.flags - MountFlags::from_bits_retain(libc::MS_REMOUNT as _);
    let target_path = paths::proc_fd_path(target.as_fd());
    rustix::mount::mount(
        source,
        &target_path,
        "tmpfs",
        flags,
        data_cstr(&opts.data)?.as_c_str(),
    )
    .map_err(errno_ctx("mounting tmpfs"))?;
    // `under` still names the covered directory; the new mount is reached by path.
    let new_top = std::fs::canonicalize(&target_path).map_err(|e| e.to_string())?;
    copy_tree(&paths::proc_fd_path(under.as_fd()), &new_top).map_err(|e| format!("copying up: {e}"))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let dst = to.join(entry.file_name());
        if meta.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&entry.path(), &dst)?;
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dst)?;
            continue;
        } else if meta.is_file() {
            std::fs::copy(entry.path(), &dst)?;
        } else {
            continue;
        }
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        chown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

fn mount_cgroups(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Res {
    use berth_sys::mount::attr;
    let ro = opts.flags.contains(MountFlags::RDONLY);
    let base_flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let dest = m.destination();
    let unified_only = plan.cgroup_mounts.len() == 1 && plan.cgroup_mounts[0].fstype == "cgroup2";
    if unified_only {
        if mount_cgroup_hierarchy(plan, root, dest, &plan.cgroup_mounts[0], base_flags, ro)? {
            remount_cgroup_bind(root, dest, base_flags, ro)?;
        }
        return Ok(());
    }
    // v1 or hybrid: a tmpfs with one directory per hierarchy, as runc builds it.
    let target = paths::mkdir_all_in_root(root, dest, Leaf::Dir)
        .map_err(errno_ctx("creating the mount point"))?;
    rustix::mount::mount(
        "tmpfs",
        paths::proc_fd_path(target.as_fd()),
        "tmpfs",
        base_flags,
        c"mode=755",
    )
    .map_err(errno_ctx("mounting tmpfs for cgroups"))?;
    let mut bound = Vec::new();
    for cg in &plan.cgroup_mounts {
        let dir = dest.join(&cg.name);
        if mount_cgroup_hierarchy(plan, root, &dir, cg, base_flags, ro)? {
            bound.push(dir);
        }
        // `cpu,cpuacct` is also reachable as `cpu` and `cpuacct`.
        if cg.name.contains(',') {
            let dir =
                paths::open_in_root(root, dest, OFlags::PATH).map_err(errno_ctx("reopening"))?;
            let dir = paths::reopen_dir(dir.as_fd()).map_err(errno_ctx("reopening"))?;
            for part in cg.name.split(',') {
                match rustix::fs::symlinkat(cg.name.as_str(), &dir, part) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(format!("linking {part}: {}", std::io::Error::from(e))),
                }
            }
        }
    }
    // The tmpfs and the binds on it take their flags in one call; a
    // kernel without mount_setattr (before 5.12) gets a remount of each.
    let t = paths::open_in_root(root, dest, OFlags::PATH).map_err(errno_ctx("reopening"))?;
    let mut set = attr::NOSUID | attr::NODEV | attr::NOEXEC;
    if ro {
        set |= attr::RDONLY;
    }
    match berth_sys::mount::set_attributes(t.as_fd(), set, 0, true) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
        Err(e) => return Err(format!("setting the flags of the cgroup mounts: {e}")),
    }
    for dir in &bound {
        remount_cgroup_bind(root, dir, base_flags, ro)?;
    }
    if ro {
        remount(
            &paths::proc_fd_path(t.as_fd()),
            base_flags | MountFlags::RDONLY,
            plan.in_userns,
        )?;
    }
    Ok(())
}

/// Mounts one hierarchy at `dest`: the cgroup file system itself in a
/// cgroup namespace of the container's own, else a bind of the
/// container's cgroup directory. True for a bind, which takes its flags
/// only from a later remount (see [`remount_cgroup_bind`]).
fn mount_cgroup_hierarchy(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    dest: &Path,
    cg: &CgroupMount,
    flags: MountFlags,
    ro: bool,
) -> Res<bool> {
    let target = paths::mkdir_all_in_root(root, dest, Leaf::Dir)
        .map_err(errno_ctx("creating the mount point"))?;
    let target_path = paths::proc_fd_path(target.as_fd());
    let flags = if ro {
        flags | MountFlags::RDONLY
    } else {
        flags
    };
    if plan.new_cgroupns {
        let data = data_cstr(&cg.options)?;
        match rustix::mount::mount(
            "cgroup",
            &target_path,
            cg.fstype.as_str(),
            flags,
            data.as_c_str(),
        ) {
            Ok(()) => return Ok(false),
            // v1 hierarchies cannot be mounted from a user namespace: bind instead.
            Err(Errno::PERM) if plan.in_userns => {}
            Err(e) => {
                return Err(format!(
                    "mounting {} ({}): {}",
                    cg.fstype,
                    cg.options,
                    std::io::Error::from(e)
                ))
            }
        }
    }
    rustix::mount::mount_bind_recursive(&cg.host_dir, &target_path)
        .map_err(errno_ctx(format!("binding {:?}", cg.host_dir)))?;
    Ok(true)
}

/// Gives the bind of a hierarchy at `dest` the cgroup mount's flags.
fn remount_cgroup_bind(root: BorrowedFd<'_>, dest: &Path, flags: MountFlags, ro: bool) -> Res {
    let flags = if ro {
        flags | MountFlags::RDONLY
    } else {
        flags
    };
    let t = paths::open_in_root(root, dest, OFlags::PATH).map_err(errno_ctx("reopening"))?;
    remount(&paths::proc_fd_path(t.as_fd()), flags, true)
}

const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn create_devices(
    root: BorrowedFd<'_>,
    spec_devices: &[LinuxDevice],
    defaults: bool,
    in_userns: bool,
) -> Res {
    let mut all: Vec<LinuxDevice> = Vec::new();
    if defaults {
        for (p, major, minor) in DEFAULT_DEVICES {
            let mut d = LinuxDevice::default();
            d.set_path(PathBuf::from(p));
            d.set_typ(LinuxDeviceType::C);
            d.set_major(*major as i64);
            d.set_minor(*minor as i64);
            d.set_file_mode(Some(0o666));
            d.set_uid(Some(0));
            d.set_gid(Some(0));
            all.push(d);
        }
    }
    for d in spec_devices {
        all.retain(|x| x.path() != d.path());
        all.push(d.clone());
    }
    for d in all {
        let (path, typ, mode, uid, gid) = (
            d.path().clone(),
            d.typ(),
            d.file_mode().unwrap_or(0o666),
            d.uid(),
            d.gid(),
        );
        let (major, minor) = (d.major() as u64, d.minor() as u64);
        if !path.starts_with("/dev") {
            return Err(format!("linux.devices: {path:?} is outside /dev"));
        }
        if in_userns {
            bind_host_device(root, &path)?;
            continue;
        }
        let file_type = match typ {
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
            LinuxDeviceType::A => {
                return Err(format!(
                    "linux.devices: {path:?} has type \"a\", which is only valid in cgroup rules"
                ))
            }
        };
        let parent = path.parent().unwrap_or(Path::new("/dev"));
        let name = path
            .file_name()
            .ok_or_else(|| format!("linux.devices: bad path {path:?}"))?;
        let dir = paths::mkdir_all_in_root(root, parent, Leaf::Dir)
            .map_err(errno_ctx("creating the device directory"))?;
        let dir =
            paths::reopen_dir(dir.as_fd()).map_err(errno_ctx("opening the device directory"))?;
        match rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(format!("replacing {path:?}: {}", std::io::Error::from(e))),
        }
        let dev = rustix::fs::makedev(major as u32, minor as u32);
        rustix::fs::mknodat(
            &dir,
            name,
            file_type,
            Mode::from_raw_mode(mode & 0o7777),
            dev,
        )
        .map_err(errno_ctx(format!("creating device {path:?}")))?;
        // mknod is subject to the umask; set the mode the spec asked for exactly.
        rustix::fs::chmodat(
            &dir,
            name,
            Mode::from_raw_mode(mode & 0o7777),
            rustix::fs::AtFlags::empty(),
        )
        .map_err(errno_ctx(format!("chmod of {path:?}")))?;
        rustix::fs::chownat(
            &dir,
            name,
            uid.map(rustix::fs::Uid::from_raw),
            gid.map(rustix::fs::Gid::from_raw),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(errno_ctx(format!("chown of {path:?}")))?;
    }
    Ok(())
}

/// In a user namespace mknod is not allowed: bind the host's device instead.
fn bind_host_device(root: BorrowedFd<'_>, path: &Path) -> Res {
    let target = paths::mkdir_all_in_root(root, path, Leaf::File)
        .map_err(errno_ctx(format!("creating {path:?}")))?;
    rustix::mount::mount_bind(path, paths::proc_fd_path(target.as_fd()))
        .map_err(errno_ctx(format!("binding host device {path:?}")))
}

fn dev_symlinks(root: BorrowedFd<'_>, has_devpts: bool) -> Res {
    let dev = paths::open_in_root(root, Path::new("/dev"), OFlags::PATH)
        .map_err(errno_ctx("opening /dev"))?;
    let dev = paths::reopen_dir(dev.as_fd()).map_err(errno_ctx("opening /dev"))?;
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    if has_devpts {
        links.push(("ptmx", "pts/ptmx"));
    }
    for (name, target) in links {
        if name == "ptmx" {
            // A ptmx device node from the image or the spec gives way to the link.
            let _ = rustix::fs::unlinkat(&dev, name, rustix::fs::AtFlags::empty());
        }
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(format!("creating /dev/{name}: {}", std::io::Error::from(e))),
        }
    }
    Ok(())
}

/// Before a chroot (`--no-pivot`): the host's mounts stay in the mount
/// namespace, below the new root. The kernel lets a new procfs or sysfs be
/// mounted (say by a process that makes its own user and pid namespaces)
/// only where a fully visible one already exists in the namespace, and the
/// host's /proc and /sys are exactly that. Detach every full proc and sysfs
/// mount outside the rootfs (as slaves first, so the host keeps its own),
/// or cover it with an empty tmpfs where detaching is not allowed.
fn hide_full_proc_and_sysfs_outside(rootfs: &Path) -> Res {
    // mountinfo shows resolved paths: compare with the rootfs's.
    let rootfs = std::fs::canonicalize(rootfs)
        .map_err(|e| format!("resolving {}: {e}", rootfs.display()))?;
    let targets: Vec<PathBuf> = mount_table()?
        .into_iter()
        .filter(|m| m.root == "/" && matches!(m.fs_type.as_str(), "proc" | "sysfs"))
        .map(|m| PathBuf::from(m.mount_point))
        .filter(|mount_point| !mount_point.starts_with(&rootfs))
        .collect();
    for target in targets {
        match rustix::mount::mount_change(
            &target,
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        ) {
            // Gone with a parent detached before it.
            Err(Errno::NOENT) => continue,
            r => r.map_err(errno_ctx(format!("making {} a slave", target.display())))?,
        }
        match rustix::mount::unmount(&target, UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(Errno::INVAL | Errno::PERM) => {
                rustix::mount::mount("tmpfs", &target, "tmpfs", MountFlags::empty(), None)
                    .map_err(errno_ctx(format!("covering {}", target.display())))?
            }
            Err(e) => {
                return Err(format!(
                    "detaching {}: {}",
                    target.display(),
                    std::io::Error::from(e)
                ))
            }
        }
    }
    Ok(())
}

/// Makes `rootfs` the root: pivot_root, or (with `no_pivot`) MS_MOVE + chroot.
pub fn enter(rootfs: &Path, no_pivot: bool) -> Res {
    rustix::process::chdir(rootfs).map_err(errno_ctx("entering the rootfs"))?;
    if no_pivot {
        hide_full_proc_and_sysfs_outside(rootfs)?;
        rustix::mount::mount_move(".", "/").map_err(errno_ctx("moving the rootfs to /"))?;
        rustix::process::chroot(".").map_err(errno_ctx("chroot"))?;
    } else {
        let old_root = rustix::fs::open(
            "/",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_ctx("opening /"))?;
        rustix::process::pivot_root(".", ".").map_err(errno_ctx("pivot_root"))?;
        // The old root now sits on top of the new one; detach it without
        // letting the unmount propagate back to the host.
        rustix::process::fchdir(&old_root).map_err(errno_ctx("fchdir"))?;
        rustix::mount::mount_change(
            ".",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )
        .map_err(errno_ctx("making the old root a slave"))?;
        rustix::mount::unmount(".", UnmountFlags::DETACH)
            .map_err(errno_ctx("detaching the old root"))?;
    }
    rustix::process::chdir("/").map_err(errno_ctx("chdir /"))
}

/// After pivot_root: masked paths, read-only paths, a read-only root, and
/// the root's propagation if it was asked to be shared.
pub fn finish(spec: &Spec, in_userns: bool) -> Res {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_ctx("opening /"))?;
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(root.as_fd(), Path::new(p), in_userns)
            .map_err(|e| format!("linux.readonlyPaths: {p}: {e}"))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(root.as_fd(), Path::new(p))
            .map_err(|e| format!("linux.maskedPaths: {p}: {e}"))?;
    }
    if let Some(prop) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        set_propagation(Path::new("/"), prop).map_err(errno_ctx("setting rootfsPropagation"))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount(Path::new("/"), MountFlags::RDONLY, true)?;
    }
    Ok(())
}

fn readonly_path(root: BorrowedFd<'_>, path: &Path, in_userns: bool) -> Res {
    let fd = match paths::open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(std::io::Error::from(e).to_string()),
    };
    let p = paths::proc_fd_path(fd.as_fd());
    rustix::mount::mount_bind_recursive(&p, &p).map_err(errno_ctx("binding"))?;
    let top = paths::open_in_root(root, path, OFlags::PATH).map_err(errno_ctx("reopening"))?;
    remount(
        &paths::proc_fd_path(top.as_fd()),
        MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        in_userns,
    )
}

fn mask_path(root: BorrowedFd<'_>, path: &Path) -> Res {
    let fd = match paths::open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(std::io::Error::from(e).to_string()),
    };
    let target = paths::proc_fd_path(fd.as_fd());
    let is_dir = rustix::fs::fstat(&fd)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .map_err(errno_ctx("stat"))?;
    if is_dir {
        rustix::mount::mount("tmpfs", &target, "tmpfs", MountFlags::RDONLY, c"size=0k")
            .map_err(errno_ctx("mounting an empty tmpfs"))
    } else {
        rustix::mount::mount_bind("/dev/null", &target).map_err(errno_ctx("binding /dev/null"))
    }
}
