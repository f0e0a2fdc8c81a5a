//! `network connect` and `network disconnect`: the container's configured
//! networks change (its create request's `EndpointsConfig`, so a restart
//! keeps them), and a running container gets or loses the endpoint now.

use berth_api::models::{NetworkConnectRequest, NetworkDisconnectRequest, NetworkingConfig};

use super::attach::{container_mode, is_mode_network, Mode};
use super::Network;
use crate::containers::Loaded;
use crate::engine::Engine;
use crate::error::ApiError;

fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError::new(berth_errdefs::ErrorKind::PermissionDenied, msg)
}

/// The container may join or leave bridge networks only.
fn check_modes(c: &Loaded, n: &Network) -> Result<(), ApiError> {
    if n.row.bridge.is_none() {
        return Err(forbidden(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    match container_mode(&c.config) {
        Mode::Networks(_) => Ok(()),
        Mode::None => Err(forbidden(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        )),
        Mode::Host | Mode::Container(_) => Err(forbidden(
            "container sharing network namespace with another container or host cannot be connected to any other network",
        )),
    }
}

impl Engine {
    /// Whether `n` is the network the container's NetworkMode names.
    fn names_mode_network(&self, c: &Loaded, n: &Network) -> bool {
        let mode = c
            .config
            .create
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.clone())
            .unwrap_or_default();
        is_mode_network(&c.config.create, &n.row.name)
            || self
                .network(if mode.is_empty() { "bridge" } else { &mode })
                .is_ok_and(|m| m.row.id == n.row.id)
    }

    /// `POST /networks/{id}/connect`.
    pub fn connect_network(&self, name: &str, req: NetworkConnectRequest) -> Result<(), ApiError> {
        let n = self.network(name)?;
        let c = self.load_container(&req.container)?;
        check_modes(&c, &n)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let mut c = self.reload_container(&c.id)?;
        let Mode::Networks(list) = container_mode(&c.config) else {
            unreachable!("checked above");
        };
        if list
            .iter()
            .any(|(k, _)| self.network(k).is_ok_and(|m| m.row.id == n.row.id))
        {
            return Err(forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.row.name
            )));
        }
        let settings = req.endpoint_config.unwrap_or_default();
        if c.state.status.is_live() {
            self.hot_connect(&c, &n.row.name, &settings)?;
        }
        // Back on the network its NetworkMode names: that network is the
        // primary again, its settings under NetworkMode's own key.
        let mode_network = c.config.left_mode_network && self.names_mode_network(&c, &n);
        let key = match mode_network {
            true => c
                .config
                .create
                .host_config
                .as_ref()
                .and_then(|h| h.network_mode.clone())
                .unwrap_or_default(),
            false => n.row.name.clone(),
        };
        if mode_network {
            c.config.left_mode_network = false;
        }
        let networking = c
            .config
            .create
            .networking_config
            .get_or_insert_with(NetworkingConfig::default);
        networking
            .endpoints_config
            .get_or_insert_with(Default::default)
            .insert(key, settings);
        self.store
            .set_container_config(&c.id, &crate::containers::encode(&c.config))?;
        self.network_event("connect", &n, &[("container", c.id.clone())]);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect_network(
        &self,
        name: &str,
        req: NetworkDisconnectRequest,
    ) -> Result<(), ApiError> {
        let n = self.network(name)?;
        let c = self.load_container(&req.container)?;
        check_modes(&c, &n)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let mut c = self.reload_container(&c.id)?;
        let Mode::Networks(list) = container_mode(&c.config) else {
            unreachable!("checked above");
        };
        let Some(pos) = list
            .iter()
            .position(|(k, _)| self.network(k).is_ok_and(|m| m.row.id == n.row.id))
        else {
            return Err(forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.row.name
            )));
        };
        if c.state.status.is_live() {
            self.hot_disconnect(&c, &n)?;
        }
        let create = &mut c.config.create;
        if let Some(eps) = create
            .networking_config
            .as_mut()
            .and_then(|nc| nc.endpoints_config.as_mut())
        {
            eps.retain(|k, _| {
                self.network(k)
                    .map(|m| m.row.id != n.row.id)
                    .unwrap_or(true)
            });
            if n.config.default_bridge {
                eps.remove("default");
            }
        }
        if pos == 0 && !c.config.left_mode_network {
            // The network NetworkMode names goes: docker keeps NetworkMode
            // as created; the next network becomes the primary one, or the
            // container is left with loopback only (and may be connected
            // again).
            c.config.left_mode_network = true;
        }
        self.store
            .set_container_config(&c.id, &crate::containers::encode(&c.config))?;
        self.network_event("disconnect", &n, &[("container", c.id.clone())]);
        Ok(())
    }
}
