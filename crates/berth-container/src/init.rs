//! The child side of create and exec: everything between clone3 and execve.
//!
//! This code runs in a forked copy of the runtime. It must not return into
//! the caller's code: it either execs the container's program or exits.
//! Failures before the parent stops listening go back over the sync channel
//! as one message; later ones go to stderr.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::namespaces::NsPlan;
use crate::process::ProcessPlan;
use crate::rootfs::{self, CgroupMount, RootfsPlan};
use crate::state::OciState;
use crate::sync::{Channel, Msg};

pub struct InitContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub ns: &'a NsPlan,
    pub process: &'a ProcessPlan,
    pub sync: &'a Channel,
    /// The exec fifo (opened O_RDWR); None for exec, which starts at once.
    pub exec_fifo: Option<&'a OwnedFd>,
    pub console_socket: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The cgroup this process enters by itself once told to go; None to
    /// stay where the parent put it.
    pub cgroup_entry: Option<&'a berth_cgroups::Entry>,
    pub cgroup_mounts: Vec<CgroupMount>,
    /// Per mount: its bind source, opened by the parent (see `idmap`).
    pub bind_sources: &'a [Option<crate::idmap::BindSource>],
    pub has_create_runtime_hooks: bool,
    /// The seccomp agent's socket (linux.seccomp.listenerPath), opened O_PATH by
    /// the parent on the host: after pivot_root the path would name a file
    /// in the container. Reached through /proc/self/fd.
    pub seccomp_agent: Option<&'a OwnedFd>,
    /// The state handed to createContainer/startContainer hooks and seccomp agents.
    pub state: OciState,
}

type Res<T = ()> = Result<T, String>;

/// Never returns: execs the container process or exits.
pub fn run(ctx: InitContext<'_>) -> ! {
    let err = match setup(&ctx) {
        Ok(Stage::Exit) => berth_sys::process::exit_now(0),
        Ok(Stage::Exec(path, home)) => match berth_sys::process::reset_signal_dispositions() {
            Ok(()) => ctx.process.exec(&path, home.as_ref()),
            Err(e) => format!("resetting signal dispositions: {e}"),
        },
        Err(e) => e,
    };
    report(&ctx, err);
    berth_sys::process::exit_now(if ctx.exec_fifo.is_some() { 1 } else { 127 })
}

/// Sends the error to the parent if it still listens, else prints it on
/// the container's stderr as runc does (`exec /x: no such file or directory`).
fn report(ctx: &InitContext<'_>, message: String) {
    if ctx.sync.send(&Msg::Error(message.clone())).is_err() {
        eprintln!("{message}");
    }
}

enum Stage {
    /// This process was only the first of two forks: its job is done.
    Exit,
    /// The program, and the HOME to set if the process has none.
    Exec(std::ffi::CString, Option<std::ffi::CString>),
}

