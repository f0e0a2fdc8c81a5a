//! `save` and `load`: image archives as `docker save` writes them and as
//! `docker load` and skopeo's `oci-archive:` read them.
//!
//! `save` writes a tar that is both a docker-archive (`manifest.json`,
//! `repositories`) and an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), as docker 25 and later do. Layer blobs go in as
//! stored (compressed or not); `docker load` accepts both.
//!
//! `load` reads docker-archives (old style with `<id>/layer.tar` and
//! symlinks, and new style), OCI layout archives, optionally gzip or zstd
//! compressed. Nothing from the archive is written by its path: every file
//! is streamed into the content store by digest (blobs named by digest are
//! verified against their names), and layers are unpacked by berth-archive
//! with their diff ids verified against the image config.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use berth_errdefs::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::digest::{Algorithm, Digest};
use crate::image::{AssembleError, ImageParts};
use crate::layers::LayerStore;
use crate::manifest::{
    self, media_type, Descriptor, Document, Index, Manifest, ManifestError, MAX_MANIFEST_SIZE,
};
use crate::platform::Platform;
use crate::reference::{Reference, ReferenceError};
use crate::tarfmt::{Kind, TarReader, TarWriter};

/// Largest metadata file (`manifest.json`, `index.json`, ...) accepted.
const MAX_METADATA: u64 = 16 << 20;
/// Most entries accepted in one archive.
const MAX_ENTRIES: u64 = 1_000_000;
/// Deepest chain of symlinks or nested indexes followed.
const MAX_HOPS: usize = 16;

/// Why a save or load failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the image archive failed: {source}")]
    Read { source: io::Error },
    #[error("writing the image archive failed: {source}")]
    Write { source: io::Error },
    #[error("invalid image archive: {reason}")]
    Invalid { reason: String },
    #[error("{what} {digest} is not in the content store; pull the image again before saving it")]
    MissingBlob { what: &'static str, digest: Digest },
    #[error("image archive: {0}")]
    Content(#[from] ContentError),
    #[error("image archive: {0}")]
    Manifest(#[from] ManifestError),
    #[error("image archive: {0}")]
    Reference(#[from] ReferenceError),
    #[error("image archive: {0}")]
    Assemble(#[from] AssembleError),
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Read { .. } | ArchiveError::Invalid { .. } => ErrorKind::InvalidArgument,
            ArchiveError::Write { .. } => ErrorKind::Internal,
            ArchiveError::MissingBlob { .. } => ErrorKind::NotFound,
            ArchiveError::Content(e) => e.kind(),
            ArchiveError::Manifest(e) => e.kind(),
            ArchiveError::Reference(e) => e.kind(),
            ArchiveError::Assemble(e) => e.kind(),
        }
    }
}

fn invalid(reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid {
        reason: reason.into(),
    }
}

/// One image to save: its manifest (in the content store) and the names
/// to record for it.
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub manifest_digest: Digest,
    pub tags: Vec<Reference>,
}

/// docker-archive's `manifest.json` entry.
#[derive(Debug, Serialize, Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

/// Writes `images` as one archive to `out`.
pub fn save<W: Write>(
    content: &ContentStore,
    images: &[SaveItem],
    out: W,
) -> Result<W, ArchiveError> {
    let write_err = |source| ArchiveError::Write { source };
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_owned()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let mut docker: Vec<DockerEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in images {
        let bytes = content
            .read(&item.manifest_digest, MAX_MANIFEST_SIZE)
            .map_err(|e| match e {
                ContentError::NotFound { digest } => ArchiveError::MissingBlob {
                    what: "manifest",
                    digest,
                },
                e => e.into(),
            })?;
        let Document::Manifest(m) = manifest::parse(&bytes, None)? else {
            return Err(invalid(format!(
                "{} is an index, not an image manifest",
                item.manifest_digest
            )));
        };
        m.validate_image()?;
        for (what, d) in std::iter::once(("image config", &m.config.digest))
            .chain(m.layers.iter().map(|l| ("layer blob", &l.digest)))
        {
            if !content.exists(d) {
                return Err(ArchiveError::MissingBlob {
                    what,
                    digest: d.clone(),
                });
            }
            blobs.insert(d.clone());
        }
        blobs.insert(item.manifest_digest.clone());
        let manifest_type = m
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
        let desc = Descriptor::new(
            &manifest_type,
            item.manifest_digest.clone(),
            bytes.len() as u64,
        );
        let tags: Vec<&Reference> = item.tags.iter().filter(|t| t.tag().is_some()).collect();
        if tags.is_empty() {
            index.manifests.push(desc.clone());
        }
        for t in &tags {
            let mut d = desc.clone();
            d.annotations
                .insert("io.containerd.image.name".to_owned(), t.to_string());
            d.annotations.insert(
                "org.opencontainers.image.ref.name".to_owned(),
                t.tag().unwrap_or_default().to_owned(),
            );
            index.manifests.push(d);
            let top = m
                .layers
                .last()
                .map(|l| l.digest.hex().to_owned())
                .unwrap_or_default();
            repositories
                .entry(t.familiar_name())
                .or_default()
                .insert(t.tag().unwrap_or_default().to_owned(), top);
        }
        docker.push(DockerEntry {
            config: blob_name(&m.config.digest),
            repo_tags: Some(tags.iter().map(|t| t.familiar()).collect()),
            layers: m.layers.iter().map(|l| blob_name(&l.digest)).collect(),
        });
    }

    let mut tar = TarWriter::new(out);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    tar.file("oci-layout", layout.len() as u64, &layout[..])
        .map_err(write_err)?;
    tar.dir("blobs/").map_err(write_err)?;
    let algs: BTreeSet<Algorithm> = blobs.iter().map(Digest::algorithm).collect();
    for alg in algs {
        tar.dir(&format!("blobs/{}/", alg.name()))
            .map_err(write_err)?;
    }
    for d in &blobs {
        let file = content.open_blob(d)?;
        let size = file.metadata().map_err(write_err)?.len();
        tar.file(&blob_name(d), size, file).map_err(write_err)?;
    }
    for (name, bytes) in [
        ("index.json", to_json(&index)),
        ("manifest.json", to_json(&docker)),
        ("repositories", to_json(&repositories)),
    ] {
        tar.file(name, bytes.len() as u64, &bytes[..])
            .map_err(write_err)?;
    }
    tar.finish().map_err(write_err)
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("archive metadata serialises")
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// For OCI archives with multi-platform indexes: the platform to take
    /// (the host's by default).
    pub platform: Option<Platform>,
    /// Limits for unpacking layers.
    pub apply: berth_archive::ApplyOptions,
}

/// An image read from an archive: stored and unpacked, not yet recorded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: ImageParts,
    /// The names the archive gives it (possibly none).
    pub references: Vec<Reference>,
}

