//! Containers and their volumes, as docker's daemon treats them:
//!
//! - create: the request's volumes (`-v name:/x`, `-v /x`, `Mounts` of type
//!   volume), `Config.Volumes` and the image's VOLUMEs get names (random
//!   64-hex ones for anonymous volumes), `VolumesFrom` copies another
//!   container's volumes and binds (its own mounts win over those), and the
//!   container is recorded as their user (missing named volumes are made);
//!   the result is kept in the container's config as [`MountPoint`]s;
//! - start: each volume's directory is made sure of, a volume with a
//!   device (`type`/`device`/`o`) is mounted on it if no running container
//!   holds it yet, an empty volume gets the image's content at its
//!   destination (unless `nocopy`), and the spec gets bind mounts of the
//!   `_data` directories;
//! - stop: the device of a volume no other running container holds is
//!   unmounted;
//! - remove with `v=1` (and `AutoRemove`): the container's anonymous
//!   volumes go, unless another container uses them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::VolumeRow;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{copyup, internal, local};
use crate::containers::Loaded;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::spec::ResolvedMount;

/// One of a container's volumes (or a bind it inherited through
/// `VolumesFrom`), fixed at create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// `volume` or `bind`.
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name ("" for a bind).
    #[serde(rename = "Name", default)]
    pub name: String,
    /// A bind's host path ("" for a volume: its `_data`).
    #[serde(rename = "Source", default)]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "Driver", default)]
    pub driver: String,
    /// docker's `Mode` ("z", "ro", "" ...).
    #[serde(rename = "Mode", default)]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(rename = "Propagation", default)]
    pub propagation: String,
    /// Fill the volume with the image's content while it is empty.
    #[serde(rename = "CopyData", default)]
    pub copy: bool,
    /// Made for this container (removed by `rm -v`).
    #[serde(rename = "Anonymous", default)]
    pub anonymous: bool,
}

impl MountPoint {
    fn volume(
        destination: String,
        name: String,
        rw: bool,
        mode: String,
        copy: bool,
        anonymous: bool,
    ) -> MountPoint {
        MountPoint {
            typ: "volume".into(),
            name,
            source: String::new(),
            destination,
            driver: local::DRIVER.into(),
            mode,
            rw,
            propagation: String::new(),
            copy,
            anonymous,
        }
    }

    fn is_volume(&self) -> bool {
        self.typ == "volume"
    }
}

/// A bind as docker's inspect shows it.
fn bind_json(destination: &str, source: &str, mode: &str, rw: bool, propagation: &str) -> Value {
    json!({
        "Type": "bind",
        "Source": source,
        "Destination": destination,
        "Mode": mode,
        "RW": rw,
        "Propagation": propagation,
    })
}

impl Engine {
    /// At create: the container's mount points and the volume rows it
    /// uses (new ones checked, not yet recorded).
    pub(crate) fn plan_mount_points(
        &self,
        body: &berth_api::models::ContainerCreateBody,
        image: &berth_image::ImageConfig,
    ) -> Result<(Vec<MountPoint>, Vec<VolumeRow>), ApiError> {
        let req = crate::spec::mount_requests(body, image)?;
        let mut points: BTreeMap<String, MountPoint> = BTreeMap::new();
        for (name, writable) in &req.volumes_from {
            for mut mp in self.inheritable_mounts(name)? {
                mp.rw = mp.rw && *writable;
                mp.copy = false;
                points.insert(mp.destination.clone(), mp);
            }
        }
        let mut rows = Vec::new();
        for b in &req.binds {
            points.remove(&b.destination);
        }
        let hc = body.host_config.clone().unwrap_or_default();
        for dest in req
            .tmpfs
            .iter()
            .cloned()
            .chain(hc.tmpfs.iter().flatten().map(|(d, _)| d.clone()))
        {
            points.remove(&dest);
        }
        for (dest, v) in req.volumes {
            let anonymous = v.name.is_empty();
            let name = if anonymous {
                super::random_name()
            } else {
                v.name.clone()
            };
            let row =
                Self::new_volume_row(name.clone(), &v.driver, anonymous, v.labels, v.driver_opts);
            rows.push(row);
            points.insert(
                dest.clone(),
                MountPoint::volume(dest, name, !v.readonly, v.mode, v.copy, anonymous),
            );
        }
        for dest in req.anonymous {
            if points.contains_key(&dest) {
                continue;
            }
            let name = super::random_name();
            rows.push(Self::new_volume_row(
                name.clone(),
                "",
                true,
                BTreeMap::new(),
                BTreeMap::new(),
            ));
            points.insert(
                dest.clone(),
                MountPoint::volume(dest, name, true, String::new(), true, true),
            );
        }
        // Inherited volumes exist; their rows are only for the user records.
        for mp in points.values().filter(|m| m.is_volume()) {
            if !rows.iter().any(|r| r.name == mp.name) {
                rows.push(Self::new_volume_row(
                    mp.name.clone(),
                    &mp.driver,
                    mp.anonymous,
                    BTreeMap::new(),
                    BTreeMap::new(),
                ));
            }
        }
        for r in &rows {
            if self.store.volume(&r.name).is_err() {
                self.check_new_volume(r)?;
            }
        }
        Ok((points.into_values().collect(), rows))
    }

