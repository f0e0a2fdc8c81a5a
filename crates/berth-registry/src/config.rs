//! Client configuration: insecure registries, mirrors, retries, upload sizes,
//! and the mapping from a reference's domain to the host berth talks to.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_errdefs::{ErrorKind, HasKind};
use url::Url;

/// The domain docker uses for Docker Hub in references.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Docker Hub's key in `~/.docker/config.json`, and which domains are Hub.
pub use berth_credentials::{is_docker_hub, DOCKER_HUB_AUTH_KEY};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid insecure registry {entry:?}: expected host[:port] or an IP network in CIDR form (e.g. 10.0.0.0/8)")]
    InvalidInsecure { entry: String },
    #[error("invalid registry mirror {url:?}: expected an http:// or https:// URL without a path, e.g. https://mirror.example.com")]
    InvalidMirror { url: String },
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// One entry of the insecure-registries list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Insecure {
    /// `host` or `host:port`, compared case-insensitively with the registry domain.
    Host(String),
    /// An IP network; a registry whose address falls inside it is insecure.
    Network { addr: IpAddr, prefix: u8 },
}

/// How uploads are split into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadConfig {
    /// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
    /// Each chunk is held in memory so that it can be re-sent after a failure.
    pub chunk_size: usize,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            chunk_size: 16 << 20,
        }
    }
}

/// When and how long to retry a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries per request, the first one included.
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Everything the client needs to know about the registries it talks to.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    insecure: Vec<Insecure>,
    mirrors: Vec<Url>,
    /// `~/.docker/config.json` (or another file of that format) for credentials.
    pub docker_config: Option<PathBuf>,
    /// Where `docker-credential-<name>` helpers are looked up; `$PATH` when unset.
    pub helper_path: Option<std::ffi::OsString>,
    pub retry: RetryPolicy,
    pub upload: UploadConfig,
    /// Sent as `User-Agent`.
    pub user_agent: Option<String>,
}

impl RegistryConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an insecure registry: `host`, `host:port` or a CIDR network.
    /// Insecure registries are tried over HTTPS without certificate checks, then plain HTTP.
    pub fn add_insecure(&mut self, entry: &str) -> Result<(), ConfigError> {
        let bad = || ConfigError::InvalidInsecure {
            entry: entry.to_string(),
        };
        let e = entry.trim();
        if e.is_empty() || e.contains("://") || e.contains(char::is_whitespace) {
            return Err(bad());
        }
        if let Some((addr, prefix)) = e.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let prefix: u8 = prefix.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(bad());
            }
            self.insecure.push(Insecure::Network { addr, prefix });
        } else {
            self.insecure.push(Insecure::Host(e.to_ascii_lowercase()));
        }
        Ok(())
    }

    /// Adds a Docker Hub mirror; pulls from docker.io try mirrors in order before Docker Hub.
    pub fn add_mirror(&mut self, url: &str) -> Result<(), ConfigError> {
        let bad = || ConfigError::InvalidMirror {
            url: url.to_string(),
        };
        let parsed = Url::parse(url).map_err(|_| bad())?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host_str().is_none()
            || !(parsed.path() == "/" || parsed.path().is_empty())
            || parsed.query().is_some()
        {
            return Err(bad());
        }
        self.mirrors.push(parsed);
        Ok(())
    }

    pub fn mirrors(&self) -> &[Url] {
        &self.mirrors
    }

    /// Whether `domain` (host[:port]) may be reached without verified TLS.
    /// Loopback registries always may, as with docker. `resolved` are the
    /// addresses the host name resolves to, for the CIDR entries.
    pub fn is_insecure(&self, domain: &str, resolved: &[IpAddr]) -> bool {
        let domain = domain.to_ascii_lowercase();
        let host = host_of(&domain);
        if host == "localhost" || resolved.iter().any(|ip| ip.is_loopback()) {
            return true;
        }
        if let Some(ip) = parse_ip(host) {
            if ip.is_loopback() {
                return true;
            }
        }
        let literal = parse_ip(host);
        self.insecure.iter().any(|entry| match entry {
            Insecure::Host(h) => *h == domain || *h == host,
            Insecure::Network { addr, prefix } => literal
                .iter()
                .chain(resolved)
                .any(|ip| in_network(*ip, *addr, *prefix)),
        })
    }

    /// Whether any entry needs the host's addresses (so a DNS lookup is worth it).
    pub(crate) fn has_networks(&self) -> bool {
        self.insecure
            .iter()
            .any(|e| matches!(e, Insecure::Network { .. }))
    }
}

/// The host part of `host[:port]`, `[v6]:port` or a bare v6 address.
pub(crate) fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if domain.matches(':').count() > 1 {
        return domain; // a bare IPv6 address
    }
    domain.split(':').next().unwrap_or(domain)
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The host:port the registry API of `domain` is served on.
pub fn api_host(domain: &str) -> &str {
    if is_docker_hub(domain) {
        DOCKER_HUB_API_HOST
    } else {
        domain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_insecure() {
        let c = RegistryConfig::new();
        assert!(c.is_insecure("localhost:5000", &[]));
        assert!(c.is_insecure("127.0.0.1:5000", &[]));
        assert!(c.is_insecure("[::1]:5000", &[]));
        assert!(!c.is_insecure("registry.example.com", &[]));
        assert!(c.is_insecure("myhost:5000", &["127.0.1.1".parse().unwrap()]));
    }

    #[test]
    fn host_and_cidr_entries() {
        let mut c = RegistryConfig::new();
        c.add_insecure("reg.lan:5000").unwrap();
        c.add_insecure("10.0.0.0/8").unwrap();
        c.add_insecure("fd00::/8").unwrap();
        assert!(c.is_insecure("REG.lan:5000", &[]));
        assert!(!c.is_insecure("reg.lan:5001", &[]));
        assert!(c.is_insecure("10.2.3.4:5000", &[]));
        assert!(!c.is_insecure("11.2.3.4", &[]));
        assert!(c.is_insecure("other", &["10.9.9.9".parse().unwrap()]));
        assert!(c.is_insecure("[fd12::1]:80", &[]));
        assert!(c.has_networks());
        for bad in ["", "http://x", "10.0.0.0/33", "x/8", "a b"] {
            assert!(c.add_insecure(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirrors_must_be_bare_urls() {
        let mut c = RegistryConfig::new();
        c.add_mirror("https://mirror.example.com").unwrap();
        c.add_mirror("http://127.0.0.1:5001/").unwrap();
        assert_eq!(c.mirrors().len(), 2);
        for bad in [
            "mirror.example.com",
            "ftp://x",
            "https://x/path",
            "https://x/?a=b",
        ] {
            assert!(c.add_mirror(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(400));
        assert_eq!(p.delay(4), Duration::from_millis(500));
        assert_eq!(p.delay(40), Duration::from_millis(500));
    }

    #[test]
    fn docker_hub_host() {
        assert_eq!(api_host("docker.io"), DOCKER_HUB_API_HOST);
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }
}
