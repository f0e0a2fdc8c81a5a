//! The firewall's desired state, computed whole from the database: every
//! bridge network (masquerade, isolation, `--internal`) and every host port
//! a running container holds. berth-net turns it into the one nftables
//! table berth owns, replaced atomically.

use berth_net::firewall::{FirewallState, FwNetwork, FwPort, Protocol};

use super::attach::EndpointConfig;
use crate::engine::Engine;
use crate::error::ApiError;

fn protocol(name: &str) -> Protocol {
    match name {
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

/// What the table must hold now.
fn desired(engine: &Engine) -> Result<FirewallState, ApiError> {
    let networks = engine.all_networks()?;
    let endpoints = engine.store.endpoints()?;
    let mut state = FirewallState::default();
    for n in &networks {
        let Some(bridge) = &n.row.bridge else {
            continue;
        };
        state.networks.push(FwNetwork {
            bridge: bridge.clone(),
            subnets: n.config.subnets.iter().map(|s| s.subnet).collect(),
            internal: n.config.internal,
            masquerade: n.config.masquerade(),
            icc: n.config.icc(),
        });
    }
    for p in engine.store.port_bindings()? {
        // A container's ports lead to its primary endpoint.
        let Some((e, bridge)) = endpoints.iter().find_map(|e| {
            if e.container_id != p.container_id || !EndpointConfig::decode(&e.config).primary {
                return None;
            }
            let n = networks.iter().find(|n| n.row.id == e.network_id)?;
            Some((e, n.row.bridge.clone()?))
        }) else {
            continue;
        };
        // The container addresses a binding leads to: an address of the
        // host's family; on every address (`0.0.0.0`), IPv4 and, on a
        // dual-stack network, IPv6 too (`::`: IPv6 only). DNAT cannot
        // cross families, so an IPv4-only container has no IPv6 port.
        let (host_ip, targets) = match p.host_ip.as_str() {
            "0.0.0.0" => (None, vec![e.ipv4.or(e.ipv6), e.ipv4.and(e.ipv6)]),
            "::" => (None, vec![e.ipv6]),
            ip => {
                let ip: Option<std::net::IpAddr> = ip.parse().ok();
                let target = match ip {
                    Some(std::net::IpAddr::V6(_)) => e.ipv6,
                    _ => e.ipv4,
                };
                (ip, vec![target])
            }
        };
        for container_ip in targets.into_iter().flatten() {
            state.ports.push(FwPort {
                protocol: protocol(&p.protocol),
                host_ip,
                host_port: p.host_port,
                container_ip,
                container_port: p.container_port,
                bridge: bridge.clone(),
            });
        }
    }
    Ok(state)
}

/// Rebuilds berth's table from the database (the caller holds the
/// network lock, so two rebuilds never interleave).
pub(super) fn apply(engine: &Engine) -> Result<(), ApiError> {
    let settings = engine.config();
    if !settings.iptables {
        return Ok(());
    }
    let state = desired(engine)?;
    berth_net::firewall::apply(&settings.firewall_table, &state).map_err(ApiError::from)
}
