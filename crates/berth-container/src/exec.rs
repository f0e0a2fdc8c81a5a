//! Running another process inside a running container (`runc exec`).
//!
//! The new process joins every namespace of the container's init (user
//! namespace first) and its cgroup, gets the container's seccomp filter,
//! and the identity, capabilities and limits of its own process spec.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::affinity::ExecAffinity;
use crate::container::Container;
use crate::error::{Error, IoContext, Result};
use crate::init::{self, InitContext};
use crate::namespaces::NsPlan;
use crate::process::ProcessPlan;
use crate::state::Status;
use crate::sync::{self, Msg};

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Sub-cgroups of the container's cgroup to put the process in:
    /// (controller, path below the container's cgroup); no controller means
    /// every hierarchy (runc's `exec --cgroup [ctrl:]path`).
    pub sub_cgroups: Vec<(Option<String>, String)>,
    /// Exec in a paused container too: the process joins the frozen
    /// cgroup and runs once the container is resumed (runc's
    /// `exec --ignore-paused`).
    pub ignore_paused: bool,
}

impl Container {
    /// Starts `opts.process` in the container and returns its pid once it
    /// has exec'd (or the error that kept it from doing so). The process is
    /// a child of the caller, who should wait for it.
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32> {
        match self.status() {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            s => {
                return Err(Error::WrongState {
                    id: self.id().to_string(),
                    status: s.to_string(),
                    message: "cannot exec in a container that is not running".into(),
                })
            }
        }
        let spec = &self.record.spec;
        let linux = spec.linux().clone().unwrap_or_default();
        let types: Vec<LinuxNamespaceType> = linux
            .namespaces()
            .iter()
            .flatten()
            .map(|n| n.typ())
            .collect();
        let ns = NsPlan::join_process(self.record.pid, &types)?;
        let seccomp = match linux.seccomp() {
            Some(profile) => Some(
                berth_seccomp::compile_cached(profile, &self.root().join(".seccomp-cache"))
                    .map_err(|e| Error::Seccomp(e.to_string()))?,
            ),
            None => None,
        };
        if opts.process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
            return Err(Error::InvalidArgument(
                "a terminal needs --console-socket".into(),
            ));
        }
        let process = ProcessPlan::new(&opts.process, Some(&linux), seccomp, opts.preserve_fds)?;
        crate::caps::check_held(process.caps.as_ref(), ns.has_userns)?;
        let seccomp_agent = crate::container::open_seccomp_agent(spec)?;
        let console = opts
            .console_socket
            .as_deref()
            .map(crate::container::connect_unix)
            .transpose()?;
        let affinity = ExecAffinity::of(&opts.process)?;
        let cgroup = self.cgroup_manager()?;
        let (parent_end, child_end) = sync::channel()?;
        let state = self.record.oci_state(Status::Running);
        // The process enters the cgroup by itself, without the kernel's
        // global migration lock (see berth_cgroups::Entry), unless it has a
        // sub-cgroup to enter or CPU affinities to take before and after
        // the move: the parent moves it then.
        let self_entry =
            if opts.sub_cgroups.is_empty() && affinity.initial.is_none() && affinity.last.is_none()
            {
                Some(cgroup.entry().map_err(|e| Error::Cgroup(e.to_string()))?)
            } else {
                None
            };
        let forked = crate::container::clone_into_cgroup(0, self_entry.as_ref())
            .ctx(|| "creating the exec process")?;
        let child = match forked {
            berth_sys::process::Forked::Child => {
                drop(parent_end);
                init::run(InitContext {
                    spec,
                    rootfs: &self.record.rootfs,
                    ns: &ns,
                    process: &process,
                    sync: &child_end,
                    exec_fifo: None,
                    console_socket: console.as_ref(),
                    no_pivot: false,
                    no_new_keyring: true,
                    cgroup_entry: self_entry.as_ref(),
                    cgroup_mounts: Vec::new(),
                    bind_sources: &[],
                    seccomp_agent: seccomp_agent.as_ref(),
                    has_create_runtime_hooks: false,
                    state,
                })
            }
            berth_sys::process::Forked::Parent { child } => child,
        };
        drop(child_end);
        drop(console);
        let reap = |pid: i32| {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
            }
        };
        let fail = |e: Error, pids: &[i32]| {
            for pid in pids {
                if let Some(p) = rustix::process::Pid::from_raw(*pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                reap(*pid);
            }
            e
        };
        // The child waits for Go: pin it before and after it changes cgroup.
        if let Err(e) = ExecAffinity::apply(affinity.initial.as_ref(), child, "initial") {
            return Err(fail(e, &[child]));
        }
        if self_entry.is_none() {
            if let Err(e) = cgroup.add_process(child) {
                return Err(fail(Error::Cgroup(e.to_string()), &[child]));
            }
            if let Err(e) = join_sub_cgroups(&cgroup.paths(), &opts.sub_cgroups, child) {
                return Err(fail(e, &[child]));
            }
            if let Err(e) = ExecAffinity::apply(affinity.last.as_ref(), child, "final") {
                return Err(fail(e, &[child]));
            }
        }
        if let Err(e) = parent_end.send(&Msg::Go) {
            return Err(fail(e, &[child]));
        }
        let mut pid = child;
        loop {
            match parent_end.recv() {
                Ok(Some(Msg::InitPid(p))) => {
                    pid = p;
                    reap(child);
                }
                // The channel closes on exec (it is close-on-exec): success.
                Ok(None) => break,
                Ok(Some(Msg::Error(message))) => {
                    let id = self.id().to_string();
                    return Err(fail(Error::Exec { id, message }, &[pid]));
                }
                Ok(Some(other)) => {
                    return Err(fail(
                        Error::Exec {
                            id: self.id().to_string(),
                            message: format!("unexpected message {other:?}"),
                        },
                        &[pid],
                    ))
                }
                Err(e) => return Err(fail(e, &[pid])),
            }
        }
        if let Some(pid_file) = &opts.pid_file {
            crate::state::write_atomic(&absolute(pid_file)?, pid.to_string().as_bytes(), 0o644)?;
        }
        Ok(pid)
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .ctx(|| "getting the working directory")?
            .join(p))
    }
}

/// Moves `pid` into sub-cgroups of the container's cgroup directories.
fn join_sub_cgroups(dirs: &[PathBuf], subs: &[(Option<String>, String)], pid: i32) -> Result<()> {
    for (controller, sub) in subs {
        let rel = Path::new(sub.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::InvalidArgument(format!(
                "--cgroup: {sub} is not a sub cgroup path"
            )));
        }
        let targets: Vec<&PathBuf> = dirs
            .iter()
            .filter(|d| controller.as_deref().is_none_or(|c| hierarchy_has(d, c)))
            .collect();
        if let Some(c) = controller {
            if targets.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "--cgroup: unknown controller {c:?}"
                )));
            }
        }
        for dir in targets {
            let procs = dir.join(rel).join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .ctx(|| format!("--cgroup: adding pid {pid} to {}", procs.display()))?;
        }
    }
    Ok(())
}

/// Does the cgroup directory lie in the hierarchy of `controller`? (Its
/// mount point, such as /sys/fs/cgroup/cpu,cpuacct, names the controllers.)
fn hierarchy_has(dir: &Path, controller: &str) -> bool {
    dir.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|name| name.split(',').any(|n| n == controller))
    })
}
