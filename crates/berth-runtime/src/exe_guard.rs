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
//! - a read-only copy made earlier this boot exists
//!   ([`berth_sys::exe_copy`]: a file bind-mounted read-only onto itself,
//!   one slot per installed path): re-exec from it, which costs one execve
//!   of a binary already in the page cache; or
//! - make (or refresh) that copy now, then re-exec from it; or, if that fails,
//! - copy the binary into a sealed memfd and re-exec from that (slowest).
//!
//! A magic link through /proc/<pid>/exe carries the read-only mount (or
//! the write seal), so the write fails with EROFS (or EPERM).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use berth_sys::exe_copy::on_read_only_mount;
use rustix::fs::{MemfdFlags, SealFlags};

/// Returns when the running binary is safe; otherwise re-execs and does not return.
pub fn ensure_unwritable_exe() -> Result<()> {
    if is_sealed_memfd() || on_read_only_mount(Path::new("/proc/self/exe")) {
        return Ok(());
    }
    let source = std::fs::read_link("/proc/self/exe").context("reading /proc/self/exe")?;
    let slot = match berth_sys::exe_copy::read_only_copy(&source) {
        Ok(slot) => slot,
        Err(e) => {
            tracing::debug!("read-only copy of {source:?} failed ({e:#}); using a sealed memfd");
            return reexec_from_memfd();
        }
    };
    let path = CString::new(slot.as_os_str().as_bytes()).expect("no NUL in the cache path");
    let (args, env) = args_and_env();
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(|e| e.as_c_str()).collect();
    let err = berth_sys::process::execve(&path, &argv, &envp);
    Err(err).with_context(|| format!("re-executing from {slot:?}"))
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
