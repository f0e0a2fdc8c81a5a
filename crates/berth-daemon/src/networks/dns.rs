//! berth's DNS for user-defined networks: one config file per network
//! (who is on it) under `<exec-root>/dns`, served by the `berth-dns`
//! process, which outlives berthd as the shims do.

use std::path::PathBuf;

use super::attach::EndpointConfig;
use super::Network;
use crate::engine::Engine;

fn dir(engine: &Engine) -> PathBuf {
    engine.config().exec_root.join("dns")
}

/// The `berth-dns` binary: beside berthd, else on PATH.
fn binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("berth-dns"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("berth-dns"))
}

/// The names a container answers to on a user-defined network, in
/// docker's order (its buildEndpointDNSNames; the first one names the
/// address's PTR record): its name, its aliases there, its short id, its
/// hostname. Inspect shows them as the endpoint's `DNSNames`.
pub(crate) fn endpoint_names(c: &crate::containers::Loaded, aliases: &[String]) -> Vec<String> {
    let name = [c.name.as_str()].into_iter();
    distinct(name.chain(aliases_with_own(c, aliases)))
}

/// An endpoint's aliases, then the container's short id and hostname (how
/// docker shows a connected endpoint's `Aliases` before API 1.45).
pub(crate) fn aliases_with_own<'a>(
    c: &'a crate::containers::Loaded,
    aliases: &'a [String],
) -> impl Iterator<Item = &'a str> {
    aliases
        .iter()
        .map(String::as_str)
        .chain([&c.id[..12], c.config.hostname.as_str()])
}

/// The non-empty names, each once, in their first order.
pub(crate) fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names.filter(|n| !n.is_empty()) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Rewrites the network's config from its endpoints and has the server
/// reload (or start). Failures are logged: names stop resolving, but the
/// containers run.
pub(super) fn refresh(engine: &Engine, n: &Network) {
    let endpoints = match engine.store.endpoints() {
        Ok(all) => all
            .into_iter()
            .filter(|e| e.network_id == n.row.id)
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(network = %n.row.name, error = %e, "reading endpoints for DNS");
            return;
        }
    };
    let dir = dir(engine);
    // A network without containers keeps its (empty) config while berthd
    // runs, so berth-dns keeps running: the next start on the network
    // then only has it reload, instead of waiting for a new process
    // (about 15 ms here). At berthd's stop, such networks are forgotten
    // ([`release_idle`]).
    let mut records = Vec::new();
    for e in &endpoints {
        let Ok(c) = engine.load_container(&e.container_id) else {
            continue;
        };
        let config = EndpointConfig::decode(&e.config);
        let names = endpoint_names(&c, &config.aliases);
        let v4 = e.ipv4.iter().filter_map(|a| match a {
            std::net::IpAddr::V4(a) => Some(*a),
            _ => None,
        });
        let v6 = [e.ipv4, e.ipv6]
            .into_iter()
            .flatten()
            .filter_map(|a| match a {
                std::net::IpAddr::V6(a) => Some(a),
                _ => None,
            });
        records.push(berth_dns::Record {
            names,
            ipv4: v4.collect(),
            ipv6: v6.collect(),
            links: config.links,
        });
    }
    let config = berth_dns::NetworkDns {
        network_id: n.row.id.clone(),
        network_name: n.row.name.clone(),
        listen: n.config.subnets.iter().map(|s| s.gateway).collect(),
        subnets: n.config.subnets.iter().map(|s| s.subnet).collect(),
        records,
        upstreams: berth_dns::host_upstreams(std::path::Path::new("/etc/resolv.conf")),
    };
    if let Err(e) = berth_dns::write_network(&dir, &config) {
        tracing::warn!(network = %n.row.name, error = %e, "writing the DNS config");
        return;
    }
    if let Err(e) = berth_dns::notify(&dir, &binary()) {
        tracing::warn!(network = %n.row.name, error = %e, "starting or reloading berth-dns");
    }
}

/// At berthd's stop: networks no container is on are no longer served,
/// so berth-dns exits unless a running container (which outlives berthd)
/// still needs it; start-up serves them again (`restore_networking`).
pub(super) fn release_idle(engine: &Engine, networks: &[Network]) {
    let endpoints = match engine.store.endpoints() {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "reading endpoints to stop serving idle networks");
            return;
        }
    };
    for n in networks {
        if n.has_dns() && !endpoints.iter().any(|e| e.network_id == n.row.id) {
            forget(engine, n);
        }
    }
}

/// The network is gone or idle: its names are no longer served (the
/// server exits when it has no network left).
pub(super) fn forget(engine: &Engine, n: &Network) {
    let dir = dir(engine);
    if let Err(e) = berth_dns::remove_network(&dir, &n.row.id) {
        tracing::warn!(network = %n.row.name, error = %e, "removing the DNS config");
    }
    if let Err(e) = berth_dns::notify(&dir, &binary()) {
        tracing::warn!(network = %n.row.name, error = %e, "reloading berth-dns");
    }
}
