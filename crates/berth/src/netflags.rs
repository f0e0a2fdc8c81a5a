//! `run`/`create`'s networking flags, with docker's names, and what they
//! become in the create request: `HostConfig.NetworkMode`, `Dns*`,
//! `ExtraHosts`, `PortBindings`, `PublishAllPorts`, `ExposedPorts`, and
//! `NetworkingConfig.EndpointsConfig` keyed by network name.

use std::net::IpAddr;

use clap::Args;
use serde_json::{json, Map, Value};

use crate::ports;

#[derive(Args, Debug, Default, Clone)]
pub struct NetOpts {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long, action = crate::cli::many())]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, action = crate::cli::many())]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long, action = crate::cli::many())]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long, action = crate::cli::many())]
    pub dns_search: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long, action = crate::cli::many())]
    pub expose: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, default_value = "")]
    pub ip: String,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, default_value = "")]
    pub ip6: String,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long, default_value = "")]
    pub mac_address: String,
    /// Connect a container to a network
    #[arg(long, alias = "net", action = crate::cli::many())]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long, alias = "net-alias", action = crate::cli::many())]
    pub network_alias: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long, action = crate::cli::many())]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
}

/// What the flags put into the create request.
#[derive(Debug, Default)]
pub struct Networking {
    /// Fields of `HostConfig`.
    pub host: Map<String, Value>,
    /// `Config.ExposedPorts`.
    pub exposed: Map<String, Value>,
    /// `Config.MacAddress`: where daemons before API 1.44 read it
    /// (newer ones read the endpoint's, which is set too).
    pub mac: String,
    /// `NetworkingConfig`.
    pub networking: Value,
}

/// One network to join and the endpoint settings for it.
#[derive(Debug, Default, Clone, PartialEq)]
struct Endpoint {
    name: String,
    aliases: Vec<String>,
    ipv4: String,
    ipv6: String,
    mac: String,
    link_local: Vec<String>,
    driver_opts: Map<String, Value>,
}

impl Endpoint {
    fn is_empty(&self) -> bool {
        self.aliases.is_empty()
            && self.ipv4.is_empty()
            && self.ipv6.is_empty()
            && self.mac.is_empty()
            && self.link_local.is_empty()
            && self.driver_opts.is_empty()
    }

    /// `EndpointSettings` with the fields that are set.
    fn to_json(&self) -> Value {
        let mut ep = Map::new();
        if !self.ipv4.is_empty() || !self.ipv6.is_empty() || !self.link_local.is_empty() {
            let mut ipam = Map::new();
            if !self.ipv4.is_empty() {
                ipam.insert("IPv4Address".into(), self.ipv4.clone().into());
            }
            if !self.ipv6.is_empty() {
                ipam.insert("IPv6Address".into(), self.ipv6.clone().into());
            }
            if !self.link_local.is_empty() {
                ipam.insert("LinkLocalIPs".into(), json!(self.link_local));
            }
            ep.insert("IPAMConfig".into(), Value::Object(ipam));
        }
        if !self.aliases.is_empty() {
            ep.insert("Aliases".into(), json!(self.aliases));
        }
        if !self.mac.is_empty() {
            ep.insert("MacAddress".into(), self.mac.clone().into());
        }
        if !self.driver_opts.is_empty() {
            ep.insert("DriverOpts".into(), Value::Object(self.driver_opts.clone()));
        }
        Value::Object(ep)
    }
}

/// `host`, `none`, `container:x`, `bridge` and the default are the
/// engine's own modes; aliases work only on user-defined networks.
fn user_defined(name: &str) -> bool {
    !matches!(name, "" | "default" | "bridge" | "host" | "none") && !name.starts_with("container:")
}

