//! Root tests: real busybox containers supervised by a real `berth-shim`,
//! driven through `berth-shim-proto`'s client. Each test ends with a leak
//! check (state dirs, cgroups, mounts, processes carrying its marker).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_integration::{fixtures, leaks, require_root};
use berth_shim_proto::client::read_exit_record;
use berth_shim_proto::{stream, AttachOptions, ContainerStatus, ShimClient};
use serde_json::{json, Value};

const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");

struct Env {
    name: String,
    dir: tempfile::TempDir,
    id: String,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-shim-{name}-"))
            .tempdir()
            .unwrap();
        Env {
            id: format!("shim-{}-{}", name.replace('_', "-"), std::process::id()),
            name: name.into(),
            dir,
        }
    }

    fn marker(&self) -> String {
        format!("BERTH_SHIM_IT={}-{}", self.name, std::process::id())
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/shim.sock")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("json.log")
    }

    /// A bundle running `args` on the shared read-only busybox rootfs.
    fn bundle(&self, args: &[&str], tty: bool) -> PathBuf {
        let dir = self.dir.path().join("bundle");
        std::fs::create_dir_all(&dir).unwrap();
        let mut spec: Value = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap();
        spec["root"] = json!({"path": fixtures::busybox_rootfs(), "readonly": true});
        spec["process"]["args"] = json!(args);
        spec["process"]["terminal"] = json!(tty);
        spec["process"]["env"] = json!(["PATH=/bin", self.marker()]);
        spec["hostname"] = json!("shim-test");
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
        dir
    }

    fn shim_cmd(&self, bundle: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(SHIM);
        cmd.arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(bundle)
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--socket")
            .arg(self.socket())
            .arg("--log")
            .arg(self.log())
            .args(extra);
        cmd
    }

    /// Starts a shim and returns its pid once it serves.
    fn start_shim(&self, bundle: &Path, extra: &[&str]) -> i32 {
        let out = self.shim_cmd(bundle, extra).output().unwrap();
        assert!(
            out.status.success(),
            "berth-shim failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    fn client(&self) -> ShimClient {
        ShimClient::connect(self.socket()).unwrap()
    }

    /// Asserts that nothing of this test remains (after `delete`).
    fn finish(self) {
        let scope = leaks::LeakScope {
            ids: vec![self.id.clone()],
            state_root: self.state_dir().join("runtime"),
            paths: vec![self.dir.path().to_path_buf()],
            env_marker: self.marker(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = leaks::find_leaks(&scope);
        while !found.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            found = leaks::find_leaks(&scope);
        }
        assert!(
            found.is_empty(),
            "{} leaked:\n{}",
            self.name,
            found.join("\n")
        );
        assert!(!self.state_dir().join("runtime").exists());
        assert!(!self.socket().exists(), "the socket remains after delete");
    }
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone: its parent (pid 1 or the test) reaps it.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} is still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find(|l| l.starts_with("Pss:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reads a multiplexed stream to its end: (stdout, stderr).
fn read_muxed(mut s: UnixStream) -> (String, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some((id, data)) = stream::read_chunk(&mut s, stream::MAX_CHUNK).unwrap() {
        match id {
            stream::STDOUT => out.extend(data),
            stream::STDERR => err.extend(data),
            other => panic!("unexpected stream {other}"),
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn process(args: &[&str]) -> oci_spec::runtime::Process {
    serde_json::from_value(json!({
        "args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}
    }))
    .unwrap()
}

#[test]
fn lifecycle_logs_exec_attach_kill_wait_delete() {
    if !require_root() {
        return;
    }
    let env = Env::new("lifecycle");
    let bundle = env.bundle(
        &["sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"],
        false,
    );
    let shim_pid = env.start_shim(&bundle, &[]);
    let mut c = env.client();
    assert_eq!(c.id(), env.id);
    assert_eq!(c.shim_pid() as i32, shim_pid);
    let st = c.state().unwrap();
    assert_eq!(st.status, ContainerStatus::Created);
    assert!(st.pid > 0);

    // Attach before start, as `docker run` does, so no output is missed.
    let (tty, attached) = env
        .client()
        .attach(AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            close_stdin: false,
        })
        .unwrap();
    assert!(!tty);
    c.start().unwrap();
    assert_eq!(c.state().unwrap().status, ContainerStatus::Running);

    // Detached exec and its exit code.
    let pid = c
        .exec("e1", process(&["sh", "-c", "exit 7"]), false)
        .unwrap();
    assert!(pid > 0);
    assert_eq!(c.exec_wait("e1").unwrap().code, 7);
    // Attached exec: its output, then the end of the stream.
    let (_, s) = env
        .client()
        .exec_attached(
            "e2",
            process(&["sh", "-c", "echo to-out; echo to-err >&2"]),
            false,
            false,
        )
        .unwrap();
    assert_eq!(read_muxed(s), ("to-out\n".into(), "to-err\n".into()));
    assert_eq!(c.exec_wait("e2").unwrap().code, 0);
    // A used exec id is refused.
    assert!(c.exec("e1", process(&["true"]), false).is_err());

    let stats = c.stats().unwrap();
    assert!(stats.pids.current >= 1, "{stats:?}");

    if let Some(kib) = pss_kib(shim_pid) {
        eprintln!("berth-shim PSS with one running container: {kib} KiB");
    }

    // Wait on another connection, kill, both see the exit.
    let waiter = {
        let mut w = env.client();
        std::thread::spawn(move || w.wait().unwrap())
    };
    std::thread::sleep(Duration::from_millis(100));
    c.kill(9, false).unwrap();
    let exit = waiter.join().unwrap();
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    assert!(exit.finished_at >= exit.started_at && exit.started_at > 0);
    assert_eq!(c.wait().unwrap(), exit);
    assert_eq!(c.state().unwrap().status, ContainerStatus::Stopped);

    // The attachment saw the container's output and then its end.
    assert_eq!(read_muxed(attached), ("hello\n".into(), "oops\n".into()));

    // json-file log.
    let log = std::fs::read_to_string(env.log()).unwrap();
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            assert!(e["time"].as_str().unwrap().ends_with('Z'));
            (
                e["stream"].as_str().unwrap().into(),
                e["log"].as_str().unwrap().into(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("stderr".to_string(), "oops\n".to_string()),
            ("stdout".to_string(), "hello\n".to_string())
        ]
    );

    assert_eq!(read_exit_record(&env.socket()).unwrap(), Some(exit.clone()));
    assert_eq!(c.delete(false).unwrap(), Some(exit));
    wait_gone(shim_pid);
    env.finish();
}

#[test]
fn container_outlives_its_launcher_and_clients() {
    if !require_root() {
        return;
    }
    let env = Env::new("outlive");
    let bundle = env.bundle(&["sleep", "1000"], false);
    // The launcher is a shell that is SIGKILLed once the shim is up.
    let cmd = env.shim_cmd(&bundle, &[]);
    let line = format!(
        "{} && exec sleep 1000",
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut launcher = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pid_line = [0u8; 32];
    let n = launcher
        .stdout
        .as_mut()
        .unwrap()
        .read(&mut pid_line)
        .unwrap();
    let shim_pid: i32 = String::from_utf8_lossy(&pid_line[..n])
        .trim()
        .parse()
        .unwrap();
    env.client().start().unwrap();
    // A client dies in the middle of a wait.
    {
        let mut c = env.client();
        c.set_timeout(Some(Duration::from_millis(200))).unwrap();
        assert!(c.wait().is_err());
    }
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(shim_pid), "the shim died with its launcher");
    // The shim is not the launcher's child any more, nor in its session.
    let stat = std::fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_ne!(fields[1].parse::<u32>().unwrap(), launcher.id());
    assert_eq!(
        fields[3].parse::<i32>().unwrap(),
        shim_pid,
        "the shim leads its own session"
    );

    let mut c = env.client();
    let st = c.state().unwrap();
    assert_eq!(st.status, ContainerStatus::Running);
    assert!(alive(st.pid as i32));
    // SIGKILL: a pid namespace's init ignores signals it has no handler for.
    c.kill(9, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    assert_eq!(c.delete(false).unwrap(), Some(exit));
    wait_gone(shim_pid);
    env.finish();
}

#[test]
fn exit_record_survives_the_shim() {
    if !require_root() {
        return;
    }
    let env = Env::new("exitrec");
    let bundle = env.bundle(&["sh", "-c", "exit 3"], false);
    let shim_pid = env.start_shim(&bundle, &[]);
    env.client().start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(e) = read_exit_record(&env.socket()).unwrap() {
            break e;
        }
        assert!(Instant::now() < deadline, "no exit record");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!((exit.code, exit.signal, exit.oom_killed), (3, None, false));
    // The shim dies hard; its record stays for the daemon.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(shim_pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_gone(shim_pid);
    assert_eq!(read_exit_record(&env.socket()).unwrap(), Some(exit));
    assert!(ShimClient::connect(env.socket()).is_err());
    // What the daemon then cleans up: the container's state and cgroup.
    let rt = berth_container::Runtime::new(env.state_dir().join("runtime"));
    rt.load(&env.id).unwrap().delete(true).unwrap();
    std::fs::remove_dir(env.state_dir().join("runtime")).unwrap();
    std::fs::remove_file(env.socket()).unwrap();
    env.finish();
}

#[test]
fn tty_attach_and_resize() {
    if !require_root() {
        return;
    }
    let env = Env::new("tty");
    let bundle = env.bundle(&["sh", "-c", "read line; echo got-$line; stty size"], true);
    let shim_pid = env.start_shim(&bundle, &["--tty", "--stdin"]);
    let mut c = env.client();
    assert!(c.state().unwrap().tty);
    let (tty, mut s) = env
        .client()
        .attach(AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            close_stdin: false,
        })
        .unwrap();
    assert!(tty);
    c.resize(None, 100, 40).unwrap();
    c.start().unwrap();
    std::io::Write::write_all(&mut s, b"abc\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.contains("got-abc"), "{out:?}");
    assert!(out.contains("40 100"), "{out:?}");
    assert_eq!(c.wait().unwrap().code, 0);
    assert!(std::fs::read_to_string(env.log())
        .unwrap()
        .contains("got-abc"));
    c.delete(false).unwrap();
    wait_gone(shim_pid);
    env.finish();
}

#[test]
fn bad_bundle_fails_the_launch_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let env = Env::new("badbundle");
    let bundle = env.bundle(&["true"], false);
    std::fs::write(bundle.join("config.json"), b"{not json").unwrap();
    let out = env.shim_cmd(&bundle, &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("berth-shim:"), "{err}");
    assert!(!env.socket().exists());
    let _ = std::fs::remove_dir(env.state_dir().join("runtime"));
    env.finish();
}
