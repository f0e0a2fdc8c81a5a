//! `docker push`: a stored image's blobs and manifest go to a registry.
//!
//! The manifest pushed is the one stored with the image (so an image
//! pulled and pushed again keeps its digest). Each blob is HEADed first
//! ("Layer already exists"), then mounted from another repository of the
//! same registry that berth knows holds it (an image with that blob has a
//! reference there), then uploaded. The manifest goes last, when every
//! blob it names is in the repository; its digest is recorded locally as
//! the image's `name@digest` reference, as docker does.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_errdefs::{ErrorKind, HasKind};
use berth_image::manifest::{self, Document, MAX_MANIFEST_SIZE};
use berth_image::{ContentError, ContentStore, Descriptor, Digest, ManifestError, Reference};
use berth_store::{RefKind, Store, StoreError};
use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Semaphore;

use crate::progress::{LayerStatus, Progress, ProgressEvent, Throttle};
use crate::{Client, PushedBlob, RegistryError};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("An image does not exist locally with the tag: {reference}")]
    NotFound { reference: String },
    #[error("pushing {reference}: image {image} has no stored manifest (it was not pulled, loaded or imported); it cannot be pushed as it is")]
    NoManifest { reference: String, image: Digest },
    #[error("pushing {reference}: blob {digest} of the image is not in the content store; pull the image again")]
    MissingBlob { reference: String, digest: Digest },
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("pushing {reference}: blob {digest}: {source}")]
    Content {
        reference: String,
        digest: Digest,
        source: ContentError,
    },
    #[error("pushing {reference}: the stored manifest {digest} is invalid: {source}")]
    Manifest {
        reference: String,
        digest: Digest,
        source: ManifestError,
    },
    #[error("pushing {reference}: {source}")]
    Store {
        reference: String,
        source: StoreError,
    },
    #[error("pushing {reference}: {reason}")]
    Invalid { reference: String, reason: String },
}

impl HasKind for PushError {
    fn kind(&self) -> ErrorKind {
        match self {
            PushError::NotFound { .. } | PushError::MissingBlob { .. } => ErrorKind::NotFound,
            PushError::NoManifest { .. } => ErrorKind::FailedPrecondition,
            PushError::Registry(e) => e.kind(),
            PushError::Content { source, .. } => source.kind(),
            PushError::Manifest { source, .. } => source.kind(),
            PushError::Store { source, .. } => source.kind(),
            PushError::Invalid { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs uploaded at once (docker's `max-concurrent-uploads`).
    pub max_concurrent: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { max_concurrent: 5 }
    }
}

/// What a push did: docker prints `<tag>: digest: <digest> size: <size>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    pub reference: Reference,
    /// The tag pushed (or the digest, for a push by digest).
    pub tag: String,
    /// The manifest's digest in the registry.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("a blocking push task did not finish: {e}"),
        },
    }
}

