//! The lifecycle operations on one container, as the runtime CLI and the
//! shim call them: create, start, state, kill, delete, pause, resume,
//! update, stats, processes.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cgroups::CgroupManager;
use oci_spec::runtime::{LinuxIdMapping, LinuxResources, Spec};
use rustix::fs::{Mode, OFlags};

use crate::config::Bundle;
use crate::error::{Error, IoContext, Result};
use crate::init::{self, InitContext};
use crate::namespaces::NsPlan;
use crate::process::ProcessPlan;
use crate::rootfs::CgroupMount;
use crate::state::{self, OciState, Record, Status, EXEC_FIFO};
use crate::sync::{self, Msg};

/// A runtime state root (runc's `--root`), holding one directory per container.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

/// What `create` takes besides the bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// A container known to the runtime.
#[derive(Debug, Clone)]
pub struct Container {
    pub record: Record,
    root: PathBuf,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        Ok(Container {
            record: Record::load(&self.root, id)?,
            root: self.root.clone(),
        })
    }

    /// Every container under the root, sorted by id; unreadable entries are skipped.
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {:?}", self.root), e)),
        };
        let mut out: Vec<Container> = entries
            .flatten()
            .filter_map(|e| self.load(e.file_name().to_str()?).ok())
            .collect();
        out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        Ok(out)
    }

    /// Creates the container: its init is set up and waits for `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<Container> {
        state::check_id(&opts.id)?;
        self.create_bundle(&Bundle::load(&opts.bundle)?, opts)
    }

    /// As [`Runtime::create`], for a bundle the caller has loaded already
    /// (to read its warnings or its process), so config.json is parsed once.
    pub fn create_bundle(&self, bundle: &Bundle, opts: &CreateOptions) -> Result<Container> {
        state::check_id(&opts.id)?;
        // Relative paths are the caller's, but create works from the bundle.
        let cwd = std::env::current_dir().ctx(|| "getting the working directory")?;
        let opts = &CreateOptions {
            pid_file: opts.pid_file.as_ref().map(|p| cwd.join(p)),
            console_socket: opts.console_socket.as_ref().map(|p| cwd.join(p)),
            ..opts.clone()
        };
        let layout = berth_cgroups::detect().map_err(|e| Error::Cgroup(e.to_string()))?;
        let cgroups_path = bundle
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        let cgroup = berth_cgroups::manager(&layout, cgroups_path.as_deref(), &opts.id)
            .map_err(|e| Error::Cgroup(e.to_string()))?;
        // Validate everything we can before anything exists on disk.
        let plan = Plan::new(self, bundle, opts)?;
        // A duplicate id is the clearer error; create_dir below still
        // settles a race between two creates.
        if state::container_dir(&self.root, &opts.id).exists() {
            return Err(Error::AlreadyExists {
                id: opts.id.clone(),
            });
        }
        // Another container's cgroup is not ours to take over (or to clean up).
        if cgroup.pids().is_ok_and(|p| !p.is_empty()) {
            return Err(Error::Cgroup(format!(
                "container's cgroup is not empty: {:?} belongs to something else",
                cgroup.paths().first().cloned().unwrap_or_default()
            )));
        }
        if matches!(
            cgroup.freezer_state(),
            Ok(berth_cgroups::FreezerState::Frozen)
        ) {
            return Err(Error::Cgroup(format!(
                "container's cgroup unexpectedly frozen: {:?}; thaw or remove it first",
                cgroup.paths().first().cloned().unwrap_or_default()
            )));
        }

        fs::create_dir_all(&self.root)
            .ctx(|| format!("creating the state root {:?}", self.root))?;
        let dir = state::container_dir(&self.root, &opts.id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists {
                    id: opts.id.clone(),
                })
            }
            Err(e) => return Err(Error::io(format!("creating {dir:?}"), e)),
        }
        let mut guard = CreateGuard {
            dir: dir.clone(),
            cgroup: Some(cgroup),
            pids: Vec::new(),
            done: false,
        };
        let record = spawn_init(bundle, opts, &plan, &layout, &mut guard)?;
        record.save(&self.root)?;
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, record.pid)?;
        }
        guard.done = true;
        Ok(Container {
            record,
            root: self.root.clone(),
        })
    }
}

