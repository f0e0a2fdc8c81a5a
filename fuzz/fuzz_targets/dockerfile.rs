//! Dockerfiles from build contexts: parsing and word expansion never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = berth_build::parse(text);
    for escape in ['\\', '`'] {
        let _ = berth_build::expand(text, escape, &berth_build::NoVars);
        let _ = berth_build::words(text, escape, &berth_build::NoVars);
        let _ = berth_build::parse::parse_words(text, escape);
    }
});
