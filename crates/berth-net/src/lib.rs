#![forbid(unsafe_code)]
//! Container networking for berthd, synchronous: network namespace files,
//! netlink plumbing (bridges, veth pairs, addresses, routes), IPAM, and the
//! one nftables table berth owns (masquerade, isolation, published ports).
//!
//! The daemon decides what should exist (from its database); this crate
//! makes the kernel match. Nothing here keeps state of its own.

mod error;
pub mod ipam;
pub mod link;
mod netlink;
pub mod netns;
mod random;
mod sysctl;

pub use error::NetError;
/// The network types of this crate's API, so callers use the same version.
pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub mod firewall;
