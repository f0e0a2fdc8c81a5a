//! A container's networking, from its start to its stop: the network
//! namespace file it joins, one veth per network, its addresses (IPAM's
//! leases, in the `endpoints` table), its host ports, and the firewall and
//! DNS updates that follow.
//!
//! Addresses and ports are allocated at start and released at stop, as
//! docker does; the endpoint rows exist exactly while the container runs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use berth_api::models::{ContainerCreateBody, EndpointSettings};
use berth_api::ApiVersion;
use berth_store::EndpointRow;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{dns, ports, Network, BRIDGE, HOST, NONE};
use crate::containers::{ContainerConfig, Loaded, Status};
use crate::engine::Engine;
use crate::error::ApiError;

/// What an endpoint row keeps besides its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct EndpointConfig {
    pub endpoint_id: String,
    pub mac: String,
    /// The host end of the veth pair.
    pub host_veth: String,
    /// The interface's name in the container.
    pub ifname: String,
    pub aliases: Vec<String>,
    /// EndpointSettings.Links on a user-defined network: alias -> the
    /// linked container's name, resolved by DNS for this container only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
    /// The network that holds the default route and the published ports.
    pub primary: bool,
}

impl EndpointConfig {
    pub(crate) fn decode(bytes: &[u8]) -> EndpointConfig {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// How a container is networked, from its create request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
    Host,
    /// Loopback only: a namespace of its own with `lo` up.
    None,
    /// Another container's namespace.
    Container(String),
    /// Bridge networks, the first one primary, each with its settings.
    Networks(Vec<(String, EndpointSettings)>),
}

fn canonical(name: &str) -> &str {
    match name {
        "" | "default" => BRIDGE,
        n => n,
    }
}

/// The container's networking mode: `HostConfig.NetworkMode` names the
/// primary network; `NetworkingConfig.EndpointsConfig` holds its settings
/// and the other networks it joins (`network connect` adds there too).
pub(crate) fn mode(body: &ContainerCreateBody) -> Mode {
    if body.network_disabled.unwrap_or(false) {
        return Mode::None;
    }
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        .unwrap_or("");
    match canonical(mode) {
        HOST => return Mode::Host,
        NONE => return Mode::None,
        m if m.starts_with("container:") => {
            return Mode::Container(m["container:".len()..].to_string())
        }
        _ => {}
    }
    let primary = canonical(mode).to_string();
    let mut endpoints: Vec<(String, EndpointSettings)> = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (canonical(&k).to_string(), v))
        .collect();
    endpoints.sort_by(|a, b| a.0.cmp(&b.0));
    let own = endpoints
        .iter()
        .position(|(k, _)| *k == primary)
        .map(|i| endpoints.remove(i).1)
        .unwrap_or_default();
    let mut list = vec![(primary, own)];
    list.extend(endpoints);
    Mode::Networks(list)
}

/// A created container's networking: [`mode`] of its request, less the
/// network its NetworkMode names once `network disconnect` took it off
/// that one (docker keeps NetworkMode as created and joins only the
/// networks still connected; none left: loopback only).
pub(crate) fn container_mode(config: &ContainerConfig) -> Mode {
    match mode(&config.create) {
        Mode::Networks(mut list) if config.left_mode_network => {
            list.remove(0);
            Mode::Networks(list)
        }
        m => m,
    }
}