/// clone3 with `flags`, straight into `entry`'s cgroup2 part. On a kernel
/// without CLONE_INTO_CGROUP (before 5.7: clone3 missing, or refusing the
/// flag) it clones without it and the parent moves the child by pid before
/// returning; the child must not leave its cgroup before its parent says go.
pub(crate) fn clone_into_cgroup(
    flags: u64,
    entry: Option<&berth_cgroups::Entry>,
) -> std::io::Result<berth_sys::process::Forked> {
    use berth_sys::process::{clone3, CloneArgs, Forked};
    let into_cgroup = entry.and_then(|e| e.clone_into());
    let forked = clone3(CloneArgs { flags, into_cgroup });
    let old_kernel = |e: &std::io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG)
        )
    };
    match (forked, entry) {
        (Err(e), Some(entry)) if into_cgroup.is_some() && old_kernel(&e) => {
            let forked = clone3(CloneArgs {
                flags,
                into_cgroup: None,
            })?;
            if let Forked::Parent { child } = forked {
                if let Err(e) = entry.join_v2_by_pid(child) {
                    if let Some(pid) = rustix::process::Pid::from_raw(child) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                        let _ = rustix::process::waitpid(
                            Some(pid),
                            rustix::process::WaitOptions::empty(),
                        );
                    }
                    return Err(std::io::Error::other(e.to_string()));
                }
            }
            Ok(forked)
        }
        (forked, _) => forked,
    }
}

/// Everything computed from the config before forking.
struct Plan {
    ns: NsPlan,
    process: ProcessPlan,
}

impl Plan {
    fn new(rt: &Runtime, bundle: &Bundle, opts: &CreateOptions) -> Result<Plan> {
        let spec = &bundle.spec;
        let linux = spec.linux().clone().unwrap_or_default();
        let namespaces = linux.namespaces().clone().unwrap_or_default();
        let has_offsets = linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty());
        let ns = NsPlan::new(&namespaces, has_offsets)?;
        if ns.new_userns && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(Error::InvalidConfig {
                path: bundle.dir.join("config.json"),
                message: "linux.uidMappings: a new user namespace needs uid and gid mappings"
                    .into(),
            });
        }
        let seccomp = match linux.seccomp() {
            Some(profile) => Some(
                berth_seccomp::compile_cached(profile, &rt.root.join(".seccomp-cache"))
                    .map_err(|e| Error::Seccomp(e.to_string()))?,
            ),
            None => None,
        };
        let process = spec
            .process()
            .as_ref()
            .expect("validated: process is present");
        if process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
            return Err(Error::InvalidArgument(
                "process.terminal is true, so --console-socket is required".into(),
            ));
        }
        if process.terminal() == Some(false) && opts.console_socket.is_some() {
            return Err(Error::InvalidArgument(
                "--console-socket was given but process.terminal is false".into(),
            ));
        }
        let process = ProcessPlan::new(process, spec.linux().as_ref(), seccomp, opts.preserve_fds)?;
        crate::caps::check_held(process.caps.as_ref(), ns.has_userns)?;
        Ok(Plan { ns, process })
    }
}

