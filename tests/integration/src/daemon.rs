//! A berthd per test: its own data root, exec root and socket in a temp
//! dir, driven over HTTP (curl on the unix socket) and by the docker CLI.
//! [`Berthd::stop`] sends SIGTERM and checks that nothing is left.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::runtime::berth_binary;

/// Whether the docker CLI is here (the daemon tests drive berthd with it);
/// says so when it is not.
pub fn has_docker() -> bool {
    let ok = Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: no docker CLI on this machine");
    }
    ok
}

/// Seconds any one client command may take before the test fails.
const CLIENT_TIMEOUT_SECS: u32 = 120;

pub struct Berthd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// This daemon's own networking names: the default bridge, its
    /// subnet and the nftables table, so parallel test daemons never share
    /// one.
    pub net: TestNet,
    extra: Vec<String>,
    /// Started by `systemd-socket-activate`, serving `-H fd://`.
    activated: bool,
    /// Passes `--bip` (the default); without it the daemon picks the
    /// bridge's address itself.
    pass_bip: bool,
    /// Started with `--bridge none`: no default network.
    bridge_disabled: bool,
    /// Where berthd (and the shim beside it) is run from; None: the build's.
    bin_dir: Option<PathBuf>,
    /// Environment variables berthd is started with, beside the test's.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// A test daemon's networking names.
#[derive(Debug, Clone)]
pub struct TestNet {
    /// The default bridge ("bt" + 6 digits).
    pub bridge: String,
    /// The default bridge's address with its prefix (10.X.Y.1/24).
    pub bip: String,
    /// The nftables table the daemon owns.
    pub table: String,
}

impl TestNet {
    /// Unique in this process (a counter) and unlikely to meet a leftover
    /// of another run (the pid).
    pub fn new() -> TestNet {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{:03}{:03}", pid % 1000, n % 1000);
        TestNet {
            bridge: format!("bt{tag}"),
            bip: format!("10.{}.{}.1/24", 100 + pid % 50, n % 250),
            table: format!("berth_t{tag}"),
        }
    }

    /// A /24 for a test's own network, unique in this process, never one
    /// of the daemons' default bridges (10.150-199.X.0/24), and not routed
    /// on the host already (another engine's network, or a leftover of a
    /// run that was killed, would make the create fail as overlapping).
    pub fn subnet() -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let routes = Command::new("ip")
            .args(["-4", "route", "show"])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default();
        let second = 150 + std::process::id() % 50;
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let subnet = format!("10.{second}.{}.0/24", n % 250);
            if n >= 250 || !routes.lines().any(|l| l.starts_with(&subnet)) {
                return subnet;
            }
        }
    }

    /// Removes what a daemon leaves on purpose when it stops (docker
    /// keeps docker0 and its rules too): the default bridge and the table.
    pub fn remove(&self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .output();
    }
}

impl Default for TestNet {
    fn default() -> Self {
        TestNet::new()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// systemd's tool that listens on a socket and starts a service with it.
const SOCKET_ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

impl Berthd {
    /// A daemon started with `extra` flags and the busybox image imported
    /// as `bb:1` (CMD sh).
    pub fn with_busybox(extra: &[&str]) -> Berthd {
        Berthd::import_busybox(Berthd::start(extra))
    }

    /// As [`Berthd::with_busybox`], with berthd run from `bin_dir` (a copy
    /// of the build's binaries that a test may see attacked).
    pub fn with_busybox_from(bin_dir: &Path) -> Berthd {
        let mut d = Berthd::unspawned(TestNet::new(), &[], false, true);
        d.bin_dir = Some(bin_dir.to_path_buf());
        d.spawn();
        Berthd::import_busybox(d)
    }

    /// As [`Berthd::with_busybox`], with the default bridge disabled
    /// (`--bridge none`, as dockerd's `--bridge=none`).
    pub fn with_busybox_bridge_disabled() -> Berthd {
        let mut d = Berthd::unspawned(TestNet::new(), &[], false, true);
        d.bridge_disabled = true;
        d.spawn();
        Berthd::import_busybox(d)
    }

    /// As [`Berthd::with_busybox`], with berthd started with `env` set.
    pub fn with_busybox_env(extra: &[&str], env: &[(&str, &str)]) -> Berthd {
        let mut d = Berthd::unspawned(TestNet::new(), extra, false, true);
        d.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        d.spawn();
        Berthd::import_busybox(d)
    }

    fn import_busybox(d: Berthd) -> Berthd {
        let tar = crate::peers::busybox_tar(d.dir.path());
        d.docker_ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "bb:1",
        ]);
        d
    }

