//! A blob of unknown compression: detection and decompression must end in
//! data or an error, never a panic.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((_, plain)) = berth_archive::auto_decompressor(Cursor::new(data)) else {
        return;
    };
    // Bounded: a small input may inflate to a lot.
    let mut sink = Vec::new();
    let _ = plain.take(16 << 20).read_to_end(&mut sink);
});
