//! Image manifests and indexes, OCI and Docker v2 schema 2.
//!
//! The two formats have the same JSON shape and differ in media types, so
//! one set of types serves both. The types are ours rather than oci-spec's
//! because every descriptor carries our verified [`Digest`] (oci-spec's
//! digest type admits algorithms we cannot verify), and the manifest list
//! and index must be told apart from manifests by content, not only by the
//! (optional) `mediaType` field. Schema 1 manifests are recognised and
//! refused with a clear error.

use std::collections::BTreeMap;

use berth_errdefs::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// Manifests and indexes larger than this are refused (as containerd does).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Media types berth knows.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_NONDIST_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

/// Why a manifest or index was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("unsupported manifest: Docker image manifest schema 1 ({media_type}) is deprecated and not supported; push the image again with a current docker or skopeo")]
    Schema1 { media_type: String },
    #[error("unsupported manifest media type {media_type:?}: expected an OCI or Docker v2 image manifest or index")]
    UnsupportedMediaType { media_type: String },
    #[error("invalid manifest ({media_type}): {source}")]
    Json {
        media_type: String,
        source: serde_json::Error,
    },
    #[error("invalid manifest ({media_type}): {reason}")]
    Invalid { media_type: String, reason: String },
    #[error(
        "manifest media type mismatch: served as {declared:?} but the document says {actual:?}"
    )]
    MediaTypeMismatch { declared: String, actual: String },
    #[error(
        "no matching manifest for {wanted} in the manifest list entries (available: {available})"
    )]
    NoMatchingPlatform { wanted: String, available: String },
}

impl HasKind for ManifestError {
    fn kind(&self) -> ErrorKind {
        match self {
            ManifestError::Schema1 { .. } | ManifestError::UnsupportedMediaType { .. } => {
                ErrorKind::NotImplemented
            }
            ManifestError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Manifest(Box<Manifest>),
    Index(Index),
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer media type, or `None` if it is not a layer
/// type berth can unpack.
pub fn layer_compression(media_type: &str) -> Option<LayerCompression> {
    use media_type::*;
    match media_type {
        OCI_LAYER | OCI_LAYER_NONDIST | DOCKER_LAYER => Some(LayerCompression::None),
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER => {
            Some(LayerCompression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => Some(LayerCompression::Zstd),
        _ => None,
    }
}

/// True for the media types of manifests and indexes berth accepts.
pub fn is_manifest_type(media_type: &str) -> bool {
    use media_type::*;
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST
    )
}

/// The `Accept` header value a registry client should send.
pub fn accept_header() -> String {
    use media_type::*;
    [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
    ]
    .join(", ")
}

/// Just enough of a document to tell what it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
    fs_layers: Option<serde_json::Value>,
}

/// Parses a manifest or index. `declared` is the media type it was served
/// or stored with (the HTTP Content-Type), if any; generic JSON types are
/// ignored. The kind is decided by the declared type, else the document's
/// `mediaType`, else its shape.
pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<Document, ManifestError> {
    if bytes.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_MANIFEST_SIZE,
        });
    }
    let declared = declared
        .map(|d| d.split(';').next().unwrap_or("").trim())
        .filter(|d| !d.is_empty() && *d != "application/json" && *d != "text/plain");
    if let Some(d) = declared {
        if d == media_type::DOCKER_SCHEMA1 || d == media_type::DOCKER_SCHEMA1_SIGNED {
            return Err(ManifestError::Schema1 {
                media_type: d.to_owned(),
            });
        }
    }
    let what = declared.unwrap_or("manifest").to_owned();
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
        media_type: what.clone(),
        source,
    })?;
    if probe.schema_version == Some(1) || probe.fs_layers.is_some() {
        return Err(ManifestError::Schema1 {
            media_type: probe
                .media_type
                .unwrap_or_else(|| media_type::DOCKER_SCHEMA1.to_owned()),
        });
    }
    if let (Some(d), Some(inner)) = (declared, probe.media_type.as_deref()) {
        if d != inner {
            return Err(ManifestError::MediaTypeMismatch {
                declared: d.to_owned(),
                actual: inner.to_owned(),
            });
        }
    }
    let kind = match declared.or(probe.media_type.as_deref()) {
        Some(t @ (media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST)) => {
            (true, t.to_owned())
        }
        Some(t @ (media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST)) => (false, t.to_owned()),
        Some(other) => {
            return Err(ManifestError::UnsupportedMediaType {
                media_type: other.to_owned(),
            })
        }
        None if probe.manifests.is_some() && probe.config.is_none() => {
            (true, media_type::OCI_INDEX.to_owned())
        }
        None if probe.config.is_some() => (false, media_type::OCI_MANIFEST.to_owned()),
        None => {
            return Err(ManifestError::Invalid {
                media_type: what,
                reason: "it has neither \"manifests\" nor \"config\"".to_owned(),
            })
        }
    };
    let (is_index, mt) = kind;
    if probe.schema_version != Some(2) {
        return Err(ManifestError::Invalid {
            media_type: mt,
            reason: format!("schemaVersion is {:?}, expected 2", probe.schema_version),
        });
    }
    let json_err = |source| ManifestError::Json {
        media_type: mt.clone(),
        source,
    };
    if is_index {
        let index: Index = serde_json::from_slice(bytes).map_err(json_err)?;
        Ok(Document::Index(index))
    } else {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(json_err)?;
        Ok(Document::Manifest(Box::new(manifest)))
    }
}

