//! Links, addresses and routes over rtnetlink: bridges, veth pairs into
//! container namespaces, and what the host already uses. Every function
//! opens its own netlink socket and keeps nothing.

mod bridge;
mod msg;
mod veth;

use std::collections::BTreeSet;
use std::path::Path;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;

pub use bridge::{ensure_bridge, BridgeSpec};
pub use veth::{attach_veth, VethSpec};

use crate::netlink::{Netlink, NlError};
use crate::{sysctl, NetError};

/// Linux's IFNAMSIZ less the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// What [`enable_ip_forward`] found before it turned forwarding on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousForwarding {
    /// `net.ipv4.ip_forward` was 1.
    pub ipv4: bool,
    /// `net.ipv6.conf.all.forwarding` was 1; `None` when IPv6 was not asked for.
    pub ipv6: Option<bool>,
}

/// Turns on `net.ipv4.ip_forward`, and `net.ipv6.conf.all.forwarding` when
/// `ipv6`, in the caller's namespace; writes only what differs. Turning
/// IPv6 forwarding on stops the host from accepting router advertisements
/// on interfaces with `accept_ra=1`, so ask for it only for IPv6 networks.
pub fn enable_ip_forward(ipv6: bool) -> Result<PreviousForwarding, NetError> {
    let ipv4 = sysctl::set(&["net", "ipv4", "ip_forward"], "1")? == "1";
    let ipv6 = if ipv6 {
        Some(sysctl::set(&["net", "ipv6", "conf", "all", "forwarding"], "1")? == "1")
    } else {
        None
    };
    Ok(PreviousForwarding { ipv4, ipv6 })
}

/// Undoes what [`enable_ip_forward`] turned on: each switch that was
/// off before (`previous`) is turned off again; the others are left alone.
pub fn restore_ip_forward(previous: PreviousForwarding) -> Result<(), NetError> {
    if !previous.ipv4 {
        sysctl::set(&["net", "ipv4", "ip_forward"], "0")?;
    }
    if previous.ipv6 == Some(false) {
        sysctl::set(&["net", "ipv6", "conf", "all", "forwarding"], "0")?;
    }
    Ok(())
}

/// Deletes a link (a bridge, or either end of a veth pair, which takes the
/// other end with it). Ok when there is no such link.
pub fn delete_link(name: &str) -> Result<(), NetError> {
    check_ifname(name)?;
    let mut nl = open(None)?;
    match nl.request(RouteNetlinkMessage::DelLink(msg::link_named(name)), 0) {
        Err(e) if e.is(libc::ENODEV) => Ok(()),
        other => other.map_err(|e| netlink_error("deleting link", name, None, e)),
    }
}

/// Whether a link of that name exists in the caller's namespace.
pub fn link_exists(name: &str) -> Result<bool, NetError> {
    check_ifname(name)?;
    let mut nl = open(None)?;
    Ok(find(&mut nl, name)
        .map_err(|e| netlink_error("looking up link", name, None, e))?
        .is_some())
}

/// The IPv4 addresses (with their prefixes) of link `name`, in the kernel's
/// order; empty when there is no such link.
pub fn link_ipv4_addresses(name: &str) -> Result<Vec<IpNet>, NetError> {
    check_ifname(name)?;
    let mut nl = open(None)?;
    let Some(link) =
        find(&mut nl, name).map_err(|e| netlink_error("looking up link", name, None, e))?
    else {
        return Ok(Vec::new());
    };
    let addresses = nl
        .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
        .map_err(|e| netlink_error("listing addresses", name, None, e))?;
    Ok(addresses
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) if a.header.index == link.index => {
                address_network_exact(&a).filter(|n| matches!(n, IpNet::V4(_)))
            }
            _ => None,
        })
        .collect())
}

/// The names of the caller's namespace's links that start with `prefix`, sorted.
pub fn links_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    let mut nl = open(None)?;
    let links = nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(|e| netlink_error("listing links", "", None, e))?;
    let mut names: Vec<String> = links
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => name_of(&l),
            _ => None,
        })
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    Ok(names)
}

