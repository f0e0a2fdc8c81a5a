//! What `POST /containers/create` checks in a request with nothing but the
//! image's config: no daemon state, nothing on the host. The create
//! handler runs it before the checks that need the daemon (networks,
//! joined containers, runtimes, volumes); the fuzz target
//! `container_create` runs it on a fixed host.

use berth_api::models::ContainerCreateBody;
use berth_image::ImageConfig;

use crate::error::ApiError;
use crate::spec::Host;

use super::{log_driver, names};

/// The request body as the create handler reads it: JSON (an empty body
/// is `{}`), with a container-level `MacAddress` moved to its network.
pub(crate) fn parse(bytes: &[u8]) -> Result<ContainerCreateBody, ApiError> {
    let mut create: ContainerCreateBody =
        crate::container_routes::parse_json(bytes, "invalid container config")?;
    let raw: serde_json::Value =
        crate::container_routes::parse_json(bytes, "invalid container config")?;
    crate::networks::attach::apply_container_mac(&mut create, &raw)?;
    Ok(create)
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
        check(parse(body.as_bytes())?, &image(), &Host::fixed(), name)
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
}
