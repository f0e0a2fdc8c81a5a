//! Where a container's files live, and starting its shim.
//!
//! - `<data-root>/containers/<id>/`: `config.json` (the bundle), `upper/`,
//!   `work/`, `rootfs/` (the overlay's mount point), `hostname`, `hosts`,
//!   `resolv.conf`, `<id>-json.log` (written by the shim).
//! - `<exec-root>/c/<first 16 hex of id>/`: the shim's state dir, with its
//!   socket `sock` and the `exit.json` it leaves when the container exits.
//!   The short name keeps the socket path well under the 108 bytes a unix
//!   socket address holds; create refuses an id whose prefix is taken.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_shim_proto::ShimClient;

/// How long a shim may take to create the container and bind its socket.
const SHIM_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The paths of one container.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
    pub shim_dir: PathBuf,
}

impl Paths {
    pub fn new(data_root: &Path, exec_root: &Path, id: &str) -> Paths {
        Paths {
            dir: data_root.join("containers").join(id),
            shim_dir: exec_root.join("c").join(&id[..16]),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.shim_dir.join("sock")
    }

    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `<exec-root>/seccomp-cache`: compiled seccomp filters shared by
    /// every shim (see [`share_seccomp_cache`]).
    pub fn seccomp_cache(&self) -> PathBuf {
        let exec_root = self.shim_dir.parent().and_then(Path::parent);
        exec_root.unwrap_or(Path::new("/")).join("seccomp-cache")
    }
}

/// The embedded runtime caches compiled seccomp filters under its state
/// root (`<shim dir>/runtime/.seccomp-cache`), which is per container, so
/// every container compiled docker's default profile with libseccomp
/// again: 40-80 ms of each start here. Linking that directory to one
/// cache for the whole daemon makes it a compile per profile (the cache
/// checks the directory's owner and mode through the link, and keys and
/// verifies every entry; concurrent writers rename whole files). The
/// shim removes the link, not the shared directory, at delete.
fn share_seccomp_cache(paths: &Paths) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let shared = paths.seccomp_cache();
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o700);
    dirs.create(&shared)?;
    let root = paths.shim_dir.join("runtime");
    dirs.create(&root)?;
    let link = root.join(".seccomp-cache");
    match std::os::unix::fs::symlink(&shared, &link) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("cannot find the berth-shim binary next to berthd ({0}) or on PATH; install berth-shim beside berthd")]
    NoBinary(PathBuf),
    #[error("starting berth-shim: {0}")]
    Spawn(std::io::Error),
    #[error("{0}")]
    Failed(String),
    #[error("the shim of container {id} did not answer: {source}")]
    Protocol {
        id: String,
        source: berth_shim_proto::Error,
    },
}

impl berth_errdefs::HasKind for ShimError {
    fn kind(&self) -> berth_errdefs::ErrorKind {
        match self {
            ShimError::Protocol { source, .. } => source.kind(),
            _ => berth_errdefs::ErrorKind::Internal,
        }
    }
}

/// The `berth-shim` binary: beside the daemon's own executable (how the
/// workspace and packages install them), else on PATH.
pub fn shim_binary() -> Result<PathBuf, ShimError> {
    binary("berth-shim").ok_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        ShimError::NoBinary(exe.with_file_name("berth-shim"))
    })
}

/// The file a shim runs from: a read-only copy of `bin`. The shim embeds
/// the runtime, so a container's init and exec'd processes run as this
/// binary until their execve; a container process must not be able to
/// write to it through /proc/PID/exe (CVE-2019-5736). `bin` itself when
/// it is on a read-only mount, or when no copy can be made (a warning).
fn run_from(bin: &Path) -> PathBuf {
    if berth_sys::exe_copy::on_read_only_mount(bin) {
        return bin.to_path_buf();
    }
    match berth_sys::exe_copy::read_only_copy(bin) {
        Ok(copy) => copy,
        Err(e) => {
            tracing::warn!(binary = %bin.display(), error = %e, "making a read-only copy of the shim; running it from its writable file");
            bin.to_path_buf()
        }
    }
}

