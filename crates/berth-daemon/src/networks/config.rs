//! A network's stored settings ([`NetworkConfig`], the `config` JSON of
//! its row), made from docker's create request with docker's checks.

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_api::models::NetworkCreateRequest;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::DaemonConfig;
use crate::error::ApiError;

/// docker's option naming a bridge network's Linux bridge.
pub(crate) const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";
const MASQUERADE_OPTION: &str = "com.docker.network.bridge.enable_ip_masquerade";
const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// Bridge options berthd honours; others are refused rather than ignored.
const KNOWN_OPTIONS: &[&str] = &[
    BRIDGE_NAME_OPTION,
    ICC_OPTION,
    MASQUERADE_OPTION,
    MTU_OPTION,
    "com.docker.network.bridge.host_binding_ipv4",
    "com.docker.network.bridge.default_bridge",
];

/// One IPAM pool of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Subnet {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    /// docker's AuxiliaryAddresses: named addresses of the subnet that
    /// IPAM never gives a container (devices already on the segment).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

impl Subnet {
    /// Addresses IPAM keeps out of its leases: the gateway and the
    /// auxiliary addresses.
    pub(crate) fn reserved(&self) -> std::collections::BTreeSet<IpAddr> {
        std::iter::once(self.gateway)
            .chain(self.aux_addresses.values().copied())
            .collect()
    }
}

/// What berthd keeps of a network besides its row's columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkConfig {
    pub ipam_driver: String,
    pub ipam_options: BTreeMap<String, String>,
    pub subnets: Vec<Subnet>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub internal: bool,
    pub enable_ipv6: bool,
    pub attachable: bool,
    /// docker's predefined `bridge` network: no DNS, no aliases, no
    /// user-chosen addresses.
    pub default_bridge: bool,
}

impl NetworkConfig {
    /// `host` and `none`.
    pub(crate) fn predefined() -> NetworkConfig {
        NetworkConfig {
            ipam_driver: "default".into(),
            ..NetworkConfig::default()
        }
    }