/// Undoes a half-done create: kills what was started, removes the cgroup
/// and the state directory.
struct CreateGuard {
    dir: PathBuf,
    cgroup: Option<Box<dyn CgroupManager>>,
    pids: Vec<i32>,
    done: bool,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for pid in &self.pids {
            if let Some(p) = rustix::process::Pid::from_raw(*pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
            }
        }
        if let Some(cg) = &self.cgroup {
            kill_all_and_wait(cg.as_ref());
            let _ = cg.destroy();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn spawn_init(
    bundle: &Bundle,
    opts: &CreateOptions,
    plan: &Plan,
    layout: &berth_cgroups::Layout,
    guard: &mut CreateGuard,
) -> Result<Record> {
    let spec = &bundle.spec;
    let cgroup = guard.cgroup.as_ref().expect("the guard holds the cgroup");
    cgroup.create().map_err(|e| Error::Cgroup(e.to_string()))?;
    if let Some(res) = crate::devices::effective_resources(spec) {
        cgroup
            .apply(&res)
            .map_err(|e| Error::Cgroup(e.to_string()))?;
    }
    let fifo_path = guard.dir.join(EXEC_FIFO);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo_path,
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .ctx(|| format!("creating {fifo_path:?}"))?;
    let fifo = rustix::fs::open(&fifo_path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| format!("opening {fifo_path:?}"))?;
    let console = opts
        .console_socket
        .as_deref()
        .map(connect_unix)
        .transpose()?;
    let (parent_end, child_end) = sync::channel()?;
    let created = state::now_rfc3339();
    let hooks = spec.hooks().clone().unwrap_or_default();
    let has_create_runtime_hooks = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
        || hooks
            .create_runtime()
            .as_ref()
            .is_some_and(|h| !h.is_empty());
    let mut record = Record {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created,
        owner: String::new(),
        cgroups_path: spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        spec: spec.clone(),
    };
    // Relative paths in the config (bind sources) are relative to the bundle.
    std::env::set_current_dir(&bundle.dir)
        .ctx(|| format!("entering the bundle {:?}", bundle.dir))?;
    let cgroup_mounts = container_cgroup_mounts(layout, cgroup.as_ref());
    let bind_sources = crate::idmap::prepare_sources(bundle)?;
    let seccomp_agent = open_seccomp_agent(spec)?;
    // The init enters its cgroup by itself, without the kernel's global
    // migration lock (see berth_cgroups::Entry).
    let cgroup_entry = cgroup.entry().map_err(|e| Error::Cgroup(e.to_string()))?;
    let forked = clone_into_cgroup(plan.ns.clone_flags, Some(&cgroup_entry))
        .ctx(|| "creating the container process")?;
    let child = match forked {
        berth_sys::process::Forked::Child => {
            drop(parent_end);
            init::run(InitContext {
                spec,
                rootfs: &bundle.rootfs,
                ns: &plan.ns,
                process: &plan.process,
                sync: &child_end,
                exec_fifo: Some(&fifo),
                console_socket: console.as_ref(),
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                cgroup_entry: Some(&cgroup_entry),
                cgroup_mounts,
                bind_sources: &bind_sources,
                seccomp_agent: seccomp_agent.as_ref(),
                has_create_runtime_hooks,
                state: record.oci_state(Status::Creating),
            })
        }
        berth_sys::process::Forked::Parent { child } => child,
    };
    guard.pids.push(child);
    drop(child_end);
    drop(console);
    let uid_maps = spec
        .linux()
        .as_ref()
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid_maps = spec
        .linux()
        .as_ref()
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if plan.ns.userns_in_clone() {
        write_id_maps(child, &uid_maps, &gid_maps)?;
    }
    parent_end.send(&Msg::Go)?;
    let mut init_pid = child;
    loop {
        match parent_end.recv()? {
            Some(Msg::MapsRequest) => {
                write_id_maps(child, &uid_maps, &gid_maps)?;
                parent_end.send(&Msg::MapsDone)?;
            }
            Some(Msg::InitPid(pid)) => {
                init_pid = pid;
                guard.pids.push(pid);
                // The first fork's only job is done; reap it.
                if let Some(p) = rustix::process::Pid::from_raw(child) {
                    let _ =
                        rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
                }
                guard.pids.retain(|p| *p != child);
            }
            Some(Msg::RunCreateRuntimeHooks) => {
                record.pid = init_pid;
                let st = record.oci_state(Status::Creating);
                crate::hooks::run_all(
                    "prestart",
                    hooks.prestart().as_deref().unwrap_or_default(),
                    &st,
                )?;
                crate::hooks::run_all(
                    "createRuntime",
                    hooks.create_runtime().as_deref().unwrap_or_default(),
                    &st,
                )?;
                parent_end.send(&Msg::HooksDone)?;
            }
            Some(Msg::Ready) => break,
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
            None => {
                return Err(Error::Init(
                    "the container process exited during setup".into(),
                ))
            }
        }
    }
    record.pid = init_pid;
    record.pid_start_time = state::proc_stat(init_pid)
        .map(|s| s.start_time)
        .ok_or_else(|| Error::Init("the container process exited during setup".into()))?;
    Ok(record)
}

/// The container's cgroup directory in each hierarchy, for the cgroup mount inside it.
fn container_cgroup_mounts(
    layout: &berth_cgroups::Layout,
    cgroup: &dyn CgroupManager,
) -> Vec<CgroupMount> {
    let dirs = cgroup.paths();
    let mut out = Vec::new();
    for h in layout.v1_hierarchies() {
        let Some(dir) = dirs.iter().find(|d| d.starts_with(&h.mount_point)) else {
            continue;
        };
        let name = h
            .mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| h.controllers.join(","));
        let options = if h.controllers.iter().any(|c| c.starts_with("name=")) {
            format!("none,{}", h.controllers.join(","))
        } else {
            h.controllers.join(",")
        };
        out.push(CgroupMount {
            name,
            fstype: "cgroup".into(),
            options,
            host_dir: dir.clone(),
        });
    }
    if let Some(u) = layout.unified() {
        if let Some(dir) = dirs.iter().find(|d| d.starts_with(&u.mount_point)) {
            out.push(CgroupMount {
                name: "unified".into(),
                fstype: "cgroup2".into(),
                options: String::new(),
                host_dir: dir.clone(),
            });
        }
    }
    out
}

/// An O_PATH fd of the seccomp agent's socket, opened on the host (see
/// `InitContext::seccomp_agent`). Failing to find it is runc's error text.
pub(crate) fn open_seccomp_agent(spec: &Spec) -> Result<Option<OwnedFd>> {
    let Some(path) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().clone())
    else {
        return Ok(None);
    };
    rustix::fs::open(&path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map(Some)
        .map_err(|e| {
            Error::Seccomp(format!(
                "failed to connect with seccomp agent at {path:?}: {}",
                std::io::Error::from(e)
            ))
        })
}

pub fn connect_unix(path: &Path) -> Result<OwnedFd> {
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "creating a socket")?;
    let addr =
        rustix::net::SocketAddrUnix::new(path).ctx(|| format!("console socket path {path:?}"))?;
    rustix::net::connect(&sock, &addr)
        .ctx(|| format!("connecting to the console socket {path:?}"))?;
    Ok(sock)
}