/// Config.MacAddress, the container-wide MAC that API 1.44 deprecated for
/// the endpoint's (the models no longer carry it), as dockerd's
/// handleMACAddressBC takes it: docker puts it on the network NetworkMode
/// names. Before 1.44 it replaces what the endpoint's settings say (a
/// daemon of that version ignored those, and clears them when the
/// container-wide one is unset); from 1.44 it must agree with them, and
/// using it earns docker's deprecation warning, which is returned.
pub(crate) fn apply_container_mac(
    body: &mut ContainerCreateBody,
    raw: &serde_json::Value,
    version: ApiVersion,
) -> Result<Option<String>, ApiError> {
    let old_api = version < ApiVersion::new(1, 44);
    let container_mac = raw
        .get("MacAddress")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty());
    let Some(m) = container_mac else {
        if old_api {
            let eps = body
                .networking_config
                .as_mut()
                .and_then(|n| n.endpoints_config.as_mut());
            for ep in eps.into_iter().flat_map(|eps| eps.values_mut()) {
                ep.mac_address = None;
            }
        }
        return Ok(None);
    };
    let Some(mac) = parse_mac(m) else {
        return Err(ApiError::bad_request(format!(
            "invalid MAC address {m:?}: give six hex bytes like 02:42:ac:11:00:02"
        )));
    };
    let deprecated = (!old_api).then(|| {
        "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.".to_string()
    });
    let Mode::Networks(list) = mode(body) else {
        if old_api {
            return Err(ApiError::bad_request(
                "conflicting options: mac-address and the network mode",
            ));
        }
        return Ok(deprecated);
    };
    let primary = list[0].0.clone();
    let eps = body
        .networking_config
        .get_or_insert_with(Default::default)
        .endpoints_config
        .get_or_insert_with(Default::default);
    let key = if old_api {
        // At most one endpoint before 1.44, and that one is the container's.
        eps.keys().next().cloned()
    } else {
        eps.keys().find(|k| canonical(k) == primary).cloned()
    }
    .unwrap_or(primary);
    let ep = eps.entry(key).or_default();
    let own = ep.mac_address.as_deref().filter(|m| !m.is_empty());
    match own {
        Some(own) if !old_api && parse_mac(own) != Some(mac) => {
            return Err(ApiError::bad_request(
                "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty",
            ));
        }
        Some(_) if !old_api => {}
        _ => ep.mac_address = Some(m.to_string()),
    }
    Ok(deprecated)
}

/// Whether `name` is the network a container's NetworkMode names.
pub(crate) fn is_mode_network(body: &ContainerCreateBody, name: &str) -> bool {
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        .unwrap_or("");
    canonical(mode) == canonical(name)
}

/// The names of the networks a container is joined to.
pub(crate) fn configured_networks(config: &ContainerConfig) -> Vec<String> {
    match container_mode(config) {
        Mode::Host => vec![HOST.into()],
        Mode::None => vec![NONE.into()],
        Mode::Container(_) => Vec::new(),
        Mode::Networks(list) => list.into_iter().map(|(n, _)| n).collect(),
    }
}

/// What the container's spec and `/etc` files need from its networking.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetSetup {
    /// The network namespace to join (absent: host's, or a new one).
    pub netns: Option<PathBuf>,
    /// The container's own addresses, primary network first.
    pub addresses: Vec<IpAddr>,
    /// berth's DNS server (the primary network's gateway) when the
    /// primary network is user-defined.
    pub dns_server: Option<IpAddr>,
    /// `container:<id>` mode: the container whose `/etc` files to share.
    pub etc_from: Option<String>,
    /// What legacy links on the default bridge add.
    pub links: super::links::LinkSetup,
}

impl NetSetup {
    /// The request the spec is made from: with legacy links, docker's
    /// link variables come before the container's own Env (which wins).
    pub(crate) fn spec_body<'a>(
        &self,
        body: &'a ContainerCreateBody,
    ) -> std::borrow::Cow<'a, ContainerCreateBody> {
        if self.links.env.is_empty() {
            return std::borrow::Cow::Borrowed(body);
        }
        let mut body = body.clone();
        let mut env = self.links.env.clone();
        env.extend(body.env.take().unwrap_or_default());
        body.env = Some(env);
        std::borrow::Cow::Owned(body)
    }
}

/// The host end of a container's veth on its `index`th network: "vb", 12
/// digits of the id, one hex digit (15 bytes, IFNAMSIZ's limit).
fn host_veth_name(id: &str, index: usize) -> String {
    format!("vb{}{:x}", &id[..12], index)
}

fn interface_prefix(id: &str) -> String {
    format!("vb{}", &id[..12])
}

/// Makes the bridge of a network exist with its gateway addresses.
pub(crate) fn ensure_bridge(n: &Network, default_mtu: u32) -> Result<(), ApiError> {
    let Some(name) = &n.row.bridge else {
        return Ok(());
    };
    let addresses = n
        .config
        .subnets
        .iter()
        .filter_map(|s| IpNet::new(s.gateway, s.subnet.prefix_len()).ok())
        .collect();
    berth_net::link::ensure_bridge(&berth_net::link::BridgeSpec {
        name: name.clone(),
        addresses,
        mtu: Some(n.config.mtu().unwrap_or(default_mtu)),
    })
    .map_err(ApiError::from)
}

fn conflict(msg: impl Into<String>) -> ApiError {
    ApiError::new(berth_errdefs::ErrorKind::Conflict, msg)
}

fn parse_requested(what: &str, value: Option<&str>) -> Result<Option<IpAddr>, ApiError> {
    value
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid {what} address {s:?}")))
        })
        .transpose()
}

