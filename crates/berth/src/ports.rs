//! docker's port syntax, both ways: `-p`/`--expose` specs into the API's
//! `ExposedPorts`/`PortBindings`, and the API's port lists back into the
//! `ps` PORTS column.

use std::net::IpAddr;

/// One binding of a published port: `PortBindings["80/tcp"]` gets
/// `{"HostIp": host_ip, "HostPort": host_port}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `80/tcp`: the key of `ExposedPorts` and `PortBindings`.
    pub port: String,
    pub host_ip: String,
    /// Empty for a random port; `8000-8010` for a single container port
    /// published into a range of host ports (the daemon picks one).
    pub host_port: String,
}

/// A port or range (`80`, `8000-8010`) as its first and last port.
fn range(s: &str) -> Result<(u16, u16), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let num = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("strconv.ParseUint: parsing {p:?}: invalid syntax"))
    };
    let Some((a, b)) = s.split_once('-') else {
        let p = num(s)?;
        return Ok((p, p));
    };
    let (a, b) = (num(a)?, num(b)?);
    if b < a {
        return Err(format!("invalid range specified for port: {s}"));
    }
    Ok((a, b))
}

/// `80/udp` -> (`80`, `udp`); a missing or empty protocol is tcp, and
/// anything after a second `/` is ignored, as docker does.
fn split_proto(spec: &str) -> (&str, String) {
    let mut parts = spec.splitn(3, '/');
    let port = parts.next().unwrap_or("");
    let proto = match parts.next() {
        None | Some("") => "tcp".to_string(),
        Some(p) => p.to_lowercase(),
    };
    (port, proto)
}

/// `--expose 80`, `--expose 7000-7002/udp`: the `ExposedPorts` keys.
pub fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    let (port, proto) = split_proto(spec);
    let (first, last) = range(port)
        .map_err(|e| format!("invalid range format for --expose: {spec}, error: {e}"))?;
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// `-p` in docker's syntax: `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`,
/// where ports may be ranges of the same length (expanded one binding per
/// port), a single container port may take a range of host ports, and an
/// IPv6 address is written in brackets (`[::1]:8080:80`).
pub fn parse_publish(spec: &str) -> Result<Vec<Mapping>, String> {
    let (raw, proto) = split_proto(spec);
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // The container port is after the last colon, the host port before
    // it, and everything before that is the address (which may hold
    // colons of its own: `::1:80:80`).
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let ip = host_ip(&ip)?;
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (c_first, c_last) =
        range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(host).map_err(|_| format!("invalid hostPort: {host}"))?)
    };
    let single = c_first == c_last;
    if let Some((h_first, h_last)) = host_range {
        if !single && h_last - h_first != c_last - c_first {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
    }
    Ok((c_first..=c_last)
        .map(|p| {
            let host_port = match host_range {
                None => String::new(),
                // One container port into a range of host ports: the
                // daemon picks a free one from the range.
                Some((a, b)) if single && a != b => format!("{a}-{b}"),
                Some((a, _)) => (a + (p - c_first)).to_string(),
            };
            Mapping {
                port: format!("{p}/{proto}"),
                host_ip: ip.clone(),
                host_port,
            }
        })
        .collect())
}

/// The host address of a `-p` spec: empty, an IPv4 address, or an IPv6
/// address with or without brackets; the API wants it without.
fn host_ip(ip: &str) -> Result<String, String> {
    if ip.is_empty() {
        return Ok(String::new());
    }
    let bare = match ip.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| format!("invalid IP address {ip}: missing ']' in address"))?,
        None => ip,
    };
    bare.parse::<IpAddr>()
        .map_err(|_| format!("invalid IP address: {ip}"))?;
    Ok(bare.to_string())
}

/// One entry of the list API's `Ports`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub private: u16,
    pub ip: String,
    pub public: u16,
    pub proto: String,
}

impl Port {
    pub fn from_json(v: &serde_json::Value) -> Port {
        let num = |k: &str| v[k].as_u64().unwrap_or(0) as u16;
        Port {
            private: num("PrivatePort"),
            ip: v["IP"].as_str().unwrap_or("").to_string(),
            public: num("PublicPort"),
            proto: v["Type"].as_str().unwrap_or("tcp").to_string(),
        }
    }
}

/// `0.0.0.0` as is, `::` as `[::]`: how an address goes before `:port`.
pub fn join_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// The PORTS column as docker prints it: ports sorted by container port;
/// runs of consecutive ports that are unpublished, or published on the
/// same address with the same port number, collapse into ranges
/// (`8000-8001/tcp`, `0.0.0.0:8000-8001->8000-8001/tcp`), kept in the
/// order their runs began; bindings to a different host port follow, one
/// each (`0.0.0.0:9000->80/tcp`).
pub fn display(ports: &[Port]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort();
    sorted.dedup();
    // (address or "", protocol) -> the open run of ports for that key.
    let mut runs: Vec<((String, String), u16, u16)> = Vec::new();
    let mut closed = Vec::new();
    let mut moved = Vec::new();
    for p in &sorted {
        let key = if p.ip.is_empty() {
            (String::new(), p.proto.clone())
        } else if p.public != p.private {
            moved.push(format!(
                "{}:{}->{}/{}",
                join_host(&p.ip),
                p.public,
                p.private,
                p.proto
            ));
            continue;
        } else {
            (p.ip.clone(), p.proto.clone())
        };
        match runs.iter_mut().find(|r| r.0 == key) {
            None => runs.push((key, p.private, p.private)),
            Some(run) if u32::from(p.private) == u32::from(run.2) + 1 => run.2 = p.private,
            Some(run) => {
                closed.push(run_text(&run.0, run.1, run.2));
                run.1 = p.private;
                run.2 = p.private;
            }
        }
    }
    closed.extend(runs.iter().map(|r| run_text(&r.0, r.1, r.2)));
    closed.extend(moved);
    closed.join(", ")
}

