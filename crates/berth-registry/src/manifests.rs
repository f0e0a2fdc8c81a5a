//! Manifest GET, HEAD and PUT.
//!
//! Manifests are small JSON documents read whole into memory, so their size
//! is bounded and their digest is checked before anything is returned.

use berth_image::digest::{Algorithm, Digest, Digester};
use berth_image::reference::Reference;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::client::{read_limited, Client, ReadError, Target};
use crate::error::RegistryError;

/// Manifests larger than this are refused (docker and containerd use the same bound).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_TYPE_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const MEDIA_TYPE_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type berth can pull, for `Accept`.
pub const ACCEPT_ALL: &[&str] = &[
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
];

/// A manifest as the registry sent it, verified.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    /// The digest of `bytes` (always sha256 for content addressed by tag).
    pub digest: Digest,
}

/// What HEAD on a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub media_type: Option<String>,
}

/// The tag or digest a reference points at; `latest` when it has neither.
fn reference_part(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    }
}

fn describe(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => format!("manifest {d}"),
        (None, t) => format!("manifest for tag {}", t.unwrap_or("latest")),
    }
}

/// The media type from the `mediaType` field, for servers that send a generic Content-Type.
fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    match (p.media_type, p.schema_version) {
        (Some(m), _) => Some(m),
        (None, Some(1)) => Some(MEDIA_TYPE_SCHEMA1.to_string()),
        _ => None,
    }
}

fn header_digest(headers: &reqwest::header::HeaderMap) -> Option<Digest> {
    headers
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| Digest::parse(s.trim()).ok())
}