fn setup(ctx: &InitContext<'_>) -> Res<Stage> {
    let die_with_parent =
        || berth_sys::process::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as _, 0).map(drop);
    die_with_parent().map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    // Until execve, nothing in the container may ptrace us or open our
    // /proc files (our fds are host files). In a new user namespace a
    // non-dumpable process could not write its own /proc files, and the
    // namespace's processes are not privileged over us anyway.
    if !ctx.ns.has_userns {
        berth_sys::process::prctl(libc::PR_SET_DUMPABLE, 0, 0)
            .map_err(|e| format!("PR_SET_DUMPABLE: {e}"))?;
    }
    ctx.sync.expect(&Msg::Go).map_err(|e| e.to_string())?;
    // Before the cgroup namespace, whose root is the cgroup at its creation.
    if let Some(entry) = ctx.cgroup_entry {
        entry.join_v1().map_err(|e| e.to_string())?;
    }
    enter_namespaces(ctx)?;
    if ctx.ns.needs_fork {
        match berth_sys::process::clone3(berth_sys::process::CloneArgs {
            flags: libc::CLONE_PARENT as u64,
            into_cgroup: None,
        })
        .map_err(|e| format!("forking into the pid namespace: {e}"))?
        {
            berth_sys::process::Forked::Parent { child } => {
                ctx.sync
                    .send(&Msg::InitPid(child))
                    .map_err(|e| e.to_string())?;
                return Ok(Stage::Exit);
            }
            berth_sys::process::Forked::Child => {
                die_with_parent().map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
            }
        }
    }
    // Our pid as the host sees it, while /proc is still the host's.
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or(ctx.state.pid);
    let is_init = ctx.exec_fifo.is_some();
    if is_init {
        if !ctx.no_new_keyring {
            join_session_keyring()?;
        }
        prepare_container(ctx)?;
    }
    ctx.process.setup_privileged(ctx.console_socket)?;
    let exe = ctx.process.resolve_executable()?;
    let home = ctx.process.default_home();
    let cwd_done = ctx
        .process
        .chdir()
        .map_err(|e| format!("process.cwd: chdir to {:?}: {e}", ctx.process.cwd))?;
    if let Some(fifo) = ctx.exec_fifo {
        berth_sys::process::prctl(libc::PR_SET_PDEATHSIG, 0, 0)
            .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
        ctx.sync.send(&Msg::Ready).map_err(|e| e.to_string())?;
        wait_for_start(fifo)?;
    } else {
        // An exec'd process must outlive the runtime: shims run every
        // `docker exec` as `exec --detach`. Cleared before seccomp, which
        // may deny prctl; a parent that died before this has already
        // delivered the signal, so no failure goes unnoticed.
        berth_sys::process::prctl(libc::PR_SET_PDEATHSIG, 0, 0)
            .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    }
    // Mark every inherited fd close-on-exec now: a seccomp profile may deny
    // the syscalls for it once loaded (CVE-2024-21626 is about these fds).
    ctx.process
        .seal_fds()
        .map_err(|e| format!("closing inherited file descriptors: {e}"))?;
    let hand_listener = |listener: OwnedFd| send_seccomp_listener(ctx, host_pid, &listener);
    ctx.process.drop_privileges(cwd_done, &hand_listener)?;
    ctx.process.load_late_seccomp(&hand_listener)?;
    // As runc: startContainer hooks run last, as the container's user and
    // under its seccomp filter, with the process's environment by default.
    if ctx.exec_fifo.is_some() {
        let mut state = ctx.state.clone();
        state.status = crate::state::Status::Running;
        state.pid = host_pid;
        let hooks = ctx
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().clone())
            .unwrap_or_default();
        let mut env = ctx
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default();
        // The environment the process will get, HOME included (runc's
        // hooks see the HOME it looked up in /etc/passwd).
        if let Some(home) = &home {
            env.retain(|e| !e.starts_with("HOME="));
            env.push(home.to_string_lossy().into_owned());
        }
        crate::hooks::run_all_with_env("startContainer", &hooks, &state, &env, None)
            .map_err(|e| e.to_string())?;
    }
    Ok(Stage::Exec(exe, home))
}

/// Hands the seccomp notify fd to the agent at linux.seccomp.listenerPath
/// with the container's state (its pid as the host sees it).
fn send_seccomp_listener(ctx: &InitContext<'_>, host_pid: i32, listener: &OwnedFd) -> Res {
    let Some(seccomp) = ctx.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    let Some(path) = seccomp.listener_path() else {
        return Err("linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath".into());
    };
    let via_fd = ctx
        .seccomp_agent
        .map(|fd| crate::paths::proc_fd_path(fd.as_fd()));
    let path = via_fd.as_deref().unwrap_or(path);
    let mut state = ctx.state.clone();
    state.pid = host_pid;
    state.status = crate::state::Status::Creating;
    let meta = seccomp.listener_metadata().as_deref();
    berth_seccomp::send_listener(path, meta, &state, listener.as_fd())
        .map_err(|e| format!("sending the seccomp listener: {e}"))
}

fn enter_namespaces(ctx: &InitContext<'_>) -> Res {
    let ns = ctx.ns;
    for (fd, t) in ns
        .joins
        .iter()
        .filter(|(_, t)| *t == LinuxNamespaceType::User)
    {
        berth_sys::process::setns(fd.as_fd(), crate::namespaces::flag(*t))
            .map_err(|e| format!("joining the user namespace: {e}"))?;
    }
    if ns.new_userns && !ns.userns_in_clone() {
        berth_sys::process::unshare(libc::CLONE_NEWUSER)
            .map_err(|e| format!("creating a user namespace: {e}"))?;
        ctx.sync
            .send(&Msg::MapsRequest)
            .map_err(|e| e.to_string())?;
        ctx.sync.expect(&Msg::MapsDone).map_err(|e| e.to_string())?;
    }
    if ns.has_userns {
        berth_sys::ids::setresgid(0)
            .map_err(|e| format!("becoming gid 0 in the user namespace (is it mapped?): {e}"))?;
        berth_sys::ids::setresuid(0)
            .map_err(|e| format!("becoming uid 0 in the user namespace (is it mapped?): {e}"))?;
        // Changing the euid made us non-dumpable (fs.suid_dumpable is 0),
        // which hands our /proc files to the host's root, an unmapped owner
        // here: writing /proc/self/timens_offsets would fail with EACCES.
        // In a user namespace we stay dumpable, as decided in setup().
        berth_sys::process::prctl(libc::PR_SET_DUMPABLE, 1, 0)
            .map_err(|e| format!("PR_SET_DUMPABLE after the uid change: {e}"))?;
    }
    for (fd, t) in ns
        .joins
        .iter()
        .filter(|(_, t)| *t != LinuxNamespaceType::User)
    {
        berth_sys::process::setns(fd.as_fd(), crate::namespaces::flag(*t))
            .map_err(|e| format!("joining the {t} namespace: {e}"))?;
    }
    let unshare = ns.unshare_flags & !libc::CLONE_NEWUSER;
    if unshare != 0 {
        berth_sys::process::unshare(unshare).map_err(|e| format!("creating namespaces: {e}"))?;
    }
    if unshare & libc::CLONE_NEWTIME != 0 {
        write_time_offsets(ctx.spec)?;
    }
    Ok(())
}