fn run_text((ip, proto): &(String, String), first: u16, last: u16) -> String {
    let ports = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    if ip.is_empty() {
        format!("{ports}/{proto}")
    } else {
        format!("{}:{ports}->{ports}/{proto}", join_host(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(port: &str, ip: &str, host: &str) -> Mapping {
        Mapping {
            port: port.into(),
            host_ip: ip.into(),
            host_port: host.into(),
        }
    }

    #[test]
    fn publish_specs_as_docker() {
        assert_eq!(parse_publish("80").unwrap(), [m("80/tcp", "", "")]);
        assert_eq!(parse_publish("8080:80").unwrap(), [m("80/tcp", "", "8080")]);
        assert_eq!(
            parse_publish("127.0.0.1:8080:80").unwrap(),
            [m("80/tcp", "127.0.0.1", "8080")]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            [m("80/tcp", "127.0.0.1", "")]
        );
        assert_eq!(
            parse_publish("8000-8010:80").unwrap(),
            [m("80/tcp", "", "8000-8010")]
        );
        assert_eq!(
            parse_publish("8000-8001:80-81/udp").unwrap(),
            [m("80/udp", "", "8000"), m("81/udp", "", "8001")]
        );
        assert_eq!(
            parse_publish("80-81").unwrap(),
            [m("80/tcp", "", ""), m("81/tcp", "", "")]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            [m("80/tcp", "::1", "8080")]
        );
        assert_eq!(
            parse_publish("::1:8080:80").unwrap(),
            [m("80/tcp", "::1", "8080")]
        );
        assert_eq!(parse_publish("::80").unwrap(), [m("80/tcp", "", "")]);
        assert_eq!(
            parse_publish("1.2.3.4:53:53/UDP").unwrap(),
            [m("53/udp", "1.2.3.4", "53")]
        );
        assert_eq!(parse_publish("80:80/").unwrap(), [m("80/tcp", "", "80")]);
        assert_eq!(parse_publish("80/sctp").unwrap(), [m("80/sctp", "", "")]);
    }

    #[test]
    fn bad_publish_specs_say_what_docker_says() {
        let e = |s: &str| parse_publish(s).unwrap_err();
        assert_eq!(e("80/foo"), "invalid proto: foo");
        assert_eq!(e("abc"), "invalid containerPort: abc");
        assert_eq!(e("70000"), "invalid containerPort: 70000");
        assert_eq!(e("65536:80"), "invalid hostPort: 65536");
        assert_eq!(e("8000-7000:80"), "invalid hostPort: 8000-7000");
        assert_eq!(e("80:80:80:80"), "invalid IP address: 80:80");
        assert_eq!(e("1.2.3.4:80"), "invalid hostPort: 1.2.3.4");
        assert_eq!(e(""), "no port specified: <empty>");
        assert_eq!(
            e("8000-8002:80-81"),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
    }

    #[test]
    fn expose_ranges() {
        assert_eq!(parse_expose("80").unwrap(), ["80/tcp"]);
        assert_eq!(
            parse_expose("7000-7002/udp").unwrap(),
            ["7000/udp", "7001/udp", "7002/udp"]
        );
        assert_eq!(
            parse_expose("80-70").unwrap_err(),
            "invalid range format for --expose: 80-70, error: invalid range specified for port: 80-70"
        );
        assert_eq!(
            parse_expose("abc").unwrap_err(),
            "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
    }

    fn p(private: u16, ip: &str, public: u16, proto: &str) -> Port {
        Port {
            private,
            ip: ip.into(),
            public,
            proto: proto.into(),
        }
    }

    #[test]
    fn ps_column_collapses_runs_as_docker() {
        // What dockerd 20.10 and docker 28's ps print for -p 8000-8001:8000-8001
        // -p 9000-9001:80-81 -p 127.0.0.1:7000-7001:7000-7001/udp -p 5000:5001
        // --expose 443 --expose 444 --expose 446 --expose 6000.
        let ports = [
            p(6000, "", 0, "tcp"),
            p(7000, "127.0.0.1", 7000, "udp"),
            p(7001, "127.0.0.1", 7001, "udp"),
            p(80, "0.0.0.0", 9000, "tcp"),
            p(8000, "0.0.0.0", 8000, "tcp"),
            p(5001, "0.0.0.0", 5000, "tcp"),
            p(444, "", 0, "tcp"),
            p(446, "", 0, "tcp"),
            p(8001, "0.0.0.0", 8001, "tcp"),
            p(81, "0.0.0.0", 9001, "tcp"),
            p(443, "", 0, "tcp"),
        ];
        assert_eq!(
            display(&ports),
            "443-444/tcp, 446/tcp, 6000/tcp, 127.0.0.1:7000-7001->7000-7001/udp, \
             0.0.0.0:8000-8001->8000-8001/tcp, 0.0.0.0:9000->80/tcp, 0.0.0.0:9001->81/tcp, \
             0.0.0.0:5000->5001/tcp"
        );
        assert_eq!(
            display(&[p(80, "0.0.0.0", 8080, "tcp"), p(80, "::", 8080, "tcp")]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(display(&[]), "");
    }
}