impl Client {
    /// Fetches the manifest `reference` points at. A pull by digest is
    /// verified against that digest; a pull by tag against the digest the
    /// registry names in `Docker-Content-Digest`, when it names one.
    pub async fn get_manifest(
        &self,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Manifest, RegistryError> {
        let registry = reference.domain();
        let target = Target::pull(registry, reference.repository());
        let mut last = None;
        for candidate in self.pull_endpoints(registry).await {
            let ep = match self.resolve(registry, candidate).await {
                Ok(ep) => ep,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self
                .get_manifest_from(&target, &ep, reference, accept)
                .await
            {
                Ok(m) => return Ok(m),
                Err(e) => {
                    tracing::debug!(host = %ep.host, error = %e, "manifest fetch failed");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("pull_endpoints returns at least one endpoint"))
    }

    async fn get_manifest_from(
        &self,
        target: &Target<'_>,
        ep: &crate::client::Endpoint,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Manifest, RegistryError> {
        let url = ep.url(&format!(
            "v2/{}/manifests/{}",
            target.repository,
            reference_part(reference)
        ));
        let accept = if accept.is_empty() {
            ACCEPT_ALL.join(", ")
        } else {
            accept.join(", ")
        };
        let resp = self
            .send(target, ep, |http| {
                http.get(url.clone()).header(ACCEPT, &accept)
            })
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(self
                .status_error(target, &Method::GET, &describe(reference), resp)
                .await);
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let announced = header_digest(resp.headers());
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge => RegistryError::TooLarge {
                    registry: target.registry.into(),
                    repository: target.repository.into(),
                    what: describe(reference),
                    limit: MAX_MANIFEST_SIZE as u64,
                },
                ReadError::Body(m) => RegistryError::Unreachable {
                    registry: target.registry.into(),
                    message: m,
                },
            })?;
        let media_type = match content_type {
            Some(ct) if ct != "application/json" && ct != "text/plain" && !ct.is_empty() => ct,
            _ => sniff_media_type(&bytes).unwrap_or_default(),
        };
        if media_type == MEDIA_TYPE_SCHEMA1 || media_type == MEDIA_TYPE_SCHEMA1_SIGNED {
            return Err(RegistryError::Unsupported {
                registry: target.registry.into(),
                repository: target.repository.into(),
                what: describe(reference),
                media_type,
                hint: "Docker image manifest schema 1 is deprecated; push the image again with a current docker or berth",
            });
        }
        // Verify against the digest we asked for, else the one the registry named.
        let expected = reference.digest().cloned().or(announced);
        let algorithm = expected
            .as_ref()
            .map(Digest::algorithm)
            .unwrap_or(Algorithm::Sha256);
        let mut digester = Digester::new(algorithm);
        digester.update(&bytes);
        let actual = digester.finish();
        if let Some(expected) = expected {
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    registry: target.registry.into(),
                    repository: target.repository.into(),
                    expected,
                    actual,
                });
            }
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest: actual,
        })
    }

    /// HEAD on a manifest: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let registry = reference.domain();
        let target = Target::pull(registry, reference.repository());
        let accept = if accept.is_empty() {
            ACCEPT_ALL.join(", ")
        } else {
            accept.join(", ")
        };
        let mut last = None;
        for candidate in self.pull_endpoints(registry).await {
            let ep = match self.resolve(registry, candidate).await {
                Ok(ep) => ep,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let url = ep.url(&format!(
                "v2/{}/manifests/{}",
                target.repository,
                reference_part(reference)
            ));
            let resp = match self
                .send(&target, &ep, |http| {
                    http.head(url.clone()).header(ACCEPT, &accept)
                })
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match resp.status() {
                StatusCode::OK => {
                    let h = resp.headers();
                    return Ok(Some(ManifestHead {
                        digest: header_digest(h),
                        size: h
                            .get(CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|s| s.parse().ok()),
                        media_type: h
                            .get(CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    }));
                }
                StatusCode::NOT_FOUND => return Ok(None),
                _ => {
                    last = Some(
                        self.status_error(&target, &Method::HEAD, &describe(reference), resp)
                            .await,
                    )
                }
            }
        }
        Err(last.expect("pull_endpoints returns at least one endpoint"))
    }

    /// Uploads a manifest under `reference`'s tag (or digest) and returns its digest.
    /// Every blob it names must already be in the repository.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let registry = reference.domain();
        let target = Target::push(registry, reference.repository());
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                registry: registry.into(),
                repository: reference.repository().into(),
                what: describe(reference),
                limit: MAX_MANIFEST_SIZE as u64,
            });
        }
        let digest = Digest::sha256_of(&bytes);
        if let Some(d) = reference.digest() {
            d.verify(&bytes)
                .map_err(|_| RegistryError::DigestMismatch {
                    registry: registry.into(),
                    repository: reference.repository().into(),
                    expected: d.clone(),
                    actual: digest.clone(),
                })?;
        }
        let ep = self.endpoint(registry).await?;
        let url = ep.url(&format!(
            "v2/{}/manifests/{}",
            target.repository,
            reference_part(reference)
        ));
        let resp = self
            .send(&target, &ep, |http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(&target, &Method::PUT, &describe(reference), resp)
                .await);
        }
        if let Some(announced) = header_digest(resp.headers()) {
            if announced.algorithm() == Algorithm::Sha256 && announced != digest {
                return Err(target.error(format!(
                    "the registry stored the manifest as {announced}, but its content has digest {digest}"
                )));
            }
        }
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_parts() {
        let r = Reference::parse("localhost:5000/foo").unwrap();
        assert_eq!(reference_part(&r), "latest");
        let r = Reference::parse("localhost:5000/foo:1.0").unwrap();
        assert_eq!(reference_part(&r), "1.0");
        let d = Digest::sha256_of(b"x");
        let r = Reference::parse(&format!("localhost:5000/foo:1.0@{d}")).unwrap();
        assert_eq!(reference_part(&r), d.to_string());
    }

    #[test]
    fn media_type_sniffing() {
        assert_eq!(
            sniff_media_type(
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#
            )
            .as_deref(),
            Some(MEDIA_TYPE_OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":1,"name":"x"}"#).as_deref(),
            Some(MEDIA_TYPE_SCHEMA1)
        );
        assert_eq!(sniff_media_type(b"nope"), None);
    }
}
