//! A container's interface on a bridge network: a veth pair whose host end
//! is a port of the bridge and whose other end lives in the container's
//! network namespace with the container's name, MAC, addresses and routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkInfo,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{check_ifname, find, msg, netlink_error, open, CREATE};
use crate::netlink::Netlink;
use crate::NetError;

/// One container interface on one bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    /// The bridge the host end joins (it must exist).
    pub bridge: String,
    /// The host end's name (unique on the host).
    pub host_name: String,
    /// The container's network namespace file ([`crate::netns::create`]).
    pub netns: PathBuf,
    /// The name inside the container (`eth0`).
    pub container_name: String,
    pub mac: [u8; 6],
    /// The container's addresses, each with its subnet's prefix (`172.18.0.2/16`).
    pub addresses: Vec<IpNet>,
    /// Default IPv4 route through this gateway; `None` adds none (every
    /// network after the first a container joins).
    pub gateway4: Option<Ipv4Addr>,
    /// Default IPv6 route through this gateway; `None` adds none.
    pub gateway6: Option<Ipv6Addr>,
    pub mtu: Option<u32>,
}

/// Creates the pair and configures both ends. The container end is made
/// directly inside the namespace (`IFLA_NET_NS_FD` on the peer) with its
/// final name, MAC and MTU, in the same request that makes the host end a
/// port of the bridge, up: no temporary name on the host, no move, no
/// rename. The host end is put in hairpin mode ([`hairpin`]). Then, over
/// one socket opened inside the namespace, the link-up, the addresses and
/// the default routes go in one datagram.
///
/// On any error the host end is deleted (taking the container end with
/// it) before the error is returned; a host end that existed before the
/// call is never touched.
pub fn attach_veth(spec: &VethSpec) -> Result<(), NetError> {
    check(spec)?;
    let mut host = open(None)?;
    let bridge = find(&mut host, &spec.bridge)
        .map_err(|e| netlink_error("looking up bridge", spec.bridge.as_str(), None, e))?
        .ok_or_else(|| NetError::LinkNotFound {
            name: spec.bridge.clone(),
            netns: None,
            hint: "the network's bridge must exist before containers attach (ensure_bridge)",
        })?;
    if bridge.kind != Some(InfoKind::Bridge) {
        return Err(NetError::LinkConflict {
            name: spec.bridge.clone(),
            found: bridge
                .kind
                .map_or_else(|| "link of unknown kind".into(), |k| k.to_string()),
            wanted: "bridge",
        });
    }
    let ns =
        std::fs::File::open(&spec.netns).map_err(|e| NetError::netns(&spec.netns, "opening", e))?;
    let pair = new_pair(spec, bridge.index, ns.as_raw_fd());
    host.request(pair, CREATE).map_err(|e| {
        netlink_error(
            "creating veth pair",
            format!(
                "{} (peer {}) on bridge {}",
                spec.host_name, spec.container_name, spec.bridge
            ),
            None,
            e,
        )
    })?;
    let configured = hairpin(&mut host, &spec.host_name).and_then(|()| configure_inside(spec));
    if configured.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = host.request(
            RouteNetlinkMessage::DelLink(msg::link_named(&spec.host_name)),
            0,
        );
    }
    configured
}

/// The `NEWLINK` that makes both ends.
fn new_pair(spec: &VethSpec, bridge: u32, netns_fd: i32) -> RouteNetlinkMessage {
    let mut peer = msg::link_named(&spec.container_name);
    peer.attributes
        .push(LinkAttribute::Address(spec.mac.to_vec()));
    peer.attributes.push(LinkAttribute::NetNsFd(netns_fd));
    peer.attributes.extend(spec.mtu.map(LinkAttribute::Mtu));
    // Not up yet: the kernel configures the peer before the pair is linked,
    // and opening a veth without its peer fails (ENOTCONN).

    let mut m = msg::new_link(
        &spec.host_name,
        vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ],
    );
    m.attributes.push(LinkAttribute::Controller(bridge));
    m.attributes.extend(spec.mtu.map(LinkAttribute::Mtu));
    msg::up(&mut m);
    RouteNetlinkMessage::NewLink(m)
}

/// Hairpin mode on the host end's bridge port: a frame may go back out the
/// port it came in by, which a container reaching its own published port
/// through a host address needs (the DNATed frame returns to it). A
/// separate request after the create, so it can only touch the link this
/// call made.
fn hairpin(host: &mut Netlink, name: &str) -> Result<(), NetError> {
    let port = vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            true,
        )])),
    ];
    host.request(RouteNetlinkMessage::NewLink(msg::new_link(name, port)), 0)
        .map_err(|e| netlink_error("setting hairpin mode on", name, None, e))
}

/// Link up, addresses and routes, from a socket inside the container's
/// namespace, in one datagram.
fn configure_inside(spec: &VethSpec) -> Result<(), NetError> {
    let ns = Some(spec.netns.as_path());
    let mut nl = crate::netns::in_netns(&spec.netns, || open(ns))??;
    let name = spec.container_name.as_str();
    let index = find(&mut nl, name)
        .map_err(|e| netlink_error("looking up", name, ns, e))?
        .ok_or_else(|| NetError::LinkNotFound {
            name: name.to_string(),
            netns: ns.map(Path::to_path_buf),
            hint: "it vanished right after berth created it: is something else managing this namespace?",
        })?
        .index;
    // Each request with what to call it if it fails.
    let mut steps = vec![(msg::set_up(index, None), 0, "bringing up", name.to_string())];
    for a in &spec.addresses {
        let target = format!("{a} to {name}");
        steps.push((
            msg::new_address(index, *a),
            CREATE,
            "adding address",
            target,
        ));
    }
    let gateways = [spec.gateway4.map(IpAddr::V4), spec.gateway6.map(IpAddr::V6)];
    for g in gateways.into_iter().flatten() {
        let target = format!("via {g} on {name}");
        steps.push((
            msg::default_route(index, g),
            CREATE,
            "adding default route",
            target,
        ));
    }
    let requests = steps
        .iter()
        .map(|(m, flags, ..)| (m.clone(), *flags))
        .collect();
    nl.batch(requests).map_err(|(i, e)| {
        let (_, _, op, target) = &steps[i];
        netlink_error(op, target.as_str(), ns, e)
    })
}

/// What the kernel would refuse less clearly.
fn check(spec: &VethSpec) -> Result<(), NetError> {
    check_ifname(&spec.bridge)?;
    check_ifname(&spec.host_name)?;
    check_ifname(&spec.container_name)?;
    if spec.mac[0] & 1 != 0 {
        return Err(NetError::invalid(
            "MAC address",
            format_mac(&spec.mac),
            "it is a multicast address (lowest bit of the first byte set)",
        ));
    }
    let gateways = [spec.gateway4.map(IpAddr::V4), spec.gateway6.map(IpAddr::V6)];
    for g in gateways.iter().flatten() {
        if !spec.addresses.iter().any(|a| a.contains(g)) {
            return Err(NetError::invalid(
                "gateway",
                g,
                format!(
                    "it is in none of the interface's subnets {:?}",
                    spec.addresses
                ),
            ));
        }
    }
    Ok(())
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
