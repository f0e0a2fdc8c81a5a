//! Address management, pure logic: docker's default pools, its checks of
//! `--subnet/--gateway/--ip-range`, and address choice. What is in use is
//! the daemon's to keep (berth-store's `endpoints`, unique per network and
//! address); these functions take it as input.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::NetError;

/// docker's default address pools, in the order docker tries them:
/// 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/16 cut into /20s.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let sixteens =
        (17..=31u8).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid prefix"));
    let twenties = Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16)
        .expect("valid prefix")
        .subnets(20)
        .expect("20 is longer than 16");
    sixteens.chain(twenties)
}

/// The first default pool that overlaps none of `taken` (the host's
/// networks and every other network's subnets).
pub fn pick_subnet(taken: &[IpNet]) -> Option<Ipv4Net> {
    default_pools().find(|pool| !taken.iter().any(|t| overlaps(&IpNet::V4(*pool), t)))
}

/// Whether two networks share an address (never across families).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    match (a, b) {
        (IpNet::V4(x), IpNet::V4(y)) => x.contains(&y.network()) || y.contains(&x.network()),
        (IpNet::V6(x), IpNet::V6(y)) => x.contains(&y.network()) || y.contains(&x.network()),
        _ => false,
    }
}

/// docker's checks of one IPAM config, with docker's wording, all problems
/// at once. A subnet or ip-range written with host bits (`10.1.2.3/16`) is
/// accepted and means its network (`10.1.0.0/16`), as docker 20.10 did;
/// callers store `subnet.trunc()`. Beyond docker's checks, a gateway may
/// not be the subnet's network or IPv4 broadcast address (docker refused
/// those later, when allocating them).
pub fn validate(
    subnet: IpNet,
    gateway: Option<IpAddr>,
    ip_range: Option<IpNet>,
) -> Result<(), NetError> {
    let net = subnet.trunc();
    let family = family_name(subnet.addr());
    let mut problems = Vec::new();
    if let Some(range) = ip_range {
        if family_name(range.addr()) != family {
            problems.push(format!(
                "invalid ip-range {range}: parent subnet is an {family} block"
            ));
        } else {
            if range.prefix_len() < net.prefix_len() {
                problems.push(format!(
                    "invalid ip-range {range}: CIDR block is bigger than its parent subnet {subnet}"
                ));
            }
            if !overlaps(&net, &range.trunc()) {
                problems.push(format!(
                    "invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range"
                ));
            }
        }
    }
    if let Some(gw) = gateway {
        if family_name(gw) != family {
            problems.push(format!(
                "invalid gateway {gw}: parent subnet is an {family} block"
            ));
        } else if !net.contains(&gw) {
            problems.push(format!(
                "invalid gateway {gw}: parent subnet {subnet} doesn't contain this address"
            ));
        } else if host_range(net).is_some_and(|(lo, hi)| !(lo..=hi).contains(&bits(gw))) {
            let which = if gw == net.network() {
                "network"
            } else {
                "broadcast"
            };
            problems.push(format!(
                "invalid gateway {gw}: it is the {which} address of subnet {net}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NetError::InvalidConfig { problems })
    }
}

fn family_name(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// The subnet's first host address, docker's default gateway
/// (`172.18.0.0/16` -> `172.18.0.1`). A /31 or /32 (/128) has no network
/// address to skip, so its first address is returned.
pub fn default_gateway(subnet: IpNet) -> IpAddr {
    let net = subnet.trunc();
    host_range(net).map_or_else(|| net.network(), |(lo, _)| from_bits(net.network(), lo))
}

/// The lowest address of `subnet` (within `ip_range` when given) that is
/// not the network address, not the IPv4 broadcast address, and in neither
/// `reserved` (the gateway, for one) nor `used`. `None` when all are taken.
/// Cost grows with the used addresses below the answer, never with the
/// subnet's size.
pub fn allocate(
    subnet: IpNet,
    ip_range: Option<IpNet>,
    reserved: &BTreeSet<IpAddr>,
    used: &BTreeSet<IpAddr>,
) -> Option<IpAddr> {
    let net = subnet.trunc();
    let base = net.network();
    let (mut lo, mut hi) = host_range(net)?;
    if let Some(range) = ip_range {
        if range.addr().is_ipv4() != base.is_ipv4() {
            return None;
        }
        let range = range.trunc();
        lo = lo.max(bits(range.network()));
        hi = hi.min(bits(range.broadcast()));
    }
    if lo > hi {
        return None;
    }
    let mut taken = used
        .range(from_bits(base, lo)..=from_bits(base, hi))
        .map(|a| bits(*a))
        .peekable();
    let mut candidate = lo;
    while candidate <= hi {
        while taken.next_if(|t| *t < candidate).is_some() {}
        let addr = from_bits(base, candidate);
        if taken.peek() != Some(&candidate) && !reserved.contains(&addr) {
            return Some(addr);
        }
        candidate = candidate.checked_add(1)?;
    }
    None
}

/// The assignable addresses of a (truncated) subnet as numbers: all but
/// the network address, and for IPv4 the broadcast address, unless the
/// subnet is too small to have them (/31, /32, /128).
fn host_range(net: IpNet) -> Option<(u128, u128)> {
    let (lo, hi) = (bits(net.network()), bits(net.broadcast()));
    match net {
        IpNet::V4(n) if n.prefix_len() >= 31 => Some((lo, hi)),
        IpNet::V4(_) => Some((lo + 1, hi - 1)),
        IpNet::V6(n) if n.prefix_len() == 128 => Some((lo, hi)),
        IpNet::V6(_) => Some((lo + 1, hi)),
    }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `n` in `like`'s family.
fn from_bits(like: IpAddr, n: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// docker's MAC for a container address: 02:42 and the address's four bytes.
pub fn mac_for(ipv4: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ipv4.octets();
    [0x02, 0x42, a, b, c, d]
}

/// A random unique local /64 (RFC 4193: `fd` + 40-bit global id + 16-bit
/// subnet id) for `--ipv6` without `--subnet`. The 56 random bits come
/// from the kernel's CSPRNG (getrandom(2)).
pub fn ula_subnet() -> Ipv6Net {
    let mut r = [0u8; 7];
    crate::random::fill(&mut r);
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..8].copy_from_slice(&r);
    Ipv6Net::new(Ipv6Addr::from(octets), 64).expect("64 is a valid prefix")
}

#[cfg(test)]
mod tests;
