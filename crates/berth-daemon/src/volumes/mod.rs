//! Volumes: docker's `/volumes` endpoints and `/system/df`'s volume part
//! over berth-store's `volumes` table and the local driver ([`local`]),
//! and (in [`mounts`]) what containers do with them: naming them at
//! create, mounting and filling them at start, releasing them at stop and
//! removing anonymous ones with their container.
//!
//! The row is the truth about which volumes exist, the directory
//! `<data-root>/volumes/<name>/_data` holds the files. Create makes the
//! directory before the row and remove deletes the row before the
//! directory, so a row always has its directory; a directory left without
//! a row by a daemon killed in between is removed at start-up.

mod copyup;
pub mod local;
pub mod mounts;
pub mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use berth_api::models::VolumeCreateRequest;
use berth_api::{ApiVersion, Filters};
use berth_errdefs::ErrorKind;
use berth_store::{StoreError, VolumeRow};
use serde_json::{json, Value};

pub use mounts::MountPoint;

use crate::engine::Engine;
use crate::error::ApiError;

/// Which containers hold each volume's file system mounted (the local
/// driver's reference counts). Rebuilt from the running containers at
/// start-up.
#[derive(Debug, Default)]
pub struct Active {
    /// (volume -> containers holding its device, containers whose volumes
    /// are mounted).
    state: Mutex<ActiveState>,
}

type ActiveState = (HashMap<String, HashSet<String>>, HashSet<String>);

impl Active {
    fn lock(&self) -> MutexGuard<'_, ActiveState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Internal, msg)
}

/// A new volume's random name (docker's anonymous volume names).
pub(crate) fn random_name() -> String {
    use std::io::Read;
    let mut raw = [0u8; 32];
    // /dev/urandom does not fail on a working host; one where it does
    // cannot make ids of any kind.
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .expect("reading /dev/urandom");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// docker's `CreatedAt` of a volume: RFC 3339 to the second.
fn created_at(ns: i64) -> String {
    let secs = UNIX_EPOCH + Duration::from_secs((ns.max(0) / 1_000_000_000) as u64);
    let full = berth_image::time::rfc3339(secs);
    // "....:SS.000000000Z" -> "....:SSZ"
    match full.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => full,
    }
}

