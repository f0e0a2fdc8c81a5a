//! `docker commit`: a container's file system changes become one new layer
//! on top of its image.
//!
//! The caller streams the container's changes as a layer tar (berth-archive's
//! `write_diff` of the overlay upper directory: deletions as `.wh.` entries,
//! opaque directories as `.wh..wh..opq`). The stream is read once, as
//! `import` reads a tarball: its bytes become the layer blob in the content
//! store while the same bytes are unpacked into the layer store on top of
//! the image's top layer. A commit without changes adds no layer, only a
//! history entry marked `empty_layer` (docker's rule). The config keeps the
//! parent's layers, platform and history, adds the new run config,
//! `parent`, `container` and `container_config`, and an OCI manifest lists
//! the parent's stored blobs plus the new one. Nothing is recorded in the
//! database here (the caller does, holding off garbage collection).

use std::io::Read;
use std::time::SystemTime;

use berth_errdefs::{ErrorKind, HasKind};

use crate::config::{History, ImageConfig, RunConfig};
use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::image::{ImageParts, LayerParts};
use crate::import::{store_image, store_layer, unique_suffix, ImportError};
use crate::layers::{LayerError, LayerStore};
use crate::manifest::{media_type, Descriptor};

/// The diff id of a layer without entries: a tar of only the end-of-archive
/// marker (two zero blocks), as docker's `DigestSHA256EmptyTar`.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("commit: {0}")]
    Content(#[from] ContentError),
    #[error("commit: {0}")]
    Layer(#[from] LayerError),
    #[error("commit: reading the container's changes failed: {0}")]
    Read(std::io::Error),
    #[error("commit: layer {diff_id} of image {image} has no stored blob to reference")]
    MissingBlob { image: Digest, diff_id: Digest },
}

impl HasKind for CommitError {
    fn kind(&self) -> ErrorKind {
        match self {
            CommitError::Content(e) => e.kind(),
            CommitError::Layer(e) => e.kind(),
            CommitError::Read(_) | CommitError::MissingBlob { .. } => ErrorKind::Internal,
        }
    }
}

impl From<ImportError> for CommitError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Content(e) => CommitError::Content(e),
            ImportError::Layer(e) => CommitError::Layer(e),
            ImportError::Read { source } => CommitError::Read(source),
            ImportError::Change(e) => CommitError::Read(std::io::Error::other(e)),
        }
    }
}

/// The image a container runs on.
#[derive(Debug, Clone)]
pub struct Parent {
    /// None for `FROM scratch`: the first image of a build has no parent.
    pub id: Option<Digest>,
    pub config: ImageConfig,
    /// Its layers, bottom first, with their stored blobs.
    pub layers: Vec<LayerParts>,
}

/// What the new image says about itself.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The new image's run config (already merged: [`merge_config`]).
    pub config: RunConfig,
    /// The container's id and its Config (inspect's Container and
    /// ContainerConfig).
    pub container: String,
    pub container_config: Option<serde_json::Value>,
    pub author: Option<String>,
    pub comment: Option<String>,
    /// The history entry's created_by (docker: the container's Cmd).
    pub created_by: String,
    /// Limits for unpacking the changes.
    pub apply: berth_archive::ApplyOptions,
}

/// Commits `changes` (an uncompressed layer tar) on top of `parent`.
pub fn commit<R: Read>(
    content: &ContentStore,
    layers: &LayerStore,
    parent: &Parent,
    changes: R,
    options: &CommitOptions,
) -> Result<ImageParts, CommitError> {
    let mut writer = content.writer(&format!("commit-{}", unique_suffix()))?;
    let parent_chain = parent.layers.last().map(|l| l.chain_id.clone());
    let (unpacked, _) = match store_layer(
        &mut writer,
        layers,
        parent_chain.as_ref(),
        changes,
        &options.apply,
    ) {
        Ok(r) => r,
        Err(e) => {
            writer.abort()?;
            return Err(e.into());
        }
    };
    let empty = unpacked.meta.diff_id.to_string() == EMPTY_LAYER_DIFF_ID;
    let mut all_layers = parent.layers.clone();
    if empty {
        // The layer dir and blob are left for garbage collection, which
        // removes what no image references.
        writer.abort()?;
    } else {
        let blob = writer.commit(None, None)?;
        all_layers.push(LayerParts {
            diff_id: unpacked.meta.diff_id.clone(),
            chain_id: unpacked.meta.chain_id.clone(),
            blob: Descriptor::new(media_type::OCI_LAYER, blob.digest, blob.size),
            size: unpacked.meta.size,
        });
    }

    let created = crate::time::rfc3339(SystemTime::now());
    let mut history = parent.config.history.clone();
    history.push(History {
        created: Some(created.clone()),
        created_by: Some(options.created_by.clone()),
        author: options.author.clone().filter(|a| !a.is_empty()),
        comment: options.comment.clone().filter(|c| !c.is_empty()),
        empty_layer: empty,
    });
    let mut rootfs = parent.config.rootfs.clone();
    rootfs.diff_ids = all_layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = ImageConfig {
        created: Some(created),
        author: options.author.clone().filter(|a| !a.is_empty()),
        config: Some(options.config.clone()),
        rootfs,
        history,
        comment: options.comment.clone().filter(|c| !c.is_empty()),
        parent: parent.id.clone(),
        container: Some(options.container.clone()),
        container_config: options.container_config.clone(),
        docker_version: None,
        ..parent.config.clone()
    };
    Ok(store_image(content, config, all_layers)?)
}

