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

/// Writes the three files (each atomically) and returns their paths.
pub fn write(dir: &Path, hostname: &str) -> Result<EtcFiles, ApiError> {
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv_conf: dir.join("resolv.conf"),
    };
    write_atomically(&files.hostname, format!("{hostname}\n").as_bytes())?;
    write_atomically(&files.hosts, hosts(hostname).as_bytes())?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomically(&files.resolv_conf, resolv_conf(&host_resolv).as_bytes())?;
    Ok(files)
}

fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    )
}

/// The host's resolv.conf without loopback nameservers (a local resolver
/// on the host is not reachable from the container); public fallbacks if
/// none is left.
fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for s in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped() {
        let r = resolv_conf("search example.com\nnameserver 127.0.0.53\noptions edns0\n");
        assert_eq!(
            r,
            "search example.com\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let r = resolv_conf("nameserver 10.0.0.2\n");
        assert_eq!(r, "nameserver 10.0.0.2\n");
        assert!(hosts("abc").ends_with("127.0.1.1\tabc\n"));
    }
}