    /// `docker inspect NAME`'s one object.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.docker_ok(&["inspect", name]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect {name}: {e}: {out}"));
        v[0].clone()
    }

    /// Starts berthd with `extra` flags and waits until it answers `/_ping`.
    pub fn start(extra: &[&str]) -> Berthd {
        Berthd::start_with(extra, false, true)
    }

    /// As [`Berthd::start`] but without `--bip`, with `net` as its
    /// networking names: the daemon chooses the default bridge's address.
    pub fn start_without_bip(net: TestNet) -> Berthd {
        Berthd::start_on(net, &[], false, false)
    }

    /// As [`Berthd::start`], but socket-activated: `systemd-socket-activate`
    /// (from systemd) listens on the socket and starts berthd with it
    /// (`-H fd://`) on the first connection. None when that tool is missing.
    pub fn start_activated(extra: &[&str]) -> Option<Berthd> {
        Path::new(SOCKET_ACTIVATE)
            .exists()
            .then(|| Berthd::start_with(extra, true, true))
    }

    fn start_with(extra: &[&str], activated: bool, pass_bip: bool) -> Berthd {
        Berthd::start_on(TestNet::new(), extra, activated, pass_bip)
    }

    fn start_on(net: TestNet, extra: &[&str], activated: bool, pass_bip: bool) -> Berthd {
        let mut d = Berthd::unspawned(net, extra, activated, pass_bip);
        d.spawn();
        d
    }

    fn unspawned(net: TestNet, extra: &[&str], activated: bool, pass_bip: bool) -> Berthd {
        let dir = tempfile::Builder::new()
            .prefix("berthd-test-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("berth.sock");
        let data_root = dir.path().join("data");
        let exec_root = dir.path().join("exec");
        Berthd {
            dir,
            socket,
            data_root,
            exec_root,
            net,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            activated,
            pass_bip,
            bridge_disabled: false,
            bin_dir: None,
            env: Vec::new(),
            child: None,
        }
    }

    fn spawn(&mut self) {
        DEFAULT_NETWORKING_BEFORE.get_or_init(DefaultNetworking::now);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .expect("log file");
        let berthd = match &self.bin_dir {
            Some(dir) => dir.join("berthd"),
            None => berth_binary("berthd"),
        };
        let (mut cmd, host) = if self.activated {
            let mut c = Command::new(SOCKET_ACTIVATE);
            c.arg("-l").arg(&self.socket).arg(&berthd);
            (c, "fd://".to_string())
        } else {
            let c = Command::new(&berthd);
            (c, format!("unix://{}", self.socket.display()))
        };
        let child = cmd
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(host)
            .args(["--log-level", "debug"])
            .arg("--cgroup-parent")
            .arg(cgroup_parent_of(self.dir.path()))
            .args([
                "--bridge",
                if self.bridge_disabled {
                    "none"
                } else {
                    &self.net.bridge
                },
            ])
            .args(
                (self.pass_bip && !self.bridge_disabled)
                    .then_some(["--bip", &self.net.bip])
                    .into_iter()
                    .flatten(),
            )
            .args(["--firewall-table", &self.net.table])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("starting berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.socket.exists() && self.api("GET", "/_ping", None).0 == 200 {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("berthd exited with {st} during start-up:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not answer /_ping within 20s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the daemon; containers keep running.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same data and exec roots.
    pub fn restart(&mut self) {
        self.crash();
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// One request: `(status, body)`. `body` is sent from memory.
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        let body_file = self.dir.path().join("req.body");
        let mut args: Vec<String> = vec![
            "-sS".into(),
            "--unix-socket".into(),
            self.socket.display().to_string(),
            "-X".into(),
            method.into(),
            "-o".into(),
            self.dir.path().join("resp.body").display().to_string(),
            "-w".into(),
            "%{http_code}".into(),
        ];
        if method == "HEAD" {
            args.splice(3..5, ["-I".to_string()]);
        }
        if let Some(b) = body {
            std::fs::write(&body_file, b).expect("writing the request body");
            args.push("-H".into());
            args.push("Content-Type: application/json".into());
            args.push("--data-binary".into());
            args.push(format!("@{}", body_file.display()));
        }
        args.push(format!("http://berth{path}"));
        let out = bounded("curl", &args, None);
        let status = text(&out.stdout).trim().parse().unwrap_or(0);
        let resp = std::fs::read(self.dir.path().join("resp.body")).unwrap_or_default();
        let _ = std::fs::remove_file(self.dir.path().join("resp.body"));
        (status, resp)
    }

    /// A request whose JSON error body says `message` contains `needle`.
    pub fn api_error(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        status: u16,
        needle: &str,
    ) {
        let (got, resp) = self.api(method, path, body);
        let v: serde_json::Value = serde_json::from_slice(&resp)
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {}", text(&resp)));
        let message = v["message"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{method} {path}: {}", text(&resp));
        assert!(
            message.contains(needle),
            "{method} {path}: message {message:?} lacks {needle:?}"
        );
    }

    /// The docker CLI pointed at this daemon, with its own config dir.
    pub fn docker(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        bounded("docker", &args, Some(self))
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed with {}:\nstdout: {}\nstderr: {}\n{}berthd log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            self.named_container_log(args),
            self.log()
        );
        text(&out.stdout)
    }

    /// The log of the container that `args` (a run or create) names with
    /// `--name`: where a container's init writes why it could not start.
    fn named_container_log(&self, args: &[&str]) -> String {
        let Some(name) = args.windows(2).find(|w| w[0] == "--name").map(|w| w[1]) else {
            return String::new();
        };
        let logs = self.docker(&["logs", name]);
        format!(
            "container {name}'s log:\n{}{}\n",
            text(&logs.stdout),
            text(&logs.stderr)
        )
    }

    /// `sh -c script` with DOCKER_HOST set (for pipes between commands).
    pub fn sh_ok(&self, script: &str) -> String {
        let out = bounded("sh", &["-c".to_string(), script.to_string()], Some(self));
        assert!(
            out.status.success(),
            "{script} failed: {}\n{}\nberthd log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.log()
        );
        text(&out.stdout)
    }

    /// SIGTERM, then checks the daemon exited cleanly and left nothing:
    /// no process, no socket, no mount under its directories.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id() as i32;
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).expect("pid"),
            rustix::process::Signal::TERM,
        )
        .expect("SIGTERM to berthd");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().expect("waiting for berthd") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berthd did not exit within 20s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "berthd exited with {status}:\n{}",
            self.log()
        );
        let mut leaks = Vec::new();
        if self.activated {
            // The service manager's socket, not berthd's to remove.
            let _ = std::fs::remove_file(&self.socket);
        } else if self.socket.exists() {
            leaks.push(format!("socket {} remains", self.socket.display()));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            leaks.push(format!("berthd process {pid} remains"));
        }
        let base = self.dir.path().to_path_buf();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in info.lines() {
                if let Some(mp) = line.split(' ').nth(4) {
                    if Path::new(mp).starts_with(&base) {
                        leaks.push(format!("mount {mp} remains"));
                    }
                }
            }
        }
        for p in crate::leaks::processes_where("cmdline", |c| {
            text(c).contains(&base.display().to_string())
        }) {
            leaks.push(format!("process {p} mentioning {} remains", base.display()));
        }
        leaks.extend(cgroup_leaks(&cgroup_parent_of(&base)));
        leaks.extend(network_leaks(&self.exec_root, &self.net));
        leaks.extend(allocation_leaks(&self.data_root, &self.net));
        self.net.remove();
        assert!(leaks.is_empty(), "leaks after berthd stopped: {leaks:?}");
    }
}

