//! The files docker bind-mounts onto a container's `/etc`: `hostname`,
//! `hosts` and `resolv.conf`, kept in the container's directory.

use std::path::Path;

use super::lifecycle::write_atomically;
use crate::error::ApiError;
use crate::spec::EtcFiles;

/// Nameservers a container reaches when the host's resolv.conf only
/// names local ones (which mean nothing in the container's network
/// namespace); docker uses the same public fallbacks.
const FALLBACK_NAMESERVERS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// What a container's `/etc` files say besides the defaults.
#[derive(Debug, Clone, Default)]
pub struct EtcInput {
    pub hostname: String,
    /// The container's own addresses (each gets a hosts line with its
    /// hostname). Without any (`none`, `host`) the hostname gets no line,
    /// as with docker.
    pub addresses: Vec<std::net::IpAddr>,
    /// `--add-host` entries as (name, address).
    pub extra_hosts: Vec<(String, String)>,
    /// berth's DNS server for the container (user-defined networks).
    pub dns_server: Option<std::net::IpAddr>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `container:<id>` networking: that container's files, shared.
    pub share_from: Option<std::path::PathBuf>,
    /// Host networking without `--add-host`: a copy of the host's
    /// `/etc/hosts` (docker's), not berth's default file.
    pub host_hosts: bool,
}

/// Writes the three files (each atomically) and returns their paths.
pub fn write(dir: &Path, input: &EtcInput) -> Result<EtcFiles, ApiError> {
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv_conf: dir.join("resolv.conf"),
    };
    if let Some(other) = &input.share_from {
        // docker shares the other container's hosts and resolv.conf
        // (copied at start: its files may go when it is removed).
        for name in ["hosts", "resolv.conf", "hostname"] {
            let data = std::fs::read(other.join(name)).unwrap_or_default();
            write_atomically(&dir.join(name), &data)?;
        }
        return Ok(files);
    }
    write_atomically(&files.hostname, format!("{}\n", input.hostname).as_bytes())?;
    let hosts = match input.host_hosts {
        true => std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts(input)),
        false => hosts(input),
    };
    write_atomically(&files.hosts, hosts.as_bytes())?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomically(
        &files.resolv_conf,
        resolv_conf(&host_resolv, input).as_bytes(),
    )?;
    Ok(files)
}

fn hosts(input: &EtcInput) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, addr) in &input.extra_hosts {
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    for a in &input.addresses {
        out.push_str(&format!("{a}\t{}\n", input.hostname));
    }
    out
}

/// docker's resolv.conf: berth's DNS server on user-defined networks
/// (with `ndots:0`), else `--dns` or the host's usable nameservers; the
/// host's search domains and options unless `--dns-search`/`--dns-option`
/// replace them.
fn resolv_conf(host: &str, input: &EtcInput) -> String {
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut others = String::new();
    let mut host_servers = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let addr = words.next().unwrap_or("");
                if !(addr.starts_with("127.") || addr == "::1") {
                    host_servers.push(addr.to_string());
                }
            }
            Some("search") | Some("domain") => search = words.map(String::from).collect(),
            Some("options") => options.extend(words.map(String::from)),
            _ => {
                others.push_str(line);
                others.push('\n');
            }
        }
    }
    if !input.dns_search.is_empty() {
        search = input
            .dns_search
            .iter()
            .filter(|s| *s != ".")
            .cloned()
            .collect();
    }
    if !input.dns_options.is_empty() {
        options = input.dns_options.clone();
    }
    let servers: Vec<String> = if let Some(s) = input.dns_server {
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
        vec![s.to_string()]
    } else if !input.dns.is_empty() {
        input.dns.clone()
    } else if !host_servers.is_empty() {
        host_servers
    } else {
        FALLBACK_NAMESERVERS.iter().map(|s| s.to_string()).collect()
    };
    let mut out = others;
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped() {
        let plain = EtcInput {
            hostname: "abc".into(),
            ..EtcInput::default()
        };
        let r = resolv_conf(
            "search example.com\nnameserver 127.0.0.53\noptions edns0\n",
            &plain,
        );
        assert_eq!(
            r,
            "search example.com\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n"
        );
        let r = resolv_conf("nameserver 10.0.0.2\n", &plain);
        assert_eq!(r, "nameserver 10.0.0.2\n");
        assert!(!hosts(&plain).contains("abc"), "no address, no line");
    }

    #[test]
    fn user_networks_use_berths_dns() {
        let input = EtcInput {
            hostname: "web".into(),
            addresses: vec!["172.18.0.2".parse().unwrap()],
            extra_hosts: vec![("db".into(), "10.0.0.9".into())],
            dns_server: Some("172.18.0.1".parse().unwrap()),
            dns_search: vec!["corp".into()],
            ..EtcInput::default()
        };
        let r = resolv_conf("search example.com\nnameserver 10.0.0.2\n", &input);
        assert_eq!(r, "search corp\nnameserver 172.18.0.1\noptions ndots:0\n");
        let h = hosts(&input);
        assert!(h.contains("10.0.0.9\tdb\n") && h.ends_with("172.18.0.2\tweb\n"));
    }
}
