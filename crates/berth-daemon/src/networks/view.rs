//! A container's networking as docker shows it: `NetworkSettings` in
//! inspect and list, and the `Ports` of `docker ps`.

use std::collections::BTreeMap;

use berth_store::{EndpointRow, PortBindingRow};
use serde_json::{json, Map, Value};

use super::attach::{configured_networks, container_mode, EndpointConfig, Mode};
use super::{Network, BRIDGE, HOST, NONE};
use crate::containers::Loaded;
use crate::engine::Engine;

/// What the views need, read once.
struct Facts {
    networks: Vec<Network>,
    endpoints: Vec<EndpointRow>,
    ports: Vec<PortBindingRow>,
}

/// A network's entry in `NetworkSettings.Networks`. `on_user_network`:
/// the container, when the network is a user-defined one. Connected to
/// it, docker shows its short id and hostname among the aliases (in every
/// API version berthd serves; dockerd leaves them out from 1.45) and the
/// endpoint's `DNSNames` (1.44).
fn endpoint_json(
    n: Option<&Network>,
    e: Option<&EndpointRow>,
    settings: Option<&Value>,
    on_user_network: Option<&Loaded>,
) -> Value {
    let config = e
        .map(|e| EndpointConfig::decode(&e.config))
        .unwrap_or_default();
    let pool_of = |a: std::net::IpAddr| {
        n.and_then(|n| n.config.subnets.iter().find(|s| s.subnet.contains(&a)))
    };
    let v4 = e.and_then(|e| e.ipv4);
    let v6 = e.and_then(|e| e.ipv6);
    // What the client asked for is echoed as given (docker keeps the
    // request's EndpointSettings and fills in the operational fields).
    let given = |key: &str| {
        settings
            .and_then(|s| s.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    // A configured MAC shows before the container runs, as docker's.
    let mac = match e {
        Some(_) => config.mac,
        None => given("MacAddress").as_str().unwrap_or_default().to_string(),
    };
    let connected = on_user_network.filter(|_| e.is_some());
    let aliases = match connected {
        None => given("Aliases"),
        Some(c) => {
            let aliases: Vec<String> = serde_json::from_value(given("Aliases")).unwrap_or_default();
            json!(super::dns::distinct(super::dns::aliases_with_own(
                c, &aliases
            )))
        }
    };
    let dns_names = connected.map(|c| super::dns::endpoint_names(c, &config.aliases));
    json!({
        "IPAMConfig": given("IPAMConfig"),
        "Links": given("Links"),
        "Aliases": aliases,
        "NetworkID": n.map(|n| n.row.id.clone()).unwrap_or_default(),
        "EndpointID": config.endpoint_id,
        "Gateway": v4.and_then(pool_of).map(|p| p.gateway.to_string()).unwrap_or_default(),
        "IPAddress": v4.map(|a| a.to_string()).unwrap_or_default(),
        "IPPrefixLen": v4.and_then(pool_of).map(|p| p.subnet.prefix_len()).unwrap_or(0),
        "IPv6Gateway": v6.and_then(pool_of).map(|p| p.gateway.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": v6.map(|a| a.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": v6.and_then(pool_of).map(|p| p.subnet.prefix_len()).unwrap_or(0),
        "MacAddress": mac,
        "DriverOpts": given("DriverOpts"),
        "DNSNames": dns_names,
    })
}

impl Engine {
    fn network_facts(&self) -> Facts {
        Facts {
            networks: self.all_networks().unwrap_or_default(),
            endpoints: self.store.endpoints().unwrap_or_default(),
            ports: self.store.port_bindings().unwrap_or_default(),
        }
    }

    /// `NetworkSettings.Networks`: every configured network, with the
    /// addresses of the running container's endpoints.
    fn networks_json(&self, c: &Loaded, facts: &Facts) -> Map<String, Value> {
        let settings: BTreeMap<String, Value> = c
            .config
            .create
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Map::new();
        for name in configured_networks(&c.config) {
            let n = facts
                .networks
                .iter()
                .find(|n| n.row.name == name || n.row.id == name);
            let e = n.and_then(|n| {
                facts
                    .endpoints
                    .iter()
                    .find(|e| e.container_id == c.id && e.network_id == n.row.id)
            });
            let key = n.map(|n| n.row.name.clone()).unwrap_or(name.clone());
            let s = settings
                .get(&name)
                .or_else(|| (name == BRIDGE).then(|| settings.get("default")).flatten());
            let user_defined =
                n.is_some_and(|n| ![BRIDGE, HOST, NONE].contains(&n.row.name.as_str()));
            out.insert(key, endpoint_json(n, e, s, user_defined.then_some(c)));
        }
        out
    }

    /// `NetworkSettings.Ports` of inspect: published ports with their host
    /// bindings, exposed ones with null (docker's shape), while running.
    fn ports_json(&self, c: &Loaded, facts: &Facts) -> Value {
        let mut ports: BTreeMap<String, Value> = BTreeMap::new();
        if !c.state.status.is_live() {
            return json!({});
        }
        for key in self.exposed_ports(c) {
            ports.insert(key, Value::Null);
        }
        for p in facts.ports.iter().filter(|p| p.container_id == c.id) {
            let key = format!("{}/{}", p.container_port, p.protocol);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            entry
                .as_array_mut()
                .expect("an array")
                .push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
        json!(ports)
    }

    pub(super) fn exposed_ports(&self, c: &Loaded) -> Vec<String> {
        let mut keys: Vec<String> = c.config.create.exposed_ports.clone().unwrap_or_default();
        if let Ok(image) = self.store.image(&c.image_id) {
            if let Ok(cfg) = crate::images::parse_image_config(&image) {
                keys.extend(
                    cfg.config
                        .and_then(|r| r.exposed_ports)
                        .unwrap_or_default()
                        .into_keys(),
                );
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Inspect's `NetworkSettings`.
    pub(crate) fn network_settings(&self, c: &Loaded) -> Value {
        let facts = self.network_facts();
        let networks = self.networks_json(c, &facts);
        let running = c.state.status.is_live();
        // docker repeats the default bridge's endpoint at the top level.
        let top = networks.get(BRIDGE).cloned().unwrap_or(json!({}));
        let field = |k: &str| top.get(k).cloned().unwrap_or(json!(""));
        let sandbox_key = match container_mode(&c.config) {
            Mode::Networks(_) if running => self.netns_path(&c.id).display().to_string(),
            _ => String::new(),
        };
        json!({
            "Bridge": "",
            "SandboxID": if running { c.id.clone() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": self.ports_json(c, &facts),
            "SandboxKey": sandbox_key,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": field("EndpointID"),
            "Gateway": field("Gateway"),
            "GlobalIPv6Address": field("GlobalIPv6Address"),
            "GlobalIPv6PrefixLen": top.get("GlobalIPv6PrefixLen").cloned().unwrap_or(json!(0)),
            "IPAddress": field("IPAddress"),
            "IPPrefixLen": top.get("IPPrefixLen").cloned().unwrap_or(json!(0)),
            "IPv6Gateway": field("IPv6Gateway"),
            "MacAddress": field("MacAddress"),
            "Networks": networks,
        })
    }

    /// `docker ps`'s `Ports` and `NetworkSettings` of one container.
    pub(crate) fn network_summary(&self, c: &Loaded) -> (Value, Value) {
        let facts = self.network_facts();
        let mut ports = Vec::new();
        let mut published = std::collections::BTreeSet::new();
        for p in facts.ports.iter().filter(|p| p.container_id == c.id) {
            published.insert(format!("{}/{}", p.container_port, p.protocol));
            ports.push(json!({"IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.protocol}));
        }
        if c.state.status.is_live() {
            for key in self.exposed_ports(c) {
                if published.contains(&key) {
                    continue;
                }
                if let Ok((port, proto)) = super::ports::parse_port_key(&key) {
                    ports.push(json!({"PrivatePort": port, "Type": proto}));
                }
            }
        }
        (
            json!(ports),
            json!({"Networks": self.networks_json(c, &facts)}),
        )
    }
}