/// Picks an address of `family` on `n` for a container: the requested
/// one (checked), else IPAM's lowest free one.
fn pick_address(
    n: &Network,
    v4: bool,
    requested: Option<IpAddr>,
    taken: &BTreeSet<IpAddr>,
) -> Result<Option<IpAddr>, ApiError> {
    let pools: Vec<_> = n
        .config
        .subnets
        .iter()
        .filter(|s| s.subnet.addr().is_ipv4() == v4)
        .collect();
    if let Some(want) = requested {
        let Some(pool) = pools.iter().find(|p| p.subnet.contains(&want)) else {
            return Err(ApiError::bad_request(format!(
                "no configured subnet or ip-range contain the IP address {want}"
            )));
        };
        if pool.reserved().contains(&want) || taken.contains(&want) {
            return Err(conflict(format!(
                "Address already in use: {want} is taken on network {}",
                n.row.name
            )));
        }
        return Ok(Some(want));
    }
    for pool in &pools {
        if let Some(a) =
            berth_net::ipam::allocate(pool.subnet, pool.ip_range, &pool.reserved(), taken)
        {
            return Ok(Some(a));
        }
    }
    if pools.is_empty() {
        return Ok(None);
    }
    Err(ApiError::new(
        berth_errdefs::ErrorKind::Unavailable,
        format!(
            "no available IPv{} addresses on network {}: its subnets are full; remove containers or create a larger network",
            if v4 { 4 } else { 6 },
            n.row.name
        ),
    ))
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A MAC address as docker takes it (Go's net.ParseMAC, 6 bytes): pairs
/// of hex digits separated by `:` or `-`.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let separator = if s.contains('-') { '-' } else { ':' };
    let parts: Vec<u8> = s
        .split(separator)
        .map(crate::hex::byte)
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

/// One endpoint being made: its row and what the kernel needs.
struct Planned {
    network: Network,
    row: EndpointRow,
    config: EndpointConfig,
    mac: [u8; 6],
}

impl Engine {
    /// `<exec-root>/netns/<id>`: the container's network namespace file.
    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.config().exec_root.join("netns").join(id)
    }

    /// Before a container starts: its namespace, addresses, veths, ports,
    /// firewall and DNS. On failure nothing of it is left.
    pub(crate) fn connect_container_networks(&self, c: &Loaded) -> Result<NetSetup, ApiError> {
        // Before anything is made: a link to a stopped child fails the start.
        let links = self.legacy_link_setup(c)?;
        let mut setup = self.connect_mode(c)?;
        setup.links = links;
        Ok(setup)
    }

    fn connect_mode(&self, c: &Loaded) -> Result<NetSetup, ApiError> {
        match container_mode(&c.config) {
            Mode::Host => Ok(NetSetup::default()),
            // docker's `none`, or disconnected from every network: loopback
            // up (127.0.0.1, ::1), nothing else. A namespace file, not the
            // runtime's anonymous one, so the loopback is up before the
            // process starts and a `container:<this>` joins the same file.
            Mode::None => self.loopback_only(c),
            Mode::Container(name) => self.shared_namespace(c, &name),
            Mode::Networks(list) => {
                let list = self.without_disabled_bridge(list);
                if list.is_empty() {
                    return self.loopback_only(c);
                }
                let _guard = self.networks.lock();
                let result = self.connect_locked(c, &list);
                if result.is_err() {
                    self.disconnect_locked(&c.id);
                }
                result
            }
        }
    }

    /// The networks a start joins of `list`: with the default bridge
    /// disabled (`--bridge none`) a container on `bridge` (the default)
    /// starts without it, as dockerd's does (its connectToNetwork sets
    /// NetworkDisabled): loopback only when it has no other network.
    fn without_disabled_bridge(
        &self,
        mut list: Vec<(String, EndpointSettings)>,
    ) -> Vec<(String, EndpointSettings)> {
        if self.config().bridge == NONE {
            list.retain(|(name, _)| name != BRIDGE);
        }
        list
    }

    fn loopback_only(&self, c: &Loaded) -> Result<NetSetup, ApiError> {
        let netns = self.netns_path(&c.id);
        berth_net::netns::create_from_spare(&netns, &self.networks.spare_netns)
            .map_err(ApiError::from)?;
        Ok(NetSetup {
            netns: Some(netns),
            ..NetSetup::default()
        })
    }

    /// `container:<name>`: the other container must run; its namespace
    /// file (or its process's namespace) is joined and its /etc shared.
    fn shared_namespace(&self, c: &Loaded, name: &str) -> Result<NetSetup, ApiError> {
        let target = self.load_container(name)?;
        if target.id == c.id {
            return Err(ApiError::bad_request(
                "cannot join own network namespace: a container cannot use container:<itself>",
            ));
        }
        if !matches!(target.state.status, Status::Running | Status::Paused) {
            return Err(conflict(format!(
                "cannot join network of a non running container: {}",
                target.id
            )));
        }
        let file = self.netns_path(&target.id);
        let netns = if file.exists() {
            file
        } else {
            PathBuf::from(format!("/proc/{}/ns/net", target.state.pid))
        };
        Ok(NetSetup {
            netns: Some(netns),
            etc_from: Some(target.id),
            ..NetSetup::default()
        })
    }

    fn connect_locked(
        &self,
        c: &Loaded,
        list: &[(String, EndpointSettings)],
    ) -> Result<NetSetup, ApiError> {
        for (_, settings) in list {
            self.wait_requested_released(settings);
        }
        let mut all = self.store.endpoints()?;
        all.extend(self.networks.releasing());
        let mut planned: Vec<Planned> = Vec::new();
        for (index, (name, settings)) in list.iter().enumerate() {
            let mut taken = all.clone();
            taken.extend(planned.iter().map(|p| p.row.clone()));
            planned.push(self.plan_endpoint(c, index, name, settings, &taken)?);
        }
        let primary = planned.first().expect("a network list is never empty");
        let port_rows = ports::allocate(self, c, primary.row.ipv4.or(primary.row.ipv6))?;
        let rows: Vec<_> = planned.iter().map(|p| p.row.clone()).collect();
        self.store.attach_container(&rows, &port_rows)?;

        let netns = self.netns_path(&c.id);
        berth_net::netns::create_from_spare(&netns, &self.networks.spare_netns)
            .map_err(ApiError::from)?;
        for p in &planned {
            self.attach_endpoint(p, &netns)?;
        }
        if !port_rows.is_empty() {
            self.apply_firewall()?;
        }
        for p in planned.iter().filter(|p| p.network.has_dns()) {
            dns::refresh(self, &p.network);
        }
        let primary = &planned[0];
        Ok(NetSetup {
            netns: Some(netns),
            addresses: planned
                .iter()
                .flat_map(|p| [p.row.ipv4, p.row.ipv6])
                .flatten()
                .collect(),
            dns_server: primary
                .network
                .has_dns()
                .then(|| primary.network.config.subnets.first().map(|s| s.gateway))
                .flatten(),
            etc_from: None,
            links: Default::default(),
        })
    }

    /// Addresses a start asks for (`--ip`, `--ip6`) that a removed
    /// container's veth still holds are waited for.
    fn wait_requested_released(&self, settings: &EndpointSettings) {
        let Some(ipam) = settings.ipam_config.as_ref() else {
            return;
        };
        for requested in [&ipam.ipv4_address, &ipam.ipv6_address] {
            if let Some(addr) = requested.as_deref().and_then(|s| s.parse().ok()) {
                self.networks.wait_released(addr);
            }
        }
    }

    /// Chooses a container's addresses, MAC and interface names on one
    /// network. `taken`: every endpoint recorded or being made.
    fn plan_endpoint(
        &self,
        c: &Loaded,
        index: usize,
        name: &str,
        settings: &EndpointSettings,
        taken: &[EndpointRow],
    ) -> Result<Planned, ApiError> {
        let network = self.network(name).map_err(|e| {
            if e.status == 404 {
                ApiError::not_found(format!("network {name} not found"))
            } else {
                e
            }
        })?;
        if network.row.bridge.is_none() {
            return Err(ApiError::bad_request(format!(
                "container cannot be connected to network {} together with others: host and none networks stand alone",
                network.row.name
            )));
        }
        if index >= 16 {
            return Err(ApiError::bad_request(
                "a container can join at most 16 networks",
            ));
        }
        let ipam = settings.ipam_config.clone().unwrap_or_default();
        let want4 = parse_requested("IPv4", ipam.ipv4_address.as_deref())?;
        let want6 = parse_requested("IPv6", ipam.ipv6_address.as_deref())?;
        let aliases = settings.aliases.clone().unwrap_or_default();
        if network.config.default_bridge {
            if want4.is_some() || want6.is_some() {
                return Err(ApiError::bad_request(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            if !aliases.is_empty() {
                return Err(ApiError::bad_request(
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
        }
        let used: BTreeSet<IpAddr> = taken
            .iter()
            .filter(|e| e.network_id == network.row.id)
            .flat_map(|e| [e.ipv4, e.ipv6])
            .flatten()
            .collect();
        let ipv4 = pick_address(&network, true, want4, &used)?;
        let ipv6 = if network.config.enable_ipv6 {
            pick_address(&network, false, want6, &used)?
        } else {
            None
        };
        let requested_mac = settings.mac_address.as_deref().filter(|m| !m.is_empty());
        let links = if network.has_dns() {
            super::links::endpoint_links(settings.links.as_deref().unwrap_or_default())?
        } else {
            BTreeMap::new()
        };
        let mac = match requested_mac {
            Some(m) => parse_mac(m)
                .ok_or_else(|| ApiError::bad_request(format!("invalid MAC address {m:?}")))?,
            None => match ipv4 {
                Some(IpAddr::V4(a)) => berth_net::ipam::mac_for(a),
                _ => berth_net::ipam::mac_for(std::net::Ipv4Addr::new(0, 0, 0, index as u8 + 2)),
            },
        };
        let config = EndpointConfig {
            endpoint_id: super::random_id()?,
            mac: format_mac(mac),
            host_veth: host_veth_name(&c.id, index),
            ifname: format!("eth{index}"),
            aliases,
            links,
            primary: index == 0,
        };
        let row = EndpointRow {
            network_id: network.row.id.clone(),
            container_id: c.id.clone(),
            ipv4,
            ipv6,
            config: serde_json::to_vec(&config).expect("endpoint config serialises"),
        };
        Ok(Planned {
            network,
            row,
            config,
            mac,
        })
    }

    /// The kernel side of one endpoint: a veth from the network's bridge
    /// into the namespace, with the addresses (and, on the primary
    /// network, the default routes).
    fn attach_endpoint(&self, p: &Planned, netns: &std::path::Path) -> Result<(), ApiError> {
        let mut addresses = Vec::new();
        let (mut gateway4, mut gateway6) = (None, None);
        for a in [p.row.ipv4, p.row.ipv6].into_iter().flatten() {
            let Some(pool) = p
                .network
                .config
                .subnets
                .iter()
                .find(|s| s.subnet.contains(&a))
            else {
                continue;
            };
            addresses
                .push(IpNet::new(a, pool.subnet.prefix_len()).expect("prefix from the subnet"));
            if p.config.primary && !p.network.config.internal {
                match pool.gateway {
                    IpAddr::V4(g) => gateway4 = Some(g),
                    IpAddr::V6(g) => gateway6 = Some(g),
                }
            }
        }
        berth_net::link::attach_veth(&berth_net::link::VethSpec {
            bridge: p.network.row.bridge.clone().expect("bridge networks only"),
            host_name: p.config.host_veth.clone(),
            netns: netns.to_path_buf(),
            container_name: p.config.ifname.clone(),
            mac: p.mac,
            addresses,
            gateway4,
            gateway6,
            mtu: Some(p.network.config.mtu().unwrap_or(self.config().mtu)),
        })
        .map_err(ApiError::from)
    }

    /// `network connect` of a running container: one more endpoint, hot.
    pub(crate) fn hot_connect(
        &self,
        c: &Loaded,
        name: &str,
        settings: &EndpointSettings,
    ) -> Result<(), ApiError> {
        let _guard = self.networks.lock();
        self.wait_requested_released(settings);
        let mut all = self.store.endpoints()?;
        all.extend(self.networks.releasing());
        let used: BTreeSet<String> = all
            .iter()
            .filter(|e| e.container_id == c.id)
            .map(|e| EndpointConfig::decode(&e.config).host_veth)
            .collect();
        let index = (0..16)
            .find(|i| !used.contains(&host_veth_name(&c.id, *i)))
            .unwrap_or(16);
        let p = self.plan_endpoint(c, index, name, settings, &all)?;
        let mut p = p;
        p.config.primary = false;
        p.row.config = serde_json::to_vec(&p.config).expect("endpoint config serialises");
        self.store
            .attach_container(std::slice::from_ref(&p.row), &[])?;
        if let Err(e) = self.attach_endpoint(&p, &self.netns_path(&c.id)) {
            let _ = self.store.delete_endpoint(&p.row.network_id, &c.id);
            return Err(e);
        }
        if p.network.has_dns() {
            dns::refresh(self, &p.network);
        }
        Ok(())
    }

    /// `network disconnect` of a running container: its endpoint goes.
    pub(crate) fn hot_disconnect(&self, c: &Loaded, n: &Network) -> Result<(), ApiError> {
        let _guard = self.networks.lock();
        let Some(e) = self
            .store
            .endpoints()?
            .into_iter()
            .find(|e| e.container_id == c.id && e.network_id == n.row.id)
        else {
            return Ok(());
        };
        let config = EndpointConfig::decode(&e.config);
        berth_net::link::delete_link(&config.host_veth).map_err(ApiError::from)?;
        self.store.delete_endpoint(&n.row.id, &c.id)?;
        if config.primary {
            self.apply_firewall()?;
        }
        if n.has_dns() {
            dns::refresh(self, n);
        }
        Ok(())
    }

    /// After a container stops (or its start failed): its veths, namespace
    /// file, addresses and ports go; the firewall and DNS follow. Best
    /// effort: each failure is logged and the rest still done.
    pub(crate) fn disconnect_container_networks(&self, id: &str) {
        let _guard = self.networks.lock();
        self.disconnect_locked(id);
    }

    fn disconnect_locked(&self, id: &str) {
        let endpoints = self.container_endpoints(id);
        // The kernel side before the rows: IPAM hands the addresses out
        // again only once no interface holds them.
        self.delete_kernel_side(id, endpoints.as_deref());
        let had_ports = self.holds_ports(id);
        if let Err(e) = self.store.detach_container(id) {
            tracing::warn!(container = id, error = %e, "releasing addresses and ports");
        }
        self.after_release(id, had_ports, endpoints.as_deref().unwrap_or_default());
    }

    /// A container's removal: `delete_row` deletes its row, which takes
    /// its endpoint and port rows with it (ON DELETE CASCADE) in the same
    /// transaction, one fsync for both; the firewall and DNS follow.
    /// Returns the kernel side (veths, namespace file), for the caller to
    /// drop once the removal's waiters are told: deleting a veth waits out
    /// RCU grace periods in the kernel (10-20 ms here), which `docker run
    /// --rm` need not wait for, nor the next start: the network lock is
    /// not held meanwhile. The addresses count as taken until the teardown
    /// ends ([`Networks::begin_release`](super::Networks::begin_release)),
    /// so no start is given one while an interface still has it; the veth
    /// names (`vb` and the id) are the container's own, so nothing else can
    /// collide with them meanwhile. A daemon killed before
    /// the teardown leaves a namespace file of no container: the start-up
    /// sweep ([`Self::restore_networking`]) removes it, and its veths go
    /// with the namespace. If `delete_row` fails, the network is released
    /// as at a stop and its error returned.
    pub(crate) fn remove_container_networks(
        &self,
        id: &str,
        delete_row: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<Teardown<'_>, ApiError> {
        let _guard = self.networks.lock();
        let endpoints = self.container_endpoints(id);
        let had_ports = self.holds_ports(id);
        if let Err(e) = delete_row() {
            self.disconnect_locked(id);
            return Err(e);
        }
        self.networks
            .begin_release(endpoints.as_deref().unwrap_or_default());
        self.after_release(id, had_ports, endpoints.as_deref().unwrap_or_default());
        Ok(Teardown {
            engine: self,
            id: id.to_string(),
            endpoints,
        })
    }

    /// The container's endpoint rows; `None` when they cannot be read.
    fn container_endpoints(&self, id: &str) -> Option<Vec<EndpointRow>> {
        match self.store.endpoints() {
            Ok(all) => Some(all.into_iter().filter(|e| e.container_id == id).collect()),
            Err(e) => {
                tracing::warn!(container = id, error = %e, "reading endpoints");
                None
            }
        }
    }

    /// Whether the container holds host ports (so the firewall changes when
    /// it lets them go); yes when that cannot be read.
    fn holds_ports(&self, id: &str) -> bool {
        self.store
            .port_bindings()
            .map(|p| p.iter().any(|b| b.container_id == id))
            .unwrap_or(true)
    }

    /// The veths named in `endpoints` (every link starting with the
    /// container's prefix when the rows could not be read or name none),
    /// then the namespace file. A container without rows has no veth: rows
    /// are recorded before a veth is made and deleted after, and a veth
    /// whose rows went without it (a daemon killed in [`Teardown`]) has its
    /// other end in the namespace, whose removal takes the pair with it.
    fn delete_kernel_side(&self, id: &str, endpoints: Option<&[EndpointRow]>) {
        let named: Option<Vec<String>> = endpoints.map(|rows| {
            rows.iter()
                .map(|e| EndpointConfig::decode(&e.config).host_veth)
                .collect()
        });
        let veths = match named {
            Some(names) if names.iter().all(|n| !n.is_empty()) => names,
            _ => berth_net::link::links_with_prefix(&interface_prefix(id)).unwrap_or_else(|e| {
                tracing::warn!(container = id, error = %e, "listing veths");
                Vec::new()
            }),
        };
        for link in veths {
            if let Err(e) = berth_net::link::delete_link(&link) {
                tracing::warn!(container = id, link, error = %e, "removing a veth");
            }
        }
        self.remove_netns_file(&self.netns_path(id));
    }

    /// Removes a namespace file, and the shared directory mount once it
    /// holds none.
    fn remove_netns_file(&self, netns: &std::path::Path) {
        if let Err(e) = berth_net::netns::remove(netns) {
            tracing::warn!(netns = %netns.display(), error = %e, "removing the network namespace");
        }
        if let Some(dir) = netns.parent() {
            if let Err(e) = berth_net::netns::release_dir(dir) {
                tracing::warn!(error = %e, "unmounting the namespace directory");
            }
        }
    }

    /// After a container's endpoint and port rows are gone: the firewall
    /// without its ports, the DNS of its networks without its names.
    fn after_release(&self, id: &str, had_ports: bool, endpoints: &[EndpointRow]) {
        if had_ports {
            if let Err(e) = self.apply_firewall() {
                tracing::warn!(container = id, error = %e.message, "updating the firewall");
            }
        }
        for e in endpoints {
            if let Ok(n) = self
                .store
                .resolve_network(&e.network_id)
                .map_err(ApiError::from)
                .and_then(Network::from_row)
            {
                if n.has_dns() {
                    dns::refresh(self, &n);
                }
            }
        }
    }

    /// At start-up: namespace files of no recorded container (a daemon
    /// killed between a removal's row deletion and its [`Teardown`]) are
    /// removed, and the veths into them go with the namespaces. Only
    /// unrecorded ids: a recorded container may be starting (a restart
    /// policy) while this runs.
    fn sweep_netns_files(&self) {
        let dir = self.config().exec_root.join("netns");
        let known: BTreeSet<String> = match self.store.containers() {
            Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing containers to sweep namespace files");
                return;
            }
        };
        let orphans: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !known.contains(e.file_name().to_string_lossy().as_ref()))
            .map(|e| e.path())
            .collect();
        for netns in orphans {
            tracing::warn!(netns = %netns.display(), "removing the network namespace of an unrecorded container");
            self.remove_netns_file(&netns);
        }
    }

    /// At start-up, after containers are restored: endpoints of containers
    /// that no longer run are released, then the firewall and the DNS
    /// configs are rebuilt from the database (never appended to).
    pub(crate) fn restore_networking(&self) {
        let running = self.running_container_ids();
        let stale: BTreeSet<String> = self
            .store
            .endpoints()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.container_id)
            .filter(|id| !running.contains(id))
            .collect();
        for id in stale {
            tracing::info!(container = %id, "releasing the network of a container that stopped while berthd was down");
            self.disconnect_container_networks(&id);
        }
        let _guard = self.networks.lock();
        self.sweep_netns_files();
        if let Err(e) = self.apply_firewall() {
            tracing::error!(error = %e.message, "rebuilding the firewall table");
        }
        for n in self.all_networks().unwrap_or_default() {
            if n.has_dns() {
                dns::refresh(self, &n);
            }
        }
    }
}

/// The kernel side of a removed container's networking, torn down when
/// dropped ([`Engine::remove_container_networks`]); its addresses are
/// handed out again after.
#[must_use = "dropping it tears the container's veths and namespace down"]
pub(crate) struct Teardown<'a> {
    engine: &'a Engine,
    id: String,
    endpoints: Option<Vec<EndpointRow>>,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        self.engine
            .delete_kernel_side(&self.id, self.endpoints.as_deref());
        self.engine.networks.end_release(&self.id);
    }
}

/// `--add-host NAME:ADDR` entries (docker's API form; `host-gateway`
/// stands for the default bridge's gateway).
fn extra_hosts(
    entries: &[String],
    gateway: Option<IpAddr>,
) -> Result<Vec<(String, String)>, ApiError> {
    entries
        .iter()
        .map(|e| {
            let (name, addr) = e.split_once(':').or_else(|| e.split_once('=')).ok_or_else(|| {
                ApiError::bad_request(format!("invalid extra host {e:?}: expected NAME:ADDRESS"))
            })?;
            let addr = if addr == "host-gateway" {
                gateway
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "host-gateway needs the default bridge network, which this daemon does not have",
                        )
                    })?
                    .to_string()
            } else {
                let a = addr.trim_start_matches('[').trim_end_matches(']');
                a.parse::<IpAddr>().map_err(|_| {
                    ApiError::bad_request(format!("invalid IP address in add-host: {addr:?}"))
                })?;
                a.to_string()
            };
            Ok((name.to_string(), addr))
        })
        .collect()
}

