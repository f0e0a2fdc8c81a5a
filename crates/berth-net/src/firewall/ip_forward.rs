//! The host's forwarding switches: without them nothing is routed between
//! a bridge and the outside, whatever the table says.
//!
//! Stateless like the rest: [`set_ip_forward`] returns the previous value,
//! and the daemon keeps it (in its database) if it wants to restore it
//! later. Turning IPv6 forwarding on makes the kernel stop accepting router
//! advertisements on interfaces with `accept_ra=1`, so the daemon turns it
//! on only for networks that have IPv6.

use std::path::Path;

use super::FirewallError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    fn sysctl(self) -> &'static Path {
        Path::new(match self {
            IpVersion::V4 => "/proc/sys/net/ipv4/ip_forward",
            IpVersion::V6 => "/proc/sys/net/ipv6/conf/all/forwarding",
        })
    }
}

/// Whether the current network namespace forwards packets of `version`.
pub fn ip_forward(version: IpVersion) -> Result<bool, FirewallError> {
    let path = version.sysctl();
    let text = std::fs::read_to_string(path).map_err(|source| FirewallError::Sysctl {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim() != "0")
}

/// Turns forwarding of `version` on or off; returns what it was before.
/// Writes only when the value changes.
pub fn set_ip_forward(version: IpVersion, on: bool) -> Result<bool, FirewallError> {
    let was = ip_forward(version)?;
    if was != on {
        let path = version.sysctl();
        std::fs::write(path, if on { "1\n" } else { "0\n" }).map_err(|source| {
            FirewallError::Sysctl {
                action: "cannot write",
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(was)
}
