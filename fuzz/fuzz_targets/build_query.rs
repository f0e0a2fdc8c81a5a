//! `POST /build`'s query string (tags, build args, labels, cache sources,
//! extra hosts, shm size as JSON and text): checking it into the build's
//! options ends in options or an error, never a panic.
#![no_main]

use berth_api::query::{self, BuildQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|q: &str| {
    if let Ok(q) = query::parse::<BuildQuery>(q) {
        let _ = berth_daemon::fuzzing::build_query(&q);
    }
});