impl Engine {
    /// What the container's `/etc` files say, from its request and its
    /// networking.
    pub(crate) fn etc_input(
        &self,
        c: &Loaded,
        net: &NetSetup,
    ) -> Result<crate::containers::etc::EtcInput, ApiError> {
        let hc = c.config.create.host_config.clone().unwrap_or_default();
        let gateway = self.default_gateway();
        // Links' lines follow --add-host's, as docker's sandbox options.
        let mut extra = extra_hosts(&hc.extra_hosts.unwrap_or_default(), gateway)?;
        extra.extend(net.links.hosts.iter().cloned());
        // docker gives a host-network container the host's own hosts file,
        // unless --add-host asks for lines of its own.
        let host_hosts = matches!(mode(&c.config.create), Mode::Host) && extra.is_empty();
        Ok(crate::containers::etc::EtcInput {
            host_hosts,
            hostname: c.config.hostname.clone(),
            // Each address gets a hosts line, IPv6 ones too (docker's
            // getEtcHostsAddrs).
            addresses: net.addresses.clone(),
            extra_hosts: extra,
            dns_server: net.dns_server,
            dns: hc.dns.unwrap_or_default(),
            dns_search: hc.dns_search.unwrap_or_default(),
            dns_options: hc.dns_options.unwrap_or_default(),
            share_from: net.etc_from.as_ref().map(|id| self.container_paths(id).dir),
        })
    }
}

