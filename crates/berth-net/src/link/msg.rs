//! rtnetlink messages berth sends, built in one place.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A link message that names its link (index 0: the kernel looks the name up).
pub(crate) fn link_named(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

/// `GETLINK` of one link by name, without its statistics.
pub(crate) fn get_link(name: &str) -> RouteNetlinkMessage {
    let mut m = link_named(name);
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    RouteNetlinkMessage::GetLink(m)
}

/// Marks a link message as bringing the link up.
pub(crate) fn up(m: &mut LinkMessage) {
    m.header.flags |= LinkFlags::Up;
    m.header.change_mask |= LinkFlags::Up;
}

/// `SETLINK`: the link up, with an MTU when given.
pub(crate) fn set_up(index: u32, mtu: Option<u32>) -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    up(&mut m);
    m.attributes.extend(mtu.map(LinkAttribute::Mtu));
    RouteNetlinkMessage::SetLink(m)
}

/// A link of `kind` (bridge, veth) with `info` data.
pub(crate) fn new_link(name: &str, info: Vec<LinkInfo>) -> LinkMessage {
    let mut m = link_named(name);
    m.attributes.push(LinkAttribute::LinkInfo(info));
    m
}

/// `NEWADDR`: `net`'s address with its prefix on the link. IPv6 addresses
/// skip duplicate address detection: the subnet is berth's, and DAD would
/// keep the address tentative (unusable) for a second or more.
pub(crate) fn new_address(index: u32, net: IpNet) -> RouteNetlinkMessage {
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = net.prefix_len();
    let addr = net.addr();
    m.header.family = family(addr);
    m.attributes.push(AddressAttribute::Local(addr));
    m.attributes.push(AddressAttribute::Address(addr));
    match net {
        IpNet::V4(v4) => {
            if v4.prefix_len() < 31 {
                m.attributes
                    .push(AddressAttribute::Broadcast(v4.broadcast()));
            }
        }
        IpNet::V6(_) => {
            m.header.flags = AddressHeaderFlags::Nodad;
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    RouteNetlinkMessage::NewAddress(m)
}

/// `NEWROUTE`: the default route of `gateway`'s family through it, on the link.
pub(crate) fn default_route(index: u32, gateway: IpAddr) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(gateway);
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    m.attributes.push(RouteAttribute::Oif(index));
    RouteNetlinkMessage::NewRoute(m)
}

pub(crate) fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}
