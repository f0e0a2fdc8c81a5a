//! `docker pull`: a manifest (or index) from a registry becomes a stored,
//! unpacked image recorded in the metadata database.
//!
//! Layers are fetched concurrently (a bounded number at a time). Each
//! layer's bytes stream from the HTTP body through a bounded channel into a
//! blocking thread that writes them to the content store's ingest *and*
//! unpacks them into the layer store at the same time, so a layer is
//! unpacked when its last byte arrives. Chain dirs are independent, so no
//! layer waits for its parent. The blob is hashed once, by the content
//! store's ingest as it writes, and its digest is checked when the download
//! ends (so a wrong blob is named before the unpack's verdict) and again on
//! commit; the uncompressed stream is checked against the config's diff id
//! (by the layer store).
//!
//! Garbage collection: every blob, layer and ingest is added to a lease
//! before it is written (or found present), under one process-wide lock
//! that a failed pull's cleanup also takes, so a cleanup never removes
//! what a concurrent pull has just decided to reuse. The lease is dropped
//! once the image is recorded.
//!
//! On failure the pull removes what it created (blobs, layers, ingests)
//! unless an image or another lease references it: a digest mismatch or a
//! truncated stream leaves nothing stored.

use std::collections::BTreeSet;
use std::io::{self, BufReader, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use berth_errdefs::{ErrorKind, HasKind};
use berth_image::config::MAX_CONFIG_SIZE;
use berth_image::digest::Algorithm;
use berth_image::layers::{Unpacked, MAX_LAYERS};
use berth_image::manifest::{self, Document};
use berth_image::{
    chain_ids, ChainId, ConfigError, ContentError, ContentStore, Descriptor, Digest, ImageConfig,
    ImageParts, LayerError, LayerParts, LayerStore, ManifestError, Platform, Reference, Writer,
};
use berth_store::{ImageRecord, LeaseResource, Store, StoreError};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, Semaphore};

use crate::progress::{LayerStatus, Progress, ProgressEvent, Throttle};
use crate::{Client, RegistryError, ACCEPT_ALL};

/// Why a pull failed. Messages name the reference and the digest involved.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("pulling {reference}: {source}")]
    Manifest {
        reference: String,
        source: ManifestError,
    },
    #[error("pulling {reference}: the image config {digest} is invalid: {source}")]
    Config {
        reference: String,
        digest: Digest,
        source: ConfigError,
    },
    #[error("pulling {reference}: the image is for {found}, not the requested platform {wanted}; choose another --platform or tag")]
    PlatformMismatch {
        reference: String,
        wanted: Platform,
        found: Platform,
    },
    #[error("pulling {reference}: {what} {digest} has {actual} bytes but its descriptor says {expected}; refusing it")]
    DescriptorSize {
        reference: String,
        what: &'static str,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("pulling {reference}: {reason}")]
    Invalid { reference: String, reason: String },
    #[error("pulling {reference}: blob {digest}: {source}")]
    Content {
        reference: String,
        digest: Digest,
        source: ContentError,
    },
    #[error("pulling {reference}: layer {digest}: {source}")]
    Layer {
        reference: String,
        digest: Digest,
        source: LayerError,
    },
    #[error("pulling {reference}: {source}")]
    Store {
        reference: String,
        source: StoreError,
    },
    #[error("pull of {reference} was cancelled because another layer failed")]
    Cancelled { reference: String },
}

impl HasKind for PullError {
    fn kind(&self) -> ErrorKind {
        match self {
            PullError::Registry(e) => e.kind(),
            PullError::Manifest { source, .. } => source.kind(),
            PullError::Config { source, .. } => source.kind(),
            PullError::PlatformMismatch { .. } => ErrorKind::NotFound,
            PullError::DescriptorSize { .. } => ErrorKind::DataLoss,
            PullError::Invalid { .. } => ErrorKind::InvalidArgument,
            PullError::Content { source, .. } => source.kind(),
            PullError::Layer { source, .. } => source.kind(),
            PullError::Store { source, .. } => source.kind(),
            PullError::Cancelled { .. } => ErrorKind::Internal,
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `--platform`; the host's platform when `None`. An explicit platform
    /// must match the image; the default only warns, as docker does.
    pub platform: Option<Platform>,
    /// Layers downloaded at once (docker's `max-concurrent-downloads`).
    pub max_concurrent: usize,
    /// Limits for unpacking each layer.
    pub apply: berth_archive::ApplyOptions,
    /// How long the pull's lease protects what it wrote if berth dies mid-pull.
    pub lease_ttl: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            max_concurrent: 3,
            apply: berth_archive::ApplyOptions::default(),
            lease_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a pull stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The image id (config digest).
    pub id: Digest,
    /// What was pulled: `name:tag` or `name@digest`, fully qualified.
    pub reference: Reference,
    /// The digest the tag pointed at (the index's, for a multi-platform image).
    pub digest: Digest,
    pub manifest_digest: Digest,
    pub index_digest: Option<Digest>,
    pub platform: Platform,
    /// Layer blobs downloaded by this pull (not already present).
    pub layers_downloaded: usize,
    /// The reference already pointed at this image (docker's "Image is up to date").
    pub up_to_date: bool,
}

/// Serialises "add to the lease, then look whether it exists" against a
/// failed pull's cleanup ("is it referenced? then remove"), so the two
/// never interleave within this process.
static CLAIM: Mutex<()> = Mutex::new(());

/// Runs blocking work (file system, SQLite) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("a blocking pull task did not finish: {e}"),
        },
    }
}