/// Pushes the local image `reference` names (no tag means `latest`) to its
/// registry under that tag.
pub async fn push(
    client: &Client,
    store: &Arc<Store>,
    content: &ContentStore,
    reference: &Reference,
    options: &PushOptions,
    progress: &Progress,
) -> Result<PushedImage, PushError> {
    let target = reference.clone().with_default_tag();
    let name = target.to_string();
    let store_err = |source| PushError::Store {
        reference: name.clone(),
        source,
    };
    progress.send(ProgressEvent::PushRefersTo {
        repository: target.name(),
    });
    let (db, t) = (store.clone(), target.clone());
    let record = blocking(move || -> Result<_, StoreError> {
        match db.lookup_reference(&t)? {
            Some(id) => db.image(&id).map(Some),
            None => Ok(None),
        }
    })
    .await
    .map_err(store_err)?
    .ok_or_else(|| PushError::NotFound {
        reference: target.familiar(),
    })?;
    let (Some(manifest_digest), media_type) = (
        record.manifest_digest.clone(),
        record.manifest_media_type.clone(),
    ) else {
        return Err(PushError::NoManifest {
            reference: name.clone(),
            image: record.id.clone(),
        });
    };
    let (c, d) = (content.clone(), manifest_digest.clone());
    let manifest_bytes = blocking(move || c.read(&d, MAX_MANIFEST_SIZE))
        .await
        .map_err(|source| match source {
            ContentError::NotFound { digest } => PushError::MissingBlob {
                reference: name.clone(),
                digest,
            },
            source => PushError::Content {
                reference: name.clone(),
                digest: manifest_digest.clone(),
                source,
            },
        })?;
    let manifest = match manifest::parse(&manifest_bytes, media_type.as_deref()) {
        Ok(Document::Manifest(m)) => *m,
        Ok(Document::Index(_)) => {
            return Err(PushError::Invalid {
                reference: name.clone(),
                reason: format!("stored manifest {manifest_digest} is an index, not an image"),
            })
        }
        Err(source) => {
            return Err(PushError::Manifest {
                reference: name.clone(),
                digest: manifest_digest,
                source,
            })
        }
    };
    let media_type = media_type
        .or_else(|| manifest.media_type.clone())
        .unwrap_or_else(|| manifest::media_type::OCI_MANIFEST.to_owned());

    // Where else in this registry each blob is known to be.
    let blobs: Vec<Descriptor> = manifest
        .layers
        .iter()
        .cloned()
        .chain(std::iter::once(manifest.config.clone()))
        .collect();
    let (db, t, wanted) = (
        store.clone(),
        target.clone(),
        blobs.iter().map(|b| b.digest.clone()).collect::<Vec<_>>(),
    );
    let sources = blocking(move || mount_sources(&db, &t, &wanted))
        .await
        .map_err(store_err)?;

    for l in &manifest.layers {
        progress.layer(&l.digest, LayerStatus::Preparing);
    }
    let limit = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let layer_count = manifest.layers.len();
    for (i, desc) in blobs.into_iter().enumerate() {
        let is_layer = i < layer_count;
        let from = sources.get(&desc.digest).cloned();
        let (client, content, target, limit) = (
            client.clone(),
            content.clone(),
            target.clone(),
            limit.clone(),
        );
        let progress = if is_layer {
            progress.clone()
        } else {
            Progress::none() // docker does not show the config
        };
        // Layers beyond the concurrency limit queue, as docker shows them.
        if is_layer && i >= options.max_concurrent.max(1) {
            progress.layer(&desc.digest, LayerStatus::Waiting);
        }
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            push_one(&client, &content, &target, &desc, from.as_ref(), &progress).await
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let res = match joined {
            Ok(r) => r,
            // Aborted below, after the first failure.
            Err(e) if e.is_cancelled() => continue,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        if let Err(e) = res {
            if first_error.is_none() {
                first_error = Some(e);
                tasks.abort_all();
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    let size = manifest_bytes.len() as u64;
    let digest = client
        .put_manifest(&target, &media_type, Bytes::from(manifest_bytes))
        .await?;
    if digest != manifest_digest {
        return Err(PushError::Invalid {
            reference: name.clone(),
            reason: format!(
                "the stored manifest {manifest_digest} hashes to {digest}; the content store is corrupt"
            ),
        });
    }
    let (db, by_digest, id) = (
        store.clone(),
        target.repository_only().with_digest(digest.clone()),
        record.id.clone(),
    );
    blocking(move || db.set_reference(&by_digest, &id))
        .await
        .map_err(store_err)?;
    let tag = target
        .tag()
        .map(str::to_owned)
        .or_else(|| target.digest().map(ToString::to_string))
        .unwrap_or_default();
    progress.send(ProgressEvent::PushDigest {
        tag: tag.clone(),
        digest: digest.clone(),
        size,
    });
    Ok(PushedImage {
        reference: target,
        tag,
        digest,
        size,
    })
}

/// `docker push -a`: every local tag of the repository.
pub async fn push_all_tags(
    client: &Client,
    store: &Arc<Store>,
    content: &ContentStore,
    repository: &Reference,
    options: &PushOptions,
    progress: &Progress,
) -> Result<Vec<PushedImage>, PushError> {
    if repository.tag().is_some() || repository.digest().is_some() {
        return Err(PushError::Invalid {
            reference: repository.to_string(),
            reason: "a tag or digest can't be used with --all-tags/-a".to_owned(),
        });
    }
    let db = store.clone();
    let refs = blocking(move || db.all_references())
        .await
        .map_err(|source| PushError::Store {
            reference: repository.to_string(),
            source,
        })?;
    let tags: Vec<Reference> = refs
        .into_iter()
        .filter(|(r, kind, _)| {
            *kind == RefKind::Tag
                && r.domain() == repository.domain()
                && r.repository() == repository.repository()
        })
        .map(|(r, _, _)| r)
        .collect();
    if tags.is_empty() {
        return Err(PushError::NotFound {
            reference: repository.familiar(),
        });
    }
    let mut pushed = Vec::with_capacity(tags.len());
    for t in tags {
        pushed.push(push(client, store, content, &t, options, progress).await?);
    }
    Ok(pushed)
}

/// For each wanted blob, a repository of the target's registry (not the
/// target's own) that an image holding the blob has a reference in.
fn mount_sources(
    db: &Store,
    target: &Reference,
    wanted: &[Digest],
) -> Result<BTreeMap<Digest, Reference>, StoreError> {
    let mut repos_of: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
    for (r, _, image) in db.all_references()? {
        if r.domain() == target.domain() && r.repository() != target.repository() {
            repos_of.entry(image).or_default().push(r.repository_only());
        }
    }
    let mut out = BTreeMap::new();
    if repos_of.is_empty() {
        return Ok(out);
    }
    for img in db.images()? {
        let Some(repos) = repos_of.get(&img.id) else {
            continue;
        };
        let blobs = img
            .layers
            .iter()
            .filter_map(|l| l.blob.as_ref().map(|b| b.digest.clone()))
            .chain(std::iter::once(img.id.clone()));
        for b in blobs {
            if wanted.contains(&b) {
                out.entry(b).or_insert_with(|| repos[0].clone());
            }
        }
    }
    Ok(out)
}

async fn push_one(
    client: &Client,
    content: &ContentStore,
    target: &Reference,
    desc: &Descriptor,
    from: Option<&Reference>,
    progress: &Progress,
) -> Result<(), PushError> {
    let (c, d) = (content.clone(), desc.digest.clone());
    let file = blocking(move || c.open_blob(&d))
        .await
        .map_err(|source| match source {
            ContentError::NotFound { digest } => PushError::MissingBlob {
                reference: target.to_string(),
                digest,
            },
            source => PushError::Content {
                reference: target.to_string(),
                digest: desc.digest.clone(),
                source,
            },
        })?;
    let reader = PushProgress {
        inner: tokio::fs::File::from_std(file),
        progress: progress.clone(),
        id: desc.digest.clone(),
        total: desc.size,
        read: 0,
        throttle: Throttle::new(),
    };
    let done = client
        .push_blob(target, &desc.digest, desc.size, reader, from)
        .await?;
    let status = match done {
        PushedBlob::Exists => LayerStatus::AlreadyExists,
        PushedBlob::Mounted => LayerStatus::Mounted {
            from: from.map(|f| f.repository().to_owned()).unwrap_or_default(),
        },
        PushedBlob::Uploaded => LayerStatus::Pushed,
    };
    progress.layer(&desc.digest, status);
    Ok(())
}

/// Counts bytes read for upload, for `Pushing`.
struct PushProgress<R> {
    inner: R,
    progress: Progress,
    id: Digest,
    total: u64,
    read: u64,
    throttle: Throttle,
}

impl<R: AsyncRead + Unpin> AsyncRead for PushProgress<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.read += n as u64;
            if this.throttle.due() || this.read == this.total {
                this.progress.layer(
                    &this.id,
                    LayerStatus::Pushing {
                        current: this.read,
                        total: this.total,
                    },
                );
            }
        }
        res
    }
}
