//! The `X-Registry-Auth` header of pull, push and `distribution`: base64
//! of docker's AuthConfig JSON. Decoding it ends in credentials (with the
//! registry host their server address names) or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &[u8]| {
    let _ = berth_daemon::fuzzing::registry_auth(header);
});
