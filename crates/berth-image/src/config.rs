//! Image configs (OCI `application/vnd.oci.image.config.v1+json` and
//! Docker's `container.image.v1+json`, which is a superset).
//!
//! The struct holds docker's fields too (Healthcheck, OnBuild, Shell, ...)
//! that oci-spec's `Config` lacks, because `docker image inspect` shows
//! them. The stored blob is the source of truth (its digest is the image
//! id); this type is for reading, and for writing configs berth creates.

use std::collections::BTreeMap;

use berth_errdefs::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// Image configs larger than this are refused.
pub const MAX_CONFIG_SIZE: u64 = 4 << 20;

/// Why an image config was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("image config is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("invalid image config: {source}")]
    Json { source: serde_json::Error },
    #[error("invalid image config: {reason}")]
    Invalid { reason: String },
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// An image config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Docker's top-level comment (set by `docker import --message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// The image a commit was made on (docker's `parent`, inspect's Parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// The container a commit was made from (inspect's Container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// That container's Config (inspect's ContainerConfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<serde_json::Value>,
}

/// The defaults for containers run from the image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// The layers of the image, as uncompressed-tar digests (diff ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry (`docker history`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses and validates a config blob.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
        if bytes.len() as u64 > MAX_CONFIG_SIZE {
            return Err(ConfigError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_CONFIG_SIZE,
            });
        }
        let config: ImageConfig =
            serde_json::from_slice(bytes).map_err(|source| ConfigError::Json { source })?;
        if config.rootfs.kind != "layers" {
            return Err(ConfigError::Invalid {
                reason: format!(
                    "rootfs.type is {:?}, expected \"layers\"",
                    config.rootfs.kind
                ),
            });
        }
        let layers = config.history.iter().filter(|h| !h.empty_layer).count();
        if !config.history.is_empty() && layers != config.rootfs.diff_ids.len() {
            // Docker tolerates this but it breaks `history`; warn, don't fail.
            tracing::warn!(
                layers,
                diff_ids = config.rootfs.diff_ids.len(),
                "image history does not match its layers"
            );
        }
        Ok(config)
    }

    /// The platform the image is for.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }

    /// The canonical JSON berth writes for configs it creates.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an image config always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_docker_config_with_extra_fields() {
        let diff = format!("sha256:{}", "ab".repeat(32));
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","docker_version":"24.0.7",
            "container_config":{{"Hostname":"x"}},
            "config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"ExposedPorts":{{"80/tcp":{{}}}},"Healthcheck":{{"Test":["CMD","true"]}},"OnBuild":null}},
            "rootfs":{{"type":"layers","diff_ids":["{diff}"]}},
            "history":[{{"created_by":"ADD file"}},{{"created_by":"CMD","empty_layer":true}}]}}"#
        );
        let c = ImageConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(c.platform().to_string(), "linux/amd64");
        let rc = c.config.as_ref().unwrap();
        assert_eq!(rc.cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert!(rc.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(rc.healthcheck.is_some());
        assert_eq!(c.rootfs.diff_ids[0].to_string(), diff);
        assert!(c.history[1].empty_layer);
        assert_eq!(ImageConfig::parse(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(matches!(
            ImageConfig::parse(b"[]"),
            Err(ConfigError::Json { .. })
        ));
        let bad_type =
            r#"{"os":"linux","architecture":"amd64","rootfs":{"type":"other","diff_ids":[]}}"#;
        assert!(matches!(
            ImageConfig::parse(bad_type.as_bytes()),
            Err(ConfigError::Invalid { .. })
        ));
        let bad_diff = r#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}"#;
        assert!(ImageConfig::parse(bad_diff.as_bytes()).is_err());
        let big = vec![b' '; MAX_CONFIG_SIZE as usize + 1];
        assert!(matches!(
            ImageConfig::parse(&big),
            Err(ConfigError::TooLarge { .. })
        ));
    }
}