/// What a pull created, removed again if it fails.
#[derive(Default)]
struct Created {
    blobs: Vec<Digest>,
    layers: Vec<ChainId>,
}

/// Everything a layer task needs; cheap to clone.
#[derive(Clone)]
struct Ctx {
    client: Client,
    db: Arc<Store>,
    content: ContentStore,
    layers: LayerStore,
    progress: Progress,
    lease: String,
    /// The repository blobs come from.
    repo: Reference,
    apply: berth_archive::ApplyOptions,
    created: Arc<Mutex<Created>>,
    cancelled: Arc<AtomicBool>,
}

impl Ctx {
    fn name(&self) -> String {
        self.repo.to_string()
    }

    fn store_err(&self) -> impl FnOnce(StoreError) -> PullError + '_ {
        move |source| PullError::Store {
            reference: self.name(),
            source,
        }
    }

    fn content_err(&self, digest: &Digest) -> impl FnOnce(ContentError) -> PullError + '_ {
        let digest = digest.clone();
        move |source| PullError::Content {
            reference: self.name(),
            digest,
            source,
        }
    }

    fn layer_err(&self, digest: &Digest) -> impl FnOnce(LayerError) -> PullError + '_ {
        let digest = digest.clone();
        move |source| PullError::Layer {
            reference: self.name(),
            digest,
            source,
        }
    }

    fn created_blob(&self, d: &Digest) {
        self.created.lock().unwrap().blobs.push(d.clone());
    }

    fn created_layer(&self, c: &ChainId) {
        self.created.lock().unwrap().layers.push(c.clone());
    }

    /// Adds `resources` to the lease, then runs `check` (an existence
    /// test), both under [`CLAIM`].
    async fn claim<T: Send + 'static>(
        &self,
        resources: Vec<LeaseResource>,
        check: impl FnOnce(&ContentStore, &LayerStore) -> T + Send + 'static,
    ) -> Result<T, PullError> {
        let (db, lease, content, layers) = (
            self.db.clone(),
            self.lease.clone(),
            self.content.clone(),
            self.layers.clone(),
        );
        blocking(move || {
            let _g = CLAIM.lock().unwrap_or_else(|p| p.into_inner());
            for r in &resources {
                db.lease_add(&lease, r)?;
            }
            Ok(check(&content, &layers))
        })
        .await
        .map_err(self.store_err())
    }
}

