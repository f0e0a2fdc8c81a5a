//! Root filesystems built at test time from what the machine has installed.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

static SHARED_ROOTFS: OnceLock<PathBuf> = OnceLock::new();

/// A shared, read-only busybox rootfs, built once per test process and
/// removed when the process exits. Containers use it with
/// `root.readonly: true`; tests that need to change the rootfs take a
/// private copy with [`private_busybox_rootfs`].
pub fn busybox_rootfs() -> &'static Path {
    SHARED_ROOTFS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-it-rootfs-{}", std::process::id()));
        build_busybox_rootfs(&dir)
            .expect("building the busybox rootfs (is busybox-static installed?)");
        // A static is never dropped, so the test process removes the
        // rootfs on its way out: libtest's exit runs atexit handlers.
        berth_sys::process::at_exit(remove_shared_rootfs)
            .expect("registering the shared rootfs's removal");
        dir
    })
}

extern "C" fn remove_shared_rootfs() {
    if let Some(dir) = SHARED_ROOTFS.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A writable copy of the busybox rootfs inside `parent`.
pub fn private_busybox_rootfs(parent: &Path) -> PathBuf {
    let dir = parent.join("rootfs");
    build_busybox_rootfs(&dir).expect("building a private busybox rootfs");
    dir
}

/// Lays out a minimal busybox system: /bin with every applet, /etc files, empty mount points.
pub fn build_busybox_rootfs(dir: &Path) -> std::io::Result<()> {
    if dir.join("bin/busybox").exists() {
        return Ok(());
    }
    let tmp = dir.with_extension("building");
    let _ = std::fs::remove_dir_all(&tmp);
    for sub in [
        "bin", "proc", "sys", "dev", "etc", "tmp", "root", "usr/bin", "sbin",
    ] {
        std::fs::create_dir_all(tmp.join(sub))?;
    }
    std::fs::copy(BUSYBOX, tmp.join("bin/busybox"))?;
    let list = std::process::Command::new(BUSYBOX).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        // `busybox --list` names busybox itself: do not replace the binary.
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = symlink("busybox", tmp.join("bin").join(applet));
    }
    std::fs::write(
        tmp.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(
        tmp.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )?;
    std::fs::set_permissions(
        tmp.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    std::fs::rename(&tmp, dir)
}
