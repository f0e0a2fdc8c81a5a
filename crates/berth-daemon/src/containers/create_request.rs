//! What `POST /containers/create` checks in a request with nothing but the
//! image's config: no daemon state, nothing on the host. The create
//! handler runs it before the checks that need the daemon (networks,
//! joined containers, runtimes, volumes); the fuzz target
//! `container_create` runs it on a fixed host.

use berth_api::models::{ContainerCreateBody, MountType};
use berth_api::ApiVersion;
use berth_image::ImageConfig;

use crate::error::ApiError;
use crate::spec::Host;

use super::{log_driver, names};

/// The request body as the create handler reads it at API `version`: JSON
/// (an empty body is `{}`), the fields `version` does not have dropped or
/// refused as dockerd's router does, and a container-level `MacAddress`
/// moved to its network. Returns docker's warnings with it.
pub(crate) fn parse(
    bytes: &[u8],
    version: ApiVersion,
) -> Result<(ContainerCreateBody, Vec<String>), ApiError> {
    let mut create: ContainerCreateBody =
        crate::container_routes::parse_json(bytes, "invalid container config")?;
    let raw: serde_json::Value =
        crate::container_routes::parse_json(bytes, "invalid container config")?;
    as_of_version(&mut create, version)?;
    let warnings = crate::networks::attach::apply_container_mac(&mut create, &raw, version)?;
    Ok((create, warnings.into_iter().collect()))
}

