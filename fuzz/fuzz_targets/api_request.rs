//! A request line's path and query string (`/v1.41/containers/json?all=1`):
//! the API version prefix, negotiation, percent-decoding of path segments
//! and every endpoint's query struct end in a value or an error, never a
//! panic.
#![no_main]

use berth_api::query::{self, *};
use berth_api::ApiVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (path, q) = input.split_once('?').unwrap_or((input, ""));
    if let Ok((requested, rest)) = ApiVersion::split_path(path) {
        let _ = ApiVersion::negotiate(requested, ApiVersion::MIN);
        let _ = ApiVersion::negotiate(requested, ApiVersion::OLDEST);
        for segment in rest.split('/') {
            let _ = berth_daemon::fuzzing::path_segment(segment);
        }
    }
    let _ = ApiVersion::parse_minimum(path);
    let _ = query::bool_value(q);
    // Every endpoint's query struct, as the router parses them.
    macro_rules! each {
        ($($t:ty),* $(,)?) => {$(
            if let Ok(v) = query::parse::<$t>(q) {
                let _ = query::to_string(&v);
            }
        )*};
    }
    each!(
        ImageListQuery,
        ImageCreateQuery,
        ImageTagQuery,
        ImageDeleteQuery,
        ImagePushQuery,
        ImageGetQuery,
        ImageLoadQuery,
        PruneQuery,
        PluginCreateQuery,
        ImageSearchQuery,
        ContainerCreateQuery,
        ContainerListQuery,
        ContainerAttachQuery,
        ResizeQuery,
        ContainerTopQuery,
        ContainerStatsQuery,
        ContainerRenameQuery,
        ContainerInspectQuery,
        ContainerWaitQuery,
        ContainerLogsQuery,
        ContainerDeleteQuery,
        VolumeDeleteQuery,
        ContainerStopQuery,
        ContainerKillQuery,
        EventsQuery,
        SystemDfQuery,
        BuildQuery,
    );
    if let Ok(c) = query::parse::<CommitQuery>(q) {
        let _ = c.pause();
    }
});
