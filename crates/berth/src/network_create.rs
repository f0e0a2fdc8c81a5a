//! `network create`'s flags and the `POST /networks/create` body they
//! make, with docker's IPAM rules: each `--ip-range`, `--gateway` and
//! `--aux-address` belongs to the `--subnet` that contains it.

use std::net::IpAddr;

use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long, action = crate::cli::many())]
    pub aux_address: Vec<String>,
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, action = crate::cli::many())]
    pub gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long, action = crate::cli::many())]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long, default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long, action = crate::cli::many())]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          action = ArgAction::Set)]
    pub ipv6: Option<bool>,
    /// Set metadata on a network
    #[arg(short, long, action = crate::cli::many())]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long, action = crate::cli::many())]
    pub opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, action = crate::cli::many())]
    pub subnet: Vec<String>,
    pub name: String,
}

/// `k=v` flags as a map; a bare `k` maps to "".
pub fn kv_map(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect()
}

/// A CIDR (`10.5.0.0/16`) as its address and prefix length.
fn cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok((ip, len))
}

/// Whether `ip` lies in `net/len`.
fn contains((net, len): (IpAddr, u8), ip: IpAddr) -> bool {
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((n, width), (i, iw)) = (bits(net), bits(ip));
    if width != iw {
        return false;
    }
    let shift = width - u32::from(len);
    shift >= width || (n >> shift) == (i >> shift)
}

/// `IPAM.Config`: one entry per subnet, with the range, gateway and
/// auxiliary addresses that fall inside it.
pub fn ipam_config(a: &CreateArgs) -> Result<Vec<Value>, String> {
    if a.subnet.is_empty()
        && !(a.gateway.is_empty() && a.ip_range.is_empty() && a.aux_address.is_empty())
    {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs = Vec::new();
    let mut nets = Vec::new();
    for s in &a.subnet {
        let net = cidr(s)?;
        if nets
            .iter()
            .any(|&(n, l)| contains((n, l), net.0) || contains(net, n))
        {
            return Err("multiple overlapping subnet configuration is not supported".into());
        }
        nets.push(net);
        configs.push(Map::from_iter([(
            "Subnet".to_string(),
            Value::String(s.clone()),
        )]));
    }
    let owner = |ip: IpAddr, what: &str, value: &str| -> Result<usize, String> {
        nets.iter()
            .position(|&n| contains(n, ip))
            .ok_or_else(|| format!("no matching subnet for {what} {value}"))
    };
    // One range and one gateway per subnet.
    let mut set_once = |i: usize, key: &str, value: &str, what: &str| -> Result<(), String> {
        if let Some(old) = configs[i].get(key) {
            return Err(format!(
                "cannot configure multiple {what} ({}, {value}) for the same subnet ({})",
                old.as_str().unwrap_or(""),
                a.subnet[i]
            ));
        }
        configs[i].insert(key.into(), value.into());
        Ok(())
    };
    for r in &a.ip_range {
        set_once(owner(cidr(r)?.0, "range", r)?, "IPRange", r, "ranges")?;
    }
    for g in &a.gateway {
        let ip: IpAddr = g.parse().map_err(|_| {
            format!("invalid argument {g:?} for \"--gateway\" flag: invalid string being converted to IP address: {g}")
        })?;
        set_once(owner(ip, "gateway", g)?, "Gateway", g, "gateways")?;
    }
    for aux in &a.aux_address {
        let (name, addr) = aux
            .split_once('=')
            .ok_or_else(|| format!("invalid aux-address {aux}: expected name=address"))?;
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid aux-address {aux}: {addr} is not an IP address"))?;
        let i = owner(ip, "aux-address", addr)?;
        let entry = configs[i]
            .entry("AuxiliaryAddresses")
            .or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.insert(name.to_string(), addr.into());
        }
    }
    Ok(configs.into_iter().map(Value::Object).collect())
}

/// The request body, in docker's field order. `CheckDuplicate` makes
/// daemons before API 1.44 refuse a second network of the same name, as
/// docker's CLI asks them to; newer ones always do.
pub fn body(a: &CreateArgs) -> Result<Value, String> {
    let mut b = Map::new();
    b.insert("Name".into(), a.name.clone().into());
    b.insert("CheckDuplicate".into(), true.into());
    b.insert("Driver".into(), a.driver.clone().into());
    if let Some(v6) = a.ipv6 {
        b.insert("EnableIPv6".into(), v6.into());
    }
    b.insert(
        "IPAM".into(),
        json!({
            "Driver": a.ipam_driver,
            "Options": kv_map(&a.ipam_opt),
            "Config": ipam_config(a)?,
        }),
    );
    b.insert("Internal".into(), a.internal.into());
    b.insert("Attachable".into(), a.attachable.into());
    b.insert("Options".into(), Value::Object(kv_map(&a.opt)));
    b.insert("Labels".into(), Value::Object(kv_map(&a.label)));
    Ok(Value::Object(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    fn parse(args: &[&str]) -> CreateArgs {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn body_as_docker_sends_it() {
        let a = parse(&[
            "-d",
            "bridge",
            "--subnet",
            "10.5.0.0/16",
            "--gateway",
            "10.5.0.1",
            "--ip-range",
            "10.5.1.0/24",
            "--internal",
            "--attachable",
            "--ipv6",
            "--subnet",
            "fd00:1::/64",
            "--label",
            "a=b",
            "-l",
            "c",
            "-o",
            "com.docker.network.bridge.name=br5",
            "--opt",
            "mtu=1400",
            "--ipam-opt",
            "x=y",
            "--aux-address",
            "h=10.5.0.9",
            "net5",
        ]);
        let b = body(&a).unwrap();
        assert_eq!(
            b,
            json!({"Name": "net5", "CheckDuplicate": true, "Driver": "bridge", "EnableIPv6": true,
                "IPAM": {"Driver": "default", "Options": {"x": "y"}, "Config": [
                    {"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1",
                     "AuxiliaryAddresses": {"h": "10.5.0.9"}},
                    {"Subnet": "fd00:1::/64"}]},
                "Internal": true, "Attachable": true,
                "Options": {"com.docker.network.bridge.name": "br5", "mtu": "1400"},
                "Labels": {"a": "b", "c": ""}})
        );
        let plain = body(&parse(&["plain"])).unwrap();
        assert_eq!(
            plain["IPAM"],
            json!({"Driver": "default", "Options": {}, "Config": []})
        );
        assert!(plain.get("EnableIPv6").is_none());
        assert_eq!(
            body(&parse(&["--ipv6=false", "x"])).unwrap()["EnableIPv6"],
            false
        );
    }

    #[test]
    fn ipam_rules() {
        let e = |args: &[&str]| body(&parse(args)).unwrap_err();
        assert_eq!(
            e(&["--gateway", "10.0.0.1", "n"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            e(&["--subnet", "10.0.0.0/24", "--gateway", "10.0.1.1", "n"]),
            "no matching subnet for gateway 10.0.1.1"
        );
        assert_eq!(
            e(&["--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24", "n"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            e(&["--subnet", "10.0.0.0", "n"]),
            "invalid CIDR address: 10.0.0.0"
        );
        assert!(contains(
            cidr("0.0.0.0/0").unwrap(),
            "8.8.8.8".parse().unwrap()
        ));
        assert!(!contains(
            cidr("fd00::/64").unwrap(),
            "10.0.0.1".parse().unwrap()
        ));
    }
}
