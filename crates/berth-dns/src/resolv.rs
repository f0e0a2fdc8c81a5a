//! The host's resolvers, from its resolv.conf.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// resolv.conf files are a few hundred bytes; a larger one is read this far.
const MAX_RESOLV_CONF: u64 = 64 << 10;
/// glibc reads three nameservers; a few more cost nothing.
const MAX_UPSTREAMS: usize = 8;

/// The `nameserver` addresses of the host's resolv.conf (port 53), in
/// order; empty when the file is missing or names none (then names that
/// are not on the network get SERVFAIL). Loopback resolvers are kept:
/// berth-dns runs in the host's network namespace and reaches them.
/// Link-local IPv6 servers with a `%zone` are skipped (they need the
/// interface's index, which the name alone does not give here).
pub fn host_upstreams(resolv_conf: &Path) -> Vec<SocketAddr> {
    let Ok(f) = std::fs::File::open(resolv_conf) else {
        return Vec::new();
    };
    let mut text = String::new();
    if f.take(MAX_RESOLV_CONF).read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    parse_nameservers(&text)
}

fn parse_nameservers(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        let addr = SocketAddr::new(ip, 53);
        if !out.contains(&addr) && out.len() < MAX_UPSTREAMS {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_in_order() {
        let text = "# generated\nsearch example.com\nnameserver 127.0.0.53\n\
                    nameserver\tfd00::1 # comment\nnameserver fe80::1%eth0\n\
                    nameserver bogus\noptions edns0\nnameserver 127.0.0.53\n;nameserver 9.9.9.9\n";
        let got = parse_nameservers(text);
        assert_eq!(
            got,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[fd00::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn missing_file_gives_none() {
        assert!(host_upstreams(Path::new("/nonexistent/resolv.conf")).is_empty());
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("resolv.conf");
        std::fs::write(&p, "nameserver 10.0.0.1\n").unwrap();
        assert_eq!(host_upstreams(&p), vec!["10.0.0.1:53".parse().unwrap()]);
    }
}
