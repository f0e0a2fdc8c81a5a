//! The engine: stores, registry client and configuration, shared by every
//! request.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_errdefs::{ErrorKind, HasKind};
use berth_image::{ContentError, ContentStore, LayerError, LayerStore};
use berth_registry::{Client, RegistryConfig, RegistryError};
use berth_store::{GcError, GcOptions, Store, StoreError};

use crate::config::DaemonConfig;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write the engine id {path}: {source}")]
    EngineId {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opening the image stores: {0}")]
    Store(#[from] StoreError),
    #[error("opening the image stores: {0}")]
    Content(#[from] ContentError),
    #[error("opening the image stores: {0}")]
    Layer(#[from] LayerError),
    #[error("start-up garbage collection: {0}")]
    Gc(#[from] GcError),
    #[error("registry settings: {0}")]
    Registry(String),
    #[error("setting up networking: {0}")]
    Network(String),
}

impl HasKind for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => e.kind(),
            EngineError::Content(e) => e.kind(),
            EngineError::Layer(e) => e.kind(),
            EngineError::Gc(e) => e.kind(),
            EngineError::Registry(_) => ErrorKind::InvalidArgument,
            EngineError::Network(_) => ErrorKind::Internal,
            EngineError::CreateDir { .. } | EngineError::EngineId { .. } => ErrorKind::Internal,
        }
    }
}

/// Everything a request may touch. Cheap to share (`Arc<Engine>`).
pub struct Engine {
    pub(crate) store: Arc<Store>,
    pub(crate) content: ContentStore,
    pub(crate) layers: LayerStore,
    registry: RwLock<Client>,
    config: RwLock<DaemonConfig>,
    pub(crate) id: String,
    pub(crate) events: crate::events::EventBus,
    pub(crate) containers: crate::containers::Containers,
    pub(crate) networks: crate::networks::Networks,
    /// Which running containers hold which volumes' devices.
    pub(crate) volumes: crate::volumes::Active,
    /// The async runtime the daemon serves on (absent in synchronous
    /// tests): attach and exec streams are copied on it.
    runtime: Option<tokio::runtime::Handle>,
    stopping: tokio::sync::watch::Sender<bool>,
    /// Exit and removal tails still running on monitor threads.
    pub(crate) inflight: crate::inflight::Inflight,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.id)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the stores under `data-root`, collects what an interrupted
    /// run left behind, and builds the registry client.
    pub fn open(config: DaemonConfig) -> Result<Arc<Engine>, EngineError> {
        for dir in [&config.data_root, &config.exec_root] {
            std::fs::create_dir_all(dir).map_err(|source| EngineError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        let store = Arc::new(Store::open(&config.data_root)?);
        let content = ContentStore::open(&config.data_root)?;
        let layers = LayerStore::open(&config.data_root)?;
        // Contexts of builds a kill interrupted (no build runs yet).
        let builds = crate::build::builds_dir(&config.data_root);
        if let Err(e) = std::fs::remove_dir_all(&builds) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %builds.display(), error = %e, "removing interrupted builds");
            }
        }
        // No request runs yet, so half-unpacked layers can go too.
        let report = store.gc(
            &content,
            &layers,
            &GcOptions {
                startup: true,
                ..GcOptions::default()
            },
        )?;
        tracing::debug!(?report, "start-up garbage collection");
        let id = engine_id(&config.data_root)?;
        let registry = registry_client(&config)?;
        let engine = Arc::new(Engine {
            store,
            content,
            layers,
            registry: RwLock::new(registry),
            config: RwLock::new(config),
            id,
            events: crate::events::EventBus::default(),
            containers: crate::containers::Containers::default(),
            networks: crate::networks::Networks::default(),
            volumes: crate::volumes::Active::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            stopping: tokio::sync::watch::channel(false).0,
            inflight: Default::default(),
        });
        engine
            .ensure_networks()
            .map_err(|e| EngineError::Network(e.message))?;
        engine.restore_with_volumes();
        engine.remove_orphan_plugin_dirs();
        engine.restore_networking();
        Ok(engine)
    }

    pub(crate) fn runtime_handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
    }

    /// Whether the daemon is shutting down (no restarts then).
    pub(crate) fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Applies a reloaded config (SIGHUP): registry settings, runtimes,
    /// ulimits and the log level take effect; data-root, exec-root and
    /// hosts need a restart and are kept.
    pub fn reload(&self, mut new: DaemonConfig) -> Result<(), EngineError> {
        let client = registry_client(&new)?;
        let mut config = self.config.write().unwrap_or_else(|p| p.into_inner());
        new.data_root = config.data_root.clone();
        new.exec_root = config.exec_root.clone();
        new.hosts = config.hosts.clone();
        // The network layout lives in the kernel and the database; it
        // does not change under running containers.
        new.bridge = config.bridge.clone();
        new.bip = config.bip.clone();
        new.mtu = config.mtu;
        new.iptables = config.iptables;
        new.ip_forward = config.ip_forward;
        new.firewall_table = config.firewall_table.clone();
        *config = new;
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = client;
        Ok(())
    }

    /// The oldest API version served (dockerd's DOCKER_MIN_API_VERSION).
    pub(crate) fn min_api_version(&self) -> berth_api::ApiVersion {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .min_api_version
    }

    pub fn config(&self) -> DaemonConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn registry(&self) -> Client {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tells endless streams (`/events`) to end, so that a stopping daemon
    /// is not held open by a subscriber.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// For a stopping daemon: waits until no container's exit or removal
    /// is half done (mounts and namespaces still being released), at most
    /// `timeout`; false if one still was then.
    pub fn finish_inflight(&self, timeout: std::time::Duration) -> bool {
        self.inflight.wait_idle(timeout)
    }

    /// Resolves once [`Engine::begin_shutdown`] was called.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// The event stream `GET /events` serves.
    pub fn events(&self) -> &crate::events::EventBus {
        &self.events
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

fn registry_client(config: &DaemonConfig) -> Result<Client, EngineError> {
    let mut rc = RegistryConfig::new();
    for entry in &config.insecure_registries {
        rc.add_insecure(entry)
            .map_err(|e| EngineError::Registry(e.to_string()))?;
    }
    for mirror in &config.registry_mirrors {
        rc.add_mirror(mirror)
            .map_err(|e| EngineError::Registry(e.to_string()))?;
    }
    rc.user_agent = Some(format!("berthd/{}", env!("CARGO_PKG_VERSION")));
    Client::new(rc).map_err(|e: RegistryError| EngineError::Registry(e.to_string()))
}

/// A stable id for this engine (docker's `ID` in `/info`), made once from
/// the kernel's random source and kept in `<data-root>/engine-id`.
fn engine_id(data_root: &Path) -> Result<String, EngineError> {
    let path = data_root.join("engine-id");
    let err = |source| EngineError::EngineId {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() == 36 => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut raw = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(err)?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &id)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(err)?;
    Ok(id)
}
