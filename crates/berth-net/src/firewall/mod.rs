//! The one nftables table berth owns: outbound masquerade, isolation
//! between networks, `--internal`, and published ports.
//!
//! Stateless: the daemon computes the whole [`FirewallState`] from its
//! database and calls [`apply`] after every change and at start-up. Each
//! apply is one `nft -j -f -` transaction that adds, deletes and re-creates
//! the table with everything in it, so it is atomic (the kernel never sees
//! half a table) and idempotent (applying the same state twice leaves the
//! same ruleset, never duplicates). Conntrack entries are not part of the
//! table, so established connections, NATed ones included, survive it.
//! Nothing outside the named table is read or changed: the host's other
//! tables (docker's, firewalld's) are left alone.
//!
//! Published ports are DNAT rules in the kernel, not a userland proxy, so
//! they keep answering while berthd is down or restarting. Connections
//! from the host's own loopback (127.0.0.1) work through `route_localnet`
//! on the bridge (the kernel then lets a 127/8 source leave through it;
//! [`crate::link::ensure_bridge`] turns it on) plus a masquerade of 127.0.0.0/8
//! sources going out to the bridge. IPv6 has no `route_localnet`, so `[::1]`
//! does not reach a published port. A container reaching its own published
//! port through a host address needs its bridge port in hairpin mode when
//! `br_netfilter` is loaded (the DNATed frame is bridged back out the port
//! it came in on).
//!
//! Limitation: an `accept` in one nftables table does not override a `drop`
//! in another; a packet must pass every table's chains on a hook. When
//! another firewall drops forwarded traffic (docker's iptables rules set the
//! FORWARD policy to DROP, and with `br_netfilter` loaded even traffic
//! between containers on one bridge passes the ip hooks), berth's networks
//! lose outbound and published-port traffic. berth does not edit other
//! tables; the host's administrator allows berth's bridges there, for docker
//! in its DOCKER-USER chain, for example
//! `iptables -I DOCKER-USER -i berth0 -j ACCEPT` and
//! `iptables -I DOCKER-USER -o berth0 -j ACCEPT` (one pair per bridge).
//!
//! Inter-container traffic on one bridge (`icc`) is bridged, not routed, so
//! the forward hook sees it only when `br_netfilter` is loaded; `icc: false`
//! has an effect only then (as with docker).

mod error;
mod nft;
mod render;

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

pub use error::FirewallError;
pub use render::render;

/// Everything the table must do, computed whole by the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallState {
    pub networks: Vec<FwNetwork>,
    pub ports: Vec<FwPort>,
}

/// One bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    /// The bridge's interface name (at most 15 bytes).
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// `--internal`: nothing is forwarded into or out of the bridge (its
    /// containers talk to each other only), and no port is published.
    pub internal: bool,
    /// Masquerade traffic from the subnets leaving through any other interface.
    pub masquerade: bool,
    /// Traffic between containers on this bridge is allowed (docker's
    /// `com.docker.network.bridge.enable_icc`).
    pub icc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// nftables' (and docker's) name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One published port (the daemon has already expanded ranges and picked
/// random host ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwPort {
    pub protocol: Protocol,
    /// Only connections to this local address; `None` (or an unspecified
    /// address) for every local address of the container's IP family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// The bridge the container is reached through.
    pub bridge: String,
}

/// Which forwarding switch [`set_ip_forward`] turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

/// Turns forwarding of `version` on or off; returns whether it was on.
/// Kept only until berthd's caller moves to the crate's one forwarding
/// switch, [`crate::link::enable_ip_forward`].
#[deprecated(note = "use berth_net::link::enable_ip_forward")]
pub fn set_ip_forward(version: IpVersion, on: bool) -> Result<bool, crate::NetError> {
    let key: &[&str] = match version {
        IpVersion::V4 => &["net", "ipv4", "ip_forward"],
        IpVersion::V6 => &["net", "ipv6", "conf", "all", "forwarding"],
    };
    Ok(crate::sysctl::set(key, if on { "1" } else { "0" })? == "1")
}

/// Makes the table `table` exactly what `state` says, in one atomic
/// transaction (created if missing, replaced whole if present).
pub fn apply(table: &str, state: &FirewallState) -> Result<(), FirewallError> {
    render::validate(table, state)?;
    let started = Instant::now();
    let doc = render(table, state);
    let json = serde_json::to_vec(&doc).expect("a JSON value always serialises");
    nft::run(table, "apply the ruleset", &["-j", "-f", "-"], Some(&json))?;
    tracing::debug!(
        table,
        networks = state.networks.len(),
        ports = state.ports.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "firewall table applied"
    );
    Ok(())
}

/// Deletes the table; Ok when it does not exist.
pub fn remove(table: &str) -> Result<(), FirewallError> {
    render::validate_table(table)?;
    let json = serde_json::to_vec(&render::remove(table)).expect("a JSON value always serialises");
    nft::run(table, "delete the table", &["-j", "-f", "-"], Some(&json))?;
    Ok(())
}

/// The table as `nft list table inet <table>` prints it (for diagnostics
/// and tests); a NotFound error when it does not exist.
pub fn list(table: &str) -> Result<String, FirewallError> {
    render::validate_table(table)?;
    let out = nft::run(
        table,
        "list the table",
        &["list", "table", render::FAMILY, table],
        None,
    )?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
