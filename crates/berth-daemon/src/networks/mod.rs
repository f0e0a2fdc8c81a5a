//! Networks: docker's `bridge`, `host` and `none` networks and
//! user-defined bridge networks, over berth-net (netlink, IPAM, nftables)
//! and berth-dns.
//!
//! The database is the truth: `networks` rows (with [`NetworkConfig`] as
//! their JSON), `endpoints` of running containers (their addresses: IPAM's
//! leases) and `port_bindings` (host ports held). The kernel is made to
//! match it: bridges when a network is created and at start-up, a netns
//! file and veths when a container starts ([`attach`]), the one nftables
//! table rebuilt whole from the database ([`firewall`]) after every
//! change, and one DNS config per user-defined network for `berth-dns`.
//! All of that lives in the kernel or in other processes, so published
//! ports and names keep answering while berthd is down.

pub(crate) mod attach;
mod config;
mod connect;
mod dns;
mod firewall;
mod forwarding;
mod links;
pub(crate) mod ports;
mod view;
mod wire;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_api::models::NetworkCreateRequest;
use berth_api::Filters;
use berth_store::{EndpointRow, NetworkRow};

pub(crate) use config::NetworkConfig;

use crate::engine::Engine;
use crate::error::ApiError;

/// Docker's names of the predefined networks.
pub(crate) const BRIDGE: &str = "bridge";
pub(crate) const HOST: &str = "host";
pub(crate) const NONE: &str = "none";

/// The in-memory side of networking: one lock that serialises address
/// and port allocation with the firewall and DNS updates that follow.
#[derive(Debug, Default)]
pub struct Networks {
    lock: Mutex<()>,
    /// Endpoints of removed containers whose veths the kernel is still
    /// deleting (a removal's teardown runs after its waiters are told, and
    /// without the lock): their addresses are not handed out again until
    /// no interface holds them.
    releasing: Mutex<Vec<EndpointRow>>,
    released: Condvar,
    /// A network namespace made ahead for the next start.
    pub(crate) spare_netns: Arc<berth_net::netns::Spare>,
}

/// How long a start that asks for an address being released waits for it.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

impl Networks {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn releasing_rows(&self) -> MutexGuard<'_, Vec<EndpointRow>> {
        self.releasing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoints being released, to count as taken.
    pub(crate) fn releasing(&self) -> Vec<EndpointRow> {
        self.releasing_rows().clone()
    }

    pub(crate) fn begin_release(&self, rows: &[EndpointRow]) {
        self.releasing_rows().extend_from_slice(rows);
    }

    pub(crate) fn end_release(&self, container_id: &str) {
        self.releasing_rows()
            .retain(|e| e.container_id != container_id);
        self.released.notify_all();
    }

