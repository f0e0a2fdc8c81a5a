//! Who runs the container: the embedded runtime library (the default, no
//! extra exec) or an external OCI runtime binary driven with runc's
//! command line (`--runtime PATH`).
//!
//! Every operation of the embedded runtime but delete runs in a forked
//! helper (`helper`), which loads the container's record from its state
//! root itself: the supervisor never parses a spec while it serves, so it
//! stays small. The delete, after which the shim quits, runs in the
//! supervisor, and so do a kill that comes to one kill(2) of the live
//! init (see `signal_init`) and a start that comes to the release of the
//! exec fifo (no poststart hooks; the create's helper says which).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_container::{Container, CreateOptions, ExecOptions, Runtime};
use oci_spec::runtime::{LinuxResources, Process};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::helper;
use crate::stdio::ChildEnds;

pub enum Backend {
    Embedded {
        runtime: Runtime,
        id: String,
        /// Where the cgroup's OOM-kill count is read at each exit, without
        /// a helper (None: no memory controller, so no count).
        oom_file: Option<PathBuf>,
        /// The exec fifo, when the start is its release alone (no
        /// poststart hooks): the supervisor does it without a helper.
        start_fifo: Option<PathBuf>,
    },
    External {
        runtime: PathBuf,
        root: PathBuf,
        id: String,
        state_dir: PathBuf,
        /// The container's cgroup, read from its init's /proc/PID/cgroup:
        /// stats come from cgroupfs when the runtime has no `events`
        /// (crun).
        cgroup: Option<String>,
    },
}

/// What `create` learns.
pub struct Created {
    /// The container init's host pid.
    pub pid: i32,
    /// The cgroup's OOM-kill count before the container ran.
    pub oom_base: u64,
}

fn container_err(id: &str) -> impl FnOnce(berth_container::Error) -> Error + '_ {
    move |source| Error::Container {
        id: id.to_string(),
        source,
    }
}

/// Makes `ends` the calling helper's fds 0, 1 and 2, which the runtime's
/// children inherit.
fn take_stdio(ends: &ChildEnds) -> Result<()> {
    let set = |e: rustix::io::Errno| Error::sys("setting stdio")(e.into());
    rustix::stdio::dup2_stdin(&ends.stdin).map_err(set)?;
    rustix::stdio::dup2_stdout(&ends.stdout).map_err(set)?;
    rustix::stdio::dup2_stderr(&ends.stderr).map_err(set)
}

impl Backend {
    /// Creates the container.
    pub fn create(
        cfg: &Config,
        ends: &ChildEnds,
        console: Option<&Path>,
    ) -> Result<(Backend, Created)> {
        let root = cfg.state_dir.join("runtime");
        match &cfg.runtime {
            None => {
                let runtime = Runtime::new(&root);
                // Here, not in the helper: the cgroup mounts it reads are
                // then known to every later helper (start, delete) too. A
                // failure shows again, in create's own error.
                let _ = berth_cgroups::detect();
                let created = helper::run(|| {
                    let bundle = berth_container::config::Bundle::load(&cfg.bundle)
                        .map_err(container_err(&cfg.id))?;
                    // What the runtime accepts but ignores, for whoever reads shim.log.
                    for w in &bundle.warnings {
                        eprintln!("berth-shim: warning: {w}");
                    }
                    take_stdio(ends)?;
                    let program = program_of(bundle.spec.process().as_ref());
                    let opts = CreateOptions {
                        id: cfg.id.clone(),
                        bundle: cfg.bundle.clone(),
                        console_socket: console.map(Path::to_path_buf),
                        ..Default::default()
                    };
                    let c = runtime
                        .create_bundle(&bundle, &opts)
                        .map_err(container_err(&cfg.id))
                        .map_err(|e| e.start_failure(&program))?;
                    let oom_file = c.oom_kill_file().ok().flatten();
                    let oom_base = oom_count(oom_file.as_deref());
                    Ok((c.record.pid, oom_base, oom_file, c.bare_start_fifo()))
                });
                let (pid, oom_base, oom_file, start_fifo) = created?;
                let b = Backend::Embedded {
                    runtime,
                    id: cfg.id.clone(),
                    oom_file,
                    start_fifo,
                };
                Ok((b, Created { pid, oom_base }))
            }
            Some(runtime) => {
                let mut b = Backend::External {
                    runtime: runtime.clone(),
                    root,
                    id: cfg.id.clone(),
                    state_dir: cfg.state_dir.clone(),
                    cgroup: None,
                };
                let pid_file = cfg.state_dir.join("init.pid");
                let mut args: Vec<std::ffi::OsString> = vec![
                    "create".into(),
                    "--bundle".into(),
                    cfg.bundle.clone().into(),
                    "--pid-file".into(),
                    pid_file.clone().into(),
                ];
                if let Some(c) = console {
                    args.push("--console-socket".into());
                    args.push(c.into());
                }
                args.push(cfg.id.clone().into());
                let r = b
                    .run("create", &args, Some(ends))
                    .and_then(|_| read_pid(&pid_file));
                let _ = std::fs::remove_file(&pid_file);
                let pid = r.map_err(|e| e.start_failure(&bundle_program(&cfg.bundle)))?;
                if let Backend::External { cgroup, .. } = &mut b {
                    *cgroup = cgroup_of(pid);
                }
                Ok((b, Created { pid, oom_base: 0 }))
            }
        }
    }