/// Clock offsets of a new time namespace: written after unshare and before
/// the fork that enters it (the kernel refuses them once a process is in).
fn write_time_offsets(spec: &Spec) -> Res {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    for (clock, off) in offsets {
        let line = format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        );
        std::fs::write("/proc/self/timens_offsets", &line)
            .map_err(|e| format!("linux.timeOffsets: writing {:?}: {e}", line.trim_end()))?;
    }
    Ok(())
}

/// The container's own world: rootfs, hooks, pivot_root, hostname, sysctls.
fn prepare_container(ctx: &InitContext<'_>) -> Res {
    let spec = ctx.spec;
    if ctx.ns.has_mountns {
        rootfs::prepare(&RootfsPlan {
            spec,
            rootfs: ctx.rootfs,
            in_userns: ctx.ns.has_userns,
            new_cgroupns: ctx.ns.new_cgroupns,
            cgroup_mounts: ctx.cgroup_mounts.clone(),
            bind_sources: ctx.bind_sources,
        })?;
        ensure_cwd(ctx)?;
    }
    if ctx.has_create_runtime_hooks {
        ctx.sync
            .send(&Msg::RunCreateRuntimeHooks)
            .map_err(|e| e.to_string())?;
        ctx.sync
            .expect(&Msg::HooksDone)
            .map_err(|e| e.to_string())?;
    }
    let hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
        .unwrap_or_default();
    crate::hooks::run_all_with_env("createContainer", &hooks, &ctx.state, &[], Some(ctx.rootfs))
        .map_err(|e| e.to_string())?;
    if ctx.ns.has_mountns {
        rootfs::enter(ctx.rootfs, ctx.no_pivot)?;
    }
    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !ctx.ns.has_utsns {
            return Err(
                "hostname: setting a hostname needs a UTS namespace of the container's own".into(),
            );
        }
        rustix::system::sethostname(name.as_bytes())
            .map_err(|e| format!("hostname: {}", std::io::Error::from(e)))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        if !ctx.ns.has_utsns {
            return Err(
                "domainname: setting a domainname needs a UTS namespace of the container's own"
                    .into(),
            );
        }
        rustix::system::setdomainname(name.as_bytes())
            .map_err(|e| format!("domainname: {}", std::io::Error::from(e)))?;
    }
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        crate::sysctl::write(key, value)
            .map_err(|e| format!("linux.sysctl: {key}={value}: {e}"))?;
    }
    // Masked and read-only paths last: sysctls above write through /proc/sys.
    if ctx.ns.has_mountns {
        rootfs::finish(spec, ctx.ns.has_userns)?;
    }
    Ok(())
}

/// runc creates a missing working directory inside the rootfs; so do we.
fn ensure_cwd(ctx: &InitContext<'_>) -> Res {
    let root = rustix::fs::open(
        ctx.rootfs,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("opening the rootfs: {}", std::io::Error::from(e)))?;
    crate::paths::mkdir_all_in_root(root.as_fd(), &ctx.process.cwd, crate::paths::Leaf::Dir)
        .map(drop)
        .map_err(|e| {
            format!(
                "process.cwd: creating {:?}: {}",
                ctx.process.cwd,
                std::io::Error::from(e)
            )
        })
}

/// A fresh session keyring, so containers do not share the host's keys.
fn join_session_keyring() -> Res {
    match berth_sys::process::join_session_keyring() {
        Ok(()) => Ok(()),
        // Kernels without keyrings, or a user namespace that may not: runc goes on too.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("creating a session keyring: {e}")),
    }
}

/// Blocks until `start` writes a byte into the exec fifo.
fn wait_for_start(fifo: &OwnedFd) -> Res {
    let mut buf = [0u8; 1];
    loop {
        match rustix::io::read(fifo, &mut buf) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err("the exec fifo was closed before start".into()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("waiting for start: {}", std::io::Error::from(e))),
        }
    }
}