/// What the archive's files became.
#[derive(Default)]
struct Files {
    /// Archive path (normalised) to the blob its data became.
    blobs: BTreeMap<String, Digest>,
    /// Archive path to link target (normalised, from the archive root).
    links: BTreeMap<String, String>,
    /// Small metadata files by name.
    metadata: BTreeMap<String, Vec<u8>>,
}

impl Files {
    /// The blob at `path`, following links.
    fn resolve(&self, path: &str) -> Result<Digest, ArchiveError> {
        let mut p = normalize(path);
        for _ in 0..MAX_HOPS {
            if let Some(d) = self.blobs.get(&p) {
                return Ok(d.clone());
            }
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => {
                    return Err(invalid(format!(
                        "{path:?} is named in the archive's metadata but not in the archive"
                    )))
                }
            }
        }
        Err(invalid(format!("{path:?}: too many levels of links")))
    }
}

/// Reads an archive into the content and layer stores. The caller records
/// the returned images (holding off GC until then).
pub fn load<R: Read>(
    content: &ContentStore,
    layers: &LayerStore,
    input: R,
    options: &LoadOptions,
) -> Result<Vec<Loaded>, ArchiveError> {
    let (_, plain) =
        berth_archive::auto_decompressor(input).map_err(|source| ArchiveError::Read { source })?;
    let files = read_entries(content, plain)?;
    let mut images: Vec<(Manifest, Digest, Vec<Reference>)> = Vec::new();
    let oci_index = match files.metadata.get("index.json") {
        Some(b) => Some(parse_index(b)?),
        None => None,
    };
    if let Some(bytes) = files.metadata.get("manifest.json") {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("manifest.json: {e}")))?;
        for entry in entries {
            let config = files.resolve(&entry.config)?;
            let mut refs = Vec::new();
            for t in entry.repo_tags.unwrap_or_default() {
                refs.push(Reference::parse(&t)?);
            }
            // Prefer the archive's own manifest (docker 25+ ship one),
            // else describe the layers in a new OCI manifest.
            let own = match &oci_index {
                Some(idx) => find_manifest_for(content, idx, &config, options)?,
                None => None,
            };
            let (m, digest) = match own {
                Some(found) => found,
                None => {
                    let layer_blobs = entry
                        .layers
                        .iter()
                        .map(|l| files.resolve(l))
                        .collect::<Result<Vec<_>, _>>()?;
                    synthesize_manifest(content, &config, &layer_blobs)?
                }
            };
            images.push((m, digest, refs));
        }
    } else if let Some(idx) = &oci_index {
        // Group index entries by manifest: docker's layout lists one per tag.
        let mut by_manifest: BTreeMap<Digest, (Manifest, Vec<Reference>)> = BTreeMap::new();
        for desc in &idx.manifests {
            let (m, digest) = resolve_descriptor(content, desc, options, 0)?;
            let slot = by_manifest.entry(digest).or_insert_with(|| (m, Vec::new()));
            if let Some(r) = name_of(desc)? {
                if !slot.1.contains(&r) {
                    slot.1.push(r);
                }
            }
        }
        images.extend(by_manifest.into_iter().map(|(d, (m, refs))| (m, d, refs)));
    } else {
        return Err(invalid(
            "it has neither manifest.json (docker-archive) nor index.json (OCI layout)",
        ));
    }

    let mut out = Vec::new();
    for (m, digest, references) in images {
        let image = crate::image::assemble(content, layers, m, digest, &options.apply)?;
        out.push(Loaded { image, references });
    }
    Ok(out)
}