/// What a shim is started with.
pub struct Launch<'a> {
    pub id: &'a str,
    pub paths: &'a Paths,
    pub runtime: Option<&'a Path>,
    pub tty: bool,
    pub stdin: bool,
    pub log: super::log_driver::LogDriver,
}

/// Starts a shim, which creates the container (not yet started) and binds
/// its socket; returns a client connected to it. The shim's launcher
/// exits at once; the shim itself has left our session and outlives us.
pub fn launch(l: &Launch) -> Result<ShimClient, ShimError> {
    let bin = shim_binary()?;
    let socket = l.paths.socket();
    // A previous run's exit record must not be mistaken for this one's.
    let _ = std::fs::remove_file(l.paths.shim_dir.join(berth_shim_proto::EXIT_RECORD));
    if l.runtime.is_none() {
        if let Err(e) = share_seccomp_cache(l.paths) {
            // Only slower: the shim compiles into a cache of its own.
            tracing::warn!(container = l.id, error = %e, "sharing the seccomp cache");
        }
    }
    let mut cmd = Command::new(run_from(&bin));
    // Found by its name (`shim_processes`), whichever file it runs from.
    cmd.arg0(&bin);
    // Spares the shim a read of the mount table, which grows with every
    // running container.
    match berth_cgroups::mounts_env() {
        Ok(mounts) => {
            cmd.env(berth_cgroups::MOUNTS_ENV, mounts);
        }
        Err(e) => tracing::debug!(error = %e, "finding the cgroup mounts for the shim"),
    }
    cmd.arg("--id")
        .arg(l.id)
        .arg("--bundle")
        .arg(&l.paths.dir)
        .arg("--state-dir")
        .arg(&l.paths.shim_dir)
        .arg("--socket")
        .arg(&socket);
    match l.log {
        super::log_driver::LogDriver::JsonFile {
            max_size,
            max_files,
        } => {
            cmd.arg("--log")
                .arg(l.paths.log(l.id))
                .arg("--log-max-size")
                .arg(max_size.to_string())
                .arg("--log-max-files")
                .arg(max_files.to_string());
        }
        super::log_driver::LogDriver::None => {
            cmd.arg("--no-log");
        }
    }
    if let Some(rt) = l.runtime {
        cmd.arg("--runtime").arg(rt);
    }
    if l.tty {
        cmd.arg("--tty");
    }
    if l.stdin {
        cmd.arg("--stdin");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(ShimError::Spawn)?;
    let out = wait_with_timeout(child)?;
    if !out.status.success() {
        // The shim is gone and made nothing to clean up but our link.
        let root = l.paths.shim_dir.join("runtime");
        let _ = std::fs::remove_file(root.join(".seccomp-cache"));
        let _ = std::fs::remove_dir(root);
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim().trim_start_matches("berth-shim: ").to_string();
        return Err(ShimError::Failed(if msg.is_empty() {
            format!("berth-shim exited with {}", out.status)
        } else {
            msg
        }));
    }
    ShimClient::connect(&socket).map_err(|source| ShimError::Protocol {
        id: l.id.to_string(),
        source,
    })
}

fn wait_with_timeout(child: std::process::Child) -> Result<std::process::Output, ShimError> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(SHIM_START_TIMEOUT) {
        Ok(r) => r.map_err(ShimError::Spawn),
        Err(_) => {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            Err(ShimError::Failed(format!(
                "berth-shim did not create the container within {}s",
                SHIM_START_TIMEOUT.as_secs()
            )))
        }
    }
}

/// How long a shim may take to answer the hello: a stopped or wedged shim
/// must not hold the caller (and the container's lock) for ever.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shim that is still creating its container (it was launched
/// by a daemon killed before recording it) is given to bind its socket.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the processes of a dead shim's container may take to die.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to a container's shim. Only the hello is bounded: requests
/// such as `wait` may take as long as the container runs.
pub fn connect(paths: &Paths, id: &str) -> Result<ShimClient, ShimError> {
    let protocol = |source| ShimError::Protocol {
        id: id.to_string(),
        source,
    };
    let client =
        ShimClient::connect_timeout(paths.socket(), Some(HELLO_TIMEOUT)).map_err(protocol)?;
    client.set_timeout(None).map_err(protocol)?;
    Ok(client)
}

