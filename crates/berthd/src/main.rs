#![forbid(unsafe_code)]
//! berthd: serves the Docker Engine API.
//!
//! Flags use dockerd's names and override `/etc/berth/daemon.json`.
//! SIGTERM and SIGINT stop serving and exit (containers, owned by their
//! shims, keep running); SIGHUP re-reads the config file.

use std::future::IntoFuture;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_daemon::config::{RuntimeEntry, Ulimit, DEFAULT_CONFIG_FILE};
use berth_daemon::{DaemonConfig, Engine, Host};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing_subscriber::{reload, EnvFilter};

mod idle;

/// Binds the C `pow` of this executable to berth-sys's (see
/// `berth_sys::math`): a reference from berthd's own object makes the
/// linker take the definition from berth-sys before it reaches libm.so,
/// whatever the order of the libraries on its command line.
#[used]
static POW: extern "C" fn(f64, f64) -> f64 = berth_sys::math::pow;

#[derive(Debug, Parser, Clone)]
#[command(
    name = "berthd",
    version,
    about = "berth's container engine: the Docker Engine API on a unix socket"
)]
struct Flags {
    /// The config file (dockerd's daemon.json keys).
    #[arg(long, default_value = DEFAULT_CONFIG_FILE)]
    config_file: PathBuf,
    /// Root of persistent state (images, database).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, shims).
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Where to serve: unix:///path or tcp://127.0.0.1:PORT (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// debug, info, warn, error or fatal.
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// A registry reached over plain HTTP or with unverified TLS (repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// A Docker Hub mirror (repeatable).
    #[arg(long = "registry-mirror")]
    registry_mirrors: Vec<String>,
    /// The runtime containers use unless they name another.
    #[arg(long)]
    default_runtime: Option<String>,
    /// Registers an OCI runtime: NAME=PATH (repeatable).
    #[arg(long = "add-runtime")]
    add_runtimes: Vec<String>,
    /// A default ulimit for containers: NAME=SOFT[:HARD] (repeatable).
    #[arg(long = "default-ulimit")]
    default_ulimits: Vec<String>,
    /// The parent cgroup of containers' cgroups (default /berth).
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// The Linux bridge of the default network ("none": no default network).
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// The default bridge's address and prefix, like 172.17.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// The MTU of bridges and container interfaces.
    #[arg(long)]
    mtu: Option<u32>,
    /// Whether berthd manages its nftables table (true or false).
    #[arg(long)]
    iptables: Option<bool>,
    /// Whether berthd turns on IPv4 forwarding (true or false).
    #[arg(long)]
    ip_forward: Option<bool>,
    /// The name of the nftables table berthd owns.
    #[arg(long)]
    firewall_table: Option<String>,
    /// Run an init in containers that do not say (--init or --init=false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    init: Option<bool>,
    /// The init binary bind-mounted at /sbin/docker-init (default:
    /// berth-init beside berthd, else in PATH).
    #[arg(long)]
    init_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
enum DaemonError {
    #[error("{0}")]
    Config(#[from] berth_daemon::config::ConfigError),
    #[error("{0}")]
    Engine(#[from] berth_daemon::engine::EngineError),
    #[error("invalid {flag} {value:?}: expected {expected}")]
    Flag {
        flag: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid DOCKER_MIN_API_VERSION: {reason}")]
    MinApiVersion { reason: String },
    #[error("another daemon is already serving {path}; stop it first (or use another -H)")]
    InUse { path: PathBuf },
    #[error("cannot serve {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
}

impl berth_errdefs::HasKind for DaemonError {
    fn kind(&self) -> berth_errdefs::ErrorKind {
        use berth_errdefs::ErrorKind;
        match self {
            DaemonError::Config(e) => e.kind(),
            DaemonError::Engine(e) => e.kind(),
            DaemonError::Flag { .. } | DaemonError::MinApiVersion { .. } => {
                ErrorKind::InvalidArgument
            }
            DaemonError::InUse { .. } => ErrorKind::Conflict,
            DaemonError::Listen { .. } => ErrorKind::Internal,
        }
    }
}

/// The config file with the flags applied on top.
fn effective_config(flags: &Flags) -> Result<DaemonConfig, DaemonError> {
    let mut c = DaemonConfig::load(&flags.config_file)?;
    // dockerd's knob for clients that pin an old version (skopeo < 1.14
    // sends 1.22): an environment variable, not a flag or a config key.
    if let Some(v) = std::env::var_os("DOCKER_MIN_API_VERSION") {
        let v = v.to_string_lossy();
        c.min_api_version = berth_api::ApiVersion::parse_minimum(&v)
            .map_err(|reason| DaemonError::MinApiVersion { reason })?;
    }
    if let Some(d) = &flags.data_root {
        c.data_root = d.clone();
    }
    if let Some(d) = &flags.exec_root {
        c.exec_root = d.clone();
    }
    if !flags.hosts.is_empty() {
        c.hosts = flags.hosts.clone();
    }
    if let Some(l) = &flags.log_level {
        c.log_level = l.clone();
    }
    c.insecure_registries
        .extend(flags.insecure_registries.iter().cloned());
    c.registry_mirrors
        .extend(flags.registry_mirrors.iter().cloned());
    for r in &flags.add_runtimes {
        let (name, path) = r.split_once('=').ok_or_else(|| DaemonError::Flag {
            flag: "--add-runtime",
            value: r.clone(),
            expected: "NAME=PATH",
        })?;
        c.runtimes.insert(
            name.to_string(),
            RuntimeEntry {
                path: path.to_string(),
                runtime_args: Vec::new(),
            },
        );
    }
    if let Some(r) = &flags.default_runtime {
        c.default_runtime = r.clone();
    }
    if let Some(p) = &flags.cgroup_parent {
        c.cgroup_parent = p.clone();
    }
    if let Some(b) = &flags.bridge {
        c.bridge = b.clone();
    }
    if let Some(b) = &flags.bip {
        c.bip = b.clone();
    }
    if let Some(m) = flags.mtu {
        c.mtu = m;
    }
    if let Some(v) = flags.iptables {
        c.iptables = v;
    }
    if let Some(v) = flags.ip_forward {
        c.ip_forward = v;
    }
    if let Some(t) = &flags.firewall_table {
        c.firewall_table = t.clone();
    }
    if let Some(v) = flags.init {
        c.init = v;
    }
    if let Some(p) = &flags.init_path {
        c.init_path = p.clone();
    }
    for u in &flags.default_ulimits {
        let bad = || DaemonError::Flag {
            flag: "--default-ulimit",
            value: u.clone(),
            expected: "NAME=SOFT[:HARD]",
        };
        let (name, limits) = u.split_once('=').ok_or_else(bad)?;
        let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
        let soft: i64 = soft.parse().map_err(|_| bad())?;
        let hard: i64 = hard.parse().map_err(|_| bad())?;
        c.default_ulimits.insert(
            name.to_string(),
            Ulimit {
                name: name.to_string(),
                soft,
                hard,
            },
        );
    }
    c.validate()?;
    Ok(c)
}

/// The gid of group `berth`, if the machine has one.
fn berth_gid() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == "berth").then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Binds the unix socket: refuses one a live daemon serves, replaces a
/// stale one, and leaves it root-owned, mode 0660, group `berth` if any.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    let listen = |source| DaemonError::Listen {
        what: path.display().to_string(),
        source,
    };
    refuse_live_socket(path)?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(listen(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(listen)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(listen)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(listen)?;
    std::os::unix::fs::chown(path, Some(0), Some(berth_gid().unwrap_or(0))).map_err(listen)?;
    Ok(listener)
}

/// A socket another daemon answers on is refused (not replaced).
fn refuse_live_socket(path: &Path) -> Result<(), DaemonError> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(DaemonError::InUse {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// A socket the API is served on.
enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// `fd://` (every passed socket) or `fd://N` (that one), as dockerd's:
/// each is taken out of `fds`, so two hosts never serve one socket.
fn activated_listeners(
    fds: &mut Vec<std::os::fd::OwnedFd>,
    which: Option<i32>,
) -> Result<Vec<Listener>, DaemonError> {
    use std::os::fd::AsRawFd;
    let err = |what: String, msg: String| DaemonError::Listen {
        what,
        source: std::io::Error::other(msg),
    };
    let taken: Vec<std::os::fd::OwnedFd> = match which {
        None if fds.is_empty() => return Err(err(
            "fd://".into(),
            "no sockets were passed (run berthd from a systemd socket unit, or use -H unix://PATH)"
                .into(),
        )),
        None => std::mem::take(fds),
        Some(n) => match fds.iter().position(|f| f.as_raw_fd() == n) {
            Some(i) => vec![fds.remove(i)],
            None => {
                return Err(err(
                    format!("fd://{n}"),
                    format!("descriptor {n} was not passed by the service manager"),
                ))
            }
        },
    };
    let mut out = Vec::with_capacity(taken.len());
    for fd in taken {
        let what = format!("fd://{}", fd.as_raw_fd());
        let io = |e: std::io::Error| DaemonError::Listen {
            what: what.clone(),
            source: e,
        };
        let local = rustix::net::getsockname(&fd).map_err(|e| io(e.into()))?;
        if let Ok(addr) = std::net::SocketAddr::try_from(local.clone()) {
            if !addr.ip().is_loopback() {
                return Err(err(
                    what,
                    format!("{addr}: berthd serves TCP only on a loopback address (no TLS yet)"),
                ));
            }
            let l = std::net::TcpListener::from(fd);
            l.set_nonblocking(true).map_err(io)?;
            tracing::info!(%addr, "serving the API on an activated TCP socket (no TLS)");
            out.push(Listener::Tcp(
                tokio::net::TcpListener::from_std(l).map_err(io)?,
            ));
        } else {
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true).map_err(io)?;
            tracing::info!(socket = ?l.local_addr().ok(), "serving the API on an activated socket");
            out.push(Listener::Unix(
                tokio::net::UnixListener::from_std(l).map_err(io)?,
            ));
        }
    }
    Ok(out)
}

fn main() -> std::process::ExitCode {
    let flags = Flags::parse();
    // Before any thread exists: two arenas serve two workers and the
    // blocking pool with little contention, and cap what freed memory
    // the arenas can hold between bursts (see `idle`).
    berth_sys::malloc::limit_arenas(2);
    // Before any thread exists: claiming the descriptors edits the
    // environment.
    let activated = match berth_sys::activation::take_listen_fds() {
        Ok(fds) => fds,
        Err(e) => {
            eprintln!("berthd: socket activation: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let config = match effective_config(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let level = config.tracing_level().unwrap_or("info");
    let (filter, filter_handle) = reload::Layer::new(EnvFilter::new(level));
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berthd: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let reload_log = move |level: &str| {
        if let Err(e) = filter_handle.reload(EnvFilter::new(level)) {
            tracing::warn!(error = %e, "cannot change the log level");
        }
    };
    match runtime.block_on(serve(flags, config, activated, reload_log)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("berthd: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn serve(
    flags: Flags,
    config: DaemonConfig,
    mut activated: Vec<std::os::fd::OwnedFd>,
    reload_log: impl Fn(&str),
) -> Result<(), DaemonError> {
    let hosts = config.parsed_hosts()?;
    // Signals first: a SIGTERM during start-up must not kill us half-way.
    let listen = |source| DaemonError::Listen {
        what: "signals".into(),
        source,
    };
    let mut term = signal(SignalKind::terminate()).map_err(listen)?;
    let mut int = signal(SignalKind::interrupt()).map_err(listen)?;
    let mut hup = signal(SignalKind::hangup()).map_err(listen)?;
    // Every listener before the engine opens: the engine sets up the
    // default bridge and the firewall table, which a daemon that cannot
    // serve (a socket in use, no activated socket) must not touch.
    let mut listeners = Vec::new();
    let mut sockets = Vec::new();
    let bound = bind_hosts(hosts, &mut activated, &mut listeners, &mut sockets);
    let engine = match bound {
        Ok(()) => tokio::task::spawn_blocking(move || Engine::open(config))
            .await
            .map_err(|e| DaemonError::Listen {
                what: "the engine".into(),
                source: std::io::Error::other(e.to_string()),
            })
            .and_then(|opened| opened.map_err(DaemonError::from)),
        Err(e) => Err(e),
    };
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            remove_sockets(&sockets);
            return Err(e);
        }
    };
    let app = idle::noting_requests(berth_daemon::http::router(engine.clone()));
    idle::schedule_trim();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    for listener in listeners {
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        servers.push(match listener {
            Listener::Unix(l) => tokio::spawn(
                axum::serve(l, app.clone())
                    .with_graceful_shutdown(shutdown)
                    .into_future(),
            ),
            Listener::Tcp(l) => tokio::spawn(
                axum::serve(l, app.clone())
                    .with_graceful_shutdown(shutdown)
                    .into_future(),
            ),
        });
    }
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(&flags, &engine, &reload_log),
        }
    }
    tracing::info!("stopping: containers keep running");
    engine.begin_shutdown();
    engine.release_forwarding();
    let _ = stop_tx.send(true);
    // Streams (a pull, logs -f) get a moment to end; then we exit anyway.
    let wait = futures_all(servers);
    if tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10s; exiting");
    }
    // A container's exit or removal half done (its rootfs or network
    // namespace being released after `run --rm` was told) is finished, so
    // a stopped daemon leaves no mounts behind.
    let finishing = engine.clone();
    let finished = tokio::task::spawn_blocking(move || {
        finishing.finish_inflight(std::time::Duration::from_secs(10))
    })
    .await;
    if !matches!(finished, Ok(true)) {
        tracing::warn!("a container's exit or removal still under way after 10s; exiting");
    }
    engine.release_idle_dns();
    remove_sockets(&sockets);
    Ok(())
}

/// The sockets of `hosts`, bound (unix sockets this daemon creates are
/// added to `sockets`, for removal at exit; activated ones are the service
/// manager's).
fn bind_hosts(
    hosts: Vec<Host>,
    activated: &mut Vec<std::os::fd::OwnedFd>,
    listeners: &mut Vec<Listener>,
    sockets: &mut Vec<PathBuf>,
) -> Result<(), DaemonError> {
    for host in hosts {
        match host {
            Host::Unix(path) => {
                let listener = bind_unix(&path)?;
                tracing::info!(socket = %path.display(), "serving the API");
                sockets.push(path);
                listeners.push(Listener::Unix(listener));
            }
            Host::Fd(which) => listeners.extend(activated_listeners(activated, which)?),
            Host::Tcp(addr) => {
                let listener =
                    std::net::TcpListener::bind(addr).map_err(|source| DaemonError::Listen {
                        what: addr.to_string(),
                        source,
                    })?;
                let listen = |source| DaemonError::Listen {
                    what: addr.to_string(),
                    source,
                };
                listener.set_nonblocking(true).map_err(listen)?;
                let listener = tokio::net::TcpListener::from_std(listener).map_err(listen)?;
                tracing::info!(%addr, "serving the API over TCP (no TLS)");
                listeners.push(Listener::Tcp(listener));
            }
        }
    }
    Ok(())
}

fn remove_sockets(sockets: &[PathBuf]) {
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
}

async fn futures_all(handles: Vec<tokio::task::JoinHandle<std::io::Result<()>>>) {
    for h in handles {
        let _ = h.await;
    }
}

fn reload(flags: &Flags, engine: &Arc<Engine>, reload_log: &impl Fn(&str)) {
    let config = match effective_config(flags) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload: keeping the running config: {e}");
            return;
        }
    };
    if let Ok(level) = config.tracing_level() {
        reload_log(level);
    }
    match engine.reload(config) {
        Ok(()) => tracing::info!("configuration reloaded"),
        Err(e) => tracing::error!("reload: keeping the running config: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["berthd", "--config-file", "/nonexistent/daemon.json"];
        all.extend_from_slice(args);
        Flags::parse_from(all)
    }

    #[test]
    fn flags_override_and_validate() {
        let c = effective_config(&flags(&[
            "--data-root",
            "/d",
            "-H",
            "unix:///tmp/b.sock",
            "--add-runtime",
            "crun=/usr/bin/crun",
            "--default-runtime",
            "crun",
            "--default-ulimit",
            "nofile=1024:2048",
        ]))
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.default_ulimits["nofile"].hard, 2048);
        assert!(effective_config(&flags(&["--default-ulimit", "nofile"])).is_err());
        assert!(effective_config(&flags(&["-H", "tcp://0.0.0.0:1"])).is_err());
        assert!(effective_config(&flags(&["--default-runtime", "nope"])).is_err());
    }

    #[test]
    fn init_flags_as_dockerd() {
        assert!(!effective_config(&flags(&[])).unwrap().init);
        let c = effective_config(&flags(&["--init", "--init-path", "/x/init"])).unwrap();
        assert!(c.init);
        assert_eq!(c.init_path, PathBuf::from("/x/init"));
        assert!(!effective_config(&flags(&["--init=false"])).unwrap().init);
    }
}
