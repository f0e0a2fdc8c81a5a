//! Image services: list, inspect, history, tag, remove, import, load,
//! save, prune, disk usage. Synchronous; handlers call them on blocking
//! threads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};

use berth_api::filters::FilterError;
use berth_api::models::{ImageDeleteResponseItem, ImagePruneResponse, ImageSummary};
use berth_api::{ApiVersion, Filters};
use berth_errdefs::{ErrorKind, HasKind};
use berth_image::{
    ArchiveError, ContentError, Digest, ImageConfig, ImageParts, ImportError, ImportOptions,
    LoadOptions, Platform, PlatformError, Reference, ReferenceError, SaveItem,
};
use berth_store::{GcError, GcOptions, ImageRecord, RefKind, StoreError};
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::image_lineage::Lineage;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    #[error("{0}")]
    Import(#[from] ImportError),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Content(#[from] ContentError),
    #[error("{0}")]
    Filter(#[from] FilterError),
    #[error("{0}")]
    Platform(#[from] PlatformError),
    #[error("removing unused image data: {0}")]
    Gc(#[from] GcError),
    #[error("image {id} has an unreadable config: {reason}; remove it and pull or load it again")]
    BadConfig { id: String, reason: String },
    #[error("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories { short: String },
    #[error(
        "image {id} has no manifest to save (it was stored without one); pull or load it again"
    )]
    NoManifest { id: String },
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("conflict: {0}")]
    InUse(String),
    #[error("{what} is not implemented by berthd yet")]
    NotImplemented { what: String },
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::Store(e) => e.kind(),
            ImageError::Reference(e) => e.kind(),
            ImageError::Import(e) => e.kind(),
            ImageError::Archive(e) => e.kind(),
            ImageError::Content(e) => e.kind(),
            ImageError::Filter(e) => e.kind(),
            ImageError::Platform(e) => e.kind(),
            ImageError::Gc(e) => e.kind(),
            ImageError::BadConfig { .. } | ImageError::NoManifest { .. } => ErrorKind::DataLoss,
            ImageError::MultipleRepositories { .. } | ImageError::InUse(_) => ErrorKind::Conflict,
            ImageError::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            ImageError::NotImplemented { .. } => ErrorKind::NotImplemented,
        }
    }
}

type Result<T> = std::result::Result<T, ImageError>;

/// Tags and digest references of one image, in docker's familiar form.
struct Names {
    tags: Vec<String>,
    digests: Vec<String>,
}

impl Engine {
    fn names_by_image(&self) -> Result<HashMap<Digest, Names>> {
        let mut out: HashMap<Digest, Names> = HashMap::new();
        for (r, kind, id) in self.store.all_references()? {
            let entry = out.entry(id).or_insert(Names {
                tags: Vec::new(),
                digests: Vec::new(),
            });
            match kind {
                RefKind::Tag => entry.tags.push(r.familiar()),
                RefKind::Digest => entry.digests.push(r.familiar()),
            }
        }
        Ok(out)
    }

    /// `GET /images/json`. Without `all`, an untagged image that has
    /// children (a classic build's step) is left out, as docker does.
    pub fn list_images(&self, filters: &Filters, all: bool) -> Result<Vec<ImageSummary>> {
        filters.validate(&["dangling", "label", "before", "since", "until", "reference"])?;
        let dangling = filters.bool("dangling")?;
        let mut names = self.names_by_image()?;
        let images = self.store.images()?;
        let lineage = Lineage::of(&images);
        let added_of = |name: &str| -> Result<i64> {
            let r = self.store.resolve_image(name)?;
            Ok(created_unix(&r))
        };
        let before: Option<i64> = filters.get("before").next().map(added_of).transpose()?;
        let since: Option<i64> = filters.get("since").next().map(added_of).transpose()?;
        let until = until_nanos(filters)?;
        let mut out = Vec::new();
        for image in images {
            let n = names.remove(&image.id).unwrap_or(Names {
                tags: Vec::new(),
                digests: Vec::new(),
            });
            if !all && n.tags.is_empty() && n.digests.is_empty() && lineage.has_children(&image.id)
            {
                continue;
            }
            if let Some(d) = dangling {
                if d != n.tags.is_empty() {
                    continue;
                }
            }
            let created = created_unix(&image);
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            if until.is_some_and(|u| i128::from(created) * 1_000_000_000 >= u) {
                continue;
            }
            let labels = image_labels(&image);
            if !filters.labels_match("label", || {
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            }) {
                continue;
            }
            let mut tags = n.tags;
            if filters.contains("reference") {
                tags.retain(|t| filters.get("reference").any(|p| reference_matches(p, t)));
                if tags.is_empty() {
                    continue;
                }
            }
            out.push(ImageSummary {
                id: image.id.to_string(),
                parent_id: lineage
                    .parent(&image.id)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                repo_tags: tags,
                repo_digests: n.digests,
                created,
                size: image.size as i64,
                shared_size: -1,
                labels: labels.into_iter().collect(),
                containers: -1,
                ..ImageSummary::default()
            });
        }
        Ok(out)
    }

