//! berthd's configuration: `/etc/berth/daemon.json` with dockerd's key names.
//!
//! Unknown keys are refused, as dockerd refuses them: a typo in a config
//! file should stop the daemon, not be silently ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use berth_api::ApiVersion;
use berth_errdefs::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

/// The socket berthd serves when no host is configured.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// The config file berthd reads when `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
/// Config files are a few KiB; refuse anything absurd before parsing.
const MAX_CONFIG_SIZE: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the daemon config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon config {path} is larger than {MAX_CONFIG_SIZE} bytes")]
    TooLarge { path: PathBuf },
    #[error("invalid daemon config {path}: {source}; keys use dockerd's names (data-root, exec-root, hosts, runtimes, default-runtime, insecure-registries, registry-mirrors, log-level, default-ulimits)")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid host {host:?}: {reason}; use unix:///path/to.sock or tcp://127.0.0.1:PORT")]
    Host { host: String, reason: String },
    #[error("invalid log-level {level:?}: use debug, info, warn, error or fatal")]
    LogLevel { level: String },
    #[error(
        "default-runtime {name:?} is not berth's own runtime nor registered under \"runtimes\""
    )]
    UnknownRuntime { name: String },
    #[error("runtime name '{name}' is reserved: it names berth's own runtime; register yours under another name")]
    ReservedRuntime { name: String },
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Read { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// An OCI runtime registered under `runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEntry {
    pub path: String,
    #[serde(rename = "runtimeArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
}

/// A `default-ulimits` entry (dockerd's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ulimit {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Hard")]
    pub hard: i64,
    #[serde(rename = "Soft")]
    pub soft: i64,
}

/// The daemon's settings, as in daemon.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DaemonConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    pub runtimes: BTreeMap<String, RuntimeEntry>,
    pub default_runtime: String,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub log_level: String,
    pub default_ulimits: BTreeMap<String, Ulimit>,
    /// The cgroup every container's cgroup goes under (dockerd's
    /// `cgroup-parent`; `/berth` by default).
    pub cgroup_parent: String,
    /// The Linux bridge of the default `bridge` network (dockerd's
    /// `bridge`, "berth0" by default; "none" for no default network).
    pub bridge: String,
    /// The default bridge's address with its prefix (dockerd's `bip`);
    /// empty: the first free private pool.
    pub bip: String,
    /// The MTU of bridges and container interfaces (dockerd's `mtu`).
    pub mtu: u32,
    /// Whether berthd manages its nftables table (dockerd's `iptables`).
    pub iptables: bool,
    /// Whether berthd turns on IPv4 forwarding (dockerd's `ip-forward`).
    pub ip_forward: bool,
    /// The name of the nftables table berthd owns ("berth").
    pub firewall_table: String,
    /// Whether containers whose HostConfig.Init is unset run an init
    /// (dockerd's `init`).
    pub init: bool,
    /// The init binary (dockerd's `init-path`); empty: `berth-init` beside
    /// berthd, else in PATH.
    pub init_path: PathBuf,
    /// The oldest API version served: not a daemon.json key, dockerd's
    /// `DOCKER_MIN_API_VERSION` environment variable sets it.
    #[serde(skip, default = "default_min_api_version")]
    pub min_api_version: ApiVersion,
}

/// The built-in runtime's name as docker's clients know the default
/// runtime (`HostConfig.Runtime`, `info`'s `DefaultRuntime`): dockerd
/// calls its stock runtime runc, and so does berthd.
pub const STOCK_RUNTIME: &str = "runc";
/// The built-in runtime's own name, accepted too.
pub const BUILTIN_RUNTIME: &str = "berth-runtime";

fn default_min_api_version() -> ApiVersion {
    ApiVersion::MIN
}

/// Whether `name` is the built-in (embedded) runtime.
pub fn is_builtin_runtime(name: &str) -> bool {
    name == STOCK_RUNTIME || name == BUILTIN_RUNTIME
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            data_root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            hosts: Vec::new(),
            runtimes: BTreeMap::new(),
            default_runtime: STOCK_RUNTIME.to_string(),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            log_level: "info".to_string(),
            default_ulimits: BTreeMap::new(),
            cgroup_parent: "/berth".to_string(),
            bridge: "berth0".to_string(),
            bip: String::new(),
            mtu: 1500,
            iptables: true,
            ip_forward: true,
            firewall_table: "berth".to_string(),
            init: false,
            init_path: PathBuf::new(),
            min_api_version: ApiVersion::MIN,
        }
    }
}

