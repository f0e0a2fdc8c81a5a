//! Entry points for the cargo-fuzz targets in `fuzz/` only: not an API, no
//! other crate calls them. Each runs what a request handler does with the
//! request's untrusted input, up to where the handler needs the daemon's
//! state or touches the host, through the crate-private functions the
//! handler itself calls.

use berth_api::query::BuildQuery;
use berth_image::ImageConfig;

use crate::error::ApiError;

/// `POST /containers/create?name=NAME` with `body`, for an image whose
/// config is `image`: the create handler's parsing and checks, then what
/// start derives from the stored request without a rootfs (the spec's
/// plan, resources, seccomp, mounts; the log driver; the healthcheck).
/// Returns the create's warnings.
pub fn container_create(
    name: &str,
    body: &[u8],
    image: &ImageConfig,
) -> Result<Vec<String>, ApiError> {
    // container_routes::create, then Engine::create_container's checks
    // that need no daemon state.
    let (create, _) = crate::containers::create_request::parse(body, berth_api::ApiVersion::MAX)?;
    let checked = crate::containers::create_request::check(
        create,
        image,
        &crate::spec::Host::fixed(),
        Some(name),
    )?;
    let create = checked.body;
    let _ = crate::spec::joined_pid_container(&create);
    let _ = crate::spec::joined_ipc_container(&create);
    crate::spec::mount_requests(&create, image)?;
    // Engine::start_container: the spec it would generate, short of the
    // rootfs and the host's devices.
    crate::spec::check_offline(&create, image)?;
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let _ = crate::spec::hostname(&create, id);
    let _ = crate::spec::cgroups_path(&create, id);
    let _ = crate::spec::uses_init(&create, false);
    let _ = crate::spec::shareable_ipc(&create);
    crate::containers::log_driver::driver(&create)?;
    let _ = crate::containers::health::probe(&create, image);
    Ok(checked.warnings)
}

/// `GET /events`'s query: its filters, `since` and `until` (unix time,
/// RFC 3339 or a Go duration back from now), as nanoseconds.
pub fn events_query(query: &str) -> Result<EventsWindow, ApiError> {
    crate::http::events_window(query)
}

pub use crate::http::EventsWindow;

/// How long `GET /events?until=` waits, from `now` (nanoseconds).
pub fn events_wait(until: i128, now: i128) -> std::time::Duration {
    crate::events::until_wait(until, now)
}

/// `POST /build`'s query, checked into the build's options.
pub fn build_query(query: &BuildQuery) -> Result<(), ApiError> {
    crate::build::options(query).map(|_| ())
}

/// An `X-Registry-Auth` header (or an `/auth` body, base64'd): the
/// credentials and the registry host its server address names.
pub fn registry_auth(
    header: &[u8],
) -> Result<(String, Option<berth_registry::Credentials>), ApiError> {
    let auth = crate::http::decode_registry_auth(header)?;
    Ok((
        crate::system::registry_host(&auth.serveraddress),
        auth.credentials(),
    ))
}

/// The `path` of `HEAD`/`GET`/`PUT /containers/{id}/archive`: the clean
/// absolute path, whether a symlink at its end is followed, and the name
/// the archive's top entry gets.
pub fn archive_path(path: &str) -> Result<(String, bool, String), ApiError> {
    let t = crate::containers::archive::parse_target(path)?;
    Ok((t.clean, t.follow, t.name))
}

/// A path segment of a request (`/containers/{name}/...`), percent-decoded.
pub fn path_segment(segment: &str) -> Result<String, ApiError> {
    crate::http::decode(segment)
}

/// `GET /images/json`'s `reference` filter: whether an image's reference
/// (its familiar `name:tag`) matches the filter's shell pattern.
pub fn image_reference_matches(pattern: &str, tag: &str) -> bool {
    crate::images::reference_matches(pattern, tag)
}
