//! `docker run --init`: which init binary a container gets, found as
//! dockerd finds docker-init. The spec module mounts it and prepends it to
//! the process args ([`crate::spec::uses_init`], [`crate::spec::SpecInput::init`]).

use std::path::PathBuf;

use berth_api::models::ContainerCreateBody;

use crate::config::DaemonConfig;
use crate::error::ApiError;

/// The init berth builds (crates/berth-init), installed beside berthd.
pub const INIT_BINARY: &str = "berth-init";

/// The init binary for a container, or `None` when it runs without one.
/// An init is needed but missing: an error naming where it was looked for.
pub fn for_container(
    body: &ContainerCreateBody,
    config: &DaemonConfig,
) -> Result<Option<PathBuf>, ApiError> {
    if !crate::spec::uses_init(body, config.init) {
        return Ok(None);
    }
    binary(config).map(Some)
}

/// `/info`'s InitBinary: the configured init-path, else berth-init.
pub fn display_name(config: &DaemonConfig) -> String {
    if config.init_path.as_os_str().is_empty() {
        INIT_BINARY.to_string()
    } else {
        config.init_path.display().to_string()
    }
}

/// `init-path` when set (it must exist), else `berth-init` beside berthd,
/// else in PATH.
pub fn binary(config: &DaemonConfig) -> Result<PathBuf, ApiError> {
    let configured = &config.init_path;
    if !configured.as_os_str().is_empty() {
        if configured.is_file() {
            return Ok(configured.clone());
        }
        return Err(ApiError::new(
            berth_errdefs::ErrorKind::Internal,
            format!(
                "the init binary {} (the daemon's init-path) is not a file; \
                 install berth-init there or change init-path in daemon.json (--init-path)",
                configured.display()
            ),
        ));
    }
    crate::containers::shim::binary(INIT_BINARY).ok_or_else(|| {
        let beside = std::env::current_exe()
            .map(|e| e.with_file_name(INIT_BINARY).display().to_string())
            .unwrap_or_else(|_| INIT_BINARY.to_string());
        ApiError::new(
            berth_errdefs::ErrorKind::Internal,
            format!(
                "--init needs the init binary {INIT_BINARY}, which is neither beside berthd \
                 ({beside}) nor in PATH ({}); build it (cargo build --release -p berth-init) \
                 and install it there, or set init-path in daemon.json (--init-path)",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::HostConfig;

    fn with_init(init: Option<bool>) -> ContainerCreateBody {
        ContainerCreateBody {
            host_config: Some(HostConfig {
                init,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn finds_the_configured_binary_or_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("my-init");
        std::fs::write(&bin, b"").unwrap();
        let mut config = DaemonConfig {
            init_path: bin.clone(),
            ..Default::default()
        };
        assert_eq!(for_container(&with_init(None), &config).unwrap(), None);
        assert_eq!(
            for_container(&with_init(Some(true)), &config).unwrap(),
            Some(bin.clone())
        );
        config.init = true;
        assert_eq!(for_container(&with_init(None), &config).unwrap(), Some(bin));
        assert_eq!(
            for_container(&with_init(Some(false)), &config).unwrap(),
            None
        );

        config.init_path = dir.path().join("missing");
        let err = for_container(&with_init(Some(true)), &config).unwrap_err();
        assert!(err.message.contains("missing"), "{}", err.message);
        assert!(err.message.contains("init-path"), "{}", err.message);
    }
}