    /// `GET /images/{name}/json`, in docker's shape (the image's own config
    /// is passed through as it is stored).
    pub fn inspect_image(&self, name: &str) -> Result<Value> {
        let image = self.store.resolve_image(name)?;
        let raw: Value =
            serde_json::from_slice(&image.config).map_err(|e| ImageError::BadConfig {
                id: image.id.to_string(),
                reason: e.to_string(),
            })?;
        let config = parse_image_config(&image)?;
        let names = self.names_by_image()?.remove(&image.id);
        let (tags, digests) = names.map(|n| (n.tags, n.digests)).unwrap_or_default();
        let upper = image
            .layers
            .last()
            .map(|l| self.layers.diff_path(&l.chain_id));
        let lower: Vec<String> = image
            .layers
            .iter()
            .rev()
            .skip(1)
            .map(|l| self.layers.diff_path(&l.chain_id).display().to_string())
            .collect();
        let mut graph = serde_json::Map::new();
        if let Some(u) = upper {
            graph.insert("UpperDir".into(), json!(u.display().to_string()));
        }
        if !lower.is_empty() {
            graph.insert("LowerDir".into(), json!(lower.join(":")));
        }
        let mut v = json!({
            "Id": image.id.to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": config.parent.as_ref().map(ToString::to_string).unwrap_or_default(),
            "Comment": config.comment.clone().unwrap_or_default(),
            "Created": config.created.clone().unwrap_or_default(),
            "Container": config.container.clone().unwrap_or_default(),
            "ContainerConfig": with_zero_fields(raw.get("container_config")),
            "DockerVersion": config.docker_version.clone().unwrap_or_default(),
            "Author": config.author.clone().unwrap_or_default(),
            "Config": with_zero_fields(raw.get("config")),
            "Architecture": config.architecture,
            "Variant": config.variant,
            "Os": config.os,
            "OsVersion": config.os_version,
            "Size": image.size,
            "GraphDriver": {"Name": "overlay2", "Data": graph},
            "RootFS": {
                "Type": "layers",
                "Layers": image.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
            },
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        });
        // docker leaves these out when empty (omitempty).
        if let Some(obj) = v.as_object_mut() {
            obj.retain(|k, val| !(matches!(k.as_str(), "Variant" | "OsVersion") && val.is_null()));
        }
        Ok(v)
    }

    /// [`Engine::inspect_image`] as API `version` shows it: before 1.44
    /// with `VirtualSize` (its `Size`) and Go's zero time for a `Created`
    /// the config lacks; from 1.44 without either.
    pub fn inspect_image_as_of(&self, name: &str, version: ApiVersion) -> Result<Value> {
        let mut v = self.inspect_image(name)?;
        if version < ApiVersion::new(1, 44) {
            v["VirtualSize"] = v["Size"].clone();
            if v["Created"] == "" {
                v["Created"] = json!("0001-01-01T00:00:00Z");
            }
        } else if v["Created"] == "" {
            if let Some(obj) = v.as_object_mut() {
                obj.remove("Created");
            }
        }
        Ok(v)
    }