/// Where the API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(SocketAddr),
    /// Sockets a service manager passed (systemd socket activation,
    /// dockerd's `fd://`): all of them, or the one numbered (`fd://3`).
    Fd(Option<i32>),
}

impl Host {
    pub fn parse(host: &str) -> Result<Host, ConfigError> {
        let bad = |reason: &str| ConfigError::Host {
            host: host.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute"));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = host.strip_prefix("fd://") {
            if fd.is_empty() {
                return Ok(Host::Fd(None));
            }
            let n: i32 = fd
                .parse()
                .ok()
                .filter(|n| *n >= 3)
                .ok_or_else(|| bad("expected fd:// or fd://N with N >= 3"))?;
            return Ok(Host::Fd(Some(n)));
        }
        if let Some(addr) = host.strip_prefix("tcp://") {
            let addr: SocketAddr = addr
                .trim_end_matches('/')
                .parse()
                .map_err(|_| bad("expected IP:PORT"))?;
            // The API grants root on this machine: without TLS, refuse to
            // listen beyond loopback.
            if !addr.ip().is_loopback() {
                return Err(bad(
                    "berthd serves TCP only on a loopback address (no TLS yet)",
                ));
            }
            return Ok(Host::Tcp(addr));
        }
        Err(bad("unsupported scheme"))
    }
}

impl DaemonConfig {
    /// Reads a config file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(read(e)),
        };
        if meta.len() > MAX_CONFIG_SIZE {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let config: DaemonConfig =
            serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: hosts, log level, the default runtime.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.parsed_hosts()?;
        self.tracing_level()?;
        if let Some(name) = self.runtimes.keys().find(|n| is_builtin_runtime(n)) {
            // dockerd reserves its stock name the same way.
            return Err(ConfigError::ReservedRuntime { name: name.clone() });
        }
        if !is_builtin_runtime(&self.default_runtime)
            && !self.runtimes.contains_key(&self.default_runtime)
        {
            return Err(ConfigError::UnknownRuntime {
                name: self.default_runtime.clone(),
            });
        }
        Ok(())
    }

    /// The hosts to serve; the default socket when none is configured.
    pub fn parsed_hosts(&self) -> Result<Vec<Host>, ConfigError> {
        if self.hosts.is_empty() {
            return Ok(vec![Host::Unix(PathBuf::from(DEFAULT_SOCKET))]);
        }
        self.hosts.iter().map(|h| Host::parse(h)).collect()
    }

    /// The log level as a tracing filter directive.
    pub fn tracing_level(&self) -> Result<&'static str, ConfigError> {
        Ok(match self.log_level.as_str() {
            "debug" => "debug",
            "info" => "info",
            "warn" => "warn",
            "error" | "fatal" => "error",
            _ => {
                return Err(ConfigError::LogLevel {
                    level: self.log_level.clone(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dockerd_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(
            &path,
            r#"{"data-root":"/d","exec-root":"/e","hosts":["unix:///tmp/x.sock","tcp://127.0.0.1:2375"],
               "runtimes":{"crun":{"path":"/usr/bin/crun"}},"default-runtime":"crun",
               "insecure-registries":["127.0.0.1:5000"],"registry-mirrors":["https://m.example"],
               "log-level":"debug","default-ulimits":{"nofile":{"Name":"nofile","Hard":64,"Soft":32}},
               "init":true,"init-path":"/usr/libexec/docker-init"}"#,
        )
        .unwrap();
        let c = DaemonConfig::load(&path).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.default_runtime, "crun");
        assert_eq!(c.default_ulimits["nofile"].soft, 32);
        assert!(c.init);
        assert_eq!(c.init_path, PathBuf::from("/usr/libexec/docker-init"));
        assert_eq!(
            c.parsed_hosts().unwrap(),
            [
                Host::Unix("/tmp/x.sock".into()),
                Host::Tcp("127.0.0.1:2375".parse().unwrap())
            ]
        );
        assert_eq!(
            DaemonConfig::load(&dir.path().join("absent")).unwrap(),
            DaemonConfig::default()
        );
    }

    #[test]
    fn refuses_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        for bad in [
            r#"{"data_root":"/d"}"#,
            r#"{"hosts":["tcp://0.0.0.0:2375"]}"#,
            r#"{"hosts":["unix://relative.sock"]}"#,
            r#"{"log-level":"chatty"}"#,
            r#"{"default-runtime":"nope"}"#,
            r#"{"runtimes":{"runc":{"path":"/usr/sbin/runc"}}}"#,
            r#"{"hosts":"unix:///x"}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = DaemonConfig::load(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}: {err}");
        }
    }
}