fn read_entries<R: Read>(content: &ContentStore, input: R) -> Result<Files, ArchiveError> {
    let read_err = |source| ArchiveError::Read { source };
    let mut tar = TarReader::new(input);
    let mut files = Files::default();
    let mut count = 0u64;
    while let Some(entry) = tar.next_entry().map_err(read_err)? {
        count += 1;
        if count > MAX_ENTRIES {
            return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
        }
        let path = normalize(&entry.path);
        match entry.kind {
            Kind::Dir | Kind::Other => continue,
            Kind::Symlink => {
                let base = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let target = if entry.link.starts_with('/') {
                    entry.link.clone()
                } else {
                    format!("{base}/{}", entry.link)
                };
                files.links.insert(path, normalize(&target));
                continue;
            }
            Kind::Hardlink => {
                files.links.insert(path, normalize(&entry.link));
                continue;
            }
            Kind::File => {}
        }
        let data = tar.data(&entry);
        if matches!(
            path.as_str(),
            "manifest.json" | "index.json" | "oci-layout" | "repositories"
        ) {
            if entry.size > MAX_METADATA {
                return Err(invalid(format!(
                    "{path} is {} bytes, more than {MAX_METADATA}",
                    entry.size
                )));
            }
            let mut buf = Vec::with_capacity(entry.size as usize);
            data.take(MAX_METADATA)
                .read_to_end(&mut buf)
                .map_err(read_err)?;
            files.metadata.insert(path, buf);
            continue;
        }
        // Old docker-archives carry v1 metadata beside each layer: unused.
        let file_name = path.rsplit('/').next().unwrap_or("");
        if path.contains('/') && (file_name == "json" || file_name == "VERSION") {
            continue;
        }
        let digest = match named_digest(&path) {
            Some(d) if content.exists(&d) => d,
            Some(d) => content.ingest_from(data, &d, Some(entry.size))?.digest,
            None => {
                let mut w = content.writer(&unique_ref())?;
                w.set_size_limit(entry.size);
                let mut data = data;
                if let Err(source) = crate::content::copy_in_large_writes(&mut data, &mut w) {
                    w.abort()?;
                    return Err(read_err(source));
                }
                w.commit(Some(entry.size), None)?.digest
            }
        };
        files.blobs.insert(path, digest);
    }
    Ok(files)
}

fn unique_ref() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "load-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `blobs/<alg>/<hex>` names its digest.
fn named_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