fn map_or_null(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

impl Engine {
    pub(crate) fn volumes_dir(&self) -> PathBuf {
        self.config().data_root.join("volumes")
    }

    pub(crate) fn volume_paths(&self, name: &str) -> local::Paths {
        local::Paths::new(&self.volumes_dir(), name)
    }

    /// A volume in docker's shape (`UsageData` when `usage` is given).
    fn volume_json(&self, v: &VolumeRow, usage: Option<(i64, i64)>) -> Value {
        let mut out = json!({
            "CreatedAt": created_at(v.created_at),
            "Driver": v.driver,
            "Labels": map_or_null(&v.labels),
            "Mountpoint": self.volume_paths(&v.name).data,
            "Name": v.name,
            "Options": map_or_null(&v.options),
            "Scope": "local",
        });
        if let Some((size, refs)) = usage {
            out["UsageData"] = json!({"RefCount": refs, "Size": size});
        }
        out
    }

    fn volume_event(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut attrs = vec![("driver".to_string(), local::DRIVER.to_string())];
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        attrs.sort();
        self.events.emit_with("volume", action, name, attrs);
    }

    /// Checks a new volume's name, driver and options; a refusal is
    /// docker's wording.
    fn check_new_volume(&self, v: &VolumeRow) -> Result<(), ApiError> {
        if !local::valid_name(&v.name) {
            return Err(ApiError::bad_request(local::invalid_name(&v.name)));
        }
        if v.driver != local::DRIVER {
            return Err(ApiError::not_found(format!(
                "create {}: error looking up volume plugin {}: plugin \"{}\" not found",
                v.name, v.driver, v.driver
            )));
        }
        local::check_options(&v.name, &v.options).map_err(ApiError::bad_request)
    }

    /// The directories of a volume about to be recorded.
    fn make_volume_dirs(&self, name: &str) -> Result<(), ApiError> {
        let p = self.volume_paths(name);
        local::make_dirs(&self.volumes_dir(), &p).map_err(|e| {
            internal(format!(
                "creating the volume directory {}: {e}",
                p.data.display()
            ))
        })
    }

    /// A volume row for a request: `local` unless named otherwise.
    pub(crate) fn new_volume_row(
        name: String,
        driver: &str,
        anonymous: bool,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> VolumeRow {
        VolumeRow {
            name,
            driver: if driver.is_empty() {
                local::DRIVER.to_string()
            } else {
                driver.to_string()
            },
            created_at: crate::events::now_nanos() as i64,
            anonymous,
            labels,
            options,
        }
    }

    /// `POST /volumes/create`: makes the volume, or returns the one of that
    /// name (docker's create is idempotent).
    pub fn create_volume(&self, req: VolumeCreateRequest) -> Result<Value, ApiError> {
        let name = req
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(random_name);
        let row = Self::new_volume_row(
            name,
            req.driver.as_deref().unwrap_or(""),
            false,
            req.labels.unwrap_or_default().into_iter().collect(),
            req.driver_opts.unwrap_or_default().into_iter().collect(),
        );
        self.check_new_volume(&row)?;
        if let Ok(existing) = self.store.volume(&row.name) {
            return Ok(self.volume_json(&existing, None));
        }
        self.make_volume_dirs(&row.name)?;
        let (stored, new) = self.store.create_volume(&row)?;
        if new {
            self.volume_event("create", &stored.name, &[]);
        }
        Ok(self.volume_json(&stored, None))
    }

    /// Records `rows` as used by container `id` (making the missing ones
    /// and their directories) in one transaction.
    pub(crate) fn use_volumes(&self, id: &str, rows: &[VolumeRow]) -> Result<(), ApiError> {
        for r in rows {
            if self.store.volume(&r.name).is_err() {
                self.check_new_volume(r)?;
            }
            self.make_volume_dirs(&r.name)?;
        }
        for (row, new) in self.store.use_volumes(id, rows)? {
            if new {
                self.volume_event("create", &row.name, &[]);
            }
        }
        Ok(())
    }

    /// `GET /volumes/{name}`.
    pub fn inspect_volume(&self, name: &str) -> Result<Value, ApiError> {
        let v = self.store.volume(name)?;
        Ok(self.volume_json(&v, None))
    }

    /// `GET /volumes`: docker's filters `dangling`, `name` (substring),
    /// `label` (`key`, `key=value`) and `driver`.
    pub fn list_volumes(&self, filters: &Filters) -> Result<Value, ApiError> {
        filters.validate(&["dangling", "name", "label", "driver"])?;
        let dangling = filters.bool("dangling")?;
        let users = self.store.all_volume_users()?;
        let list: Vec<Value> = self
            .store
            .volumes()?
            .into_iter()
            .filter(|v| {
                let any = |key: &str, ok: &dyn Fn(&str) -> bool| {
                    !filters.contains(key) || filters.get(key).any(ok)
                };
                dangling.is_none_or(|d| d != users.contains_key(&v.name))
                    && any("name", &|n| v.name.contains(n))
                    && any("driver", &|d| v.driver == d)
                    && filters.labels_match("label", || {
                        v.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))
                    })
            })
            .map(|v| self.volume_json(&v, None))
            .collect();
        Ok(json!({"Volumes": list, "Warnings": null}))
    }

    /// `DELETE /volumes/{name}`: a volume in use is docker's 409 whatever
    /// `force` says; `force` makes a missing volume no error.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), ApiError> {
        match self.store.delete_volume(name) {
            Ok(row) => {
                self.remove_volume_files(&row);
                Ok(())
            }
            Err(StoreError::VolumeNotFound { .. }) if force => Ok(()),
            Err(StoreError::VolumeNotFound { .. }) => {
                Err(ApiError::not_found(format!("get {name}: no such volume")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a volume's row is gone: its file system and directory.
    fn remove_volume_files(&self, row: &VolumeRow) {
        let p = self.volume_paths(&row.name);
        if let Err(e) = local::unmount(&p) {
            tracing::warn!(volume = %row.name, error = %e, "unmounting a removed volume");
        }
        if let Err(e) = std::fs::remove_dir_all(&p.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(volume = %row.name, error = %e, "removing a removed volume's files");
            }
        }
        self.volume_event("destroy", &row.name, &[]);
    }

    /// `POST /volumes/prune`: unused volumes (API 1.42 and later: only
    /// anonymous ones unless the `all` filter is true), narrowed by
    /// `label`/`label!`.
    pub fn prune_volumes(&self, filters: &Filters, version: ApiVersion) -> Result<Value, ApiError> {
        filters.validate(&["label", "label!", "all"])?;
        let all = filters.bool("all")?.unwrap_or(false) || version < ApiVersion::new(1, 42);
        let users = self.store.all_volume_users()?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.store.volumes()? {
            let labels = || v.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let wanted = (all || v.anonymous)
                && !users.contains_key(&v.name)
                && filters.prune_labels_match(labels);
            if !wanted {
                continue;
            }
            let size = local::size(&self.volume_paths(&v.name).data);
            match self.store.delete_volume(&v.name) {
                Ok(row) => {
                    self.remove_volume_files(&row);
                    reclaimed += size;
                    deleted.push(v.name);
                }
                // Taken by a container meanwhile: not unused any more.
                Err(StoreError::VolumeInUse { .. } | StoreError::VolumeNotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.events.emit_with(
            "volume",
            "prune",
            "",
            vec![("reclaimed".to_string(), reclaimed.to_string())],
        );
        Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }

    /// `/system/df`'s `Volumes`: every volume with its size and users.
    pub fn volumes_disk_usage(&self) -> Result<Value, ApiError> {
        let users = self.store.all_volume_users()?;
        let list: Vec<Value> = self
            .store
            .volumes()?
            .iter()
            .map(|v| {
                let size = local::size(&self.volume_paths(&v.name).data) as i64;
                let refs = users.get(&v.name).map_or(0, |u| u.len()) as i64;
                self.volume_json(v, Some((size, refs)))
            })
            .collect();
        Ok(Value::Array(list))
    }

    /// Start-up: volume directories without a row (a create or remove cut
    /// short) go, unless something is mounted there.
    pub(crate) fn remove_orphan_volume_dirs(&self) {
        let Ok(known) = self.store.volumes() else {
            return;
        };
        let known: HashSet<String> = known.into_iter().map(|v| v.name).collect();
        for e in std::fs::read_dir(self.volumes_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            let p = self.volume_paths(&name);
            if local::is_mount_point(&p.data) {
                tracing::warn!(
                    volume = name,
                    "an unrecorded volume directory has a mount; left alone"
                );
                continue;
            }
            tracing::warn!(dir = %p.dir.display(), "removing the directory of an unrecorded volume");
            let _ = std::fs::remove_dir_all(&p.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_is_to_the_second() {
        assert_eq!(
            created_at(1_795_359_950_592_319_803),
            "2026-11-22T15:05:50Z"
        );
    }
}
