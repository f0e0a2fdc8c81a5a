//! Real callers of berth-runtime: Debian's dockerd (through its containerd
//! and containerd's runc shim) and podman (through conmon). Each peer runs
//! in a temp dir of its own (data, state, sockets, config) with a cgroup
//! parent of its own, so a test disturbs nothing else on the host and can
//! check at the end that nothing of it remains.

use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fixtures;
use crate::leaks::{find_leaks, LeakScope};
use crate::runtime::berth_binary;

/// Debian's docker client; /usr/local/bin/docker may be another build.
pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const PODMAN: &str = "/usr/bin/podman";

/// The name under which dockerd knows berth-runtime.
pub const DOCKER_RUNTIME_NAME: &str = "berth";

/// berth-runtime's default state root: podman passes no `--root` (and its
/// cleanup process drops `--runtime-flag`s), so podman's containers live here.
pub const BERTH_DEFAULT_ROOT: &str = "/run/berth-runtime";

/// Any one client call taking longer than this is a hang: `timeout` ends it.
const CLIENT_TIMEOUT_SECS: u32 = 120;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "berth-it-{}-{}-{n}",
        name.replace('_', "-"),
        std::process::id()
    )
}

/// Installs the Debian `package` that provides `binary` unless it is there.
/// `Err` says why apt failed: the caller skips with that reason.
pub fn ensure_installed(binary: &str, package: &str) -> Result<(), String> {
    // One apt at a time within this test process; across processes apt's
    // own lock (waited for, not failed on) serialises.
    static APT: Mutex<()> = Mutex::new(());
    let _guard = APT.lock().unwrap_or_else(|e| e.into_inner());
    if Path::new(binary).exists() {
        return Ok(());
    }
    eprintln!("{binary} is missing: installing Debian's {package}");
    let apt = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "-q", "-y"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running apt-get {args:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "apt-get {args:?} failed with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    apt(&["update"])?;
    apt(&["install", package])?;
    if Path::new(binary).exists() {
        Ok(())
    } else {
        Err(format!(
            "apt-get installed {package} but {binary} is still missing"
        ))
    }
}

/// A tar of the test kit's busybox rootfs, for `docker import` / `podman import`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("busybox-rootfs");
    fixtures::build_busybox_rootfs(&rootfs)
        .expect("building the busybox rootfs (is busybox-static installed?)");
    let tar = dir.join("busybox.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("--numeric-owner")
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("running tar");
    assert!(
        out.status.success(),
        "tar of {}: {}",
        rootfs.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&rootfs).expect("removing the rootfs after tarring it");
    tar
}

/// Runs `program args` under `timeout`, so a hung client fails the test
/// instead of blocking the suite.
fn run_bounded(program: &str, args: &[String]) -> Output {
    Command::new("timeout")
        .args(["--kill-after=10", &CLIENT_TIMEOUT_SECS.to_string(), program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics with the command's output unless it succeeded; returns stdout.
fn expect_ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The per-process rlimits this host lets a container have: podman asks
/// for nofile 1048576 by default, and raising a hard limit needs
/// CAP_SYS_RESOURCE, which root lacks on some hosts (runc and crun fail
/// the same way). Asking for no more than we hold works everywhere.
fn podman_ulimits() -> Vec<String> {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(1_048_576)
        .min(1_048_576);
    // podman lowers its own nproc hard limit to its default (32768) before
    // conmon runs, so that is the most a container can get from it.
    let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc)
        .maximum
        .unwrap_or(32_768)
        .min(32_768);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

/// What a peer may leave behind on the host after it stopped: processes
/// that still name its dir, mounts under it, and cgroups under its parent
/// other than `allowed` (the peer's own helpers' cgroups).
fn host_leaks(dir: &Path, cgroup_parent: &str, allowed_cgroups: &[&str]) -> Vec<String> {
    let mut leaks = Vec::new();
    for pid in processes_naming(dir) {
        leaks.push(format!("process {pid} ({}) remains", cmdline(pid)));
    }
    for mp in mounts_under(dir) {
        leaks.push(format!("mount {} remains", mp.display()));
    }
    for cg in cgroups_under(cgroup_parent) {
        let name = cg.file_name().unwrap_or_default().to_string_lossy();
        if !allowed_cgroups.contains(&name.as_ref()) {
            leaks.push(format!("cgroup {} remains", cg.display()));
        }
    }
    leaks
}

/// Pids whose command line names `dir` (daemons, shims, conmon).
pub fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    crate::leaks::processes_where("cmdline", |cmd| {
        cmd.windows(needle.len()).any(|w| w == needle)
    })
}

fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    text(&raw).replace('\0', " ").trim().to_string()
}

/// Mount points at or under `dir`, deepest first (the order to unmount them).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|mp| mp.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|o| {
            std::str::from_utf8(o)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

pub(crate) fn unmount_all_under(dir: &Path) {
    for mp in mounts_under(dir) {
        let _ = rustix::mount::unmount(&mp, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Every cgroup directory below `parent` in every hierarchy.
fn cgroups_under(parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in cgroup_parent_dirs(parent) {
        if let Ok(children) = std::fs::read_dir(&dir) {
            out.extend(children.flatten().map(|c| c.path()).filter(|p| p.is_dir()));
        }
    }
    out
}

/// `parent` in each hierarchy under /sys/fs/cgroup where it exists.
fn cgroup_parent_dirs(parent: &str) -> Vec<PathBuf> {
    let rel = parent.trim_start_matches('/');
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    hierarchies
        .flatten()
        .map(|h| h.path().join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes `parent` and the cgroups below it, waiting a little for
/// processes killed a moment ago to leave them. Returns what it could not
/// remove, for the leak check.
pub(crate) fn remove_cgroup_parent(parent: &str) -> Vec<String> {
    wait_for(Duration::from_secs(5), || {
        for dir in cgroup_parent_dirs(parent) {
            if !on_cgroupfs(&dir) {
                // conmon makes plain directories (with files) on the
                // /sys/fs/cgroup tmpfs for controllers that are not mounted.
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            if let Ok(children) = std::fs::read_dir(&dir) {
                for c in children.flatten().filter(|c| c.path().is_dir()) {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
        cgroup_parent_dirs(parent).is_empty()
    });
    cgroup_parent_dirs(parent)
        .iter()
        .map(|d| format!("cgroup parent {} remains", d.display()))
        .collect()
}

fn on_cgroupfs(dir: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    rustix::fs::statfs(dir).is_ok_and(|s| {
        let t = s.f_type;
        t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
    })
}

/// Kills the processes that still name `dir` (after a failed stop), so a
/// failing test does not leave daemons behind.
pub(crate) fn kill_processes_naming(dir: &Path) {
    for pid in processes_naming(dir) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Kills the processes in the cgroups below `parent` (a failed test's
/// containers, which outlive their daemon and shim by design).
pub(crate) fn kill_cgroup_members(parent: &str) {
    for cgroup in cgroups_under(parent) {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Waits up to `limit` for `cond`, polling.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// The checks every peer test needs: root, and the peer installed.
/// `None` (after printing why) means skip.
fn prepare(binaries: &[(&str, &str)]) -> Option<()> {
    if !crate::require_root() {
        return None;
    }
    for (binary, package) in binaries {
        if let Err(reason) = ensure_installed(binary, package) {
            eprintln!("skipped: cannot install {package}: {reason}");
            return None;
        }
    }
    if let Err(reason) = ensure_installed(fixtures::BUSYBOX, "busybox-static") {
        eprintln!("skipped: cannot install busybox-static: {reason}");
        return None;
    }
    Some(())
}

/// Debian's dockerd with `--add-runtime berth=<berth-runtime>`, started
/// just for one test: its own data root, exec root (where it starts its
/// own containerd), socket, pid file, config file, containerd namespace
/// and cgroup parent; no bridge, no iptables, no ip_forward change.
/// Peer tests run one at a time. Containers created meanwhile copy each
/// other's mounts into their mount namespaces (locked ones, in a user
/// namespace), and then `podman rm` failed with EBUSY on a container's shm.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Dockerd {
    _serial: std::sync::MutexGuard<'static, ()>,
    pub dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
    namespace: String,
    pub cgroup_parent: String,
    marker: String,
    stopped: bool,
}

impl Dockerd {
    /// Starts the daemon and imports the busybox image as `busybox`;
    /// `None` (with the reason printed) when the test must be skipped.
    pub fn start(name: &str) -> Option<Dockerd> {
        let serial = serial();
        prepare(&[(DOCKERD, "docker.io"), (DOCKER, "docker.io")])?;
        let runtime = berth_binary("berth-runtime");
        let id = unique(name);
        // Short: containerd's sockets live under it (108-byte socket paths).
        let dir = tempfile::Builder::new()
            .prefix("berth-dkr-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let config = d.join("daemon.json");
        std::fs::write(&config, "{}").expect("writing daemon.json");
        let log = std::fs::File::create(d.join("dockerd.log")).expect("dockerd.log");
        let socket = d.join("docker.sock");
        let namespace = id.clone();
        let cgroup_parent = format!("/{id}");
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
            ])
            .arg("--cgroup-parent")
            .arg(&cgroup_parent)
            .arg("--containerd-namespace")
            .arg(&namespace)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{namespace}-plugins"))
            .arg("--add-runtime")
            .arg(format!("{DOCKER_RUNTIME_NAME}={}", runtime.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let mut daemon = Dockerd {
            _serial: serial,
            marker: format!("BERTH_IT_MARKER={id}"),
            dir,
            child,
            socket,
            namespace,
            cgroup_parent,
            stopped: false,
        };
        daemon.wait_ready();
        let tar = busybox_tar(daemon.dir.path());
        let tar_arg = tar.to_str().unwrap().to_string();
        daemon.docker_ok(&["import", &tar_arg, "busybox:latest"]);
        Some(daemon)
    }

    fn wait_ready(&mut self) {
        let ready = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "dockerd exited with {status} while starting:\n{}",
                    self.log_tail()
                );
            }
            self.socket.exists() && self.docker(&["version"]).status.success()
        });
        assert!(
            ready,
            "dockerd did not answer within 60 s:\n{}",
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The client against this daemon only (its own config dir too).
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--config".to_string(),
            self.dir.path().join("client").display().to_string(),
            "-H".to_string(),
            format!("unix://{}", self.socket.display()),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        run_bounded(DOCKER, &all)
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        expect_ok(&format!("docker {args:?}"), self.docker(args))
    }

    /// `docker run --runtime berth --network none -e <marker> <opts>
    /// busybox <cmd>`: the marker lets the leak check find any container
    /// process left over.
    pub fn run(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec![
            "run",
            "--runtime",
            DOCKER_RUNTIME_NAME,
            "--network",
            "none",
            "-e",
            &self.marker,
        ];
        args.extend_from_slice(opts);
        args.push("busybox");
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    /// Where containerd's runc shim keeps berth-runtime's state (`--root`).
    pub fn runtime_root(&self) -> PathBuf {
        self.dir
            .path()
            .join("exec/runtime-runc")
            .join(&self.namespace)
    }

    /// Asserts no container is left, stops the daemon and asserts that
    /// nothing of it or its containers remains on the host. What is found
    /// is removed before the assertion, so a failure leaves nothing either.
    pub fn finish(mut self) {
        let left = self.container_ids();
        let mut leaks: Vec<String> = left
            .iter()
            .map(|id| format!("docker container {id} remains"))
            .collect();
        leaks.extend(find_leaks(&LeakScope {
            ids: Vec::new(),
            state_root: self.runtime_root(),
            paths: Vec::new(),
            env_marker: self.marker.clone(),
        }));
        leaks.extend(self.stop());
        assert!(
            leaks.is_empty(),
            "dockerd test leaked:\n{}",
            leaks.join("\n")
        );
    }

    fn container_ids(&self) -> Vec<String> {
        text(&self.docker(&["ps", "-aq"]).stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Removes the containers, stops dockerd (which stops its containerd),
    /// then reports and removes what remains.
    fn stop(&mut self) -> Vec<String> {
        self.stopped = true;
        for id in self.container_ids() {
            let _ = self.docker(&["rm", "--force", &id]);
        }
        let mut leaks = Vec::new();
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let exited = wait_for(Duration::from_secs(60), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            leaks.push("dockerd did not stop within 60 s of SIGTERM".to_string());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let dir = self.dir.path().to_path_buf();
        // containerd and shims exit a moment after dockerd.
        wait_for(Duration::from_secs(10), || {
            processes_naming(&dir).is_empty()
        });
        // dockerd keeps a handle on the host network namespace under its
        // exec root and does not unmount it on exit: that one is not a leak.
        let netns_handle = dir.join("exec/netns/default");
        let _ = rustix::mount::unmount(&netns_handle, rustix::mount::UnmountFlags::DETACH);
        leaks.extend(host_leaks(&dir, &self.cgroup_parent, &[]));
        kill_processes_naming(&dir);
        force_delete_all(&self.runtime_root(), None);
        unmount_all_under(&dir);
        leaks.extend(remove_cgroup_parent(&self.cgroup_parent));
        leaks
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if !self.stopped {
            // A failed test: still clean up, quietly.
            let _ = self.stop();
        }
    }
}

/// `berth-runtime --root <root> delete --force` for the containers whose
/// state remains there (only `ids`, when given): it kills their processes
/// and removes their cgroups and state.
fn force_delete_all(root: &Path, ids: Option<&[String]>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let binary = berth_binary("berth-runtime");
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = ids.is_none_or(|ids| ids.contains(&name));
        if name.starts_with('.') || !ours {
            continue;
        }
        let _ = Command::new(&binary)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", &name])
            .stdin(Stdio::null())
            .output();
    }
}

/// podman with `--runtime <berth-runtime>` and everything of its own in a
/// temp dir: storage (`--root`, `--runroot`), `--tmpdir`, network config,
/// file events, cgroupfs under a cgroup parent of its own, and containers
/// without networking (so netavark never touches the host's firewall).
pub struct Podman {
    _serial: std::sync::MutexGuard<'static, ()>,
    pub dir: tempfile::TempDir,
    runtime: PathBuf,
    pub cgroup_parent: String,
    marker: String,
    /// Ids of every container made through [`Podman::run`] (from --cidfile).
    cidfiles: Vec<PathBuf>,
    finished: bool,
}

impl Podman {
    /// Prepares the dirs and imports the busybox image as `busybox`;
    /// `None` (with the reason printed) when the test must be skipped.
    pub fn new(name: &str) -> Option<Podman> {
        let serial = serial();
        prepare(&[(PODMAN, "podman")])?;
        let id = unique(name);
        // podman refuses a runroot path longer than 50 characters.
        let dir = tempfile::Builder::new()
            .prefix("berth-pod-")
            .tempdir()
            .expect("temp dir");
        let podman = Podman {
            _serial: serial,
            runtime: berth_binary("berth-runtime"),
            cgroup_parent: format!("/{id}"),
            marker: format!("BERTH_IT_MARKER={id}"),
            dir,
            cidfiles: Vec::new(),
            finished: false,
        };
        let tar = busybox_tar(podman.dir.path());
        podman.podman_ok(&["import", "--quiet", tar.to_str().unwrap(), "busybox:latest"]);
        Some(podman)
    }

    /// `podman <global flags> args`.
    pub fn podman(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let mut all: Vec<String> = vec![
            "--root".into(),
            d.join("root").display().to_string(),
            "--runroot".into(),
            d.join("runroot").display().to_string(),
            "--tmpdir".into(),
            d.join("tmp").display().to_string(),
            "--network-config-dir".into(),
            d.join("net").display().to_string(),
            "--runtime".into(),
            self.runtime.display().to_string(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            "--storage-driver".into(),
            "overlay".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        run_bounded(PODMAN, &all)
    }

    pub fn podman_ok(&self, args: &[&str]) -> String {
        expect_ok(&format!("podman {args:?}"), self.podman(args))
    }

    /// `podman run --network none --cgroup-parent P -e <marker> --cidfile F
    /// <ulimits> <opts> busybox <cmd>`.
    pub fn run(&mut self, opts: &[&str], cmd: &[&str]) -> Output {
        let cidfile = self.dir.path().join(format!("cid-{}", self.cidfiles.len()));
        self.cidfiles.push(cidfile.clone());
        let mut args: Vec<String> = [
            "run",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
            "-e",
            &self.marker,
            "--cidfile",
            cidfile.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(podman_ulimits());
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push("busybox".into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.podman(&refs)
    }

    fn container_ids(&self) -> Vec<String> {
        self.cidfiles
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Asserts no container is left and nothing of podman's or berth's
    /// remains on the host. What is found is removed before the assertion,
    /// so a failure leaves nothing either.
    pub fn finish(mut self) {
        self.finished = true;
        let left = self.podman_ok(&["ps", "-aq"]);
        let mut leaks: Vec<String> = left
            .lines()
            .map(|id| format!("podman container {id} remains"))
            .collect();
        // podman runs `delete` from its cleanup process after the
        // container exited: give it a moment.
        let state_dirs = || -> Vec<String> {
            self.container_ids()
                .into_iter()
                .map(|id| Path::new(BERTH_DEFAULT_ROOT).join(id))
                .filter(|p| p.exists())
                .map(|p| format!("berth-runtime state {} remains", p.display()))
                .collect()
        };
        wait_for(Duration::from_secs(10), || state_dirs().is_empty());
        leaks.extend(state_dirs());
        leaks.extend(find_leaks(&LeakScope {
            ids: Vec::new(),
            state_root: self.dir.path().join("no-state-root"),
            paths: Vec::new(),
            env_marker: self.marker.clone(),
        }));
        let dir = self.dir.path().to_path_buf();
        // conmon and podman's cleanup process exit a moment after the container.
        wait_for(Duration::from_secs(10), || {
            processes_naming(&dir).is_empty()
        });
        // podman's own `conmon` cgroup under the parent is expected.
        leaks.extend(host_leaks(&dir, &self.cgroup_parent, &["conmon"]));
        leaks.extend(self.cleanup());
        assert!(
            leaks.is_empty(),
            "podman test leaked:\n{}",
            leaks.join("\n")
        );
    }

    /// Removes every container, its berth state, podman's processes and
    /// mounts, and the cgroup parent.
    fn cleanup(&mut self) -> Vec<String> {
        let dir = self.dir.path().to_path_buf();
        if !text(&self.podman(&["ps", "-aq"]).stdout).trim().is_empty() {
            let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        }
        force_delete_all(Path::new(BERTH_DEFAULT_ROOT), Some(&self.container_ids()));
        kill_processes_naming(&dir);
        unmount_all_under(&dir);
        remove_cgroup_parent(&self.cgroup_parent)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.cleanup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape_mountinfo(r"/tmp/a\040b\134c"),
            PathBuf::from("/tmp/a b\\c")
        );
        assert_eq!(unescape_mountinfo(r"/x\04"), PathBuf::from(r"/x\04"));
    }
}
