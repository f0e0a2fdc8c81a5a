//! Specs made by `berth_daemon::spec` run as expected under the real
//! runtimes: berth-runtime (target/<profile>/berth-runtime, built beside
//! this test) and, when installed, runc. Each container prints what it sees
//! (identity, directory, hostname, environment, limits, mounts, security
//! settings) and exits with a code of its own; the test compares.
//!
//! Needs root, Debian's busybox-static (/bin/busybox) and the runtime
//! binary; without them it prints why and passes.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_api::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use berth_daemon::spec::{self, EtcFiles, SpecInput};
use berth_image::config::RunConfig;
use berth_image::ImageConfig;

const BUSYBOX: &str = "/bin/busybox";

/// A minimal busybox system: /bin with every applet, /etc files, mount points.
fn busybox_rootfs(dir: &Path) {
    for sub in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = symlink("busybox", dir.join("bin").join(applet));
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntty:x:5:\nstaff:x:50:nobody\nnogroup:x:65534:\n",
    )
    .unwrap();
}

fn binary_beside_tests(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/<test>")
        .join(name)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// One container: a bundle with the generated config.json.
struct Case {
    name: &'static str,
    body: ContainerCreateBody,
    image: ImageConfig,
    /// Lines the container must print, in order.
    expect: Vec<String>,
    exit: i32,
}

fn image() -> ImageConfig {
    ImageConfig {
        config: Some(RunConfig {
            env: Some(s(&["PATH=/bin", "FROM_IMAGE=yes"])),
            cmd: Some(s(&["sh"])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn cases(data: &Path) -> Vec<Case> {
    let nobody_script = r#"
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
echo "pwd=$(pwd)"
echo "hostname=$(hostname) file=$(cat /etc/hostname)"
echo "env=$HOSTNAME $FROM_IMAGE $GREETING"
grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status | tr -s '\t ' ' '
echo "nofile=$(ulimit -n) hard=$(ulimit -Hn)"
cat /data/hello
touch /scratch/x && echo scratch=rw
touch /fresh/x && echo fresh=rw
echo "net=$(ls /sys/class/net | tr '\n' ' ')"
[ -s /proc/kcore ] && echo kcore=visible || echo kcore=masked
exit 3
"#;
    let root_script = r#"
echo "uid=$(id -u)"
grep -E '^(CapBnd|CapEff):' /proc/self/status | tr -s '\t ' ' '
touch /newfile 2>/dev/null && echo root=rw || echo root=ro
touch /data/x 2>/dev/null && echo data=rw || echo data=ro
echo "shm=$(df -k /dev/shm | tail -n 1 | awk '{print $2}')"
mount | grep -q ' /sys/fs/cgroup ' && echo cgroup=mounted
test -c /dev/null && echo dev=ok
exit 0
"#;
    vec![
        Case {
            name: "nobody",
            body: ContainerCreateBody {
                hostname: Some("spec-test".into()),
                user: Some("nobody".into()),
                working_dir: Some("/work/dir".into()),
                env: Some(s(&["GREETING=hello"])),
                cmd: Some(s(&["sh", "-c", nobody_script])),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    binds: Some(vec![format!("{}:/data:ro", data.display())]),
                    // /fresh is not in the image: its mount point is made
                    // for it, and a tmpfs without mode= is then world-writable.
                    tmpfs: Some(
                        [
                            ("/scratch".to_string(), "size=1m,mode=1777".to_string()),
                            ("/fresh".to_string(), "size=1m".to_string()),
                        ]
                        .into(),
                    ),
                    memory: Some(64 << 20),
                    pids_limit: Some(32),
                    ulimits: Some(vec![ResourcesUlimits {
                        name: Some("nofile".into()),
                        soft: Some(100),
                        hard: Some(200),
                    }]),
                    security_opt: Some(s(&["no-new-privileges"])),
                    ..Default::default()
                }),
                ..Default::default()
            },
            image: image(),
            expect: s(&[
                "uid=65534 gid=65534 groups=65534 50",
                "pwd=/work/dir",
                "hostname=spec-test file=spec-test",
                "env=spec-test yes hello",
                "CapEff: 0000000000000000",
                "NoNewPrivs: 1",
                "Seccomp: 2",
                "nofile=100 hard=200",
                "hello from the host",
                "scratch=rw",
                "fresh=rw",
                "net=lo ",
                "kcore=masked",
            ]),
            exit: 3,
        },
        Case {
            name: "root",
            body: ContainerCreateBody {
                cmd: Some(s(&["sh", "-c", root_script])),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    readonly_rootfs: Some(true),
                    binds: Some(vec![format!("{}:/data:ro", data.display())]),
                    shm_size: Some(8 << 20),
                    cap_drop: Some(s(&["NET_RAW"])),
                    ..Default::default()
                }),
                ..Default::default()
            },
            image: image(),
            expect: s(&[
                "uid=0",
                // docker's default set less CAP_NET_RAW (bit 13).
                "CapEff: 00000000a80405fb",
                "CapBnd: 00000000a80405fb",
                "root=ro",
                "data=ro",
                "shm=8192",
                "cgroup=mounted",
                "dev=ok",
            ]),
            exit: 0,
        },
    ]
}

fn run_case(runtime: &Path, name: &str, work: &Path, rootfs: &Path, case: &Case, n: usize) {
    // A docker-style 64-hex id, unique per test process and container.
    let id = format!("{:08x}{:056x}", std::process::id(), n);
    let etc_dir = work.join(format!("etc-{name}-{}", case.name));
    std::fs::create_dir_all(&etc_dir).unwrap();
    let etc = EtcFiles {
        hosts: etc_dir.join("hosts"),
        hostname: etc_dir.join("hostname"),
        resolv_conf: etc_dir.join("resolv.conf"),
    };
    let hostname = spec::hostname(&case.body, &id);
    std::fs::write(
        &etc.hosts,
        format!("127.0.0.1\tlocalhost\n127.0.0.1\t{hostname}\n"),
    )
    .unwrap();
    std::fs::write(&etc.hostname, format!("{hostname}\n")).unwrap();
    std::fs::write(&etc.resolv_conf, "").unwrap();

    let warnings = spec::validate(&case.body, &case.image).unwrap();
    // Only a host without swap accounting may warn (the limit is dropped).
    assert!(
        warnings
            .iter()
            .all(|w| w.starts_with("Your kernel does not support")),
        "{warnings:?}"
    );
    let cgroups_path = spec::cgroups_path(&case.body, &id);
    let generated = spec::generate(&SpecInput {
        id: &id,
        body: &case.body,
        image: &case.image,
        rootfs,
        etc: &etc,
        cgroups_path: &cgroups_path,
        network_namespace: None,
        joined: &spec::Joined::default(),
        shm: None,
        init: None,
        recursive_read_only: false,
    })
    .unwrap();
    let bundle = work.join(format!("bundle-{name}-{}", case.name));
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&generated).unwrap(),
    )
    .unwrap();

    let state = work.join(format!("state-{name}"));
    let out = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    let want: Vec<&str> = case.expect.iter().map(|l| l.trim_end()).collect();
    assert_eq!(
        (lines.as_slice(), out.status.code()),
        (want.as_slice(), Some(case.exit)),
        "{name} running {}:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        case.name
    );
    // `run` deletes the container; make sure, for a failing runtime too.
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .output();
}

