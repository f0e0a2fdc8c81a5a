//! Running berth-runtime (or a peer runtime) against bundles made per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

use crate::fixtures;
use crate::leaks::{find_leaks, LeakScope};

/// The built berth binary `name` next to this test executable (target/<profile>/).
pub fn berth_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(name);
    remove_at_exit_what_runs_leave(profile_dir);
    assert!(
        bin.exists(),
        "{} is not built; run `cargo build -p {name}` (with the same profile) first",
        bin.display()
    );
    bin
}

static PROFILE_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// What the build's binaries keep between runs by design, removed when
/// the test process exits (after its last test): the read-only copies of
/// berth-runtime and berth-shim (berth_sys::exe_copy) made from this
/// build's directory, and the runtime's default cgroup parent `/berth`
/// where it is empty. scripts/test fails when anything is left after the
/// suite.
fn remove_at_exit_what_runs_leave(profile_dir: &Path) {
    if PROFILE_DIR.set(profile_dir.to_path_buf()).is_ok() {
        berth_sys::process::at_exit(remove_what_runs_left)
            .expect("registering the removal of the build's leftovers");
    }
}

extern "C" fn remove_what_runs_left() {
    if let Some(dir) = PROFILE_DIR.get() {
        crate::leaks::remove_runtime_copies_from(std::slice::from_ref(dir));
    }
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            let _ = std::fs::remove_dir(h.path().join("berth"));
        }
    }
}

/// One test's world: a state root, bundles, and the ids it used. Call
/// [`TestEnv::finish`] at the end: it deletes what remains and asserts that
/// nothing leaked.
pub struct TestEnv {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub state_root: PathBuf,
    pub binary: PathBuf,
    ids: Vec<String>,
    extra_paths: Vec<PathBuf>,
    finished: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestEnv {
    pub fn new(name: &str) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-it-{name}-"))
            .tempdir()
            .expect("temp dir");
        let state_root = dir.path().join("state");
        TestEnv {
            name: name.to_string(),
            state_root,
            dir,
            binary: berth_binary("berth-runtime"),
            ids: Vec::new(),
            extra_paths: Vec::new(),
            finished: false,
        }
    }

    /// A fresh container id for this test (also registered for the leak check).
    pub fn id(&mut self) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "it-{}-{}-{n}",
            self.name.replace('_', "-"),
            std::process::id()
        );
        self.ids.push(id.clone());
        id
    }

    pub fn marker(&self) -> String {
        format!("BERTH_IT_MARKER={}-{}", self.name, std::process::id())
    }

    /// A bundle with runc's default spec, the shared busybox rootfs (read-only),
    /// no terminal, and `args`.
    pub fn bundle(&self, args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("bundle-")
            .tempdir_in(self.dir.path())
            .expect("bundle dir");
        let path = dir.keep();
        let out = Command::new(&self.binary)
            .arg("spec")
            .arg("--bundle")
            .arg(&path)
            .output()
            .expect("running spec");
        assert!(
            out.status.success(),
            "spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut bundle = Bundle {
            dir: path.clone(),
            config: serde_json::from_slice(&std::fs::read(path.join("config.json")).unwrap())
                .unwrap(),
        };
        bundle.config["root"]["path"] = json!(fixtures::busybox_rootfs());
        bundle.config["process"]["terminal"] = json!(false);
        bundle.config["process"]["args"] = json!(args);
        let marker = self.marker();
        bundle.config["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(marker));
        bundle.save();
        bundle
    }

    /// Also check that no mount under `path` remains at the end.
    pub fn watch_path(&mut self, path: &Path) {
        self.extra_paths.push(path.to_path_buf());
    }

    /// Runs the runtime with `args` (after `--root <state>`). Output goes
    /// through files, not pipes: a created container's init inherits the
    /// runtime's stdio and would hold a pipe open for as long as it lives.
    pub fn rt(&self, args: &[&str]) -> Output {
        self.output_of(&mut self.rt_cmd(args))
    }

    /// Runs `cmd` (from `rt_cmd`, adjusted) to its exit, with its output
    /// through files as `rt` does.
    pub fn output_of(&self, cmd: &mut Command) -> Output {
        let out = tempfile::tempfile().expect("temp file");
        let err = tempfile::tempfile().expect("temp file");
        let status = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("running berth-runtime");
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
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

    pub fn rt_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.state_root)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the runtime and asserts success, returning stdout.
    pub fn rt_ok(&self, args: &[&str]) -> String {
        let out = self.rt(args);
        assert!(
            out.status.success(),
            "berth-runtime {args:?} failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run --bundle B ID` to completion: (exit code, stdout, stderr).
    pub fn run(&mut self, bundle: &Bundle) -> (i32, String, String) {
        let id = self.id();
        let out = self.rt(&["run", "--bundle", bundle.dir.to_str().unwrap(), &id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The status field of `state ID`.
    /// The host pid of container `id`'s init, from `state`.
    pub fn init_pid(&self, id: &str) -> i32 {
        let v: Value =
            serde_json::from_str(&self.rt_ok(&["state", id])).expect("state prints JSON");
        v["pid"].as_i64().expect("state has a pid") as i32
    }

    pub fn status(&self, id: &str) -> String {
        let out = self.rt_ok(&["state", id]);
        let v: Value = serde_json::from_str(&out).expect("state prints JSON");
        v["status"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until the container exists and its status is `want` (up to 10 s).
    pub fn wait_status(&self, id: &str, want: &str) {
        for _ in 0..1000 {
            let out = self.rt(&["state", id]);
            let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if state["status"] == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "container {id} never became {want}; it is {}",
            self.status(id)
        );
    }

    fn cleanup(&self) {
        for id in &self.ids {
            let _ = self.rt(&["delete", "--force", id]);
        }
        crate::leaks::remove_runtime_copies_from(&[self.dir.path().to_path_buf()]);
    }

    /// Deletes what remains and asserts that nothing of this test leaked.
    pub fn finish(mut self) {
        self.finished = true;
        self.cleanup();
        let scope = LeakScope {
            ids: self.ids.clone(),
            state_root: self.state_root.clone(),
            paths: std::iter::once(self.dir.path().to_path_buf())
                .chain(self.extra_paths.clone())
                .collect(),
            env_marker: self.marker(),
        };
        // Processes killed a moment ago may still be exiting.
        let mut leaks = find_leaks(&scope);
        for _ in 0..200 {
            if leaks.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            leaks = find_leaks(&scope);
        }
        assert!(
            leaks.is_empty(),
            "test {} leaked:\n{}",
            self.name,
            leaks.join("\n")
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !self.finished {
            self.cleanup();
        }
    }
}

/// A bundle directory and its config, edited as JSON.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Edits the config and saves it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}