/// Pulls `reference` (docker's rules: no tag means `latest`; a digest wins
/// over a tag) for the chosen platform, stores and unpacks it, and records
/// the image with its tag and `name@digest` references.
pub async fn pull(
    client: &Client,
    store: &Arc<Store>,
    content: &ContentStore,
    layers: &LayerStore,
    reference: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Result<PulledImage, PullError> {
    let target = reference.pull_target();
    let label = target
        .digest()
        .map(ToString::to_string)
        .or_else(|| target.tag().map(str::to_owned))
        .unwrap_or_default();
    progress.send(ProgressEvent::PullingFrom {
        repository: target.familiar_name(),
        tag: label,
    });
    let manifest_err = |source| PullError::Manifest {
        reference: target.to_string(),
        source,
    };
    let top = client.get_manifest(&target, ACCEPT_ALL).await?;
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let (index, chosen) = match manifest::parse(&top.bytes, Some(&top.media_type))
        .map_err(manifest_err)?
    {
        Document::Manifest(m) => (None, (top, *m)),
        Document::Index(index) => {
            let desc = index.select(&wanted).map_err(manifest_err)?.clone();
            let by_digest = target.repository_only().with_digest(desc.digest.clone());
            let m = client.get_manifest(&by_digest, ACCEPT_ALL).await?;
            if m.bytes.len() as u64 != desc.size {
                return Err(PullError::DescriptorSize {
                    reference: target.to_string(),
                    what: "manifest",
                    digest: desc.digest,
                    expected: desc.size,
                    actual: m.bytes.len() as u64,
                });
            }
            match manifest::parse(&m.bytes, Some(&m.media_type)).map_err(manifest_err)? {
                Document::Manifest(parsed) => (Some(top), (m, *parsed)),
                Document::Index(_) => {
                    return Err(PullError::Invalid {
                        reference: target.to_string(),
                        reason: format!(
                            "index entry {} for {wanted} is itself an index; nested indexes are not supported",
                            desc.digest
                        ),
                    })
                }
            }
        }
    };
    let (manifest_blob, manifest) = chosen;
    manifest.validate_image().map_err(manifest_err)?;
    if manifest.layers.len() > MAX_LAYERS {
        return Err(PullError::Invalid {
            reference: target.to_string(),
            reason: format!(
                "the image has {} layers; overlayfs stacks at most {MAX_LAYERS}",
                manifest.layers.len()
            ),
        });
    }

    let db = store.clone();
    let ttl = options.lease_ttl;
    let lease = blocking(move || db.create_lease(Some(ttl)))
        .await
        .map_err(|source| PullError::Store {
            reference: target.to_string(),
            source,
        })?;
    let ctx = Ctx {
        client: client.clone(),
        db: store.clone(),
        content: content.clone(),
        layers: layers.clone(),
        progress: progress.clone(),
        lease: lease.clone(),
        repo: target.repository_only(),
        apply: options.apply.clone(),
        created: Arc::default(),
        cancelled: Arc::default(),
    };
    let job = Job {
        target: &target,
        index,
        manifest_blob,
        manifest,
        wanted,
        explicit_platform: options.platform.is_some(),
        max_concurrent: options.max_concurrent.max(1),
    };
    let result = pull_image(&ctx, job).await;
    let created = std::mem::take(&mut *ctx.created.lock().unwrap());
    let db = store.clone();
    let (content, layers) = (content.clone(), layers.clone());
    match result {
        Ok(pulled) => {
            blocking(move || db.delete_lease(&lease))
                .await
                .map_err(|source| PullError::Store {
                    reference: target.to_string(),
                    source,
                })?;
            Ok(pulled)
        }
        Err(e) => {
            blocking(move || discard(&db, &content, &layers, &lease, &created)).await;
            Err(e)
        }
    }
}

/// `docker pull -a`: every tag of the repository, one after the other.
pub async fn pull_all_tags(
    client: &Client,
    store: &Arc<Store>,
    content: &ContentStore,
    layers: &LayerStore,
    repository: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Result<Vec<PulledImage>, PullError> {
    if repository.tag().is_some() || repository.digest().is_some() {
        return Err(PullError::Invalid {
            reference: repository.to_string(),
            reason: "a tag or digest can't be used with --all-tags/-a".to_owned(),
        });
    }
    let tags = client.list_tags(repository).await?;
    let mut pulled = Vec::with_capacity(tags.len());
    for tag in tags {
        let r = repository
            .clone()
            .with_tag(&tag)
            .map_err(|e| PullError::Invalid {
                reference: repository.to_string(),
                reason: format!("the registry lists an invalid tag: {e}"),
            })?;
        pulled.push(pull(client, store, content, layers, &r, options, progress).await?);
    }
    Ok(pulled)
}

/// What `pull` resolved, handed to [`pull_image`].
struct Job<'a> {
    target: &'a Reference,
    index: Option<crate::Manifest>,
    manifest_blob: crate::Manifest,
    manifest: berth_image::Manifest,
    wanted: Platform,
    explicit_platform: bool,
    max_concurrent: usize,
}

async fn pull_image(ctx: &Ctx, job: Job<'_>) -> Result<PulledImage, PullError> {
    let target = job.target;
    let manifest = &job.manifest;

    // 1. The config: the diff ids every layer is checked against.
    let cfg = manifest.config.clone();
    let cfg_digest = cfg.digest.clone();
    let have_config = ctx
        .claim(vec![LeaseResource::Blob(cfg_digest.clone())], {
            let d = cfg_digest.clone();
            move |content, _| content.exists(&d)
        })
        .await?;
    let config_bytes: Vec<u8> = if have_config {
        let (content, d) = (ctx.content.clone(), cfg_digest.clone());
        blocking(move || content.read(&d, MAX_CONFIG_SIZE))
            .await
            .map_err(ctx.content_err(&cfg_digest))?
    } else {
        ctx.client
            .fetch_blob_bytes(&ctx.repo, &cfg_digest, MAX_CONFIG_SIZE.min(cfg.size.max(1)))
            .await?
            .to_vec()
    };
    if config_bytes.len() as u64 != cfg.size {
        return Err(PullError::DescriptorSize {
            reference: target.to_string(),
            what: "image config",
            digest: cfg_digest,
            expected: cfg.size,
            actual: config_bytes.len() as u64,
        });
    }
    let config = ImageConfig::parse(&config_bytes).map_err(|source| PullError::Config {
        reference: target.to_string(),
        digest: cfg_digest.clone(),
        source,
    })?;
    let found = config.platform();
    if !job.wanted.compatible().iter().any(|p| p.same_as(&found)) {
        if job.explicit_platform {
            return Err(PullError::PlatformMismatch {
                reference: target.to_string(),
                wanted: job.wanted,
                found,
            });
        }
        tracing::warn!(reference = %target, image = %found, host = %job.wanted,
            "the image's platform does not match the host's");
    }
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(PullError::Invalid {
            reference: target.to_string(),
            reason: format!(
                "the manifest lists {} layers but the config {} has {} diff ids",
                manifest.layers.len(),
                cfg_digest,
                diff_ids.len()
            ),
        });
    }
    let chain = chain_ids(diff_ids);

    // 2. What is here already: claimed (leased) first, then looked at.
    let resources: Vec<LeaseResource> = manifest
        .layers
        .iter()
        .zip(&chain)
        .flat_map(|(l, c)| {
            [
                LeaseResource::Blob(l.digest.clone()),
                LeaseResource::Layer(c.clone()),
                LeaseResource::Ingest(ingest_ref(&l.digest)),
            ]
        })
        .collect();
    let present: Vec<bool> = ctx
        .claim(resources, {
            let (blobs, chain) = (manifest.layers.clone(), chain.clone());
            move |content, layers| {
                blobs
                    .iter()
                    .zip(&chain)
                    .map(|(b, c)| content.exists(&b.digest) && layers.exists(c))
                    .collect()
            }
        })
        .await?;
    // An image whose config and layers are all here already gets no layer
    // lines, as docker's pull prints none for an image it has (only
    // "Image is up to date"); a new image's shared layers say so.
    let image_here = have_config && present.iter().all(|here| *here);
    if !image_here {
        for (l, here) in manifest.layers.iter().zip(&present) {
            let status = if *here {
                LayerStatus::AlreadyExists
            } else {
                LayerStatus::Waiting
            };
            ctx.progress.layer(&l.digest, status);
        }
    }

    // 3. The missing layers, a bounded number at a time.
    let limit = Arc::new(Semaphore::new(job.max_concurrent));
    let mut tasks = tokio::task::JoinSet::new();
    for i in (0..manifest.layers.len()).filter(|i| !present[*i]) {
        let layer = LayerJob {
            desc: manifest.layers[i].clone(),
            chain: chain[i].clone(),
            parent: (i > 0).then(|| chain[i - 1].clone()),
            diff_id: diff_ids[i].clone(),
        };
        let (ctx, limit) = (ctx.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            if ctx.cancelled.load(Ordering::Relaxed) {
                return Err(PullError::Cancelled {
                    reference: ctx.name(),
                });
            }
            pull_layer(&ctx, &layer).await
        });
    }
    let mut downloaded = 0;
    let mut first_error: Option<PullError> = None;
    // Every task runs to its end, so no unpack thread outlives the pull
    // and the cleanup sees everything; after a failure they stop early.
    while let Some(joined) = tasks.join_next().await {
        let res = match joined {
            Ok(r) => r,
            Err(e) => match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(e) => panic!("a layer task was cancelled: {e}"),
            },
        };
        match res {
            Ok(fetched) => downloaded += usize::from(fetched),
            Err(e) => {
                ctx.cancelled.store(true, Ordering::Relaxed);
                match &first_error {
                    Some(_) if matches!(e, PullError::Cancelled { .. }) => {}
                    Some(PullError::Cancelled { .. }) | None => first_error = Some(e),
                    Some(_) => {}
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    // 4. Config, manifest and index blobs, then the records.
    let mut small = vec![(cfg_digest.clone(), config_bytes.clone())];
    small.push((
        job.manifest_blob.digest.clone(),
        job.manifest_blob.bytes.to_vec(),
    ));
    if let Some(index) = &job.index {
        small.push((index.digest.clone(), index.bytes.to_vec()));
    }
    for (digest, bytes) in small {
        store_small_blob(ctx, digest, bytes).await?;
    }
    let (layers, chain2) = (ctx.layers.clone(), chain.clone());
    let metas = blocking(move || {
        chain2
            .iter()
            .map(|c| layers.meta(c))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(ctx.layer_err(&cfg_digest))?;
    let parts = ImageParts {
        id: cfg_digest.clone(),
        config_bytes,
        manifest_digest: job.manifest_blob.digest.clone(),
        manifest_media_type: job.manifest_blob.media_type.clone(),
        layers: manifest
            .layers
            .iter()
            .zip(&metas)
            .map(|(blob, meta)| LayerParts {
                diff_id: meta.diff_id.clone(),
                chain_id: meta.chain_id.clone(),
                blob: blob.clone(),
                size: meta.size,
            })
            .collect(),
        manifest: manifest.clone(),
        config,
    };
    let index_digest = job.index.as_ref().map(|i| i.digest.clone());
    let top_digest = index_digest
        .clone()
        .unwrap_or_else(|| job.manifest_blob.digest.clone());
    let record = ImageRecord::from_parts(&parts, index_digest.clone());
    let by_digest = target.repository_only().with_digest(top_digest.clone());
    let (db, target2) = (ctx.db.clone(), target.clone());
    let up_to_date = blocking(move || -> Result<bool, StoreError> {
        let before = db.lookup_reference(&target2)?;
        db.put_image(&record)?;
        for meta in &metas {
            db.record_layer(meta)?;
        }
        db.set_reference(&by_digest, &record.id)?;
        if target2.digest().is_none() {
            db.set_reference(&target2, &record.id)?;
        }
        Ok(before.as_ref() == Some(&record.id))
    })
    .await
    .map_err(ctx.store_err())?;
    ctx.progress.send(ProgressEvent::PullDigest {
        digest: top_digest.clone(),
    });
    Ok(PulledImage {
        id: parts.id,
        reference: target.clone(),
        digest: top_digest,
        manifest_digest: parts.manifest_digest,
        index_digest,
        platform: found,
        layers_downloaded: downloaded,
        up_to_date,
    })
}

/// Writes a small verified blob (config, manifest, index) unless present.
async fn store_small_blob(ctx: &Ctx, digest: Digest, bytes: Vec<u8>) -> Result<(), PullError> {
    let d = digest.clone();
    let content = ctx.content.clone();
    let committed = ctx
        .claim(vec![LeaseResource::Blob(digest.clone())], move |c, _| {
            c.exists(&d)
        })
        .await?;
    if committed {
        return Ok(());
    }
    // A one-shot write under a unique ingest ref: concurrent pulls of the
    // same image each write their own copy, and the first rename wins.
    let committed = blocking(move || content.write_blob(&bytes))
        .await
        .map_err(ctx.content_err(&digest))?;
    if committed.digest != digest {
        return Err(PullError::Invalid {
            reference: ctx.name(),
            reason: format!(
                "blob {digest} hashed to {} when stored; refusing it",
                committed.digest
            ),
        });
    }
    if !committed.already_existed {
        ctx.created_blob(&digest);
    }
    Ok(())
}

/// The ingest a layer blob downloads into; named by digest, so a second
/// pull of the same blob finds (and waits for) the first one's.
fn ingest_ref(d: &Digest) -> String {
    format!("pull-{d}")
}

struct LayerJob {
    desc: Descriptor,
    chain: ChainId,
    parent: Option<ChainId>,
    diff_id: Digest,
}

/// Brings one layer's blob into the content store and its files into the
/// layer store, whichever of the two is missing. True when the blob was
/// downloaded.
async fn pull_layer(ctx: &Ctx, job: &LayerJob) -> Result<bool, PullError> {
    let d = job.desc.digest.clone();
    let writer = loop {
        let (blob_here, layer_here) = {
            let (d, c) = (d.clone(), job.chain.clone());
            ctx.claim(Vec::new(), move |content, layers| {
                (content.exists(&d), layers.exists(&c))
            })
            .await?
        };
        if blob_here {
            if !layer_here {
                unpack_stored(ctx, job).await?;
            }
            ctx.progress.layer(&d, LayerStatus::PullComplete);
            return Ok(false);
        }
        let (content, r, d2) = (ctx.content.clone(), ingest_ref(&d), d.clone());
        let acquired = blocking(move || {
            let w = content.writer(&r)?;
            // The writer we waited for commits (renames) before it unlocks:
            // if the blob is there now, our fresh ingest is not needed.
            if content.exists(&d2) {
                w.abort()?;
                return Ok(None);
            }
            Ok(Some(w))
        })
        .await;
        match acquired {
            Ok(Some(w)) => break (w, layer_here),
            Ok(None) => continue,
            // Another pull downloads this blob now: wait for it.
            Err(ContentError::Locked { .. }) => {
                if ctx.cancelled.load(Ordering::Relaxed) {
                    return Err(PullError::Cancelled {
                        reference: ctx.name(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(ctx.content_err(&d)(e)),
        }
    };
    let (mut writer, layer_here) = writer;
    writer.set_size_limit(job.desc.size);
    // A partial ingest left by an interrupted pull resumes; the unpack then
    // reads the committed blob, as it cannot start mid-stream.
    let resumed = writer.offset() > 0;
    let unpack_now = !layer_here && !resumed;
    // fetch_layer records a layer it unpacked as created (also on failure).
    let (writer, unpacked) = fetch_layer(ctx, job, writer, unpack_now).await?;
    let content_err = ctx.content_err(&d);
    let size = job.desc.size;
    let d2 = d.clone();
    let committed = blocking(move || writer.commit(Some(size), Some(&d2)))
        .await
        .map_err(content_err)?;
    if !committed.already_existed {
        ctx.created_blob(&d);
    }
    ctx.progress.layer(&d, LayerStatus::DownloadComplete);
    match unpacked {
        Some(_) => ctx.progress.layer(
            &d,
            LayerStatus::Extracting {
                current: size,
                total: size,
            },
        ),
        None if !layer_here => unpack_stored(ctx, job).await?,
        None => {}
    }
    ctx.progress.layer(&d, LayerStatus::PullComplete);
    Ok(true)
}

/// Unpacks a layer from its committed blob.
async fn unpack_stored(ctx: &Ctx, job: &LayerJob) -> Result<(), PullError> {
    let (content, layers, progress) = (
        ctx.content.clone(),
        ctx.layers.clone(),
        ctx.progress.clone(),
    );
    let (desc, chain, parent, diff_id, apply) = (
        job.desc.clone(),
        job.chain.clone(),
        job.parent.clone(),
        job.diff_id.clone(),
        ctx.apply.clone(),
    );
    let d = desc.digest.clone();
    let unpacked = blocking(
        move || -> Result<Unpacked, Result<ContentError, LayerError>> {
            let file = content.open_blob(&desc.digest).map_err(Ok)?;
            let reader = ExtractProgress {
                inner: BufReader::with_capacity(1 << 20, file),
                progress,
                id: desc.digest.clone(),
                total: desc.size,
                read: 0,
                throttle: Throttle::new(),
                report: None,
            };
            layers
                .unpack(&chain, parent.as_ref(), &diff_id, reader, &apply)
                .map_err(Err)
        },
    )
    .await;
    match unpacked {
        Ok(u) => {
            if u.created {
                ctx.created_layer(&u.meta.chain_id);
            }
            Ok(())
        }
        Err(Ok(e)) => Err(ctx.content_err(&d)(e)),
        Err(Err(e)) => Err(ctx.layer_err(&d)(e)),
    }
}

/// Counts the compressed bytes an unpack consumed, for `Extracting`.
struct ExtractProgress<R> {
    inner: R,
    progress: Progress,
    id: Digest,
    total: u64,
    read: u64,
    throttle: Throttle,
    /// Report only once this is set (the download finished); `None` always reports.
    report: Option<Arc<AtomicBool>>,
}

impl<R: Read> Read for ExtractProgress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let reporting = self
            .report
            .as_ref()
            .is_none_or(|f| f.load(Ordering::Relaxed));
        if n > 0 && reporting && self.throttle.due() {
            self.progress.layer(
                &self.id,
                LayerStatus::Extracting {
                    current: self.read.min(self.total),
                    total: self.total,
                },
            );
        }
        Ok(n)
    }
}

/// Downloads a layer blob into `writer`; with `unpack`, the same bytes are
/// unpacked while they arrive. Returns the writer (to commit) and the
/// unpacked layer. On error the ingest is dropped.
async fn fetch_layer(
    ctx: &Ctx,
    job: &LayerJob,
    mut writer: Writer,
    unpack: bool,
) -> Result<(Writer, Option<Unpacked>), PullError> {
    let d = job.desc.digest.clone();
    let total = job.desc.size;
    // The ingest hashes (sha256) everything it writes, and its commit checks
    // the digest: the download is not hashed a second time. A blob of
    // another algorithm is hashed by the client, from its first byte.
    let by_ingest = d.algorithm() == Algorithm::Sha256;
    if !by_ingest && writer.offset() > 0 {
        writer.truncate().map_err(ctx.content_err(&d))?;
    }
    let offset = writer.offset();
    let verify = if by_ingest {
        crate::Verify::BySink { offset }
    } else {
        crate::Verify::Here(None)
    };
    // Bounded: a slow disk slows the download instead of filling memory.
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let downloaded = Arc::new(AtomicBool::new(false));
    let consumer = Consumer {
        rx,
        pending: Bytes::new(),
        writer,
        write_error: None,
        stop: ctx.cancelled.clone(),
    };
    let unpack_job = unpack.then(|| UnpackJob {
        layers: ctx.layers.clone(),
        chain: job.chain.clone(),
        parent: job.parent.clone(),
        diff_id: job.diff_id.clone(),
        apply: ctx.apply.clone(),
        progress: ctx.progress.clone(),
        id: d.clone(),
        total,
        report: downloaded.clone(),
    });
    let handle = tokio::task::spawn_blocking(move || consume(consumer, unpack_job));
    let mut sink = ChunkSink {
        tx: Some(tx),
        reserve: None,
        buf: BytesMut::new(),
        progress: ctx.progress.clone(),
        id: d.clone(),
        total,
        written: offset,
        throttle: Throttle::new(),
        cancelled: ctx.cancelled.clone(),
    };
    let fetched = ctx
        .client
        .fetch_blob(&ctx.repo, &d, Some(total), verify, &mut sink)
        .await;
    let fetched = match fetched {
        Ok(_) => tokio::io::AsyncWriteExt::shutdown(&mut sink)
            .await
            .map_err(|source| {
                PullError::Registry(RegistryError::Sink {
                    registry: ctx.repo.domain().into(),
                    repository: ctx.repo.repository().into(),
                    digest: d.to_string(),
                    source,
                })
            }),
        Err(e) => Err(PullError::Registry(e)),
    };
    if fetched.is_ok() {
        ctx.progress.layer(&d, LayerStatus::Verifying);
        downloaded.store(true, Ordering::Relaxed);
    }
    // Closing the channel ends the consumer's stream.
    drop(sink);
    let consumed = match handle.await {
        Ok(c) => c,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("a layer unpack thread did not finish: {e}"),
        },
    };
    let Consumed {
        writer,
        write_error,
        unpacked,
    } = consumed;
    if let Some(Ok(u)) = &unpacked {
        if u.created {
            ctx.created_layer(&u.meta.chain_id);
        }
    }
    // The first cause wins: a local write error, then the download's own
    // verdict (a digest mismatch explains a failed unpack), then the unpack.
    let error = if let Some(e) = write_error {
        ctx.content_err(&d)(e)
    } else if let Err(e) = fetched {
        e
    } else if let Some(Err(e)) =
        by_ingest.then(|| crate::blobs::check_digest(&ctx.repo, &d, &writer.digester()))
    {
        PullError::Registry(e)
    } else {
        match unpacked {
            None => return Ok((writer, None)),
            Some(Ok(u)) => return Ok((writer, Some(u))),
            Some(Err(e)) => ctx.layer_err(&d)(e),
        }
    };
    let _ = writer.abort();
    Err(error)
}

/// An unpack that reads a download as it arrives.
struct UnpackJob {
    layers: LayerStore,
    chain: ChainId,
    parent: Option<ChainId>,
    diff_id: Digest,
    apply: berth_archive::ApplyOptions,
    progress: Progress,
    id: Digest,
    total: u64,
    /// Set when the download finished: `Extracting` is reported only then
    /// (before, the layer shows `Downloading`).
    report: Arc<AtomicBool>,
}

/// The blocking end of a layer download: every byte goes to the ingest;
/// the same bytes feed the unpack.
struct Consumer {
    rx: mpsc::Receiver<Bytes>,
    pending: Bytes,
    writer: Writer,
    write_error: Option<ContentError>,
    stop: Arc<AtomicBool>,
}

struct Consumed {
    writer: Writer,
    write_error: Option<ContentError>,
    unpacked: Option<Result<Unpacked, LayerError>>,
}

impl Read for Consumer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            if self.stop.load(Ordering::Relaxed) {
                return Err(io::Error::other("the pull was cancelled"));
            }
            match self.rx.blocking_recv() {
                Some(b) => {
                    if let Err(e) = std::io::Write::write_all(&mut self.writer, &b) {
                        let msg = e.to_string();
                        self.write_error = Some(ContentError::Io {
                            op: "write ingest",
                            path: std::path::PathBuf::from(self.writer.reference()),
                            source: e,
                        });
                        return Err(io::Error::other(msg));
                    }
                    self.pending = b;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        let _ = self.pending.split_to(n);
        Ok(n)
    }
}

fn consume(mut c: Consumer, job: Option<UnpackJob>) -> Consumed {
    let unpacked = job.map(|job| {
        let reader = ExtractProgress {
            inner: &mut c,
            progress: job.progress,
            id: job.id,
            total: job.total,
            read: 0,
            throttle: Throttle::new(),
            report: Some(job.report),
        };
        job.layers.unpack(
            &job.chain,
            job.parent.as_ref(),
            &job.diff_id,
            reader,
            &job.apply,
        )
    });
    // The rest of the blob (what the unpack did not read, or everything
    // after a failed unpack) still goes to the ingest, so the download ends
    // with its own verdict on the digest.
    if c.write_error.is_none() {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
    // Dropping the receiver now makes a still-running download fail fast.
    let Consumer {
        writer,
        write_error,
        ..
    } = c;
    Consumed {
        writer,
        write_error,
        unpacked,
    }
}

/// The async end: an `AsyncWrite` that batches the download's bytes into
/// chunks of up to [`BATCH`] and sends them to the consumer.
struct ChunkSink {
    tx: Option<mpsc::Sender<Bytes>>,
    #[allow(clippy::type_complexity)]
    reserve: Option<
        Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<mpsc::OwnedPermit<Bytes>, mpsc::error::SendError<()>>,
                    > + Send,
            >,
        >,
    >,
    buf: BytesMut,
    progress: Progress,
    id: Digest,
    total: u64,
    written: u64,
    throttle: Throttle,
    cancelled: Arc<AtomicBool>,
}

const BATCH: usize = 256 << 10;

impl ChunkSink {
    fn closed() -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the layer's writer stopped (see the unpack or store error)",
        )
    }

    /// Sends the buffered bytes as one chunk.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if self.reserve.is_none() {
            let Some(tx) = &self.tx else {
                return Poll::Ready(Err(Self::closed()));
            };
            self.reserve = Some(Box::pin(tx.clone().reserve_owned()));
        }
        let fut = self.reserve.as_mut().expect("set above");
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => {
                self.reserve = None;
                Poll::Ready(Err(Self::closed()))
            }
            Poll::Ready(Ok(permit)) => {
                self.reserve = None;
                permit.send(self.buf.split().freeze());
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for ChunkSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cancelled.load(Ordering::Relaxed) {
            return Poll::Ready(Err(io::Error::other("the pull was cancelled")));
        }
        if this.buf.len() >= BATCH {
            match this.poll_send(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other.map(|r| r.map(|_| 0)),
            }
        }
        if this.buf.capacity() - this.buf.len() < data.len() {
            this.buf.reserve(BATCH.max(data.len()));
        }
        this.buf.extend_from_slice(data);
        this.written += data.len() as u64;
        if this.throttle.due() || this.written == this.total {
            this.progress.layer(
                &this.id,
                LayerStatus::Downloading {
                    current: this.written,
                    total: this.total,
                },
            );
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }
}

/// After a failed pull: drops its lease and removes the blobs and layers
/// it created that nothing else (an image, another lease) references.
fn discard(
    db: &Store,
    content: &ContentStore,
    layers: &LayerStore,
    lease: &str,
    created: &Created,
) {
    let _g = CLAIM.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = db.delete_lease(lease) {
        tracing::warn!(lease, error = %e, "cannot drop a failed pull's lease; GC will once it expires");
        return;
    }
    if created.blobs.is_empty() && created.layers.is_empty() {
        return;
    }
    let (images, leases) = match (db.images(), db.leases()) {
        (Ok(i), Ok(l)) => (i, l),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot check references after a failed pull; GC will clean up");
            return;
        }
    };
    let mut blobs = BTreeSet::new();
    let mut chains = BTreeSet::new();
    for img in &images {
        blobs.insert(img.id.clone());
        blobs.extend(img.manifest_digest.iter().cloned());
        blobs.extend(img.index_digest.iter().cloned());
        for l in &img.layers {
            chains.insert(l.chain_id.clone());
            blobs.extend(l.blob.iter().map(|b| b.digest.clone()));
        }
    }
    for l in &leases {
        for r in &l.resources {
            match r {
                LeaseResource::Blob(d) => {
                    blobs.insert(d.clone());
                }
                LeaseResource::Layer(c) => {
                    chains.insert(c.clone());
                }
                LeaseResource::Ingest(_) => {}
            }
        }
    }
    for d in created.blobs.iter().filter(|d| !blobs.contains(*d)) {
        if let Err(e) = content.delete(d) {
            tracing::warn!(digest = %d, error = %e, "cannot remove a failed pull's blob");
        }
    }
    for c in created.layers.iter().filter(|c| !chains.contains(*c)) {
        if let Err(e) = layers.remove(c) {
            tracing::warn!(chain_id = %c, error = %e, "cannot remove a failed pull's layer");
        }
    }
}
