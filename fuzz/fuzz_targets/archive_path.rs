//! The `path` of docker cp's `HEAD`/`GET`/`PUT /containers/{id}/archive`:
//! parsing never panics, and what it resolves in the container's root is
//! absolute and lexically clean (no `.`, `..` or empty component) and the
//! top entry's name is one component.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|path: &str| {
    let Ok((clean, _follow, name)) = berth_daemon::fuzzing::archive_path(path) else {
        return;
    };
    assert!(clean.starts_with('/'), "{path:?} -> {clean:?}");
    if clean != "/" {
        assert!(
            clean[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."),
            "{path:?} -> {clean:?}"
        );
    }
    assert!(
        name == "/" || (!name.is_empty() && !name.contains('/') && name != ".."),
        "{path:?} -> name {name:?}"
    );
    assert!(!clean.contains('\0'));
});
