//! Networks in docker's JSON: `GET /networks`, `GET /networks/{id}`, and
//! the list and prune filters.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use berth_api::Filters;
use berth_store::EndpointRow;
use serde_json::{json, Value};

use super::attach::EndpointConfig;
use super::Network;
use crate::error::ApiError;

fn created(n: &Network) -> String {
    berth_image::time::rfc3339(UNIX_EPOCH + Duration::from_nanos(n.row.created_at.max(0) as u64))
}

fn ipam(n: &Network) -> Value {
    let config: Vec<Value> = n
        .config
        .subnets
        .iter()
        .map(|s| {
            let mut pool =
                json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()});
            if let Some(r) = s.ip_range {
                pool["IPRange"] = json!(r.to_string());
            }
            if !s.aux_addresses.is_empty() {
                pool["AuxiliaryAddresses"] = json!(s.aux_addresses);
            }
            pool
        })
        .collect();
    let options = (!n.config.ipam_options.is_empty()).then(|| json!(n.config.ipam_options));
    json!({"Driver": n.config.ipam_driver, "Options": options, "Config": config})
}

/// The network as `GET /networks` lists it (docker leaves `Containers`
/// empty there).
pub(super) fn summary(n: &Network) -> Value {
    inspect(n, BTreeMap::new())
}

/// `GET /networks/{id}`, in docker's key order.
pub(super) fn inspect(n: &Network, containers: BTreeMap<String, Value>) -> Value {
    json!({
        "Name": n.row.name,
        "Id": n.row.id,
        "Created": created(n),
        "Scope": "local",
        "Driver": n.row.driver,
        "EnableIPv6": n.config.enable_ipv6,
        "IPAM": ipam(n),
        "Internal": n.config.internal,
        "Attachable": n.config.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.config.options,
        "Labels": n.config.labels,
    })
}

/// One container of `GET /networks/{id}`'s `Containers`.
pub(super) fn endpoint_resource(name: &str, n: &Network, e: &EndpointRow) -> Value {
    let config = EndpointConfig::decode(&e.config);
    let prefixed = |addr: Option<std::net::IpAddr>| {
        addr.map(|a| {
            let prefix = n
                .config
                .subnets
                .iter()
                .find(|s| s.subnet.contains(&a))
                .map(|s| s.subnet.prefix_len())
                .unwrap_or(if a.is_ipv4() { 32 } else { 128 });
            format!("{a}/{prefix}")
        })
        .unwrap_or_default()
    };
    json!({
        "Name": name,
        "EndpointID": config.endpoint_id,
        "MacAddress": config.mac,
        "IPv4Address": prefixed(e.ipv4),
        "IPv6Address": prefixed(e.ipv6),
    })
}

/// The network's labels, as the filters take them.
fn label_pairs(n: &Network) -> impl Iterator<Item = (&str, &str)> {
    n.config
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// docker's network list filters. `used`: some running container is on it.
pub(super) fn matches(n: &Network, used: bool, filters: &Filters) -> Result<bool, ApiError> {
    let custom = n.row.bridge.is_some() && !n.config.default_bridge;
    let any = |key: &str, test: &dyn Fn(&str) -> bool| {
        let mut values = filters.get(key).peekable();
        values.peek().is_none() || values.any(test)
    };
    let ok = any("driver", &|d| d == n.row.driver)
        && any("id", &|p| n.row.id.starts_with(p))
        && any("name", &|p| n.row.name.contains(p))
        && any("scope", &|s| s == "local")
        && any("type", &|t| match t {
            "custom" => custom,
            "builtin" => !custom,
            _ => false,
        })
        && filters.labels_match("label", || label_pairs(n));
    if let Some(dangling) = filters.bool("dangling")? {
        return Ok(ok && custom && (dangling != used));
    }
    Ok(ok)
}

/// docker's prune filters: `label`, `label!`, `until`.
pub(super) fn prune_matches(n: &Network, filters: &Filters) -> Result<bool, ApiError> {
    let mut until_ok = true;
    for u in filters.get("until") {
        until_ok &= (n.row.created_at as i128) < crate::events::until_limit(u)?;
    }
    Ok(filters.prune_labels_match(|| label_pairs(n)) && until_ok)
}
