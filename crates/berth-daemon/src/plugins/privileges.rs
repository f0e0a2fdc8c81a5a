//! `GET /plugins/privileges?remote=NAME`: what installing the plugin
//! `NAME` would grant it (host networking, host paths and devices,
//! capabilities...), read from its config in the registry; nothing is
//! pulled or stored. `docker plugin install` shows these before it asks.
//!
//! As dockerd (moby's `Manager.Privileges`): when the manifest or the
//! config cannot be fetched or read, the answer is an empty list, not an
//! error; a manifest whose config is not a plugin's is an error.

use axum::http::HeaderMap;
use berth_image::Reference;
use berth_registry::ACCEPT_ALL;
use serde::Serialize;
use serde_json::Value;

use super::config::PluginConfig;
use crate::engine::Engine;
use crate::error::ApiError;

/// The config media type of a plugin's manifest.
const PLUGIN_CONFIG: &str = "application/vnd.docker.plugin.v1+json";

/// The largest plugin config read from a registry.
const MAX_CONFIG: u64 = 1 << 20;

/// One privilege, in docker's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Privilege {
    pub name: &'static str,
    pub description: &'static str,
    pub value: Vec<String>,
}

/// The privileges of the plugin `remote` names (a reference, `latest`
/// when untagged), asked of its registry with the request's credentials.
pub async fn privileges(
    engine: &Engine,
    headers: &HeaderMap,
    remote: &str,
) -> Result<Vec<Privilege>, ApiError> {
    if remote.is_empty() {
        return Err(ApiError::bad_request(
            "plugin privileges need the plugin's name (the remote query parameter)",
        ));
    }
    let reference = Reference::parse(remote)
        .map_err(|e| ApiError::bad_request(format!("invalid plugin name {remote:?}: {e}")))?
        .with_default_tag();
    let client = crate::http::client_for(engine, headers, reference.domain())?;
    match fetch_config(&client, &reference).await {
        Ok(Some(config)) => Ok(of_config(&config)),
        Ok(None) => Err(ApiError::bad_request(format!(
            "{remote} is not a plugin: its manifest's config is not {PLUGIN_CONFIG}"
        ))),
        Err(e) => {
            tracing::warn!(plugin = remote, error = %e, "fetching a plugin's config for its privileges; answering none, as dockerd");
            Ok(Vec::new())
        }
    }
}

/// The plugin config `reference` names in its registry; `None` when its
/// manifest's config is something else. Errors say what could not be
/// fetched or read.
async fn fetch_config(
    client: &berth_registry::Client,
    reference: &Reference,
) -> Result<Option<PluginConfig>, String> {
    let manifest = client
        .get_manifest(reference, ACCEPT_ALL)
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if body["config"]["mediaType"] != PLUGIN_CONFIG {
        return Ok(None);
    }
    let digest = crate::distribution::config_digest(&body)
        .ok_or("the manifest's config has no valid digest")?;
    let bytes = client
        .fetch_blob_bytes(reference, &digest, MAX_CONFIG)
        .await
        .map_err(|e| e.to_string())?;
    PluginConfig::parse(&bytes).map(Some)
}

/// What `config` asks of the host, in moby's order and words.
fn of_config(config: &PluginConfig) -> Vec<Privilege> {
    let mut out = Vec::new();
    let mut add = |name, description, value: Vec<String>| {
        out.push(Privilege {
            name,
            description,
            value,
        })
    };
    let network = config.network.kind.as_str();
    if !matches!(network, "" | "null" | "bridge") {
        add(
            "network",
            "permissions to access a network",
            vec![network.to_string()],
        );
    }
    let yes = || vec!["true".to_string()];
    if config.ipc_host {
        add(
            "host ipc namespace",
            "allow access to host ipc namespace",
            yes(),
        );
    }
    if config.pid_host {
        add(
            "host pid namespace",
            "allow access to host pid namespace",
            yes(),
        );
    }
    for source in config.mounts.iter().filter_map(|m| m.source.clone()) {
        add("mount", "host path to mount", vec![source]);
    }
    for path in config.linux.devices.iter().filter_map(|d| d.path.clone()) {
        add("device", "host device to access", vec![path]);
    }
    if config.linux.allow_all_devices {
        add(
            "allow-all-devices",
            "allow 'rwm' access to all devices",
            yes(),
        );
    }
    if !config.linux.capabilities.is_empty() {
        add(
            "capabilities",
            "list of additional capabilities required",
            config.linux.capabilities.clone(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_follow_the_config_in_dockers_order() {
        // As a registry holds it: Go's field names (any case is read).
        let config = PluginConfig::parse(
            br#"{"Description": "sshfs", "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": "s.sock"},
                "Network": {"Type": "host"}, "PidHost": true,
                "Mounts": [{"Source": "/var/lib/docker/plugins/", "Destination": "/mnt/state"}, {"Destination": "/tmp"}],
                "Linux": {"Capabilities": ["CAP_SYS_ADMIN"], "Devices": [{"Path": "/dev/fuse"}]}}"#,
        )
        .unwrap();
        let got: Vec<(&str, Vec<String>)> = of_config(&config)
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
        let s = |v: &str| vec![v.to_string()];
        assert_eq!(
            got,
            [
                ("network", s("host")),
                ("host pid namespace", s("true")),
                ("mount", s("/var/lib/docker/plugins/")),
                ("device", s("/dev/fuse")),
                ("capabilities", s("CAP_SYS_ADMIN")),
            ]
        );
        let json = serde_json::to_value(&of_config(&config)[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Name": "network", "Description": "permissions to access a network", "Value": ["host"]})
        );
    }

    #[test]
    fn a_plugin_that_asks_nothing_has_no_privileges() {
        let config = PluginConfig::parse(
            br#"{"interface": {"types": ["docker.volumedriver/1.0"]}, "network": {"type": "bridge"}, "linux": {"allowAllDevices": false}}"#,
        )
        .unwrap();
        assert_eq!(of_config(&config), []);
    }
}
