//! Driving `berth-shim` the way berthd does: spawn it with its command
//! line, read the pid it prints, talk to it with `berth-shim-proto`'s
//! [`ShimClient`], and check at the end that the shim, its container and
//! everything they made are gone.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_shim_proto::{stream, ShimClient};
use serde_json::{json, Value};

use crate::runtime::{berth_binary, Bundle, TestEnv};

/// Debian's runc and crun, the external runtimes the shim is tested with.
pub const RUNC: &str = "/usr/sbin/runc";
pub const CRUN: &str = "/usr/bin/crun";

/// How long any one read from a shim may take before the test calls it a hang.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One shim the test started: where it lives and how to reach it.
#[derive(Debug, Clone)]
pub struct Shim {
    pub id: String,
    /// The supervisor's pid, as the launcher printed it.
    pub pid: i32,
    /// `--state-dir`: everything in it belongs to the shim.
    pub state_dir: PathBuf,
    /// `--socket`, alone in a directory of its own (exit.json goes beside it).
    pub socket: PathBuf,
    /// `--log`, the json-file log.
    pub log: PathBuf,
    /// `--runtime`, when not the embedded one.
    pub runtime: Option<PathBuf>,
}

impl Shim {
    /// A fresh connection, past the hello, with [`IO_TIMEOUT`] on reads and writes.
    pub fn client(&self) -> ShimClient {
        ShimClient::connect_timeout(&self.socket, Some(IO_TIMEOUT))
            .unwrap_or_else(|e| panic!("connecting to shim {}: {e}", self.id))
    }

    /// The exit record beside the socket.
    pub fn exit_record_path(&self) -> PathBuf {
        self.socket
            .parent()
            .unwrap()
            .join(berth_shim_proto::EXIT_RECORD)
    }

    /// The runtime state root the shim gives its runtime.
    pub fn runtime_root(&self) -> PathBuf {
        self.state_dir.join("runtime")
    }

    /// The container's cgroup directory in the v1 hierarchy `controller`
    /// (or the unified one), read from the init's /proc/PID/cgroup.
    pub fn cgroup_dir(&self, init_pid: u32, controller: &str) -> PathBuf {
        let text = std::fs::read_to_string(format!("/proc/{init_pid}/cgroup")).unwrap();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            if ctrls.split(',').any(|c| c == controller) {
                let mount = std::fs::read_dir("/sys/fs/cgroup")
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.split(',').any(|c| c == controller))
                            && !p.is_symlink()
                    })
                    .unwrap_or_else(|| panic!("no {controller} hierarchy"));
                return mount.join(path.trim_start_matches('/'));
            }
        }
        panic!("pid {init_pid} has no {controller} cgroup:\n{text}");
    }
}

/// What a shim's command line adds to the required flags.
#[derive(Debug, Clone, Default)]
pub struct ShimOpts {
    pub tty: bool,
    pub stdin: bool,
    pub runtime: Option<PathBuf>,
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
}

/// The external runtime to pass as `--runtime` for `binary`: itself, or
/// for crun on a host with a v1/v2 hybrid cgroup layout (which crun
/// refuses) a wrapper in `dir` that runs it in a private mount namespace
/// where /sys/fs/cgroup/unified/cgroup.controllers is empty, so it takes
/// the v1 path (as bench/conformance runs it).
pub fn external_runtime(binary: &str, dir: &Path) -> PathBuf {
    const CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";
    let hybrid = std::fs::read_to_string(CONTROLLERS).is_ok_and(|c| !c.trim().is_empty());
    if binary != CRUN || !hybrid {
        return PathBuf::from(binary);
    }
    let empty = dir.join("empty");
    std::fs::write(&empty, "").unwrap();
    let wrapper = dir.join("crun-v1");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare -m --propagation private sh -c \
             'mount --bind \"$0\" {CONTROLLERS} && exec {CRUN} \"$@\"' {} \"$@\"\n",
            empty.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    wrapper
}

