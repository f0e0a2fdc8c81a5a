//! docker's links. On the default bridge, legacy links
//! (`HostConfig.Links`, "name:alias"): the linked container (the child)
//! must exist at create and run at start; the container gets a hosts line
//! for the child (alias, hostname, name) and docker's `<ALIAS>_...`
//! environment (ports, name, the child's env); inspect shows them as
//! "/child:/parent/alias"; `DELETE /containers/parent/alias?link=1`
//! removes one. On a user-defined network, `EndpointSettings.Links` are
//! aliases only this container resolves, by DNS (berth-dns).
//!
//! Unlike docker, a legacy link names its child by name, not id: a child
//! renamed after the link is made is no longer found.

use std::collections::BTreeMap;

use berth_api::models::ContainerCreateBody;

use super::attach::{mode, Mode};
use super::BRIDGE;
use crate::containers::{Loaded, Status};
use crate::engine::Engine;
use crate::error::ApiError;

/// docker's ParseLink: "name:alias", or "name" (its own alias); the form
/// inspect shows ("/name:/parent/alias") reads back as the same link.
pub(crate) fn parse_link(value: &str) -> Result<(String, String), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request("empty string specified for links"));
    }
    let parts: Vec<&str> = value.split(':').collect();
    match parts.as_slice() {
        [name] => Ok((name.to_string(), name.to_string())),
        [name, alias] if name.starts_with('/') => {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            Ok((name[1..].to_string(), alias.to_string()))
        }
        [name, alias] if !name.is_empty() && !alias.is_empty() => {
            Ok((name.to_string(), alias.to_string()))
        }
        _ => Err(ApiError::bad_request(format!(
            "bad format for links: {value}: give NAME:ALIAS"
        ))),
    }
}

/// An endpoint's `Links` on a user-defined network: alias -> name.
pub(super) fn endpoint_links(links: &[String]) -> Result<BTreeMap<String, String>, ApiError> {
    links
        .iter()
        .map(|l| parse_link(l).map(|(name, alias)| (alias, name)))
        .collect()
}

/// Whether the request's legacy links apply: docker registers them unless
/// NetworkMode is a user-defined network (or the host's, refused earlier).
fn legacy_links_apply(body: &ContainerCreateBody) -> bool {
    matches!(mode(body), Mode::Networks(list) if list.first().is_some_and(|(n, _)| n == BRIDGE))
}

/// The request's legacy links as (child name, alias), later ones winning
/// an alias.
fn legacy_links(body: &ContainerCreateBody) -> Result<Vec<(String, String)>, ApiError> {
    if !legacy_links_apply(body) {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for l in body
        .host_config
        .as_ref()
        .and_then(|h| h.links.as_deref())
        .unwrap_or_default()
    {
        let (name, alias) = parse_link(l)?;
        out.retain(|(_, a)| *a != alias);
        out.push((name, alias));
    }
    Ok(out)
}

/// What a container's legacy links give it at start.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkSetup {
    /// hosts lines as (names, address).
    pub hosts: Vec<(String, String)>,
    /// docker's `<ALIAS>_...` variables.
    pub env: Vec<String>,
}

/// docker's variables for one link: the child's exposed ports (the
/// lowest, tcp first, also as `<ALIAS>_PORT`), the link's name and the
/// child's environment but HOME and PATH. (docker also adds `_START`/
/// `_END` variables for runs of consecutive ports; berth does not.)
fn link_env(
    alias: &str,
    link_name: &str,
    ip: &str,
    ports: &[(u16, String)],
    child_env: &[String],
) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut env = Vec::new();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in ports {
        let var = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
        env.push(format!("{var}={proto}://{ip}:{port}"));
        env.push(format!("{var}_ADDR={ip}"));
        env.push(format!("{var}_PORT={port}"));
        env.push(format!("{var}_PROTO={proto}"));
    }
    env.push(format!("{prefix}_NAME={link_name}"));
    for e in child_env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            env.push(format!("{prefix}_ENV_{k}={v}"));
        }
    }
    env
}

fn conflict(msg: String) -> ApiError {
    ApiError::new(berth_errdefs::ErrorKind::Conflict, msg)
}