    /// Waits (at most [`RELEASE_WAIT`]) until no endpoint being released
    /// holds `addr`: a start asking for the address of a container just
    /// removed (`run --rm --ip A` twice) gets it once the old veth is gone.
    pub(crate) fn wait_released(&self, addr: IpAddr) {
        let deadline = Instant::now() + RELEASE_WAIT;
        let mut rows = self.releasing_rows();
        while rows
            .iter()
            .any(|e| e.ipv4 == Some(addr) || e.ipv6 == Some(addr))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            rows = self
                .released
                .wait_timeout(rows, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A network as the daemon works with it: the row and its parsed config.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub row: NetworkRow,
    pub config: NetworkConfig,
}

impl Network {
    pub(crate) fn from_row(row: NetworkRow) -> Result<Network, ApiError> {
        let config = serde_json::from_slice(&row.config).map_err(|e| {
            ApiError::new(
                berth_errdefs::ErrorKind::DataLoss,
                format!(
                    "the stored config of network {} is unreadable: {e}",
                    row.name
                ),
            )
        })?;
        Ok(Network { row, config })
    }

    /// Whether containers on it get berth's DNS (user-defined bridges;
    /// docker's default bridge has none).
    pub(crate) fn has_dns(&self) -> bool {
        self.row.bridge.is_some() && !self.config.default_bridge
    }
}

fn now_nanos() -> i64 {
    crate::events::now_nanos() as i64
}

fn random_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).map_err(|e| {
        ApiError::new(
            berth_errdefs::ErrorKind::Internal,
            format!("getrandom: {e}"),
        )
    })?;
    Ok(hex_string(&bytes))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Engine {
    pub(crate) fn network(&self, name: &str) -> Result<Network, ApiError> {
        Network::from_row(self.store.resolve_network(name)?)
    }

    pub(crate) fn all_networks(&self) -> Result<Vec<Network>, ApiError> {
        self.store
            .networks()?
            .into_iter()
            .map(Network::from_row)
            .collect()
    }

    /// At start-up: the predefined networks exist in the database, and
    /// every bridge network's Linux bridge exists with its addresses (after
    /// a reboot they are gone; after a daemon restart they are kept).
    pub(crate) fn ensure_networks(&self) -> Result<(), ApiError> {
        let _guard = self.networks.lock();
        let existing = self.all_networks()?;
        let has = |name: &str| existing.iter().any(|n| n.row.name == name);
        for (name, driver) in [(HOST, "host"), (NONE, "null")] {
            if !has(name) {
                self.store.insert_network(&NetworkRow {
                    id: random_id()?,
                    name: name.into(),
                    driver: driver.into(),
                    bridge: None,
                    created_at: now_nanos(),
                    config: serde_json::to_vec(&NetworkConfig::predefined())
                        .expect("network config serialises"),
                })?;
            }
        }
        let settings = self.config();
        self.ensure_forwarding(existing.iter().any(|n| n.config.enable_ipv6))?;
        if settings.bridge != "none" && !has(BRIDGE) {
            let taken = self.taken_subnets(&existing)?;
            // As dockerd with an existing docker0: a bridge that already
            // has an address (a data root started afresh, or made by hand)
            // keeps it rather than gaining another range at every start.
            let mut settings = settings.clone();
            if settings.bip.is_empty() {
                let kept = berth_net::link::link_ipv4_addresses(&settings.bridge)
                    .map_err(ApiError::from)?;
                if let Some(addr) = kept.first() {
                    settings.bip = addr.to_string();
                }
            }
            let config = NetworkConfig::default_bridge(&settings, &taken)?;
            self.store.insert_network(&NetworkRow {
                id: random_id()?,
                name: BRIDGE.into(),
                driver: "bridge".into(),
                bridge: Some(settings.bridge.clone()),
                created_at: now_nanos(),
                config: serde_json::to_vec(&config).expect("network config serialises"),
            })?;
        }
        for n in self.all_networks()? {
            if n.row.bridge.is_some() {
                attach::ensure_bridge(&n, settings.mtu)?;
            }
        }
        Ok(())
    }

    /// Subnets in use: the host's own networks and every berth network's.
    fn taken_subnets(&self, existing: &[Network]) -> Result<Vec<ipnet::IpNet>, ApiError> {
        let mut taken = berth_net::link::host_networks().map_err(ApiError::from)?;
        taken.extend(
            existing
                .iter()
                .flat_map(|n| n.config.subnets.iter().map(|s| s.subnet)),
        );
        Ok(taken)
    }

    /// `POST /networks/create`.
    pub fn create_network(&self, req: NetworkCreateRequest) -> Result<(String, String), ApiError> {
        config::check_name(&req.name)?;
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(ApiError::new(
                    berth_errdefs::ErrorKind::PermissionDenied,
                    format!("only one instance of \"{driver}\" network is allowed"),
                ))
            }
            "overlay" | "macvlan" | "ipvlan" => {
                return Err(ApiError::new(
                    berth_errdefs::ErrorKind::NotImplemented,
                    format!(
                    "network driver {driver:?} is not implemented by berthd; use the bridge driver"
                ),
                ))
            }
            other => return Err(ApiError::not_found(format!("plugin \"{other}\" not found"))),
        }
        if req.ingress.unwrap_or(false)
            || req.config_only.unwrap_or(false)
            || req.config_from.is_some()
        {
            return Err(ApiError::bad_request(
                "Ingress, ConfigOnly and ConfigFrom belong to swarm networks, which berthd does not have",
            ));
        }
        let _guard = self.networks.lock();
        let existing = self.all_networks()?;
        if existing.iter().any(|n| n.row.name == req.name) {
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::Conflict,
                format!("network with name {} already exists", req.name),
            ));
        }
        let id = random_id()?;
        let taken = self.taken_subnets(&existing)?;
        let config = NetworkConfig::from_request(&req, &taken)?;
        let bridge = config
            .options
            .get(config::BRIDGE_NAME_OPTION)
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        config::check_bridge_name(&bridge)?;
        let row = NetworkRow {
            id: id.clone(),
            name: req.name.clone(),
            driver,
            bridge: Some(bridge),
            created_at: now_nanos(),
            config: serde_json::to_vec(&config).expect("network config serialises"),
        };
        self.store.insert_network(&row)?;
        let network = Network { row, config };
        let made = attach::ensure_bridge(&network, self.config().mtu)
            .and_then(|()| self.apply_firewall())
            .and_then(|()| self.ensure_forwarding(network.config.enable_ipv6));
        if let Err(e) = made {
            let _ = self.store.delete_network(&id);
            if let Some(b) = &network.row.bridge {
                let _ = berth_net::link::delete_link(b);
            }
            return Err(e);
        }
        self.network_event("create", &network, &[]);
        Ok((id, String::new()))
    }

    /// `GET /networks`.
    pub fn list_networks(&self, filters: &Filters) -> Result<Vec<serde_json::Value>, ApiError> {
        filters.validate(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
        let endpoints = self.store.endpoints()?;
        let mut out = Vec::new();
        for n in self.all_networks()? {
            let used = endpoints.iter().any(|e| e.network_id == n.row.id);
            if wire::matches(&n, used, filters)? {
                out.push(wire::summary(&n));
            }
        }
        Ok(out)
    }

    /// `GET /networks/{id}`.
    pub fn inspect_network(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        let n = self.network(name)?;
        let mut containers = BTreeMap::new();
        for e in self
            .store
            .endpoints()?
            .into_iter()
            .filter(|e| e.network_id == n.row.id)
        {
            let Ok(c) = self.store.container(&e.container_id) else {
                continue;
            };
            containers.insert(
                e.container_id.clone(),
                wire::endpoint_resource(&c.name, &n, &e),
            );
        }
        Ok(wire::inspect(&n, containers))
    }

    /// `DELETE /networks/{id}`.
    pub fn remove_network(&self, name: &str) -> Result<(), ApiError> {
        let n = self.network(name)?;
        if n.row.bridge.is_none() || n.config.default_bridge {
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::PermissionDenied,
                format!(
                    "{} is a pre-defined network and cannot be removed",
                    n.row.name
                ),
            ));
        }
        let _guard = self.networks.lock();
        self.store.delete_network(&n.row.id)?;
        if let Some(bridge) = &n.row.bridge {
            if let Err(e) = berth_net::link::delete_link(bridge) {
                tracing::warn!(network = %n.row.name, bridge, error = %e, "removing the bridge");
            }
        }
        if n.has_dns() {
            dns::forget(self, &n);
        }
        self.apply_firewall()?;
        self.network_event("destroy", &n, &[]);
        Ok(())
    }

    /// `POST /networks/prune`: user-defined networks without endpoints,
    /// as docker's `len(nw.Endpoints()) > 0` check: a network only
    /// stopped containers name goes too (they then fail to start with
    /// "network ... not found", as with docker and `network rm`).
    pub fn prune_networks(&self, filters: &Filters) -> Result<Vec<String>, ApiError> {
        filters.validate(&["label", "label!", "until"])?;
        // Refused even when there is nothing to prune, as docker does.
        for u in filters.get("until") {
            crate::events::until_limit(u)?;
        }
        let used: std::collections::HashSet<String> = self
            .store
            .endpoints()?
            .into_iter()
            .map(|e| e.network_id)
            .collect();
        let mut deleted = Vec::new();
        for n in self.all_networks()? {
            if n.row.bridge.is_none() || n.config.default_bridge {
                continue;
            }
            if used.contains(&n.row.id) || !wire::prune_matches(&n, filters)? {
                continue;
            }
            match self.remove_network(&n.row.id) {
                Ok(()) => deleted.push(n.row.name.clone()),
                Err(e) => tracing::warn!(network = %n.row.name, error = %e.message, "prune"),
            }
        }
        Ok(deleted)
    }

    /// docker's network `connect`/`disconnect` events for every network a
    /// container joins at its start and leaves at its exit (`none` and
    /// `host` too; a `container:` mode joins none of its own).
    pub(crate) fn container_network_events(&self, c: &crate::containers::Loaded, action: &str) {
        for name in attach::configured_networks(&c.config) {
            if let Ok(n) = self.network(&name) {
                self.network_event(action, &n, &[("container", c.id.clone())]);
            }
        }
    }

    pub(crate) fn network_event(&self, action: &str, n: &Network, extra: &[(&str, String)]) {
        let mut attributes = vec![
            ("name".to_string(), n.row.name.clone()),
            ("type".to_string(), n.row.driver.clone()),
        ];
        attributes.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events
            .emit_with("network", action, &n.row.id, attributes);
    }

    /// docker's `--ip-forward`: IPv4 forwarding on, and IPv6 forwarding
    /// when a network has IPv6 (docker's setupIPv6Forwarding); what was
    /// off is recorded so that [`Engine::release_forwarding`] can restore
    /// it (see `forwarding` for who restores it when).
    fn ensure_forwarding(&self, ipv6: bool) -> Result<(), ApiError> {
        let settings = self.config();
        if !settings.ip_forward {
            return Ok(());
        }
        let record = forwarding::Record::lock(std::path::Path::new(forwarding::RECORD_DIR))
            .map_err(|e| {
                ApiError::internal(format!(
                    "locking the IP forwarding record in {}: {e}",
                    forwarding::RECORD_DIR
                ))
            })?;
        let was = berth_net::link::enable_ip_forward(ipv6).map_err(ApiError::from)?;
        let mut turned = Vec::new();
        if !was.ipv4 {
            turned.push("ipv4");
        }
        if was.ipv6 == Some(false) {
            turned.push("ipv6");
        }
        if !turned.is_empty() {
            tracing::info!(?turned, "turned IP forwarding on");
        }
        record.acquire(&settings.exec_root, &turned).map_err(|e| {
            ApiError::internal(format!(
                "recording IP forwarding in {}: {e}",
                forwarding::RECORD_DIR
            ))
        })
    }

    /// At shutdown: berth-dns stops serving the user networks no
    /// container is on (and exits if that is all of them).
    pub fn release_idle_dns(&self) {
        let _guard = self.networks.lock();
        match self.all_networks() {
            Ok(networks) => dns::release_idle(self, &networks),
            Err(e) => {
                tracing::warn!(error = %e.message, "listing networks to stop serving idle ones")
            }
        }
    }

    /// At shutdown: unless one of this daemon's containers still runs
    /// (they outlive it and need forwarding), the daemon stops relying on
    /// IP forwarding, and the last berth daemon to do so turns off what
    /// berth turned on. Forwarding that was on before berth stays on.
    pub fn release_forwarding(&self) {
        let settings = self.config();
        if !settings.ip_forward || !self.running_container_ids().is_empty() {
            return;
        }
        let released = forwarding::Record::lock(std::path::Path::new(forwarding::RECORD_DIR))
            .and_then(|r| r.release(&settings.exec_root));
        let turned = match released {
            Ok(turned) => turned,
            Err(e) => {
                tracing::warn!(error = %e, "releasing the IP forwarding record");
                return;
            }
        };
        let previous = berth_net::link::PreviousForwarding {
            ipv4: !turned.contains("ipv4"),
            ipv6: Some(!turned.contains("ipv6")),
        };
        match berth_net::link::restore_ip_forward(previous) {
            Ok(()) if !turned.is_empty() => {
                tracing::info!(?turned, "turned IP forwarding back off")
            }
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "turning IP forwarding back off"),
        }
    }

    /// Ids of the containers that run (or are paused or restarting).
    pub(crate) fn running_container_ids(&self) -> std::collections::BTreeSet<String> {
        self.store
            .containers()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|row| crate::containers::Loaded::from_row(row).ok())
            .filter(|c| {
                matches!(
                    c.state.status,
                    crate::containers::Status::Running
                        | crate::containers::Status::Paused
                        | crate::containers::Status::Restarting
                )
            })
            .map(|c| c.id)
            .collect()
    }

    /// Makes the kernel's nftables table match the database.
    pub(crate) fn apply_firewall(&self) -> Result<(), ApiError> {
        firewall::apply(self)
    }

    /// The host's address of a network's gateway, for `host-gateway` in
    /// `--add-host`.
    pub(crate) fn default_gateway(&self) -> Option<IpAddr> {
        let n = self.network(BRIDGE).ok()?;
        n.config
            .subnets
            .iter()
            .map(|s| s.gateway)
            .find(IpAddr::is_ipv4)
    }
}
