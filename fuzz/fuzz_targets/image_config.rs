//! Image configs from registries and archives: parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = berth_image::ImageConfig::parse(data);
});