/// `--network NAME` or docker's long form
/// `--network name=NAME,alias=A,ip=IP,ip6=IP,mac-address=MAC,driver-opt=K=V,link-local-ip=IP`.
fn parse_network(spec: &str) -> Result<Endpoint, String> {
    if !spec.contains('=') {
        return Ok(Endpoint {
            name: spec.to_string(),
            ..Endpoint::default()
        });
    }
    let mut ep = Endpoint::default();
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))?;
        match k.trim().to_lowercase().as_str() {
            "name" => ep.name = v.to_string(),
            "alias" => ep.aliases.push(v.to_string()),
            "ip" => ep.ipv4 = v.to_string(),
            "ip6" => ep.ipv6 = v.to_string(),
            "mac-address" => ep.mac = v.to_string(),
            "link-local-ip" => ep.link_local.push(v.to_string()),
            "driver-opt" => {
                let (dk, dv) = v.split_once('=').unwrap_or((v, ""));
                ep.driver_opts.insert(dk.to_string(), dv.into());
            }
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if ep.name.is_empty() {
        return Err(format!("network name is missing: {spec}"));
    }
    Ok(ep)
}

/// `--add-host HOST:IP` (or `HOST=IP`, IPv6 with or without brackets, or
/// `host-gateway`) as the API's `HOST:IP`.
pub fn parse_add_host(spec: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "invalid argument {spec:?} for \"--add-host\" flag: bad format for add-host: {spec:?}"
        )
    };
    // `=` first: a name never holds one, an IPv6 address holds colons.
    let (host, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(bad)?;
    if host.is_empty() || ip.is_empty() {
        return Err(bad());
    }
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        return Err(format!(
            "invalid argument {spec:?} for \"--add-host\" flag: invalid IP address in add-host: {ip:?}"
        ));
    }
    Ok(format!("{host}:{ip}"))
}

