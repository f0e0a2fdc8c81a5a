//! HostConfig.Sysctls, and the network sysctls docker sets by default.
//!
//! Only namespaced sysctls are accepted, and only when the container has
//! the namespace of its own (the subset runc and the docker CLI allow):
//! the IPC ones (`kernel.msg*`, `kernel.sem`, `kernel.shm*`,
//! `fs.mqueue.*`) need a private IPC namespace, `net.*` a private network
//! namespace. Everything else would change the host and is refused here,
//! at create time, rather than by the runtime at start.

use std::collections::BTreeMap;

use berth_api::models::HostConfig;
use berth_sys::sysctl::{self, Scope};

use super::host::Host;
use super::plan::IpcMode;
use super::SpecError;

fn check(key: &str, net_private: bool, ipc: IpcMode) -> Result<(), SpecError> {
    if !sysctl::is_valid_name(key) {
        return Err(SpecError::invalid(format!("invalid sysctl name '{key}'")));
    }
    match sysctl::scope(key) {
        Scope::Ipc if ipc == IpcMode::Host => Err(SpecError::invalid(format!(
            "sysctl '{key}' is not allowed in the host's IPC namespace"
        ))),
        Scope::Network if !net_private => Err(SpecError::invalid(format!(
            "sysctl '{key}' is not allowed in the host's network namespace"
        ))),
        Scope::Ipc | Scope::Network => Ok(()),
        Scope::Uts => Err(SpecError::invalid(format!(
            "sysctl '{key}' is not allowed: use Hostname or Domainname"
        ))),
        Scope::Host => Err(SpecError::invalid(format!(
            "sysctl '{key}' is not allowed: it is not namespaced and would change the host"
        ))),
    }
}

/// The container's sysctls: docker's defaults for a new network namespace
/// (unprivileged ICMP sockets and ports), then the request's.
pub(crate) fn sysctls(
    hc: &HostConfig,
    net_private: bool,
    ipc: IpcMode,
    host: &Host,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    if net_private {
        if host.ping_group_range {
            out.insert(
                "net.ipv4.ping_group_range".to_string(),
                "0 2147483647".to_string(),
            );
        }
        if host.unprivileged_port_start {
            out.insert(
                "net.ipv4.ip_unprivileged_port_start".to_string(),
                "0".to_string(),
            );
        }
    }
    let mut keys: Vec<(&String, &String)> = hc.sysctls.iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        check(k, net_private, ipc)?;
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hc(pairs: &[(&str, &str)]) -> HostConfig {
        HostConfig {
            sysctls: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let host = Host::fixed();
        let out = sysctls(&hc(&[]), true, IpcMode::Private, &host).unwrap();
        assert_eq!(out["net.ipv4.ping_group_range"], "0 2147483647");
        assert_eq!(out["net.ipv4.ip_unprivileged_port_start"], "0");
        let out = sysctls(
            &hc(&[
                ("net.ipv4.ip_unprivileged_port_start", "1024"),
                ("kernel.shmmax", "1"),
            ]),
            true,
            IpcMode::Private,
            &host,
        )
        .unwrap();
        assert_eq!(out["net.ipv4.ip_unprivileged_port_start"], "1024");
        assert_eq!(out["kernel.shmmax"], "1");
        // No defaults without a network namespace of the container's own.
        let out = sysctls(&hc(&[]), false, IpcMode::Private, &host).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn host_changing_sysctls_are_refused() {
        let host = Host::fixed();
        let err = |pairs: &[(&str, &str)], net: bool, ipc: IpcMode| {
            sysctls(&hc(pairs), net, ipc, &host)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("net.ipv4.ip_forward", "1")], false, IpcMode::Private),
            "sysctl 'net.ipv4.ip_forward' is not allowed in the host's network namespace"
        );
        assert_eq!(
            err(&[("fs.mqueue.msg_max", "1")], true, IpcMode::Host),
            "sysctl 'fs.mqueue.msg_max' is not allowed in the host's IPC namespace"
        );
        assert_eq!(
            err(&[("kernel.panic", "1")], true, IpcMode::Private),
            "sysctl 'kernel.panic' is not allowed: it is not namespaced and would change the host"
        );
        assert_eq!(
            err(&[("vm.swappiness", "1")], true, IpcMode::Private),
            "sysctl 'vm.swappiness' is not allowed: it is not namespaced and would change the host"
        );
        assert!(err(&[("kernel.hostname", "x")], true, IpcMode::Private).contains("Hostname"));
        assert!(err(&[("net/../x", "1")], true, IpcMode::Private).contains("invalid sysctl name"));
    }
}
