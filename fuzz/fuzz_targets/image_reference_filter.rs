//! `GET /images/json?filters={"reference":[PATTERN]}`: the pattern (the
//! input's first line, up to the 64 KiB a filter may be) against an image's
//! reference (the second line): matching ends, quickly, with an answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (pattern, tag) = input.split_once('\n').unwrap_or((input, "busybox:latest"));
    let _ = berth_daemon::fuzzing::image_reference_matches(pattern, tag);
});
