//! Image references typed by users and sent by API clients: parsing never
//! panics, and what a reference prints parses back to the same reference.
#![no_main]

use berth_image::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let _ = berth_image::reference::valid_tag(input);
    let _ = berth_image::reference::is_image_id(input);
    if let Ok(r) = Reference::parse(input) {
        let printed = r.to_string();
        let again = Reference::parse(&printed).unwrap_or_else(|e| {
            panic!("{input:?} parsed, printed as {printed:?}, which does not: {e}")
        });
        assert_eq!(
            again, r,
            "{input:?} printed as {printed:?} parses to another reference"
        );
    }
});