    /// `GET /images/{name}/history`: newest first, as docker prints it.
    pub fn image_history(&self, name: &str) -> Result<Vec<Value>> {
        let image = self.store.resolve_image(name)?;
        let config = parse_image_config(&image)?;
        let tags = self
            .names_by_image()?
            .remove(&image.id)
            .map(|n| n.tags)
            .unwrap_or_default();
        let mut layers = image.layers.iter();
        let mut rows = Vec::new();
        let history = if config.history.is_empty() {
            // Images without history get one row per layer, as docker shows.
            image
                .layers
                .iter()
                .map(|_| berth_image::config::History::default())
                .collect()
        } else {
            config.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                layers
                    .next()
                    .and_then(|l| self.layers.meta(&l.chain_id).ok())
                    .map(|m| m.size)
                    .unwrap_or(0)
            };
            rows.push(json!({
                "Id": "<missing>",
                "Created": h.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                "CreatedBy": h.created_by.clone().unwrap_or_default(),
                "Tags": Value::Null,
                "Size": size,
                "Comment": h.comment.clone().unwrap_or_default(),
            }));
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top["Id"] = json!(image.id.to_string());
            top["Tags"] = json!(tags);
        }
        Ok(rows)
    }

    /// `POST /images/{name}/tag`.
    pub fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let image = self.store.resolve_image(name)?;
        if repo.is_empty() {
            return Err(ImageError::InvalidArgument {
                message: "repository name must have at least one component".into(),
            });
        }
        let mut target = Reference::parse(repo)?;
        if target.digest().is_some() {
            return Err(ImageError::InvalidArgument {
                message: format!("refusing to create a tag with a digest reference: {repo}"),
            });
        }
        if let Some(t) = tag.filter(|t| !t.is_empty()) {
            target = target.with_tag(t)?;
        }
        let target = target.with_default_tag();
        let _gc = self.store.hold_off_gc();
        self.store.set_reference(&target, &image.id)?;
        self.events.emit(
            "image",
            "tag",
            &image.id.to_string(),
            Some(&target.familiar()),
        );
        Ok(())
    }

    /// `DELETE /images/{name}`: docker's `rmi` rules. An image a container
    /// uses is not deleted: without `force` that is a conflict; with it the
    /// image loses its names but stays for its containers (docker would
    /// delete a stopped container's image; berth keeps what a container
    /// needs to start again). A running container's image is never forced.
    pub fn remove_image(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let image = self.store.resolve_image(name)?;
        let refs = self.store.references(&image.id)?;
        let by_reference = Reference::parse(name).ok().and_then(|r| {
            let r = r.with_default_tag();
            refs.iter().find(|x| **x == r).cloned()
        });
        let mut out = Vec::new();
        if let Some(r) = by_reference {
            // Removing one name of an image that keeps other tags only
            // untags it, as docker does.
            let tags_left = refs
                .iter()
                .filter(|x| x.digest().is_none() && **x != r)
                .count();
            if tags_left > 0 || r.digest().is_some() && refs.len() > 1 {
                self.store.remove_reference(&r)?;
                out.push(self.untagged_event(&image.id, &r));
                return Ok(out);
            }
        } else {
            let repos: BTreeSet<String> = refs.iter().map(|r| r.name()).collect();
            if repos.len() > 1 && !force {
                return Err(ImageError::MultipleRepositories {
                    short: image.id.hex()[..12].to_string(),
                });
            }
        }
        let users = self.store.containers_using(&image.id)?;
        if let Some(user) = users.first() {
            let short_image = &image.id.hex()[..12];
            let running = users.iter().find(|id| {
                self.load_container(id)
                    .is_ok_and(|c| c.state.status.is_live())
            });
            if let Some(r) = running {
                return Err(ImageError::InUse(format!(
                    "unable to delete {short_image} (cannot be forced) - image is being used by running container {}",
                    &r[..12]
                )));
            }
            if !force {
                return Err(ImageError::InUse(match Reference::parse(name) {
                    Ok(_) if !name.starts_with("sha256:") && !image.id.hex().starts_with(name) => format!(
                        "unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {short_image}",
                        &user[..12]
                    ),
                    _ => format!(
                        "unable to delete {short_image} (must be forced) - image is being used by stopped container {}",
                        &user[..12]
                    ),
                }));
            }
            for r in refs {
                self.store.remove_reference(&r)?;
                out.push(self.untagged_event(&image.id, &r));
            }
            return Ok(out);
        }
        let mut lineage = Lineage::of(&self.store.images()?);
        for r in self.store.delete_image(&image.id)? {
            out.push(self.untagged_event(&image.id, &r));
        }
        out.push(self.deleted_event(&image.id));
        if prune {
            self.delete_unneeded_ancestors(&mut lineage, &image.id, &mut out)?;
            self.collect_garbage()?;
        }
        Ok(out)
    }

    /// After `deleted`, its ancestors that are untagged, have no other
    /// child and no container (docker's prune of parents on `rmi`).
    fn delete_unneeded_ancestors(
        &self,
        lineage: &mut Lineage,
        deleted: &Digest,
        out: &mut Vec<ImageDeleteResponseItem>,
    ) -> Result<()> {
        let mut child = deleted.clone();
        while let Some(parent) = lineage.remove(&child) {
            if lineage.has_children(&parent)
                || !self.store.references(&parent)?.is_empty()
                || !self.store.containers_using(&parent)?.is_empty()
            {
                break;
            }
            self.store.delete_image(&parent)?;
            out.push(self.deleted_event(&parent));
            child = parent;
        }
        Ok(())
    }

    /// docker names the image by its id in untag and delete events (the
    /// name removed is in the response, not the event).
    fn untagged_event(&self, id: &Digest, r: &Reference) -> ImageDeleteResponseItem {
        let id = id.to_string();
        self.events.emit("image", "untag", &id, Some(&id));
        untagged(r)
    }

    fn deleted_event(&self, id: &Digest) -> ImageDeleteResponseItem {
        self.events
            .emit("image", "delete", &id.to_string(), Some(&id.to_string()));
        ImageDeleteResponseItem {
            deleted: Some(id.to_string()),
            ..Default::default()
        }
    }

    /// Removes blobs and layers nothing references any more.
    pub(crate) fn collect_garbage(&self) -> Result<u64> {
        let report = self
            .store
            .gc(&self.content, &self.layers, &GcOptions::default())?;
        Ok(report.bytes_freed)
    }

    /// `POST /images/create?fromSrc=-`: a rootfs tarball in the body.
    pub fn import_image<R: Read>(
        &self,
        tarball: R,
        repo: Option<&str>,
        tag: Option<&str>,
        message: Option<String>,
        changes: Vec<String>,
        platform: Option<&str>,
    ) -> Result<Digest> {
        // Parse the target name before reading a byte.
        let target = target_reference(repo, tag)?;
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(Platform::parse)
            .transpose()?;
        let options = ImportOptions {
            changes,
            message,
            platform,
            ..ImportOptions::default()
        };
        let _gc = self.store.hold_off_gc();
        let parts = berth_image::import(&self.content, &self.layers, tarball, &options)?;
        self.store
            .put_image(&ImageRecord::from_parts(&parts, None))?;
        if let Some(t) = &target {
            self.store.set_reference(t, &parts.id)?;
        }
        let name = target.map(|t| t.familiar());
        self.events
            .emit("image", "import", &parts.id.to_string(), name.as_deref());
        Ok(parts.id)
    }

    /// Records a committed image and tags it `target`.
    pub(crate) fn record_commit(
        &self,
        parts: &ImageParts,
        target: Option<&Reference>,
    ) -> Result<()> {
        self.store
            .put_image(&ImageRecord::from_parts(parts, None))?;
        if let Some(t) = target {
            self.store.set_reference(t, &parts.id)?;
            self.events
                .emit("image", "tag", &parts.id.to_string(), Some(&t.familiar()));
        }
        Ok(())
    }

    /// `POST /images/load`: the lines docker prints (`Loaded image: ...`).
    pub fn load_images<R: Read>(&self, input: R) -> Result<Vec<String>> {
        let _gc = self.store.hold_off_gc();
        let loaded =
            berth_image::load(&self.content, &self.layers, input, &LoadOptions::default())?;
        let mut lines = Vec::new();
        for l in loaded {
            self.store
                .put_image(&ImageRecord::from_parts(&l.image, None))?;
            let id = l.image.id.to_string();
            if l.references.is_empty() {
                lines.push(format!("Loaded image ID: {id}\n"));
                self.events.emit("image", "load", &id, None);
            }
            for r in &l.references {
                let r = r.clone().with_default_tag();
                self.store.set_reference(&r, &l.image.id)?;
                lines.push(format!("Loaded image: {}\n", r.familiar()));
                self.events.emit("image", "load", &id, Some(&r.familiar()));
            }
        }
        Ok(lines)
    }

    /// Resolves `docker save` names before any byte is written, so that a
    /// bad name is a clean 404 and not a truncated archive.
    pub fn save_items(&self, names: &[String]) -> Result<Vec<SaveItem>> {
        let mut items: BTreeMap<Digest, SaveItem> = BTreeMap::new();
        for name in names {
            let image = self.store.resolve_image(name)?;
            let manifest_digest =
                image
                    .manifest_digest
                    .clone()
                    .ok_or_else(|| ImageError::NoManifest {
                        id: image.id.to_string(),
                    })?;
            let item = items.entry(image.id.clone()).or_insert(SaveItem {
                manifest_digest,
                tags: Vec::new(),
            });
            // A name that is a reference records that tag; a bare
            // repository records all of its tags; an id records none.
            if let Ok(r) = Reference::parse(name) {
                let refs = self.store.references(&image.id)?;
                let wanted: Vec<Reference> = if r.tag().is_some() || r.digest().is_some() {
                    refs.into_iter().filter(|x| *x == r).collect()
                } else {
                    refs.into_iter()
                        .filter(|x| x.name() == r.name() && x.tag().is_some())
                        .collect()
                };
                for w in wanted {
                    if !item.tags.contains(&w) {
                        item.tags.push(w);
                    }
                }
            }
        }
        Ok(items.into_values().collect())
    }

    /// `GET /images/get`: writes the archive.
    pub fn save_images<W: Write>(&self, items: &[SaveItem], out: W) -> Result<W> {
        Ok(berth_image::save(&self.content, items, out)?)
    }

    /// `POST /images/prune`: dangling images by default, all unused ones
    /// with `dangling=false`; `label` and `until` narrow it.
    pub fn prune_images(&self, filters: &Filters) -> Result<ImagePruneResponse> {
        filters.validate(&["dangling", "label", "label!", "until"])?;
        let all = filters.bool("dangling")? == Some(false);
        let until = until_nanos(filters)?;
        let dangling: BTreeSet<Digest> = self.store.dangling_images()?.into_iter().collect();
        let images = self.store.images()?;
        let mut lineage = Lineage::of(&images);
        let mut deleted = Vec::new();
        for image in images {
            // A build step's image goes with the last of its children.
            let step = dangling.contains(&image.id) && lineage.has_children(&image.id);
            if step || (!all && !dangling.contains(&image.id)) {
                continue;
            }
            if deleted.iter().any(|d: &ImageDeleteResponseItem| {
                d.deleted.as_deref() == Some(&image.id.to_string())
            }) {
                continue;
            }
            if until.is_some_and(|u| i128::from(image.added_at) * 1_000_000_000 >= u) {
                continue;
            }
            // An image a container uses is not unused.
            if !self.store.containers_using(&image.id)?.is_empty() {
                continue;
            }
            let labels = image_labels(&image);
            let pairs = || labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            if !filters.prune_labels_match(pairs) {
                continue;
            }
            for r in self.store.delete_image(&image.id)? {
                deleted.push(self.untagged_event(&image.id, &r));
            }
            deleted.push(self.deleted_event(&image.id));
            self.delete_unneeded_ancestors(&mut lineage, &image.id, &mut deleted)?;
        }
        let freed = self.collect_garbage()?;
        Ok(ImagePruneResponse {
            images_deleted: Some(deleted),
            space_reclaimed: Some(freed as i64),
        })
    }

    /// `GET /system/df`'s image half: every image with the number of
    /// containers using it and the size of its layers that other images
    /// share, and the layers' total. Containers and volumes are added by
    /// the route; berthd keeps no build cache apart from images.
    pub fn disk_usage(&self, version: ApiVersion) -> Result<Value> {
        let layers = self.layer_sharing()?;
        let mut images = self.list_images(&Filters::new(), true)?;
        for summary in &mut images {
            summary.shared_size = layers.shared_size(&summary.id);
            summary.containers = layers
                .records
                .iter()
                .find(|r| r.id.to_string() == summary.id)
                .map(|r| self.store.containers_using(&r.id).map(|c| c.len() as i64))
                .transpose()?
                .unwrap_or(-1);
        }
        let mut df = json!({
            "LayersSize": layers.total_size(),
            "Images": images_as_of(images, version),
            "Containers": [],
            "Volumes": [],
            "BuildCache": [],
        });
        if version < ApiVersion::new(1, 42) {
            // An experimental builder's size, dropped in 1.42.
            df["BuilderSize"] = json!(0);
        }
        Ok(df)
    }

    /// `GET /images/json?shared-size=1` (API 1.42): each image's size of
    /// the layers other images share.
    pub fn with_shared_sizes(&self, images: &mut [ImageSummary]) -> Result<()> {
        let layers = self.layer_sharing()?;
        for summary in images {
            summary.shared_size = layers.shared_size(&summary.id);
        }
        Ok(())
    }

    fn layer_sharing(&self) -> Result<LayerSharing<'_>> {
        let records = self.store.images()?;
        let mut users_of_chain: HashMap<Digest, usize> = HashMap::new();
        for image in &records {
            for chain in image.chain() {
                *users_of_chain.entry(chain).or_default() += 1;
            }
        }
        Ok(LayerSharing {
            engine: self,
            records,
            users_of_chain,
        })
    }
}

