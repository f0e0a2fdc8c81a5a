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
//!   (a file bind-mounted read-only onto itself): re-exec from it, which
//!   costs one execve of a binary already in the page cache; or
//! - make that copy now, then re-exec from it; or, if that fails,
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

/// Per-boot read-only copies of the runtime, one per binary version.
pub const CACHE_DIR: &str = "/run/berth-runtime-exe";

/// Returns when the running binary is safe; otherwise re-execs and does not return.
pub fn ensure_unwritable_exe() -> Result<()> {
    if is_sealed_memfd() || on_read_only_mount(Path::new("/proc/self/exe")) {
        return Ok(());
    }
    let meta = std::fs::metadata("/proc/self/exe").context("stat of /proc/self/exe")?;
    let copy = Path::new(CACHE_DIR).join(format!(
        "berth-runtime-{}-{}-{}-{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000
    ));
    if !on_read_only_mount(&copy) {
        if let Err(e) = make_read_only_copy(&copy) {
            tracing::debug!("read-only copy at {copy:?} failed ({e:#}); using a sealed memfd");
            return reexec_from_memfd();
        }
    }
    let path = CString::new(copy.as_os_str().as_bytes()).expect("no NUL in the cache path");
    let (args, env) = args_and_env();
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(|e| e.as_c_str()).collect();
    let err = berth_sys::process::execve(&path, &argv, &envp);
    Err(err).with_context(|| format!("re-executing from {copy:?}"))
}

/// Copies /proc/self/exe to `copy` and bind-mounts it read-only onto itself.
fn make_read_only_copy(copy: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = copy.parent().expect("the cache path has a parent");
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp: PathBuf = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::copy("/proc/self/exe", &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    // Another invocation may have made (and mounted) it meanwhile: then
    // rename fails with EBUSY and its copy is used.
    if let Err(e) = std::fs::rename(&tmp, copy) {
        let _ = std::fs::remove_file(&tmp);
        if on_read_only_mount(copy) {
            return Ok(());
        }
        return Err(e.into());
    }
    rustix::mount::mount_bind(copy, copy)?;
    rustix::mount::mount_remount(
        copy,
        rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
        c"",
    )?;
    anyhow::ensure!(
        on_read_only_mount(copy),
        "{copy:?} is not read-only after remounting"
    );
    Ok(())
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
