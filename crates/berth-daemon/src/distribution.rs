//! `GET /distribution/{name}/json`: what a registry holds for a reference,
//! asked of the registry itself (nothing is pulled or stored): the
//! descriptor of the manifest the name points at, and the platforms it
//! serves, from the index's entries or, for a single image, its config.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_image::Reference;
use berth_registry::ACCEPT_ALL;
use serde_json::{json, Map, Value};

use crate::engine::Engine;
use crate::error::ApiError;

pub async fn inspect(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    name: &str,
) -> Result<Response, ApiError> {
    let reference = Reference::parse(name)?.with_default_tag();
    let client = crate::http::client_for(&engine, headers, reference.domain())?;
    let manifest = client.get_manifest(&reference, ACCEPT_ALL).await?;
    let body: Value = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        ApiError::internal(format!(
            "the registry's manifest for {name} is not JSON: {e}"
        ))
    })?;
    let platforms = match index_platforms(&body) {
        Some(platforms) => platforms,
        None => {
            let config = config_digest(&body).ok_or_else(|| {
                ApiError::internal(format!(
                    "the registry's manifest for {name} names no config"
                ))
            })?;
            let bytes = client
                .fetch_blob_bytes(&reference, &config, berth_image::config::MAX_CONFIG_SIZE)
                .await?;
            let config: Value = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::internal(format!("the image config of {name} is not JSON: {e}"))
            })?;
            vec![platform(&config)]
        }
    };
    Ok(crate::http::json(
        StatusCode::OK,
        &json!({
            "Descriptor": {
                "mediaType": manifest.media_type,
                "digest": manifest.digest.to_string(),
                "size": manifest.bytes.len(),
            },
            "Platforms": platforms,
        }),
    ))
}

/// The digest of the config a manifest of one image (or plugin) names.
pub(crate) fn config_digest(manifest: &Value) -> Option<berth_image::Digest> {
    manifest["config"]["digest"]
        .as_str()
        .and_then(|d| berth_image::Digest::parse(d).ok())
}

/// An index's (or manifest list's) entries' platforms; `None` for a
/// manifest of one image.
fn index_platforms(manifest: &Value) -> Option<Vec<Value>> {
    let entries = manifest.get("manifests")?.as_array()?;
    Some(
        entries
            .iter()
            .filter_map(|e| e.get("platform"))
            .map(platform)
            .collect(),
    )
}

/// An OCI platform object from the fields an index entry's `platform` or
/// an image config carries (`architecture`, `os`, `os.version`,
/// `os.features`, `variant`), leaving out the absent ones.
fn platform(source: &Value) -> Value {
    let mut out = Map::new();
    for key in ["architecture", "os", "os.version", "os.features", "variant"] {
        if let Some(v) = source.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_come_from_an_index_or_a_config() {
        let index = json!({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"digest": "sha256:a", "platform": {"architecture": "amd64", "os": "linux"}},
            {"digest": "sha256:b", "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"digest": "sha256:c", "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
        ]});
        assert_eq!(
            index_platforms(&index),
            Some(vec![
                json!({"architecture": "amd64", "os": "linux"}),
                json!({"architecture": "arm", "os": "linux", "variant": "v7"}),
            ])
        );
        let single = json!({"config": {"digest": "sha256:d"}, "layers": []});
        assert_eq!(index_platforms(&single), None);
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {}, "variant": null});
        assert_eq!(
            platform(&config),
            json!({"architecture": "amd64", "os": "linux"})
        );
    }
}