/// Which images use each layer (by chain id): for the sizes they share.
struct LayerSharing<'a> {
    engine: &'a Engine,
    records: Vec<ImageRecord>,
    users_of_chain: HashMap<Digest, usize>,
}

impl LayerSharing<'_> {
    fn layer_size(&self, chain: &Digest) -> u64 {
        self.engine.layers.meta(chain).map(|m| m.size).unwrap_or(0)
    }

    /// Every layer's size once.
    fn total_size(&self) -> u64 {
        self.users_of_chain.keys().map(|c| self.layer_size(c)).sum()
    }

    /// The size of image `id`'s layers that other images use too; -1 for
    /// an image not in the store (removed meanwhile), as docker's unknown.
    fn shared_size(&self, id: &str) -> i64 {
        let Some(record) = self.records.iter().find(|r| r.id.to_string() == id) else {
            return -1;
        };
        let shared: u64 = record
            .chain()
            .iter()
            .filter(|c| self.users_of_chain.get(*c).is_some_and(|n| *n > 1))
            .map(|c| self.layer_size(c))
            .sum();
        shared as i64
    }
}

/// An image list as API `version` shows it: before 1.43 an image without
/// names is `<none>:<none>` and `<none>@<none>`; before 1.44 each has a
/// `VirtualSize`, the same as its `Size`.
pub fn images_as_of(images: Vec<ImageSummary>, version: ApiVersion) -> Vec<Value> {
    images
        .into_iter()
        .map(|mut summary| {
            let unnamed = summary.repo_tags.is_empty() && summary.repo_digests.is_empty();
            if unnamed && version < ApiVersion::new(1, 43) {
                summary.repo_tags = vec!["<none>:<none>".into()];
                summary.repo_digests = vec!["<none>@<none>".into()];
            }
            let mut v = serde_json::to_value(&summary).unwrap_or_default();
            if version < ApiVersion::new(1, 44) {
                v["VirtualSize"] = json!(summary.size);
            }
            v
        })
        .collect()
}

