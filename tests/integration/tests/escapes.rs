//! The known container escapes, each tried for real against berth-runtime
//! (and, where berthd's embedded path differs, against berthd).

use std::io::Read;

use berth_integration::daemon::Berthd;
use berth_integration::require_root;
use berth_integration::runtime::TestEnv;
use serde_json::json;
use sha2::{Digest, Sha256};

fn sha256_file(path: &std::path::Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).unwrap();
    hex::encode(Sha256::digest(&buf))
}

/// CVE-2024-21626: fds of the runtime leaked into the container, and a
/// working directory reached through one of them (/proc/self/fd/N).
#[test]
fn no_runtime_fd_leaks_into_the_container() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("fdleak");
    let b = env.bundle(&["ls", "/proc/self/fd"]);
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    let fds: Vec<&str> = out.lines().collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "only stdio and ls's own directory fd"
    );
    env.finish();
}

#[test]
fn a_cwd_through_proc_self_fd_cannot_leave_the_rootfs() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("fdcwd");
    for fd in 3..10 {
        let mut b = env.bundle(&["sh", "-c", "pwd; ls .. | head -3"]);
        b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}")));
        let (code, out, err) = env.run(&b);
        // Either refused, or the directory is inside the container (busybox's rootfs has no /home).
        if code == 0 {
            assert!(
                !out.contains("home") && !out.contains("work"),
                "fd {fd}: host directory reached: {out}"
            );
        } else {
            assert!(
                err.contains("process.cwd"),
                "fd {fd}: refused with a clear error: {err}"
            );
        }
    }
    env.finish();
}

/// CVE-2019-5736: a process in the container holds /proc/<pid>/exe of the
/// runtime (here: the init before `start`) and writes to it once the
/// runtime no longer runs from it.
#[test]
fn the_runtime_binary_cannot_be_overwritten_from_the_container() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("exe");
    // Attack a copy, so a failure cannot break the build.
    let copy = env.dir.path().join("berth-runtime");
    std::fs::copy(&env.binary, &copy).unwrap();
    env.binary = copy.clone();
    let before = sha256_file(&copy);
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["create", "--bundle", b.path(), &id]);
    // The init (pid 1) is still the runtime binary: try to keep a handle on it.
    let attack = "exec 3</proc/1/exe || exit 1; echo opened; sleep 1; echo pwned > /proc/self/fd/3 && echo wrote";
    env.rt_ok(&["exec", "--detach", &id, "sh", "-c", attack]);
    env.rt_ok(&["start", &id]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        sha256_file(&copy),
        before,
        "the runtime binary was overwritten from inside the container"
    );
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

/// CVE-2021-30465: a mount destination that runs through a symlink in the
/// rootfs must land inside the rootfs, never on the host.
#[test]
fn mount_targets_through_symlinks_stay_in_the_rootfs() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("symlinkmount");
    let rootfs = berth_integration::fixtures::private_busybox_rootfs(env.dir.path());
    let host_target = env.dir.path().join("host-target");
    std::fs::create_dir(&host_target).unwrap();
    std::fs::create_dir_all(rootfs.join("inside")).unwrap();
    // /escape -> an absolute host path; /up -> a chain of ".."s.
    std::os::unix::fs::symlink(&host_target, rootfs.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", rootfs.join("up")).unwrap();
    let mut b = env.bundle(&[
        "sh",
        "-c",
        "ls -d /escape/x /inside/y 2>&1; mount | grep -c 'on /tmp/berth-it' || true",
    ]);
    let up_dest = format!("/up{}", host_target.join("viaup").display());
    b.edit(|c| {
        c["root"]["path"] = json!(rootfs);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"}));
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": up_dest, "type": "tmpfs", "source": "tmpfs"}));
    });
    let (code, _, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(
        !host_target.join("x").exists(),
        "a mount point was created on the host through /escape"
    );
    assert!(
        !host_target.join("viaup").exists(),
        "a mount point was created on the host through .."
    );
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(host_target.to_str().unwrap()),
        "something is mounted on the host target"
    );
    env.finish();
}

