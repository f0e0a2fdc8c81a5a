//! Create, start, exit handling, stop, kill, remove, pause, rename, wait
//! and restore.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::ContainerCreateBody;
use berth_api::ApiVersion;
use berth_errdefs::ErrorKind;
use berth_shim_proto::Exit;
use berth_store::ContainerRow;

use super::record::{ContainerConfig, RunState, Status};
use super::shim::{self, Launch, Paths};
use super::{create_request, encode, log_driver, names, rootfs, Handle, Loaded};
use crate::engine::Engine;
use crate::error::ApiError;

const SIGKILL: i32 = 9;
/// How long a SIGKILLed container may take to be recorded as exited.
const KILL_WAIT: Duration = Duration::from_secs(30);
/// docker's default `stop` timeout.
const DEFAULT_STOP_TIMEOUT: i64 = 10;
/// Restart backoff: docker starts at 100 ms and doubles, capped at a minute.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A container that ran this long before exiting restarts without delay.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// Stack of a container's monitor thread, which handles its exit (SQLite,
/// removal, a restart): 128 KiB overflowed in debug builds. Only the
/// pages touched are memory.
const MONITOR_STACK: usize = 512 * 1024;

fn now_ns() -> u64 {
    crate::events::now_nanos().max(0) as u64
}

fn conflict(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Conflict, msg)
}

/// docker's 409 for an operation that needs a running container.
pub(crate) fn not_running(id: &str) -> ApiError {
    conflict(format!("Container {id} is not running"))
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Internal, msg)
}

/// What `wait` waits for (docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: Option<&str>) -> Result<WaitCondition, ApiError> {
        match s.unwrap_or("") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}; use not-running, next-exit or removed"
            ))),
        }
    }
}

impl Engine {
    pub(crate) fn container_paths(&self, id: &str) -> Paths {
        let cfg = self.config();
        Paths::new(&cfg.data_root, &cfg.exec_root, id)
    }

    /// A container by id, name or id prefix.
    pub fn load_container(&self, name: &str) -> Result<Loaded, ApiError> {
        Loaded::from_row(self.store.resolve_container(name)?)
    }

    pub(crate) fn reload_container(&self, id: &str) -> Result<Loaded, ApiError> {
        Loaded::from_row(self.store.container(id)?)
    }

    pub(crate) fn container_handle(&self, c: &Loaded) -> Arc<Handle> {
        let (handle, made) = self.containers.handle(c);
        // Loaded before a removal that has since forgotten its handle: the
        // one just made would never be told of the removal, and a `wait
        // --condition removed` on it (docker's `run --rm` sends its wait
        // without waiting for it, so it can come after a failed start's
        // removal) would wait for ever. A removal deletes the row before
        // it forgets the handle, so a handle made when the row is gone is
        // marked removed here, and one made before that by the removal.
        if made
            && matches!(
                self.store.container(&c.id),
                Err(berth_store::StoreError::ContainerNotFound { .. })
            )
        {
            self.containers.forget(&c.id);
        }
        handle
    }

    /// `HostConfig.CgroupParent/<id>` if given, else under the daemon's
    /// `cgroup-parent`.
    fn container_cgroups_path(&self, c: &Loaded) -> String {
        let own = c
            .config
            .create
            .host_config
            .as_ref()
            .and_then(|h| h.cgroup_parent.as_deref())
            .is_some_and(|p| !p.is_empty());
        if own {
            crate::spec::cgroups_path(&c.config.create, &c.id)
        } else {
            cgroups_path(&self.config().cgroup_parent, &c.id)
        }
    }

    /// Records `state` in the database, then tells waiters.
    fn save_state(&self, id: &str, handle: &Handle, state: RunState) -> Result<(), ApiError> {
        self.store
            .set_container_state(id, &encode(&state), handle.durability)?;
        handle.state.send_replace(state);
        Ok(())
    }

    /// docker's actor attributes of a container event.
    pub(crate) fn container_event(&self, c: &Loaded, action: &str, extra: &[(&str, String)]) {
        let mut attrs = vec![
            ("image".to_string(), c.config.image_name.clone()),
            ("name".to_string(), c.name.clone()),
        ];
        if let Some(labels) = &c.config.create.labels {
            for (k, v) in labels {
                attrs.push((k.clone(), v.clone()));
            }
        }
        for (k, v) in extra {
            attrs.push((k.to_string(), v.clone()));
        }
        self.events.emit_with("container", action, &c.id, attrs);
    }