/// As [`connect`], but a shim process that is still starting (alive, its
/// socket not bound yet) is waited for.
pub fn connect_settled(paths: &Paths, id: &str) -> Result<ShimClient, ShimError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        match connect(paths, id) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline || shim_processes(paths).is_empty() => {
                return Err(e)
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The processes of the shim that serves `paths`: the supervisor and any
/// helper it forked, i.e. live berth-shim processes whose command line
/// names this state dir. The command line (not a recorded pid, which may
/// have been reused) is what identifies them.
pub fn shim_processes(paths: &Paths) -> Vec<i32> {
    let dir = paths.shim_dir.as_os_str().as_bytes();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"berth-shim"))
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--state-dir" && w[1] == dir)
        })
        .filter(|pid| !exited(*pid))
        .collect()
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet: an
/// orphan under a pid 1 that does not reap stays one).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_none_or(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

fn sigkill(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// A container whose shim is gone (killed, crashed) or does not answer:
/// its processes would run on unsupervised, holding their cgroup and
/// rootfs. Kills what is left of the shim, then has the container's
/// runtime delete it by force from the shim's runtime state
/// (`<state dir>/runtime`, where both backends keep it), then kills
/// whatever remains in its cgroup (`cgroups_path`, when known: a
/// container whose runtime died before recording its state) and removes
/// the cgroup. The caller unmounts the rootfs and removes the state dir.
pub fn reap(paths: &Paths, id: &str, runtime: Option<&Path>, cgroups_path: Option<&str>) {
    let shims = shim_processes(paths);
    if !shims.is_empty() {
        tracing::warn!(container = id, pids = ?shims, "killing a shim that does not answer");
        shims.iter().copied().for_each(sigkill);
        let deadline = Instant::now() + KILL_TIMEOUT;
        while !shim_processes(paths).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let root = paths.shim_dir.join("runtime");
    if root.join(id).exists() {
        let bin = match runtime {
            Some(rt) => Some(rt.to_path_buf()),
            None => binary("berth-runtime"),
        };
        match bin {
            Some(bin) => {
                let out = Command::new(&bin)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", id])
                    .stdin(Stdio::null())
                    .output();
                match out {
                    Ok(o) if o.status.success() => {
                        tracing::info!(container = id, "deleted the container of a dead shim")
                    }
                    Ok(o) => tracing::warn!(
                        container = id,
                        runtime = %bin.display(),
                        error = %String::from_utf8_lossy(&o.stderr).trim(),
                        "deleting the container of a dead shim"
                    ),
                    Err(e) => tracing::warn!(container = id, runtime = %bin.display(), error = %e, "running the runtime"),
                }
            }
            None => tracing::warn!(
                container = id,
                "no berth-runtime beside berthd or on PATH; killing the container through its cgroup"
            ),
        }
    }
    if let Some(path) = cgroups_path {
        if let Err(e) = kill_cgroup(path, id) {
            tracing::warn!(container = id, cgroup = path, error = %e, "killing what remains in the cgroup");
        }
    }
}

/// SIGKILLs every process in the container's cgroup, waits for them to
/// go and removes the cgroup (nothing to do when it does not exist).
fn kill_cgroup(path: &str, id: &str) -> Result<(), berth_cgroups::Error> {
    let layout = berth_cgroups::detect()?;
    let cg = berth_cgroups::manager(&layout, Some(path), id)?;
    let live = || {
        cg.pids()
            .map(|p| p.into_iter().filter(|p| !exited(*p)).count())
    };
    if cg.paths().iter().all(|p| !p.exists()) {
        return Ok(());
    }
    if live().unwrap_or(0) > 0 {
        tracing::warn!(
            container = id,
            "killing the processes left in the container's cgroup"
        );
        cg.kill_all()?;
        let deadline = Instant::now() + KILL_TIMEOUT;
        while live().unwrap_or(0) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    cg.destroy()
}

/// `name` beside the daemon's own executable, else on PATH.
pub(crate) fn binary(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.with_file_name(name);
    if beside.exists() {
        return Some(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists())
}