/// An image config's `config` or `container_config` as image inspect
/// shows it: docker's whole Config, its unset fields zero-valued, never
/// null (an import or a BuildKit image has no container_config at all),
/// as clients read fields of it: docker-compose 1.x reads
/// `ContainerConfig.Volumes` when it recreates a container.
fn with_zero_fields(stored: Option<&Value>) -> Value {
    let mut out = zero_container_config();
    if let (Value::Object(out), Some(Value::Object(set))) = (&mut out, stored) {
        for (k, v) in set {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// docker's container Config with every field unset.
fn zero_container_config() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    })
}

fn untagged(r: &Reference) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: Some(r.familiar()),
        ..Default::default()
    }
}

pub(crate) fn parse_image_config(image: &ImageRecord) -> Result<ImageConfig> {
    serde_json::from_slice(&image.config).map_err(|e| ImageError::BadConfig {
        id: image.id.to_string(),
        reason: e.to_string(),
    })
}

fn image_labels(image: &ImageRecord) -> BTreeMap<String, String> {
    serde_json::from_slice::<ImageConfig>(&image.config)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default()
}

/// The image's creation time as docker lists it: the config's `created`,
/// else when berth stored it.
fn created_unix(image: &ImageRecord) -> i64 {
    image
        .created
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(image.added_at)
}