/// What dockerd's create handler does with fields newer (or older) than
/// the client's API version: a field a version lacks is dropped, as that
/// version's daemon ignored it, and one that would change the meaning of
/// the request is refused.
fn as_of_version(create: &mut ContainerCreateBody, version: ApiVersion) -> Result<(), ApiError> {
    let before = |minor: u16| version < ApiVersion::new(1, minor);
    if let Some(hc) = create.host_config.as_mut() {
        for m in hc.mounts.iter_mut().flatten() {
            if before(42) {
                // Unchecked before 1.42: options for another mount type
                // were ignored, as was CreateMountpoint.
                if m.typ != Some(MountType::VOLUME) {
                    m.volume_options = None;
                }
                if m.typ != Some(MountType::TMPFS) {
                    m.tmpfs_options = None;
                }
                if let Some(bo) = m.bind_options.as_mut() {
                    bo.create_mountpoint = None;
                }
            }
            let forced = m
                .bind_options
                .as_ref()
                .is_some_and(|bo| bo.read_only_force_recursive == Some(true));
            if before(44) && m.typ == Some(MountType::BIND) && forced {
                return Err(ApiError::bad_request(
                    "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer",
                ));
            }
            let subpath = m
                .volume_options
                .as_ref()
                .and_then(|o| o.subpath.as_deref())
                .is_some_and(|p| !p.is_empty());
            if before(45) && subpath {
                return Err(ApiError::bad_request(
                    "VolumeOptions.Subpath needs API v1.45 or newer",
                ));
            }
            if before(48) && m.typ == Some(MountType::IMAGE) {
                return Err(ApiError::bad_request(
                    "Mount type \"Image\" needs API v1.48 or newer",
                ));
            }
        }
        if before(42) {
            hc.console_size = None;
        }
        if before(43) {
            hc.annotations = None;
        }
    }
    if before(44) {
        if let Some(h) = create.healthcheck.as_mut() {
            h.start_interval = None;
        }
        let endpoints = create
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref());
        if let Some(eps) = endpoints.filter(|eps| eps.len() > 1) {
            let mut names: Vec<&str> = eps.keys().map(String::as_str).collect();
            names.sort_unstable();
            return Err(ApiError::bad_request(format!(
                "Container cannot be created with multiple network endpoints: {}",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// A request that passed [`check`].
pub(crate) struct CheckedCreate {
    /// The request, its log options normalised as docker stores them.
    pub body: ContainerCreateBody,
    /// Docker's warnings, for the response's `Warnings`.
    pub warnings: Vec<String>,
    /// The process to run: the image's and the request's entrypoint and
    /// command combined.
    pub path: String,
    pub args: Vec<String>,
    /// The name asked for (`?name=`), checked; `None` to generate one.
    pub name: Option<String>,
}

/// Plans the container on `host` (every limit, capability, device,
/// mount, namespace and security option), derives its command and log
/// driver, and checks the requested name.
pub(crate) fn check(
    mut body: ContainerCreateBody,
    image: &ImageConfig,
    host: &Host,
    name: Option<&str>,
) -> Result<CheckedCreate, ApiError> {
    let warnings = crate::spec::validate_on(&body, image, host)?;
    let (path, args) = crate::spec::command(&body, image)?;
    log_driver::normalise(&mut body)?;
    let name = name
        .filter(|n| !n.is_empty())
        .map(names::validate)
        .transpose()
        .map_err(ApiError::bad_request)?;
    Ok(CheckedCreate {
        body,
        warnings,
        path,
        args,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageConfig {
        serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux",
                "config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"]},
                "rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap()
    }

    fn checked(body: &str, name: Option<&str>) -> Result<CheckedCreate, ApiError> {
        let (body, _) = parse(body.as_bytes(), ApiVersion::MAX)?;
        check(body, &image(), &Host::fixed(), name)
    }

    #[test]
    fn an_empty_body_is_an_empty_request_and_runs_the_images_command() {
        let c = checked("  ", None).unwrap();
        assert_eq!(c.path, "/bin/sh");
        assert_eq!(c.args, ["-c", "echo hi"]);
        assert_eq!(c.name, None);
        assert_eq!(checked(r#"{}"#, Some("")).unwrap().name, None);
    }

    #[test]
    fn the_requested_name_is_checked_and_loses_its_slash() {
        assert_eq!(
            checked("{}", Some("/web-1")).unwrap().name.as_deref(),
            Some("web-1")
        );
        let err = checked("{}", Some("-bad")).err().unwrap();
        assert_eq!(err.status, 400);
        assert!(
            err.message.contains("Invalid container name (-bad)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_log_config_is_normalised_and_its_options_checked() {
        let c = checked(r#"{"HostConfig":{"LogConfig":{"Type":""}}}"#, None).unwrap();
        let log = c.body.host_config.unwrap().log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert!(log.config.unwrap().is_empty());
        let err = checked(
            r#"{"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"colour":"red"}}}}"#,
            None,
        )
        .err()
        .unwrap();
        assert_eq!(err.status, 400, "{}", err.message);
    }

    #[test]
    fn a_request_that_does_not_plan_is_refused_before_anything_else() {
        let err = checked(r#"{"HostConfig":{"CpusetCpus":"9999"}}"#, Some("-bad"))
            .err()
            .unwrap();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("9999"), "{}", err.message);
        let err = checked(r#"{"Cmd": 5}"#, None).err().unwrap();
        assert!(
            err.message.starts_with("invalid container config"),
            "{}",
            err.message
        );
    }

    fn at(version: (u16, u16), body: serde_json::Value) -> Result<ContainerCreateBody, ApiError> {
        let bytes = serde_json::to_vec(&body).unwrap();
        parse(&bytes, ApiVersion::new(version.0, version.1)).map(|(b, _)| b)
    }

    #[test]
    fn fields_newer_than_the_clients_version_are_dropped() {
        let body = serde_json::json!({
            "Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 1_000_000_000},
            "HostConfig": {
                "ConsoleSize": [30, 100],
                "Annotations": {"a": "b"},
                "Mounts": [{"Type": "tmpfs", "Target": "/t", "VolumeOptions": {"NoCopy": true}},
                           {"Type": "bind", "Source": "/x", "Target": "/x",
                            "BindOptions": {"CreateMountpoint": true}}]
            }
        });
        let old = at((1, 41), body.clone()).unwrap();
        let hc = old.host_config.as_ref().unwrap();
        assert_eq!(hc.console_size, None);
        assert_eq!(hc.annotations, None);
        let mounts = hc.mounts.as_ref().unwrap();
        assert!(mounts[0].volume_options.is_none());
        assert_eq!(
            mounts[1].bind_options.as_ref().unwrap().create_mountpoint,
            None
        );
        assert_eq!(old.healthcheck.unwrap().start_interval, None);
        // 1.43 has annotations, not StartInterval.
        let v43 = at(
            (1, 43),
            serde_json::json!({
                "Healthcheck": {"StartInterval": 1},
                "HostConfig": {"Annotations": {"a": "b"}, "ConsoleSize": [30, 100]}
            }),
        )
        .unwrap();
        assert!(v43.host_config.as_ref().unwrap().annotations.is_some());
        assert_eq!(v43.host_config.unwrap().console_size, Some(vec![30, 100]));
        assert_eq!(v43.healthcheck.unwrap().start_interval, None);
        let new = at(
            (1, 44),
            serde_json::json!({"Healthcheck": {"StartInterval": 1}}),
        )
        .unwrap();
        assert_eq!(new.healthcheck.unwrap().start_interval, Some(1));
    }

    #[test]
    fn what_the_clients_version_cannot_mean_is_refused() {
        let forced = serde_json::json!({"HostConfig": {"Mounts": [{
            "Type": "bind", "Source": "/x", "Target": "/x", "ReadOnly": true,
            "BindOptions": {"ReadOnlyForceRecursive": true}}]}});
        let e = at((1, 43), forced.clone()).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"
        );
        assert!(at((1, 44), forced).is_ok());
        let two = serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {"b": {}, "a": {}}}});
        let e = at((1, 43), two.clone()).unwrap_err();
        assert_eq!(
            e.message,
            "Container cannot be created with multiple network endpoints: a, b"
        );
        assert!(at((1, 44), two).is_ok());
        let subpath = serde_json::json!({"HostConfig": {"Mounts": [{
            "Type": "volume", "Source": "v", "Target": "/v",
            "VolumeOptions": {"Subpath": "dir"}}]}});
        assert_eq!(
            at((1, 44), subpath).unwrap_err().message,
            "VolumeOptions.Subpath needs API v1.45 or newer"
        );
    }

    #[test]
    fn the_container_wide_mac_address_follows_the_clients_version() {
        let mac_of = |b: &ContainerCreateBody, net: &str| {
            b.networking_config
                .as_ref()
                .unwrap()
                .endpoints_config
                .as_ref()
                .unwrap()[net]
                .mac_address
                .clone()
        };
        let wide = serde_json::json!({"MacAddress": "02:42:ac:11:00:09"});
        // Before 1.44 it goes to the default network, silently.
        let (b, warnings) =
            parse(&serde_json::to_vec(&wide).unwrap(), ApiVersion::new(1, 41)).unwrap();
        assert_eq!(mac_of(&b, "bridge").as_deref(), Some("02:42:ac:11:00:09"));
        assert!(warnings.is_empty());
        // From 1.44 too, with docker's deprecation warning.
        let (b, warnings) =
            parse(&serde_json::to_vec(&wide).unwrap(), ApiVersion::new(1, 44)).unwrap();
        assert_eq!(mac_of(&b, "bridge").as_deref(), Some("02:42:ac:11:00:09"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // An endpoint's own MAC: ignored before 1.44, must agree from 1.44.
        let both = serde_json::json!({
            "MacAddress": "02:42:ac:11:00:09",
            "HostConfig": {"NetworkMode": "n"},
            "NetworkingConfig": {"EndpointsConfig": {"n": {"MacAddress": "02:42:ac:11:00:0a"}}}
        });
        let b = at((1, 43), both.clone()).unwrap();
        assert_eq!(mac_of(&b, "n").as_deref(), Some("02:42:ac:11:00:09"));
        assert!(at((1, 44), both)
            .unwrap_err()
            .message
            .contains("must match"));
        let endpoint_only = serde_json::json!({
            "HostConfig": {"NetworkMode": "n"},
            "NetworkingConfig": {"EndpointsConfig": {"n": {"MacAddress": "02:42:ac:11:00:0a"}}}
        });
        assert_eq!(
            mac_of(&at((1, 43), endpoint_only.clone()).unwrap(), "n"),
            None
        );
        assert_eq!(
            mac_of(&at((1, 44), endpoint_only).unwrap(), "n").as_deref(),
            Some("02:42:ac:11:00:0a")
        );
        let host = serde_json::json!({"MacAddress": "02:42:ac:11:00:09", "HostConfig": {"NetworkMode": "host"}});
        assert_eq!(
            at((1, 43), host).unwrap_err().message,
            "conflicting options: mac-address and the network mode"
        );
    }
}
