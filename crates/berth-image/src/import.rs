//! `docker import`: a rootfs tarball becomes a one-layer image.
//!
//! The tarball (plain, gzip or zstd) is read once: the bytes go into the
//! content store as the layer blob while the same stream is unpacked into
//! the layer store, which computes the diff id. Then the config (with the
//! `--change` instructions and `--message`) and an OCI manifest are
//! written. The image id is the config digest, as docker's.
//!
//! Nothing is recorded in the database here: the caller does that with the
//! returned [`ImageParts`], holding off garbage collection meanwhile
//! (berth-store's `hold_off_gc`), since the blobs are not referenced until
//! then.

use std::io::{self, Read, Write};
use std::time::SystemTime;

use berth_errdefs::{ErrorKind, HasKind};

use crate::changes::{apply_changes, ChangeError};
use crate::config::{History, ImageConfig, RootFs, RunConfig};
use crate::content::{ContentError, ContentStore, Writer};
use crate::image::{ImageParts, LayerParts};
use crate::layers::{LayerError, LayerStore};
use crate::manifest::{media_type, Descriptor, Manifest};
use crate::platform::Platform;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("import: {0}")]
    Change(#[from] ChangeError),
    #[error("import: {0}")]
    Content(#[from] ContentError),
    #[error("import: {0}")]
    Layer(#[from] LayerError),
    #[error("import: reading the tarball failed: {source}")]
    Read { source: io::Error },
}

impl HasKind for ImportError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImportError::Change(e) => e.kind(),
            ImportError::Content(e) => e.kind(),
            ImportError::Layer(e) => e.kind(),
            ImportError::Read { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `--change` instructions, applied in order.
    pub changes: Vec<String>,
    /// `--message`; docker's default is "Imported from <source>".
    pub message: Option<String>,
    /// Where the tarball came from (`-` for standard input, or a URL).
    pub source: String,
    /// The image's platform; the host's by default.
    pub platform: Option<Platform>,
    /// Limits for unpacking the tarball.
    pub apply: berth_archive::ApplyOptions,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            changes: Vec::new(),
            message: None,
            source: "-".to_owned(),
            platform: None,
            apply: berth_archive::ApplyOptions::default(),
        }
    }
}

/// Imports a rootfs tarball as a one-layer image.
pub fn import<R: Read>(
    content: &ContentStore,
    layers: &LayerStore,
    tarball: R,
    options: &ImportOptions,
) -> Result<ImageParts, ImportError> {
    // Bad --change values fail before any data is read.
    let mut run = RunConfig::default();
    apply_changes(&mut run, &options.changes)?;

    let ingest_ref = format!("import-{}", unique_suffix());
    let mut writer = content.writer(&ingest_ref)?;
    let result = store_layer(&mut writer, layers, None, tarball, &options.apply);
    let (unpacked, first) = match result {
        Ok(r) => r,
        Err(e) => {
            writer.abort()?;
            return Err(e);
        }
    };
    let committed = writer.commit(None, None)?;
    let blob_type = match berth_archive::detect_compression(&first) {
        berth_archive::Compression::None => media_type::OCI_LAYER,
        berth_archive::Compression::Gzip => media_type::OCI_LAYER_GZIP,
        berth_archive::Compression::Zstd => media_type::OCI_LAYER_ZSTD,
    };
    let blob = Descriptor::new(blob_type, committed.digest, committed.size);

    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let created = crate::time::rfc3339(SystemTime::now());
    let message = options
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", options.source));
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        os_version: None,
        variant: platform.variant.clone(),
        config: Some(run),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![unpacked.meta.diff_id.clone()],
        },
        history: vec![History {
            created: Some(created),
            comment: Some(message.clone()),
            ..History::default()
        }],
        comment: Some(message),
        ..ImageConfig::default()
    };
    let layer = LayerParts {
        diff_id: unpacked.meta.diff_id,
        chain_id: unpacked.meta.chain_id,
        blob,
        size: unpacked.meta.size,
    };
    Ok(store_image(content, config, vec![layer])?)
}

/// Writes `config` and an OCI manifest listing `layers` (stored already)
/// into the content store: the image id is the config's digest.
pub(crate) fn store_image(
    content: &ContentStore,
    config: ImageConfig,
    layers: Vec<LayerParts>,
) -> Result<ImageParts, ContentError> {
    let config_bytes = config.to_json();
    let config_blob = content.write_blob(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(
            media_type::OCI_CONFIG,
            config_blob.digest.clone(),
            config_blob.size,
        ),
        layers: layers.iter().map(|l| l.blob.clone()).collect(),
        subject: None,
        annotations: Default::default(),
    };
    let manifest_blob = content.write_blob(&manifest.to_json())?;
    Ok(ImageParts {
        id: config_blob.digest,
        config,
        config_bytes,
        manifest,
        manifest_digest: manifest_blob.digest,
        manifest_media_type: media_type::OCI_MANIFEST.to_owned(),
        layers,
    })
}

/// Unpacks the tarball (on top of the layer `parent`) while copying its
/// bytes into `writer`. Returns the unpacked layer and the first bytes of
/// the tarball (for its media type).
pub(crate) fn store_layer<R: Read>(
    writer: &mut Writer,
    layers: &LayerStore,
    parent: Option<&crate::layers::ChainId>,
    tarball: R,
    apply: &berth_archive::ApplyOptions,
) -> Result<(crate::layers::Unpacked, Vec<u8>), ImportError> {
    let mut tee = Tee {
        inner: tarball,
        copy: writer,
        first: Vec::with_capacity(berth_archive::MAGIC_LEN),
    };
    let unpacked = layers.unpack_new(parent, &mut tee, apply)?;
    // The decompressor may stop at the end of its data; the blob is the
    // whole input, so copy the rest too.
    io::copy(&mut tee, &mut io::sink()).map_err(|source| ImportError::Read { source })?;
    Ok((unpacked, tee.first))
}

/// Copies everything read from `inner` into `copy`.
struct Tee<'a, R> {
    inner: R,
    copy: &'a mut Writer,
    first: Vec<u8>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        let want = berth_archive::MAGIC_LEN
            .saturating_sub(self.first.len())
            .min(n);
        self.first.extend_from_slice(&buf[..want]);
        Ok(n)
    }
}

pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
