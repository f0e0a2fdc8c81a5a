//! What an image is made of once its blobs and layers are stored: the
//! result of import, load and pull, which the caller records in
//! berth-store; and [`assemble`], which turns a stored manifest into one.

use std::io;

use berth_errdefs::{ErrorKind, HasKind};

use crate::config::{ConfigError, ImageConfig, MAX_CONFIG_SIZE};
use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::layers::{chain_ids, ChainId, LayerError, LayerStore, Unpacked};
use crate::manifest::{Descriptor, Manifest, ManifestError};

/// Why an image could not be assembled from stored blobs.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("{what} {digest} of image {image} is not in the content store")]
    MissingBlob {
        what: &'static str,
        digest: Digest,
        image: Digest,
    },
    #[error("image {image} has {layers} layers but its config lists {diff_ids} diff ids")]
    LayerCount {
        image: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{0}")]
    Content(#[from] ContentError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Layer(#[from] LayerError),
}

impl HasKind for AssembleError {
    fn kind(&self) -> ErrorKind {
        match self {
            AssembleError::MissingBlob { .. } => ErrorKind::NotFound,
            AssembleError::LayerCount { .. } => ErrorKind::InvalidArgument,
            AssembleError::Content(e) => e.kind(),
            AssembleError::Config(e) => e.kind(),
            AssembleError::Manifest(e) => e.kind(),
            AssembleError::Layer(e) => e.kind(),
        }
    }
}

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

/// Turns an image manifest whose blobs are in the content store into a
/// stored image: reads and checks the config, and unpacks the layers not
/// yet unpacked, each verified against its diff id. Layers are unpacked in
/// parallel (each chain dir is independent of the others).
pub fn assemble(
    content: &ContentStore,
    layers: &LayerStore,
    manifest: Manifest,
    manifest_digest: Digest,
    apply: &berth_archive::ApplyOptions,
) -> Result<ImageParts, AssembleError> {
    manifest.validate_image()?;
    let image = manifest.config.digest.clone();
    let config_bytes = content.read(&image, MAX_CONFIG_SIZE).map_err(|e| match e {
        ContentError::NotFound { digest } => AssembleError::MissingBlob {
            what: "image config",
            digest,
            image: image.clone(),
        },
        e => e.into(),
    })?;
    let config = ImageConfig::parse(&config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(AssembleError::LayerCount {
            image,
            layers: manifest.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    let chain = chain_ids(&config.rootfs.diff_ids);
    // Check every blob first: a missing one should fail before any work.
    for blob in &manifest.layers {
        if !content.exists(&blob.digest) {
            return Err(AssembleError::MissingBlob {
                what: "layer blob",
                digest: blob.digest.clone(),
                image,
            });
        }
    }
    let unpack_one = |i: usize| -> Result<Unpacked, AssembleError> {
        if layers.exists(&chain[i]) {
            return Ok(Unpacked {
                meta: layers.meta(&chain[i])?,
                created: false,
            });
        }
        let file = content.open_blob(&manifest.layers[i].digest)?;
        let parent = if i == 0 { None } else { Some(&chain[i - 1]) };
        let reader = io::BufReader::with_capacity(1 << 20, file);
        Ok(layers.unpack(&chain[i], parent, &config.rootfs.diff_ids[i], reader, apply)?)
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(manifest.layers.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Unpacked, AssembleError>>> =
        (0..manifest.layers.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= manifest.layers.len() {
                            return done;
                        }
                        done.push((i, unpack_one(i)));
                    }
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().expect("an unpack worker panicked") {
                results[i] = Some(r);
            }
        }
    });
    let mut parts = Vec::with_capacity(results.len());
    for (i, r) in results.into_iter().enumerate() {
        let unpacked = r.expect("every layer index was taken by a worker")?;
        parts.push(LayerParts {
            diff_id: config.rootfs.diff_ids[i].clone(),
            chain_id: chain[i].clone(),
            blob: manifest.layers[i].clone(),
            size: unpacked.meta.size,
        });
    }
    let manifest_media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| crate::manifest::media_type::OCI_MANIFEST.to_owned());
    Ok(ImageParts {
        id: image,
        config,
        config_bytes,
        manifest,
        manifest_digest,
        manifest_media_type,
        layers: parts,
    })
}
