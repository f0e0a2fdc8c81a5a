//! Containers: the daemon's side of their lifecycle.
//!
//! The database row is the truth about what exists and what the user
//! asked for; the shim is the truth about a live process. Each container
//! has a [`Handle`] in memory: a lock that serialises its lifecycle steps
//! (create, start, exit handling, remove) and a watch channel with its
//! latest [`RunState`] that waiters (`wait`, `stop`) subscribe to.
//!
//! Every running container has a monitor thread blocked in the shim's
//! `wait`; when it returns, [`Engine::handle_exit`] records the exit,
//! deletes the shim, unmounts the rootfs, and applies the restart policy
//! or `AutoRemove`. After a daemon restart, [`Engine::restore`] reconnects
//! to the shims it finds and cleans up after those that are gone.

pub mod archive;
pub mod attach;
mod commit;
pub(crate) mod create_request;
pub(crate) mod etc;
mod exec;
pub mod health;
pub mod inspect;
pub mod lifecycle;
pub(crate) mod log_driver;
pub(crate) mod logs;
pub(crate) mod names;
mod record;
pub(crate) mod rootfs;
pub(crate) mod shim;
pub(crate) mod shm;
pub mod stats;
mod update;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use attach::AttachRequest;
pub use exec::ExecStart;
pub use logs::LogOptions;
pub use record::{ContainerConfig, ExecRecord, RunState, Status};
pub use shim::Paths;

use berth_store::Durability;

use crate::error::ApiError;

/// The in-memory side of one container.
#[derive(Debug)]
pub struct Handle {
    /// Held for a whole lifecycle step.
    op: Mutex<()>,
    /// The latest recorded state.
    state: tokio::sync::watch::Sender<RunState>,
    /// Set once the container's row is gone.
    removed: tokio::sync::watch::Sender<bool>,
    /// Attach requests made before start, connected to the shim between
    /// its create and the process's start so no output is missed.
    pending_attach: Mutex<Vec<AttachRequest>>,
    /// A forced removal waits for the container's exit: the exit leaves
    /// the rootfs mounted, for the removal to unmount after its reply.
    removal_waits: AtomicBool,
    /// How its row's writes reach the disk ([`row_durability`]).
    durability: Durability,
}

impl Handle {
    fn new(state: RunState, durability: Durability) -> Arc<Handle> {
        Arc::new(Handle {
            op: Mutex::new(()),
            state: tokio::sync::watch::channel(state).0,
            removed: tokio::sync::watch::channel(false).0,
            pending_attach: Mutex::new(Vec::new()),
            removal_waits: AtomicBool::new(false),
            durability,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.op.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<RunState> {
        self.state.subscribe()
    }

    pub fn subscribe_removed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.removed.subscribe()
    }

    /// Marks a forced removal as waiting for the exit, until the mark is
    /// dropped (the removal done or failed).
    fn removal_waiting(self: &Arc<Self>) -> RemovalWaiting {
        self.removal_waits.store(true, Ordering::SeqCst);
        RemovalWaiting(self.clone())
    }

    fn removal_waits(&self) -> bool {
        self.removal_waits.load(Ordering::SeqCst)
    }
}

/// See [`Handle::removal_waiting`].
struct RemovalWaiting(Arc<Handle>);

impl Drop for RemovalWaiting {
    fn drop(&mut self) {
        self.0.removal_waits.store(false, Ordering::SeqCst);
    }
}

/// Every container's handle, and the exec instances.
#[derive(Debug, Default)]
pub struct Containers {
    handles: Mutex<HashMap<String, Arc<Handle>>>,
    execs: Mutex<HashMap<String, ExecRecord>>,
}

impl Containers {
    fn handles(&self) -> MutexGuard<'_, HashMap<String, Arc<Handle>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, ExecRecord>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handle of container `c`, made if it has none yet; true if made.
    fn handle(&self, c: &Loaded) -> (Arc<Handle>, bool) {
        let mut made = false;
        let handle = self
            .handles()
            .entry(c.id.clone())
            .or_insert_with(|| {
                made = true;
                Handle::new(c.state.clone(), row_durability(&c.config.create))
            })
            .clone();
        (handle, made)
    }

    fn forget(&self, id: &str) {
        if let Some(h) = self.handles().remove(id) {
            h.removed.send_replace(true);
        }
        self.execs().retain(|_, e| e.container_id != id);
    }
}

/// How the writes of a container's row reach the disk. An AutoRemove
/// container's are not synced ([`Durability::CrashSafe`]): after a power
/// cut it runs no more, and berthd's next start removes an AutoRemove
/// container that does not run, so a lost write (its create, its start,
/// its removal) changes nothing the start would not. That takes an fsync
/// each off `docker run --rm`'s create, start and removal. Any other
/// container's are synced: a lost `running` would keep a restart policy
/// from starting it again after the power cut.
pub(crate) fn row_durability(create: &berth_api::models::ContainerCreateBody) -> Durability {
    let auto_remove = create
        .host_config
        .as_ref()
        .and_then(|h| h.auto_remove)
        .unwrap_or(false);
    match auto_remove {
        true => Durability::CrashSafe,
        false => Durability::Synced,
    }
}

/// A container as loaded from the database.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: String,
    pub name: String,
    pub image_id: berth_image::Digest,
    pub created_at: i64,
    pub config: ContainerConfig,
    pub state: RunState,
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    id: &str,
    bytes: &[u8],
) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            berth_errdefs::ErrorKind::DataLoss,
            format!("the stored {what} of container {id} is unreadable: {e}"),
        )
    })
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("container records serialise")
}

impl Loaded {
    pub(crate) fn from_row(row: berth_store::ContainerRow) -> Result<Loaded, ApiError> {
        Ok(Loaded {
            config: decode("config", &row.id, &row.config)?,
            state: decode("state", &row.id, &row.state)?,
            id: row.id,
            name: row.name,
            image_id: row.image_id,
            created_at: row.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_removal_waits_for_the_exit_only_while_its_mark_lives() {
        let handle = Handle::new(RunState::default(), Durability::Synced);
        assert!(!handle.removal_waits());
        let mark = handle.removal_waiting();
        assert!(handle.removal_waits());
        // A removal that failed (its kill, its wait) drops the mark too: a
        // later exit of the container unmounts its rootfs again.
        drop(mark);
        assert!(!handle.removal_waits());
    }

    #[test]
    fn only_an_auto_remove_containers_row_is_written_without_an_fsync() {
        let body = |auto_remove| {
            serde_json::from_value(serde_json::json!({"HostConfig": {"AutoRemove": auto_remove}}))
                .unwrap()
        };
        assert_eq!(row_durability(&body(true)), Durability::CrashSafe);
        assert_eq!(row_durability(&body(false)), Durability::Synced);
        assert_eq!(row_durability(&Default::default()), Durability::Synced);
    }
}