/// `92:d0:c6:0a:29:33`: six hex pairs.
fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The request fields for `o`, or docker's message for a bad flag.
pub fn networking(o: &NetOpts) -> Result<Networking, String> {
    let mut out = Networking::default();
    let mut eps: Vec<Endpoint> = Vec::new();
    for spec in &o.network {
        let ep = parse_network(spec)?;
        if eps.iter().any(|e| e.name == ep.name) {
            return Err(format!("network {:?} is specified multiple times", ep.name));
        }
        eps.push(ep);
    }
    if eps.len() > 1 && eps.iter().any(|e| !user_defined(&e.name)) {
        return Err("conflicting options: cannot attach both user-defined and non-user-defined network-modes".into());
    }
    if eps.is_empty() {
        eps.push(Endpoint {
            name: "default".into(),
            ..Endpoint::default()
        });
    }
    // The legacy flags configure the first network.
    let first = &mut eps[0];
    for (flag, set, what) in [
        (
            "--network-alias",
            !o.network_alias.is_empty(),
            !first.aliases.is_empty(),
        ),
        ("--ip", !o.ip.is_empty(), !first.ipv4.is_empty()),
        ("--ip6", !o.ip6.is_empty(), !first.ipv6.is_empty()),
        (
            "--mac-address",
            !o.mac_address.is_empty(),
            !first.mac.is_empty(),
        ),
    ] {
        if set && what {
            return Err(format!(
                "conflicting options: cannot specify both {flag} and per-network {}",
                match flag {
                    "--network-alias" => "alias",
                    "--ip" => "IPv4 address",
                    "--ip6" => "IPv6 address",
                    _ => "MAC address",
                }
            ));
        }
    }
    first.aliases.extend(o.network_alias.iter().cloned());
    if !o.ip.is_empty() {
        first.ipv4 = o.ip.clone();
    }
    if !o.ip6.is_empty() {
        first.ipv6 = o.ip6.clone();
    }
    if !o.mac_address.is_empty() {
        first.mac = o.mac_address.clone();
    }
    for ep in &eps {
        if !ep.aliases.is_empty() && !user_defined(&ep.name) {
            return Err(
                "network-scoped aliases are only supported for user-defined networks".into(),
            );
        }
        if !ep.mac.is_empty() && !valid_mac(&ep.mac) {
            return Err(format!("{} is not a valid mac address", ep.mac));
        }
    }
    out.mac = eps[0].mac.clone();
    let mut endpoints = Map::new();
    for ep in &eps {
        // One network without settings needs no entry; several are all
        // listed, as docker's CLI does, so the daemon joins each.
        if eps.len() > 1 || !ep.is_empty() {
            endpoints.insert(ep.name.clone(), ep.to_json());
        }
    }
    out.networking = json!({ "EndpointsConfig": endpoints });
    out.host
        .insert("NetworkMode".into(), eps[0].name.clone().into());

    for d in &o.dns {
        if d.parse::<IpAddr>().is_err() {
            return Err(format!(
                "invalid argument {d:?} for \"--dns\" flag: IP address is not correctly formatted: {d}"
            ));
        }
    }
    out.host.insert("Dns".into(), json!(o.dns));
    out.host.insert("DnsOptions".into(), json!(o.dns_option));
    out.host.insert("DnsSearch".into(), json!(o.dns_search));
    let hosts = o
        .add_host
        .iter()
        .map(|h| parse_add_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    // null when none, as docker's CLI sends it.
    if !hosts.is_empty() {
        out.host.insert("ExtraHosts".into(), json!(hosts));
    } else {
        out.host.insert("ExtraHosts".into(), Value::Null);
    }

    for e in &o.expose {
        for k in ports::parse_expose(e)? {
            out.exposed.insert(k, json!({}));
        }
    }
    let mut bindings = Map::new();
    for p in &o.publish {
        for m in ports::parse_publish(p)? {
            out.exposed.insert(m.port.clone(), json!({}));
            let list = bindings.entry(m.port).or_insert_with(|| json!([]));
            if let Value::Array(a) = list {
                a.push(json!({"HostIp": m.host_ip, "HostPort": m.host_port}));
            }
        }
    }
    out.host
        .insert("PortBindings".into(), Value::Object(bindings));
    out.host
        .insert("PublishAllPorts".into(), o.publish_all.into());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        o: NetOpts,
    }

    fn net(args: &[&str]) -> Result<Networking, String> {
        let t = T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap();
        networking(&t.o)
    }

    #[test]
    fn default_network_and_modes() {
        let n = net(&[]).unwrap();
        assert_eq!(n.host["NetworkMode"], "default");
        assert_eq!(n.networking, json!({"EndpointsConfig": {}}));
        assert_eq!(n.host["PublishAllPorts"], false);
        for mode in ["host", "none", "container:web", "bridge"] {
            let n = net(&["--net", mode]).unwrap();
            assert_eq!(n.host["NetworkMode"], mode);
            assert_eq!(n.networking, json!({"EndpointsConfig": {}}));
        }
    }

    #[test]
    fn endpoint_settings_keyed_by_network() {
        let n = net(&[
            "--network",
            "foo",
            "--network-alias",
            "a1",
            "--network-alias",
            "a2",
            "--ip",
            "10.1.0.5",
            "--ip6",
            "fd00::5",
            "--mac-address",
            "02:42:ac:11:00:02",
        ])
        .unwrap();
        assert_eq!(n.host["NetworkMode"], "foo");
        assert_eq!(
            n.networking["EndpointsConfig"]["foo"],
            json!({"IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5"},
                   "Aliases": ["a1", "a2"], "MacAddress": "02:42:ac:11:00:02"})
        );
        assert_eq!(n.mac, "02:42:ac:11:00:02");
        // Without --network, the settings go to the default network.
        let n = net(&["--ip", "172.17.0.9"]).unwrap();
        assert_eq!(
            n.networking["EndpointsConfig"]["default"]["IPAMConfig"]["IPv4Address"],
            "172.17.0.9"
        );
        // Several networks: all listed, the legacy flags on the first.
        let n = net(&[
            "--network",
            "bar",
            "--network",
            "foo",
            "--network-alias",
            "a",
        ])
        .unwrap();
        assert_eq!(n.host["NetworkMode"], "bar");
        assert_eq!(
            n.networking["EndpointsConfig"],
            json!({"bar": {"Aliases": ["a"]}, "foo": {}})
        );
        let n = net(&["--network", "name=foo,alias=x,ip=1.2.3.4"]).unwrap();
        assert_eq!(
            n.networking["EndpointsConfig"]["foo"],
            json!({"IPAMConfig": {"IPv4Address": "1.2.3.4"}, "Aliases": ["x"]})
        );
    }

    #[test]
    fn network_flag_errors_as_docker() {
        let e = |a: &[&str]| net(a).unwrap_err();
        let alias = "network-scoped aliases are only supported for user-defined networks";
        assert_eq!(e(&["--network-alias", "x"]), alias);
        assert_eq!(e(&["--network", "host", "--network-alias", "x"]), alias);
        assert_eq!(
            e(&["--network", "container:c", "--network-alias", "x"]),
            alias
        );
        assert_eq!(
            e(&["--network", "foo", "--network", "foo"]),
            "network \"foo\" is specified multiple times"
        );
        assert_eq!(
            e(&["--network", "name=foo,alias=x", "--network-alias", "y"]),
            "conflicting options: cannot specify both --network-alias and per-network alias"
        );
        assert_eq!(e(&["--mac-address", "zz"]), "zz is not a valid mac address");
        assert_eq!(
            e(&["--dns", "nope"]),
            "invalid argument \"nope\" for \"--dns\" flag: IP address is not correctly formatted: nope"
        );
    }

    #[test]
    fn add_host_as_docker() {
        assert_eq!(parse_add_host("h1:1.2.3.4").unwrap(), "h1:1.2.3.4");
        assert_eq!(parse_add_host("h1=1.2.3.4").unwrap(), "h1:1.2.3.4");
        assert_eq!(parse_add_host("h:::1").unwrap(), "h:::1");
        assert_eq!(parse_add_host("h=[::1]").unwrap(), "h:::1");
        assert_eq!(parse_add_host("h:[::1]").unwrap(), "h:::1");
        assert_eq!(
            parse_add_host("gw:host-gateway").unwrap(),
            "gw:host-gateway"
        );
        assert_eq!(
            parse_add_host("foo").unwrap_err(),
            "invalid argument \"foo\" for \"--add-host\" flag: bad format for add-host: \"foo\""
        );
        assert_eq!(
            parse_add_host(":1.2.3.4").unwrap_err(),
            "invalid argument \":1.2.3.4\" for \"--add-host\" flag: bad format for add-host: \":1.2.3.4\""
        );
        assert_eq!(
            parse_add_host("foo:bar").unwrap_err(),
            "invalid argument \"foo:bar\" for \"--add-host\" flag: invalid IP address in add-host: \"bar\""
        );
    }

    #[test]
    fn ports_and_dns_in_host_config() {
        let n = net(&[
            "-p",
            "8080:80",
            "-p",
            "80",
            "-p",
            "127.0.0.1:8000-8001:90-91",
            "-P",
            "--expose",
            "7000-7001",
            "--dns",
            "8.8.8.8",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "h:1.2.3.4",
        ])
        .unwrap();
        assert_eq!(
            n.host["PortBindings"]["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": ""}])
        );
        assert_eq!(
            n.host["PortBindings"]["91/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8001"}])
        );
        assert_eq!(n.host["PublishAllPorts"], true);
        let mut keys: Vec<&String> = n.exposed.keys().collect();
        keys.sort();
        assert_eq!(keys, ["7000/tcp", "7001/tcp", "80/tcp", "90/tcp", "91/tcp"]);
        assert_eq!(n.host["Dns"], json!(["8.8.8.8"]));
        assert_eq!(n.host["DnsSearch"], json!(["example.com"]));
        assert_eq!(n.host["DnsOptions"], json!(["ndots:2"]));
        assert_eq!(n.host["ExtraHosts"], json!(["h:1.2.3.4"]));
    }
}