/// The networks of the host's addresses and of its main routing table's
/// routes (IPv4 and IPv6, default routes left out), without duplicates:
/// the ranges a new subnet must not overlap.
pub fn host_networks() -> Result<Vec<IpNet>, NetError> {
    let mut nl = open(None)?;
    let mut nets = BTreeSet::new();
    let addresses = nl
        .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
        .map_err(|e| netlink_error("listing addresses", "", None, e))?;
    for m in addresses {
        if let RouteNetlinkMessage::NewAddress(a) = m {
            nets.extend(address_network_exact(&a).map(|n| n.trunc()));
        }
    }
    let routes = nl
        .dump(RouteNetlinkMessage::GetRoute(RouteMessage::default()))
        .map_err(|e| netlink_error("listing routes", "", None, e))?;
    for m in routes {
        if let RouteNetlinkMessage::NewRoute(r) = m {
            nets.extend(route_network(&r));
        }
    }
    Ok(nets.into_iter().collect())
}

/// An address with its prefix (`172.18.0.1/16`).
pub(crate) fn address_network_exact(a: &AddressMessage) -> Option<IpNet> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
    // point-to-point links, so prefer the former.
    let local = a.attributes.iter().find_map(|at| match at {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = local.or_else(|| {
        a.attributes.iter().find_map(|at| match at {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    IpNet::new(addr, a.header.prefix_len).ok()
}

fn route_network(r: &RouteMessage) -> Option<IpNet> {
    let table = r
        .attributes
        .iter()
        .find_map(|at| match at {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || r.header.destination_prefix_length == 0 {
        return None;
    }
    let dst = r.attributes.iter().find_map(|at| match at {
        RouteAttribute::Destination(d) => Some(d.clone()),
        _ => None,
    })?;
    let ip = match dst {
        netlink_packet_route::route::RouteAddress::Inet(a) => a.into(),
        netlink_packet_route::route::RouteAddress::Inet6(a) => a.into(),
        _ => return None,
    };
    IpNet::new(ip, r.header.destination_prefix_length)
        .ok()
        .map(|n| n.trunc())
}

/// Brings `lo` up in the calling thread's namespace (a new one has it down).
pub(crate) fn loopback_up() -> Result<(), NetError> {
    let mut nl = open(None)?;
    // lo is always index 1 in a network namespace.
    nl.request(msg::set_up(1, None), 0)
        .map_err(|e| netlink_error("bringing up", "lo", None, e))
}

/// A link found by name.
pub(crate) struct Found {
    pub index: u32,
    pub kind: Option<InfoKind>,
}

/// Looks a link up by name; `None` when there is none.
pub(crate) fn find(nl: &mut Netlink, name: &str) -> Result<Option<Found>, NlError> {
    match nl.get(msg::get_link(name)) {
        Ok(RouteNetlinkMessage::NewLink(l)) => Ok(Some(Found {
            index: l.header.index,
            kind: kind_of(&l),
        })),
        Ok(_) => Ok(None),
        Err(e) if e.is(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

fn name_of(l: &LinkMessage) -> Option<String> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn kind_of(l: &LinkMessage) -> Option<InfoKind> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    })
}

/// Flags for a request that creates something that must not exist yet.
pub(crate) const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// A netlink socket in the caller's namespace (`netns` names it in errors).
pub(crate) fn open(netns: Option<&Path>) -> Result<Netlink, NetError> {
    Netlink::open().map_err(|source| NetError::Netlink {
        op: "opening",
        target: "a netlink socket".into(),
        netns: netns.map(Path::to_path_buf),
        source,
        kernel: None,
    })
}

pub(crate) fn netlink_error(
    op: &'static str,
    target: impl Into<String>,
    netns: Option<&Path>,
    e: NlError,
) -> NetError {
    NetError::Netlink {
        op,
        target: target.into(),
        netns: netns.map(Path::to_path_buf),
        source: e.errno,
        kernel: e.message,
    }
}

/// An interface name the kernel will take: 1 to 15 bytes, no `/`, `:` or
/// white space, not `.` or `..`.
pub(crate) fn check_ifname(name: &str) -> Result<(), NetError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_IFNAME {
        "it is longer than 15 bytes (IFNAMSIZ)"
    } else if name == "." || name == ".." {
        "it cannot be . or .."
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        "it cannot contain '/', ':' or white space"
    } else {
        return Ok(());
    };
    Err(NetError::invalid("interface name", name, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_before_the_kernel_sees_them() {
        for ok in ["eth0", "berth0", "br-0123456789a", "veth.1"] {
            check_ifname(ok).unwrap();
        }
        for bad in ["", "br-0123456789abc", ".", "..", "a/b", "a b", "a:1"] {
            let e = check_ifname(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid interface name"), "{e}");
        }
    }
}