    /// Runs `f` on the embedded container in a helper.
    fn embedded<T>(&self, f: impl FnOnce(&mut Container) -> berth_container::Result<T>) -> Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let Backend::Embedded { runtime, id, .. } = self else {
            unreachable!("only for the embedded runtime")
        };
        helper::run(|| {
            let mut c = runtime.load(id).map_err(container_err(id))?;
            f(&mut c).map_err(container_err(id))
        })
    }

    /// Runs the external runtime with `--root` and `args`; stdio is
    /// `ends` (for create and exec) or nothing.
    fn run(
        &self,
        command: &'static str,
        args: &[std::ffi::OsString],
        ends: Option<&ChildEnds>,
    ) -> Result<Vec<u8>> {
        let Backend::External { runtime, root, .. } = self else {
            unreachable!("run is only called for an external runtime")
        };
        let dup = |fd: &OwnedFd| -> Result<Stdio> {
            Ok(Stdio::from(
                fd.try_clone().map_err(Error::sys("duplicating stdio"))?,
            ))
        };
        // The runtime's own errors go to its log (its stderr may be the
        // container's); `--root` and `--log` are global flags.
        let log = root.join(format!("{command}.log"));
        let _ = std::fs::create_dir_all(root);
        let mut all: Vec<std::ffi::OsString> = vec![
            "--root".into(),
            root.clone().into(),
            "--log".into(),
            log.clone().into(),
        ];
        all.extend(args.iter().cloned());
        let mut cmd = Command::new(runtime);
        cmd.args(&all);
        match ends {
            Some(e) => {
                cmd.stdin(dup(&e.stdin)?)
                    .stdout(dup(&e.stdout)?)
                    .stderr(dup(&e.stderr)?);
            }
            None => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
        }
        let out = cmd.output().map_err(|e| Error::Runtime {
            runtime: runtime.clone(),
            command,
            message: e.to_string(),
        });
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let out = out?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let message = [stderr.trim(), &runtime_log_messages(&logged)]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Runtime {
                runtime: runtime.clone(),
                command,
                message: format!("{}: {message}", out.status),
            });
        }
        Ok(out.stdout)
    }

    fn ext(&self, command: &'static str, args: &[&str]) -> Result<Vec<u8>> {
        let Backend::External { id, .. } = self else {
            unreachable!()
        };
        let mut v: Vec<std::ffi::OsString> = vec![command.into()];
        v.extend(args.iter().map(|a| a.into()));
        v.push(id.into());
        self.run(command, &v, None)
    }

    /// Lets the container's init exec its program. The caller knows the
    /// container was created and not started, with its init alive.
    pub fn start(&self) -> Result<()> {
        match self {
            Backend::Embedded {
                start_fifo: Some(fifo),
                id,
                ..
            } => berth_container::container::release_init(id, fifo).map_err(container_err(id)),
            Backend::Embedded { .. } => self.embedded(|c| c.start()),
            Backend::External { .. } => self.ext("start", &[]).map(drop),
        }
    }

    /// Sends `signal` to the container's init, or with `all` to all of its
    /// processes. `live_init` is the init's pid while the shim has not
    /// reaped it: the pid cannot name another process until then.
    pub fn kill(&self, signal: i32, all: bool, live_init: Option<i32>) -> Result<()> {
        match self {
            Backend::Embedded { .. } => {
                // What the embedded runtime's kill would come to, without
                // a helper's fork and a read of the container's record:
                // stop, kill and `rm -f` wait for it.
                if let Some(done) = live_init.and_then(|pid| signal_init(pid, signal, all)) {
                    return done;
                }
                self.embedded(|c| c.kill(signal, all))
            }
            Backend::External { id, .. } => {
                // runc takes the signal after the id.
                let mut v: Vec<std::ffi::OsString> = vec!["kill".into()];
                if all {
                    v.push("--all".into());
                }
                v.push(id.into());
                v.push(signal.to_string().into());
                self.run("kill", &v, None).map(drop)
            }
        }
    }

    pub fn pause(&self) -> Result<()> {
        match self {
            Backend::Embedded { .. } => self.embedded(|c| c.pause()),
            Backend::External { .. } => self.ext("pause", &[]).map(drop),
        }
    }

    pub fn resume(&self) -> Result<()> {
        match self {
            Backend::Embedded { .. } => self.embedded(|c| c.resume()),
            Backend::External { .. } => self.ext("resume", &[]).map(drop),
        }
    }

    pub fn stats(&self) -> Result<berth_cgroups::Stats> {
        match self {
            Backend::Embedded { .. } => self.embedded(|c| c.stats()),
            Backend::External {
                runtime,
                id,
                cgroup,
                ..
            } => {
                let events = self.ext("events", &["--stats"]).and_then(|out| {
                    #[derive(serde::Deserialize)]
                    struct Event {
                        data: berth_cgroups::Stats,
                    }
                    serde_json::from_slice::<Event>(&out)
                        .map(|e| e.data)
                        .map_err(|e| Error::Runtime {
                            runtime: runtime.clone(),
                            command: "events",
                            message: format!("unreadable stats: {e}"),
                        })
                });
                match (events, cgroup) {
                    (Ok(s), _) => Ok(s),
                    (Err(e), Some(path)) => berth_cgroups::detect()
                        .and_then(|layout| berth_cgroups::manager(&layout, Some(path), id))
                        .and_then(|m| m.stats())
                        .map_err(|_| e),
                    (Err(e), None) => Err(e),
                }
            }
        }
    }

    /// The cgroup's OOM-kill count (0 when the backend cannot tell).
    pub fn oom_kill_count(&self) -> u64 {
        match self {
            // One small file read: no helper after every exit.
            Backend::Embedded { oom_file, .. } => oom_count(oom_file.as_deref()),
            Backend::External { .. } => 0,
        }
    }

    pub fn update(&mut self, resources: &LinuxResources) -> Result<()> {
        match self {
            Backend::Embedded { .. } => self.embedded(|c| c.update(resources)),
            Backend::External { state_dir, .. } => {
                let path = state_dir.join("resources.json");
                let json = serde_json::to_vec(resources).expect("resources encode");
                std::fs::write(&path, json).map_err(Error::path("writing", &path))?;
                let r = self.ext("update", &["--resources", &path.to_string_lossy()]);
                let _ = std::fs::remove_file(&path);
                r.map(drop)
            }
        }
    }

    /// Starts `process` in the container; returns its pid. The process
    /// ends up a child of the shim (reparented to it as the subreaper).
    /// A program that is missing or not executable is
    /// [`Error::CannotStart`].
    pub fn exec(
        &self,
        exec_id: &str,
        process: &Process,
        ends: &ChildEnds,
        console: Option<&Path>,
    ) -> Result<i32> {
        let program = program_of(Some(process));
        match self {
            Backend::Embedded { .. } => {
                let opts = ExecOptions {
                    process: process.clone(),
                    console_socket: console.map(Path::to_path_buf),
                    pid_file: None,
                    preserve_fds: 0,
                    sub_cgroups: Vec::new(),
                    // docker refuses exec in a paused container first.
                    ignore_paused: false,
                };
                self.embedded(|c| {
                    take_stdio(ends).map_err(|e| {
                        berth_container::Error::Init(format!("setting up stdio: {e}"))
                    })?;
                    c.exec(&opts)
                })
                .map_err(|e| e.start_failure(&program))
            }
            Backend::External { state_dir, id, .. } => {
                let spec = state_dir.join(format!("exec-{exec_id}.json"));
                let pid_file = state_dir.join(format!("exec-{exec_id}.pid"));
                let json = serde_json::to_vec(process).expect("process encodes");
                std::fs::write(&spec, json).map_err(Error::path("writing", &spec))?;
                let mut args: Vec<std::ffi::OsString> = vec![
                    "exec".into(),
                    "--detach".into(),
                    "--process".into(),
                    spec.clone().into(),
                    "--pid-file".into(),
                    pid_file.clone().into(),
                ];
                if let Some(c) = console {
                    args.push("--console-socket".into());
                    args.push(c.into());
                }
                args.push(id.into());
                let r = self
                    .run("exec", &args, Some(ends))
                    .and_then(|_| read_pid(&pid_file));
                let _ = std::fs::remove_file(&spec);
                let _ = std::fs::remove_file(&pid_file);
                r.map_err(|e| e.start_failure(&program))
            }
        }
    }

    /// Deletes the container (killing it first with `force`).
    ///
    /// The embedded runtime deletes in the supervisor itself, not in a
    /// helper: the shim quits right after a delete, so what the runtime
    /// maps and allocates need not be kept off the supervisor, and every
    /// container's removal (which waits for this) saves a fork. Poststop
    /// hooks run from here as well: std's Command gives them an empty
    /// signal mask, not the supervisor's blocked SIGCHLD.
    pub fn delete(&self, force: bool) -> Result<()> {
        match self {
            Backend::Embedded { runtime, id, .. } => runtime
                .load(id)
                .and_then(|c| c.delete(force))
                .map_err(container_err(id)),
            Backend::External { .. } => {
                if force {
                    self.ext("delete", &["--force"]).map(drop)
                } else {
                    self.ext("delete", &[]).map(drop)
                }
            }
        }
    }

    /// Removes the runtime's state root once the container is gone (only
    /// if empty: it is the shim's, but a runtime may keep more there).
    pub fn remove_root(&self) {
        let root = match self {
            Backend::Embedded { runtime, .. } => runtime.root.clone(),
            Backend::External { root, .. } => root.clone(),
        };
        // The embedded runtime's seccomp cache lives in the root.
        let _ = std::fs::remove_dir_all(root.join(".seccomp-cache"));
        let _ = std::fs::remove_dir(root);
    }
}