impl Engine {
    /// At create: each legacy link's child exists and does not use the
    /// host's network (following `container:` modes, as docker).
    pub(crate) fn check_legacy_links(&self, body: &ContainerCreateBody) -> Result<(), ApiError> {
        for (name, _) in legacy_links(body)? {
            let mut child = self.load_container(&name).map_err(|e| {
                if e.status == 404 {
                    // A 404 would make the CLI pull the image.
                    ApiError::bad_request(format!(
                        "could not get container for {name}: No such container: {name}"
                    ))
                } else {
                    e
                }
            })?;
            for _ in 0..16 {
                match mode(&child.config.create) {
                    Mode::Container(other) => match self.load_container(&other) {
                        Ok(c) => child = c,
                        Err(_) => break,
                    },
                    Mode::Host => return Err(ApiError::bad_request(
                        "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                    )),
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// At start: each linked child runs on the default bridge; its hosts
    /// line and variables.
    pub(crate) fn legacy_link_setup(&self, c: &Loaded) -> Result<LinkSetup, ApiError> {
        let mut setup = LinkSetup::default();
        let links = legacy_links(&c.config.create)?;
        if links.is_empty() {
            return Ok(setup);
        }
        let bridge = self.network(BRIDGE)?;
        let endpoints = self.store.endpoints()?;
        for (name, alias) in links {
            // A child removed since is no longer linked (docker drops the
            // link with the container).
            let Ok(child) = self.load_container(&name) else {
                continue;
            };
            let link_name = format!("/{}/{alias}", c.name);
            if !matches!(child.state.status, Status::Running | Status::Paused) {
                return Err(conflict(format!(
                    "Cannot link to a non running container: /{} AS {link_name}",
                    child.name
                )));
            }
            let Some(e) = endpoints
                .iter()
                .find(|e| e.container_id == child.id && e.network_id == bridge.row.id)
            else {
                return Err(conflict(format!(
                    "Cannot link to /{}, as it does not belong to the default network",
                    child.name
                )));
            };
            let mut names = format!("{alias} {}", child.config.hostname);
            if alias != child.name {
                names.push(' ');
                names.push_str(&child.name);
            }
            for a in [e.ipv4, e.ipv6].into_iter().flatten() {
                setup.hosts.push((names.clone(), a.to_string()));
            }
            let ip = e.ipv4.map(|a| a.to_string()).unwrap_or_default();
            let (env, ports) = self.child_env_and_ports(&child);
            setup
                .env
                .extend(link_env(&alias, &link_name, &ip, &ports, &env));
        }
        Ok(setup)
    }

    /// The child's environment (its request's over its image's) and its
    /// exposed and published ports, sorted as docker's links sort them.
    fn child_env_and_ports(&self, child: &Loaded) -> (Vec<String>, Vec<(u16, String)>) {
        let image_env = self
            .store
            .image(&child.image_id)
            .ok()
            .and_then(|i| crate::images::parse_image_config(&i).ok())
            .and_then(|cfg| cfg.config.and_then(|r| r.env))
            .unwrap_or_default();
        let env = crate::spec::env::merge_env(
            child.config.create.env.as_deref().unwrap_or_default(),
            &image_env,
        );
        let mut keys = self.exposed_ports(child);
        if let Some(bindings) = child
            .config
            .create
            .host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref())
        {
            keys.extend(bindings.keys().cloned());
        }
        let mut ports: Vec<(u16, String)> = keys
            .iter()
            .filter_map(|k| super::ports::parse_port_key(k).ok())
            .collect();
        ports.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| (a.1 != "tcp").cmp(&(b.1 != "tcp")))
        });
        ports.dedup();
        (env, ports)
    }

    /// Inspect's `HostConfig.Links`: "/child:/parent/alias" for each
    /// legacy link whose child still exists; null when none.
    pub(crate) fn links_json(&self, c: &Loaded) -> serde_json::Value {
        let links: Vec<String> = legacy_links(&c.config.create)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, alias)| {
                let child = self.load_container(&name).ok()?;
                Some(format!("/{}:/{}/{alias}", child.name, c.name))
            })
            .collect();
        if links.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(links)
        }
    }

    /// `DELETE /containers/{parent}/{alias}?link=1`: the parent's legacy
    /// link goes (its running process keeps what it was given at start,
    /// as with docker).
    pub fn remove_link(&self, name: &str) -> Result<(), ApiError> {
        let name = name.trim_start_matches('/');
        let Some((parent, alias)) = name.rsplit_once('/') else {
            return Err(conflict(
                "Conflict, cannot remove the default link name of the container".into(),
            ));
        };
        let c = self.load_container(parent).map_err(|e| {
            if e.status == 404 {
                ApiError::not_found(format!("No such container: {name}"))
            } else {
                e
            }
        })?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let mut c = self.reload_container(&c.id)?;
        let links = legacy_links(&c.config.create)?;
        if !links.iter().any(|(_, a)| a == alias) {
            return Err(ApiError::not_found(format!("No such container: {name}")));
        }
        let kept: Vec<String> = links
            .into_iter()
            .filter(|(_, a)| a != alias)
            .map(|(n, a)| format!("{n}:{a}"))
            .collect();
        let hc = c
            .config
            .create
            .host_config
            .get_or_insert_with(Default::default);
        hc.links = (!kept.is_empty()).then_some(kept);
        self.store
            .set_container_config(&c.id, &crate::containers::encode(&c.config))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_as_docker_does() {
        assert_eq!(parse_link("db:d").unwrap(), ("db".into(), "d".into()));
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse_link("/db:/web/d").unwrap(), ("db".into(), "d".into()));
        assert!(parse_link("").is_err());
        assert!(parse_link("a:b:c").is_err());
        assert!(parse_link(":b").is_err());
    }

    #[test]
    fn variables_follow_docker() {
        let env = link_env(
            "my-db",
            "/web/my-db",
            "172.17.0.3",
            &[(5432, "tcp".into()), (5432, "udp".into())],
            &["PATH=/bin".into(), "FOO=1".into(), "HOME=/root".into()],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=tcp://172.17.0.3:5432",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.3",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_PORT_5432_UDP=udp://172.17.0.3:5432",
                "MY_DB_PORT_5432_UDP_ADDR=172.17.0.3",
                "MY_DB_PORT_5432_UDP_PORT=5432",
                "MY_DB_PORT_5432_UDP_PROTO=udp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_FOO=1",
            ]
        );
    }
}
