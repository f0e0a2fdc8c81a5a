//! What an image is made of once its blobs and layers are stored: the
//! result of import and load, which the caller records in berth-store.

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::layers::ChainId;
use crate::manifest::{Descriptor, Manifest};

/// One stored layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerParts {
    pub diff_id: Digest,
    pub chain_id: ChainId,
    /// The layer blob in the content store, as the manifest describes it.
    pub blob: Descriptor,
    /// Bytes of file data in the unpacked layer.
    pub size: u64,
}

/// A stored image: config, manifest and layers are all in the content and
/// layer stores when this exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParts {
    /// The config digest: the image id.
    pub id: Digest,
    pub config: ImageConfig,
    /// The config blob's bytes exactly as stored (its digest is `id`).
    pub config_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub layers: Vec<LayerParts>,
}

impl ImageParts {
    /// The image's size as docker reports it: its layers' file data.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Chain ids, bottom first (what [`crate::LayerStore::container_mounts`] takes).
    pub fn chain(&self) -> Vec<ChainId> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }
}