/// One test's shims, on top of the runtime kit's [`TestEnv`] (temp dir,
/// marker, ids, bundles and its leak check). Call [`ShimTest::finish`].
pub struct ShimTest {
    env: Option<TestEnv>,
    pub shim_binary: PathBuf,
    /// The bundles' `ociVersion`, when a runtime needs an older one (crun 1.8).
    pub oci_version: Option<String>,
    shims: Vec<Shim>,
    finished: bool,
}

impl ShimTest {
    pub fn new(name: &str) -> ShimTest {
        ShimTest {
            env: Some(TestEnv::new(name)),
            shim_binary: berth_binary("berth-shim"),
            oci_version: None,
            shims: Vec::new(),
            finished: false,
        }
    }

    /// Runs the shims from the read-only copy of the shim binary, as
    /// berthd does. Where the code a shim maps matters: the build's own
    /// file was written by the linker, which leaves it in the page cache in
    /// large folios, mapped whole on any fault; berth_sys::exe_copy drops
    /// its copy's written pages.
    pub fn run_from_read_only_copy(&mut self) {
        self.shim_binary = berth_sys::exe_copy::read_only_copy(&self.shim_binary)
            .expect("a read-only copy of berth-shim");
    }

    pub fn env(&self) -> &TestEnv {
        self.env.as_ref().expect("not finished")
    }

    pub fn env_mut(&mut self) -> &mut TestEnv {
        self.env.as_mut().expect("not finished")
    }

    /// A bundle with runc's default spec on the shared read-only busybox
    /// rootfs, running `args` (with the test's marker in its environment).
    pub fn bundle(&self, args: &[&str]) -> Bundle {
        let mut b = self.env().bundle(args);
        if let Some(v) = &self.oci_version {
            b.edit(|c| c["ociVersion"] = json!(v));
        }
        b
    }

    /// The same with a terminal.
    pub fn tty_bundle(&self, args: &[&str]) -> Bundle {
        let mut b = self.bundle(args);
        b.edit(|c| c["process"]["terminal"] = json!(true));
        b
    }

    /// The command berthd would run for a new shim of `bundle`, and where
    /// that shim will live. The shim is registered for the final checks.
    pub fn command(&mut self, bundle: &Bundle, opts: &ShimOpts) -> (Command, Shim) {
        let env = self.env_mut();
        let id = env.id();
        let state_dir = env.state_root.join(&id);
        let run_dir = env.dir.path().join("run").join(&id);
        let shim = Shim {
            socket: run_dir.join("shim.sock"),
            log: env.dir.path().join(format!("{id}-json.log")),
            id,
            pid: 0,
            state_dir,
            runtime: opts.runtime.clone(),
        };
        let mut cmd = Command::new(&self.shim_binary);
        cmd.arg("--id")
            .arg(&shim.id)
            .arg("--bundle")
            .arg(&bundle.dir)
            .arg("--state-dir")
            .arg(&shim.state_dir)
            .arg("--socket")
            .arg(&shim.socket)
            .arg("--log")
            .arg(&shim.log);
        if let Some(n) = opts.log_max_size {
            cmd.arg("--log-max-size").arg(n.to_string());
        }
        if let Some(n) = opts.log_max_files {
            cmd.arg("--log-max-files").arg(n.to_string());
        }
        if let Some(rt) = &opts.runtime {
            cmd.arg("--runtime").arg(rt);
        }
        if opts.tty {
            cmd.arg("--tty");
        }
        if opts.stdin {
            cmd.arg("--stdin");
        }
        // The marker makes a shim that outlives the test a leak the check finds.
        let marker = self.env().marker();
        let (k, v) = marker.split_once('=').unwrap();
        cmd.env(k, v).stdin(Stdio::null());
        self.shims.push(shim.clone());
        (cmd, shim)
    }