fn write_id_maps(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    let fmt = |maps: &[LinuxIdMapping]| -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, fmt(maps)).ctx(|| {
            format!(
                "linux.{}: writing {path}",
                if file == "uid_map" {
                    "uidMappings"
                } else {
                    "gidMappings"
                }
            )
        })?;
    }
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    state::write_atomic(path, pid.to_string().as_bytes(), 0o644)
}

/// What `start` does to the init: writes the byte it waits for into the
/// exec fifo, waits until the init has exec'd the container's program (or
/// died), and removes the fifo (the container then counts as running).
/// runc's start returns before the exec; waiting for it lets poststart
/// hooks run after the program started, as the spec orders them, and
/// gives a client's next request (its logs, a signal) a running program:
/// docker-py's build test reads `ls`'s log right after the start.
///
/// A shim calls this directly for a container without poststart hooks:
/// nothing else of the container's record is needed to start it.
pub fn release_init(id: &str, fifo_path: &Path) -> Result<()> {
    let fifo = rustix::fs::open(
        fifo_path,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NXIO => {
            wrong_state(id, Status::Stopped, "the container process is gone")
        }
        e => Error::io(format!("opening {fifo_path:?}"), e.into()),
    })?;
    rustix::io::write(&fifo, &[0]).ctx(|| format!("writing {fifo_path:?}"))?;
    wait_until_no_reader(&fifo);
    drop(fifo);
    fs::remove_file(fifo_path).ctx(|| format!("removing {fifo_path:?}"))
}

fn wrong_state(id: &str, status: Status, message: &str) -> Error {
    Error::WrongState {
        id: id.to_string(),
        status: status.to_string(),
        message: message.to_string(),
    }
}

