//! A registry's WWW-Authenticate header: parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    let _ = berth_registry::challenge::parse(header);
});
