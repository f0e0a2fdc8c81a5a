//! `/version`, `/info`, `/auth`: what the engine says about itself.

use berth_api::models::{SystemVersion, SystemVersionPlatform};
use berth_api::ApiVersion;
use berth_registry::Credentials;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::error::ApiError;

/// The version berthd reports as its engine version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Go's GOARCH spelling of the host architecture, as docker reports it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".to_string())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// cgroup v2 when the unified hierarchy is mounted at the root.
fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// berthd is no Go program; docker's clients print this where dockerd's
/// Go version goes.
const GO_VERSION: &str = "n/a (rust)";

/// `/version`, with the oldest API version this daemon serves.
pub fn version(min_api_version: ApiVersion) -> SystemVersion {
    // docker's CLI prints the Engine component's details (`docker
    // version`), each a string, as dockerd fills them.
    let component = json!({
        "Name": "Engine",
        "Version": ENGINE_VERSION,
        "Details": {
            "ApiVersion": ApiVersion::MAX.to_string(),
            "MinAPIVersion": min_api_version.to_string(),
            "GitCommit": "",
            "GoVersion": GO_VERSION,
            "Os": "linux",
            "Arch": go_arch(),
            "KernelVersion": kernel_version(),
            "Experimental": "false",
            "BuildTime": "",
        },
    });
    SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: "berth".to_string(),
        }),
        components: serde_json::from_value(json!([component])).ok(),
        version: Some(ENGINE_VERSION.to_string()),
        api_version: Some(ApiVersion::MAX.to_string()),
        min_api_version: Some(min_api_version.to_string()),
        git_commit: Some(String::new()),
        go_version: Some(GO_VERSION.to_string()),
        os: Some("linux".to_string()),
        arch: Some(go_arch().to_string()),
        kernel_version: Some(kernel_version()),
        experimental: Some(false),
        build_time: Some(String::new()),
    }
}

impl Engine {
    /// `/info`, in docker's shape.
    pub fn info(&self) -> Result<Value, ApiError> {
        let config = self.config();
        let images = self.store.images()?.len();
        let mut runtimes = serde_json::Map::new();
        for name in [crate::config::STOCK_RUNTIME, crate::config::BUILTIN_RUNTIME] {
            runtimes.insert(
                name.to_string(),
                json!({"path": crate::config::BUILTIN_RUNTIME}),
            );
        }
        for (name, r) in &config.runtimes {
            runtimes.insert(
                name.clone(),
                json!({"path": r.path, "runtimeArgs": r.runtime_args}),
            );
        }
        let index_configs: serde_json::Map<String, Value> = config
            .insecure_registries
            .iter()
            .filter(|r| !r.contains('/'))
            .map(|r| {
                (
                    r.clone(),
                    json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
                )
            })
            .chain(std::iter::once((
                "docker.io".to_string(),
                json!({"Name": "docker.io", "Mirrors": config.registry_mirrors, "Secure": true, "Official": true}),
            )))
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let containers = self.list_containers(true, None, false, &berth_api::Filters::default())?;
        let in_state = |s: &str| containers.iter().filter(|c| c["State"] == s).count();
        let running = in_state("running") + in_state("restarting");
        let paused = in_state("paused");
        Ok(json!({
            "ID": self.id,
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "DockerRootDir": config.data_root,
            "Plugins": {"Volume": [], "Network": [], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "KernelMemory": false,
            "KernelMemoryTCP": false,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "OomKillDisable": cgroup_version() == "1",
            "IPv4Forwarding": true,
            "BridgeNfIptables": false,
            "BridgeNfIp6tables": false,
            "Debug": config.log_level == "debug",
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": format!("{}", now.as_secs()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": operating_system(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": [],
                "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": index_configs,
                "Mirrors": config.registry_mirrors,
            },
            "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "MemTotal": mem_total(),
            "GenericResources": null,
            "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
            "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
            "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
            "Name": hostname(),
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": ENGINE_VERSION,
            "Runtimes": runtimes,
            "DefaultRuntime": config.default_runtime,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": crate::init::display_name(&config),
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            // API 1.44: CDI device specs; berthd reads none.
            "CDISpecDirs": [],
            "Warnings": [],
        }))
    }
}

/// The registry host an `/auth` or `X-Registry-Auth` server address names:
/// `https://index.docker.io/v1/` is Docker Hub, `localhost:5000` is itself.
pub fn registry_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or_default();
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// docker's `AuthConfig` body (and the decoded `X-Registry-Auth` header).
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuthBody {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
}

impl AuthBody {
    /// Credentials when the body carries any.
    pub fn credentials(&self) -> Option<Credentials> {
        if self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty() {
            return None;
        }
        let mut c = Credentials::basic(self.username.clone(), self.password.clone());
        if !self.identity_token.is_empty() {
            c.identity_token = Some(self.identity_token.clone());
        }
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts() {
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host(""), "docker.io");
        assert_eq!(registry_host("localhost:5000"), "localhost:5000");
        assert_eq!(registry_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }

    #[test]
    fn version_has_negotiation_bounds() {
        let v = serde_json::to_value(version(ApiVersion::MIN)).unwrap();
        assert_eq!(v["ApiVersion"], ApiVersion::MAX.to_string());
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["Os"], "linux");
    }
}