/// docker's commit merge: the request's Config (after `changes`) keeps
/// what it sets, and takes the rest from the container's Config: User,
/// WorkingDir and StopSignal when unset; ExposedPorts, Volumes and Labels
/// unioned (the request wins a conflict); Env vars the request lacks
/// appended; Cmd (with ArgsEscaped) when neither Entrypoint nor Cmd is set,
/// and Entrypoint when it is unset; Healthcheck fields the request lacks.
pub fn merge_config(user: &mut RunConfig, container: &RunConfig) {
    fn or_else(field: &mut Option<String>, other: &Option<String>) {
        if field.as_deref().unwrap_or("").is_empty() {
            field.clone_from(other);
        }
    }
    or_else(&mut user.user, &container.user);
    or_else(&mut user.working_dir, &container.working_dir);
    or_else(&mut user.stop_signal, &container.stop_signal);
    for (mine, theirs) in [
        (&mut user.exposed_ports, &container.exposed_ports),
        (&mut user.volumes, &container.volumes),
    ] {
        if let Some(theirs) = theirs {
            let mine = mine.get_or_insert_with(Default::default);
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(theirs) = &container.labels {
        let mine = user.labels.get_or_insert_with(Default::default);
        for (k, v) in theirs {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(theirs) = &container.env {
        let mine = user.env.get_or_insert_with(Vec::new);
        let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
        for e in theirs {
            if !mine.iter().any(|m| key(m) == key(e)) {
                mine.push(e.clone());
            }
        }
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd.clone_from(&container.cmd);
            user.args_escaped = container.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint.clone_from(&container.entrypoint);
        }
    }
    match (&mut user.healthcheck, &container.healthcheck) {
        (None, Some(theirs)) => user.healthcheck = Some(theirs.clone()),
        (Some(serde_json::Value::Object(mine)), Some(serde_json::Value::Object(theirs))) => {
            for (k, v) in theirs {
                let unset = mine.get(k).is_none_or(|m| {
                    m.is_null() || m == &serde_json::json!(0) || m == &serde_json::json!([])
                });
                if unset {
                    mine.insert(k.clone(), v.clone());
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_empty_layer_is_a_tar_of_only_its_end_marker() {
        assert_eq!(
            Digest::sha256_of(&[0u8; 1024]).to_string(),
            EMPTY_LAYER_DIFF_ID
        );
        let dir = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        let stats = berth_archive::write_diff(dir.path(), &mut tar).unwrap();
        assert_eq!(stats.entries, 0);
        assert_eq!(Digest::sha256_of(&tar).to_string(), EMPTY_LAYER_DIFF_ID);
    }

    #[test]
    fn merges_as_docker_commit() {
        let container = RunConfig {
            user: Some("app".into()),
            env: Some(v(&["PATH=/bin", "A=1"])),
            cmd: Some(v(&["sh"])),
            entrypoint: None,
            working_dir: Some("/srv".into()),
            exposed_ports: Some([("80/tcp".to_string(), serde_json::json!({}))].into()),
            labels: Some(
                [
                    ("a".to_string(), "1".to_string()),
                    ("b".to_string(), "2".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        // An empty request takes everything.
        let mut user = RunConfig::default();
        merge_config(&mut user, &container);
        assert_eq!(user.cmd, container.cmd);
        assert_eq!(user.env, container.env);
        assert_eq!(user.user.as_deref(), Some("app"));
        assert_eq!(user.working_dir.as_deref(), Some("/srv"));

        let mut user = RunConfig {
            env: Some(v(&["A=2"])),
            cmd: Some(v(&["cat", "/f"])),
            exposed_ports: Some([("8000/tcp".to_string(), serde_json::json!({}))].into()),
            labels: Some([("b".to_string(), "3".to_string())].into()),
            ..Default::default()
        };
        merge_config(&mut user, &container);
        assert_eq!(user.cmd, Some(v(&["cat", "/f"])));
        assert_eq!(user.env, Some(v(&["A=2", "PATH=/bin"])));
        let ports: Vec<_> = user.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["80/tcp", "8000/tcp"]);
        let labels = user.labels.unwrap();
        assert_eq!((labels["a"].as_str(), labels["b"].as_str()), ("1", "3"));

        // An Entrypoint in the request keeps the container's Cmd out.
        let mut user = RunConfig {
            entrypoint: Some(v(&["/init"])),
            ..Default::default()
        };
        merge_config(&mut user, &container);
        assert_eq!(user.cmd, None);
    }
}