/// `reference` filter: docker matches the familiar name (with or without
/// the tag) against a shell pattern.
pub(crate) fn reference_matches(pattern: &str, tag: &str) -> bool {
    let name = tag.rsplit_once(':').map_or(tag, |(n, _)| n);
    glob(pattern.as_bytes(), tag.as_bytes()) || glob(pattern.as_bytes(), name.as_bytes())
}

/// `*` and `?` shell matching, where neither crosses `/` (path.Match), by
/// berth-build's matcher without backtracking: a recursive one that tried
/// every split for every `*` took minutes on `***********:*******:**`
/// against `busybox:latest`, and a 64 KiB pattern could overflow a
/// thread's stack.
fn glob(p: &[u8], s: &[u8]) -> bool {
    berth_build::ignore::wildcard(
        p,
        s,
        |&c| c == b'*',
        |&c, &b| if c == b'?' { b != b'/' } else { c == b },
        |&b| b != b'/',
    )
}

/// The `until` filter's limit, in nanoseconds since the epoch: a unix
/// time, an RFC 3339 time, or a Go duration before now (`24h`).
fn until_nanos(filters: &Filters) -> Result<Option<i128>> {
    let Some(u) = filters.get("until").next() else {
        return Ok(None);
    };
    crate::events::parse_time(u)
        .map(Some)
        .map_err(|reason| ImageError::InvalidArgument {
            message: format!("invalid filter 'until={u}': {reason}"),
        })
}