impl Manifest {
    /// Checks that this manifest describes a runnable image: an image
    /// config and layers berth can unpack.
    pub fn validate_image(&self) -> Result<(), ManifestError> {
        let mt = self
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
        let invalid = |reason: String| ManifestError::Invalid {
            media_type: mt.clone(),
            reason,
        };
        if self.config.media_type != media_type::OCI_CONFIG
            && self.config.media_type != media_type::DOCKER_CONFIG
        {
            return Err(invalid(format!(
                "config media type {:?} is not an image config (is this an artifact, not an image?)",
                self.config.media_type
            )));
        }
        for l in &self.layers {
            if layer_compression(&l.media_type).is_none() {
                return Err(invalid(format!(
                    "layer {} has unsupported media type {:?}",
                    l.digest, l.media_type
                )));
            }
        }
        Ok(())
    }

    /// The canonical JSON of this manifest (as berth writes it).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }
}

impl Index {
    /// Chooses the manifest for `wanted`: an exact platform match first,
    /// then the platforms `wanted` can also run, in that order. Attestation
    /// manifests (BuildKit's `unknown/unknown` entries) never match.
    pub fn select(&self, wanted: &Platform) -> Result<&Descriptor, ManifestError> {
        let candidates: Vec<&Descriptor> = self
            .manifests
            .iter()
            .filter(|d| is_manifest_type(&d.media_type) || d.media_type.is_empty())
            .filter(|d| {
                d.annotations
                    .get("vnd.docker.reference.type")
                    .map(String::as_str)
                    != Some("attestation-manifest")
            })
            .collect();
        for want in wanted.compatible() {
            if let Some(d) = candidates
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| p.same_as(&want)))
            {
                return Ok(d);
            }
        }
        // An index without platforms and a single entry: take it, as
        // containerd does for single-platform OCI layouts.
        if candidates.len() == 1 && candidates[0].platform.is_none() {
            return Ok(candidates[0]);
        }
        let available = candidates
            .iter()
            .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join(", ");
        Err(ManifestError::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: if available.is_empty() {
                "none".to_owned()
            } else {
                available
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":1470,"digest":"{}"}},
            "layers":[{{"mediaType":"{}","size":2807,"digest":"{}"}}]}}"#,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_CONFIG,
            d(1),
            media_type::DOCKER_LAYER_GZIP,
            d(2)
        )
    }

    fn index(entries: &[(&str, &str, Option<&str>)]) -> String {
        let manifests: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, v))| {
                let variant = v.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{}","digest":"{}","size":500,"platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#,
                    media_type::OCI_MANIFEST,
                    d(10 + i as u8)
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
            media_type::OCI_INDEX,
            manifests.join(",")
        )
    }

    #[test]
    fn docker_schema2_manifest() {
        let Document::Manifest(m) = parse(
            docker_manifest().as_bytes(),
            Some(media_type::DOCKER_MANIFEST),
        )
        .unwrap() else {
            panic!("expected a manifest")
        };
        assert_eq!(m.config.digest.to_string(), d(1));
        assert_eq!(m.layers.len(), 1);
        assert_eq!(
            layer_compression(&m.layers[0].media_type),
            Some(LayerCompression::Gzip)
        );
        m.validate_image().unwrap();
        // Round trip through our own serialisation.
        assert_eq!(parse(&m.to_json(), None).unwrap(), Document::Manifest(m));
    }

    #[test]
    fn oci_manifest_without_media_type_is_detected_by_shape() {
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":2,"digest":"{}"}},"layers":[
                {{"mediaType":"{}","size":3,"digest":"{}"}},{{"mediaType":"{}","size":3,"digest":"{}"}}]}}"#,
            media_type::OCI_CONFIG,
            d(1),
            media_type::OCI_LAYER_ZSTD,
            d(2),
            media_type::OCI_LAYER,
            d(3)
        );
        let Document::Manifest(m) = parse(json.as_bytes(), Some("application/json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            layer_compression(&m.layers[0].media_type),
            Some(LayerCompression::Zstd)
        );
        assert_eq!(
            layer_compression(&m.layers[1].media_type),
            Some(LayerCompression::None)
        );
        m.validate_image().unwrap();
    }

    #[test]
    fn index_and_manifest_list() {
        let doc = parse(index(&[("linux", "amd64", None)]).as_bytes(), None).unwrap();
        assert!(matches!(doc, Document::Index(_)));
        let list = index(&[("linux", "amd64", None)])
            .replace(media_type::OCI_INDEX, media_type::DOCKER_MANIFEST_LIST);
        assert!(matches!(
            parse(list.as_bytes(), Some(media_type::DOCKER_MANIFEST_LIST)).unwrap(),
            Document::Index(_)
        ));
    }

    #[test]
    fn schema1_is_refused_clearly() {
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"y","architecture":"amd64","fsLayers":[],"history":[]}"#;
        for declared in [None, Some(media_type::DOCKER_SCHEMA1_SIGNED)] {
            let err = parse(s1.as_bytes(), declared).unwrap_err();
            assert!(matches!(err, ManifestError::Schema1 { .. }), "{err}");
            assert!(
                err.to_string().contains("schema 1") && err.to_string().contains("not supported"),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::NotImplemented);
        }
    }

    #[test]
    fn malformed_documents_are_refused() {
        let too_big = vec![b' '; MAX_MANIFEST_SIZE as usize + 1];
        assert!(matches!(
            parse(&too_big, None),
            Err(ManifestError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(b"not json", None),
            Err(ManifestError::Json { .. })
        ));
        assert!(matches!(
            parse(b"{}", None),
            Err(ManifestError::Invalid { .. })
        ));
        let bad_digest = docker_manifest().replace(&d(2), "md5:d41d8cd98f00b204e9800998ecf8427e");
        assert!(matches!(
            parse(bad_digest.as_bytes(), None),
            Err(ManifestError::Json { .. })
        ));
        let v3 = docker_manifest().replace("\"schemaVersion\":2", "\"schemaVersion\":3");
        assert!(matches!(
            parse(v3.as_bytes(), None),
            Err(ManifestError::Invalid { .. })
        ));
        let err = parse(docker_manifest().as_bytes(), Some(media_type::OCI_MANIFEST)).unwrap_err();
        assert!(
            matches!(err, ManifestError::MediaTypeMismatch { .. }),
            "{err}"
        );
        let err = parse(
            b"{\"schemaVersion\":2}",
            Some("application/vnd.example+json"),
        )
        .unwrap_err();
        assert!(
            matches!(err, ManifestError::UnsupportedMediaType { .. }),
            "{err}"
        );
    }

    #[test]
    fn artifacts_are_not_images() {
        let art = docker_manifest().replace(
            media_type::DOCKER_CONFIG,
            "application/vnd.cncf.helm.config.v1+json",
        );
        let Document::Manifest(m) = parse(art.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert!(m
            .validate_image()
            .unwrap_err()
            .to_string()
            .contains("artifact"));
        let odd = docker_manifest().replace(media_type::DOCKER_LAYER_GZIP, "application/x-odd");
        let Document::Manifest(m) = parse(odd.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert!(m.validate_image().is_err());
    }

    #[test]
    fn platform_selection() {
        let json = index(&[
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v6")),
        ]);
        let Document::Index(idx) = parse(json.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(
            idx.select(&Platform::parse("linux/amd64").unwrap())
                .unwrap()
                .digest
                .to_string(),
            d(10)
        );
        assert_eq!(
            idx.select(&Platform::parse("linux/aarch64").unwrap())
                .unwrap()
                .digest
                .to_string(),
            d(11)
        );
        // arm/v7 falls back to v6.
        assert_eq!(
            idx.select(&Platform::parse("linux/arm/v7").unwrap())
                .unwrap()
                .digest
                .to_string(),
            d(12)
        );
        let err = idx
            .select(&Platform::parse("linux/s390x").unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries (available: linux/amd64, linux/arm64/v8, linux/arm/v6)"
        );
        // A 386-only index serves an amd64 host.
        let Document::Index(idx) =
            parse(index(&[("linux", "386", None)]).as_bytes(), None).unwrap()
        else {
            panic!()
        };
        assert!(idx.select(&Platform::parse("linux/amd64").unwrap()).is_ok());
    }

    #[test]
    fn attestations_are_skipped() {
        let json = index(&[("unknown", "unknown", None), ("linux", "amd64", None)]);
        let mut idx = match parse(json.as_bytes(), None).unwrap() {
            Document::Index(i) => i,
            _ => panic!(),
        };
        idx.manifests[0].annotations.insert(
            "vnd.docker.reference.type".into(),
            "attestation-manifest".into(),
        );
        idx.manifests[0].platform = Some(Platform::parse("linux/amd64").unwrap());
        assert_eq!(
            idx.select(&Platform::parse("linux/amd64").unwrap())
                .unwrap()
                .digest
                .to_string(),
            d(11)
        );
    }
}