    /// What `VolumesFrom` takes of container `name`: its volumes and binds.
    fn inheritable_mounts(&self, name: &str) -> Result<Vec<MountPoint>, ApiError> {
        // docker answers a missing source with 400, not 404 (which the
        // CLI would take for a missing image and pull).
        let src = self.load_container(name).map_err(|e| match e.status {
            404 => ApiError::bad_request(e.message),
            _ => e,
        })?;
        let image = self.store.image(&src.image_id)?;
        let config = crate::images::parse_image_config(&image)?;
        let mut out = src.config.mount_points.clone();
        let req = crate::spec::mount_requests(&src.config.create, &config)?;
        for b in req.binds {
            out.retain(|m| m.destination != b.destination);
            out.push(MountPoint {
                typ: "bind".into(),
                name: String::new(),
                source: b.source,
                destination: b.destination,
                driver: String::new(),
                mode: b.mode,
                rw: !b.readonly,
                propagation: b.propagation,
                copy: false,
                anonymous: false,
            });
        }
        Ok(out)
    }

    /// At start: the container's volumes ready (directories, devices) and
    /// resolved to host paths for the spec.
    pub(crate) fn mount_volumes(&self, c: &Loaded) -> Result<Vec<ResolvedMount>, ApiError> {
        let mut out = Vec::with_capacity(c.config.mount_points.len());
        if c.config.mount_points.iter().any(MountPoint::is_volume) {
            self.volumes.lock().1.insert(c.id.clone());
        }
        for mp in &c.config.mount_points {
            let propagation = if mp.propagation.is_empty() {
                "rprivate".to_string()
            } else {
                mp.propagation.clone()
            };
            if !mp.is_volume() {
                out.push(ResolvedMount {
                    destination: mp.destination.clone(),
                    source: PathBuf::from(&mp.source),
                    readonly: !mp.rw,
                    propagation,
                });
                continue;
            }
            let row = self.store.volume(&mp.name)?;
            self.make_volume_dirs(&mp.name)?;
            let p = self.volume_paths(&mp.name);
            if local::has_device(&row.options) {
                self.activate(&row, &p, &c.id)?;
            }
            self.volume_event(
                "mount",
                &mp.name,
                &[
                    ("container", c.id.clone()),
                    ("destination", mp.destination.clone()),
                    ("propagation", mp.propagation.clone()),
                    ("read/write", mp.rw.to_string()),
                ],
            );
            out.push(ResolvedMount {
                destination: mp.destination.clone(),
                source: p.data,
                readonly: !mp.rw,
                propagation,
            });
        }
        Ok(out)
    }

