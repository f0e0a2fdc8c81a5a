//! Where a container's files live, and starting its shim.
//!
//! - `<data-root>/containers/<id>/`: `config.json` (the bundle), `upper/`,
//!   `work/`, `rootfs/` (the overlay's mount point), `hostname`, `hosts`,
//!   `resolv.conf`, `<id>-json.log` (written by the shim).
//! - `<exec-root>/c/<first 16 hex of id>/`: the shim's state dir, with its
//!   socket `sock` and the `exit.json` it leaves when the container exits.
//!   The short name keeps the socket path well under the 108 bytes a unix
//!   socket address holds; create refuses an id whose prefix is taken.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_shim_proto::ShimClient;

/// How long a shim may take to create the container and bind its socket.
const SHIM_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

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
    let exe = std::env::current_exe().map_err(ShimError::Spawn)?;
    let beside = exe.with_file_name("berth-shim");
    if beside.exists() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("berth-shim"))
        .find(|p| p.exists())
        .ok_or(ShimError::NoBinary(beside))
}

/// What a shim is started with.
pub struct Launch<'a> {
    pub id: &'a str,
    pub paths: &'a Paths,
    pub runtime: Option<&'a Path>,
    pub tty: bool,
    pub stdin: bool,
    pub log_max_size: u64,
    pub log_max_files: u32,
}

/// Starts a shim, which creates the container (not yet started) and binds
/// its socket; returns a client connected to it. The shim's launcher
/// exits at once; the shim itself has left our session and outlives us.
pub fn launch(l: &Launch) -> Result<ShimClient, ShimError> {
    let bin = shim_binary()?;
    let socket = l.paths.socket();
    // A previous run's exit record must not be mistaken for this one's.
    let _ = std::fs::remove_file(l.paths.shim_dir.join(berth_shim_proto::EXIT_RECORD));
    let mut cmd = Command::new(bin);
    cmd.arg("--id")
        .arg(l.id)
        .arg("--bundle")
        .arg(&l.paths.dir)
        .arg("--state-dir")
        .arg(&l.paths.shim_dir)
        .arg("--socket")
        .arg(&socket)
        .arg("--log")
        .arg(l.paths.log(l.id))
        .arg("--log-max-size")
        .arg(l.log_max_size.to_string())
        .arg("--log-max-files")
        .arg(l.log_max_files.to_string());
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

/// Connects to a container's shim.
pub fn connect(paths: &Paths, id: &str) -> Result<ShimClient, ShimError> {
    ShimClient::connect(paths.socket()).map_err(|source| ShimError::Protocol {
        id: id.to_string(),
        source,
    })
}