/// The cgroup parent a test daemon puts its containers under: unique per
/// daemon, so the leak check can look at exactly its containers.
pub fn cgroup_parent_of(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("/{name}")
}

/// Container cgroups left under `parent` in any hierarchy (then the
/// parent itself is removed, as it is the test's).
fn cgroup_leaks(parent: &str) -> Vec<String> {
    let mut leaks = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return leaks;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(parent.trim_start_matches('/'));
        let Ok(children) = std::fs::read_dir(&dir) else {
            continue;
        };
        for c in children.flatten() {
            if c.file_type().is_ok_and(|t| t.is_dir()) {
                leaks.push(format!("cgroup {} remains", c.path().display()));
            }
        }
    }
    crate::peers::remove_cgroup_parent(parent);
    leaks
}

impl Drop for Berthd {
    /// After a test that failed (or found leaks), takes down what would
    /// outlive it: the daemon, its shims and DNS server, the containers'
    /// processes, mounts under its directory, its networking and cgroups.
    /// After a clean `stop` there is nothing left to find.
    fn drop(&mut self) {
        // Its user networks' bridges, asked of it while it runs (the
        // default bridge is the test's own, removed with `net`).
        let mut bridges = Vec::new();
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                bridges = self.user_bridges();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for bridge in bridges {
            let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        }
        use crate::peers::{kill_cgroup_members, kill_processes_naming, unmount_all_under};
        let parent = cgroup_parent_of(self.dir.path());
        kill_dns_server(&self.exec_root);
        kill_processes_naming(self.dir.path());
        kill_cgroup_members(&parent);
        self.net.remove();
        unmount_all_under(self.dir.path());
        crate::peers::remove_cgroup_parent(&parent);
    }
}