    /// docker's `bridge` network, from the daemon's `bip` or a free pool.
    pub(crate) fn default_bridge(
        settings: &DaemonConfig,
        taken: &[IpNet],
    ) -> Result<NetworkConfig, ApiError> {
        let subnet = if settings.bip.is_empty() {
            let net = berth_net::ipam::pick_subnet(taken).ok_or_else(|| {
                ApiError::new(
                    berth_errdefs::ErrorKind::FailedPrecondition,
                    "no free private subnet for the default bridge network: every default pool overlaps the host's networks; set one with --bip CIDR",
                )
            })?;
            let net = IpNet::V4(net);
            Subnet {
                subnet: net,
                gateway: berth_net::ipam::default_gateway(net),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            }
        } else {
            let with_host: IpNet = settings.bip.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid bip {:?}: give the bridge's address with its prefix, like 172.17.0.1/16",
                    settings.bip
                ))
            })?;
            Subnet {
                subnet: with_host.trunc(),
                gateway: with_host.addr(),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            }
        };
        tracing::info!(subnet = %subnet.subnet, bridge = %settings.bridge, "default bridge network");
        let options = [
            (
                "com.docker.network.bridge.default_bridge",
                "true".to_string(),
            ),
            (ICC_OPTION, "true".into()),
            (MASQUERADE_OPTION, "true".into()),
            (
                "com.docker.network.bridge.host_binding_ipv4",
                "0.0.0.0".into(),
            ),
            (BRIDGE_NAME_OPTION, settings.bridge.clone()),
            (MTU_OPTION, settings.mtu.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(NetworkConfig {
            ipam_driver: "default".into(),
            subnets: vec![subnet],
            options,
            default_bridge: true,
            ..NetworkConfig::default()
        })
    }

    /// A user-defined bridge network from docker's create request.
    pub(crate) fn from_request(
        req: &NetworkCreateRequest,
        taken: &[IpNet],
    ) -> Result<NetworkConfig, ApiError> {
        let options: BTreeMap<String, String> = req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if let Some(k) = options
            .keys()
            .find(|k| !KNOWN_OPTIONS.contains(&k.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "bridge network option {k:?} is not supported by berthd; it knows {}",
                KNOWN_OPTIONS.join(", ")
            )));
        }
        for key in [ICC_OPTION, MASQUERADE_OPTION] {
            if let Some(v) = options.get(key) {
                if v.parse::<bool>().is_err() {
                    return Err(ApiError::bad_request(format!(
                        "invalid value {v:?} for option {key}: expected true or false"
                    )));
                }
            }
        }
        if let Some(v) = options.get(MTU_OPTION) {
            if !v.parse::<u32>().is_ok_and(|m| (68..=65535).contains(&m)) {
                return Err(ApiError::bad_request(format!(
                    "invalid MTU {v:?}: give a number between 68 and 65535"
                )));
            }
        }
        let ipam = req.ipam.clone().unwrap_or_default();
        let ipam_driver = ipam
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "default".into());
        if ipam_driver != "default" {
            return Err(ApiError::not_found(format!(
                "plugin \"{ipam_driver}\" not found"
            )));
        }
        let enable_ipv6 = req.enable_ipv6.unwrap_or(false);
        let mut subnets = Vec::new();
        for pool in ipam.config.clone().unwrap_or_default() {
            let subnet: IpNet =
                match pool.subnet.as_deref().filter(|s| !s.is_empty()) {
                    Some(s) => s.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "invalid subnet {s}: expected CIDR notation like 10.1.0.0/16"
                        ))
                    })?,
                    None => return Err(ApiError::bad_request(
                        "an IPAM pool needs a subnet: give --subnet with --gateway or --ip-range",
                    )),
                };
            let parse_addr = |what: &str, v: Option<&str>| -> Result<Option<IpAddr>, ApiError> {
                v.filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse().map_err(|_| {
                            ApiError::bad_request(format!(
                                "invalid {what} {s}: expected an IP address"
                            ))
                        })
                    })
                    .transpose()
            };
            let gateway = parse_addr("gateway", pool.gateway.as_deref())?;
            let ip_range = pool
                .ip_range
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpNet>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "invalid ip-range {s}: expected CIDR notation"
                        ))
                    })
                })
                .transpose()?;
            berth_net::ipam::validate(subnet, gateway, ip_range).map_err(ApiError::from)?;
            let subnet = subnet.trunc();
            if subnet.addr().is_ipv6() && !enable_ipv6 {
                return Err(ApiError::bad_request(format!(
                    "subnet {subnet} is IPv6 but the network does not enable IPv6: add --ipv6"
                )));
            }
            if let Some(clash) = taken.iter().find(|t| overlaps(t, &subnet)) {
                return Err(ApiError::new(
                    berth_errdefs::ErrorKind::PermissionDenied,
                    format!("Pool overlaps with other one on this address space: {subnet} overlaps {clash}"),
                ));
            }
            let gateway = gateway.unwrap_or_else(|| berth_net::ipam::default_gateway(subnet));
            let aux_addresses = aux_addresses(
                &req.name,
                subnet,
                gateway,
                pool.auxiliary_addresses.as_ref(),
            )?;
            subnets.push(Subnet {
                subnet,
                gateway,
                ip_range,
                aux_addresses,
            });
        }
        if !subnets.iter().any(|s| s.subnet.addr().is_ipv4()) {
            let net = berth_net::ipam::pick_subnet(taken).ok_or_else(|| {
                ApiError::new(
                    berth_errdefs::ErrorKind::FailedPrecondition,
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network; give one with --subnet",
                )
            })?;
            let net = IpNet::V4(net);
            subnets.insert(
                0,
                Subnet {
                    subnet: net,
                    gateway: berth_net::ipam::default_gateway(net),
                    ip_range: None,
                    aux_addresses: BTreeMap::new(),
                },
            );
        }
        if enable_ipv6 && !subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
            let net = IpNet::V6(berth_net::ipam::ula_subnet());
            subnets.push(Subnet {
                subnet: net,
                gateway: berth_net::ipam::default_gateway(net),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            });
        }
        Ok(NetworkConfig {
            ipam_driver,
            ipam_options: ipam
                .options
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            subnets,
            options,
            labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
            internal: req.internal.unwrap_or(false),
            enable_ipv6,
            attachable: req.attachable.unwrap_or(false),
            default_bridge: false,
        })
    }

    /// Inter-container traffic on the bridge (docker's `enable_icc`).
    pub(crate) fn icc(&self) -> bool {
        self.options
            .get(ICC_OPTION)
            .map(|v| v != "false")
            .unwrap_or(true)
    }

    /// Masquerade of outbound traffic (docker's `enable_ip_masquerade`).
    pub(crate) fn masquerade(&self) -> bool {
        self.options
            .get(MASQUERADE_OPTION)
            .map(|v| v != "false")
            .unwrap_or(true)
    }

    pub(crate) fn mtu(&self) -> Option<u32> {
        self.options.get(MTU_OPTION).and_then(|v| v.parse().ok())
    }
}