#[test]
fn generated_specs_run_under_berth_runtime_and_runc() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: running containers needs root");
        return;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: {BUSYBOX} is missing (install busybox-static)");
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("berth-spec-runtime-")
        .tempdir()
        .unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "hello from the host\n").unwrap();

    let mut runtimes = Vec::new();
    let berth = binary_beside_tests("berth-runtime");
    if berth.exists() {
        runtimes.push(("berth-runtime", berth));
    } else {
        eprintln!(
            "skipped berth-runtime: {} is not built (cargo build -p berth-runtime with this profile)",
            berth.display()
        );
    }
    let runc = PathBuf::from("/usr/sbin/runc");
    if runc.exists() {
        runtimes.push(("runc", runc));
    } else {
        eprintln!("skipped runc: /usr/sbin/runc is not installed");
    }
    let mut n = 0;
    for (name, runtime) in &runtimes {
        // A rootfs per runtime: runc 1.1 gives a tmpfs the mode of a
        // mount point that exists already, over its mode= option.
        let rootfs = work.path().join(format!("rootfs-{name}"));
        busybox_rootfs(&rootfs);
        for case in cases(&data) {
            n += 1;
            run_case(runtime, name, work.path(), &rootfs, &case, n);
        }
        // The working directory was made inside the rootfs.
        assert!(rootfs.join("work/dir").is_dir());
    }
    // What the runs keep by design: berth-runtime's read-only copy of
    // itself and the default cgroup parent (empty now), neither ours to keep.
    berth_sys::exe_copy::remove_copy(&binary_beside_tests("berth-runtime"));
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(
            h.path()
                .join(spec::DEFAULT_CGROUP_PARENT.trim_start_matches('/')),
        );
    }
}