    /// `POST /containers/create`: records the container; nothing runs yet.
    /// Returns its id and docker's warnings. With a `platform`, the image
    /// must be for it (or one it runs): otherwise 404, as dockerd answers,
    /// so that docker's CLI pulls the platform's image and tries again.
    pub fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
        platform: Option<&berth_image::Platform>,
        version: ApiVersion,
    ) -> Result<(String, Vec<String>), ApiError> {
        let image_name = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("Config.Image is required: name the image to run")
            })?;
        let image = self.store.resolve_image(&image_name)?;
        let image_config = crate::images::parse_image_config(&image)?;
        if let Some(wanted) = platform {
            let actual = image_config.platform();
            if !runs_as(wanted, &actual) {
                return Err(ApiError::not_found(format!(
                    "image with reference {image_name} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
                )));
            }
        }
        let checked =
            create_request::check(body, &image_config, &crate::spec::Host::detect(), name)?;
        let body = checked.body;
        let mut warnings = checked.warnings;
        self.check_container_networks(&body)?;
        // A container whose PID or IPC namespace it would join must exist
        // (running is checked at start). Not a 404: the docker CLI would
        // take that for a missing image and try to pull it.
        let joins = [
            crate::spec::joined_pid_container(&body),
            crate::spec::joined_ipc_container(&body),
        ];
        for name in joins.into_iter().flatten() {
            self.load_container(&name).map_err(|e| match e.status {
                404 => ApiError::bad_request(e.message),
                _ => e,
            })?;
        }
        let host = body.host_config.clone().unwrap_or_default();
        let runtime = self.runtime_name(host.runtime.as_deref())?;
        let (mount_points, volumes) = self.plan_mount_points(&body, &image_config)?;
        let id = self.unused_id()?;
        let config = ContainerConfig {
            hostname: crate::spec::hostname(&body, &id),
            create: body,
            image_name,
            path: checked.path,
            args: checked.args,
            runtime,
            mount_points,
            left_mode_network: false,
            recursive_read_only: version >= ApiVersion::new(1, 44),
        };
        let paths = self.container_paths(&id);
        std::fs::create_dir_all(&paths.dir)
            .map_err(|e| internal(format!("creating {}: {e}", paths.dir.display())))?;
        let mut row = ContainerRow {
            id: id.clone(),
            name: String::new(),
            image_id: image.id.clone(),
            created_at: crate::events::now_nanos() as i64,
            config: encode(&config),
            state: encode(&RunState::default()),
        };
        let durability = super::row_durability(&config.create);
        let inserted = match checked.name {
            Some(n) => {
                row.name = n;
                self.store.insert_container(&row, durability)
            }
            None => {
                let mut result = Ok(());
                for attempt in 0..10 {
                    row.name = names::generate(attempt);
                    result = self.store.insert_container(&row, durability);
                    if !matches!(result, Err(berth_store::StoreError::NameInUse { .. })) {
                        break;
                    }
                }
                result
            }
        };
        let inserted = inserted.map_err(ApiError::from).and_then(|()| {
            self.use_volumes(&id, &volumes).inspect_err(|_| {
                let _ = self.store.delete_container(&id, durability);
            })
        });
        if let Err(e) = inserted {
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        // docker copies the image's content into new volumes at create.
        let chain: Vec<_> = image.layers.iter().map(|l| l.chain_id.clone()).collect();
        if let Err(e) = self.populate_volumes(&chain, &paths.dir, &config.mount_points) {
            let _ = self.store.delete_container(&id, durability);
            self.remove_anonymous_volumes(&config.mount_points);
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        let c = self.reload_container(&id)?;
        self.container_event(&c, "create", &[]);
        warnings.retain(|w| !w.is_empty());
        Ok((id, warnings))
    }

    /// A fresh id whose 16-digit prefix (the shim dir's name) is unused.
    fn unused_id(&self) -> Result<String, ApiError> {
        for _ in 0..8 {
            let id = names::new_id();
            if matches!(
                self.store.resolve_container(&id[..16]),
                Err(berth_store::StoreError::ContainerNotFound { .. })
            ) {
                return Ok(id);
            }
        }
        Err(internal("could not find an unused container id"))
    }

    /// The runtime's name, checked against the configured runtimes.
    fn runtime_name(&self, requested: Option<&str>) -> Result<String, ApiError> {
        let cfg = self.config();
        let name = requested
            .filter(|r| !r.is_empty())
            .unwrap_or(&cfg.default_runtime)
            .to_string();
        if crate::config::is_builtin_runtime(&name) || cfg.runtimes.contains_key(&name) {
            Ok(name)
        } else {
            let mut known: Vec<&str> = cfg.runtimes.keys().map(String::as_str).collect();
            known.push(crate::config::STOCK_RUNTIME);
            known.push(crate::config::BUILTIN_RUNTIME);
            Err(ApiError::bad_request(format!(
                "unknown or invalid runtime name: {name} (configured: {})",
                known.join(", ")
            )))
        }
    }

    /// `POST /containers/{id}/start`. `Ok(false)`: it was running already
    /// (docker answers 304).
    pub fn start_container(self: &Arc<Self>, name: &str) -> Result<bool, ApiError> {
        let c = self.load_container(name)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let c = self.reload_container(&c.id)?;
        match c.state.status {
            Status::Running | Status::Restarting => return Ok(false),
            Status::Paused => {
                return Err(conflict(format!(
                    "cannot start a paused container {}, try unpause instead",
                    c.id
                )))
            }
            Status::Removing | Status::Dead => {
                return Err(conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            Status::Created | Status::Exited => {}
        }
        let mut state = c.state.clone();
        state.manually_stopped = false;
        let started = self.start_locked(&c, &handle, state);
        drop(_op);
        if let Err(e) = started {
            // docker removes an AutoRemove container whose start failed
            // (its client waits for the removal).
            if auto_remove(&c) {
                if let Err(r) = self.remove_stopped(&c.id, true, true) {
                    tracing::warn!(container = %c.id, error = %r.message, "removing after a failed start");
                }
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Starts `c` (its lock held): rootfs, config.json, shim, start. On
    /// failure everything made is undone and the error recorded.
    fn start_locked(
        self: &Arc<Self>,
        c: &Loaded,
        handle: &Arc<Handle>,
        mut state: RunState,
    ) -> Result<(), ApiError> {
        let paths = self.container_paths(&c.id);
        match self.launch(c, handle, &paths) {
            Ok((pid, shim_pid, started_at)) => {
                state.status = Status::Running;
                state.pid = pid;
                state.shim_pid = shim_pid;
                state.started_at = started_at;
                state.error.clear();
                state.exit_code = 0;
                state.oom_killed = false;
                self.health_on_start(c, &mut state);
                self.save_state(&c.id, handle, state)?;
                self.container_network_events(c, "connect");
                self.container_event(c, "start", &[]);
                self.monitor(&c.id);
                Ok(())
            }
            Err(e) => {
                self.cleanup_after_shim(c, &paths, false);
                // Recorded as the API answers it (inspect's State.Error).
                let e = ApiError {
                    message: berth_errdefs::go_os_errors(&e.message),
                    ..e
                };
                let (code, status) = start_failure(&e.message);
                state.status = if c.state.started_at == 0 && state.restart_count == 0 {
                    Status::Created
                } else {
                    Status::Exited
                };
                state.exit_code = code;
                state.error = e.message.clone();
                state.pid = 0;
                state.shim_pid = 0;
                // Recording the failure must not hide it.
                let _ = self.save_state(&c.id, handle, state);
                Err(ApiError {
                    status,
                    message: e.message,
                })
            }
        }
    }

    /// Mounts, writes the bundle, launches the shim, connects early
    /// attachers and starts the process. Returns (pid, shim pid, started).
    fn launch(
        self: &Arc<Self>,
        c: &Loaded,
        handle: &Handle,
        paths: &Paths,
    ) -> Result<(u32, u32, u64), ApiError> {
        let init = crate::init::for_container(&c.config.create, &self.config())?;
        let (joined, donor_shm) = self.joined_namespaces(c)?;
        let image = self.store.image(&c.image_id)?;
        let image_config = crate::images::parse_image_config(&image)?;
        // Before anything is made: a bad log option fails the start.
        let log = log_driver::driver(&c.config.create)?;
        let chain: Vec<_> = image.layers.iter().map(|l| l.chain_id.clone()).collect();
        let rootfs = rootfs::mount(&self.layers, &chain, &paths.dir)?;
        let net = self.connect_container_networks(c)?;
        let etc = super::etc::write(&paths.dir, &self.etc_input(c, &net)?)?;
        let volumes = self.mount_volumes(c)?;
        let shm = match donor_shm {
            Some(donor) => Some(donor),
            None if crate::spec::shareable_ipc(&c.config.create) => {
                Some(super::shm::mount(&paths.dir, shm_size(c))?)
            }
            None => None,
        };
        let body = net.spec_body(&c.config.create);
        let spec = crate::spec::generate_with(
            &crate::spec::SpecInput {
                id: &c.id,
                body: &body,
                image: &image_config,
                rootfs: &rootfs,
                etc: &etc,
                cgroups_path: &self.container_cgroups_path(c),
                network_namespace: net.netns.as_deref(),
                joined: &joined,
                shm: shm.as_deref(),
                init: init.as_deref(),
                recursive_read_only: c.config.recursive_read_only,
            },
            &volumes,
        )?;
        write_atomically(&paths.dir.join("config.json"), &encode(&spec))?;
        std::fs::create_dir_all(&paths.shim_dir)
            .map_err(|e| internal(format!("creating {}: {e}", paths.shim_dir.display())))?;
        let runtime = self.runtime_path(c);
        let create = &c.config.create;
        let mut client = shim::launch(&Launch {
            id: &c.id,
            paths,
            runtime: runtime.as_deref(),
            tty: create.tty.unwrap_or(false),
            stdin: create.open_stdin.unwrap_or(false),
            log,
        })?;
        let pending: Vec<_> = std::mem::take(
            &mut *handle
                .pending_attach
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for a in pending {
            self.connect_attach(&c.id, paths, a);
        }
        client.start().map_err(ApiError::from)?;
        let status = client.state().map_err(ApiError::from)?;
        Ok((status.pid, status.shim_pid, status.started_at.max(1)))
    }

    /// What `c` joins of other containers (`--pid` and `--ipc
    /// container:<name>`, as docker): their namespaces, through their
    /// init's /proc entry, and for IPC the donor's shareable /dev/shm
    /// (returned beside). Each must run; an IPC donor must be shareable.
    fn joined_namespaces(
        &self,
        c: &Loaded,
    ) -> Result<(crate::spec::Joined, Option<std::path::PathBuf>), ApiError> {
        let mut joined = crate::spec::Joined::default();
        let mut donor_shm = None;
        if let Some(name) = crate::spec::joined_pid_container(&c.config.create) {
            let (_, pid) = self.running_donor(c, &name, "PID")?;
            joined.pid = Some(format!("/proc/{pid}/ns/pid").into());
        }
        if let Some(name) = crate::spec::joined_ipc_container(&c.config.create) {
            let (donor, pid) = self.running_donor(c, &name, "IPC")?;
            if !crate::spec::shareable_ipc(&donor.config.create) {
                return Err(conflict(format!(
                    "can't join IPC of container {}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                    donor.id
                )));
            }
            joined.ipc = Some(format!("/proc/{pid}/ns/ipc").into());
            donor_shm = Some(super::shm::dir(&self.container_paths(&donor.id).dir));
        }
        Ok((joined, donor_shm))
    }

    /// The container `name` whose `what` namespace `c` joins, with its
    /// init's pid: it must be another one, and running.
    fn running_donor(&self, c: &Loaded, name: &str, what: &str) -> Result<(Loaded, u32), ApiError> {
        let other = self.load_container(name)?;
        if other.id == c.id {
            return Err(ApiError::bad_request(format!(
                "cannot join own {what} namespace: a container cannot use container:<itself>"
            )));
        }
        let state = self.container_handle(&other).state();
        if !matches!(state.status, Status::Running | Status::Paused) || state.pid == 0 {
            return Err(conflict(format!(
                "cannot join {what} of a non running container: {}",
                other.id
            )));
        }
        Ok((other, state.pid))
    }

    /// The external runtime's binary; `None` for the embedded one.
    fn runtime_path(&self, c: &Loaded) -> Option<std::path::PathBuf> {
        if crate::config::is_builtin_runtime(&c.config.runtime) {
            return None;
        }
        self.config()
            .runtimes
            .get(&c.config.runtime)
            .map(|r| std::path::PathBuf::from(&r.path))
    }

    /// Undoes what a shim and a start leave: the shim ([`Self::stop_shim`])
    /// and the rootfs mount.
    fn cleanup_after_shim(&self, c: &Loaded, paths: &Paths, shim_deleted: bool) {
        self.stop_shim(c, paths, shim_deleted);
        unmount_rootfs(&c.id, &paths.dir);
        self.release_volumes(c);
        self.disconnect_container_networks(&c.id);
    }

    /// Makes sure no shim and no process of the container remain: the shim
    /// is deleted, forcibly, and its directory removed. A shim that is gone
    /// or does not answer cannot delete its container: then the container
    /// is killed and deleted without it ([`shim::reap`]), so no process
    /// outlives its record. A shim still starting (launched by a daemon
    /// that was killed before recording it) is given the time to finish
    /// first. `shim_deleted`: the caller's `delete` was answered, so the
    /// shim is done (it removes its socket a moment after answering:
    /// connecting again would only find it on its way out).
    fn stop_shim(&self, c: &Loaded, paths: &Paths, shim_deleted: bool) {
        let id = c.id.as_str();
        // A shim that deleted itself leaves none of these (its log only
        // when it wrote to it); one that runs, starts or died leaves some.
        let pending = !shim_deleted
            && ["sock", "runtime", "shim.log"]
                .iter()
                .any(|f| paths.shim_dir.join(f).exists());
        if pending {
            let deleted = match shim::connect_settled(paths, id) {
                Ok(client) => client
                    .delete(true)
                    .map_err(|e| tracing::warn!(container = id, error = %e, "deleting the shim"))
                    .is_ok(),
                Err(_) => false,
            };
            if !deleted {
                shim::reap(
                    paths,
                    id,
                    self.runtime_path(c).as_deref(),
                    Some(&self.container_cgroups_path(c)),
                );
            }
        }
        let _ = std::fs::remove_dir_all(&paths.shim_dir);
    }

    /// A thread that waits for the container's exit through its shim.
    fn monitor(self: &Arc<Self>, id: &str) {
        let engine = self.clone();
        let name = format!("wait-{}", &id[..12]);
        let id = id.to_string();
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .stack_size(MONITOR_STACK)
            .spawn(move || {
                let paths = engine.container_paths(&id);
                let exit = shim::connect(&paths, &id).and_then(|mut c| {
                    c.wait().map_err(|source| shim::ShimError::Protocol {
                        id: id.clone(),
                        source,
                    })
                });
                let exit = match exit {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "lost the shim; reading its exit record");
                        berth_shim_proto::client::read_exit_record(&paths.socket())
                            .ok()
                            .flatten()
                    }
                };
                engine.handle_exit(&id, exit);
            });
        if let Err(e) = spawned {
            tracing::error!(thread = name, error = %e, "cannot start a monitor thread");
        }
    }

    /// The container's process is gone: record how it ended, clean up,
    /// then restart it or remove it as its policy says.
    pub(crate) fn handle_exit(self: &Arc<Self>, id: &str, exit: Option<Exit>) {
        let _work = self.inflight.enter();
        let Ok(c) = self.reload_container(id) else {
            return;
        };
        let handle = self.container_handle(&c);
        let guard = handle.lock();
        let Ok(c) = self.reload_container(id) else {
            return;
        };
        if !c.state.status.is_live() {
            return;
        }
        self.health_on_exit(id);
        let paths = self.container_paths(id);
        // Deleting the shim returns the final record (and waits for the
        // output to be drained into the log).
        let deleted = shim::connect(&paths, id)
            .ok()
            .and_then(|client| client.delete(false).ok());
        let shim_deleted = deleted.is_some();
        let exit = deleted.flatten().or(exit);
        // No process of the container may outlive the exit's record.
        self.stop_shim(&c, &paths, shim_deleted);
        let mut state = c.state.clone();
        let ran_for = Duration::from_nanos(
            exit.as_ref()
                .map_or(0, |e| e.finished_at.saturating_sub(e.started_at)),
        );
        state.status = Status::Exited;
        state.pid = 0;
        state.shim_pid = 0;
        match &exit {
            Some(e) => {
                state.exit_code = e.code;
                state.oom_killed = e.oom_killed;
                state.finished_at = e.finished_at.max(1);
            }
            None => {
                state.exit_code = 255;
                state.error = "the container's shim died; its exit status is unknown".into();
                state.finished_at = now_ns();
            }
        }
        let restart = self.should_restart(&c, &state);
        if restart {
            state.status = Status::Restarting;
        }
        let removing = !restart && auto_remove(&c);
        if removing {
            // Its row is deleted next, under the same lock: the exit needs
            // no record on disk (one fsync less on every `run --rm`), only
            // its waiters need it. A daemon killed in between finds the
            // shim gone at restore, and removes the container then.
            handle.state.send_replace(state.clone());
        } else if let Err(e) = self.save_state(id, &handle, state.clone()) {
            tracing::error!(container = id, error = %e.message, "recording an exit");
        }
        if state.oom_killed {
            self.container_event(&c, "oom", &[]);
        }
        self.container_event(&c, "die", &[("exitCode", state.exit_code.to_string())]);
        self.container_network_events(&c, "disconnect");
        if removing {
            // docker removes an AutoRemove container's anonymous volumes.
            if let Err(e) = self.remove_locked(&c, &paths, false, true) {
                tracing::warn!(container = id, error = %e.message, "auto-removing");
            }
            return;
        }
        // After the exit is recorded, so waiters (`docker run`) do not wait
        // for it: an overlay's unmount syncs its upper file system (3-50 ms
        // here, the whole disk's dirty data). A forced removal waiting for
        // this exit (`rm -f`) would wait for it: the removal unmounts after
        // its reply instead. A restart mounts the rootfs again anyway.
        if restart || !handle.removal_waits() {
            unmount_rootfs(id, &paths.dir);
        }
        self.disconnect_container_networks(id);
        self.release_volumes(&c);
        drop(guard);
        if restart {
            let delay = if ran_for >= BACKOFF_RESET {
                Duration::ZERO
            } else {
                BACKOFF_START
                    .saturating_mul(1u32 << state.restart_count.min(10))
                    .min(BACKOFF_MAX)
            };
            // On a thread of its own: restore calls this at start-up, which
            // must not wait out a backoff.
            let engine = self.clone();
            let owned = id.to_string();
            let spawned = std::thread::Builder::new()
                .name(format!("restart-{}", &id[..12]))
                .stack_size(MONITOR_STACK)
                .spawn(move || {
                    std::thread::sleep(delay);
                    engine.restart_after_exit(&owned, ran_for >= BACKOFF_RESET);
                });
            if let Err(e) = spawned {
                tracing::error!(container = id, error = %e, "cannot start a restart thread");
            }
        }
    }

    fn should_restart(&self, c: &Loaded, state: &RunState) -> bool {
        let policy = c
            .config
            .create
            .host_config
            .as_ref()
            .and_then(|h| h.restart_policy.as_ref());
        let name = policy
            .and_then(|p| p.name.map(|n| n.to_string()))
            .unwrap_or_default();
        let max = policy.and_then(|p| p.maximum_retry_count).unwrap_or(0);
        if state.manually_stopped || self.is_stopping() {
            return false;
        }
        match name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                state.exit_code != 0 && (max <= 0 || i64::from(state.restart_count) < max)
            }
            _ => false,
        }
    }

    fn restart_after_exit(self: &Arc<Self>, id: &str, reset: bool) {
        let Ok(c) = self.reload_container(id) else {
            return;
        };
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let Ok(c) = self.reload_container(id) else {
            return;
        };
        if c.state.status != Status::Restarting {
            return;
        }
        let mut state = c.state.clone();
        state.restart_count = if reset { 1 } else { state.restart_count + 1 };
        if let Err(e) = self.start_locked(&c, &handle, state) {
            tracing::warn!(container = id, error = %e.message, "restarting");
            return;
        }
        self.container_event(&c, "restart", &[]);
    }

    /// `POST /containers/{id}/kill`: sends `signal` to the container's
    /// init. SIGKILL returns once the container has exited, as docker's
    /// (its `Kill` waits for the exit, so `rm` or `inspect` right after
    /// see it stopped); other signals return at once. Not running is
    /// docker's 409.
    pub async fn kill_container(self: &Arc<Self>, name: &str, signal: i32) -> Result<(), ApiError> {
        let e = self.clone();
        let n = name.to_string();
        let (id, mut rx) = crate::http::blocking(move || e.signal_container(&n, signal)).await?;
        if signal == SIGKILL {
            wait_exited(&id, &mut rx).await?;
        }
        Ok(())
    }

    /// Sends `signal` to the container's init; returns its id and a
    /// receiver of its state subscribed before the signal went out.
    fn signal_container(
        &self,
        name: &str,
        signal: i32,
    ) -> Result<(String, tokio::sync::watch::Receiver<RunState>), ApiError> {
        let c = self.load_container(name)?;
        if !c.state.status.is_live() {
            return Err(conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                name, c.id
            )));
        }
        let handle = self.container_handle(&c);
        let rx = handle.subscribe();
        if signal == SIGKILL || signal == 15 {
            // Under the container's lock, from its state as it is now: an
            // exit recorded since the load above (handle_exit holds the
            // lock while it records one) must not be overwritten with the
            // running state loaded before it, which would leave the
            // container running for ever in the daemon's eyes.
            let _op = handle.lock();
            let now = self.reload_container(&c.id)?;
            if !now.state.status.is_live() {
                return Err(conflict(format!(
                    "Cannot kill container: {}: Container {} is not running",
                    name, c.id
                )));
            }
            let mut state = now.state;
            state.manually_stopped = true;
            self.save_state(&c.id, &handle, state)?;
        }
        let paths = self.container_paths(&c.id);
        let mut client = shim::connect(&paths, &c.id)?;
        if signal == SIGKILL && c.state.status == Status::Paused {
            // docker thaws a paused container it kills: a frozen process
            // may not die until thawed.
            let _ = client.resume();
        }
        client.kill(signal, false)?;
        self.container_event(&c, "kill", &[("signal", signal.to_string())]);
        Ok((c.id, rx))
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after
    /// the timeout. `Ok(false)`: it was not running (docker's 304).
    pub async fn stop_container(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<bool, ApiError> {
        let c = self.load_container(name)?;
        if !c.state.status.is_live() {
            return Ok(false);
        }
        let create = &c.config.create;
        let signal = match signal
            .filter(|s| !s.is_empty())
            .or(create.stop_signal.clone())
        {
            Some(s) => parse_signal(&s)?,
            None => self.image_stop_signal(&c)?.unwrap_or(15),
        };
        let timeout = timeout
            .or(create.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        let handle = self.container_handle(&c);
        let mut rx = handle.subscribe();
        // A container that exits after the check above makes the signal
        // fail: its shim answers that it is not running (409) or has
        // closed its socket on its way out (503). Its exit is being
        // recorded, which the waits below see: that is a stop too (a
        // client stopping a container that has just printed its last
        // line, as testcontainers does, must not get an error).
        let signal_failed = match self.kill_container(name, signal).await {
            Ok(()) => None,
            Err(e) if e.status == 409 || e.status == 503 => Some(e),
            Err(e) => return Err(e),
        };
        let stopped = async {
            let _ = rx.wait_for(|s| !s.status.is_live()).await;
        };
        let done = if timeout < 0 {
            stopped.await;
            true
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), stopped)
                .await
                .is_ok()
        };
        if !done {
            // It may have exited just now: not running is fine here.
            let _ = self.kill_container(name, SIGKILL).await;
            let mut rx = handle.subscribe();
            let exited = rx.wait_for(|s| !s.status.is_live());
            match signal_failed {
                None => drop(exited.await),
                // Neither signal reached it and it did not exit: the
                // signal's failure was not a race with its exit after all.
                Some(e) => {
                    if tokio::time::timeout(Duration::from_secs(10), exited)
                        .await
                        .is_err()
                    {
                        return Err(e);
                    }
                }
            }
        }
        // The exit is published before its clean-up (so that `run`'s
        // waiters do not wait for the unmount); the exit handler holds the
        // container's lock until its ports, networks and mounts are
        // released. A stop returns after that, as docker's does: clients
        // stop a container to start another on its ports (docker-compose's
        // recreate).
        let h = handle.clone();
        let _ = crate::http::blocking(move || {
            drop(h.lock());
            Ok(())
        })
        .await;
        self.container_event(&c, "stop", &[]);
        Ok(true)
    }

    fn image_stop_signal(&self, c: &Loaded) -> Result<Option<i32>, ApiError> {
        let image = self.store.image(&c.image_id)?;
        let config = crate::images::parse_image_config(&image)?;
        config
            .config
            .and_then(|r| r.stop_signal)
            .map(|s| parse_signal(&s))
            .transpose()
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart_container(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<(), ApiError> {
        self.stop_container(name, timeout, signal).await?;
        let e = self.clone();
        let n = name.to_string();
        crate::http::blocking(move || e.start_container(&n).map(|_| ())).await?;
        let c = self.load_container(name)?;
        self.container_event(&c, "restart", &[]);
        Ok(())
    }

    /// `DELETE /containers/{id}`: a running container needs `force`
    /// (which kills it first); `volumes` (`v=1`) removes its anonymous
    /// volumes too.
    pub async fn remove_container(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        let c = self.load_container(name)?;
        if c.state.status.is_live() || c.state.status == Status::Restarting {
            if !force {
                let procedure = match c.state.status {
                    Status::Paused => "Unpause and then stop",
                    _ => "Stop",
                };
                return Err(conflict(format!(
                    "You cannot remove a {} container {}. {procedure} the container before attempting removal or force remove",
                    c.state.status.as_str(),
                    c.id
                )));
            }
            let handle = self.container_handle(&c);
            let mut rx = handle.subscribe();
            let _waiting = handle.removal_waiting();
            if c.state.status == Status::Restarting {
                let mut state = c.state.clone();
                state.manually_stopped = true;
                state.status = Status::Exited;
                self.save_state(&c.id, &handle, state)?;
            } else {
                let e = self.clone();
                let id = c.id.clone();
                let paused = c.state.status == Status::Paused;
                let _ = crate::http::blocking(move || {
                    let paths = e.container_paths(&id);
                    let mut client = shim::connect(&paths, &id)?;
                    // A paused process cannot die until thawed. Only
                    // then: the shim's answer to a resume of a running
                    // container comes from a forked helper (1-3 ms).
                    if paused {
                        let _ = client.resume();
                    }
                    client.kill(9, true)?;
                    Ok(())
                })
                .await;
                wait_exited(&c.id, &mut rx).await?;
            }
        }
        let e = self.clone();
        let id = c.id.clone();
        crate::http::blocking(move || e.remove_stopped(&id, force, volumes)).await
    }

    /// Removes a container that is not running: its row, its files, its
    /// handle. Waiters on `removed` are told.
    fn remove_stopped(&self, id: &str, force: bool, volumes: bool) -> Result<(), ApiError> {
        let c = self.reload_container(id)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let c = self.reload_container(id)?;
        if c.state.status.is_live() {
            return Err(conflict(format!(
                "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
            )));
        }
        let paths = self.container_paths(id);
        self.remove_locked(&c, &paths, force, volumes)
    }

    /// Removes stopped container `c`, its lock held (and its anonymous
    /// volumes when `volumes`).
    fn remove_locked(
        &self,
        c: &Loaded,
        paths: &Paths,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        let id = c.id.as_str();
        let _work = self.inflight.enter();
        // A shim left over from a failed start or a crash goes first.
        self.stop_shim(c, paths, false);
        // The row goes before the files, so `wait --condition removed`
        // (`docker run --rm`) returns without waiting for the overlay's
        // unmount (a sync of its upper file system). Files left by a daemon
        // killed in between belong to no row: restore removes them. Its
        // endpoint and port rows go with the row, the firewall and DNS
        // follow at once; its veths and namespace file after the waiters
        // are told (`teardown`, below), as the rootfs: their deletion
        // waits on the kernel. Its volumes are released (and its anonymous
        // ones removed) before waiters are told, as docker's: `run --rm`
        // returns with them gone.
        let teardown = self.remove_container_networks(id, || {
            self.store
                .delete_container(id, super::row_durability(&c.config.create))
                .map_err(ApiError::from)
        })?;
        self.release_volumes(c);
        if volumes {
            self.remove_anonymous_volumes(&c.config.mount_points);
        }
        self.containers.forget(id);
        self.container_event(c, "destroy", &[]);
        // Before the unmount: its addresses are kept from new starts
        // until it ends.
        drop(teardown);
        self.remove_files(id, &paths.dir, force)
    }

    /// Unmounts a removed container's rootfs and deletes its directory.
    /// The directory is renamed out of the way at once (its mounts move
    /// with it) and the rest is done on a thread of its own: the unmount
    /// syncs the upper file system, and deleting is one unlink per file,
    /// and on a file system mounted with `discard` each freed block waits
    /// for the disk (3-4 ms each here), none of which `docker rm` need
    /// wait for. A daemon stopped meanwhile finishes it first
    /// ([`crate::inflight`]); one killed leaves a directory no row owns,
    /// which the next start unmounts and removes.
    fn remove_files(&self, id: &str, dir: &Path, force: bool) -> Result<(), ApiError> {
        let trash = dir.with_file_name(format!(".removing-{id}"));
        match std::fs::rename(dir, &trash) {
            Ok(()) => {
                let id = id.to_owned();
                self.inflight.run_later("remove-files", move || {
                    if !unmount_rootfs(&id, &trash) {
                        return;
                    }
                    if let Err(e) = std::fs::remove_dir_all(&trash) {
                        tracing::warn!(container = %id, dir = %trash.display(), error = %e, "deleting a removed container's files");
                    }
                });
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // Not renamable: unmounted and deleted in place, now.
            Err(_) if !unmount_rootfs(id, dir) => match force {
                true => Ok(()),
                false => Err(internal(format!(
                    "the container is removed, but its rootfs under {} stays mounted (berthd's log says why); berthd's next start removes it",
                    dir.display()
                ))),
            },
            Err(_) => match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && !force => {
                    Err(internal(format!(
                        "the container is removed, but not all of its files: {}: {e}",
                        dir.display()
                    )))
                }
                _ => Ok(()),
            },
        }
    }

    pub fn pause_container(&self, name: &str) -> Result<(), ApiError> {
        self.set_paused(name, true)
    }

    pub fn unpause_container(&self, name: &str) -> Result<(), ApiError> {
        self.set_paused(name, false)
    }

    fn set_paused(&self, name: &str, pause: bool) -> Result<(), ApiError> {
        let c = self.load_container(name)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let c = self.reload_container(&c.id)?;
        match (pause, c.state.status) {
            (true, Status::Running) | (false, Status::Paused) => {}
            (true, Status::Paused) => {
                return Err(conflict(format!("Container {} is already paused", c.id)))
            }
            (false, _) => return Err(conflict(format!("Container {} is not paused", c.id))),
            (true, _) => return Err(not_running(&c.id)),
        }
        let paths = self.container_paths(&c.id);
        let mut client = shim::connect(&paths, &c.id)?;
        if pause {
            client.pause()?;
        } else {
            client.resume()?;
        }
        let mut state = c.state.clone();
        state.status = if pause {
            Status::Paused
        } else {
            Status::Running
        };
        self.save_state(&c.id, &handle, state)?;
        self.container_event(&c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename_container(&self, name: &str, new_name: &str) -> Result<(), ApiError> {
        let new_name = names::validate(new_name).map_err(ApiError::bad_request)?;
        let c = self.load_container(name)?;
        if c.name == new_name {
            return Err(conflict(format!(
                "Renaming a container with the same name as its current name: {new_name}"
            )));
        }
        self.store.rename_container(&c.id, &new_name)?;
        self.container_event(&c, "rename", &[("oldName", format!("/{}", c.name))]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: the exit code once `condition` holds,
    /// and the last start error if any.
    pub async fn wait_container(
        self: &Arc<Self>,
        name: &str,
        condition: WaitCondition,
    ) -> Result<(i64, Option<String>), ApiError> {
        let c = self.load_container(name)?;
        let handle = self.container_handle(&c);
        let mut rx = handle.subscribe();
        let mut removed = handle.subscribe_removed();
        let initial = rx.borrow().clone();
        let result = |s: &RunState| {
            let err = (!s.error.is_empty()).then(|| s.error.clone());
            (i64::from(s.exit_code), err)
        };
        let stopped = |s: &RunState| !s.status.is_live() && s.status != Status::Restarting;
        // The next exit, even one its restart policy follows with a start.
        let exited = |s: &RunState| {
            s.finished_at != initial.finished_at
                || (s.error != initial.error && !s.error.is_empty())
        };
        match condition {
            WaitCondition::NotRunning if stopped(&initial) => Ok(result(&initial)),
            // docker counts a restarting container as running and ends
            // the wait at its next exit: `wait` on a container that
            // restarts `always` returns when it first exits.
            WaitCondition::NotRunning | WaitCondition::NextExit => {
                let not_running = condition == WaitCondition::NotRunning;
                let s = rx
                    .wait_for(|s| exited(s) || (not_running && stopped(s)))
                    .await
                    .map(|s| s.clone())
                    .unwrap_or(initial);
                // A start that failed ends the wait too (docker's would
                // go on), without an error: the start's own answer
                // reported it, and the docker CLI logs a wait's error as
                // "Error waiting for container" on top.
                let (code, error) = result(&s);
                Ok((code, error.filter(|_| s.status != Status::Created)))
            }
            // docker clears the error when it removes a container: the
            // removal's waiters get the exit code alone.
            WaitCondition::Removed => {
                let _ = removed.wait_for(|r| *r).await;
                let s = rx.borrow().clone();
                Ok((i64::from(s.exit_code), None))
            }
        }
    }

    /// Start-up: reconnects to the shims of containers recorded as live,
    /// and settles the ones whose shim is gone (their real exit code from
    /// the shim's exit record, mounts and shim dirs cleaned up). Stopped
    /// containers with `always` restart again, as after a reboot.
    pub(crate) fn restore(self: &Arc<Self>) {
        let rows = match self.store.containers() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "listing containers to restore");
                return;
            }
        };
        let known: std::collections::HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        self.remove_orphans(&known);
        let mut auto_removed = Vec::new();
        for row in rows {
            let c = match Loaded::from_row(row) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e.message, "restoring a container");
                    continue;
                }
            };
            if auto_remove(&c) && !c.state.status.is_live() {
                // docker removes these at start-up: their client is gone.
                auto_removed.push(c.id.clone());
            }
            let paths = self.container_paths(&c.id);
            let live = c.state.status.is_live();
            if live && shim::connect(&paths, &c.id).is_ok() {
                tracing::info!(container = %c.id, "reconnected to the shim");
                self.container_handle(&c);
                self.monitor(&c.id);
                self.health_on_restore(&c);
                continue;
            }
            if live || c.state.status == Status::Restarting {
                let exit = berth_shim_proto::client::read_exit_record(&paths.socket())
                    .ok()
                    .flatten();
                tracing::info!(container = %c.id, ?exit, "the shim is gone; recording the exit");
                if c.state.status == Status::Restarting {
                    // Restart it now.
                    let mut state = c.state.clone();
                    state.status = Status::Running;
                    let _ = self.store.set_container_state(
                        &c.id,
                        &encode(&state),
                        berth_store::Durability::Synced,
                    );
                }
                self.handle_exit(&c.id, exit);
            } else if rootfs::is_mounted(&paths.rootfs()) || paths.shim_dir.exists() {
                // A start cut short by the daemon's death: its shim may
                // run (or still be starting) while the row says stopped.
                self.cleanup_after_shim(&c, &paths, false);
            }
        }
        for id in auto_removed {
            if let Err(e) = self.remove_stopped(&id, true, true) {
                tracing::warn!(container = id, error = %e.message, "auto-removing at start-up");
            }
        }
    }

    /// Directories no container row owns, left by a daemon killed between
    /// making them and recording the row (create), or a shim's directory
    /// whose container is gone: their mounts, processes and files go.
    fn remove_orphans(&self, known: &std::collections::HashSet<String>) {
        let cfg = self.config();
        let containers = cfg.data_root.join("containers");
        let prefixes: std::collections::HashSet<&str> = known.iter().map(|id| &id[..16]).collect();
        for e in std::fs::read_dir(&containers)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            tracing::warn!(dir = %e.path().display(), "removing the directory of an unrecorded container");
            if let Err(err) = rootfs::unmount(&e.path()) {
                tracing::warn!(dir = %e.path().display(), error = %err, "unmounting an orphaned rootfs");
                continue;
            }
            super::shm::unmount(&e.path());
            let _ = std::fs::remove_dir_all(e.path());
        }
        for e in std::fs::read_dir(cfg.exec_root.join("c"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if prefixes.contains(name.as_str()) {
                continue;
            }
            tracing::warn!(dir = %e.path().display(), "removing the shim directory of an unrecorded container");
            let runtime_ids: Vec<String> = std::fs::read_dir(e.path().join("runtime"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|r| r.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            let paths = Paths {
                dir: containers.join(&name),
                shim_dir: e.path(),
            };
            for id in &runtime_ids {
                shim::reap(
                    &paths,
                    id,
                    None,
                    Some(&cgroups_path(&cfg.cgroup_parent, id)),
                );
            }
            if runtime_ids.is_empty() {
                shim::reap(&paths, &name, None, None);
            }
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Waits for a container sent SIGKILL to be recorded as exited. Bounded,
/// so a process stuck in the kernel (uninterruptible sleep) ends the
/// request with an error rather than holding it forever.
async fn wait_exited(
    id: &str,
    rx: &mut tokio::sync::watch::Receiver<RunState>,
) -> Result<(), ApiError> {
    let waited = tokio::time::timeout(KILL_WAIT, rx.wait_for(|s| !s.status.is_live())).await;
    if waited.is_err() {
        return Err(internal(format!(
            "container {id} did not exit within {}s of SIGKILL; a process of it may be stuck in the kernel (see its processes' state in ps)",
            KILL_WAIT.as_secs()
        )));
    }
    Ok(())
}

/// Unmounts what a run mounts on the host under the container's
/// directory `dir`: the rootfs, and a shareable /dev/shm. False (and a
/// warning) if the rootfs stays mounted: its files must not be deleted
/// through it.
fn unmount_rootfs(id: &str, dir: &Path) -> bool {
    let unmounted = match rootfs::unmount(dir) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(container = id, error = %e, "unmounting the rootfs");
            false
        }
    };
    super::shm::unmount(dir);
    unmounted
}

/// The container's /dev/shm size (HostConfig.ShmSize or docker's default).
fn shm_size(c: &Loaded) -> i64 {
    let hc = c.config.create.host_config.clone().unwrap_or_default();
    crate::spec::shm_size(&hc)
}

fn auto_remove(c: &Loaded) -> bool {
    c.config
        .create
        .host_config
        .as_ref()
        .and_then(|h| h.auto_remove)
        .unwrap_or(false)
}

/// docker's exit code and HTTP status for a failed start: 127 when the
/// command is missing, 126 when it cannot be executed, else 128.
pub(crate) fn start_failure(message: &str) -> (i32, u16) {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        (127, 400)
    } else if m.contains("permission denied") || m.contains("is a directory") {
        (126, 400)
    } else {
        (128, 500)
    }
}

/// A signal by number or name (`SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`).
pub fn parse_signal(s: &str) -> Result<i32, ApiError> {
    const NAMES: &[(&str, i32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("POLL", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];
    let bad = || ApiError::bad_request(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = name.strip_prefix("RTMIN+") {
        let n: i32 = off.parse().map_err(|_| bad())?;
        return if (0..=30).contains(&n) {
            Ok(34 + n)
        } else {
            Err(bad())
        };
    }
    if let Some(off) = name.strip_prefix("RTMAX-") {
        let n: i32 = off.parse().map_err(|_| bad())?;
        return if (0..=30).contains(&n) {
            Ok(64 - n)
        } else {
            Err(bad())
        };
    }
    match name {
        "RTMIN" => return Ok(34),
        "RTMAX" => return Ok(64),
        _ => {}
    }
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(bad)
}

/// `<parent>/<id>`, the parent made absolute (`HostConfig.CgroupParent`
/// is not supported yet; the daemon's `cgroup-parent` applies).
fn cgroups_path(parent: &str, id: &str) -> String {
    let parent = parent.trim_end_matches('/');
    if parent.starts_with('/') {
        format!("{parent}/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// Writes a file by temp file and rename, so a reader never sees half of
/// it. Not fsynced: these files (config.json, hostname, hosts,
/// resolv.conf) are written again by every start, so one lost to a crash
/// of the machine costs nothing, and four fsyncs were on every start's path.
pub(crate) fn write_atomically(path: &std::path::Path, data: &[u8]) -> Result<(), ApiError> {
    let tmp = path.with_extension("tmp");
    let r = std::fs::write(&tmp, data).and_then(|_| std::fs::rename(&tmp, path));
    r.map_err(|e| internal(format!("writing {}: {e}", path.display())))
}

/// Whether an image whose config says `actual` serves a request for
/// `wanted`: the same platform or one it runs (containerd's
/// compatibility: amd64/v2 runs amd64). A config that names no
/// architecture (some old or hand-made images) is not held against it.
fn runs_as(wanted: &berth_image::Platform, actual: &berth_image::Platform) -> bool {
    actual.architecture.is_empty() || wanted.compatible().iter().any(|p| p.same_as(actual))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_an_image_serves() {
        use berth_image::Platform;
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(runs_as(&p("linux/amd64"), &p("linux/amd64")));
        assert!(runs_as(&p("linux/amd64/v2"), &p("linux/amd64")));
        assert!(!runs_as(&p("linux/amd64"), &p("linux/amd64/v3")));
        assert!(!runs_as(&p("linux/arm64"), &p("linux/amd64")));
        assert!(runs_as(&p("linux/arm/v7"), &p("linux/arm/v6")));
        assert!(runs_as(
            &p("linux/arm64"),
            &Platform::new("linux", "", None)
        ));
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    /// A request that loaded a container just before its removal and
    /// makes its handle just after (the removal forgot the old one) gets a
    /// handle marked removed (`wait --condition removed` waits on it), and
    /// the handle is not kept.
    #[test]
    fn a_handle_made_after_the_removal_is_marked_removed() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(crate::DaemonConfig {
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            bridge: "none".into(),
            iptables: false,
            ip_forward: false,
            ..crate::DaemonConfig::default()
        })
        .unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/true"), "").unwrap();
        let tar = std::process::Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["--numeric-owner", "-cf", "-", "."])
            .output()
            .unwrap()
            .stdout;
        engine
            .import_image(&tar[..], Some("x"), Some("1"), None, vec![], None)
            .unwrap();
        let body = serde_json::from_value(serde_json::json!({
            "Image": "x:1", "Cmd": ["/bin/true"], "HostConfig": {"NetworkMode": "none"}
        }))
        .unwrap();
        let (id, _) = engine
            .create_container(None, body, None, ApiVersion::MAX)
            .unwrap();

        let loaded = engine.load_container(&id).unwrap();
        engine.remove_stopped(&id, true, false).unwrap();
        let handle = engine.container_handle(&loaded);
        assert!(*handle.subscribe_removed().borrow());
        assert!(!engine.containers.handles().contains_key(&id));

        drop(engine);
    }

    #[test]
    fn start_failures() {
        assert_eq!(
            start_failure("exec: \"nope\": executable file not found in $PATH").0,
            127
        );
        assert_eq!(start_failure("exec /etc: permission denied").0, 126);
        assert_eq!(start_failure("cgroup trouble").0, 128);
    }
}
