//! Manifests and indexes from registries and archives: parsing never panics,
//! whatever media type is declared.
#![no_main]

use berth_image::manifest::{media_type, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for declared in [
        None,
        Some(media_type::OCI_MANIFEST),
        Some(media_type::OCI_INDEX),
        Some(media_type::DOCKER_MANIFEST),
        Some(media_type::DOCKER_MANIFEST_LIST),
        Some(media_type::DOCKER_SCHEMA1),
        Some("text/plain"),
    ] {
        let _ = parse(data, declared);
    }
});