/// A /proc that is a symlink in the image would put procfs outside the
/// masked paths: refused.
#[test]
fn proc_on_a_symlink_is_refused() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("procsymlink");
    let rootfs = berth_integration::fixtures::private_busybox_rootfs(env.dir.path());
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    std::fs::create_dir(rootfs.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", rootfs.join("proc")).unwrap();
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["root"]["path"] = json!(rootfs));
    let (code, _, err) = env.run(&b);
    assert_eq!(code, 1);
    assert!(err.contains("/proc is a symlink"), "{err}");
    env.finish();
}

/// CVE-2019-5736 through berthd: the shim embeds the runtime, so a
/// container's init and an exec'd process run the shim's binary until
/// their execve. A program whose interpreter is /proc/self/exe would have
/// the kernel run that binary inside the container, where another process
/// of the container could hold its /proc/PID/exe and write to it once it
/// exits. Tried for an entrypoint and an exec, with a watcher in the
/// container holding any process that is not busybox; the shim (a copy, so
/// a failure cannot break the build) must be unchanged. berthd runs shims
/// from a read-only copy of their binary, so even a kernel that let the
/// interpreter through would leave nothing to write.
#[test]
fn the_shim_binary_cannot_be_overwritten_from_a_container() {
    if !require_root() {
        return;
    }
    let bins = tempfile::tempdir().unwrap();
    for name in ["berthd", "berth-shim", "berth-init", "berth-dns"] {
        let from = berth_integration::runtime::berth_binary(name);
        std::fs::copy(&from, bins.path().join(name)).unwrap();
    }
    let shim = bins.path().join("berth-shim");
    let before = sha256_file(&shim);
    let files = tempfile::tempdir().unwrap();
    let watch = files.path().join("watch.sh");
    std::fs::write(
        &watch,
        r#"while true; do
  for p in /proc/[0-9]*; do
    e=$(readlink $p/exe 2>/dev/null) || continue
    case "$e" in *busybox*|"") continue;; esac
    exec 3<$p/exe || continue
    echo "held $e" >> /tmp/log
    while [ -d $p ]; do :; done
    sleep 0.2
    echo pwned > /proc/self/fd/3 && echo wrote >> /tmp/log
  done
done
"#,
    )
    .unwrap();
    let evil = files.path().join("evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let evil_mount = format!("{}:/evil:ro", evil.display());

    let d = Berthd::with_busybox_from(bins.path());
    let watcher = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-v",
        &format!("{}:/watch.sh:ro", watch.display()),
        "-v",
        &evil_mount,
        "bb:1",
        "sh",
        "/watch.sh",
    ]);
    let watcher = watcher.trim();
    // Shims run from a read-only copy, so no link to their file can write it.
    let exec_root = d.exec_root.as_os_str().as_encoded_bytes().to_vec();
    let shims: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.starts_with(shim.as_os_str().as_encoded_bytes())
                && cmdline.windows(exec_root.len()).any(|w| w == exec_root)
        })
        .collect();
    assert!(!shims.is_empty(), "no shim of the watcher found");
    for pid in shims {
        let exe = std::path::PathBuf::from(format!("/proc/{pid}/exe"));
        assert!(
            berth_sys::exe_copy::on_read_only_mount(&exe),
            "shim {pid} runs from a writable file: {:?}",
            std::fs::read_link(&exe)
        );
    }
    // An exec'd program, and an entrypoint, whose interpreter is /proc/self/exe.
    let exec = d.docker(&["exec", watcher, "/evil"]);
    assert!(!exec.status.success(), "the exec of /evil succeeded");
    let run = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &evil_mount,
        "bb:1",
        "/evil",
    ]);
    assert!(!run.status.success(), "the run of /evil succeeded");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let log = d.docker(&["exec", watcher, "cat", "/tmp/log"]);
    assert_eq!(
        sha256_file(&shim),
        before,
        "the shim binary was overwritten from inside the container (watcher: {})",
        String::from_utf8_lossy(&log.stdout)
    );
    d.docker_ok(&["rm", "-f", watcher]);
    d.stop();
    berth_sys::exe_copy::remove_copy(&shim);
}