impl Engine {
    /// At create, docker's checks that need the daemon: the networks
    /// exist, the port keys parse.
    pub(crate) fn check_container_networks(
        &self,
        body: &ContainerCreateBody,
    ) -> Result<(), ApiError> {
        match mode(body) {
            // Checked at start, as docker does: a 404 from create would
            // make the CLI pull the image.
            Mode::Container(_) => {}
            Mode::Networks(list) => {
                for (name, _) in &list {
                    // A missing network too is found missing at start, as
                    // docker's create ignores it (its 404 here made the
                    // docker CLI try to pull the image).
                    let n = match self.network(name) {
                        Ok(n) => n,
                        Err(e) if e.status == 404 => continue,
                        Err(e) => return Err(e),
                    };
                    if n.row.bridge.is_none() && list.len() > 1 {
                        return Err(ApiError::bad_request(format!(
                            "container cannot be connected to network {} together with others",
                            n.row.name
                        )));
                    }
                }
            }
            Mode::Host | Mode::None => {}
        }
        // host, none and container:<id> take no other network: docker's
        // create refuses endpoints beside them (`--network none --network
        // host` ran with none alone).
        if !matches!(mode(body), Mode::Networks(_)) {
            let own = body
                .host_config
                .as_ref()
                .and_then(|h| h.network_mode.as_deref())
                .map(canonical)
                .unwrap_or_default();
            let mut names: Vec<String> = body
                .networking_config
                .as_ref()
                .and_then(|n| n.endpoints_config.as_ref())
                .map(|e| e.keys().map(|k| canonical(k).to_string()).collect())
                .unwrap_or_default();
            if names.iter().any(|n| *n != own) {
                names.sort();
                names.dedup();
                return Err(ApiError::bad_request(format!(
                    "Container cannot be connected to network endpoints: {}",
                    names.join(", ")
                )));
            }
        }
        self.check_legacy_links(body)?;
        for key in body
            .host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref())
            .into_iter()
            .flat_map(|m| m.keys())
        {
            ports::parse_port_key(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{format_mac, parse_mac};

    #[test]
    fn mac_addresses_are_six_pairs_of_hex_digits() {
        let mac = parse_mac("02:42:AC:11:00:0f").unwrap();
        assert_eq!(format_mac(mac), "02:42:ac:11:00:0f");
        assert_eq!(parse_mac("02-42-ac-11-00-0f"), Some(mac));
        // As Go's net.ParseMAC, which docker uses: no single digits, signs
        // or other lengths.
        for bad in [
            "2:42:ac:11:0:2",
            "+2:42:ac:11:00:02",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "02-42-ac-11-00-02x",
            "02:42-ac:11:00:02",
            "",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }
}
