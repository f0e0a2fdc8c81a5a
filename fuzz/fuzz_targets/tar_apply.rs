//! A layer tar from anywhere: applying it must never panic, and never
//! create, change or remove anything outside the layer directory.
#![no_main]

use std::fs;
use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

const CANARY: &[u8] = b"outside the layer";

fuzz_target!(|data: &[u8]| {
    // tmpfs: fast, and it takes trusted.* xattrs and device nodes as ext4 does.
    let outer = tempfile::Builder::new()
        .prefix("berth-fuzz-tar-")
        .tempdir_in("/dev/shm")
        .expect("temp dir in /dev/shm");
    let dest = outer.path().join("layer");
    fs::create_dir(&dest).unwrap();
    fs::write(outer.path().join("canary"), CANARY).unwrap();
    fs::create_dir(outer.path().join("canary-dir")).unwrap();

    let opts = berth_archive::ApplyOptions {
        // Small bounds keep a run fast; hitting them must be an error too.
        max_entry_size: 1 << 20,
        max_total_size: 4 << 20,
        max_entries: 1_000,
        ..Default::default()
    };
    let _ = berth_archive::apply_layer(Cursor::new(data), &dest, &opts);

    assert_untouched(outer.path());
});

fn assert_untouched(outer: &Path) {
    let mut names: Vec<_> = fs::read_dir(outer)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["canary", "canary-dir", "layer"],
        "an entry escaped the layer dir"
    );
    let canary = fs::symlink_metadata(outer.join("canary")).unwrap();
    assert!(canary.file_type().is_file(), "the canary was replaced");
    assert_eq!(
        fs::read(outer.join("canary")).unwrap(),
        CANARY,
        "the canary was changed"
    );
    assert_eq!(
        fs::read_dir(outer.join("canary-dir")).unwrap().count(),
        0,
        "written into canary-dir"
    );
    let meta = fs::metadata(outer.join("canary")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777, meta.nlink()),
        (0, 0, 0o644, 1),
        "the canary's metadata changed"
    );
}