    /// Runs the launcher to completion: its output, and the shim it made.
    pub fn launch(&mut self, bundle: &Bundle, opts: &ShimOpts) -> (Output, Shim) {
        let (mut cmd, mut shim) = self.command(bundle, opts);
        let out = run_bounded(&mut cmd);
        if out.status.success() {
            shim.pid = parse_pid(&out.stdout);
            self.shims.last_mut().unwrap().pid = shim.pid;
        }
        (out, shim)
    }

    /// Spawns a shim and asserts that the launcher succeeded and printed
    /// nothing but the supervisor's pid.
    pub fn spawn(&mut self, bundle: &Bundle, opts: &ShimOpts) -> Shim {
        let (out, shim) = self.launch(bundle, opts);
        assert!(
            out.status.success(),
            "berth-shim failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", shim.pid),
            "the launcher prints the pid alone"
        );
        shim
    }

    /// Records the pid of a shim started some other way (see [`ShimTest::command`]).
    pub fn set_pid(&mut self, shim: &mut Shim, pid: i32) {
        shim.pid = pid;
        if let Some(s) = self.shims.iter_mut().find(|s| s.id == shim.id) {
            s.pid = pid;
        }
    }

    /// Checks that every shim of the test has gone (it exits after
    /// `delete`), left nothing in its state dir or beside its socket, and
    /// then runs the runtime kit's leak check (cgroups, mounts, processes
    /// with the marker, state root).
    pub fn finish(mut self) {
        self.finished = true;
        let mut problems = Vec::new();
        for shim in &self.shims {
            if shim.pid > 0 && !wait_gone(shim.pid, Duration::from_secs(10)) {
                problems.push(format!("shim {} (pid {}) still runs", shim.id, shim.pid));
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&shim.state_dir) {
                let left: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if !left.is_empty() {
                    problems.push(format!("shim {} left {left:?} in its state dir", shim.id));
                }
            }
            if let Ok(entries) = std::fs::read_dir(shim.socket.parent().unwrap()) {
                let left: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if !left.is_empty() {
                    problems.push(format!("shim {} left {left:?} beside its socket", shim.id));
                }
            }
        }
        self.cleanup();
        assert!(
            problems.is_empty(),
            "test {} leaked:\n{}",
            self.env().name,
            problems.join("\n")
        );
        // The daemon's part: the directories it made for the shim.
        for shim in &self.shims {
            let _ = std::fs::remove_dir(&shim.state_dir);
            let _ = std::fs::remove_dir(shim.socket.parent().unwrap());
        }
        self.env.take().expect("finished once").finish();
    }

    /// Kills what a failed test left running and deletes its containers.
    fn cleanup(&self) {
        let Some(env) = &self.env else { return };
        let marker = env.marker();
        for shim in &self.shims {
            if shim.pid > 0 && crate::leaks::processes_with_env(&marker).contains(&shim.pid) {
                kill(shim.pid, 9);
                wait_gone(shim.pid, Duration::from_secs(5));
            }
            // A runtime makes its root when it starts: only where one remains.
            if shim.runtime_root().exists() {
                let runtime = shim.runtime.clone().unwrap_or_else(|| env.binary.clone());
                let _ = Command::new(runtime)
                    .arg("--root")
                    .arg(shim.runtime_root())
                    .args(["delete", "--force", &shim.id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            if self.finished {
                continue;
            }
            let _ = std::fs::remove_dir_all(&shim.state_dir);
            let _ = std::fs::remove_dir_all(shim.socket.parent().unwrap());
        }
    }
}

impl Drop for ShimTest {
    fn drop(&mut self) {
        if !self.finished {
            self.cleanup();
        }
    }
}

/// Runs `cmd` with its output in files (a shim that wrongly kept the
/// launcher's stdout open would make a pipe hang), killed after 60 s.
pub fn run_bounded(cmd: &mut Command) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("running berth-shim");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the shim's launcher did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let read = |mut f: std::fs::File| {
        use std::io::Seek;
        let mut buf = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut buf).unwrap();
        buf
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

pub fn parse_pid(stdout: &[u8]) -> i32 {
    let s = String::from_utf8_lossy(stdout);
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the launcher printed {s:?}, not a pid"))
}

/// Fields of /proc/PID/stat after the command name (index 0 is the state).
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        s.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(String::from)
            .collect(),
    )
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

