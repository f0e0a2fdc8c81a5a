//! A network's bridge, made to match its spec (idempotent).

use std::collections::BTreeSet;

use ipnet::IpNet;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
use netlink_packet_route::RouteNetlinkMessage;

use super::{check_ifname, find, msg, netlink_error, open, Found, CREATE};
use crate::netlink::Netlink;
use crate::{sysctl, NetError};

/// What a network's bridge must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// The interface name (`berth0`, `br-<12 hex>`).
    pub name: String,
    /// The gateway addresses, each with its subnet's prefix (`172.18.0.1/16`).
    pub addresses: Vec<IpNet>,
    /// The MTU; the kernel's default (1500) when `None`.
    pub mtu: Option<u32>,
}

/// Makes the bridge exist, carry `addresses` (others it has are left
/// alone), have the MTU and be up; sets `route_localnet=1` on it so that
/// connections from the host's 127.0.0.1 to published ports can be DNATed
/// into a container. Safe to call again and again.
///
/// A new bridge gets a random locally administered MAC of its own: a
/// bridge without one takes the lowest MAC of its ports, so the gateway's
/// MAC would change as containers come and go and their ARP caches go
/// stale.
pub fn ensure_bridge(spec: &BridgeSpec) -> Result<(), NetError> {
    let name = spec.name.as_str();
    check_ifname(name)?;
    let mut nl = open(None)?;
    let found =
        match find(&mut nl, name).map_err(|e| netlink_error("looking up bridge", name, None, e))? {
            Some(f) => f,
            None => create(&mut nl, spec)?,
        };
    if found.kind != Some(InfoKind::Bridge) {
        return Err(NetError::LinkConflict {
            name: name.to_string(),
            found: found
                .kind
                .map_or_else(|| "link of unknown kind".to_string(), |k| k.to_string()),
            wanted: "bridge",
        });
    }
    add_missing_addresses(&mut nl, name, found.index, &spec.addresses)?;
    nl.request(msg::set_up(found.index, spec.mtu), 0)
        .map_err(|e| netlink_error("setting the MTU and bringing up bridge", name, None, e))?;
    sysctl::set(&["net", "ipv4", "conf", name, "route_localnet"], "1")?;
    Ok(())
}

fn create(nl: &mut Netlink, spec: &BridgeSpec) -> Result<Found, NetError> {
    let name = spec.name.as_str();
    let mut m = msg::new_link(name, vec![LinkInfo::Kind(InfoKind::Bridge)]);
    m.attributes
        .push(LinkAttribute::Address(random_mac().to_vec()));
    m.attributes.extend(spec.mtu.map(LinkAttribute::Mtu));
    match nl.request(RouteNetlinkMessage::NewLink(m), CREATE) {
        // Another caller made it meanwhile: fine, it is looked at below.
        Err(e) if !e.is(libc::EEXIST) => {
            return Err(netlink_error("creating bridge", name, None, e))
        }
        _ => {}
    }
    find(nl, name)
        .map_err(|e| netlink_error("looking up bridge", name, None, e))?
        .ok_or_else(|| NetError::LinkNotFound {
            name: name.to_string(),
            netns: None,
            hint: "it was deleted right after berth created it: retry",
        })
}

fn add_missing_addresses(
    nl: &mut Netlink,
    name: &str,
    index: u32,
    wanted: &[IpNet],
) -> Result<(), NetError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut query = AddressMessage::default();
    query.header.index = index;
    let have: BTreeSet<IpNet> = nl
        .dump(RouteNetlinkMessage::GetAddress(query))
        .map_err(|e| netlink_error("listing addresses of bridge", name, None, e))?
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                super::address_network_exact(&a)
            }
            _ => None,
        })
        .collect();
    for net in wanted.iter().filter(|n| !have.contains(n)) {
        match nl.request(msg::new_address(index, *net), CREATE) {
            Err(e) if !e.is(libc::EEXIST) => {
                return Err(netlink_error(
                    "adding address",
                    format!("{net} to bridge {name}"),
                    None,
                    e,
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A random unicast, locally administered MAC (first byte `x2`, `x6`, `xA`, `xE`).
fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    crate::random::fill(&mut mac);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}