/// Returns once the init has closed its end of the exec fifo, which it
/// does by exec'ing the container's program (the fd is close-on-exec) or by
/// dying: a fifo writer sees POLLERR when no reader is left.
fn wait_until_no_reader(fifo: &OwnedFd) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let timeout = Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(fifo, PollFlags::empty())];
    loop {
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// Signals every process in the cgroup with SIGKILL and waits (briefly) until none is left.
fn kill_all_and_wait(cgroup: &dyn CgroupManager) {
    for _ in 0..500 {
        let pids = cgroup.pids().unwrap_or_default();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub(crate) fn cgroup_manager(&self) -> Result<Box<dyn CgroupManager>> {
        self.cgroup()
    }

    fn cgroup(&self) -> Result<Box<dyn CgroupManager>> {
        let layout = berth_cgroups::detect().map_err(|e| Error::Cgroup(e.to_string()))?;
        let path =
            (!self.record.cgroups_path.is_empty()).then_some(self.record.cgroups_path.as_str());
        berth_cgroups::manager(&layout, path, &self.record.id)
            .map_err(|e| Error::Cgroup(e.to_string()))
    }

    fn fifo_path(&self) -> PathBuf {
        self.record.dir(&self.root).join(EXEC_FIFO)
    }

    fn poststart_hooks(&self) -> Vec<oci_spec::runtime::Hook> {
        self.record
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
            .unwrap_or_default()
    }

    /// The exec fifo, when releasing it is all that starting this created
    /// container takes (no poststart hooks): see [`release_init`].
    pub fn bare_start_fifo(&self) -> Option<PathBuf> {
        self.poststart_hooks().is_empty().then(|| self.fifo_path())
    }

    /// The status, derived from the kernel (see the module docs of `state`).
    pub fn status(&self) -> Status {
        if !self.record.init_alive() {
            return Status::Stopped;
        }
        if self.fifo_path().exists() {
            return Status::Created;
        }
        match self
            .cgroup()
            .and_then(|c| c.freezer_state().map_err(|e| Error::Cgroup(e.to_string())))
        {
            Ok(berth_cgroups::FreezerState::Frozen) => Status::Paused,
            _ => Status::Running,
        }
    }

    pub fn oci_state(&self) -> OciState {
        self.record.oci_state(self.status())
    }

    fn wrong_state(&self, status: Status, message: &str) -> Error {
        wrong_state(&self.record.id, status, message)
    }

    /// Lets the init exec the container's program.
    pub fn start(&self) -> Result<()> {
        match self.status() {
            Status::Created => {}
            Status::Stopped => {
                return Err(
                    self.wrong_state(Status::Stopped, "cannot start a container that has stopped")
                )
            }
            s => return Err(self.wrong_state(s, "cannot start an already running container")),
        }
        let hooks = self.poststart_hooks();
        release_init(&self.record.id, &self.fifo_path())?;
        if let Err(e) =
            crate::hooks::run_all("poststart", &hooks, &self.record.oci_state(Status::Running))
        {
            let _ = self.kill(libc::SIGKILL, true);
            return Err(e);
        }
        Ok(())
    }

    /// Sends `signal` to the init, or with `all` to every process of the container.
    /// Signal 0 only checks that the container runs, as kill(2) does; with
    /// `all` a stopped container is no error (runc: `kill -a ID 0` is 0).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status();
        // Without a pid namespace of its own, the init's death does not take
        // the other processes with it: SIGKILL then means all of them (runc
        // 1.2), and still does once the init is gone and the container
        // counts as stopped, so none is left behind.
        let kill_everything = signal == libc::SIGKILL && !self.has_own_pid_namespace();
        if status == Status::Stopped && !all && !kill_everything {
            return Err(self.wrong_state(status, "container not running"));
        }
        if signal == 0 {
            return Ok(());
        }
        let sig = rustix::process::Signal::from_named_raw(signal)
            .ok_or_else(|| Error::InvalidArgument(format!("invalid signal {signal}")))?;
        let all = all || kill_everything;
        if all {
            let cg = self.cgroup()?;
            // Freeze first so no process can fork past the signal.
            let freeze = sig == rustix::process::Signal::KILL && status != Status::Paused;
            if freeze {
                let _ = cg.freeze();
            }
            for pid in cg.pids().map_err(|e| Error::Cgroup(e.to_string()))? {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, sig);
                }
            }
            if freeze || status == Status::Paused {
                let _ = cg.thaw();
            }
            return Ok(());
        }
        let pid =
            rustix::process::Pid::from_raw(self.record.pid).expect("a live container has a pid");
        rustix::process::kill_process(pid, sig)
            .ctx(|| format!("signalling pid {}", self.record.pid))
    }

    fn has_own_pid_namespace(&self) -> bool {
        self.record
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid)
            })
    }

    /// Removes the container. A running one needs `force` (it is killed first).
    pub fn delete(&self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped | Status::Created => {}
            _ if force => {}
            s => {
                return Err(self.wrong_state(
                    s,
                    "cannot delete a container that is not stopped; stop it first or use --force",
                ))
            }
        }
        if status != Status::Stopped {
            if status == Status::Paused {
                let _ = self.cgroup()?.thaw();
            }
            let _ = self.kill(libc::SIGKILL, false);
            self.wait_for_exit(Duration::from_secs(10))?;
        }
        self.destroy()
    }

    /// Waits until the init is gone (or a zombie nobody reaped yet).
    pub fn wait_for_exit(&self, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while self.record.init_alive() {
            if std::time::Instant::now() >= deadline {
                return Err(Error::Init(format!(
                    "pid {} did not exit within {timeout:?} of SIGKILL",
                    self.record.pid
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn destroy(&self) -> Result<()> {
        let cg = self.cgroup()?;
        kill_all_and_wait(cg.as_ref());
        cg.destroy().map_err(|e| Error::Cgroup(e.to_string()))?;
        let dir = self.record.dir(&self.root);
        fs::remove_dir_all(&dir).ctx(|| format!("removing {dir:?}"))?;
        let hooks = self
            .record
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .unwrap_or_default();
        // Poststop failures are logged, not fatal: the container is already gone.
        if let Err(e) =
            crate::hooks::run_all("poststop", &hooks, &self.record.oci_state(Status::Stopped))
        {
            tracing::warn!("{e}");
        }
        Ok(())
    }

    pub fn pause(&self) -> Result<()> {
        match self.status() {
            Status::Running | Status::Created => self
                .cgroup()?
                .freeze()
                .map_err(|e| Error::Cgroup(e.to_string())),
            s => Err(self.wrong_state(s, "only a running container can be paused")),
        }
    }

    pub fn resume(&self) -> Result<()> {
        match self.status() {
            Status::Paused => self
                .cgroup()?
                .thaw()
                .map_err(|e| Error::Cgroup(e.to_string())),
            s => Err(self.wrong_state(s, "the container is not paused")),
        }
    }

    /// Every process of the container (from its cgroup).
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.cgroup()?
            .pids()
            .map_err(|e| Error::Cgroup(e.to_string()))
    }

    pub fn stats(&self) -> Result<berth_cgroups::Stats> {
        self.cgroup()?
            .stats()
            .map_err(|e| Error::Cgroup(e.to_string()))
    }

    pub fn oom_kill_count(&self) -> Result<u64> {
        self.cgroup()?
            .oom_kill_count()
            .map_err(|e| Error::Cgroup(e.to_string()))
    }

    /// The file that holds the OOM-kill count (berth_cgroups::read_oom_kill_count
    /// reads it), for a supervisor that asks without loading the container.
    pub fn oom_kill_file(&self) -> Result<Option<std::path::PathBuf>> {
        Ok(self.cgroup()?.oom_kill_file())
    }

    /// Applies new resource limits and records them.
    pub fn update(&mut self, resources: &LinuxResources) -> Result<()> {
        if self.status() == Status::Stopped {
            return Err(self.wrong_state(Status::Stopped, "cannot update a stopped container"));
        }
        self.cgroup()?
            .apply(resources)
            .map_err(|e| Error::Cgroup(e.to_string()))?;
        let mut linux = self.record.spec.linux().clone().unwrap_or_default();
        linux.set_resources(Some(resources.clone()));
        self.record.spec.set_linux(Some(linux));
        self.record.save(&self.root)
    }

    pub fn spec(&self) -> &Spec {
        &self.record.spec
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
