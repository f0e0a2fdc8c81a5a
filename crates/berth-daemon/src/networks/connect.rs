//! `network connect` and `network disconnect`: the container's configured
//! networks change (its create request's `EndpointsConfig`, so a restart
//! keeps them), and a running container gets or loses the endpoint now.

use berth_api::models::{NetworkConnectRequest, NetworkDisconnectRequest, NetworkingConfig};

use super::attach::{mode, Mode};
use super::{Network, BRIDGE};
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
    if !matches!(mode(&c.config.create), Mode::Networks(_)) {
        return Err(forbidden(
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ));
    }
    Ok(())
}

impl Engine {
    /// `POST /networks/{id}/connect`.
    pub fn connect_network(&self, name: &str, req: NetworkConnectRequest) -> Result<(), ApiError> {
        let n = self.network(name)?;
        let c = self.load_container(&req.container)?;
        check_modes(&c, &n)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let mut c = self.reload_container(&c.id)?;
        let Mode::Networks(list) = mode(&c.config.create) else {
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
        let networking = c
            .config
            .create
            .networking_config
            .get_or_insert_with(NetworkingConfig::default);
        networking
            .endpoints_config
            .get_or_insert_with(Default::default)
            .insert(n.row.name.clone(), settings);
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
        let Mode::Networks(list) = mode(&c.config.create) else {
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
        if pos == 0 {
            // The primary network goes: the next one takes its place, or
            // the container is left with loopback only.
            let next = list
                .get(1)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| "none".into());
            create
                .host_config
                .get_or_insert_with(Default::default)
                .network_mode = Some(if next == BRIDGE {
                "bridge".into()
            } else {
                next
            });
        }
        self.store
            .set_container_config(&c.id, &crate::containers::encode(&c.config))?;
        self.network_event("disconnect", &n, &[("container", c.id.clone())]);
        Ok(())
    }
}