/// The OOM-kill count in `file` (0 without a memory controller or once
/// the cgroup is gone).
fn oom_count(file: Option<&Path>) -> u64 {
    file.and_then(|f| berth_cgroups::read_oom_kill_count(f).ok())
        .unwrap_or(0)
}

/// The cgroup of `pid` as /proc/PID/cgroup names it (the pids or memory
/// hierarchy on cgroup v1, the unified one on v2).
fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if ctrls.split(',').any(|c| c == "pids" || c == "memory") {
            return Some(path.to_string());
        }
        if ctrls.is_empty() {
            unified = Some(path.to_string());
        }
    }
    unified
}

/// The program a process runs (its first argument), for reading errors.
fn program_of(p: Option<&Process>) -> String {
    p.and_then(|p| p.args().as_ref())
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default()
}

/// The program of the bundle's process, read without parsing the whole spec.
fn bundle_program(bundle: &Path) -> String {
    let Ok(bytes) = std::fs::read(bundle.join("config.json")) else {
        return String::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["process"]["args"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The messages of a runtime's `--log` (JSON lines with `msg`, as runc
/// and crun write them; other lines as they are).
fn runtime_log_messages(log: &str) -> String {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["msg"].as_str().map(String::from))
                .unwrap_or_else(|| l.trim().to_string())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn read_pid(path: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(path).map_err(Error::path("reading the pid file", path))?;
    s.trim()
        .parse()
        .map_err(|_| Error::State(format!("pid file {path:?} holds {s:?}, not a pid")))
}

/// Signals a live init directly where the embedded runtime's `kill`
/// would end in the same kill(2). None where only the runtime can: a
/// signal for every process of the container, which it finds in the
/// cgroup. Except a SIGKILL to an init that is its pid namespace's init:
/// its death takes every process of the namespace with it, and nothing
/// forks past the kernel's kill (`docker rm -f`). A SIGKILL to any other
/// init means all processes too (runc 1.2): for the runtime.
fn signal_init(pid: i32, signal: i32, all: bool) -> Option<Result<()>> {
    let direct = if signal == libc::SIGKILL {
        is_pid_namespace_init(pid)
    } else {
        !all
    };
    if !direct {
        return None;
    }
    if signal == 0 {
        return Some(Ok(()));
    }
    Some(signal_process(
        pid,
        signal,
        "signalling the container's init",
    ))
}

/// kill(2) of a process this shim has not reaped yet (its pid is still
/// its own), with the signal number a client sent.
pub fn signal_process(pid: i32, signal: i32, op: &'static str) -> Result<()> {
    let sig = rustix::process::Signal::from_named_raw(signal)
        .ok_or_else(|| Error::Usage(format!("invalid signal {signal}")))?;
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| Error::State(format!("no process to signal (pid {pid})")))?;
    rustix::process::kill_process(pid, sig).map_err(|e| Error::sys(op)(e.into()))
}

/// Whether `pid` is pid 1 of a pid namespace below ours (`NSpid` in its
/// status lists its pid in each namespace, ours first). Unknown counts as
/// no: the runtime decides.
fn is_pid_namespace_init(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|ids| ids.split_whitespace().collect::<Vec<_>>())
        .is_some_and(|ids| ids.len() > 1 && ids.last() == Some(&"1"))
}