/// A pool's AuxiliaryAddresses, with docker's checks: each parses and
/// lies in the pool's subnet, and none is the gateway or another's.
fn aux_addresses(
    network: &str,
    subnet: IpNet,
    gateway: IpAddr,
    given: Option<&std::collections::HashMap<String, String>>,
) -> Result<BTreeMap<String, IpAddr>, ApiError> {
    let mut out: BTreeMap<String, IpAddr> = BTreeMap::new();
    for (name, value) in given.into_iter().flatten() {
        let addr: IpAddr = value.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "non parsable secondary ip address ({name}:{value}) passed for network {network}"
            ))
        })?;
        if !subnet.contains(&addr) {
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::PermissionDenied,
                format!(
                    "auxiliary address: ({name}:{value}) must belong to the master pool: {subnet}"
                ),
            ));
        }
        if addr == gateway || out.values().any(|a| *a == addr) {
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::Conflict,
                format!("failed to allocate secondary ip address ({name}:{value}): Address already in use"),
            ));
        }
        out.insert(name.clone(), addr);
    }
    Ok(out)
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// docker 20.10's rules for a new network's name: not blank (libnetwork's
/// IsValidName; any other text, spaces included, is a name), and not one
/// of the predefined networks' names (a 403, also when that network does
/// not exist here, as with `-b none`).
pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "invalid name: {name}: give the network a name"
        )));
    }
    if matches!(name, "bridge" | "host" | "none" | "default" | "ingress") {
        return Err(ApiError::new(
            berth_errdefs::ErrorKind::PermissionDenied,
            format!("operation is not permitted on predefined {name} network "),
        ));
    }
    Ok(())
}

/// Linux interface names: 1 to 15 bytes, no `/`, spaces or `:`.
pub(crate) fn check_bridge_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if !ok {
        return Err(ApiError::bad_request(format!(
            "invalid bridge name {name:?}: a Linux interface name has 1 to 15 characters without '/', ':' or spaces"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("my-net_1.a").is_ok());
        assert!(check_name("test 01").is_ok());
        assert!(check_name(" ").is_err());
        assert!(check_name("").is_err());
        assert_eq!(check_name("bridge").unwrap_err().status, 403);
        assert!(check_bridge_name("br-0123456789ab").is_ok());
        assert!(check_bridge_name("br-0123456789abc").is_err());
    }

    #[test]
    fn subnets_and_options() {
        let mut req = NetworkCreateRequest {
            name: "n".into(),
            ..Default::default()
        };
        req.ipam = Some(berth_api::models::Ipam {
            config: Some(vec![berth_api::models::IpamConfig {
                subnet: Some("10.77.0.0/16".into()),
                gateway: Some("10.77.0.254".into()),
                ip_range: Some("10.77.1.0/24".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let c = NetworkConfig::from_request(&req, &[]).unwrap();
        assert_eq!(c.subnets[0].gateway.to_string(), "10.77.0.254");
        assert!(c.icc() && c.masquerade());
        let taken: Vec<IpNet> = vec!["10.77.5.0/24".parse().unwrap()];
        assert!(NetworkConfig::from_request(&req, &taken).is_err());
        req.options = Some([("foo".to_string(), "x".to_string())].into_iter().collect());
        assert!(NetworkConfig::from_request(&req, &[]).is_err());
    }
}