/// A textual path normalisation for lookups: no leading `/` or `./`, no
/// `.` components, `..` pops (never above the root). Nothing is ever
/// opened by these paths.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn parse_index(bytes: &[u8]) -> Result<Index, ArchiveError> {
    match manifest::parse(bytes, None)? {
        Document::Index(i) => Ok(i),
        Document::Manifest(_) => Err(invalid("index.json is a manifest, not an index")),
    }
}

/// The image name an OCI index entry gives, if any.
fn name_of(desc: &Descriptor) -> Result<Option<Reference>, ArchiveError> {
    if let Some(full) = desc.annotations.get("io.containerd.image.name") {
        return Ok(Some(Reference::parse(full)?));
    }
    match desc.annotations.get("org.opencontainers.image.ref.name") {
        // A bare tag ("latest") names no repository: the image stays untagged.
        Some(name) if name.contains(':') || name.contains('/') => Ok(Reference::parse(name).ok()),
        _ => Ok(None),
    }
}

/// Follows a descriptor through nested indexes to an image manifest.
fn resolve_descriptor(
    content: &ContentStore,
    desc: &Descriptor,
    options: &LoadOptions,
    depth: usize,
) -> Result<(Manifest, Digest), ArchiveError> {
    if depth > MAX_HOPS {
        return Err(invalid("indexes nested too deeply"));
    }
    let bytes = content
        .read(&desc.digest, MAX_MANIFEST_SIZE)
        .map_err(|e| match e {
            ContentError::NotFound { digest } => ArchiveError::MissingBlob {
                what: "manifest",
                digest,
            },
            e => e.into(),
        })?;
    let declared = Some(desc.media_type.as_str()).filter(|t| !t.is_empty());
    match manifest::parse(&bytes, declared)? {
        Document::Manifest(m) => {
            m.validate_image()?;
            Ok((*m, desc.digest.clone()))
        }
        Document::Index(idx) => {
            let want = options.platform.clone().unwrap_or_else(Platform::host);
            let chosen = idx.select(&want)?.clone();
            resolve_descriptor(content, &chosen, options, depth + 1)
        }
    }
}

/// In an OCI index, the manifest whose config is `config`, if any.
fn find_manifest_for(
    content: &ContentStore,
    idx: &Index,
    config: &Digest,
    options: &LoadOptions,
) -> Result<Option<(Manifest, Digest)>, ArchiveError> {
    for desc in &idx.manifests {
        if !content.exists(&desc.digest) {
            continue;
        }
        if let Ok((m, d)) = resolve_descriptor(content, desc, options, 0) {
            if &m.config.digest == config {
                return Ok(Some((m, d)));
            }
        }
    }
    Ok(None)
}

/// An OCI manifest for a docker-archive image that came without one.
fn synthesize_manifest(
    content: &ContentStore,
    config: &Digest,
    layer_blobs: &[Digest],
) -> Result<(Manifest, Digest), ArchiveError> {
    let config_size = content.info(config)?.size;
    let mut layers = Vec::new();
    for d in layer_blobs {
        let mut first = [0u8; berth_archive::MAGIC_LEN];
        let mut f = content.open_blob(d)?;
        let n = f
            .read(&mut first)
            .map_err(|source| ArchiveError::Read { source })?;
        let mt = match berth_archive::detect_compression(&first[..n]) {
            berth_archive::Compression::None => media_type::OCI_LAYER,
            berth_archive::Compression::Gzip => media_type::OCI_LAYER_GZIP,
            berth_archive::Compression::Zstd => media_type::OCI_LAYER_ZSTD,
        };
        layers.push(Descriptor::new(mt, d.clone(), content.info(d)?.size));
    }
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, config.clone(), config_size),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    };
    let digest = content.write_blob(&m.to_json())?.digest;
    Ok((m, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_without_escaping() {
        assert_eq!(normalize("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalize("/a/./b//c/"), "a/b/c");
        assert_eq!(normalize("a/../../../etc/passwd"), "etc/passwd");
        assert_eq!(
            named_digest(&format!("blobs/sha256/{}", "a".repeat(64)))
                .unwrap()
                .hex(),
            "a".repeat(64)
        );
        assert!(named_digest("blobs/sha256/zz").is_none());
        assert!(named_digest("abc/layer.tar").is_none());
    }
}