/// Waits up to `timeout` until `pid` is gone (or a zombie); false if it is not.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

pub fn kill(pid: i32, sig: i32) {
    if let (Some(p), Some(s)) = (
        rustix::process::Pid::from_raw(pid),
        rustix::process::Signal::from_named_raw(sig),
    ) {
        let _ = rustix::process::kill_process(p, s);
    }
}

/// Polls `f` every 10 ms until it returns `Some`, for up to 10 s.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A multiplexed (non-tty) attach stream read to its end, chunk by chunk.
pub fn read_chunks(mut s: UnixStream) -> Vec<(u8, Vec<u8>)> {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream::read_chunk(&mut s, stream::MAX_CHUNK)
        .unwrap_or_else(|e| panic!("reading the multiplexed stream: {e}"))
    {
        out.push(chunk);
    }
    out
}

/// A multiplexed stream read to its end: (stdout, stderr).
pub fn read_muxed(s: UnixStream) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for (id, data) in read_chunks(s) {
        match id {
            stream::STDOUT => out.extend(data),
            stream::STDERR => err.extend(data),
            other => panic!("unexpected stream id {other}"),
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// A raw (tty) stream read to its end.
pub fn read_raw(mut s: UnixStream) -> String {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a raw stream until `needle` appears (not to its end).
pub fn read_until(s: &mut UnixStream, needle: &str) -> String {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(needle) {
        let n = match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}; got {out:?}")),
        };
        assert!(
            n > 0,
            "the stream ended before {needle:?}: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An exec process spec (as JSON, which the client's `Process` parameter
/// deserialises from): busybox's PATH, root, cwd /.
pub fn process_json(args: &[&str]) -> Value {
    json!({
        "args": args, "cwd": "/", "env": ["PATH=/bin:/sbin"], "user": {"uid": 0, "gid": 0}
    })
}

/// The json-file log's entries: (stream, log line), each checked for
/// docker's shape (three keys, an RFC 3339 UTC time with nanoseconds).
pub fn log_entries(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            let obj = v.as_object().unwrap();
            assert_eq!(obj.len(), 3, "{l}");
            let time = v["time"].as_str().unwrap();
            assert!(is_rfc3339_nano_utc(time), "time {time:?} in {l}");
            (
                v["stream"].as_str().unwrap().to_string(),
                v["log"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, as Go's RFC3339Nano prints UTC.
pub fn is_rfc3339_nano_utc(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !t.ends_with('Z') {
        return false;
    }
    let head = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let rest = &t[19..t.len() - 1];
    head && (rest.is_empty()
        || (rest.starts_with('.')
            && rest.len() <= 10
            && rest.len() > 1
            && rest[1..].bytes().all(|c| c.is_ascii_digit())))
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Sum of `Pss:` in /proc/PID/smaps_rollup, in KiB.
pub fn pss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .filter(|l| l.starts_with("Pss:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .reduce(|a, b| a + b)
}

/// The process's own executable code: (KiB mapped, KiB in all), the Rss
/// and Size of its executable mappings of the file /proc/PID/exe names.
pub fn code_kib(pid: i32) -> Option<(u64, u64)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_str()?;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut in_code = false;
    let (mut mapped, mut size) = (0, 0);
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let kib = || fields.get(1)?.parse::<u64>().ok();
        if line.starts_with(|c: char| c.is_ascii_hexdigit()) && fields.len() >= 5 {
            // A mapping's header: range, perms, offset, device, inode, path.
            in_code = fields[1].contains('x') && fields.get(5) == Some(&exe);
        } else if in_code && fields.first() == Some(&"Rss:") {
            mapped += kib()?;
        } else if in_code && fields.first() == Some(&"Size:") {
            size += kib()?;
        }
    }
    Some((mapped, size))
}
