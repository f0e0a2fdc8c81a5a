//! `docker load` input (docker-archive and OCI-archive tars): loading never
//! panics and never writes outside the data root.
#![no_main]

use std::fs;
use std::io::Cursor;

use berth_image::{ContentStore, LayerStore, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::Builder::new()
        .prefix("berth-fuzz-load-")
        .tempdir_in("/dev/shm")
        .expect("temp dir in /dev/shm");
    let root = outer.path().join("root");
    fs::create_dir(&root).unwrap();
    let content = ContentStore::open(&root).unwrap();
    let layers = LayerStore::open(&root).unwrap();
    let mut options = LoadOptions::default();
    options.apply.max_entry_size = 1 << 20;
    options.apply.max_total_size = 4 << 20;
    options.apply.max_entries = 1_000;
    let _ = berth_image::load(&content, &layers, Cursor::new(data), &options);
    let names: Vec<_> = fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["root"],
        "something was written beside the data root"
    );
});
