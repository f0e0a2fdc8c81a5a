//! Published ports: docker's `PortBindings` and `PublishAllPorts` turned
//! into host ports a starting container holds.
//!
//! A host port is free when no berth container holds it (the database's
//! `port_bindings`, whose key refuses a second holder) and no process of
//! the host listens on it (checked by binding it for a moment): the nft
//! DNAT rule would otherwise steal its traffic.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use berth_store::PortBindingRow;

use crate::containers::Loaded;
use crate::engine::Engine;
use crate::error::ApiError;

/// A container port as docker's keys name it: `80/tcp`, `53/udp`, `80`.
pub(crate) fn parse_port_key(key: &str) -> Result<(u16, String), ApiError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(ApiError::bad_request(format!(
            "invalid port {key:?}: the protocol must be tcp, udp or sctp"
        )));
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid port {key:?}: expected PORT[/PROTO] with a port from 1 to 65535"
        ))
    })?;
    Ok((port, proto))
}

/// A requested host port: any, one, or the first free one of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostPort {
    Any,
    Range(u16, u16),
}

fn parse_host_port(s: &str) -> Result<HostPort, ApiError> {
    let bad = || {
        ApiError::bad_request(format!("invalid host port {s:?}: expected a port, a range like 8000-8010, or nothing for a random one"))
    };
    if s.is_empty() || s == "0" {
        return Ok(HostPort::Any);
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok(HostPort::Range(a, b))
}

/// The host's ephemeral port range, where random host ports come from.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|w| w.parse().ok());
            Some((it.next()?, it.next()?))
        })
        .filter(|(a, b): &(u16, u16)| *a > 0 && a <= b)
        .unwrap_or((32768, 60999))
}

/// Whether no host process holds `port` on `ip` for `proto`.
fn bindable(proto: &str, ip: IpAddr, port: u16) -> bool {
    let addr = SocketAddr::new(ip, port);
    match proto {
        "udp" => UdpSocket::bind(addr).is_ok(),
        // sctp: no std socket; the database check is all there is.
        "sctp" => true,
        _ => TcpListener::bind(addr).is_ok(),
    }
}

/// Whether two host addresses collide (an unspecified one takes all).
fn collide(a: &str, b: &str) -> bool {
    let any = |s: &str| s == "0.0.0.0" || s == "::";
    a == b || any(a) || any(b)
}

struct Want {
    proto: String,
    host_ip: IpAddr,
    host_port: HostPort,
    container_port: u16,
}

/// The requested bindings of a container, docker's way: `PortBindings`,
/// plus every exposed port (request and image) under `PublishAllPorts`.
fn wanted(engine: &Engine, c: &Loaded) -> Result<Vec<Want>, ApiError> {
    let create = &c.config.create;
    let hc = create.host_config.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut bound = BTreeSet::new();
    let mut keys: Vec<_> = hc
        .port_bindings
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, bindings) in keys {
        let (port, proto) = parse_port_key(&key)?;
        bound.insert((port, proto.clone()));
        for b in bindings.unwrap_or_default() {
            let ip = b
                .host_ip
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("0.0.0.0");
            let host_ip: IpAddr = ip.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid host IP {ip:?} for port {key}"))
            })?;
            out.push(Want {
                proto: proto.clone(),
                host_ip,
                host_port: parse_host_port(b.host_port.as_deref().unwrap_or(""))?,
                container_port: port,
            });
        }
    }
    if hc.publish_all_ports.unwrap_or(false) {
        let mut exposed: BTreeSet<String> = create
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if let Ok(image) = engine.store.image(&c.image_id) {
            if let Ok(cfg) = crate::images::parse_image_config(&image) {
                exposed.extend(
                    cfg.config
                        .and_then(|r| r.exposed_ports)
                        .unwrap_or_default()
                        .into_keys(),
                );
            }
        }
        for key in exposed {
            let (port, proto) = parse_port_key(&key)?;
            if bound.insert((port, proto.clone())) {
                out.push(Want {
                    proto,
                    host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    host_port: HostPort::Any,
                    container_port: port,
                });
            }
        }
    }
    Ok(out)
}

/// Chooses host ports for a starting container (the network lock held).
/// `container_ip`: its address on the primary network.
pub(crate) fn allocate(
    engine: &Engine,
    c: &Loaded,
    container_ip: Option<IpAddr>,
) -> Result<Vec<PortBindingRow>, ApiError> {
    let wants = wanted(engine, c)?;
    if wants.is_empty() {
        return Ok(Vec::new());
    }
    if container_ip.is_none() {
        return Err(ApiError::bad_request(
            "cannot publish ports: the container has no address on its primary network",
        ));
    }
    let mut held = engine.store.port_bindings()?;
    let mut out: Vec<PortBindingRow> = Vec::new();
    let (lo, hi) = ephemeral_range();
    // Random ports start at a point derived from the id, so concurrent
    // daemons (tests) rarely probe the same ports first.
    let span = (hi - lo) as u32 + 1;
    let seed = u32::from_str_radix(&c.id[..8], 16).unwrap_or(0) % span;
    for w in wants {
        let ip = w.host_ip.to_string();
        let free = |port: u16, held: &[PortBindingRow]| {
            !held
                .iter()
                .any(|h| h.protocol == w.proto && h.host_port == port && collide(&h.host_ip, &ip))
                && bindable(&w.proto, w.host_ip, port)
        };
        let port = match w.host_port {
            HostPort::Any => (0..span)
                .map(|i| lo + ((seed + i) % span) as u16)
                .find(|p| free(*p, &held)),
            HostPort::Range(a, b) => (a..=b).find(|p| free(*p, &held)),
        };
        let Some(port) = port else {
            let what = match w.host_port {
                HostPort::Range(a, b) if a == b => format!("{ip}:{a}"),
                HostPort::Range(a, b) => format!("{ip}:{a}-{b}"),
                HostPort::Any => format!("{ip} (no free port in {lo}-{hi})"),
            };
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::Conflict,
                format!(
                    "driver failed programming external connectivity on endpoint {}: Bind for {what} failed: port is already allocated",
                    c.name
                ),
            ));
        };
        let row = PortBindingRow {
            container_id: c.id.clone(),
            protocol: w.proto.clone(),
            host_ip: ip,
            host_port: port,
            container_port: w.container_port,
        };
        held.push(row.clone());
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_host_ports() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, "tcp".into()));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/icmp").is_err());
        assert_eq!(parse_host_port("").unwrap(), HostPort::Any);
        assert_eq!(
            parse_host_port("8080").unwrap(),
            HostPort::Range(8080, 8080)
        );
        assert_eq!(
            parse_host_port("8000-8010").unwrap(),
            HostPort::Range(8000, 8010)
        );
        assert!(parse_host_port("9-1").is_err());
        assert!(collide("0.0.0.0", "127.0.0.1"));
        assert!(!collide("127.0.0.1", "127.0.0.2"));
    }
}