    /// At create, as docker's populateVolumes: each volume of `points` to
    /// fill gets the image's content at its destination while it is
    /// empty. Runs on a thread of its own with a private mount namespace,
    /// where the container's overlay (`dir`, over the image's `chain`) and
    /// the device of a volume that has one are mounted for the copy alone
    /// (so a tmpfs volume no running container holds keeps nothing of it,
    /// as with docker's local driver).
    pub(crate) fn populate_volumes(
        &self,
        chain: &[berth_image::ChainId],
        dir: &Path,
        points: &[MountPoint],
    ) -> Result<(), ApiError> {
        let fill: Vec<&MountPoint> = points.iter().filter(|m| m.is_volume() && m.copy).collect();
        if fill.is_empty() {
            return Ok(());
        }
        let copy = || -> Result<(), ApiError> {
            super::view::private_mounts().map_err(internal)?;
            let rootfs = crate::containers::rootfs::mount(&self.layers, chain, dir)?;
            for mp in fill {
                let row = self.store.volume(&mp.name)?;
                let p = self.volume_paths(&mp.name);
                if local::has_device(&row.options) && !local::is_mount_point(&p.data) {
                    local::mount(&p, &row.options).map_err(|e| {
                        internal(format!("mounting volume {}'s device: {e}", mp.name))
                    })?;
                }
                copyup::fill(&rootfs, &mp.destination, &p.data).map_err(|e| {
                    internal(format!(
                        "copying the image's content at {} into volume {}: {e}",
                        mp.destination, mp.name
                    ))
                })?;
            }
            Ok(())
        };
        // The thread's namespace, and every mount made in it, ends with it.
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("volume-copy".into())
                .spawn_scoped(s, copy)
                .map_err(|e| internal(format!("starting the volume copy thread: {e}")))?
                .join()
                .unwrap_or_else(|_| Err(internal("the volume copy thread panicked")))
        })
    }

    /// Mounts a volume's device unless a running container holds it, and
    /// counts container `id` as a holder.
    fn activate(&self, row: &VolumeRow, p: &local::Paths, id: &str) -> Result<(), ApiError> {
        let mut active = self.volumes.lock();
        let holders = active.0.entry(row.name.clone()).or_default();
        if holders.is_empty() && !local::is_mount_point(&p.data) {
            local::mount(p, &row.options).map_err(|e| {
                internal(format!(
                    "error while mounting volume '{}': failed to mount local volume: mount {}:{} (type {}, options {:?}): {e}",
                    p.data.display(),
                    row.options.get("device").map(String::as_str).unwrap_or(""),
                    p.data.display(),
                    row.options.get("type").map(String::as_str).unwrap_or(""),
                    row.options.get("o").map(String::as_str).unwrap_or(""),
                ))
            })?;
        }
        holders.insert(id.to_string());
        Ok(())
    }

    /// At stop (and after a failed start): the devices of volumes no other
    /// running container holds are unmounted. Does nothing for a container
    /// whose volumes are not mounted.
    pub(crate) fn release_volumes(&self, c: &Loaded) {
        let mut active = self.volumes.lock();
        if !active.1.remove(&c.id) {
            return;
        }
        for mp in c.config.mount_points.iter().filter(|m| m.is_volume()) {
            if let Some(holders) = active.0.get_mut(&mp.name) {
                holders.remove(&c.id);
                if holders.is_empty() {
                    active.0.remove(&mp.name);
                    if let Err(e) = local::unmount(&self.volume_paths(&mp.name)) {
                        tracing::warn!(volume = %mp.name, error = %e, "unmounting a volume's device");
                    }
                }
            }
            self.volume_event("unmount", &mp.name, &[("container", c.id.clone())]);
        }
    }

    /// After the container's row is gone (`rm -v`, `AutoRemove`): its
    /// anonymous volumes, unless another container uses them.
    pub(crate) fn remove_anonymous_volumes(&self, points: &[MountPoint]) {
        for mp in points.iter().filter(|m| m.is_volume() && m.anonymous) {
            match self.store.delete_volume(&mp.name) {
                Ok(row) => self.remove_volume_files(&row),
                Err(berth_store::StoreError::VolumeInUse { .. })
                | Err(berth_store::StoreError::VolumeNotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(volume = %mp.name, error = %e, "removing an anonymous volume")
                }
            }
        }
    }

    /// inspect's `Mounts`: binds, `Mounts` tmpfs entries and volumes, by
    /// destination.
    pub(crate) fn mounts_json(&self, c: &Loaded, image: &berth_image::ImageConfig) -> Value {
        let mut out: Vec<(String, Value)> = Vec::new();
        if let Ok(req) = crate::spec::mount_requests(&c.config.create, image) {
            for b in req.binds {
                let v = bind_json(
                    &b.destination,
                    &b.source,
                    &b.mode,
                    !b.readonly,
                    &b.propagation,
                );
                out.push((b.destination, v));
            }
            for t in req.tmpfs {
                let v = json!({"Type": "tmpfs", "Source": "", "Destination": t, "Mode": "", "RW": true, "Propagation": ""});
                out.push((t, v));
            }
        }
        for mp in &c.config.mount_points {
            let v = if mp.is_volume() {
                json!({
                    "Type": "volume",
                    "Name": mp.name,
                    "Source": self.volume_paths(&mp.name).data,
                    "Destination": mp.destination,
                    "Driver": mp.driver,
                    "Mode": mp.mode,
                    "RW": mp.rw,
                    "Propagation": mp.propagation,
                })
            } else {
                bind_json(
                    &mp.destination,
                    &mp.source,
                    &mp.mode,
                    mp.rw,
                    &mp.propagation,
                )
            };
            out.push((mp.destination.clone(), v));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Array(out.into_iter().map(|(_, v)| v).collect())
    }

    /// Start-up, around [`Engine::restore`]: the running containers' holds
    /// on volume devices are counted first (so settling a dead container
    /// cannot unmount what a live one uses), and afterwards devices no
    /// running container holds are unmounted, and volume directories
    /// without a row removed.
    pub(crate) fn restore_with_volumes(self: &Arc<Self>) {
        if let Ok(users) = self.store.all_volume_users() {
            let mut active = self.volumes.lock();
            for (volume, ids) in users {
                for id in ids {
                    let live = self.load_container(&id).is_ok_and(|c| {
                        c.state.status.is_live()
                            || c.state.status == crate::containers::Status::Restarting
                    });
                    if live {
                        active.1.insert(id.clone());
                        active.0.entry(volume.clone()).or_default().insert(id);
                    }
                }
            }
        }
        self.restore();
        let held: Vec<String> = self.volumes.lock().0.keys().cloned().collect();
        for v in self.store.volumes().unwrap_or_default() {
            if local::has_device(&v.options) && !held.contains(&v.name) {
                if let Err(e) = local::unmount(&self.volume_paths(&v.name)) {
                    tracing::warn!(volume = %v.name, error = %e, "unmounting an unused volume's device");
                }
            }
        }
        self.remove_orphan_volume_dirs();
    }
}
