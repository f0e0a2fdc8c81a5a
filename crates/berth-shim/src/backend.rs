//! Who runs the container: the embedded runtime library (the default, no
//! extra exec) or an external OCI runtime binary driven with runc's
//! command line (`--runtime PATH`).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_container::{Container, CreateOptions, ExecOptions, Runtime};
use oci_spec::runtime::{LinuxResources, Process};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::stdio::{with_stdio, ChildEnds};

pub enum Backend {
    Embedded(Box<Container>),
    External {
        runtime: PathBuf,
        root: PathBuf,
        id: String,
        state_dir: PathBuf,
    },
}

/// SIGCHLD is blocked in the shim (it arrives on a signalfd); the embedded
/// runtime's children must not inherit that mask, so it is lifted while
/// the runtime forks. A SIGCHLD that arrives meanwhile is lost, so the
/// caller sweeps for exited children afterwards.
fn unmasked<T>(f: impl FnOnce() -> T) -> Result<T> {
    berth_sys::signalfd::unblock(&[libc::SIGCHLD]).map_err(Error::sys("unblocking SIGCHLD"))?;
    let out = f();
    berth_sys::signalfd::block(&[libc::SIGCHLD]).map_err(Error::sys("blocking SIGCHLD"))?;
    Ok(out)
}

impl Backend {
    /// Creates the container; returns the backend and the init's pid.
    pub fn create(
        cfg: &Config,
        ends: &ChildEnds,
        console: Option<&Path>,
    ) -> Result<(Backend, i32)> {
        let root = cfg.state_dir.join("runtime");
        match &cfg.runtime {
            None => {
                let rt = Runtime::new(&root);
                let opts = CreateOptions {
                    id: cfg.id.clone(),
                    bundle: cfg.bundle.clone(),
                    console_socket: console.map(Path::to_path_buf),
                    ..Default::default()
                };
                let c = with_stdio(ends, || unmasked(|| rt.create(&opts)))??.map_err(|source| {
                    Error::Container {
                        id: cfg.id.clone(),
                        source,
                    }
                })?;
                let pid = c.record.pid;
                Ok((Backend::Embedded(Box::new(c)), pid))
            }
            Some(runtime) => {
                let b = Backend::External {
                    runtime: runtime.clone(),
                    root,
                    id: cfg.id.clone(),
                    state_dir: cfg.state_dir.clone(),
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
                b.run("create", &args, Some(ends))?;
                let pid = read_pid(&pid_file)?;
                Ok((b, pid))
            }
        }
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
        })?;
        if !out.status.success() {
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            return Err(Error::Runtime {
                runtime: runtime.clone(),
                command,
                message: format!(
                    "{}; {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    logged.trim()
                ),
            });
        }
        let _ = std::fs::remove_file(&log);
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

    fn container_err(c: &Container) -> impl FnOnce(berth_container::Error) -> Error + '_ {
        move |source| Error::Container {
            id: c.id().to_string(),
            source,
        }
    }

    pub fn start(&self) -> Result<()> {
        match self {
            Backend::Embedded(c) => c.start().map_err(Self::container_err(c)),
            Backend::External { .. } => self.ext("start", &[]).map(drop),
        }
    }

    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        match self {
            Backend::Embedded(c) => c.kill(signal, all).map_err(Self::container_err(c)),
            Backend::External { .. } => {
                // runc takes the signal after the id.
                let Backend::External { id, .. } = self else {
                    unreachable!()
                };
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
            Backend::Embedded(c) => c.pause().map_err(Self::container_err(c)),
            Backend::External { .. } => self.ext("pause", &[]).map(drop),
        }
    }

    pub fn resume(&self) -> Result<()> {
        match self {
            Backend::Embedded(c) => c.resume().map_err(Self::container_err(c)),
            Backend::External { .. } => self.ext("resume", &[]).map(drop),
        }
    }

    pub fn stats(&self) -> Result<berth_cgroups::Stats> {
        match self {
            Backend::Embedded(c) => c.stats().map_err(Self::container_err(c)),
            Backend::External { runtime, .. } => {
                let out = self.ext("events", &["--stats"])?;
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
            }
        }
    }

    /// The cgroup's OOM-kill count (0 when the backend cannot tell).
    pub fn oom_kill_count(&self) -> u64 {
        match self {
            Backend::Embedded(c) => c.oom_kill_count().unwrap_or(0),
            Backend::External { .. } => 0,
        }
    }

    pub fn update(&mut self, resources: &LinuxResources) -> Result<()> {
        match self {
            Backend::Embedded(c) => {
                let id = c.id().to_string();
                c.update(resources)
                    .map_err(|source| Error::Container { id, source })
            }
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
    /// ends up a child of the shim (directly, or as the subreaper).
    pub fn exec(
        &self,
        exec_id: &str,
        process: &Process,
        ends: &ChildEnds,
        console: Option<&Path>,
    ) -> Result<i32> {
        match self {
            Backend::Embedded(c) => {
                let opts = ExecOptions {
                    process: process.clone(),
                    console_socket: console.map(Path::to_path_buf),
                    pid_file: None,
                    preserve_fds: 0,
                    sub_cgroups: Vec::new(),
                };
                with_stdio(ends, || unmasked(|| c.exec(&opts)))??.map_err(Self::container_err(c))
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
                r
            }
        }
    }

    /// Deletes the container (killing it first with `force`).
    pub fn delete(&self, force: bool) -> Result<()> {
        match self {
            Backend::Embedded(c) => unmasked(|| c.delete(force))?.map_err(Self::container_err(c)),
            Backend::External { root, .. } => {
                let r = if force {
                    self.ext("delete", &["--force"])
                } else {
                    self.ext("delete", &[])
                };
                let _ = std::fs::remove_dir(root);
                r.map(drop)
            }
        }
    }

    /// Removes the embedded runtime's state root once the container is gone.
    pub fn remove_root(&self) {
        if let Backend::Embedded(c) = self {
            let _ = std::fs::remove_dir(c.root());
        }
    }
}

fn read_pid(path: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(path).map_err(Error::path("reading the pid file", path))?;
    s.trim()
        .parse()
        .map_err(|_| Error::State(format!("pid file {path:?} holds {s:?}, not a pid")))
}