/// Seconds since the epoch of an RFC 3339 timestamp
/// (`2024-01-02T03:04:05.123Z`, `...+01:00`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// The `repo[:tag]` an import or commit names, with docker's default tag;
/// `None` without a repo.
pub(crate) fn target_reference(repo: Option<&str>, tag: Option<&str>) -> Result<Option<Reference>> {
    match repo.filter(|r| !r.is_empty()) {
        Some(r) => {
            let mut t = Reference::parse(r)?;
            if let Some(tag) = tag.filter(|t| !t.is_empty()) {
                t = t.with_tag(tag)?;
            }
            Ok(Some(t.with_default_tag()))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_to_unix() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56.789012345Z"),
            Some(1_709_210_096)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T13:34:56+01:00"),
            Some(1_709_210_096)
        );
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn reference_filter_globs() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:1"));
        assert!(reference_matches("busybox:1", "busybox:1"));
        assert!(!reference_matches("busybox:2", "busybox:1"));
        assert!(!reference_matches("*", "example.com/a/b:1"));
        assert!(reference_matches("example.com/*/*", "example.com/a/b:1"));
    }

    #[test]
    fn reference_filter_globs_take_linear_passes() {
        // The image_reference_filter fuzz target's hang (tmin'd): each `*`
        // tried every split of the rest, for minutes per image.
        let started = std::time::Instant::now();
        assert!(!reference_matches(
            "***********:*******:**",
            "busybox:latest"
        ));
        assert!(!reference_matches(&"*a".repeat(32_000), &"a".repeat(255)));
        assert!(reference_matches(&"*".repeat(65_536), "busybox"));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Every pattern over `a/:*?` up to 5 bytes against every text over
        // `a/:` up to 4, as the recursive definition answers.
        fn reference(p: &[u8], s: &[u8]) -> bool {
            match (p.first(), s.first()) {
                (None, None) => true,
                (Some(b'*'), _) => {
                    reference(&p[1..], s)
                        || (!s.is_empty() && s[0] != b'/' && reference(p, &s[1..]))
                }
                (Some(b'?'), Some(c)) if *c != b'/' => reference(&p[1..], &s[1..]),
                (Some(a), Some(b)) if a == b => reference(&p[1..], &s[1..]),
                _ => false,
            }
        }
        fn all(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut out = vec![Vec::new()];
            let mut last = vec![Vec::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w| alphabet.iter().map(move |c| [&w[..], &[*c]].concat()))
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        for p in all(b"a/:*?", 5) {
            for s in all(b"a/:", 4) {
                assert_eq!(glob(&p, &s), reference(&p, &s), "{p:?} {s:?}");
            }
        }
    }
}
