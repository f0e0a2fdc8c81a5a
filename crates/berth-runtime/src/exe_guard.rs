//! Protection against overwriting the runtime binary from inside a
//! container (CVE-2019-5736).
//!
//! berth never re-execs itself on the container path, so between clone and
//! execve the container's init *is* this binary. A container that makes its
//! program a script starting `#!/proc/self/exe` gets the kernel to run this
//! binary inside the container, where a process can keep /proc/<pid>/exe
//! open and, once it exits, write to the host file through it. So before
//! entering any container, the runtime makes sure the file it runs from
//! cannot be written:
//! - it already is on a read-only mount (nothing to do), or
//! - a read-only copy made earlier this boot exists under [`CACHE_DIR`]
//!   (a file bind-mounted read-only onto itself, one slot per installed
//!   path, its sidecar naming the binary version and path): re-exec from
//!   it, which costs one execve of a binary already in the page cache; or
//! - make (or refresh) that copy now, then re-exec from it; or, if that fails,
//! - copy the binary into a sealed memfd and re-exec from that (slowest).
//!
//! A magic link through /proc/<pid>/exe carries the read-only mount (or
//! the write seal), so the write fails with EROFS (or EPERM).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::{MemfdFlags, SealFlags, StatVfsMountFlags};

/// Per-boot read-only copies of the runtime: one slot per installed path,
/// refreshed when the binary at that path changes.
pub const CACHE_DIR: &str = "/run/berth-runtime-exe";

/// Returns when the running binary is safe; otherwise re-execs and does not return.
pub fn ensure_unwritable_exe() -> Result<()> {
    if is_sealed_memfd() || on_read_only_mount(Path::new("/proc/self/exe")) {
        return Ok(());
    }
    let source = std::fs::read_link("/proc/self/exe").context("reading /proc/self/exe")?;
    let meta = std::fs::metadata("/proc/self/exe").context("stat of /proc/self/exe")?;
    // Which binary this is: a rebuilt or upgraded one at the same path
    // replaces the slot's copy instead of adding another.
    let version = format!(
        "{} {} {} {}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000
    );
    let slot = Path::new(CACHE_DIR).join(format!(
        "berth-runtime-{:016x}",
        fnv1a(source.as_os_str().as_bytes())
    ));
    if !slot_is_current(&slot, &version) {
        if let Err(e) = refresh_slot(&slot, &source, &version) {
            tracing::debug!("read-only copy at {slot:?} failed ({e:#}); using a sealed memfd");
            return reexec_from_memfd();
        }
    }
    let path = CString::new(slot.as_os_str().as_bytes()).expect("no NUL in the cache path");
    let (args, env) = args_and_env();
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(|e| e.as_c_str()).collect();
    let err = berth_sys::process::execve(&path, &argv, &envp);
    Err(err).with_context(|| format!("re-executing from {slot:?}"))
}

/// The sidecar beside a slot: the version it holds, then the path it copies.
fn sidecar(slot: &Path) -> PathBuf {
    slot.with_extension("src")
}

fn slot_is_current(slot: &Path, version: &str) -> bool {
    on_read_only_mount(slot)
        && std::fs::read_to_string(sidecar(slot)).is_ok_and(|s| s.lines().next() == Some(version))
}

/// Puts a read-only copy of the running binary in `slot`, replacing an
/// older one: copy, rename into place, bind-mount read-only onto itself.
/// A lock keeps concurrent invocations from stacking mounts. Processes
/// still running the old copy keep it (the old mount is only detached).
fn refresh_slot(slot: &Path, source: &Path, version: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = slot.parent().expect("the cache path has a parent");
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let lock = std::fs::File::create(slot.with_extension("lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    if slot_is_current(slot, version) {
        return Ok(());
    }
    while on_read_only_mount(slot) {
        rustix::mount::unmount(slot, rustix::mount::UnmountFlags::DETACH)?;
    }
    let tmp: PathBuf = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::copy("/proc/self/exe", &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    std::fs::rename(&tmp, slot)?;
    std::fs::write(sidecar(slot), format!("{version}\n{}\n", source.display()))?;
    rustix::mount::mount_bind(slot, slot)?;
    rustix::mount::mount_remount(
        slot,
        rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
        c"",
    )?;
    anyhow::ensure!(
        on_read_only_mount(slot),
        "{slot:?} is not read-only after remounting"
    );
    Ok(())
}

/// FNV-1a: a stable name for a slot from the binary's path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn reexec_from_memfd() -> Result<()> {
    let mut src = std::fs::File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let memfd = rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .context("memfd_create")?;
    let mut dst = std::fs::File::from(memfd);
    std::io::copy(&mut src, &mut dst).context("copying the runtime into a memfd")?;
    rustix::fs::fcntl_add_seals(
        &dst,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .context("sealing the memfd")?;
    let (args, env) = args_and_env();
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(|e| e.as_c_str()).collect();
    let err = berth_sys::process::fexecve(dst.as_fd(), &argv, &envp);
    Err(err).context("re-executing from the sealed copy")
}

fn args_and_env() -> (Vec<CString>, Vec<CString>) {
    let args = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).expect("arguments have no NUL"))
        .collect();
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("environment has no NUL")
        })
        .collect();
    (args, env)
}

fn is_sealed_memfd() -> bool {
    std::fs::read_link("/proc/self/exe").is_ok_and(|p| {
        p.as_os_str()
            .as_bytes()
            .starts_with(b"/memfd:berth-runtime")
    })
}

fn on_read_only_mount(path: &Path) -> bool {
    rustix::fs::statvfs(path).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY))
}