impl Berthd {
    /// The Linux bridges of the daemon's user-defined bridge networks.
    fn user_bridges(&self) -> Vec<String> {
        let (status, body) = self.api("GET", "/networks", None);
        let networks: Vec<serde_json::Value> = match status {
            200 => serde_json::from_slice(&body).unwrap_or_default(),
            _ => Vec::new(),
        };
        networks
            .iter()
            .filter(|n| n["Driver"] == "bridge" && n["Name"] != "bridge")
            .filter_map(|n| {
                let named = n["Options"]["com.docker.network.bridge.name"].as_str();
                let id = n["Id"].as_str()?;
                Some(named.map_or_else(|| format!("br-{}", &id[..12.min(id.len())]), String::from))
            })
            .collect()
    }
}

/// The berth-dns process serving a daemon's exec root, if any runs.
fn dns_server_pid(exec_root: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(exec_root.join("dns").join("berth-dns.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn kill_dns_server(exec_root: &Path) {
    if let Some(pid) = dns_server_pid(exec_root) {
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

/// Networking a stopped daemon's containers may not leave: network
/// namespace files, veths on its bridge, a DNS server with nothing to
/// serve (it exits when its last network goes).
fn network_leaks(exec_root: &Path, net: &TestNet) -> Vec<String> {
    let mut leaks = Vec::new();
    if let Ok(entries) = std::fs::read_dir(exec_root.join("netns")) {
        for e in entries.flatten() {
            leaks.push(format!(
                "network namespace file {} remains",
                e.path().display()
            ));
        }
    }
    let brif = Path::new("/sys/class/net").join(&net.bridge).join("brif");
    if let Ok(entries) = std::fs::read_dir(brif) {
        for e in entries.flatten() {
            leaks.push(format!(
                "veth {} remains on bridge {}",
                e.file_name().to_string_lossy(),
                net.bridge
            ));
        }
    }
    if let Some(pid) = dns_server_pid(exec_root) {
        leaks.push(format!("berth-dns process {pid} remains"));
    }
    leaks.extend(default_networking_leaks());
    leaks
}

/// With every container gone, IPAM's leases (endpoint rows) and the host
/// ports held must be gone from the database, and the daemon's nft table
/// must forward no port (its DNAT rules are made from the held ports).
fn allocation_leaks(data_root: &Path, net: &TestNet) -> Vec<String> {
    let mut leaks = Vec::new();
    match berth_store::Store::open(data_root) {
        Ok(store) => {
            for e in store.endpoints().unwrap_or_default() {
                leaks.push(format!(
                    "IPAM lease of container {} on network {} remains ({:?} {:?})",
                    e.container_id, e.network_id, e.ipv4, e.ipv6
                ));
            }
            for p in store.port_bindings().unwrap_or_default() {
                leaks.push(format!(
                    "host port binding of container {} remains: {p:?}",
                    p.container_id
                ));
            }
        }
        Err(e) => leaks.push(format!("cannot open the store to check leases: {e}")),
    }
    if let Ok(out) = Command::new("nft")
        .args(["list", "table", "inet", &net.table])
        .output()
    {
        let table = String::from_utf8_lossy(&out.stdout);
        for rule in table.lines().filter(|l| {
            ["dnat to ", "dnat ip to ", "dnat ip6 to "]
                .iter()
                .any(|d| l.contains(d))
        }) {
            leaks.push(format!(
                "nft rule remains in {}: {}",
                net.table,
                rule.trim()
            ));
        }
    }
    leaks
}

/// Whether berthd's default bridge and firewall table exist. Test daemons
/// get names of their own (`TestNet`), so these appear only when something
/// in the tests starts a berthd without them, which would then leave them
/// on the host.
#[derive(Clone, Copy, PartialEq)]
struct DefaultNetworking {
    bridge: bool,
    table: bool,
}

const DEFAULT_BRIDGE: &str = "berth0";
const DEFAULT_TABLE: &str = "berth";

static DEFAULT_NETWORKING_BEFORE: std::sync::OnceLock<DefaultNetworking> =
    std::sync::OnceLock::new();

impl DefaultNetworking {
    fn now() -> DefaultNetworking {
        DefaultNetworking {
            bridge: Path::new("/sys/class/net").join(DEFAULT_BRIDGE).exists(),
            table: Command::new("nft")
                .args(["list", "table", "inet", DEFAULT_TABLE])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        }
    }
}

/// The default bridge or table, if either appeared since the first test
/// daemon of this process started (one that was there before belongs to
/// the host, e.g. a berthd of its own).
fn default_networking_leaks() -> Vec<String> {
    let Some(before) = DEFAULT_NETWORKING_BEFORE.get() else {
        return Vec::new();
    };
    let now = DefaultNetworking::now();
    let mut leaks = Vec::new();
    if now.bridge && !before.bridge {
        leaks.push(format!(
            "berthd's default bridge {DEFAULT_BRIDGE} appeared during the tests (a berthd started without the kit's --bridge)"
        ));
    }
    if now.table && !before.table {
        leaks.push(format!(
            "berthd's default nft table inet {DEFAULT_TABLE} appeared during the tests (a berthd started without the kit's --firewall-table)"
        ));
    }
    leaks
}

fn bounded(program: &str, args: &[String], daemon: Option<&Berthd>) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", &CLIENT_TIMEOUT_SECS.to_string(), program])
        .args(args)
        .stdin(Stdio::null());
    if let Some(d) = daemon {
        cmd.env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .current_dir(d.dir.path());
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// A loopback `docker-registry serve` (Debian's), removed on drop.
pub struct LoopbackRegistry {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl LoopbackRegistry {
    /// `None` (with a message) when Debian's docker-registry is missing and
    /// cannot be installed.
    pub fn start() -> Option<LoopbackRegistry> {
        LoopbackRegistry::start_with(None)
    }

    /// As [`LoopbackRegistry::start`], but only `user` with `password` may
    /// push or pull: htpasswd (bcrypt, made by apache2-utils' htpasswd).
    pub fn with_htpasswd(user: &str, password: &str) -> Option<LoopbackRegistry> {
        if crate::peers::ensure_installed("/usr/bin/htpasswd", "apache2-utils").is_err() {
            eprintln!("skipped: htpasswd (apache2-utils) is not available");
            return None;
        }
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("running htpasswd");
        assert!(out.status.success(), "htpasswd failed: {out:?}");
        LoopbackRegistry::start_with(Some(&out.stdout))
    }

    /// With `htpasswd`, the registry asks for those users' passwords.
    fn start_with(htpasswd: Option<&[u8]>) -> Option<LoopbackRegistry> {
        if crate::peers::ensure_installed("/usr/bin/docker-registry", "docker-registry").is_err() {
            eprintln!("skipped: docker-registry is not available");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let extra = match htpasswd {
            Some(entries) => {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, entries).expect("writing the htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let reg = LoopbackRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
