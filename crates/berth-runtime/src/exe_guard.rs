//! Protection against overwriting the runtime binary from inside a
//! container (CVE-2019-5736).
//!
//! berth never re-execs itself on the container path, so between clone and
//! execve the container's init *is* this binary. A container that makes its
//! program a script starting `#!/proc/self/exe` would get the kernel to run
//! this binary again inside the container, where a process can open
//! /proc/<pid>/exe and, once it exits, write to the host file. So before
//! entering any container, the runtime makes sure the file it runs from
//! cannot be written: it is on a read-only mount (an install that
//! bind-mounts it read-only pays nothing), or else it copies itself once
//! into a sealed memfd and re-execs from that.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};
use rustix::fs::{MemfdFlags, SealFlags, StatVfsMountFlags};

/// Returns when the running binary is safe; otherwise does not return (re-execs).
pub fn ensure_unwritable_exe() -> Result<()> {
    if is_sealed_copy() || on_read_only_mount() {
        return Ok(());
    }
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
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).expect("arguments have no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("environment has no NUL")
        })
        .collect();
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(|e| e.as_c_str()).collect();
    let err = berth_sys::process::fexecve(dst.as_fd(), &argv, &envp);
    Err(err).context("re-executing from the sealed copy")
}

fn is_sealed_copy() -> bool {
    std::fs::read_link("/proc/self/exe").is_ok_and(|p| {
        p.as_os_str()
            .as_bytes()
            .starts_with(b"/memfd:berth-runtime")
    })
}

fn on_read_only_mount() -> bool {
    rustix::fs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY))
}
